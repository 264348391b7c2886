//! The replica role: writes, hinted writes (a sloppy-quorum guest copy plus a handoff
//! hint) and replays, applied to the application's [`Store`].

use std::time::Instant;

use rand::Rng;

use crate::hints::DropReason;
use crate::message::{HintId, Message, Mutation, NodeId, WriteId};
use crate::node::Node;
use crate::store::Store;

impl<S: Store, R: Rng> Node<S, R> {
    fn oversized(&mut self, m: &Mutation) -> bool {
        if m.size() > self.config.max_mutation_bytes {
            self.stats.oversized += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn on_write(&mut self, from: NodeId, id: WriteId, m: &Mutation) {
        if self.oversized(m) {
            return;
        }
        if self.apply_local(m) {
            self.send(from, Message::WriteAck { id });
        }
    }

    pub(crate) fn on_hinted_write(
        &mut self,
        now: Instant,
        from: NodeId,
        id: WriteId,
        owner: NodeId,
        m: Mutation,
    ) {
        if owner == self.me {
            self.on_write(from, id, &m);
            return;
        }
        if self.oversized(&m) {
            return;
        }
        // Acknowledge only with both the guest copy and a durable handoff hint: a
        // fallback that cannot hint must not count toward the coordinator's quorum.
        let refused = if self.beyond_window(owner) {
            Some(DropReason::Window)
        } else {
            self.hints.refuses(owner)
        };
        if let Some(reason) = refused {
            self.report_drop(owner, &m.key, m.timestamp, reason);
            return;
        }
        if !self.apply_local(&m) {
            return;
        }
        if self.create_hint(now, owner, m, true, now).is_some() {
            self.send(from, Message::WriteAck { id });
        }
    }

    pub(crate) fn on_replay(&mut self, from: NodeId, hint: HintId, m: &Mutation) {
        if self.oversized(m) {
            return;
        }
        if self.apply_local(m) {
            self.send(
                from,
                Message::ReplayAck {
                    hint,
                    timestamp: m.timestamp,
                },
            );
        }
    }
}
