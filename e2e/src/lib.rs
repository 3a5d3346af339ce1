//! End-to-end tests for ramlet, against the real peers: the Quadlet generator (Podman 5.4.2's,
//! installed by `scripts/install-quadlet`), and, as the agent grows, a sandboxed systemd user
//! manager, Podman and the secret-manager peers. The tests live in `tests/`; this library is
//! empty.
