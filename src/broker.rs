//! The broker: a sans-IO state machine that owns subscriptions, routing, queues, batching, dedupe,
//! timers and statistics, and never calls a handler nor reads a clock itself.
//!
//! A driver feeds it `publish`, `subscribe`, `complete` and the current time, and takes back
//! [`Delivery`]s to run ([`Broker::next_delivery`]), [`Event`]s to act on, and the next deadline
//! to wake at. The native [`crate::Bus`] and the WebAssembly binding are two such drivers, so both
//! share exactly these semantics.

use crate::batch::{BatchPolicy, BatchQueue, Pushed};
use crate::dedupe::{DedupeWindow, IdempotenceFilter};
use crate::error::{Error, ErrorCode, Result};
use crate::groups::{
    validate_group, Claim, DeadLetter, JobRef, JobState, JobStatus, Retention, RetryPolicy,
    Settled, WorkQueue,
};
use crate::message::{Message, Outgoing};
use crate::queue::{Overflow, SubQueue};
use crate::router::Router;
use crate::slab::Slab;
use crate::snapshot::{BusStats, GroupStats, LatencySummary, SubscriptionStats};
use crate::stats::{Counters, LatencyHistogram};
use crate::topic::{validate_topic, Pattern};
use hashbrown::HashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
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
    /// Deliver in batches with this policy. For a queue-group member, only `max_size` and
    /// `max_wait` apply (batch claim); retries follow the group's policy.
    pub batch: Option<BatchPolicy>,
    /// Join a queue group (work queue): each message goes to exactly one member.
    pub group: Option<GroupOptions>,
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
        }
    }
}

/// Queue-group membership. Subscriptions with the same group name and pattern share one stream.
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
    /// How long work-queue ids stay queryable by [`Broker::status`] once finished.
    pub retention: Retention,
    /// Seed of the backoff jitter.
    pub seed: u64,
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
            retention: Retention::default(),
            seed: 0x9e37_79b9_7f4a_7c15,
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
    Batch(BatchQueue<P>),
    /// A queue group's stream: routed like a subscription, delivered to its members.
    Group(Box<WorkQueue<P, SubId>>),
    /// A member of a queue group: not routed; it claims from its group.
    Member(SubId),
}

#[derive(Debug)]
struct Sub<P> {
    order: u64,
    pattern: Pattern,
    concurrency: u32,
    max_queue: usize,
    overflow: Overflow,
    timeout: Option<u64>,
    kind: Kind<P>,
    /// Started (or handed to the ready list) and not completed; a batch awaiting retry holds it.
    in_flight: u32,
    counters: Counters,
    latency: LatencyHistogram,
    /// Deliveries made directly by the driver (latency zero), folded into `latency` when read.
    direct_delivered: u64,
    live: bool,
    /// The driver may call this subscription's handler directly when it is idle.
    direct: bool,
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
            timeout,
            kind,
            in_flight: 0,
            counters: Counters::default(),
            latency: LatencyHistogram::new(),
            direct_delivered: 0,
            live: true,
            direct: false,
        }
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
        let c = &self.counters;
        SubscriptionStats {
            id,
            pattern: self.pattern.as_str().to_owned(),
            group: group.map(str::to_owned),
            delivered: c.delivered,
            dropped: c.dropped,
            expired: c.expired,
            failed: c.failed,
            cancelled: c.cancelled,
            queued: self.queued() as u64,
            in_flight: self.in_flight as u64,
            latency: summary(&self.latency, self.direct_delivered),
        }
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
    /// Its queue group (`None` for a delayed message not routed yet).
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
}

/// The pub/sub state machine. `P` is the payload handle (cloned once per matching subscription).
#[derive(Debug)]
pub struct Broker<P> {
    config: BrokerConfig,
    subs: Slab<Sub<P>>,
    router: Router<SubId>,
    next_order: u64,
    routes_gen: u64,
    topic_ids: HashMap<Rc<str>, u32>,
    topics: Vec<TopicEntry>,
    /// Generation of `topics`, bumped each time the table starts anew.
    topics_gen: u32,
    /// The topic resolved last: publishers usually repeat a topic, and comparing it is cheaper
    /// than hashing.
    last_topic: Option<(Rc<str>, u32)>,
    dedupe: Option<IdempotenceFilter>,
    ready: VecDeque<Ready<P>>,
    inflight: Slab<InFlight<P>>,
    timers: BinaryHeap<Reverse<(u64, Timer)>>,
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
    /// Queue groups by (name, pattern).
    groups: HashMap<(Rc<str>, Rc<str>), SubId>,
    /// Dead letters to publish, each with the member to report its failure as when no driver
    /// reported it at delivery time (see [`Broker::take_dead`]).
    dead: VecDeque<(DeadLetter<P>, Option<SubId>)>,
    /// Final failures for the driver to report (see [`Event::Failed`]).
    unreported: VecDeque<Unreported<P>>,
    retired: VecDeque<(SubId, SubscriptionStats)>,
    scheduled: HashMap<u64, Scheduled<P>>,
    scheduled_ids: HashMap<Rc<str>, u64>,
    /// A failure reason given with [`Broker::complete_failed`], used by the next settle.
    reason: Option<(ErrorCode, Rc<str>)>,
    rng: u64,
    last_now: u64,
    /// While a batch is published: groups to hand work out from once it is all in, so a batch
    /// claim sees the whole publish.
    deferred: Option<Vec<SubId>>,
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
        let seed = config.seed | 1;
        Ok(Broker {
            dedupe: config.dedupe.map(IdempotenceFilter::new),
            config,
            subs: Slab::new(),
            router: Router::new(),
            next_order: 0,
            routes_gen: 0,
            topic_ids: HashMap::new(),
            topics: Vec::new(),
            topics_gen: 0,
            last_topic: None,
            ready: VecDeque::new(),
            inflight: Slab::new(),
            timers: BinaryHeap::new(),
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
            closed: false,
            waiting: false,
            scratch: Vec::new(),
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    // ----- subscriptions -------------------------------------------------------------------

    /// Adds a subscription. Fails with `INVALID_PATTERN` or `INVALID_OPTION`, or `CLOSED`.
    pub fn subscribe(&mut self, pattern: &str, options: &SubscribeOptions) -> Result<SubId> {
        if self.closed {
            return Err(Error::closed("bus"));
        }
        let pattern = Pattern::parse(pattern)?;
        if options.concurrency == 0 {
            return Err(Error::invalid_option("concurrency", "must be at least 1"));
        }
        if options.timeout == Some(0) {
            return Err(Error::invalid_option("timeoutMs", "must be positive"));
        }
        if let Some(group) = &options.group {
            return self.join_group(pattern, group, options);
        }
        let kind = match &options.batch {
            Some(policy) => {
                policy.validate()?;
                if options.concurrency != 1 {
                    return Err(Error::invalid_option(
                        "concurrency",
                        "must be 1 with `batch`: batches of one subscription run one at a time",
                    ));
                }
                Kind::Batch(BatchQueue::new(*policy))
            }
            None => Kind::Plain(SubQueue::new(options.concurrency > 1)),
        };
        let max_queue = options.max_queue.unwrap_or(self.config.max_queue);
        if max_queue == 0 && matches!(kind, Kind::Batch(_)) {
            // A batch is collected in the queue: with no room, it would refuse every message.
            return Err(zero_queue(
                "a batch subscription",
                options.max_queue.is_none(),
            ));
        }
        let overflow = options.overflow.unwrap_or(self.config.overflow);
        let timeout = options.timeout.or(self.config.timeout);
        let concurrency = options.concurrency;
        let id = self.add_sub(|order| {
            Sub::new(
                order,
                pattern,
                kind,
                concurrency,
                max_queue,
                overflow,
                timeout,
            )
        });
        let pattern = &self
            .subs
            .get(id.index, id.gen)
            .expect("just inserted")
            .pattern;
        self.router.insert(pattern, id);
        self.routes_gen += 1;
        Ok(id)
    }

    fn join_group(
        &mut self,
        pattern: Pattern,
        group: &GroupOptions,
        options: &SubscribeOptions,
    ) -> Result<SubId> {
        validate_group(&group.name)?;
        let retry = group.retry;
        if let Some(r) = &retry {
            r.validate()?;
        }
        let claim = match &options.batch {
            Some(b) => {
                if b.max_size == 0 {
                    return Err(Error::invalid_option("batch.maxSize", "must be at least 1"));
                }
                Some((b.max_size, b.max_wait))
            }
            None => None,
        };
        let key: (Rc<str>, Rc<str>) = (Rc::from(group.name.as_str()), Rc::from(pattern.as_str()));
        let gid = match self.groups.get(&key) {
            Some(&gid) => {
                let g = self.subs.get(gid.index, gid.gen).expect("group is live");
                let Kind::Group(wq) = &g.kind else {
                    unreachable!("groups map holds groups")
                };
                let mismatch = |what: &str, have: String| {
                    Err(Error::invalid_option(
                        what,
                        format!(
                            "group `{}` on `{}` already has {what} {have}; members must agree",
                            group.name,
                            pattern.as_str()
                        ),
                    ))
                };
                if let Some(r) = retry {
                    if r.max_attempts != wq.policy().max_attempts {
                        return mismatch("maxAttempts", wq.policy().max_attempts.to_string());
                    }
                    if r.backoff_initial != wq.policy().backoff_initial
                        || r.backoff_max != wq.policy().backoff_max
                    {
                        return mismatch(
                            "backoff",
                            format!(
                                "{{ initialMs: {}, maxMs: {} }}",
                                wq.policy().backoff_initial as f64 / 1000.0,
                                wq.policy().backoff_max as f64 / 1000.0
                            ),
                        );
                    }
                }
                if let Some(m) = options.max_queue {
                    if m != g.max_queue {
                        return mismatch("maxQueue", g.max_queue.to_string());
                    }
                }
                if let Some(o) = options.overflow {
                    if o != g.overflow {
                        return mismatch("overflow", format!("{:?}", g.overflow));
                    }
                }
                gid
            }
            None => {
                if options.max_queue.unwrap_or(self.config.max_queue) == 0 {
                    // A work queue keeps every message in its stream until it is acknowledged.
                    return Err(zero_queue("a queue group", options.max_queue.is_none()));
                }
                let wq = WorkQueue::new(
                    key.0.clone(),
                    retry.unwrap_or_default(),
                    self.config.retention,
                );
                let (max_queue, overflow) = (
                    options.max_queue.unwrap_or(self.config.max_queue),
                    options.overflow.unwrap_or(self.config.overflow),
                );
                let group_pattern = pattern.clone();
                let gid = self.add_sub(|order| {
                    let kind = Kind::Group(Box::new(wq));
                    Sub::new(order, group_pattern, kind, 1, max_queue, overflow, None)
                });
                self.router.insert(&pattern, gid);
                self.routes_gen += 1;
                self.groups.insert(key, gid);
                gid
            }
        };
        let timeout = options.timeout.or(self.config.timeout);
        let id = self.add_sub(|order| {
            let kind = Kind::Member(gid);
            Sub::new(
                order,
                pattern,
                kind,
                options.concurrency,
                0,
                Overflow::Reject,
                timeout,
            )
        });
        if let Some(Sub {
            kind: Kind::Group(wq),
            ..
        }) = self.subs.get_mut(gid.index, gid.gen)
        {
            wq.join(id, options.concurrency, claim);
        }
        // Waiting messages (left by earlier members) go to the newcomer at once.
        self.dispatch_group(gid);
        Ok(id)
    }

    /// Inserts a subscription made by `make` with the next order number.
    fn add_sub(&mut self, make: impl FnOnce(u64) -> Sub<P>) -> SubId {
        self.next_order += 1;
        let order = self.next_order;
        let (index, gen) = self.subs.insert(make(order), Some(order as u32));
        SubId { index, gen }
    }

    /// Hands a group's ready jobs to members with room.
    fn dispatch_group(&mut self, gid: SubId) {
        let now = self.last_now;
        let Some(Sub {
            kind: Kind::Group(wq),
            overflow,
            ..
        }) = self.subs.get_mut(gid.index, gid.gen)
        else {
            return;
        };
        let g_overflow_waits = *overflow == Overflow::Wait;
        let mut claims: Vec<Claim<SubId>> = Vec::new();
        let wake = wq.claim(now, &mut claims);
        let expired = wq.take_newly_expired();
        let mut dead: Vec<(DeadLetter<P>, Option<SubId>)> = Vec::new();
        for job in wq.take_newly_dead() {
            let by = wq.failed_by(job);
            if let Some(letter) = wq.bury(job, now) {
                dead.push((letter, by));
            }
        }
        let buried = !dead.is_empty();
        let waits = (!claims.is_empty() || buried || expired > 0) && g_overflow_waits;
        if buried {
            // Failed before, and their TTL ended before a member could take them again: final
            // failures no driver has reported yet.
            for (_, by) in &dead {
                self.counters.failed += 1;
                if let Some(m) = by.and_then(|by| self.subs.get_mut(by.index, by.gen)) {
                    m.counters.failed += 1;
                }
            }
            self.dead.extend(dead);
            self.events.push_back(Event::Dead);
        }
        if let Some(at) = wake {
            self.timers
                .push(Reverse((at, Timer::ClaimWait(gid.index, gid.gen))));
        }
        self.counters.expired += expired;
        for c in claims {
            if let Some(m) = self.subs.get_mut(c.member.index, c.member.gen) {
                m.in_flight += 1;
            }
            self.in_flight += 1;
            self.ready.push_back(Ready::Claim(c.member, gid, c.jobs));
        }
        if waits {
            self.room_changed();
        }
        if buried {
            // A buried job may have held a key: the next one with that key is ready now.
            self.dispatch_group(gid);
        }
    }

    /// Removes a subscription: messages waiting for it are discarded (counted as cancelled);
    /// deliveries already started finish. Returns `false` when it was already gone.
    pub fn unsubscribe(&mut self, id: SubId) -> bool {
        let Some(sub) = self.subs.get_mut(id.index, id.gen) else {
            return false;
        };
        if !sub.live {
            return false;
        }
        if let Kind::Member(gid) = sub.kind {
            sub.live = false;
            if let Some(Sub {
                kind: Kind::Group(wq),
                ..
            }) = self.subs.get_mut(gid.index, gid.gen)
            {
                wq.leave(&id);
            }
            self.free_if_done(id);
            // The group stays: what is published with no member is kept for the next one, and
            // its counters and status window outlive its members.
            return true;
        }
        if matches!(sub.kind, Kind::Group(_)) {
            // A group is not a subscription of its own: it lives until the bus is closed.
            return false;
        }
        sub.live = false;
        let cancelled = match &mut sub.kind {
            Kind::Plain(q) => {
                let n = q.clear();
                self.queued -= n;
                n
            }
            Kind::Batch(b) => {
                let waiting = b.queued();
                let retrying = b.retry.is_some();
                let n = b.clear();
                self.queued -= waiting;
                if retrying {
                    sub.in_flight -= 1;
                    self.in_flight -= 1;
                }
                n
            }
            Kind::Group(_) | Kind::Member(_) => 0,
        } as u64;
        sub.counters.cancelled += cancelled;
        self.counters.cancelled += cancelled;
        let pattern = sub.pattern.clone();
        self.router.remove(&pattern, id);
        self.routes_gen += 1;
        self.free_if_done(id);
        self.room_changed();
        true
    }

    /// Whether the subscription is a queue-group member.
    pub fn is_member(&self, id: SubId) -> bool {
        matches!(
            self.subs.get(id.index, id.gen),
            Some(Sub {
                kind: Kind::Member(_),
                ..
            })
        )
    }

    /// Whether the subscription is live.
    pub fn is_subscribed(&self, id: SubId) -> bool {
        self.subs.get(id.index, id.gen).is_some_and(|s| s.live)
    }

    /// The subscription's public id (its position in subscription order).
    pub fn subscription_order(&self, id: SubId) -> Option<u64> {
        self.subs.get(id.index, id.gen).map(|s| s.order)
    }

    /// Whether the subscription has nothing queued or running.
    pub fn is_sub_idle(&self, id: SubId) -> bool {
        self.subs.get(id.index, id.gen).is_none_or(|s| s.is_idle())
    }

    /// Live subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.subs
            .iter()
            .filter(|(_, _, s)| s.live && !matches!(s.kind, Kind::Group(_)))
            .count()
    }

    // ----- topics --------------------------------------------------------------------------

    /// Validates `topic` and returns its handle (`INVALID_TOPIC` otherwise).
    pub fn resolve(&mut self, topic: &str) -> Result<TopicHandle> {
        let gen = self.topics_gen;
        if let Some((last, h)) = &self.last_topic {
            if **last == *topic {
                return Ok(TopicHandle::from_parts(*h, gen));
            }
        }
        if let Some((name, &h)) = self.topic_ids.get_key_value(topic) {
            self.last_topic = Some((name.clone(), h));
            return Ok(TopicHandle::from_parts(h, gen));
        }
        validate_topic(topic)?;
        if self.topics.len() >= self.config.max_topics {
            self.clear_topics();
        }
        let topic: Rc<str> = Rc::from(topic);
        let h = self.topics.len() as u32;
        self.topics.push(TopicEntry {
            topic: topic.clone(),
            gen: u64::MAX,
            subs: Rc::from([]),
        });
        self.topic_ids.insert(topic.clone(), h);
        self.last_topic = Some((topic, h));
        Ok(TopicHandle::from_parts(h, self.topics_gen))
    }

    /// Forgets every resolved topic and bumps the table's generation: handles given out before
    /// are refused afterwards (never misrouted).
    pub fn clear_topics(&mut self) {
        self.last_topic = None;
        self.topic_ids.clear();
        self.topics.clear();
        self.topics_gen = self.topics_gen.wrapping_add(1);
    }

    /// The generation of the topic table: handles of another generation are stale.
    pub fn topics_generation(&self) -> u32 {
        self.topics_gen
    }

    fn entry(&self, handle: TopicHandle) -> Result<&TopicEntry> {
        if handle.gen != self.topics_gen {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "stale topic handle {} (the topic table was reset after {} topics); resolve the topic again",
                    handle.index, self.config.max_topics
                ),
            ));
        }
        self.topics.get(handle.index as usize).ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("unknown topic handle {}", handle.index),
            )
        })
    }

    /// The subscriptions `handle`'s topic reaches, in subscription order.
    pub fn route(&mut self, handle: TopicHandle) -> Result<Rc<[SubId]>> {
        let gen = self.routes_gen;
        let entry = self.entry(handle)?;
        if entry.gen == gen {
            return Ok(entry.subs.clone());
        }
        let topic = entry.topic.clone();
        let list = self.match_topic(&topic);
        let entry = &mut self.topics[handle.index as usize];
        entry.gen = gen;
        entry.subs = list.clone();
        Ok(list)
    }

    /// The subscriptions a (valid) topic reaches, in subscription order, without caching.
    fn match_topic(&mut self, topic: &str) -> Rc<[SubId]> {
        let mut found = std::mem::take(&mut self.scratch);
        found.clear();
        self.router.matches(topic, &mut found);
        let subs = &self.subs;
        found.sort_unstable_by_key(|id| subs.get(id.index, id.gen).map_or(0, |s| s.order));
        let list: Rc<[SubId]> = Rc::from(&found[..]);
        self.scratch = found;
        list
    }

    // ----- publishing ----------------------------------------------------------------------

    /// Publishes one message on `topic`.
    pub fn publish(
        &mut self,
        topic: &str,
        msg: Outgoing<P>,
        now: u64,
        mode: PublishMode,
    ) -> Result<Published> {
        if self.closed {
            return Err(Error::closed("bus"));
        }
        let handle = self.resolve(topic)?;
        self.publish_to(handle, msg, now, mode)
    }

    /// Publishes one message through a resolved topic handle.
    pub fn publish_to(
        &mut self,
        handle: TopicHandle,
        msg: Outgoing<P>,
        now: u64,
        mode: PublishMode,
    ) -> Result<Published> {
        if self.closed {
            return Err(Error::closed("bus"));
        }
        let subs = self.route(handle)?;
        if self.is_duplicate(msg.id.as_deref(), now) {
            return Ok(Published::Duplicate);
        }
        if let Some(at) = msg.not_before.filter(|at| *at > now) {
            let topic = self.topics[handle.index as usize].topic.clone();
            let id = msg.id.clone();
            self.schedule(topic, msg, at)?;
            self.record_id(id.as_deref(), now);
            return Ok(Published::Accepted {
                matched: subs.len(),
            });
        }
        if let Some(wait) = self.admit(&subs, 1, msg.size, mode)? {
            // A publisher now waits: report room from here on, including in the very next pass
            // (before the driver could say so itself), so no wake-up is missed.
            self.waiting = true;
            return Ok(wait);
        }
        self.record_id(msg.id.as_deref(), now);
        let topic = self.topics[handle.index as usize].topic.clone();
        self.enqueue(&subs, topic, msg, now);
        Ok(Published::Accepted {
            matched: subs.len(),
        })
    }

    /// Publishes a dead letter taken with [`Broker::take_dead`] on `$dead.<group>`: a message
    /// with `payload` (no id, key or headers) that carries the letter ([`Message::dead_letter`]).
    /// A full `reject` or `wait` subscriber refuses it with `QUEUE_FULL`.
    pub fn publish_dead(
        &mut self,
        letter: DeadLetter<P>,
        payload: P,
        size: usize,
        now: u64,
    ) -> Result<Published> {
        let handle = self.resolve(&format!("$dead.{}", letter.group))?;
        let subs = self.route(handle)?;
        if let Some(wait) = self.admit(&subs, 1, size, PublishMode::Now)? {
            return Ok(wait);
        }
        self.last_now = now;
        self.seq += 1;
        self.counters.published += 1;
        let msg = Message {
            topic: self.topics[handle.index as usize].topic.clone(),
            payload,
            id: None,
            key: None,
            headers: None,
            published_at: Some(now),
            expires_at: None,
            size,
            seq: self.seq,
            attempt: 1,
            letter: Some(Rc::new(letter)),
        };
        if let Some((last, rest)) = subs.split_last() {
            for id in rest {
                self.offer(*id, msg.clone(), 0, now);
            }
            self.offer(*last, msg, 0, now);
        }
        Ok(Published::Accepted {
            matched: subs.len(),
        })
    }

    /// Publishes several messages on one topic. Admission is all-or-nothing: when a `reject` (or
    /// `wait`) subscription cannot take all of them, none is published. Returns how many were
    /// accepted (duplicates excluded), or [`Published::MustWait`] semantics as `Ok(None)`.
    pub fn publish_batch(
        &mut self,
        handle: TopicHandle,
        msgs: Vec<Outgoing<P>>,
        now: u64,
        mode: PublishMode,
    ) -> Result<Option<usize>> {
        if self.closed {
            return Err(Error::closed("bus"));
        }
        let subs = self.route(handle)?;
        let is_delayed = |m: &Outgoing<P>| m.not_before.is_some_and(|at| at > now);
        let delayed = msgs.iter().filter(|m| is_delayed(m)).count();
        let largest = msgs.iter().map(|m| m.size).max().unwrap_or(0);
        if delayed > 0 && self.scheduled.len() + delayed > self.config.max_queue {
            return Err(Error::new(
                ErrorCode::QueueFull,
                format!(
                    "{delayed} more delayed messages do not fit: {} are waiting (the bus's maxQueue is {})",
                    self.scheduled.len(),
                    self.config.max_queue
                ),
            ));
        }
        if self
            .admit(&subs, msgs.len() - delayed, largest, mode)?
            .is_some()
        {
            self.waiting = true;
            return Ok(None);
        }
        let topic = self.topics[handle.index as usize].topic.clone();
        let mut accepted = 0;
        self.deferred = Some(Vec::new());
        for msg in msgs {
            if self.is_duplicate(msg.id.as_deref(), now) {
                continue;
            }
            self.record_id(msg.id.as_deref(), now);
            if let Some(at) = msg.not_before.filter(|at| *at > now) {
                // Room was checked above, so this cannot fail.
                let _ = self.schedule(topic.clone(), msg, at);
            } else {
                self.enqueue(&subs, topic.clone(), msg, now);
            }
            accepted += 1;
        }
        for gid in self.deferred.take().unwrap_or_default() {
            self.dispatch_group(gid);
        }
        Ok(Some(accepted))
    }

    /// Checks, without publishing, that `n` messages of up to `size` bytes fit every
    /// subscription `handle` reaches whose policy refuses rather than drops (`QUEUE_FULL`,
    /// `MESSAGE_TOO_LARGE`): a driver that delivers part of a batch itself asks this first, so a
    /// refused batch delivers nothing. `wait` subscriptions refuse here as with a synchronous
    /// publish.
    pub fn check_room(&mut self, handle: TopicHandle, n: usize, size: usize) -> Result<()> {
        if self.closed {
            return Err(Error::closed("bus"));
        }
        let subs = self.route(handle)?;
        self.admit(&subs, n, size, PublishMode::Now).map(|_| ())
    }

    /// The queue group a waiting publish on `handle` waits for: the first full `wait` group it
    /// reaches, if any (for the close summary).
    pub fn waiting_on(&mut self, handle: TopicHandle) -> Option<Rc<str>> {
        let subs = self.route(handle).ok()?;
        subs.iter()
            .find_map(|id| match self.subs.get(id.index, id.gen) {
                Some(
                    s @ Sub {
                        kind: Kind::Group(wq),
                        ..
                    },
                ) if s.overflow == Overflow::Wait && s.room() == 0 => Some(wq.name().clone()),
                _ => None,
            })
    }

    /// Marks whether the driver may call `id`'s handler directly while it is idle (see
    /// [`Broker::publish_direct`]). Only plain subscriptions qualify.
    pub fn set_direct(&mut self, id: SubId, direct: bool) {
        if let Some(sub) = self.subs.get_mut(id.index, id.gen) {
            sub.direct = direct && matches!(sub.kind, Kind::Plain(_));
        }
    }

    /// Whether `id` would take a message directly now: live, marked direct, nothing queued or
    /// running.
    pub fn is_direct_ready(&self, id: SubId) -> bool {
        self.subs
            .get(id.index, id.gen)
            .is_some_and(|s| s.live && s.direct && s.is_idle())
    }

    /// The fast path: when every subscription the topic reaches is idle and marked direct, the
    /// message is accepted here (dedupe, counters) and handed back with its route, for the driver
    /// to call each handler synchronously, in order, before doing anything else. Otherwise the
    /// message comes back untouched for [`Broker::publish_to`].
    ///
    /// `now` is needed only when dedupe has an age limit and the message has an id; the message's
    /// `published_at` stays `None` (it is delivered at the moment it is published).
    pub fn publish_direct(
        &mut self,
        handle: TopicHandle,
        msg: Outgoing<P>,
        now: impl FnOnce() -> u64,
    ) -> Result<Direct<P>> {
        if self.closed {
            return Err(Error::closed("bus"));
        }
        let subs = self.route(handle)?;
        if msg.not_before.is_some() || !subs.iter().all(|id| self.is_direct_ready(*id)) {
            return Ok(Direct::Queue(msg));
        }
        if msg.id.is_some() && self.dedupe.is_some() {
            let now = now();
            if self.is_duplicate(msg.id.as_deref(), now) {
                return Ok(Direct::Duplicate);
            }
            self.record_id(msg.id.as_deref(), now);
        }
        self.seq += 1;
        self.counters.published += 1;
        let message = Message {
            topic: self.topics[handle.index as usize].topic.clone(),
            payload: msg.payload,
            id: msg.id,
            key: msg.key,
            headers: msg.headers,
            published_at: None,
            expires_at: None,
            size: msg.size,
            seq: self.seq,
            attempt: 1,
            letter: None,
        };
        Ok(Direct::Deliver(subs, message))
    }

    /// Checks `id` against the idempotence filter and records it: `true` for a first sighting.
    /// Always `true` when dedupe is off. Counts duplicates.
    pub fn check_id(&mut self, id: &str, now: u64) -> bool {
        if self.is_duplicate(Some(id), now) {
            return false;
        }
        self.record_id(Some(id), now);
        true
    }

    fn is_duplicate(&mut self, id: Option<&str>, now: u64) -> bool {
        if let (Some(filter), Some(id)) = (self.dedupe.as_mut(), id) {
            if filter.has(id, now) {
                self.counters.duplicates += 1;
                return true;
            }
        }
        false
    }

    fn record_id(&mut self, id: Option<&str>, now: u64) {
        if let (Some(filter), Some(id)) = (self.dedupe.as_mut(), id) {
            filter.check(id, now);
        }
    }

    /// Checks `n` messages (the largest `size` bytes) fit every subscription whose policy refuses
    /// rather than drops. `Ok(Some(MustWait))` when a `wait` subscription is full in wait mode.
    fn admit(
        &self,
        subs: &[SubId],
        n: usize,
        size: usize,
        mode: PublishMode,
    ) -> Result<Option<Published>> {
        for id in subs {
            let Some(sub) = self.subs.get(id.index, id.gen) else {
                continue;
            };
            if let Kind::Batch(b) = &sub.kind {
                if size > b.policy.max_bytes {
                    return Err(Error::new(
                        ErrorCode::MessageTooLarge,
                        format!(
                            "message of {size} bytes is over the {}-byte batch limit of subscription #{} (`{}`)",
                            b.policy.max_bytes,
                            sub.order,
                            sub.pattern.as_str()
                        ),
                    ));
                }
            }
            if n <= sub.room() {
                continue;
            }
            match (sub.overflow, mode) {
                (Overflow::Reject, _) | (Overflow::Wait, PublishMode::Now) => {
                    let hint = if sub.overflow == Overflow::Wait {
                        "; use publishAsync to wait for room"
                    } else {
                        ""
                    };
                    return Err(Error::new(
                        ErrorCode::QueueFull,
                        format!(
                            "queue of subscription #{} (`{}`) is full (maxQueue {}){hint}",
                            sub.order,
                            sub.pattern.as_str(),
                            sub.max_queue
                        ),
                    ));
                }
                (Overflow::Wait, PublishMode::Wait) => return Ok(Some(Published::MustWait)),
                _ => {}
            }
        }
        Ok(None)
    }

    fn enqueue(&mut self, subs: &[SubId], topic: Rc<str>, out: Outgoing<P>, now: u64) {
        self.last_now = now;
        let priority = out.priority;
        self.seq += 1;
        self.counters.published += 1;
        let msg = Message {
            topic,
            payload: out.payload,
            id: out.id,
            key: out.key,
            headers: out.headers,
            published_at: Some(now),
            expires_at: out.ttl.map(|t| now.saturating_add(t)),
            size: out.size,
            seq: self.seq,
            attempt: 1,
            letter: None,
        };
        if let Some((last, rest)) = subs.split_last() {
            for id in rest {
                self.offer(*id, msg.clone(), priority, now);
            }
            self.offer(*last, msg, priority, now);
        }
    }

    /// Puts `msg` in the subscription's queue (applying its overflow policy) and starts what can
    /// start.
    fn offer(&mut self, id: SubId, msg: Message<P>, priority: u32, now: u64) {
        let Some(sub) = self.subs.get_mut(id.index, id.gen) else {
            return;
        };
        if !sub.live {
            return;
        }
        if sub.room() == 0 {
            // Refusing policies were checked before anything was enqueued, so only the dropping
            // policies get here; anything else is treated as dropping the newest, never lost
            // silently.
            let dropped = if sub.overflow == Overflow::DropOldest {
                let old = match &mut sub.kind {
                    Kind::Plain(q) => q.drop_oldest().is_some(),
                    Kind::Batch(b) => b.drop_oldest().is_some(),
                    Kind::Group(g) => g.drop_oldest(now),
                    Kind::Member(_) => false,
                };
                if old && !matches!(sub.kind, Kind::Group(_)) {
                    self.queued -= 1;
                }
                old
            } else {
                false
            };
            sub.counters.dropped += 1;
            self.counters.dropped += 1;
            if !dropped {
                if let Kind::Group(g) = &mut sub.kind {
                    g.refuse(&msg, now);
                }
                return;
            }
        }
        if let Kind::Group(g) = &mut sub.kind {
            g.push(msg, priority);
            match &mut self.deferred {
                Some(later) => {
                    if !later.contains(&id) {
                        later.push(id);
                    }
                }
                None => self.dispatch_group(id),
            }
            return;
        }
        self.queued += 1;
        match &mut sub.kind {
            Kind::Plain(q) => q.push(msg),
            Kind::Group(_) | Kind::Member(_) => {}
            Kind::Batch(b) => {
                if let Pushed::Opened(gen) = b.push(msg) {
                    let wait = b.policy.max_wait;
                    self.timers.push(Reverse((
                        now.saturating_add(wait),
                        Timer::BatchWait(id.index, id.gen, gen),
                    )));
                }
            }
        }
        self.start(id);
    }

    /// Moves messages of `id` from its queue to the ready list while it has free slots.
    fn start(&mut self, id: SubId) {
        let Some(sub) = self.subs.get_mut(id.index, id.gen) else {
            return;
        };
        let mut moved = 0;
        match &mut sub.kind {
            Kind::Plain(q) => {
                while sub.in_flight < sub.concurrency {
                    let Some(msg) = q.pop() else { break };
                    sub.in_flight += 1;
                    moved += 1;
                    self.ready.push_back(Ready::One(id, msg));
                }
            }
            Kind::Batch(b) => {
                if sub.in_flight == 0 {
                    if let Some(batch) = b.pop() {
                        sub.in_flight = 1;
                        moved = batch.len();
                        self.in_flight += 1;
                        self.queued -= moved;
                        self.ready.push_back(Ready::Batch(id, batch, 1));
                        if sub.overflow == Overflow::Wait {
                            self.room_changed();
                        }
                        return;
                    }
                }
                return;
            }
            Kind::Group(_) => {
                self.dispatch_group(id);
                return;
            }
            Kind::Member(gid) => {
                let gid = *gid;
                self.dispatch_group(gid);
                return;
            }
        }
        if moved > 0 {
            self.in_flight += moved;
            self.queued -= moved;
            if sub.overflow == Overflow::Wait {
                self.room_changed();
            }
        }
    }

    fn room_changed(&mut self) {
        if self.waiting && self.events.back() != Some(&Event::Room) {
            self.events.push_back(Event::Room);
        }
    }

    /// Tells the broker whether publishers are waiting for room, so it reports [`Event::Room`].
    /// Answering [`Published::MustWait`] sets it; the driver clears it when no one waits.
    pub fn set_waiting(&mut self, waiting: bool) {
        self.waiting = waiting;
    }

    // ----- running deliveries --------------------------------------------------------------

    /// The next delivery to run, if any. Messages whose TTL ended are skipped (counted as
    /// expired), as are deliveries of subscriptions gone since (counted as cancelled).
    pub fn next_delivery(&mut self, now: u64) -> Option<Delivery<P>> {
        loop {
            match self.ready.pop_front()? {
                Ready::One(id, msg) => {
                    let key = msg.key.clone();
                    let Some(sub) = self.subs.get_mut(id.index, id.gen) else {
                        continue;
                    };
                    if !sub.live {
                        sub.counters.cancelled += 1;
                        self.counters.cancelled += 1;
                        self.finish(id, key.as_ref());
                        continue;
                    }
                    if msg.is_expired(now) {
                        sub.counters.expired += 1;
                        self.counters.expired += 1;
                        self.finish(id, key.as_ref());
                        continue;
                    }
                    let latency = msg.published_at.map_or(0, |t| now.saturating_sub(t));
                    sub.latency.record(latency);
                    self.latency.record(latency);
                    sub.counters.delivered += 1;
                    self.counters.delivered += 1;
                    let timeout = sub.timeout;
                    let delivery = self.begin(id, key, None, 1, 1, timeout, now);
                    return Some(Delivery {
                        id: delivery,
                        sub: id,
                        attempt: 1,
                        final_attempt: true,
                        items: Items::One(msg),
                    });
                }
                Ready::Claim(member, gid, jobs) => {
                    if let Some(d) = self.deliver_claim(member, gid, jobs, now) {
                        return Some(d);
                    }
                }
                Ready::Batch(id, mut msgs, attempt) => {
                    let Some(sub) = self.subs.get_mut(id.index, id.gen) else {
                        continue;
                    };
                    if !sub.live {
                        let n = msgs.len() as u64;
                        sub.counters.cancelled += n;
                        self.counters.cancelled += n;
                        self.finish(id, None);
                        continue;
                    }
                    // A retry was scheduled before its messages' TTL ends (see `settle`): a
                    // late timer does not turn an already delivered message into an expired one.
                    let before = msgs.len();
                    if attempt == 1 {
                        msgs.retain(|m| !m.is_expired(now));
                    }
                    let expired = (before - msgs.len()) as u64;
                    sub.counters.expired += expired;
                    self.counters.expired += expired;
                    if msgs.is_empty() {
                        self.finish(id, None);
                        continue;
                    }
                    if attempt == 1 {
                        for m in &msgs {
                            let latency = m.published_at.map_or(0, |t| now.saturating_sub(t));
                            sub.latency.record(latency);
                            self.latency.record(latency);
                        }
                        let n = msgs.len() as u64;
                        sub.counters.delivered += n;
                        self.counters.delivered += n;
                    }
                    let (timeout, max_attempts) = match &sub.kind {
                        Kind::Batch(b) => (sub.timeout, b.policy.max_attempts),
                        _ => (sub.timeout, 1),
                    };
                    let final_attempt = attempt >= max_attempts;
                    let keep = (!final_attempt).then(|| msgs.clone());
                    let count = msgs.len() as u64;
                    let delivery = self.begin(id, None, keep, attempt, count, timeout, now);
                    return Some(Delivery {
                        id: delivery,
                        sub: id,
                        attempt,
                        final_attempt,
                        items: Items::Batch(msgs),
                    });
                }
            }
        }
    }

    /// Turns a member's claim into a delivery (or hands the jobs back when the member left).
    fn deliver_claim(
        &mut self,
        member: SubId,
        gid: SubId,
        jobs: Vec<JobRef>,
        now: u64,
    ) -> Option<Delivery<P>> {
        let member_live = self.is_sub_live(member);
        let Some(Sub {
            kind: Kind::Group(wq),
            ..
        }) = self.subs.get_mut(gid.index, gid.gen)
        else {
            self.finish(member, None);
            return None;
        };
        if !member_live {
            wq.unclaim(member, &jobs);
            self.finish(member, None);
            self.dispatch_group(gid);
            return None;
        }
        let mut msgs = Vec::with_capacity(jobs.len());
        let mut attempt = u32::MAX;
        let mut final_attempt = true;
        for job in &jobs {
            if let Some((m, a, max)) = wq.message(*job) {
                attempt = attempt.min(a);
                final_attempt &= a >= max;
                msgs.push(m);
            }
        }
        let batch = wq.claims_batches(&member);
        let sub = self.subs.get_mut(member.index, member.gen)?;
        for m in &msgs {
            if m.attempt == 1 {
                let latency = m.published_at.map_or(0, |t| now.saturating_sub(t));
                sub.latency.record(latency);
                self.latency.record(latency);
            }
        }
        let n = msgs.len() as u64;
        sub.counters.delivered += n;
        self.counters.delivered += n;
        let timeout = sub.timeout;
        let (index, gen) = self.inflight.insert(
            InFlight {
                sub: member,
                key: None,
                batch: None,
                count: n,
                claim: Some((gid, jobs, batch)),
            },
            None,
        );
        if let Some(t) = timeout {
            self.timers
                .push(Reverse((now.saturating_add(t), Timer::Timeout(index, gen))));
        }
        let items = if batch {
            Items::Batch(msgs)
        } else {
            Items::One(msgs.pop()?)
        };
        Some(Delivery {
            id: DeliveryId { index, gen },
            sub: member,
            attempt: attempt.min(u32::MAX - 1),
            final_attempt,
            items,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn begin(
        &mut self,
        sub: SubId,
        key: Option<Rc<str>>,
        keep: Option<Vec<Message<P>>>,
        attempt: u32,
        count: u64,
        timeout: Option<u64>,
        now: u64,
    ) -> DeliveryId {
        let (index, gen) = self.inflight.insert(
            InFlight {
                sub,
                key,
                batch: keep.map(|m| (m, attempt)),
                count,
                claim: None,
            },
            None,
        );
        if let Some(t) = timeout {
            self.timers
                .push(Reverse((now.saturating_add(t), Timer::Timeout(index, gen))));
        }
        DeliveryId { index, gen }
    }

    /// Registers a delivery the driver started on its own (a handler it called directly that
    /// turned out to be asynchronous), so the subscription's concurrency, key order and timeout
    /// account for it. The subscription must have been idle.
    pub fn begin_external(&mut self, sub: SubId, key: Option<Rc<str>>, now: u64) -> DeliveryId {
        let timeout = match self.subs.get_mut(sub.index, sub.gen) {
            Some(s) => {
                s.in_flight += 1;
                if let Kind::Plain(q) = &mut s.kind {
                    q.activate(key.as_ref());
                }
                s.timeout
            }
            None => None,
        };
        self.in_flight += 1;
        self.unready_over_limit(sub);
        self.begin(sub, key, None, 1, 1, timeout, now)
    }

    /// A message published from inside a directly called handler may have been made ready for a
    /// subscription that the handler's own (now asynchronous) delivery keeps busy: put such
    /// messages back at the front of its queue so they wait their turn.
    fn unready_over_limit(&mut self, id: SubId) {
        loop {
            let Some(sub) = self.subs.get(id.index, id.gen) else {
                return;
            };
            if sub.in_flight <= sub.concurrency {
                return;
            }
            let Some(pos) = self
                .ready
                .iter()
                .rposition(|r| matches!(r, Ready::One(s, _) if *s == id))
            else {
                return;
            };
            let Some(Ready::One(_, msg)) = self.ready.remove(pos) else {
                return;
            };
            let Some(sub) = self.subs.get_mut(id.index, id.gen) else {
                return;
            };
            sub.in_flight -= 1;
            self.in_flight -= 1;
            self.queued += 1;
            if let Kind::Plain(q) = &mut sub.kind {
                q.push_front(msg);
            }
        }
    }

    /// Records the outcome of a delivery. Unknown or timed-out deliveries are ignored (a late
    /// result). A failed batch that has tries left is scheduled for retry.
    pub fn complete(&mut self, delivery: DeliveryId, ok: bool, now: u64) {
        let Some(f) = self.inflight.remove(delivery.index, delivery.gen) else {
            return;
        };
        self.settle(f, ok, now);
    }

    /// Gives back a delivery the driver could not start (its subscription left in between):
    /// claimed work-queue messages return to their group without using up an attempt; any other
    /// delivery is completed.
    pub fn abandon(&mut self, delivery: DeliveryId, now: u64) {
        let Some(mut f) = self.inflight.remove(delivery.index, delivery.gen) else {
            return;
        };
        let Some((gid, jobs, _)) = f.claim.take() else {
            // Never started: counted as cancelled, not delivered.
            let count = f.count;
            if let Some(sub) = self.subs.get_mut(f.sub.index, f.sub.gen) {
                sub.counters.delivered = sub.counters.delivered.saturating_sub(count);
                sub.counters.cancelled += count;
            }
            self.counters.delivered = self.counters.delivered.saturating_sub(count);
            self.counters.cancelled += count;
            self.settle(f, true, now);
            return;
        };
        if let Some(Sub {
            kind: Kind::Group(wq),
            ..
        }) = self.subs.get_mut(gid.index, gid.gen)
        {
            wq.unclaim(f.sub, &jobs);
        }
        self.finish(f.sub, None);
        self.dispatch_group(gid);
    }

    /// Records a failed delivery with its error's message, which a work-queue message that
    /// fails for good carries to `$dead.<group>`.
    pub fn complete_failed(&mut self, delivery: DeliveryId, error: &str, now: u64) {
        let Some(f) = self.inflight.remove(delivery.index, delivery.gen) else {
            return;
        };
        self.reason = Some((ErrorCode::HandlerFailed, Rc::from(error)));
        self.settle(f, false, now);
        self.reason = None;
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[allow(clippy::too_many_arguments)]
    fn settle_claim(
        &mut self,
        f: InFlight<P>,
        gid: SubId,
        jobs: Vec<JobRef>,
        batch: bool,
        ok: bool,
        now: u64,
    ) {
        self.last_now = now;
        let member = f.sub;
        let reason = self.reason.take();
        let mut dead = 0u64;
        let mut retries: Vec<(JobRef, u64)> = Vec::new();
        let randoms: Vec<u64> = if ok {
            Vec::new()
        } else {
            (0..jobs.len()).map(|_| self.random()).collect()
        };
        if let Some(Sub {
            kind: Kind::Group(wq),
            ..
        }) = self.subs.get_mut(gid.index, gid.gen)
        {
            // The driver reports a failure itself when the delivery was the last try of every
            // message in it (`Delivery::final_attempt`); any other death is reported from its
            // letter, so each final failure is reported exactly once.
            let reported = jobs
                .iter()
                .all(|j| wq.message(*j).is_none_or(|(_, a, max)| a >= max));
            wq.member_done(member);
            for (i, job) in jobs.into_iter().enumerate() {
                let error = (!ok).then(|| {
                    reason
                        .clone()
                        .unwrap_or((ErrorCode::HandlerFailed, Rc::from("handler failed")))
                });
                let random = randoms.get(i).copied().unwrap_or(0);
                match wq.settle(job, member, ok, error, batch, now, random) {
                    Some(Settled::Retry(job, due)) => retries.push((job, due)),
                    Some(Settled::Dead) => {
                        if let Some(letter) = wq.bury(job, now) {
                            self.dead.push_back((letter, (!reported).then_some(member)));
                            dead += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
        for (job, due) in retries {
            self.timers.push(Reverse((
                due,
                Timer::JobRetry(gid.index, gid.gen, job.index, job.gen),
            )));
        }
        if dead > 0 {
            self.events.push_back(Event::Dead);
            self.counters.failed += dead;
            if let Some(m) = self.subs.get_mut(member.index, member.gen) {
                m.counters.failed += dead;
            }
        }
        self.finish(member, None);
        // A job done or dead leaves the stream: room for a publisher waiting on it, even when
        // nothing is claimed next.
        if matches!(self.subs.get(gid.index, gid.gen), Some(g) if g.overflow == Overflow::Wait) {
            self.room_changed();
        }
        self.dispatch_group(gid);
    }

    fn settle(&mut self, mut f: InFlight<P>, ok: bool, now: u64) {
        if let Some((gid, jobs, batch)) = f.claim.take() {
            self.settle_claim(f, gid, jobs, batch, ok, now);
            return;
        }
        let id = f.sub;
        let Some(sub) = self.subs.get_mut(id.index, id.gen) else {
            self.in_flight = self.in_flight.saturating_sub(1);
            return;
        };
        if !ok {
            if let (Some((msgs, attempt)), true, Kind::Batch(b)) =
                (f.batch, sub.live, &mut sub.kind)
            {
                let due = now.saturating_add(b.policy.backoff(attempt));
                // A message whose TTL ends before the retry comes due cannot be retried: its
                // failure is final now (counted failed, not expired, and reported).
                let (keep, lost): (Vec<_>, Vec<_>) =
                    msgs.into_iter().partition(|m| !m.is_expired(due));
                let retry = !keep.is_empty();
                if retry {
                    b.retry = Some((keep, attempt + 1));
                }
                if !lost.is_empty() {
                    let n = lost.len() as u64;
                    sub.counters.failed += n;
                    self.counters.failed += n;
                    let (code, error) = self
                        .reason
                        .clone()
                        .unwrap_or((ErrorCode::HandlerFailed, Rc::from("handler failed")));
                    self.unreported.push_back(Unreported {
                        sub: id,
                        messages: lost,
                        attempts: attempt,
                        code,
                        error,
                    });
                    self.events.push_back(Event::Failed);
                }
                if retry {
                    self.timers
                        .push(Reverse((due, Timer::Retry(id.index, id.gen))));
                    return;
                }
                self.finish(id, f.key.as_ref());
                return;
            }
            sub.counters.failed += f.count;
            self.counters.failed += f.count;
        }
        self.finish(id, f.key.as_ref());
    }

    /// A slot of `id` is free again: release the key, start what waits, report idleness.
    fn finish(&mut self, id: SubId, key: Option<&Rc<str>>) {
        let Some(sub) = self.subs.get_mut(id.index, id.gen) else {
            return;
        };
        sub.in_flight -= 1;
        self.in_flight -= 1;
        if let Kind::Plain(q) = &mut sub.kind {
            q.release(key);
        }
        if sub.live {
            self.start(id);
            if self.config.track_idle && self.is_sub_idle(id) {
                self.events.push_back(Event::Idle(id));
            }
        } else {
            self.free_if_done(id);
        }
    }

    fn free_if_done(&mut self, id: SubId) {
        if let Some(sub) = self.subs.get(id.index, id.gen) {
            if !sub.live && sub.in_flight == 0 {
                // The drivers keep showing these once the subscription is gone.
                if let Some(stats) = self.subscription_stats(id) {
                    self.retired.push_back((id, stats));
                    self.events.push_back(Event::Retired(id));
                }
                self.subs.remove(id.index, id.gen);
            }
        }
    }

    /// The final statistics of an unsubscribed subscription, once its last delivery settled
    /// (reported with [`Event::Retired`]; every driver takes them, so they do not pile up).
    pub fn take_retired(&mut self) -> Option<(SubId, SubscriptionStats)> {
        self.retired.pop_front()
    }

    // ----- time ----------------------------------------------------------------------------

    /// The earliest time a live timer is due, if any.
    pub fn next_deadline(&mut self) -> Option<u64> {
        // Timers are invalidated lazily; drop the stale ones on top so a driver never waits
        // (or keeps a process alive) for a deadline with nothing behind it.
        while let Some(Reverse((t, timer))) = self.timers.peek() {
            if self.timer_is_live(*timer) {
                return Some(*t);
            }
            self.timers.pop();
        }
        None
    }

    fn timer_is_live(&self, timer: Timer) -> bool {
        match timer {
            Timer::Timeout(index, gen) => self.inflight.get(index, gen).is_some(),
            Timer::BatchWait(index, gen, batch) => matches!(
                self.subs.get(index, gen),
                Some(Sub { kind: Kind::Batch(b), live: true, .. }) if b.is_open(batch)
            ),
            Timer::Retry(index, gen) => matches!(
                self.subs.get(index, gen),
                Some(Sub { kind: Kind::Batch(b), live: true, .. }) if b.retry.is_some()
            ),
            // A closed bus lists pending retries in `remaining` instead of running them.
            Timer::JobRetry(index, gen, ji, jg) => {
                !self.closed
                    && matches!(
                        self.subs.get(index, gen),
                        Some(Sub { kind: Kind::Group(wq), .. })
                            if wq.is_retrying(JobRef { index: ji, gen: jg })
                    )
            }
            Timer::ClaimWait(index, gen) => matches!(
                self.subs.get(index, gen),
                Some(Sub { kind: Kind::Group(wq), .. })
                    if wq.is_waiting_for_batch()
            ),
            Timer::Visible(seq) => self.scheduled.contains_key(&seq),
        }
    }

    /// Runs every timer due at `now`: batch waits, retries and handler timeouts.
    pub fn fire_timers(&mut self, now: u64) {
        self.last_now = now;
        while let Some(Reverse((due, _))) = self.timers.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((_, timer))) = self.timers.pop() else {
                break;
            };
            match timer {
                Timer::Timeout(index, gen) => self.time_out(DeliveryId { index, gen }, now),
                Timer::BatchWait(index, gen, batch) => {
                    let id = SubId { index, gen };
                    if let Some(Sub {
                        kind: Kind::Batch(b),
                        ..
                    }) = self.subs.get_mut(index, gen)
                    {
                        b.seal_if(batch);
                        self.start(id);
                    }
                }
                Timer::JobRetry(..) if self.closed => {}
                Timer::JobRetry(index, gen, ji, jg) => {
                    let gid = SubId { index, gen };
                    if let Some(Sub {
                        kind: Kind::Group(wq),
                        ..
                    }) = self.subs.get_mut(index, gen)
                    {
                        wq.retry_due(JobRef { index: ji, gen: jg });
                        self.dispatch_group(gid);
                    }
                }
                Timer::ClaimWait(index, gen) => self.dispatch_group(SubId { index, gen }),
                Timer::Visible(seq) => self.make_visible(seq, now),
                Timer::Retry(index, gen) => {
                    let id = SubId { index, gen };
                    if let Some(Sub {
                        kind: Kind::Batch(b),
                        live: true,
                        ..
                    }) = self.subs.get_mut(index, gen)
                    {
                        if let Some((msgs, attempt)) = b.retry.take() {
                            self.ready.push_back(Ready::Batch(id, msgs, attempt));
                        }
                    }
                }
            }
        }
    }

    fn time_out(&mut self, delivery: DeliveryId, now: u64) {
        let Some(f) = self.inflight.remove(delivery.index, delivery.gen) else {
            return;
        };
        let final_attempt = match (&f.batch, &f.claim) {
            (_, Some((gid, jobs, _))) => match self.subs.get(gid.index, gid.gen) {
                Some(Sub {
                    kind: Kind::Group(wq),
                    ..
                }) => jobs
                    .iter()
                    .all(|j| wq.message(*j).is_none_or(|(_, a, max)| a >= max)),
                _ => true,
            },
            (Some(_), None) => !self.is_sub_live(f.sub),
            (None, None) => true,
        };
        self.reason = Some((
            ErrorCode::HandlerTimeout,
            Rc::from(self.timeout_message(f.sub)),
        ));
        self.events.push_back(Event::TimedOut {
            delivery,
            sub: f.sub,
            final_attempt,
        });
        self.settle(f, false, now);
        self.reason = None;
    }

    /// The message of the `HANDLER_TIMEOUT` error every driver reports when a delivery of `sub`
    /// times out (and a dead letter carries): `not acknowledged within 50 ms` for a queue-group
    /// member, `handler did not settle within 50 ms` otherwise.
    pub fn timeout_message(&self, sub: SubId) -> String {
        let (ms, member) = self.subs.get(sub.index, sub.gen).map_or((0.0, false), |s| {
            (
                s.timeout.unwrap_or(0) as f64 / 1000.0,
                matches!(s.kind, Kind::Member(_)),
            )
        });
        if member {
            format!("not acknowledged within {ms} ms")
        } else {
            format!("handler did not settle within {ms} ms")
        }
    }

    fn is_sub_live(&self, id: SubId) -> bool {
        self.subs.get(id.index, id.gen).is_some_and(|s| s.live)
    }

    /// Takes the next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- lifecycle -----------------------------------------------------------------------

    /// Seals every open batch so partial batches are delivered.
    pub fn flush(&mut self) {
        let ids: Vec<SubId> = self
            .subs
            .iter_mut()
            .filter_map(|(index, gen, s)| match &mut s.kind {
                Kind::Batch(b) if b.has_open() => {
                    b.seal();
                    Some(SubId { index, gen })
                }
                Kind::Group(wq) if wq.ready_len() > 0 => {
                    wq.flush();
                    Some(SubId { index, gen })
                }
                _ => None,
            })
            .collect();
        for id in ids {
            self.start(id);
        }
    }

    /// Refuses every later publish and subscribe with `CLOSED`, and flushes open batches.
    pub fn close(&mut self) {
        self.closed = true;
        self.flush();
    }

    /// Whether [`Broker::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether nothing is queued, ready or running (open batches count as queued).
    ///
    /// Work-queue messages count while their group has a member to take them; messages of a
    /// group whose members all left, and delayed messages not visible yet, do not (a close
    /// reports them, see [`Broker::remaining`]). Once closed, messages waiting for a retry do not
    /// count either (nor those parked behind them by key): a close lists them instead of waiting
    /// out their backoff.
    pub fn is_idle(&self) -> bool {
        self.queued == 0
            && self.in_flight == 0
            && self.groups.values().all(|gid| {
                matches!(
                    self.subs.get(gid.index, gid.gen),
                    Some(Sub { kind: Kind::Group(wq), .. })
                        if wq.member_count() == 0
                            || wq.depth() == 0
                            || (self.closed && wq.in_flight() == 0 && wq.ready_len() == 0)
                )
            })
    }

    /// Whether deliveries are ready to run now.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    // ----- statistics ----------------------------------------------------------------------

    /// Counters of the whole broker.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// A statistics snapshot of the broker and every live subscription.
    pub fn stats(&self) -> BusStats {
        let mut per: Vec<SubscriptionStats> = self
            .subs
            .iter()
            .filter(|(_, _, s)| s.live && !matches!(s.kind, Kind::Group(_)))
            .map(|(_, _, s)| s.stats(s.order, self.group_name(s)))
            .collect();
        per.sort_by_key(|s| s.id);
        let mut groups: Vec<(u64, GroupStats)> = self
            .groups
            .values()
            .filter_map(|gid| self.subs.get(gid.index, gid.gen))
            .filter_map(|g| match &g.kind {
                Kind::Group(wq) => Some((
                    g.order,
                    GroupStats {
                        name: wq.name().to_string(),
                        pattern: g.pattern.as_str().to_owned(),
                        members: wq.member_count() as u64,
                        depth: wq.depth() as u64,
                        retrying: wq.retrying() as u64,
                        in_flight: wq.in_flight() as u64,
                        published: wq.counters().published,
                        done: wq.counters().done,
                        retried: wq.counters().retried,
                        dead: wq.counters().dead,
                        expired: wq.counters().expired,
                        dropped: g.counters.dropped,
                        remembered: wq.remembered() as u64,
                    },
                )),
                _ => None,
            })
            .collect();
        groups.sort_by_key(|(order, _)| *order);
        let group_depth: usize = groups.iter().map(|(_, g)| g.depth as usize).sum();
        let c = &self.counters;
        BusStats {
            published: c.published,
            delivered: c.delivered,
            duplicates: c.duplicates,
            dropped: c.dropped,
            expired: c.expired,
            failed: c.failed,
            cancelled: c.cancelled,
            queued: (self.queued + group_depth) as u64,
            in_flight: self.in_flight as u64,
            subscriptions: per.len() as u64,
            latency: summary(&self.latency, self.direct_delivered),
            per_subscription: per,
            delayed: self.scheduled.len() as u64,
            groups: groups.into_iter().map(|(_, g)| g).collect(),
        }
    }

    /// Statistics of one subscription (also after it unsubscribed, while deliveries finish).
    pub fn subscription_stats(&self, id: SubId) -> Option<SubscriptionStats> {
        self.subs
            .get(id.index, id.gen)
            .map(|s| s.stats(s.order, self.group_name(s)))
    }

    fn group_name(&self, s: &Sub<P>) -> Option<&str> {
        match s.kind {
            Kind::Member(gid) => match self.subs.get(gid.index, gid.gen) {
                Some(Sub {
                    kind: Kind::Group(wq),
                    ..
                }) => Some(wq.name()),
                _ => None,
            },
            _ => None,
        }
    }

    // ----- work queues ---------------------------------------------------------------------

    /// Where the work-queue message with this id stands: delayed, in a group (pending, in
    /// flight, failed and waiting for a retry), or finished inside the retention window (done,
    /// dead, expired, dropped). With several groups holding it, `group` picks one; otherwise
    /// the first group (in creation order) that knows it answers.
    pub fn status(&self, id: &str, group: Option<&str>, now: u64) -> Option<JobStatus> {
        if group.is_none() && self.scheduled_ids.contains_key(id) {
            return Some(JobStatus {
                state: JobState::Delayed,
                attempts: 0,
                group: None,
            });
        }
        let mut found: Option<(u64, JobStatus)> = None;
        for gid in self.groups.values() {
            let Some(g) = self.subs.get(gid.index, gid.gen) else {
                continue;
            };
            let Kind::Group(wq) = &g.kind else { continue };
            if group.is_some_and(|name| **wq.name() != *name) {
                continue;
            }
            if let Some(st) = wq.status(id, now) {
                if found.as_ref().is_none_or(|(o, _)| g.order < *o) {
                    found = Some((g.order, st));
                }
            }
        }
        if found.is_none() && group.is_some() && self.scheduled_ids.contains_key(id) {
            return Some(JobStatus {
                state: JobState::Delayed,
                attempts: 0,
                group: None,
            });
        }
        found.map(|(_, st)| st)
    }

    /// Takes the next dead letter (announced by [`Event::Dead`]); the driver publishes it on
    /// `$dead.<group>` as it is. With a subscription, the failure was not reported yet (the
    /// message died without a final-attempt delivery: its TTL ended before its retry): the driver
    /// reports it to `onError` / `$errors` as that member's failure, with the letter's error.
    pub fn take_dead(&mut self) -> Option<(DeadLetter<P>, Option<SubId>)> {
        self.dead.pop_front()
    }

    /// Takes the next final failure to report (announced by [`Event::Failed`]).
    pub fn take_failed(&mut self) -> Option<Unreported<P>> {
        self.unreported.pop_front()
    }

    /// What would be left undelivered if the broker stopped now: delayed messages, messages of
    /// groups with no member left, and failed messages waiting for a retry. In publish order.
    pub fn remaining(&self) -> Vec<Remaining<P>> {
        let mut out: Vec<Remaining<P>> = Vec::new();
        let mut seqs: Vec<u64> = self.scheduled.keys().copied().collect();
        seqs.sort_unstable();
        for seq in seqs {
            let Some(s) = self.scheduled.get(&seq) else {
                continue;
            };
            out.push(Remaining {
                message: Message {
                    topic: s.topic.clone(),
                    payload: s.msg.payload.clone(),
                    id: s.msg.id.clone(),
                    key: s.msg.key.clone(),
                    headers: s.msg.headers.clone(),
                    published_at: None,
                    expires_at: None,
                    size: s.msg.size,
                    seq,
                    attempt: 0,
                    letter: None,
                },
                group: None,
                state: JobState::Delayed,
                attempts: 0,
            });
        }
        for gid in self.groups.values() {
            let Some(Sub {
                kind: Kind::Group(wq),
                ..
            }) = self.subs.get(gid.index, gid.gen)
            else {
                continue;
            };
            for (message, state, attempts) in wq.remaining() {
                out.push(Remaining {
                    message,
                    group: Some(wq.name().clone()),
                    state,
                    attempts,
                });
            }
        }
        out
    }

    /// A delayed message's time came: route it now, as if published now.
    fn make_visible(&mut self, seq: u64, now: u64) {
        let Some(s) = self.scheduled.remove(&seq) else {
            return;
        };
        if let Some(id) = &s.msg.id {
            if self.scheduled_ids.get(id) == Some(&seq) {
                self.scheduled_ids.remove(id);
            }
        }
        // Routed without the topic table: resolving here could start a new table (and make the
        // handles a driver holds stale) in the middle of a pump.
        let subs = self.match_topic(&s.topic);
        let mut msg = s.msg;
        msg.not_before = None;
        match self.admit(&subs, 1, msg.size, PublishMode::Now) {
            Ok(None) => {
                self.counters.published -= 1;
                self.enqueue(&subs, s.topic, msg, now);
            }
            _ => {
                // A full `reject` or `wait` queue cannot refuse anyone now: the message is
                // dropped, and counted.
                self.counters.dropped += 1;
            }
        }
    }

    /// Holds a message published with a `not_before` in the future.
    fn schedule(&mut self, topic: Rc<str>, msg: Outgoing<P>, at: u64) -> Result<()> {
        if self.scheduled.len() >= self.config.max_queue {
            return Err(Error::new(
                ErrorCode::QueueFull,
                format!(
                    "{} delayed messages are waiting (the bus's maxQueue); publish later",
                    self.scheduled.len()
                ),
            ));
        }
        self.seq += 1;
        self.counters.published += 1;
        let seq = self.seq;
        if let Some(id) = &msg.id {
            self.scheduled_ids.insert(id.clone(), seq);
        }
        self.scheduled.insert(seq, Scheduled { topic, msg });
        self.timers.push(Reverse((at, Timer::Visible(seq))));
        Ok(())
    }

    /// Adds counts gathered by a driver that delivered directly (without the broker's queues):
    /// `delivered` immediate deliveries (latency zero) and `failed` of them, for `id`.
    pub fn record_direct(&mut self, id: SubId, delivered: u64, failed: u64) {
        self.counters.delivered += delivered;
        self.counters.failed += failed;
        self.direct_delivered += delivered;
        if let Some(sub) = self.subs.get_mut(id.index, id.gen) {
            sub.counters.delivered += delivered;
            sub.counters.failed += failed;
            sub.direct_delivered += delivered;
        } else if let Some(stats) = self.retired_stats(id) {
            stats.delivered += delivered;
            stats.failed += failed;
        }
    }

    /// Counts `n` messages a driver did not hand to `id` because it unsubscribed in between
    /// (the subscription may be gone already: then only the broker's counter moves).
    pub fn record_cancelled(&mut self, id: SubId, n: u64) {
        self.counters.cancelled += n;
        if let Some(sub) = self.subs.get_mut(id.index, id.gen) {
            sub.counters.cancelled += n;
        } else if let Some(stats) = self.retired_stats(id) {
            stats.cancelled += n;
        }
    }

    /// The final statistics of `id` not yet taken by the driver.
    fn retired_stats(&mut self, id: SubId) -> Option<&mut SubscriptionStats> {
        self.retired
            .iter_mut()
            .find(|(r, _)| *r == id)
            .map(|(_, stats)| stats)
    }

    /// Counts messages a driver had to drop (for example a dead letter nobody would take).
    pub fn record_dropped(&mut self, n: u64) {
        self.counters.dropped += n;
    }

    /// Counts messages published directly by a driver that reached no subscription.
    pub fn record_published(&mut self, n: u64) {
        self.counters.published += n;
    }

    /// The idempotence filter, when dedupe is on.
    pub fn dedupe_filter(&mut self) -> Option<&mut IdempotenceFilter> {
        self.dedupe.as_mut()
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

fn summary(h: &LatencyHistogram, zero_latency: u64) -> LatencySummary {
    let mut h = h.clone();
    h.record_n(0, zero_latency);
    LatencySummary {
        count: h.count(),
        p50_ms: h.quantile(0.5) as f64 / 1000.0,
        p99_ms: h.quantile(0.99) as f64 / 1000.0,
    }
}
