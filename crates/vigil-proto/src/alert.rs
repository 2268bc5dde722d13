//! Fever alerts and grants: ids and the sealed payload (docs/spec.md §12).
//! Shared by the device, which seals, and the node, which opens.

use sha2::{Digest, Sha256};
use vigil_crypto::rand_core::CryptoRng;
use vigil_crypto::{AlertKey, Context, Kind, OpenError, SealError, open, seal};

/// Onsets are rounded down to this, so alerts reveal only coarse timing.
pub const ONSET_ROUNDING_MS: i64 = 10 * 60_000;

/// An episode started.
pub const ALERT_START: u8 = 1;
/// An episode ended.
pub const ALERT_END: u8 = 2;

/// The grant id: `SHA-256("vigil/v1/grant-id" || alert key)[..16]`. Every
/// device of the vault derives the same one for a node; the node checks it
/// against the key it unwraps.
pub fn grant_id(key: &AlertKey) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"vigil/v1/grant-id");
    h.update(key.expose_secret());
    h.finalize()[..16].try_into().unwrap_or_default()
}

/// The episode id: `SHA-256("vigil/v1/episode" || alert key || be64(rounded onset))[..16]`,
/// the same on every device that sees the episode in the merged log.
pub fn episode_id(key: &AlertKey, rounded_onset_ms: i64) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"vigil/v1/episode");
    h.update(key.expose_secret());
    h.update(rounded_onset_ms.to_be_bytes());
    h.finalize()[..16].try_into().unwrap_or_default()
}

/// Rounds an onset down to [`ONSET_ROUNDING_MS`]. Times come from the
/// merged log (any device's); within one slot of `i64::MIN` the result
/// saturates there instead of overflowing.
pub fn round_onset(onset_ms: i64) -> i64 {
    onset_ms.saturating_sub(onset_ms.rem_euclid(ONSET_ROUNDING_MS))
}

/// What an alert says, once opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPayload {
    /// Onset, rounded down to 10 minutes, ms.
    pub onset_ms: i64,
    /// 1: at or above the threshold; 2: ≥ 38.0 °C; 3: ≥ 39.0 °C (the episode's peak band).
    pub level: u8,
    /// [`ALERT_START`] or [`ALERT_END`].
    pub kind: u8,
}

impl AlertPayload {
    fn encode(&self) -> [u8; 10] {
        let mut v = [0u8; 10];
        v[..8].copy_from_slice(&self.onset_ms.to_be_bytes());
        v[8] = self.level;
        v[9] = self.kind;
        v
    }

    fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != 10 {
            return None;
        }
        Some(AlertPayload {
            onset_ms: i64::from_be_bytes(b[..8].try_into().ok()?),
            level: b[8],
            kind: b[9],
        })
    }
}

/// The level band for a peak temperature.
pub fn level_for(peak_c: f64) -> u8 {
    if peak_c >= 39.0 {
        3
    } else if peak_c >= 38.0 {
        2
    } else {
        1
    }
}

fn ctx(grant: &[u8; 16], episode: &[u8; 16], kind: u8) -> Context {
    Context::new("vigil/v1/alert")
        .bytes(grant)
        .bytes(episode)
        .u64(u64::from(kind))
}

/// Seals an alert for the wire.
pub fn seal_alert<R: CryptoRng + ?Sized>(
    key: &AlertKey,
    grant: &[u8; 16],
    episode: &[u8; 16],
    payload: &AlertPayload,
    rng: &mut R,
) -> Result<Vec<u8>, SealError> {
    seal(
        key,
        Kind::Alert,
        &ctx(grant, episode, payload.kind),
        &payload.encode(),
        rng,
    )
}

/// Opens an alert; any failure (wrong key, other grant or episode or kind,
/// tampering, bad payload) is one [`OpenError`].
pub fn open_alert(
    key: &AlertKey,
    grant: &[u8; 16],
    episode: &[u8; 16],
    kind: u8,
    blob: &[u8],
) -> Result<AlertPayload, OpenError> {
    let plain = open(key, Kind::Alert, &ctx(grant, episode, kind), blob)?;
    AlertPayload::decode(&plain)
        .filter(|p| p.kind == kind)
        .ok_or(OpenError)
}
