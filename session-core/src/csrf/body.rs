//! The request body the inner service gets, and finding the token in a form.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use pin_project_lite::pin_project;

use super::CsrfError;
use crate::BoxError;

pin_project! {
    /// The body [`CsrfService`](super::CsrfService) hands on: the request's own body, or the
    /// same bytes again once a form was read to find the token.
    pub struct RequestBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Streaming { #[pin] body: B },
        Buffered { bytes: Option<Bytes> },
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn streaming(body: B) -> Self {
        Self { kind: Kind::Streaming { body } }
    }

    pub(crate) fn buffered(bytes: Bytes) -> Self {
        Self { kind: Kind::Buffered { bytes: Some(bytes).filter(|b| !b.is_empty()) } }
    }
}

impl<B> std::fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody").finish_non_exhaustive()
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Streaming { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Buffered { bytes } => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Streaming { body } => body.is_end_stream(),
            Kind::Buffered { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Streaming { body } => body.size_hint(),
            Kind::Buffered { bytes } => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

/// The kinds of body a token may be found in.
pub(crate) enum Form {
    UrlEncoded,
    Multipart(String),
}

impl Form {
    pub(crate) fn of(headers: &HeaderMap) -> Option<Self> {
        let ct = headers.get(CONTENT_TYPE)?.to_str().ok()?;
        let (essence, params) = ct.split_once(';').unwrap_or((ct, ""));
        let essence = essence.trim();
        if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Some(Self::UrlEncoded);
        }
        if !essence.eq_ignore_ascii_case("multipart/form-data") {
            return None;
        }
        let boundary = params.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_owned())
        })?;
        (!boundary.is_empty() && boundary.len() <= 70).then_some(Self::Multipart(boundary))
    }

    /// The first value of `field` in `body`.
    pub(crate) fn field(&self, body: &[u8], field: &str) -> Option<String> {
        match self {
            Self::UrlEncoded => {
                form_urlencoded::parse(body).find(|(k, _)| k == field).map(|(_, v)| v.into_owned())
            }
            Self::Multipart(boundary) => multipart_field(body, boundary, field),
        }
    }
}

/// Reads the whole body, at most `limit` bytes.
pub(crate) async fn read<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, CsrfError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(CsrfError::BodyTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(CsrfError::BodyTooLarge { limit }),
        Err(err) => Err(CsrfError::Body(err)),
    }
}

/// The value of the part named `field` in a `multipart/form-data` body (RFC 7578), read
/// only as far as that part.
fn multipart_field(body: &[u8], boundary: &str, field: &str) -> Option<String> {
    let delimiter = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let mut rest = &body[memchr::memmem::find(body, delimiter.as_bytes())? + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return None;
        }
        let head_end = memchr::memmem::find(rest, b"\r\n\r\n")?;
        let (head, after) = (&rest[..head_end], &rest[head_end + 4..]);
        let end = memchr::memmem::find(after, next.as_bytes())?;
        if part_name(head).is_some_and(|n| n == field) {
            return std::str::from_utf8(&after[..end]).ok().map(str::to_owned);
        }
        rest = &after[end + next.len()..];
    }
}

/// The `name` of a part's `Content-Disposition: form-data` header.
fn part_name(head: &[u8]) -> Option<&str> {
    let head = std::str::from_utf8(head).ok()?;
    head.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if !key.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        value.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("name").then(|| v.trim().trim_matches('"'))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_urlencoded_field() {
        let f = Form::UrlEncoded;
        assert_eq!(f.field(b"a=1&csrf_token=x%2By&csrf_token=z", "csrf_token").as_deref(), Some("x+y"));
        assert_eq!(f.field(b"a=1", "csrf_token"), None);
    }

    #[test]
    fn finds_the_multipart_field() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, "multipart/form-data; boundary=\"XyZ\"".parse().unwrap());
        let Some(f @ Form::Multipart(_)) = Form::of(&h) else { panic!("not multipart") };
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n\
            csrf_token\r\n--XyZ\r\ncontent-disposition: form-data; name=csrf_token\r\n\r\nTOKEN\r\n--XyZ--\r\n";
        assert_eq!(f.field(body, "csrf_token").as_deref(), Some("TOKEN"));
        assert_eq!(f.field(body, "other"), None);
        assert_eq!(f.field(b"garbage", "csrf_token"), None);
        assert_eq!(
            f.field(
                b"--XyZ\r\nContent-Disposition: form-data; name=csrf_token\r\n\r\nunterminated",
                "csrf_token"
            ),
            None
        );
    }

    #[test]
    fn only_forms_are_read() {
        let mut h = HeaderMap::new();
        assert!(Form::of(&h).is_none());
        h.insert(CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(Form::of(&h).is_none());
        h.insert(CONTENT_TYPE, "multipart/form-data".parse().unwrap());
        assert!(Form::of(&h).is_none(), "no boundary");
        h.insert(CONTENT_TYPE, "Application/X-WWW-Form-Urlencoded; charset=utf-8".parse().unwrap());
        assert!(matches!(Form::of(&h), Some(Form::UrlEncoded)));
    }
}
