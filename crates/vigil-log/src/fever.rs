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

/// The longest label a resident may share with a node's alerts, in characters.
pub const MAX_LABEL_CHARS: usize = 200;

/// Why a fever rule is refused (by the device that makes a grant and by the
/// node that receives one: the ranges live here, once).
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum RuleError {
    /// The threshold is not a number within [`FeverRule::THRESHOLD_C`].
    #[error("threshold {0} °C is outside 35–42 °C")]
    Threshold(f64),
    /// The confirmation count is not within [`FeverRule::CONFIRM_COUNT`].
    #[error("confirm count {0} is outside 1–20")]
    ConfirmCount(usize),
    /// A negative confirmation window or recovery time.
    #[error("the confirmation window and the recovery time must not be negative")]
    NegativeDuration,
}

impl FeverRule {
    /// Plausible thresholds, °C.
    pub const THRESHOLD_C: std::ops::RangeInclusive<f64> = 35.0..=42.0;
    /// Plausible confirmation counts.
    pub const CONFIRM_COUNT: std::ops::RangeInclusive<usize> = 1..=20;

    /// Checks that the rule is plausible: a finite threshold within
    /// [`Self::THRESHOLD_C`], a count within [`Self::CONFIRM_COUNT`], and no
    /// negative duration.
    pub fn validate(&self) -> Result<(), RuleError> {
        if !(self.threshold_c.is_finite() && Self::THRESHOLD_C.contains(&self.threshold_c)) {
            return Err(RuleError::Threshold(self.threshold_c));
        }
        if !Self::CONFIRM_COUNT.contains(&self.confirm_count) {
            return Err(RuleError::ConfirmCount(self.confirm_count));
        }
        if self.confirm_window_ms < 0 || self.recovery_ms < 0 {
            return Err(RuleError::NegativeDuration);
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implausible_rules_are_refused() {
        assert_eq!(FeverRule::default().validate(), Ok(()));
        for (rule, want) in [
            (
                FeverRule {
                    threshold_c: f64::NAN,
                    ..FeverRule::default()
                },
                "threshold",
            ),
            (
                FeverRule {
                    threshold_c: 42.1,
                    ..FeverRule::default()
                },
                "threshold",
            ),
            (
                FeverRule {
                    confirm_count: 0,
                    ..FeverRule::default()
                },
                "count",
            ),
            (
                FeverRule {
                    confirm_count: 21,
                    ..FeverRule::default()
                },
                "count",
            ),
            (
                FeverRule {
                    recovery_ms: -1,
                    ..FeverRule::default()
                },
                "negative",
            ),
        ] {
            let e = rule.validate().unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
    }
}
