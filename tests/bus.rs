//! Behaviour of the Rust `Bus`: one suite, run natively (`cargo test`) and as WebAssembly under
//! `wasm-bindgen-test` in Node and in headless Chromium. Time is virtual (`ManualClock`).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use edgebus::{
    BatchPolicy, Batcher, Bus, BusOptions, Clock, DedupeWindow, ErrorCode, ManualClock, Message,
    Overflow, PublishOptions, SubscribeOptions,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

mod common;
use common::*;

#[test]
fn conformance_vectors_through_the_bus() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("data/topics.json")).unwrap();
    for row in doc["match"].as_array().unwrap() {
        let (pattern, topic, expected) = (
            row[0].as_str().unwrap(),
            row[1].as_str().unwrap(),
            row[2].as_bool().unwrap(),
        );
        let (bus, _) = virtual_bus::<()>(|_| {});
        let hits = Rc::new(Cell::new(0));
        let h = hits.clone();
        bus.subscribe(pattern, move |_| {
            h.set(h.get() + 1);
            Ok(())
        })
        .unwrap();
        bus.publish(topic, ()).unwrap();
        assert_eq!(hits.get() == 1, expected, "{pattern} vs {topic}");
    }
    let (bus, _) = virtual_bus::<()>(|_| {});
    for p in doc["invalid_patterns"].as_array().unwrap() {
        let e = bus
            .subscribe(p.as_str().unwrap(), |_| Ok(()))
            .err()
            .unwrap();
        assert_eq!(e.code(), ErrorCode::InvalidPattern, "{p}");
    }
    for t in doc["invalid_topics"].as_array().unwrap() {
        let e = bus.publish(t.as_str().unwrap(), ()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidTopic, "{t}");
    }
    // The bus still works after every refusal.
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    bus.subscribe("ok.*", move |_| {
        h.set(h.get() + 1);
        Ok(())
    })
    .unwrap();
    bus.publish("ok.yes", ()).unwrap();
    assert_eq!(hits.get(), 1);
}

#[test]
fn sync_handlers_run_before_publish_returns_in_subscription_order() {
    let (bus, _) = virtual_bus::<String>(|_| {});
    let seen = log();
    for (i, p) in ["a.*", ">", "a.b", "x.y"].iter().enumerate() {
        let s = seen.clone();
        bus.subscribe(p, move |m| {
            s.borrow_mut().push(format!("{i}:{}", m.payload()));
            Ok(())
        })
        .unwrap();
    }
    assert!(bus.publish("a.b", "m".into()).unwrap());
    assert_eq!(*seen.borrow(), ["0:m", "1:m", "2:m"]);
    let st = bus.stats();
    assert_eq!((st.published, st.delivered, st.subscriptions), (1, 3, 4));
}

#[test]
fn publish_from_a_handler_runs_after_it_and_before_the_outer_publish_returns() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let seen = log();
    let (b, s) = (bus.clone(), seen.clone());
    bus.subscribe("first", move |_| {
        s.borrow_mut().push("first:start".into());
        b.publish("second", 2).unwrap();
        s.borrow_mut().push("first:end".into());
        Ok(())
    })
    .unwrap();
    let s = seen.clone();
    bus.subscribe("second", move |_| {
        s.borrow_mut().push("second".into());
        Ok(())
    })
    .unwrap();
    bus.publish("first", 1).unwrap();
    assert_eq!(*seen.borrow(), ["first:start", "first:end", "second"]);
}

#[test]
fn a_million_chained_publishes_use_constant_stack() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let count = Rc::new(Cell::new(0u32));
    let (b, c) = (bus.clone(), count.clone());
    bus.subscribe("chain", move |m| {
        c.set(c.get() + 1);
        if *m.payload() > 1 {
            b.publish("chain", m.payload() - 1).unwrap();
        }
        Ok(())
    })
    .unwrap();
    bus.publish("chain", 1_000_000).unwrap();
    assert_eq!(count.get(), 1_000_000);
    assert!(bus.is_idle());
}

#[test]
fn async_handler_with_concurrency_one_is_strict_fifo() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let gates = Gates::default();
    let g = gates.clone();
    bus.subscribe_async(
        "jobs",
        move |m: Message<u32>| g.wait(&m.payload().to_string()),
        SubscribeOptions::default(),
    )
    .unwrap();
    for i in 1..=3 {
        bus.publish("jobs", i).unwrap();
    }
    bus.run_pending();
    assert_eq!(gates.waiting(), ["1"]);
    assert_eq!(bus.stats().queued, 2);
    gates.release("1", Ok(()));
    bus.run_pending();
    assert_eq!(gates.waiting(), ["2"]);
    gates.release("2", Ok(()));
    bus.run_pending();
    gates.release("3", Ok(()));
    assert!(bus.run_until_idle());
    let st = bus.stats();
    assert_eq!(
        (st.delivered, st.failed, st.queued, st.in_flight),
        (3, 0, 0, 0)
    );
}

#[test]
fn keyed_messages_never_overlap_and_keep_order_under_concurrency() {
    let (bus, _) = virtual_bus::<Job>(|_| {});
    let gates = Gates::default();
    let running: Rc<RefCell<Vec<String>>> = Rc::default();
    let started = log();
    let (g, r, s) = (gates.clone(), running.clone(), started.clone());
    bus.subscribe_async(
        "k",
        move |m: Message<Job>| {
            let Job(key, n) = m.payload().clone();
            let name = format!("{key}{n}");
            assert!(
                !r.borrow().iter().any(|x| x.starts_with(&key)),
                "two messages of key {key} overlap"
            );
            r.borrow_mut().push(name.clone());
            s.borrow_mut().push(name.clone());
            let wait = g.wait(&name);
            let r = r.clone();
            async move {
                let out = wait.await;
                r.borrow_mut().retain(|x| *x != name);
                out
            }
        },
        SubscribeOptions::default().concurrency(3),
    )
    .unwrap();
    for (key, n) in [("a", 1), ("a", 2), ("b", 1), ("a", 3), ("c", 1), ("b", 2)] {
        bus.publish_with("k", Job(key.into(), n), PublishOptions::new().key(key))
            .unwrap();
    }
    bus.run_pending();
    // Three slots: a1, b1, c1 run; a2, a3, b2 wait behind their keys.
    assert_eq!(gates.waiting(), ["a1", "b1", "c1"]);
    gates.release("b1", Ok(()));
    bus.run_pending();
    assert_eq!(gates.waiting(), ["a1", "b2", "c1"]);
    gates.release("a1", Ok(()));
    bus.run_pending();
    assert_eq!(gates.waiting(), ["a2", "b2", "c1"]);
    gates.release("a2", Ok(()));
    bus.run_pending();
    gates.release("a3", Ok(()));
    gates.release("b2", Ok(()));
    gates.release("c1", Ok(()));
    assert!(bus.run_until_idle());
    let order = started.borrow();
    let of =
        |k: &str| -> Vec<String> { order.iter().filter(|x| x.starts_with(k)).cloned().collect() };
    assert_eq!(of("a"), ["a1", "a2", "a3"]);
    assert_eq!(of("b"), ["b1", "b2"]);
}

/// A keyed job for the ordering test.
#[derive(Clone)]
struct Job(String, u32);
impl edgebus::ByteSize for Job {}

fn blocked_bus(overflow: Overflow, max_queue: usize) -> (Bus<u32>, Gates, Log) {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let gates = Gates::default();
    let seen = log();
    let (g, s) = (gates.clone(), seen.clone());
    bus.subscribe_async(
        "q",
        move |m: Message<u32>| {
            s.borrow_mut().push(m.payload().to_string());
            g.wait(&m.payload().to_string())
        },
        SubscribeOptions::default()
            .max_queue(max_queue)
            .overflow(overflow),
    )
    .unwrap();
    (bus, gates, seen)
}

fn finish_all(bus: &Bus<u32>, gates: &Gates) {
    for _ in 0..100 {
        bus.run_pending();
        let w = gates.waiting();
        if w.is_empty() {
            break;
        }
        for name in w {
            gates.release(&name, Ok(()));
        }
    }
    assert!(bus.run_until_idle());
}

#[test]
fn overflow_drop_oldest_and_drop_newest_count_drops() {
    let (bus, gates, seen) = blocked_bus(Overflow::DropOldest, 2);
    for i in 1..=5 {
        bus.publish("q", i).unwrap();
    }
    finish_all(&bus, &gates);
    assert_eq!(*seen.borrow(), ["1", "4", "5"]);
    assert_eq!(bus.stats().dropped, 2);
    assert_eq!(bus.stats().per_subscription[0].dropped, 2);

    let (bus, gates, seen) = blocked_bus(Overflow::DropNewest, 2);
    for i in 1..=5 {
        bus.publish("q", i).unwrap();
    }
    finish_all(&bus, &gates);
    assert_eq!(*seen.borrow(), ["1", "2", "3"]);
    assert_eq!(bus.stats().dropped, 2);
}

#[test]
fn overflow_reject_refuses_atomically() {
    let (bus, gates, seen) = blocked_bus(Overflow::Reject, 1);
    let other = Rc::new(Cell::new(0));
    let o = other.clone();
    bus.subscribe("q", move |_| {
        o.set(o.get() + 1);
        Ok(())
    })
    .unwrap();
    bus.publish("q", 1).unwrap(); // starts
    bus.publish("q", 2).unwrap(); // queued
    let e = bus.publish("q", 3).unwrap_err();
    assert_eq!(e.code(), ErrorCode::QueueFull);
    assert!(e.message().contains("maxQueue 1"), "{e}");
    // Nobody received the refused message, not even the subscription with room.
    assert_eq!(other.get(), 2);
    assert_eq!(bus.stats().published, 2);
    finish_all(&bus, &gates);
    assert_eq!(*seen.borrow(), ["1", "2"]);
    // Room again: publishing works.
    bus.publish("q", 4).unwrap();
    finish_all(&bus, &gates);
    assert_eq!(*seen.borrow(), ["1", "2", "4"]);
}

/// Pending once, then ready: an async handler that finishes as soon as the bus runs its tasks.
struct YieldOnce(bool);
impl std::future::Future for YieldOnce {
    type Output = edgebus::HandlerResult;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if self.0 {
            return std::task::Poll::Ready(Ok(()));
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

#[test]
fn overflow_wait_publish_async_waits_for_room() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let seen = log();
    let s = seen.clone();
    bus.subscribe_async(
        "q",
        move |m: Message<u32>| {
            s.borrow_mut().push(m.payload().to_string());
            YieldOnce(false)
        },
        SubscribeOptions::default()
            .max_queue(1)
            .overflow(Overflow::Wait),
    )
    .unwrap();
    bus.publish("q", 1).unwrap(); // running
    bus.publish("q", 2).unwrap(); // queued: the queue is full
    let e = bus.publish("q", 3).unwrap_err();
    assert_eq!(e.code(), ErrorCode::QueueFull);
    assert!(e.message().contains("publishAsync"), "{e}");
    assert_eq!(bus.stats().published, 2);
    // publish_async runs the bus until 1 finishes and 2 starts, then enqueues 3.
    assert!(futures::executor::block_on(bus.publish_async("q", 3, PublishOptions::new())).unwrap());
    assert!(
        seen.borrow().len() >= 2,
        "it waited for the handler to make room"
    );
    assert!(bus.run_until_idle());
    assert_eq!(*seen.borrow(), ["1", "2", "3"]);
    assert_eq!(bus.stats().dropped, 0);
}

#[test]
fn publish_async_fails_when_nothing_can_make_room_on_virtual_time() {
    let (bus, gates, _) = blocked_bus(Overflow::Wait, 1);
    bus.publish("q", 1).unwrap();
    bus.publish("q", 2).unwrap();
    let e =
        futures::executor::block_on(bus.publish_async("q", 3, PublishOptions::new())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::QueueFull);
    finish_all(&bus, &gates);
}

#[test]
fn ttl_expired_messages_are_never_delivered_and_are_counted() {
    let (bus, gates, seen) = blocked_bus(Overflow::DropOldest, 10);
    let clock = bus.clock();
    bus.publish("q", 1).unwrap();
    bus.publish_with("q", 2, PublishOptions::new().ttl(Duration::from_millis(5)))
        .unwrap();
    bus.publish_with("q", 3, PublishOptions::new().ttl(Duration::from_millis(50)))
        .unwrap();
    clock.advance_to(clock.now() + 10_000);
    finish_all(&bus, &gates);
    assert_eq!(*seen.borrow(), ["1", "3"]);
    let st = bus.stats();
    assert_eq!((st.expired, st.delivered), (1, 2));
    let e = bus
        .publish_with("q", 4, PublishOptions::new().ttl(Duration::ZERO))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidOption);
}

#[test]
fn a_failing_handler_never_stops_the_others_and_is_reported() {
    let reports = log();
    let r = reports.clone();
    let (bus, _) = virtual_bus::<String>(|o| {
        o.on_error = Some(Rc::new(move |rep| {
            r.borrow_mut().push(format!(
                "{} #{} {} {}",
                rep.code, rep.subscription, rep.pattern, rep.error
            ))
        }));
        o.error_payload = Some(Rc::new(|rep| format!("failed: {}", rep.error)));
    });
    let seen = log();
    bus.subscribe("t", |_| Err("boom".into())).unwrap();
    #[cfg(not(target_arch = "wasm32"))]
    bus.subscribe("t", |_| panic!("kaboom")).unwrap();
    let s = seen.clone();
    bus.subscribe("t", move |m| {
        s.borrow_mut().push(m.payload().clone());
        Ok(())
    })
    .unwrap();
    let s = seen.clone();
    bus.subscribe("$errors", move |m| {
        s.borrow_mut().push(m.payload().clone());
        Ok(())
    })
    .unwrap();
    bus.publish("t", "hello".into()).unwrap();
    bus.publish("t", "again".into()).unwrap();
    let seen = seen.borrow();
    assert!(seen.contains(&"hello".to_string()) && seen.contains(&"again".to_string()));
    assert!(seen.contains(&"failed: boom".to_string()), "{seen:?}");
    assert_eq!(reports.borrow()[0], "HANDLER_FAILED #1 t boom");
    #[cfg(not(target_arch = "wasm32"))]
    {
        assert!(reports.borrow().iter().any(|r| r.contains("kaboom")));
        assert_eq!(bus.stats().failed, 4);
    }
    #[cfg(target_arch = "wasm32")]
    assert_eq!(bus.stats().failed, 2);
}

#[test]
fn subscribe_and_unsubscribe_during_dispatch() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let seen = log();
    let later: Rc<RefCell<Option<edgebus::Subscription<u32>>>> = Rc::default();
    let (b, s, l) = (bus.clone(), seen.clone(), later.clone());
    bus.subscribe("t", move |m| {
        s.borrow_mut().push(format!("first:{}", m.payload()));
        if *m.payload() == 1 {
            // Unsubscribe the next handler before it receives this message.
            if let Some(sub) = l.borrow().as_ref() {
                assert!(sub.unsubscribe());
                assert!(!sub.unsubscribe(), "unsubscribing twice is harmless");
            }
            let s2 = s.clone();
            b.subscribe("t", move |m| {
                s2.borrow_mut().push(format!("new:{}", m.payload()));
                Ok(())
            })
            .unwrap();
        }
        Ok(())
    })
    .unwrap();
    let s = seen.clone();
    *later.borrow_mut() = Some(
        bus.subscribe("t", move |m| {
            s.borrow_mut().push(format!("second:{}", m.payload()));
            Ok(())
        })
        .unwrap(),
    );
    bus.publish("t", 1).unwrap();
    bus.publish("t", 2).unwrap();
    assert_eq!(*seen.borrow(), ["first:1", "first:2", "new:2"]);
}

#[test]
fn unsubscribe_cancels_queued_messages_and_counts_them() {
    // With a handle: queued messages are cancelled and counted, the running one finishes.
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let gates = Gates::default();
    let seen = log();
    let (g, s) = (gates.clone(), seen.clone());
    let sub = bus
        .subscribe_async(
            "q",
            move |m: Message<u32>| {
                s.borrow_mut().push(m.payload().to_string());
                g.wait(&m.payload().to_string())
            },
            SubscribeOptions::default(),
        )
        .unwrap();
    for i in 1..=4 {
        bus.publish("q", i).unwrap();
    }
    bus.run_pending();
    assert!(sub.unsubscribe());
    assert!(!sub.is_active());
    gates.release("1", Ok(()));
    assert!(bus.run_until_idle());
    assert_eq!(*seen.borrow(), ["1"]);
    let st = bus.stats();
    assert_eq!((st.cancelled, st.delivered, st.subscriptions), (3, 1, 0));
}

#[test]
fn stats_report_latency_of_queued_deliveries() {
    let (bus, gates, _) = blocked_bus(Overflow::DropOldest, 10);
    let clock = bus.clock();
    bus.publish("q", 1).unwrap();
    bus.publish("q", 2).unwrap();
    bus.run_pending();
    clock.advance_to(clock.now() + 8_000);
    gates.release("1", Ok(()));
    finish_all(&bus, &gates);
    let lat = bus.stats().latency;
    assert_eq!(lat.count, 2);
    assert!(lat.p50_ms < 0.5, "{lat:?}");
    assert!((7.8..8.3).contains(&lat.p99_ms), "{lat:?}");
}

#[test]
fn dedupe_drops_repeated_ids_within_the_window() {
    let (bus, clock) = virtual_bus::<u32>(|o| {
        o.dedupe = Some(DedupeWindow {
            max_ids: 2,
            max_age: Some(1_000_000),
        })
    });
    let seen = log();
    let s = seen.clone();
    bus.subscribe("t", move |m| {
        s.borrow_mut().push(m.payload().to_string());
        Ok(())
    })
    .unwrap();
    let with = |id: &str| PublishOptions::new().id(id);
    assert!(bus.publish_with("t", 1, with("a")).unwrap());
    assert!(!bus.publish_with("t", 2, with("a")).unwrap());
    assert!(bus.publish_with("t", 3, with("b")).unwrap());
    assert!(bus.publish_with("t", 4, with("c")).unwrap()); // evicts "a" (count)
    assert!(bus.publish_with("t", 5, with("a")).unwrap());
    clock.advance(1_000_000); // everything ages out
    assert!(bus.publish_with("t", 6, with("c")).unwrap());
    assert_eq!(*seen.borrow(), ["1", "3", "4", "5", "6"]);
    assert_eq!(bus.stats().duplicates, 1);
    assert!(
        bus.publish("t", 7).unwrap(),
        "messages without id are never deduped"
    );
}

#[test]
fn batches_flush_on_size_bytes_and_time() {
    let (bus, clock) = virtual_bus::<String>(|_| {});
    let batches = log();
    let b = batches.clone();
    bus.subscribe_batch(
        "b.>",
        move |ms| {
            let items: Vec<&str> = ms.iter().map(|m| m.payload().as_str()).collect();
            b.borrow_mut().push(items.join(","));
            Ok(())
        },
        SubscribeOptions::default().batch(BatchPolicy {
            max_size: 3,
            max_bytes: 8,
            max_wait: 10_000,
            ..BatchPolicy::default()
        }),
    )
    .unwrap();
    for p in ["a", "b", "c", "d"] {
        bus.publish("b.x", p.into()).unwrap();
    }
    assert_eq!(*batches.borrow(), ["a,b,c"], "size limit");
    bus.publish("b.x", "eeeeee".into()).unwrap(); // 1 + 6 bytes = 7
    bus.publish("b.x", "ff".into()).unwrap(); // would be 9 > 8
    assert_eq!(*batches.borrow(), ["a,b,c", "d,eeeeee"], "byte limit");
    clock.advance(9_999);
    bus.run_pending();
    assert_eq!(batches.borrow().len(), 2, "not yet 10 ms");
    clock.advance(1);
    bus.run_pending();
    assert_eq!(batches.borrow().last().unwrap(), "ff", "time limit");
    let e = bus.publish("b.x", "123456789".into()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::MessageTooLarge);
    assert_eq!(bus.stats().delivered, 6);
}

#[test]
fn failed_batches_retry_with_backoff_then_report() {
    let reports = log();
    let r = reports.clone();
    let (bus, clock) = virtual_bus::<u32>(|o| {
        o.on_error = Some(Rc::new(move |rep| {
            r.borrow_mut().push(format!(
                "{} x{} attempts={}",
                rep.error,
                rep.messages.len(),
                rep.attempts
            ))
        }))
    });
    let attempts = log();
    let a = attempts.clone();
    let c = clock.clone();
    let fail_first_batch = Rc::new(Cell::new(true));
    let f = fail_first_batch.clone();
    bus.subscribe_batch(
        "b",
        move |ms| {
            a.borrow_mut()
                .push(format!("{}@{}", ms.len(), (c.now() - 1_000_000) / 1000));
            if f.get() && ms[0].payload() == &1 {
                return Err("bad batch".into());
            }
            Ok(())
        },
        SubscribeOptions::default().batch(BatchPolicy {
            max_size: 2,
            max_attempts: 3,
            backoff_initial: 100_000,
            backoff_max: 150_000,
            ..BatchPolicy::default()
        }),
    )
    .unwrap();
    for i in 1..=4 {
        bus.publish("b", i).unwrap();
    }
    assert!(bus.run_until_idle());
    // Batch [1,2] fails at 0 ms, retried at 100 ms and 250 ms (capped backoff), then reported;
    // batch [3,4] waits its turn and runs after.
    assert_eq!(*attempts.borrow(), ["2@0", "2@100", "2@250", "2@250"]);
    assert_eq!(*reports.borrow(), ["bad batch x2 attempts=3"]);
    let st = bus.stats();
    assert_eq!((st.delivered, st.failed), (4, 2));
}

#[test]
fn flush_drain_and_close_deliver_partial_batches() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    bus.subscribe_batch(
        "b",
        move |ms| {
            g.borrow_mut().push(ms.len());
            Ok(())
        },
        SubscribeOptions::default(),
    )
    .unwrap();
    bus.publish("b", 1).unwrap();
    bus.flush();
    assert_eq!(*got.borrow(), [1]);
    bus.publish("b", 2).unwrap();
    bus.publish("b", 3).unwrap();
    futures::executor::block_on(bus.close());
    assert_eq!(*got.borrow(), [1, 2]);
    assert!(bus.is_closed());
    assert_eq!(bus.publish("b", 4).unwrap_err().code(), ErrorCode::Closed);
    assert_eq!(
        bus.subscribe("c", |_| Ok(())).err().unwrap().code(),
        ErrorCode::Closed
    );
}

#[test]
fn handler_timeout_fails_the_delivery_and_ignores_the_late_result() {
    let reports = log();
    let r = reports.clone();
    let (bus, clock) = virtual_bus::<u32>(|o| {
        o.on_error = Some(Rc::new(move |rep| {
            r.borrow_mut().push(rep.code.to_string())
        }))
    });
    let gates = Gates::default();
    let g = gates.clone();
    bus.subscribe_async(
        "slow",
        move |m: Message<u32>| g.wait(&m.payload().to_string()),
        SubscribeOptions::default().timeout(Duration::from_millis(30)),
    )
    .unwrap();
    bus.publish("slow", 1).unwrap();
    bus.publish("slow", 2).unwrap();
    bus.run_pending();
    clock.advance(30_000);
    bus.run_pending();
    assert_eq!(*reports.borrow(), ["HANDLER_TIMEOUT"]);
    // The timed-out delivery freed its slot: message 2 runs.
    assert!(gates.waiting().contains(&"2".to_string()));
    gates.release("2", Ok(()));
    assert!(bus.run_until_idle());
    let st = bus.stats();
    assert_eq!((st.delivered, st.failed), (2, 1));
}

#[test]
fn batcher_standalone_delivers_everything_in_order() {
    let clock = ManualClock::new(0);
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let batcher = Batcher::with_options(
        BatchPolicy {
            max_size: 4,
            max_wait: 5_000,
            ..BatchPolicy::default()
        },
        BusOptions {
            clock: Some(Rc::new(clock.clone())),
            ..BusOptions::default()
        },
        move |items: &[u32]| {
            g.borrow_mut().push(items.to_vec());
            Ok(())
        },
    )
    .unwrap();
    for i in 0..10 {
        batcher.add(i).unwrap();
    }
    assert_eq!(got.borrow().len(), 2);
    assert!(batcher.run_until_idle());
    let all: Vec<u32> = got.borrow().iter().flatten().copied().collect();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    assert_eq!(batcher.stats().unwrap().delivered, 10);
    futures::executor::block_on(batcher.close());
    assert_eq!(batcher.add(11).unwrap_err().code(), ErrorCode::Closed);
}

#[test]
fn invalid_options_are_refused_with_named_errors() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let e = bus
        .subscribe_with("t", |_| Ok(()), SubscribeOptions::default().concurrency(0))
        .err()
        .unwrap();
    assert_eq!(e.code(), ErrorCode::InvalidOption);
    assert!(e.message().contains("concurrency"));
    let e = bus
        .subscribe_batch(
            "t",
            |_| Ok(()),
            SubscribeOptions::default().batch(BatchPolicy {
                max_size: 0,
                ..BatchPolicy::default()
            }),
        )
        .err()
        .unwrap();
    assert!(e.message().contains("maxSize"));
    let e = Bus::<u32>::new(BusOptions {
        dedupe: Some(DedupeWindow {
            max_ids: 0,
            max_age: None,
        }),
        ..BusOptions::default()
    })
    .err()
    .unwrap();
    assert!(e.message().contains("maxIds"));
}

#[test]
fn a_direct_delivery_that_turns_async_keeps_its_key_busy() {
    // The JavaScript driver calls idle handlers directly and learns only from the returned promise
    // that the delivery is asynchronous; it then registers it with `begin_external`.
    use edgebus::{Broker, BrokerConfig, Direct, Items, Outgoing, PublishMode, SubscribeOptions};
    let mut core: Broker<u32> = Broker::new(BrokerConfig::default()).unwrap();
    let sub = core
        .subscribe("jobs", &SubscribeOptions::default().concurrency(3))
        .unwrap();
    core.set_direct(sub, true);
    let topic = core.resolve("jobs").unwrap();
    let keyed = |n: u32, key: &str| Outgoing {
        key: Some(Rc::from(key)),
        ..Outgoing::new(n)
    };
    let Direct::Deliver(_, first) = core.publish_direct(topic, keyed(1, "a"), || 0).unwrap() else {
        panic!("an idle subscription takes the message directly")
    };
    let running = core.begin_external(sub, first.key().map(Rc::from), 0);
    for (n, key) in [(2, "a"), (3, "b")] {
        core.publish_to(topic, keyed(n, key), 0, PublishMode::Now)
            .unwrap();
    }
    let started: Vec<u32> = std::iter::from_fn(|| core.next_delivery(0))
        .map(|d| match d.items {
            Items::One(m) => *m.payload(),
            Items::Batch(_) => unreachable!(),
        })
        .collect();
    assert_eq!(started, [3], "2 shares key a with the running 1: it waits");
    core.complete(running, true, 0);
    let next = core.next_delivery(0).expect("2 starts once 1 is done");
    assert!(matches!(next.items, Items::One(ref m) if *m.payload() == 2));
}

#[test]
fn no_deadline_is_reported_once_its_batch_was_flushed() {
    use edgebus::{
        BatchPolicy, Broker, BrokerConfig, Items, Outgoing, PublishMode, SubscribeOptions,
    };
    let mut core: Broker<u32> = Broker::new(BrokerConfig::default()).unwrap();
    core.subscribe(
        "b",
        &SubscribeOptions::default().batch(BatchPolicy {
            max_wait: 600_000_000,
            ..BatchPolicy::default()
        }),
    )
    .unwrap();
    core.publish("b", Outgoing::new(1), 0, PublishMode::Now)
        .unwrap();
    assert_eq!(
        core.next_deadline(),
        Some(600_000_000),
        "the open batch waits"
    );
    core.flush();
    let d = core.next_delivery(0).expect("the flushed batch");
    assert!(matches!(d.items, Items::Batch(ref ms) if ms.len() == 1));
    core.complete(d.id, true, 0);
    assert!(core.is_idle());
    assert_eq!(
        core.next_deadline(),
        None,
        "the wait timer of a flushed batch is stale"
    );
}

#[test]
fn an_unbounded_queue_never_overflows_while_handlers_run() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let gates = Gates::default();
    let g = gates.clone();
    bus.subscribe_async(
        "q",
        move |m: Message<u32>| g.wait(&m.payload().to_string()),
        SubscribeOptions::default()
            .concurrency(2)
            .max_queue(usize::MAX)
            .overflow(Overflow::DropNewest),
    )
    .unwrap();
    for i in 0..10 {
        bus.publish("q", i).unwrap();
    }
    bus.run_pending();
    assert_eq!(gates.waiting(), ["0", "1"]);
    let st = bus.stats();
    assert_eq!((st.queued, st.dropped), (8, 0));
}

#[test]
fn a_batch_message_whose_ttl_ends_before_the_retry_fails_for_good_and_is_reported_once() {
    let errors = log();
    let e = errors.clone();
    let (bus, _) = virtual_bus::<u32>(|o| {
        o.on_error = Some(Rc::new(move |r| {
            let ids: Vec<String> = r.messages.iter().map(|m| m.payload().to_string()).collect();
            e.borrow_mut()
                .push(format!("{} {} {}", r.code, ids.join(","), r.attempts))
        }))
    });
    let calls = log();
    let c = calls.clone();
    bus.subscribe_batch(
        "b",
        move |ms: &[Message<u32>]| {
            let ids: Vec<String> = ms.iter().map(|m| m.payload().to_string()).collect();
            c.borrow_mut().push(ids.join(","));
            if ms.len() > 1 {
                Err("too many".into())
            } else {
                Ok(())
            }
        },
        SubscribeOptions::default().batch(BatchPolicy {
            max_size: 2,
            max_wait: 0,
            max_attempts: 3,
            backoff_initial: 100_000,
            backoff_max: 100_000,
            ..BatchPolicy::default()
        }),
    )
    .unwrap();
    // 1's TTL (50 ms) ends before the retry (100 ms); 2 has no TTL and is retried alone.
    bus.publish_batch_with(
        "b",
        vec![
            (1, PublishOptions::new().ttl(Duration::from_millis(50))),
            (2, PublishOptions::new()),
        ],
    )
    .unwrap();
    assert!(bus.run_until_idle());
    assert_eq!(*calls.borrow(), ["1,2", "2"]);
    // 1 failed for good when its retry could no longer run: reported once, counted once.
    assert_eq!(*errors.borrow(), ["HANDLER_FAILED 1 1"]);
    let st = bus.stats();
    assert_eq!((st.delivered, st.failed, st.expired), (2, 1, 0));
}

#[test]
fn direct_deliveries_are_counted_and_numbered_exactly_wherever_they_are_read() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let seen = log();
    let subs: Rc<RefCell<Vec<edgebus::Subscription<u32>>>> = Rc::default();
    // The statistics as a handler (or the test, between publishes) reads them: what `t`'s three
    // subscriptions delivered and failed, then the bus's delivered, failed, published and
    // latency count (direct deliveries count with latency zero).
    let look: Rc<dyn Fn() -> String> = {
        let (bus, subs) = (bus.clone(), subs.clone());
        Rc::new(move || {
            let subs = subs.borrow();
            let each: Vec<String> = subs
                .iter()
                .map(|s| {
                    let st = s.stats().unwrap();
                    assert_eq!(st.latency.count, st.delivered);
                    format!("{}/{}", st.delivered, st.failed)
                })
                .collect();
            let s = bus.stats();
            format!(
                "{} bus {}/{}/{} lat {}",
                each.join(" "),
                s.delivered,
                s.failed,
                s.published,
                s.latency.count
            )
        })
    };
    let (l, s, b, look_a) = (seen.clone(), subs.clone(), bus.clone(), look.clone());
    let a = bus
        .subscribe("t", move |m| {
            l.borrow_mut()
                .push(format!("a{} #{}: {}", m.payload(), m.sequence(), look_a()));
            match *m.payload() {
                // Unsubscribes the next one before it receives this message.
                3 => assert!(s.borrow()[1].unsubscribe()),
                // Publishes from inside: delivered after this publish's handlers.
                4 => assert!(b.publish("t", 40).unwrap()),
                _ => {}
            }
            Ok(())
        })
        .unwrap();
    let (l, look_b) = (seen.clone(), look.clone());
    let b = bus
        .subscribe("t", move |m| {
            l.borrow_mut()
                .push(format!("b{} #{}: {}", m.payload(), m.sequence(), look_b()));
            Ok(())
        })
        .unwrap();
    let (l, look_c) = (seen.clone(), look.clone());
    let c = bus
        .subscribe("t", move |m| {
            l.borrow_mut()
                .push(format!("c{} #{}: {}", m.payload(), m.sequence(), look_c()));
            if *m.payload() == 2 {
                return Err("two".into());
            }
            Ok(())
        })
        .unwrap();
    let (l, look_d) = (seen.clone(), look.clone());
    bus.subscribe("u", move |m| {
        l.borrow_mut()
            .push(format!("d{} #{}: {}", m.payload(), m.sequence(), look_d()));
        Ok(())
    })
    .unwrap();
    subs.borrow_mut().extend([a, b, c]);
    let after = |what: &str| seen.borrow_mut().push(format!("after {what}: {}", look()));
    for n in [1, 2] {
        assert!(bus.publish("t", n).unwrap());
        after(&format!("t{n}"));
    }
    assert!(bus.publish("u", 5).unwrap());
    after("u5");
    assert!(bus.publish("t", 3).unwrap());
    after("t3");
    assert!(bus.publish("t", 4).unwrap());
    after("t4");
    assert!(bus
        .publish_with("t", 6, PublishOptions::new().key("k"))
        .unwrap());
    after("t6");
    let topic = bus.topic("t").unwrap();
    assert!(bus.publish_to(topic, 7).unwrap());
    after("t7");
    assert_eq!(
        *seen.borrow(),
        [
            "a1 #1: 0/0 0/0 0/0 bus 0/0/1 lat 0",
            "b1 #1: 1/0 0/0 0/0 bus 1/0/1 lat 1",
            "c1 #1: 1/0 1/0 0/0 bus 2/0/1 lat 2",
            "after t1: 1/0 1/0 1/0 bus 3/0/1 lat 3",
            "a2 #2: 1/0 1/0 1/0 bus 3/0/2 lat 3",
            "b2 #2: 2/0 1/0 1/0 bus 4/0/2 lat 4",
            "c2 #2: 2/0 2/0 1/0 bus 5/0/2 lat 5",
            "after t2: 2/0 2/0 2/1 bus 6/1/2 lat 6",
            "d5 #3: 2/0 2/0 2/1 bus 6/1/3 lat 6",
            "after u5: 2/0 2/0 2/1 bus 7/1/3 lat 7",
            "a3 #4: 2/0 2/0 2/1 bus 7/1/4 lat 7",
            "c3 #4: 3/0 2/0 2/1 bus 8/1/4 lat 8",
            "after t3: 3/0 2/0 3/1 bus 9/1/4 lat 9",
            "a4 #5: 3/0 2/0 3/1 bus 9/1/5 lat 9",
            "c4 #5: 4/0 2/0 3/1 bus 10/1/6 lat 10",
            "a40 #6: 5/0 2/0 4/1 bus 12/1/6 lat 12",
            "c40 #6: 5/0 2/0 5/1 bus 13/1/6 lat 13",
            "after t4: 5/0 2/0 5/1 bus 13/1/6 lat 13",
            "a6 #7: 5/0 2/0 5/1 bus 13/1/7 lat 13",
            "c6 #7: 6/0 2/0 5/1 bus 14/1/7 lat 14",
            "after t6: 6/0 2/0 6/1 bus 15/1/7 lat 15",
            "a7 #8: 6/0 2/0 6/1 bus 15/1/8 lat 15",
            "c7 #8: 7/0 2/0 6/1 bus 16/1/8 lat 16",
            "after t7: 7/0 2/0 7/1 bus 17/1/8 lat 17",
        ]
    );
}

#[test]
fn a_handle_delivered_on_directly_goes_stale_with_its_topic_table() {
    let (bus, _) = virtual_bus::<u32>(|_| {});
    let seen = log();
    let s = seen.clone();
    bus.subscribe("t", move |m| {
        s.borrow_mut()
            .push(format!("{}#{}", m.payload(), m.sequence()));
        Ok(())
    })
    .unwrap();
    let handle = bus.topic("t").unwrap();
    for n in 1..=3 {
        assert!(bus.publish_to(handle, n).unwrap());
    }
    // 16,384 other topics (the table's size) start a new table: the old handle is refused.
    for i in 0..16_384 {
        bus.publish(&format!("other.{i}"), 0).unwrap();
    }
    let err = bus.publish_to(handle, 4).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("stale topic handle"), "{err}");
    assert!(bus.publish("t", 5).unwrap());
    assert_eq!(*seen.borrow(), ["1#1", "2#2", "3#3", "5#16388"]);
    let stats = bus.stats();
    assert_eq!((stats.published, stats.delivered), (16_388, 4));
}

#[test]
fn a_handler_that_unsubscribes_itself_then_fails_retires_with_that_failure() {
    // Published on once (the route's first direct delivery), and on a route published on
    // directly before (its handlers already at hand).
    for earlier in [0u32, 3] {
        let (bus, _) = virtual_bus::<u32>(|_| {});
        type Slot = Rc<RefCell<Option<Rc<edgebus::Subscription<u32>>>>>;
        let slot: Slot = Rc::new(RefCell::new(None));
        let inside = Rc::new(Cell::new(None));
        let (s, i) = (slot.clone(), inside.clone());
        let sub = bus
            .subscribe("t", move |m| {
                if *m.payload() != 99 {
                    return Ok(());
                }
                let me = s.borrow().clone().unwrap();
                assert!(me.unsubscribe());
                // Its statistics from inside the call: this delivery counted, its outcome not yet.
                i.set(me.stats().map(|st| (st.delivered, st.failed)));
                Err("failed after leaving".into())
            })
            .unwrap();
        let sub = Rc::new(sub);
        *slot.borrow_mut() = Some(sub.clone());
        let after = log();
        let a = after.clone();
        bus.subscribe("t", move |m| {
            a.borrow_mut().push(m.payload().to_string());
            Ok(())
        })
        .unwrap();
        for n in 0..earlier {
            bus.publish("t", n).unwrap();
        }
        assert!(bus.publish("t", 99).unwrap());
        assert!(bus.publish("t", 100).unwrap());
        assert_eq!(inside.get(), Some((u64::from(earlier) + 1, 0)), "{earlier}");
        let st = sub.stats().expect("final statistics");
        assert_eq!(
            (st.delivered, st.failed),
            (u64::from(earlier) + 1, 1),
            "{earlier}"
        );
        assert!(!sub.is_active());
        // The subscription after it took both; the bus counted the one failure.
        assert_eq!(after.borrow().len() as u32, earlier + 2);
        let total = bus.stats();
        assert_eq!(
            (total.delivered, total.failed),
            (u64::from(earlier) * 2 + 3, 1)
        );
    }
}

#[test]
fn retained_values_history_and_restore_through_the_native_bus() {
    use edgebus::{Gap, LogConfig, Pattern, Replay};
    let gaps: Rc<RefCell<Vec<Gap>>> = Rc::default();
    let heard = gaps.clone();
    let (bus, _clock) = virtual_bus::<String>(|o| {
        o.logs = LogConfig {
            history: vec![Pattern::parse("chat.>").unwrap()],
            history_max_messages: 2,
            ..LogConfig::default()
        };
        o.on_gap = Some(Rc::new(move |_, _, g: &Gap| {
            heard.borrow_mut().push(g.clone())
        }));
    });
    bus.restore(
        "chat.a",
        Some("one".into()),
        1,
        Duration::from_millis(5),
        false,
    )
    .unwrap();
    bus.restore(
        "chat.a",
        Some("two".into()),
        2,
        Duration::from_millis(6),
        true,
    )
    .unwrap();
    bus.publish("chat.a", "three".into()).unwrap();
    bus.publish_with("cfg", "on".into(), PublishOptions::new().retain())
        .unwrap();
    type Seen = Vec<(String, Option<u64>)>;
    let seen: Rc<RefCell<Seen>> = Rc::default();
    let log = seen.clone();
    bus.subscribe_with(
        ">",
        move |m| {
            log.borrow_mut().push((m.payload().clone(), m.topic_seq()));
            Ok(())
        },
        SubscribeOptions::default().replay(Replay::Since {
            topics: vec![],
            seq: Some(0),
            time: None,
        }),
    )
    .unwrap();
    // chat.a holds 2 (retained and in history) and 3; 1 was evicted by the bound of 2.
    assert_eq!(
        *seen.borrow(),
        [
            ("two".into(), Some(2)),
            ("three".into(), Some(3)),
            ("on".into(), Some(1))
        ]
    );
    assert_eq!(gaps.borrow().len(), 1);
    assert_eq!((gaps.borrow()[0].from, gaps.borrow()[0].to), (Some(1), 1));
    assert_eq!(bus.retained("chat.*").unwrap()[0].payload(), "two");
    assert!(bus.clear_retained("cfg").unwrap());
    assert_eq!(bus.log_of("chat.a").unwrap().last, 3);
    let e = bus
        .restore("chat.a", None, 3, Duration::ZERO, false)
        .unwrap_err();
    assert_eq!(e.code(), edgebus::ErrorCode::InvalidArgument);
    assert_eq!(bus.stats().logs.gaps, 1);

    // A batch is checked whole before any entry is applied: its third entry goes backwards on
    // chat.b, so neither chat.b's first entry nor chat.c's is restored.
    let entry = |topic: &str, payload: Option<&str>, seq| edgebus::Restored {
        topic: topic.into(),
        out: payload.map(|p| edgebus::Outgoing::new(p.to_string())),
        seq,
        published_at: 0,
        retained: false,
    };
    let e = bus
        .restore_all(vec![
            entry("chat.b", Some("b5"), 5),
            entry("chat.c", Some("c1"), 1),
            entry("chat.b", Some("b4"), 4),
        ])
        .unwrap_err();
    assert_eq!(e.code(), edgebus::ErrorCode::InvalidArgument);
    assert!(e
        .message()
        .starts_with("entries[2]: number 4 on `chat.b` is not after 5"));
    assert_eq!((bus.log_of("chat.b"), bus.log_of("chat.c")), (None, None));
    let e = bus
        .restore_all(vec![entry("chat.d", None, 1), entry("chat..e", None, 1)])
        .unwrap_err();
    assert_eq!(e.code(), edgebus::ErrorCode::InvalidTopic);
    assert!(e.message().starts_with("entries[1]: "));
    assert_eq!(bus.log_of("chat.d"), None);
    bus.restore_all(vec![
        entry("chat.b", Some("b4"), 4),
        entry("chat.b", Some("b5"), 5),
        entry("chat.b", None, 9),
    ])
    .unwrap();
    assert_eq!(bus.log_of("chat.b").unwrap().last, 9);
    assert_eq!(bus.log_of("chat.b").unwrap().held, 2);
    bus.publish("chat.b", "next".into()).unwrap();
    assert_eq!(bus.log_of("chat.b").unwrap().last, 10);
}
