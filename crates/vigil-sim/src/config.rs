//! What a run is asked to do and what it reports: the scenario, an injected
//! bug, the configuration, user workloads and invariants.

use crate::World;

/// What the run exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The monitoring week: readings, annotations, check-ins, syncs, faults.
    Week,
    /// Concurrent edits of the same check-ins and annotations under partitions.
    Conflicts,
    /// A fever seen first by a device that is offline.
    FeverWhileOffline,
    /// The period ends while some devices are partitioned.
    ShredWhilePartitioned,
}

impl Scenario {
    /// Every scenario, for `--scenario all`.
    pub const ALL: [Scenario; 4] = [
        Scenario::Week,
        Scenario::Conflicts,
        Scenario::FeverWhileOffline,
        Scenario::ShredWhilePartitioned,
    ];

    /// The scenario's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Week => "week",
            Scenario::Conflicts => "conflicts",
            Scenario::FeverWhileOffline => "fever-offline",
            Scenario::ShredWhilePartitioned => "shred-partitioned",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// A deliberately wrong variant of the system, for proving that the
/// harness catches real bugs (never enabled outside such tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bug {
    /// The system as built.
    #[default]
    None,
    /// The relay acknowledges some pushed bundles without storing them.
    RelayDropsAckedBundles,
    /// A device restart keeps its version vector but loses the received
    /// bundles it stood for (the vector runs ahead of what was applied).
    VectorAheadOfReceivedAfterRestart,
    /// The node forgets its inbox when it restarts.
    NodeForgetsInboxOnRestart,
    /// A device that receives several bundles in one sync applies only the
    /// first and skips the queued rest (while recording them as received).
    SkipQueuedChanges,
    /// A device's own version-vector entry does not advance past a restart:
    /// its next bundle reuses the last acknowledged sequence number.
    OwnSeqStuckAfterRestart,
    /// The node deduplicates alerts in memory only, so after a restart a
    /// repeated alert for a known episode becomes a second inbox entry.
    AlertDedupForgetsOnRestart,
    /// A device's fold removes its journal entries before it stores the
    /// chunk of the readings they held, not in the same batch.
    FoldRemovesJournalFirst,
}

impl Bug {
    /// Every injectable bug.
    pub const ALL: [Bug; 7] = [
        Bug::RelayDropsAckedBundles,
        Bug::VectorAheadOfReceivedAfterRestart,
        Bug::NodeForgetsInboxOnRestart,
        Bug::SkipQueuedChanges,
        Bug::OwnSeqStuckAfterRestart,
        Bug::AlertDedupForgetsOnRestart,
        Bug::FoldRemovesJournalFirst,
    ];

    /// The bug's name on the command line (`vigil-sim --bug NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Bug::None => "none",
            Bug::RelayDropsAckedBundles => "relay-drops-acked",
            Bug::VectorAheadOfReceivedAfterRestart => "vector-ahead-after-restart",
            Bug::NodeForgetsInboxOnRestart => "node-forgets-inbox",
            Bug::SkipQueuedChanges => "skip-queued-changes",
            Bug::OwnSeqStuckAfterRestart => "own-seq-stuck-after-restart",
            Bug::AlertDedupForgetsOnRestart => "alert-dedup-forgets",
            Bug::FoldRemovesJournalFirst => "fold-removes-journal-first",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Bug> {
        std::iter::once(Bug::None)
            .chain(Bug::ALL)
            .find(|b| b.name() == s)
    }
}

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed: it decides everything.
    pub seed: u64,
    /// Resident devices, 2–6.
    pub devices: usize,
    /// What to exercise.
    pub scenario: Scenario,
    /// Random steps before the heal and the end of the period.
    pub steps: usize,
    /// An injected bug ([`Bug::None`] normally).
    pub bug: Bug,
    /// Your own workload, run at every step before the scenario's random
    /// operation; returning `true` replaces that operation.
    pub workload: Option<Workload>,
}

impl Default for SimConfig {
    /// Seed 0, 3 devices, the week, 300 steps, no bug, no extra workload.
    fn default() -> Self {
        SimConfig {
            seed: 0,
            devices: 3,
            scenario: Scenario::Week,
            steps: 300,
            bug: Bug::None,
            workload: None,
        }
    }
}

/// A user-written workload: called with the world and the step number at
/// every step; it drives devices through [`World`]'s operations
/// ([`World::record`], [`World::sync`], [`World::set_online`], ...) and
/// returns whether it replaced the step's random operation.
pub type Workload = fn(&mut World, usize) -> bool;

/// What a run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Events logged.
    pub events: usize,
    /// SHA-256 of the event log: equal for two runs of one seed.
    pub hash: [u8; 32],
    /// Invariant violations (empty: the run passed).
    pub failures: Vec<String>,
    /// Readings in the merged log after the heal.
    pub readings: usize,
    /// Alerts in the node's inbox after the heal.
    pub alerts: usize,
}

/// A user-written invariant, checked at the end of the run (after the heal,
/// before the period ends): returns a description of any violation.
pub type Invariant = fn(&World) -> Result<(), String>;
