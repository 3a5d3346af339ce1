#!/usr/bin/env bash
# One-time host preparation for the e2e sandbox (idempotent, root): Podman and its helpers from
# Debian 12, the Quadlet 5.4.2 generator, the unprivileged test user with subordinate ID ranges,
# and the offline busybox image, for that user (rootless) and for root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
user=${RAMLET_E2E_USER:-ramlet-e2e}

need=()
for pkg in podman uidmap slirp4netns crun runc busybox-static dbus-user-session systemd; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
"$here/../../scripts/install-quadlet" >/dev/null

if ! id "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$user"
fi
uid=$(id -u "$user")
grep -q "^$user:" /etc/subuid || echo "$user:200000:65536" >> /etc/subuid
grep -q "^$user:" /etc/subgid || echo "$user:200000:65536" >> /etc/subgid

# The busybox image, built offline from Debian's busybox-static.
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/run"
cp /bin/busybox "$rootfs/bin/busybox"
for tool in sh cat ls sleep echo printf stat readlink grep head tail id env true false test kill; do
    ln -sf busybox "$rootfs/bin/$tool"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$rootfs/etc/passwd"
echo "root:x:0:" > "$rootfs/etc/group"
tar -C "$rootfs" -cf "$rootfs.tar" .
chmod 0644 "$rootfs.tar"
if ! podman image exists localhost/busybox:latest; then
    podman import --quiet "$rootfs.tar" localhost/busybox:latest >/dev/null
fi
if ! runuser -u "$user" -- sh -c 'cd /tmp && podman image exists localhost/busybox:latest'; then
    runuser -u "$user" -- sh -c "cd /tmp && podman import --quiet '$rootfs.tar' localhost/busybox:latest" >/dev/null
fi
rm -f "$rootfs.tar"
# A second tag, so tests can change a spec's image.
podman tag localhost/busybox:latest localhost/busybox:v2
runuser -u "$user" -- sh -c 'cd /tmp && podman tag localhost/busybox:latest localhost/busybox:v2'
runuser -u "$user" -- sh -c 'cd /tmp && podman system migrate' >/dev/null 2>&1 || true
echo "e2e host ready: user $user (uid $uid)"
