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
