//! The values of the command line, each parsed for clap, whose value parsers report a bad
//! value as a message of their own.

/// A user, by name or uid, as the owner of a volume root.
///
/// # Errors
/// No such user.
pub fn volume_owner(
    text: &str,
) -> Result<crate::host::volumes::Owner, crate::host::volumes::UserError> {
    crate::host::volumes::Owner::of_user(text)
}

/// A tmpfs `size=`: digits with an optional `k`, `m` or `g`.
///
/// # Errors
/// Anything else.
pub fn tmpfs_size(text: &str) -> Result<String, String> {
    let digits = text.trim_end_matches(['k', 'm', 'g', 'K', 'M', 'G']);
    if !digits.is_empty()
        && text.len() - digits.len() <= 1
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a size like 256m"))
    }
}

/// Host labels, `key=value` pairs separated by commas.
///
/// # Errors
/// A pair that is no label.
pub fn parse_labels(text: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    ramlet_specs::parse_host_labels(text)
}
