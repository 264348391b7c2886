//! Probing: one member per protocol period in randomized round-robin order, a direct ping,
//! then ping-req through k helpers, then suspicion; and the helper's side (relay, nack).

use std::time::{Duration, Instant};

use rand::{Rng, RngExt};

use crate::Address;
use crate::event::{Bound, Event};
use crate::lifeguard::nack_wait_ms;
use crate::message::{Message, State, Update};
use crate::swim::{Probe, Relay, Swim, Tick, Timer};

impl<A: Address, R: Rng> Swim<A, R> {
    /// The next member in the probe order; reshuffles the order when a round ends. Each
    /// live member is probed once per round, so a failed member is probed within 2N − 1
    /// periods at worst.
    pub(crate) fn next_target(&mut self) -> Option<A> {
        for _ in 0..2 {
            while self.order_pos < self.order.len() {
                let a = &self.order[self.order_pos];
                self.order_pos += 1;
                if self.members.get(a).is_some_and(|m| m.state.is_live()) {
                    return Some(a.clone());
                }
            }
            self.rebuild_order();
            if self.order.is_empty() {
                return None;
            }
        }
        None
    }

    fn rebuild_order(&mut self) {
        self.order.clear();
        for (a, m) in self.members.iter_mut() {
            m.in_order = m.state.is_live();
            if m.in_order {
                self.order.push(a.clone());
            }
        }
        // Fisher–Yates with the injected RNG.
        for i in (1..self.order.len()).rev() {
            let j = self.rng.random_range(0..=i);
            self.order.swap(i, j);
        }
        self.order_pos = 0;
    }

    /// Puts a new member at a random place in what is left of this round.
    pub(crate) fn insert_in_order(&mut self, member: &A) {
        let Some(m) = self.members.get_mut(member) else {
            return;
        };
        if m.in_order {
            return;
        }
        m.in_order = true;
        // A random place among the members not yet probed this round, in O(1): append,
        // then swap with a random slot of the rest of the round.
        if self.order.len() == self.order.capacity() {
            self.order
                .reserve_exact(crate::rules::grow_by(self.order.len()));
        }
        self.order.push(member.clone());
        let last = self.order.len() - 1;
        let at = self.rng.random_range(self.order_pos..=last);
        self.order.swap(at, last);
    }

    /// A ping, carrying the suspicion of its target if it is suspected (Lifeguard's buddy
    /// system: the target refutes at once).
    pub(crate) fn ping(&mut self, to: A, seq: u32) {
        let mut updates = Vec::new();
        if self.config.lifeguard.buddy {
            if let Some(m) = self.members.get(&to).filter(|m| m.state == State::Suspect) {
                updates.push(Update::Suspect {
                    member: to.clone(),
                    incarnation: m.incarnation,
                    from: self.me.clone(),
                });
            }
        }
        self.send(
            to.clone(),
            Message::Ping {
                seq,
                target: to,
                updates,
            },
        );
    }

    pub(crate) fn start_probe(&mut self, now: Instant) {
        if self.left {
            return;
        }
        let period = self.awareness.scale(self.config.probe_interval);
        self.ticks.set(Tick::Probe, now + period);
        let Some(target) = self.next_target() else {
            return;
        };
        let seq = self.next_seq();
        self.stats.probes += 1;
        self.probe = Some(Probe {
            target: target.clone(),
            seq,
            acked: false,
            indirect_sent: false,
            expected_nacks: 0,
            nacks: 0,
        });
        let timeout = self.awareness.scale(self.config.probe_timeout);
        self.ticks.set(Tick::Indirect, now + timeout);
        self.ping(target, seq);
    }

    /// No direct ack in time: ask `indirect_checks` alive members to probe the target, and
    /// ping it directly once more if `fallback_ping` is on (its ack answers the same seq).
    /// With Lifeguard's nacks on, each ping-req gives its helper 80% of the time left before
    /// the period ends (when we judge the probe) to hear from the target, so the nacks of a
    /// dead target's helpers arrive in time to count.
    pub(crate) fn send_ping_reqs(&mut self, now: Instant) {
        let Some(p) = self.probe.as_ref().filter(|p| !p.acked && !p.indirect_sent) else {
            return;
        };
        let (target, seq) = (p.target.clone(), p.seq);
        let helpers = self.random_members(self.config.indirect_checks, Some(&target), |m| {
            m.state == State::Alive
        });
        let expected = if self.config.lifeguard.nack {
            u32::try_from(helpers.len()).unwrap_or(u32::MAX)
        } else {
            0
        };
        let nack_ms = if expected > 0 {
            let judged = self.ticks.get(Tick::Probe).unwrap_or(now);
            nack_wait_ms(judged.saturating_duration_since(now))
        } else {
            0
        };
        if let Some(p) = self.probe.as_mut() {
            p.indirect_sent = true;
            p.expected_nacks = expected;
        }
        for h in helpers {
            self.stats.ping_reqs_sent += 1;
            self.send(
                h,
                Message::PingReq {
                    seq,
                    target: target.clone(),
                    nack_ms,
                    updates: Vec::new(),
                },
            );
        }
        if self.config.fallback_ping {
            self.stats.fallback_pings += 1;
            self.ping(target, seq);
        }
    }

    /// The period is over: an unacked target becomes suspect, and our local health
    /// worsens by the nacks that did not come (or by one when none were expected).
    pub(crate) fn finish_probe(&mut self, now: Instant) {
        self.ticks.stop(Tick::Indirect);
        let Some(p) = self.probe.take() else {
            return;
        };
        if p.acked {
            return;
        }
        self.stats.probes_failed += 1;
        if self.config.lifeguard.local_health {
            let delta = if p.expected_nacks > 0 {
                i64::from(p.expected_nacks.saturating_sub(p.nacks))
            } else {
                1
            };
            self.awareness.apply(delta);
        }
        let Some(inc) = self
            .members
            .get(&p.target)
            .filter(|m| m.state.is_live())
            .map(|m| m.incarnation)
        else {
            return;
        };
        let me = self.me.clone();
        self.apply_suspect(now, &p.target, inc, &me, true);
    }

    pub(crate) fn on_ack(&mut self, seq: u32) {
        if let Some(p) = self.probe.as_mut().filter(|p| p.seq == seq) {
            if !p.acked {
                p.acked = true;
                if self.config.lifeguard.local_health {
                    self.awareness.apply(-1);
                }
            }
            return;
        }
        if let Some(r) = self.relays.remove(&seq) {
            if let Some(id) = r.nack {
                self.timers.cancel(id);
            }
            self.send(
                r.requester,
                Message::Ack {
                    seq: r.seq,
                    updates: Vec::new(),
                },
            );
            return;
        }
        self.stats.unexpected_acks += 1;
    }

    pub(crate) fn on_nack(&mut self, seq: u32) {
        match self.probe.as_mut().filter(|p| p.seq == seq) {
            Some(p) => {
                p.nacks = p.nacks.saturating_add(1);
                self.stats.nacks_received += 1;
            }
            None => self.stats.unexpected_acks += 1,
        }
    }

    /// A ping-req: ping the target for `from` and relay its ack; with nacks on and a
    /// nonzero `nack_ms`, nack `from` if the target is silent that long. The wait is capped
    /// at the longest period a requester can have (its interval at the maximum local health
    /// multiplier), and the relay lives until the nack or one probe interval, whichever is
    /// later, so a late ack is still relayed.
    pub(crate) fn on_ping_req(&mut self, now: Instant, from: A, seq: u32, target: A, nack_ms: u32) {
        if target == self.me {
            self.send(
                from,
                Message::Ack {
                    seq,
                    updates: Vec::new(),
                },
            );
            return;
        }
        if self.relays.len() >= self.config.max_relays {
            self.stats.dropped_relays += 1;
            self.emit(Event::Dropped {
                bound: Bound::Relays,
            });
            return;
        }
        let relay_seq = self.next_seq();
        let longest = self
            .config
            .probe_interval
            .saturating_mul(self.config.awareness_max_multiplier);
        let wait = (self.config.lifeguard.nack && nack_ms > 0)
            .then(|| Duration::from_millis(u64::from(nack_ms)).min(longest));
        let nack = wait.map(|w| self.timers.insert(now + w, Timer::RelayNack(relay_seq)));
        let life = wait.map_or(self.config.probe_interval, |w| {
            w.max(self.config.probe_interval)
        });
        self.timers.insert(now + life, Timer::RelayEnd(relay_seq));
        self.relays.insert(
            relay_seq,
            Relay {
                requester: from,
                seq,
                nack,
            },
        );
        self.ping(target, relay_seq);
    }
}
