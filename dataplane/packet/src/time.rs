//! Time as the dataplane sees it: microseconds since the Unix epoch, handed in with each packet.
//! In replay it is the capture's timestamp; live, the wall clock at receive time.

/// A point in time, microseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Microseconds in one second.
    pub const SECOND: u64 = 1_000_000;

    /// From seconds and microseconds.
    pub const fn from_secs_micros(secs: u64, micros: u32) -> Self {
        Timestamp(
            secs.saturating_mul(Self::SECOND)
                .saturating_add(micros as u64),
        )
    }

    /// Microseconds since the epoch.
    pub const fn micros(self) -> u64 {
        self.0
    }

    /// This time plus `secs` seconds, saturating.
    pub const fn plus_secs(self, secs: u64) -> Self {
        Timestamp(self.0.saturating_add(secs.saturating_mul(Self::SECOND)))
    }

    /// This time plus `us` microseconds, saturating.
    pub const fn plus_micros(self, us: u64) -> Self {
        Timestamp(self.0.saturating_add(us))
    }

    /// Microseconds from `earlier` to `self`, zero if `earlier` is later.
    pub const fn since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The one source of "now" outside packet time: the keepers' expiry, the live frames' floor and
/// the control plane all read the clock they are handed, so the daemon runs them on one clock
/// (`svm/src/daemon/clock.rs`: the wall clock read at start, advanced by a monotonic clock),
/// and tests hand in a clock they move by hand. Replay needs none: it runs on packet time.
pub trait Clock: Send + Sync + core::fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock, read at every call (it jumps when the system's time is set): for
/// tools that run no dataplane.
#[derive(Clone, Copy, Debug, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_secs_micros(d.as_secs(), d.subsec_micros())
    }
}
