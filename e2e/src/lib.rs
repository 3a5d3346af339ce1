//! End-to-end tests for ramlet, against the real peers: the Quadlet generator (Podman 5.4.2's,
//! installed by `scripts/install-quadlet`), a sandboxed systemd user manager and Podman, moto's
//! AWS Secrets Manager, the project's Google Cloud Secret Manager fake and a real OpenBao server.
//! The tests live in `tests/`; this library starts the secret-manager peers for them ([`peers`],
//! [`openbao`]).

pub mod openbao;
pub mod peers;
