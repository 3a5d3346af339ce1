#!/usr/bin/env bash
# Runs a command inside a sandbox with real systemd user managers: one for the unprivileged test
# user (user scope, rootless Podman) and one for root (system scope, rootful Podman), in a private
# mount and cgroup namespace (inner.sh says how, step by step). Never boots systemd as PID 1.
# Root only.
#
#   e2e/sandbox/sandbox.sh COMMAND [ARGS...]
#
# Inside, COMMAND sees:
#   RAMLET_E2E_USER, RAMLET_E2E_UID          the test user
#   RAMLET_E2E_USER_BUS                      the test user's session bus (unix:path=...)
#   RAMLET_E2E_USER_RUNTIME                  its XDG_RUNTIME_DIR
#   RAMLET_E2E_USER_VOLUMES                  a noswap tmpfs it owns, for its RAM volumes
#   RAMLET_E2E_ROOT_BUS, RAMLET_E2E_ROOT_RUNTIME   root's user manager, standing in for the
#                                            system manager (system scope)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"
[ "$(id -u)" = 0 ] || die "the sandbox needs root (it makes mount and cgroup namespaces); try: sudo $0 $*"
[ $# -gt 0 ] || { echo "usage: sandbox.sh COMMAND [ARGS...]" >&2; exit 64; }
quietly "$here/setup-host.sh"

export RAMLET_E2E_USER=${RAMLET_E2E_USER:-ramlet-e2e}
RAMLET_E2E_UID=$(id -u "$RAMLET_E2E_USER")
export RAMLET_E2E_UID
export RAMLET_E2E_RUN_ID="r$$"
exec unshare --mount --cgroup --propagation private "$here/inner.sh" "$@"
