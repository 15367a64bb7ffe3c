//! Property test of the core's request rules (`RequestTable`, which `Broker` and the edge hub's
//! `RequestTracker` keep): random opens, reports of responders, answers (replies, failures,
//! declines, repeats, unknown responders), cancels, deadlines and closes against a small model.
//! Every request ends exactly once, by the model's rule, and the counts are the model's.
#![cfg(not(target_arch = "wasm32"))]

use edgebus::{Answer, AnswerKind, Reached, RequestId, RequestTable};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone)]
enum Op {
    Open {
        max: u32,
        expected: u32,
        reports: u32,
    },
    Reached {
        req: usize,
        reports: u32,
        responders: u32,
    },
    Answer {
        req: usize,
        responder: u64,
        kind: u8,
    },
    Cancel {
        req: usize,
    },
    TimeOut {
        req: usize,
    },
    EndAll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1u32..4, 0u32..4, 0u32..3).prop_map(|(max, expected, reports)| Op::Open { max, expected, reports }),
        3 => (0usize..8, 0u32..3, 0u32..3).prop_map(|(req, reports, responders)| Op::Reached { req, reports, responders }),
        8 => (0usize..8, 0u64..6, 0u8..3).prop_map(|(req, responder, kind)| Op::Answer { req, responder, kind }),
        1 => (0usize..8).prop_map(|req| Op::Cancel { req }),
        1 => (0usize..8).prop_map(|req| Op::TimeOut { req }),
        1 => Just(Op::EndAll),
    ]
}

/// The model of one pending request.
#[derive(Debug, Default)]
struct Model {
    max: u32,
    expected: u32,
    reports: u32,
    replies: u32,
    failures: u32,
    answered: HashSet<u64>,
}

impl Model {
    fn all(&self) -> bool {
        self.reports == 0 && self.answered.len() as u32 >= self.expected
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    sent: u64,
    replies: u64,
    failed: u64,
    declined: u64,
    timed_out: u64,
    no_responders: u64,
    cancelled: u64,
    late: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_request_ends_once_by_the_rules(ops in proptest::collection::vec(op(), 1..60)) {
        let mut t = RequestTable::new();
        let mut ids: Vec<RequestId> = Vec::new();
        let mut live: HashMap<usize, Model> = HashMap::new();
        let mut c = Counts::default();
        for op in ops {
            match op {
                Op::Open { max, expected, reports } => {
                    let id = t.open(max, expected, reports).unwrap();
                    c.sent += 1;
                    live.insert(ids.len(), Model { max, expected, reports, ..Model::default() });
                    ids.push(id);
                }
                Op::Reached { req, reports, responders } => {
                    let Some(&id) = ids.get(req) else { continue };
                    let got = t.reached(id, reports, responders);
                    match live.get_mut(&req) {
                        None => prop_assert_eq!(got, Reached::Gone),
                        Some(m) => {
                            m.reports = (m.reports + reports).saturating_sub(1);
                            m.expected += responders;
                            if m.all() {
                                let (replies, failures) = (m.replies, m.failures);
                                if replies == 0 && failures == 0 {
                                    c.no_responders += 1;
                                }
                                live.remove(&req);
                                prop_assert_eq!(got, Reached::Ended { replies, failures });
                            } else {
                                prop_assert_eq!(got, Reached::Pending);
                            }
                        }
                    }
                }
                Op::Answer { req, responder, kind } => {
                    let Some(&id) = ids.get(req) else { continue };
                    let kind = [AnswerKind::Reply, AnswerKind::Failure, AnswerKind::Decline][kind as usize];
                    let got = t.answer(id, responder, kind);
                    let Some(m) = live.get_mut(&req) else {
                        c.late += 1;
                        prop_assert_eq!(got, Answer::Late);
                        continue;
                    };
                    if !m.answered.insert(responder) {
                        c.late += 1;
                        prop_assert_eq!(got, Answer::Late);
                        continue;
                    }
                    let all = m.all();
                    let (replies, failures) = (m.replies, m.failures);
                    let want = match kind {
                        AnswerKind::Reply => {
                            m.replies += 1;
                            c.replies += 1;
                            Answer::Reply { last: all || m.replies >= m.max }
                        }
                        AnswerKind::Failure => {
                            m.failures += 1;
                            c.failed += 1;
                            Answer::Failed { last: all, replies }
                        }
                        AnswerKind::Decline => {
                            c.declined += 1;
                            if all && replies == 0 && failures == 0 {
                                c.no_responders += 1;
                            }
                            Answer::Declined { last: all, replies, failures }
                        }
                    };
                    if matches!(want, Answer::Reply { last: true } | Answer::Failed { last: true, .. } | Answer::Declined { last: true, .. }) {
                        live.remove(&req);
                    }
                    prop_assert_eq!(got, want);
                }
                Op::Cancel { req } => {
                    let Some(&id) = ids.get(req) else { continue };
                    let was = live.remove(&req).is_some();
                    if was {
                        c.cancelled += 1;
                    }
                    prop_assert_eq!(t.cancel(id), was);
                }
                Op::TimeOut { req } => {
                    let Some(&id) = ids.get(req) else { continue };
                    let was = live.remove(&req).is_some();
                    if was {
                        c.timed_out += 1;
                    }
                    prop_assert_eq!(t.time_out(id), was);
                }
                Op::EndAll => {
                    let mut ended: Vec<usize> = live.keys().copied().collect();
                    ended.sort();
                    c.cancelled += ended.len() as u64;
                    live.clear();
                    let mut got: Vec<RequestId> = t.end_all();
                    let mut want: Vec<RequestId> = ended.iter().map(|&i| ids[i]).collect();
                    got.sort_by_key(|id| (id.index(), id.generation()));
                    want.sort_by_key(|id| (id.index(), id.generation()));
                    prop_assert_eq!(got, want);
                }
            }
            // Pending exactly as the model says; counts agree.
            for (i, id) in ids.iter().enumerate() {
                prop_assert_eq!(t.is_pending(*id), live.contains_key(&i), "request {}", i);
            }
            let s = t.stats();
            let got = Counts {
                sent: s.sent,
                replies: s.replies,
                failed: s.failed,
                declined: s.declined,
                timed_out: s.timed_out,
                no_responders: s.no_responders,
                cancelled: s.cancelled,
                late: s.late,
            };
            prop_assert_eq!(&got, &c);
            prop_assert_eq!(s.pending, live.len() as u64);
        }
    }
}
