//! TUF metadata: the four roles, their signed envelopes and Ed25519 signatures.
//!
//! Every metadata file is `{"signed": ROLE, "signatures": [{"keyid": HEX, "sig": HEX}]}`. A
//! signature covers the canonical JSON ([`super::cjson`]) of `signed` as parsed; a key id is the
//! SHA-256 of the canonical JSON of the public key object, as TUF defines it. A role is trusted
//! when signatures by at least `threshold` distinct keys the root lists for it verify.
//!
//! Parsing order, for bytes nobody has vouched for yet: the caller caps the size
//! ([`cap`]) before reading; [`Envelope::parse`] reads JSON (serde_json's recursion limit
//! bounds nesting); [`Envelope::verify`] checks the signatures; only then is `signed` turned
//! into its typed role ([`Envelope::decode`], unknown fields refused).

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{DbError, cjson, sha256_hex};

/// The TUF specification version the metadata claims.
pub const SPEC_VERSION: &str = "1.0.0";

/// Caps on metadata sizes, checked before a byte is read: an endless or huge file is refused,
/// never buffered. Root and timestamp are a few keys or one entry; the snapshot names one file;
/// targets lists every file of the bundle, and 1 MiB holds about 5,000 of them.
pub fn cap(role: Role) -> u64 {
    match role {
        Role::Root => 64 * 1024,
        Role::Timestamp | Role::Snapshot => 16 * 1024,
        Role::Targets => 1024 * 1024,
    }
}

/// The four top-level roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Names the keys and thresholds of every role.
    Root,
    /// Lists the targets with their lengths and hashes.
    Targets,
    /// Names the targets metadata's version (against mix and match).
    Snapshot,
    /// Names the snapshot's version; short-lived (against freeze).
    Timestamp,
}

impl Role {
    /// All roles, in the order a client checks them.
    pub const ALL: [Role; 4] = [Role::Root, Role::Timestamp, Role::Snapshot, Role::Targets];

    /// The role's name (`_type`, and the key of `roles` in the root).
    pub const fn name(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
        }
    }

    /// The metadata file's name in the bundle's `metadata/`.
    pub const fn file(self) -> &'static str {
        match self {
            Role::Root => "root.json",
            Role::Targets => "targets.json",
            Role::Snapshot => "snapshot.json",
            Role::Timestamp => "timestamp.json",
        }
    }

    /// The role whose metadata file is `name`.
    pub fn of_file(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.file() == name)
    }
}

/// One signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The signing key's id.
    pub keyid: String,
    /// The Ed25519 signature, hex.
    pub sig: String,
}

/// A public key as the root lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKey {
    /// `ed25519`.
    pub keytype: String,
    /// `ed25519`.
    pub scheme: String,
    /// The key.
    pub keyval: KeyVal,
}

/// The public key's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyVal {
    /// 32 bytes, hex.
    pub public: String,
}

impl PublicKey {
    /// The public key of an Ed25519 signing key.
    pub fn of(key: &SigningKey) -> PublicKey {
        PublicKey {
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
            keyval: KeyVal {
                public: hex::encode(key.verifying_key().as_bytes()),
            },
        }
    }

    /// TUF's key id: SHA-256 of the key's canonical JSON.
    pub fn id(&self) -> String {
        // A struct of strings always serializes.
        sha256_hex(&cjson::to_vec(self).unwrap_or_default())
    }

    fn verifying_key(&self) -> Result<VerifyingKey, String> {
        if self.keytype != "ed25519" || self.scheme != "ed25519" {
            return Err(format!(
                "key type {}/{} is not ed25519",
                self.keytype, self.scheme
            ));
        }
        let bytes: [u8; 32] = hex::decode(&self.keyval.public)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("public key is not 32 bytes of hex")?;
        VerifyingKey::from_bytes(&bytes).map_err(|e| format!("public key: {e}"))
    }
}

/// A role's keys and threshold in the root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleKeys {
    /// Ids of keys in the root's `keys`.
    pub keyids: Vec<String>,
    /// Signatures needed, at least 1.
    pub threshold: u32,
}

/// The root role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    /// `root`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// [`SPEC_VERSION`].
    pub spec_version: String,
    /// Always false: files are named without version prefixes.
    pub consistent_snapshot: bool,
    /// Version, from 1.
    pub version: u64,
    /// Expiry, RFC 3339.
    pub expires: String,
    /// Keys by id.
    pub keys: BTreeMap<String, PublicKey>,
    /// Keys and threshold of each role, by role name.
    pub roles: BTreeMap<String, RoleKeys>,
}

/// A file's hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hashes {
    /// SHA-256, hex.
    pub sha256: String,
}

/// What a target is; decides how it is checked and used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A Suricata-language rule file.
    Rules,
    /// An address list (host names, addresses or URLs, one a line) of a category.
    UrlList,
    /// Attack blocker definitions: a policy document's `attack_blocker` section.
    AttackBlocker,
    /// A `classification.config`.
    Classification,
    /// A `reference.config`.
    Reference,
    /// The self-test capture (pcap).
    SelfTestCapture,
    /// The self-test's expected alert counts (JSON).
    SelfTestExpected,
}

/// What the targets metadata says about one target besides length and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetCustom {
    /// What it is.
    pub kind: TargetKind,
    /// An address list's category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// One target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetInfo {
    /// Exact length in bytes.
    pub length: u64,
    /// Hashes of those bytes.
    pub hashes: Hashes,
    /// Kind and category.
    pub custom: TargetCustom,
}

/// The targets role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// `targets`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// [`SPEC_VERSION`].
    pub spec_version: String,
    /// The database version.
    pub version: u64,
    /// Expiry, RFC 3339.
    pub expires: String,
    /// Targets by name (a relative path under `targets/`).
    pub targets: BTreeMap<String, TargetInfo>,
}

/// A metadata file as the role above names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaFile {
    /// Its version.
    pub version: u64,
    /// Its length in bytes.
    pub length: u64,
    /// Its hashes.
    pub hashes: Hashes,
}

impl MetaFile {
    /// The description of a metadata file's bytes at `version`.
    pub fn of(version: u64, bytes: &[u8]) -> MetaFile {
        MetaFile {
            version,
            length: bytes.len() as u64,
            hashes: Hashes {
                sha256: sha256_hex(bytes),
            },
        }
    }
}

/// The snapshot and timestamp roles (they differ only in what `meta` names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaRole {
    /// `snapshot` or `timestamp`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// [`SPEC_VERSION`].
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry, RFC 3339.
    pub expires: String,
    /// The snapshot names `targets.json`; the timestamp names `snapshot.json`.
    pub meta: BTreeMap<String, MetaFile>,
}

/// A parsed, not yet verified metadata file.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The file.
    pub role: Role,
    /// The canonical JSON of `signed`: what the signatures cover.
    pub canonical: Vec<u8>,
    /// `signed`, as parsed.
    pub signed: Value,
    /// The signatures.
    pub signatures: Vec<Signature>,
}

fn bad(role: Role, message: impl std::fmt::Display) -> DbError {
    DbError::BadMetadata {
        name: role.file().to_owned(),
        message: message.to_string(),
    }
}

/// A metadata file with more signatures is refused: a root names a handful of keys, and an
/// attacker must not make us run thousands of Ed25519 verifications.
pub const MAX_SIGNATURES: usize = 32;

impl Envelope {
    /// Parse `bytes` (already capped by the caller) as the metadata file of `role`.
    pub fn parse(role: Role, bytes: &[u8]) -> Result<Envelope, DbError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            signed: Value,
            signatures: Vec<Signature>,
        }
        if bytes.len() as u64 > cap(role) {
            return Err(DbError::MetadataTooLarge {
                name: role.file().into(),
                size: bytes.len() as u64,
                cap: cap(role),
            });
        }
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| bad(role, e))?;
        if raw.signatures.len() > MAX_SIGNATURES {
            return Err(bad(
                role,
                format!(
                    "{} signatures, more than {MAX_SIGNATURES}",
                    raw.signatures.len()
                ),
            ));
        }
        let kind = raw.signed.get("_type").and_then(Value::as_str);
        if kind != Some(role.name()) {
            return Err(bad(
                role,
                format!("_type is {kind:?}, expected \"{}\"", role.name()),
            ));
        }
        let canonical = cjson::to_vec(&raw.signed).map_err(|e| bad(role, e))?;
        Ok(Envelope {
            role,
            canonical,
            signed: raw.signed,
            signatures: raw.signatures,
        })
    }

    /// Check the signatures against the keys and threshold `root` gives this role.
    pub fn verify(&self, root: &Root) -> Result<(), DbError> {
        let role = self.role.name();
        let rk = root
            .roles
            .get(role)
            .ok_or_else(|| bad(Role::Root, format!("no keys for role {role}")))?;
        let mut valid = BTreeSet::new();
        let mut known = 0usize;
        let mut failed = None;
        for s in &self.signatures {
            if !rk.keyids.contains(&s.keyid) {
                continue;
            }
            let Some(key) = root.keys.get(&s.keyid) else {
                continue;
            };
            known += 1;
            let ok = key.verifying_key().ok().is_some_and(|vk| {
                hex::decode(&s.sig)
                    .ok()
                    .and_then(|b| <[u8; 64]>::try_from(b).ok())
                    .is_some_and(|b| {
                        vk.verify_strict(&self.canonical, &ed25519_dalek::Signature::from_bytes(&b))
                            .is_ok()
                    })
            });
            if ok {
                valid.insert(s.keyid.as_str());
            } else if failed.is_none() {
                failed = Some(s.keyid.clone());
            }
        }
        if valid.len() >= rk.threshold as usize {
            return Ok(());
        }
        if let Some(keyid) = failed {
            return Err(DbError::BadSignature { role, keyid });
        }
        if known == 0 {
            return Err(DbError::UnknownKeys { role });
        }
        Err(DbError::BelowThreshold {
            role,
            valid: valid.len(),
            threshold: rk.threshold,
        })
    }

    /// The typed role (call after [`Envelope::verify`]).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DbError> {
        T::deserialize(&self.signed).map_err(|e| bad(self.role, e))
    }
}

/// Sign `signed` (a role) with `keys`: the bytes of its metadata file (canonical JSON).
pub fn sign<T: Serialize>(signed: &T, keys: &[&SigningKey]) -> Result<Vec<u8>, DbError> {
    let value = serde_json::to_value(signed).map_err(|e| DbError::Usage(e.to_string()))?;
    let canonical = cjson::to_vec(&value).map_err(|e| DbError::Usage(e.to_string()))?;
    let signatures: Vec<Signature> = keys
        .iter()
        .map(|k| Signature {
            keyid: PublicKey::of(k).id(),
            sig: hex::encode(k.sign(&canonical).to_bytes()),
        })
        .collect();
    cjson::to_vec(&serde_json::json!({ "signed": value, "signatures": signatures }))
        .map_err(|e| DbError::Usage(e.to_string()))
}

/// Parse an RFC 3339 expiry.
pub fn parse_time(role: Role, text: &str) -> Result<OffsetDateTime, DbError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| bad(role, format!("expires {text:?}: {e}")))
}

/// Format a time as RFC 3339 (whole seconds, UTC).
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

impl Root {
    /// Check what a root must hold: its type, every role with a threshold from 1 to its key
    /// count, every key id listed under `keys` with its id matching the key, Ed25519 keys only.
    pub fn validate(&self) -> Result<(), DbError> {
        let r = Role::Root;
        if self.kind != "root" {
            return Err(bad(r, "_type is not root"));
        }
        parse_time(r, &self.expires)?;
        for (id, key) in &self.keys {
            key.verifying_key()
                .map_err(|e| bad(r, format!("key {id}: {e}")))?;
            if key.id() != *id {
                return Err(bad(r, format!("key {id}: the id is not the key's SHA-256")));
            }
        }
        for name in self.roles.keys() {
            if !Role::ALL.iter().any(|x| x.name() == name) {
                return Err(bad(r, format!("unknown role {name}")));
            }
        }
        for role in Role::ALL {
            let rk = self
                .roles
                .get(role.name())
                .ok_or_else(|| bad(r, format!("no keys for role {}", role.name())))?;
            let distinct: BTreeSet<&String> = rk.keyids.iter().collect();
            if rk.threshold == 0 || rk.threshold as usize > distinct.len() {
                return Err(bad(
                    r,
                    format!(
                        "role {}: threshold {} with {} distinct key(s)",
                        role.name(),
                        rk.threshold,
                        distinct.len()
                    ),
                ));
            }
            if let Some(id) = rk.keyids.iter().find(|id| !self.keys.contains_key(*id)) {
                return Err(bad(
                    r,
                    format!("role {}: key {id} is not in keys", role.name()),
                ));
            }
        }
        Ok(())
    }
}

/// A root metadata file's bytes, checked to be signed by its own root keys: the form in which a
/// root is handed to a client (`svm db verify --root`, `svm db update --root`).
pub fn trusted_root(bytes: &[u8]) -> Result<(Root, Envelope), DbError> {
    let env = Envelope::parse(Role::Root, bytes)?;
    let root: Root = env.decode()?;
    root.validate()?;
    env.verify(&root)?;
    Ok((root, env))
}
