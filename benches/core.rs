//! Native benchmarks of the core: publish→dispatch, the idempotence filter, handler
//! registration, and delivery against `tokio::sync::broadcast` on the same workload.
//!
//! Run with `cargo bench --bench core`; criterion's `--warm-up-time` and `--measurement-time`
//! shorten a run on a busy machine.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use edgebus::{Bus, BusOptions, DedupeWindow, IdempotenceFilter};
use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;

/// Messages per iteration in the publish and broadcast benchmarks.
const MESSAGES: u64 = 1_000;
/// Checks per iteration in the idempotence-filter benchmarks.
const CHECKS: usize = 10_000;
/// Window of the idempotence filter (as in the dedupe scenario of BENCH.md).
const WINDOW: usize = 100_000;
/// Handlers subscribed per iteration in the registration benchmark.
const HANDLERS: usize = 10_000;

fn new_bus() -> Bus<u64> {
    Bus::new(BusOptions::default()).expect("default options are valid")
}

/// Subscribes `n` synchronous handlers to `pattern`, each adding the payload into `sink`.
fn summing_subscribers(bus: &Bus<u64>, pattern: &str, n: usize, sink: &Rc<Cell<u64>>) {
    for _ in 0..n {
        let sink = sink.clone();
        bus.subscribe(pattern, move |m| {
            sink.set(sink.get().wrapping_add(*m.payload()));
            Ok(())
        })
        .expect("valid pattern");
    }
}

/// Publishes `MESSAGES` payloads on `topic`, one by one.
fn publish_all(bus: &Bus<u64>, topic: &str) {
    for i in 0..MESSAGES {
        black_box(bus.publish(black_box(topic), i).expect("publish"));
    }
}

fn message_processing(c: &mut Criterion) {
    let mut group = c.benchmark_group("message_processing");
    group.throughput(Throughput::Elements(MESSAGES));

    let cases: [(&str, &str, usize); 3] = [
        ("1000", "orders.created", 1),
        ("1000_fanout10", "orders.created", 10),
        ("1000_wildcard", "orders.*", 1),
    ];
    for (id, pattern, subscribers) in cases {
        let bus = new_bus();
        let sink = Rc::new(Cell::new(0u64));
        summing_subscribers(&bus, pattern, subscribers, &sink);
        group.bench_function(id, |b| {
            b.iter(|| publish_all(&bus, "orders.created"));
        });
        black_box(sink.get());
    }

    let bus = new_bus();
    let sink = Rc::new(Cell::new(0u64));
    summing_subscribers(&bus, "orders.created", 1, &sink);
    let handle = bus.topic("orders.created").expect("valid topic");
    group.bench_function("1000_publish_to", |b| {
        b.iter(|| {
            for i in 0..MESSAGES {
                black_box(bus.publish_to(black_box(handle), i).expect("publish"));
            }
        });
    });
    black_box(sink.get());
    group.finish();
}

/// A small deterministic generator, so every run checks the same ids.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `1..=bound`.
    fn back(&mut self, bound: u64) -> u64 {
        1 + self.next() % bound
    }
}

fn id(n: u64) -> String {
    format!("msg-{n}")
}

fn window() -> DedupeWindow {
    DedupeWindow {
        max_ids: WINDOW,
        max_age: None,
    }
}

/// Steady state: the ids of one iteration, made outside the timing. Ids are numbered in order of
/// first sighting; checks alternate a first sighting (the next number, never seen before) and a
/// repeat of one of the last `WINDOW / 2` first sightings, which is still in the window.
struct SteadyIds {
    rng: XorShift,
    /// Number of the next first sighting.
    next: u64,
}

impl SteadyIds {
    /// Starts after `seen` first sightings (numbered `0..seen`).
    fn after(seen: u64) -> Self {
        SteadyIds {
            rng: XorShift(0x9E37_79B9_7F4A_7C15),
            next: seen,
        }
    }

    fn iteration(&mut self) -> Vec<String> {
        (0..CHECKS)
            .map(|i| {
                if i % 2 == 0 {
                    self.next += 1;
                    id(self.next - 1)
                } else {
                    id(self.next - self.rng.back(WINDOW as u64 / 2))
                }
            })
            .collect()
    }
}

/// Fresh filter: `CHECKS` ids, half of them repeats of an earlier id of the same run.
fn fresh_ids() -> Vec<String> {
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    let mut out = Vec::with_capacity(CHECKS);
    let mut distinct = 0u64;
    for i in 0..CHECKS {
        if i % 2 == 0 {
            out.push(id(distinct));
            distinct += 1;
        } else {
            out.push(id(distinct - rng.back(distinct)));
        }
    }
    out
}

fn idempotence_filter(c: &mut Criterion) {
    let mut group = c.benchmark_group("idempotence_filter");
    group.throughput(Throughput::Elements(CHECKS as u64));

    // A long-lived filter, filled to its window before the measurement.
    let mut filter = IdempotenceFilter::new(window());
    for n in 0..WINDOW as u64 {
        assert!(filter.check(&id(n), 0));
    }
    assert_eq!(filter.len(0), WINDOW);
    let mut steady = SteadyIds::after(WINDOW as u64);
    // Set up per iteration, as below: each iteration's ids are made just before it, as a
    // message's id is at hand when it is checked. With criterion's batches, the ids of many
    // iterations were made up front and the checks paid for reading them back from memory.
    group.bench_function("10000", |b| {
        b.iter_batched(
            || steady.iteration(),
            |ids| {
                let mut new = 0usize;
                for id in &ids {
                    new += filter.check(black_box(id), 0) as usize;
                }
                assert_eq!(new, CHECKS / 2);
                // Returned so that freeing the ids stays out of the measurement.
                ids
            },
            BatchSize::PerIteration,
        );
    });
    assert_eq!(filter.len(0), WINDOW);

    // The least an exact window of the same ids can do, for scale: a hash set of their 16-byte
    // keys (hashbrown, foldhash) and a ring of them in recording order, on the same stream.
    let key = |id: &str| {
        let mut k = [0u8; 16];
        let b = id.as_bytes();
        k[..b.len()].copy_from_slice(b);
        u128::from_le_bytes(k)
    };
    let mut set = hashbrown::HashSet::<u128>::with_capacity(2 * WINDOW);
    let mut ring = std::collections::VecDeque::with_capacity(WINDOW + 1);
    for n in 0..WINDOW as u64 {
        set.insert(key(&id(n)));
        ring.push_back(key(&id(n)));
    }
    let mut steady = SteadyIds::after(WINDOW as u64);
    group.bench_function("10000_hash_set_and_ring", |b| {
        b.iter_batched(
            || steady.iteration(),
            |ids| {
                let mut new = 0usize;
                for id in &ids {
                    let k = key(black_box(id));
                    if set.insert(k) {
                        new += 1;
                        ring.push_back(k);
                        if ring.len() > WINDOW {
                            if let Some(old) = ring.pop_front() {
                                set.remove(&old);
                            }
                        }
                    }
                }
                assert_eq!(new, CHECKS / 2);
                ids
            },
            BatchSize::PerIteration,
        );
    });

    let ids = fresh_ids();
    // One new filter per iteration, made just before it and dropped after it, outside the
    // timing. With criterion's batches, many filters were made up front and each check paid for
    // first touches of memory none of them had used yet (page faults), not for the filter.
    group.bench_function("10000_fresh", |b| {
        b.iter_batched(
            || IdempotenceFilter::new(window()),
            |mut filter| {
                let mut new = 0u32;
                for id in &ids {
                    new += filter.check(black_box(id), 0) as u32;
                }
                black_box(new);
                // Returned so that dropping it stays out of the measurement.
                filter
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn handler_registration(c: &mut Criterion) {
    let patterns: Vec<String> = (0..HANDLERS)
        .map(|i| match i % 3 {
            0 => format!("svc{}.evt{i}", i % 100),
            1 => format!("svc{}.*", i % 100),
            _ => format!("svc{}.>", i % 100),
        })
        .collect();
    c.bench_function("handler_registration", |b| {
        b.iter_batched(
            new_bus,
            |bus| {
                for pattern in &patterns {
                    let sub = bus
                        .subscribe(pattern, |m| {
                            black_box(m.payload());
                            Ok(())
                        })
                        .expect("valid pattern");
                    black_box(sub.id());
                }
                bus
            },
            BatchSize::LargeInput,
        );
    });
}

/// Subscription churn (the Node benchmark's scenario 9a): a handler subscribed to one of 100
/// topics and unsubscribed again, on a bus with one standing subscription per topic whose routes
/// are warm.
fn subscription_churn(c: &mut Criterion) {
    const HOT: usize = 100;
    let topics: Vec<String> = (0..HOT).map(|i| format!("orders.{i}.created")).collect();
    let bus = new_bus();
    let sink = Rc::new(Cell::new(0u64));
    for topic in &topics {
        summing_subscribers(&bus, topic, 1, &sink);
        bus.publish(topic, 1).expect("valid topic");
    }
    let mut group = c.benchmark_group("subscription_churn");
    group.throughput(Throughput::Elements(HOT as u64));
    group.bench_function("subscribe_unsubscribe", |b| {
        b.iter(|| {
            for topic in &topics {
                let sub = bus
                    .subscribe(topic, |m| {
                        black_box(m.payload());
                        Ok(())
                    })
                    .expect("valid pattern");
                black_box(sub.unsubscribe());
            }
        });
    });
    group.finish();
}

fn broadcast_vs_tokio(c: &mut Criterion) {
    for (group_name, receivers) in [
        ("broadcast_vs_tokio", 1),
        ("broadcast_vs_tokio_fanout10", 10),
    ] {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(MESSAGES * receivers as u64));

        let bus = new_bus();
        let sink = Rc::new(Cell::new(0u64));
        summing_subscribers(&bus, "orders.created", receivers, &sink);
        group.bench_function("edgebus", |b| {
            b.iter(|| publish_all(&bus, "orders.created"));
        });
        black_box(sink.get());

        let (tx, first) = tokio::sync::broadcast::channel::<u64>(1024);
        let mut rxs: Vec<_> = (1..receivers).map(|_| tx.subscribe()).collect();
        rxs.insert(0, first);
        let mut total = 0u64;
        group.bench_function("tokio_broadcast", |b| {
            b.iter(|| {
                for i in 0..MESSAGES {
                    tx.send(black_box(i)).expect("receivers are alive");
                }
                for rx in rxs.iter_mut() {
                    for _ in 0..MESSAGES {
                        total = total.wrapping_add(rx.try_recv().expect("a message is queued"));
                    }
                }
                black_box(total)
            });
        });
        group.finish();
    }
}

criterion_group!(
    benches,
    message_processing,
    idempotence_filter,
    handler_registration,
    subscription_churn,
    broadcast_vs_tokio
);
criterion_main!(benches);
