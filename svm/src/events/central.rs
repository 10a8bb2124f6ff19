//! The central-server sender: POSTs spooled events as a JSON array to the configured URL over
//! HTTPS (server certificate checked, client certificate sent), removes them from the spool only
//! after a 2xx answer, and retries failures with exponential backoff. At least once: a batch
//! whose answer was lost is sent again, and the server deduplicates on the events' `id`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::Method;

use super::EventHub;
use crate::https::HttpsClient;

/// Settings of the sender.
#[derive(Clone, Debug)]
pub struct CentralConfig {
    /// Where batches go, e.g. `https://central.example:8443/api/v1/events`.
    pub url: String,
    /// Events per POST at most.
    pub batch_max: usize,
    /// First retry delay.
    pub backoff_min: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Check the spool at least this often even without a wake-up.
    pub idle_poll: Duration,
}

impl CentralConfig {
    /// Defaults for `url`: 500 events per batch, backoff 0.5 s doubling to 60 s.
    pub fn new(url: impl Into<String>) -> Self {
        CentralConfig {
            url: url.into(),
            batch_max: 500,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            idle_poll: Duration::from_secs(1),
        }
    }
}

/// Run until `shutdown` turns true.
pub async fn run(
    hub: EventHub,
    client: HttpsClient,
    cfg: CentralConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let store = hub.store().clone();
    let wake: Arc<tokio::sync::Notify> = hub.wake().clone();
    let mut backoff = cfg.backoff_min;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let st = store.clone();
        let max = cfg.batch_max;
        let batch = tokio::task::spawn_blocking(move || st.spool_peek(max))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        if batch.is_empty() {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(cfg.idle_poll) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let mut body =
            Vec::with_capacity(batch.iter().map(|s| s.data.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, s) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&s.data);
        }
        body.push(b']');
        let sent = client
            .request(
                Method::POST,
                &cfg.url,
                &[("content-type", "application/json".into())],
                body,
            )
            .await;
        match sent {
            Ok(resp) if resp.status.is_success() => {
                let seqs: Vec<u64> = batch.iter().map(|s| s.seq).collect();
                let st = store.clone();
                let acked = tokio::task::spawn_blocking(move || st.spool_ack(&seqs)).await;
                if matches!(acked, Ok(Ok(()))) {
                    hub.stats()
                        .sent
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    backoff = cfg.backoff_min;
                } else {
                    // The store could not remove the delivered batch (a full disk): it is
                    // still spooled and would be posted again at once, over and over (5,895
                    // POSTs of one batch in 20 s). Wait as after a failed send; the server
                    // deduplicates the batch when it comes again.
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(cfg.backoff_max);
                }
            }
            _ => {
                hub.stats().send_failures.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(cfg.backoff_max);
            }
        }
    }
}
