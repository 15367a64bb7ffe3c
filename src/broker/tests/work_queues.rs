//! Work queues: claims among members, acknowledgement, retries with backoff, the dead-letter
//! shape, priority, delay, per-key order, ack deadlines, status and members coming and going.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::driver::*;
use crate::broker::*;
use crate::message::MAX_PRIOR_ATTEMPTS;
use crate::work_queue::{JobState, RetryPolicy};

fn retry(max_attempts: u32, backoff_ms: u64) -> SubscribeOptions {
    SubscribeOptions {
        group: Some(GroupOptions {
            name: "workers".into(),
            retry: Some(RetryPolicy {
                max_attempts,
                backoff_initial: backoff_ms * MS,
                backoff_max: backoff_ms * MS,
            }),
        }),
        ..SubscribeOptions::default()
    }
}

/// A work queue "workers" on `jobs` whose only member has left.
fn without_members(d: &mut Driver) {
    let w = d.member("jobs", "workers", SubscribeOptions::default());
    assert!(d.unsub(w));
}

fn state(d: &Driver, id: &str) -> Option<(JobState, u32)> {
    d.b.status(id, None, d.now).map(|s| (s.state, s.attempts))
}

#[test]
fn each_message_goes_to_one_member_in_turn_and_plain_subscribers_still_get_all() {
    let mut d = Driver::new();
    let a = d.member("jobs", "workers", SubscribeOptions::default());
    let b = d.member("jobs", "workers", SubscribeOptions::default());
    let plain = d.sub("jobs");
    for p in 1..=4 {
        d.publish("jobs", p);
    }
    let started = d.pump();
    let by = |id: SubId| -> Vec<u32> {
        started
            .iter()
            .filter(|s| s.sub == id)
            .flat_map(|s| s.payloads.clone())
            .collect()
    };
    assert_eq!(by(a), vec![1]);
    assert_eq!(by(b), vec![2]);
    assert_eq!(by(plain), vec![1]);
    let mut all = d.run_ok();
    all.sort_unstable();
    assert_eq!(
        all,
        vec![1, 1, 2, 2, 3, 3, 4, 4],
        "each once for the group, once plain"
    );
    let g = &d.stats().groups[0];
    assert_eq!((g.published, g.done), (4, 4));
}

#[test]
fn claims_rotate_among_members_with_room() {
    let mut d = Driver::new();
    let a = d.member("jobs", "workers", concurrent(2));
    let b = d.member("jobs", "workers", concurrent(2));
    for p in 1..=4 {
        d.publish("jobs", p);
    }
    let who: Vec<(u32, SubId)> = d.pump().iter().map(|s| (s.payloads[0], s.sub)).collect();
    assert_eq!(who, vec![(1, a), (2, b), (3, a), (4, b)]);
}

#[test]
fn an_acknowledged_message_is_done_and_its_status_says_so() {
    let mut d = Driver::new();
    d.member("jobs", "workers", SubscribeOptions::default());
    d.send("jobs", Driver::with_id(1, "a"), PublishMode::Now)
        .unwrap();
    d.send("jobs", Driver::with_id(2, "b"), PublishMode::Now)
        .unwrap();
    assert_eq!(state(&d, "a"), Some((JobState::InFlight, 1)));
    assert_eq!(state(&d, "b"), Some((JobState::Pending, 0)));
    d.pump();
    d.ok(1);
    assert_eq!(state(&d, "a"), Some((JobState::Done, 1)));
    let st = d.b.status("a", Some("workers"), d.now).unwrap();
    assert_eq!(st.group.as_deref(), Some("workers"));
    assert_eq!(d.b.status("a", Some("others"), d.now), None);
    assert_eq!(state(&d, "nope"), None);
}

#[test]
fn a_failed_message_is_retried_after_a_jittered_backoff_then_buried_as_one_letter() {
    let mut d = Driver::new();
    let m = d.member("jobs", "workers", retry(2, 100));
    d.send("jobs", Driver::with_id(7, "job-7"), PublishMode::Now)
        .unwrap();
    let first = d.pump().remove(0);
    assert_eq!((first.attempt, first.final_attempt), (1, false));
    d.fail(7, "boom");
    assert_eq!(state(&d, "job-7"), Some((JobState::Failed, 1)));
    let due = d.b.next_deadline().unwrap();
    assert!(
        (50 * MS..=100 * MS).contains(&due),
        "within [base/2, base]: {due}"
    );
    d.now = due - 1;
    assert!(d.pump().is_empty());
    let second = d.advance_us(1).remove(0);
    assert_eq!((second.attempt, second.final_attempt), (2, true));
    d.take_events();
    d.fail(7, "still boom");
    assert_eq!(d.take_events(), vec![Event::Dead]);
    let (letter, unreported) = d.b.take_dead().unwrap();
    assert_eq!(
        unreported, None,
        "the final delivery reports its own failure"
    );
    assert_eq!(&*letter.group, "workers");
    assert_eq!(&*letter.topic, "jobs");
    assert_eq!(letter.attempts, 2);
    assert_eq!(letter.error.code, ErrorCode::HandlerFailed);
    assert_eq!(&*letter.error.message, "still boom");
    assert_eq!(letter.message.payload, 7);
    assert_eq!(letter.message.id(), Some("job-7"));
    assert!(d.b.take_dead().is_none(), "one letter");
    assert_eq!(state(&d, "job-7"), Some((JobState::Dead, 2)));
    assert_eq!(
        d.sub_stats(m).failed,
        1,
        "a death is one failure, not one per try"
    );
}

#[test]
fn a_dead_letter_is_published_on_the_dead_topic_of_its_group() {
    let mut d = Driver::new();
    d.member("jobs", "workers", retry(1, 10));
    let watcher = d.sub("$dead.workers");
    let wildcard = d.sub(">");
    d.publish("jobs", 1);
    d.pump();
    d.fail(1, "boom");
    let published = d.stats().published;
    d.publish_next_dead(99);
    assert_eq!(d.stats().published, published + 1);
    let started = d.pump();
    assert_eq!(started.len(), 1, "`>` does not reach `$` topics");
    assert_eq!(started[0].sub, watcher);
    assert_eq!(started[0].payloads, vec![99]);
    assert_eq!(d.sub_stats(wildcard).delivered, 1, "only `jobs`");
}

#[test]
fn a_missed_ack_deadline_redelivers_and_a_last_one_buries_with_the_timeout_error() {
    let mut d = Driver::new();
    let m = d.member(
        "jobs",
        "workers",
        SubscribeOptions {
            timeout: Some(50 * MS),
            ..retry(2, 10)
        },
    );
    d.publish("jobs", 1);
    d.pump();
    assert!(
        d.advance(50).is_empty(),
        "timed out; the retry waits its backoff"
    );
    assert!(matches!(
        d.take_events()[..],
        [Event::TimedOut {
            final_attempt: false,
            ..
        }]
    ));
    let again = d.advance_to_deadline().unwrap();
    assert_eq!(again[0].attempt, 2);
    d.advance(50);
    let events = d.take_events();
    assert!(events.contains(&Event::Dead), "{events:?}");
    assert_eq!(d.b.timeout_message(m), "not acknowledged within 50 ms");
    let (letter, _) = d.b.take_dead().unwrap();
    assert_eq!(letter.error.code, ErrorCode::HandlerTimeout);
    assert_eq!(&*letter.error.message, "not acknowledged within 50 ms");
}

#[test]
fn higher_priority_is_claimed_first_then_publish_order() {
    let mut d = Driver::new();
    d.member("jobs", "workers", SubscribeOptions::default());
    d.publish("jobs", 1); // claimed at once
    for (p, prio) in [(2, 0), (3, 5), (4, 1), (5, 5)] {
        let mut m = Outgoing::new(p);
        m.priority = prio;
        d.send("jobs", m, PublishMode::Now).unwrap();
    }
    assert_eq!(d.run_ok(), vec![1, 3, 5, 4, 2]);
}

#[test]
fn messages_of_one_key_are_claimed_one_at_a_time_across_members() {
    let mut d = Driver::new();
    d.member("jobs", "workers", concurrent(2));
    d.member("jobs", "workers", concurrent(2));
    for (p, k) in [(1, "a"), (2, "a"), (3, "b")] {
        d.send("jobs", Driver::keyed(p, k), PublishMode::Now)
            .unwrap();
    }
    assert_eq!(d.pump_payloads(), vec![1, 3]);
    d.ok(1);
    assert_eq!(d.pump_payloads(), vec![2]);
}

#[test]
fn a_key_waits_for_its_failed_message_to_be_retried() {
    let mut d = Driver::new();
    d.member(
        "jobs",
        "workers",
        SubscribeOptions {
            concurrency: 2,
            ..retry(3, 10)
        },
    );
    d.send("jobs", Driver::keyed(1, "a"), PublishMode::Now)
        .unwrap();
    d.send("jobs", Driver::keyed(2, "a"), PublishMode::Now)
        .unwrap();
    d.pump();
    d.fail(1, "boom");
    assert!(d.pump().is_empty(), "2 stays behind 1's retry");
    let retried = d.advance_to_deadline().unwrap();
    assert_eq!(retried[0].payloads, vec![1]);
    d.ok(1);
    assert_eq!(d.pump_payloads(), vec![2]);
}

#[test]
fn a_delayed_message_joins_the_queue_when_its_time_comes() {
    let mut d = Driver::new();
    d.member("jobs", "workers", SubscribeOptions::default());
    let mut m = Driver::with_id(1, "later");
    m.not_before = Some(30 * MS);
    d.send("jobs", m, PublishMode::Now).unwrap();
    assert_eq!(state(&d, "later"), Some((JobState::Delayed, 0)));
    assert!(d.pump().is_empty());
    assert_eq!(d.advance(30)[0].payloads, vec![1]);
    assert_eq!(state(&d, "later"), Some((JobState::InFlight, 1)));
}

#[test]
fn messages_wait_for_a_member_and_go_to_the_next_one_that_joins() {
    let mut d = Driver::new();
    let first = d.member("jobs", "workers", SubscribeOptions::default());
    d.unsub(first);
    d.publish("jobs", 1);
    d.publish("jobs", 2);
    assert!(d.pump().is_empty());
    assert_eq!(d.stats().groups[0].depth, 2);
    let next = d.member("jobs", "workers", SubscribeOptions::default());
    let started = d.pump();
    assert_eq!(started[0].sub, next);
    assert_eq!(d.run_ok(), vec![1, 2]);
}

#[test]
fn a_claim_of_a_member_gone_before_it_started_returns_without_using_an_attempt() {
    let mut d = Driver::new();
    let a = d.member("jobs", "workers", SubscribeOptions::default());
    d.send("jobs", Driver::with_id(1, "x"), PublishMode::Now)
        .unwrap();
    // Claimed by `a` (ready), then `a` leaves before the driver starts it.
    d.unsub(a);
    assert!(d.pump().is_empty());
    assert_eq!(state(&d, "x"), Some((JobState::Pending, 0)));
    d.member("jobs", "workers", SubscribeOptions::default());
    let s = d.pump().remove(0);
    assert_eq!(s.attempt, 1);
}

#[test]
fn members_must_agree_on_the_group_settings() {
    let mut d = Driver::new();
    d.member("jobs", "workers", retry(3, 10));
    let err = d.try_sub("jobs", retry(4, 10)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidOption);
    assert!(err.to_string().contains("maxAttempts 3"), "{err}");
    let err = d
        .try_sub(
            "jobs",
            SubscribeOptions {
                max_queue: Some(5),
                ..retry(3, 10)
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("maxQueue"), "{err}");
    // The same name on another pattern is another work queue, with its own settings.
    assert!(d.try_sub("jobs.>", retry(4, 10)).is_ok());
    assert_eq!(d.stats().groups.len(), 2);
}

#[test]
fn a_group_name_must_work_as_a_topic_and_a_queue_must_hold_a_message() {
    let mut d = Driver::new();
    for bad in ["$sys", "a..b", "*"] {
        let err = d
            .try_sub(
                "jobs",
                SubscribeOptions {
                    group: Some(GroupOptions {
                        name: bad.into(),
                        retry: None,
                    }),
                    ..SubscribeOptions::default()
                },
            )
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidOption, "{bad}");
    }
    let err = d
        .try_sub(
            "jobs",
            SubscribeOptions {
                max_queue: Some(0),
                ..retry(3, 10)
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidOption);
}

#[test]
fn a_full_reject_queue_refuses_and_drop_oldest_marks_the_dropped_id() {
    let mut d = Driver::new();
    d.member(
        "jobs",
        "workers",
        SubscribeOptions {
            max_queue: Some(1),
            overflow: Some(Overflow::DropOldest),
            ..SubscribeOptions::default()
        },
    );
    d.send("jobs", Driver::with_id(1, "a"), PublishMode::Now)
        .unwrap(); // in flight
    d.send("jobs", Driver::with_id(2, "b"), PublishMode::Now)
        .unwrap(); // waits
    d.send("jobs", Driver::with_id(3, "c"), PublishMode::Now)
        .unwrap(); // pushes b out
    assert_eq!(state(&d, "b").unwrap().0, JobState::Dropped);
    assert_eq!(d.stats().groups[0].dropped, 1);
    assert_eq!(d.run_ok(), vec![1, 3]);

    let mut d = Driver::new();
    d.member(
        "jobs",
        "workers",
        SubscribeOptions {
            max_queue: Some(1),
            overflow: Some(Overflow::Reject),
            ..SubscribeOptions::default()
        },
    );
    d.publish("jobs", 1);
    d.publish("jobs", 2);
    let err = d
        .send("jobs", Outgoing::new(3), PublishMode::Now)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::QueueFull);
}

#[test]
fn a_batch_member_retries_a_failed_message_alone() {
    let mut d = Driver::new();
    d.member(
        "jobs",
        "workers",
        SubscribeOptions {
            batch: Some(BatchPolicy {
                max_size: 2,
                max_wait: 0,
                ..BatchPolicy::default()
            }),
            ..retry(3, 10)
        },
    );
    d.publish("jobs", 1);
    d.publish("jobs", 2);
    d.publish("jobs", 3);
    let first = d.pump();
    assert_eq!(first[0].payloads, vec![1]);
    assert!(first[0].batch);
    d.fail(1, "boom");
    assert_eq!(d.pump()[0].payloads, vec![2, 3], "fresh messages together");
    // 1's retry comes due while the member is busy; a fresh message arrives behind it.
    assert!(d.advance_to_deadline().unwrap().is_empty());
    d.publish("jobs", 4);
    d.ok(2);
    let retried = d.pump();
    assert_eq!(
        retried[0].payloads,
        vec![1],
        "the failed one alone, never with 4"
    );
    assert_eq!(retried[0].attempt, 2);
    d.ok(1);
    assert_eq!(d.pump()[0].payloads, vec![4]);
}

#[test]
fn a_message_whose_ttl_ends_before_a_member_takes_it_expires_and_is_counted() {
    let mut d = Driver::new();
    d.member("jobs", "workers", SubscribeOptions::default());
    d.publish("jobs", 1); // claimed at once
    let mut m = Driver::with_id(2, "short");
    m.ttl = Some(10 * MS);
    d.send("jobs", m, PublishMode::Now).unwrap();
    d.pump();
    d.advance(10);
    d.ok(1);
    assert!(d.pump().is_empty(), "2 expired while it waited");
    assert_eq!(state(&d, "short"), Some((JobState::Expired, 0)));
    let st = d.stats();
    assert_eq!(
        (st.groups[0].expired, st.groups[0].depth, st.expired),
        (1, 0, 1)
    );
    assert!(
        d.b.take_dead().is_none(),
        "never delivered: an expiry, not a death"
    );
}

#[test]
fn without_members_a_waiting_message_expires_when_its_ttl_ends() {
    let mut d = Driver::new();
    without_members(&mut d);
    let ttl = |p: u32, id: &str, ms: u64| {
        let mut m = Driver::with_id(p, id);
        m.ttl = Some(ms * MS);
        m
    };
    d.send("jobs", ttl(1, "late", 30), PublishMode::Now)
        .unwrap();
    d.send("jobs", ttl(2, "soon", 10), PublishMode::Now)
        .unwrap();
    d.send("jobs", Driver::with_id(3, "forever"), PublishMode::Now)
        .unwrap();
    // Nothing claims: the core wakes up for the soonest TTL end, and nothing waits on that.
    assert_eq!(d.b.next_deadline(), Some(d.now + 10 * MS));
    assert!(!d.b.timers_keep_alive(), "an expiry watch alone");
    d.advance(9);
    assert_eq!(state(&d, "soon"), Some((JobState::Pending, 0)));
    d.advance(1);
    assert_eq!(state(&d, "soon"), Some((JobState::Expired, 0)));
    assert_eq!(d.b.next_deadline(), Some(d.now + 20 * MS));
    d.advance(20);
    assert_eq!(state(&d, "late"), Some((JobState::Expired, 0)));
    assert_eq!(d.b.next_deadline(), None, "no TTL left to watch");
    assert_eq!(state(&d, "forever"), Some((JobState::Pending, 0)));
    let st = d.stats();
    assert_eq!(
        (
            st.expired,
            st.queued,
            st.groups[0].expired,
            st.groups[0].depth
        ),
        (2, 1, 2, 1)
    );
    assert!(d.b.take_dead().is_none(), "never delivered: expiries");
    // A member that joins takes what is left.
    d.member("jobs", "workers", SubscribeOptions::default());
    assert_eq!(d.pump_payloads(), vec![3]);
}

#[test]
fn a_member_joining_stops_the_expiry_watch_and_finds_expired_messages_as_it_claims() {
    let mut d = Driver::new();
    without_members(&mut d);
    let mut m = Driver::with_id(1, "a");
    m.ttl = Some(10 * MS);
    d.send("jobs", m, PublishMode::Now).unwrap();
    assert_eq!(d.b.next_deadline(), Some(d.now + 10 * MS));
    let w = d.member("jobs", "workers", concurrent(1));
    assert_eq!(d.pump_payloads(), vec![1], "claimed before its TTL ended");
    assert_eq!(
        d.b.next_deadline(),
        None,
        "the watch is stale once a member joined"
    );
    // The member leaves with the claim running: it settles as usual, nothing expires it.
    d.unsub(w);
    d.advance(20);
    d.ok(1);
    d.pump();
    assert_eq!(state(&d, "a"), Some((JobState::Done, 1)));
    assert_eq!(d.stats().expired, 0);
}

#[test]
fn without_members_a_message_that_failed_before_dies_when_its_ttl_ends() {
    let mut d = Driver::new();
    let w = d.member("jobs", "workers", retry(3, 10));
    let mut m = Driver::with_id(1, "a");
    m.ttl = Some(100 * MS);
    d.send("jobs", m, PublishMode::Now).unwrap();
    assert_eq!(d.pump_payloads(), vec![1]);
    d.fail(1, "boom");
    d.unsub(w);
    assert!(d.b.timers_keep_alive(), "a retry is pending");
    // Its retry comes due with nobody to take it; then its TTL ends.
    d.advance(10);
    assert!(!d.b.timers_keep_alive(), "only the expiry watch is left");
    assert_eq!(state(&d, "a"), Some((JobState::Pending, 1)));
    d.advance(89);
    assert_eq!(state(&d, "a"), Some((JobState::Pending, 1)));
    d.advance(1);
    assert_eq!(state(&d, "a"), Some((JobState::Dead, 1)));
    let (letter, by) = d.publish_next_dead(0);
    assert_eq!(
        (letter.attempts, letter.error.message.as_ref()),
        (1, "boom")
    );
    assert_eq!(by, Some(w), "the failure was that member's");
    let st = d.stats();
    assert_eq!(
        (st.groups[0].dead, st.groups[0].expired, st.expired),
        (1, 0, 0)
    );
}

#[test]
fn without_members_a_message_tried_only_before_it_was_published_dies_as_nobody_s_failure() {
    let mut d = Driver::new();
    let w = d.member("jobs", "workers", retry(3, 10));
    d.unsub(w);
    let mut m = Driver::with_id(1, "a");
    m.ttl = Some(10 * MS);
    m.attempts = 1;
    d.send("jobs", m, PublishMode::Now).unwrap();
    d.advance(10);
    assert_eq!(state(&d, "a"), Some((JobState::Dead, 1)));
    let (letter, by) = d.publish_next_dead(0);
    assert_eq!(
        by, None,
        "no member tried it here, none would have taken it"
    );
    assert_eq!(
        letter.error.message.as_ref(),
        "not acknowledged in the 1 attempt(s) made before it was published"
    );
    let st = d.stats();
    assert_eq!(
        (st.groups[0].dead, st.failed),
        (1, 0),
        "dead, with no handler failure to count"
    );
}

#[test]
fn without_members_an_expired_message_lets_the_next_one_with_its_key_go() {
    let mut d = Driver::new();
    without_members(&mut d);
    let mut first = Driver::keyed(1, "k");
    first.ttl = Some(10 * MS);
    d.send("jobs", first, PublishMode::Now).unwrap();
    let mut parked = Driver::keyed(2, "k");
    parked.ttl = Some(5 * MS);
    d.send("jobs", parked, PublishMode::Now).unwrap();
    d.send("jobs", Driver::keyed(3, "k"), PublishMode::Now)
        .unwrap();
    // The parked one, behind the first, expires first; then the first.
    d.advance(5);
    assert_eq!((d.stats().expired, d.stats().groups[0].depth), (1, 2));
    d.advance(5);
    assert_eq!((d.stats().expired, d.stats().groups[0].depth), (2, 1));
    d.member("jobs", "workers", SubscribeOptions::default());
    assert_eq!(d.pump_payloads(), vec![3], "the key's line moved on");
}

#[test]
fn without_members_many_messages_expire_in_ttl_order() {
    let mut d = Driver::new();
    without_members(&mut d);
    let n = 2_000u32;
    for p in 0..n {
        let mut m = Driver::with_id(p, &format!("m{p}"));
        // TTL ends spread over 1..=100 ms, not in publish order.
        m.ttl = Some(u64::from(1 + (p * 37) % 100) * MS);
        d.send("jobs", m, PublishMode::Now).unwrap();
    }
    for ms in 1..=100u64 {
        d.advance(1);
        let gone = (0..n)
            .filter(|p| u64::from(1 + (p * 37) % 100) <= ms)
            .count() as u64;
        assert_eq!(d.stats().expired, gone, "at {ms} ms");
    }
    assert_eq!(d.stats().groups[0].depth, 0);
    assert_eq!(d.b.next_deadline(), None);
}

#[test]
fn a_publisher_waiting_on_a_full_work_queue_knows_which_and_hears_of_room() {
    let mut d = Driver::new();
    d.member(
        "jobs",
        "workers",
        SubscribeOptions {
            max_queue: Some(1),
            overflow: Some(Overflow::Wait),
            ..SubscribeOptions::default()
        },
    );
    d.publish("jobs", 1); // in flight
    d.publish("jobs", 2); // waits: full
    let out = d.send("jobs", Outgoing::new(3), PublishMode::Wait).unwrap();
    assert_eq!(out, Published::MustWait);
    let h = d.b.resolve("jobs").unwrap();
    assert_eq!(d.b.waiting_on(h).as_deref(), Some("workers"));
    d.pump();
    d.take_events();
    d.ok(1);
    assert!(
        d.take_events().contains(&Event::Room),
        "2 was claimed: room"
    );
    assert_eq!(d.b.waiting_on(h), None);
    let out = d.send("jobs", Outgoing::new(3), PublishMode::Wait).unwrap();
    assert_eq!(out, Published::Accepted { matched: 1 });
}

/// A message published with `attempts` already made elsewhere.
fn attempted(payload: u32, id: &str, key: Option<&str>, attempts: u32) -> Outgoing<u32> {
    let mut m = Driver::with_id(payload, id);
    m.key = key.map(Rc::from);
    m.attempts = attempts;
    m
}

#[test]
fn a_message_published_with_attempts_made_counts_from_there_and_max_attempts_bounds_the_total() {
    let mut d = Driver::new();
    d.member("jobs", "workers", retry(3, 10));
    d.send("jobs", attempted(1, "a", None, 1), PublishMode::Now)
        .unwrap();
    let first = d.pump().remove(0);
    assert_eq!((first.attempt, first.final_attempt), (2, false));
    assert_eq!(state(&d, "a"), Some((JobState::InFlight, 2)));
    assert_eq!(
        d.stats().latency.count,
        1,
        "its first delivery here counts for latency"
    );
    d.fail(1, "boom");
    assert_eq!(state(&d, "a"), Some((JobState::Failed, 2)));
    let third = d.advance_to_deadline().unwrap().remove(0);
    assert_eq!((third.attempt, third.final_attempt), (3, true));
    d.take_events();
    d.fail(1, "boom again");
    assert_eq!(d.take_events(), vec![Event::Dead]);
    let (letter, unreported) = d.b.take_dead().unwrap();
    assert_eq!(
        unreported, None,
        "the final delivery reports its own failure"
    );
    assert_eq!(letter.attempts, 3);
    assert_eq!(&*letter.error.message, "boom again");
    assert_eq!(state(&d, "a"), Some((JobState::Dead, 3)));
    let g = &d.stats().groups[0];
    assert_eq!((g.published, g.retried, g.dead), (1, 1, 1));
}

#[test]
fn a_message_that_arrives_with_every_attempt_made_is_one_dead_letter_without_a_delivery() {
    let mut d = Driver::new();
    let m = d.member("jobs", "workers", retry(3, 10));
    let watcher = d.sub("$dead.workers");
    d.take_events();
    d.send("jobs", attempted(1, "a", None, 3), PublishMode::Now)
        .unwrap();
    d.send("jobs", attempted(2, "b", None, 7), PublishMode::Now)
        .unwrap();
    assert!(
        d.running.is_empty() && d.pump().is_empty(),
        "never delivered"
    );
    assert_eq!(d.take_events(), vec![Event::Dead, Event::Dead]);
    for (payload, attempts) in [(1, 3), (2, 7)] {
        let (letter, report) = d.publish_next_dead(100 + payload);
        assert_eq!(
            report,
            Some(m),
            "reported once, as the failure of the member that claimed it"
        );
        assert_eq!(&*letter.group, "workers");
        assert_eq!(letter.message.payload, payload);
        assert_eq!(letter.attempts, attempts);
        assert_eq!(letter.error.code, ErrorCode::HandlerTimeout);
        assert_eq!(
            &*letter.error.message,
            format!("not acknowledged in the {attempts} attempt(s) made before it was published")
        );
    }
    assert!(d.b.take_dead().is_none(), "one letter each");
    assert_eq!(d.run_ok(), vec![101, 102]);
    assert_eq!(state(&d, "a"), Some((JobState::Dead, 3)));
    let g = &d.stats().groups[0];
    assert_eq!((g.published, g.done, g.retried, g.dead), (2, 0, 0, 2));
    assert_eq!(d.sub_stats(m).failed, 2);
    assert_eq!(d.sub_stats(m).delivered, 0);
    assert_eq!(d.sub_stats(watcher).delivered, 2);
}

#[test]
fn a_key_keeps_its_order_when_its_first_message_arrives_with_attempts_made() {
    let mut d = Driver::new();
    d.member(
        "jobs",
        "workers",
        SubscribeOptions {
            concurrency: 4,
            ..retry(3, 10)
        },
    );
    d.send("jobs", attempted(1, "k1", Some("k"), 2), PublishMode::Now)
        .unwrap();
    d.send("jobs", attempted(2, "k2", Some("k"), 0), PublishMode::Now)
        .unwrap();
    d.send("jobs", attempted(3, "k3", Some("k"), 3), PublishMode::Now)
        .unwrap();
    d.send("jobs", attempted(4, "k4", Some("k"), 0), PublishMode::Now)
        .unwrap();
    let first = d.pump();
    assert_eq!(first.len(), 1, "one message of the key at a time");
    assert_eq!((first[0].payloads[0], first[0].attempt), (1, 3));
    d.ok(1);
    let second = d.pump();
    assert_eq!((second[0].payloads[0], second[0].attempt), (2, 1));
    d.take_events();
    d.ok(2);
    // The third died in its turn, without a delivery; the fourth comes after it.
    assert_eq!(d.take_events(), vec![Event::Dead]);
    let fourth = d.pump();
    assert_eq!((fourth[0].payloads[0], fourth[0].attempt), (4, 1));
    assert_eq!(state(&d, "k3"), Some((JobState::Dead, 3)));
}

#[test]
fn a_plain_subscription_ignores_attempts_made() {
    let mut d = Driver::new();
    d.member("jobs", "workers", retry(3, 10));
    let plain = d.sub("jobs");
    d.send("jobs", attempted(1, "a", None, 3), PublishMode::Now)
        .unwrap();
    let started = d.pump();
    assert_eq!(started.len(), 1, "the group buried it");
    assert_eq!(
        (started[0].sub, started[0].attempt, started[0].final_attempt),
        (plain, 1, true)
    );
    d.ok(1);
    assert_eq!(d.sub_stats(plain).delivered, 1);
    assert_eq!(d.stats().groups[0].dead, 1);
}

#[test]
fn attempts_above_the_limit_are_refused_at_the_call_and_nothing_is_published() {
    let mut d = Driver::new();
    d.member("jobs", "workers", SubscribeOptions::default());
    let e = d
        .send(
            "jobs",
            attempted(1, "a", None, MAX_PRIOR_ATTEMPTS + 1),
            PublishMode::Now,
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidOption);
    assert!(e.message().contains("`attempts`"), "{e}");
    let handle = d.b.resolve("jobs").unwrap();
    let e =
        d.b.publish_batch(
            handle,
            vec![Outgoing::new(2), attempted(3, "b", None, u32::MAX)],
            d.now,
            PublishMode::Now,
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidOption);
    assert_eq!(d.stats().published, 0);
    assert_eq!(state(&d, "a"), None);
    d.send(
        "jobs",
        attempted(4, "c", None, MAX_PRIOR_ATTEMPTS),
        PublishMode::Now,
    )
    .unwrap();
    assert_eq!(d.stats().published, 1);
}

#[test]
fn a_delayed_message_reports_the_attempts_it_was_published_with_then_counts_from_there() {
    let mut d = Driver::new();
    d.member("jobs", "workers", retry(3, 10));
    let mut later = attempted(1, "later", None, 2);
    later.not_before = Some(d.now + 10 * MS);
    d.send("jobs", later, PublishMode::Now).unwrap();
    assert_eq!(state(&d, "later"), Some((JobState::Delayed, 2)));
    assert_eq!(d.b.remaining()[0].attempts, 2);
    let first = d.advance(10).remove(0);
    assert_eq!((first.attempt, first.final_attempt), (3, true));
}
