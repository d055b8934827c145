//! HTTP Basic auth for the RPC: Bitcoin's cookie file, or a configured user and password, checked by
//! a tower layer before jsonrpsee reads the body, so an unauthenticated request runs nothing.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use hyper::StatusCode;
use hyper::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};
use tracing::{debug, warn};

use crate::NodeError;

/// The cookie file's name inside its directory.
pub const COOKIE_FILE: &str = ".cookie";
/// The user name the cookie file holds (Bitcoin's).
pub const COOKIE_USER: &str = "__cookie__";

/// The `user:password` pair a request must present.
#[derive(Clone)]
pub(crate) struct Credentials(Arc<Vec<u8>>);

impl Credentials {
    pub(crate) fn new(user: &str, password: &str) -> Self {
        Credentials(Arc::new(format!("{user}:{password}").into_bytes()))
    }

    /// Whether an `Authorization` header carries these credentials.
    fn admits(&self, header: Option<&HeaderValue>) -> bool {
        let Some(value) = header.and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let Some(encoded) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        // Constant time in the contents, so a caller cannot find the password byte by byte.
        decoded.len() == self.0.len() && bool::from(decoded.as_slice().ct_eq(self.0.as_slice()))
    }
}

/// The cookie file this server wrote; deleted by [`CookieFile::remove`] or when dropped.
pub struct CookieFile {
    path: PathBuf,
    password: String,
}

// Hand-written so the secret never reaches a log line.
impl std::fmt::Debug for CookieFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl CookieFile {
    /// Writes `dir/.cookie` holding `__cookie__:<64 hex random>`, mode 0600, atomically (a temporary
    /// file, synced, then renamed), replacing a stale one from an earlier run.
    pub fn create(dir: &Path) -> Result<CookieFile, NodeError> {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let password = hex::encode(secret);
        let path = dir.join(COOKIE_FILE);
        let temp = dir.join(format!("{COOKIE_FILE}.tmp"));
        let fail = |what: &str, e: std::io::Error| {
            NodeError::Rpc(format!(
                "cannot {what} the cookie file in {}: {e}",
                dir.display()
            ))
        };
        let _ = std::fs::remove_file(&temp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temp).map_err(|e| fail("create", e))?;
        file.write_all(format!("{COOKIE_USER}:{password}").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| fail("write", e))?;
        drop(file);
        std::fs::rename(&temp, &path).map_err(|e| fail("rename", e))?;
        debug!(path = %path.display(), "rpc cookie written");
        Ok(CookieFile { path, password })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn credentials(&self) -> Credentials {
        Credentials::new(COOKIE_USER, &self.password)
    }

    /// Deletes the file now.
    pub fn remove(self) {
        drop(self);
    }
}

impl Drop for CookieFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(path = %self.path.display(), %e, "cannot delete the rpc cookie");
        }
    }
}

/// Puts [`Credentials`] in front of the jsonrpsee service.
#[derive(Clone)]
pub(crate) struct AuthLayer(Credentials);

impl AuthLayer {
    pub(crate) fn new(credentials: Credentials) -> Self {
        AuthLayer(credentials)
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            credentials: self.0.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes: 401 without the right `Authorization`, the inner service with it.
#[derive(Clone)]
pub(crate) struct Auth<S> {
    inner: S,
    credentials: Credentials,
}

impl<S, B> Service<HttpRequest<B>> for Auth<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        if self
            .credentials
            .admits(request.headers().get(AUTHORIZATION))
        {
            Box::pin(self.inner.call(request))
        } else {
            debug!("rpc request without valid credentials refused");
            Box::pin(async { Ok(unauthorized()) })
        }
    }
}

fn unauthorized() -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from("unauthorized\n"));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"timecoin-rpc\""),
    );
    response
}
