//! The facts of one selected spec: whether its unit name can be ramlet's, and what it wants
//! on the host: its secrets (already refreshed by the stores, once however many files use
//! them) shaped into files, its owners mapped to the scope, its unit rendered, and whether its
//! volumes and unit differ from what it asks. Gathered by [`super::observe`]; judged by
//! [`super::decide`].

use ramlet_specs::Catalog;
use ramlet_specs::model::{Container, Content, Rotation, SecretRef, Template};

use super::facts::{Feed, Gate, NameCheck, Problem, SpecFacts, Wants};
use super::plan::OnRotation;
use super::settled::Settled;
use super::{Reconciler, service};
use crate::drivers::{self, FileContent, Listing, VolumeSpec};
use crate::secrets::template::{self, Renderings};
use crate::secrets::{self, SecretBytes, SecretId};
use crate::status::{Reason, SecretInUse};
use crate::units;

/// A container's secrets, shaped into files per volume.
struct Shaped {
    volumes: Vec<(VolumeSpec, Vec<FileContent>)>,
    versions: Vec<SecretInUse>,
}

/// Each spec's unit file as last rendered, with the spec it came from and that spec's digest
/// (kept in [`super::memory::Memory`]).
pub(super) type Renders = std::collections::BTreeMap<String, Render>;

/// One spec's last render.
pub(super) struct Render {
    /// The spec, as validated.
    spec: Container,
    /// Its unit file.
    unit: String,
    /// Its [`digest`].
    digest: String,
}

/// The volumes of a spec whose content changes, with their files.
pub(super) type Changed = Vec<(VolumeSpec, Vec<FileContent>)>;

/// The secret bytes observe hands to the apply, beside the facts.
#[derive(Default)]
pub(super) struct Payload {
    /// Per spec, the volumes whose content changes, with their files.
    pub changed: std::collections::BTreeMap<String, Changed>,
    /// Per health-checked spec, all its volumes as it asks for them now (what the plan may
    /// hold as its previous files).
    pub full: std::collections::BTreeMap<String, Changed>,
}

/// What observing one spec found beyond its facts: the volumes that change (with their
/// files), and, for a health-checked spec, all of its volumes as it asks for them (what a later
/// failed rotation puts back, once they are what it runs with).
#[derive(Default)]
pub(super) struct Found {
    pub changed: Option<Changed>,
    pub full: Option<Changed>,
}

impl Reconciler {
    /// The facts of `container`, and the volumes whose content changes (with their files),
    /// when it wants anything.
    pub(super) async fn spec_facts(
        &self,
        container: &Container,
        catalog: &Catalog,
        listing: &Listing,
        rendered: &mut Renders,
        renderings: &mut Renderings,
        settled: &mut Settled,
    ) -> (SpecFacts, Found) {
        let name = container.name.to_string();
        let name_check = self.name_check(&name, listing).await;
        let (wants, found) = match name_check {
            NameCheck::Ours | NameCheck::Free => match self.unmoved(settled, container) {
                // Settled, and nothing it is made of moved: no volume changes.
                Some(wants) => (
                    Ok(wants),
                    Found {
                        changed: Some(Vec::new()),
                        full: None,
                    },
                ),
                None => match self.wants(container, catalog, rendered, renderings) {
                    Ok((wants, found)) => {
                        self.settle(settled, container, &wants, || digest(container));
                        (Ok(wants), found)
                    }
                    Err(problem) => (Err(problem), Found::default()),
                },
            },
            // Not looked at: the name decides.
            _ => (
                Err(Problem {
                    reason: Reason::UnitNameTaken,
                    message: String::new(),
                    versions: Vec::new(),
                }),
                Found::default(),
            ),
        };
        let live = self
            .memory
            .status
            .specs
            .get(&name)
            .map(|s| s.secrets.clone())
            .unwrap_or_default();
        let facts = SpecFacts {
            name,
            file: container.origin.file.clone(),
            name_check,
            wants,
            live,
            // Kept while the spec is settled or as last rendered; else worked out again.
            digest: settled
                .digest(container.name.as_str())
                .map_or_else(|| known_digest(rendered, container), str::to_owned),
            stop_before_end: container.on_expiry == ramlet_specs::raw::OnExpiry::Stop,
        };
        (facts, found)
    }

    /// Whether `name`'s unit can be ramlet's: its own file is there (and no file of the
    /// host's by that name appeared since: see `observe`'s shadow search), or the name is free
    /// on the whole host (not only in ramlet's folder: a vendor unit must not be shadowed), as
    /// far as systemd says.
    async fn name_check(&self, name: &str, listing: &Listing) -> NameCheck {
        if listing.ours.contains_key(name) {
            return self
                .memory
                .shadows
                .found
                .get(name)
                .map_or(NameCheck::Ours, |file| NameCheck::Shadows(file.clone()));
        }
        match self.units.load_state(&service(name)).await {
            Err(error) => return NameCheck::Unknown(error.to_string()),
            Ok(load) if load.exists() => return NameCheck::TakenBySystemd(load),
            Ok(_) => {}
        }
        if listing.foreign.contains(name) {
            return NameCheck::TakenInUnitDir(
                self.unit_dir.path().join(format!("{name}.container")),
            );
        }
        NameCheck::Free
    }

    /// What `container` wants: its unit, whether its volumes change, its secret versions;
    /// and the volumes that change, with their files. Or why that cannot be worked out.
    fn wants(
        &self,
        container: &Container,
        catalog: &Catalog,
        rendered: &mut Renders,
        renderings: &mut Renderings,
    ) -> Result<(Wants, Found), Problem> {
        let shaped = self
            .shape(container, catalog, renderings)
            .map_err(|(reason, message)| Problem {
                reason,
                message,
                versions: Vec::new(),
            })?;
        let unit_text = self.render(container, rendered).map_err(|error| Problem {
            reason: Reason::RenderFailed,
            message: error.to_string(),
            versions: shaped.versions.clone(),
        })?;
        let mut remount = false;
        let differs: Vec<bool> = shaped
            .volumes
            .iter()
            .map(|(spec, files)| {
                let new_mount = self.volumes.mount_differs(spec);
                remount |= new_mount;
                new_mount || self.volumes.differs(spec, files).unwrap_or(true)
            })
            .collect();
        let gate = container.health_check.as_ref().map(|h| Gate {
            deadline: h.deadline,
            interval: h.interval,
        });
        let full = gate.is_some().then(|| shaped.volumes.clone());
        let changed: Changed = shaped
            .volumes
            .into_iter()
            .zip(differs)
            .filter_map(|(volume, differs)| differs.then_some(volume))
            .collect();
        let on_rotation = match container.rotation {
            Rotation::Restart => OnRotation::Restart,
            Rotation::Reload { .. } => OnRotation::Reload,
            Rotation::None => OnRotation::Nothing,
        };
        let wants = Wants {
            unit_text,
            volumes_changed: !changed.is_empty(),
            remount,
            on_rotation,
            versions: shaped.versions,
            gate,
            templates: Feed::all_of(container),
        };
        let found = Found {
            changed: Some(changed),
            full,
        };
        Ok((wants, found))
    }

    /// All of `container`'s volumes with their files, from the stores' last good values; `None`
    /// when a secret is missing or cannot be shaped. (Its templates are rendered afresh: the
    /// last renderings are of what the specs ask now.)
    pub(super) fn files(&self, container: &Container, catalog: &Catalog) -> Option<Changed> {
        self.shape(container, catalog, &mut Renderings::default())
            .ok()
            .map(|s| s.volumes)
    }

    /// `container`'s unit file: rendered again only when the spec changed since the last time
    /// (layout and Podman target are fixed for the reconciler's life).
    fn render(
        &self,
        container: &Container,
        rendered: &mut Renders,
    ) -> ramlet_quadlet::Result<String> {
        let name = container.name.as_str();
        if let Some(known) = rendered.get(name)
            && known.spec == *container
        {
            return Ok(known.unit.clone());
        }
        let target = self.settings.target;
        let mut unit = units::unit(container, &self.settings.layout, target);
        units::deny_addresses(&mut unit, &self.settings.policy.deny_addresses);
        let text = unit.render(target)?;
        rendered.insert(
            name.to_owned(),
            Render {
                spec: container.clone(),
                unit: text.clone(),
                digest: digest(container),
            },
        );
        Ok(text)
    }

    /// Shapes every secret of `container` from the stores' last good values; the first
    /// problem is the error (status reason, message).
    fn shape(
        &self,
        container: &Container,
        catalog: &Catalog,
        renderings: &mut Renderings,
    ) -> Result<Shaped, (Reason, String)> {
        let unavailable = |message: String| (Reason::SecretUnavailable, message);
        let mut fetched = Shaped {
            volumes: Vec::new(),
            versions: Vec::new(),
        };
        for volume in &container.volumes {
            let mut files = Vec::new();
            for file in &volume.files {
                let bytes = match &file.content {
                    Content::Secret(reference) => {
                        let (secret, bytes) = self.shaped(&file.path, reference, catalog)?;
                        fetched.versions.push(SecretInUse {
                            id: SecretId::of(reference),
                            version: secret.version.clone(),
                            expires: secret.expires,
                        });
                        bytes
                    }
                    Content::Template(template) => {
                        let key = (
                            container.name.to_string(),
                            volume.name.to_string(),
                            file.path.clone(),
                        );
                        self.render_template(key, &file.path, template, catalog, renderings)
                            .map(|(bytes, versions)| {
                                fetched.versions.extend(versions);
                                bytes
                            })?
                    }
                };
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
            let spec = VolumeSpec::of(container, volume);
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
        // Each secret once, where it is first read (a JSON secret's two keys, a template's
        // input that another file reads too).
        let mut seen = std::collections::BTreeSet::new();
        fetched
            .versions
            .retain(|v| seen.insert((v.id.clone(), v.version.clone())));
        Ok(fetched)
    }

    /// The secret `reference` names as the stores last saw it (`path`, for errors).
    fn secret<'s>(
        &'s self,
        path: &str,
        reference: &SecretRef,
        catalog: &Catalog,
    ) -> Result<&'s secrets::Secret, (Reason, String)> {
        if !catalog.stores.contains_key(&reference.store) {
            return Err((
                Reason::SecretUnavailable,
                format!("store {} is gone", reference.store),
            ));
        }
        self.stores
            .get(&SecretId::of(reference), &reference.version)
            .map_err(|e| {
                (
                    e.kind().into(),
                    format!(
                        "{path} (store {}, {}): {e}",
                        reference.store,
                        e.kind().as_str()
                    ),
                )
            })
    }

    /// The secret `reference` names, and its value shaped for a file (`path`, for errors).
    fn shaped<'s>(
        &'s self,
        path: &str,
        reference: &SecretRef,
        catalog: &Catalog,
    ) -> Result<(&'s secrets::Secret, SecretBytes), (Reason, String)> {
        let secret = self.secret(path, reference, catalog)?;
        let bytes = secrets::shape(&secret.bytes, reference)
            .map_err(|e| (Reason::SecretUnavailable, format!("{path}: {e}")))?;
        Ok((secret, bytes))
    }

    /// A template file's rendering, with its inputs' versions: the last one while no input's
    /// version has moved (its inputs are then not even shaped), else a new one.
    fn render_template(
        &self,
        key: template::FileKey,
        path: &str,
        template: &Template,
        catalog: &Catalog,
        renderings: &mut Renderings,
    ) -> Result<(SecretBytes, Vec<SecretInUse>), (Reason, String)> {
        let mut inputs = Vec::new();
        for (name, reference) in &template.inputs {
            let label = format!("{path} input {name}");
            let secret = self.secret(&label, reference, catalog)?;
            inputs.push((name, reference, label, secret));
        }
        let versions: Vec<SecretInUse> = inputs
            .iter()
            .map(|(_, reference, _, secret)| SecretInUse {
                id: SecretId::of(reference),
                version: secret.version.clone(),
                expires: secret.expires,
            })
            .collect();
        let at = versions.iter().map(|v| v.version.clone()).collect();
        let bytes = renderings.get_or_render(key, template, at, || {
            let mut values = std::collections::BTreeMap::new();
            for (name, reference, label, secret) in &inputs {
                let bytes = secrets::shape(&secret.bytes, reference)
                    .map_err(|e| (Reason::SecretUnavailable, format!("{label}: {e}")))?;
                values.insert((*name).clone(), bytes);
            }
            template::render(template, &values)
                .map_err(|e| (Reason::SecretUnavailable, format!("{path}: {e}")))
        })?;
        Ok((bytes, versions))
    }

    /// The owner for a file owned by `uid:gid` in `container` (see [`FileContent`]'s `uid`).
    /// In user scope ramlet gives owners through rootless Podman's default ID mapping, so a
    /// container that sets its own (escape-hatch `UserNS=`, `UIDMap=`, ...) can have only root's.
    fn owner(
        &self,
        container: &Container,
        uid: u32,
        gid: u32,
    ) -> Result<(Option<u32>, Option<u32>), crate::drivers::OwnerError> {
        const MAPPINGS: [&str; 5] = ["UserNS", "UIDMap", "GIDMap", "SubUIDMap", "SubGIDMap"];
        if self.settings.layout.scope == crate::layout::Scope::User && (uid, gid) != (0, 0) {
            let own = container
                .quadlet
                .get("Container")
                .and_then(|keys| MAPPINGS.iter().find(|key| keys.contains_key(**key)));
            if let Some(key) = own {
                return Err(crate::drivers::OwnerError::OwnMapping { uid, gid, key });
            }
        }
        self.volumes.owner(uid, gid)
    }
}

/// `container`'s digest as last rendered, when it is the same spec; else worked out again.
fn known_digest(rendered: &Renders, container: &Container) -> String {
    rendered
        .get(container.name.as_str())
        .filter(|known| known.spec == *container)
        .map_or_else(|| digest(container), |known| known.digest.clone())
}

/// A digest of `container`'s content as validated (SHA-256 of its JSON, hex): what the status's
/// `observedGeneration` counts changes of. Specs hold no secret, so neither does this.
fn digest(container: &Container) -> String {
    use sha2::Digest as _;
    let json = serde_json::to_vec(container).unwrap_or_default();
    sha2::Sha256::digest(json)
        .iter()
        .take(16)
        .fold(String::with_capacity(32), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}
