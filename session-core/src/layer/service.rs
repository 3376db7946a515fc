use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::ResponseFuture;
use crate::session::Config;
use crate::Session;

/// The service [`SessionLayer`](super::SessionLayer) wraps around your service.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> SessionService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let cookie = self.config.cookie.find(req.headers(), self.config.max_cookie_len());
        let session = Session::new(Arc::clone(&self.config), cookie);
        req.extensions_mut().insert(session.clone());
        ResponseFuture::new(self.inner.call(req), session)
    }
}
