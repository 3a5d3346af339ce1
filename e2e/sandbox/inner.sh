#!/usr/bin/env bash
# The inside of sandbox.sh: runs in a private mount and cgroup namespace.
. "$(dirname "$0")/../../scripts/lib.sh"
user=$RAMLET_E2E_USER
uid=$RAMLET_E2E_UID
run_id=$RAMLET_E2E_RUN_ID

# A pure cgroup v2 view (the host's v1 paths break `podman --cgroups=split`), and shared
# propagation so mounts made later reach rootless Podman's own mount namespace.
umount -R /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup
mount --make-rshared /
mkdir -p /run/systemd/system
# Private RAM for everything runtime: nothing the tests write under /run reaches the disk.
mount -t tmpfs -o mode=0755,noswap tmpfs /run/user
mkdir -p /run/ramlet
mount -t tmpfs -o mode=0755,noswap tmpfs /run/ramlet
mkdir -p /run/containers
mount -t tmpfs -o mode=0755 tmpfs /run/containers

# Rootless Podman keeps a pause process that holds its user and mount namespace; one started
# outside this sandbox would hide the sandbox's mounts. Stop it; the next podman starts one here.
stop_rootless_pause() {
    runuser -u "$user" -- sh -c 'cd /tmp && podman system migrate' >/dev/null 2>&1 || true
}
stop_rootless_pause

pids=()
cgroups=()
start_manager() { # name uid home
    local name=$1 id=$2 home=$3
    local runtime=/run/user/$id
    mkdir -p "$runtime"
    chown "$id:$(id -g "$name")" "$runtime"
    chmod 0700 "$runtime"
    local cg=/sys/fs/cgroup/ramlet-e2e-$run_id.slice/user-$id.slice/user@$id.service
    mkdir -p "$cg"
    chown -R "$id" "$(dirname "$cg")"
    cgroups+=("$(dirname "$cg")")
    # Quadlet 5.4.2 writes --cidfile, which Podman 4.3.1's rm does not delete.
    local config=$runtime/e2e-config
    install -d -o "$id" "$config/systemd/user/service.d"
    printf '[Service]\nExecStopPost=-/bin/rm -f %%t/%%N.cid\n' > "$config/systemd/user/service.d/ramlet-e2e-cid.conf"
    (
        echo "$BASHPID" > "$cg/cgroup.procs"
        exec runuser -u "$name" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$home" USER="$name" \
            XDG_RUNTIME_DIR="$runtime" XDG_CONFIG_HOME="$config" \
            DBUS_SESSION_BUS_ADDRESS="unix:path=$runtime/bus" ${CONTAINERS_CONF:+CONTAINERS_CONF=$CONTAINERS_CONF} \
            /lib/systemd/systemd --user --log-target=console --log-level=warning
    ) > "$runtime/manager.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        [ -S "$runtime/bus" ] && return 0
        sleep 0.1
    done
    echo "inner.sh: the user manager of $name did not start within 10 s; its log:" >&2
    sed 's/^/    /' "$runtime/manager.log" >&2
    return 1
}

teardown() {
    # Teardown keeps going past a failure: nothing here may stop the rest from being cleaned.
    set +e
    trap - ERR
    for id in "$uid" 0; do
        env XDG_RUNTIME_DIR=/run/user/$id DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$id/bus \
            runuser -u "$(id -nu "$id")" -- systemctl --user exit >/dev/null 2>&1
    done
    sleep 1
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for cg in "${cgroups[@]}"; do
        # shellcheck disable=SC2038 # (what xargs reads are PIDs, not file names)
        find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
    done
    sleep 0.5
    for cg in "${cgroups[@]}"; do
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
        rmdir "$(dirname "$cg")" 2>/dev/null
    done
    stop_rootless_pause
    # Whatever the test user still runs (a ramlet a test failed to stop) goes with the sandbox.
    pkill -KILL -u "$uid" 2>/dev/null
    umount -R /run/ramlet /run/user /run/containers 2>/dev/null
}
trap teardown EXIT

home=$(getent passwd "$user" | cut -d: -f6)
start_manager "$user" "$uid" "$home"

# Root's manager runs rootful Podman; it needs settings the CI VM allows: runc (crun cannot set
# rlimits here), no pids limit (no pids controller), and ulimits the VM lets runc set (it has no
# CAP_SYS_RESOURCE; nproc above 32768 is refused even below the hard limit).
conf=/run/ramlet/containers-e2e.conf
nofile=$(ulimit -Hn)
printf '[containers]\npids_limit = 0\ndefault_ulimits = ["nofile=%s:%s", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\n' \
    "$nofile" "$nofile" > "$conf"
CONTAINERS_CONF=$conf start_manager root 0 /root

# The user scope's RAM volume root: a noswap tmpfs the user owns, as the dist mount unit makes.
volumes=/run/ramlet/users/$uid
mkdir -p "$volumes"
mount -t tmpfs -o "mode=0700,uid=$uid,gid=$(id -g "$user"),noswap,size=64m" tmpfs "$volumes"

export RAMLET_E2E_USER_BUS=unix:path=/run/user/$uid/bus
export RAMLET_E2E_USER_RUNTIME=/run/user/$uid
export RAMLET_E2E_USER_VOLUMES=$volumes
export RAMLET_E2E_ROOT_BUS=unix:path=/run/user/0/bus
export RAMLET_E2E_ROOT_RUNTIME=/run/user/0
export RAMLET_E2E_CONTAINERS_CONF=$conf
"$@"
