//! Retained values, history and replay: numbering, what a new subscription is given first, gaps,
//! bounds and their counts, restore.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::driver::*;
use crate::broker::*;
use crate::logs::{Gap, LogConfig, Replay, Retain};

fn retained(payload: u32) -> Outgoing<u32> {
    let mut m = Outgoing::new(payload);
    m.retain = Retain::Keep;
    m
}

fn history(patterns: &[&str], max_messages: usize) -> BrokerConfig {
    BrokerConfig {
        logs: LogConfig {
            history: patterns
                .iter()
                .map(|p| Pattern::parse(p).unwrap())
                .collect(),
            history_max_messages: max_messages,
            ..LogConfig::default()
        },
        ..BrokerConfig::default()
    }
}

fn replaying(replay: Replay) -> SubscribeOptions {
    SubscribeOptions {
        replay: Some(replay),
        ..SubscribeOptions::default()
    }
}

fn since(seq: u64) -> Replay {
    Replay::Since {
        topics: Vec::new(),
        seq: Some(seq),
        time: None,
    }
}

/// The numbers a replay's gaps name, as `(from, to)`, in their order.
fn spans(gaps: &[Gap]) -> Vec<(Option<u64>, u64)> {
    gaps.iter().map(|g| (g.from, g.to)).collect()
}

/// `h.a` (history of 10) given messages 1..=`n`, the second of which has expired.
fn second_expired(n: u32) -> Driver {
    let mut d = Driver::with(history(&["h.a"], 10));
    for p in 1..=n {
        let mut o = Outgoing::new(p);
        if p == 2 {
            o.ttl = Some(1_000);
        }
        d.send("h.a", o, PublishMode::Now).unwrap();
    }
    d.advance(1);
    d
}

fn gaps(d: &mut Driver) -> Vec<(SubId, Gap)> {
    std::iter::from_fn(|| d.b.take_gap()).collect()
}

#[test]
fn a_late_subscription_gets_the_retained_values_its_pattern_matches_then_live_ones() {
    let mut d = Driver::new();
    d.send("room.a.temp", retained(1), PublishMode::Now)
        .unwrap();
    d.send("room.b.temp", retained(2), PublishMode::Now)
        .unwrap();
    d.send("room.a.temp", retained(3), PublishMode::Now)
        .unwrap();
    d.publish("room.c.temp", 4); // not retained: nobody gets it later
    assert_eq!(d.run_ok(), Vec::<u32>::new());
    let s = d.sub_with("room.*.temp", replaying(Replay::Retained));
    d.publish("room.b.temp", 5);
    assert_eq!(
        d.run_ok(),
        vec![2, 3, 5],
        "retained values in publish order, then live"
    );
    assert_eq!(d.sub_stats(s).delivered, 3);
    let listed: Vec<u32> =
        d.b.retained("room.>")
            .unwrap()
            .iter()
            .map(|m| m.payload)
            .collect();
    assert_eq!(
        listed,
        vec![2, 3],
        "in publish order: room.b.temp (2), then room.a.temp (3)"
    );
    // A plain subscription made now gets nothing old.
    d.sub("room.*.temp");
    assert_eq!(d.run_ok(), Vec::<u32>::new());
}

#[test]
fn clearing_a_retained_value_leaves_later_subscriptions_without_it() {
    let mut d = Driver::new();
    d.send("cfg", retained(1), PublishMode::Now).unwrap();
    let mut clear = Outgoing::new(2);
    clear.retain = Retain::Clear;
    let early = d.sub("cfg");
    d.send("cfg", clear, PublishMode::Now).unwrap();
    assert_eq!(
        d.run_ok(),
        vec![2],
        "the clearing message is delivered live"
    );
    assert!(d.b.retained(">").unwrap().is_empty());
    d.sub_with("cfg", replaying(Replay::Retained));
    assert_eq!(d.run_ok(), Vec::<u32>::new());
    d.send("cfg", retained(3), PublishMode::Now).unwrap();
    assert_eq!(d.run_ok(), vec![3, 3], "both subscriptions");
    assert!(d.b.clear_retained("cfg", 0).unwrap());
    assert!(
        !d.b.clear_retained("cfg", 0).unwrap(),
        "nothing left to clear"
    );
    assert_eq!(d.sub_stats(early).delivered, 2);
    assert_eq!(d.stats().logs.retained, 0);
}

#[test]
fn messages_of_tracked_topics_are_numbered_per_topic() {
    let mut d = Driver::with(history(&["chat.>"], 10));
    for p in 1..=3 {
        d.publish("chat.a", p);
    }
    d.publish("chat.b", 4);
    d.publish("other", 5);
    let a = d.b.log_of("chat.a", 0).unwrap();
    assert_eq!((a.first, a.last, a.held), (1, 3, 3));
    let b = d.b.log_of("chat.b", 0).unwrap();
    assert_eq!(b.last, 1, "each topic numbers from 1");
    assert!(d.b.log_of("other", 0).is_none());
    assert!(d.b.is_tracked("chat.a") && !d.b.is_tracked("other"));
}

#[test]
fn replay_since_a_number_gives_what_followed_it_then_live_messages_without_gap_or_duplicate() {
    let mut d = Driver::with(history(&["chat.>"], 10));
    for p in 1..=5 {
        d.publish("chat.a", p);
    }
    let s = d.sub_with("chat.>", replaying(since(3)));
    d.publish("chat.a", 6);
    assert_eq!(d.run_ok(), vec![4, 5, 6]);
    assert!(gaps(&mut d).is_empty());
    assert_eq!(d.sub_stats(s).delivered, 3);
    assert_eq!(d.stats().logs.replayed, 2);
}

#[test]
fn a_position_older_than_the_history_reports_the_numbers_missed() {
    let mut d = Driver::with(history(&["chat.>"], 3));
    for p in 1..=6 {
        d.publish("chat.a", p);
    }
    // Held: 4, 5, 6 (1 to 3 evicted by the per-topic bound).
    assert_eq!(d.stats().logs.evicted, 3);
    let s = d.sub_with("chat.a", replaying(since(1)));
    assert_eq!(d.run_ok(), vec![4, 5, 6]);
    let got = gaps(&mut d);
    assert_eq!(
        got,
        vec![(
            s,
            Gap {
                topic: "chat.a".into(),
                from: Some(2),
                to: 3
            }
        )]
    );
    assert!(d.take_events().contains(&Event::Gap) || d.events.is_empty());
    assert_eq!(d.stats().logs.gaps, 1);
}

#[test]
fn last_n_replays_up_to_n_per_topic_and_a_new_topic_reports_no_gap() {
    let mut d = Driver::with(history(&["t.*"], 10));
    d.publish("t.a", 1);
    d.publish("t.b", 2);
    d.publish("t.a", 3);
    d.publish("t.b", 4);
    d.publish("t.a", 5);
    d.sub_with("t.*", replaying(Replay::Last(2)));
    assert_eq!(d.run_ok(), vec![2, 3, 4, 5], "publish order across topics");
    d.sub_with("t.b", replaying(Replay::Last(50)));
    assert_eq!(d.run_ok(), vec![2, 4]);
    assert!(
        gaps(&mut d).is_empty(),
        "never asked for numbers before the topic's first"
    );
}

#[test]
fn replay_by_time_and_the_age_limit() {
    let mut config = history(&["m"], 100);
    config.logs.history_max_age = Some(50 * MS);
    let mut d = Driver::with(config);
    d.publish("m", 1);
    d.advance(20);
    d.publish("m", 2);
    d.advance(20);
    d.publish("m", 3);
    d.sub_with(
        "m",
        replaying(Replay::Since {
            topics: Vec::new(),
            seq: None,
            time: Some(20 * MS),
        }),
    );
    assert_eq!(d.run_ok(), vec![2, 3]);
    assert!(gaps(&mut d).is_empty());
    d.advance(20); // now 60 ms: message 1 (0 ms) is past 50 ms
    let s = d.sub_with(
        "m",
        replaying(Replay::Since {
            topics: Vec::new(),
            seq: None,
            time: Some(0),
        }),
    );
    assert_eq!(d.run_ok(), vec![2, 3]);
    assert_eq!(
        gaps(&mut d),
        vec![(
            s,
            Gap {
                topic: "m".into(),
                from: None,
                to: 1
            }
        )]
    );
    assert_eq!(d.stats().logs.evicted, 1);
}

#[test]
fn per_topic_positions_and_a_default_for_other_topics() {
    let mut d = Driver::with(history(&["x.*"], 10));
    d.publish("x.a", 1); // x.a 1
    d.publish("x.a", 2); // x.a 2
    d.publish("x.b", 3); // x.b 3
    d.publish("x.b", 4); // x.b 4
    d.sub_with(
        "x.*",
        replaying(Replay::Since {
            topics: vec![("x.a".into(), 1)],
            seq: None,
            time: None,
        }),
    );
    assert_eq!(d.run_ok(), vec![2, 3, 4], "x.a after 1; x.b from its start");
}

#[test]
fn bounds_evict_the_oldest_and_count_it() {
    let mut config = BrokerConfig::default();
    config.logs.retain_max_topics = 2;
    let mut d = Driver::with(config);
    d.send("a", retained(1), PublishMode::Now).unwrap();
    d.send("b", retained(2), PublishMode::Now).unwrap();
    d.send("c", retained(3), PublishMode::Now).unwrap();
    let topics: Vec<String> =
        d.b.retained(">")
            .unwrap()
            .iter()
            .map(|m| m.topic().to_owned())
            .collect();
    assert_eq!(topics, vec!["b", "c"]);
    assert_eq!(d.stats().logs.evicted, 1);
    assert_eq!(d.stats().logs.retained, 2);

    let mut config = history(&[">"], 100);
    config.logs.history_max_bytes = 10;
    let mut d = Driver::with(config);
    for p in 1..=4 {
        let mut m = Outgoing::new(p);
        m.size = 4;
        d.send(if p % 2 == 0 { "even" } else { "odd" }, m, PublishMode::Now)
            .unwrap();
    }
    let stats = d.stats().logs;
    assert_eq!((stats.history, stats.bytes, stats.evicted), (2, 8, 2));
    // odd: 1 (numbered 1), 3 (numbered 2); even: 2 (numbered 1), 4 (numbered 2).
    assert_eq!(
        d.b.log_of("odd", 0).unwrap().first,
        2,
        "the oldest went first"
    );
    assert_eq!(d.b.log_of("even", 0).unwrap().first, 2);
}

#[test]
fn retaining_on_an_untracked_topic_stops_direct_delivery_and_numbers_its_messages() {
    let mut d = Driver::new();
    let s = d.sub("t");
    d.b.set_direct(s, true);
    let h = d.b.resolve("t").unwrap();
    assert!(d.b.starts_now(h, false).unwrap());
    d.send("t", retained(1), PublishMode::Now).unwrap();
    assert!(
        !d.b.starts_now(h, false).unwrap(),
        "a tracked topic goes through the queues"
    );
    d.publish("t", 2);
    assert_eq!(d.b.log_of("t", 0).unwrap().last, 2);
    d.run_ok();
    assert!(d.b.clear_retained("t", 0).unwrap());
    assert!(
        d.b.starts_now(h, false).unwrap(),
        "direct again once untracked"
    );
}

#[test]
fn a_work_queue_refuses_replay() {
    let mut d = Driver::new();
    let e = d
        .try_sub(
            "q",
            SubscribeOptions {
                group: Some(GroupOptions {
                    name: "g".into(),
                    retry: None,
                }),
                replay: Some(Replay::Retained),
                ..SubscribeOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidOption);
    assert!(e.to_string().contains("replay"), "{e}");
}

#[test]
fn restore_puts_a_durable_copy_back_with_its_numbers() {
    let mut d = Driver::with(history(&["h.>"], 10));
    for (seq, p) in [(7u64, 1u32), (8, 2), (9, 3)] {
        d.b.restore("h.a", Some(Outgoing::new(p)), seq, 0, seq == 9)
            .unwrap();
    }
    let info = d.b.log_of("h.a", 0).unwrap();
    assert_eq!((info.first, info.last, info.retained), (7, 9, Some(9)));
    let e =
        d.b.restore("h.a", Some(Outgoing::new(9)), 9, 0, false)
            .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    d.publish("h.a", 4);
    assert_eq!(
        d.b.log_of("h.a", 0).unwrap().last,
        10,
        "numbering goes on after the restored"
    );
    let s = d.sub_with("h.a", replaying(since(5)));
    assert_eq!(d.run_ok(), vec![1, 2, 3, 4]);
    assert_eq!(
        gaps(&mut d),
        vec![(
            s,
            Gap {
                topic: "h.a".into(),
                from: Some(6),
                to: 6
            }
        )]
    );
    // Only numbering: a topic whose messages are gone goes on from its number.
    d.b.restore("h.b", None, 40, 0, false).unwrap();
    d.publish("h.b", 5);
    assert_eq!(d.b.log_of("h.b", 0).unwrap().last, 41);
}

#[test]
fn bad_settings_are_refused_by_name() {
    let mut config = BrokerConfig::default();
    config.logs.history_max_messages = 0;
    let e = Broker::<u32>::new(config).unwrap_err();
    assert!(e.to_string().contains("history.maxMessages"), "{e}");
    let mut d = Driver::new();
    assert_eq!(
        d.b.retained("a..b").unwrap_err().code(),
        ErrorCode::InvalidPattern
    );
    assert_eq!(
        d.b.clear_retained("a.*", 0).unwrap_err().code(),
        ErrorCode::InvalidTopic
    );
}

#[test]
fn a_retained_value_older_than_the_history_leaves_a_gap_between_them() {
    let mut d = Driver::with(history(&["h.*"], 1));
    d.send("h.a", retained(1), PublishMode::Now).unwrap(); // 1: retained and in history
    d.publish("h.a", 2); // 2: evicts 1 from the history (still retained)
    d.publish("h.a", 3); // 3: evicts 2, which is gone
    let s = d.sub_with("h.*", replaying(since(0)));
    assert_eq!(d.run_ok(), vec![1, 3]);
    assert_eq!(
        gaps(&mut d),
        vec![(
            s,
            Gap {
                topic: "h.a".into(),
                from: Some(2),
                to: 2
            }
        )]
    );
}

#[test]
fn a_forgotten_topic_numbers_on_above_every_number_it_had() {
    let mut config = BrokerConfig::default();
    config.logs.retain_max_topics = 1;
    config.logs.history_max_topics = 1;
    let mut d = Driver::with(config);
    d.send("a", retained(1), PublishMode::Now).unwrap(); // a: 1
    d.publish("a", 2); // a: 2
    d.publish("a", 3); // a: 3
    assert!(d.b.clear_retained("a", 0).unwrap()); // a holds nothing: only its numbering is kept
    d.send("b", retained(4), PublishMode::Now).unwrap(); // b: 1
    d.send("c", retained(5), PublishMode::Now).unwrap(); // c: 1, evicting b's value
                                                         // Three logs past the bound of two: the oldest empty one (a) is forgotten.
    assert!(d.b.log_of("a", 0).is_none());
    assert_eq!(
        d.b.log_of("b", 0).unwrap().last,
        1,
        "b's numbering is kept while within the bound"
    );
    d.send("a", retained(6), PublishMode::Now).unwrap();
    assert_eq!(d.b.log_of("a", 0).unwrap().last, 4, "above the 3 it had");
    // a's return made three logs again: b, empty and oldest, went.
    assert!(d.b.log_of("b", 0).is_none());
    assert_eq!(d.stats().logs.topics, 2);
}

#[test]
fn a_retained_value_past_its_ttl_is_neither_cleared_nor_listed_but_counted_expired() {
    let mut d = Driver::with(history(&["h.*"], 10));
    let mut r = retained(1);
    r.ttl = Some(5_000);
    d.send("cfg", r, PublishMode::Now).unwrap();
    let mut h = Outgoing::new(2);
    h.ttl = Some(5_000);
    d.send("h.a", h, PublishMode::Now).unwrap();
    let now = d.now;
    assert_eq!(d.b.log_of("h.a", now).unwrap().held, 1);
    d.advance(5);
    let now = d.now;
    assert!(
        !d.b.clear_retained("cfg", now).unwrap(),
        "an expired value is not there to clear"
    );
    let h = d.b.log_of("h.a", now).unwrap();
    assert_eq!((h.held, h.last), (0, 1), "its history gave the message up");
    assert_eq!(d.stats().logs.expired, 2);
}

#[test]
fn a_batch_of_copies_goes_back_by_publish_time_across_topics_and_in_order_per_topic() {
    let mut d = Driver::with(history(&["h.>"], 10));
    d.advance(100);
    let copy = |topic: &str, p: u32, seq: u64, at: u64| crate::logs::Restored {
        topic: topic.into(),
        out: Some(Outgoing::new(p)),
        seq,
        published_at: at,
        retained: false,
    };
    // Stored topic by topic; published a1, b1, a2, b2, and b3 stamped before b2 (a clock that
    // went back): it stays after b2 on its topic.
    d.b.restore_all(vec![
        copy("h.a", 1, 1, 10_000),
        copy("h.a", 3, 2, 30_000),
        copy("h.b", 2, 1, 20_000),
        copy("h.b", 4, 2, 40_000),
        copy("h.b", 5, 3, 35_000),
    ])
    .unwrap();
    d.sub_with("h.*", replaying(since(0)));
    assert_eq!(d.run_ok(), vec![1, 2, 3, 4, 5]);
    // Refused whole: the third copy goes backwards on h.c, so h.d's is not put back either.
    let e =
        d.b.restore_all(vec![
            copy("h.c", 6, 5, 0),
            copy("h.d", 7, 1, 0),
            copy("h.c", 8, 5, 0),
        ])
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert!(e.message().starts_with("entries[2]: "), "{e}");
    assert!(d.b.log_of("h.c", 0).is_none() && d.b.log_of("h.d", 0).is_none());
}

#[test]
fn a_bounded_replay_keeps_the_newest_and_reports_the_older_as_one_gap_per_topic() {
    let mut d = Driver::with(history(&["h.*"], 10));
    let sized = |p: u32| {
        let mut o = Outgoing::new(p);
        o.size = 10;
        o
    };
    // h.a 1..4 and h.b 1..3, interleaved: a1 b1 a2 b2 a3 b3 a4.
    for (topic, p) in [
        ("h.a", 1),
        ("h.b", 2),
        ("h.a", 3),
        ("h.b", 4),
        ("h.a", 5),
        ("h.b", 6),
        ("h.a", 7),
    ] {
        d.send(topic, sized(p), PublishMode::Now).unwrap();
    }
    let now = d.now;
    let replay = |d: &mut Driver, limit| d.b.replay("h.*", &since(0), now, limit).unwrap();
    let (all, gaps) = replay(&mut d, (usize::MAX, u64::MAX));
    assert_eq!((all.len(), gaps.len()), (7, 0));
    // Three messages: a3 b3 a4; left out a1 a2 and b1 b2.
    let (kept, gaps) = replay(&mut d, (3, u64::MAX));
    let payloads: Vec<u32> = kept.iter().map(|m| *m.payload()).collect();
    assert_eq!(payloads, [5, 6, 7]);
    let mut ranges: Vec<(String, Option<u64>, u64)> = gaps
        .iter()
        .map(|g| (g.topic.to_string(), g.from, g.to))
        .collect();
    ranges.sort();
    assert_eq!(
        ranges,
        [("h.a".into(), Some(1), 2), ("h.b".into(), Some(1), 2)]
    );
    // By bytes: 25 bytes hold the two newest.
    let (kept, _) = replay(&mut d, (usize::MAX, 25));
    assert_eq!(kept.len(), 2);
    // Nothing fits: every asked number is a gap, none twice.
    let (kept, gaps) = replay(&mut d, (0, u64::MAX));
    assert!(kept.is_empty());
    assert_eq!(gaps.len(), 2);
}

#[test]
fn a_bounded_replay_merges_the_holes_it_spans() {
    let mut d = second_expired(5);
    let now = d.now;
    // Held: 1, 3, 4, 5 (2 expired, a gap of its own).
    let (kept, gaps) =
        d.b.replay("h.a", &since(0), now, (usize::MAX, u64::MAX))
            .unwrap();
    assert_eq!(kept.len(), 4);
    assert_eq!(spans(&gaps), [(Some(2), 2)]);
    // Two kept (4, 5): 1..3 left out, the expired 2 inside it, one gap.
    let (kept, gaps) = d.b.replay("h.a", &since(0), now, (2, u64::MAX)).unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(spans(&gaps), [(Some(1), 3)]);
}

#[test]
fn a_bounded_replay_by_time_takes_the_unknown_start_into_its_range() {
    let mut d = second_expired(3);
    let now = d.now;
    let by_time = Replay::Since {
        topics: Vec::new(),
        seq: None,
        time: Some(0),
    };
    // Held 1 and 3; 2 expired: "up to 2" is missed.
    let (kept, gaps) =
        d.b.replay("h.a", &by_time, now, (usize::MAX, u64::MAX))
            .unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(spans(&gaps), [(None, 2)]);
    // Nothing kept: one gap, up to 3, its start unknown; 2 is not reported twice.
    let (kept, gaps) = d.b.replay("h.a", &by_time, now, (0, u64::MAX)).unwrap();
    assert!(kept.is_empty());
    assert_eq!(spans(&gaps), [(None, 3)]);
    // 3 kept: 1 left out is inside "up to 2", which stays alone.
    let (kept, gaps) = d.b.replay("h.a", &by_time, now, (1, u64::MAX)).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(spans(&gaps), [(None, 2)]);
}

#[test]
fn a_retained_value_gone_by_its_ttl_or_a_bound_makes_its_routes_stale() {
    let mut d = Driver::with(BrokerConfig {
        logs: LogConfig {
            retain_max_topics: 1,
            ..LogConfig::default()
        },
        report_invalidated: true,
        ..BrokerConfig::default()
    });
    d.sub("cfg.*");
    let a = d.b.resolve("cfg.a").unwrap();
    let b = d.b.resolve("cfg.b").unwrap();
    let mut r = retained(1);
    r.ttl = Some(5_000);
    d.send("cfg.a", r, PublishMode::Now).unwrap();
    // Its route is worked out again (tracked now) by the next publish.
    d.publish("cfg.a", 9);
    d.b.take_invalidated();
    assert!(d.b.is_tracked_handle(a));
    // Its TTL ends: cfg.a is no longer tracked, and its cached routes are stale.
    d.advance(5);
    let now = d.now;
    d.b.expire_logs(now);
    assert!(!d.b.is_tracked_handle(a));
    assert!(d.b.take_invalidated().contains(&a.index));
    // A bound of one retained value: cfg.b's takes cfg.a's place, and cfg.a's routes go stale.
    d.send("cfg.a", retained(2), PublishMode::Now).unwrap();
    d.publish("cfg.a", 9);
    d.b.take_invalidated();
    d.send("cfg.b", retained(3), PublishMode::Now).unwrap();
    assert!(!d.b.is_tracked_handle(a) && d.b.is_tracked_handle(b));
    assert!(d.b.take_invalidated().contains(&a.index));
}

/// The topics `d`'s logs listed as changed since the last call, as strings.
fn changes(d: &mut Driver) -> Vec<String> {
    d.b.take_log_changes()
        .iter()
        .map(|t| t.to_string())
        .collect()
}

#[test]
fn changed_logs_are_listed_once_each_whatever_took_their_messages_only_when_asked() {
    let mut config = history(&["h.*"], 2);
    config.logs.retain_max_topics = 2;
    config.logs.history_max_topics = 2;
    let mut d = Driver::with(config);
    d.send("r.a", retained(1), PublishMode::Now).unwrap();
    d.send("r.a", retained(2), PublishMode::Now).unwrap();
    assert!(changes(&mut d).is_empty(), "nothing listed until asked for");

    d.b.report_log_changes(true);
    // Growing a history or setting a first retained value loses nothing.
    d.publish("h.a", 3);
    d.publish("h.a", 4);
    d.send("r.b", retained(5), PublishMode::Now).unwrap();
    assert!(changes(&mut d).is_empty());
    // The history's own bound, twice on one topic: listed once.
    d.publish("h.a", 6);
    d.publish("h.a", 7);
    // A retained value replaced, and another evicted by the count of retained values.
    d.send("r.b", retained(8), PublishMode::Now).unwrap();
    d.send("r.c", retained(9), PublishMode::Now).unwrap();
    assert_eq!(changes(&mut d), vec!["h.a", "r.b", "r.a"]);
    assert!(changes(&mut d).is_empty(), "taken once");

    // Cleared; expired by a TTL; a history past the bound of topics: the oldest message across
    // topics goes.
    assert!(d.b.clear_retained("r.c", d.now).unwrap());
    let mut m = Outgoing::new(10);
    m.ttl = Some(1_000);
    d.send("h.b", m, PublishMode::Now).unwrap();
    d.advance(2);
    let now = d.now;
    assert_eq!(d.b.log_of("h.b", now).unwrap().held, 0);
    // h.b's log opening made five logs, past the bound of four: r.a, which held nothing since
    // its eviction, was forgotten.
    assert_eq!(changes(&mut d), vec!["r.c", "r.a", "h.b"]);
    assert!(d.b.log_of("r.a", now).is_none());
    // The history past its bound of topics (the oldest message across topics goes), and logs
    // forgotten past the bound of logs (those holding nothing, oldest first): every log that
    // lost something or went is listed.
    let names = ["r.a", "r.b", "r.c", "h.a", "h.b", "h.c", "h.d"];
    let mut gone = 0;
    for (p, topic) in ["h.c", "h.d", "r.n1", "r.n2", "r.n3", "r.n4"]
        .iter()
        .enumerate()
    {
        let now = d.now;
        // Each log's messages held, -1 for none (not there).
        let held = |d: &mut Driver| names.map(|t| d.b.log_of(t, now).map_or(-1, |l| l.held as i64));
        let before = held(&mut d);
        let mut m = Outgoing::new(20 + p as u32);
        m.retain = if topic.starts_with("r.") {
            Retain::Keep
        } else {
            Retain::No
        };
        d.send(topic, m, PublishMode::Now).unwrap();
        let after = held(&mut d);
        let listed = changes(&mut d);
        for (k, t) in names.iter().enumerate() {
            if after[k] < before[k] {
                assert!(
                    listed.contains(&(*t).to_owned()),
                    "{t} lost something: {listed:?}"
                );
                gone += usize::from(after[k] == -1);
            }
        }
    }
    assert!(gone > 0, "some log was forgotten on the way");

    d.b.report_log_changes(false);
    d.send("r.z", retained(200), PublishMode::Now).unwrap();
    d.send("r.z", retained(201), PublishMode::Now).unwrap();
    assert!(changes(&mut d).is_empty(), "off again");
}
