//! Statistics: the identities between the broker's totals and its subscriptions', counters that
//! outlive a subscription, latency, and a group's counts.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::driver::*;
use crate::broker::*;
use crate::work_queue::RetryPolicy;

/// Sums a counter over the live subscriptions and the retired ones taken with `take_retired`.
fn sum(stats: &BusStats, retired: &[SubscriptionStats], f: fn(&SubscriptionStats) -> u64) -> u64 {
    stats.per_subscription.iter().map(f).sum::<u64>() + retired.iter().map(f).sum::<u64>()
}

#[test]
fn totals_are_the_sums_of_the_subscriptions_through_every_kind_of_outcome() {
    let mut d = Driver::new();
    let drops = d.sub_with("t.*", bounded(1, Overflow::DropNewest));
    let gone = d.sub("t.a");
    let slow = d.sub_with(
        "t.>",
        SubscribeOptions {
            timeout: Some(5 * MS),
            ..SubscribeOptions::default()
        },
    );
    d.publish("t.a", 1);
    d.publish("t.a", 2);
    d.publish("t.a", 3); // dropped by `drops`
    let mut m = Outgoing::new(4);
    m.ttl = Some(MS);
    d.send("t.b", m, PublishMode::Now).unwrap(); // expires while `slow` is busy
    d.pump();
    d.fail(1, "boom"); // fails for `drops`
    d.unsub(gone); // cancels 2 and 3 waiting for `gone`
    d.advance(10); // `slow`'s 1 times out; its 2 starts
    d.run_ok();
    let mut retired = Vec::new();
    while let Some((_, s)) = d.b.take_retired() {
        retired.push(s);
    }
    let st = d.stats();
    assert_eq!(st.delivered, sum(&st, &retired, |s| s.delivered));
    assert_eq!(st.dropped, sum(&st, &retired, |s| s.dropped));
    assert_eq!(st.expired, sum(&st, &retired, |s| s.expired));
    assert_eq!(st.failed, sum(&st, &retired, |s| s.failed));
    assert_eq!(st.cancelled, sum(&st, &retired, |s| s.cancelled));
    // And each outcome happened, so the sums above were not all zero.
    assert_eq!(
        d.sub_stats(drops).dropped,
        2,
        "3 and 4 found the queue full"
    );
    assert_eq!(d.sub_stats(drops).failed, 1);
    assert_eq!(retired[0].cancelled, 2);
    let slow = d.sub_stats(slow);
    assert_eq!((slow.failed, slow.expired, slow.delivered), (1, 1, 3));
    assert_eq!(st.published, 4);
    assert_eq!((st.queued, st.in_flight), (0, 0));
}

#[test]
fn counts_that_arrive_after_a_subscription_left_reach_its_final_statistics() {
    let mut d = Driver::new();
    let s = d.sub("t");
    d.publish("t", 1);
    d.pump();
    d.unsub(s);
    d.ok(1);
    d.b.record_cancelled(s, 2);
    d.b.record_direct(s, 3, 1);
    let (_, st) = d.b.take_retired().unwrap();
    assert_eq!((st.delivered, st.failed, st.cancelled), (4, 1, 2));
    let bus = d.stats();
    assert_eq!((bus.delivered, bus.failed, bus.cancelled), (4, 1, 2));
}

#[test]
fn latency_is_publish_to_start_on_the_manual_clock() {
    let mut d = Driver::new();
    let s = d.sub("t");
    d.publish("t", 1);
    d.advance(20);
    d.ok(1);
    let l = d.sub_stats(s).latency;
    assert_eq!(l.count, 1);
    // The histogram's buckets are within 1/64 of the value.
    assert!(
        (20.0..=20.0 * (1.0 + 1.0 / 64.0)).contains(&l.p50_ms),
        "{l:?}"
    );
    let direct = d.sub("d");
    d.b.record_direct(direct, 3, 0);
    let l = d.sub_stats(direct).latency;
    assert_eq!(
        (l.count, l.p99_ms),
        (3, 0.0),
        "direct deliveries start at once"
    );
    assert_eq!(d.stats().latency.count, 4);
}

#[test]
fn a_group_counts_published_done_retried_dead_and_depth() {
    let mut d = Driver::new();
    let m = d.member(
        "jobs",
        "workers",
        SubscribeOptions {
            group: Some(GroupOptions {
                name: "workers".into(),
                retry: Some(RetryPolicy {
                    max_attempts: 2,
                    backoff_initial: 10 * MS,
                    backoff_max: 10 * MS,
                }),
            }),
            ..SubscribeOptions::default()
        },
    );
    for p in 1..=3 {
        d.publish("jobs", p);
    }
    let g = |d: &Driver| d.stats().groups[0].clone();
    assert_eq!((g(&d).published, g(&d).depth, g(&d).in_flight), (3, 2, 1));
    assert_eq!(d.stats().queued, 2, "the bus counts the group's depth");
    d.pump();
    d.fail(1, "boom");
    assert_eq!((g(&d).retried, g(&d).retrying), (1, 1));
    d.pump();
    d.ok(2);
    d.pump();
    d.ok(3);
    d.advance_to_deadline();
    d.fail(1, "boom");
    let g = g(&d);
    assert_eq!(
        (g.done, g.dead, g.depth, g.in_flight, g.members),
        (2, 1, 0, 0, 1)
    );
    assert_eq!(g.name, "workers");
    assert_eq!(g.pattern, "jobs");
    let member = d.sub_stats(m);
    assert_eq!(member.group.as_deref(), Some("workers"));
    assert_eq!(
        (member.delivered, member.failed),
        (4, 1),
        "two tries of 1, then 2 and 3"
    );
}
