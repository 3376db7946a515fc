use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::{Entry, CACHE_CONTROL, SET_COOKIE, VARY};
use http::{HeaderValue, Response};
use pin_project_lite::pin_project;

use crate::session::CookieUpdate;
use crate::Session;

/// The write-back: the session's store call, handing the session back with its outcome.
/// Boxed on its own, without the response, to stay within the size glibc serves from its
/// per-thread cache (1,032 bytes): a larger one cost every write about 2,000 instructions
/// (docs/BENCHMARKS.md).
type SaveFuture = Pin<Box<dyn Future<Output = (Session, Result<CookieUpdate, crate::Error>)> + Send>>;

pin_project! {
    /// The response future of [`SessionService`](super::SessionService): runs the inner
    /// service, then writes the session back.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] fut: F, session: Option<Session> },
        Saving { fut: SaveFuture, res: Option<Response<B>> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn new(fut: F, session: Session) -> Self {
        Self { kind: Kind::Inner { fut, session: Some(session) } }
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default + Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().kind.project() {
                KindProj::Inner { fut, session } => {
                    let mut res = ready!(fut.poll(cx))?;
                    let session = session.take().expect("polled after completion");
                    // A handler's `?` on a store failure answers like a failed load or save.
                    // Such a response is a 500: the status is checked first, since a lookup
                    // in the extensions costs every response about 50 instructions.
                    if res.status() == http::StatusCode::INTERNAL_SERVER_ERROR
                        && res.extensions_mut().remove::<crate::error::StoreFailure>().is_some()
                    {
                        *res.status_mut() = session.config().error_status;
                    }
                    // The common cases stay allocation-free: untouched, read-only, or a
                    // failed response (never saved; only a logout's cookie removal holds).
                    if !session.needs_write_back() {
                        return Poll::Ready(Ok(res));
                    }
                    if res.status().is_server_error() {
                        if let Some(removal) = session.cookie_after_failure() {
                            send_cookie(res.headers_mut(), removal);
                        }
                        return Poll::Ready(Ok(res));
                    }
                    let fut: SaveFuture = Box::pin(async move {
                        let outcome = session.finish().await;
                        (session, outcome)
                    });
                    self.as_mut().project().kind.set(Kind::Saving { fut, res: Some(res) });
                }
                KindProj::Saving { fut, res } => {
                    let (session, outcome) = ready!(fut.as_mut().poll(cx));
                    let res = res.take().expect("polled after completion");
                    return Poll::Ready(Ok(written_back(&session, res, outcome)));
                }
            }
        }
    }
}

/// Whether a `Cache-Control` value keeps shared caches from storing the response:
/// `no-store`, or `private` without `public`.
fn keeps_shared_caches_out(value: &HeaderValue) -> bool {
    let Ok(value) = value.to_str() else { return false };
    let has = |name: &str| {
        value.split(',').any(|d| d.split('=').next().is_some_and(|d| d.trim().eq_ignore_ascii_case(name)))
    };
    has("no-store") || (has("private") && !has("public"))
}

/// The response once the write-back ended: its cookie, or the error status.
fn written_back<B: Default>(
    session: &Session,
    mut res: Response<B>,
    outcome: Result<CookieUpdate, crate::Error>,
) -> Response<B> {
    let update = match outcome {
        Ok(update) => update,
        Err(err) => {
            // The error's text and sources name no id, cookie or value.
            tracing::error!(error = %err, source = ?std::error::Error::source(&err), "saving the session failed");
            let mut res = Response::new(B::default());
            *res.status_mut() = session.config().error_status;
            res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Some(removal) = session.cookie_after_failure() {
                send_cookie(res.headers_mut(), removal);
            }
            return res;
        }
    };
    let cookie = match update {
        CookieUpdate::None => return res,
        CookieUpdate::Set(value) => value,
        CookieUpdate::Remove => session.config().cookie.removal(),
    };
    send_cookie(res.headers_mut(), cookie);
    res
}

/// Adds a `Set-Cookie`, and makes sure no shared cache stores the response.
pub(crate) fn send_cookie(headers: &mut http::HeaderMap, cookie: HeaderValue) {
    headers.append(SET_COOKIE, cookie);
    keep_private(headers);
}

/// Makes the response private to this browser: `Cache-Control: private, no-store` unless
/// it is already unstorable by shared caches, and `Vary: Cookie`.
pub(crate) fn keep_private(headers: &mut http::HeaderMap) {
    // One lookup per header (`entry`), whether it is there or not.
    // A shared cache must never hand this cookie to someone else: whatever the app said,
    // the response becomes private unless it is already unstorable.
    match headers.entry(CACHE_CONTROL) {
        Entry::Vacant(e) => {
            e.insert(HeaderValue::from_static("private, no-store"));
        }
        Entry::Occupied(mut e) => {
            if !e.iter().all(keeps_shared_caches_out) || e.iter().next().is_none() {
                e.insert(HeaderValue::from_static("private, no-store"));
            }
        }
    }
    match headers.entry(VARY) {
        Entry::Vacant(e) => {
            e.insert(HeaderValue::from_static("Cookie"));
        }
        Entry::Occupied(mut e) => {
            let varies = e.iter().any(|v| {
                v.to_str().is_ok_and(|v| {
                    v.split(',').any(|p| p.trim().eq_ignore_ascii_case("cookie") || p.trim() == "*")
                })
            });
            if !varies {
                e.append(HeaderValue::from_static("Cookie"));
            }
        }
    }
}
