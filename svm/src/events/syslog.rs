//! RFC 5424 syslog: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`, sent over UDP
//! (one datagram per message) or TCP (RFC 6587 octet counting: `LEN SP MSG`).
//!
//! Header fields are printable US-ASCII without spaces, truncated to the RFC's limits
//! (HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32); empty ones are `-`. The structured data
//! element `svm@32473` (32473 is the documentation enterprise number of RFC 5612) carries the
//! event id and severity; MSG is the event's JSON.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};

use super::record::{Record, Severity};

/// Facility `local0`.
pub const LOCAL0: u8 = 16;

/// Transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One datagram per message.
    Udp,
    /// Octet-counted frames on one connection (reconnected on error).
    Tcp,
}

/// Syslog severity (RFC 5424 table 2) for our 1..4.
pub const fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Info => 6,
        Severity::Warning => 4,
        Severity::Error => 3,
        Severity::Critical => 2,
    }
}

fn header_field(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() { "-".into() } else { clean }
}

fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// RFC 3339 UTC with microseconds: `2026-01-01T00:00:00.000000Z`.
pub fn rfc3339(ts: dataplane::time::Timestamp) -> String {
    let eve = crate::eve::format_ts(ts);
    // EVE's `+0000` suffix is not RFC 3339; the rest is.
    format!("{}Z", eve.trim_end_matches("+0000"))
}

/// Format one message.
pub fn format(rec: &Record, facility: u8, hostname: &str, app: &str, procid: u32) -> String {
    let pri = u16::from(facility.min(23)) * 8 + u16::from(syslog_severity(rec.severity()));
    let msg = serde_json::to_string(&rec.value).unwrap_or_default();
    format!(
        "<{pri}>1 {ts} {host} {app} {procid} {msgid} [svm@32473 id=\"{id}\" severity=\"{sev}\"] {msg}",
        ts = rfc3339(rec.ts),
        host = header_field(hostname, 255),
        app = header_field(app, 48),
        msgid = header_field(rec.event_type(), 32),
        id = sd_escape(rec.id()),
        sev = rec.severity().name(),
    )
}

/// A syslog sender.
#[derive(Debug)]
pub struct SyslogSender {
    target: SocketAddr,
    transport: Transport,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
    facility: u8,
    hostname: String,
    /// Whether to send CEF in the MSG part instead of JSON.
    cef: bool,
}

impl SyslogSender {
    /// A sender to `target`.
    pub fn new(target: SocketAddr, transport: Transport, hostname: &str, cef: bool) -> Self {
        SyslogSender {
            target,
            transport,
            udp: None,
            tcp: None,
            facility: LOCAL0,
            hostname: hostname.to_owned(),
            cef,
        }
    }

    fn line(&self, rec: &Record) -> String {
        let mut line = format(
            rec,
            self.facility,
            &self.hostname,
            "svm",
            std::process::id(),
        );
        if self.cef
            && let Some(at) = line.find("] ")
        {
            line.truncate(at + 2);
            line.push_str(&super::cef::format(rec));
        }
        line
    }

    /// Send one event.
    pub fn send(&mut self, rec: &Record) -> std::io::Result<()> {
        let line = self.line(rec);
        match self.transport {
            Transport::Udp => {
                if self.udp.is_none() {
                    let bind: SocketAddr = if self.target.is_ipv4() {
                        ([0, 0, 0, 0], 0).into()
                    } else {
                        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                    };
                    self.udp = Some(UdpSocket::bind(bind)?);
                }
                if let Some(s) = &self.udp {
                    s.send_to(line.as_bytes(), self.target)?;
                }
                Ok(())
            }
            Transport::Tcp => {
                if self.tcp.is_none() {
                    self.tcp = Some(TcpStream::connect_timeout(
                        &self.target,
                        std::time::Duration::from_secs(2),
                    )?);
                }
                let framed = format!("{} {line}", line.len());
                let res = match self.tcp.as_mut() {
                    Some(s) => s.write_all(framed.as_bytes()),
                    None => Ok(()),
                };
                if res.is_err() {
                    self.tcp = None;
                }
                res
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dataplane::time::Timestamp;

    #[test]
    fn rfc5424_shape() {
        let rec = Record::new(
            Timestamp::from_secs_micros(1_767_225_600, 5),
            "policy_applied",
            Severity::Warning,
            serde_json::Map::new(),
        );
        let line = format(&rec, LOCAL0, "svm host", "svm", 42);
        // <132> = local0 (16) * 8 + warning (4)
        let prefix =
            "<132>1 2026-01-01T00:00:00.000005Z svmhost svm 42 policy_applied [svm@32473 id=\"";
        assert!(line.starts_with(prefix), "{line}");
        assert!(line.contains("\" severity=\"warning\"] {"), "{line}");
    }

    #[test]
    fn sd_values_are_escaped() {
        assert_eq!(sd_escape(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
    }
}
