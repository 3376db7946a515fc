//! The check of one state-changing request, in order: Fetch Metadata, Origin, the token.

use bytes::Bytes;
use http::header::{HeaderMap, ORIGIN};
use http::{Method, Request};
use http_body::Body;

use super::body::{self, Form, RequestBody};
use super::request::RequestCsrf;
use super::token::{self, Refusal, Secret};
use super::CsrfError;
use crate::crypto::SIG_LEN;
use crate::session::csrf::Binding;

use crate::{BoxError, Session};

/// Methods that must not change state, so need no proof.
pub(crate) fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Checks a state-changing request; on success, the request to hand on (with its body
/// intact, re-assembled if a form was read to find the token).
pub(crate) async fn check<B>(
    req: Request<B>,
    cx: &RequestCsrf,
    session: Option<&Session>,
) -> Result<Request<RequestBody<B>>, CsrfError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let config = cx.config();
    provenance(req.headers(), &config.origins)?;
    let (parts, body) = req.into_parts();
    let header = parts.headers.get(&config.header).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (sent, body) = match (header, Form::of(&parts.headers)) {
        (Some(sent), _) => (sent, RequestBody::streaming(body)),
        (None, Some(form)) => {
            let bytes = body::read(&parts.headers, body, config.max_body).await?;
            let sent = form.field(&bytes, &config.field).ok_or(CsrfError::MissingToken)?;
            (sent, RequestBody::buffered(bytes))
        }
        (None, None) => return Err(CsrfError::MissingToken),
    };
    verify(&sent, cx, session).await?;
    Ok(Request::from_parts(parts, body))
}

/// Fetch Metadata first (`Sec-Fetch-Site: cross-site` is refused), then `Origin`, when
/// present, must be an allowed one.
fn provenance(headers: &HeaderMap, origins: &[String]) -> Result<(), CsrfError> {
    if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site")) {
        return Err(CsrfError::CrossSite);
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.as_bytes();
        if !origins.iter().any(|o| o.as_bytes().eq_ignore_ascii_case(origin)) {
            return Err(CsrfError::ForeignOrigin);
        }
    }
    Ok(())
}

/// Whether `sent` is a token this visitor was given: bound to their session if they have
/// one (or, for a session that began beside an anonymous cookie and never changed id, to
/// that cookie's nonce), else to their anonymous cookie.
async fn verify(sent: &str, cx: &RequestCsrf, session: Option<&Session>) -> Result<(), CsrfError> {
    let config = cx.config();
    let secret = token::unmask(sent).ok_or(CsrfError::InvalidToken)?;
    let binding = match session {
        Some(session) => session.csrf_binding().await.map_err(CsrfError::Session)?,
        None => Binding::None,
    };
    let anonymous = |nonce: &[u8], issued: i64, tag: &[u8; SIG_LEN]| {
        token::check_anonymous(
            &config.keys,
            nonce,
            issued,
            tag,
            config.lifetime,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|r| match r {
            Refusal::Invalid => CsrfError::InvalidToken,
            Refusal::Expired => CsrfError::ExpiredToken,
        })
    };
    let ok = match (&secret, &binding) {
        (Secret::Session(s), Binding::Record(rid, _)) => token::check_record(&config.keys, rid, s),
        (Secret::Session(s), Binding::Client(Some(stored), _)) => token::check_stored(stored, s),
        (Secret::Anonymous { issued, tag }, Binding::None) => {
            let nonce = cx.cookie().ok_or(CsrfError::MissingCookie)?;
            return anonymous(&nonce, *issued, tag);
        }
        (Secret::Anonymous { issued, tag }, binding) => match binding.adopted() {
            Some(nonce) => return anonymous(nonce, *issued, tag),
            None => false,
        },
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(CsrfError::InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_refuses_cross_site_and_foreign_origins() {
        let allowed = vec!["https://app.example".to_owned()];
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert!(provenance(&h(&[]), &allowed).is_ok());
        assert!(provenance(
            &h(&[("sec-fetch-site", "same-origin"), ("origin", "https://APP.example")]),
            &allowed
        )
        .is_ok());
        assert!(provenance(&h(&[("sec-fetch-site", "none")]), &allowed).is_ok());
        assert!(matches!(
            provenance(&h(&[("sec-fetch-site", "cross-site")]), &allowed),
            Err(CsrfError::CrossSite)
        ));
        assert!(matches!(
            provenance(&h(&[("origin", "https://evil.example")]), &allowed),
            Err(CsrfError::ForeignOrigin)
        ));
        assert!(matches!(provenance(&h(&[("origin", "null")]), &allowed), Err(CsrfError::ForeignOrigin)));
        assert!(matches!(
            provenance(&h(&[("origin", "https://app.example")]), &[]),
            Err(CsrfError::ForeignOrigin)
        ));
    }
}
