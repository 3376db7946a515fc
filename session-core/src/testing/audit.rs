//! A privacy audit of a whole test run (feature `testing`).
//!
//! With the environment variable `SESSION_LOG_AUDIT` naming a folder, the first
//! [`SessionLayer`](crate::SessionLayer) built in a process installs a global `tracing`
//! subscriber that appends every event and span, at every level and from every crate, to
//! `log-<pid>.txt` in that folder, and every session cookie the layer issues (the cookie
//! value, the id and its record digest) to `secrets-<pid>.txt`. `scripts/test` sets it for
//! the whole test suite and then checks that no secret appears in any log line.
//!
//! Without the variable nothing is installed and nothing is recorded: the cost is one
//! environment lookup per process.

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id as SpanId, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::Id;

/// The open audit files of this process, once the audit is on.
struct Audit {
    log: Mutex<File>,
    secrets: Mutex<File>,
}

static AUDIT: OnceLock<Option<Audit>> = OnceLock::new();

fn audit() -> Option<&'static Audit> {
    AUDIT
        .get_or_init(|| {
            let dir = PathBuf::from(std::env::var_os("SESSION_LOG_AUDIT")?);
            let open = |name: &str| {
                let path = dir.join(format!("{name}-{}.txt", std::process::id()));
                OpenOptions::new().create(true).append(true).open(path).ok().map(Mutex::new)
            };
            let audit = Audit { log: open("log")?, secrets: open("secrets")? };
            // Another global subscriber (a test's own) wins; its output is that test's to check.
            let _ = tracing::subscriber::set_global_default(Recorder { next_span: AtomicU64::new(1) });
            Some(audit)
        })
        .as_ref()
}

/// Turns the audit on for this process if `SESSION_LOG_AUDIT` asks for it.
pub(crate) fn install() {
    let _ = audit();
}

/// Records a session cookie the layer issues (its `Set-Cookie` value), and the id in it.
pub(crate) fn issued(set_cookie: &http::HeaderValue, id: Option<&Id>) {
    let Some(audit) = audit() else { return };
    let mut lines = String::new();
    if let Some(value) = set_cookie
        .to_str()
        .ok()
        .and_then(|s| s.split(';').next())
        .and_then(|pair| pair.split_once('=').map(|(_, v)| v))
        .filter(|v| !v.is_empty())
    {
        lines.push_str(value);
        lines.push('\n');
    }
    if let Some(id) = id {
        let _ = writeln!(lines, "{id}\n{}", crate::SessionHandle::from_record_id(id.record_id()));
    }
    let mut file = audit.secrets.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = file.write_all(lines.as_bytes());
}

/// Writes every span and event as one line of text.
struct Recorder {
    next_span: AtomicU64,
}

impl Recorder {
    fn write(&self, metadata: &Metadata<'_>, fields: &str) {
        let Some(audit) = audit() else { return };
        let line = format!("{} {}: {fields}\n", metadata.level(), metadata.target());
        let mut file = audit.log.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = file.write_all(line.as_bytes());
    }
}

/// Collects `name=value` pairs, values as their `Debug` (what any formatter would print).
#[derive(Default)]
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, "{}={value} ", field.name());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole chain: a cause's text is where a leak would hide.
        let _ = write!(self.0, "{}={value}", field.name());
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(self.0, ": {cause}");
            source = cause.source();
        }
        self.0.push(' ');
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> SpanId {
        let mut fields = Fields::default();
        span.record(&mut fields);
        self.write(span.metadata(), &fields.0);
        SpanId::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &SpanId, values: &Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(audit) = audit() {
            let mut file = audit.log.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = writeln!(file, "span record: {}", fields.0);
        }
    }

    fn record_follows_from(&self, _: &SpanId, _: &SpanId) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.write(event.metadata(), &fields.0);
    }

    fn enter(&self, _: &SpanId) {}

    fn exit(&self, _: &SpanId) {}
}
