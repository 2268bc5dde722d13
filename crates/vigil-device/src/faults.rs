//! Deliberately wrong behaviours, compiled only with the `fault-injection`
//! feature, so the simulation harness (crates/vigil-sim) can prove it
//! catches real bugs. Never enabled by the programs.

#[cfg(feature = "fault-injection")]
use crate::Vault;

/// A bug to inject into one running vault.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceFault {
    /// When a sync receives several bundles at once, only the first is
    /// applied to the log; the rest are stored and counted in the version
    /// vector, but skipped.
    SkipQueuedChanges,
    /// The device's own entry in its version vector does not advance past a
    /// restart: the next bundle reuses the last acknowledged sequence number.
    OwnSeqStuckAfterRestart,
}

#[cfg(feature = "fault-injection")]
impl Vault {
    /// Injects `fault` into this vault until it is dropped.
    pub fn inject_fault(&mut self, fault: DeviceFault) {
        self.faults.push(fault);
    }
}

#[cfg(feature = "fault-injection")]
impl Vault {
    /// Whether a fault is injected.
    pub(crate) fn has_fault(&self, f: DeviceFault) -> bool {
        self.faults.contains(&f)
    }
}
