//! Authentication: bearer tokens and HTTP basic credentials (an
//! `auth:` section: `receivers.otlp.auth`, `server.auth`), checked
//! against the `Authorization` header (HTTP) or metadata (gRPC) in
//! constant time. With nothing configured every request passes; with
//! anything configured, an OTLP request without valid credentials is
//! refused with 401 / `UNAUTHENTICATED` before admission and decoding (the
//! admin server's guard, in `app.rs`, answers 401 the same way).
//! Credentials never appear in logs or errors.

use base64::Engine;

use super::status::Failure;
use crate::config::types::AuthConfig;
use crate::config::types::{authorization_parts, constant_time_eq};

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = "Bearer realm=\"streamgate\", Basic realm=\"streamgate\"";

/// Why a request's credentials were not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that matches no configured credential.
    Wrong,
}

impl Denied {
    /// What the client is told (never the credentials).
    pub fn message(self) -> &'static str {
        match self {
            Denied::Missing => {
                "this server requires credentials: send an Authorization header (Bearer token or Basic)"
            }
            Denied::Wrong => "the credentials in the Authorization header were not accepted",
        }
    }
}

/// The accepted credentials, as the exact `Authorization` header values
/// that carry them.
#[derive(Clone)]
pub struct Authenticator {
    accepted: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Authenticator({} credentials)", self.accepted.len())
    }
}

impl Authenticator {
    /// `None` when no credentials are configured (authentication off).
    pub fn from_config(config: &AuthConfig) -> Option<Self> {
        let mut accepted: Vec<Vec<u8>> = config
            .bearer_tokens
            .iter()
            .map(|t| format!("Bearer {}", t.expose()).into_bytes())
            .collect();
        for user in &config.basic {
            let pair = format!("{}:{}", user.username, user.password.expose());
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            accepted.push(format!("Basic {encoded}").into_bytes());
        }
        (!accepted.is_empty()).then_some(Self { accepted })
    }

    /// Checks an `Authorization` value, as an OTLP refusal.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), Failure> {
        self.verify(authorization)
            .map_err(|denied| Failure::Unauthenticated(denied.message().into()))
    }

    /// Checks an `Authorization` value. Every accepted credential is
    /// compared in full, in time that depends only on the lengths, so the
    /// answer's timing tells nothing about how close a guess was.
    pub fn verify(&self, authorization: Option<&[u8]>) -> Result<(), Denied> {
        let Some(given) = authorization else {
            return Err(Denied::Missing);
        };
        let given = canonical_scheme(given);
        let mut ok = false;
        for accepted in &self.accepted {
            ok |= constant_time_eq(&given, accepted);
        }
        if ok { Ok(()) } else { Err(Denied::Wrong) }
    }
}

/// An `Authorization` value with its scheme spelled as the accepted
/// credentials spell it (`Bearer`, `Basic`) and one space after it: the
/// scheme is case-insensitive and may be followed by several spaces (RFC
/// 9110 §11.1, §11.4); the credentials are compared as sent.
fn canonical_scheme(given: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let Some((scheme, credentials)) = authorization_parts(given) else {
        return given.into();
    };
    let spelled: &[u8] = if scheme.eq_ignore_ascii_case(b"bearer") {
        b"Bearer"
    } else if scheme.eq_ignore_ascii_case(b"basic") {
        b"Basic"
    } else {
        return given.into();
    };
    if scheme == spelled && given.len() == spelled.len() + 1 + credentials.len() {
        return given.into();
    }
    let mut v = Vec::with_capacity(spelled.len() + 1 + credentials.len());
    v.extend_from_slice(spelled);
    v.push(b' ');
    v.extend_from_slice(credentials);
    v.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::types::{BasicUser, Secret};

    fn auth() -> Authenticator {
        Authenticator::from_config(&AuthConfig {
            bearer_tokens: vec![Secret::new("s3cret-token")],
            basic: vec![BasicUser {
                username: "collector".into(),
                password: Secret::new("pa55"),
            }],
        })
        .expect("configured")
    }

    #[test]
    fn accepts_configured_credentials_only() {
        let a = auth();
        assert!(a.check(Some(b"Bearer s3cret-token")).is_ok());
        // The scheme in any case, and more than one space after it.
        assert!(a.check(Some(b"bearer s3cret-token")).is_ok());
        assert!(a.check(Some(b"BEARER   s3cret-token")).is_ok());
        assert!(a.check(Some(b"basic Y29sbGVjdG9yOnBhNTU=")).is_ok());
        assert!(a.check(Some(b"bearer S3cret-token")).is_err());
        assert!(a.check(Some(b"Token s3cret-token")).is_err());
        // base64("collector:pa55")
        assert!(a.check(Some(b"Basic Y29sbGVjdG9yOnBhNTU=")).is_ok());
        for bad in [
            &b"Bearer s3cret-tokeN"[..],
            b"Bearer s3cret-token ",
            b"bearer",
            b"Basic Y29sbGVjdG9yOnBhNTY=",
            b"",
        ] {
            let err = a.check(Some(bad)).unwrap_err();
            assert_eq!(err.http_status(), http::StatusCode::UNAUTHORIZED);
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
        assert!(
            a.check(None)
                .unwrap_err()
                .to_string()
                .contains("requires credentials")
        );
    }

    #[test]
    fn nothing_configured_means_off_and_secrets_do_not_print() {
        assert!(Authenticator::from_config(&AuthConfig::default()).is_none());
        let debug = format!("{:?} {:?}", auth(), Secret::new("s3cret-token"));
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
