//! File modes, read the way Kubernetes users write them.
//!
//! YAML reads `mode: 0400` as the string "0400" and `mode: 400` as decimal 400 (= 0o620, group
//! writable). ramlet reads the scalar's source text (see [`crate::scalar`]) and accepts `0400`,
//! `0o400` and `"0400"` as octal; it refuses a bare decimal such as `400`, which would otherwise
//! quietly become a different, wider mode.

use crate::error::{Check, ErrorKind};

/// The mode a file gets when the spec gives none.
pub const DEFAULT_FILE_MODE: u32 = 0o400;

/// Parses a file mode.
pub(crate) fn parse(text: &str) -> Check<u32> {
    let digits = text
        .strip_prefix("0o")
        .or_else(|| text.strip_prefix('0').filter(|d| !d.is_empty()));
    let Some(digits) = digits else {
        let decimal = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        let hint = if decimal && !text.starts_with('0') {
            format!("; if you meant octal, write `0{text}`")
        } else {
            String::new()
        };
        return Err((
            ErrorKind::InvalidMode,
            format!("{text:?} is not an octal mode such as `0400`{hint}"),
        ));
    };
    let mode = u32::from_str_radix(digits, 8)
        .ok()
        .filter(|_| digits.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .ok_or_else(|| {
            (
                ErrorKind::InvalidMode,
                format!("{text:?} is not an octal number"),
            )
        })?;
    if mode > 0o777 {
        return Err((
            ErrorKind::InvalidMode,
            format!("{text:?} is above 0777; setuid, setgid and sticky bits are not allowed"),
        ));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_octal_spellings() {
        assert_eq!(parse("0400"), Ok(0o400));
        assert_eq!(parse("0o440"), Ok(0o440));
        assert_eq!(parse("0").unwrap_err().0, ErrorKind::InvalidMode);
        assert_eq!(parse("00"), Ok(0));
        assert_eq!(parse("0777"), Ok(0o777));
    }

    #[test]
    fn refuses_decimal_with_a_hint() {
        let (kind, message) = parse("400").unwrap_err();
        assert_eq!(kind, ErrorKind::InvalidMode);
        assert!(message.contains("write `0400`"), "{message}");
    }

    #[test]
    fn refuses_non_octal_and_special_bits() {
        for bad in [
            "0800", "0o9", "04000", "0o7777", "abc", "", "0x1ff", "-0400", "0400 ",
        ] {
            assert_eq!(parse(bad).unwrap_err().0, ErrorKind::InvalidMode, "{bad}");
        }
    }
}
