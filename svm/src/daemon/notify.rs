//! The service manager's readiness and watchdog protocol (`sd_notify(3)`), spoken on the
//! datagram socket systemd names in `$NOTIFY_SOCKET`: `READY=1` once the workers forward and the
//! API listens, `STATUS=` lines an admin sees in `systemctl status`, `WATCHDOG=1` from the worker
//! supervision loop at half of `$WATCHDOG_USEC` while every worker is alive, and `STOPPING=1` at
//! shutdown. Without `$NOTIFY_SOCKET` (started by hand, `Type=exec`) every call does nothing.
//!
//! The protocol is newline-separated `KEY=VALUE` assignments in one datagram to a unix socket: a
//! path, or a name in the abstract namespace when it starts with `@`. Written here over std's
//! `UnixDatagram` (a dozen lines) rather than a dependency. `$WATCHDOG_PID`, when set, names the
//! process the watchdog is meant for: another process's value is ignored, as `sd_watchdog_enabled`
//! does.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// A connection to the service manager, or nothing when the daemon was not started by one.
#[derive(Debug, Default)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// Half of `$WATCHDOG_USEC`: how often `WATCHDOG=1` is sent.
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
}

/// Why `$NOTIFY_SOCKET` cannot be used (logged once at start; the daemon runs without it).
#[derive(Debug, thiserror::Error)]
#[error("NOTIFY_SOCKET {socket:?}: {reason}")]
pub struct NotifyError {
    socket: String,
    reason: String,
}

impl Notifier {
    /// The notifier the environment describes, read through `var` (the process environment in
    /// the daemon, a map in tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Notifier, NotifyError> {
        let Some(socket) = var("NOTIFY_SOCKET").filter(|s| !s.is_empty()) else {
            return Ok(Notifier::default());
        };
        let err = |reason: String| NotifyError {
            socket: socket.clone(),
            reason,
        };
        let addr = match socket.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())
            }
            None if socket.starts_with('/') => SocketAddr::from_pathname(&socket),
            None => return Err(err("neither an absolute path nor an @abstract name".into())),
        }
        .map_err(|e| err(e.to_string()))?;
        let sock = UnixDatagram::unbound().map_err(|e| err(e.to_string()))?;
        let for_us = var("WATCHDOG_PID")
            .is_none_or(|p| p.trim().parse::<u32>().ok() == Some(std::process::id()));
        let watchdog = var("WATCHDOG_USEC")
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(|u| Duration::from_micros(u / 2));
        Ok(Notifier {
            target: Some((sock, addr)),
            watchdog,
            last_ping: None,
        })
    }

    /// The notifier of this process's environment; a socket it cannot use is reported on
    /// standard error and ignored.
    pub fn from_env() -> Notifier {
        Notifier::from_vars(|k| std::env::var(k).ok()).unwrap_or_else(|e| {
            tracing::warn!("svm run: {e}; not notifying the service manager");
            Notifier::default()
        })
    }

    /// Whether a service manager listens.
    pub fn active(&self) -> bool {
        self.target.is_some()
    }

    /// The watchdog's ping interval, when the manager asked for one.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    fn send(&self, text: &str) {
        if let Some((sock, addr)) = &self.target
            && let Err(e) = sock.send_to_addr(text.as_bytes(), addr)
        {
            tracing::warn!("svm run: NOTIFY_SOCKET: {e}");
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// A `STATUS=` line.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// `WATCHDOG=1` when half the watchdog interval has passed since the last one; call it from
    /// the supervision loop only while every worker is alive, so a stuck daemon is restarted.
    pub fn watchdog_tick(&mut self) {
        let Some(every) = self.watchdog else { return };
        if self.last_ping.is_none_or(|t| t.elapsed() >= every) {
            self.last_ping = Some(Instant::now());
            self.send("WATCHDOG=1");
        }
    }

    /// `STOPPING=1` with a status line.
    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }
}

/// A status is one assignment: newlines would start new ones.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf.get(..n).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn path_socket_gets_ready_status_watchdog_and_stopping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut n = Notifier::from_vars(vars(&[
            ("NOTIFY_SOCKET", path.display().to_string()),
            ("WATCHDOG_USEC", "200000".into()),
            ("WATCHDOG_PID", std::process::id().to_string()),
        ]))
        .unwrap();
        assert!(n.active());
        assert_eq!(n.watchdog_interval(), Some(Duration::from_millis(100)));
        n.ready("2 workers\nforwarding");
        assert_eq!(recv(&sock), "READY=1\nSTATUS=2 workers forwarding");
        n.watchdog_tick();
        assert_eq!(recv(&sock), "WATCHDOG=1");
        // Not again before half the interval.
        n.watchdog_tick();
        n.status("reloaded");
        assert_eq!(recv(&sock), "STATUS=reloaded");
        std::thread::sleep(Duration::from_millis(120));
        n.watchdog_tick();
        assert_eq!(recv(&sock), "WATCHDOG=1");
        n.stopping("stopping");
        assert_eq!(recv(&sock), "STOPPING=1\nSTATUS=stopping");
    }

    #[test]
    fn abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("svm-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notifier::from_vars(vars(&[("NOTIFY_SOCKET", format!("@{name}"))])).unwrap();
        assert_eq!(n.watchdog_interval(), None);
        n.ready("up");
        assert_eq!(recv(&sock), "READY=1\nSTATUS=up");
    }

    #[test]
    fn watchdog_of_another_process_is_ignored_and_bad_sockets_refused() {
        let n = Notifier::from_vars(vars(&[
            ("NOTIFY_SOCKET", "/run/nothing".into()),
            ("WATCHDOG_USEC", "1000000".into()),
            ("WATCHDOG_PID", "1".into()),
        ]))
        .unwrap();
        assert_eq!(n.watchdog_interval(), None);
        assert!(!Notifier::from_vars(vars(&[])).unwrap().active());
        let e = Notifier::from_vars(vars(&[("NOTIFY_SOCKET", "relative".into())])).unwrap_err();
        assert!(e.to_string().contains("absolute path"), "{e}");
    }
}
