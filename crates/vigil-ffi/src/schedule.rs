//! The background-sync timetable for an app's task: [`SyncSchedule`] over
//! the library's, the same policy `vigil watch` drives. The app reads its
//! clock, sleeps until [`SyncSchedule::next_due`], calls `Vault::sync` (and
//! `send_alerts`), and reports the outcome; after recording a reading that
//! queued an alert, it calls [`SyncSchedule::on_alert_queued`] and wakes its
//! task.

use std::sync::{Arc, Mutex, MutexGuard};

/// When to sync next: every interval, at once when an alert is queued,
/// with capped exponential backoff while the node is away. All times are ms
/// since the Unix epoch, given by the app.
#[derive(Debug, uniffi::Object)]
pub struct SyncSchedule(Mutex<vigil::SyncSchedule>);

impl SyncSchedule {
    fn lock(&self) -> MutexGuard<'_, vigil::SyncSchedule> {
        // The timetable is a few integers, consistent after every call.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[uniffi::export]
impl SyncSchedule {
    /// Syncs every `every_ms`, the first sync due at `now_ms`; after a
    /// failure retries after `retry_ms`, doubling up to `max_retry_ms`.
    #[uniffi::constructor]
    pub fn new(every_ms: i64, retry_ms: i64, max_retry_ms: i64, now_ms: i64) -> Arc<Self> {
        Arc::new(SyncSchedule(Mutex::new(
            vigil::SyncSchedule::new(every_ms, now_ms).with_backoff(retry_ms, max_retry_ms),
        )))
    }

    /// When the next sync is due (`now_ms` itself when an alert waits).
    pub fn next_due(&self, now_ms: i64) -> i64 {
        self.lock().next_due(now_ms)
    }

    /// An alert was queued: the next sync is due at once.
    pub fn on_alert_queued(&self) {
        self.lock().on_alert_queued();
    }

    /// The sync ended well at `now_ms`.
    pub fn on_sync_ok(&self, now_ms: i64) {
        self.lock().on_sync_ok(now_ms);
    }

    /// The sync failed at `now_ms`; returns the wait before the retry, ms.
    pub fn on_sync_failed(&self, now_ms: i64) -> i64 {
        self.lock().on_sync_failed(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apps_task_sees_the_librarys_timetable() {
        let s = SyncSchedule::new(60_000, 1_000, 4_000, 0);
        assert_eq!(s.next_due(0), 0);
        s.on_sync_ok(10);
        assert_eq!(s.next_due(20), 60_010);
        s.on_alert_queued();
        assert_eq!(s.next_due(30), 30);
        let waits: Vec<i64> = (0..4).map(|_| s.on_sync_failed(40)).collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 4_000]);
        assert_eq!(s.next_due(50), 4_040);
    }
}
