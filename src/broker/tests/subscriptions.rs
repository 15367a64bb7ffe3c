//! Subscriptions: what one costs (its parts allocated when used), retiring at unsubscribe,
//! and which cached routes a subscription change reaches.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::broker::*;
use crate::message::Outgoing;

fn broker() -> Broker<u32> {
    Broker::new(BrokerConfig::default()).unwrap()
}

#[test]
fn a_subscription_is_compact() {
    // Its counters, latencies, waiting messages, batch state and key lanes live apart,
    // allocated when used.
    // (336 bytes natively when they were all inline; 80 now.)
    let size = std::mem::size_of::<Sub<u32>>();
    assert!(size <= 96, "a subscription takes {size} bytes");
}

#[test]
fn counters_are_allocated_when_the_first_one_moves() {
    let mut b = broker();
    let id = b.subscribe("a.b", &SubscribeOptions::default()).unwrap();
    let counted = |b: &Broker<u32>| b.subs.get(id.index, id.gen).unwrap().stats.is_some();
    b.record_direct(id, 0, 0);
    b.record_cancelled(id, 0);
    assert!(!counted(&b));
    let quiet = b.subscription_stats(id).unwrap();
    assert_eq!(
        (quiet.pattern.as_str(), quiet.delivered, quiet.latency.count),
        ("a.b", 0, 0)
    );
    b.publish("a.b", Outgoing::new(7), 1_000, PublishMode::Now)
        .unwrap();
    let d = b.next_delivery(1_500).unwrap();
    assert!(counted(&b));
    b.complete(d.id, true, 2_000);
    b.record_direct(id, 2, 1);
    let s = b.subscription_stats(id).unwrap();
    assert_eq!((s.delivered, s.failed, s.latency.count), (3, 1, 3));
}

#[test]
fn a_subscription_change_invalidates_exactly_the_routes_its_pattern_reaches() {
    let mut b = Broker::<u32>::new(BrokerConfig {
        report_invalidated: true,
        ..BrokerConfig::default()
    })
    .unwrap();
    let h: Vec<u32> = ["a.b", "a.c", "x", "a.b.c"]
        .iter()
        .map(|t| b.resolve(t).unwrap().index())
        .collect();
    let changed = |b: &mut Broker<u32>| {
        let mut v = b.take_invalidated();
        v.sort_unstable();
        v
    };
    let literal = b.subscribe("a.b", &SubscribeOptions::default()).unwrap();
    assert_eq!(changed(&mut b), [h[0]]);
    let star = b.subscribe("a.*", &SubscribeOptions::default()).unwrap();
    assert_eq!(changed(&mut b), [h[0], h[1]]);
    b.subscribe("a.>", &SubscribeOptions::default()).unwrap();
    assert_eq!(changed(&mut b), [h[0], h[1], h[3]]);
    b.subscribe("never.resolved", &SubscribeOptions::default())
        .unwrap();
    assert!(changed(&mut b).is_empty());
    // A topic resolved after the trie was last brought up to date is found too.
    let late = b.resolve("a.d").unwrap().index();
    b.subscribe("x", &SubscribeOptions::default()).unwrap();
    assert_eq!(changed(&mut b), [h[2]]);
    assert!(b.unsubscribe(star));
    assert_eq!(changed(&mut b), [h[0], h[1], late]);
    assert!(b.unsubscribe(literal));
    assert_eq!(changed(&mut b), [h[0]]);
}

#[test]
fn a_subscription_that_counted_nothing_retires_quiet_and_counts_after_it_left_still_count() {
    let mut b = broker();
    let id = b.subscribe("q", &SubscribeOptions::default()).unwrap();
    assert!(b.unsubscribe(id));
    let r = b.take_retired_of(id).expect("retired at once");
    assert!(r.is_quiet());
    let s = r.stats();
    assert_eq!(
        (s.id, s.pattern.as_str(), s.group.as_deref()),
        (1, "q", None)
    );
    assert_eq!((s.delivered, s.cancelled, s.latency.count), (0, 0, 0));

    // Left, retired, not yet taken: a driver's late count reaches the retired record.
    let late = b.subscribe("q", &SubscribeOptions::default()).unwrap();
    assert!(b.unsubscribe(late));
    b.record_cancelled(late, 2);
    b.record_direct(late, 3, 1);
    let (id, s) = b.take_retired().unwrap();
    assert_eq!((id, s.cancelled, s.delivered, s.failed), (late, 2, 3, 1));
    // Its direct deliveries have latency zero, as those counted while it was subscribed.
    assert_eq!(s.latency.count, 3);
}

#[test]
fn an_idle_subscription_retires_at_unsubscribe_and_its_statistics_can_be_taken_at_once() {
    let mut b = broker();
    let idle = b.subscribe("a.*", &SubscribeOptions::default()).unwrap();
    let busy = b.subscribe("a.b", &SubscribeOptions::default()).unwrap();
    b.publish("a.b", Outgoing::new(1), 0, PublishMode::Now)
        .unwrap();
    // `idle` takes its message at once; `busy` is left running.
    let first = b.next_delivery(0).unwrap();
    let second = b.next_delivery(0).unwrap();
    let (d_idle, d_busy) = if first.sub == idle {
        (first, second)
    } else {
        (second, first)
    };
    b.complete(d_idle.id, true, 0);
    assert!(b.unsubscribe(idle));
    assert!(b.unsubscribe(busy));
    let r = b.take_retired_of(idle).expect("retired at once");
    assert!(!r.is_quiet());
    let s = r.stats();
    assert_eq!((s.pattern.as_str(), s.delivered), ("a.*", 1));
    assert!(b.take_retired_of(idle).is_none());
    // Its retirement was reported once, and only through `take_retired_of`.
    assert!(
        b.take_retired_of(busy).is_none(),
        "busy still runs a delivery"
    );
    b.complete(d_busy.id, true, 0);
    let mut retired = Vec::new();
    while let Some(e) = b.poll_event() {
        if let Event::Retired(id) = e {
            retired.push(id);
        }
    }
    assert_eq!(retired, vec![busy]);
    assert_eq!(
        b.take_retired().map(|(id, s)| (id, s.delivered)),
        Some((busy, 1))
    );
    assert!(b.take_retired().is_none());
}

#[test]
fn retired_records_are_taken_by_id_from_any_place() {
    // The one taken is often the last retired, sometimes not: both leave the others in order.
    let mut b = broker();
    let ids: Vec<SubId> = ["a", "b", "c", "d"]
        .iter()
        .map(|p| b.subscribe(p, &SubscribeOptions::default()).unwrap())
        .collect();
    for &id in &ids {
        assert!(b.unsubscribe(id));
    }
    let pattern = |r: Option<Retired>| r.map(|r| r.stats().pattern.as_str().to_owned());
    assert_eq!(pattern(b.take_retired_of(ids[1])).as_deref(), Some("b"));
    assert_eq!(pattern(b.take_retired_of(ids[3])).as_deref(), Some("d"));
    assert!(b.take_retired_of(ids[3]).is_none());
    let mut events = Vec::new();
    while let Some(e) = b.poll_event() {
        if let Event::Retired(id) = e {
            events.push(id);
        }
    }
    assert_eq!(events, vec![ids[0], ids[2]]);
    assert_eq!(b.take_retired().map(|(id, _)| id), Some(ids[0]));
    assert_eq!(b.take_retired().map(|(id, _)| id), Some(ids[2]));
    assert!(b.take_retired().is_none());
}
