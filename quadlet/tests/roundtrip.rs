//! What the renderer writes, the parser reads back to the same keys and values, for values full
//! of characters systemd and Quadlet would otherwise change. (The fuzz target in `fuzz/` checks
//! the same property on arbitrary models.)

use ramlet_quadlet::file::normalize;
use ramlet_quadlet::{Error, PodmanVersion, UnitFile, parse};

fn hostile() -> UnitFile {
    let mut unit = UnitFile {
        spec: "hostile".into(),
        ..UnitFile::default()
    };
    unit.unit.description = Some(r#"100% "quoted" $HOME \ ☃"#.into());
    unit.unit
        .extra
        .push(("After".into(), "network-online.target".into()));
    let c = &mut unit.container;
    c.image = "localhost/busybox:latest".into();
    c.container_name = Some("ramlet-hostile".into());
    c.exec = [
        "sh",
        "-c",
        r#"echo "$HOME" 100% ${X} \n; # x"#,
        "it's",
        r"back\slash",
        "trail\\",
        " sp ",
        "☃",
        "%%",
        "\"q\"",
    ]
    .map(String::from)
    .to_vec();
    c.environment.insert("A".into(), r#"x "y" $z %w \v"#.into());
    c.environment.insert("EMPTY".into(), String::new());
    c.volumes
        .push("/run/ramlet/volumes/h/s:/run/s%$:Z,ro".into());
    c.labels.insert("k".into(), "v w".into());
    c.health_cmd = Some(r#"sh -c 'exit 0' && echo "ok" 100%"#.into());
    c.stop_timeout = Some(10);
    c.extra.push(("Label".into(), "from=hatch".into()));
    unit.service.exec_reload = [
        "/usr/bin/podman",
        "kill",
        "--signal",
        "SIGHUP",
        "ramlet-hostile",
    ]
    .map(String::from)
    .to_vec();
    unit.service.extra.push(("Restart".into(), "always".into()));
    unit.install.wanted_by.push("default.target".into());
    unit
}

#[test]
fn hostile_values_read_back_exactly() {
    let unit = hostile();
    let text = unit.render(PodmanVersion::V5_4).unwrap();
    let parsed = parse(&text).unwrap();
    assert_eq!(parsed.spec.as_deref(), Some("hostile"));
    assert!(parsed.intact);
    let expected: Vec<_> = unit
        .entries()
        .iter()
        .map(|(s, e)| (*s, normalize(*s, e)))
        .collect();
    assert_eq!(parsed.entries, expected);
}

#[test]
fn rendering_is_deterministic() {
    let unit = hostile();
    assert_eq!(
        unit.render(PodmanVersion::V5_4).unwrap(),
        unit.render(PodmanVersion::V5_4).unwrap()
    );
}

#[test]
fn injection_cannot_be_rendered() {
    for evil in ["x\nExecStartPre=/bin/sh -c id", "x\r\nUser=root", "x\0y"] {
        let mut unit = hostile();
        unit.container.image = evil.into();
        assert!(
            matches!(
                unit.render(PodmanVersion::V5_4),
                Err(Error::Unrepresentable { .. })
            ),
            "{evil:?}"
        );
        let mut unit = hostile();
        unit.container.exec.push(evil.into());
        assert!(
            matches!(
                unit.render(PodmanVersion::V5_4),
                Err(Error::Unrepresentable { .. })
            ),
            "{evil:?}"
        );
        let mut unit = hostile();
        unit.spec = evil.into();
        assert!(unit.render(PodmanVersion::V5_4).is_err(), "{evil:?}");
    }
}

#[test]
fn older_targets_refuse_newer_keys() {
    let unit = hostile();
    let err = unit.render(PodmanVersion::new(4, 9)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "[Container] StopTimeout= needs Podman 5.0.0; this host's Podman is 4.9.0"
    );
    assert_eq!(
        unit.render(PodmanVersion::new(4, 3)).unwrap_err().kind(),
        "no-quadlet"
    );
}
