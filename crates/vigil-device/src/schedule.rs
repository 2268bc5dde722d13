//! When a device should sync next (docs/spec.md §10): on an interval, at
//! once when a fever alert is queued, and with capped exponential backoff
//! while the node cannot be reached.
//!
//! [`SyncSchedule`] is sans-I/O: it reads no clock and sleeps on nothing.
//! A driver (the CLI's `vigil watch`, an app's background task) asks
//! [`SyncSchedule::next_due`] when to wake, syncs, and reports the outcome;
//! every time is a parameter, so the policy is tested deterministically.

/// The default interval between syncs: 15 minutes.
pub const DEFAULT_SYNC_EVERY_MS: i64 = 15 * 60_000;
/// The default first retry after a failed sync: 30 seconds.
pub const DEFAULT_RETRY_MS: i64 = 30_000;
/// The default longest wait between retries: 15 minutes.
pub const DEFAULT_MAX_RETRY_MS: i64 = 15 * 60_000;

/// A device's sync timetable.
///
/// ```
/// use vigil_device::SyncSchedule;
/// let mut s = SyncSchedule::new(60_000, 1_000);
/// assert_eq!(s.next_due(1_000), 1_000); // the first sync is due at once
/// s.on_sync_ok(1_500);
/// assert_eq!(s.next_due(2_000), 61_500);
/// s.on_alert_queued();
/// assert_eq!(s.next_due(2_000), 2_000); // an alert does not wait
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSchedule {
    every_ms: i64,
    retry_ms: i64,
    max_retry_ms: i64,
    /// When the next sync is due by the timetable (interval or backoff).
    next_ms: i64,
    /// Syncs failed in a row since the last one that worked.
    failures: u32,
    /// An alert was queued since the last sync attempt.
    alert: bool,
}

impl SyncSchedule {
    /// Syncs every `every_ms` (at least 1 ms), the first one due at `now_ms`;
    /// retries after [`DEFAULT_RETRY_MS`], doubling up to
    /// [`DEFAULT_MAX_RETRY_MS`].
    pub fn new(every_ms: i64, now_ms: i64) -> Self {
        SyncSchedule {
            every_ms: every_ms.max(1),
            retry_ms: DEFAULT_RETRY_MS,
            max_retry_ms: DEFAULT_MAX_RETRY_MS,
            next_ms: now_ms,
            failures: 0,
            alert: false,
        }
    }

    /// The same with another backoff: the first retry after `retry_ms`
    /// (at least 1 ms), doubling up to `max_retry_ms` (at least `retry_ms`).
    #[must_use]
    pub fn with_backoff(mut self, retry_ms: i64, max_retry_ms: i64) -> Self {
        self.retry_ms = retry_ms.max(1);
        self.max_retry_ms = max_retry_ms.max(self.retry_ms);
        self
    }

    /// The interval between syncs, ms.
    pub fn every_ms(&self) -> i64 {
        self.every_ms
    }

    /// When the next sync is due, ms since the epoch: `now_ms` itself if an
    /// alert is waiting or the time has come (sync when `next_due(now) <= now`).
    pub fn next_due(&self, now_ms: i64) -> i64 {
        if self.alert { now_ms } else { self.next_ms }
    }

    /// Whether a sync is due at `now_ms`.
    pub fn is_due(&self, now_ms: i64) -> bool {
        self.next_due(now_ms) <= now_ms
    }

    /// A fever alert was queued (a reading confirmed or ended an episode):
    /// the next sync is due at once, even while backing off, since the
    /// community should not wait for the timetable. The backoff itself is
    /// kept: if that sync fails, the next wait is the longer one.
    pub fn on_alert_queued(&mut self) {
        self.alert = true;
    }

    /// A sync ended well at `now_ms`: the next is an interval later.
    pub fn on_sync_ok(&mut self, now_ms: i64) {
        self.failures = 0;
        self.alert = false;
        self.next_ms = now_ms.saturating_add(self.every_ms);
    }

    /// A sync failed at `now_ms` (the node away, or refusing): retry after
    /// the backoff, which doubles with each failure in a row up to the cap.
    /// Returns that wait, ms.
    pub fn on_sync_failed(&mut self, now_ms: i64) -> i64 {
        self.failures = self.failures.saturating_add(1);
        self.alert = false;
        let wait = self.backoff_ms();
        self.next_ms = now_ms.saturating_add(wait);
        wait
    }

    /// Failed syncs in a row since the last good one.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The wait after the current run of failures (0 if none):
    /// `retry · 2^(failures−1)`, capped.
    fn backoff_ms(&self) -> i64 {
        if self.failures == 0 {
            return 0;
        }
        // 2^62 already exceeds any cap that fits an i64 of ms.
        let doublings = (self.failures - 1).min(62);
        self.retry_ms
            .saturating_mul(1_i64 << doublings)
            .min(self.max_retry_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const T: i64 = 1_795_392_000_000;

    #[test]
    fn the_first_sync_is_due_at_once_then_every_interval() {
        let mut s = SyncSchedule::new(15 * MIN, T);
        assert!(s.is_due(T));
        assert_eq!(s.next_due(T), T);
        s.on_sync_ok(T + 2_000);
        assert!(!s.is_due(T + 5 * MIN));
        assert_eq!(s.next_due(T + 5 * MIN), T + 2_000 + 15 * MIN);
        assert!(s.is_due(T + 2_000 + 15 * MIN));
        s.on_sync_ok(T + 16 * MIN);
        assert_eq!(s.next_due(T + 16 * MIN), T + 31 * MIN);
    }

    #[test]
    fn a_queued_alert_makes_the_sync_due_now() {
        let mut s = SyncSchedule::new(15 * MIN, T);
        s.on_sync_ok(T);
        s.on_alert_queued();
        assert_eq!(s.next_due(T + MIN), T + MIN);
        assert!(s.is_due(T + MIN));
        s.on_sync_ok(T + MIN);
        // Sent: back to the timetable.
        assert_eq!(s.next_due(T + 2 * MIN), T + 16 * MIN);
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let mut s = SyncSchedule::new(15 * MIN, T).with_backoff(30_000, 4 * MIN);
        let mut now = T;
        let mut waits = Vec::new();
        for _ in 0..7 {
            let wait = s.on_sync_failed(now);
            assert_eq!(s.next_due(now), now + wait);
            assert!(!s.is_due(now + wait - 1));
            now += wait;
            assert!(s.is_due(now));
            waits.push(wait);
        }
        assert_eq!(
            waits,
            [30_000, 60_000, 120_000, 240_000, 240_000, 240_000, 240_000]
        );
        assert_eq!(s.failures(), 7);
        // Back: the interval again, and the next failure starts over.
        s.on_sync_ok(now);
        assert_eq!(s.failures(), 0);
        assert_eq!(s.next_due(now), now + 15 * MIN);
        assert_eq!(s.on_sync_failed(now + MIN), 30_000);
    }

    #[test]
    fn an_alert_during_backoff_tries_at_once_and_keeps_the_backoff() {
        let mut s = SyncSchedule::new(15 * MIN, T).with_backoff(30_000, 10 * MIN);
        assert_eq!(s.on_sync_failed(T), 30_000);
        assert_eq!(s.on_sync_failed(T + 30_000), 60_000);
        s.on_alert_queued();
        assert_eq!(s.next_due(T + 40_000), T + 40_000);
        // Still away: the wait keeps growing rather than starting over.
        assert_eq!(s.on_sync_failed(T + 40_000), 120_000);
        assert_eq!(s.next_due(T + 41_000), T + 160_000);
    }

    #[test]
    fn defaults_and_degenerate_settings() {
        let mut s = SyncSchedule::new(DEFAULT_SYNC_EVERY_MS, T);
        assert_eq!(s.every_ms(), 15 * MIN);
        assert_eq!(s.on_sync_failed(T), DEFAULT_RETRY_MS);
        for _ in 0..100 {
            s.on_sync_failed(T);
        }
        // No overflow after many failures: the cap.
        assert_eq!(s.on_sync_failed(T), DEFAULT_MAX_RETRY_MS);
        // A zero or negative interval or retry is taken as 1 ms; a cap
        // below the first retry is raised to it.
        let mut z = SyncSchedule::new(0, T).with_backoff(-5, 0);
        z.on_sync_ok(T);
        assert_eq!(z.next_due(T), T + 1);
        assert_eq!(z.on_sync_failed(T), 1);
        assert_eq!(z.on_sync_failed(T), 1);
        // Times near the end of i64 saturate.
        let mut far = SyncSchedule::new(i64::MAX, i64::MAX - 1);
        far.on_sync_ok(i64::MAX - 1);
        assert_eq!(far.next_due(0), i64::MAX);
    }
}
