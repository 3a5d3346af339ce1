//! The manual's Troubleshooting chapter has a section for every status reason ramlet can give
//! (`docs/manual/src/troubleshooting.md`): a reason added to the code and not explained there
//! fails here.

#[test]
fn troubleshooting_has_a_section_per_status_reason() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manual = std::fs::read_to_string(root.join("docs/manual/src/troubleshooting.md")).unwrap();
    // Every reason, as `Reason::as_str` spells it: its match is exhaustive, so a new variant is
    // there too.
    let code = std::fs::read_to_string(root.join("agent/src/status.rs")).unwrap();
    let as_str = &code[code.find("pub fn as_str").unwrap()..];
    let as_str = &as_str[..as_str.find("\n    }\n").unwrap()];
    let reasons: Vec<&str> = as_str
        .lines()
        .filter_map(|l| l.split("=> \"").nth(1)?.split('"').next())
        .collect();
    assert!(reasons.len() > 20, "{reasons:?}");
    assert!(reasons.contains(&ramlet::status::Reason::RolledBack.as_str()));
    for reason in reasons {
        assert!(
            manual.lines().any(|l| l == format!("## {reason}")),
            "docs/manual/src/troubleshooting.md has no section `## {reason}`"
        );
    }
}
