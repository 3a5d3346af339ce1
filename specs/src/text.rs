//! The rule for every string in a spec: one line, no control characters, bounded length.
//!
//! Strings reach unit files, command lines and logs. A newline would smuggle a new key into a
//! unit (`ExecStartPre=`), a NUL would truncate it, an escape sequence would rewrite a terminal.
//! The rule is applied to every string of every document, whether or not it reaches a unit today.

use crate::error::{Check, ErrorKind};

/// The longest string ramlet accepts in a spec, in bytes.
pub const MAX_STRING_BYTES: usize = 4096;

/// Checks that `value` is a single line without control characters and at most
/// [`MAX_STRING_BYTES`] long.
pub(crate) fn single_line(value: &str) -> Check<&str> {
    if value.len() > MAX_STRING_BYTES {
        return Err((
            ErrorKind::UnsafeString,
            format!(
                "is {} bytes long; strings are limited to {MAX_STRING_BYTES}",
                value.len()
            ),
        ));
    }
    if let Some((at, c)) = value.char_indices().find(|(_, c)| c.is_control()) {
        let what = match c {
            '\n' | '\r' => "a line break",
            '\0' => "a NUL character",
            '\t' => "a tab",
            _ => "a control character",
        };
        return Err((
            ErrorKind::UnsafeString,
            format!(
                "holds {what} (U+{:04X}) at byte {at}; values must be a single line without \
                 control characters",
                u32::from(c)
            ),
        ));
    }
    Ok(value)
}

/// Checks `value` like [`single_line`], and that it is not empty and has no whitespace.
pub(crate) fn word(value: &str) -> Check<&str> {
    single_line(value)?;
    if value.is_empty() {
        return Err((ErrorKind::InvalidValue, "must not be empty".into()));
    }
    if value.chars().any(char::is_whitespace) {
        return Err((
            ErrorKind::InvalidValue,
            format!("{value:?} must not contain whitespace"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_line_break_and_control_character() {
        for bad in [
            "a\nb",
            "a\rb",
            "a\0b",
            "a\u{1b}[31m",
            "a\u{7f}",
            "a\u{85}b",
            "a\tb",
        ] {
            assert_eq!(
                single_line(bad).unwrap_err().0,
                ErrorKind::UnsafeString,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn accepts_spaces_quotes_percent_and_unicode() {
        for good in ["a b", r#"say "hi" 100% $HOME \n"#, "grüße ☃"] {
            assert_eq!(single_line(good), Ok(good));
        }
    }

    #[test]
    fn refuses_oversized_strings() {
        let long = "x".repeat(MAX_STRING_BYTES + 1);
        assert_eq!(single_line(&long).unwrap_err().0, ErrorKind::UnsafeString);
    }
}
