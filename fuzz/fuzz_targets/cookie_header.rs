//! The scan of a request's `Cookie` headers for the session cookie.
//!
//! Input: a byte for the length limit, the cookie name, then `\n`-separated header values.
//! Whatever it finds is one printable token, within the limit, taken from one header, and
//! found again alone in a header of its own.
#![no_main]

use http::header::{HeaderMap, HeaderValue, COOKIE};
use libfuzzer_sys::fuzz_target;
use session_core::__fuzz::CookieScan;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else { return };
    // Up to 4335: both sides of the 4096 bytes a browser keeps per cookie.
    let max_len = usize::from(limit) * 17;
    let mut parts = rest.split(|&b| b == b'\n');
    let Some(Ok(name)) = parts.next().map(std::str::from_utf8) else { return };
    let Some(scan) = CookieScan::new(name) else { return };
    let mut headers = HeaderMap::new();
    for part in parts {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append(COOKIE, value);
        }
    }
    let Some(found) = scan.find(&headers, max_len) else { return };
    assert!(!found.is_empty() && found.len() <= max_len, "length {} past {max_len}", found.len());
    assert!(found.bytes().all(|b| b.is_ascii_graphic() && b != b';'), "not one printable token");
    assert!(
        headers
            .get_all(COOKIE)
            .iter()
            .any(|h| h.as_bytes().windows(found.len()).any(|w| w == found.as_bytes())),
        "found a value no header holds"
    );
    let mut alone = HeaderMap::new();
    alone.append(
        COOKIE,
        HeaderValue::from_str(&format!("{name}={found}")).expect("a token is a header value"),
    );
    assert_eq!(scan.find(&alone, max_len).as_deref(), Some(found.as_str()), "not found again on its own");
});
