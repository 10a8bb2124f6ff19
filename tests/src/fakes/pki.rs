//! Test PKI with rcgen: a CA that issues server certificates (SANs `localhost`, `127.0.0.1`) and
//! client certificates with a chosen CN and OU.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate and its key, PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Certificate PEM.
    pub cert_pem: String,
    /// Key PEM.
    pub key_pem: String,
}

impl Issued {
    /// As an svm TLS identity.
    pub fn identity(&self) -> svm::tls::Identity {
        svm::tls::identity_from_pem(&self.cert_pem, &self.key_pem).unwrap()
    }
}

/// A test CA.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

impl TestCa {
    /// A fresh self-signed CA.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate as rustls roots.
    pub fn roots(&self) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        svm::tls::certs_from_pem(&self.cert_pem()).unwrap()
    }

    fn issue(&self, cn: &str, ou: Option<&str>, server: bool) -> Issued {
        self.issue_serial(cn, ou, server, None)
    }

    fn issue_serial(
        &self,
        cn: &str,
        ou: Option<&str>,
        server: bool,
        serial: Option<u64>,
    ) -> Issued {
        let sans = if server {
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
        } else {
            Vec::new()
        };
        let mut params = CertificateParams::new(sans).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        if let Some(ou) = ou {
            dn.push(DnType::OrganizationalUnitName, ou);
        }
        params.distinguished_name = dn;
        params.serial_number = serial.map(rcgen::SerialNumber::from);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server certificate for 127.0.0.1 / localhost.
    pub fn server(&self, cn: &str) -> Issued {
        self.issue(cn, None, true)
    }

    /// A client certificate.
    pub fn client(&self, cn: &str, ou: Option<&str>) -> Issued {
        self.issue(cn, ou, false)
    }

    /// A client certificate with a chosen serial number (to revoke it with [`TestCa::crl`]).
    pub fn client_serial(&self, cn: &str, serial: u64) -> Issued {
        self.issue_serial(cn, None, false, Some(serial))
    }

    /// A certificate revocation list of this CA (number `number`, valid from 2020 to 2099)
    /// revoking these serial numbers, PEM.
    pub fn crl(&self, number: u64, revoked: &[u64]) -> String {
        rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2020, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: rcgen::SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|&s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(s),
                    revocation_time: rcgen::date_time_ymd(2021, 1, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.cert, &self.key)
        .unwrap()
        .pem()
        .unwrap()
    }
}
