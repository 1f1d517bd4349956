//! API keys and the request guard: `Authorization: Bearer <key>` checked in constant time,
//! and the Host-header allow-list that stops DNS-rebinding pages from reaching a server
//! bound to loopback (RELIABILITY §5(d) 2–3).
//!
//! Only SHA-256 digests of the keys are kept. A presented key is hashed and compared with
//! every stored digest using `subtle`'s constant-time equality, without stopping at the
//! first match, so neither the position of a mismatch nor which key matched shows in the
//! timing. Every failure gets the same 401 body.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The set of accepted keys, stored as SHA-256 digests.
#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

/// Which tenant a request belongs to: a salt derived from its API key (0 without keys), so
/// that prefix-cache blocks are never shared across keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tenant(pub u64);

impl ApiKeys {
    /// Keys from their plain text (whitespace around each is trimmed by the caller).
    pub fn new<S: AsRef<str>>(keys: &[S]) -> ApiKeys {
        ApiKeys {
            digests: keys.iter().map(|k| digest(k.as_ref())).collect(),
        }
    }

    /// True when no key is configured (every request is accepted).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Checks a presented key. Constant time in the key's content and in which stored key
    /// it matches.
    pub fn check(&self, presented: &str) -> Option<Tenant> {
        let d = digest(presented);
        let mut matched = subtle::Choice::from(0u8);
        for stored in &self.digests {
            matched |= stored.ct_eq(&d);
        }
        bool::from(matched).then(|| Tenant(salt(&d)))
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The first 8 bytes of the key digest: the tenant's prefix-cache salt.
fn salt(digest: &[u8; 32]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

/// The key in `Authorization: Bearer <key>`, if the header has that form.
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// True when `host` (a Host header value) names an allowed host. Empty values never pass.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]:8080` → `[::1]`
        Some(rest) => match rest.split_once(']') {
            Some((inner, _)) => format!("[{inner}]"),
            None => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(h, _)| h).to_string(),
    };
    !name.is_empty() && allowed.iter().any(|a| a.eq_ignore_ascii_case(&name))
}

/// Middleware on the `/v1` routes: Host allow-list, then the API key. On success the
/// request carries its [`Tenant`] as an extension.
pub async fn guard(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !state.allowed_hosts.is_empty() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !host_allowed(host, &state.allowed_hosts) {
            return ApiError::bad_host().into_response();
        }
    }
    let tenant = if state.keys.is_empty() {
        Tenant(0)
    } else {
        match bearer(&request).and_then(|key| state.keys.check(key)) {
            Some(tenant) => tenant,
            None => return ApiError::unauthorized().into_response(),
        }
    };
    request.extensions_mut().insert(tenant);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only an exact key passes; each key gets its own salt.
    #[test]
    fn keys_match_exactly() {
        let keys = ApiKeys::new(&["sk-alpha", "sk-beta"]);
        let a = keys.check("sk-alpha").expect("first key");
        let b = keys.check("sk-beta").expect("second key");
        assert_ne!(a, b);
        for wrong in ["sk-alph", "sk-alphb", "sk-alpha ", "", "SK-ALPHA"] {
            assert_eq!(keys.check(wrong), None, "{wrong:?}");
        }
        assert!(ApiKeys::new::<&str>(&[]).is_empty());
    }

    /// Loopback names with and without ports; anything else, and an empty Host, fails.
    #[test]
    fn host_allow_list() {
        let allowed: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
            "LOCALHOST",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "evil.com",
            "evil.com:8080",
            "127.0.0.2",
            "[::2]:1",
            "[::1",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }
}
