#!/usr/bin/env bash
# One-time host preparation for the e2e sandbox (idempotent, root): Podman and its helpers from
# Debian 12, the Quadlet 5.4.2 generator, the unprivileged test user with subordinate ID ranges,
# and the offline images, for that user (rootless) and for root: busybox, and busybox with
# Debian's psql (a client that logs in to the tests' PostgreSQL with leased credentials).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"
user=${RAMLET_E2E_USER:-ramlet-e2e}

need_debs podman uidmap slirp4netns crun runc busybox-static dbus-user-session systemd postgresql
"$here/../../scripts/install-quadlet"

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
# (mktemp made it 0700: the image's / would keep a container's other users out.)
chmod 0755 "$rootfs"
cp /bin/busybox "$rootfs/bin/busybox"
for tool in sh cat ls sleep echo printf stat readlink grep head tail id env true false test kill; do
    ln -sf busybox "$rootfs/bin/$tool"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$rootfs/etc/passwd"
echo "root:x:0:" > "$rootfs/etc/group"
tar -C "$rootfs" -cf "$rootfs.tar" .
chmod 0644 "$rootfs.tar"
# The image's revision, as a label: an image from an older revision is imported again (2: its
# root is 0755, so a container running as another user than root can start).
revision=2
image_revision='{{index .Labels "ramlet.e2e.revision"}}'
if [ "$(podman image inspect --format "$image_revision" localhost/busybox:latest 2>/dev/null)" != $revision ]; then
    quietly podman import --change "LABEL=ramlet.e2e.revision=$revision" "$rootfs.tar" localhost/busybox:latest
fi
# A rootless pause process killed with an earlier sandbox (a benchmark's hundreds of containers
# among it) leaves Podman refusing every command ("invalid internal status"): reset it first.
runuser -u "$user" -- sh -c 'cd /tmp && podman system migrate' >/dev/null 2>&1 || true
if [ "$(runuser -u "$user" -- sh -c "cd /tmp && podman image inspect --format '$image_revision' localhost/busybox:latest" 2>/dev/null)" != $revision ]; then
    quietly runuser -u "$user" -- sh -c "cd /tmp && podman import --change LABEL=ramlet.e2e.revision=$revision '$rootfs.tar' localhost/busybox:latest"
fi
rm -f "$rootfs.tar"
# localhost/psql: the same with psql and the libraries it links (as ldd lists them).
psql=$(find /usr/lib/postgresql -path '*/bin/psql' | sort -V | tail -1)
mkdir -p "$rootfs/usr/bin"
cp "$psql" "$rootfs/usr/bin/psql"
for lib in $(ldd "$psql" | grep -o '/[^ ]*'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done
tar -C "$rootfs" -cf "$rootfs.tar" .
chmod 0644 "$rootfs.tar"
if [ "$(podman image inspect --format "$image_revision" localhost/psql:latest 2>/dev/null)" != $revision ]; then
    quietly podman import --change "LABEL=ramlet.e2e.revision=$revision" "$rootfs.tar" localhost/psql:latest
fi
if [ "$(runuser -u "$user" -- sh -c "cd /tmp && podman image inspect --format '$image_revision' localhost/psql:latest" 2>/dev/null)" != $revision ]; then
    quietly runuser -u "$user" -- sh -c "cd /tmp && podman import --change LABEL=ramlet.e2e.revision=$revision '$rootfs.tar' localhost/psql:latest"
fi
rm -f "$rootfs.tar"
# A second tag, so tests can change a spec's image.
podman tag localhost/busybox:latest localhost/busybox:v2
runuser -u "$user" -- sh -c 'cd /tmp && podman tag localhost/busybox:latest localhost/busybox:v2'
# A pause process left by an earlier rootless podman would hide the sandbox's mounts; a failure
# here only means there was none.
runuser -u "$user" -- sh -c 'cd /tmp && podman system migrate' >/dev/null 2>&1 || true
echo "e2e host ready: user $user (uid $uid)"
