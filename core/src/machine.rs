//! The [`Machine`] trait and its [`Output`].

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

/// A sans-IO protocol state machine.
///
/// A machine does no I/O, reads no clock, spawns nothing and owns its randomness: given the
/// same inputs (and the same RNG seed at construction) it produces the same outputs. A
/// driver (the simulator, or an adapter over real sockets) feeds it inputs and carries out
/// what it asks for.
///
/// # The drain contract
///
/// After **any** input (`handle_*`) or application command (an inherent method such as
/// `join(now, ..)` or `broadcast(now, ..)`):
///
/// 1. call [`poll_output`](Machine::poll_output) until it returns `None`, carrying out each
///    [`Output`] in the order returned;
/// 2. then read [`poll_timeout`](Machine::poll_timeout);
/// 3. then wait for the next input, or until that deadline passes and call
///    [`handle_timeout`](Machine::handle_timeout).
///
/// Rules every implementation keeps, so that every driver can be simple:
///
/// * `handle_timeout` before the deadline is a harmless no-op (drivers may wake early).
/// * A `now` earlier than one already seen is treated as the latest `now` seen
///   ([`MonotonicNow`](crate::MonotonicNow) does this in one line).
/// * Timers are deadlines the machine owns: the driver never echoes a timer token back; it
///   only calls `handle_timeout` at or after the instant `poll_timeout` returned.
/// * A peer's malformed or hostile message never panics and never returns an error: it is
///   dropped and counted in the machine's statistics.
/// * Outputs are produced in a deterministic order (no iteration over randomly-seeded hash
///   maps).
///
/// # Example: the run loop
///
/// A tiny machine that pings a peer every second and reports each pong, driven by a loop
/// over an in-memory "network":
///
/// ```
/// use std::collections::VecDeque;
/// use std::time::{Duration, Instant};
/// use epidemic_core::{Machine, Output};
///
/// #[derive(Debug)]
/// enum Msg { Ping(u32), Pong(u32) }
///
/// /// Pings `peer` once per second; reports every pong as an event.
/// struct Pinger { me: u64, peer: Option<u64>, next: Option<Instant>, seq: u32,
///                 out: VecDeque<Output<u64, Msg, u32>> }
///
/// impl Machine for Pinger {
///     type Peer = u64;
///     type Message = Msg;
///     type Event = u32;
///     fn handle_message(&mut self, _now: Instant, from: u64, msg: Msg) {
///         match msg {
///             Msg::Ping(n) => self.out.push_back(Output::Send { to: from, msg: Msg::Pong(n) }),
///             Msg::Pong(n) => self.out.push_back(Output::Event(n)),
///         }
///     }
///     fn handle_timeout(&mut self, now: Instant) {
///         let (Some(peer), Some(at)) = (self.peer, self.next) else { return };
///         if now < at { return; } // early wake-up: no-op
///         self.seq += 1;
///         self.out.push_back(Output::Send { to: peer, msg: Msg::Ping(self.seq) });
///         self.next = Some(at + Duration::from_secs(1));
///     }
///     fn poll_output(&mut self) -> Option<Output<u64, Msg, u32>> { self.out.pop_front() }
///     fn poll_timeout(&self) -> Option<Instant> { self.next }
/// }
///
/// let start = Instant::now();
/// let mut a = Pinger { me: 1, peer: Some(2), next: Some(start), seq: 0, out: VecDeque::new() };
/// let mut b = Pinger { me: 2, peer: None, next: None, seq: 0, out: VecDeque::new() };
///
/// // The driver: a virtual clock, an in-flight queue, and the drain contract.
/// let mut now = start;
/// let mut wire: VecDeque<(u64, u64, Msg)> = VecDeque::new();
/// let mut pongs = Vec::new();
/// while now < start + Duration::from_secs(3) {
///     // Wake `a` at its deadline.
///     if a.poll_timeout().is_some_and(|t| t <= now) { a.handle_timeout(now); }
///     // Drain both machines, then deliver what is in flight.
///     loop {
///         for m in [&mut a, &mut b] {
///             while let Some(out) = m.poll_output() {
///                 match out {
///                     Output::Send { to, msg } => wire.push_back((m.me, to, msg)),
///                     Output::Event(n) => pongs.push(n),
///                     Output::Disconnect(_) => {}
///                 }
///             }
///         }
///         let Some((from, to, msg)) = wire.pop_front() else { break };
///         if to == 1 { a.handle_message(now, from, msg) } else { b.handle_message(now, from, msg) }
///     }
///     // Sleep until the earliest deadline.
///     now = a.poll_timeout().unwrap_or(now + Duration::from_secs(1));
/// }
/// assert_eq!(pongs, [1, 2, 3]);
/// ```
pub trait Machine {
    /// A node's identity: a `u64`, a `SocketAddr`, a public key.
    type Peer: Clone + Ord + Hash + Debug;
    /// The protocol's wire message (serde behind each crate's `serde` feature).
    type Message;
    /// What the application is told.
    type Event;

    /// A message arrived from `from`.
    fn handle_message(&mut self, now: Instant, from: Self::Peer, msg: Self::Message);

    /// The deadline from [`poll_timeout`](Machine::poll_timeout) has passed. Calling it
    /// early is a no-op.
    fn handle_timeout(&mut self, now: Instant);

    /// The transport lost its connection to `peer` (connection-oriented transports only).
    /// Datagram protocols ignore it.
    fn handle_link_down(&mut self, now: Instant, peer: Self::Peer) {
        let _ = (now, peer);
    }

    /// The next thing the driver must do, or `None` once drained.
    fn poll_output(&mut self) -> Option<Output<Self::Peer, Self::Message, Self::Event>>;

    /// The earliest instant at which [`handle_timeout`](Machine::handle_timeout) must be
    /// called, or `None` if the machine has no timer armed.
    fn poll_timeout(&self) -> Option<Instant>;
}

/// What a [`Machine`] asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<P, M, E> {
    /// Send `msg` to `to`, opening a connection first if the transport needs one.
    Send {
        /// The destination.
        to: P,
        /// The message.
        msg: M,
    },
    /// Tell the application something.
    Event(E),
    /// Close the connection to this peer, if the transport has one; the remote side sees it
    /// as [`handle_link_down`](Machine::handle_link_down).
    Disconnect(P),
}

impl<P, M, E> Output<P, M, E> {
    /// Maps the message of a [`Output::Send`], leaving other variants alone. Composites use
    /// it to lift a child's message into their own wire enum.
    pub fn map_message<M2>(self, f: impl FnOnce(M) -> M2) -> Output<P, M2, E> {
        match self {
            Output::Send { to, msg } => Output::Send { to, msg: f(msg) },
            Output::Event(e) => Output::Event(e),
            Output::Disconnect(p) => Output::Disconnect(p),
        }
    }

    /// Maps the event of an [`Output::Event`], leaving other variants alone.
    pub fn map_event<E2>(self, f: impl FnOnce(E) -> E2) -> Output<P, M, E2> {
        match self {
            Output::Send { to, msg } => Output::Send { to, msg },
            Output::Event(e) => Output::Event(f(e)),
            Output::Disconnect(p) => Output::Disconnect(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Output;

    #[test]
    fn map_message_touches_only_sends() {
        let send: Output<u8, u16, &str> = Output::Send { to: 1, msg: 7 };
        assert_eq!(
            send.map_message(|m| u32::from(m) * 2),
            Output::Send { to: 1, msg: 14 }
        );
        let ev: Output<u8, u16, &str> = Output::Event("up");
        assert_eq!(ev.map_message(|m| m + 1), Output::Event("up"));
        let dc: Output<u8, u16, &str> = Output::Disconnect(3);
        assert_eq!(dc.map_event(str::len), Output::Disconnect(3));
        let ev: Output<u8, u16, &str> = Output::Event("down");
        assert_eq!(ev.map_event(str::len), Output::Event(4));
    }
}
