//! Flushing, draining and closing: what is idle, what a close leaves and lists as remaining.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::driver::*;
use crate::broker::*;
use crate::work_queue::{JobState, RetryPolicy};

fn batched() -> SubscribeOptions {
    SubscribeOptions {
        batch: Some(BatchPolicy {
            max_size: 10,
            max_wait: 1_000 * MS,
            ..BatchPolicy::default()
        }),
        ..SubscribeOptions::default()
    }
}

#[test]
fn flush_delivers_partial_batches_now() {
    let mut d = Driver::new();
    d.sub_with("t", batched());
    d.publish("t", 1);
    d.publish("t", 2);
    assert!(d.pump().is_empty());
    assert!(!d.b.is_idle(), "an open batch counts as queued");
    d.b.flush();
    assert_eq!(d.pump_payloads(), vec![1, 2]);
    d.ok(1);
    assert!(d.b.is_idle());
}

#[test]
fn idle_means_nothing_queued_ready_or_running() {
    let mut d = Driver::new();
    d.sub("t");
    assert!(d.b.is_idle());
    d.publish("t", 1);
    assert!(!d.b.is_idle());
    assert!(d.b.has_ready());
    d.pump();
    assert!(!d.b.has_ready());
    assert!(!d.b.is_idle(), "1 runs");
    d.ok(1);
    assert!(d.b.is_idle());
}

#[test]
fn close_refuses_later_calls_and_flushes_open_batches() {
    let mut d = Driver::new();
    d.sub_with("t", batched());
    d.publish("t", 1);
    d.close();
    assert!(d.b.is_closed());
    assert_eq!(d.pump_payloads(), vec![1], "the partial batch is delivered");
    let err = d.try_sub("t", SubscribeOptions::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Closed);
    let err = d.send("t", Outgoing::new(2), PublishMode::Now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Closed);
    // What started finishes.
    d.ok(1);
    assert!(d.b.is_idle());
}

#[test]
fn a_group_without_members_and_delayed_messages_do_not_block_idle_and_are_remaining() {
    let mut d = Driver::new();
    let m = d.member("jobs", "workers", SubscribeOptions::default());
    d.unsub(m);
    d.send("jobs", Driver::with_id(1, "a"), PublishMode::Now)
        .unwrap();
    let mut later = Outgoing::new(2);
    later.not_before = Some(60_000 * MS);
    d.send("other", later, PublishMode::Now).unwrap();
    assert!(
        d.b.is_idle(),
        "nobody can take them: a drain does not wait for them"
    );
    let left = d.b.remaining();
    let got: Vec<(u32, Option<&str>, JobState)> = left
        .iter()
        .map(|r| (r.message.payload, r.group.as_deref(), r.state))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, None, JobState::Delayed),
            (1, Some("workers"), JobState::Pending),
        ]
    );
}

#[test]
fn a_closed_broker_lists_a_pending_retry_instead_of_waiting_for_it() {
    let mut d = Driver::new();
    d.member(
        "jobs",
        "workers",
        SubscribeOptions {
            group: Some(GroupOptions {
                name: "workers".into(),
                retry: Some(RetryPolicy {
                    max_attempts: 3,
                    backoff_initial: 1_000 * MS,
                    backoff_max: 1_000 * MS,
                }),
            }),
            ..SubscribeOptions::default()
        },
    );
    d.publish("jobs", 1);
    d.pump();
    d.fail(1, "boom");
    assert!(!d.b.is_idle(), "open: the retry is coming");
    assert!(d.b.next_deadline().is_some());
    d.close();
    assert!(d.b.is_idle(), "closed: not worth waiting for");
    assert_eq!(
        d.b.next_deadline(),
        None,
        "and no timer keeps the driver awake"
    );
    let left = d.b.remaining();
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].state, left[0].attempts), (JobState::Failed, 1));
    // Even once its time comes, it is not retried.
    assert!(d.advance(5_000).is_empty());
}
