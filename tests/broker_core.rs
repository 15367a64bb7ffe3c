//! Rules of the sans-IO core that drivers rely on, checked by driving the `Broker` directly
//! (no `Bus`, no JavaScript): topic handles never go stale silently, a publisher told to wait
//! is woken, room is checked for a whole batch, `maxQueue` 0 is refused where it cannot work,
//! and counters of subscriptions that left stay whole. Run natively and as WebAssembly.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use edgebus::{
    BatchPolicy, Broker, BrokerConfig, ErrorCode, Event, GroupOptions, Items, Outgoing, Overflow,
    PublishMode, Published, SubscribeOptions,
};

fn broker(config: BrokerConfig) -> Broker<u32> {
    Broker::new(config).unwrap()
}

fn events(b: &mut Broker<u32>) -> Vec<Event> {
    std::iter::from_fn(|| b.poll_event()).collect()
}

#[test]
fn a_topic_handle_from_an_earlier_table_is_refused_never_misrouted() {
    let mut b = broker(BrokerConfig {
        max_topics: 4,
        ..BrokerConfig::default()
    });
    let a_sub = b.subscribe("a", &SubscribeOptions::default()).unwrap();
    let other = b.subscribe("t.*", &SubscribeOptions::default()).unwrap();
    let a = b.resolve("a").unwrap();
    assert_eq!(&*b.route(a).unwrap(), &[a_sub]);
    for i in 0..4 {
        b.resolve(&format!("t.{i}")).unwrap();
    }
    // The table started anew: `a`'s old index now belongs to another topic.
    assert_ne!(b.topics_generation(), a.generation());
    let err = b.route(a).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("stale topic handle"), "{err}");
    let err = b
        .publish_to(a, Outgoing::new(1), 0, PublishMode::Now)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(b.next_delivery(0).is_none(), "nothing reached `t.*`");
    // Resolving again gives a handle of the current table, which routes right.
    let a = b.resolve("a").unwrap();
    assert_eq!(a.generation(), b.topics_generation());
    assert_eq!(&*b.route(a).unwrap(), &[a_sub]);
    let _ = other;
}

#[test]
fn resolve_known_says_whether_the_topic_was_in_the_table_already() {
    let mut b = broker(BrokerConfig {
        max_topics: 2,
        ..BrokerConfig::default()
    });
    let (x, known) = b.resolve_known("x").unwrap();
    assert!(!known, "first sight");
    assert_eq!(b.resolve_known("x").unwrap(), (x, true));
    b.resolve("y").unwrap();
    assert_eq!(
        b.resolve_known("x").unwrap(),
        (x, true),
        "not only the last one"
    );
    // A new table forgets every topic: known again only from the next sight.
    let (z, known) = b.resolve_known("z").unwrap();
    assert!(!known);
    assert_ne!(z.generation(), x.generation());
    let (x2, known) = b.resolve_known("x").unwrap();
    assert!(!known, "forgotten with the old table");
    assert_eq!(b.resolve_known("x").unwrap(), (x2, true));
    assert_eq!(
        b.resolve_known("a..b").unwrap_err().code(),
        ErrorCode::InvalidTopic
    );
}

#[test]
fn check_id_records_a_new_id_and_counts_a_seen_one_as_a_duplicate() {
    let mut off = broker(BrokerConfig::default());
    assert!(
        off.check_id("a", 0) && off.check_id("a", 0),
        "no filter: always new"
    );
    assert_eq!(off.stats().duplicates, 0);
    let mut b = broker(BrokerConfig {
        dedupe: Some(edgebus::DedupeWindow {
            max_ids: 2,
            max_age: Some(1_000),
        }),
        ..BrokerConfig::default()
    });
    assert!(b.check_id("a", 0));
    assert!(!b.check_id("a", 10));
    assert!(b.check_id("b", 20));
    assert!(!b.check_id("b", 30) && !b.check_id("a", 40));
    assert_eq!(b.stats().duplicates, 3);
    // Out of the window by count (`c` pushes `a` out), then by age.
    assert!(b.check_id("c", 50));
    assert!(b.check_id("a", 60));
    assert!(b.check_id("c", 2_000), "older than max_age");
    assert_eq!(b.stats().duplicates, 3);
}

#[test]
fn delayed_messages_are_routed_without_starting_a_new_topic_table() {
    let mut b = broker(BrokerConfig {
        max_topics: 2,
        ..BrokerConfig::default()
    });
    b.subscribe("x.*", &SubscribeOptions::default()).unwrap();
    let x1 = b.resolve("x.1").unwrap();
    let mut m = Outgoing::new(7);
    m.not_before = Some(10);
    b.publish_to(x1, m, 0, PublishMode::Now).unwrap();
    let x2 = b.resolve("x.2").unwrap();
    let gen = b.topics_generation();
    b.fire_timers(10);
    assert_eq!(b.topics_generation(), gen, "the pump left the table alone");
    assert!(b.route(x1).is_ok() && b.route(x2).is_ok());
    let d = b.next_delivery(10).unwrap();
    assert!(matches!(d.items, Items::One(ref m) if *m.payload() == 7 && m.topic() == "x.1"));
}

#[test]
fn must_wait_marks_the_broker_waiting_so_room_is_reported() {
    let mut b = broker(BrokerConfig::default());
    let member = b
        .subscribe(
            "q",
            &SubscribeOptions {
                max_queue: Some(1),
                overflow: Some(Overflow::Wait),
                group: Some(GroupOptions {
                    name: "g".into(),
                    retry: None,
                }),
                ..SubscribeOptions::default()
            },
        )
        .unwrap();
    let q = b.resolve("q").unwrap();
    assert!(matches!(
        b.publish_to(q, Outgoing::new(1), 0, PublishMode::Wait)
            .unwrap(),
        Published::Accepted { .. }
    ));
    let d = b.next_delivery(0).unwrap();
    assert_eq!(d.sub, member);
    assert!(matches!(
        b.publish_to(q, Outgoing::new(2), 0, PublishMode::Wait)
            .unwrap(),
        Published::Accepted { .. }
    ));
    // The stream is full until job 2 is claimed; the driver has not said anyone waits: the
    // answer itself makes the broker report room.
    assert_eq!(
        b.publish_to(q, Outgoing::new(3), 0, PublishMode::Wait)
            .unwrap(),
        Published::MustWait
    );
    events(&mut b);
    b.complete(d.id, true, 1);
    assert!(
        events(&mut b).contains(&Event::Room),
        "job 1 done, job 2 claimed: the waiting publisher is told"
    );
    assert!(matches!(
        b.publish_to(q, Outgoing::new(3), 1, PublishMode::Wait)
            .unwrap(),
        Published::Accepted { .. }
    ));
}

#[test]
fn check_room_refuses_a_batch_that_does_not_fit_a_reject_queue() {
    let mut b = broker(BrokerConfig::default());
    b.subscribe(
        "t",
        &SubscribeOptions {
            max_queue: Some(2),
            overflow: Some(Overflow::Reject),
            ..SubscribeOptions::default()
        },
    )
    .unwrap();
    let t = b.resolve("t").unwrap();
    // An idle subscription takes one at once and two in its queue.
    assert!(b.check_room(t, 3, 0).is_ok());
    let err = b.check_room(t, 4, 0).unwrap_err();
    assert_eq!(err.code(), ErrorCode::QueueFull);
    assert!(b.next_delivery(0).is_none(), "checking publishes nothing");
    assert_eq!(b.counters().published, 0);
}

#[test]
fn max_queue_zero_is_refused_for_batches_and_groups() {
    let mut b = broker(BrokerConfig::default());
    let batch = SubscribeOptions {
        max_queue: Some(0),
        batch: Some(BatchPolicy::default()),
        ..SubscribeOptions::default()
    };
    assert_eq!(
        b.subscribe("b", &batch).unwrap_err().code(),
        ErrorCode::InvalidOption
    );
    let group = SubscribeOptions {
        max_queue: Some(0),
        group: Some(GroupOptions {
            name: "g".into(),
            retry: None,
        }),
        ..SubscribeOptions::default()
    };
    assert_eq!(
        b.subscribe("q", &group).unwrap_err().code(),
        ErrorCode::InvalidOption
    );
    // Inherited from the broker's default, too.
    let mut zero = broker(BrokerConfig {
        max_queue: 0,
        ..BrokerConfig::default()
    });
    let err = zero
        .subscribe(
            "b",
            &SubscribeOptions {
                batch: Some(BatchPolicy::default()),
                ..SubscribeOptions::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("maxQueue"), "{err}");
    assert!(zero.subscribe("p", &SubscribeOptions::default()).is_ok());
}

#[test]
fn an_abandoned_delivery_counts_as_cancelled_and_final_stats_are_reported() {
    let mut b = broker(BrokerConfig {
        track_idle: true,
        ..BrokerConfig::default()
    });
    let s = b.subscribe("t", &SubscribeOptions::default()).unwrap();
    let t = b.resolve("t").unwrap();
    b.publish_to(t, Outgoing::new(1), 0, PublishMode::Now)
        .unwrap();
    b.publish_to(t, Outgoing::new(2), 0, PublishMode::Now)
        .unwrap();
    let d = b.next_delivery(0).unwrap();
    assert!(b.unsubscribe(s)); // message 2, queued, is cancelled
    events(&mut b);
    assert_eq!(b.subscription_stats(s).unwrap().in_flight, 1);
    b.abandon(d.id, 1); // message 1 never started after all
    assert!(events(&mut b).contains(&Event::Retired(s)));
    let (id, stats) = b.take_retired().unwrap();
    assert_eq!(id, s);
    assert_eq!(
        (
            stats.delivered,
            stats.cancelled,
            stats.in_flight,
            stats.queued
        ),
        (0, 2, 0, 0)
    );
    let c = b.counters();
    assert_eq!((c.published, c.delivered, c.cancelled), (2, 0, 2));
}
