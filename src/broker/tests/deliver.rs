//! Delivering: busy and idle, order, per-key lanes, concurrency, the direct path, failures,
//! timeouts, batches, and what an unsubscribe does to deliveries.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::driver::*;
use crate::broker::*;

fn batch(max_size: usize, max_wait_ms: u64, max_attempts: u32) -> SubscribeOptions {
    SubscribeOptions {
        batch: Some(BatchPolicy {
            max_size,
            max_wait: max_wait_ms * MS,
            max_attempts,
            backoff_initial: 10 * MS,
            backoff_max: 10 * MS,
            ..BatchPolicy::default()
        }),
        ..SubscribeOptions::default()
    }
}

#[test]
fn one_at_a_time_in_publish_order_by_default() {
    let mut d = Driver::new();
    let s = d.sub("t");
    for p in 1..=3 {
        d.publish("t", p);
    }
    assert_eq!(d.pump_payloads(), vec![1], "busy after the first");
    assert!(!d.b.is_sub_idle(s));
    assert!(d.pump().is_empty(), "nothing more starts while 1 runs");
    d.ok(1);
    assert_eq!(d.pump_payloads(), vec![2]);
    d.ok(2);
    assert_eq!(d.pump_payloads(), vec![3]);
    d.ok(3);
    assert!(d.b.is_sub_idle(s));
    assert_eq!(d.sub_stats(s).delivered, 3);
}

#[test]
fn concurrency_bounds_the_deliveries_running_at_once() {
    let mut d = Driver::new();
    let s = d.sub_with("t", concurrent(3));
    for p in 1..=5 {
        d.publish("t", p);
    }
    assert_eq!(d.pump_payloads(), vec![1, 2, 3]);
    assert_eq!(d.sub_stats(s).in_flight, 3);
    assert_eq!(d.sub_stats(s).queued, 2);
    d.ok(2);
    assert_eq!(d.pump_payloads(), vec![4]);
    d.ok(1);
    d.ok(3);
    assert_eq!(d.pump_payloads(), vec![5]);
}

#[test]
fn messages_of_one_key_never_overlap_and_keep_their_order() {
    let mut d = Driver::new();
    d.sub_with("t", concurrent(4));
    for (p, k) in [(1, "a"), (2, "a"), (3, "b"), (4, "a"), (5, "c")] {
        d.send("t", Driver::keyed(p, k), PublishMode::Now).unwrap();
    }
    // 2 and 4 wait behind 1; the other keys go ahead.
    assert_eq!(d.pump_payloads(), vec![1, 3, 5]);
    d.ok(3);
    assert!(d.pump().is_empty(), "b's slot frees no `a` message");
    d.ok(1);
    assert_eq!(d.pump_payloads(), vec![2]);
    d.ok(2);
    assert_eq!(d.pump_payloads(), vec![4]);
}

#[test]
fn a_failed_delivery_is_counted_and_does_not_stop_the_next() {
    let mut d = Driver::new();
    let s = d.sub("t");
    let other = d.sub("t");
    d.publish("t", 1);
    d.publish("t", 2);
    d.pump();
    d.fail(1, "boom");
    let st = d.sub_stats(s);
    assert_eq!((st.delivered, st.failed), (1, 1));
    assert_eq!(d.sub_stats(other).failed, 0);
    assert_eq!(d.stats().failed, 1);
    assert_eq!(d.run_ok(), vec![1, 2, 2]);
}

#[test]
fn a_delivery_past_its_timeout_fails_and_its_late_result_is_ignored() {
    let mut d = Driver::new();
    let s = d.sub_with(
        "t",
        SubscribeOptions {
            timeout: Some(50 * MS),
            ..SubscribeOptions::default()
        },
    );
    d.publish("t", 1);
    d.publish("t", 2);
    let first = d.pump().remove(0);
    assert_eq!(d.b.next_deadline(), Some(50 * MS));
    assert!(d.advance(49).is_empty());
    let started = d.advance(1);
    assert_eq!(started.len(), 1, "the slot is free: 2 starts");
    assert_eq!(started[0].payloads, vec![2]);
    let events = d.take_events();
    assert!(
        events.contains(&Event::TimedOut {
            delivery: first.id,
            sub: s,
            final_attempt: true
        }),
        "{events:?}"
    );
    assert_eq!(
        d.b.timeout_message(s),
        "handler did not settle within 50 ms"
    );
    // The late result of 1 changes nothing.
    d.b.complete(first.id, true, d.now);
    let st = d.sub_stats(s);
    assert_eq!((st.delivered, st.failed, st.in_flight), (2, 1, 1));
}

#[test]
fn the_direct_path_is_offered_only_when_every_subscription_is_idle_and_direct() {
    let mut d = Driver::new();
    let a = d.sub("t");
    let b = d.sub("t");
    let h = d.b.resolve("t").unwrap();
    d.b.set_direct(a, true);
    // `b` is not marked direct: the message goes through the queues.
    let out = d.b.publish_direct(h, Outgoing::new(1), || 0).unwrap();
    assert!(matches!(out, Direct::Queue(_)));
    d.b.set_direct(b, true);
    let out = d.b.publish_direct(h, Outgoing::new(2), || 0).unwrap();
    let Direct::Deliver(subs, msg) = out else {
        panic!("both idle and direct: {out:?}");
    };
    assert_eq!(&*subs, &[a, b]);
    assert_eq!(msg.payload, 2);
    assert_eq!(
        msg.published_at(),
        None,
        "no clock read for a direct delivery"
    );
    d.b.record_direct(a, 1, 0);
    d.b.record_direct(b, 1, 1);
    assert_eq!(d.stats().published, 1);
    assert_eq!(d.stats().delivered, 2);
    assert_eq!(d.stats().failed, 1);
    // A queued message makes `a` busy: no direct path until it ran.
    d.b.publish_to(h, Outgoing::new(3), 0, PublishMode::Now)
        .unwrap();
    assert!(!d.b.is_direct_ready(a, false));
    let out = d.b.publish_direct(h, Outgoing::new(4), || 0).unwrap();
    assert!(matches!(out, Direct::Queue(_)));
    // A delayed message never takes it either.
    while let Some(del) = d.b.next_delivery(0) {
        d.b.complete(del.id, true, 0);
    }
    assert!(d.b.is_direct_ready(a, false) && d.b.is_direct_ready(b, false));
    let mut m = Outgoing::new(5);
    m.not_before = Some(10);
    assert!(matches!(
        d.b.publish_direct(h, m, || 0).unwrap(),
        Direct::Queue(_)
    ));
}

#[test]
fn a_busy_subscription_with_a_free_slot_starts_a_keyless_message_directly() {
    // Driven on the broker itself: the scripted driver's tallies know direct deliveries only
    // as ones that stay synchronous.
    let mut d = Driver::new();
    let a = d.sub_with("t", concurrent(2));
    let b = &mut d.b;
    let h = b.resolve("t").unwrap();
    b.set_direct(a, true);
    // One asynchronous delivery running: one slot of two is free.
    let first = b.begin_external(a, None, 0);
    assert!(b.is_direct_ready(a, false));
    assert!(b.starts_now(h, false).unwrap());
    // A keyed message could be behind a running one of its key: it goes through the queue.
    assert!(!b.is_direct_ready(a, true));
    assert!(!b.starts_now(h, true).unwrap());
    let keyed = b.publish_direct(h, Driver::keyed(1, "k"), || 0).unwrap();
    assert!(matches!(keyed, Direct::Queue(_)));
    let out = b.publish_direct(h, Outgoing::new(2), || 0).unwrap();
    assert!(matches!(out, Direct::Deliver(..)), "{out:?}");
    // Its handler went asynchronous too: both slots taken, the next message waits.
    let second = b.begin_external(a, None, 0);
    assert!(!b.starts_now(h, false).unwrap());
    let out = b.publish_direct(h, Outgoing::new(3), || 0).unwrap();
    assert!(matches!(out, Direct::Queue(_)));
    b.publish_to(h, Outgoing::new(3), 0, PublishMode::Now)
        .unwrap();
    // A slot frees and the queued message takes it: while it waits to be handed to the driver,
    // a new message would overtake it, so nothing starts directly.
    b.complete(first, true, 0);
    assert!(!b.starts_now(h, false).unwrap());
    let next = b.next_delivery(0).expect("3 starts");
    assert!(matches!(&next.items, Items::One(m) if m.payload == 3));
    assert!(!b.starts_now(h, false).unwrap(), "2 and 3 run");
    b.complete(second, true, 0);
    assert!(
        b.starts_now(h, false).unwrap(),
        "one slot free again, nothing waits"
    );
    assert!(!b.starts_now(h, true).unwrap());
    b.complete(next.id, true, 0);
    assert!(b.starts_now(h, true).unwrap(), "idle again");
    // The driver counts the deliveries it made directly (1 and 2).
    b.record_direct(a, 2, 0);
    let st = b.subscription_stats(a).unwrap();
    assert_eq!((st.delivered, st.in_flight, st.queued), (3, 0, 0));
}

#[test]
fn only_plain_subscriptions_can_be_direct() {
    let mut d = Driver::new();
    let batched = d.sub_with("t", batch(2, 10, 1));
    let member = d.member("t", "g", SubscribeOptions::default());
    d.b.set_direct(batched, true);
    d.b.set_direct(member, true);
    assert!(!d.b.is_direct_ready(batched, false));
    assert!(!d.b.is_direct_ready(member, false));
}

#[test]
fn a_direct_duplicate_is_dropped_and_counted() {
    let mut d = Driver::with(BrokerConfig {
        dedupe: Some(DedupeWindow {
            max_ids: 10,
            max_age: None,
        }),
        ..BrokerConfig::default()
    });
    let a = d.sub("t");
    d.b.set_direct(a, true);
    let h = d.b.resolve("t").unwrap();
    let first =
        d.b.publish_direct(h, Driver::with_id(1, "x"), || 0)
            .unwrap();
    assert!(matches!(first, Direct::Deliver(..)));
    let again =
        d.b.publish_direct(h, Driver::with_id(2, "x"), || 0)
            .unwrap();
    assert!(matches!(again, Direct::Duplicate));
    assert_eq!(d.stats().duplicates, 1);
}

#[test]
fn an_external_delivery_holds_the_slot_and_the_key_it_runs_with() {
    let mut d = Driver::new();
    let s = d.sub_with("t", concurrent(2));
    let ext = d.begin_external(s, Some("k"));
    d.send("t", Driver::keyed(1, "k"), PublishMode::Now)
        .unwrap();
    d.send("t", Driver::keyed(2, "j"), PublishMode::Now)
        .unwrap();
    d.send("t", Driver::keyed(3, "i"), PublishMode::Now)
        .unwrap();
    // One slot left, and `k` is taken: 2 starts, 1 and 3 wait.
    assert_eq!(d.pump_payloads(), vec![2]);
    d.complete_external(ext);
    assert_eq!(d.pump_payloads(), vec![1]);
}

#[test]
fn unsubscribing_cancels_what_waits_and_lets_the_running_delivery_finish() {
    let mut d = Driver::with(BrokerConfig {
        track_idle: true,
        ..BrokerConfig::default()
    });
    let s = d.sub("t");
    for p in 1..=3 {
        d.publish("t", p);
    }
    d.pump();
    assert!(d.unsub(s));
    assert!(!d.unsub(s), "once");
    let st = d.sub_stats(s);
    assert_eq!((st.cancelled, st.in_flight), (2, 1));
    d.take_events();
    d.ok(1);
    assert_eq!(d.take_events(), vec![Event::Retired(s)]);
    let (id, st) = d.b.take_retired().unwrap();
    assert_eq!(id, s);
    assert_eq!((st.delivered, st.cancelled, st.in_flight), (1, 2, 0));
    assert!(d.b.subscription_stats(s).is_none(), "gone once retired");
}

#[test]
fn a_ready_delivery_of_a_subscription_gone_since_is_cancelled_not_delivered() {
    let mut d = Driver::new();
    let s = d.sub_with("t", concurrent(2));
    d.publish("t", 1);
    // 1 is ready (handed to the ready list) but not started when the subscription leaves.
    d.unsub(s);
    assert!(d.pump().is_empty());
    let (_, st) = d.b.take_retired().unwrap();
    assert_eq!((st.delivered, st.cancelled), (0, 1));
}

#[test]
fn idle_is_reported_when_the_last_delivery_settles() {
    let mut d = Driver::with(BrokerConfig {
        track_idle: true,
        ..BrokerConfig::default()
    });
    let s = d.sub("t");
    d.publish("t", 1);
    d.publish("t", 2);
    d.pump();
    d.ok(1);
    assert!(
        !d.take_events().contains(&Event::Idle(s)),
        "2 is still to run"
    );
    d.pump();
    d.ok(2);
    assert_eq!(d.take_events(), vec![Event::Idle(s)]);
}

#[test]
fn a_batch_is_delivered_when_full_or_when_its_wait_ends() {
    let mut d = Driver::new();
    let s = d.sub_with("t", batch(3, 10, 1));
    for p in 1..=5 {
        d.publish("t", p);
    }
    let started = d.pump();
    assert_eq!(started.len(), 1);
    assert!(started[0].batch);
    assert_eq!(started[0].payloads, vec![1, 2, 3]);
    d.ok(1);
    assert!(d.pump().is_empty(), "4 and 5 wait for a fuller batch");
    assert!(d.advance(9).is_empty());
    assert_eq!(d.advance(1)[0].payloads, vec![4, 5]);
    d.ok(4);
    assert_eq!(d.sub_stats(s).delivered, 5);
}

#[test]
fn a_failed_batch_is_retried_after_its_backoff_then_reported_as_failed() {
    let mut d = Driver::new();
    let s = d.sub_with("t", batch(2, 10, 2));
    d.publish("t", 1);
    d.publish("t", 2);
    let first = d.pump().remove(0);
    assert_eq!((first.attempt, first.final_attempt), (1, false));
    d.fail(1, "boom");
    assert_eq!(d.sub_stats(s).failed, 0, "it will be retried");
    assert_eq!(d.b.next_deadline(), Some(10 * MS));
    assert!(d.advance(9).is_empty());
    let retry = d.advance(1).remove(0);
    assert_eq!(retry.payloads, vec![1, 2]);
    assert_eq!((retry.attempt, retry.final_attempt), (2, true));
    d.fail(1, "boom");
    let st = d.sub_stats(s);
    assert_eq!((st.delivered, st.failed, st.in_flight), (2, 2, 0));
}

#[test]
fn an_abandoned_delivery_is_cancelled_not_delivered_and_frees_its_slot() {
    let mut d = Driver::new();
    let s = d.sub("t");
    d.publish("t", 1);
    d.publish("t", 2);
    let del = d.b.next_delivery(d.now).unwrap();
    d.b.abandon(del.id, d.now);
    let st = d.sub_stats(s);
    assert_eq!(
        (st.delivered, st.cancelled, st.in_flight),
        (0, 1, 1),
        "2 took the slot"
    );
    assert_eq!(d.pump_payloads(), vec![2]);
}

#[test]
fn an_abandoned_claim_goes_back_to_the_work_queue_without_using_an_attempt() {
    let mut d = Driver::new();
    d.member("jobs", "workers", SubscribeOptions::default());
    d.send("jobs", Driver::with_id(1, "x"), PublishMode::Now)
        .unwrap();
    let del = d.b.next_delivery(d.now).unwrap();
    assert_eq!(del.attempt, 1);
    d.b.abandon(del.id, d.now);
    // Back, and handed out again at once, still as its first attempt.
    let again = d.pump().remove(0);
    assert_eq!((again.payloads[0], again.attempt), (1, 1));
    let st = d.b.status("x", None, d.now).unwrap();
    assert_eq!(st.attempts, 1);
}
