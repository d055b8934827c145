//! A JSON-RPC 2.0 client for a node's HTTP RPC: positional parameters, HTTP Basic auth from the data
//! dir's cookie file or a configured user, and errors sorted by what a script can do about them.
//!
//! The node serves plain HTTP on loopback only (`docs/RPC.md`), so the client carries no TLS stack.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// The node's RPC address when none is given (`timecoin_node::rpc::DEFAULT_RPC_PORT` on loopback).
pub const DEFAULT_RPC_URL: &str = "http://127.0.0.1:24101";

/// How long one ordinary call may take, connection included. `waitfortx` adds its own wait to this.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Most calls in one batch: the node's default `max_batch_len`.
pub const MAX_BATCH: usize = 16;

/// Largest response body read (the node's own cap is 32 MiB; the slack covers its error wrapping).
const MAX_RESPONSE_BYTES: u64 = 40 * 1024 * 1024;

/// Where the credentials of a node come from.
#[derive(Clone)]
pub enum Credentials {
    /// `DIR/.cookie`, read at the first call and again after a 401 (a restarted node writes a new one).
    Cookie(PathBuf),
    /// A configured `rpc.user` / `rpc.password`.
    UserPassword {
        /// The user name.
        user: String,
        /// The password; never printed.
        password: String,
    },
}

// Hand-written so a password never reaches an error message or a log line.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Cookie(path) => f.debug_tuple("Cookie").field(path).finish(),
            Credentials::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// One node to talk to: its RPC URL, credentials, and a short name for tables.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// A name for displays (`node0`, or the URL).
    pub name: String,
    /// `http://host:port`.
    pub url: String,
    /// How to authenticate.
    pub credentials: Credentials,
}

/// Why a call failed, sorted by the exit code a script sees (`crate::exit`).
#[derive(Debug)]
pub enum RpcError {
    /// No HTTP answer: nothing listens, the connection broke, or the URL is wrong.
    Unreachable {
        /// The node's URL.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// The node refused the credentials (HTTP 401), or there were none to send.
    Auth {
        /// The node's URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// No answer within the call's time limit.
    Timeout {
        /// The node's URL.
        url: String,
        /// The method called.
        method: String,
    },
    /// The node answered with a JSON-RPC error.
    Node {
        /// The method called.
        method: String,
        /// The JSON-RPC error code (`docs/RPC.md` lists them).
        code: i64,
        /// The node's message.
        message: String,
    },
    /// An HTTP answer that is not a JSON-RPC response.
    Protocol {
        /// The node's URL.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Unreachable { url, reason } => {
                write!(f, "node at {url} unreachable: {reason}")
            }
            RpcError::Auth { url, reason } => write!(f, "node at {url} refused auth: {reason}"),
            RpcError::Timeout { url, method } => {
                write!(f, "node at {url} did not answer {method} in time")
            }
            RpcError::Node {
                method,
                code,
                message,
            } => write!(f, "{method} rejected by the node (error {code}): {message}"),
            RpcError::Protocol { url, reason } => {
                write!(f, "node at {url} sent a bad answer: {reason}")
            }
        }
    }
}

impl std::error::Error for RpcError {}

/// A blocking JSON-RPC client for one node. Cheap to share between threads (`&RpcClient`): the HTTP
/// agent pools its connections, and the auth header is cached behind a lock.
pub struct RpcClient {
    agent: ureq::Agent,
    endpoint: Endpoint,
    header: Mutex<Option<String>>,
    next_id: AtomicU64,
    timeout: Duration,
}

impl RpcClient {
    /// A client for `endpoint` whose calls may take [`CALL_TIMEOUT`]; nothing is sent until the first
    /// call.
    pub fn new(endpoint: Endpoint) -> RpcClient {
        Self::with_timeout(endpoint, CALL_TIMEOUT)
    }

    /// A client whose ordinary calls may take `timeout` (a live view wants a short one).
    pub fn with_timeout(endpoint: Endpoint, timeout: Duration) -> RpcClient {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_idle_connections_per_host(64)
            .build()
            .into();
        RpcClient {
            agent,
            endpoint,
            header: Mutex::new(None),
            next_id: AtomicU64::new(1),
            timeout,
        }
    }

    /// The node this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Calls `method` with positional `params` (a JSON array).
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.call_with_timeout(method, params, self.timeout)
    }

    /// Calls `method`, allowing it `timeout` end to end.
    pub fn call_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        match self.attempt(method, &params, timeout) {
            // A node restarted since the cookie was read has written a new one: read it once more.
            Err(RpcError::Auth { .. })
                if matches!(self.endpoint.credentials, Credentials::Cookie(_)) =>
            {
                self.forget_header();
                self.attempt(method, &params, timeout)
            }
            other => other,
        }
    }

    /// Calls `method` once per entry of `params` in one HTTP request (a JSON-RPC batch of at most
    /// [`MAX_BATCH`] calls); the answers come back in the order asked. A transport failure fails the
    /// whole batch; a node's refusal of one call is that call's answer.
    pub fn batch(
        &self,
        method: &str,
        params: &[Value],
    ) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
        if params.len() > MAX_BATCH {
            return Err(RpcError::Protocol {
                url: self.endpoint.url.clone(),
                reason: format!("a batch of {} calls, over {MAX_BATCH}", params.len()),
            });
        }
        let first = self
            .next_id
            .fetch_add(params.len() as u64, Ordering::Relaxed);
        let body = Value::Array(
            params
                .iter()
                .zip(first..)
                .map(|(p, id)| json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": p }))
                .collect(),
        );
        let reply = match self.post(method, &body, self.timeout) {
            Err(RpcError::Auth { .. })
                if matches!(self.endpoint.credentials, Credentials::Cookie(_)) =>
            {
                self.forget_header();
                self.post(method, &body, self.timeout)
            }
            other => other,
        }?;
        let Value::Array(answers) = reply else {
            // The batch refused whole (too long for the node): every call gets that error.
            let refusal = result_of(&self.endpoint.url, method, &reply);
            return Ok(params
                .iter()
                .map(|_| match &refusal {
                    Err(RpcError::Node { code, message, .. }) => Err(RpcError::Node {
                        method: method.to_string(),
                        code: *code,
                        message: message.clone(),
                    }),
                    _ => Err(RpcError::Protocol {
                        url: self.endpoint.url.clone(),
                        reason: "a batch answered with one object".into(),
                    }),
                })
                .collect());
        };
        let mut by_id: std::collections::HashMap<u64, Value> = answers
            .into_iter()
            .filter_map(|a| a.get("id").and_then(Value::as_u64).map(|id| (id, a)))
            .collect();
        Ok((first..)
            .take(params.len())
            .map(|id| match by_id.remove(&id) {
                Some(answer) => result_of(&self.endpoint.url, method, &answer),
                None => Err(RpcError::Protocol {
                    url: self.endpoint.url.clone(),
                    reason: format!("no answer for call {id} of a batch"),
                }),
            })
            .collect())
    }

    fn attempt(&self, method: &str, params: &Value, timeout: Duration) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let reply = self.post(method, &body, timeout)?;
        result_of(&self.endpoint.url, method, &reply)
    }

    /// Posts `body` and returns the parsed JSON answer; `method` names the call in errors. A 401 means
    /// the node ran nothing, so a caller may safely send again with fresh credentials.
    fn post(&self, method: &str, body: &Value, timeout: Duration) -> Result<Value, RpcError> {
        let url = &self.endpoint.url;
        let header = self.auth_header()?;
        let response = self
            .agent
            .post(url.as_str())
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Authorization", header.as_str())
            .header("Content-Type", "application/json")
            .send(body.to_string());
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return Err(transport_error(url, method, e)),
        };
        let status = response.status().as_u16();
        if status == 401 {
            return Err(RpcError::Auth {
                url: url.clone(),
                reason: "HTTP 401: wrong or stale credentials".into(),
            });
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| transport_error(url, method, e))?;
        if status != 200 {
            return Err(RpcError::Protocol {
                url: url.clone(),
                reason: format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                ),
            });
        }
        serde_json::from_str(&text).map_err(|e| RpcError::Protocol {
            url: url.clone(),
            reason: format!("not JSON: {e}"),
        })
    }

    fn auth_header(&self) -> Result<String, RpcError> {
        let mut cached = self.header.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = cached.as_ref() {
            return Ok(h.clone());
        }
        let pair = match &self.endpoint.credentials {
            Credentials::UserPassword { user, password } => format!("{user}:{password}"),
            Credentials::Cookie(path) => read_cookie(path).map_err(|reason| RpcError::Auth {
                url: self.endpoint.url.clone(),
                reason,
            })?,
        };
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        );
        *cached = Some(header.clone());
        Ok(header)
    }

    fn forget_header(&self) {
        *self.header.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// One JSON-RPC answer's result, or its error as [`RpcError::Node`].
fn result_of(url: &str, method: &str, reply: &Value) -> Result<Value, RpcError> {
    if let Some(error) = reply.get("error") {
        return Err(RpcError::Node {
            method: method.to_string(),
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .to_string(),
        });
    }
    reply
        .get("result")
        .cloned()
        .ok_or_else(|| RpcError::Protocol {
            url: url.to_string(),
            reason: "neither result nor error in the answer".into(),
        })
}

/// The `user:password` line of a cookie file; the reason in words when it cannot be used.
fn read_cookie(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the cookie {}: {e} (is the node running with that data dir?)",
            path.display()
        )
    })?;
    let line = text.trim();
    match line.split_once(':') {
        Some((user, secret)) if !user.is_empty() && !secret.is_empty() => Ok(line.to_string()),
        _ => Err(format!(
            "the cookie {} is not `user:password`",
            path.display()
        )),
    }
}

fn transport_error(url: &str, method: &str, e: ureq::Error) -> RpcError {
    match e {
        ureq::Error::Timeout(_) => RpcError::Timeout {
            url: url.to_string(),
            method: method.to_string(),
        },
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => RpcError::Timeout {
            url: url.to_string(),
            method: method.to_string(),
        },
        ureq::Error::Protocol(p) => RpcError::Protocol {
            url: url.to_string(),
            reason: p.to_string(),
        },
        other => RpcError::Unreachable {
            url: url.to_string(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_password_never_shows_in_debug_output() {
        let c = Credentials::UserPassword {
            user: "alice".into(),
            password: "hunter2".into(),
        };
        let text = format!("{c:?}");
        assert!(
            text.contains("alice") && !text.contains("hunter2"),
            "{text}"
        );
    }

    #[test]
    fn a_cookie_must_hold_user_and_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".cookie");
        std::fs::write(&path, "__cookie__:abcd\n").unwrap();
        assert_eq!(read_cookie(&path).unwrap(), "__cookie__:abcd");
        std::fs::write(&path, "nocolon").unwrap();
        assert!(read_cookie(&path).is_err());
        assert!(read_cookie(&dir.path().join("missing")).is_err());
    }
}
