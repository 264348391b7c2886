//! Lifeguard's nack timing: a ping-req tells its helper how long it may wait, so the
//! nacks for a dead target reach the prober before the prober judges its probe.

use std::time::{Duration, Instant};

use super::{Node, Sent, alive, drain, gossip, next_ping, node, quiet, step, with_members};
use epidemic_core::Machine;

use crate::Message;
use crate::swim::Tick;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ping_req(seq: u32, target: u64, nack_ms: u32) -> Message<u64> {
    Message::PingReq {
        seq,
        target,
        nack_ms,
        updates: vec![],
    }
}

fn nacks_to(sent: &Sent, to: u64, seq: u32) -> usize {
    sent.iter()
        .filter(|(t, m)| *t == to && matches!(m, Message::Nack { seq: q, .. } if *q == seq))
        .count()
}

/// The ping-reqs of the probe now under way: (helper, seq, nack_ms).
fn ping_reqs(sent: &Sent) -> Vec<(u64, u32, u32)> {
    sent.iter()
        .filter_map(|(to, m)| match m {
            Message::PingReq { seq, nack_ms, .. } => Some((*to, *seq, *nack_ms)),
            _ => None,
        })
        .collect()
}

#[test]
fn ping_req_is_relayed_and_nacked_after_the_wait_it_carries() {
    let (mut s, now) = with_members(3, quiet());
    s.handle_message(now, 1, ping_req(40, 2, 400));
    let (sent, _) = drain(&mut s);
    let Message::Ping {
        seq: relay,
        target: 2,
        ..
    } = sent[0].1
    else {
        panic!("{sent:?}")
    };
    assert_eq!(sent[0].0, 2);
    let ack = Message::Ack {
        seq: relay,
        updates: vec![],
    };
    s.handle_message(now, 2, ack);
    let (sent, _) = drain(&mut s);
    assert!(matches!(sent[..], [(1, Message::Ack { seq: 40, .. })]));
    // A second ping-req that gets no answer is nacked exactly 400 ms later, not sooner
    // (the helper's own 500 ms probe timeout plays no part).
    s.handle_message(now, 1, ping_req(41, 3, 400));
    drain(&mut s);
    s.handle_timeout(now + ms(399));
    assert_eq!(nacks_to(&drain(&mut s).0, 1, 41), 0);
    s.handle_timeout(now + ms(400));
    assert_eq!(nacks_to(&drain(&mut s).0, 1, 41), 1);
    assert_eq!(s.relays.len(), 1, "the relay outlives the nack");
    // A late ack is still relayed until one probe interval has passed.
    let relay = s.relays.keys().copied().next().unwrap();
    s.handle_message(
        now + ms(900),
        3,
        Message::Ack {
            seq: relay,
            updates: vec![],
        },
    );
    assert!(matches!(
        drain(&mut s).0[..],
        [(1, Message::Ack { seq: 41, .. })]
    ));
}

#[test]
fn no_nack_when_none_is_asked_and_a_hostile_wait_is_capped() {
    let (mut s, now) = with_members(3, quiet());
    // nack_ms 0: relay only, never a nack.
    s.handle_message(now, 1, ping_req(7, 2, 0));
    drain(&mut s);
    s.handle_timeout(now + ms(1000));
    assert_eq!(nacks_to(&drain(&mut s).0, 1, 7), 0);
    assert!(s.relays.is_empty());
    // A wait of u32::MAX ms is capped at the longest period a requester can have:
    // 1 s × the maximum multiplier 8.
    let t = now + ms(1000);
    s.handle_message(t, 1, ping_req(8, 2, u32::MAX));
    drain(&mut s);
    s.handle_timeout(t + ms(7999));
    assert_eq!(nacks_to(&drain(&mut s).0, 1, 8), 0);
    s.handle_timeout(t + ms(8000));
    assert_eq!(nacks_to(&drain(&mut s).0, 1, 8), 1);
    assert!(s.relays.is_empty(), "the relay ends with the nack");
}

/// Plays a dead target's probe through: `prober` pings, times out, sends ping-reqs; each
/// helper (a real node) receives its ping-req `one_way` later and its nack comes back
/// `one_way` after it is sent. Returns the ping-reqs' nack_ms and the prober's health
/// score after the period.
fn dead_target_probe(prober: &mut Node, one_way: Duration) -> (Vec<u32>, u32) {
    let (t, target, _) = next_ping(prober);
    let (at, sent, _) = step(prober);
    let reqs = ping_reqs(&sent);
    assert_eq!(reqs.len(), 3, "{sent:?}");
    let judged = prober.ticks.get(Tick::Probe).unwrap();
    let mut arrivals: Vec<(Instant, u64, u32)> = Vec::new();
    for &(h, seq, nack_ms) in &reqs {
        let got = at + one_way;
        let mut helper = node(h, quiet());
        helper.start(got);
        gossip(&mut helper, got, 0, (0..=5).map(|m| alive(m, 0)).collect());
        helper.handle_message(got, 0, ping_req(seq, target, nack_ms));
        drain(&mut helper);
        // The target is dead: the helper hears nothing; its nack leaves after nack_ms.
        let fired = got + ms(u64::from(nack_ms));
        helper.handle_timeout(fired - ms(1));
        assert_eq!(nacks_to(&drain(&mut helper).0, 0, seq), 0);
        helper.handle_timeout(fired);
        assert_eq!(nacks_to(&drain(&mut helper).0, 0, seq), 1);
        arrivals.push((fired + one_way, h, seq));
    }
    for (when, h, seq) in arrivals {
        assert!(
            when < judged,
            "nack at {:?} after the period ends",
            when - t
        );
        prober.handle_message(
            when,
            h,
            Message::Nack {
                seq,
                updates: vec![],
            },
        );
        drain(prober);
    }
    let (end, _, _) = step(prober);
    assert_eq!(end, judged);
    (reqs.iter().map(|r| r.2).collect(), prober.health_score())
}

#[test]
fn a_dead_targets_nacks_arrive_before_the_period_ends_and_health_stays_good() {
    // LAN: ping at t, ping-reqs at t + 500 ms giving 80% of the 500 ms left: each helper
    // nacks 400 ms after receiving; with 10 ms each way the nacks land at t + 920 ms, before
    // the period ends at t + 1 s. All three came: the failed probe costs no health.
    let (mut s, _) = with_members(5, quiet());
    let (waits, score) = dead_target_probe(&mut s, ms(10));
    assert_eq!(waits, [400, 400, 400]);
    assert_eq!(score, 0);
    assert_eq!(s.stats().nacks_received, 3);
    // A prober already at multiplier 3 (period 3 s, timeout 1.5 s) gives 80% of 1.5 s.
    let (mut s, _) = with_members(5, quiet());
    s.awareness.apply(2);
    let (waits, score) = dead_target_probe(&mut s, ms(50));
    assert_eq!(waits, [1200, 1200, 1200]);
    assert_eq!(score, 2);
}
