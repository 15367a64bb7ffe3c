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
