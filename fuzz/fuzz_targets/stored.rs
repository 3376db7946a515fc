//! `Stored::from_bytes`: a record or a forward, as the SQL store's `data` column and the
//! file store's record files hold them.
//!
//! A record reads the same through `Stored` as through `Record::from_bytes` (so no record
//! passes for a forward), and either kind has a canonical form that round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::{Record, Stored};
use session_fuzz::assert_record_round_trips;

fuzz_target!(|data: &[u8]| {
    let stored = Stored::from_bytes(data);
    if let Ok(record) = Record::from_bytes(data) {
        assert_eq!(stored.as_ref().ok(), Some(&Stored::Record(record)), "a record read as something else");
    }
    match stored {
        Ok(Stored::Record(record)) => assert_record_round_trips(&record),
        Ok(Stored::Forward(forward)) => {
            let canonical = forward.to_bytes();
            assert_eq!(Stored::from_bytes(&canonical).ok(), Some(Stored::Forward(forward)));
        }
        Err(_) => {}
    }
});
