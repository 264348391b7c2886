//! Deadlines a machine owns: [`Deadlines`] for many per-peer or per-message timers and
//! [`TimerTable`] for a handful of protocol-wide ones.

use std::collections::BTreeMap;
use std::time::Instant;

/// A handle to one entry of a [`Deadlines`] queue, used to cancel it.
///
/// Handles are unique for the life of the queue: cancelling an entry that already fired or
/// was cancelled is a harmless `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId {
    at: Instant,
    seq: u64,
}

impl TimerId {
    /// When this timer fires.
    #[must_use]
    pub fn at(&self) -> Instant {
        self.at
    }
}

/// Many deadlines keyed by `(Instant, seq)`: per-peer probe timers, per-message retry
/// timers, expiry of cached entries.
///
/// Entries with equal instants fire in insertion order, so iteration is deterministic. All
/// operations are `O(log n)`. The queue has no bound of its own: each protocol bounds the
/// state the timers belong to.
#[derive(Debug, Clone)]
pub struct Deadlines<T> {
    map: BTreeMap<(Instant, u64), T>,
    next_seq: u64,
}

impl<T> Default for Deadlines<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Deadlines<T> {
    /// An empty queue.
    #[must_use]
    pub fn new() -> Self {
        Self {
            map: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Arms a timer firing at `at` carrying `value`; returns the handle that cancels it.
    pub fn insert(&mut self, at: Instant, value: T) -> TimerId {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.map.insert((at, seq), value);
        TimerId { at, seq }
    }

    /// Disarms a timer, returning its value if it had neither fired nor been cancelled.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        self.map.remove(&(id.at, id.seq))
    }

    /// The earliest armed deadline: what a machine's `poll_timeout` folds in.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.map.first_key_value().map(|(&(at, _), _)| at)
    }

    /// Removes and returns the earliest entry due at or before `now`, if any. Call it in a
    /// loop from `handle_timeout`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(Instant, T)> {
        let entry = self.map.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let ((at, _), value) = entry.remove_entry();
        Some((at, value))
    }

    /// The value of an armed timer.
    #[must_use]
    pub fn get(&self, id: TimerId) -> Option<&T> {
        self.map.get(&(id.at, id.seq))
    }

    /// Keeps only the entries for which `keep` returns true (e.g. drop every timer of a peer
    /// that went away).
    pub fn retain(&mut self, mut keep: impl FnMut(Instant, &mut T) -> bool) {
        self.map.retain(|&(at, _), v| keep(at, v));
    }

    /// Entries in firing order.
    pub fn iter(&self) -> impl Iterator<Item = (TimerId, &T)> {
        self.map
            .iter()
            .map(|(&(at, seq), v)| (TimerId { at, seq }, v))
    }

    /// How many timers are armed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no timer is armed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Disarms every timer.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// A few protocol-wide timers, at most one armed per kind (quinn's `TimerTable`): the
/// protocol period, the gossip tick, the shuffle.
///
/// `K` is the protocol's small timer-kind enum. Lookups scan a short vector, which beats a
/// map for the two to eight kinds a protocol has.
#[derive(Debug, Clone)]
pub struct TimerTable<K> {
    armed: Vec<(K, Instant)>,
}

impl<K> Default for TimerTable<K> {
    fn default() -> Self {
        Self { armed: Vec::new() }
    }
}

impl<K: Copy + Eq> TimerTable<K> {
    /// No timer armed.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `kind` at `at`, replacing its previous deadline.
    pub fn set(&mut self, kind: K, at: Instant) {
        match self.armed.iter_mut().find(|(k, _)| *k == kind) {
            Some(slot) => slot.1 = at,
            None => self.armed.push((kind, at)),
        }
    }

    /// Disarms `kind`, returning its deadline if it was armed.
    pub fn stop(&mut self, kind: K) -> Option<Instant> {
        let i = self.armed.iter().position(|(k, _)| *k == kind)?;
        Some(self.armed.swap_remove(i).1)
    }

    /// The deadline of `kind`, if armed.
    #[must_use]
    pub fn get(&self, kind: K) -> Option<Instant> {
        self.armed
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|&(_, at)| at)
    }

    /// Whether `kind` is armed.
    #[must_use]
    pub fn is_armed(&self, kind: K) -> bool {
        self.get(kind).is_some()
    }

    /// The earliest armed deadline.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.armed.iter().map(|&(_, at)| at).min()
    }

    /// Disarms and returns the earliest kind due at or before `now` (ties: the kind armed
    /// first). Call it in a loop from `handle_timeout`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<K> {
        let (i, _) = self
            .armed
            .iter()
            .enumerate()
            .filter(|(_, (_, at))| *at <= now)
            .min_by_key(|(i, (_, at))| (*at, *i))?;
        // `remove`, not `swap_remove`: keeps the arming order that breaks ties.
        Some(self.armed.remove(i).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t0() -> Instant {
        // Tests may read the clock: only protocol code is forbidden to.
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    #[test]
    fn deadlines_fire_in_time_then_insertion_order() {
        let base = t0();
        let mut d = Deadlines::new();
        d.insert(base + Duration::from_millis(20), "late");
        d.insert(base + Duration::from_millis(10), "first");
        d.insert(base + Duration::from_millis(10), "second");
        assert_eq!(d.next_deadline(), Some(base + Duration::from_millis(10)));
        assert_eq!(d.pop_expired(base + Duration::from_millis(9)), None);
        let now = base + Duration::from_millis(15);
        assert_eq!(d.pop_expired(now).map(|x| x.1), Some("first"));
        assert_eq!(d.pop_expired(now).map(|x| x.1), Some("second"));
        assert_eq!(d.pop_expired(now), None);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn cancel_is_exact_and_idempotent() {
        let base = t0();
        let mut d = Deadlines::new();
        let a = d.insert(base, 1);
        let b = d.insert(base, 2);
        assert_eq!(d.cancel(a), Some(1));
        assert_eq!(d.cancel(a), None);
        assert_eq!(d.get(b), Some(&2));
        assert_eq!(d.pop_expired(base), Some((base, 2)));
        assert_eq!(d.cancel(b), None);
        assert!(d.is_empty());
    }

    #[test]
    fn retain_drops_matching_entries() {
        let base = t0();
        let mut d = Deadlines::new();
        for peer in 0..6u32 {
            d.insert(base + Duration::from_millis(peer.into()), peer);
        }
        d.retain(|_, p| *p % 2 == 0);
        let left: Vec<u32> = d.iter().map(|(_, p)| *p).collect();
        assert_eq!(left, [0, 2, 4]);
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Probe,
        Gossip,
        Shuffle,
    }

    #[test]
    fn timer_table_keeps_one_deadline_per_kind() {
        let base = t0();
        let ms = Duration::from_millis;
        let mut t = TimerTable::new();
        t.set(Kind::Probe, base + ms(30));
        t.set(Kind::Gossip, base + ms(10));
        t.set(Kind::Shuffle, base + ms(10));
        t.set(Kind::Probe, base + ms(5)); // re-arming replaces
        assert_eq!(t.next_deadline(), Some(base + ms(5)));
        assert_eq!(t.pop_expired(base + ms(4)), None);
        let now = base + ms(10);
        assert_eq!(t.pop_expired(now), Some(Kind::Probe));
        assert_eq!(t.pop_expired(now), Some(Kind::Gossip));
        assert_eq!(t.pop_expired(now), Some(Kind::Shuffle));
        assert_eq!(t.pop_expired(now), None);
        assert!(!t.is_armed(Kind::Probe));
        t.set(Kind::Gossip, now);
        assert_eq!(t.stop(Kind::Gossip), Some(now));
        assert_eq!(t.next_deadline(), None);
    }
}
