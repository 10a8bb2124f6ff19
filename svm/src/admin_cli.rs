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

/// How to reach the daemon: flags, else `SVM_*` variables, else the CLI configuration file
/// ([`crate::cli_config`]), else the defaults; and how to print.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// CLI configuration file (YAML: api, ca, cert, key) [default: $SVM_CLI_CONFIG, else
    /// /etc/svm/cli.yaml when it exists].
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// API base URL [env: SVM_API; default: https://127.0.0.1:8443].
    #[arg(long, global = true)]
    pub api: Option<String>,
    /// Client certificate (PEM), issued by the management CA [env: SVM_CERT; default:
    /// /etc/svm/admin.crt].
    #[arg(long, global = true)]
    pub cert: Option<PathBuf>,
    /// Client key (PEM) [env: SVM_KEY; default: /etc/svm/admin.key].
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    /// CA that issued the daemon's server certificate (PEM) [env: SVM_CA; default:
    /// /etc/svm/api-ca.crt].
    #[arg(long, global = true)]
    pub ca: Option<PathBuf>,
    /// Print the API's JSON instead of the human output.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientArgs {
    /// The endpoint these flags, the environment and the configuration file name.
    pub fn endpoint(&self) -> Result<crate::cli_config::Endpoint, crate::cli_config::ConfigError> {
        crate::cli_config::resolve(
            &crate::cli_config::Flags {
                config: self.config.clone(),
                api: self.api.clone(),
                ca: self.ca.clone(),
                cert: self.cert.clone(),
                key: self.key.clone(),
            },
            &|name| std::env::var(name).ok(),
        )
    }
}

/// `svm blocked ...`
#[derive(Debug, Subcommand)]
pub enum BlockedCommand {
    /// List blocked hosts.
    List {
        /// Only this VLAN scope (`untagged`, `100`, `100.200`).
        #[arg(long)]
        vlan: Option<String>,
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

/// `s` percent-encoded for a URL path segment or query value.
pub fn percent_encode(s: &str) -> String {
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

/// The HTTPS client of these arguments and the API's base URL (without a trailing `/`).
pub fn https_client(client: &ClientArgs) -> anyhow::Result<(HttpsClient, String)> {
    let ep = client.endpoint()?;
    let id = crate::tls::load_identity(&ep.cert, &ep.key)?;
    let roots = crate::tls::load_certs(&ep.ca)?;
    let http = HttpsClient::new(
        crate::tls::client_config(&roots, Some(id))?,
        Duration::from_secs(30),
    );
    Ok((http, ep.api.trim_end_matches('/').to_owned()))
}

/// One request to the daemon's API with these arguments' connection.
pub fn call(
    client: &ClientArgs,
    method: Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<crate::https::Response> {
    let (http, base) = https_client(client)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut headers = Vec::new();
    if body.is_some() {
        headers.push(("content-type", "application/json".to_owned()));
    }
    let url = format!("{base}{path}");
    Ok(rt.block_on(http.request(
        method,
        &url,
        &headers,
        body.unwrap_or_default().into_bytes(),
    ))?)
}

/// Print the result of a call and return the exit code: `ok` prints a success in words; with
/// `--json` the API's body is printed as it is (an error's body too, on standard output, besides
/// the message on standard error).
pub fn finish(
    client: &ClientArgs,
    resp: anyhow::Result<crate::https::Response>,
    ok: impl FnOnce(&[u8]),
) -> Exit {
    match resp {
        Err(e) => {
            eprintln!("svm: {e:#}");
            Exit::General
        }
        Ok(r) if r.status.is_success() => {
            if client.json {
                println!("{}", String::from_utf8_lossy(&r.body));
            } else {
                ok(&r.body);
            }
            Exit::Ok
        }
        Ok(r) => {
            if client.json && !r.body.is_empty() {
                println!("{}", String::from_utf8_lossy(&r.body));
            }
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

/// `GET path`; `ok` prints a success in words (`--json`: the API's body).
pub fn get(client: &ClientArgs, path: &str, ok: impl FnOnce(&[u8])) -> Exit {
    finish(client, call(client, Method::GET, path, None), ok)
}

/// Run `svm blocked ...`.
pub fn blocked(cmd: BlockedCommand) -> Exit {
    match cmd {
        BlockedCommand::List { vlan, client } => {
            let path = match &vlan {
                Some(v) => format!("/api/v1/blocked-hosts?vlan={}", percent_encode(v)),
                None => "/api/v1/blocked-hosts".to_owned(),
            };
            finish(&client, call(&client, Method::GET, &path, None), |body| {
                let list: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap_or_default();
                let mut rows = vec![
                    [
                        "VLAN",
                        "ADDRESS",
                        "REMAINING",
                        "HITS",
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
                        b.get("hits")
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or(0)
                            .to_string(),
                        s("origin"),
                        s("created"),
                        s("reason"),
                    ]);
                }
                for line in table(&rows, &[2, 3]) {
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
            finish(
                &client,
                call(&client, Method::DELETE, &path, None),
                |body| {
                    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                    println!(
                        "unblocked {}",
                        v.get("removed")
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or(0)
                    );
                },
            )
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
                &client,
                call(
                    &client,
                    Method::POST,
                    "/api/v1/blocked-hosts",
                    Some(body.to_string()),
                ),
                |body| {
                    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
                    println!(
                        "blocked {} in VLAN {} for {}",
                        s("address"),
                        s("vlan"),
                        crate::control::go_duration(
                            v.get("remaining_secs")
                                .and_then(serde_json::Value::as_u64)
                                .unwrap_or(0)
                        )
                    );
                },
            )
        }
    }
}

/// Run `svm status`: the status and the dataplane's counters (`/metrics`) as a table.
pub fn status(client: &ClientArgs) -> Exit {
    let resp = call(client, Method::GET, "/api/v1/status", None);
    let metrics = match &resp {
        Ok(r) if r.status.is_success() && !client.json => {
            call(client, Method::GET, "/metrics", None).ok()
        }
        _ => None,
    };
    finish(client, resp, |body| {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = metrics
            .filter(|m| m.status.is_success())
            .map(|m| String::from_utf8_lossy(&m.body).into_owned())
            .unwrap_or_default();
        for line in table(&status_rows(&v, &text), &[]) {
            println!("{line}");
        }
    })
}

/// The sum of a metric family's samples in Prometheus text, if it is there.
fn metric_sum(text: &str, name: &str) -> Option<u64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest.rsplit(' ').next().and_then(|x| x.parse::<f64>().ok());
        if let Some(x) = value {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let x = x as u64;
            found = Some(found.unwrap_or(0) + x);
        }
    }
    found
}

/// `svm status`'s rows: what, value.
fn status_rows(v: &serde_json::Value, metrics: &str) -> Vec<Vec<String>> {
    let u = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let m =
        |name: &str| metric_sum(metrics, name).map_or_else(|| "-".to_owned(), |x| x.to_string());
    let db = match v.get("db") {
        Some(db) => format!(
            "{} (expires {}{})",
            db.get("version")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            db.get("expires").and_then(|x| x.as_str()).unwrap_or(""),
            if db.get("stale").and_then(serde_json::Value::as_bool) == Some(true) {
                ", stale"
            } else {
                ""
            }
        ),
        None => "none".to_owned(),
    };
    let rules = match v.get("rules") {
        Some(r) => format!(
            "{} loaded, {} skipped",
            r.get("loaded")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            r.get("skipped")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        ),
        None => "none".to_owned(),
    };
    [
        (
            "VERSION",
            v.get("version")
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_owned(),
        ),
        (
            "MODE",
            v.get("mode")
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_owned(),
        ),
        ("POLICY VERSION", u("policy_version").to_string()),
        ("DATABASE", db),
        ("RULES", rules),
        ("WORKERS", m("svm_workers")),
        ("PACKETS", m("svm_packets_total")),
        ("DROPS", m("svm_packets_dropped_total")),
        ("BLOCKED HOSTS", u("blocked_hosts").to_string()),
        ("EVENTS", m("svm_events_total")),
        ("EVENTS SENT", u("events_sent_total").to_string()),
        (
            "SPOOL",
            format!(
                "{} events, {} bytes, {} dropped",
                u("spool_events"),
                u("spool_bytes"),
                u("spool_dropped_total")
            ),
        ),
        ("UPTIME", crate::control::go_duration(u("uptime_secs"))),
    ]
    .into_iter()
    .map(|(k, val)| vec![k.to_owned(), val])
    .collect()
}

/// Run `svm policy push FILE`: validate locally (every problem, exit 4; unreadable, exit 2),
/// then PUT.
pub fn policy_push(file: &std::path::Path, client: &ClientArgs) -> Exit {
    let policy = match crate::cli::load_policy(file) {
        Ok(p) => p,
        Err(code) => return code,
    };
    finish(
        client,
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
    fn status_rows_sum_metric_families_and_name_missing_ones() {
        let metrics = "# TYPE svm_packets_total counter\nsvm_packets_total 12\n\
            svm_packets_total_other 99\nsvm_packets_dropped_total{reason=\"blocked\"} 3\n\
            svm_packets_dropped_total{reason=\"rule\"} 4\nsvm_workers 2\n";
        assert_eq!(metric_sum(metrics, "svm_packets_total"), Some(12));
        assert_eq!(metric_sum(metrics, "svm_packets_dropped_total"), Some(7));
        assert_eq!(metric_sum(metrics, "svm_events_total"), None);
        let v = serde_json::json!({"version": "0.1.0", "mode": "monitoring", "policy_version": 3,
            "blocked_hosts": 1, "spool_events": 5, "spool_bytes": 900, "spool_dropped_total": 0,
            "events_sent_total": 2, "uptime_secs": 61,
            "db": {"version": 7, "expires": "2027-01-01T00:00:00Z", "stale": true}});
        let rows = status_rows(&v, metrics);
        let get = |k: &str| {
            rows.iter()
                .find(|r| r[0] == k)
                .map(|r| r[1].clone())
                .unwrap()
        };
        assert_eq!(get("MODE"), "monitoring");
        assert_eq!(get("POLICY VERSION"), "3");
        assert_eq!(get("DATABASE"), "7 (expires 2027-01-01T00:00:00Z, stale)");
        assert_eq!(get("WORKERS"), "2");
        assert_eq!(get("DROPS"), "7");
        assert_eq!(get("EVENTS"), "-");
        assert_eq!(get("SPOOL"), "5 events, 900 bytes, 0 dropped");
        assert_eq!(get("UPTIME"), "1m1s");
        assert_eq!(get("RULES"), "none");
    }

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
