//! The canaries handed out in a run (strings the node must never see in
//! plaintext), and the search for them in what the node received.

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
