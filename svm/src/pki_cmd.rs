//! `svm pki init DIR --san NAME...`: the management API's certificates in one step (issue 21):
//! a management CA, the API server's certificate with the names clients connect to, and an admin
//! and a read-only client certificate, all X.509 v3 with ECDSA P-256 keys (rcgen). Keys are
//! written 0600; nothing that exists is overwritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};

use crate::cli::Exit;

/// Subject of the admin certificate (`api.admin`).
pub const ADMIN_CN: &str = "svm-admin";
/// Organisational unit of the read-only certificate (`api.read_only`).
pub const READER_OU: &str = "svm-readers";
/// Longest validity of the issued certificates, in days (10 years, the CA's).
pub const MAX_DAYS: u32 = 3650;

/// `svm pki init` arguments.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory for the files (created if missing; files already there are never overwritten).
    pub dir: PathBuf,
    /// A DNS name or IP address clients use to reach the API (repeatable; at least one), e.g.
    /// `--san 127.0.0.1 --san svm01.example.org`.
    #[arg(long = "san", value_name = "NAME", required = true, num_args = 1.., action = clap::ArgAction::Append)]
    pub sans: Vec<String>,
    /// Validity of the server and client certificates in days (the CA gets 3650).
    #[arg(long, default_value_t = 825, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_DAYS)))]
    pub days: u32,
}

/// `svm pki ...`
#[derive(Debug, clap::Subcommand)]
pub enum PkiCommand {
    /// Create the management CA, the API server's certificate (with the names given) and an
    /// admin and a read-only client certificate.
    Init(InitArgs),
}

/// The files `init` writes, in `dir`: (name, is a key).
pub const FILES: [(&str, bool); 8] = [
    ("api-ca.crt", false),
    ("api-ca.key", true),
    ("api.crt", false),
    ("api.key", true),
    ("admin.crt", false),
    ("admin.key", true),
    ("reader.crt", false),
    ("reader.key", true),
];

/// Why `init` failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A `--san` that is neither a DNS name nor an IP address.
    #[error("--san {0:?} is neither a DNS name nor an IP address")]
    BadName(String),
    /// Files of an earlier run are there.
    #[error("{} already exist{}; nothing was written (move them away or choose another directory)", .0.join(", "), if .0.len() == 1 { "s" } else { "" })]
    Exists(Vec<String>),
    /// Writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// rcgen refused the parameters.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
}

impl PkiError {
    /// The exit code: a bad name is a syntax error, existing files a wrong operation.
    pub fn exit(&self) -> Exit {
        match self {
            PkiError::BadName(_) => Exit::Syntax,
            PkiError::Exists(_) => Exit::WrongOperation,
            PkiError::Io { .. } | PkiError::Rcgen(_) => Exit::General,
        }
    }
}

fn serial() -> SerialNumber {
    let mut b = [0u8; 16];
    // An all-zero serial only if the system has no randomness; rcgen still makes a valid one.
    let _ = getrandom::fill(&mut b);
    // Positive and without a leading zero byte (RFC 5280 4.1.2.2: at most 20 octets, positive).
    b[0] = (b[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&b)
}

fn params(
    sans: Vec<String>,
    cn: &str,
    ou: Option<&str>,
    days: u32,
) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::new(sans)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "svm");
    if let Some(ou) = ou {
        dn.push(DnType::OrganizationalUnitName, ou);
    }
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    // An hour back: a peer whose clock is a little behind accepts the certificate at once.
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(i64::from(days));
    p.serial_number = Some(serial());
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// The CA and the three leaves, PEM, in [`FILES`] order.
fn generate(sans: &[String], days: u32) -> Result<Vec<String>, PkiError> {
    let ca_key = KeyPair::generate()?;
    let mut ca = params(Vec::new(), "svm management CA", None, MAX_DAYS)?;
    ca.use_authority_key_identifier_extension = false;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let mut out = vec![ca_cert.pem(), ca_key.serialize_pem()];
    let leaf = |sans: Vec<String>, cn: &str, ou: Option<&str>, server: bool| {
        let mut p = params(sans, cn, ou, days)?;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = KeyPair::generate()?;
        let cert: Certificate = p.signed_by(&key, &ca_cert, &ca_key)?;
        Ok::<_, PkiError>([cert.pem(), key.serialize_pem()])
    };
    out.extend(leaf(sans.to_vec(), "svm-api", None, true)?);
    out.extend(leaf(Vec::new(), ADMIN_CN, None, false)?);
    out.extend(leaf(Vec::new(), "svm-reader", Some(READER_OU), false)?);
    Ok(out)
}

fn write_new(path: &Path, text: &str, secret: bool) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Create the files of [`FILES`] in `dir`; refuses (and writes nothing) when any exists.
pub fn init(dir: &Path, sans: &[String], days: u32) -> Result<(), PkiError> {
    for s in sans {
        if rustls_pki_types::ServerName::try_from(s.as_str()).is_err() {
            return Err(PkiError::BadName(s.clone()));
        }
    }
    let there: Vec<String> = FILES
        .iter()
        .map(|(name, _)| dir.join(name))
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| p.display().to_string())
        .collect();
    if !there.is_empty() {
        return Err(PkiError::Exists(there));
    }
    let pems = generate(sans, days)?;
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })?;
    for ((name, secret), pem) in FILES.iter().zip(&pems) {
        write_new(&dir.join(name), pem, *secret)?;
    }
    Ok(())
}

/// Run `svm pki ...`.
pub fn run(cmd: &PkiCommand) -> Exit {
    match cmd {
        PkiCommand::Init(a) => match init(&a.dir, &a.sans, a.days) {
            Ok(()) => {
                let d = a.dir.display();
                println!(
                    "wrote {d}/api-ca.crt and api-ca.key (management CA, keep api-ca.key offline),\n\
                     {d}/api.crt and api.key (server; names {}),\n\
                     {d}/admin.crt and admin.key (CN={ADMIN_CN}), {d}/reader.crt and reader.key \
                     (OU={READER_OU}); keys are mode 0600\n\n\
                     svm.yaml:\napi:\n  listen: 127.0.0.1:8443\n  cert: {d}/api.crt\n  key: \
                     {d}/api.key\n  client_ca: {d}/api-ca.crt\n  admin: [\"CN={ADMIN_CN}\"]\n  \
                     read_only: [\"OU={READER_OU}\"]",
                    a.sans.join(", ")
                );
                Exit::Ok
            }
            Err(e) => {
                eprintln!("svm pki init: {e}");
                e.exit()
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_writes_v3_certificates_that_check_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("pki");
        init(&d, &["127.0.0.1".into(), "svm.example.org".into()], 30).unwrap();
        for (name, secret) in FILES {
            let mode = std::fs::metadata(d.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, if secret { 0o600 } else { 0o644 }, "{name}");
        }
        let ca = crate::tls::load_certs(&d.join("api-ca.crt")).unwrap();
        let server = crate::tls::load_identity(&d.join("api.crt"), &d.join("api.key")).unwrap();
        // The daemon's own checks (v3, a SAN) and a rustls server configuration accept them.
        crate::tls::server_config(server.clone(), &ca, crate::tls::ClientAuth::Required).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(server.chain[0].as_ref()).unwrap();
        let names: Vec<String> = parsed
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            names,
            ["IPAddress(7f:00:00:01)", "DNSName(svm.example.org)"]
        );
        let validity =
            parsed.validity().not_after.timestamp() - parsed.validity().not_before.timestamp();
        assert_eq!(validity, 30 * 86_400 + 3600);
        for (who, cn, ou) in [
            ("admin", ADMIN_CN, None),
            ("reader", "svm-reader", Some(READER_OU)),
        ] {
            let id = crate::tls::load_identity(
                &d.join(format!("{who}.crt")),
                &d.join(format!("{who}.key")),
            )
            .unwrap();
            crate::tls::client_config(&ca, Some(id.clone())).unwrap();
            let (cns, ous) = crate::tls::subject_names(&id.chain[0]);
            assert_eq!(cns, [cn]);
            assert_eq!(ous, ou.into_iter().collect::<Vec<_>>());
        }
        let before = std::fs::read(d.join("admin.key")).unwrap();
        std::fs::remove_file(d.join("api.key")).unwrap();
        let e = init(&d, &["127.0.0.1".into()], 30).unwrap_err();
        assert_eq!(e.exit(), Exit::WrongOperation);
        assert!(e.to_string().contains("admin.key"), "{e}");
        assert!(
            !d.join("api.key").exists(),
            "nothing is written when any file exists"
        );
        assert_eq!(std::fs::read(d.join("admin.key")).unwrap(), before);
    }

    #[test]
    fn a_name_that_is_neither_dns_nor_ip_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = init(dir.path(), &["not a name".into()], 30).unwrap_err();
        assert_eq!(e.exit(), Exit::Syntax);
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}
