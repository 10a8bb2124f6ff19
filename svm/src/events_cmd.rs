//! `svm events tail [--follow] [--type T] [--severity S] [--vlan V] [-n N]`: the daemon's events
//! as they happen, the way admins watch an IDS: the last `N` from `GET /api/v1/events`, and with
//! `--follow` every new one from the server-sent event stream (`GET /api/v1/events/stream`)
//! until interrupted. One line per event (`--json`: the EVE JSON line).

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};
use http_body_util::BodyExt;

use crate::admin_cli::{ClientArgs, percent_encode};
use crate::cli::Exit;

/// A stream silent for this long (the daemon sends a keep-alive every 15 s) is taken as lost.
const IDLE: Duration = Duration::from_secs(45);
/// Longest line of a server-sent event accepted (an event is far smaller).
const MAX_LINE: usize = 1 << 20;

/// `svm events ...`
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the daemon's recent events; with --follow, keep printing new ones.
    Tail(TailArgs),
}

/// `svm events tail` arguments.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Keep printing new events until interrupted.
    #[arg(short, long)]
    pub follow: bool,
    /// Recent events printed first (0..=1000).
    #[arg(short = 'n', long = "lines", default_value_t = 10, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub lines: u16,
    /// Only these event types (repeatable or comma-separated: alert, block_added, ...).
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Only events of at least this severity.
    #[arg(long, value_parser = ["info", "warning", "error", "critical"])]
    pub severity: Option<String>,
    /// Only events of this VLAN scope (`untagged`, `100`, `100.200`).
    #[arg(long)]
    pub vlan: Option<String>,
    /// Connection.
    #[command(flatten)]
    pub client: ClientArgs,
}

fn query(a: &TailArgs, count: (&str, u16)) -> String {
    let mut q = vec![format!("{}={}", count.0, count.1)];
    if !a.types.is_empty() {
        q.push(format!("type={}", percent_encode(&a.types.join(","))));
    }
    if let Some(s) = &a.severity {
        q.push(format!("severity={}", percent_encode(s)));
    }
    if let Some(v) = &a.vlan {
        q.push(format!("vlan={}", percent_encode(v)));
    }
    q.join("&")
}

/// One event in words: time, severity, type, then what it is about.
pub fn human(v: &serde_json::Value) -> String {
    let s = |p: &str| {
        v.pointer(p).map(|x| match x {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let sev = v
        .get("severity")
        .and_then(serde_json::Value::as_u64)
        .map_or("?", |l| crate::events::Severity::from_level(l).name());
    let kind = s("/event_type").unwrap_or_default();
    let mut about = Vec::new();
    if let Some(sig) = s("/alert/signature") {
        about.push(sig);
    }
    if let (Some(src), Some(dst)) = (s("/src_ip"), s("/dest_ip")) {
        let port = |p: &str| s(p).map(|x| format!(":{x}")).unwrap_or_default();
        about.push(format!(
            "{src}{} -> {dst}{}",
            port("/src_port"),
            port("/dest_port")
        ));
    }
    if let Some(vlan) = v.get("vlan").and_then(|x| x.as_array()) {
        let tags: Vec<String> = vlan.iter().map(ToString::to_string).collect();
        about.push(format!("vlan {}", tags.join(".")));
    }
    if let Some(action) = s("/alert/action") {
        about.push(action);
    }
    if about.is_empty() {
        about.push(s("/message").unwrap_or_default());
    }
    format!(
        "{}  {sev:<8}  {kind}  {}",
        s("/timestamp").unwrap_or_default(),
        about.join("  ")
    )
}

fn print_event(json: bool, v: &serde_json::Value, out: &mut impl Write) -> std::io::Result<()> {
    if json {
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "{}", human(v))?;
    }
    out.flush()
}

/// Server-sent events from bytes as they arrive: complete `data:` lines as events, `event:
/// lost` blocks as a count, comments ignored.
#[derive(Debug, Default)]
pub struct SseReader {
    buf: Vec<u8>,
    event: Option<String>,
}

/// What a stream said.
#[derive(Debug, PartialEq)]
pub enum SseItem {
    /// An event (its JSON).
    Event(serde_json::Value),
    /// The daemon dropped this many events for this client.
    Lost(u64),
}

impl SseReader {
    /// Feed bytes; returns the items they complete, or an error for an overlong line.
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<SseItem>, String> {
        self.buf.extend_from_slice(data);
        let mut items = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(name) = line.strip_prefix("event:") {
                self.event = Some(name.trim().to_owned());
            } else if let Some(data) = line.strip_prefix("data:") {
                let v: serde_json::Value = serde_json::from_str(data.trim())
                    .map_err(|e| format!("unreadable event from the daemon: {e}"))?;
                if self.event.as_deref() == Some("lost") {
                    items.push(SseItem::Lost(
                        v.get("lost")
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or(0),
                    ));
                } else {
                    items.push(SseItem::Event(v));
                }
            } else if line.is_empty() {
                self.event = None;
            }
        }
        if self.buf.len() > MAX_LINE {
            return Err(format!("a line from the daemon is over {MAX_LINE} bytes"));
        }
        Ok(items)
    }
}

async fn follow(a: &TailArgs) -> Result<(), String> {
    let (http, base) = crate::admin_cli::https_client(&a.client).map_err(|e| format!("{e:#}"))?;
    let url = format!(
        "{base}/api/v1/events/stream?{}",
        query(a, ("backlog", a.lines))
    );
    let resp = http
        .get_streaming(&url, &[("accept", "text/event-stream".to_owned())])
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let text = tokio::time::timeout(IDLE, body.collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
        return Err(format!(
            "{status} {}",
            v.get("message").and_then(|m| m.as_str()).unwrap_or("")
        ));
    }
    let mut reader = SseReader::default();
    let mut out = std::io::stdout().lock();
    loop {
        let frame = match tokio::time::timeout(IDLE, body.frame()).await {
            Err(_) => return Err(format!("the daemon sent nothing for {IDLE:?}")),
            Ok(None) => return Err("the daemon ended the stream (stopped?)".into()),
            Ok(Some(Err(e))) => return Err(format!("the stream broke: {e}")),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for item in reader.feed(&data)? {
            match item {
                SseItem::Event(v) => {
                    // A closed standard output (`| head`) ends the command quietly.
                    if print_event(a.client.json, &v, &mut out).is_err() {
                        return Ok(());
                    }
                }
                SseItem::Lost(n) => {
                    eprintln!("svm: {n} events lost (this client read too slowly)");
                }
            }
        }
    }
}

/// Run `svm events ...`.
pub fn run(cmd: &EventsCommand) -> Exit {
    let EventsCommand::Tail(a) = cmd;
    if a.follow {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("svm: {e}");
                return Exit::General;
            }
        };
        return match rt.block_on(follow(a)) {
            Ok(()) => Exit::Ok,
            Err(e) => {
                eprintln!("svm: {e}");
                if e.starts_with("403") {
                    Exit::WrongOperation
                } else if e.starts_with("400") {
                    Exit::Syntax
                } else {
                    Exit::General
                }
            }
        };
    }
    if a.lines == 0 {
        return Exit::Ok;
    }
    // Without --json, the events in words (finish prints the API's array with --json).
    let path = format!("/api/v1/events?{}", query(a, ("limit", a.lines)));
    crate::admin_cli::get(&a.client, &path, |body| {
        let list: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap_or_default();
        let mut out = std::io::stdout().lock();
        for v in &list {
            if print_event(false, v, &mut out).is_err() {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sse_reader_joins_split_chunks_and_reads_lost_counts() {
        let mut r = SseReader::default();
        assert!(r.feed(b": svm events\n\ndata: {\"a\"").unwrap().is_empty());
        assert_eq!(
            r.feed(b":1}\n\nevent: lost\ndata: {\"lost\":7}\n\n: keepalive\n\ndata: {}\n\n")
                .unwrap(),
            vec![
                SseItem::Event(serde_json::json!({"a": 1})),
                SseItem::Lost(7),
                SseItem::Event(serde_json::json!({})),
            ]
        );
        assert!(r.feed(b"data: nope\n").is_err());
        let mut r = SseReader::default();
        assert!(r.feed(&vec![b'x'; MAX_LINE + 1]).is_err());
    }

    proptest::proptest! {
        /// However the bytes are split into chunks, the same items come out; any bytes give
        /// items or an error, never a panic.
        #[test]
        fn chunking_does_not_change_what_is_read(
            events in proptest::collection::vec((0u64..1000, proptest::bool::ANY), 0..20),
            cuts in proptest::collection::vec(0usize..4096, 0..10),
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
        ) {
            let mut text = String::new();
            for (n, lost) in &events {
                if *lost {
                    text.push_str(&format!("event: lost\ndata: {{\"lost\":{n}}}\n\n"));
                } else {
                    text.push_str(&format!(": keepalive\n\ndata: {{\"n\":{n}}}\r\n\n"));
                }
            }
            let whole = SseReader::default().feed(text.as_bytes()).unwrap();
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut r = SseReader::default();
            let mut pieces = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                pieces.extend(r.feed(&bytes[at..c]).unwrap());
                at = c;
            }
            proptest::prop_assert_eq!(&pieces, &whole);
            proptest::prop_assert_eq!(whole.len(), events.len());
            let _ = SseReader::default().feed(&noise);
        }
    }

    #[test]
    fn an_alert_in_words() {
        let v = serde_json::json!({"timestamp": "2026-12-07T00:00:00.000000+0000",
            "event_type": "alert", "src_ip": "10.0.0.66", "src_port": 4444,
            "dest_ip": "10.0.0.10", "dest_port": 80, "vlan": [100, 200],
            "alert": {"signature": "Scan.Generic.TCP", "action": "blocked"}, "severity": 4});
        assert_eq!(
            human(&v),
            "2026-12-07T00:00:00.000000+0000  critical  alert  Scan.Generic.TCP  \
             10.0.0.66:4444 -> 10.0.0.10:80  vlan 100.200  blocked"
        );
        let v = serde_json::json!({"timestamp": "t", "event_type": "policy_applied",
            "message": "policy version 2 applied", "severity": 1});
        assert_eq!(
            human(&v),
            "t  info      policy_applied  policy version 2 applied"
        );
    }
}
