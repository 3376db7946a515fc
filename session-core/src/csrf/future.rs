use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::request::RequestCsrf;
use crate::layer::{keep_private, send_cookie};
use crate::session::csrf::Ending;
use crate::Session;

type Checked<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

pin_project! {
    /// The response future of [`CsrfService`](super::CsrfService).
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        // A safe method: no check, no allocation.
        Unchecked { #[pin] fut: F, end: Option<(RequestCsrf, Option<Session>)> },
        // A state-changing one: the check (which may read the body), then the inner service.
        Checked { fut: Checked<B, E> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn unchecked(fut: F, csrf: RequestCsrf, session: Option<Session>) -> Self {
        Self { kind: Kind::Unchecked { fut, end: Some((csrf, session)) } }
    }

    pub(crate) fn checked(fut: Checked<B, E>) -> Self {
        Self { kind: Kind::Checked { fut } }
    }
}

impl<F, B, E> std::fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Unchecked { fut, end } => {
                let mut res = ready!(fut.poll(cx))?;
                let (csrf, session) = end.take().expect("polled after completion");
                finish(&csrf, session.as_ref(), &mut res);
                Poll::Ready(Ok(res))
            }
            KindProj::Checked { fut } => fut.as_mut().poll(cx),
        }
    }
}

/// After the handler, before the session layer's write-back: sends the anonymous cookie a
/// rendered token needs, ends anonymous tokens at an id change, and lets a session that
/// begins here adopt the anonymous cookie's nonce (so forms already rendered still work).
pub(crate) fn finish<B>(csrf: &RequestCsrf, session: Option<&Session>, res: &mut Response<B>) {
    let issued = csrf.issued();
    let cookie = &csrf.config().cookie;
    if let Some(nonce) = issued {
        let value = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, nonce);
        send_cookie(res.headers_mut(), cookie.set_cookie(&value, None));
    } else if csrf.rendered() {
        // A token is for this browser only.
        keep_private(res.headers_mut());
    }
    let Some(session) = session else { return };
    if res.status().is_server_error() {
        // Nothing is saved: the session does not begin nor change id.
        return;
    }
    match session.csrf_ending() {
        Ending::Cycled if issued.is_none() && csrf.cookie().is_some() => {
            send_cookie(res.headers_mut(), cookie.removal());
        }
        Ending::Begins => {
            if let Some(nonce) = issued.or(csrf.cookie()) {
                session.csrf_adopt(&nonce);
            }
        }
        Ending::Cycled | Ending::Unchanged => {}
    }
}
