//! edgebus: a publish/subscribe runtime with NATS-style wildcard topics, sync and async handlers
//! with per-subscription concurrency and per-key ordering, bounded queues with explicit overflow
//! policies, TTL, an exact idempotence filter, a batch processor and statistics.
//!
//! The same core runs natively and in WebAssembly (where the npm package `edgebus` wraps it).
//!
//! ```
//! use edgebus::{Bus, BusOptions};
//! use std::cell::RefCell;
//! use std::rc::Rc;
//!
//! let bus: Bus<String> = Bus::new(BusOptions::default()).unwrap();
//! let seen = Rc::new(RefCell::new(Vec::new()));
//! let log = seen.clone();
//! bus.subscribe("orders.*.created", move |msg| {
//!     log.borrow_mut().push(format!("{} {}", msg.topic(), msg.payload()));
//!     Ok(())
//! })
//! .unwrap();
//! bus.publish("orders.eu.created", "#1".to_string()).unwrap();
//! assert_eq!(*seen.borrow(), ["orders.eu.created #1"]);
//! ```
#![deny(missing_docs)]

mod batch;
mod broker;
mod bus;
mod children;
mod clock;
mod dedupe;
mod error;
mod exec;
mod logs;
mod message;
mod order;
mod queue;
mod router;
mod shard;
mod slab;
mod snapshot;
mod stats;
mod topic;
mod topic_trie;
mod work_queue;

#[cfg(test)]
mod test_rng;

#[cfg(target_arch = "wasm32")]
mod wasm;

pub use batch::BatchPolicy;
pub use broker::{
    Answer, AnswerKind, Broker, BrokerConfig, Delivery, DeliveryId, Direct, Event, GroupOptions,
    Items, PublishMode, Published, Reached, Remaining, RequestEnd, RequestId, RequestTable,
    Retired, SubId, SubscribeOptions, TopicHandle, Unreported, MAX_REPLIES,
};
pub use bus::{
    Batcher, Bus, BusOptions, ErrorReport, HandlerError, HandlerResult, PublishOptions, Request,
    RequestOptions, Subscription, DEFAULT_REQUEST_TIMEOUT,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use dedupe::{DedupeWindow, IdempotenceFilter};
pub use error::{Error, ErrorCode, Result};
pub use logs::{Gap, LogConfig, LogInfo, LogStats, Replay, Restored, Retain};
pub use message::{ByteSize, Headers, Message, Outgoing, MAX_PRIOR_ATTEMPTS};
pub use queue::Overflow;
pub use router::Router;
pub use shard::{shard_of, stable_hash};
pub use snapshot::{BusStats, GroupStats, LatencySummary, RequestStats, SubscriptionStats};
pub use stats::{Counters, LatencyHistogram};
pub use topic::{
    is_reserved, validate_topic, Pattern, PatternToken, Subject, TopicError, TopicReason,
    MAX_BYTES, MAX_TOKENS,
};
pub use work_queue::{
    validate_group, DeadError, DeadLetter, JobState, JobStatus, Retention, RetryPolicy,
};
