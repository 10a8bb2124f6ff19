//! TLS failures in words an admin can act on, over real TLS on loopback: a client of another CA
//! reads why once (not `UnknownIssuer` twice); a server certificate without a subjectAltName and
//! X.509 version 1 certificates are refused when the configuration is built, with the fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::Command;

use hyper::Method;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use svm::tls::{ClientAuth, TlsError};
use svm_e2e::TempDir;
use svm_e2e::control::Harness;

/// The error and its causes, as the admin CLI prints them (anyhow's `{:#}`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

#[tokio::test]
async fn a_client_of_another_ca_reads_why_once() {
    let h = Harness::start().await;
    let e = h
        .call(&h.foreign, Method::GET, "/api/v1/status", &[], "")
        .await
        .unwrap_err();
    // As the admin CLI prints it: the error and its causes.
    let text = chain(&e);
    assert!(
        text.contains("the peer ended the handshake"),
        "the server refused our certificate: {text}"
    );
    // The other way round: our CA does not know the server.
    let other = svm_e2e::fakes::pki::TestCa::new("another CA");
    let stranger = svm::https::HttpsClient::new(
        svm::tls::client_config(&other.roots(), None).unwrap(),
        std::time::Duration::from_secs(5),
    );
    let e = h
        .call(&stranger, Method::GET, "/healthz", &[], "")
        .await
        .unwrap_err();
    let text = chain(&e);
    assert_eq!(
        text.matches("not issued by the CA this side trusts")
            .count(),
        1,
        "{text}"
    );
    assert!(!text.contains("UnknownIssuer"), "{text}");
    h.stop();
}

/// A self-signed version 3 certificate for `cn` with these subjectAltNames.
fn v3(cn: &str, sans: Vec<String>) -> svm::tls::Identity {
    let mut params = CertificateParams::new(sans).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    svm::tls::identity_from_pem(&cert.pem(), &key.serialize_pem()).unwrap()
}

#[test]
fn a_server_certificate_without_a_subject_alt_name_is_refused_at_start() {
    let ca = svm_e2e::fakes::pki::TestCa::new("management CA");
    let e = svm::tls::server_config(
        v3("svm.example.org", vec![]),
        &ca.roots(),
        ClientAuth::Required,
    )
    .unwrap_err();
    assert!(matches!(e, TlsError::Unusable { .. }));
    let text = e.to_string();
    assert!(
        text.starts_with("server certificate: it has no subjectAltName")
            && text.contains("subjectAltName=DNS:"),
        "{text}"
    );
    svm::tls::server_config(
        v3("svm.example.org", vec!["svm.example.org".into()]),
        &ca.roots(),
        ClientAuth::Required,
    )
    .unwrap();
}

/// An X.509 version 1 certificate and key made by openssl (`x509 -req` without extensions),
/// or `None` without openssl.
fn v1() -> Option<svm::tls::Identity> {
    let dir = TempDir::new("tls-v1");
    let (key, csr, crt) = (dir.path("k.pem"), dir.path("r.csr"), dir.path("c.pem"));
    let ok = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    if !ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &s(&key),
        "-subj",
        "/CN=svm-admin",
        "-out",
        &s(&csr),
    ]) || !ok(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-signkey",
        &s(&key),
        "-days",
        "2",
        "-out",
        &s(&crt),
    ]) {
        return None;
    }
    Some(svm::tls::load_identity(&crt, &key).unwrap())
}

#[test]
fn x509_version_1_certificates_are_refused_with_the_fix() {
    let Some(id) = v1() else {
        eprintln!("SKIPPED: openssl not installed");
        return;
    };
    let ca = svm_e2e::fakes::pki::TestCa::new("management CA");
    let e = svm::tls::client_config(&ca.roots(), Some(id.clone())).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("client certificate: it is an X.509 version 1 certificate")
            && text.contains("-extfile"),
        "{text}"
    );
    let e = svm::tls::server_config(id, &ca.roots(), ClientAuth::Required).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("server certificate: it is an X.509 version 1 certificate"),
        "{e}"
    );
}
