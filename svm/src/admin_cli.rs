//! Admin subcommands that talk to the local daemon's API over mutual TLS: `svm blocked
//! list|allow|add`, `svm status`, `svm policy push`. Exit codes (as kesl-control / avp.com):
//! 0 success, 1 missing argument, 2 general error (connection, TLS, server error),
//! 4 syntax error (bad arguments, invalid policy), 9 wrong operation (nothing to allow, already
//! blocked, version mismatch, role not allowed).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use hyper::{Method, StatusCode};

use crate::cli::{EXIT_GENERAL, EXIT_OK, EXIT_SYNTAX};
use crate::https::HttpsClient;

/// Exit code: the operation does not apply to the current state.
pub const EXIT_WRONG_OPERATION: u8 = 9;

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
        /// Duration in minutes.
        #[arg(long)]
        minutes: u64,
        /// Note recorded as the reason.
        #[arg(long)]
        reason: Option<String>,
        /// Connection.
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn exit_for(status: StatusCode) -> u8 {
    match status.as_u16() {
        200..=299 => EXIT_OK,
        400 | 422 => EXIT_SYNTAX,
        403 | 404 | 409 | 412 => EXIT_WRONG_OPERATION,
        _ => EXIT_GENERAL,
    }
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
fn finish(resp: anyhow::Result<crate::https::Response>, ok: impl FnOnce(&[u8])) -> u8 {
    match resp {
        Err(e) => {
            eprintln!("svm: {e:#}");
            EXIT_GENERAL
        }
        Ok(r) if r.status.is_success() => {
            ok(&r.body);
            EXIT_OK
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
pub fn blocked(cmd: BlockedCommand) -> u8 {
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
                println!(
                    "{:<10} {:<40} {:>9}  {:<8} REASON",
                    "VLAN", "ADDRESS", "REMAINING", "ORIGIN"
                );
                for b in list {
                    let s = |k: &str| b.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                    let secs = b
                        .get("remaining_secs")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0);
                    println!(
                        "{:<10} {:<40} {:>9}  {:<8} {}",
                        s("vlan"),
                        s("address"),
                        crate::control::go_duration(secs),
                        s("origin"),
                        s("reason")
                    );
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
pub fn status(client: &ClientArgs) -> u8 {
    finish(call(client, Method::GET, "/api/v1/status", None), |body| {
        println!("{}", String::from_utf8_lossy(body));
    })
}

/// Run `svm policy push FILE`: validate locally (every problem, exit 4), then PUT.
pub fn policy_push(file: &std::path::Path, client: &ClientArgs) -> u8 {
    let policy = match policy::Policy::load(file) {
        Ok(p) => p,
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("{}: {line}", file.display());
            }
            return EXIT_SYNTAX;
        }
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
