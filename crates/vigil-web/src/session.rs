//! Staff sessions, in memory: a random 32-byte id in an HttpOnly,
//! SameSite=Strict cookie, and a per-session CSRF token every form carries.
//! A restart logs everyone out.

use std::collections::HashMap;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A session ends this long after its last request, ms.
pub const IDLE_MS: i64 = 12 * 3600 * 1000;
/// And at the latest this long after login, ms.
pub const MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// One logged-in staff member.
#[derive(Clone)]
pub struct Session {
    /// Who.
    pub staff: String,
    /// The CSRF token forms carry (hex).
    pub csrf: Zeroizing<String>,
    created_ms: i64,
    last_ms: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("staff", &self.staff)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, token: &str) -> bool {
        token.len() == self.csrf.len() && bool::from(token.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// The open sessions, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    // Keyed by the id's hex; ids are never logged.
    open: HashMap<String, Session>,
}

/// 32 random bytes as hex.
pub fn random_token() -> Result<Zeroizing<String>, getrandom::Error> {
    let mut b = Zeroizing::new([0u8; 32]);
    getrandom::fill(b.as_mut())?;
    Ok(Zeroizing::new(hex::encode(b.as_ref())))
}

impl Sessions {
    /// Opens a session for `staff` with this id and CSRF token.
    pub fn open(&mut self, id: &str, csrf: Zeroizing<String>, staff: &str, now_ms: i64) {
        self.open.retain(|_, s| alive(s, now_ms));
        self.open.insert(
            id.to_owned(),
            Session {
                staff: staff.to_owned(),
                csrf,
                created_ms: now_ms,
                last_ms: now_ms,
            },
        );
    }

    /// The live session with this id, touched.
    pub fn get(&mut self, id: &str, now_ms: i64) -> Option<Session> {
        let s = self.open.get_mut(id)?;
        if !alive(s, now_ms) {
            self.open.remove(id);
            return None;
        }
        s.last_ms = now_ms;
        Some(s.clone())
    }

    /// Ends the session with this id.
    pub fn close(&mut self, id: &str) {
        self.open.remove(id);
    }
}

fn alive(s: &Session, now_ms: i64) -> bool {
    now_ms.saturating_sub(s.last_ms) < IDLE_MS && now_ms.saturating_sub(s.created_ms) < MAX_AGE_MS
}
