//! End-to-end tests for ramlet, against the real peers: the Quadlet generator (Podman 5.4.2's,
//! installed by `scripts/install-quadlet`), a sandboxed systemd user manager and Podman, moto's
//! AWS Secrets Manager, the project's Google Cloud Secret Manager fake, a real OpenBao server and
//! a real PostgreSQL for its database engine. The tests live in `tests/`; this library starts
//! the peers for them ([`peers`], [`openbao`], [`postgres`]).

pub mod openbao;
pub mod peers;
pub mod postgres;

/// The host policy an example under `examples/` needs to load (its `config.yaml.host`: the
/// `policy` of a host config), or the default one.
///
/// # Panics
/// When that file is there but is not a host config with a policy.
#[must_use]
pub fn example_policy(dir: &std::path::Path) -> ramlet_specs::Policy {
    #[derive(serde::Deserialize)]
    struct Config {
        policy: ramlet_specs::Policy,
    }
    std::fs::read_to_string(dir.join("config.yaml.host")).map_or_else(
        |_| ramlet_specs::Policy::default(),
        |text| {
            serde_yaml::from_str::<Config>(&text)
                .expect("config.yaml.host: a host config with a policy")
                .policy
        },
    )
}
