//! Response latency: a window of recent samples for the speculative-retry percentile, and
//! a per-replica moving average for choosing the data replica.

use std::hash::Hash;
use std::time::Duration;

use hashbrown::HashMap;

/// Recent response latencies and per-peer averages, all bounded.
#[derive(Debug, Clone)]
pub(crate) struct Latency<P> {
    /// Ring buffer of recent samples, in nanoseconds.
    samples: Vec<u64>,
    next: usize,
    capacity: usize,
    /// Samples since the cached percentile was computed.
    since: usize,
    cached: Option<(f64, Duration)>,
    /// Exponentially weighted moving average per peer, in nanoseconds.
    per_peer: HashMap<P, f64>,
    max_peers: usize,
    /// Samples of peers not tracked because `per_peer` was full.
    pub(crate) untracked: u64,
}

/// Weight of a new sample in a peer's moving average (Cassandra's dynamic snitch decays
/// with alpha 0.75 per 100 ms; per sample, 1/8 is TCP's SRTT gain).
const EWMA_GAIN: f64 = 0.125;
/// Fewer samples than this and the percentile is not trusted.
const MIN_SAMPLES: usize = 16;
/// Samples between two recomputations of the percentile.
const RECOMPUTE_EVERY: usize = 16;

impl<P: Hash + Eq + Clone> Latency<P> {
    pub(crate) fn new(capacity: usize, max_peers: usize) -> Self {
        Self {
            samples: Vec::with_capacity(capacity.min(4096)),
            next: 0,
            capacity: capacity.max(1),
            since: 0,
            cached: None,
            per_peer: HashMap::new(),
            max_peers,
            untracked: 0,
        }
    }

    /// Records that `peer` answered after `d`, in time to count for its read.
    pub(crate) fn record(&mut self, peer: &P, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if self.samples.len() < self.capacity {
            self.samples.push(ns);
        } else {
            self.samples[self.next] = ns;
        }
        self.next = (self.next + 1) % self.capacity;
        self.since += 1;
        self.record_peer(peer, d);
    }

    /// Records `peer`'s latency for its average only: a late answer, which says the peer is
    /// slow but is not a latency reads wait for (so it stays out of the percentile).
    pub(crate) fn record_peer(&mut self, peer: &P, d: Duration) {
        let x = d.as_nanos() as f64;
        if let Some(avg) = self.per_peer.get_mut(peer) {
            *avg += EWMA_GAIN * (x - *avg);
        } else if self.per_peer.len() < self.max_peers {
            self.per_peer.insert(peer.clone(), x);
        } else {
            self.untracked += 1;
        }
    }

    /// The `p` percentile of recent samples, or `None` with too few of them.
    pub(crate) fn percentile(&mut self, p: f64) -> Option<Duration> {
        if self.samples.len() < MIN_SAMPLES {
            return None;
        }
        if let Some((q, d)) = self.cached {
            if q.to_bits() == p.to_bits() && self.since < RECOMPUTE_EVERY {
                return Some(d);
            }
        }
        let mut sorted = self.samples.clone();
        let i = (((sorted.len() - 1) as f64) * p.clamp(0.0, 1.0)).round() as usize;
        let (_, &mut v, _) = sorted.select_nth_unstable(i);
        let d = Duration::from_nanos(v);
        self.cached = Some((p, d));
        self.since = 0;
        Some(d)
    }

    /// `peer`'s average latency; 0 if never measured (so it gets tried).
    pub(crate) fn average(&self, peer: &P) -> f64 {
        self.per_peer.get(peer).copied().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_and_average() {
        let mut l = Latency::new(100, 1);
        for i in 1..=15u64 {
            l.record(&1u8, Duration::from_millis(i));
        }
        assert_eq!(l.percentile(0.5), None);
        for i in 16..=100u64 {
            l.record(&2u8, Duration::from_millis(i));
        }
        assert_eq!(l.percentile(0.99), Some(Duration::from_millis(99)));
        assert_eq!(l.percentile(0.0), Some(Duration::from_millis(1)));
        assert!(l.average(&1) > 0.0);
        assert_eq!(l.average(&2), 0.0, "peer table full: untracked");
        assert_eq!(l.untracked, 85);
        // The window slides.
        for _ in 0..100 {
            l.record(&1, Duration::from_millis(500));
        }
        assert_eq!(l.percentile(0.5), Some(Duration::from_millis(500)));
    }
}
