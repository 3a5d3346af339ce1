//! Writing values so that systemd and Quadlet read back exactly what was meant, and reading them
//! back the same way.
//!
//! What each reader does to a value (checked against Quadlet 5.4.2):
//! - systemd expands `%` specifiers in most settings, and `$VAR` on command lines: ramlet writes
//!   `%%` and, for values that reach a command line, `$$`;
//! - a trailing `\` continues the line, and leading or trailing whitespace is trimmed;
//! - Quadlet's single-value keys (`Image=`, `HealthCmd=`, ...) are taken as written, except that
//!   a `"` at either end is stripped;
//! - word-list keys (`Exec=`, `Environment=`, ...) are split the systemd way: double quotes with
//!   `\\` and `\"`; an empty word (`""`) ends the list in Quadlet 5.4, so it cannot be written.
//!
//! A newline, NUL or any other control character can never be written: it would end the line and
//! start a new key.

use crate::error::{Error, Result};
use crate::keys::{Section, Shape};

/// A value to write under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// One value taken as written.
    Raw(String),
    /// A list of words.
    Words(Vec<String>),
}

/// Renders `value` for `key` in `section` with the given shape.
pub(crate) fn render(section: Section, key: &str, shape: Shape, value: &Value) -> Result<String> {
    let bad = |value: &str, why| Error::Unrepresentable {
        section: section.name(),
        key: key.to_owned(),
        value: value.to_owned(),
        why,
    };
    let check = |text: &str| {
        if text.chars().any(char::is_control) {
            Err(bad(
                text,
                "it holds a newline, NUL or other control character",
            ))
        } else {
            Ok(())
        }
    };
    match (shape, value) {
        (Shape::Raw { dollar }, Value::Raw(text)) => {
            check(text)?;
            if text.is_empty() {
                return Err(bad(text, "it is empty"));
            }
            if text.trim() != text {
                return Err(bad(
                    text,
                    "leading or trailing whitespace is trimmed by systemd",
                ));
            }
            if text.ends_with('\\') {
                return Err(bad(text, "a trailing backslash continues the line"));
            }
            if text.starts_with('"') || text.ends_with('"') {
                return Err(bad(text, "Quadlet strips a double quote at either end"));
            }
            Ok(escape(text, dollar))
        }
        (Shape::Words, Value::Words(words)) => {
            let mut out = Vec::with_capacity(words.len());
            for word in words {
                check(word)?;
                if word.is_empty() {
                    return Err(bad(word, "Quadlet ends the list at an empty word"));
                }
                out.push(quote(&escape(word, true)));
            }
            Ok(out.join(" "))
        }
        (Shape::Words, Value::Raw(text)) => {
            render(section, key, shape, &Value::Words(vec![text.clone()]))
        }
        (Shape::Raw { .. }, Value::Words(_)) => Err(bad("", "the key takes one value, not a list")),
    }
}

/// Doubles `%` (and `$` when `dollar`), so systemd reads them literally.
fn escape(text: &str, dollar: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%%"),
            '$' if dollar => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// Quotes a word if systemd's splitter would otherwise change it.
fn quote(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_alphanumeric() || "-_./:=,+@%$^~!?*&()[]{}<>|#;".contains(c))
        && !word.starts_with(['#', ';']);
    if plain {
        return word.to_owned();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Reads back a value written with `shape`: the reverse of [`render`].
pub(crate) fn decode(shape: Shape, text: &str) -> Result<Value, String> {
    match shape {
        Shape::Raw { dollar } => Ok(Value::Raw(unescape(text, dollar))),
        Shape::Words => Ok(Value::Words(
            split_words(text)?
                .iter()
                .map(|w| unescape(w, true))
                .collect(),
        )),
    }
}

/// Undoes the doubling of `%` (and `$` when `dollar`) that rendering applies.
#[must_use]
pub fn unescape(text: &str, dollar: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if (c == '%' || (dollar && c == '$')) && chars.peek() == Some(&c) {
            chars.next();
        }
    }
    out
}

/// Splits a command line or word list the way systemd does (`extract_first_word` with
/// unquoting and C escapes), without touching `%` or `$`.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => word.push(unbackslash(&mut chars)?),
                (_, c) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err(format!("unterminated quote in {text:?}"));
        }
        words.push(word);
    }
}

fn unbackslash(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, String> {
    let c = chars.next().ok_or("a backslash ends the line")?;
    let mut hex = |n: usize| -> Result<char, String> {
        let digits: String = (0..n).filter_map(|_| chars.next()).collect();
        u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("bad escape \\{c}{digits}"))
    };
    Ok(match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        's' => ' ',
        'x' => hex(2)?,
        'u' => hex(4)?,
        'U' => hex(8)?,
        c => c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> String {
        let value = Value::Words(list.iter().map(|w| (*w).to_owned()).collect());
        render(Section::Container, "Exec", Shape::Words, &value).unwrap()
    }

    fn raw(text: &str) -> Result<String> {
        render(
            Section::Container,
            "Image",
            Shape::Raw { dollar: true },
            &Value::Raw(text.into()),
        )
    }

    #[test]
    fn quotes_words_that_need_it() {
        assert_eq!(
            words(&["nginx", "-g", "daemon off;"]),
            r#"nginx -g "daemon off;""#
        );
        assert_eq!(
            words(&[r#"say "hi""#, r"a\b", "it's"]),
            r#""say \"hi\"" "a\\b" "it's""#
        );
        assert_eq!(words(&["100%", "$HOME", "grüße"]), "100%% $$HOME grüße");
    }

    #[test]
    fn words_read_back_exactly() {
        let list = [
            "a b",
            r#"q"uote"#,
            r"back\slash",
            "%d",
            "$$",
            "it's",
            "tab:x",
            "☃",
        ];
        let text = words(&list);
        assert_eq!(
            decode(Shape::Words, &text).unwrap(),
            Value::Words(list.map(String::from).to_vec())
        );
    }

    #[test]
    fn refuses_what_cannot_be_written() {
        for bad in [
            "a\nExecStartPre=/bin/sh",
            "nul\0",
            " lead",
            "trail ",
            "end\\",
            "\"quoted\"",
            "",
        ] {
            assert!(raw(bad).is_err(), "{bad:?}");
        }
        let empty = Value::Words(vec!["a".into(), String::new()]);
        assert!(render(Section::Container, "Exec", Shape::Words, &empty).is_err());
    }

    #[test]
    fn raw_values_keep_inner_quotes_and_escape_specifiers() {
        assert_eq!(raw(r#"sh -c "exit 0" x"#).unwrap(), r#"sh -c "exit 0" x"#);
        assert_eq!(raw("a%b$c").unwrap(), "a%%b$$c");
        let service = render(
            Section::Service,
            "Restart",
            Shape::Raw { dollar: false },
            &Value::Raw("$x%".into()),
        );
        assert_eq!(service.unwrap(), "$x%%");
    }

    #[test]
    fn splits_like_systemd() {
        assert_eq!(
            split_words(r#"a "b c" 'd e' f\ g "h\"i" \x41"#).unwrap(),
            ["a", "b c", "d e", "f g", "h\"i", "A"]
        );
        assert!(split_words(r#"a "b"#).is_err());
    }
}
