//! Admin subcommands that talk to the local daemon's API over mutual TLS: `svm blocked
//! list|allow|add`, `svm status`, `svm policy push`. Exit codes (as kesl-control / avp.com):
//! 0 success, 1 missing argument, 2 general error (connection, TLS, server error),
//! 4 syntax error (bad arguments, invalid policy), 9 wrong operation (nothing to allow, already
//! blocked, version mismatch, role not allowed).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use hyper::{Method, StatusCode};

use crate::cli::Exit;
use crate::https::HttpsClient;

/// The longest manual block: the API takes at most 1,966,080 seconds.
pub const MAX_BLOCK_MINUTES: u64 = 32_768;

/// How to reach the daemon.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// API base URL.
    #[arg(long, default_value = "https://127.0.0.1:8443", global = true)]
    pub api: String,
    /// Client certificate (PEM), issued by the management CA.
    #[arg(long, default_value = "/etc/svm/admin.crt", global = true)]
    pub cert: PathBuf,
    /// Client key (PEM).
    #[arg(long, default_value = "/etc/svm/admin.key", global = true)]
    pub key: PathBuf,
    /// CA that issued the daemon's server certificate (PEM).
    #[arg(long, default_value = "/etc/svm/api-ca.crt", global = true)]
    pub ca: PathBuf,
}

/// `svm blocked ...`
#[derive(Debug, Subcommand)]
pub enum BlockedCommand {
    /// List blocked hosts.
    List {
        /// Only this VLAN scope (`untagged`, `100`, `100.200`).
        #[arg(long)]
        vlan: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Connection.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Lift blocks of an address or of every address in a prefix.
    Allow {
        /// Address or prefix.
        address: String,
        /// Only in this VLAN scope (default: every scope).
        #[arg(long)]
        vlan: Option<String>,
        /// Connection.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Block an address manually.
    Add {
        /// Address.
        address: String,
        /// VLAN scope.
        #[arg(long)]
        vlan: String,
        /// Duration in minutes (1..=32768, 22.7 days).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_BLOCK_MINUTES))]
        minutes: u64,
        /// Note recorded as the reason.
        #[arg(long)]
        reason: Option<String>,
        /// Connection.
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn exit_for(status: StatusCode) -> Exit {
    match status.as_u16() {
        200..=299 => Exit::Ok,
        400 | 422 => Exit::Syntax,
        403 | 404 | 409 | 412 => Exit::WrongOperation,
        _ => Exit::General,
    }
}

/// `rows` as lines, each column as wide as its widest cell (the header row included), two
/// spaces between columns; the columns numbered in `right` are aligned right; the last column
/// is not padded.
pub fn table(rows: &[Vec<String>], right: &[usize]) -> Vec<String> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(x) => *x = (*x).max(w),
                None => widths.push(w),
            }
        }
    }
    rows.iter()
        .map(|row| {
            let last = row.len().saturating_sub(1);
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                if i > 0 {
                    line.push_str("  ");
                }
                if right.contains(&i) {
                    line.push_str(&format!("{cell:>w$}"));
                } else if i == last {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}"));
                }
            }
            line
        })
        .collect()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn call(
    client: &ClientArgs,
    method: Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<crate::https::Response> {
    let id = crate::tls::load_identity(&client.cert, &client.key)?;
    let roots = crate::tls::load_certs(&client.ca)?;
    let http = HttpsClient::new(
        crate::tls::client_config(&roots, Some(id))?,
        Duration::from_secs(30),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut headers = Vec::new();
    if body.is_some() {
        headers.push(("content-type", "application/json".to_owned()));
    }
    let url = format!("{}{path}", client.api.trim_end_matches('/'));
    Ok(rt.block_on(http.request(
        method,
        &url,
        &headers,
        body.unwrap_or_default().into_bytes(),
    ))?)
}

/// Print the result of a call and return the exit code.
fn finish(resp: anyhow::Result<crate::https::Response>, ok: impl FnOnce(&[u8])) -> Exit {
    match resp {
        Err(e) => {
            eprintln!("svm: {e:#}");
            Exit::General
        }
        Ok(r) if r.status.is_success() => {
            ok(&r.body);
            Exit::Ok
        }
        Ok(r) => {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            eprintln!(
                "svm: {} {}",
                r.status,
                v.get("message").and_then(|m| m.as_str()).unwrap_or("")
            );
            if let Some(problems) = v.get("problems").and_then(|p| p.as_array()) {
                for p in problems {
                    eprintln!(
                        "  {}: {}",
                        p.get("path").and_then(|x| x.as_str()).unwrap_or(""),
                        p.get("message").and_then(|x| x.as_str()).unwrap_or("")
                    );
                }
            }
            exit_for(r.status)
        }
    }
}

/// Run `svm blocked ...`.
pub fn blocked(cmd: BlockedCommand) -> Exit {
    match cmd {
        BlockedCommand::List { vlan, json, client } => {
            let path = match &vlan {
                Some(v) => format!("/api/v1/blocked-hosts?vlan={}", percent_encode(v)),
                None => "/api/v1/blocked-hosts".to_owned(),
            };
            finish(call(&client, Method::GET, &path, None), |body| {
                if json {
                    println!("{}", String::from_utf8_lossy(body));
                    return;
                }
                let list: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap_or_default();
                let mut rows = vec![
                    [
                        "VLAN",
                        "ADDRESS",
                        "REMAINING",
                        "ORIGIN",
                        "CREATED",
                        "REASON",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                ];
                for b in list {
                    let s = |k: &str| b.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                    let secs = b
                        .get("remaining_secs")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0);
                    rows.push(vec![
                        s("vlan"),
                        s("address"),
                        crate::control::go_duration(secs),
                        s("origin"),
                        s("created"),
                        s("reason"),
                    ]);
                }
                for line in table(&rows, &[2]) {
                    println!("{line}");
                }
            })
        }
        BlockedCommand::Allow {
            address,
            vlan,
            client,
        } => {
            let path = format!(
                "/api/v1/blocked-hosts/{}/{}",
                percent_encode(vlan.as_deref().unwrap_or("any")),
                percent_encode(&address)
            );
            finish(call(&client, Method::DELETE, &path, None), |body| {
                let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                println!(
                    "unblocked {}",
                    v.get("removed")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0)
                );
            })
        }
        BlockedCommand::Add {
            address,
            vlan,
            minutes,
            reason,
            client,
        } => {
            let body = serde_json::json!({
                "address": address, "vlan": vlan, "minutes": minutes,
                "reason": reason.unwrap_or_else(|| "manual (svm blocked add)".into()),
            });
            finish(
                call(
                    &client,
                    Method::POST,
                    "/api/v1/blocked-hosts",
                    Some(body.to_string()),
                ),
                |body| println!("{}", String::from_utf8_lossy(body)),
            )
        }
    }
}

/// Run `svm status`.
pub fn status(client: &ClientArgs) -> Exit {
    finish(call(client, Method::GET, "/api/v1/status", None), |body| {
        println!("{}", String::from_utf8_lossy(body));
    })
}

/// Run `svm policy push FILE`: validate locally (every problem, exit 4; unreadable, exit 2),
/// then PUT.
pub fn policy_push(file: &std::path::Path, client: &ClientArgs) -> Exit {
    let policy = match crate::cli::load_policy(file) {
        Ok(p) => p,
        Err(code) => return code,
    };
    finish(
        call(
            client,
            Method::PUT,
            "/api/v1/policy",
            Some(policy.to_json().to_string()),
        ),
        |body| {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            println!(
                "applied policy version {}",
                v.get("version")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0)
            );
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_fit_their_widest_cell() {
        let rows: Vec<Vec<String>> = [
            ["VLAN", "ADDRESS", "REMAINING", "ORIGIN", "REASON"],
            [
                "300.100",
                "fd00::1234:5678:9abc:def0:1:2",
                "59m58s",
                "detection",
                "Scan.Generic.TCP",
            ],
            ["untagged", "10.0.0.66", "1h0m0s", "manual", "note"],
        ]
        .iter()
        .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
        .collect();
        let lines = table(&rows, &[2]);
        // Every column starts at the same offset on every line.
        let starts = |l: &str, cells: &[String]| -> Vec<usize> {
            let mut at = 0;
            cells
                .iter()
                .map(|c| {
                    let i = l[at..].find(c.as_str()).unwrap() + at;
                    at = i + c.len();
                    i
                })
                .collect()
        };
        let first = starts(&lines[0], &rows[0]);
        for (l, r) in lines.iter().zip(&rows).skip(1) {
            let s = starts(l, r);
            for col in [0, 1, 3, 4] {
                assert_eq!(s[col], first[col], "column {col} of {l:?} in {lines:#?}");
            }
            // REMAINING is right-aligned: its cells end where the header ends.
            assert_eq!(
                s[2] + r[2].len(),
                first[2] + "REMAINING".len(),
                "{lines:#?}"
            );
        }
        assert!(!lines[1].ends_with(' '));
    }
}
