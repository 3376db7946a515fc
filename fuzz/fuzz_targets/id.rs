//! `Id` and `RecordId` parsing: strict, so each id has exactly one text form.
//!
//! Input: text to parse, and (its first 16 bytes) an id to encode.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use session_core::__fuzz::{id_bytes, id_from_bytes};
use session_core::{Id, RecordId};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = text.parse::<Id>() {
            assert_eq!(id.to_string(), text, "an id parsed from a text it does not print");
            // The hand-written decoder agrees with the base64 crate's strict one.
            assert_eq!(URL_SAFE_NO_PAD.decode(text).ok().as_deref(), Some(&id_bytes(&id)[..]));
        }
        if let Ok(record) = text.parse::<RecordId>() {
            assert_eq!(record.to_string(), text, "a record id parsed from a text it does not print");
        }
    }
    if let Some(bytes) = data.get(..16) {
        let bytes: [u8; 16] = bytes.try_into().expect("16 bytes");
        let id = id_from_bytes(bytes);
        let text = id.to_string();
        assert_eq!(text, URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(text.parse::<Id>().ok(), Some(id));
        assert_eq!(id.record_id().to_string().parse::<RecordId>().ok(), Some(id.record_id()));
    }
});
