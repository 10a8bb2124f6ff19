//! The daemon's log: `tracing` records on standard error, one line each.
//!
//! - On a terminal or in a file: `2026-12-07T02:33:00.123456+0000  INFO svm run: ...`, UTC
//!   with microseconds as EVE writes them; colours only when standard error is a terminal.
//! - Under systemd (`JOURNAL_STREAM` set: standard error is the journal's stream): no timestamp,
//!   since journald stamps every line itself, and each line starts with its syslog priority
//!   (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug and trace), which journald reads
//!   (`SyslogLevelPrefix=`, on by default) so `journalctl -p warning` filters by level.
//!
//! Why not `tracing-journald`: the stream keeps one sink for every way the daemon runs (systemd,
//! a container, a terminal, a test reading standard error), needs no socket and no extra crate,
//! and the priority prefix gives journald the level; structured journal fields are not needed,
//! since the events themselves go to EVE.
//!
//! The filter: `svm run --log-level` if given, else `RUST_LOG`, else `info`. Either is a level
//! (`error`, `warn`, `info`, `debug`, `trace`) or `tracing` filter directives
//! (`info,svm::api=debug`). A bad filter is refused before the daemon starts.
//!
//! The replay and the admin commands do not log: what they print is their output.

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Standard error is the journal: priority prefix, no timestamp.
    pub journal: bool,
    /// Colour the level.
    pub ansi: bool,
}

impl Style {
    /// The style for this process's standard error and environment.
    pub fn detect() -> Style {
        let journal = std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty());
        Style {
            journal,
            ansi: !journal && std::io::stderr().is_terminal(),
        }
    }
}

/// The syslog priority journald reads from a `<N>` prefix.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// The filter of `--log-level` (if given) or `RUST_LOG`, `info` without either.
pub fn filter(log_level: Option<&str>) -> Result<EnvFilter, String> {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (text, origin) = match (log_level, from_env) {
        (Some(l), _) => (l.to_owned(), "--log-level"),
        (None, Some(e)) => (e, "RUST_LOG"),
        (None, None) => ("info".to_owned(), "the default"),
    };
    let hint = "a level (error, warn, info, debug, trace, off) or directives (info,svm::api=debug)";
    // A lone word would be read as a target name and silence everything else: it must be a
    // level.
    if !text.contains(['=', ',', '[']) {
        text.trim()
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .map_err(|_| format!("{origin} {text:?}: not a level; give {hint}"))?;
    }
    EnvFilter::builder()
        .parse(&text)
        .map_err(|e| format!("{origin} {text:?}: {e}; give {hint}"))
}

/// One line a record (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct Line(pub Style);

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = *event.metadata().level();
        if self.0.journal {
            write!(w, "<{}>", priority(level))?;
        } else {
            write!(w, "{} ", now())?;
        }
        if self.0.ansi {
            let colour = match level {
                Level::ERROR => "31",
                Level::WARN => "33",
                Level::INFO => "32",
                Level::DEBUG => "34",
                Level::TRACE => "35",
            };
            write!(w, "\x1b[{colour}m{level:>5}\x1b[0m ")?;
        } else {
            write!(w, "{level:>5} ")?;
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

fn now() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    crate::eve::format_ts(dataplane::time::Timestamp(micros))
}

/// Install the daemon's logger (once; a second call keeps the first).
pub fn init(log_level: Option<&str>) -> Result<(), String> {
    let filter = filter(log_level)?;
    let style = Style::detect();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(style.ansi)
        .event_format(Line(style))
        .try_init();
    Ok(())
}

/// At most [`RateLimit::PER_SECOND`] lines a second from one call site, for lines a remote peer
/// can cause (refused handshakes, refused requests): a flood of them must not flood the log.
#[derive(Debug, Default)]
pub struct RateLimit {
    second: AtomicU64,
    count: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimit {
    /// Lines a second let through.
    pub const PER_SECOND: u64 = 10;

    /// A new limiter.
    pub const fn new() -> RateLimit {
        RateLimit {
            second: AtomicU64::new(0),
            count: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether to log now (`Some(lines suppressed since the last one logged)`) or not.
    pub fn check(&self) -> Option<u64> {
        let sec = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.check_at(sec)
    }

    fn check_at(&self, sec: u64) -> Option<u64> {
        if self.second.swap(sec, Ordering::Relaxed) != sec {
            self.count.store(0, Ordering::Relaxed);
        }
        if self.count.fetch_add(1, Ordering::Relaxed) < Self::PER_SECOND {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
    }

    #[test]
    fn a_bad_filter_is_refused_with_its_origin() {
        let e = filter(Some("loud")).err().unwrap_or_default();
        assert!(e.starts_with("--log-level \"loud\": not a level"), "{e}");
        let e = filter(Some("svm=loud")).err().unwrap_or_default();
        assert!(e.starts_with("--log-level \"svm=loud\""), "{e}");
        assert!(filter(Some("debug")).is_ok());
        assert!(filter(Some("info,svm::api=debug")).is_ok());
    }

    #[test]
    fn the_limit_lets_ten_a_second_through_and_counts_the_rest() {
        let r = RateLimit::new();
        for _ in 0..RateLimit::PER_SECOND {
            assert_eq!(r.check_at(5), Some(0));
        }
        assert_eq!(r.check_at(5), None);
        assert_eq!(r.check_at(5), None);
        assert_eq!(r.check_at(6), Some(2));
    }
}
