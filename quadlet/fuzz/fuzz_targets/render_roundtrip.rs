//! Any unit model that renders parses back to the same keys and values, with an intact hash;
//! and rendering never panics. Run: `cd quadlet && cargo fuzz run render_roundtrip`.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ramlet_quadlet::file::normalize;
use ramlet_quadlet::{PodmanVersion, UnitFile, parse};

#[derive(Arbitrary, Debug)]
struct Input {
    spec: String,
    description: Option<String>,
    image: String,
    name: Option<String>,
    entrypoint: Option<String>,
    exec: Vec<String>,
    environment: Vec<(String, String)>,
    volumes: Vec<String>,
    ports: Vec<String>,
    user: Option<String>,
    labels: Vec<(String, String)>,
    health_cmd: Option<String>,
    podman_args: Vec<String>,
    exec_reload: Vec<String>,
    extra: Vec<(u8, String)>,
    minor: u8,
}

/// Escape-hatch keys the fuzzer may use, across sections and shapes.
const EXTRA: &[(u8, &str)] = &[(0, "After"), (0, "Documentation"), (1, "Label"), (1, "AddCapability"), (1, "Tmpfs"), (2, "Restart"), (2, "TimeoutStopSec")];

fuzz_target!(|input: Input| {
    let mut unit = UnitFile { spec: input.spec, ..UnitFile::default() };
    unit.unit.description = input.description;
    let c = &mut unit.container;
    c.image = input.image;
    c.container_name = input.name;
    c.entrypoint = input.entrypoint;
    c.exec = input.exec;
    c.environment = input.environment.into_iter().collect();
    c.volumes = input.volumes;
    c.publish_ports = input.ports;
    c.user = input.user;
    c.labels = input.labels.into_iter().collect();
    c.health_cmd = input.health_cmd;
    c.podman_args = input.podman_args;
    unit.service.exec_reload = input.exec_reload;
    for (pick, value) in input.extra {
        let (section, key) = EXTRA[usize::from(pick) % EXTRA.len()];
        let entry = (key.to_owned(), value);
        match section {
            0 => unit.unit.extra.push(entry),
            1 => unit.container.extra.push(entry),
            _ => unit.service.extra.push(entry),
        }
    }
    let target = PodmanVersion::new(5, u16::from(input.minor % 8));
    let Ok(text) = unit.render(target) else { return };
    let parsed = parse(&text).unwrap_or_else(|e| panic!("rendered unit does not parse: {e}\n{text}"));
    assert!(parsed.intact, "hash mismatch:\n{text}");
    assert_eq!(parsed.spec.as_deref(), Some(unit.spec.as_str()));
    let expected: Vec<_> = unit.entries().iter().map(|(s, e)| (*s, normalize(*s, e))).collect();
    assert_eq!(parsed.entries, expected, "\n{text}");
});
