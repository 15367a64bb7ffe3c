//! Deadlines: the next wake-up a driver arms, stale timers, and durations far beyond what a
//! JavaScript timer holds (a driver arms those in steps; the core's deadline stays exact).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::driver::*;
use crate::broker::*;

/// The longest delay a JavaScript timer takes (2^31 − 1 ms).
const JS_TIMER_MAX_MS: u64 = (1 << 31) - 1;

#[test]
fn no_deadline_when_nothing_waits_for_time() {
    let mut d = Driver::new();
    d.sub("t");
    d.publish("t", 1);
    d.pump();
    assert_eq!(d.b.next_deadline(), None, "no timeout configured");
    d.ok(1);
    assert_eq!(d.b.next_deadline(), None);
}

#[test]
fn the_next_deadline_is_the_earliest_live_timer() {
    let mut d = Driver::new();
    d.sub_with(
        "slow",
        SubscribeOptions {
            timeout: Some(80 * MS),
            ..SubscribeOptions::default()
        },
    );
    d.sub_with(
        "fast",
        SubscribeOptions {
            timeout: Some(30 * MS),
            ..SubscribeOptions::default()
        },
    );
    d.publish("slow", 1);
    d.advance(5);
    d.publish("fast", 2);
    d.pump();
    // 1 started when the pump at 5 ms took it: its deadline is 5 + 80 ms.
    assert_eq!(d.b.next_deadline(), Some(35 * MS));
    d.ok(2);
    assert_eq!(
        d.b.next_deadline(),
        Some(85 * MS),
        "a settled delivery's timer is dropped"
    );
    d.ok(1);
    assert_eq!(d.b.next_deadline(), None);
}

#[test]
fn a_batch_sealed_by_size_leaves_no_wait_timer_behind() {
    let mut d = Driver::new();
    d.sub_with(
        "t",
        SubscribeOptions {
            batch: Some(BatchPolicy {
                max_size: 2,
                max_wait: 10 * MS,
                ..BatchPolicy::default()
            }),
            ..SubscribeOptions::default()
        },
    );
    d.publish("t", 1);
    assert_eq!(d.b.next_deadline(), Some(10 * MS));
    d.publish("t", 2);
    assert_eq!(
        d.b.next_deadline(),
        None,
        "the batch is full: nothing to wake for"
    );
}

#[test]
fn timers_fire_at_their_deadline_not_before() {
    let mut d = Driver::new();
    d.sub("t");
    let mut m = Outgoing::new(1);
    m.not_before = Some(10 * MS);
    d.send("t", m, PublishMode::Now).unwrap();
    assert!(d.advance_us(10 * MS - 1).is_empty());
    assert_eq!(d.advance_us(1).len(), 1);
}

#[test]
fn a_deadline_beyond_a_javascript_timer_stays_exact_while_a_driver_steps_towards_it() {
    let mut d = Driver::new();
    d.sub("t");
    // A hundred days away: about four times what one JavaScript timer can wait.
    let due = 100 * 24 * 3_600_000 * MS;
    let mut m = Outgoing::new(1);
    m.not_before = Some(due);
    d.send("t", m, PublishMode::Now).unwrap();
    let mut wakes = 0;
    loop {
        let deadline = d.b.next_deadline().expect("still armed");
        assert_eq!(deadline, due, "stepping never moves the deadline");
        let step = (deadline - d.now).min(JS_TIMER_MAX_MS * MS);
        wakes += 1;
        let started = d.advance_us(step);
        if d.now < due {
            assert!(started.is_empty(), "woken early at {} ms", d.now / MS);
        } else {
            assert_eq!(started.len(), 1);
            break;
        }
    }
    assert_eq!(wakes, 5, "four full steps, then the rest");
    assert_eq!(d.b.next_deadline(), None);
}

#[test]
fn a_timeout_near_the_end_of_time_saturates_instead_of_wrapping() {
    let mut d = Driver::new();
    d.sub_with(
        "t",
        SubscribeOptions {
            timeout: Some(u64::MAX - 1),
            ..SubscribeOptions::default()
        },
    );
    d.now = 1_000 * MS;
    d.publish("t", 1);
    d.pump();
    assert_eq!(d.b.next_deadline(), Some(u64::MAX));
    assert!(d.advance(1).is_empty());
    assert_eq!(d.running_payloads(), vec![1], "not timed out");
}

#[test]
fn firing_timers_with_nothing_due_changes_nothing() {
    let mut d = Driver::new();
    let s = d.sub_with(
        "t",
        SubscribeOptions {
            timeout: Some(10 * MS),
            ..SubscribeOptions::default()
        },
    );
    d.publish("t", 1);
    d.pump();
    d.b.fire_timers(d.now);
    d.b.fire_timers(9 * MS);
    assert_eq!(d.sub_stats(s).failed, 0);
    assert_eq!(d.b.next_deadline(), Some(10 * MS));
}

/// A message with a TTL of `ms`, and a key when given.
fn lasting(payload: u32, ms: u64, key: Option<&str>) -> Outgoing<u32> {
    let mut m = match key {
        Some(k) => Driver::keyed(payload, k),
        None => Outgoing::new(payload),
    };
    m.ttl = Some(ms * MS);
    m
}

#[test]
fn queued_messages_expire_when_their_ttl_ends_while_the_handler_runs() {
    let mut d = Driver::new();
    let s = d.sub("t");
    d.publish("t", 1);
    assert_eq!(d.pump_payloads(), vec![1]);
    for (p, ms) in [(2, 50), (3, 30)] {
        d.send("t", lasting(p, ms, None), PublishMode::Now).unwrap();
    }
    d.publish("t", 4);
    assert_eq!(d.sub_stats(s).queued, 3);
    // The handler of 1 never settles meanwhile: each message leaves when its own TTL ends.
    assert_eq!(d.b.next_deadline(), Some(30 * MS));
    assert_eq!(d.advance_to_deadline(), Some(vec![]));
    let st = d.sub_stats(s);
    assert_eq!((st.queued, st.expired), (2, 1));
    assert_eq!(d.b.next_deadline(), Some(50 * MS));
    d.advance(20);
    let st = d.sub_stats(s);
    assert_eq!((st.queued, st.expired), (1, 2));
    assert_eq!(d.stats().expired, 2);
    assert_eq!(d.b.next_deadline(), None, "nothing left with a TTL");
    d.ok(1);
    assert_eq!(d.pump_payloads(), vec![4]);
    assert!(!d.b.timers_keep_alive(), "an expiry only updates counts");
}

#[test]
fn a_queued_message_that_expires_lets_the_next_of_its_key_go() {
    let mut d = Driver::new();
    let s = d.sub_with("t", concurrent(2));
    d.send("t", Driver::keyed(1, "a"), PublishMode::Now)
        .unwrap();
    d.send("t", Driver::keyed(2, "b"), PublishMode::Now)
        .unwrap();
    assert_eq!(d.pump_payloads(), vec![1, 2]);
    // 3 (a) waits behind 1; 4 (c) is ready, and 5 (c) waits behind it; 6 (a) behind 3.
    d.send("t", lasting(3, 10, Some("a")), PublishMode::Now)
        .unwrap();
    d.send("t", lasting(4, 10, Some("c")), PublishMode::Now)
        .unwrap();
    d.send("t", Driver::keyed(5, "c"), PublishMode::Now)
        .unwrap();
    d.send("t", Driver::keyed(6, "a"), PublishMode::Now)
        .unwrap();
    d.advance(10);
    let st = d.sub_stats(s);
    assert_eq!((st.queued, st.expired), (2, 2));
    // A slot frees: 5 is free to start (its key's ready message expired); 6 still waits for 1.
    d.ok(2);
    assert_eq!(d.pump_payloads(), vec![5]);
    d.ok(1);
    assert_eq!(d.pump_payloads(), vec![6]);
}

#[test]
fn an_expiry_makes_room_for_a_waiting_publisher() {
    let mut d = Driver::new();
    d.sub_with("t", bounded(1, Overflow::Wait));
    d.publish("t", 1);
    d.pump();
    d.send("t", lasting(2, 20, None), PublishMode::Now).unwrap();
    let out = d.send("t", Outgoing::new(3), PublishMode::Wait).unwrap();
    assert_eq!(out, Published::MustWait);
    d.take_events();
    d.advance(20);
    assert_eq!(d.take_events(), vec![Event::Room]);
    let out = d.send("t", Outgoing::new(3), PublishMode::Wait).unwrap();
    assert_eq!(out, Published::Accepted { matched: 1 });
}

#[test]
fn a_watch_outlived_by_its_message_changes_nothing() {
    let mut d = Driver::new();
    let s = d.sub("t");
    d.publish("t", 1);
    d.pump();
    d.send("t", lasting(2, 30, None), PublishMode::Now).unwrap();
    // 2 starts before its TTL ends: the watch armed for it finds nothing to expire.
    d.ok(1);
    assert_eq!(d.pump_payloads(), vec![2]);
    d.send("t", lasting(3, 60, None), PublishMode::Now).unwrap();
    assert_eq!(d.b.next_deadline(), Some(30 * MS), "armed for 2");
    d.advance(30);
    let st = d.sub_stats(s);
    assert_eq!((st.queued, st.expired), (1, 0));
    assert_eq!(d.b.next_deadline(), Some(60 * MS), "armed again for 3");
    d.ok(2);
    assert_eq!(d.pump_payloads(), vec![3]);
    assert_eq!(
        d.b.next_deadline(),
        Some(60 * MS),
        "stale until it comes up"
    );
    d.advance(30);
    assert_eq!(d.b.next_deadline(), None);
    assert_eq!(d.sub_stats(s).expired, 0);
}

#[test]
fn a_publish_that_arms_a_timer_or_readies_work_says_so_one_that_only_queues_does_not() {
    let mut d = Driver::new();
    d.sub("t");
    d.publish("t", 1);
    assert_eq!(d.pump_payloads(), vec![1]);
    // Busy: a message without a TTL only waits in the queue.
    let armed = d.b.armed();
    d.publish("t", 2);
    assert_eq!(d.b.armed(), armed);
    assert!(!d.b.has_ready() && !d.b.has_events());
    // One with a TTL arms its queue's expiry watch (the driver's deadline may move earlier).
    d.send("t", lasting(3, 30, None), PublishMode::Now).unwrap();
    assert_eq!(d.b.armed(), armed + 1);
    assert_eq!(d.b.next_deadline(), Some(30 * MS));
    // A later TTL arms nothing more: the watch already comes first.
    let armed = d.b.armed();
    d.send("t", lasting(4, 60, None), PublishMode::Now).unwrap();
    assert_eq!(d.b.armed(), armed);
    // A settled handler readies the next message.
    d.ok(1);
    assert!(d.b.has_ready());
}
