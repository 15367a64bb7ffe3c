//! Requests: who counts as a responder, what each answer does, and how a request ends.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::driver::*;
use crate::broker::*;

fn responder() -> SubscribeOptions {
    SubscribeOptions {
        responder: true,
        ..SubscribeOptions::default()
    }
}

/// Opens a request on `topic` and publishes its message (`payload`).
fn request(d: &mut Driver, topic: &str, max: u32, deadline: Option<u64>) -> Result<RequestId> {
    let handle = d.b.resolve(topic)?;
    let id = d.b.open_request(handle, max, deadline)?;
    let mut out = Outgoing::new(0);
    out.request = Some(id);
    d.send(topic, out, PublishMode::Now)?;
    Ok(id)
}

#[test]
fn only_responders_count_and_none_refuses_the_request() {
    let mut d = Driver::new();
    d.sub("svc.a");
    let e = request(&mut d, "svc.a", 1, None).unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoResponders);
    assert_eq!(d.stats().published, 0, "nothing is published");
    let r = d.b.request_stats();
    assert_eq!((r.no_responders, r.sent, r.pending), (1, 0, 0));
    d.sub_with("svc.*", responder());
    let id = request(&mut d, "svc.a", 1, None).unwrap();
    assert!(d.b.is_request_pending(id));
    // The message reached both subscriptions, and carries the request.
    let started = d.pump();
    assert_eq!(started.len(), 2);
}

#[test]
fn a_work_queue_answers_once_it_has_a_responding_member() {
    let mut d = Driver::new();
    let group = |responder| SubscribeOptions {
        responder,
        ..SubscribeOptions::default()
    };
    let quiet = d.member("jobs", "w", group(false));
    assert_eq!(
        request(&mut d, "jobs", 1, None).unwrap_err().code(),
        ErrorCode::NoResponders
    );
    let m = d.member("jobs", "w", group(true));
    let id = request(&mut d, "jobs", 1, None).unwrap();
    let started = d.pump();
    assert_eq!(started.len(), 1, "one member takes it");
    let taker = started[0].sub;
    assert!(taker == m || taker == quiet);
    assert_eq!(d.b.answer(id, taker, true), Answer::Reply { last: true });
    d.run_ok();
    d.unsub(m);
    d.unsub(quiet);
    // Its members left: the group would hold a message, but nobody could answer it.
    assert_eq!(
        request(&mut d, "jobs", 1, None).unwrap_err().code(),
        ErrorCode::NoResponders
    );
}

#[test]
fn each_responder_answers_once_and_the_request_ends_at_max_or_when_all_answered() {
    let mut d = Driver::new();
    let a = d.sub_with("q", responder());
    let b = d.sub_with("q", responder());
    let c = d.sub_with("q", responder());
    let id = request(&mut d, "q", 2, None).unwrap();
    assert_eq!(d.b.answer(id, a, true), Answer::Reply { last: false });
    assert_eq!(
        d.b.answer(id, a, true),
        Answer::Late,
        "a second answer of one responder"
    );
    assert_eq!(
        d.b.answer(id, b, true),
        Answer::Reply { last: true },
        "max reached"
    );
    assert_eq!(d.b.answer(id, c, true), Answer::Late, "after the end");
    assert!(!d.b.is_request_pending(id));
    let id = request(&mut d, "q", 10, None).unwrap();
    assert_eq!(d.b.answer(id, a, true), Answer::Reply { last: false });
    assert_eq!(
        d.b.answer(id, b, false),
        Answer::Failed {
            last: false,
            replies: 1
        }
    );
    assert_eq!(
        d.b.answer(id, c, true),
        Answer::Reply { last: true },
        "all answered"
    );
    let r = d.b.request_stats();
    assert_eq!(
        (r.sent, r.replies, r.failed, r.late, r.pending),
        (2, 4, 1, 2, 0)
    );
}

#[test]
fn failures_end_a_request_when_no_responder_is_left() {
    let mut d = Driver::new();
    let a = d.sub_with("f", responder());
    let b = d.sub_with("f", responder());
    let id = request(&mut d, "f", 1, None).unwrap();
    assert_eq!(
        d.b.answer(id, a, false),
        Answer::Failed {
            last: false,
            replies: 0
        },
        "the other responder may still reply"
    );
    assert_eq!(
        d.b.answer(id, b, false),
        Answer::Failed {
            last: true,
            replies: 0
        }
    );
    assert_eq!(d.b.pending_requests(), 0);
}

#[test]
fn the_deadline_ends_a_request_with_an_event_and_keeps_the_host_up() {
    let mut d = Driver::new();
    let a = d.sub_with("slow", responder());
    let at = d.now + 50 * MS;
    let id = request(&mut d, "slow", 1, Some(at)).unwrap();
    d.pump();
    assert_eq!(d.b.next_deadline(), Some(d.now + 50 * MS));
    assert!(d.b.timers_keep_alive());
    d.events.clear();
    d.advance(49);
    assert!(d.b.is_request_pending(id));
    d.advance(1);
    assert!(!d.b.is_request_pending(id));
    assert!(d
        .events
        .contains(&Event::RequestEnded(id, RequestEnd::TimedOut)));
    assert_eq!(d.b.answer(id, a, true), Answer::Late);
    let r = d.b.request_stats();
    assert_eq!((r.timed_out, r.late, r.pending), (1, 1, 0));
    // A request that ended earlier leaves a stale timer, never an event.
    let at = d.now + 10 * MS;
    let id = request(&mut d, "slow", 1, Some(at)).unwrap();
    assert!(d.b.cancel_request(id));
    assert!(!d.b.cancel_request(id), "cancelled once");
    d.events.clear();
    d.advance(10);
    assert!(d.events.is_empty(), "{:?}", d.events);
    assert_eq!(d.b.request_stats().cancelled, 1);
}

#[test]
fn ending_requests_at_the_close_reports_each() {
    let mut d = Driver::new();
    d.sub_with("c", responder());
    let x = request(&mut d, "c", 1, None).unwrap();
    let at = d.now + MS;
    let y = request(&mut d, "c", 3, Some(at)).unwrap();
    d.close();
    assert_eq!(
        request(&mut d, "c", 1, None).unwrap_err().code(),
        ErrorCode::Closed
    );
    d.events.clear();
    d.b.end_requests();
    let ended = d.take_events();
    assert!(ended.contains(&Event::RequestEnded(x, RequestEnd::Closed)));
    assert!(ended.contains(&Event::RequestEnded(y, RequestEnd::Closed)));
    assert_eq!(d.b.request_stats().cancelled, 2);
    assert_eq!(d.b.pending_requests(), 0);
}

#[test]
fn max_is_checked() {
    let mut d = Driver::new();
    d.sub_with("m", responder());
    for max in [0, MAX_REPLIES + 1] {
        let e = request(&mut d, "m", max, None).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidOption, "{max}");
    }
}
