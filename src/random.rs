//! The one source of randomness: the operating system's (getrandom(2)).
//!
//! Append tokens come from it, so that no two writers, on one machine or
//! many, draw the same token; and so do the pauses that spread out clients
//! that failed or raced together.

use std::time::Duration;

/// A random number from the operating system.
///
/// The source fails only on a kernel without getrandom(2) and without
/// `/dev/urandom`; then std's random hash keys, mixed with the time, stand
/// in, as unique to this process as the keys of its hash maps.
pub(crate) fn random() -> u64 {
    let mut bytes = [0; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_ne_bytes(bytes),
        Err(_) => {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::time::SystemTime::now())
        }
    }
}

/// A random pause from nothing to `ceiling` ("full jitter"), so that
/// clients that failed or raced together do not come back together.
pub(crate) fn jitter(ceiling: Duration) -> Duration {
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(random() % ceiling_ms.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_pauses_up_to_the_ceiling() {
        let ceiling = Duration::from_millis(800);
        let pauses: std::collections::HashSet<Duration> =
            (0..50).map(|_| jitter(ceiling)).collect();
        assert!(pauses.len() > 10, "{pauses:?}");
        assert!(pauses.iter().all(|pause| *pause <= ceiling));
    }

    #[test]
    fn jitter_of_nothing_is_nothing() {
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn draws_differ() {
        assert_ne!(random(), random());
    }
}
