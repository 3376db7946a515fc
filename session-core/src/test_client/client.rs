//! The client: sends requests through a service in memory, with a cookie jar.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use axum_core::body::Body;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::BodyExt;
use tower_service::Service;

use super::{CookieJar, TestResponse};
use crate::session::{Config, CookieUpdate};
use crate::{BoxError, Error, Session, SessionLayer};

/// An in-process client for a [`Router`](https://docs.rs/axum/latest/axum/struct.Router.html) or any tower service, with a
/// [`CookieJar`] that behaves like a browser's, and access to its session around requests.
///
/// Cloning it copies the jar: a second browser that stole (or was given) the cookies.
/// [`on`](TestClient::on) points the same browser, one shared jar, at another service (a
/// second app instance behind a load balancer).
pub struct TestClient<S> {
    service: S,
    jar: Arc<Mutex<CookieJar>>,
    config: Option<Arc<Config>>,
}

impl<S: Clone> Clone for TestClient<S> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            jar: Arc::new(Mutex::new(self.jar())),
            config: self.config.clone(),
        }
    }
}

impl<S> fmt::Debug for TestClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient").field("jar", &self.jar()).finish_non_exhaustive()
    }
}

impl<S> TestClient<S> {
    /// A client for `service`, with an empty jar.
    #[must_use]
    pub fn new(service: S) -> Self {
        Self { service, jar: Arc::default(), config: None }
    }

    /// Lets [`session`](TestClient::session) open this client's session through `layer`:
    /// pass the layer (or a clone of the layer) the service uses.
    #[must_use]
    pub fn with_session_layer(mut self, layer: &SessionLayer) -> Self {
        self.config = Some(layer.config());
        self
    }

    /// The same browser (one shared jar, the same session layer) talking to `service`.
    #[must_use]
    pub fn on<T>(&self, service: T) -> TestClient<T> {
        TestClient { service, jar: Arc::clone(&self.jar), config: self.config.clone() }
    }

    /// A copy of the cookie jar.
    #[must_use]
    pub fn jar(&self) -> CookieJar {
        self.jar.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the cookie jar.
    pub fn set_jar(&self, jar: CookieJar) {
        *self.jar.lock().unwrap_or_else(PoisonError::into_inner) = jar;
    }

    /// Changes the cookie jar in place.
    pub fn with_jar<T>(&self, f: impl FnOnce(&mut CookieJar) -> T) -> T {
        f(&mut self.jar.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<S, B> TestClient<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    /// Sends `request` with the jar's cookies for its path (unless it has a `Cookie`
    /// header already), takes in the response's `Set-Cookie`s and reads its body.
    ///
    /// # Panics
    ///
    /// When the service or the body fails: this is a test helper.
    pub async fn send(&self, mut request: Request<Body>) -> TestResponse {
        let path = request.uri().path().to_owned();
        if !request.headers().contains_key(COOKIE) {
            if let Some(cookies) = self.jar().header_for(&path) {
                let value = HeaderValue::try_from(cookies).expect("cookie values are header-safe");
                request.headers_mut().insert(COOKIE, value);
            }
        }
        let mut service = self.service.clone();
        let ready = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
        let response = match ready {
            Ok(()) => service.call(request).await,
            Err(err) => Err(err),
        };
        let response = response.unwrap_or_else(|e| panic!("the service failed: {}", e.into()));
        self.take_cookies(response.headers(), &path);
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap_or_else(|e| panic!("reading the body failed: {}", e.into()));
        TestResponse { status: parts.status, headers: parts.headers, body: body.to_bytes() }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(request(Method::GET, path, None, Body::empty())).await
    }

    /// `POST path` with `body` (no `Content-Type`).
    pub async fn post(&self, path: &str, body: impl Into<Body>) -> TestResponse {
        self.send(request(Method::POST, path, None, body.into())).await
    }

    /// `POST path` with `fields` as an `application/x-www-form-urlencoded` body.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let form = "application/x-www-form-urlencoded";
        self.send(request(Method::POST, path, Some(form), Body::from(form_encode(fields)))).await
    }

    fn take_cookies(&self, headers: &HeaderMap, path: &str) {
        let mut jar = self.jar.lock().unwrap_or_else(PoisonError::into_inner);
        for value in headers.get_all(SET_COOKIE) {
            jar.apply(value, path);
        }
    }

    /// Runs `f` on the session this client's cookie names, as a request through the
    /// session layer would (Flask's `session_transaction()`): values it inserts are there
    /// for the next request, and values earlier responses stored can be read. Then writes
    /// the session back exactly as the layer does and takes in the cookie it sets. Works
    /// on every store and in client-side mode.
    ///
    /// # Errors
    ///
    /// What `f` returns, or the write-back's error.
    ///
    /// # Panics
    ///
    /// When the client was built without [`with_session_layer`](TestClient::with_session_layer).
    pub async fn session<F, Fut, T>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let config = self.config.clone().expect("TestClient::session needs with_session_layer");
        let path = config.cookie.path.clone();
        let mut headers = HeaderMap::new();
        if let Some(cookies) = self.jar().header_for(&path) {
            headers.insert(COOKIE, HeaderValue::try_from(cookies).expect("cookie values are header-safe"));
        }
        let cookie = config.cookie.find(&headers, config.max_cookie_len());
        let session = Session::new(Arc::clone(&config), cookie);
        let out = f(session.clone()).await?;
        if !session.needs_write_back() {
            return Ok(out);
        }
        let set = match session.finish().await? {
            CookieUpdate::None => return Ok(out),
            CookieUpdate::Set(value) => value,
            CookieUpdate::Remove => config.cookie.removal(),
        };
        self.jar.lock().unwrap_or_else(PoisonError::into_inner).apply(&set, &path);
        Ok(out)
    }
}

fn request(method: Method, path: &str, content_type: Option<&str>, body: Body) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(t) = content_type {
        builder = builder.header(CONTENT_TYPE, t);
    }
    builder.body(body).unwrap_or_else(|e| panic!("not a request path: {path:?} ({e})"))
}

/// `application/x-www-form-urlencoded`, as browsers write it.
fn form_encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(name, &mut out);
        out.push('=');
        encode_into(value, &mut out);
    }
    out
}

fn encode_into(text: &str, out: &mut String) {
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::form_encode;

    #[test]
    fn forms_are_encoded_like_browsers_do() {
        assert_eq!(form_encode(&[("a b", "x&y=z"), ("é", "1+1")]), "a+b=x%26y%3Dz&%C3%A9=1%2B1");
        assert_eq!(form_encode(&[]), "");
    }
}
