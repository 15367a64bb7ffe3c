//! Property test of the sans-IO `Broker`, plain-subscription side (work queues are covered in
//! `tests/work_queues.rs`): random subscribe / unsubscribe / publish / settle / clock steps against a
//! small reference model of routing (an independent matcher of the topic rules), per-subscription
//! FIFO queues with the four overflow policies and `maxQueue`, TTL expiry, and the dedupe window.
//! After every step the broker's deliveries, its answers to `publish` and every counter must be
//! exactly the model's.
#![cfg(not(target_arch = "wasm32"))]

use edgebus::{
    Broker, BrokerConfig, DedupeWindow, DeliveryId, ErrorCode, Items, Outgoing, Overflow,
    PublishMode, Published, SubId, SubscribeOptions,
};
use proptest::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

const TOPICS: [&str; 7] = ["a", "b", "a.b", "b.a", "a.a.b", "$s", "$s.a"];
const PATTERNS: [&str; 9] = ["a", "a.b", "*", "*.a", "a.*", ">", "a.>", "$s", "$s.>"];

/// The topic rules of tests/data/topics.json, written independently of the router: `*` is one
/// token, `>` one or more at the end, and a pattern starting with a wildcard does not match a
/// topic whose first token starts with `$`.
fn reference_matches(pattern: &str, topic: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    if t[0].starts_with('$') && (p[0] == "*" || p[0] == ">") {
        return false;
    }
    for (i, tok) in p.iter().enumerate() {
        match *tok {
            ">" => return t.len() > i,
            "*" if i < t.len() => {}
            lit if i < t.len() && t[i] == lit => {}
            _ => return false,
        }
    }
    p.len() == t.len()
}

#[derive(Debug, Clone)]
enum Step {
    Subscribe {
        pattern: usize,
        concurrency: u32,
        max_queue: usize,
        overflow: Overflow,
    },
    Unsubscribe(usize),
    Publish {
        topic: usize,
        ttl: Option<u64>,
        id: Option<u8>,
        wait: bool,
    },
    Settle {
        which: usize,
        ok: bool,
    },
    Advance(u64),
}

fn overflow() -> impl Strategy<Value = Overflow> {
    prop_oneof![
        Just(Overflow::DropOldest),
        Just(Overflow::DropNewest),
        Just(Overflow::Reject),
        Just(Overflow::Wait),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..PATTERNS.len(), 1u32..4, 0usize..4, overflow()).prop_map(
            |(pattern, concurrency, max_queue, overflow)| Step::Subscribe {
                pattern,
                concurrency,
                max_queue,
                overflow
            }
        ),
        1 => any::<usize>().prop_map(Step::Unsubscribe),
        8 => (
            0..TOPICS.len(),
            // Round values too, so deadlines fall exactly on clock steps.
            prop::option::of(prop_oneof![Just(1_000u64), Just(3_000), 1u64..30_000]),
            prop::option::of(0u8..6),
            any::<bool>()
        )
            .prop_map(|(topic, ttl, id, wait)| Step::Publish { topic, ttl, id, wait }),
        5 => (any::<usize>(), any::<bool>()).prop_map(|(which, ok)| Step::Settle { which, ok }),
        2 => prop_oneof![Just(0u64), Just(1_000), Just(2_000), 0u64..20_000].prop_map(Step::Advance),
    ]
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    delivered: u64,
    dropped: u64,
    expired: u64,
    failed: u64,
    cancelled: u64,
}

struct Sub {
    id: SubId,
    pattern: &'static str,
    live: bool,
    concurrency: u32,
    max_queue: usize,
    overflow: Overflow,
    /// Waiting messages: (number, expires_at).
    queue: VecDeque<(u32, Option<u64>)>,
    in_flight: Vec<DeliveryId>,
    counts: Counts,
}

impl Sub {
    /// Drops the waiting messages whose TTL ended by `now`, wherever they wait: each leaves
    /// the queue when its TTL ends, not when it would have been taken to start.
    fn expire(&mut self, now: u64, bus: &mut Counts) {
        let before = self.queue.len();
        self.queue.retain(|&(_, at)| at.is_none_or(|at| now < at));
        let expired = (before - self.queue.len()) as u64;
        self.counts.expired += expired;
        bus.expired += expired;
    }
}

/// The idempotence window: ids recorded in order, forgotten after `max_age` or beyond `max_ids`.
struct Window {
    max_ids: usize,
    max_age: u64,
    ids: VecDeque<(String, u64)>,
}

impl Window {
    fn advance(&mut self, now: u64) {
        while self
            .ids
            .front()
            .is_some_and(|(_, at)| now.saturating_sub(*at) >= self.max_age)
        {
            self.ids.pop_front();
        }
    }
    fn has(&mut self, id: &str, now: u64) -> bool {
        self.advance(now);
        self.ids.iter().any(|(x, _)| x == id)
    }
    fn record(&mut self, id: &str, now: u64) {
        self.advance(now);
        if !self.ids.iter().any(|(x, _)| x == id) {
            self.ids.push_back((id.to_string(), now));
            if self.ids.len() > self.max_ids {
                self.ids.pop_front();
            }
        }
    }
}

fn run(dedupe: Option<(usize, u64)>, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut b: Broker<u32> = Broker::new(BrokerConfig {
        dedupe: dedupe.map(|(max_ids, max_age)| DedupeWindow {
            max_ids,
            max_age: Some(max_age),
        }),
        ..BrokerConfig::default()
    })
    .unwrap();
    let mut window = dedupe.map(|(max_ids, max_age)| Window {
        max_ids,
        max_age,
        ids: VecDeque::new(),
    });
    let mut subs: Vec<Sub> = Vec::new();
    let mut bus = Counts::default();
    let (mut published, mut duplicates) = (0u64, 0u64);
    let mut now = 0u64;
    let mut next = 0u32;
    let mut running: HashMap<DeliveryId, (usize, u32)> = HashMap::new();
    let mut order: Vec<DeliveryId> = Vec::new();

    for (n, s) in steps.into_iter().enumerate() {
        let at = format!("step {n}: {s:?}");
        match s {
            Step::Subscribe {
                pattern,
                concurrency,
                max_queue,
                overflow,
            } => {
                let options = SubscribeOptions {
                    concurrency,
                    max_queue: Some(max_queue),
                    overflow: Some(overflow),
                    ..SubscribeOptions::default()
                };
                let id = b.subscribe(PATTERNS[pattern], &options).unwrap();
                subs.push(Sub {
                    id,
                    pattern: PATTERNS[pattern],
                    live: true,
                    concurrency,
                    max_queue,
                    overflow,
                    queue: VecDeque::new(),
                    in_flight: Vec::new(),
                    counts: Counts::default(),
                });
            }
            Step::Unsubscribe(k) => {
                let live: Vec<usize> = (0..subs.len()).filter(|&i| subs[i].live).collect();
                if let Some(&i) = live.get(k % live.len().max(1)) {
                    prop_assert!(b.unsubscribe(subs[i].id), "{at}");
                    prop_assert!(!b.unsubscribe(subs[i].id), "{at}: unsubscribed twice");
                    let s = &mut subs[i];
                    s.live = false;
                    let c = s.queue.drain(..).count() as u64;
                    s.counts.cancelled += c;
                    bus.cancelled += c;
                }
            }
            Step::Publish {
                topic,
                ttl,
                id,
                wait,
            } => {
                let topic = TOPICS[topic];
                next += 1;
                let id = id.map(|i| format!("id{i}"));
                let out = Outgoing {
                    id: id.as_deref().map(Rc::from),
                    ttl,
                    ..Outgoing::new(next)
                };
                let mode = if wait {
                    PublishMode::Wait
                } else {
                    PublishMode::Now
                };
                let got = b.publish(topic, out, now, mode);
                let routed: Vec<usize> = (0..subs.len())
                    .filter(|&i| subs[i].live && reference_matches(subs[i].pattern, topic))
                    .collect();
                let duplicate = match (&mut window, &id) {
                    (Some(w), Some(id)) => w.has(id, now),
                    _ => false,
                };
                // Room: free handler slots count only while nothing waits (those messages start
                // at once), plus what the queue may still hold.
                let full = |s: &Sub| {
                    let free = if s.queue.is_empty() {
                        s.concurrency as usize - s.in_flight.len()
                    } else {
                        0
                    };
                    free + s.max_queue.saturating_sub(s.queue.len()) == 0
                };
                let refused = routed.iter().map(|&i| &subs[i]).find(|s| {
                    full(s) && (s.overflow == Overflow::Reject || (s.overflow == Overflow::Wait))
                });
                if duplicate {
                    prop_assert_eq!(got.ok(), Some(Published::Duplicate), "{}", at);
                    duplicates += 1;
                } else if let Some(s) = refused {
                    if s.overflow == Overflow::Wait && wait {
                        prop_assert_eq!(got.ok(), Some(Published::MustWait), "{}", at);
                    } else {
                        let code = got.err().map(|e| e.code());
                        prop_assert_eq!(code, Some(ErrorCode::QueueFull), "{}", at);
                    }
                } else {
                    prop_assert_eq!(
                        got.ok(),
                        Some(Published::Accepted {
                            matched: routed.len()
                        }),
                        "{}",
                        at
                    );
                    published += 1;
                    if let (Some(w), Some(id)) = (&mut window, &id) {
                        w.record(id, now);
                    }
                    let expires = ttl.map(|t| now + t);
                    for i in routed {
                        let s = &mut subs[i];
                        if full(s) {
                            s.counts.dropped += 1;
                            bus.dropped += 1;
                            // With nothing waiting to drop, dropOldest drops the newcomer.
                            if s.overflow == Overflow::DropNewest || s.queue.pop_front().is_none() {
                                continue;
                            }
                        }
                        s.queue.push_back((next, expires));
                    }
                }
            }
            Step::Settle { which, ok } => {
                if !order.is_empty() {
                    let d = order.remove(which % order.len());
                    let (i, _) = running.remove(&d).unwrap();
                    b.complete(d, ok, now);
                    let s = &mut subs[i];
                    s.in_flight.retain(|x| *x != d);
                    if !ok {
                        s.counts.failed += 1;
                        bus.failed += 1;
                    }
                }
            }
            Step::Advance(us) => now += us,
        }
        // Drive: start everything that can start, and check each start against the model.
        b.fire_timers(now);
        for s in subs.iter_mut().filter(|s| s.live) {
            s.expire(now, &mut bus);
        }
        while b.poll_event().is_some() {}
        while let Some(d) = b.next_delivery(now) {
            let Items::One(m) = d.items else {
                return Err(TestCaseError::fail(format!("{at}: a batch delivery")));
            };
            let i = subs
                .iter()
                .position(|s| s.id == d.sub)
                .expect("a known subscription");
            let s = &mut subs[i];
            prop_assert!(s.live, "{}: delivery to an unsubscribed subscription", at);
            prop_assert!(
                (s.in_flight.len() as u32) < s.concurrency,
                "{}: over concurrency",
                at
            );
            let head = s.queue.pop_front().map(|(n, _)| n);
            prop_assert_eq!(
                Some(*m.payload()),
                head,
                "{}: {} started out of order",
                at,
                s.pattern
            );
            s.counts.delivered += 1;
            bus.delivered += 1;
            s.in_flight.push(d.id);
            running.insert(d.id, (i, *m.payload()));
            order.push(d.id);
        }
        for s in subs.iter_mut().filter(|s| s.live) {
            if (s.in_flight.len() as u32) < s.concurrency {
                prop_assert!(
                    s.queue.is_empty(),
                    "{}: {} has room but left {:?} waiting",
                    at,
                    s.pattern,
                    s.queue
                );
            }
        }
        // Every counter, the broker's and each live subscription's, is the model's.
        let st = b.stats();
        prop_assert_eq!(
            (
                st.published,
                st.duplicates,
                st.delivered,
                st.dropped,
                st.expired,
                st.failed,
                st.cancelled
            ),
            (
                published,
                duplicates,
                bus.delivered,
                bus.dropped,
                bus.expired,
                bus.failed,
                bus.cancelled
            ),
            "{}: bus counters",
            at
        );
        let queued: usize = subs.iter().map(|s| s.queue.len()).sum();
        prop_assert_eq!(st.queued as usize, queued, "{}: queued", at);
        prop_assert_eq!(st.in_flight as usize, running.len(), "{}: in flight", at);
        for s in subs.iter().filter(|s| s.live) {
            let ss = b.subscription_stats(s.id).expect("live subscription");
            let c = s.counts;
            prop_assert_eq!(
                (
                    ss.delivered,
                    ss.dropped,
                    ss.expired,
                    ss.failed,
                    ss.cancelled,
                    ss.queued as usize,
                    ss.in_flight as usize
                ),
                (
                    c.delivered,
                    c.dropped,
                    c.expired,
                    c.failed,
                    c.cancelled,
                    s.queue.len(),
                    s.in_flight.len()
                ),
                "{}: counters of {}",
                at,
                s.pattern
            );
        }
    }
    Ok(())
}

#[test]
fn the_reference_matcher_agrees_with_the_shared_vectors() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("data/topics.json")).unwrap();
    for row in doc["match"].as_array().unwrap() {
        let (p, t, want) = (
            row[0].as_str().unwrap(),
            row[1].as_str().unwrap(),
            row[2].as_bool().unwrap(),
        );
        assert_eq!(reference_matches(p, t), want, "{p} vs {t}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn plain_subscriptions_route_queue_expire_and_dedupe_as_the_model_says(
        dedupe in prop::option::of((1usize..5, 5_000u64..40_000)),
        steps in prop::collection::vec(step(), 1..120),
    ) {
        run(dedupe, steps)?;
    }
}
