//! What one container should be: its secrets (already refreshed by the stores, once however
//! many files use them) shaped into files, its owners mapped to the scope, its unit rendered.

use std::collections::BTreeSet;

use ramlet_specs::Catalog;
use ramlet_specs::model::{Container, Rotation};

use super::plan::{Desired, OnRotation};
use super::{Reconciler, service};
use crate::drivers::FileContent;
use crate::drivers::{self, VolumeSpec};
use crate::secrets;
use crate::status::{Reason, SecretVersion};
use crate::units;

/// A container's secrets, shaped into files per volume.
struct Fetched {
    volumes: Vec<(VolumeSpec, Vec<FileContent>)>,
    versions: Vec<SecretVersion>,
}

impl Reconciler {
    /// What one container should be: its unit, its changed volumes, its secret versions; or
    /// why it cannot be (reason, message, versions known so far).
    pub(super) async fn desire(
        &self,
        container: &Container,
        catalog: &Catalog,
        foreign: &BTreeSet<String>,
        ours: &BTreeSet<String>,
    ) -> Result<
        (
            Desired,
            Vec<(VolumeSpec, Vec<FileContent>)>,
            Vec<SecretVersion>,
        ),
        (Reason, String, Vec<SecretVersion>),
    > {
        let name = container.name.to_string();
        if !ours.contains(&name) {
            // A new spec: its unit name must be free on the whole host, not only in our folder.
            // A unit name systemd could not be asked about is not known to be free: the spec
            // waits rather than risk shadowing a vendor unit.
            let load = self
                .units
                .load_state(&service(&name))
                .await
                .map_err(|error| {
                    let message = format!(
                        "cannot tell whether {name}.service is free on this host ({error}); the spec waits until systemd answers"
                    );
                    (Reason::SystemdUnavailable, message, Vec::new())
                })?;
            if load != "not-found" {
                let message = format!(
                    "{name}.service already exists on this host (LoadState={load}) and is not ramlet's; rename the spec"
                );
                return Err((Reason::UnitNameTaken, message, Vec::new()));
            }
        }
        if foreign.contains(&name) {
            let message = format!(
                "{}/{name}.container exists and is not ramlet's; rename the spec",
                self.unit_dir.path().display()
            );
            return Err((Reason::UnitNameTaken, message, Vec::new()));
        }
        let fetched = self
            .fetch(container, catalog)
            .map_err(|(reason, message)| (reason, message, Vec::new()))?;
        let text = match self.render(container) {
            Ok(text) => text,
            Err(error) => return Err((Reason::RenderFailed, error, fetched.versions)),
        };
        let mut remount = false;
        let changed: Vec<(VolumeSpec, Vec<FileContent>)> = fetched
            .volumes
            .into_iter()
            .filter(|(spec, files)| {
                let new_mount = self.volumes.mount_differs(spec);
                remount |= new_mount;
                new_mount || self.volumes.differs(spec, files).unwrap_or(true)
            })
            .collect();
        let on_rotation = match container.rotation {
            Rotation::Restart => OnRotation::Restart,
            Rotation::Reload { .. } => OnRotation::Reload,
            Rotation::None => OnRotation::Nothing,
        };
        let want = Desired {
            name,
            unit_text: text,
            volumes_changed: !changed.is_empty(),
            remount,
            on_rotation,
        };
        Ok((want, changed, fetched.versions))
    }

    /// `container`'s unit file: rendered again only when the spec changed since the last time
    /// (layout and Podman target are fixed for the reconciler's life).
    fn render(&self, container: &Container) -> Result<String, String> {
        let name = container.name.as_str();
        if let Ok(rendered) = self.rendered.lock()
            && let Some((known, text)) = rendered.get(name)
            && known == container
        {
            return Ok(text.clone());
        }
        let target = self.settings.target;
        let text = units::unit(container, &self.settings.layout, target)
            .render(target)
            .map_err(|e| e.to_string())?;
        if let Ok(mut rendered) = self.rendered.lock() {
            rendered.insert(name.to_owned(), (container.clone(), text.clone()));
        }
        Ok(text)
    }

    /// Shapes every secret of `container` from the stores' last good values; the first
    /// problem is the error (status reason, message).
    fn fetch(&self, container: &Container, catalog: &Catalog) -> Result<Fetched, (Reason, String)> {
        let unavailable = |message: String| (Reason::SecretUnavailable, message);
        let mut fetched = Fetched {
            volumes: Vec::new(),
            versions: Vec::new(),
        };
        for volume in &container.volumes {
            let mut files = Vec::new();
            for file in &volume.files {
                let reference = &file.secret;
                if !catalog.stores.contains_key(&reference.store) {
                    return Err(unavailable(format!("store {} is gone", reference.store)));
                }
                let secret = self.stores.get(reference).map_err(|e| {
                    (
                        e.kind().into(),
                        format!(
                            "{} (store {}, {}): {e}",
                            file.path,
                            reference.store,
                            e.kind().as_str()
                        ),
                    )
                })?;
                let bytes = secrets::shape(&secret.bytes, reference)
                    .map_err(|e| unavailable(format!("{}: {e}", file.path)))?;
                fetched.versions.push(SecretVersion {
                    store: reference.store.to_string(),
                    name: reference.name.clone(),
                    version: secret.version.clone(),
                });
                let (uid, gid) = self
                    .owner(container, file.uid, file.gid)
                    .map_err(|e| unavailable(format!("{}: {e}", file.path)))?;
                files.push(FileContent {
                    path: file.path.clone(),
                    mode: file.mode,
                    uid,
                    gid,
                    bytes,
                });
            }
            let spec = VolumeSpec {
                spec: container.name.to_string(),
                volume: volume.name.to_string(),
                medium: volume.medium,
                size: volume.size_limit,
            };
            let footprint = drivers::footprint(&files);
            if footprint > volume.size_limit {
                return Err(unavailable(format!(
                    "volume {}: its secrets take {footprint} bytes as tmpfs counts them ({} bytes per file at least), more than sizeLimit {}",
                    volume.name,
                    drivers::PAGE,
                    volume.size_limit
                )));
            }
            fetched.volumes.push((spec, files));
        }
        fetched.versions.dedup();
        Ok(fetched)
    }

    /// The owner for a file owned by `uid:gid` in `container` (see [`FileContent`]'s `uid`).
    /// In user scope ramlet gives owners through rootless Podman's default ID mapping, so a
    /// container that sets its own (escape-hatch `UserNS=`, `UIDMap=`, ...) can have only root's.
    fn owner(
        &self,
        container: &Container,
        uid: u32,
        gid: u32,
    ) -> Result<(Option<u32>, Option<u32>), String> {
        const MAPPINGS: [&str; 5] = ["UserNS", "UIDMap", "GIDMap", "SubUIDMap", "SubGIDMap"];
        if self.settings.layout.scope == crate::layout::Scope::User && (uid, gid) != (0, 0) {
            let own = container
                .quadlet
                .get("Container")
                .and_then(|keys| MAPPINGS.iter().find(|key| keys.contains_key(**key)));
            if let Some(key) = own {
                return Err(format!(
                    "owner {uid}:{gid}: the container sets its own ID mapping ([Container] {key}=), and in user scope ramlet gives owners only through rootless Podman's default one; use 0:0 or drop {key}="
                ));
            }
        }
        self.volumes.owner(uid, gid)
    }
}
