//! Publishing: admission, overflow policies, dedupe, TTL, delay (`not_before`), batches.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::driver::*;
use crate::broker::*;

fn ttl(payload: u32, ms: u64) -> Outgoing<u32> {
    let mut m = Outgoing::new(payload);
    m.ttl = Some(ms * MS);
    m
}

fn at(payload: u32, ms: u64) -> Outgoing<u32> {
    let mut m = Outgoing::new(payload);
    m.not_before = Some(ms * MS);
    m
}

#[test]
fn fan_out_reaches_every_matching_subscription_once() {
    let mut d = Driver::new();
    let a = d.sub("a.*");
    let b = d.sub("a.b");
    d.sub("c");
    assert_eq!(d.publish("a.b", 1), Published::Accepted { matched: 2 });
    let started = d.pump();
    let got: Vec<(SubId, Vec<u32>)> = started
        .iter()
        .map(|s| (s.sub, s.payloads.clone()))
        .collect();
    assert_eq!(got, vec![(a, vec![1]), (b, vec![1])]);
    assert_eq!(d.stats().published, 1);
}

#[test]
fn drop_oldest_keeps_the_newest_messages_and_counts_the_drop() {
    let mut d = Driver::new();
    let s = d.sub_with("t", bounded(2, Overflow::DropOldest));
    for p in 1..=4 {
        d.publish("t", p);
    }
    // 1 took the free slot; 2 and 3 waited; 4 pushed 2 out.
    assert_eq!(d.sub_stats(s).dropped, 1);
    assert_eq!(d.run_ok(), vec![1, 3, 4]);
    assert_eq!(d.stats().dropped, 1);
}

#[test]
fn drop_newest_keeps_the_oldest_messages_and_counts_the_drop() {
    let mut d = Driver::new();
    let s = d.sub_with("t", bounded(2, Overflow::DropNewest));
    for p in 1..=4 {
        assert!(matches!(d.publish("t", p), Published::Accepted { .. }));
    }
    assert_eq!(d.sub_stats(s).dropped, 1);
    assert_eq!(d.run_ok(), vec![1, 2, 3]);
}

#[test]
fn reject_refuses_the_publish_and_enqueues_it_nowhere() {
    let mut d = Driver::new();
    let full = d.sub_with("t", bounded(1, Overflow::Reject));
    let other = d.sub("t");
    d.publish("t", 1);
    d.publish("t", 2);
    let err = d.send("t", Outgoing::new(3), PublishMode::Now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::QueueFull);
    assert!(err.to_string().contains("maxQueue 1"), "{err}");
    assert_eq!(
        d.stats().published,
        2,
        "the refused message is not published"
    );
    assert_eq!(d.sub_stats(full).dropped, 0);
    // Neither subscription got 3: refusal is checked before anything is enqueued.
    let mut got = d.run_ok();
    got.sort_unstable();
    assert_eq!(got, vec![1, 1, 2, 2]);
    assert_eq!(d.sub_stats(other).delivered, 2);
}

#[test]
fn wait_refuses_a_synchronous_publish_and_asks_an_asynchronous_one_to_wait_for_room() {
    let mut d = Driver::new();
    d.sub_with("t", bounded(1, Overflow::Wait));
    d.publish("t", 1);
    d.publish("t", 2);
    let err = d.send("t", Outgoing::new(3), PublishMode::Now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::QueueFull);
    assert!(err.to_string().contains("publishAsync"), "{err}");
    let out = d.send("t", Outgoing::new(3), PublishMode::Wait).unwrap();
    assert_eq!(out, Published::MustWait);
    assert_eq!(
        d.stats().published,
        2,
        "a waiting message is not published yet"
    );
    d.pump();
    d.take_events();
    d.ok(1);
    // 2 moved from the queue into the slot: room, and the waiting publisher hears of it.
    assert_eq!(d.take_events(), vec![Event::Room]);
    let out = d.send("t", Outgoing::new(3), PublishMode::Wait).unwrap();
    assert_eq!(out, Published::Accepted { matched: 1 });
}

#[test]
fn room_is_not_reported_when_nobody_waits() {
    let mut d = Driver::new();
    d.sub_with("t", bounded(1, Overflow::Wait));
    d.publish("t", 1);
    d.publish("t", 2);
    d.pump();
    d.ok(1);
    assert!(!d.take_events().contains(&Event::Room));
}

#[test]
fn a_seen_id_is_a_counted_duplicate_until_it_leaves_the_window() {
    let mut d = Driver::with(BrokerConfig {
        dedupe: Some(DedupeWindow {
            max_ids: 100,
            max_age: Some(1_000 * MS),
        }),
        ..BrokerConfig::default()
    });
    d.sub("t");
    let first = d.send("t", Driver::with_id(1, "x"), PublishMode::Now);
    assert_eq!(first.unwrap(), Published::Accepted { matched: 1 });
    let again = d.send("t", Driver::with_id(2, "x"), PublishMode::Now);
    assert_eq!(again.unwrap(), Published::Duplicate);
    let other = d.send("t", Driver::with_id(3, "y"), PublishMode::Now);
    assert_eq!(other.unwrap(), Published::Accepted { matched: 1 });
    assert_eq!(d.stats().duplicates, 1);
    d.advance(1_001);
    let later = d.send("t", Driver::with_id(4, "x"), PublishMode::Now);
    assert_eq!(
        later.unwrap(),
        Published::Accepted { matched: 1 },
        "aged out"
    );
    assert_eq!(d.run_ok(), vec![1, 3, 4]);
}

#[test]
fn a_refused_publish_does_not_spend_its_id() {
    let mut d = Driver::with(BrokerConfig {
        dedupe: Some(DedupeWindow {
            max_ids: 100,
            max_age: None,
        }),
        ..BrokerConfig::default()
    });
    d.sub_with("t", bounded(1, Overflow::Reject));
    d.publish("t", 1);
    d.publish("t", 2);
    let err = d.send("t", Driver::with_id(3, "x"), PublishMode::Now);
    assert_eq!(err.unwrap_err().code(), ErrorCode::QueueFull);
    d.run_ok();
    let retry = d.send("t", Driver::with_id(3, "x"), PublishMode::Now);
    assert_eq!(retry.unwrap(), Published::Accepted { matched: 1 });
    assert_eq!(d.stats().duplicates, 0);
}

#[test]
fn a_message_whose_ttl_ended_while_it_waited_is_skipped_and_counted_expired() {
    let mut d = Driver::new();
    let s = d.sub("t");
    d.publish("t", 1);
    d.send("t", ttl(2, 10), PublishMode::Now).unwrap();
    d.send("t", ttl(3, 100), PublishMode::Now).unwrap();
    d.pump();
    d.advance(50);
    d.ok(1);
    assert_eq!(d.pump_payloads(), vec![3]);
    let st = d.sub_stats(s);
    assert_eq!((st.delivered, st.expired), (2, 1));
    assert_eq!(d.stats().expired, 1);
}

#[test]
fn a_ttl_that_ends_exactly_now_has_ended() {
    let mut d = Driver::new();
    d.sub("t");
    d.publish("t", 1);
    d.send("t", ttl(2, 10), PublishMode::Now).unwrap();
    d.pump();
    d.advance(10);
    d.ok(1);
    assert!(d.pump().is_empty());
    assert_eq!(d.stats().expired, 1);
}

#[test]
fn a_delayed_message_is_routed_when_its_time_comes() {
    let mut d = Driver::new();
    d.sub("t");
    assert_eq!(
        d.send("t", at(1, 100), PublishMode::Now).unwrap(),
        Published::Accepted { matched: 1 }
    );
    assert_eq!(d.stats().delayed, 1);
    assert_eq!(d.b.next_deadline(), Some(100 * MS));
    assert!(d.advance(99).is_empty());
    // Subscribed after the publish, before its time: it is routed then, so this one gets it too.
    let late = d.sub("t");
    let started = d.advance(1);
    assert_eq!(started.len(), 2);
    assert!(started.iter().any(|s| s.sub == late));
    let st = d.stats();
    assert_eq!((st.delayed, st.published), (0, 1));
}

#[test]
fn a_delay_in_the_past_publishes_at_once() {
    let mut d = Driver::new();
    d.sub("t");
    d.now = 50 * MS;
    d.send("t", at(1, 10), PublishMode::Now).unwrap();
    assert_eq!(d.pump_payloads(), vec![1]);
    assert_eq!(d.stats().delayed, 0);
}

#[test]
fn a_delayed_id_is_a_duplicate_before_its_time() {
    let mut d = Driver::with(BrokerConfig {
        dedupe: Some(DedupeWindow {
            max_ids: 10,
            max_age: None,
        }),
        ..BrokerConfig::default()
    });
    d.sub("t");
    let mut m = at(1, 100);
    m.id = Some("x".into());
    d.send("t", m, PublishMode::Now).unwrap();
    let again = d.send("t", Driver::with_id(2, "x"), PublishMode::Now);
    assert_eq!(again.unwrap(), Published::Duplicate);
}

#[test]
fn delayed_messages_are_bounded_by_the_bus_max_queue() {
    let mut d = Driver::with(BrokerConfig {
        max_queue: 2,
        ..BrokerConfig::default()
    });
    d.sub("t");
    d.send("t", at(1, 10), PublishMode::Now).unwrap();
    d.send("t", at(2, 10), PublishMode::Now).unwrap();
    let err = d.send("t", at(3, 10), PublishMode::Now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::QueueFull);
    assert_eq!(d.stats().published, 2);
}

#[test]
fn a_batch_publish_is_all_or_nothing_under_reject() {
    let mut d = Driver::new();
    d.sub_with("t", bounded(2, Overflow::Reject));
    let other = d.sub("t");
    let h = d.b.resolve("t").unwrap();
    let msgs = (1..=4).map(Outgoing::new).collect();
    // One slot plus two waiting: three fit, four do not.
    let err = d.b.publish_batch(h, msgs, 0, PublishMode::Now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::QueueFull);
    assert!(d.pump().is_empty(), "nobody got any of them");
    assert_eq!(d.sub_stats(other).delivered, 0);
    assert_eq!(d.stats().published, 0);
    assert!(d.b.check_room(h, 3, 0).is_ok());
    assert_eq!(
        d.b.check_room(h, 4, 0).unwrap_err().code(),
        ErrorCode::QueueFull
    );
    let msgs = (1..=3).map(Outgoing::new).collect();
    assert_eq!(
        d.b.publish_batch(h, msgs, 0, PublishMode::Now).unwrap(),
        Some(3)
    );
}

#[test]
fn a_message_larger_than_a_batch_may_hold_is_refused() {
    let mut d = Driver::new();
    d.sub_with(
        "t",
        SubscribeOptions {
            batch: Some(BatchPolicy {
                max_bytes: 10,
                ..BatchPolicy::default()
            }),
            ..SubscribeOptions::default()
        },
    );
    let mut m = Outgoing::new(1);
    m.size = 11;
    let err = d.send("t", m, PublishMode::Now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::MessageTooLarge);
    assert!(err.to_string().contains("10-byte"), "{err}");
    let mut m = Outgoing::new(2);
    m.size = 10;
    assert!(d.send("t", m, PublishMode::Now).is_ok());
}

#[test]
fn a_closed_broker_refuses_publishes() {
    let mut d = Driver::new();
    d.sub("t");
    let h = d.b.resolve("t").unwrap();
    d.close();
    for err in [
        d.b.publish("t", Outgoing::new(1), 0, PublishMode::Now)
            .unwrap_err(),
        d.b.publish_to(h, Outgoing::new(1), 0, PublishMode::Now)
            .unwrap_err(),
        d.b.publish_batch(h, vec![Outgoing::new(1)], 0, PublishMode::Now)
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), ErrorCode::Closed);
    }
    assert_eq!(d.stats().published, 0);
}

#[test]
fn check_id_records_a_first_sighting_and_counts_a_repeat() {
    let mut d = Driver::with(BrokerConfig {
        dedupe: Some(DedupeWindow {
            max_ids: 2,
            max_age: None,
        }),
        ..BrokerConfig::default()
    });
    assert!(d.b.check_id("a", 0));
    assert!(!d.b.check_id("a", 0));
    assert!(d.b.check_id("b", 0));
    assert!(d.b.check_id("c", 0), "the window holds two ids: `a` leaves");
    assert!(d.b.check_id("a", 0));
    assert_eq!(d.stats().duplicates, 1);
    let mut off = Driver::new();
    assert!(
        off.b.check_id("a", 0) && off.b.check_id("a", 0),
        "dedupe off"
    );
}
