//! Request/reply on the Rust `Bus`: run natively (`cargo test`) and as WebAssembly under
//! `wasm-bindgen-test`. Time is virtual (`ManualClock`).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use edgebus::{ErrorCode, RequestOptions, SubscribeOptions};
use futures::executor::block_on;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

mod common;
use common::*;

#[test]
fn a_responder_returns_the_reply() {
    let (bus, _) = virtual_bus::<u64>(|_| {});
    bus.respond("math.double", |m| Ok(m.payload() * 2)).unwrap();
    let reply = block_on(bus.request("math.double", 21, RequestOptions::new()));
    assert_eq!(reply, Ok(42));
    let r = bus.stats().requests;
    assert_eq!((r.sent, r.replies, r.pending, r.late), (1, 1, 0, 0));
}

#[test]
fn no_subscription_refuses_at_once_and_publishes_nothing() {
    let (bus, _) = virtual_bus::<u64>(|_| {});
    bus.subscribe("other", |_| Ok(())).unwrap();
    let e = block_on(bus.request("svc.none", 1, RequestOptions::new())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoResponders);
    assert!(e.message().contains("\"svc.none\""), "{e}");
    let st = bus.stats();
    assert_eq!(
        (st.published, st.requests.no_responders, st.requests.sent),
        (0, 1, 0)
    );
}

#[test]
fn plain_subscribers_decline_and_leave_the_answer_to_responders() {
    let (bus, clock) = virtual_bus::<u64>(|_| {});
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    // A plain subscription sees the request's message and completes without a reply.
    bus.subscribe("svc.>", move |_| {
        s.set(s.get() + 1);
        Ok(())
    })
    .unwrap();
    let start = edgebus::Clock::now(&clock);
    let e = block_on(bus.request("svc.echo", 1, RequestOptions::new())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoResponders, "{e}");
    assert_eq!(seen.get(), 1);
    assert_eq!(
        edgebus::Clock::now(&clock),
        start,
        "ended at once, not at the timeout"
    );
    bus.respond("svc.echo", |m| Ok(*m.payload())).unwrap();
    assert_eq!(
        block_on(bus.request("svc.echo", 2, RequestOptions::new())),
        Ok(2)
    );
    assert_eq!(
        block_on(bus.request_many("svc.echo", 3, RequestOptions::new())),
        Ok(vec![3])
    );
    let r = bus.stats().requests;
    assert_eq!(
        (r.sent, r.replies, r.declined, r.no_responders, r.late),
        (3, 2, 3, 1, 0)
    );
}

#[test]
fn a_request_without_a_reply_times_out_on_the_virtual_clock() {
    let (bus, clock) = virtual_bus::<u64>(|_| {});
    let gates = Gates::default();
    let g = gates.clone();
    bus.respond_async(
        "slow",
        move |m| {
            let wait = g.wait(&format!("r{}", m.payload()));
            async move {
                wait.await?;
                Ok(0)
            }
        },
        SubscribeOptions::default(),
    )
    .unwrap();
    let start = edgebus::Clock::now(&clock);
    let e = block_on(bus.request(
        "slow",
        1,
        RequestOptions::new().timeout(Duration::from_millis(250)),
    ))
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Timeout);
    assert!(e.message().contains("250 ms"), "{e}");
    assert_eq!(edgebus::Clock::now(&clock) - start, 250_000);
    // The responder answers after the end: late, ignored and counted.
    gates.release("r1", Ok(()));
    assert!(bus.run_until_idle());
    let r = bus.stats().requests;
    assert_eq!((r.timed_out, r.replies, r.late, r.pending), (1, 0, 1, 0));
}

#[test]
fn a_failing_responder_fails_the_request_with_its_error() {
    let (bus, _) = virtual_bus::<u64>(|_| {});
    bus.respond("div", |m| {
        if *m.payload() == 0 {
            Err("division by zero".into())
        } else {
            Ok(100 / m.payload())
        }
    })
    .unwrap();
    assert_eq!(
        block_on(bus.request("div", 4, RequestOptions::new())),
        Ok(25)
    );
    let e = block_on(bus.request("div", 0, RequestOptions::new())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::HandlerFailed);
    assert!(e.message().contains("division by zero"), "{e}");
    let st = bus.stats();
    assert_eq!(
        (st.failed, st.requests.failed, st.requests.replies),
        (1, 1, 1)
    );
}

#[test]
fn a_work_queue_answers_as_one_service() {
    let (bus, _) = virtual_bus::<u64>(|_| {});
    let calls = Rc::new(RefCell::new(Vec::new()));
    for member in 0..3u64 {
        let c = calls.clone();
        bus.respond_with(
            "svc.id",
            move |_| {
                c.borrow_mut().push(member);
                Ok(member)
            },
            SubscribeOptions {
                group: Some(edgebus::GroupOptions {
                    name: "ids".into(),
                    retry: None,
                }),
                ..SubscribeOptions::default()
            },
        )
        .unwrap();
    }
    for _ in 0..6 {
        let before = calls.borrow().len();
        let reply = block_on(bus.request("svc.id", 0, RequestOptions::new())).unwrap();
        let after = calls.borrow().clone();
        assert_eq!(
            after.len(),
            before + 1,
            "exactly one member handles a request"
        );
        assert_eq!(after[before], reply);
    }
    // Gathering from a work queue gets its one answer.
    let all = block_on(bus.request_many("svc.id", 0, RequestOptions::new())).unwrap();
    assert_eq!(all.len(), 1);
}

#[test]
fn request_many_gathers_from_every_responder_and_ends_when_all_answered() {
    let (bus, clock) = virtual_bus::<u64>(|_| {});
    for k in 1..=3u64 {
        bus.respond("quote", move |m| Ok(m.payload() * k)).unwrap();
    }
    let start = edgebus::Clock::now(&clock);
    let mut all = block_on(bus.request_many("quote", 10, RequestOptions::new())).unwrap();
    all.sort();
    assert_eq!(all, vec![10, 20, 30]);
    // Every responder answered: no wait for the timeout.
    assert_eq!(edgebus::Clock::now(&clock), start);
    let some = block_on(bus.request_many("quote", 1, RequestOptions::new().max(2))).unwrap();
    assert_eq!(some, vec![1, 2]);
    let r = bus.stats().requests;
    assert_eq!((r.sent, r.replies, r.pending), (2, 5, 0));
    // The third responder's answer to the second request came after it ended.
    assert_eq!(r.late, 1);
}

#[test]
fn request_many_ends_at_its_timeout_with_what_came() {
    let (bus, _) = virtual_bus::<u64>(|_| {});
    let gates = Gates::default();
    bus.respond("poll", |_| Ok(7)).unwrap();
    let g = gates.clone();
    bus.respond_async(
        "poll",
        move |_| {
            let wait = g.wait("late");
            async move {
                wait.await?;
                Ok(8)
            }
        },
        SubscribeOptions::default(),
    )
    .unwrap();
    let got = block_on(bus.request_many(
        "poll",
        0,
        RequestOptions::new().timeout(Duration::from_millis(100)),
    ))
    .unwrap();
    assert_eq!(got, vec![7]);
    assert_eq!(bus.stats().requests.timed_out, 1);
}

#[test]
fn a_request_nothing_can_answer_fails_instead_of_waiting_forever() {
    let (bus, _) = virtual_bus::<u64>(|_| {});
    bus.respond_async(
        "never",
        |_| futures::future::pending::<Result<u64, edgebus::HandlerError>>(),
        SubscribeOptions::default(),
    )
    .unwrap();
    let e = block_on(bus.request("never", 0, RequestOptions::new().no_timeout())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Timeout);
    assert!(e.message().contains("no answer can come"), "{e}");
    let r = bus.stats().requests;
    assert_eq!((r.sent, r.cancelled, r.pending), (1, 1, 0));
}

#[test]
fn request_options_are_checked() {
    let (bus, _) = virtual_bus::<u64>(|_| {});
    bus.respond("x", |_| Ok(1)).unwrap();
    let e =
        block_on(bus.request("x", 0, RequestOptions::new().timeout(Duration::ZERO))).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidOption);
    let e = block_on(bus.request_many("x", 0, RequestOptions::new().max(0))).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidOption);
    let e = block_on(bus.request("bad..topic", 0, RequestOptions::new())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidTopic);
    let batched = SubscribeOptions {
        batch: Some(edgebus::BatchPolicy::default()),
        ..SubscribeOptions::default()
    };
    let Err(e) = bus.respond_with("y", |_| Ok(1), batched.clone()) else {
        panic!("a batch responder was taken")
    };
    assert_eq!(e.code(), ErrorCode::InvalidOption);
    let Err(e) = bus.respond_async("y", |_| async { Ok(1) }, batched) else {
        panic!("a batch responder was taken")
    };
    assert_eq!(e.code(), ErrorCode::InvalidOption);
    assert_eq!(bus.stats().requests.sent, 0);
}

#[test]
fn a_responder_sees_a_plain_message_without_a_request() {
    let (bus, _) = virtual_bus::<u64>(|_| {});
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    bus.respond("echo", move |m| {
        s.borrow_mut().push(m.request().is_some());
        Ok(*m.payload())
    })
    .unwrap();
    bus.publish("echo", 1).unwrap();
    assert!(bus.run_until_idle());
    assert_eq!(
        block_on(bus.request("echo", 2, RequestOptions::new())),
        Ok(2)
    );
    assert_eq!(*seen.borrow(), vec![false, true]);
    let r = bus.stats().requests;
    assert_eq!((r.sent, r.replies, r.late), (1, 1, 0));
}
