use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::check::{check, is_safe};
use super::future::{finish, ResponseFuture};
use super::layer::Config;
use super::request::RequestCsrf;
use super::RequestBody;
use crate::{BoxError, Session};

/// The service [`CsrfLayer`](super::CsrfLayer) wraps around your service.
#[derive(Debug, Clone)]
pub struct CsrfService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> CsrfService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CsrfService<S>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let session = req.extensions().get::<Session>().cloned();
        let csrf = RequestCsrf::new(Arc::clone(&self.config), req.headers(), session.is_some());
        req.extensions_mut().insert(csrf.clone());
        if is_safe(req.method()) {
            let fut = self.inner.call(req.map(RequestBody::streaming));
            return ResponseFuture::unchecked(fut, csrf, session);
        }
        // The service that was made ready goes into the future; its clone stays here.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::checked(Box::pin(async move {
            match check(req, &csrf, session.as_ref()).await {
                Ok(req) => {
                    let mut res = inner.call(req).await?;
                    finish(&csrf, session.as_ref(), &mut res);
                    Ok(res)
                }
                Err(err) => {
                    // The reason only: never the token, cookie or session.
                    tracing::debug!(reason = %err, "CSRF check refused the request");
                    Ok(err.to_response())
                }
            }
        }))
    }
}
