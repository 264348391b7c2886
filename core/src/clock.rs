//! [`MonotonicNow`]: the one line that makes a machine tolerate a clock that steps back.

use std::time::Instant;

/// The latest `now` a machine has seen.
///
/// The drain contract says a `now` earlier than one already seen is treated as the latest
/// one; every input handler starts with `let now = self.clock.advance(now);`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonotonicNow {
    last: Option<Instant>,
}

impl MonotonicNow {
    /// No instant seen yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `now` and returns the later of it and every instant seen before.
    pub fn advance(&mut self, now: Instant) -> Instant {
        let now = self.last.map_or(now, |last| last.max(now));
        self.last = Some(now);
        now
    }

    /// The latest instant seen, if any.
    #[must_use]
    pub fn last(&self) -> Option<Instant> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn never_goes_back() {
        #[allow(clippy::disallowed_methods)] // tests may read the clock
        let base = Instant::now();
        let mut c = MonotonicNow::new();
        assert_eq!(c.last(), None);
        assert_eq!(
            c.advance(base + Duration::from_secs(2)),
            base + Duration::from_secs(2)
        );
        assert_eq!(c.advance(base), base + Duration::from_secs(2));
        assert_eq!(
            c.advance(base + Duration::from_secs(3)),
            base + Duration::from_secs(3)
        );
    }
}
