//! Work queues: one suite, run natively (`cargo test`) and as WebAssembly under
//! `wasm-bindgen-test` in Node and in headless Chromium. Time is virtual (`ManualClock`).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use edgebus::{
    Bus, Clock, DeadLetter, ErrorCode, JobState, Message, Overflow, PublishOptions, Retention,
    RetryPolicy, SubscribeOptions,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

mod common;
use common::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn retry(max_attempts: u32, initial_ms: u64, max_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        backoff_initial: initial_ms * 1000,
        backoff_max: max_ms * 1000,
    }
}

fn with_id(id: &str) -> PublishOptions {
    PublishOptions::new().id(id)
}

#[test]
fn each_message_goes_to_exactly_one_member_round_robin_while_plain_subscribers_get_all() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let seen = log();
    for name in ["a", "b", "c"] {
        let s = seen.clone();
        bus.subscribe_with(
            "jobs.>",
            move |m| {
                s.borrow_mut().push(format!("{name}{}", m.payload()));
                Ok(())
            },
            SubscribeOptions::default().group("workers"),
        )
        .unwrap();
    }
    let all = Rc::new(Cell::new(0));
    let a = all.clone();
    bus.subscribe("jobs.*", move |_| {
        a.set(a.get() + 1);
        Ok(())
    })
    .unwrap();
    for i in 0..6 {
        bus.publish("jobs.email", i).unwrap();
    }
    bus.run_until_idle();
    assert_eq!(*seen.borrow(), ["a0", "b1", "c2", "a3", "b4", "c5"]);
    assert_eq!(all.get(), 6);
    let st = bus.stats();
    assert_eq!(st.groups.len(), 1);
    let g = &st.groups[0];
    assert_eq!((g.name.as_str(), g.pattern.as_str()), ("workers", "jobs.>"));
    assert_eq!(
        (g.members, g.published, g.done, g.depth, g.in_flight),
        (3, 6, 6, 0, 0)
    );
    // Three members and one plain subscriber; the group itself is not a subscription.
    assert_eq!(st.subscriptions, 4);
    assert_eq!(st.delivered, 12);
    let members: Vec<_> = st
        .per_subscription
        .iter()
        .filter(|s| s.group.as_deref() == Some("workers"))
        .map(|s| s.delivered)
        .collect();
    assert_eq!(members, [2, 2, 2]);
}

#[test]
fn same_name_on_another_pattern_is_another_group() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let hits = Rc::new(RefCell::new(Vec::new()));
    for p in ["a.*", "a.b"] {
        let h = hits.clone();
        bus.subscribe_with(
            p,
            move |_| {
                h.borrow_mut().push(p);
                Ok(())
            },
            SubscribeOptions::default().group("g"),
        )
        .unwrap();
    }
    bus.publish("a.b", 1).unwrap();
    bus.run_until_idle();
    assert_eq!(*hits.borrow(), ["a.*", "a.b"]);
    assert_eq!(bus.stats().groups.len(), 2);
}

#[test]
fn busy_members_are_skipped_and_work_goes_to_members_with_free_capacity() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let gates = Gates::default();
    for name in ["a", "b"] {
        let g = gates.clone();
        bus.subscribe_async(
            "q",
            move |m: Message<u32>| g.wait(&format!("{name}{}", m.payload())),
            SubscribeOptions::default().group("w"),
        )
        .unwrap();
    }
    for i in 0..4 {
        bus.publish("q", i).unwrap();
    }
    bus.run_pending();
    assert_eq!(gates.waiting(), ["a0", "b1"]);
    gates.release("b1", Ok(()));
    bus.run_pending();
    // b is free first, so b gets the next message.
    assert_eq!(gates.waiting(), ["a0", "b2"]);
    gates.release("a0", Ok(()));
    gates.release("b2", Ok(()));
    bus.run_pending();
    assert_eq!(gates.waiting().len(), 1);
    let st = &bus.stats().groups[0];
    assert_eq!((st.done, st.in_flight, st.depth), (3, 1, 0));
}

#[test]
fn failures_retry_with_exponential_backoff_and_jitter_then_succeed() {
    let (bus, clock) = virtual_bus::<u32>(|_| {});
    let tries = Rc::new(RefCell::new(Vec::new()));
    let (t, c) = (tries.clone(), clock.clone());
    bus.subscribe_with(
        "q",
        move |m| {
            t.borrow_mut().push((m.attempt(), c.now()));
            if m.attempt() < 4 {
                Err("not yet".into())
            } else {
                Ok(())
            }
        },
        SubscribeOptions::default()
            .group("w")
            .retry(retry(5, 100, 250)),
    )
    .unwrap();
    bus.publish_with("q", 7, with_id("job-1")).unwrap();
    assert_eq!(bus.status("job-1").unwrap().state, JobState::Failed);
    assert!(bus.run_until_idle());
    let tries = tries.borrow();
    assert_eq!(
        tries.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    // Base delays 100, 200, then 250 (capped); each jittered into [base/2, base].
    for (i, base) in [100_000u64, 200_000, 250_000].iter().enumerate() {
        let gap = tries[i + 1].1 - tries[i].1;
        assert!(
            gap >= base / 2 && gap <= *base,
            "retry {} came after {gap} µs, outside [{}, {base}]",
            i + 1,
            base / 2
        );
    }
    let st = bus.status("job-1").unwrap();
    assert_eq!((st.state, st.attempts), (JobState::Done, 4));
    assert_eq!(st.group.as_deref(), Some("w"));
    let g = &bus.stats().groups[0];
    assert_eq!((g.done, g.retried, g.dead), (1, 3, 0));
    // A failure that was retried is not a final failure.
    assert_eq!(bus.stats().failed, 0);
}

#[test]
fn a_message_that_fails_every_attempt_goes_to_the_dead_letter_topic() {
    let errors = log();
    let e = errors.clone();
    let (bus, _) = virtual_bus::<String>(|o| {
        o.on_error = Some(Rc::new(move |r| {
            e.borrow_mut().push(format!("{:?}:{}", r.code, r.attempts))
        }))
    });
    bus.subscribe_with(
        "orders.*",
        |_| Err("card declined".into()),
        SubscribeOptions::default()
            .group("billing")
            .retry(retry(3, 10, 1000)),
    )
    .unwrap();
    let dead = log();
    let d = dead.clone();
    bus.subscribe("$dead.billing", move |m| {
        let l = m.dead_letter().expect("a dead letter");
        d.borrow_mut().push(format!(
            "{} {} {} {} {} {} {}",
            m.payload(),
            l.group,
            l.topic,
            l.message.id().unwrap_or("-"),
            l.attempts,
            l.error.code,
            l.error.message
        ));
        Ok(())
    })
    .unwrap();
    bus.publish_with("orders.eu", "#1".to_string(), with_id("o-1"))
        .unwrap();
    assert!(bus.run_until_idle());
    assert_eq!(
        *dead.borrow(),
        ["#1 billing orders.eu o-1 3 HANDLER_FAILED card declined"]
    );
    let st = bus.status("o-1").unwrap();
    assert_eq!((st.state, st.attempts), (JobState::Dead, 3));
    let g = &bus.stats().groups[0];
    assert_eq!((g.done, g.retried, g.dead, g.depth), (0, 2, 1, 0));
    assert_eq!(bus.stats().failed, 1);
    // The final failure is reported once, with its attempt count.
    assert_eq!(*errors.borrow(), ["HandlerFailed:3"]);
}

#[test]
fn dead_payload_builds_the_dead_letter() {
    let (bus, _) = virtual_bus::<String>(|o| {
        o.dead_payload = Some(Rc::new(|l| {
            format!(
                "{}|{}|{}|{}",
                l.group,
                l.message.payload(),
                l.attempts,
                l.error.message
            )
        }))
    });
    bus.subscribe_with(
        "t",
        |_| Err("boom".into()),
        SubscribeOptions::default().group("g").retry(retry(1, 1, 1)),
    )
    .unwrap();
    let dead = log();
    let d = dead.clone();
    bus.subscribe("$dead.>", move |m| {
        d.borrow_mut()
            .push(format!("{} {}", m.topic(), m.payload()));
        Ok(())
    })
    .unwrap();
    bus.publish("t", "x".into()).unwrap();
    bus.run_until_idle();
    assert_eq!(*dead.borrow(), ["$dead.g g|x|1|boom"]);
}

#[test]
fn a_missed_ack_deadline_counts_as_a_failure_and_the_late_result_is_ignored() {
    let (bus, clock) = virtual_bus::<u32>(|_| {});
    let gates = Gates::default();
    let g = gates.clone();
    bus.subscribe_async(
        "q",
        move |m: Message<u32>| g.wait(&format!("try{}", m.attempt())),
        SubscribeOptions::default()
            .group("w")
            .timeout(ms(50))
            .retry(retry(3, 10, 10)),
    )
    .unwrap();
    bus.publish_with("q", 1, with_id("j")).unwrap();
    bus.run_pending();
    assert_eq!(gates.waiting(), ["try1"]);
    assert_eq!(bus.status("j").unwrap().state, JobState::InFlight);
    clock.advance(50_000);
    bus.run_pending();
    assert_eq!(bus.status("j").unwrap().state, JobState::Failed);
    clock.advance(10_000);
    bus.run_pending();
    // Redelivered while the first try still hangs.
    assert_eq!(gates.waiting(), ["try1", "try2"]);
    gates.release("try2", Ok(()));
    bus.run_pending();
    let st = bus.status("j").unwrap();
    assert_eq!((st.state, st.attempts), (JobState::Done, 2));
    // The first try settling late changes nothing.
    gates.release("try1", Err("late"));
    bus.run_pending();
    let g = &bus.stats().groups[0];
    assert_eq!((g.done, g.retried, g.dead, g.in_flight), (1, 1, 0, 0));
    assert_eq!(bus.status("j").unwrap().state, JobState::Done);
}

#[test]
fn higher_priority_first_and_fifo_within_a_priority() {
    let (bus, _) = virtual_bus::<&'static str>(|_| {});
    let gates = Gates::default();
    let order = log();
    let (g, o) = (gates.clone(), order.clone());
    bus.subscribe_async(
        "q",
        move |m: Message<&'static str>| {
            o.borrow_mut().push(m.payload().to_string());
            g.wait(m.payload())
        },
        SubscribeOptions::default().group("w"),
    )
    .unwrap();
    bus.publish("q", "first").unwrap();
    bus.run_pending();
    for (p, prio) in [
        ("low1", 0),
        ("high1", 5),
        ("low2", 0),
        ("high2", 5),
        ("mid", 2),
    ] {
        bus.publish_with("q", p, PublishOptions::new().priority(prio))
            .unwrap();
    }
    for name in ["first", "high1", "high2", "mid", "low1", "low2"] {
        bus.run_pending();
        gates.release(name, Ok(()));
    }
    bus.run_until_idle();
    assert_eq!(
        *order.borrow(),
        ["first", "high1", "high2", "mid", "low1", "low2"]
    );
}

#[test]
fn delayed_messages_become_visible_at_not_before_for_everyone() {
    let (bus, clock) = virtual_bus::<u32>(|_| {});
    let got = log();
    let (g1, g2, c1) = (got.clone(), got.clone(), clock.clone());
    bus.subscribe_with(
        "q",
        move |m| {
            g1.borrow_mut()
                .push(format!("group {} at {}", m.payload(), c1.now()));
            Ok(())
        },
        SubscribeOptions::default().group("w"),
    )
    .unwrap();
    bus.subscribe("q", move |m| {
        g2.borrow_mut().push(format!("plain {}", m.payload()));
        Ok(())
    })
    .unwrap();
    let at = Duration::from_micros(START) + ms(100);
    bus.publish_with("q", 1, with_id("later").not_before(at))
        .unwrap();
    bus.publish("q", 2).unwrap();
    bus.run_pending();
    // The group was subscribed first, so it is first in subscription order.
    assert_eq!(
        *got.borrow(),
        [format!("group 2 at {START}").as_str(), "plain 2"]
    );
    assert_eq!(bus.status("later").unwrap().state, JobState::Delayed);
    assert_eq!(bus.stats().delayed, 1);
    clock.advance(99_000);
    bus.run_pending();
    assert_eq!(got.borrow().len(), 2);
    clock.advance(1_000);
    bus.run_pending();
    assert_eq!(
        got.borrow()[2..],
        [
            format!("group 1 at {}", START + 100_000),
            "plain 1".to_string()
        ]
    );
    assert_eq!(bus.status("later").unwrap().state, JobState::Done);
    assert_eq!(bus.stats().delayed, 0);
}

#[test]
fn batch_claim_hands_out_up_to_max_size_and_waits_at_most_max_wait() {
    let (bus, clock) = virtual_bus::<u32>(|_| {});
    let batches = Rc::new(RefCell::new(Vec::new()));
    let (b, c) = (batches.clone(), clock.clone());
    bus.subscribe_batch(
        "q",
        move |ms: &[Message<u32>]| {
            b.borrow_mut()
                .push((ms.iter().map(|m| *m.payload()).collect::<Vec<_>>(), c.now()));
            Ok(())
        },
        SubscribeOptions::default().group("w").claim(4, ms(20)),
    )
    .unwrap();
    // A full batch goes at once: the consumer is woken by the publish, not by a timer.
    for i in 0..4 {
        bus.publish("q", i).unwrap();
    }
    bus.run_pending();
    assert_eq!(*batches.borrow(), [(vec![0, 1, 2, 3], START)]);
    // A partial one waits for max_wait.
    for i in 4..6 {
        bus.publish("q", i).unwrap();
    }
    bus.run_pending();
    assert_eq!(batches.borrow().len(), 1);
    clock.advance(20_000);
    bus.run_pending();
    assert_eq!(batches.borrow()[1], (vec![4, 5], START + 20_000));
    // flush() hands out a partial batch at once.
    bus.publish("q", 6).unwrap();
    bus.flush();
    assert_eq!(batches.borrow()[2], (vec![6], START + 20_000));
    let g = &bus.stats().groups[0];
    assert_eq!((g.done, g.depth), (7, 0));
}

#[test]
fn a_failed_batch_retries_each_message_alone_so_a_poison_message_holds_back_nobody() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let calls = log();
    let c = calls.clone();
    bus.subscribe_batch(
        "q",
        move |ms: &[Message<u32>]| {
            let ids: Vec<String> = ms.iter().map(|m| m.payload().to_string()).collect();
            c.borrow_mut().push(ids.join(","));
            if ms.iter().any(|m| *m.payload() == 13) {
                Err("poison".into())
            } else {
                Ok(())
            }
        },
        SubscribeOptions::default()
            .group("w")
            .claim(10, ms(0))
            .retry(retry(3, 10, 10)),
    )
    .unwrap();
    let dead = Rc::new(Cell::new(0));
    let d = dead.clone();
    bus.subscribe("$dead.w", move |_| {
        d.set(d.get() + 1);
        Ok(())
    })
    .unwrap();
    bus.publish_batch("q", vec![11, 12, 13, 14]).unwrap();
    assert!(bus.run_until_idle());
    let calls = calls.borrow();
    assert_eq!(calls[0], "11,12,13,14");
    let mut retried: Vec<&str> = calls[1..].iter().map(String::as_str).collect();
    retried.sort();
    // Each message retried alone; the poison one twice more, then dead.
    assert_eq!(retried, ["11", "12", "13", "13", "14"]);
    assert_eq!(dead.get(), 1);
    let g = &bus.stats().groups[0];
    assert_eq!((g.done, g.dead, g.retried), (3, 1, 5));
}

#[test]
fn one_key_is_never_handled_by_two_members_at_once_and_keeps_its_order() {
    let (bus, _) = virtual_bus::<String>(|_| {});
    let gates = Gates::default();
    let started = log();
    for name in ["a", "b"] {
        let (g, s) = (gates.clone(), started.clone());
        bus.subscribe_async(
            "q",
            move |m: Message<String>| {
                s.borrow_mut().push(m.payload().clone());
                g.wait(&format!("{name}:{}", m.payload()))
            },
            SubscribeOptions::default().group("w").concurrency(2),
        )
        .unwrap();
    }
    for (p, k) in [
        ("k1-1", "k1"),
        ("k1-2", "k1"),
        ("k2-1", "k2"),
        ("k1-3", "k1"),
    ] {
        bus.publish_with("q", p.to_string(), PublishOptions::new().key(k))
            .unwrap();
    }
    bus.run_pending();
    assert_eq!(gates.waiting(), ["a:k1-1", "b:k2-1"]);
    gates.release("b:k2-1", Ok(()));
    bus.run_pending();
    assert_eq!(gates.waiting(), ["a:k1-1"]);
    gates.release("a:k1-1", Err("retry me"));
    bus.run_until_idle_with(&gates);
    assert_eq!(*started.borrow(), ["k1-1", "k2-1", "k1-1", "k1-2", "k1-3"]);
}

trait RunWith {
    fn run_until_idle_with(&self, gates: &Gates);
}

impl<P: Clone + edgebus::ByteSize + 'static> RunWith for Bus<P> {
    /// Runs to idle, settling every handler successfully as soon as it waits.
    fn run_until_idle_with(&self, gates: &Gates) {
        for _ in 0..1000 {
            self.run_pending();
            let waiting = gates.waiting();
            if waiting.is_empty() {
                if self.run_until_idle() && gates.waiting().is_empty() {
                    return;
                }
                continue;
            }
            for w in waiting {
                gates.release(&w, Ok(()));
            }
        }
        panic!("did not become idle");
    }
}

#[test]
fn waiting_messages_go_to_a_member_that_joins_later_and_the_group_outlives_its_members() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let first = bus
        .subscribe_with("q", |_| Ok(()), SubscribeOptions::default().group("w"))
        .unwrap();
    assert!(first.unsubscribe());
    // With no member the group stays: a message published now waits for the next member.
    bus.publish("q", 1).unwrap();
    let g = &bus.stats().groups[0];
    assert_eq!((g.members, g.depth, g.published), (0, 1, 1));
    let gates = Gates::default();
    let g = gates.clone();
    let member = bus
        .subscribe_async(
            "q",
            move |m: Message<u32>| g.wait(&m.payload().to_string()),
            SubscribeOptions::default().group("w"),
        )
        .unwrap();
    bus.publish("q", 2).unwrap();
    bus.publish("q", 3).unwrap();
    bus.run_pending();
    assert_eq!(gates.waiting(), ["1"]);
    gates.release("1", Ok(()));
    bus.run_pending();
    assert_eq!(gates.waiting(), ["2"]);
    assert!(member.unsubscribe());
    gates.release("2", Ok(()));
    bus.run_pending();
    // 3 waits for a member; the group stays, and drain does not wait for it.
    let g = &bus.stats().groups[0];
    assert_eq!((g.members, g.depth, g.done), (0, 1, 2));
    assert!(bus.run_until_idle());
    let got = log();
    let s = got.clone();
    bus.subscribe_with(
        "q",
        move |m| {
            s.borrow_mut().push(m.payload().to_string());
            Ok(())
        },
        SubscribeOptions::default().group("w"),
    )
    .unwrap();
    assert_eq!(*got.borrow(), ["3"]);
}

#[test]
fn close_reports_what_remains_instead_of_dropping_it() {
    let (bus, clock) = virtual_bus::<u32>(|_| {});
    let member = bus
        .subscribe_with(
            "q",
            |_| Err("down".into()),
            SubscribeOptions::default()
                .group("w")
                .retry(retry(5, 1000, 1000)),
        )
        .unwrap();
    bus.subscribe_with("other", |_| Ok(()), SubscribeOptions::default().group("v"))
        .unwrap();
    let later = Duration::from_micros(START) + Duration::from_secs(3600);
    bus.publish_with("other", 9, with_id("delayed").not_before(later))
        .unwrap();
    bus.publish_with("q", 1, with_id("stuck")).unwrap();
    bus.run_pending();
    assert_eq!(bus.status("stuck").unwrap().state, JobState::Failed);
    member.unsubscribe();
    let left = futures::executor::block_on(bus.close());
    let summary: Vec<String> = left
        .iter()
        .map(|r| {
            format!(
                "{} {:?} {} {}",
                r.message.id().unwrap(),
                r.group.as_deref(),
                r.state.as_str(),
                r.attempts
            )
        })
        .collect();
    assert_eq!(
        summary,
        ["delayed None delayed 0", "stuck Some(\"w\") failed 1"]
    );
    let _ = clock;
    assert_eq!(bus.publish("q", 2).unwrap_err().code(), ErrorCode::Closed);
}

#[test]
fn drain_waits_for_retries() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let n = Rc::new(Cell::new(0));
    let c = n.clone();
    bus.subscribe_with(
        "q",
        move |m| {
            c.set(c.get() + 1);
            if m.attempt() == 1 {
                Err("again".into())
            } else {
                Ok(())
            }
        },
        SubscribeOptions::default()
            .group("w")
            .retry(retry(2, 500, 500)),
    )
    .unwrap();
    bus.publish("q", 1).unwrap();
    futures::executor::block_on(bus.drain());
    assert_eq!(n.get(), 2);
    assert_eq!(bus.stats().groups[0].done, 1);
}

#[test]
fn finished_ids_are_remembered_within_the_retention_window_only() {
    let (bus, clock) = virtual_bus::<u32>(|o| {
        o.retention = Retention {
            max_ids: 2,
            max_age: Some(60_000_000),
        }
    });
    bus.subscribe_with("q", |_| Ok(()), SubscribeOptions::default().group("w"))
        .unwrap();
    for id in ["a", "b", "c"] {
        bus.publish_with("q", 0, with_id(id)).unwrap();
    }
    bus.run_until_idle();
    assert!(bus.status("a").is_none(), "evicted by count");
    assert_eq!(bus.status("b").unwrap().state, JobState::Done);
    assert_eq!(bus.stats().groups[0].remembered, 2);
    clock.advance(60_000_000);
    assert!(bus.status("c").is_none(), "aged out");
    assert!(bus.status("never").is_none());
}

#[test]
fn full_group_queues_apply_the_overflow_policy() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let gates = Gates::default();
    let g = gates.clone();
    bus.subscribe_async(
        "q",
        move |m: Message<u32>| g.wait(&m.payload().to_string()),
        SubscribeOptions::default()
            .group("w")
            .max_queue(2)
            .overflow(Overflow::Reject),
    )
    .unwrap();
    bus.publish("q", 1).unwrap();
    bus.run_pending();
    bus.publish("q", 2).unwrap();
    bus.publish("q", 3).unwrap();
    assert_eq!(
        bus.publish("q", 4).unwrap_err().code(),
        ErrorCode::QueueFull
    );
    let (bus2, _) = virtual_bus::<u32>(|_| {});
    let g2 = gates.clone();
    bus2.subscribe_async(
        "q",
        move |m: Message<u32>| g2.wait(&format!("x{}", m.payload())),
        SubscribeOptions::default()
            .group("w")
            .max_queue(2)
            .overflow(Overflow::DropOldest),
    )
    .unwrap();
    for (i, prio) in [(1, 0), (2, 0), (3, 1), (4, 0)] {
        bus2.publish_with("q", i, PublishOptions::new().priority(prio))
            .unwrap();
    }
    // 1 runs; 2 is the oldest of the lowest priority when 4 arrives.
    let st = &bus2.stats().groups[0];
    assert_eq!((st.depth, st.dropped), (2, 1));
    gates.release("x1", Ok(()));
    bus2.run_pending();
    assert!(gates.waiting().contains(&"x3".to_string()));
}

#[test]
fn group_options_are_checked() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let err = |o: SubscribeOptions| match bus.subscribe_with("q", |_| Ok(()), o) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    };
    for bad in ["", "a..b", "$sys", "a.*", "a.>", "has space"] {
        let e = err(SubscribeOptions::default().group(bad));
        assert_eq!(e.code(), ErrorCode::InvalidOption, "{bad:?}");
        assert!(e.message().contains("group"), "{}", e.message());
    }
    let e = err(SubscribeOptions::default().group("w").retry(retry(0, 1, 1)));
    assert!(e.message().contains("maxAttempts"), "{}", e.message());
    let e = err(SubscribeOptions::default()
        .group("w")
        .retry(retry(2, 10, 5)));
    assert!(e.message().contains("backoff"), "{}", e.message());
    bus.subscribe_with(
        "q",
        |_| Ok(()),
        SubscribeOptions::default()
            .group("w")
            .retry(retry(3, 10, 100)),
    )
    .unwrap();
    let e = err(SubscribeOptions::default()
        .group("w")
        .retry(retry(4, 10, 100)));
    assert_eq!(e.code(), ErrorCode::InvalidOption);
    assert!(
        e.message().contains("already has maxAttempts 3"),
        "{}",
        e.message()
    );
    let e = err(SubscribeOptions::default().group("w").max_queue(5));
    assert!(e.message().contains("maxQueue"), "{}", e.message());
    // A member that names nothing takes the group's settings.
    bus.subscribe_with("q", |_| Ok(()), SubscribeOptions::default().group("w"))
        .unwrap();
    assert_eq!(bus.stats().groups[0].members, 2);
}

#[test]
fn publish_batch_reaches_groups() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let sum = Rc::new(Cell::new(0));
    for _ in 0..2 {
        let s = sum.clone();
        bus.subscribe_with(
            "q",
            move |m| {
                s.set(s.get() + m.payload());
                Ok(())
            },
            SubscribeOptions::default().group("w"),
        )
        .unwrap();
    }
    assert_eq!(bus.publish_batch("q", (1..=100).collect()).unwrap(), 100);
    bus.run_until_idle();
    assert_eq!(sum.get(), 5050);
    assert_eq!(bus.stats().groups[0].done, 100);
}

/// For random workloads with random failures and missed ack deadlines, driven straight through
/// the sans-IO broker: every message ends done or dead, no message is in two live deliveries at
/// once, no key is in two live deliveries at once, and each key's messages start in publish
/// order.
#[cfg(not(target_arch = "wasm32"))]
mod property {
    use edgebus::{
        BatchPolicy, Broker, BrokerConfig, DeliveryId, Event, GroupOptions, Items, JobState,
        Outgoing, PublishMode, RetryPolicy, SubscribeOptions,
    };
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};
    use std::rc::Rc;

    #[derive(Debug, Clone)]
    struct MemberSpec {
        concurrency: u32,
        claim: Option<usize>,
        ack_timeout: bool,
    }

    #[derive(Debug, Clone)]
    enum Step {
        Publish,
        Settle(usize),
        Hang(usize),
        Advance(u64),
    }

    fn member() -> impl Strategy<Value = MemberSpec> {
        (1u32..3, prop::option::of(2usize..5), any::<bool>()).prop_map(|(c, claim, t)| MemberSpec {
            concurrency: if claim.is_some() { 1 } else { c },
            claim,
            ack_timeout: t,
        })
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => Just(Step::Publish),
            4 => (0usize..8).prop_map(Step::Settle),
            1 => (0usize..8).prop_map(Step::Hang),
            2 => (1u64..40_000).prop_map(Step::Advance),
        ]
    }

    struct Live {
        msgs: Vec<(u32, Option<Rc<str>>)>,
    }

    /// How the published messages vary, each list used in turn: keys, priorities, and attempts
    /// made before publishing (the publish option `attempts`).
    struct Spread {
        keys: Vec<Option<u8>>,
        priorities: Vec<u32>,
        prior: Vec<u32>,
    }

    fn run(
        members: Vec<MemberSpec>,
        max_attempts: u32,
        n: usize,
        spread: Spread,
        fail_bits: Vec<bool>,
        steps: Vec<Step>,
    ) -> Result<(), TestCaseError> {
        let Spread {
            keys,
            priorities,
            prior,
        } = spread;
        // Attempts made before message `i` was published.
        let prior_of = |i: u32| prior[(i as usize - 1) % prior.len()];
        let mut b: Broker<u32> = Broker::new(BrokerConfig::default()).unwrap();
        for m in &members {
            b.subscribe(
                "jobs.*",
                &SubscribeOptions {
                    concurrency: m.concurrency,
                    timeout: m.ack_timeout.then_some(50_000),
                    batch: m.claim.map(|s| BatchPolicy {
                        max_size: s,
                        max_wait: 0,
                        ..BatchPolicy::default()
                    }),
                    group: Some(GroupOptions {
                        name: "g".into(),
                        retry: Some(RetryPolicy {
                            max_attempts,
                            backoff_initial: 10_000,
                            backoff_max: 40_000,
                        }),
                    }),
                    ..SubscribeOptions::default()
                },
            )
            .unwrap();
        }
        let fails =
            |i: u32, attempt: u32| fail_bits[(i as usize * 7 + attempt as usize) % fail_bits.len()];
        let mut now = 0u64;
        let mut published = 0usize;
        let mut live: HashMap<DeliveryId, Live> = HashMap::new();
        let mut order: Vec<DeliveryId> = Vec::new();
        let mut last_started: HashMap<Rc<str>, u32> = HashMap::new();
        let dead_letters = std::cell::Cell::new(0usize);
        let mut drive = |b: &mut Broker<u32>,
                         now: u64,
                         live: &mut HashMap<DeliveryId, Live>,
                         order: &mut Vec<DeliveryId>|
         -> Result<(), TestCaseError> {
            b.fire_timers(now);
            loop {
                while let Some(e) = b.poll_event() {
                    match e {
                        Event::TimedOut { delivery, .. } => {
                            live.remove(&delivery);
                        }
                        Event::Dead => {
                            while b.take_dead().is_some() {
                                dead_letters.set(dead_letters.get() + 1);
                            }
                        }
                        _ => {}
                    }
                }
                let Some(d) = b.next_delivery(now) else { break };
                let msgs: Vec<_> = match d.items {
                    Items::One(m) => vec![m],
                    Items::Batch(ms) => ms,
                };
                let ids_live: HashSet<u32> = live
                    .values()
                    .flat_map(|l| l.msgs.iter().map(|(i, _)| *i))
                    .collect();
                let keys_live: HashSet<Rc<str>> = live
                    .values()
                    .flat_map(|l| l.msgs.iter().filter_map(|(_, k)| k.clone()))
                    .collect();
                let mut entry = Vec::new();
                for m in &msgs {
                    let i = *m.payload();
                    prop_assert!(
                        !ids_live.contains(&i),
                        "message {i} handed out twice at once"
                    );
                    prop_assert!(
                        m.attempt() > prior_of(i) && m.attempt() <= max_attempts,
                        "message {i} delivered as attempt {} ({} made before, max {max_attempts})",
                        m.attempt(),
                        prior_of(i)
                    );
                    if let Some(k) = m.key() {
                        let k: Rc<str> = Rc::from(k);
                        prop_assert!(!keys_live.contains(&k), "key {k} in two live deliveries");
                        let prev = last_started.get(&k).copied().unwrap_or(0);
                        prop_assert!(i >= prev, "key {k}: message {i} started after {prev}");
                        last_started.insert(k.clone(), i);
                        entry.push((i, Some(k)));
                    } else {
                        entry.push((i, None));
                    }
                }
                let keyed_in_batch: Vec<_> = entry.iter().filter_map(|(_, k)| k.clone()).collect();
                let unique: HashSet<_> = keyed_in_batch.iter().collect();
                prop_assert_eq!(
                    unique.len(),
                    keyed_in_batch.len(),
                    "one key twice in a batch"
                );
                live.insert(d.id, Live { msgs: entry });
                order.push(d.id);
            }
            Ok(())
        };
        for s in steps {
            match s {
                Step::Publish if published < n => {
                    let i = published as u32 + 1;
                    let key = keys[published % keys.len()].map(|k| Rc::from(format!("k{k}")));
                    let out = Outgoing {
                        id: Some(Rc::from(format!("m{i}"))),
                        key,
                        priority: priorities[published % priorities.len()],
                        attempts: prior_of(i),
                        ..Outgoing::new(i)
                    };
                    b.publish("jobs.x", out, now, PublishMode::Now).unwrap();
                    published += 1;
                }
                Step::Publish => {}
                Step::Settle(k) | Step::Hang(k) if order.is_empty() => {
                    let _ = k;
                }
                Step::Settle(k) => {
                    let id = order.remove(k % order.len());
                    if let Some(l) = live.remove(&id) {
                        let ok = !l.msgs.iter().any(|(i, _)| fails(*i, 0));
                        b.complete(id, ok, now);
                    } else {
                        // Timed out earlier: a late result must change nothing.
                        b.complete(id, true, now);
                    }
                }
                Step::Hang(k) => {
                    // Leave it running; its ack deadline (if any) will fire.
                    let _ = k;
                }
                Step::Advance(us) => now += us,
            }
            drive(&mut b, now, &mut live, &mut order)?;
        }
        while published < n {
            let i = published as u32 + 1;
            let key = keys[published % keys.len()].map(|k| Rc::from(format!("k{k}")));
            let out = Outgoing {
                id: Some(Rc::from(format!("m{i}"))),
                key,
                priority: priorities[published % priorities.len()],
                attempts: prior_of(i),
                ..Outgoing::new(i)
            };
            b.publish("jobs.x", out, now, PublishMode::Now).unwrap();
            published += 1;
        }
        drive(&mut b, now, &mut live, &mut order)?;
        // Settle everything still running, then let retries come due, until idle.
        let mut rounds = 0;
        while !(b.is_idle() && live.is_empty()) {
            rounds += 1;
            prop_assert!(rounds < 10_000, "never became idle");
            for id in std::mem::take(&mut order) {
                if let Some(l) = live.remove(&id) {
                    let attempt_fail = l.msgs.iter().any(|(i, _)| fails(*i, 1));
                    b.complete(id, !attempt_fail, now);
                }
            }
            now += 5_000;
            drive(&mut b, now, &mut live, &mut order)?;
        }
        let st = b.stats();
        let g = &st.groups[0];
        let mut done = 0;
        let mut dead = 0;
        for i in 1..=n {
            let s = b
                .status(&format!("m{i}"), None, now)
                .expect("every id known");
            match s.state {
                JobState::Done => {
                    prop_assert!(
                        prior_of(i as u32) < max_attempts,
                        "m{i} done without a try left"
                    );
                    done += 1
                }
                JobState::Dead => {
                    prop_assert_eq!(s.attempts, max_attempts.max(prior_of(i as u32)));
                    dead += 1
                }
                other => prop_assert!(false, "m{i} ended {other:?}"),
            }
        }
        prop_assert_eq!(done + dead, n);
        prop_assert_eq!(g.done as usize, done);
        prop_assert_eq!(g.dead as usize, dead);
        prop_assert_eq!((g.depth, g.in_flight), (0, 0));
        prop_assert_eq!(dead_letters.get(), dead, "one dead letter per dead message");
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn every_message_ends_done_or_dead_and_keys_keep_order(
            members in prop::collection::vec(member(), 1..4),
            max_attempts in 1u32..4,
            n in 1usize..40,
            keys in prop::collection::vec(prop::option::of(0u8..3), 1..6),
            priorities in prop::collection::vec(0u32..3, 1..5),
            prior in prop::collection::vec(prop_oneof![3 => Just(0u32), 1 => 1u32..5], 1..4),
            fail_bits in prop::collection::vec(any::<bool>(), 1..16),
            steps in prop::collection::vec(step(), 0..120),
        ) {
            let spread = Spread { keys, priorities, prior };
            run(members, max_attempts, n, spread, fail_bits, steps)?;
        }
    }
}

/// A dead letter as the shared data file writes it (`tests/data/dead-letters.json`).
fn letter_json(l: &DeadLetter<String>) -> serde_json::Value {
    let m = &l.message;
    let mut message = serde_json::json!({
        "topic": m.topic(),
        "payload": m.payload(),
        "attempt": m.attempt(),
    });
    if let Some(id) = m.id() {
        message["id"] = id.into();
    }
    if let Some(key) = m.key() {
        message["key"] = key.into();
    }
    serde_json::json!({
        "group": &*l.group,
        "topic": &*l.topic,
        "attempts": l.attempts,
        "error": { "code": l.error.code.as_str(), "message": &*l.error.message },
        "message": message,
    })
}

/// The code and message of a reported failure.
fn reported(r: &edgebus::ErrorReport<String>) -> serde_json::Value {
    let message = match r.error.downcast_ref::<edgebus::Error>() {
        Some(e) => e.message().to_string(),
        None => r.error.to_string(),
    };
    serde_json::json!({ "code": r.code.as_str(), "message": message })
}

#[test]
fn dead_letters_have_the_one_shape_of_the_shared_data() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("data/dead-letters.json")).unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let reports = Rc::new(RefCell::new(Vec::new()));
        let r = reports.clone();
        let (bus, _) = virtual_bus::<String>(|o| {
            o.on_error = Some(Rc::new(move |e| r.borrow_mut().push(reported(e))));
        });
        let sub = &case["subscribe"];
        let backoff = &sub["backoff"];
        let mut options = SubscribeOptions::default()
            .group(sub["group"].as_str().unwrap())
            .retry(retry(
                sub["maxAttempts"].as_u64().unwrap() as u32,
                backoff["initialMs"].as_u64().unwrap(),
                backoff["maxMs"].as_u64().unwrap(),
            ));
        if let Some(t) = sub["ackTimeoutMs"].as_u64() {
            options = options.timeout(ms(t));
        }
        let pattern = sub["pattern"].as_str().unwrap();
        match case["handler"]["throws"].as_str() {
            Some(text) => {
                let text = text.to_string();
                bus.subscribe_with(pattern, move |_| Err(text.clone().into()), options)
                    .unwrap();
            }
            None => {
                bus.subscribe_async(
                    pattern,
                    |_: Message<String>| futures::future::pending(),
                    options,
                )
                .unwrap();
            }
        }
        let letters = Rc::new(RefCell::new(Vec::new()));
        let l = letters.clone();
        bus.subscribe("$dead.>", move |m| {
            l.borrow_mut().push((
                m.topic().to_string(),
                letter_json(m.dead_letter().expect("a dead letter")),
            ));
            Ok(())
        })
        .unwrap();
        let p = &case["publish"];
        let mut o = PublishOptions::new().id(p["id"].as_str().unwrap());
        if let Some(key) = p["key"].as_str() {
            o = o.key(key);
        }
        if let Some(attempts) = p["attempts"].as_u64() {
            o = o.attempts(attempts as u32);
        }
        bus.publish_with(
            p["topic"].as_str().unwrap(),
            p["payload"].as_str().unwrap().to_string(),
            o,
        )
        .unwrap();
        assert!(bus.run_until_idle(), "{name}");
        assert_eq!(
            *letters.borrow(),
            [(
                case["deadTopic"].as_str().unwrap().to_string(),
                case["letter"].clone()
            )],
            "{name}"
        );
        assert_eq!(*reports.borrow(), [case["reported"].clone()], "{name}");
    }
}

#[test]
fn a_plain_handler_timeout_reports_the_shared_message() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("data/dead-letters.json")).unwrap();
    let case = &doc["plainTimeout"];
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    let (bus, _) = virtual_bus::<String>(|o| {
        o.on_error = Some(Rc::new(move |e| r.borrow_mut().push(reported(e))));
    });
    bus.subscribe_async(
        "t",
        |_: Message<String>| futures::future::pending(),
        SubscribeOptions::default().timeout(ms(case["timeoutMs"].as_u64().unwrap())),
    )
    .unwrap();
    bus.publish("t", "x".into()).unwrap();
    assert!(bus.run_until_idle());
    assert_eq!(*reports.borrow(), [case["reported"].clone()]);
}

#[test]
fn a_message_of_a_failed_batch_claim_is_retried_alone_never_with_fresh_messages() {
    let errors = log();
    let e = errors.clone();
    let (bus, clock) = virtual_bus::<String>(|o| {
        o.on_error = Some(Rc::new(move |r| {
            let ids: Vec<&str> = r.messages.iter().map(|m| m.payload().as_str()).collect();
            e.borrow_mut()
                .push(format!("{} {} {}", r.code, ids.join(","), r.attempts))
        }))
    });
    let calls = log();
    let c = calls.clone();
    bus.subscribe_batch(
        "q",
        move |ms: &[Message<String>]| {
            let ids: Vec<String> = ms
                .iter()
                .map(|m| format!("{}#{}", m.payload(), m.attempt()))
                .collect();
            c.borrow_mut().push(format!("[{}]", ids.join(",")));
            if ms.iter().any(|m| m.payload() == "X") {
                Err("X is poison".into())
            } else {
                Ok(())
            }
        },
        SubscribeOptions::default()
            .group("w")
            .claim(10, ms(100))
            .retry(retry(2, 10, 10)),
    )
    .unwrap();
    let dead = log();
    let d = dead.clone();
    bus.subscribe("$dead.w", move |m| {
        d.borrow_mut().push(m.payload().clone());
        Ok(())
    })
    .unwrap();
    bus.publish("q", "X".into()).unwrap();
    // X waits for a fuller batch, then goes alone and fails.
    clock.advance(100_000);
    bus.run_pending();
    assert_eq!(*calls.borrow(), ["[X#1]"]);
    // Y arrives while X waits for its retry; X's retry must not take Y down with it.
    clock.advance(2_000);
    bus.publish("q", "Y".into()).unwrap();
    assert!(bus.run_until_idle());
    assert_eq!(*calls.borrow(), ["[X#1]", "[X#2]", "[Y#1]"]);
    assert_eq!(*dead.borrow(), ["X"]);
    // X's death is reported once, as its own failure, like any final failure.
    assert_eq!(*errors.borrow(), ["HANDLER_FAILED X 2"]);
    let g = &bus.stats().groups[0];
    assert_eq!((g.done, g.dead, g.retried), (1, 1, 1));
}

#[test]
fn a_failed_message_whose_ttl_ends_before_its_retry_is_dead_and_reported_once() {
    let errors = log();
    let e = errors.clone();
    let (bus, _) = virtual_bus::<u32>(|o| {
        o.on_error = Some(Rc::new(move |r| {
            e.borrow_mut().push(format!("{} {}", r.code, r.attempts))
        }))
    });
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    bus.subscribe_batch(
        "q",
        move |_: &[Message<u32>]| {
            c.set(c.get() + 1);
            Err("down".into())
        },
        SubscribeOptions::default()
            .group("w")
            .claim(10, ms(0))
            .retry(retry(5, 100, 100)),
    )
    .unwrap();
    let dead = log();
    let d = dead.clone();
    bus.subscribe("$dead.w", move |m| {
        let l = m.dead_letter().unwrap();
        d.borrow_mut().push(format!(
            "{} {} {}",
            m.payload(),
            l.attempts,
            l.error.message
        ));
        Ok(())
    })
    .unwrap();
    // Its TTL (40 ms) ends before the earliest retry (50 ms, the jittered 100 ms backoff).
    bus.publish_with("q", 7, with_id("m").ttl(ms(40))).unwrap();
    assert!(bus.run_until_idle());
    assert_eq!(calls.get(), 1);
    assert_eq!(*dead.borrow(), ["7 1 down"]);
    assert_eq!(*errors.borrow(), ["HANDLER_FAILED 1"]);
    let st = bus.stats();
    // Counted once: delivered, then failed for good; not expired.
    assert_eq!((st.delivered, st.failed, st.expired), (2, 1, 0));
    let g = &st.groups[0];
    assert_eq!((g.dead, g.expired, g.retried), (1, 0, 0));
    assert_eq!(bus.status("m").unwrap().state, JobState::Dead);
}

#[test]
fn drop_newest_on_a_full_group_counts_the_message_published_and_dropped() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let gates = Gates::default();
    let g = gates.clone();
    bus.subscribe_async(
        "q",
        move |m: Message<u32>| g.wait(&m.payload().to_string()),
        SubscribeOptions::default()
            .group("w")
            .max_queue(1)
            .overflow(Overflow::DropNewest),
    )
    .unwrap();
    bus.publish_with("q", 1, with_id("a")).unwrap();
    bus.run_pending();
    bus.publish_with("q", 2, with_id("b")).unwrap();
    bus.publish_with("q", 3, with_id("c")).unwrap();
    let g = &bus.stats().groups[0];
    assert_eq!((g.published, g.depth, g.dropped), (3, 1, 1));
    let st = bus.status("c").unwrap();
    assert_eq!((st.state, st.attempts), (JobState::Dropped, 0));
    assert_eq!(bus.status("b").unwrap().state, JobState::Pending);
    gates.release("1", Ok(()));
    bus.run_pending();
    gates.release("2", Ok(()));
    assert!(bus.run_until_idle());
    assert_eq!(bus.stats().groups[0].done, 2);
}

#[test]
fn close_lists_a_pending_retry_instead_of_waiting_out_its_backoff() {
    let (bus, clock) = virtual_bus::<u32>(|_| {});
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    bus.subscribe_with(
        "q",
        move |_| {
            c.set(c.get() + 1);
            Err("down".into())
        },
        SubscribeOptions::default()
            .group("w")
            .retry(retry(5, 3_600_000, 3_600_000)),
    )
    .unwrap();
    bus.publish_with("q", 1, with_id("r")).unwrap();
    bus.run_pending();
    assert_eq!(bus.status("r").unwrap().state, JobState::Failed);
    let before = clock.now();
    let left = futures::executor::block_on(bus.close());
    // The backoff (at least 30 minutes) was not waited out: the retry is listed, not run.
    assert_eq!(clock.now(), before);
    assert_eq!(calls.get(), 1);
    let left: Vec<String> = left
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.message.id().unwrap(),
                r.state.as_str(),
                r.attempts
            )
        })
        .collect();
    assert_eq!(left, ["r failed 1"]);
    assert_eq!(bus.status("r").unwrap().state, JobState::Failed);
}

#[test]
fn a_failed_message_whose_ttl_ends_while_members_are_busy_is_dead_not_expired() {
    let errors = log();
    let e = errors.clone();
    let (bus, clock) = virtual_bus::<u32>(|o| {
        o.on_error = Some(Rc::new(move |r| {
            e.borrow_mut().push(format!(
                "{} {} {}",
                r.code,
                r.messages[0].payload(),
                r.attempts
            ))
        }))
    });
    let gates = Gates::default();
    let g = gates.clone();
    bus.subscribe_async(
        "q",
        move |m: Message<u32>| {
            let gate = g.wait(&m.payload().to_string());
            async move {
                if *m.payload() == 7 {
                    return Err("down".into());
                }
                gate.await
            }
        },
        SubscribeOptions::default()
            .group("w")
            .concurrency(2)
            .retry(retry(5, 10, 10)),
    )
    .unwrap();
    let dead = log();
    let d = dead.clone();
    bus.subscribe("$dead.w", move |m| {
        d.borrow_mut().push(m.payload().to_string());
        Ok(())
    })
    .unwrap();
    bus.publish_with("q", 7, with_id("m").ttl(ms(500))).unwrap();
    bus.publish("q", 1).unwrap();
    bus.run_pending();
    bus.publish("q", 2).unwrap();
    bus.run_pending();
    assert_eq!(bus.status("m").unwrap().state, JobState::Failed);
    // Its retry comes due while both slots are busy; its TTL ends before a slot frees.
    clock.advance(600_000);
    bus.run_pending();
    assert_eq!(bus.status("m").unwrap().state, JobState::Pending);
    gates.release("1", Ok(()));
    bus.run_pending();
    assert_eq!(bus.status("m").unwrap().state, JobState::Dead);
    assert_eq!(*dead.borrow(), ["7"]);
    assert_eq!(*errors.borrow(), ["HANDLER_FAILED 7 1"]);
    gates.release("2", Ok(()));
    assert!(bus.run_until_idle());
    let st = bus.stats();
    assert_eq!((st.failed, st.expired), (1, 0));
    let g = &st.groups[0];
    assert_eq!((g.done, g.dead, g.expired, g.retried), (2, 1, 0, 1));
}

#[test]
fn publish_async_waits_for_a_ttl_to_make_room_in_a_work_queue_without_members() {
    let (bus, clock) = virtual_bus::<u32>(|_| {});
    let seen = log();
    let s = seen.clone();
    let options = || {
        SubscribeOptions::default()
            .group("w")
            .max_queue(1)
            .overflow(Overflow::Wait)
    };
    bus.subscribe_with("q", |_| Ok(()), options())
        .unwrap()
        .unsubscribe();
    let start = clock.now();
    bus.publish_with("q", 1, PublishOptions::new().ttl(ms(40)))
        .unwrap();
    assert_eq!(
        bus.publish("q", 2).unwrap_err().code(),
        ErrorCode::QueueFull
    );
    // Nothing runs and nobody can join while it waits: the waiting message's TTL makes room.
    assert!(futures::executor::block_on(bus.publish_async("q", 2, PublishOptions::new())).unwrap());
    assert_eq!(
        clock.now() - start,
        40_000,
        "it waited until the TTL ended, no longer"
    );
    let g = &bus.stats().groups[0];
    assert_eq!((g.expired, g.depth), (1, 1));
    // Without a TTL nothing can make room: refused, nothing waited for.
    let e =
        futures::executor::block_on(bus.publish_async("q", 3, PublishOptions::new())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::QueueFull);
    assert_eq!(clock.now() - start, 40_000);
    bus.subscribe_with(
        "q",
        move |m| {
            s.borrow_mut().push(m.payload().to_string());
            Ok(())
        },
        options(),
    )
    .unwrap();
    assert!(bus.run_until_idle());
    assert_eq!(*seen.borrow(), ["2"]);
    let st = bus.stats();
    assert_eq!((st.published, st.expired), (2, 1));
}
