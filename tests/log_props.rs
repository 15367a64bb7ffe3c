//! Property test of retained values and history replay through the native `Bus`: random
//! interleavings of publishes (retained or not, on topics with and without history), clears,
//! subscriptions with every kind of replay and time passing, against a model that keeps every
//! message ever published. For each subscription: what it received plus what its gaps name is
//! exactly what it asked for (nothing twice, nothing missing), each topic in order, and a replay
//! of retained values is the model's latest retained value per topic. A second property bounds
//! replays (the core's `limit`, which an edge hub's answers use) against the unbounded ones.
#![cfg(not(target_arch = "wasm32"))]

use edgebus::{
    Bus, BusOptions, Gap, LogConfig, ManualClock, Pattern, PublishOptions, Replay, SubscribeOptions,
};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

const TOPICS: [&str; 4] = ["h.a", "h.b", "r.a", "r.b"];
const PATTERNS: [&str; 5] = ["h.*", "r.*", "*.a", ">", "h.b"];

#[derive(Debug, Clone)]
enum Op {
    Publish { topic: usize, retain: u8 },
    Subscribe { pattern: usize, replay: u8, n: u64 },
    Clear { topic: usize },
    Wait { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..4, 0u8..4).prop_map(|(topic, retain)| Op::Publish { topic, retain }),
        3 => (0usize..5, 0u8..4, 0u64..8).prop_map(|(pattern, replay, n)| Op::Subscribe { pattern, replay, n }),
        1 => (0usize..4).prop_map(|topic| Op::Clear { topic }),
        1 => (1u64..40).prop_map(|ms| Op::Wait { ms }),
    ]
}

/// One message as the model and the handlers see it: topic, its number, payload.
type Seen = (String, u64, u32);

struct Sub {
    pattern: &'static str,
    /// The numbers it asked for per topic (replayed part), filled from the model when made.
    asked_before: BTreeSet<(String, u64)>,
    /// Live messages published after it was made, from the model.
    live: BTreeSet<(String, u64)>,
    got: Rc<RefCell<Vec<Seen>>>,
    retained_only: bool,
    /// For a retained-only replay: the model's retained values when it subscribed.
    retained_then: BTreeSet<(String, u64)>,
}

fn run(ops: Vec<Op>, max_messages: usize) -> Result<(), TestCaseError> {
    let clock = Rc::new(ManualClock::new(0));
    let gaps: Rc<RefCell<Vec<(u64, Gap)>>> = Rc::default();
    let g = gaps.clone();
    let bus: Bus<u32> = Bus::new(BusOptions {
        clock: Some(clock.clone()),
        logs: LogConfig {
            history: vec![Pattern::parse("h.*").unwrap()],
            history_max_messages: max_messages,
            history_max_age: Some(100_000),
            ..LogConfig::default()
        },
        on_gap: Some(Rc::new(move |sub, _pattern: &str, gap: &Gap| {
            g.borrow_mut().push((sub, gap.clone()))
        })),
        ..BusOptions::default()
    })
    .unwrap();
    // Every message ever published: (topic, number, payload, time in ms).
    let mut all: Vec<(String, u64, u32, u64)> = Vec::new();
    let mut retained: BTreeMap<String, u64> = BTreeMap::new();
    let mut subs: Vec<(u64, Sub)> = Vec::new();
    let mut now_ms = 0u64;
    let mut payload = 0u32;
    for op in ops {
        match op {
            Op::Publish { topic, retain } => {
                payload += 1;
                let t = TOPICS[topic];
                let mut o = PublishOptions::new();
                if retain == 1 {
                    o = o.retain();
                } else if retain == 2 {
                    o = o.clear_retained();
                }
                bus.publish_with(t, payload, o).unwrap();
                let info = bus.log_of(t);
                let tracked_before = t.starts_with("h.") || retained.contains_key(t);
                if let Some(info) = info.filter(|_| tracked_before || retain == 1) {
                    let seq = info.last;
                    all.push((t.to_owned(), seq, payload, now_ms));
                    for (_, s) in subs.iter_mut() {
                        if Pattern::parse(s.pattern).unwrap().matches(t) {
                            s.live.insert((t.to_owned(), seq));
                        }
                    }
                    if retain == 1 {
                        retained.insert(t.to_owned(), seq);
                    } else if retain == 2 {
                        retained.remove(t);
                    }
                } else {
                    prop_assert!(
                        !tracked_before && retain != 1,
                        "{t} should have been numbered"
                    );
                }
            }
            Op::Clear { topic } => {
                let t = TOPICS[topic];
                let had = bus.clear_retained(t).unwrap();
                prop_assert_eq!(had, retained.remove(t).is_some());
            }
            Op::Wait { ms } => {
                clock.advance(ms * 1000);
                now_ms += ms;
                bus.run_until_idle();
            }
            Op::Subscribe { pattern, replay, n } => {
                let p = PATTERNS[pattern];
                let matcher = Pattern::parse(p).unwrap();
                let replay = match replay {
                    0 => Replay::Retained,
                    1 => Replay::Last(n),
                    2 => Replay::Since {
                        topics: Vec::new(),
                        seq: Some(n),
                        time: None,
                    },
                    _ => Replay::Since {
                        topics: Vec::new(),
                        seq: None,
                        time: Some(n * 10 * 1000),
                    },
                };
                let mut asked = BTreeSet::new();
                for t in TOPICS.iter().filter(|t| matcher.matches(t)) {
                    let mine: Vec<&(String, u64, u32, u64)> =
                        all.iter().filter(|m| m.0 == *t).collect();
                    let last = mine.last().map_or(0, |m| m.1);
                    for m in &mine {
                        let wanted = match &replay {
                            Replay::Retained => false,
                            Replay::Last(n) => m.1 + n > last,
                            Replay::Since { seq: Some(s), .. } => m.1 > *s,
                            Replay::Since { time: Some(t), .. } => m.3 * 1000 >= *t,
                            Replay::Since { .. } => true,
                        };
                        if wanted {
                            asked.insert((m.0.clone(), m.1));
                        }
                    }
                }
                let retained_then: BTreeSet<(String, u64)> = retained
                    .iter()
                    .filter(|(t, _)| matcher.matches(t))
                    .map(|(t, s)| (t.clone(), *s))
                    .collect();
                let got: Rc<RefCell<Vec<Seen>>> = Rc::default();
                let into = got.clone();
                let sub = bus
                    .subscribe_with(
                        p,
                        move |m| {
                            into.borrow_mut().push((
                                m.topic().to_owned(),
                                m.topic_seq().unwrap_or(0),
                                *m.payload(),
                            ));
                            Ok(())
                        },
                        SubscribeOptions::default()
                            .max_queue(100_000)
                            .replay(replay.clone()),
                    )
                    .unwrap();
                subs.push((
                    sub.id(),
                    Sub {
                        pattern: p,
                        asked_before: asked,
                        live: BTreeSet::new(),
                        got,
                        retained_only: matches!(replay, Replay::Retained),
                        retained_then,
                    },
                ));
                std::mem::forget(sub);
            }
        }
    }
    bus.run_until_idle();
    let gaps = gaps.borrow();
    for (id, s) in &subs {
        let got = s.got.borrow();
        let mut seen = BTreeSet::new();
        let mut last_of: BTreeMap<&str, u64> = BTreeMap::new();
        for (t, seq, p) in got.iter() {
            prop_assert!(
                seen.insert((t.clone(), *seq, *p)),
                "#{id} got {t} {seq} ({p}) twice"
            );
            let model = all.iter().find(|m| m.0 == *t && m.1 == *seq);
            if *seq != 0 {
                prop_assert_eq!(
                    model.map(|m| m.2),
                    Some(*p),
                    "#{} {} {} carries its payload",
                    id,
                    t,
                    seq
                );
                let prev = last_of.insert(t, *seq).unwrap_or(0);
                prop_assert!(*seq > prev, "#{id} got {t} {seq} after {prev}");
            }
        }
        let numbered: BTreeSet<(String, u64)> = seen
            .iter()
            .filter(|(_, s, _)| *s != 0)
            .map(|(t, s, _)| (t.clone(), *s))
            .collect();
        if s.retained_only {
            let want: BTreeSet<(String, u64)> = s.retained_then.union(&s.live).cloned().collect();
            prop_assert_eq!(&numbered, &want, "#{} retained values then live", id);
            continue;
        }
        let mut covered = numbered.clone();
        for (sub, gap) in gaps.iter().filter(|(sub, _)| sub == id) {
            let _ = sub;
            let from = gap.from.unwrap_or(1);
            for n in from..=gap.to {
                if s.asked_before.contains(&(gap.topic.to_string(), n)) || gap.from.is_some() {
                    prop_assert!(
                        !numbered.contains(&(gap.topic.to_string(), n)) || gap.from.is_none(),
                        "#{id} got {} {n} and a gap naming it",
                        gap.topic
                    );
                    covered.insert((gap.topic.to_string(), n));
                }
            }
        }
        let want: BTreeSet<(String, u64)> = s.asked_before.union(&s.live).cloned().collect();
        let missing: Vec<_> = want.difference(&covered).collect();
        prop_assert!(
            missing.is_empty(),
            "#{id} ({}) neither got nor heard of {missing:?}",
            s.pattern
        );
        let extra: Vec<_> = numbered.difference(&want).collect();
        prop_assert!(
            extra.is_empty(),
            "#{id} ({}) got what it did not ask for: {extra:?}",
            s.pattern
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn replay_then_live_is_whole_and_single(ops in prop::collection::vec(op(), 1..60), max in 1usize..6) {
        run(ops, max)?;
    }
}

/// A bounded replay (the core's `limit`) against the unbounded one of the same logs: it keeps
/// the newest messages that fit, exactly as many as fit, and reports every number the unbounded
/// replay gives or names as a gap either as a message or inside a gap, never both, never twice.
fn bounded(
    publishes: Vec<(usize, u64, bool)>,
    max_messages: usize,
    since: u64,
    limit: (usize, u64),
) -> Result<(), TestCaseError> {
    use edgebus::{Broker, BrokerConfig, Outgoing, PublishMode};
    let mut b: Broker<u32> = Broker::new(BrokerConfig {
        logs: LogConfig {
            history: vec![Pattern::parse("h.*").unwrap()],
            history_max_messages: max_messages,
            ..LogConfig::default()
        },
        ..BrokerConfig::default()
    })
    .unwrap();
    let topics = ["h.a", "h.b", "h.c"];
    let mut now = 0;
    for (i, (topic, size, ttl)) in publishes.into_iter().enumerate() {
        now += 1_000;
        let handle = b.resolve(topics[topic]).unwrap();
        let mut out = Outgoing::new(i as u32);
        out.size = size;
        if ttl {
            out.ttl = Some(2_500);
        }
        b.publish_to(handle, out, now, PublishMode::Now).unwrap();
    }
    let replay = Replay::Since {
        topics: vec![],
        seq: Some(since),
        time: None,
    };
    let (all, all_gaps) = b
        .replay("h.*", &replay, now, (usize::MAX, u64::MAX))
        .unwrap();
    let (kept, gaps) = b.replay("h.*", &replay, now, limit).unwrap();
    // The newest that fit: a suffix of the unbounded replay, and the message before it does not fit.
    prop_assert!(kept.len() <= all.len() && kept.len() <= limit.0);
    let suffix = &all[all.len() - kept.len()..];
    prop_assert_eq!(
        kept.iter().map(|m| *m.payload()).collect::<Vec<_>>(),
        suffix.iter().map(|m| *m.payload()).collect::<Vec<_>>()
    );
    let bytes: u64 = kept.iter().map(size_of).sum();
    prop_assert!(bytes <= limit.1);
    if kept.len() < all.len() {
        let next = &all[all.len() - kept.len() - 1];
        prop_assert!(
            kept.len() == limit.0 || bytes + size_of(next) > limit.1,
            "one more would have fit"
        );
    }
    // Every number: once, as a message or in a gap.
    let numbers = |messages: &[edgebus::Message<u32>], gaps: &[Gap]| {
        let mut out: Vec<(String, u64)> = messages
            .iter()
            .map(|m| (m.topic().to_string(), m.topic_seq().unwrap()))
            .collect();
        for g in gaps {
            for n in g.from.unwrap()..=g.to {
                out.push((g.topic.to_string(), n));
            }
        }
        out.sort();
        out
    };
    let want = numbers(&all, &all_gaps);
    let got = numbers(&kept, &gaps);
    prop_assert_eq!(got, want);
    Ok(())
}

fn size_of(m: &edgebus::Message<u32>) -> u64 {
    m.size()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn a_bounded_replay_is_the_newest_that_fit_and_gaps_for_the_rest(
        publishes in prop::collection::vec((0usize..3, 0u64..20, any::<bool>()), 0..40),
        max in 1usize..8,
        since in 0u64..6,
        count in 0usize..12,
        bytes in prop_oneof![Just(u64::MAX), 0u64..120],
    ) {
        bounded(publishes, max, since, (count, bytes))?;
    }
}
