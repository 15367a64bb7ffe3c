//! Native benchmarks of work queues: enqueue + claim + acknowledge, jobs per second, single thread,
//! with batch claims of 1, 10 and 100 messages. Each job carries an id (so `status` can answer for
//! it within the retention window), as job-queue users publish them.
//!
//! `core/*` drives the sans-IO broker directly (publish, `next_delivery`, `complete`), the cost of
//! the work queue itself. `bus/*` goes through the native `Bus` with a synchronous group member,
//! as an application would.
//!
//! Run with `cargo bench --bench work_queue`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use edgebus::{
    BatchPolicy, Broker, BrokerConfig, Bus, BusOptions, GroupOptions, Items, Outgoing, PublishMode,
    SubscribeOptions,
};
use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

/// Jobs per iteration.
const JOBS: usize = 10_000;
/// Jobs per `publish_batch` call.
const ENQUEUE_BATCH: usize = 100;

fn ids() -> Vec<Rc<str>> {
    (0..JOBS).map(|i| Rc::from(format!("job-{i:08}"))).collect()
}

fn member(claim: usize) -> SubscribeOptions {
    SubscribeOptions {
        batch: (claim > 1).then(|| BatchPolicy {
            max_size: claim,
            max_wait: 0,
            ..BatchPolicy::default()
        }),
        group: Some(GroupOptions {
            name: "workers".into(),
            retry: None,
        }),
        ..SubscribeOptions::default()
    }
}

fn core_round(broker: &mut Broker<u64>, ids: &[Rc<str>], now: u64) -> u64 {
    let topic = broker.resolve("jobs.email").expect("valid topic");
    let mut handled = 0u64;
    for chunk in ids.chunks(ENQUEUE_BATCH) {
        let msgs = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| Outgoing {
                id: Some(id.clone()),
                ..Outgoing::new(i as u64)
            })
            .collect();
        broker
            .publish_batch(topic, msgs, now, PublishMode::Now)
            .expect("room");
        while let Some(d) = broker.next_delivery(now) {
            handled += match &d.items {
                Items::One(m) => *m.payload(),
                Items::Batch(ms) => ms.iter().map(|m| *m.payload()).sum(),
            };
            broker.complete(d.id, true, now);
        }
    }
    handled
}

fn work_queue(c: &mut Criterion) {
    let ids = ids();
    let mut group = c.benchmark_group("work_queue");
    group.throughput(Throughput::Elements(JOBS as u64));
    for claim in [1usize, 10, 100] {
        group.bench_function(format!("core/claim_{claim}"), |b| {
            b.iter_batched_ref(
                || {
                    let mut broker: Broker<u64> = Broker::new(BrokerConfig {
                        max_queue: JOBS,
                        ..BrokerConfig::default()
                    })
                    .expect("valid config");
                    broker
                        .subscribe("jobs.*", &member(claim))
                        .expect("valid pattern");
                    broker
                },
                |broker| black_box(core_round(broker, &ids, 1)),
                BatchSize::LargeInput,
            );
        });
        group.bench_function(format!("bus/claim_{claim}"), |b| {
            b.iter_batched_ref(
                || {
                    let bus: Bus<u64> = Bus::new(BusOptions {
                        max_queue: JOBS,
                        ..BusOptions::default()
                    })
                    .expect("valid options");
                    let sum = Rc::new(Cell::new(0u64));
                    let s = sum.clone();
                    if claim > 1 {
                        bus.subscribe_batch(
                            "jobs.*",
                            move |ms| {
                                s.set(s.get() + ms.iter().map(|m| *m.payload()).sum::<u64>());
                                Ok(())
                            },
                            SubscribeOptions::default()
                                .group("workers")
                                .claim(claim, Duration::ZERO),
                        )
                        .expect("valid pattern");
                    } else {
                        bus.subscribe_with(
                            "jobs.*",
                            move |m| {
                                s.set(s.get() + m.payload());
                                Ok(())
                            },
                            SubscribeOptions::default().group("workers"),
                        )
                        .expect("valid pattern");
                    }
                    (bus, sum)
                },
                |(bus, sum)| {
                    for chunk in ids.chunks(ENQUEUE_BATCH) {
                        bus.publish_batch_with(
                            "jobs.email",
                            chunk
                                .iter()
                                .enumerate()
                                .map(|(i, id)| (i as u64, edgebus::PublishOptions::new().id(&**id)))
                                .collect(),
                        )
                        .expect("room");
                    }
                    black_box(sum.get())
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, work_queue);
criterion_main!(benches);
