//! Security settings shared by every server: credentials (`auth`, with
//! secrets that never print) and TLS (`tls`: certificate, key, client
//! CA, lowest version); and the two helpers every server that checks
//! credentials uses: reading an `Authorization` value's scheme, and
//! comparing secrets in constant time.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

/// Accepted credentials. With any configured, a request without one of
/// them is refused (401 / `UNAUTHENTICATED`). Write them as
/// `${env:NAME}` so they stay out of the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `Authorization: Bearer <token>` with any of these tokens.
    pub bearer_tokens: Vec<Secret>,
    /// `Authorization: Basic …` with any of these users.
    pub basic: Vec<BasicUser>,
}

/// A user for HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    pub username: String,
    pub password: Secret,
}

/// A secret string: read from the file like any other, never printed
/// (its `Debug` and serialised forms are `<redacted>`).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for comparing credentials.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl AuthConfig {
    /// Whether any credential is configured (authentication on).
    pub fn is_enabled(&self) -> bool {
        !self.bearer_tokens.is_empty() || !self.basic.is_empty()
    }

    /// Checks the credentials are strong enough to mean something; `key`
    /// is where they sit in the file (for the error).
    pub fn validate(&self, key: &str) -> Result<(), String> {
        for token in &self.bearer_tokens {
            let t = token.expose();
            if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "{key}.bearer_tokens: each token must be at least 16 characters, without spaces"
                ));
            }
        }
        for user in &self.basic {
            if user.username.is_empty() || user.username.contains(':') {
                return Err(format!(
                    "{key}.basic: username `{}` must be non-empty and without `:`",
                    user.username
                ));
            }
            if user.password.expose().len() < 8 {
                return Err(format!(
                    "{key}.basic: the password of `{}` must be at least 8 characters",
                    user.username
                ));
            }
        }
        Ok(())
    }
}

/// `tls:` of a server: it speaks TLS only (a plaintext client fails the
/// handshake). Files are PEM, read at start and again whenever they
/// change on disk (checked at most every `reload_interval`), so a
/// rotated certificate is served without a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates for client certificates. When set, every client
    /// must present a certificate signed by one of them (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// The lowest protocol version accepted: `"1.2"` or `"1.3"`.
    #[serde(default)]
    pub min_version: TlsVersion,
    /// How often the files are checked for changes (`0s`: never).
    #[serde(default = "default_reload_interval")]
    pub reload_interval: super::HumanDuration,
}

fn default_reload_interval() -> super::HumanDuration {
    super::HumanDuration::secs(60)
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsConfig {
    /// Checks the settings; `key` is where they sit in the file. Whether
    /// the files hold what they should is checked when they are loaded.
    pub fn validate(&self, key: &str) -> Result<(), String> {
        for (field, path) in [("cert_file", &self.cert_file), ("key_file", &self.key_file)] {
            if path.as_os_str().is_empty() {
                return Err(format!(
                    "{key}.{field} is empty; give the path of a PEM file"
                ));
            }
        }
        if self
            .client_ca_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(format!(
                "{key}.client_ca_file is empty; remove it or give the path of a PEM file"
            ));
        }
        Ok(())
    }
}

/// An `Authorization` value split into its scheme and its credentials:
/// the scheme is the text before the first space, and the credentials
/// follow one or more spaces (RFC 9110 §11.1, §11.4). Schemes are
/// case-insensitive, so callers compare them with `eq_ignore_ascii_case`.
/// `None` when there is no space.
pub fn authorization_parts(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    Some((scheme, rest.trim_ascii_start()))
}

/// Whether `a == b`, looking at every byte whatever differs: the time
/// depends only on the lengths, not on where a guess first went wrong.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod helper_tests {
    use super::{authorization_parts, constant_time_eq};

    #[test]
    fn authorization_values_split_at_their_spaces() {
        assert_eq!(
            authorization_parts(b"Bearer t0k"),
            Some((&b"Bearer"[..], &b"t0k"[..]))
        );
        assert_eq!(
            authorization_parts(b"bearer   t0k"),
            Some((&b"bearer"[..], &b"t0k"[..]))
        );
        assert_eq!(authorization_parts(b"Bearert0k"), None);
    }

    #[test]
    fn equality_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
