//! Events for people watching (`svm events tail`, `GET /api/v1/events[/stream]`): the last
//! [`BACKLOG`] events and a broadcast of newer ones. Memory is bounded whatever the clients do:
//! the backlog is a ring, and the broadcast keeps [`BUFFER`] events for all subscribers together;
//! a subscriber that falls further behind loses the oldest it had not read and is told how many
//! (`tokio::sync::broadcast`'s lag), the hub never waits for it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

use super::Record;

/// Events kept for a new watcher.
pub const BACKLOG: usize = 1000;
/// Events the broadcast holds for subscribers that have not read them yet.
pub const BUFFER: usize = 1024;

/// The backlog and the broadcast.
#[derive(Debug)]
pub struct Live {
    recent: Mutex<VecDeque<Arc<Record>>>,
    tx: broadcast::Sender<Arc<Record>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            recent: Mutex::new(VecDeque::with_capacity(BACKLOG)),
            tx: broadcast::channel(BUFFER).0,
        }
    }
}

impl Live {
    /// Add events (after they were spooled and written).
    pub fn publish(&self, batch: &[Record]) {
        // Under the lock, so a subscriber sees each event once: in its backlog or its receiver.
        let mut q = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        for rec in batch {
            let r = Arc::new(rec.clone());
            if q.len() >= BACKLOG {
                q.pop_front();
            }
            q.push_back(r.clone());
            // No subscriber is not an error.
            let _ = self.tx.send(r);
        }
    }

    /// The backlog (oldest first) and a receiver of every later event.
    pub fn subscribe(&self) -> (Vec<Arc<Record>>, broadcast::Receiver<Arc<Record>>) {
        let q = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        (q.iter().cloned().collect(), self.tx.subscribe())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::events::Severity;

    fn rec(i: u64) -> Record {
        let mut f = serde_json::Map::new();
        f.insert("n".into(), i.into());
        Record::new(
            dataplane::time::Timestamp::default(),
            "test",
            Severity::Info,
            f,
        )
    }

    #[test]
    fn backlog_is_bounded_and_a_slow_subscriber_is_told_what_it_lost() {
        let live = Live::default();
        let batch: Vec<Record> = (0..1500).map(rec).collect();
        live.publish(&batch[..100]);
        let (backlog, mut rx) = live.subscribe();
        assert_eq!(backlog.len(), 100);
        live.publish(&batch[100..]);
        let (backlog, _) = live.subscribe();
        assert_eq!(backlog.len(), BACKLOG);
        assert_eq!(backlog[0].value["n"], 500);
        // 1400 sent after the first subscription, BUFFER kept: the oldest 376 are lost.
        match rx.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 1400 - BUFFER as u64),
            other => panic!("{other:?}"),
        }
        assert_eq!(rx.try_recv().unwrap().value["n"], 1500 - BUFFER as u64);
    }
}
