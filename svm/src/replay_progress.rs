//! `svm replay`'s progress on a terminal: a bar on standard error for long captures, drawn
//! only when standard error is a terminal and the replay has run for a second, cleared before
//! the summary. Piped or redirected output never carries it.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use dataplane::io::pcap::PcapIo;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Progress;

/// A capture shorter than this to replay shows no bar.
const SHOW_AFTER: Duration = Duration::from_secs(1);
/// Bursts between two looks at the capture's position (each look asks the file).
const LOOK_EVERY: u32 = 32;

/// The progress of one replay.
#[derive(Debug)]
pub struct ReplayProgress {
    enabled: bool,
    started: Instant,
    ticks: u32,
    bar: Option<ProgressBar>,
}

impl ReplayProgress {
    /// Progress as `--progress` asks, on standard error.
    pub fn new(mode: Progress) -> ReplayProgress {
        ReplayProgress {
            enabled: mode == Progress::Auto && std::io::stderr().is_terminal(),
            started: Instant::now(),
            ticks: 0,
            bar: None,
        }
    }

    /// After a burst: now and then, read how far the capture is and redraw.
    pub fn tick(&mut self, io: &mut PcapIo) {
        if !self.enabled {
            return;
        }
        self.ticks = self.ticks.wrapping_add(1);
        if !self.ticks.is_multiple_of(LOOK_EVERY) {
            return;
        }
        if self.bar.is_none() && self.started.elapsed() < SHOW_AFTER {
            return;
        }
        let (done, total) = io.progress();
        let bar = self.bar.get_or_insert_with(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
            if let Ok(style) = ProgressStyle::with_template(
                "replay [{elapsed_precise}] {wide_bar} {percent:>3}% eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar.with_elapsed(self.started.elapsed())
        });
        bar.set_position(done);
    }

    /// The replay ended: take the bar off the terminal before the summary is printed.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
