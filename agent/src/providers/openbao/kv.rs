//! An `openbao` store's KV version 2 reads: the metadata's `current_version` first, the data
//! of that version only when it moved; a pinned version is read once.

use ramlet_specs::model::SecretVersion;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{OpenbaoProvider, parse};
use crate::providers::{ErrorKind, Fetched, ProviderError, Request};
use crate::secrets::{Secret, SecretBytes};

/// `<mount>/metadata/<path>`'s answer, the part ramlet reads.
#[derive(Deserialize)]
struct Metadata {
    data: MetadataData,
}

#[derive(Deserialize)]
struct MetadataData {
    current_version: u64,
    #[serde(default)]
    versions: std::collections::BTreeMap<String, VersionState>,
}

#[derive(Deserialize)]
struct VersionState {
    #[serde(default)]
    deletion_time: String,
    #[serde(default)]
    destroyed: bool,
}

/// `<mount>/data/<path>`'s answer: the data is kept as the raw JSON text it came as.
#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    data: DataData<'a>,
}

#[derive(Deserialize)]
struct DataData<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    metadata: DataMetadata,
}

#[derive(Deserialize)]
struct DataMetadata {
    version: u64,
}

impl OpenbaoProvider {
    /// Reads `request`'s secret from the KV engine, if its version moved.
    pub(super) async fn read_kv(&self, request: &Request) -> Result<Fetched, ProviderError> {
        let name = &request.name;
        let version = match &request.version {
            SecretVersion::Number(n) => *n,
            SecretVersion::Latest => {
                let path = format!("{}/metadata/{name}", self.mount);
                let answer = self.call(&path, name, None).await?;
                let metadata = parse::<Metadata>(&answer, &path)?.data;
                let current = metadata.current_version;
                let state = metadata.versions.get(&current.to_string());
                gone(&self.mount, name, current, state)?;
                current
            }
            other => {
                return Err(ProviderError::new(
                    ErrorKind::Misconfigured,
                    format!(
                        "{name}: an openbao store reads `latest` or a version number, not {other}"
                    ),
                ));
            }
        };
        if request.known.as_deref() == Some(version.to_string().as_str()) {
            return Ok(Fetched::Unchanged);
        }
        let path = format!("{}/data/{name}?version={version}", self.mount);
        let answer = self.call(&path, name, None).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                ProviderError::new(
                    ErrorKind::NotFound,
                    format!(
                        "version {version} of {name} in {} does not exist, or was deleted or destroyed (`bao kv metadata get -mount={} {name}` lists its versions)",
                        self.mount, self.mount
                    ),
                )
            } else {
                e
            }
        })?;
        let data = parse::<Data>(&answer, &path)?.data;
        let Some(value) = data.data else {
            return Err(ProviderError::new(
                ErrorKind::VersionDisabled,
                format!(
                    "version {version} of {name} was deleted; `bao kv undelete` brings it back"
                ),
            ));
        };
        Ok(Fetched::New(Secret {
            bytes: SecretBytes::new(value.get().as_bytes().to_vec()),
            version: data.metadata.version.to_string(),
            expires: None,
        }))
    }
}

/// Refuses a current version that was deleted or destroyed.
fn gone(
    mount: &str,
    name: &str,
    version: u64,
    state: Option<&VersionState>,
) -> Result<(), ProviderError> {
    let Some(state) = state.filter(|_| version > 0) else {
        return Err(ProviderError::not_found(name));
    };
    if state.destroyed {
        return Err(ProviderError::new(
            ErrorKind::VersionDestroyed,
            format!(
                "the current version {version} of {name} in {mount} was destroyed; write a new one (`bao kv put`) or pin an older one"
            ),
        ));
    }
    if !state.deletion_time.is_empty() {
        return Err(ProviderError::new(
            ErrorKind::VersionDisabled,
            format!(
                "the current version {version} of {name} in {mount} was deleted; `bao kv undelete -mount={mount} -versions={version} {name}` brings it back"
            ),
        ));
    }
    Ok(())
}
