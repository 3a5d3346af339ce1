//! What reaches the journal: each applied action is one event whose message names the spec,
//! the unit, the action and why, with `spec`, `unit`, `action` and `reason` as fields too, and a
//! store's events carry `store`; with ramlet's prefix these become the journal fields
//! `RAMLET_SPEC=`, `RAMLET_UNIT=`, `RAMLET_ACTION=`, `RAMLET_REASON=` and `RAMLET_STORE=` (the
//! journald layer upper-cases a field's name behind the prefix), so `journalctl -u ramlet RAMLET_SPEC=web` tells
//! one spec's story. (The CI host has no journald; this checks the events themselves.)

mod fakes;

use std::sync::{Arc, Mutex};

use fakes::World;
use ramlet::providers::stores::Due;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::SubscriberExt as _;

/// One event's fields: journal name, value.
type Event = Vec<(String, String)>;

/// Every event's fields, as the journal would name them.
#[derive(Clone, Default)]
struct Fields(Arc<Mutex<Vec<Event>>>);

struct Collect<'a>(&'a mut Vec<(String, String)>);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = if field.name() == "message" {
            "MESSAGE".to_owned()
        } else {
            format!(
                "{}_{}",
                ramlet::cli::JOURNAL_FIELD_PREFIX,
                field.name().to_ascii_uppercase()
            )
        };
        self.0
            .push((name, format!("{value:?}").trim_matches('"').to_owned()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Fields {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = Vec::new();
        event.record(&mut Collect(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
}

#[tokio::test]
async fn each_action_and_store_event_carries_its_journal_fields() {
    let fields = Fields::default();
    let subscriber = tracing_subscriber::registry().with(fields.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let world = World::new("journal");
    world.container("web", "x", "restart");
    world.secret("x", Ok("one"));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    world.secret("x", Ok("two"));
    reconciler.reconcile(Due::All).await;

    let events = fields.0.lock().unwrap().clone();
    let has = |wanted: &[(&str, &str)]| {
        events.iter().any(|event| {
            wanted
                .iter()
                .all(|(k, v)| event.iter().any(|(name, value)| name == k && value == v))
        })
    };
    // MESSAGE says it all for a person reading `journalctl -u ramlet`; the fields stay.
    for (action, message, reason) in [
        (
            "write-unit",
            "web: write-unit web.container (its unit file is new or changed)",
            "its unit file is new or changed",
        ),
        (
            "write-volumes",
            "web: write-volumes (new secret versions)",
            "new secret versions",
        ),
        (
            "start",
            "web: start web.service (its unit file is new or changed)",
            "its unit file is new or changed",
        ),
        (
            "restart",
            "web: restart web.service (its secrets changed)",
            "its secrets changed",
        ),
    ] {
        assert!(
            has(&[
                ("MESSAGE", message),
                ("RAMLET_SPEC", "web"),
                ("RAMLET_UNIT", "web.service"),
                ("RAMLET_ACTION", action),
                ("RAMLET_REASON", reason),
            ]),
            "no {action} event with its message and fields: {events:#?}"
        );
    }
    assert!(
        events.iter().any(|event| event
            .iter()
            .any(|(k, v)| k == "MESSAGE" && v.starts_with("s/x: new secret version "))
            && event.contains(&("RAMLET_STORE".into(), "s".into()))),
        "{events:#?}"
    );
}
