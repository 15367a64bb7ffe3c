//! Property test of the native `Bus`'s direct path (the route it keeps published on directly, its
//! handlers and the counts it hands the broker later): random subscribe / unsubscribe / publish /
//! statistics steps, with handlers that unsubscribe a subscription (their own included) or publish
//! again from inside a delivery, some of them failing afterwards, against a small model. Every
//! handler must receive exactly the messages
//! published on a topic its pattern matches while it was subscribed, in order, and every counter
//! the bus and its subscriptions report must be the model's at every step.
#![cfg(not(target_arch = "wasm32"))]

use edgebus::{Bus, BusOptions, Subscription};
use proptest::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

const TOPICS: [&str; 3] = ["a.b", "a.c", "x.b"];
const PATTERNS: [&str; 5] = ["a.b", "a.*", "*.b", ">", "x.b"];

/// The model's matcher: tokens compared one by one, `*` one token, `>` the rest.
fn matches(pattern: &str, topic: &str) -> bool {
    let (p, t): (Vec<_>, Vec<_>) = (pattern.split('.').collect(), topic.split('.').collect());
    for (i, tok) in p.iter().enumerate() {
        match *tok {
            ">" => return t.len() > i,
            "*" if i < t.len() => {}
            lit if t.get(i) == Some(&lit) => {}
            _ => return false,
        }
    }
    p.len() == t.len()
}

#[derive(Debug, Clone)]
enum Op {
    /// Subscribes to `PATTERNS[p]`; `also`: while handling, unsubscribes the subscription at that
    /// position of the live ones (if any), or publishes once more on `TOPICS[_]` (once per
    /// message it got from outside a handler); `fails`: its handler then fails every delivery.
    Subscribe(usize, Option<(bool, usize)>, bool),
    Unsubscribe(usize),
    Publish(usize),
    Stats,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (
            0..PATTERNS.len(),
            proptest::option::weighted(0.3, (any::<bool>(), 0..4usize)),
            proptest::bool::weighted(0.25),
        )
            .prop_map(|(p, a, f)| Op::Subscribe(p, a, f)),
        1 => (0..8usize).prop_map(Op::Unsubscribe),
        6 => (0..TOPICS.len()).prop_map(Op::Publish),
        1 => Just(Op::Stats),
    ]
}

struct Sub {
    sub: Rc<Subscription<u64>>,
    pattern: &'static str,
    got: Rc<RefCell<Vec<u64>>>,
    expected: Vec<u64>,
    active: bool,
    /// Its handler fails every delivery (after doing its `also`).
    fails: bool,
}

type Live = Rc<RefCell<Vec<Rc<Subscription<u64>>>>>;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn direct_path_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let bus: Bus<u64> = Bus::new(BusOptions::default()).unwrap();
        let mut subs: Vec<Sub> = Vec::new();
        // The subscriptions live for the handlers (an unsubscribe from inside one).
        let live: Live = Rc::new(RefCell::new(Vec::new()));
        // Messages in publish order: (payload, topic); re-entrant publishes appended as they happen.
        let log: Rc<RefCell<Vec<(u64, &'static str)>>> = Rc::new(RefCell::new(Vec::new()));
        let next = Rc::new(std::cell::Cell::new(0u64));
        for op in ops {
            match op {
                Op::Subscribe(p, also, fails) => {
                    let got = Rc::new(RefCell::new(Vec::new()));
                    let (g, live2, bus2, log2, next2) = (got.clone(), live.clone(), bus.clone(), log.clone(), next.clone());
                    let sub = bus.subscribe(PATTERNS[p], move |m| {
                        g.borrow_mut().push(*m.payload());
                        match also {
                            Some((true, k)) => {
                                let target = live2.borrow().get(k).cloned();
                                if let Some(s) = target { s.unsubscribe(); }
                            }
                            Some((false, t)) if *m.payload() < 1_000_000 => {
                                let n = 1_000_000 + next2.get();
                                next2.set(next2.get() + 1);
                                let topic = TOPICS[t % TOPICS.len()];
                                log2.borrow_mut().push((n, topic));
                                bus2.publish(topic, n).unwrap();
                            }
                            _ => {}
                        }
                        if fails { Err("refused".into()) } else { Ok(()) }
                    }).unwrap();
                    let sub = Rc::new(sub);
                    live.borrow_mut().push(sub.clone());
                    subs.push(Sub { sub, pattern: PATTERNS[p], got, expected: Vec::new(), active: true, fails });
                }
                Op::Unsubscribe(k) => {
                    let actives: Vec<usize> = (0..subs.len()).filter(|&i| subs[i].active).collect();
                    if let Some(&i) = actives.get(k % actives.len().max(1)) {
                        subs[i].sub.unsubscribe();
                    }
                }
                Op::Publish(t) => {
                    let n = next.get();
                    next.set(n + 1);
                    log.borrow_mut().push((n, TOPICS[t]));
                    bus.publish(TOPICS[t], n).unwrap();
                }
                Op::Stats => {}
            }
            // The model, replayed: a subscription gets a message when it matches and was active
            // when the message reached it; what it got must be what it was entitled to, in order,
            // and nothing after it left.
            for s in subs.iter_mut() {
                let now_active = s.sub.is_active();
                let got = s.got.borrow().clone();
                for &p in &got[s.expected.len()..] {
                    let topic = log.borrow().iter().find(|(n, _)| *n == p).map(|(_, t)| *t);
                    prop_assert!(topic.is_some_and(|t| matches(s.pattern, t)), "{} got {p}", s.pattern);
                }
                prop_assert!(got.windows(2).all(|w| w[0] < w[1] || w[0] >= 1_000_000 || w[1] >= 1_000_000),
                    "in order: {got:?}");
                s.expected = got;
                prop_assert!(s.active || !now_active, "an unsubscribed subscription came back");
                s.active = now_active;
                let st = s.sub.stats().expect("statistics");
                prop_assert_eq!(st.delivered, s.expected.len() as u64, "{}", s.pattern);
                let fails = s.fails;
                prop_assert_eq!(st.failed, if fails { st.delivered } else { 0 });
            }
            // Every message reached every subscription that matched and was active throughout.
            let stats = bus.stats();
            prop_assert_eq!(stats.published, log.borrow().len() as u64);
            let delivered: u64 = subs.iter().map(|s| s.expected.len() as u64).sum();
            prop_assert_eq!(stats.delivered, delivered);
            let failed: u64 = subs.iter().filter(|s| s.fails).map(|s| s.expected.len() as u64).sum();
            prop_assert_eq!(stats.failed, failed);
        }
        // Subscriptions never unsubscribed got every message on a matching topic published after
        // they subscribed (none was dropped by the direct path).
        for s in &subs {
            if s.active {
                let first = s.expected.first().copied();
                if let Some(first) = first.filter(|f| *f < 1_000_000) {
                    let owed: Vec<u64> = log.borrow().iter()
                        .filter(|(n, t)| *n >= first && *n < 1_000_000 && matches(s.pattern, t))
                        .map(|(n, _)| *n).collect();
                    let plain: Vec<u64> = s.expected.iter().copied().filter(|n| *n < 1_000_000).collect();
                    prop_assert_eq!(plain, owed, "{}", s.pattern);
                }
            }
        }
    }
}
