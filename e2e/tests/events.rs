//! The change-event listeners against their peers on loopback, started by the tests: SQS in
//! moto (EventBridge-shaped messages put on the queue by the test, as an EventBridge rule
//! would) and the project's Pub/Sub fake (messages published by the test with the Pub/Sub
//! client library, as Secret Manager would). The stores and the listeners are ramlet's own;
//! the test feeds the listeners' notices to the stores as the agent's loop does. Calls are
//! counted at the wire.
//!
//! Needs the peers' virtualenv (`scripts/install-peers`) and the static AWS test credentials
//! that `scripts/test` exports.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ramlet::providers::events::{self, Notice};
use ramlet::providers::stores::{Due, Stores};
use ramlet::providers::{Limits, connector};
use ramlet_e2e::peers::{Aws, GCP_PROJECT, Gcp, PubSub};
use ramlet_specs::Catalog;
use tokio::sync::mpsc;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ramlet-events-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    dir
}

/// One store `s` (`store` is its provider block) and a container using `secrets` of it.
fn catalog(dir: &Path, store: &str, secrets: &[&str]) -> Catalog {
    let mut files = String::new();
    for (i, name) in secrets.iter().enumerate() {
        writeln!(
            files,
            "        - {{path: f{i}, secret: {{store: s, name: {name}}}}}"
        )
        .unwrap();
    }
    let text = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: s}}\nspec:\n  refreshInterval: 1h\n{store}---\n\
         apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: c}}\nspec:\n  image: localhost/busybox\n  volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n{files}"
    );
    std::fs::write(dir.join("specs/all.yaml"), text).unwrap();
    let catalog =
        ramlet_specs::load_dir_with(&dir.join("specs"), &ramlet_e2e::peers::loopback_policy())
            .unwrap();
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    catalog
}

/// The stores with real listeners, as the agent runs them, and the notices they send.
struct Listening {
    stores: Stores,
    notices: mpsc::UnboundedReceiver<Notice>,
    catalog: Catalog,
}

impl Listening {
    fn new(catalog: Catalog) -> Self {
        let (tx, notices) = mpsc::unbounded_channel();
        let mut stores = Stores::new(
            connector(std::path::PathBuf::from("/nonexistent")),
            Limits::default(),
        );
        stores.listen_with(
            Arc::new(move |notice| {
                let _ = tx.send(notice);
            }),
            events::spawn,
        );
        Self {
            stores,
            notices,
            catalog,
        }
    }

    async fn refresh(&mut self) {
        let references = self
            .catalog
            .containers
            .values()
            .flat_map(|c| &c.volumes)
            .flat_map(|v| &v.files)
            .flat_map(ramlet_specs::model::VolumeFile::references);
        self.stores
            .refresh(&self.catalog.stores, references, Due::Timers)
            .await;
        self.stores.ack_fetched();
    }

    /// The next notice, given to the stores as the agent does: whether a reconcile follows,
    /// and what it was.
    async fn next(&mut self, within: Duration) -> (bool, String) {
        let notice = tokio::time::timeout(within, self.notices.recv())
            .await
            .unwrap_or_else(|_| panic!("no notice within {within:?}"))
            .unwrap();
        let what = match &notice {
            Notice::Event(event) => format!("event {} {:?}", event.what, event.names),
            Notice::Health { error, .. } => format!("health {error:?}"),
        };
        (self.stores.notice(notice), what)
    }

    /// Skips health notices until an event, which is given to the stores.
    async fn event(&mut self, within: Duration) -> (bool, String) {
        let deadline = Instant::now() + within;
        loop {
            let (reconcile, what) = self
                .next(deadline.saturating_duration_since(Instant::now()))
                .await;
            if what.starts_with("event") {
                return (reconcile, what);
            }
        }
    }

    /// Waits for a health notice with an error; returns it.
    async fn failure(&mut self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let (_, what) = self
                .next(deadline.saturating_duration_since(Instant::now()))
                .await;
            if what.starts_with("health Some") {
                return what;
            }
        }
    }

    fn version(&self, i: usize) -> String {
        let reference = &self.catalog.containers.values().next().unwrap().volumes[0].files[i]
            .secret()
            .unwrap();
        self.stores
            .get(
                &ramlet::secrets::SecretId::of(reference),
                &reference.version,
            )
            .unwrap()
            .version
            .clone()
    }
}

/// The first failure a listener for `store` (using `secret`) reports.
async fn first_failure(name: &str, store: &str, secret: &str) -> String {
    let mut listening = Listening::new(catalog(&scratch(name), store, &[secret]));
    listening.refresh().await;
    listening.failure(Duration::from_secs(30)).await
}

fn aws_credentials() {
    assert!(
        std::env::var_os("AWS_ACCESS_KEY_ID").is_some(),
        "set AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing (scripts/test does)"
    );
}

async fn aws_config(endpoint: String) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// Puts the `PutSecretValue` event of `arn` on `queue`, as the EventBridge rule would.
async fn announce(sqs: &aws_sdk_sqs::Client, queue: &str, arn: &str) {
    sqs.send_message()
        .queue_url(queue)
        .message_body(ramlet_e2e::peers::put_secret_value_event(arn))
        .send()
        .await
        .unwrap();
}

/// Messages in `queue`, visible or held by a receiver.
async fn in_queue(sqs: &aws_sdk_sqs::Client, queue: &str) -> u64 {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attributes = out.attributes.unwrap_or_default();
    [
        aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
        aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|a| {
        attributes
            .get(a)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    })
    .sum()
}

async fn until_empty(sqs: &aws_sdk_sqs::Client, queue: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while in_queue(sqs, queue).await > 0 {
        assert!(Instant::now() < deadline, "{queue} still holds a message");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_events_on_sqs_fetch_just_the_announced_secret_then_are_deleted() {
    aws_credentials();
    let dir = scratch("aws");
    let aws = Aws::start(&dir);
    let mut events_proxy = aws.events_proxy(&dir);
    let moto = format!("http://127.0.0.1:{}", aws.moto.port);
    let secrets = aws_sdk_secretsmanager::Client::new(&aws_config(moto.clone()).await);
    let sqs = aws_sdk_sqs::Client::new(&aws_config(moto).await);
    let mut arns = HashMap::new();
    for name in ["app/db", "app/other", "not/used"] {
        let out = secrets
            .create_secret()
            .name(name)
            .secret_string("one")
            .send()
            .await
            .unwrap();
        arns.insert(name, out.arn.unwrap());
    }
    let created = sqs
        .create_queue()
        .queue_name("ramlet-events")
        .send()
        .await
        .unwrap();
    let moto_queue = created.queue_url.unwrap();
    let path = moto_queue
        .split_once("://")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1;
    let queue = format!("http://127.0.0.1:{}/{path}", events_proxy.port);
    let store = format!(
        "  aws:\n    region: eu-west-1\n    endpoint: \"{}\"\n    events: {{queue: \"{queue}\", fallbackInterval: 10s}}\n",
        aws.endpoint()
    );
    let mut listening = Listening::new(catalog(&dir, &store, &["app/db", "app/other"]));
    listening.refresh().await;
    let first = listening.version(0);

    // A new version and its event: the event names the secret by ARN; one fetch, of it only.
    secrets
        .put_secret_value()
        .secret_id("app/db")
        .secret_string("two")
        .send()
        .await
        .unwrap();
    aws.proxy.clear_calls();
    announce(&sqs, &moto_queue, &arns["app/db"]).await;
    let (reconcile, what) = listening.event(Duration::from_secs(30)).await;
    assert!(reconcile, "{what}");
    assert!(what.contains("app/db"), "{what}");
    listening.refresh().await;
    assert_ne!(listening.version(0), first, "the new version was fetched");
    let calls = aws.proxy.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.ends_with("DescribeSecret"))
            .count(),
        1,
        "one describe, of app/db only: {calls:?}"
    );
    until_empty(&sqs, &moto_queue).await;
    assert!(events_proxy.count("DeleteMessage") >= 1);

    // An event for a secret no spec here uses: deleted, nothing fetched.
    aws.proxy.clear_calls();
    announce(&sqs, &moto_queue, &arns["not/used"]).await;
    let (reconcile, what) = listening.event(Duration::from_secs(30)).await;
    assert!(!reconcile, "{what}");
    listening.refresh().await;
    until_empty(&sqs, &moto_queue).await;
    assert!(aws.proxy.calls().is_empty(), "{:?}", aws.proxy.calls());
    let status = &listening.stores.status()["s"];
    let events = status.events.as_ref().unwrap();
    assert_eq!(
        (events.fetched, events.unused, events.listening),
        (1, 1, true)
    );

    // A queue that does not exist: the listener says so, with what to check.
    let wrong = store.replace("ramlet-events", "missing-queue");
    let failure = first_failure("aws-missing", &wrong, "app/db").await;
    assert!(failure.contains("missing-queue"), "{failure}");
    assert!(failure.contains("check aws.events.queue"), "{failure}");
    println!("SQS queue missing: status says {failure}");

    // A hung endpoint: the long poll's answer never comes; the listener says so.
    events_proxy.freeze(true);
    let failure = listening.failure(Duration::from_mins(1)).await;
    assert!(failure.contains("no answer"), "{failure}");
    events_proxy.freeze(false);

    // The queue goes away: the listener says why, the store polls at its fallback interval.
    events_proxy.stop();
    let failure = listening.failure(Duration::from_secs(40)).await;
    assert!(failure.contains("ramlet-events"), "{failure}");
    let status = &listening.stores.status()["s"];
    let events = status.events.as_ref().unwrap();
    assert!(!events.listening);
    assert!(!events.error.is_empty());
    assert!(status.next_refresh_secs <= 11, "{status:?}");
    println!("SQS listener down: status says {:?}", events.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_events_on_pubsub_fetch_just_the_announced_secret_then_are_acknowledged() {
    let dir = scratch("gcp");
    let gcp = Gcp::start(&dir);
    let (project, number) = GCP_PROJECT;
    let subscription = format!("projects/{project}/subscriptions/ramlet");
    let topic = format!("projects/{project}/topics/secret-events");
    let mut pubsub = PubSub::start(&dir, &[(&subscription, &topic)]);
    for id in ["tls-key", "tls-cert", "unused-key"] {
        gcp.create(id);
        gcp.add_version(id, b"one");
    }
    let store = format!(
        "  gcp:\n    project: {project}\n    endpoint: \"{}\"\n    events: {{subscription: \"{subscription}\", endpoint: \"{}\", fallbackInterval: 10s}}\n",
        gcp.endpoint(),
        pubsub.endpoint()
    );
    let mut listening = Listening::new(catalog(&dir, &store, &["tls-key", "tls-cert"]));
    listening.refresh().await;
    assert_eq!(listening.version(0), "1");
    let publisher = google_cloud_pubsub::client::Publisher::builder(topic.clone())
        .with_endpoint(pubsub.endpoint())
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        .build()
        .await
        .unwrap();
    // What Secret Manager publishes for a new version (attributes; the data is the resource).
    let announce = |id: &str, n: u64| {
        let attributes = [
            ("eventType", "SECRET_VERSION_ADD".to_owned()),
            ("secretId", format!("projects/{number}/secrets/{id}")),
            (
                "versionId",
                format!("projects/{number}/secrets/{id}/versions/{n}"),
            ),
            ("dataFormat", "JSON_API_V1".to_owned()),
        ];
        google_cloud_pubsub::model::Message::new()
            .set_data(format!(
                r#"{{"name": "projects/{number}/secrets/{id}/versions/{n}", "state": "ENABLED"}}"#
            ))
            .set_attributes(attributes.map(|(k, v)| (k.to_owned(), v)))
    };

    // A burst of three messages for one new version: one fetch, of that secret only.
    let n = gcp.add_version("tls-key", b"two");
    gcp.fake.clear_calls();
    for _ in 0..3 {
        publisher.publish(announce("tls-key", n)).await.unwrap();
    }
    let (reconcile, what) = listening.event(Duration::from_secs(30)).await;
    assert!(reconcile, "{what}");
    assert!(what.contains("tls-key"), "{what}");
    // The rest of the burst, before the reconcile, as the agent's debounce collects it.
    for _ in 0..2 {
        listening.event(Duration::from_secs(10)).await;
    }
    listening.refresh().await;
    assert_eq!(listening.version(0), n.to_string());
    let calls = gcp.fake.calls();
    assert_eq!(calls.len(), 1, "one access, of tls-key: {calls:?}");
    assert!(calls[0].contains("tls-key"), "{calls:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pubsub.fake.count("Acknowledge") == 0 {
        assert!(Instant::now() < deadline, "{:?}", pubsub.fake.calls());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A message for a secret no spec here uses: acknowledged, nothing fetched.
    gcp.fake.clear_calls();
    publisher.publish(announce("unused-key", 2)).await.unwrap();
    let (reconcile, what) = listening.event(Duration::from_secs(30)).await;
    assert!(!reconcile, "{what}");
    listening.refresh().await;
    assert!(gcp.fake.calls().is_empty(), "{:?}", gcp.fake.calls());
    let events = listening.stores.status()["s"].events.clone().unwrap();
    assert_eq!(
        (events.fetched, events.unused, events.listening),
        (3, 1, true)
    );

    // A subscription that does not exist: the listener says so (the stream's NOT_FOUND).
    let wrong = store.replace("subscriptions/ramlet", "subscriptions/missing");
    let failure = first_failure("gcp-missing", &wrong, "tls-key").await;
    assert!(failure.contains("subscriptions/missing"), "{failure}");
    assert!(failure.contains("not found"), "{failure}");
    println!("Pub/Sub subscription missing: status says {failure}");

    // The Pub/Sub peer goes away: the listener says why, the store polls at its fallback.
    pubsub.fake.stop();
    let failure = listening.failure(Duration::from_secs(30)).await;
    assert!(failure.contains(&subscription), "{failure}");
    let status = &listening.stores.status()["s"];
    assert!(status.next_refresh_secs <= 11, "{status:?}");
    println!(
        "Pub/Sub listener down: status says {:?}",
        status.events.as_ref().unwrap().error
    );
}
