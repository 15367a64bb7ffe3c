//! Requests: who is reached, what each answer does, and how a request ends.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::driver::*;
use crate::broker::*;

use AnswerKind::{Decline, Failure, Reply};

/// Opens a request on `topic` and publishes its message.
fn request(d: &mut Driver, topic: &str, max: u32, deadline: Option<u64>) -> Result<RequestId> {
    let handle = d.b.resolve(topic)?;
    let id = d.b.open_request(handle, max, deadline)?;
    let mut out = Outgoing::new(0);
    out.request = Some(id);
    d.send(topic, out, PublishMode::Now)?;
    Ok(id)
}

#[test]
fn no_subscription_refuses_the_request_and_publishes_nothing() {
    let mut d = Driver::new();
    d.sub("svc.b");
    let e = request(&mut d, "svc.a", 1, None).unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoResponders);
    assert!(e.message().contains("\"svc.a\""), "{e}");
    assert_eq!(d.stats().published, 0, "nothing is published");
    let r = d.b.request_stats();
    assert_eq!((r.no_responders, r.sent, r.pending), (1, 0, 0));
    d.sub("svc.*");
    let id = request(&mut d, "svc.a", 1, None).unwrap();
    assert!(d.b.is_request_pending(id));
    assert_eq!(d.pump().len(), 1);
}

#[test]
fn a_work_queue_is_one_responder_while_it_has_members() {
    let mut d = Driver::new();
    let m1 = d.member("jobs", "w", SubscribeOptions::default());
    let m2 = d.member("jobs", "w", SubscribeOptions::default());
    let id = request(&mut d, "jobs", 5, None).unwrap();
    let started = d.pump();
    assert_eq!(started.len(), 1, "one member takes it");
    let taker = started[0].sub;
    assert!(taker == m1 || taker == m2);
    // The group's one answer ends the request, whatever its max.
    assert_eq!(d.b.answer(id, taker, Reply), Answer::Reply { last: true });
    d.run_ok();
    d.unsub(m1);
    d.unsub(m2);
    // Its members left: the group would hold the message, but nobody could answer it.
    assert_eq!(
        request(&mut d, "jobs", 1, None).unwrap_err().code(),
        ErrorCode::NoResponders
    );
}

#[test]
fn each_responder_answers_once_and_the_request_ends_at_max_or_when_all_answered() {
    let mut d = Driver::new();
    let a = d.sub("q");
    let b = d.sub("q");
    let c = d.sub("q");
    let id = request(&mut d, "q", 2, None).unwrap();
    assert_eq!(d.b.answer(id, a, Reply), Answer::Reply { last: false });
    assert_eq!(
        d.b.answer(id, a, Reply),
        Answer::Late,
        "a second answer of one responder"
    );
    assert_eq!(
        d.b.answer(id, b, Reply),
        Answer::Reply { last: true },
        "max"
    );
    assert_eq!(d.b.answer(id, c, Reply), Answer::Late, "after the end");
    assert!(!d.b.is_request_pending(id));
    let id = request(&mut d, "q", 10, None).unwrap();
    assert_eq!(d.b.answer(id, a, Reply), Answer::Reply { last: false });
    assert_eq!(
        d.b.answer(id, b, Failure),
        Answer::Failed {
            last: false,
            replies: 1
        }
    );
    assert_eq!(
        d.b.answer(id, c, Decline),
        Answer::Declined {
            last: true,
            replies: 1,
            failures: 1
        },
        "all answered"
    );
    let r = d.b.request_stats();
    assert_eq!(
        (r.sent, r.replies, r.failed, r.declined, r.late, r.pending),
        (2, 3, 1, 1, 2, 0)
    );
    assert_eq!(r.no_responders, 0, "it had a reply");
}

#[test]
fn a_request_every_responder_declined_ends_as_having_no_responders() {
    let mut d = Driver::new();
    let a = d.sub("f");
    let b = d.sub("f");
    let id = request(&mut d, "f", 1, None).unwrap();
    assert_eq!(
        d.b.answer(id, a, Decline),
        Answer::Declined {
            last: false,
            replies: 0,
            failures: 0
        },
        "the other responder may still reply"
    );
    assert_eq!(
        d.b.answer(id, b, Decline),
        Answer::Declined {
            last: true,
            replies: 0,
            failures: 0
        }
    );
    assert_eq!(d.b.request_stats().no_responders, 1);
    // Failures and declines: the failure is what it ends with.
    let id = request(&mut d, "f", 1, None).unwrap();
    assert_eq!(
        d.b.answer(id, a, Failure),
        Answer::Failed {
            last: false,
            replies: 0
        }
    );
    assert_eq!(
        d.b.answer(id, b, Decline),
        Answer::Declined {
            last: true,
            replies: 0,
            failures: 1
        }
    );
    let r = d.b.request_stats();
    assert_eq!((r.no_responders, r.failed, r.pending), (1, 1, 0));
}

#[test]
fn the_deadline_ends_a_request_with_an_event_and_keeps_the_host_up() {
    let mut d = Driver::new();
    let a = d.sub("slow");
    let at = d.now + 50 * MS;
    let id = request(&mut d, "slow", 1, Some(at)).unwrap();
    d.pump();
    assert_eq!(d.b.next_deadline(), Some(at));
    assert!(d.b.timers_keep_alive());
    d.events.clear();
    d.advance(49);
    assert!(d.b.is_request_pending(id));
    d.advance(1);
    assert!(!d.b.is_request_pending(id));
    assert!(d
        .events
        .contains(&Event::RequestEnded(id, RequestEnd::TimedOut)));
    assert_eq!(d.b.answer(id, a, Reply), Answer::Late);
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
    d.sub("c");
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
    d.sub("m");
    for max in [0, MAX_REPLIES + 1] {
        let e = request(&mut d, "m", max, None).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidOption, "{max}");
    }
}

#[test]
fn reports_of_more_than_a_u32_counts_keep_the_request_waiting_and_never_wrap_to_an_end() {
    let mut t = RequestTable::new();
    // One report awaited, then u32::MAX more announced: 1 + (2^32 - 1) would wrap to 0.
    let id = t.open(5, 0, 1).unwrap();
    assert_eq!(t.reached(id, u32::MAX, 0), Reached::Pending);
    assert_eq!(t.reached(id, u32::MAX, 0), Reached::Pending);
    // Responders likewise: u32::MAX, then 2 more, would wrap to 1 and end at the first answer.
    let other = t.open(5, 0, 2).unwrap();
    assert_eq!(t.reached(other, 0, u32::MAX), Reached::Pending);
    assert_eq!(t.reached(other, 0, 2), Reached::Pending);
    assert_eq!(t.answer(other, 1, Reply), Answer::Reply { last: false });
    assert!(t.cancel(id) && t.cancel(other), "both were still pending");
}

#[test]
fn a_table_learning_its_responders_from_reports_ends_once_every_report_came_and_all_answered() {
    let mut t = RequestTable::new();
    // Opened before anything is known: it waits for one report (the owner's).
    let id = t.open(5, 0, 1).unwrap();
    // The owner forwarded it to two places, each to report its own responders.
    assert_eq!(t.reached(id, 2, 0), Reached::Pending);
    assert_eq!(t.reached(id, 0, 2), Reached::Pending);
    assert_eq!(t.answer(id, 11, Reply), Answer::Reply { last: false });
    assert_eq!(
        t.answer(id, 12, Decline),
        Answer::Declined {
            last: false,
            replies: 1,
            failures: 0
        },
        "the second place has not reported"
    );
    assert_eq!(t.answer(id, 12, Reply), Answer::Late, "one answer each");
    assert_eq!(t.reached(id, 0, 1), Reached::Pending);
    assert_eq!(
        t.answer(id, 21, Failure),
        Answer::Failed {
            last: true,
            replies: 1
        }
    );
    assert_eq!(t.reached(id, 0, 1), Reached::Gone, "a report after the end");
    // Forwarded nowhere: no responders.
    let none = t.open(1, 0, 1).unwrap();
    assert_eq!(
        t.reached(none, 0, 0),
        Reached::Ended {
            replies: 0,
            failures: 0
        }
    );
    // The last report comes after every known responder answered: it ends then.
    let late = t.open(1, 0, 1).unwrap();
    assert_eq!(t.reached(late, 2, 0), Reached::Pending);
    assert_eq!(t.reached(late, 0, 1), Reached::Pending);
    assert_eq!(
        t.answer(late, 7, Decline),
        Answer::Declined {
            last: false,
            replies: 0,
            failures: 0
        }
    );
    assert_eq!(
        t.reached(late, 0, 0),
        Reached::Ended {
            replies: 0,
            failures: 0
        }
    );
    let st = t.stats();
    assert_eq!(
        (
            st.sent,
            st.replies,
            st.failed,
            st.declined,
            st.late,
            st.no_responders,
            st.pending
        ),
        (3, 1, 1, 2, 1, 2, 0)
    );
    assert!(t.is_empty());
    assert_eq!(
        t.open(0, 1, 0).unwrap_err().code(),
        ErrorCode::InvalidOption
    );
}

#[test]
fn a_request_on_a_topic_with_history_is_neither_numbered_nor_replayed() {
    let mut d = Driver::with(BrokerConfig {
        logs: crate::logs::LogConfig {
            history: vec![Pattern::parse("svc.*").unwrap()],
            ..crate::logs::LogConfig::default()
        },
        ..BrokerConfig::default()
    });
    d.sub("svc.a");
    request(&mut d, "svc.a", 1, None).unwrap();
    d.publish("svc.a", 7);
    assert_eq!(d.run_ok(), [0, 7], "both delivered live");
    let log = d.b.log_of("svc.a", 0).unwrap();
    assert_eq!(
        (log.last, log.held),
        (1, 1),
        "only the plain message is numbered and kept"
    );
    let now = d.now;
    let (replayed, gaps) =
        d.b.replay(
            "svc.*",
            &crate::logs::Replay::Since {
                topics: Vec::new(),
                seq: Some(0),
                time: None,
            },
            now,
            (usize::MAX, u64::MAX),
        )
        .unwrap();
    assert_eq!(
        replayed.iter().map(|m| *m.payload()).collect::<Vec<_>>(),
        [7]
    );
    assert!(gaps.is_empty());
}
