//! The fever rule, evaluated over the merged log (docs/spec.md §7).

use crate::model::Reading;

/// When body temperature counts as a fever episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeverRule {
    /// Threshold in °C; a reading at or above it counts (default 37.3).
    pub threshold_c: f64,
    /// How many readings at or above the threshold confirm an episode (default 2).
    pub confirm_count: usize,
    /// Within how long those readings must fall, in ms (default 10 minutes).
    pub confirm_window_ms: i64,
    /// How long readings must stay below the threshold to end it, in ms (default 60 minutes).
    pub recovery_ms: i64,
}

impl Default for FeverRule {
    fn default() -> Self {
        FeverRule {
            threshold_c: 37.3,
            confirm_count: 2,
            confirm_window_ms: 10 * 60_000,
            recovery_ms: 60 * 60_000,
        }
    }
}

/// One fever episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeverEpisode {
    /// Time of the first reading at or above the threshold among those that confirmed it.
    pub onset_ms: i64,
    /// Time of the first below-threshold reading of the recovery that ended it, if it ended.
    pub end_ms: Option<i64>,
    /// Highest temperature seen during the episode.
    pub peak_c: f64,
}

/// Scans body-temperature readings sorted by time.
pub(crate) fn episodes(rule: &FeverRule, temps: &[Reading]) -> Vec<FeverEpisode> {
    let need = rule.confirm_count.max(1);
    let mut out = Vec::new();
    let mut recent_high: Vec<(i64, f64)> = Vec::new();
    let mut current: Option<FeverEpisode> = None;
    let mut first_below: Option<i64> = None;
    for r in temps {
        let high = r.value >= rule.threshold_c;
        match current.as_mut() {
            None => {
                if high {
                    recent_high.push((r.time_ms, r.value));
                    recent_high.retain(|(t, _)| r.time_ms - t <= rule.confirm_window_ms);
                    if recent_high.len() >= need {
                        current = Some(FeverEpisode {
                            onset_ms: recent_high[0].0,
                            end_ms: None,
                            peak_c: recent_high.iter().map(|x| x.1).fold(f64::MIN, f64::max),
                        });
                        recent_high.clear();
                        first_below = None;
                    }
                }
            }
            Some(ep) => {
                if high {
                    ep.peak_c = ep.peak_c.max(r.value);
                    first_below = None;
                } else {
                    let start = *first_below.get_or_insert(r.time_ms);
                    if r.time_ms - start >= rule.recovery_ms {
                        ep.end_ms = Some(start);
                        out.push(*ep);
                        current = None;
                        first_below = None;
                    }
                }
            }
        }
    }
    out.extend(current);
    out
}
