//! A corrupt row is logged as such, and nothing of it: not its id, and not its bytes,
//! which a decoder's error message would quote.

mod common;

use std::fmt::{Debug, Write as _};
use std::sync::{Arc, Mutex};

use common::{record, Rows};
use session_core::{Patch, Record};
use time::{Duration, OffsetDateTime};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id as SpanId, Record as SpanRecord};
use tracing::{Event, Metadata, Subscriber};

const SENTINEL: &str = "SENTINEL-5c1e7a";
const WARNING: &str = "discarding a corrupt session row";

/// Every event and span at every level, one line each, with all their fields: a minimal
/// subscriber, so the test needs no formatter crate.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Captured {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Subscriber for Captured {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> SpanId {
        let mut line = format!("span {}", span.metadata().name());
        span.record(&mut Line(&mut line));
        self.push(line);
        SpanId::from_u64(1)
    }

    fn record(&self, _: &SpanId, values: &SpanRecord<'_>) {
        let mut line = "span record".to_owned();
        values.record(&mut Line(&mut line));
        self.push(line);
    }

    fn record_follows_from(&self, _: &SpanId, _: &SpanId) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut line = format!("{} {}", meta.level(), meta.target());
        event.record(&mut Line(&mut line));
        self.push(line);
    }

    fn enter(&self, _: &SpanId) {}

    fn exit(&self, _: &SpanId) {}
}

/// A record's shape in MessagePack (an array of ten) whose fifth field, the expiry, names
/// a variant that does not exist: the sentinel. Decoding stops there, and serde's message
/// quotes it ("unknown variant `SENTINEL-...`").
fn quoting_garbage() -> Vec<u8> {
    let instant = [0x92, 0x00, 0x00];
    let mut bytes = vec![0x9a, 0x01, 0xc4, 32];
    bytes.extend_from_slice(&[0; 32]);
    bytes.extend_from_slice(&instant);
    bytes.extend_from_slice(&instant);
    bytes.push(0xa0 | u8::try_from(SENTINEL.len()).unwrap());
    bytes.extend_from_slice(SENTINEL.as_bytes());
    bytes
}

/// Corrupt rows found by `load`, `apply` and `sessions_of` are each discarded with the
/// fixed warning; no line names the sentinel or a row's id.
async fn corrupt_rows_are_logged_without_content_or_id(store: impl Rows) {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.clone());
    let user = common::unique_table();
    let rows: Vec<Record> = (0..3)
        .map(|_| {
            let mut r = record(Duration::hours(1));
            r.user = Some(user.clone());
            r
        })
        .collect();
    for r in &rows {
        store.create(r).await.unwrap();
        store.overwrite_data(&r.id, &quoting_garbage()).await;
    }
    assert!(store.load(&rows[0].id).await.unwrap().is_none());
    let now = OffsetDateTime::now_utc();
    let applied = store.apply(&Patch::new(rows[1].id, now + Duration::hours(1), now)).await;
    assert!(matches!(applied, Err(session_core::StoreError::NotFound)));
    assert!(store.sessions_of(&user).await.unwrap().is_empty());
    assert_eq!(store.count().await, 0, "a corrupt row stayed");

    let lines = captured.lines();
    let warnings = lines.iter().filter(|l| l.starts_with("WARN") && l.contains(WARNING)).count();
    assert_eq!(warnings, 3, "one warning per corrupt row: {lines:#?}");
    for line in &lines {
        assert!(!line.contains(SENTINEL), "the row's content is logged: {line}");
        for r in &rows {
            let hex = r.id.to_string();
            assert!(!line.contains(&hex[..8]), "a row's id is logged: {line}");
        }
    }
}

#[tokio::test]
async fn sqlite_logs_no_content_or_id_of_corrupt_rows() {
    corrupt_rows_are_logged_without_content_or_id(common::sqlite().await).await;
}

#[tokio::test]
async fn postgres_logs_no_content_or_id_of_corrupt_rows() {
    corrupt_rows_are_logged_without_content_or_id(common::postgres().await).await;
}
