//! Live time: the dataplane's tables (flow timeouts, detection windows, the expiry a block gets)
//! run on each frame's time, which the I/O backend stamps. AF_PACKET stamps frames with the
//! kernel's receive time, so when a worker lags (the backlog of a flood), every frame it reads
//! is from the past, and the tables stop ageing while the backlog lasts: a flood once froze them
//! for minutes (issue 15 item 1). The worker therefore reads a monotonic clock once per poll
//! and never lets a frame's time lag it by more than [`MAX_LAG_US`]. A frame within that lag
//! keeps its own time (and the spacing between frames), so detection windows still see the
//! real arrival rate. Replay does not come here: it runs on capture time only, so it stays
//! deterministic.
//!
//! The daemon has one such clock ([`LiveClock::start`] in `Services::start`), handed down to
//! everything that asks for the time: each worker's floor, the block and isolation keepers'
//! expiry, and the control plane (listings, manual blocks, events). Frames keep their receive
//! time (packet time) within the floor.

use std::time::Instant;

use dataplane::time::Timestamp;

/// Most a frame's time may lag the clock. Flow timeouts are 5 s and more (emergency TCP new),
/// so a second keeps them on time while keeping the arrival spacing of a short lag.
pub const MAX_LAG_US: u64 = Timestamp::SECOND;

/// The wall clock read once at start and advanced by a monotonic clock: it does not jump when
/// the system's time is set, and it never goes back.
#[derive(Clone, Copy, Debug)]
pub struct LiveClock {
    wall0: Timestamp,
    mono0: Instant,
}

impl LiveClock {
    /// Starting now.
    pub fn start() -> Self {
        LiveClock::starting(super::now(), Instant::now())
    }

    /// A clock that read `wall0` at the instant `mono0`.
    pub fn starting(wall0: Timestamp, mono0: Instant) -> Self {
        LiveClock { wall0, mono0 }
    }

    /// The time now.
    pub fn now(&self) -> Timestamp {
        let us = u64::try_from(self.mono0.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.wall0.plus_micros(us)
    }

    /// The earliest time a frame read now may carry: the clock minus [`MAX_LAG_US`].
    pub fn floor(&self) -> Timestamp {
        Timestamp(self.now().micros().saturating_sub(MAX_LAG_US))
    }
}

impl dataplane::time::Clock for LiveClock {
    fn now(&self) -> Timestamp {
        LiveClock::now(self)
    }
}

/// A frame's time: its receive time, or `floor` if that is later.
#[inline]
pub fn frame_time(rx: Timestamp, floor: Timestamp) -> Timestamp {
    rx.max(floor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::time::Duration;

    use dataplane::driver::{Driven, Driver, Events};
    use dataplane::io::{FrameHandler, RxMeta};
    use dataplane::shared_blocks::SharedBlocks;
    use dataplane::worker::{Worker, WorkerConfig};
    use policy::{CompiledPolicy, Policy};

    use super::*;

    const T: Timestamp = Timestamp(1_800_000_000 * Timestamp::SECOND);

    #[test]
    fn the_clock_advances_monotonically_from_its_start() {
        let c = LiveClock::starting(
            T,
            Instant::now().checked_sub(Duration::from_secs(5)).unwrap(),
        );
        let a = c.now();
        assert!(a.since(T) >= 5 * Timestamp::SECOND && a.since(T) < 60 * Timestamp::SECOND);
        assert!(c.now() >= a);
        // The floor read first: a clock read after it is at least MAX_LAG_US ahead. (Read the
        // other way round, time passing between the two reads made this fail under load.)
        let floor = c.floor();
        assert!(c.now().since(floor) >= MAX_LAG_US);
        assert_eq!(frame_time(T, Timestamp(0)), T);
        assert_eq!(frame_time(Timestamp(0), T), T);
    }

    /// One UDP frame of a flow (10.0.0.10:`sport` -> 10.0.0.20:53), untagged.
    fn udp_frame(sport: u16) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 0x20, 2, 0, 0, 0, 0, 0x10, 0x08, 0x00];
        // IPv4: version/IHL, TOS, total length 29, id, flags/offset, TTL 64, UDP, checksum 0
        // (not validated by default), addresses.
        f.extend_from_slice(&[
            0x45, 0, 0, 29, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 10, 10, 0, 0, 20,
        ]);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&[0, 53, 0, 9, 0, 0, b'x']);
        f
    }

    /// A backlog whose receive times stay at `T` while the clock has moved on 400 s: the flow
    /// of its first frame times out (UDP: 300 s), so the next frame of that flow starts a new
    /// one. With receive times only, the table would not have aged at all.
    #[test]
    fn a_lagging_input_ages_the_flow_table_on_the_clock() {
        for (advance, flows_created) in [(true, 3), (false, 2)] {
            let blocks = SharedBlocks::new(1, 16).clients.remove(0);
            let worker = Worker::new(
                WorkerConfig::default(),
                Arc::new(CompiledPolicy::compile(Policy::default())),
                blocks,
            );
            let (tx, _rx) = std::sync::mpsc::sync_channel(16);
            let clock = LiveClock::starting(
                T,
                Instant::now()
                    .checked_sub(Duration::from_secs(400))
                    .unwrap(),
            );
            let mut h = Driver::new(worker, Events::Channel(tx))
                .with_floor(Box::new(move || clock.floor()));
            let meta = |us: u64| RxMeta {
                port: 0,
                ts: T.plus_micros(us),
            };
            // The first frame is read before the clock is looked at: it keeps its own time.
            h.on_frame(&udp_frame(5000), meta(0));
            if advance {
                h.refresh();
            }
            h.on_frame(&udp_frame(5001), meta(1));
            h.on_frame(&udp_frame(5000), meta(2));
            assert_eq!(
                h.worker().flows().stats().created,
                flows_created,
                "advance {advance}"
            );
        }
    }
}
