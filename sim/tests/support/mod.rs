//! A test machine for the simulator's own tests: it sends a numbered probe to each target
//! every period, answers nothing, and reports every probe it receives with the instant it
//! was sent, so tests can measure loss, delay, order and duplication on each link.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use epidemic_core::{Machine, Output};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub seq: u64,
    pub sent: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    Got {
        from: u64,
        seq: u64,
        sent: Instant,
        at: Instant,
    },
    LinkDown {
        peer: u64,
        at: Instant,
    },
}

/// Probes `targets` every `period`, `remaining` times; `generation` survives restarts
/// (the scenario's declared durable state).
#[derive(Debug)]
pub struct Prober {
    pub me: u64,
    pub targets: Vec<u64>,
    pub period: Duration,
    pub remaining: u64,
    pub next: Option<Instant>,
    pub seq: u64,
    pub generation: u32,
    pub received: u64,
    pub disconnect_after: Option<u64>,
    out: VecDeque<Output<u64, Probe, Ev>>,
}

impl Prober {
    pub fn new(me: u64, targets: Vec<u64>, period: Duration, count: u64, start: Instant) -> Self {
        Self {
            me,
            targets,
            period,
            remaining: count,
            next: (count > 0).then_some(start),
            seq: 0,
            generation: 0,
            received: 0,
            disconnect_after: None,
            out: VecDeque::new(),
        }
    }

    /// A node that only listens.
    pub fn listener(me: u64) -> Self {
        Self::new(me, Vec::new(), Duration::from_secs(1), 0, far())
    }
}

fn far() -> Instant {
    #[allow(clippy::disallowed_methods)] // tests may read the clock: never reached by a run
    Instant::now()
}

impl Machine for Prober {
    type Peer = u64;
    type Message = Probe;
    type Event = Ev;

    fn handle_message(&mut self, now: Instant, from: u64, msg: Probe) {
        self.received += 1;
        self.out.push_back(Output::Event(Ev::Got {
            from,
            seq: msg.seq,
            sent: msg.sent,
            at: now,
        }));
    }

    fn handle_timeout(&mut self, now: Instant) {
        let Some(next) = self.next else { return };
        if now < next {
            return;
        }
        self.seq += 1;
        for &t in &self.targets {
            self.out.push_back(Output::Send {
                to: t,
                msg: Probe {
                    seq: self.seq,
                    sent: now,
                },
            });
        }
        if self.disconnect_after == Some(self.seq) {
            for &t in &self.targets {
                self.out.push_back(Output::Disconnect(t));
            }
        }
        self.remaining -= 1;
        self.next = (self.remaining > 0).then(|| next + self.period);
    }

    fn handle_link_down(&mut self, now: Instant, peer: u64) {
        self.out
            .push_back(Output::Event(Ev::LinkDown { peer, at: now }));
    }

    fn poll_output(&mut self) -> Option<Output<u64, Probe, Ev>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }
}

/// Every `Got` event as (receiver, sender, seq, delay).
pub fn receipts(events: &[epidemic_sim::EventRecord<u64, Ev>]) -> Vec<(u64, u64, u64, Duration)> {
    events
        .iter()
        .filter_map(|e| match e.event {
            Ev::Got {
                from,
                seq,
                sent,
                at,
            } => Some((e.node, from, seq, at - sent)),
            Ev::LinkDown { .. } => None,
        })
        .collect()
}
