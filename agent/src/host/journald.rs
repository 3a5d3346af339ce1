//! ramlet's lines in the journal, by journald's native protocol, with the fields that make them
//! findable the way people already look (issue 38):
//!
//! - every field of an event as `RAMLET_<FIELD>` (`RAMLET_SPEC=web`, `RAMLET_ACTION=restart`);
//! - an event about one unit (a `unit` field) also as `OBJECT_SYSTEMD_UNIT=web.service` (system
//!   scope: ramlet is root, the "authorized daemon" journalctl looks for) or
//!   `OBJECT_SYSTEMD_USER_UNIT=web.service` (user scope: ramlet runs as the unit's owner, whose
//!   UID journald stamps on the entry), so that `journalctl -u web.service` (or `--user -u`)
//!   shows ramlet's lines about web between web's own;
//! - an event with a `message_id` field as `MESSAGE_ID=` (see [`crate::message_ids`]), which the journal
//!   catalog shipped in the packages explains (`journalctl -x`), and by which one kind of event
//!   is found (`journalctl MESSAGE_ID=...`).
//!
//! A datagram to journald's socket per event; one that does not fit a datagram is sent again
//! with each value cut (and `RAMLET_TRUNCATED=1`), never dropped silently. Nothing here may hold a secret: the events are ramlet's own, which
//! never carry one.

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

use crate::layout::Scope;

/// journald's socket for native messages.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// The prefix of ramlet's own journal fields (an event's `spec` field becomes `RAMLET_SPEC`).
pub const FIELD_PREFIX: &str = "RAMLET";

/// The layer: ramlet's events to journald.
pub struct Journald {
    socket: UnixDatagram,
    to: PathBuf,
    /// `OBJECT_SYSTEMD_UNIT` or `OBJECT_SYSTEMD_USER_UNIT`.
    object_field: &'static str,
}

impl Journald {
    /// A layer sending to `to` (journald's [`SOCKET`]), naming units as `scope`'s manager does.
    ///
    /// # Errors
    /// When no datagram socket can be made.
    pub fn new(to: impl Into<PathBuf>, scope: Scope) -> std::io::Result<Self> {
        Ok(Self {
            socket: UnixDatagram::unbound()?,
            to: to.into(),
            object_field: match scope {
                Scope::System => "OBJECT_SYSTEMD_UNIT",
                Scope::User => "OBJECT_SYSTEMD_USER_UNIT",
            },
        })
    }

    /// The native-protocol payload of one event.
    fn payload(&self, level: tracing::Level, target: &str, fields: &Fields) -> Vec<u8> {
        let mut buf = Vec::with_capacity(512);
        put(&mut buf, "PRIORITY", priority(level));
        put(&mut buf, "SYSLOG_IDENTIFIER", "ramlet");
        put(&mut buf, "TARGET", target);
        put(&mut buf, "MESSAGE", &fields.message);
        for (name, value) in &fields.rest {
            if name == "message_id" {
                put(&mut buf, "MESSAGE_ID", value);
                continue;
            }
            if name == "unit" {
                put(&mut buf, self.object_field, value);
            }
            let field = format!("{FIELD_PREFIX}_{}", sanitize(name));
            put(&mut buf, &field, value);
        }
        buf
    }

    /// Sends one datagram; false when it is too large for one.
    fn send(&self, payload: &[u8]) -> bool {
        !matches!(
            self.socket.send_to(payload, &self.to),
            Err(error) if error.raw_os_error() == Some(nix::libc::EMSGSIZE)
        )
    }
}

/// The longest value a datagram that was too large is sent again with.
const CUT: usize = 8 * 1024;

/// `text` cut to at most [`CUT`] bytes, at a character's boundary.
fn cut(text: &mut String) {
    if text.len() > CUT {
        let mut at = CUT;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Journald {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let payload = self.payload(*meta.level(), meta.target(), &fields);
        if !self.send(&payload) {
            // Too large for a datagram: each value cut, and said so; never dropped.
            cut(&mut fields.message);
            for (_, value) in &mut fields.rest {
                cut(value);
            }
            fields.rest.push(("truncated".to_owned(), "1".to_owned()));
            self.send(&self.payload(*meta.level(), meta.target(), &fields));
        }
    }
}

/// An event's message and its other fields, in order.
#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.keep(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.keep(field, text);
    }
}

impl Fields {
    fn keep(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.rest.push((field.name().to_owned(), value));
        }
    }
}

/// A field name as journald takes it: upper case, `A-Z`, `0-9` and `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// syslog's priority of a level.
fn priority(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::ERROR => "3",
        tracing::Level::WARN => "4",
        tracing::Level::INFO => "6",
        _ => "7",
    }
}

/// One field: `NAME=value\n`, or, for a value with a newline, `NAME\n` and the value's length as
/// a little-endian u64 before it.
fn put(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value.as_bytes());
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    /// The fields of one datagram the layer sent (values without newlines).
    fn fields(datagram: &[u8]) -> Vec<(String, String)> {
        String::from_utf8_lossy(datagram)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn capture(scope: Scope, log: impl FnOnce()) -> Vec<Vec<(String, String)>> {
        let dir =
            std::env::temp_dir().join(format!("ramlet-journald-{}-{scope:?}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("socket");
        let journal = UnixDatagram::bind(&path).unwrap();
        journal.set_nonblocking(true).unwrap();
        let layer = Journald::new(&path, scope).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, log);
        let mut out = Vec::new();
        let mut buf = vec![0; 65536];
        while let Ok(n) = journal.recv(&mut buf) {
            out.push(fields(&buf[..n]));
        }
        out
    }

    #[test]
    fn an_event_about_a_unit_is_that_units_and_carries_its_message_id() {
        let sent = capture(Scope::System, || {
            tracing::info!(
                spec = "web",
                unit = "web.service",
                action = "restart",
                message_id = crate::message_ids::RESTARTED,
                "web: restart web.service (its secrets changed)"
            );
            tracing::warn!(store = "aws", "aws: slow");
        });
        assert_eq!(sent.len(), 2);
        let has = |event: &[(String, String)], k: &str, v: &str| {
            event.iter().any(|(a, b)| a == k && b == v)
        };
        let restart = &sent[0];
        for (k, v) in [
            ("MESSAGE", "web: restart web.service (its secrets changed)"),
            ("PRIORITY", "6"),
            ("SYSLOG_IDENTIFIER", "ramlet"),
            ("OBJECT_SYSTEMD_UNIT", "web.service"),
            ("MESSAGE_ID", crate::message_ids::RESTARTED),
            ("RAMLET_SPEC", "web"),
            ("RAMLET_UNIT", "web.service"),
            ("RAMLET_ACTION", "restart"),
        ] {
            assert!(has(restart, k, v), "{k}={v} in {restart:?}");
        }
        assert!(!restart.iter().any(|(k, _)| k == "RAMLET_MESSAGE_ID"));
        let slow = &sent[1];
        assert!(has(slow, "PRIORITY", "4") && has(slow, "RAMLET_STORE", "aws"));
        assert!(
            !slow
                .iter()
                .any(|(k, _)| k.starts_with("OBJECT_") || k == "MESSAGE_ID")
        );
    }

    #[test]
    fn in_user_scope_the_unit_is_the_users() {
        let sent = capture(Scope::User, || {
            tracing::info!(unit = "web.service", "web: write-volumes");
        });
        assert!(
            sent[0]
                .iter()
                .any(|(k, v)| k == "OBJECT_SYSTEMD_USER_UNIT" && v == "web.service")
        );
    }

    #[test]
    fn an_event_too_large_for_a_datagram_is_sent_cut_not_dropped() {
        let long = "x".repeat(1024 * 1024);
        let sent = capture(Scope::System, || {
            tracing::info!(spec = "web", "{long}");
        });
        assert_eq!(sent.len(), 1, "one datagram");
        let message = sent[0].iter().find(|(k, _)| k == "MESSAGE").unwrap();
        assert_eq!(message.1.len(), CUT);
        assert!(
            sent[0]
                .iter()
                .any(|(k, v)| k == "RAMLET_TRUNCATED" && v == "1")
        );
        assert!(
            sent[0]
                .iter()
                .any(|(k, v)| k == "RAMLET_SPEC" && v == "web")
        );
    }

    #[test]
    fn a_value_with_a_newline_is_length_encoded() {
        let mut buf = Vec::new();
        put(&mut buf, "MESSAGE", "a\nb");
        assert_eq!(buf, b"MESSAGE\n\x03\0\0\0\0\0\0\0a\nb\n");
    }
}
