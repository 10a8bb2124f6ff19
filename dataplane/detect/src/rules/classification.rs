//! `classification.config`: `config classification: shortname,description,priority`.
//!
//! The built-in table carries the class names and priorities of the list Suricata and Snort
//! ship, so rule sets load without a file. The descriptions are the category strings EVE
//! consumers key on (`alert.category`), kept identical for that reason.

use std::collections::HashMap;
use std::sync::Arc;

/// A class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// Description (EVE `alert.category`).
    pub description: Arc<str>,
    /// Priority, 1 (highest) ..
    pub priority: u8,
}

/// Classes by short name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classifications {
    map: HashMap<String, Class>,
}

/// A bad `classification.config` line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {detail}")]
pub struct ClassificationError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub detail: String,
}

/// (short name, priority, description).
const BUILTIN: &[(&str, u8, &str)] = &[
    ("not-suspicious", 3, "Not Suspicious Traffic"),
    ("unknown", 3, "Unknown Traffic"),
    ("bad-unknown", 2, "Potentially Bad Traffic"),
    ("attempted-recon", 2, "Attempted Information Leak"),
    ("successful-recon-limited", 2, "Information Leak"),
    (
        "successful-recon-largescale",
        2,
        "Large Scale Information Leak",
    ),
    ("attempted-dos", 2, "Attempted Denial of Service"),
    ("successful-dos", 2, "Denial of Service"),
    ("attempted-user", 1, "Attempted User Privilege Gain"),
    ("unsuccessful-user", 1, "Unsuccessful User Privilege Gain"),
    ("successful-user", 1, "Successful User Privilege Gain"),
    (
        "attempted-admin",
        1,
        "Attempted Administrator Privilege Gain",
    ),
    (
        "successful-admin",
        1,
        "Successful Administrator Privilege Gain",
    ),
    ("rpc-portmap-decode", 2, "Decode of an RPC Query"),
    ("shellcode-detect", 1, "Executable code was detected"),
    ("string-detect", 3, "A suspicious string was detected"),
    (
        "suspicious-filename-detect",
        2,
        "A suspicious filename was detected",
    ),
    (
        "suspicious-login",
        2,
        "An attempted login using a suspicious username was detected",
    ),
    ("system-call-detect", 2, "A system call was detected"),
    ("tcp-connection", 4, "A TCP connection was detected"),
    ("trojan-activity", 1, "A Network Trojan was detected"),
    (
        "unusual-client-port-connection",
        2,
        "A client was using an unusual port",
    ),
    ("network-scan", 3, "Detection of a Network Scan"),
    (
        "denial-of-service",
        2,
        "Detection of a Denial of Service Attack",
    ),
    (
        "non-standard-protocol",
        2,
        "Detection of a non-standard protocol or event",
    ),
    (
        "protocol-command-decode",
        3,
        "Generic Protocol Command Decode",
    ),
    (
        "web-application-activity",
        2,
        "access to a potentially vulnerable web application",
    ),
    ("web-application-attack", 1, "Web Application Attack"),
    ("misc-activity", 3, "Misc activity"),
    ("misc-attack", 2, "Misc Attack"),
    ("icmp-event", 3, "Generic ICMP event"),
    (
        "inappropriate-content",
        1,
        "Inappropriate Content was Detected",
    ),
    (
        "policy-violation",
        1,
        "Potential Corporate Privacy Violation",
    ),
    (
        "default-login-attempt",
        2,
        "Attempt to login by a default username and password",
    ),
    (
        "targeted-activity",
        1,
        "Targeted Malicious Activity was Detected",
    ),
    ("exploit-kit", 1, "Exploit Kit Activity Detected"),
    (
        "external-ip-check",
        2,
        "Device Retrieving External IP Address Detected",
    ),
    ("domain-c2", 1, "Domain Observed Used for C2 Detected"),
    ("pup-activity", 2, "Possibly Unwanted Program Detected"),
    (
        "credential-theft",
        1,
        "Successful Credential Theft Detected",
    ),
    (
        "social-engineering",
        2,
        "Possible Social Engineering Attempted",
    ),
    ("coin-mining", 2, "Crypto Currency Mining Activity Detected"),
    (
        "command-and-control",
        1,
        "Malware Command and Control Activity Detected",
    ),
];

impl Default for Classifications {
    fn default() -> Self {
        let map = BUILTIN
            .iter()
            .map(|&(name, priority, d)| {
                (
                    name.to_owned(),
                    Class {
                        description: d.into(),
                        priority,
                    },
                )
            })
            .collect();
        Classifications { map }
    }
}

impl Classifications {
    /// No classes.
    pub fn empty() -> Self {
        Classifications {
            map: HashMap::new(),
        }
    }

    /// Look a class up.
    pub fn get(&self, short: &str) -> Option<&Class> {
        self.map.get(short)
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Add or replace classes from a `classification.config` text. Bad lines are returned and
    /// skipped; good ones apply.
    pub fn merge(&mut self, text: &str) -> Vec<ClassificationError> {
        let mut errs = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |detail: &str| ClassificationError {
                line: i + 1,
                detail: detail.to_owned(),
            };
            let Some(body) = line
                .strip_prefix("config")
                .map(str::trim_start)
                .and_then(|s| s.strip_prefix("classification"))
                .map(str::trim_start)
                .and_then(|s| s.strip_prefix(':'))
            else {
                errs.push(err(
                    "expected `config classification: name,description,priority`",
                ));
                continue;
            };
            let mut parts = body.split(',').map(str::trim);
            let (Some(name), Some(desc), Some(prio), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                errs.push(err("expected three comma-separated fields"));
                continue;
            };
            let Ok(priority) = prio.parse::<u8>() else {
                errs.push(err("priority is not a number 0..=255"));
                continue;
            };
            if name.is_empty() {
                errs.push(err("empty class name"));
                continue;
            }
            self.map.insert(
                name.to_owned(),
                Class {
                    description: desc.into(),
                    priority,
                },
            );
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_and_file() {
        let mut c = Classifications::default();
        assert_eq!(c.get("trojan-activity").unwrap().priority, 1);
        let errs = c.merge(
            "# x\nconfig classification: my-class,My Class,4\nconfig classification: bad\nfoo\n\
             config classification: trojan-activity,A Network Trojan was detected,2\n",
        );
        assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(c.get("my-class").unwrap().priority, 4);
        assert_eq!(c.get("trojan-activity").unwrap().priority, 2);
    }
}
