//! Topics: handles, cached routes, and their precise invalidation.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::driver::*;
use crate::broker::*;

fn reporting(max_topics: usize) -> Driver {
    Driver::with(BrokerConfig {
        report_invalidated: true,
        max_topics,
        ..BrokerConfig::default()
    })
}

#[test]
fn a_topic_resolves_to_one_handle_and_a_bad_one_to_a_typed_error() {
    let mut d = Driver::new();
    let a = d.b.resolve("orders.eu").unwrap();
    let b = d.b.resolve("orders.us").unwrap();
    assert_ne!(a, b);
    assert_eq!(
        d.b.resolve("orders.eu").unwrap(),
        a,
        "same topic, same handle"
    );
    for bad in ["", "a..b", "a.*", "a.>", "a b"] {
        let err = d.b.resolve(bad).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidTopic, "{bad:?}");
    }
    // Refused topics took no place in the table: the next topic gets the next index.
    assert_eq!(d.b.resolve("orders.jp").unwrap().index(), b.index() + 1);
}

#[test]
fn routes_list_matching_subscriptions_in_subscription_order() {
    let mut d = Driver::new();
    let tail = d.sub("a.>");
    let exact = d.sub("a.b");
    let one = d.sub("*.b");
    d.sub("a.c");
    let h = d.b.resolve("a.b").unwrap();
    assert_eq!(&*d.b.route(h).unwrap(), &[tail, exact, one]);
    let h = d.b.resolve("x.b").unwrap();
    assert_eq!(&*d.b.route(h).unwrap(), &[one]);
}

#[test]
fn a_subscribe_invalidates_only_the_routes_its_pattern_reaches() {
    let mut d = reporting(16);
    let eu = d.b.resolve("orders.eu").unwrap();
    let us = d.b.resolve("orders.us").unwrap();
    let chat = d.b.resolve("chat.lobby").unwrap();
    for h in [eu, us, chat] {
        assert!(d.b.route(h).unwrap().is_empty());
    }
    let s = d.sub("orders.eu");
    assert_eq!(d.b.take_invalidated(), vec![eu.index()]);
    assert_eq!(
        &*d.b.route(eu).unwrap(),
        &[s],
        "the stale route was recomputed"
    );
    let w = d.sub("orders.*");
    let mut got = d.b.take_invalidated();
    got.sort_unstable();
    assert_eq!(got, vec![eu.index(), us.index()]);
    assert_eq!(&*d.b.route(us).unwrap(), &[w]);
    assert_eq!(&*d.b.route(eu).unwrap(), &[s, w]);
    assert!(d.b.route(chat).unwrap().is_empty());
    assert!(d.b.take_invalidated().is_empty(), "taken once");
}

#[test]
fn an_unsubscribe_invalidates_the_routes_of_its_pattern() {
    let mut d = reporting(16);
    let s = d.sub("a.*");
    let other = d.sub("b");
    let a = d.b.resolve("a.x").unwrap();
    let b = d.b.resolve("b").unwrap();
    assert_eq!(&*d.b.route(a).unwrap(), &[s]);
    assert_eq!(&*d.b.route(b).unwrap(), &[other]);
    d.b.take_invalidated();
    assert!(d.unsub(s));
    assert_eq!(d.b.take_invalidated(), vec![a.index()]);
    assert!(d.b.route(a).unwrap().is_empty());
    assert_eq!(d.publish("a.x", 1), Published::Accepted { matched: 0 });
    assert!(d.pump().is_empty());
}

#[test]
fn without_reporting_nothing_is_kept_for_the_driver() {
    let mut d = Driver::new();
    d.b.resolve("a").unwrap();
    d.sub("a");
    assert!(d.b.take_invalidated().is_empty());
}

#[test]
fn a_full_table_starts_anew_and_refuses_older_handles() {
    let mut d = reporting(2);
    let s = d.sub("t.*");
    let t0 = d.b.resolve("t.0").unwrap();
    d.b.resolve("t.1").unwrap();
    assert_eq!(t0.generation(), d.b.topics_generation());
    let t2 = d.b.resolve("t.2").unwrap();
    assert_ne!(
        t2.generation(),
        t0.generation(),
        "a third topic starts a new table"
    );
    assert_eq!(t2.index(), 0, "and takes the first place again");
    let err = d.b.route(t0).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("stale topic handle"), "{err}");
    // The place `t.0` had now routes `t.2`, through the new handle only.
    assert_eq!(&*d.b.route(t2).unwrap(), &[s]);
    let err =
        d.b.publish_to(t0, Outgoing::new(1), 0, PublishMode::Now)
            .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert_eq!(d.stats().published, 0, "a refused handle publishes nothing");
    // Resolving again is the way back.
    let t0 = d.b.resolve("t.0").unwrap();
    assert_eq!(t0.generation(), d.b.topics_generation());
    assert_eq!(&*d.b.route(t0).unwrap(), &[s]);
}

#[test]
fn a_handle_from_the_future_or_past_the_table_is_refused() {
    let mut d = Driver::new();
    d.b.resolve("a").unwrap();
    let err = d.b.route(TopicHandle::from_parts(5, 0)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("unknown topic handle 5"), "{err}");
    let err = d.b.route(TopicHandle::from_parts(0, 9)).unwrap_err();
    assert!(err.to_string().contains("stale"), "{err}");
}

#[test]
fn a_literal_pattern_marks_its_topic_again_after_the_table_starts_anew() {
    // Its topic's handle is remembered between a subscribe and an unsubscribe: a table that
    // starts anew gives the handle to another topic, and must not mark that one.
    let mut d = reporting(2);
    let ab = d.b.resolve("a.b").unwrap();
    d.b.route(ab).unwrap();
    let s = d.sub("a.b");
    assert_eq!(d.b.take_invalidated(), vec![ab.index()]);
    d.b.resolve("x.0").unwrap();
    let first = d.b.resolve("x.1").unwrap();
    assert_eq!(first.index(), 0, "a new table");
    let ab = d.b.resolve("a.b").unwrap();
    assert_eq!(&*d.b.route(ab).unwrap(), &[s]);
    d.b.take_invalidated();
    assert!(d.unsub(s));
    assert_eq!(d.b.take_invalidated(), vec![ab.index()]);
    assert!(d.b.route(ab).unwrap().is_empty());
    // Two subscriptions on one pattern text, the second a value of its own.
    let one = d.sub("a.b");
    let two = d.sub("a.b");
    assert_eq!(d.b.take_invalidated(), vec![ab.index(), ab.index()]);
    assert!(d.unsub(one));
    assert_eq!(d.b.take_invalidated(), vec![ab.index()]);
    assert_eq!(&*d.b.route(ab).unwrap(), &[two]);
}
