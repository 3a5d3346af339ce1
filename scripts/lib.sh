# shellcheck shell=bash
# Sourced by every script under scripts/ and e2e/sandbox/: strict mode that never fails silently,
# and the few helpers that install things. Not a command of its own.
#
#   . "$(dirname "$0")/lib.sh"
#
# - Strict mode (`set -Eeuo pipefail`) with an ERR trap: a command that fails names itself, its
#   script and its line before the script exits, so no script ever ends with a bare exit 1.
# - `quietly CMD...`: runs CMD with its output in a log; on failure prints the log's last lines.
#   Use it instead of `>/dev/null`, which throws away the one line that says what went wrong.
# - `need_debs PKG...`: installs the Debian packages that are missing (root), from the host's own
#   apt sources, with one `apt-get update` per run of scripts/test.
set -Eeuo pipefail

ramlet_script=${0##*/}

ramlet_on_error() { # status line command
    printf '%s: line %s: `%s` failed (exit %s)\n' "$ramlet_script" "$2" "$3" "$1" >&2
}
trap 'ramlet_on_error $? $LINENO "$BASH_COMMAND"' ERR

# Says what failed and stops, for the failures a script detects itself.
die() {
    printf '%s: %s\n' "$ramlet_script" "$*" >&2
    exit 1
}

quietly() {
    local log status=0
    log=$(mktemp /tmp/ramlet-log.XXXXXX)
    "$@" > "$log" 2>&1 || status=$?
    if [ "$status" != 0 ]; then
        printf '%s: `%s` failed (exit %s); its last lines:\n' "$ramlet_script" "$*" "$status" >&2
        tail -n 40 "$log" | sed 's/^/    /' >&2
    fi
    rm -f "$log"
    return "$status"
}

# Whether a Debian package is installed (not merely known, or removed with its config left).
deb_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

need_debs() {
    local missing=() package
    for package in "$@"; do
        deb_installed "$package" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]}; run 'sudo apt-get install ${missing[*]}' once"
    if [ "${RAMLET_APT_UPDATED:-}" != 1 ]; then
        quietly apt-get update
        export RAMLET_APT_UPDATED=1
    fi
    quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    # Installing one may remove another that was asked for: a newer backport it conflicts with
    # (a machine with bookworm-backports' qemu-utils loses it to bookworm's qemu-system-x86).
    # Those are installed again, in the version that fits.
    missing=()
    for package in "$@"; do
        deb_installed "$package" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] || quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}
