//! The CF lost and back, as one image sees it (docs/FAULTS.md, "The CF is
//! killed, then restarted").
//!
//! z/OS: when VTAM reconnects to the EZBDVIPA structure after losing it,
//! it tells every TCP/IP stack that uses the structure, and each stack
//! writes the security associations of the DVIPAs it owns into it again
//! (z/OS Communications Server: SNA Network Implementation Guide,
//! "Disconnect from the EZBDVIPA structure"). Here a restarted CF starts
//! empty. What a routing stack wrote can be written again (its SA pairs,
//! its connections, its owner records), but the sequence counters cannot:
//! their values are gone, and a counter started anew would hand out
//! numbers the targets already sent (RFC 4303 §3.3.3 forbids reusing
//! them under one SA). So the owner rekeys every child SA it owns; the
//! new SA's counter starts in the new CF (Fig. 6 block 116) and reaches
//! every target (block 118). Until then targets' packets under the old SA
//! get no numbers and are dropped, counted as `cf_dropped.seq_lost`.
//!
//! The watch: every [`WATCH_EVERY`] each image reads a marker key of its
//! own in the CF (`plexnet/incarnation/IMAGE`) and writes it when it is
//! missing. A CF that answers without a marker this image had written
//! lost its state.

use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ImageNode;

/// How often an image reads its marker in the CF.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// What the watch saw, for `status` (`cf_watch`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CfWatchStatus {
    /// The last read was answered.
    pub reachable: bool,
    /// Reads the CF did not answer.
    pub unanswered: u64,
    /// Times the CF answered without the marker: it lost its state.
    pub state_lost: u64,
    /// From the first unanswered read before the last loss until the CF
    /// answered again without the marker, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_outage_ms: Option<u64>,
}

impl ImageNode {
    /// The watch task (see the module doc).
    pub(super) async fn cf_watch(self: Arc<Self>) {
        let key = format!("plexnet/incarnation/{}", self.name);
        let mut written = false;
        let mut down_since: Option<Instant> = None;
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            let Some(cf) = self.cf.get() else {
                continue;
            };
            let lost = match cf.get(&key).await {
                Err(e) => {
                    self.cf_unanswered(&e, down_since.is_none());
                    down_since.get_or_insert_with(Instant::now);
                    continue;
                }
                Ok(Some(_)) => {
                    written = true;
                    false
                }
                Ok(None) => written,
            };
            self.cf_answered(lost, down_since.take());
            if lost {
                self.cf_state_lost().await;
            }
            if !written || lost {
                written = cf.put(&key, b"1".to_vec()).await.is_ok();
            }
        }
    }

    fn cf_unanswered(&self, e: &super::super::cf::CfClientError, first: bool) {
        if first {
            tracing::warn!("CF watch: the CF does not answer: {e}");
        }
        let mut st = self.watch_status();
        st.reachable = false;
        st.unanswered += 1;
    }

    fn cf_answered(&self, lost: bool, down_since: Option<Instant>) {
        let mut st = self.watch_status();
        st.reachable = true;
        if lost {
            st.state_lost += 1;
            st.last_outage_ms = down_since.map(|t| t.elapsed().as_millis() as u64);
        }
    }

    fn watch_status(&self) -> std::sync::MutexGuard<'_, CfWatchStatus> {
        self.cf_watch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The CF came back empty: write what this image owns into it again
    /// and rekey its child SAs.
    async fn cf_state_lost(&self) {
        let pairs = self.core().image.routing().map_or(0, |r| r.pairs().len());
        tracing::warn!(
            "the CF lost its state (restarted): writing the SA pairs, connections and owner records of this image again, rekeying its {pairs} SA pairs"
        );
        if let Some(t) = self.takeover.get() {
            t.repopulate(self).await;
        }
        if let Some(ike) = self.ike.get() {
            ike.cf_lost();
        }
    }
}
