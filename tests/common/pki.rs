//! A throwaway PKI for TLS tests, written as PEM files into a directory:
//! a CA, a server certificate for `localhost` and `127.0.0.1` signed by
//! it, a client certificate signed by it, and a client certificate signed
//! by a second CA the server does not trust.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The files of a generated PKI.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub rogue_client_cert: PathBuf,
    pub rogue_client_key: PathBuf,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

fn leaf(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'static, KeyPair>,
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("leaf certificate");
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write PEM");
    path
}

/// Generates the PKI into `dir`.
pub fn generate(dir: &Path) -> Pki {
    let (ca_pem, issuer) = ca("StreamGate test CA");
    let (server_pem, server_key) = leaf(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    );
    let (client_pem, client_key) = leaf(&["agent"], ExtendedKeyUsagePurpose::ClientAuth, &issuer);
    let (_, rogue_issuer) = ca("Someone else's CA");
    let (rogue_pem, rogue_key) = leaf(
        &["intruder"],
        ExtendedKeyUsagePurpose::ClientAuth,
        &rogue_issuer,
    );
    Pki {
        ca: write(dir, "ca.pem", &ca_pem),
        server_cert: write(dir, "server.pem", &server_pem),
        server_key: write(dir, "server-key.pem", &server_key),
        client_cert: write(dir, "client.pem", &client_pem),
        client_key: write(dir, "client-key.pem", &client_key),
        rogue_client_cert: write(dir, "rogue.pem", &rogue_pem),
        rogue_client_key: write(dir, "rogue-key.pem", &rogue_key),
    }
}

impl Pki {
    /// A `tls:` block for a StreamGate server (YAML, unindented), with
    /// client certificates required when `mutual`.
    pub fn server_yaml(&self, mutual: bool) -> String {
        let mut yaml = format!(
            "tls:\n  cert_file: {}\n  key_file: {}\n",
            self.server_cert.display(),
            self.server_key.display()
        );
        if mutual {
            yaml.push_str(&format!("  client_ca_file: {}\n", self.ca.display()));
        }
        yaml
    }
}
