//! The status file in the shape Kubernetes tooling reads: each spec and store has `conditions`
//! (`type`, `status`, `reason`, `message`, `lastTransitionTime`, `observedGeneration`, with
//! `metav1.Condition`'s types and rules), a transition time that survives an agent restart and
//! moves only with the status, and a generation that counts the spec's edits.

mod fakes;

use fakes::World;
use ramlet::providers::ProviderError;
use ramlet::providers::stores::Due;

/// Checks one `conditions` array against `metav1.Condition`: exactly its six fields with their
/// types, `status` one of three words, `reason` CamelCase, the time RFC 3339 in UTC; and the
/// three types ramlet gives, once each.
fn assert_condition_shape(conditions: &serde_json::Value, what: &str) {
    let list = conditions
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {conditions}"));
    let kinds: Vec<&str> = list.iter().filter_map(|c| c["type"].as_str()).collect();
    assert_eq!(kinds, ["Ready", "Progressing", "Degraded"], "{what}");
    for c in list {
        let object = c.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "lastTransitionTime",
                "message",
                "observedGeneration",
                "reason",
                "status",
                "type"
            ],
            "{what}: {c}"
        );
        assert!(
            ["True", "False", "Unknown"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        let reason = c["reason"].as_str().unwrap();
        assert!(
            !reason.is_empty()
                && reason.chars().next().unwrap().is_ascii_alphabetic()
                && reason.chars().all(|ch| ch.is_ascii_alphanumeric()),
            "{what}: reason {reason:?} is not CamelCase"
        );
        assert!(c["message"].is_string(), "{c}");
        assert!(c["observedGeneration"].is_u64(), "{c}");
        let time = c["lastTransitionTime"].as_str().unwrap();
        assert!(
            time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{what}: {time:?} is not RFC 3339 UTC"
        );
    }
    assert_eq!(
        list.iter().filter(|c| c["status"] == "True").count(),
        1,
        "{what}: one condition is true"
    );
}

fn status_json(world: &World) -> serde_json::Value {
    let text = std::fs::read_to_string(world.dir.join("state/status.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn specs_and_stores_have_conditions_in_the_kubernetes_shape() {
    let world = World::new("conditions");
    world.container("web", "x", "restart");
    world.container("broken", "missing", "restart");
    world.secret("x", Ok("one"));
    world.secret("missing", Err(ProviderError::not_found("missing")));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    let status = status_json(&world);
    assert_condition_shape(&status["specs"]["web"]["conditions"], "web");
    assert_condition_shape(&status["specs"]["broken"]["conditions"], "broken");
    assert_condition_shape(&status["stores"]["s"]["conditions"], "store s");
    let web = &status["specs"]["web"];
    assert_eq!(web["conditions"][0]["status"], "True", "{web}");
    assert_eq!(web["observedGeneration"], 1);
    let broken = &status["specs"]["broken"]["conditions"][2];
    assert_eq!(broken["type"], "Degraded");
    assert_eq!(broken["status"], "True");
    assert_eq!(broken["reason"], "SecretNotFound");
    // The one line `systemctl status ramlet` shows.
    assert_eq!(
        reconciler.status().summary(),
        "1 of 2 specs ready, 1 failed, 1 stores failing"
    );
    let store = &status["stores"]["s"]["conditions"][2];
    assert_eq!(
        (&store["status"], &store["reason"]),
        (&"True".into(), &"NotFound".into())
    );
}

#[tokio::test]
async fn a_transition_time_survives_a_restart_and_the_generation_counts_edits() {
    let world = World::new("transitions");
    world.container("web", "x", "restart");
    world.secret("x", Ok("one"));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    let first = status_json(&world)["specs"]["web"].clone();
    let since = first["conditions"][0]["lastTransitionTime"].clone();
    // The status timestamps have a resolution of one second.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    // A new agent (a restart): nothing changed, the transition time stays.
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    let again = status_json(&world)["specs"]["web"].clone();
    assert_ne!(again["lastReconcile"], first["lastReconcile"]);
    assert_eq!(again["conditions"][0]["lastTransitionTime"], since);
    assert_eq!(again["observedGeneration"], 1);

    // An edit of the spec: generation 2; still Ready, so still the same transition time.
    world.container("web", "x", "reload");
    reconciler.reconcile(Due::All).await;
    let edited = status_json(&world)["specs"]["web"].clone();
    assert_eq!(edited["observedGeneration"], 2);
    assert_eq!(edited["conditions"][0]["observedGeneration"], 2);
    assert_eq!(edited["conditions"][0]["lastTransitionTime"], since);

    // The secret goes missing: Ready turns False, at a new time.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    world.secret("x", Err(ProviderError::not_found("x")));
    reconciler.reconcile(Due::All).await;
    let degraded = status_json(&world)["specs"]["web"].clone();
    assert_eq!(degraded["conditions"][0]["status"], "False");
    assert_ne!(degraded["conditions"][0]["lastTransitionTime"], since);
    assert_eq!(degraded["conditions"][2]["status"], "True");
    assert_eq!(degraded["observedGeneration"], 2);
}
