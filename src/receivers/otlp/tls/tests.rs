//! Loading TLS settings: good files load, each kind of bad file is named
//! in the error with its config key, and a rotated certificate is picked
//! up while a broken rotation keeps the previous one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::types::HumanDuration;

/// A self-signed certificate and its key for `name`, as PEM.
fn self_signed(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    (cert.pem(), key.serialize_pem())
}

fn settings(dir: &Path) -> TlsConfig {
    TlsConfig {
        cert_file: dir.join("cert.pem"),
        key_file: dir.join("key.pem"),
        client_ca_file: None,
        min_version: TlsVersion::Tls12,
        reload_interval: HumanDuration::secs(0),
    }
}

fn write_pair(dir: &Path, name: &str) -> String {
    let (cert, key) = self_signed(name);
    std::fs::write(dir.join("cert.pem"), &cert).expect("write cert");
    std::fs::write(dir.join("key.pem"), key).expect("write key");
    cert
}

fn load(settings: &TlsConfig) -> Result<ServerTls, TlsError> {
    ServerTls::new(
        settings,
        "receivers.otlp.grpc.tls",
        Alpn::H2,
        TlsServer::OtlpGrpc,
        Duration::from_secs(1),
        Arc::new(Telemetry::new()),
    )
}

#[test]
fn good_files_load_with_alpn_and_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_pair(dir.path(), "localhost");
    let tls = load(&settings(dir.path())).expect("loads");
    let config = tls.config();
    assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
    let mut strict = settings(dir.path());
    strict.min_version = TlsVersion::Tls13;
    strict.client_ca_file = Some(dir.path().join("cert.pem"));
    load(&strict).expect("TLS 1.3 only, with client certificates");
}

#[test]
fn bad_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = load(&settings(dir.path())).expect_err("no files");
    let text = missing.to_string();
    assert!(
        text.starts_with("receivers.otlp.grpc.tls.cert_file: cannot read"),
        "{text}"
    );
    assert!(text.contains("cert.pem"), "{text}");

    std::fs::write(dir.path().join("cert.pem"), "not a certificate").expect("write");
    std::fs::write(dir.path().join("key.pem"), "not a key").expect("write");
    let text = load(&settings(dir.path()))
        .expect_err("garbage")
        .to_string();
    assert!(text.contains("holds no PEM certificate"), "{text}");

    // A key that is not the certificate's.
    write_pair(dir.path(), "localhost");
    let (_, other_key) = self_signed("localhost");
    std::fs::write(dir.path().join("key.pem"), other_key).expect("write");
    let text = load(&settings(dir.path()))
        .expect_err("mismatch")
        .to_string();
    assert!(
        text.starts_with("receivers.otlp.grpc.tls.key_file:"),
        "{text}"
    );

    write_pair(dir.path(), "localhost");
    std::fs::write(dir.path().join("key.pem"), "").expect("write");
    let text = load(&settings(dir.path())).expect_err("no key").to_string();
    assert!(text.contains("holds no PEM private key"), "{text}");
}

#[test]
fn rotated_files_are_reloaded_and_a_broken_rotation_keeps_the_old() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_pair(dir.path(), "first.example");
    let mut s = settings(dir.path());
    s.reload_interval = HumanDuration(Duration::from_millis(1));
    let tls = load(&s).expect("loads");
    let first = tls.config();
    std::thread::sleep(Duration::from_millis(20));
    write_pair(dir.path(), "second.example");
    // Make sure the modification time moves even on coarse clocks.
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    for f in ["cert.pem", "key.pem"] {
        let file = std::fs::File::options()
            .write(true)
            .open(dir.path().join(f))
            .expect("open");
        file.set_modified(later).expect("set mtime");
    }
    std::thread::sleep(Duration::from_millis(5));
    let second = tls.config();
    assert!(!Arc::ptr_eq(&first, &second), "reloaded after the change");

    std::fs::write(dir.path().join("key.pem"), "broken").expect("write");
    let file = std::fs::File::options()
        .write(true)
        .open(dir.path().join("key.pem"))
        .expect("open");
    file.set_modified(later + Duration::from_secs(5))
        .expect("set mtime");
    std::thread::sleep(Duration::from_millis(5));
    let third = tls.config();
    assert!(
        Arc::ptr_eq(&second, &third),
        "a broken rotation keeps the old"
    );
}
