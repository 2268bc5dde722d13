//! The short authentication code two devices show while pairing (docs/spec.md §5).

use core::fmt;

/// A 6-digit code the resident compares on both devices. Derived with HKDF
/// from the root, the vault id and the joining device's public key
/// ([`crate::KeySchedule::pairing_code`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortAuthCode(u32);

impl ShortAuthCode {
    /// Six decimal digits: 20 bits, so a blind guess matches one time in a million.
    pub const DIGITS: usize = 6;

    /// Reduces 8 bytes of HKDF output to 6 digits (big-endian u64 mod 10^6;
    /// the bias, under 2^-44, is negligible).
    pub(crate) fn from_okm(okm: [u8; 8]) -> Self {
        Self((u64::from_be_bytes(okm) % 1_000_000) as u32)
    }

    /// The code as a number below 1,000,000.
    pub fn value(&self) -> u32 {
        self.0
    }
}

impl fmt::Display for ShortAuthCode {
    /// Shown as two groups of three digits, e.g. `048 213`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.0 / 1000, self.0 % 1000)
    }
}

impl fmt::Debug for ShortAuthCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShortAuthCode({self})")
    }
}
