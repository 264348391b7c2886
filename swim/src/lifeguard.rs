//! Lifeguard's two pieces of arithmetic: the local health multiplier and the dynamic
//! suspicion timeout (as in memberlist's `awareness.go` and `suspicion.go`).

use std::time::Duration;

/// Local health: a score in `0..max`; our probe interval and timeout are multiplied by
/// `score + 1`. A failed probe raises it (by the nacks that did not come, or by one when no
/// nack was expected), refuting a suspicion about ourselves raises it by one, and a
/// successful probe lowers it by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Awareness {
    score: u32,
    max: u32,
}

impl Awareness {
    pub(crate) fn new(max_multiplier: u32) -> Self {
        Self {
            score: 0,
            max: max_multiplier.max(1),
        }
    }

    /// Adds `delta`, clamped to `0..max`.
    pub(crate) fn apply(&mut self, delta: i64) {
        let s = i64::from(self.score).saturating_add(delta);
        let clamped = s.clamp(0, i64::from(self.max - 1));
        self.score = u32::try_from(clamped).unwrap_or(0);
    }

    pub(crate) fn score(self) -> u32 {
        self.score
    }

    /// `d · (score + 1)`.
    pub(crate) fn scale(self, d: Duration) -> Duration {
        d.saturating_mul(self.score + 1)
    }
}

/// Share of the time a prober has left before it judges its probe that a ping-req helper
/// may wait for the target before it nacks: the Lifeguard paper's 80% (footnote 5), which
/// leaves the other 20% for the ping-req and the nack to travel.
const NACK_SHARE_PERCENT: u128 = 80;

/// The nack wait a prober puts in its ping-reqs when `left` remains before it judges the
/// probe, in milliseconds (at least 1: 0 would mean "no nack").
pub(crate) fn nack_wait_ms(left: Duration) -> u32 {
    let ms = left.as_millis() * NACK_SHARE_PERCENT / 100;
    u32::try_from(ms).unwrap_or(u32::MAX).max(1)
}

/// `⌈log10(n + 1)⌉`-style scale memberlist uses: `max(1, log10(max(1, n)))`.
fn node_scale(n: usize) -> f64 {
    (n.max(1) as f64).log10().max(1.0)
}

/// The minimum suspicion timeout: `mult · max(1, log10 n) · interval`, to the millisecond.
pub(crate) fn suspicion_min(mult: u32, n: usize, interval: Duration) -> Duration {
    let ms = f64::from(mult) * node_scale(n) * interval.as_secs_f64() * 1e3;
    Duration::from_millis(ms.floor() as u64)
}

/// Confirmations that shrink a suspicion to its minimum: `mult − 2`, or 0 in a group too
/// small to provide them (memberlist).
pub(crate) fn suspicion_k(mult: u32, n: usize) -> u32 {
    let k = mult.saturating_sub(2);
    if (n as u64).saturating_sub(2) < u64::from(k) {
        0
    } else {
        k
    }
}

/// The suspicion timeout after `c` independent confirmations out of `k`: from `max` at
/// zero down to `min` at `k`, logarithmically (Lifeguard): `max − (max − min)·log(c+1)/log(k+1)`.
pub(crate) fn suspicion_timeout(c: u32, k: u32, min: Duration, max: Duration) -> Duration {
    if k == 0 || max <= min {
        return min;
    }
    let frac = f64::from(c + 1).ln() / f64::from(k + 1).ln();
    let raw = max.as_secs_f64() - frac * (max.as_secs_f64() - min.as_secs_f64());
    let ms = (raw * 1e3).floor().max(0.0) as u64;
    Duration::from_millis(ms).max(min)
}

/// The retransmit limit of an update: `λ · ⌈log10(n + 1)⌉`.
pub(crate) fn retransmit_limit(mult: u32, n: usize) -> u32 {
    let scale = ((n as f64) + 1.0).log10().ceil() as u32;
    mult.saturating_mul(scale.max(1))
}

/// memberlist's push-pull scaling: the interval grows by one step per doubling past 32.
pub(crate) fn push_pull_scale(interval: Duration, n: usize) -> Duration {
    const THRESHOLD: usize = 32;
    if n <= THRESHOLD {
        return interval;
    }
    let mult = ((n as f64).log2() - (THRESHOLD as f64).log2()).ceil() as u32 + 1;
    interval.saturating_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn awareness_clamps_and_scales() {
        let mut a = Awareness::new(8);
        a.apply(-1);
        assert_eq!(a.score(), 0);
        a.apply(3);
        assert_eq!(a.scale(S), Duration::from_secs(4));
        a.apply(100);
        assert_eq!(a.score(), 7);
        assert_eq!(a.scale(S), Duration::from_secs(8), "at most 8x");
        a.apply(-2);
        assert_eq!(a.score(), 5);
    }

    #[test]
    fn suspicion_timeout_shrinks_with_confirmations() {
        // memberlist's suspicion_test cases (k = 3, min 2 s, max 30 s), before it subtracts
        // the time already elapsed: 16 s − 2 s = 14 s, 7.81 s − 3 s = 4.81 s.
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(30));
        assert_eq!(suspicion_timeout(0, 3, min, max), max);
        assert_eq!(
            suspicion_timeout(1, 3, min, max),
            Duration::from_millis(16_000)
        );
        assert_eq!(
            suspicion_timeout(2, 3, min, max),
            Duration::from_millis(7_810)
        );
        assert_eq!(suspicion_timeout(3, 3, min, max), min);
        assert_eq!(suspicion_timeout(9, 3, min, max), min);
        assert_eq!(
            suspicion_timeout(0, 0, min, max),
            min,
            "no confirmations expected"
        );
    }

    #[test]
    fn suspicion_min_and_k_follow_memberlist() {
        assert_eq!(suspicion_min(4, 1, S), Duration::from_secs(4));
        assert_eq!(suspicion_min(4, 1000, S), Duration::from_secs(12));
        assert_eq!(
            suspicion_min(3, 100, Duration::from_millis(10)),
            Duration::from_millis(60)
        );
        assert_eq!(suspicion_k(4, 100), 2);
        assert_eq!(suspicion_k(4, 3), 0);
    }

    #[test]
    fn retransmit_limit_is_lambda_log10() {
        assert_eq!(retransmit_limit(4, 0), 4);
        assert_eq!(retransmit_limit(4, 9), 4);
        assert_eq!(retransmit_limit(4, 10), 8);
        assert_eq!(retransmit_limit(4, 1000), 16);
        assert_eq!(retransmit_limit(4, 999), 12);
    }

    #[test]
    fn push_pull_interval_scales_past_32() {
        assert_eq!(push_pull_scale(S, 32), S);
        assert_eq!(push_pull_scale(S, 33), 2 * S);
        assert_eq!(push_pull_scale(S, 64), 2 * S);
        assert_eq!(push_pull_scale(S, 1000), 6 * S);
    }
}
