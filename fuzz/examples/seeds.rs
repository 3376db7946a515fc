//! Writes the committed seed corpora, `corpus/<target>/seed-*`: a handful of valid inputs
//! per target for the fuzzer to mutate. Run from `fuzz/`: `cargo run --example seeds`.
//! Sealed values draw a fresh nonce, so a rerun changes those files only.

use std::path::Path;

use instants::{created, expires};
use session_core::__fuzz::{encode_client, id_from_bytes, ClientCookie, ClientPayload, IdCookie};
use session_core::{Entries, Expiry, Forward, Record};
use session_fuzz::{join_pairs, record_id, KEYS, NAME};
use session_store_redis::__fuzz::hash_fields;
use time::Duration;

/// Fixed instants, so the seeds do not change with the clock; sessions live until 2100.
mod instants {
    use time::OffsetDateTime;

    pub(crate) fn created() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("in range")
    }

    pub(crate) fn expires() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(4_102_444_800).expect("in range")
    }
}

fn write(target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("the corpus folder");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("a seed file");
}

fn entries() -> Entries {
    let mut entries = Entries::new();
    entries.insert("user_id", vec![0x2a].into());
    entries.insert("cart", vec![0x92, 0x01, 0xa3, b'a', b'b', b'c'].into());
    entries.insert("", Vec::new().into());
    entries
}

fn records() -> Vec<(&'static str, Record)> {
    let bare = Record::new(record_id(7), created(), expires());
    let mut full = bare.clone();
    full.entries = entries();
    full.version = 3;
    full.user = Some("alice".to_owned());
    full.label = Some("phone".to_owned());
    full.last_seen = created() + Duration::nanoseconds(123_456_789);
    full.expiry = Some(Expiry::OnInactivity(Duration::days(30)));
    let mut at = full.clone();
    at.expiry = Some(Expiry::AtDateTime(expires()));
    at.user = None;
    let mut browser = bare.clone();
    browser.expiry = Some(Expiry::BrowserSession);
    vec![("bare", bare), ("full", full), ("at", at), ("browser", browser)]
}

fn main() {
    let id = id_from_bytes(*b"0123456789abcdef");
    let plain = IdCookie::plain().encode(NAME, &id);
    let signed = IdCookie::signed(KEYS.clone()).encode(NAME, &id);
    let sealed = IdCookie::private(KEYS.clone()).encode(NAME, &id);

    // A limit byte (x17 bytes), the name, then one header value per line.
    write("cookie_header", "one", format!("\x05{NAME}\na=1; {NAME}={plain}; b=2"));
    write("cookie_header", "two-headers", format!("\x05{NAME}\ntheme=dark\n {NAME} = {signed} "));
    write("cookie_header", "duplicate", format!("\x05{NAME}\n{NAME}=a; {NAME}=b"));
    write("cookie_header", "host-prefix", format!("\x05__Host-s\n__Host-s={sealed};x=\u{ff}"));
    write("cookie_header", "long", format!("\u{f0}{NAME}\n{NAME}={}", "A".repeat(3000)));

    write("id", "text", &plain);
    write("id", "record-id", id.record_id().to_string());
    write("id", "bytes", b"0123456789abcdef");
    write("id", "non-canonical", format!("{}B", &plain[..21]));

    write("id_cookie", "plain", &plain);
    write("id_cookie", "signed", &signed);
    write("id_cookie", "sealed", &sealed);
    write("id_cookie", "id-and-name", b"0123456789abcdef__Host-id");

    let payload = ClientPayload {
        entries: entries(),
        created_at: created(),
        expires_at: expires(),
        expiry: Some(Expiry::OnInactivity(Duration::hours(12))),
    };
    let payload = encode_client(&payload);
    write("client_cookie", "payload", &payload);
    write("client_cookie", "signed", ClientCookie::signed(KEYS.clone()).encode(NAME, &payload));
    write("client_cookie", "sealed", ClientCookie::private(KEYS.clone()).encode(NAME, &payload));
    let empty =
        ClientPayload { entries: Entries::new(), created_at: created(), expires_at: expires(), expiry: None };
    write("client_cookie", "empty", encode_client(&empty));

    for (name, record) in records() {
        write("record", name, record.to_bytes());
        write("stored", name, record.to_bytes());
        write("file_store", name, record.to_bytes());
        let pairs = hash_fields(&record);
        write("redis_hash", name, join_pairs(&pairs));
    }
    write("record", "expiry", Expiry::OnInactivity(Duration::minutes(5)).to_bytes());
    let forward = Forward::new(record_id(8), expires(), expires() - Duration::minutes(1));
    write("stored", "forward", forward.to_bytes());
    write("file_store", "forward", forward.to_bytes());
    // The listed live session is `record_id(9)` (see the target), next to lines that are not ids.
    let index = format!("{}\n{}\nnot an id\n\n{}\n", record_id(8), record_id(9), record_id(9));
    write("file_store", "index", index);
    write("redis_hash", "forward", join_pairs(&[(b"f".to_vec(), record_id(8).to_string().into_bytes())]));
}
