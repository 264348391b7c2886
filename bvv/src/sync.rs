//! Node-wide sync (DAIS 2015 §6): A sends its node clock; B computes the dots A lacks,
//! finds their keys in its dot→key log and answers with exactly those keys' containers
//! (filled), its clock and its watermark matrix, split into bounded messages; A merges
//! each container and adds the dots B named for it, both sides raise their watermark and
//! truncate the log.
//!
//! A never joins B's clock wholesale: it adds only the dots that arrived with a container
//! covering them, so a lost chunk, a truncated reply or a lying peer can never make A
//! claim a dot it has not seen. The one exception is a full transfer (B's log no longer
//! names a dot A lacks: A is new or lost its state), where A joins B's clock once every
//! chunk of it has arrived.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::Bytes;
use epidemic_core::Output;
use epidemic_core::codec::{ENVELOPE_LEN, body_len, encoded_len};
use rand::Rng;
use smallvec::SmallVec;

use crate::clock::{Dot, NodeClock, NodeId};
use crate::dcc::Dcc;
use crate::message::{Message, SyncEntry, SyncReply};
use crate::node::{Bvv, Event, FullProgress, Pass};
use crate::storage::Storage;

/// Where a received entry came from.
#[derive(Clone, Copy)]
enum Origin<'a> {
    /// A pushed write.
    Push,
    /// A sync reply, with the clock its request carried (`None`: a stale reply).
    Reply(Option<&'a NodeClock>),
}

/// Bytes reserved for a message's fixed fields (variant, session, index/total, flag and
/// the entries' length prefix), each at most a 5-byte varint.
const FIXED_OVERHEAD: usize = 24;

impl<S: Storage, R: Rng> Bvv<S, R> {
    pub(crate) fn on_message(&mut self, now: Instant, from: NodeId, msg: Message) {
        if from == self.durable.id || !self.durable.members.contains(&from) {
            self.stats.dropped_non_member += 1;
            return;
        }
        self.last_heard.insert(from, now);
        self.expire_recent(now);
        match msg {
            Message::SyncRequest {
                request,
                clock,
                resume,
            } => self.on_sync_request(from, request, &clock, resume.as_deref()),
            Message::SyncReply(reply) => self.on_sync_reply(from, reply),
            Message::SyncMore {
                request,
                session,
                index,
                entries,
            } => self.on_sync_more(from, request, session, index, entries),
            Message::Push { entries } => {
                for e in entries {
                    self.apply_entry(e, Origin::Push);
                }
                self.collect_garbage();
            }
        }
    }

    /// Whether `clock` claims a dot of this node that this node never generated.
    fn claims_my_future(&self, clock: &NodeClock) -> bool {
        let me = self.durable.id;
        clock.entry(me).is_some_and(|theirs| {
            let mine = self.durable.clock.entry(me).cloned().unwrap_or_default();
            !mine.dominates(theirs)
        })
    }

    /// Raises the watermark from a peer's clock (and matrix), for ids this node knows.
    fn learn_watermark(
        &mut self,
        from: NodeId,
        clock: &NodeClock,
        matrix: Option<&crate::Watermark>,
    ) {
        let d = &mut self.durable;
        let me = d.id;
        let (known, members, wm) = (&d.clock, &d.members, &mut d.watermark);
        let col = |id: NodeId| id == me || members.contains(&id) || known.entry(id).is_some();
        wm.update_row(from, clock, col);
        if let Some(m) = matrix {
            wm.join_from(m, |p| p != me && members.contains(&p), col);
        }
    }

    fn on_sync_request(
        &mut self,
        from: NodeId,
        request: u32,
        theirs: &NodeClock,
        resume: Option<&[u8]>,
    ) {
        if self.claims_my_future(theirs) {
            self.stats.dropped_hostile += 1;
            return;
        }
        // A request older than what this node knows the requester has seen (a duplicate
        // or a long-delayed copy) would name dots the log has rightly forgotten and
        // trigger a full transfer for nothing.
        if self.durable.watermark.is_behind(from, theirs) {
            self.stats.stale_requests += 1;
            return;
        }
        self.learn_watermark(from, theirs, None);
        self.stats.requests_served += 1;
        let d = &self.durable;
        // The keys of the dots the requester lacks, from the log.
        let mut groups: BTreeMap<Bytes, SmallVec<[Dot; 1]>> = BTreeMap::new();
        let mut found: u64 = 0;
        for (id, _) in d.clock.iter() {
            let entry = theirs.entry(id);
            let base = entry.map_or(0, crate::Entry::base);
            for (c, key) in d.log.above(id, base) {
                if entry.is_some_and(|e| e.contains(c)) {
                    continue;
                }
                found += 1;
                if self.recent_set.contains(&Dot::new(id, c)) {
                    // Fresh: its push is most likely in flight (`sync_grace`).
                    continue;
                }
                if groups.len() >= self.config.max_keys_per_sync && !groups.contains_key(key) {
                    continue;
                }
                groups.entry(key.clone()).or_default().push(Dot::new(id, c));
            }
        }
        let full = found < d.clock.missing_count(theirs);
        let mut next = None;
        let keys: Vec<(Bytes, SmallVec<[Dot; 1]>)> = if full {
            // A page of every key after `resume`: stored keys, plus logged keys no longer
            // stored (deleted), in key order.
            let max = self.config.max_keys_per_sync;
            let after = |k: &Bytes| resume.is_none_or(|r| k.as_ref() > r);
            let mut page: BTreeMap<Bytes, SmallVec<[Dot; 1]>> = d
                .store
                .keys_after(resume)
                .take(max.saturating_add(1))
                .map(|k| (k, SmallVec::new()))
                .collect();
            for (k, dots) in groups {
                if after(&k) {
                    page.insert(k, dots);
                }
            }
            let more = page.len() > max;
            let page: Vec<(Bytes, SmallVec<[Dot; 1]>)> = page.into_iter().take(max).collect();
            if more {
                next = page.last().map(|(k, _)| k.clone());
            }
            page
        } else {
            groups.into_iter().collect()
        };
        let entries: Vec<SyncEntry> = keys
            .into_iter()
            .map(|(key, dots)| {
                let mut dcc = d.store.get(&key).unwrap_or_default();
                dcc.fill(&d.clock);
                SyncEntry { key, dots, dcc }
            })
            .collect();
        self.send_reply(from, request, full, next, entries);
        if full {
            self.stats.full_transfers_sent += 1;
        }
        self.collect_garbage();
    }

    /// Splits `entries` into messages under the size bound and queues them.
    fn send_reply(
        &mut self,
        to: NodeId,
        request: u32,
        full: bool,
        next: Option<Bytes>,
        entries: Vec<SyncEntry>,
    ) {
        let d = &self.durable;
        let limit = self.config.max_message_bytes - ENVELOPE_LEN - FIXED_OVERHEAD;
        let first_fixed = d.clock.wire_len() + body_len(&d.watermark);
        let mut chunks: Vec<Vec<SyncEntry>> = vec![Vec::new()];
        let mut used = first_fixed;
        self.stats.entries_sent += entries.len() as u64;
        self.stats.replies_with_entries += u64::from(!entries.is_empty());
        for e in entries {
            let len = body_len(&e);
            // A full message starts the next one; an entry over the bound on its own
            // still travels, alone.
            if used + len > limit && used > 0 {
                chunks.push(Vec::new());
                used = 0;
            }
            used += len;
            if let Some(c) = chunks.last_mut() {
                c.push(e);
            }
        }
        let total = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        let session = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        self.stats.reply_messages_sent += u64::from(total);
        let nonempty = chunks.iter().any(|c| !c.is_empty());
        let mut chunks = chunks.into_iter();
        let first = chunks.next().unwrap_or_default();
        let mut msgs = vec![Message::SyncReply(SyncReply {
            request,
            session,
            total,
            full,
            next,
            clock: self.durable.clock.clone(),
            watermark: self.durable.watermark.clone(),
            entries: first,
        })];
        for (i, entries) in chunks.enumerate() {
            let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
            msgs.push(Message::SyncMore {
                request,
                session,
                index,
                entries,
            });
        }
        for msg in msgs {
            if nonempty {
                self.stats.nonempty_reply_bytes += encoded_len(&msg) as u64;
            }
            self.out.push_back(Output::Send { to, msg });
        }
    }

    fn on_sync_reply(&mut self, from: NodeId, reply: SyncReply) {
        if reply.total == 0 || self.claims_my_future(&reply.clock) {
            self.stats.dropped_hostile += 1;
            return;
        }
        self.learn_watermark(from, &reply.clock, Some(&reply.watermark));
        let keys: Vec<Bytes> = if reply.full {
            reply.entries.iter().map(|e| e.key.clone()).collect()
        } else {
            Vec::new()
        };
        self.apply_reply_entries(from, reply.request, reply.entries);
        let key = (from, reply.session);
        if reply.full {
            let p = self.session(key);
            p.keys.extend(keys);
            p.request = reply.request;
            p.total = reply.total;
            p.seen.insert(0);
            p.clock = Some(reply.clock);
            p.next = reply.next;
            self.finish_full(key);
        } else {
            self.sessions.remove(&key);
            // Nothing this node lacks is unlogged there any more: no pass needed.
            if self
                .requested
                .get(&from)
                .is_some_and(|r| r.request == reply.request)
            {
                self.passes.remove(&from);
            }
        }
        self.collect_garbage();
    }

    fn on_sync_more(
        &mut self,
        from: NodeId,
        request: u32,
        session: u32,
        index: u32,
        entries: Vec<SyncEntry>,
    ) {
        if index == 0 {
            self.stats.dropped_hostile += 1;
            return;
        }
        let keys: Vec<Bytes> = entries.iter().map(|e| e.key.clone()).collect();
        self.apply_reply_entries(from, request, entries);
        let key = (from, session);
        let p = self.session(key);
        p.keys.extend(keys);
        if p.clock.is_none() || index < p.total {
            p.seen.insert(index);
        }
        self.finish_full(key);
        self.collect_garbage();
    }

    /// The progress record of a (possibly full) transfer, created on first sight; the
    /// oldest is forgotten past the bound.
    fn session(&mut self, key: (NodeId, u32)) -> &mut FullProgress {
        if !self.sessions.contains_key(&key) && self.sessions.len() >= self.config.max_sessions {
            self.sessions.pop_first();
            self.stats.sessions_evicted += 1;
        }
        self.sessions.entry(key).or_insert_with(|| FullProgress {
            request: 0,
            keys: BTreeSet::new(),
            total: 0,
            seen: BTreeSet::new(),
            clock: None,
            next: None,
        })
    }

    /// Once every message of a full-transfer page has arrived: starts or advances the
    /// pass, asks for the next page at once, and after the last page joins the clock
    /// the sender had when the pass began (every key it then held has arrived since).
    fn finish_full(&mut self, key: (NodeId, u32)) {
        let done = self
            .sessions
            .get(&key)
            .is_some_and(|p| p.clock.is_some() && p.seen.len() as u64 == u64::from(p.total));
        if !done {
            return;
        }
        let Some(FullProgress {
            request,
            clock: Some(clock),
            next,
            keys,
            ..
        }) = self.sessions.remove(&key)
        else {
            return;
        };
        let peer = key.0;
        // Only the answer to the latest request counts, and only if it continues the
        // pass exactly where it stands (a stale or duplicated page is data, not progress).
        let Some(asked) = self.requested.get(&peer).filter(|r| r.request == request) else {
            return;
        };
        match &asked.resume {
            None => {
                self.passes.insert(
                    peer,
                    Pass {
                        clock: clock.clone(),
                        cursor: None,
                    },
                );
            }
            Some(at) => {
                if self.passes.get(&peer).and_then(|p| p.cursor.as_ref()) != Some(at) {
                    return;
                }
            }
        }
        // Keys of this page's range held here but absent there: the sender saw (and
        // deleted) whatever values of them its clock holds.
        let resume = self.requested.get(&peer).and_then(|r| r.resume.clone());
        let absent: Vec<Bytes> = self
            .durable
            .store
            .keys_after(resume.as_deref())
            .take_while(|k| next.as_ref().is_none_or(|n| k <= n))
            .filter(|k| !keys.contains(k))
            .collect();
        for k in absent {
            let mut dcc = self.durable.store.get(&k).unwrap_or_default();
            dcc.fill(&self.durable.clock);
            dcc.discard_seen(&clock);
            self.store_stripped(k, dcc);
        }
        if let Some(k) = next {
            if let Some(p) = self.passes.get_mut(&peer) {
                p.cursor = Some(k);
            }
            self.start_sync(peer);
            return;
        }
        let Some(Pass { clock: mut c, .. }) = self.passes.remove(&peer) else {
            return;
        };
        let d = &mut self.durable;
        // As for named dots: ids this node knows, and others only up to the bound, so a
        // full transfer cannot grow the clock by invented ids without limit.
        let mut room = self.config.max_clock_ids.saturating_sub(d.clock.len());
        c.retain(|id| {
            let known = id == d.id
                || d.members.contains(&id)
                || d.retired.contains(&id)
                || d.clock.entry(id).is_some();
            if known {
                return true;
            }
            let fits = room > 0;
            room = room.saturating_sub(1);
            fits
        });
        d.clock.join_from(&c);
        self.stats.full_transfers_applied += 1;
        self.out
            .push_back(Output::Event(Event::FullTransfer { peer }));
    }

    /// Applies a reply's entries, with the clock the answered request carried when it is
    /// the latest request to that peer (else the reply is stale: a slow or duplicated
    /// message).
    fn apply_reply_entries(&mut self, from: NodeId, request: u32, entries: Vec<SyncEntry>) {
        let sent = self.requested.remove(&from);
        let clock = sent
            .as_ref()
            .filter(|r| r.request == request)
            .map(|r| &r.clock);
        for e in entries {
            self.apply_entry(e, Origin::Reply(clock));
        }
        if let Some(s) = sent {
            self.requested.insert(from, s);
        }
    }

    /// Merges one received container and records the dots named with it.
    fn apply_entry(&mut self, e: SyncEntry, origin: Origin<'_>) {
        let me = self.durable.id;
        let my_base = self.durable.clock.base(me);
        let d = &self.durable;
        // Dots of ids this node has never heard of would let a peer grow its clock by
        // one bitmap per invented id: members (past and present) and ids already in the
        // clock are accepted, others only while the clock is under its bound.
        let room = d.clock.len() < self.config.max_clock_ids;
        let known = |id: NodeId| {
            id == me
                || d.members.contains(&id)
                || d.retired.contains(&id)
                || d.clock.entry(id).is_some()
                || room
        };
        let bad = |dot: Dot| {
            dot.counter == 0 || (dot.id == me && dot.counter > my_base) || !known(dot.id)
        };
        let hostile = e.key.is_empty()
            || e.dots
                .iter()
                .any(|&dot| bad(dot) || !e.dcc.context().covers(dot))
            || e.dcc.values().iter().any(|&(dot, _)| bad(dot));
        if hostile {
            self.stats.dropped_hostile += 1;
            return;
        }
        let d = &mut self.durable;
        let mut local: Dcc = d.store.get(&e.key).unwrap_or_default();
        local.fill(&d.clock);
        let before: SmallVec<[Dot; 2]> = local.values().iter().map(|(d, _)| *d).collect();
        local.sync(&e.dcc);
        let mut new_dots = 0u64;
        let mut fresh: SmallVec<[Dot; 1]> = SmallVec::new();
        // The named dots, and the dots of the values that came (each wrote this key, and
        // this node now holds its value or what superseded it): the latter matter when
        // the sender's log could not name them (it received them without a log entry).
        let values = e.dcc.values().iter().map(|&(dot, _)| dot);
        for dot in e.dots.iter().copied().chain(values) {
            if d.clock.contains(dot) {
                continue;
            }
            if d.log.len() >= self.config.max_log_entries || !d.clock.add(dot) {
                self.stats.dots_deferred += 1;
                continue;
            }
            d.log.insert(dot, e.key.clone());
            new_dots += 1;
            fresh.push(dot);
        }
        for dot in fresh {
            self.note_recent(dot);
        }
        let changed = !local
            .values()
            .iter()
            .map(|(d, _)| *d)
            .eq(before.iter().copied());
        match origin {
            Origin::Push => self.stats.push_entries_received += 1,
            Origin::Reply(sent) => {
                self.stats.entries_received += 1;
                if e.dots.is_empty() {
                    self.stats.entries_full += 1;
                } else if changed {
                    self.stats.entries_changed += 1;
                } else if new_dots > 0 {
                    self.stats.entries_causal_only += 1;
                } else if sent.is_some_and(|c| e.dots.iter().all(|&d| c.contains(d))) {
                    self.stats.entries_redundant += 1;
                } else {
                    self.stats.entries_raced += 1;
                }
            }
        }
        self.store_stripped(e.key, local);
    }
}
