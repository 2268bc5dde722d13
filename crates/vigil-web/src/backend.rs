//! What the dashboard asks of the node. The node program implements
//! [`Backend`] with the same operations `vigil-node alerts` and `alerts ack`
//! run (its admin requests), so the pages and the commands answer alike.

use serde::{Deserialize, Serialize};

/// One alert, as `vigil-node alerts --json` lists it (fields the pages use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Its id (12 hex digits).
    pub id: String,
    /// 1 started, 2 ended.
    pub kind: u8,
    /// The label staff gave the resident.
    pub label: String,
    /// Onset, rounded to 10 minutes, ms.
    pub onset_ms: i64,
    /// Level band 1–3.
    pub level: u8,
    /// When the node stored it, ms.
    pub received_ms: i64,
    /// When staff acknowledged it.
    pub acked_ms: Option<i64>,
    /// When the resident ended monitoring, if they did.
    #[serde(default)]
    pub monitoring_ended_ms: Option<i64>,
    /// Who acknowledged it, as the node records it (`alerts ack --by`, or
    /// the staff member logged in here).
    #[serde(default)]
    pub acked_by: Option<String>,
}

/// The node's operations the dashboard uses. Calls block (they read the
/// store): the app runs them on the blocking pool.
pub trait Backend: Send + Sync + 'static {
    /// The inbox, oldest first.
    fn alerts(&self, now_ms: i64) -> Result<Vec<Alert>, String>;
    /// Acknowledges the alert `id` in the name of staff member `by`;
    /// returns it and whether it already was.
    fn ack(&self, id: &str, by: &str, now_ms: i64) -> Result<(Alert, bool), String>;
}
