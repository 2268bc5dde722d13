//! The monitoring period a vault exists for.

use serde::{Deserialize, Serialize};

/// A monitoring period, in ms since the Unix epoch (UTC), `start <= t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// First instant of the period.
    pub start_ms: i64,
    /// First instant after the period.
    pub end_ms: i64,
}

impl Period {
    /// A period of `days` days from `start_ms`.
    pub fn days(start_ms: i64, days: u32) -> Self {
        Period {
            start_ms,
            end_ms: start_ms.saturating_add(i64::from(days) * 86_400_000),
        }
    }

    /// Whether the period is over at `now_ms`.
    pub fn is_over(&self, now_ms: i64) -> bool {
        now_ms >= self.end_ms
    }
}
