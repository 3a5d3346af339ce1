//! Templates: a volume file rendered from several secrets (issue 36), with `minijinja`.
//!
//! One [`environment`] is the whole language, for `ramlet validate` and for the agent's render
//! alike: Jinja's syntax and builtin filters, plus `urlencode` (every byte but RFC 3986's
//! unreserved ones, so a password is safe in a URL's user part), `base64`/`b64encode`,
//! `b64decode` and `toyaml`. It has no loader (no `include`, `import` or `extends` can read a
//! file), no function that reads the environment or the network, strict undefined values (a
//! name or key that is not there is an error, never an empty string), and limits: a render
//! runs on [`FUEL`] (about that many instructions, and strings charged by length), nests at
//! most [`RECURSION`] deep, and writes at most [`MAX_OUTPUT_BYTES`].
//!
//! [`check`] is what validation asks of a template before any secret is read: the text parses,
//! every name it reads is an input, every input is read, every filter and test exists. Its
//! problems are placed at their line and column in the text.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use minijinja::machinery::{Span, Token};
use minijinja::{Environment, ErrorKind as EngineError, UndefinedBehavior, Value};

use crate::error::ErrorKind;

/// The longest template text, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// The most inputs one template reads.
pub const MAX_INPUTS: usize = 32;

/// The longest rendering, in bytes (the volume's `sizeLimit` also bounds it).
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;

/// A render's budget: minijinja's fuel, about one unit per instruction and per byte of the
/// strings a filter works on. A configuration file of a few hundred lines takes a few thousand.
pub const FUEL: u64 = 100_000;

/// How deep macros and recursive loops may nest.
pub const RECURSION: usize = 64;

/// The language of templates (see the module): the same for validation and the render.
#[must_use]
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION);
    // A file's last newline is part of it (Jinja drops it by default).
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    // `debug()` prints the whole context: not a thing a file needs. HTML escaping and
    // `pprint` neither, and they print a missing key as nothing (or `undefined`).
    env.remove_global("debug");
    for name in ["escape", "e", "pprint"] {
        env.remove_filter(name);
    }
    // Every filter of ramlet's refuses a missing value (strict undefined stops at printing it,
    // not at a filter that turns it into text), and so do these in place of Jinja's own.
    env.add_filter("urlencode", urlencode);
    env.add_filter("base64", base64_encode);
    env.add_filter("b64encode", base64_encode);
    env.add_filter("b64decode", base64_decode);
    env.add_filter("tojson", tojson);
    env.add_filter("toyaml", tojson);
    env.add_filter("indent", indent);
    env
}

/// A missing value (a key a JSON input lacks) as the error strict undefined gives.
fn defined(value: &Value) -> Result<(), minijinja::Error> {
    if value.is_undefined() {
        return Err(minijinja::Error::from(EngineError::UndefinedError));
    }
    Ok(())
}

/// Jinja's `tojson`, refusing a missing value (Jinja's writes `null`). Its output is a YAML
/// double-quoted scalar too, hence `toyaml`.
fn tojson(
    value: &Value,
    indent: Option<Value>,
    kwargs: minijinja::value::Kwargs,
) -> Result<Value, minijinja::Error> {
    defined(value)?;
    minijinja::filters::tojson(value, indent, kwargs)
}

/// Jinja's `indent(width=4, first=false, blank=false)`, refusing a missing value (Jinja's
/// writes nothing): every line but the first (unless `first`) gets `width` spaces, blank lines
/// none (unless `blank`).
#[allow(clippy::needless_pass_by_value)] // minijinja hands a filter its keyword arguments by value
fn indent(
    value: &Value,
    width: Option<usize>,
    first: Option<bool>,
    blank: Option<bool>,
    kwargs: minijinja::value::Kwargs,
) -> Result<String, minijinja::Error> {
    defined(value)?;
    let width = kwargs.get::<Option<usize>>("width")?.or(width).unwrap_or(4);
    let first = kwargs
        .get::<Option<bool>>("first")?
        .or(first)
        .unwrap_or(false);
    let blank = kwargs
        .get::<Option<bool>>("blank")?
        .or(blank)
        .unwrap_or(false);
    kwargs.assert_all_used()?;
    let pad = " ".repeat(width);
    let text = text_of(value);
    let mut out = String::with_capacity(text.len() + width * 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if (i > 0 || first) && (blank || !line.trim().is_empty()) {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    Ok(out)
}

/// `value`'s text with every byte but `A-Z a-z 0-9 - . _ ~` percent-encoded: safe in any part of
/// a URL (Jinja's own keeps `/`, which breaks a password in `user:password@host`).
fn urlencode(value: &Value) -> Result<String, minijinja::Error> {
    defined(value)?;
    let text = text_of(value);
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    Ok(out)
}

fn base64_encode(value: &Value) -> Result<String, minijinja::Error> {
    use base64::Engine as _;
    defined(value)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(text_of(value).as_bytes()))
}

/// Errors say what is wrong, never the value.
fn base64_decode(value: &Value) -> Result<String, minijinja::Error> {
    use base64::Engine as _;
    defined(value)?;
    let text: String = text_of(value)
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| {
            minijinja::Error::new(EngineError::InvalidOperation, "b64decode: not base64")
        })?;
    String::from_utf8(bytes).map_err(|_| {
        minijinja::Error::new(
            EngineError::InvalidOperation,
            "b64decode: the decoded bytes are not UTF-8 text",
        )
    })
}

fn text_of(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), ToOwned::to_owned)
}

/// Checks an input's name: what the text calls it.
///
/// # Errors
/// Why it cannot be a template's variable.
pub fn input_name(name: &str) -> crate::error::Check<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || name.len() > 64 {
        return Err((
            ErrorKind::InvalidName,
            format!(
                "input {name:?} is not a template variable name: letters, digits and _, not starting with a digit, at most 64"
            ),
        ));
    }
    if RESERVED.contains(&name) {
        return Err((
            ErrorKind::InvalidName,
            format!("input {name:?} is a word of the template language; choose another name"),
        ));
    }
    Ok(())
}

/// Names an input cannot take: the language's keywords and the globals it has.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "else",
    "for",
    "loop",
    "self",
    "super",
    "range",
    "dict",
    "namespace",
    "varargs",
    "kwargs",
    "caller",
];

/// A problem in a template's text: where (1-based line and column in the text) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The line in the text, from 1.
    pub line: usize,
    /// The column in that line, from 1.
    pub column: usize,
    /// What kind of problem.
    pub kind: ErrorKind,
    /// What is wrong, and how to fix it.
    pub message: String,
}

/// Checks a template's `text` against the names of its `inputs` (see the module): every
/// problem, in the text's order. Reads no secret: what a value lacks (a key of a JSON input)
/// shows only at the render.
#[must_use]
pub fn check(text: &str, inputs: &BTreeSet<&str>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if text.len() > MAX_TEXT_BYTES {
        problems.push(at(
            1,
            1,
            ErrorKind::TooLarge,
            format!(
                "the template is {} bytes; at most {MAX_TEXT_BYTES}",
                text.len()
            ),
        ));
        return problems;
    }
    let env = environment();
    let template = match env.template_from_str(text) {
        Ok(template) => template,
        Err(error) => {
            problems.push(at(
                error.line().unwrap_or(1),
                1,
                ErrorKind::Syntax,
                format!(
                    "the template does not parse: {}",
                    error.detail().unwrap_or("syntax error")
                ),
            ));
            return problems;
        }
    };
    let globals: BTreeSet<String> = env.globals().map(|(name, _)| name.to_owned()).collect();
    let read: BTreeSet<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !globals.contains(name))
        .collect();
    let tokens = tokens(text);
    for name in read.iter().filter(|name| !inputs.contains(name.as_str())) {
        let (line, column) = first_use(&tokens, name);
        let known = if inputs.is_empty() {
            "the template has no inputs".to_owned()
        } else {
            format!(
                "inputs: {}",
                inputs.iter().copied().collect::<Vec<_>>().join(", ")
            )
        };
        problems.push(at(
            line,
            column,
            ErrorKind::InvalidValue,
            format!("{name} is not an input of this template ({known})"),
        ));
    }
    for name in inputs.iter().filter(|name| !read.contains(**name)) {
        problems.push(at(
            1,
            1,
            ErrorKind::InvalidValue,
            format!("input {name} is not used by the text; remove it, or use it"),
        ));
    }
    // Each name asked of the environment once; every place of an unknown one is reported.
    let mut known = std::collections::BTreeMap::new();
    for (what, name, span) in filters_and_tests(&tokens) {
        if !*known
            .entry((what, name))
            .or_insert_with(|| exists(&env, what, name))
        {
            problems.push(at(
                usize::from(span.start_line),
                usize::from(span.start_col) + 1,
                ErrorKind::InvalidValue,
                format!("no {what} named {name} (the manual's chapter Templates lists them)"),
            ));
        }
    }
    problems.sort_by_key(|p| (p.line, p.column));
    problems
}

fn at(line: usize, column: usize, kind: ErrorKind, message: String) -> Problem {
    Problem {
        line,
        column,
        kind,
        message,
    }
}

/// The text's tokens with their places (what the lexer could read; the parser has passed it).
fn tokens(text: &str) -> Vec<(Token<'_>, Span)> {
    minijinja::machinery::tokenize(text, false, minijinja::syntax::SyntaxConfig::default())
        .map_while(Result::ok)
        .collect()
}

/// Where `name` is first read as a variable: not after `.` (an attribute), `|` (a filter) or
/// `is` (a test).
fn first_use(tokens: &[(Token<'_>, Span)], name: &str) -> (usize, usize) {
    tokens
        .iter()
        .enumerate()
        .find(|(i, (token, _))| {
            matches!(token, Token::Ident(n) if *n == name)
                && !matches!(
                    i.checked_sub(1).map(|j| &tokens[j].0),
                    Some(Token::Dot | Token::Pipe | Token::Ident("is" | "not" | "filter"))
                )
        })
        .map_or((1, 1), |(_, (_, span))| {
            (
                usize::from(span.start_line),
                usize::from(span.start_col) + 1,
            )
        })
}

/// The filters (after `|`, or `{% filter name %}`) and tests (after `is` or `is not`) the
/// text names, with where.
fn filters_and_tests<'t>(tokens: &'t [(Token<'t>, Span)]) -> Vec<(&'static str, &'t str, Span)> {
    let mut found = Vec::new();
    for (i, (token, _)) in tokens.iter().enumerate() {
        let next = |k: usize| tokens.get(i + k);
        match token {
            Token::Pipe | Token::Ident("filter") => {
                if let Some((Token::Ident(name), span)) = next(1) {
                    found.push(("filter", *name, *span));
                }
            }
            Token::Ident("is") => {
                let test = match next(1) {
                    Some((Token::Ident("not"), _)) => next(2),
                    other => other,
                };
                if let Some((Token::Ident(name), span)) = test {
                    found.push(("test", *name, *span));
                }
            }
            _ => {}
        }
    }
    found
}

/// Whether the environment has the filter or test `name` (asked by using it: its lists are
/// not public).
fn exists(env: &Environment<'_>, what: &str, name: &str) -> bool {
    let probe = match what {
        "filter" => format!("{{{{ none | {name} }}}}"),
        _ => format!("{{{{ none is {name} }}}}"),
    };
    let Ok(template) = env.template_from_str(&probe) else {
        return true;
    };
    match template.render(()) {
        Ok(_) => true,
        Err(error) => !matches!(
            error.kind(),
            EngineError::UnknownFilter | EngineError::UnknownTest
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&'static str]) -> BTreeSet<&'static str> {
        list.iter().copied().collect()
    }

    #[test]
    fn a_good_template_has_no_problems() {
        let text = "URL=postgres://{{ db.user }}:{{ db.password | urlencode }}@db/app\n\
                    {% for k in api | list %}{{ k }}{% endfor %}{% if api is defined %}x{% endif %}\n";
        assert_eq!(check(text, &names(&["db", "api"])), vec![]);
    }

    #[test]
    fn names_that_are_not_inputs_are_placed_where_they_are_read() {
        let problems = check("a\n  {{ db.user }} {{ dbx }}\n", &names(&["db"]));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].line, problems[0].column), (2, 20));
        assert!(
            problems[0]
                .message
                .starts_with("dbx is not an input of this template (inputs: db)"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn unused_inputs_unknown_filters_and_tests_and_syntax_are_refused() {
        let problems = check(
            "{{ a | nosuch }} {% if a is nosuchtest %}{% endif %}",
            &names(&["a", "b"]),
        );
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(problems.len(), 3, "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("input b is not used")));
        assert!(
            messages
                .iter()
                .any(|m| m.contains("no filter named nosuch"))
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("no test named nosuchtest"))
        );
        let broken = check("x\n{{ a b }}", &names(&["a"]));
        assert_eq!(broken[0].kind, ErrorKind::Syntax);
        assert_eq!(broken[0].line, 2);
    }

    #[test]
    fn no_template_reads_a_file() {
        for text in [
            "{% include 'etc/passwd' %}",
            "{% import 'x' as y %}",
            "{% extends 'x' %}",
        ] {
            let env = environment();
            let rendered = env.template_from_str(text).and_then(|t| t.render(()));
            assert!(rendered.is_err(), "{text}");
        }
        assert!(
            check("{{ debug() }}", &names(&[]))
                .iter()
                .any(|p| p.message.contains("debug is not an input"))
        );
    }

    #[test]
    fn filters_for_configuration_files() {
        let env = environment();
        let render = |text: &str| {
            env.template_from_str(text)
                .unwrap()
                .render(minijinja::context! { p => "a/b:c@d e" })
                .unwrap()
        };
        assert_eq!(render("{{ p | urlencode }}"), "a%2Fb%3Ac%40d%20e");
        assert_eq!(render("{{ p | base64 }}"), "YS9iOmNAZCBl");
        assert_eq!(render("{{ p | base64 | b64decode }}"), "a/b:c@d e");
        assert_eq!(render("{{ p | toyaml }}"), "\"a/b:c@d e\"");
        assert_eq!(render("{{ 'x\ny' | indent(2) }}"), "x\n  y");
        assert_eq!(
            render("{{ 'x\n\ny' | indent(width=3, first=true) }}"),
            "   x\n\n   y"
        );
        assert_eq!(render("line\n"), "line\n");
    }

    #[test]
    fn no_filter_turns_a_missing_key_into_text() {
        let env = environment();
        let mut filters = vec![
            "urlencode",
            "base64",
            "b64encode",
            "b64decode",
            "tojson",
            "toyaml",
            "indent(2)",
            "upper",
            "lower",
            "trim",
            "string",
            "length",
            "first",
            "last",
            "list",
            "join(',')",
            "int",
            "float",
            "replace('a', 'b')",
            "title",
            "capitalize",
            "safe",
            "lines",
            "split",
            "items",
            "sort",
            "bool",
            "format('x')",
            "reverse",
            "unique",
            "attr('x')",
            "sum",
            "min",
            "max",
            "count",
            "dictsort",
            "map('upper')",
            "select",
            "reject",
            "abs",
            "round",
        ];
        filters.extend(["escape", "e", "pprint"]);
        for filter in filters {
            let text = format!("[{{{{ x.nokey | {filter} }}}}]");
            let rendered = env
                .template_from_str(&text)
                .unwrap()
                .render(minijinja::context! { x => minijinja::context! { a => 1 } });
            assert!(rendered.is_err(), "{filter}: {rendered:?}");
        }
        let rendered = env
            .template_from_str("{{ x.nokey | default('d') }}")
            .unwrap()
            .render(minijinja::context! { x => minijinja::context! { a => 1 } });
        assert_eq!(rendered.unwrap(), "d");
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let env = environment();
        let text = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}";
        let error = env.template_from_str(text).unwrap().render(()).unwrap_err();
        assert_eq!(error.kind(), EngineError::OutOfFuel);
        let huge = "x".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(check(&huge, &names(&[]))[0].kind, ErrorKind::TooLarge);
    }

    #[test]
    fn input_names_are_variables() {
        assert!(input_name("db_1").is_ok());
        for bad in ["1db", "db-x", "", "range", "none", "a.b"] {
            assert!(input_name(bad).is_err(), "{bad}");
        }
    }
}
