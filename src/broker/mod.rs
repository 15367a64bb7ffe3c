//! The broker: a sans-IO state machine that owns subscriptions, routing, queues, batching, dedupe,
//! timers and statistics, and never calls a handler nor reads a clock itself.
//!
//! A driver feeds it `publish`, `subscribe`, `complete` and the current time, and takes back
//! [`Delivery`]s to run ([`Broker::next_delivery`]), [`Event`]s to act on, and the next deadline
//! to wake at. The native [`crate::Bus`] and the WebAssembly binding are two such drivers, so both
//! share exactly these semantics.
//!
//! One concern per file: the types and constructor here; `subscriptions`, `topics`, `publish`,
//! `deliver`, `timers`, `lifecycle`, `stats` and `work_queues` each add their part of the
//! state machine's methods.

mod deliver;
mod lifecycle;
mod logs;
mod publish;
mod requests;
mod stats;
mod subscriptions;
mod timers;
mod topics;
mod work_queues;

#[cfg(test)]
mod tests;

use crate::batch::{BatchPolicy, BatchQueue, Pushed};
use crate::dedupe::{DedupeWindow, IdempotenceFilter};
use crate::error::{Error, ErrorCode, Result};
use crate::logs::{Gap, LogConfig, Replay, Retain, TopicLogs};
use crate::message::{check_prior_attempts, Message, Outgoing};
use crate::queue::{Overflow, SubQueue};
use crate::router::Router;
use crate::slab::Slab;
use crate::snapshot::RequestStats;
use crate::snapshot::{BusStats, GroupStats, LatencySummary, SubscriptionStats};
use crate::stats::{Counters, LatencyHistogram};
use crate::topic::{validate_topic, Pattern};
use crate::topic_trie::TopicTrie;
use crate::work_queue::{
    validate_group, Claim, DeadLetter, JobRef, JobState, JobStatus, Retention, RetryPolicy,
    Settled, WorkQueue,
};
use hashbrown::HashMap;
pub use requests::{Answer, AnswerKind, Reached, RequestEnd, RequestId, RequestTable, MAX_REPLIES};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::num::NonZeroU64;
use std::rc::Rc;

/// Identifies a subscription inside one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl SubId {
    /// Slot index (reused after the subscription is gone).
    pub fn index(self) -> u32 {
        self.index
    }
    /// Generation: with the index, unique among live and recent subscriptions.
    pub fn generation(self) -> u32 {
        self.gen
    }
    /// Rebuilds an id from its parts (as handed across the JavaScript boundary).
    pub fn from_parts(index: u32, gen: u32) -> SubId {
        SubId { index, gen }
    }
}

/// Identifies one started delivery until it is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl DeliveryId {
    /// Slot index.
    pub fn index(self) -> u32 {
        self.index
    }
    /// Generation of the slot.
    pub fn generation(self) -> u32 {
        self.gen
    }
    /// Rebuilds an id from its parts.
    pub fn from_parts(index: u32, gen: u32) -> DeliveryId {
        DeliveryId { index, gen }
    }
}

/// A resolved topic: publishing through a handle skips validation and the topic lookup.
///
/// The broker caches at most [`BrokerConfig::max_topics`] topics; when the table is full it
/// starts a new one and bumps its generation. A handle carries the generation it was made in,
/// so a handle from an earlier table is refused (`INVALID_ARGUMENT`, "stale topic handle")
/// instead of reaching whatever topic took its place. Drivers that cache handles compare
/// [`TopicHandle::generation`] with [`Broker::topics_generation`] and resolve again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopicHandle {
    index: u32,
    gen: u32,
}

impl TopicHandle {
    /// The topic's place in the table.
    pub fn index(self) -> u32 {
        self.index
    }
    /// The generation of the table it was resolved in.
    pub fn generation(self) -> u32 {
        self.gen
    }
    /// Rebuilds a handle from its parts.
    pub fn from_parts(index: u32, gen: u32) -> TopicHandle {
        TopicHandle { index, gen }
    }
}

/// Per-subscription options, already validated and in clock units (microseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// How many messages may be in the handler at once (default 1: strict FIFO).
    pub concurrency: u32,
    /// Most messages waiting; `None` takes the broker's default.
    pub max_queue: Option<usize>,
    /// Overflow policy; `None` takes the broker's default.
    pub overflow: Option<Overflow>,
    /// A handler not settled after this long counts as failed (`HANDLER_TIMEOUT`); `None` takes
    /// the broker's default.
    pub timeout: Option<u64>,
    /// Deliver in batches with this policy. For a work-queue member, only `max_size` and
    /// `max_wait` apply (batch claim); retries follow the group's policy.
    pub batch: Option<BatchPolicy>,
    /// Join a work queue: each message goes to exactly one member.
    pub group: Option<GroupOptions>,
    /// Before live messages, replay retained values or history (not for a work queue).
    pub replay: Option<Replay>,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            concurrency: 1,
            max_queue: None,
            overflow: None,
            timeout: None,
            batch: None,
            group: None,
            replay: None,
        }
    }
}

/// Work-queue membership. Subscriptions with the same group name and pattern are the members of
/// one work queue.
/// The retry policy, `max_queue` and `overflow` belong to the group: the first member sets them,
/// and a later member that names different ones is refused with `INVALID_OPTION`. A member's
/// `timeout` is its acknowledgement deadline: a delivery not settled by then counts as failed and
/// is redelivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOptions {
    /// The group's name: topic tokens, not starting with `$`. Dead letters go to `$dead.<name>`.
    pub name: String,
    /// Retries; `None` takes the default (5 attempts, backoff 100 ms doubling up to 30 s) or, for
    /// a later member, the group's.
    pub retry: Option<RetryPolicy>,
}

/// Broker-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Idempotence filter window for messages that carry an id; `None` disables it.
    pub dedupe: Option<DedupeWindow>,
    /// Default `max_queue` of subscriptions (default 10,000).
    pub max_queue: usize,
    /// Default overflow policy (default [`Overflow::DropOldest`]).
    pub overflow: Overflow,
    /// Default handler timeout in microseconds (default none).
    pub timeout: Option<u64>,
    /// Most topics whose routes are cached (default 16,384); past it the table starts anew and
    /// handles resolved before are refused as stale (see [`TopicHandle`]).
    pub max_topics: usize,
    /// Report [`Event::Idle`] when a subscription has nothing queued or running.
    pub track_idle: bool,
    /// The driver caches routes by topic handle: keep, for [`Broker::take_invalidated`], the
    /// handles whose route a subscription change made stale.
    pub report_invalidated: bool,
    /// How long work-queue ids stay queryable by [`Broker::status`] once finished.
    pub retention: Retention,
    /// Seed of the backoff jitter.
    pub seed: u64,
    /// Retained values and history: their bounds, and which topics have history.
    pub logs: LogConfig,
    /// Keep, for [`Broker::drain_numbered`], each message's topic number as it is given.
    pub report_numbered: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            dedupe: None,
            max_queue: 10_000,
            overflow: Overflow::DropOldest,
            timeout: None,
            max_topics: 16_384,
            track_idle: false,
            report_invalidated: false,
            retention: Retention::default(),
            seed: 0x9e37_79b9_7f4a_7c15,
            logs: LogConfig::default(),
            report_numbered: false,
        }
    }
}

/// How a publish treats a full subscription whose policy is [`Overflow::Wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishMode {
    /// Refuse with `QUEUE_FULL` (a synchronous `publish`).
    Now,
    /// Return [`Published::MustWait`] so the caller can wait for [`Event::Room`].
    Wait,
}

/// The outcome of an accepted publish call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Accepted and routed to this many subscriptions.
    Accepted {
        /// Subscriptions it was routed to.
        matched: usize,
    },
    /// Its id was seen inside the dedupe window: dropped and counted.
    Duplicate,
    /// A `wait` subscription is full; nothing was enqueued. Retry after [`Event::Room`].
    MustWait,
}

/// What [`Broker::publish_direct`] decided.
#[derive(Debug)]
pub enum Direct<P> {
    /// Call these subscriptions' handlers now, in this order, with this message; then report
    /// with [`Broker::record_direct`].
    Deliver(Rc<[SubId]>, Message<P>),
    /// Its id was seen inside the dedupe window: dropped and counted.
    Duplicate,
    /// Not every subscription can take it directly: publish it with [`Broker::publish_to`].
    Queue(Outgoing<P>),
}

/// [`Broker::accept_direct`]'s decision: a [`Direct`] without the message, which the caller
/// still holds.
pub(crate) enum Accepted {
    /// Call these subscriptions' handlers now, in this order, with the message on this topic and
    /// with this sequence number ([`Message::published_directly`]).
    Deliver(Rc<[SubId]>, Rc<str>, u64),
    /// Its id was seen inside the dedupe window: dropped and counted.
    Duplicate,
    /// Not every subscription can take it directly: publish it with [`Broker::publish_to`].
    Queue,
}

/// The message(s) of one delivery.
#[derive(Debug, Clone)]
pub enum Items<P> {
    /// A plain subscription's message.
    One(Message<P>),
    /// A batch subscription's batch, in publish order.
    Batch(Vec<Message<P>>),
}

/// A delivery to run: call the subscription's handler, then [`Broker::complete`] it.
#[derive(Debug, Clone)]
pub struct Delivery<P> {
    /// Pass back to [`Broker::complete`].
    pub id: DeliveryId,
    /// Whose handler to call.
    pub sub: SubId,
    /// Which try this is (1 for the first).
    pub attempt: u32,
    /// Whether a failure now is final (reported) rather than retried.
    pub final_attempt: bool,
    /// What to hand to the handler.
    pub items: Items<P>,
}

/// Something the driver must act on, taken with [`Broker::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A delivery ran past its timeout: it now counts as failed and its late result is ignored.
    /// When `final_attempt`, report a `HANDLER_TIMEOUT` failure.
    TimedOut {
        /// The delivery that timed out.
        delivery: DeliveryId,
        /// Its subscription.
        sub: SubId,
        /// Whether this was the last try.
        final_attempt: bool,
    },
    /// The subscription has nothing queued or running (only with `track_idle`).
    Idle(SubId),
    /// A `wait` subscription made room: retry waiting publishes.
    Room,
    /// A work-queue message failed its last attempt: take it with [`Broker::take_dead`] and
    /// publish it on `$dead.<group>`.
    Dead,
    /// An unsubscribed subscription's last delivery settled: its final statistics wait in
    /// [`Broker::take_retired`].
    Retired(SubId),
    /// Messages failed for good without a final-attempt delivery (a batch's message whose TTL
    /// ends before its retry): take them with [`Broker::take_failed`] and report them.
    Failed,
    /// A request ended at its deadline or at the close: settle its requester.
    RequestEnded(RequestId, RequestEnd),
    /// A replay reported gaps: take them with [`Broker::take_gap`] and report them.
    Gap,
}

/// A final failure no delivery reported: the driver reports it to `onError` / `$errors`.
#[derive(Debug, Clone)]
pub struct Unreported<P> {
    /// The subscription whose handler failed.
    pub sub: SubId,
    /// The messages that failed for good.
    pub messages: Vec<Message<P>>,
    /// Handler calls made.
    pub attempts: u32,
    /// `HANDLER_FAILED` or `HANDLER_TIMEOUT`.
    pub code: ErrorCode,
    /// The last error's message.
    pub error: Rc<str>,
}

#[derive(Debug)]
enum Kind<P> {
    Plain(SubQueue<P>),
    /// Boxed: a batch's state is large, and rare next to plain subscriptions.
    Batch(Box<BatchQueue<P>>),
    /// A work queue: routed like a subscription, delivered to its members.
    Group(Box<WorkQueue<P, SubId>>),
    /// A member of a work queue: not routed; it claims from its work queue.
    Member(SubId),
}

#[derive(Debug)]
struct Sub<P> {
    order: u64,
    pattern: Pattern,
    concurrency: u32,
    max_queue: usize,
    overflow: Overflow,
    /// Handler timeout in clock units (never zero: `subscribe` refuses it).
    timeout: Option<NonZeroU64>,
    kind: Kind<P>,
    /// Started (or handed to the ready list) and not completed; a batch awaiting retry holds it.
    in_flight: u32,
    live: bool,
    /// The driver may call this subscription's handler directly when it is idle.
    direct: bool,
    /// Counters and latencies, allocated when the first one moves: a subscription that never
    /// saw a message (most of them, in an app with many) carries none.
    stats: Option<Box<SubCounts>>,
}

/// What a subscription counted. Absent means all zero.
#[derive(Debug, Default)]
struct SubCounts {
    counters: Counters,
    latency: LatencyHistogram,
    /// Deliveries made directly by the driver (latency zero), folded into `latency` when read.
    direct_delivered: u64,
}

impl<P> Sub<P> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        order: u64,
        pattern: Pattern,
        kind: Kind<P>,
        concurrency: u32,
        max_queue: usize,
        overflow: Overflow,
        timeout: Option<u64>,
    ) -> Self {
        Sub {
            order,
            pattern,
            concurrency,
            max_queue,
            overflow,
            timeout: timeout.and_then(NonZeroU64::new),
            kind,
            in_flight: 0,
            live: true,
            direct: false,
            stats: None,
        }
    }

    /// Its handler timeout, if any.
    fn timeout(&self) -> Option<u64> {
        self.timeout.map(NonZeroU64::get)
    }

    /// Its counters, allocated on first use.
    fn counted(&mut self) -> &mut SubCounts {
        self.stats.get_or_insert_with(Box::default)
    }

    /// Its counters (all zero when none was ever counted).
    fn counters(&self) -> Counters {
        self.stats
            .as_ref()
            .map_or_else(Counters::default, |s| s.counters)
    }

    fn queued(&self) -> usize {
        match &self.kind {
            Kind::Plain(q) => q.len(),
            Kind::Batch(b) => b.queued(),
            Kind::Group(g) => g.depth(),
            Kind::Member(_) => 0,
        }
    }

    fn is_idle(&self) -> bool {
        self.in_flight == 0
            && match &self.kind {
                Kind::Plain(q) => q.is_empty(),
                Kind::Batch(b) => b.queued() == 0,
                Kind::Group(g) => g.is_empty(),
                Kind::Member(_) => true,
            }
    }

    /// How many more messages it takes without overflowing.
    fn room(&self) -> usize {
        match &self.kind {
            Kind::Plain(q) => {
                let free = if q.is_empty() {
                    self.concurrency.saturating_sub(self.in_flight) as usize
                } else {
                    0
                };
                free.saturating_add(self.max_queue.saturating_sub(q.len()))
            }
            Kind::Batch(b) => self.max_queue.saturating_sub(b.queued()),
            Kind::Group(g) => g.room(self.max_queue),
            Kind::Member(_) => usize::MAX,
        }
    }

    fn stats(&self, id: u64, group: Option<&str>) -> SubscriptionStats {
        snapshot(
            id,
            &self.pattern,
            group,
            self.stats.as_deref(),
            self.queued() as u64,
            self.in_flight as u64,
        )
    }
}

/// A subscription that left and whose last delivery settled, until a driver takes its final
/// statistics ([`Broker::take_retired`], [`Broker::take_retired_of`]). It holds what they are
/// made of, not the statistics themselves: retiring copies nothing.
#[derive(Debug)]
pub struct Retired {
    order: u64,
    pattern: Pattern,
    group: Option<Rc<str>>,
    queued: u64,
    counts: Option<Box<SubCounts>>,
}

impl Retired {
    /// Whether it never counted anything (no message delivered, dropped, expired, failed or
    /// cancelled): its statistics are its id and pattern, every count zero.
    pub fn is_quiet(&self) -> bool {
        self.counts.is_none() && self.queued == 0
    }

    /// Its final statistics.
    pub fn stats(&self) -> SubscriptionStats {
        snapshot(
            self.order,
            &self.pattern,
            self.group.as_deref(),
            self.counts.as_deref(),
            self.queued,
            0,
        )
    }

    /// Its final counters, queued messages and latency summary: [`Retired::stats`] without its
    /// id, pattern and group (nothing copied).
    pub fn counts(&self) -> (Counters, u64, LatencySummary) {
        let (counters, latency) = counted(self.counts.as_deref());
        (counters, self.queued, latency)
    }

    fn counted(&mut self) -> &mut SubCounts {
        self.counts.get_or_insert_with(Box::default)
    }
}

/// One subscription's statistics from what it counted (`None`: nothing).
fn snapshot(
    id: u64,
    pattern: &Pattern,
    group: Option<&str>,
    counts: Option<&SubCounts>,
    queued: u64,
    in_flight: u64,
) -> SubscriptionStats {
    let (c, latency) = counted(counts);
    SubscriptionStats {
        id,
        pattern: pattern.as_str().to_owned(),
        group: group.map(str::to_owned),
        delivered: c.delivered,
        dropped: c.dropped,
        expired: c.expired,
        failed: c.failed,
        cancelled: c.cancelled,
        queued,
        in_flight,
        latency,
    }
}

/// The counters and latency summary of what a subscription counted (`None`: nothing).
fn counted(counts: Option<&SubCounts>) -> (Counters, LatencySummary) {
    match counts {
        Some(s) => (s.counters, summary(&s.latency, s.direct_delivered)),
        None => (Counters::default(), summary(&LatencyHistogram::new(), 0)),
    }
}

#[derive(Debug)]
enum Ready<P> {
    One(SubId, Message<P>),
    Batch(SubId, Vec<Message<P>>, u32),
    /// Jobs a group member claimed: (member, group, jobs).
    Claim(SubId, SubId, Vec<JobRef>),
}

#[derive(Debug)]
struct InFlight<P> {
    sub: SubId,
    key: Option<Rc<str>>,
    /// For batches: the messages (kept for a retry) and the attempt.
    batch: Option<(Vec<Message<P>>, u32)>,
    count: u64,
    /// For a group member's delivery: the group, the claimed jobs, and whether the member
    /// claims batches (a failed job of a batch member is retried alone).
    claim: Option<(SubId, Vec<JobRef>, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Timeout(u32, u32),
    BatchWait(u32, u32, u64),
    Retry(u32, u32),
    /// A group's job is due for retry: (group index, gen, job index, gen).
    JobRetry(u32, u32, u32, u32),
    /// A group's batch member stops waiting for a fuller batch.
    ClaimWait(u32, u32),
    /// A delayed (`not_before`) message becomes visible: its sequence number.
    Visible(u64),
    /// The TTL of a job waiting in a group without members ends: (group index, gen, job index,
    /// gen). Kept in `watches`, not `timers`.
    Expiry(u32, u32, u32, u32),
    /// The earliest TTL among the messages waiting in a subscription's queue ends: (index,
    /// gen). Kept in `watches`.
    QueueExpiry(u32, u32),
    /// A request's deadline: (index, gen).
    Request(u32, u32),
}

/// A subscription id in one number (see `groups`).
fn pack(id: SubId) -> u64 {
    (u64::from(id.index) << 32) | u64::from(id.gen)
}

/// The id [`pack`] made `p` of.
fn unpack(p: u64) -> SubId {
    SubId {
        index: (p >> 32) as u32,
        gen: p as u32,
    }
}

/// Pushes `timer`, due `at`, on `heap`: the one place that does, so the heap's insertion code is
/// in the module once (inlined at each of the eight pushes, it took about 1.7 KB more).
#[inline(never)]
fn arm(heap: &mut BinaryHeap<Reverse<(u64, Timer)>>, at: u64, timer: Timer) {
    heap.push(Reverse((at, timer)));
}

/// A message published with a `not_before` in the future, waiting to be routed.
#[derive(Debug)]
struct Scheduled<P> {
    topic: Rc<str>,
    msg: Outgoing<P>,
}

/// A message a closing broker could not deliver, for the close summary.
#[derive(Debug, Clone)]
pub struct Remaining<P> {
    /// The message.
    pub message: Message<P>,
    /// Its work queue's name (`None` for a delayed message not routed yet).
    pub group: Option<Rc<str>>,
    /// `pending` (no member left to take it), `failed` (waiting for a retry) or `delayed`.
    pub state: JobState,
    /// Handler calls made.
    pub attempts: u32,
}

#[derive(Debug)]
struct TopicEntry {
    topic: Rc<str>,
    gen: u64,
    subs: Rc<[SubId]>,
    /// Whether every subscription of `subs` is live and marked direct, when `direct_gen` is the
    /// broker's (`u32::MAX`: not known). A stale route is never known: a current `direct_gen`
    /// also says that `subs` is current.
    all_direct: bool,
    direct_gen: u32,
}

/// The pub/sub state machine. `P` is the payload handle (cloned once per matching subscription).
#[derive(Debug)]
pub struct Broker<P> {
    config: BrokerConfig,
    subs: Slab<Sub<P>>,
    router: Router<SubId>,
    next_order: u64,
    routes_gen: u64,
    /// Bumped when a subscription's direct mark changes: the routes' `all_direct` of an earlier
    /// value are worked out again. Never `u32::MAX`.
    direct_gen: u32,
    /// Topic → its handle's index (a `u64`: the same map type as `scheduled_ids`, one copy of
    /// the map's code in the WebAssembly module instead of two).
    topic_ids: HashMap<Rc<str>, u64>,
    /// The same topics by token, to find those a pattern reaches.
    topic_trie: TopicTrie,
    /// Topics resolved since the trie was last brought up to date.
    trie_pending: Vec<u32>,
    /// Handles whose cached route went stale since the driver last asked.
    invalidated: Vec<u32>,
    scratch_handles: Vec<u32>,
    topics: Vec<TopicEntry>,
    /// Generation of `topics`, bumped each time the table starts anew.
    topics_gen: u32,
    /// The topic resolved last: publishers usually repeat a topic, and comparing it is cheaper
    /// than hashing.
    last_topic: Option<(Rc<str>, u32)>,
    /// The literal pattern whose topic a subscription change marked last, with that topic's
    /// handle: a subscription that comes and goes (or several on one pattern value) marks it
    /// again without hashing the text.
    last_literal: Option<(Pattern, u32)>,
    dedupe: Option<IdempotenceFilter>,
    ready: VecDeque<Ready<P>>,
    inflight: Slab<InFlight<P>>,
    timers: BinaryHeap<Reverse<(u64, Timer)>>,
    /// Expiry watches of the jobs waiting in work queues without members ([`Timer::Expiry`])
    /// and of the messages waiting in subscription queues ([`Timer::QueueExpiry`]): due like
    /// timers, but nothing waits on them (see [`Broker::timers_keep_alive`]). As timers, they
    /// are dropped when they come up: the watch of a job a member took meanwhile stays until its
    /// TTL would have ended (a few bytes per message that waited without members).
    watches: BinaryHeap<Reverse<(u64, Timer)>>,
    events: VecDeque<Event>,
    counters: Counters,
    latency: LatencyHistogram,
    direct_delivered: u64,
    /// Messages waiting in subscription queues, across the broker.
    queued: usize,
    /// Sum of every subscription's `in_flight`.
    in_flight: usize,
    seq: u64,
    closed: bool,
    waiting: bool,
    scratch: Vec<SubId>,
    /// Work queues by (group name, pattern).
    /// Work queues by `"<group name> <pattern>"` (neither holds a space), ids packed
    /// ([`pack`]): the same map type as `topic_ids`, whose code the WebAssembly module holds once.
    groups: HashMap<Rc<str>, u64>,
    /// Dead letters to publish, each with the member to report its failure as when no driver
    /// reported it at delivery time (see [`Broker::take_dead`]).
    dead: VecDeque<(DeadLetter<P>, Option<SubId>)>,
    /// Final failures for the driver to report (see [`Event::Failed`]).
    unreported: VecDeque<Unreported<P>>,
    retired: VecDeque<(SubId, Retired)>,
    scheduled: HashMap<u64, Scheduled<P>>,
    scheduled_ids: HashMap<Rc<str>, u64>,
    /// A failure reason given with [`Broker::complete_failed`], used by the next settle.
    reason: Option<(ErrorCode, Rc<str>)>,
    rng: u64,
    last_now: u64,
    /// Pending requests.
    requests: RequestTable,
    /// While a batch is published: groups to hand work out from once it is all in, so a batch
    /// claim sees the whole publish.
    deferred: Option<Vec<SubId>>,
    /// Retained values and history.
    logs: TopicLogs<P>,
    /// Gaps replays reported, for the driver (see [`Event::Gap`]).
    gaps: VecDeque<(SubId, Gap)>,
    /// Messages numbered since the driver last asked (only with `report_numbered`).
    numbered: Vec<(P, u64)>,
}

impl<P: Clone> Broker<P> {
    /// A broker with `config`; fails with `INVALID_OPTION` when a setting is out of range.
    pub fn new(config: BrokerConfig) -> Result<Self> {
        if let Some(w) = &config.dedupe {
            if w.max_ids == 0 {
                return Err(Error::invalid_option("dedupe.maxIds", "must be at least 1"));
            }
            if w.max_age == Some(0) {
                return Err(Error::invalid_option("dedupe.maxAgeMs", "must be positive"));
            }
        }
        if config.timeout == Some(0) {
            return Err(Error::invalid_option("timeoutMs", "must be positive"));
        }
        config.logs.validate()?;
        let seed = config.seed | 1;
        Ok(Broker {
            dedupe: config.dedupe.map(IdempotenceFilter::new),
            logs: TopicLogs::new(config.logs.clone()),
            gaps: VecDeque::new(),
            numbered: Vec::new(),
            config,
            subs: Slab::new(),
            router: Router::new(),
            next_order: 0,
            routes_gen: 0,
            direct_gen: 0,
            topic_ids: HashMap::new(),
            topic_trie: TopicTrie::new(),
            trie_pending: Vec::new(),
            invalidated: Vec::new(),
            scratch_handles: Vec::new(),
            topics: Vec::new(),
            topics_gen: 0,
            last_topic: None,
            last_literal: None,
            ready: VecDeque::new(),
            inflight: Slab::new(),
            timers: BinaryHeap::new(),
            watches: BinaryHeap::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            latency: LatencyHistogram::new(),
            direct_delivered: 0,
            queued: 0,
            in_flight: 0,
            seq: 0,
            groups: HashMap::new(),
            dead: VecDeque::new(),
            retired: VecDeque::new(),
            unreported: VecDeque::new(),
            scheduled: HashMap::new(),
            scheduled_ids: HashMap::new(),
            reason: None,
            rng: seed,
            last_now: 0,
            deferred: None,
            requests: RequestTable::new(),
            closed: false,
            waiting: false,
            scratch: Vec::new(),
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }
}

/// `INVALID_OPTION` for a `maxQueue` of 0 where messages must wait in the queue.
fn zero_queue(what: &str, inherited: bool) -> Error {
    let from = if inherited {
        " (the bus's maxQueue is 0: give this subscription its own)"
    } else {
        ""
    };
    Error::invalid_option(
        "maxQueue",
        format!("must be at least 1 for {what}: its messages wait in its queue{from}"),
    )
}

/// The latency summary of `h` with `zero_latency` more deliveries of latency 0.
fn summary(h: &LatencyHistogram, zero_latency: u64) -> LatencySummary {
    LatencySummary {
        count: h.count().saturating_add(zero_latency),
        p50_ms: h.quantile_with_zeros(0.5, zero_latency) as f64 / 1000.0,
        p99_ms: h.quantile_with_zeros(0.99, zero_latency) as f64 / 1000.0,
    }
}
