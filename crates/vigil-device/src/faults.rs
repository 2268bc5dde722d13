//! Deliberately wrong behaviours, compiled only with the `fault-injection`
//! feature, so the simulation harness (crates/vigil-sim) can prove it
//! catches real bugs. Never enabled by the programs.

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
    /// The process dies inside a fold: the staged readings are committed to
    /// the in-memory log, but the batch that stores their chunk and removes
    /// their journal entries is never applied (the fold returns an error;
    /// the harness then drops the vault as a kill would). Not a bug: a
    /// crash the store must survive, placed where a kill rarely lands.
    CrashBeforeFoldBatch,
    /// A fold removes its journal entries in a batch of their own, before
    /// the batch that stores their chunk (not atomically with it): a crash
    /// in between loses the readings.
    FoldRemovesJournalFirst,
}

/// The faults injected into one vault (always none without the feature).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    #[cfg(feature = "fault-injection")]
    injected: Vec<DeviceFault>,
}

#[cfg(feature = "fault-injection")]
impl Faults {
    /// Injects `fault`.
    pub(crate) fn inject(&mut self, fault: DeviceFault) {
        self.injected.push(fault);
    }

    /// Whether `fault` is injected.
    pub(crate) fn has(&self, fault: DeviceFault) -> bool {
        self.injected.contains(&fault)
    }
}

#[cfg(not(feature = "fault-injection"))]
impl Faults {
    /// Whether the crash inside a fold is injected (never, without the feature).
    pub(crate) fn crash_before_fold_batch(&self) -> bool {
        false
    }

    /// Whether a fold removes its entries before storing its chunk (never).
    pub(crate) fn fold_removes_journal_first(&self) -> bool {
        false
    }
}

#[cfg(feature = "fault-injection")]
impl Faults {
    /// Whether the crash inside a fold is injected.
    pub(crate) fn crash_before_fold_batch(&self) -> bool {
        self.has(DeviceFault::CrashBeforeFoldBatch)
    }

    /// Whether a fold removes its entries before storing its chunk.
    pub(crate) fn fold_removes_journal_first(&self) -> bool {
        self.has(DeviceFault::FoldRemovesJournalFirst)
    }
}
