//! The login rate limit, sans-I/O: failures counted per client address and
//! per staff name in fixed windows; the caller passes the time.

use std::collections::HashMap;
use std::net::IpAddr;

/// The window failures are counted in, ms.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Failed logins allowed from one address per window.
pub const MAX_PER_ADDR: u32 = 10;
/// Failed logins allowed for one name per window (from any address).
pub const MAX_PER_NAME: u32 = 5;
/// Entries kept before old windows are pruned (bounds memory under a flood).
const PRUNE_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start_ms: i64,
    failures: u32,
}

impl Window {
    fn current(&self, now_ms: i64) -> u32 {
        if now_ms.saturating_sub(self.start_ms) >= WINDOW_MS {
            0
        } else {
            self.failures
        }
    }
}

/// Counts failed logins; [`LoginLimiter::check`] refuses once a limit is hit.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    by_addr: HashMap<IpAddr, Window>,
    by_name: HashMap<String, Window>,
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Window>, k: K, now_ms: i64) {
    if map.len() >= PRUNE_AT {
        map.retain(|_, w| w.current(now_ms) > 0);
    }
    let w = map.entry(k).or_insert(Window {
        start_ms: now_ms,
        failures: 0,
    });
    if w.current(now_ms) == 0 {
        *w = Window {
            start_ms: now_ms,
            failures: 0,
        };
    }
    w.failures = w.failures.saturating_add(1);
}

impl LoginLimiter {
    /// `Err(retry_after_ms)` if a login from `addr` as `name` must be refused
    /// now, without checking the password.
    pub fn check(&self, addr: IpAddr, name: &str, now_ms: i64) -> Result<(), i64> {
        let wait = |w: Option<&Window>, max: u32| match w {
            Some(w) if w.current(now_ms) >= max => Some(w.start_ms + WINDOW_MS - now_ms),
            _ => None,
        };
        match (
            wait(self.by_addr.get(&addr), MAX_PER_ADDR),
            wait(self.by_name.get(name), MAX_PER_NAME),
        ) {
            (None, None) => Ok(()),
            (a, n) => Err(a.unwrap_or(0).max(n.unwrap_or(0)).max(1)),
        }
    }

    /// Records a failed login.
    pub fn failed(&mut self, addr: IpAddr, name: &str, now_ms: i64) {
        bump(&mut self.by_addr, addr, now_ms);
        bump(&mut self.by_name, name.to_owned(), now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_locked_from_every_address_then_released() {
        let mut l = LoginLimiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for i in 0..MAX_PER_NAME {
            assert!(l.check(a, "mei", i64::from(i)).is_ok());
            l.failed(a, "mei", i64::from(i));
        }
        assert!(l.check(b, "mei", 10).is_err(), "another address, same name");
        assert!(l.check(b, "li", 10).is_ok(), "another name");
        assert!(l.check(b, "mei", WINDOW_MS + 1).is_ok(), "window over");
    }

    #[test]
    fn an_address_guessing_many_names_is_locked() {
        let mut l = LoginLimiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..MAX_PER_ADDR {
            l.failed(a, &format!("name{i}"), 0);
        }
        let wait = l.check(a, "fresh", 1000).unwrap_err();
        assert_eq!(wait, WINDOW_MS - 1000);
    }
}
