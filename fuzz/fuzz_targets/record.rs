//! `Record::from_bytes` and `Expiry::from_bytes`: what byte-keeping stores decode.
//!
//! An accepted input has a canonical form (MessagePack allows several spellings of one
//! number) that decodes to the same record and encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::{Expiry, Record};
use session_fuzz::assert_record_round_trips;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::from_bytes(data) {
        assert_record_round_trips(&record);
    }
    if let Ok(expiry) = Expiry::from_bytes(data) {
        let canonical = expiry.to_bytes();
        assert_eq!(Expiry::from_bytes(&canonical).ok(), Some(expiry), "an expiry that does not round-trip");
    }
});
