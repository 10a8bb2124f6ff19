//! `svm isolation enable VM [--for DURATION] [--exclude ...] | show [VM] [--json] | disable VM`:
//! network isolation of the running daemon's protected VMs through `/api/v1/isolations`
//! (docs/isolation.md). KAVSHELL's return codes: 0 done, 1 a required argument missing, 2
//! general error, 4 syntax error (a bad duration or exclusion), 9 wrong operation (no such VM,
//! isolated already, disabling an isolation that is not on), 255 not supported here (the
//! daemon has no inventory).

use clap::Subcommand;
use hyper::Method;

use crate::admin_cli::{ClientArgs, call, percent_encode, table};
use crate::cli::Exit;

/// `svm isolation ...`
#[derive(Debug, Subcommand)]
pub enum IsolationCommand {
    /// Isolate a VM: reset its TCP connections and drop its traffic but the exclusions.
    Enable {
        /// The VM's inventory id.
        vm: String,
        /// How long: minutes (`90`) or with units `s`, `m`, `h`, `d` (`8h`, `1h30m`); whole
        /// minutes, 1 minute to 30 days [default: 8h].
        #[arg(long = "for", value_parser = parse_duration)]
        duration: Option<u32>,
        /// An exclusion in the form of `isolation.automatic.exclusions`: a YAML or JSON mapping
        /// (`{remote: 10.0.0.5, protocol: tcp, ports: [443]}`, `{profile: dns-client}`) or a
        /// list of them; repeatable; `[]` for none [default: the DNS and DHCP profiles].
        #[arg(long)]
        exclude: Vec<String>,
        /// A note for the events.
        #[arg(long)]
        note: Option<String>,
        /// Connection.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show the isolations in force (state, time left, exclusions), or one VM's.
    Show {
        /// Only this VM.
        vm: Option<String>,
        /// Connection.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Release a VM.
    Disable {
        /// The VM's inventory id.
        vm: String,
        /// Connection.
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `--for`: minutes, or numbers with units `s`, `m`, `h`, `d`; whole minutes in 1..=43200.
pub fn parse_duration(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?}: expected minutes or a duration such as 30m, 8h, 1h30m");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let secs: u64 = if t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>().map_err(|_| bad())?.saturating_mul(60)
    } else {
        let mut total = 0u64;
        let mut num = String::new();
        for c in t.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => return Err(bad()),
            };
            let n: u64 = num.parse().map_err(|_| bad())?;
            num.clear();
            total = total.saturating_add(n.saturating_mul(unit));
        }
        if !num.is_empty() {
            return Err(bad());
        }
        total
    };
    if !secs.is_multiple_of(60) {
        return Err(format!("{s:?}: an isolation lasts whole minutes"));
    }
    let minutes = secs / 60;
    let (lo, hi) = (
        policy::isolation::IsolationMinutes::MIN,
        policy::isolation::IsolationMinutes::MAX,
    );
    match u32::try_from(minutes) {
        Ok(m) if (lo..=hi).contains(&m) => Ok(m),
        _ => Err(format!(
            "{s:?}: an isolation lasts {lo} to {hi} minutes (30 days)"
        )),
    }
}

/// The `--exclude` values as one JSON list (each a mapping or a list of them); none: `None`
/// (the daemon's default, the DNS and DHCP profiles).
pub fn exclusions(values: &[String]) -> Result<Option<serde_json::Value>, String> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for v in values {
        let tree: serde_json::Value =
            serde_norway::from_str(v).map_err(|e| format!("--exclude {v}: {e}"))?;
        match tree {
            serde_json::Value::Array(mut a) => out.append(&mut a),
            m @ serde_json::Value::Object(_) => out.push(m),
            _ => {
                return Err(format!(
                    "--exclude {v}: expected a mapping or a list of them"
                ));
            }
        }
    }
    Ok(Some(serde_json::Value::Array(out)))
}

/// Print an answer; a daemon without an inventory is "not supported here" (255).
fn finish(
    client: &ClientArgs,
    resp: anyhow::Result<crate::https::Response>,
    ok: impl FnOnce(&[u8]),
) -> Exit {
    if let Ok(r) = &resp
        && r.status == hyper::StatusCode::NOT_FOUND
        && String::from_utf8_lossy(&r.body).contains("no inventory is configured")
    {
        if client.json {
            println!("{}", String::from_utf8_lossy(&r.body));
        }
        eprintln!("svm: isolation is not supported here: the daemon has no inventory");
        return Exit::NotSupported;
    }
    crate::admin_cli::finish(client, resp, ok)
}

/// A short text of an exclusion in the API's form: a profile's name, else its fields.
fn describe(e: &serde_json::Value) -> String {
    if let Some(p) = e.get("profile").and_then(|p| p.as_str()) {
        return p.to_owned();
    }
    let s = |k: &str| {
        e.get(k).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let mut parts = Vec::new();
    for k in ["name", "remote", "protocol", "ports", "direction"] {
        if let Some(v) = s(k).filter(|v| v != "[]") {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join(" ")
}

fn print_rows(list: &[serde_json::Value]) {
    if list.is_empty() {
        println!("no VM is isolated");
        return;
    }
    let mut rows = vec![
        ["VM", "STATE", "LEFT", "EXPIRES", "ORIGIN", "EXCLUSIONS"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for i in list {
        let s = |k: &str| i.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        let left = i
            .get("seconds_left")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let excl: Vec<String> = i
            .get("exclusions")
            .and_then(|e| e.as_array())
            .map(|a| a.iter().map(describe).collect())
            .unwrap_or_default();
        rows.push(vec![
            s("vm"),
            "isolated".into(),
            crate::control::go_duration(left),
            s("expires"),
            s("origin"),
            if excl.is_empty() {
                "none".into()
            } else {
                excl.join(", ")
            },
        ]);
    }
    for line in table(&rows, &[2]) {
        println!("{line}");
    }
    println!("(on a mirror only TCP can be stopped: the SVM resets it; other traffic still flows)");
}

/// Run `svm isolation ...`.
pub fn run(cmd: IsolationCommand) -> Exit {
    match cmd {
        IsolationCommand::Enable {
            vm,
            duration,
            exclude,
            note,
            client,
        } => {
            let excl = match exclusions(&exclude) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("svm: {e}");
                    return Exit::Syntax;
                }
            };
            let mut body = serde_json::Map::new();
            body.insert("vm".into(), vm.into());
            body.insert(
                "note".into(),
                note.unwrap_or_else(|| "svm isolation enable".into()).into(),
            );
            if let Some(m) = duration {
                body.insert("minutes".into(), m.into());
            }
            if let Some(e) = excl {
                body.insert("exclusions".into(), e);
            }
            let body = serde_json::Value::Object(body);
            let resp = call(
                &client,
                Method::POST,
                "/api/v1/isolations",
                Some(body.to_string()),
            );
            finish(&client, resp, |b| {
                let v: serde_json::Value = serde_json::from_slice(b).unwrap_or_default();
                let left = v
                    .get("seconds_left")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                println!(
                    "isolated {} for {}",
                    v.get("vm").and_then(|x| x.as_str()).unwrap_or(""),
                    crate::control::go_duration(left)
                );
            })
        }
        IsolationCommand::Show { vm, client } => {
            let path = match &vm {
                Some(v) => format!("/api/v1/isolations/{}", percent_encode(v)),
                None => "/api/v1/isolations".to_owned(),
            };
            let resp = call(&client, Method::GET, &path, None);
            if vm.is_some()
                && let Ok(r) = &resp
                && r.status == hyper::StatusCode::NOT_FOUND
                && String::from_utf8_lossy(&r.body).contains("is not isolated")
            {
                // A protected VM that is not isolated: a state, not an error.
                if client.json {
                    println!("{}", String::from_utf8_lossy(&r.body));
                } else {
                    println!("{}: not isolated", vm.as_deref().unwrap_or(""));
                }
                return Exit::Ok;
            }
            finish(&client, resp, |b| {
                let v: serde_json::Value = serde_json::from_slice(b).unwrap_or_default();
                match v {
                    serde_json::Value::Array(list) => print_rows(&list),
                    one => print_rows(&[one]),
                }
            })
        }
        IsolationCommand::Disable { vm, client } => {
            let path = format!("/api/v1/isolations/{}", percent_encode(&vm));
            let resp = call(&client, Method::DELETE, &path, None);
            finish(&client, resp, |b| {
                let v: serde_json::Value = serde_json::from_slice(b).unwrap_or_default();
                println!(
                    "released {}",
                    v.get("vm").and_then(|x| x.as_str()).unwrap_or("")
                );
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("8h"), Ok(480));
        assert_eq!(parse_duration("1h30m"), Ok(90));
        assert_eq!(parse_duration("120s"), Ok(2));
        assert_eq!(parse_duration("30d"), Ok(43_200));
        for bad in [
            "",
            "0",
            "31d",
            "90s",
            "1x",
            "h",
            "5m3",
            "-5",
            "99999999999999999999",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exclusion_values() {
        assert_eq!(exclusions(&[]).unwrap(), None);
        assert_eq!(
            exclusions(&["[]".into()]).unwrap(),
            Some(serde_json::json!([]))
        );
        let e = exclusions(&[
            "{remote: 10.0.0.5, ports: [443]}".into(),
            "[{profile: dns-client}, {profile: dhcp-client}]".into(),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(e.as_array().unwrap().len(), 3);
        assert_eq!(e[0]["remote"], "10.0.0.5");
        assert!(exclusions(&["dns-client".into()]).is_err());
        assert!(exclusions(&["{a: [".into()]).is_err());
        assert_eq!(describe(&e[1]), "dns-client");
        assert_eq!(describe(&e[0]), "remote=10.0.0.5 ports=[443]");
    }
}
