//! The canaries handed out in a run (strings the node must never see in
//! plaintext), and the search for them in what the node received.

use std::collections::HashMap;

/// Every canary handed out so far, searched for all at once. They share a
/// long prefix (`CANARY-{seed}-`), so one pass over a frame finds where
/// that prefix occurs and looks up what follows, where a search per canary
/// made as many passes as there were canaries (5 % of a week run).
#[derive(Debug, Default)]
pub(crate) struct Canaries {
    list: Vec<String>,
    /// The longest prefix every canary shares.
    prefix: Vec<u8>,
    /// What follows the prefix, to the canaries (indices in `list`) it ends.
    rests: HashMap<Vec<u8>, Vec<usize>>,
    shortest_rest: usize,
    longest_rest: usize,
}

impl Canaries {
    /// Hands out one more canary.
    pub(crate) fn push(&mut self, canary: String) {
        let shared = if self.list.is_empty() {
            canary.len()
        } else {
            self.prefix
                .iter()
                .zip(canary.as_bytes())
                .take_while(|(a, b)| a == b)
                .count()
        };
        self.list.push(canary);
        if self.list.len() == 1 || shared < self.prefix.len() {
            // The shared prefix shrank (or this is the first): re-split all.
            self.prefix = self.list[0].as_bytes()[..shared].to_vec();
            self.rests.clear();
            self.shortest_rest = usize::MAX;
            self.longest_rest = 0;
            for i in 0..self.list.len() {
                self.index(i);
            }
        } else {
            self.index(self.list.len() - 1);
        }
    }

    fn index(&mut self, i: usize) {
        let rest = &self.list[i].as_bytes()[self.prefix.len()..];
        self.shortest_rest = self.shortest_rest.min(rest.len());
        self.longest_rest = self.longest_rest.max(rest.len());
        self.rests.entry(rest.to_vec()).or_default().push(i);
    }

    /// How many canaries were handed out.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// The canaries that occur anywhere in `hay`, in handing-out order.
    pub(crate) fn found_in(&self, hay: &[u8]) -> Vec<&str> {
        self.found_in_any(std::iter::once(hay))
    }

    /// The canaries that occur anywhere in any of `frames`, in handing-out
    /// order.
    pub(crate) fn found_in_any<'f>(&self, frames: impl IntoIterator<Item = &'f [u8]>) -> Vec<&str> {
        let mut found = vec![false; self.list.len()];
        if !self.list.is_empty() {
            for hay in frames {
                self.mark(hay, &mut found);
            }
        }
        self.list
            .iter()
            .zip(found)
            .filter_map(|(c, f)| f.then_some(c.as_str()))
            .collect()
    }

    /// Marks the canaries `hay` holds: at every occurrence of the prefix,
    /// every canary whose rest follows it.
    fn mark(&self, hay: &[u8], found: &mut [bool]) {
        let plen = self.prefix.len();
        let mut at_prefix = |p: usize| {
            let tail = &hay[p + plen..];
            for l in self.shortest_rest..=self.longest_rest.min(tail.len()) {
                if let Some(ixs) = self.rests.get(&tail[..l]) {
                    for &i in ixs {
                        found[i] = true;
                    }
                }
            }
        };
        let Some((&first, rest)) = self.prefix.split_first() else {
            // No shared prefix: every position may start a canary.
            (0..=hay.len()).for_each(&mut at_prefix);
            return;
        };
        // Jump between occurrences of the prefix's first byte.
        let mut i = 0;
        while let Some(p) = hay[i..].iter().position(|&b| b == first) {
            let start = i + p;
            let at = start + 1;
            if hay.len() - at >= rest.len() && &hay[at..at + rest.len()] == rest {
                at_prefix(start);
            }
            i = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::{Rng, SeedableRng};

    use super::Canaries;

    /// The plain definition: a canary is held if it occurs anywhere.
    fn naive<'a>(list: &'a [String], hay: &[u8]) -> Vec<&'a str> {
        list.iter()
            .filter(|c| c.is_empty() || hay.windows(c.len()).any(|w| w == c.as_bytes()))
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn finds_exactly_what_a_plain_search_finds() {
        let mut rng = ChaCha20Rng::seed_from_u64(19);
        for round in 0..400 {
            let mut canaries = Canaries::default();
            let mut list = Vec::new();
            // Mostly one seed's canaries (a long shared prefix), sometimes
            // another's or an unrelated string (a short or empty one).
            for k in 0..(rng.next_u32() % 30) {
                let c = match rng.next_u32() % 10 {
                    0 => format!("CANARY-{}-{k}", round + 1),
                    1 => format!("X{k}"),
                    _ => format!("CANARY-{round}-{k}"),
                };
                canaries.push(c.clone());
                list.push(c);
            }
            // A haystack of random bytes from a small alphabet (so partial
            // matches abound), with some canaries planted, some cut short.
            let alphabet = b"CANRY-0123456789X";
            let mut hay: Vec<u8> = (0..rng.next_u32() % 300)
                .map(|_| alphabet[(rng.next_u32() as usize) % alphabet.len()])
                .collect();
            for _ in 0..rng.next_u32() % 4 {
                if list.is_empty() {
                    break;
                }
                let c = list[(rng.next_u32() as usize) % list.len()].as_bytes();
                let cut = if rng.next_u32() % 3 == 0 {
                    (rng.next_u32() as usize) % (c.len() + 1)
                } else {
                    c.len()
                };
                let at = (rng.next_u32() as usize) % (hay.len() + 1);
                hay.splice(at..at, c[..cut].iter().copied());
            }
            assert_eq!(
                canaries.found_in(&hay),
                naive(&list, &hay),
                "round {round}: {:?} in {:?}",
                list,
                String::from_utf8_lossy(&hay)
            );
        }
    }

    #[test]
    fn a_canary_inside_a_longer_one_is_found_and_order_is_handing_out() {
        let mut c = Canaries::default();
        for s in ["CANARY-7-12", "CANARY-7-1", "CANARY-7-2", "CANARY-7-123"] {
            c.push(s.into());
        }
        assert_eq!(
            c.found_in(b"..CANARY-7-123.."),
            vec!["CANARY-7-12", "CANARY-7-1", "CANARY-7-123"]
        );
        assert_eq!(c.found_in(b"CANARY-7-"), Vec::<&str>::new());
        assert_eq!(c.found_in(b"CANARY-7-2"), vec!["CANARY-7-2"]);
        assert!(Canaries::default().found_in(b"CANARY-7-1").is_empty());
        assert_eq!(c.len(), 4);
    }
}
