//! A response with its body read.

use bytes::Bytes;
use http::header::LOCATION;
use http::{HeaderMap, StatusCode};

/// A response of a [`TestClient`](super::TestClient), body read into memory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers, `Set-Cookie` included (the client's jar has taken them in already).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl TestResponse {
    /// The body as text (invalid UTF-8 replaced).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `Location` header, `""` when there is none.
    #[must_use]
    pub fn location(&self) -> &str {
        self.header(LOCATION.as_str()).unwrap_or_default()
    }

    /// The first value of header `name`, if it is there and is text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
