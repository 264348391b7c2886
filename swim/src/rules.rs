//! The membership rules: how an update changes what this node believes, with the paper's
//! incarnation precedence, refutation, suspicion and tombstones.
//!
//! About another member `M` at incarnation `j` in our table:
//!
//! * `Alive(i)` wins if `i > j` (a new member is always accepted; a tombstone too, which is
//!   a rejoin). Equal incarnations change nothing.
//! * `Suspect(i)` wins over `Alive(j)` if `i ≥ j`; over `Suspect(i)` it only confirms the
//!   suspicion (a distinct suspecter shrinks the Lifeguard timeout), over `Suspect(j < i)`
//!   it starts a new one. It never touches Dead or Left.
//! * `Dead(i)` / `Left(i)` win over Alive and Suspect if `i ≥ j` and are final until an
//!   `Alive(i' > i)`.
//!
//! About ourselves: `Suspect(i)` or `Dead(i)` with `i ≥` our incarnation, or an
//! `Alive(i)` that is newer or differs from what we are, is refuted by raising our
//! incarnation past `i` and gossiping `Alive`. A restarted node (incarnation back to 0)
//! learns its old entry this way from the first push-pull or piggyback and refutes it: the
//! entry is keyed by address, so it is the same entry, never a second one.

use std::time::Instant;

use bytes::Bytes;
use rand::Rng;
use smallvec::{SmallVec, smallvec};

use crate::Address;
use crate::event::{Bound, Event};
use crate::lifeguard::{suspicion_k, suspicion_min, suspicion_timeout};
use crate::message::{Message, State, Update};
use crate::swim::{Member, Suspicion, Swim, Timer, seen_key};

impl<A: Address, R: Rng> Swim<A, R> {
    pub(crate) fn apply_all(&mut self, now: Instant, from: &A, updates: Vec<Update<A>>) {
        for u in updates {
            self.apply(now, from, u);
        }
    }

    pub(crate) fn apply(&mut self, now: Instant, _from: &A, update: Update<A>) {
        self.stats.updates_received += 1;
        match update {
            Update::Alive {
                member,
                incarnation,
                meta,
            } => self.apply_alive(now, member, incarnation, meta),
            Update::Suspect {
                member,
                incarnation,
                from,
            } => self.apply_suspect(now, &member, incarnation, &from, true),
            Update::Dead {
                member,
                incarnation,
                from,
            } => self.apply_dead(now, &member, incarnation, &from, false),
            Update::Left {
                member,
                incarnation,
            } => {
                let m = member.clone();
                self.apply_dead(now, &member, incarnation, &m, true);
            }
            Update::User {
                origin,
                seq,
                key,
                payload,
            } => self.apply_user(origin, seq, key, payload),
        }
    }

    /// Gossip about ourselves: refute what is wrong.
    fn about_me(&mut self, incarnation: u32, state: State, meta: Option<&Bytes>) {
        if self.left {
            return;
        }
        let refute = match state {
            State::Alive => {
                incarnation > self.incarnation
                    || (incarnation == self.incarnation && meta.is_some_and(|m| *m != self.meta))
            }
            State::Suspect | State::Dead | State::Left => incarnation >= self.incarnation,
        };
        if !refute {
            self.stats.updates_stale += 1;
            if state != State::Alive && incarnation < self.incarnation {
                // Someone still spreads an old suspicion of us: it missed our refutation.
                // Tell the sender directly (see `handle_message`).
                self.correct_sender = true;
            }
            return;
        }
        self.stats.refutations += 1;
        self.raise_incarnation(incarnation);
        if self.config.lifeguard.local_health && state != State::Alive {
            // Being suspected is a sign we may be the slow one (Lifeguard).
            self.awareness.apply(1);
        }
        self.emit(Event::SelfRefuted {
            incarnation: self.incarnation,
        });
    }

    pub(crate) fn apply_alive(&mut self, _now: Instant, member: A, incarnation: u32, meta: Bytes) {
        if member == self.me {
            self.about_me(incarnation, State::Alive, Some(&meta));
            return;
        }
        if meta.len() > self.config.max_meta_len {
            self.stats.oversized += 1;
            return;
        }
        let Some(m) = self.members.get_mut(&member) else {
            if !self.make_room() {
                self.stats.dropped_members += 1;
                self.emit(Event::Dropped {
                    bound: Bound::Members,
                });
                return;
            }
            if self.members.len() == self.members.capacity() {
                // Grow by an eighth, not twice: the table is most of a big group's memory.
                self.members.reserve_exact(grow_by(self.members.len()));
            }
            self.members
                .insert(member.clone(), Member::new(incarnation, meta.clone()));
            self.live += 1;
            self.insert_in_order(&member);
            self.emit(Event::MemberJoined {
                member: member.clone(),
                incarnation,
                meta: meta.clone(),
            });
            self.enqueue(Update::Alive {
                member,
                incarnation,
                meta,
            });
            return;
        };
        if incarnation <= m.incarnation {
            self.stats.updates_stale += 1;
            return;
        }
        let before = m.state;
        let meta_changed = !m.meta_is(&meta);
        m.incarnation = incarnation;
        m.state = State::Alive;
        m.meta = crate::broadcast::boxed_meta(meta.clone());
        if let Some(s) = self.suspicions.remove(&member) {
            self.timers.cancel(s.timer);
        }
        if let Some(t) = self.tombstones.remove(&member) {
            self.timers.cancel(t);
        }
        match before {
            State::Dead | State::Left => {
                self.live += 1;
                self.insert_in_order(&member);
                self.emit(Event::MemberJoined {
                    member: member.clone(),
                    incarnation,
                    meta: meta.clone(),
                });
            }
            State::Suspect => self.emit(Event::MemberRefuted {
                member: member.clone(),
                incarnation,
            }),
            State::Alive if meta_changed => self.emit(Event::MemberUpdated {
                member: member.clone(),
                incarnation,
                meta: meta.clone(),
            }),
            State::Alive => {}
        }
        self.enqueue(Update::Alive {
            member,
            incarnation,
            meta,
        });
    }

    /// Room for one more entry: evicts the tombstone closest to expiry if the table is
    /// full. False if every entry is live.
    fn make_room(&mut self) -> bool {
        if self.members.len() < self.config.max_members {
            return true;
        }
        // The minimum of a set: the same whatever order the hash map yields it in.
        let victim = self.tombstones.iter().map(|(a, t)| (*t, a.clone())).min();
        let Some((timer, a)) = victim else {
            return false;
        };
        self.tombstones.remove(&a);
        self.timers.cancel(timer);
        self.forget_member(&a);
        true
    }

    /// A suspicion of `member` at `incarnation`. `attributed`: `from` suspected it itself
    /// (a probe that failed, or gossip naming the suspecter). A push-pull entry is not:
    /// its sender may only have heard the suspicion, so it neither confirms an open
    /// suspicion nor is gossiped under the sender's name (as memberlist, which merges it
    /// as its own suspicion); counting each relayer of a state table as an independent
    /// suspecter shrank timeouts to their minimum and skipped the last-chance probe.
    pub(crate) fn apply_suspect(
        &mut self,
        now: Instant,
        member: &A,
        incarnation: u32,
        from: &A,
        attributed: bool,
    ) {
        if *member == self.me {
            self.about_me(incarnation, State::Suspect, None);
            return;
        }
        let Some(m) = self.members.get_mut(member) else {
            self.stats.updates_stale += 1;
            return;
        };
        if incarnation < m.incarnation || !m.state.is_live() {
            self.stats.updates_stale += 1;
            if incarnation < m.incarnation && m.state == State::Alive {
                self.correct(member);
            }
            return;
        }
        if m.state == State::Suspect && incarnation > m.incarnation {
            // A suspicion of a newer incarnation is a new suspicion (the member refuted the
            // old one), not a confirmation of the old: start over.
            if let Some(old) = self.suspicions.remove(member) {
                self.timers.cancel(old.timer);
            }
            if let Some(m) = self.members.get_mut(member) {
                m.state = State::Alive;
            }
        }
        let Some(m) = self.members.get_mut(member) else {
            return;
        };
        if m.state == State::Suspect {
            if attributed && self.confirm(now, member, from) {
                // Pass the confirmation on so others shrink their timeouts too.
                self.enqueue(Update::Suspect {
                    member: member.clone(),
                    incarnation,
                    from: from.clone(),
                });
            } else {
                self.stats.updates_stale += 1;
            }
            return;
        }
        m.incarnation = incarnation;
        m.state = State::Suspect;
        let n = self.members.len() + 1;
        let c = &self.config;
        let min = suspicion_min(c.suspicion_mult, n, c.probe_interval);
        let (k, max) = if c.lifeguard.dynamic_suspicion {
            (
                suspicion_k(c.suspicion_mult, n),
                min.saturating_mul(c.suspicion_max_timeout_mult),
            )
        } else {
            (0, min)
        };
        let timeout = suspicion_timeout(0, k, min, max);
        let timer = self
            .timers
            .insert(now + timeout, Timer::Suspicion(member.clone()));
        self.suspicions.insert(
            member.clone(),
            Suspicion {
                timer,
                start: now,
                k,
                suspecters: if attributed {
                    smallvec![from.clone()]
                } else {
                    SmallVec::new()
                },
                min,
                max,
                last_chance: false,
            },
        );
        self.stats.suspicions += 1;
        self.emit(Event::MemberSuspected {
            member: member.clone(),
            incarnation,
            by: from.clone(),
        });
        if attributed {
            self.enqueue(Update::Suspect {
                member: member.clone(),
                incarnation,
                from: from.clone(),
            });
        }
    }

    /// The sender spreads a suspicion (or a Down) that `member` already refuted: it
    /// missed the refutation, and may be the one node still counting down to a false
    /// Down. Whoever knows the newer Alive answers with it (the member itself does the
    /// same about itself), so a node that missed the refutation's wave hears it from the
    /// first member it gossips the outdated suspicion to.
    fn correct(&mut self, member: &A) {
        if self.correcting
            && self.corrections.len() < crate::swim::MAX_CORRECTIONS
            && !self.corrections.contains(member)
        {
            self.corrections.push(member.clone());
        }
    }

    /// A distinct suspecter confirms a suspicion: reschedule its timeout. False if `from`
    /// was already counted or enough confirmations are in.
    fn confirm(&mut self, now: Instant, member: &A, from: &A) -> bool {
        let Some(s) = self.suspicions.get_mut(member) else {
            return false;
        };
        if confirmations(&s.suspecters) >= s.k || s.suspecters.contains(from) {
            return false;
        }
        s.suspecters.push(from.clone());
        let timeout = suspicion_timeout(confirmations(&s.suspecters), s.k, s.min, s.max);
        let at = (s.start + timeout).max(now);
        let old = s.timer;
        s.timer = self.timers.insert(at, Timer::Suspicion(member.clone()));
        self.timers.cancel(old);
        true
    }

    pub(crate) fn on_suspicion_timeout(&mut self, now: Instant, member: &A) {
        let Some(m) = self.members.get(member) else {
            return;
        };
        if m.state != State::Suspect {
            return;
        }
        let inc = m.incarnation;
        // Last chance (ours, beyond Lifeguard): a suspicion that timed out without its k
        // independent confirmations may only mean we missed the refutation. Ping the
        // member once with the suspicion attached; its ack carries its newer Alive if it
        // lives. A suspicion confirmed k times is believed at once.
        if self.config.lifeguard.buddy {
            if let Some(s) = self.suspicions.get_mut(member) {
                if !s.last_chance && confirmations(&s.suspecters) < s.k {
                    s.last_chance = true;
                    s.timer = self.timers.insert(
                        now + self.config.probe_interval,
                        Timer::Suspicion(member.clone()),
                    );
                    self.stats.last_chance_pings += 1;
                    let seq = self.next_seq();
                    self.ping(member.clone(), seq);
                    // And through k helpers, the suspicion attached: a helper that knows
                    // the refutation answers with it at once, one that does not relays a
                    // ping that carries the suspicion to the member. One lost ping no
                    // longer decides.
                    let helpers =
                        self.random_members(self.config.indirect_checks, Some(member), |m| {
                            m.state == State::Alive
                        });
                    for h in helpers {
                        self.stats.ping_reqs_sent += 1;
                        let updates = vec![Update::Suspect {
                            member: member.clone(),
                            incarnation: inc,
                            from: self.me.clone(),
                        }];
                        self.send(
                            h,
                            Message::PingReq {
                                seq,
                                target: member.clone(),
                                // Not our probe: a nack would count for nothing.
                                nack_ms: 0,
                                updates,
                            },
                        );
                    }
                    return;
                }
            }
        }
        let me = self.me.clone();
        self.apply_dead(now, member, inc, &me, false);
    }

    pub(crate) fn apply_dead(
        &mut self,
        now: Instant,
        member: &A,
        incarnation: u32,
        from: &A,
        left: bool,
    ) {
        let state = if left { State::Left } else { State::Dead };
        if *member == self.me {
            self.about_me(incarnation, state, None);
            return;
        }
        let retention = self.config.dead_retention;
        let Some(m) = self.members.get_mut(member) else {
            self.stats.updates_stale += 1;
            return;
        };
        if incarnation < m.incarnation || !m.state.is_live() {
            self.stats.updates_stale += 1;
            if incarnation < m.incarnation && m.state == State::Alive {
                self.correct(member);
            }
            return;
        }
        m.incarnation = incarnation;
        m.state = state;
        if let Some(s) = self.suspicions.remove(member) {
            self.timers.cancel(s.timer);
        }
        let tomb = self
            .timers
            .insert(now + retention, Timer::Tombstone(member.clone()));
        if let Some(old) = self.tombstones.insert(member.clone(), tomb) {
            self.timers.cancel(old);
        }
        self.live -= 1;
        if self.probe.as_ref().is_some_and(|p| p.target == *member) {
            self.probe = None;
        }
        if left {
            self.emit(Event::MemberLeft {
                member: member.clone(),
                incarnation,
            });
            self.enqueue(Update::Left {
                member: member.clone(),
                incarnation,
            });
        } else {
            self.stats.downs += 1;
            self.emit(Event::MemberDown {
                member: member.clone(),
                incarnation,
                by: from.clone(),
            });
            self.enqueue(Update::Dead {
                member: member.clone(),
                incarnation,
                from: from.clone(),
            });
        }
    }

    fn apply_user(&mut self, origin: A, seq: u32, key: Option<u64>, payload: Bytes) {
        if origin == self.me {
            self.stats.duplicate_broadcasts += 1;
            return;
        }
        let k = seen_key(&origin, seq, key);
        if let Some(&last) = self.seen.get(&k) {
            // Unkeyed: seen is seen. Keyed: only a newer sequence number is news.
            if key.is_none() || seq.wrapping_sub(last) == 0 || seq.wrapping_sub(last) > u32::MAX / 2
            {
                self.stats.duplicate_broadcasts += 1;
                return;
            }
            self.seen.insert(k, seq);
        } else {
            self.remember(k, seq);
        }
        self.emit(Event::UserBroadcast {
            origin: origin.clone(),
            seq,
            key,
            payload: payload.clone(),
        });
        self.enqueue(Update::User {
            origin,
            seq,
            key,
            payload,
        });
    }
}

/// How many entries a full table or probe order grows by: an eighth (at least 16), so
/// a table of N members holds at most about N/8 unused entries where doubling would
/// leave up to N.
pub(crate) fn grow_by(len: usize) -> usize {
    (len / 8).max(16)
}

/// Independent confirmations among a suspicion's distinct suspecters: all but the first.
fn confirmations<A>(suspecters: &[A]) -> u32 {
    u32::try_from(suspecters.len().saturating_sub(1)).unwrap_or(u32::MAX)
}
