//! What the application is told ([`Event`]) and can ask ([`MemberInfo`], [`Stats`]).

use bytes::Bytes;
use serde::Serialize;

use crate::message::State;

/// A membership change or a delivered broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<A> {
    /// A member is new, or came back after Dead or Left.
    MemberJoined {
        /// The member.
        member: A,
        /// Its incarnation.
        incarnation: u32,
        /// Its metadata.
        meta: Bytes,
    },
    /// A member is suspected of having failed.
    MemberSuspected {
        /// The member.
        member: A,
        /// The incarnation suspected.
        incarnation: u32,
        /// Who suspected it first (this node itself when its probe failed).
        by: A,
    },
    /// A suspected member refuted the suspicion.
    MemberRefuted {
        /// The member.
        member: A,
        /// Its new incarnation.
        incarnation: u32,
    },
    /// A member was declared dead.
    MemberDown {
        /// The member.
        member: A,
        /// The incarnation declared dead.
        incarnation: u32,
        /// Who declared it (this node itself when its suspicion timed out).
        by: A,
    },
    /// A member left gracefully.
    MemberLeft {
        /// The member.
        member: A,
        /// Its incarnation when it left.
        incarnation: u32,
    },
    /// A live member's metadata changed.
    MemberUpdated {
        /// The member.
        member: A,
        /// Its new incarnation.
        incarnation: u32,
        /// Its new metadata.
        meta: Bytes,
    },
    /// A user broadcast reached this node (each one once, while its id is remembered).
    UserBroadcast {
        /// The member that broadcast it.
        origin: A,
        /// The origin's sequence number.
        seq: u32,
        /// The invalidation key, if any.
        key: Option<u64>,
        /// The application's bytes.
        payload: Bytes,
    },
    /// This node was suspected or declared down by others and refuted it with a higher
    /// incarnation (a restart, a pause, a lossy link).
    SelfRefuted {
        /// The new incarnation.
        incarnation: u32,
    },
    /// No seed answered after every join attempt.
    JoinFailed,
    /// Something was dropped at a configured bound.
    Dropped {
        /// Which bound.
        bound: Bound,
    },
}

/// The bounded collections, for [`Event::Dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Bound {
    /// A new member when the table is full of live members.
    Members,
    /// An update at the dissemination queue's bound.
    Queue,
    /// A ping-req when already relaying `max_relays`.
    Relays,
}

/// One member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo<A> {
    /// The member.
    pub member: A,
    /// Its state.
    pub state: State,
    /// Its incarnation.
    pub incarnation: u32,
    /// Its metadata.
    pub meta: Bytes,
}

/// Counters of what this node did and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Probes started.
    pub probes: u64,
    /// Probes that ended without an ack (the target became suspect).
    pub probes_failed: u64,
    /// Ping-reqs sent.
    pub ping_reqs_sent: u64,
    /// Second direct pings sent with the ping-reqs (`Config::fallback_ping`).
    pub fallback_pings: u64,
    /// Nacks received for our probes.
    pub nacks_received: u64,
    /// Refutations of suspicions about ourselves.
    pub refutations: u64,
    /// Replies that carried a newer Alive back to the sender of an outdated suspicion.
    pub corrections_sent: u64,
    /// Suspicions this node raised or adopted.
    pub suspicions: u64,
    /// Members this node declared or learned dead.
    pub downs: u64,
    /// Push-pull exchanges started.
    pub push_pulls: u64,
    /// Push-pull digests received that matched our own table: exchanges that cost one
    /// datagram instead of two full states.
    pub push_pulls_in_sync: u64,
    /// Updates received.
    pub updates_received: u64,
    /// Updates ignored as stale by the precedence rules.
    pub updates_stale: u64,
    /// Pings addressed to another member (dropped).
    pub misdirected: u64,
    /// Acks and nacks matching no probe or relay (late or forged).
    pub unexpected_acks: u64,
    /// Updates with metadata over the limit (dropped).
    pub oversized: u64,
    /// New members dropped because the table was full.
    pub dropped_members: u64,
    /// Updates dropped at the queue bound.
    pub dropped_updates: u64,
    /// Updates replaced by newer ones before they were sent out.
    pub invalidated_updates: u64,
    /// Ping-reqs dropped at the relay bound.
    pub dropped_relays: u64,
    /// Duplicate or superseded user broadcasts.
    pub duplicate_broadcasts: u64,
    /// Last-chance pings sent before declaring an unconfirmed suspect dead.
    pub last_chance_pings: u64,
    /// Incarnations that could not be raised further (u32::MAX, a hostile peer).
    pub incarnation_overflow: u64,
}
