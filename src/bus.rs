//! The Rust-facing bus: a driver of the [`Broker`] that owns handlers, runs them (synchronous
//! ones inline, asynchronous ones on a single-threaded executor), fires timers and reports
//! failures.
//!
//! Natively (and in WebAssembly on a [`ManualClock`]) async handlers run on the bus's own
//! [`LocalExecutor`], driven by [`Bus::run_until_idle`]; on a virtual clock it jumps straight to
//! the next deadline, so tests are deterministic. In WebAssembly on the real clock they run on the
//! JavaScript event loop (`wasm_bindgen_futures::spawn_local`) and timers use `gloo-timers`.

use crate::batch::BatchPolicy;
use crate::broker::{
    Accepted, Broker, BrokerConfig, DeliveryId, Event, GroupOptions, Items, PublishMode, Published,
    Remaining, SubId, SubscribeOptions, TopicHandle,
};
use crate::clock::{Clock, SystemClock};
use crate::dedupe::DedupeWindow;
use crate::error::{Error, ErrorCode, Result};
use crate::exec::LocalExecutor;
use crate::message::{ByteSize, Message, Outgoing};
use crate::queue::Overflow;
use crate::snapshot::{BusStats, SubscriptionStats};
use crate::work_queue::{DeadLetter, JobStatus, Retention, RetryPolicy};
use futures::future::{AbortHandle, Abortable, LocalBoxFuture};
use futures::FutureExt;
use hashbrown::HashMap;
use std::cell::{Cell, Ref, RefCell, RefMut};
use std::future::Future;
use std::rc::{Rc, Weak};
use std::time::Duration;

mod requests;
pub use requests::{Request, RequestOptions, DEFAULT_REQUEST_TIMEOUT};

/// Refuses a `batch` option on a subscription whose handler takes one message at a time.
fn no_batch(options: &SubscribeOptions, why: &'static str) -> Result<()> {
    match options.batch {
        Some(_) => Err(Error::invalid_option("batch", why)),
        None => Ok(()),
    }
}

/// What a handler returns: `Err` counts as a failure and is reported.
pub type HandlerResult = std::result::Result<(), HandlerError>;
/// A handler's error.
pub type HandlerError = Box<dyn std::error::Error + 'static>;

type SyncFn<P> = Rc<dyn Fn(&Message<P>) -> HandlerResult>;
type AsyncFn<P> = Rc<dyn Fn(Message<P>) -> LocalBoxFuture<'static, HandlerResult>>;
type BatchFn<P> = Rc<dyn Fn(&[Message<P>]) -> HandlerResult>;
type BatchAsyncFn<P> = Rc<dyn Fn(Vec<Message<P>>) -> LocalBoxFuture<'static, HandlerResult>>;

/// A handler in its subscription's slot, with the subscription's id.
type HandlerSlot<P> = Option<(SubId, Handler<P>)>;

#[derive(Clone)]
enum Handler<P> {
    Sync(SyncFn<P>),
    Async(AsyncFn<P>),
    Batch(BatchFn<P>),
    BatchAsync(BatchAsyncFn<P>),
    Respond(requests::RespondFn<P>),
    RespondAsync(requests::RespondAsyncFn<P>),
}

/// A handler failure as reported to `on_error` (and, through `error_payload`, on `$errors`).
pub struct ErrorReport<P> {
    /// `HANDLER_FAILED` or `HANDLER_TIMEOUT`.
    pub code: ErrorCode,
    /// The handler's error (or a timeout error).
    pub error: Rc<dyn std::error::Error>,
    /// The message, or the batch, that failed.
    pub messages: Vec<Message<P>>,
    /// The subscription's id.
    pub subscription: u64,
    /// The subscription's pattern.
    pub pattern: String,
    /// Tries made.
    pub attempts: u32,
}

/// Callback receiving handler failures.
pub type OnError<P> = Rc<dyn Fn(&ErrorReport<P>)>;
/// Callback receiving the gaps of replays: the subscription's id, its pattern, and the gap.
pub type OnGap = Rc<dyn Fn(u64, &str, &crate::logs::Gap)>;
/// Turns a failure into a payload to publish on `$errors`.
pub type ErrorPayload<P> = Rc<dyn Fn(&ErrorReport<P>) -> P>;
/// Turns a dead work-queue message into the payload published on `$dead.<group>`.
pub type DeadPayload<P> = Rc<dyn Fn(&DeadLetter<P>) -> P>;

/// Settings of a [`Bus`].
pub struct BusOptions<P> {
    /// Idempotence filter for messages with an id (off by default).
    pub dedupe: Option<DedupeWindow>,
    /// Default queue bound of subscriptions (10,000).
    pub max_queue: usize,
    /// Default overflow policy ([`Overflow::DropOldest`]).
    pub overflow: Overflow,
    /// Default handler timeout (none).
    pub timeout: Option<Duration>,
    /// The clock; [`SystemClock`] by default. Use a [`crate::ManualClock`] for virtual time.
    pub clock: Option<Rc<dyn Clock>>,
    /// Called with every final handler failure.
    pub on_error: Option<OnError<P>>,
    /// When set, every final handler failure is also published on `$errors` with this payload.
    pub error_payload: Option<ErrorPayload<P>>,
    /// The payload of a dead work-queue message on `$dead.<group>`. Every such message carries
    /// the core's letter ([`Message::dead_letter`]: group, topic, attempts, error, message);
    /// its payload is the original payload by default, or what this builds from the letter.
    pub dead_payload: Option<DeadPayload<P>>,
    /// How long finished work-queue ids stay queryable by [`Bus::status`].
    pub retention: Retention,
    /// Retained values and history: bounds, and which topics have history.
    pub logs: crate::logs::LogConfig,
    /// Called with each gap a subscription's replay reports (numbers it asked for that are no
    /// longer held). Gaps are counted in [`BusStats::logs`] either way.
    pub on_gap: Option<OnGap>,
}

impl<P> Default for BusOptions<P> {
    fn default() -> Self {
        BusOptions {
            dedupe: None,
            max_queue: 10_000,
            overflow: Overflow::DropOldest,
            timeout: None,
            clock: None,
            on_error: None,
            error_payload: None,
            dead_payload: None,
            retention: Retention::default(),
            logs: crate::logs::LogConfig::default(),
            on_gap: None,
        }
    }
}

/// Options of one publish.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// Message id, for the idempotence filter.
    pub id: Option<String>,
    /// Ordering key: messages sharing a key never overlap in a subscription and keep their order.
    pub key: Option<String>,
    /// Time to live: a message not started by then is dropped and counted as expired.
    pub ttl: Option<Duration>,
    /// Header pairs.
    pub headers: Vec<(String, String)>,
    /// Work-queue priority: work queues hand out higher priorities first (default 0).
    pub priority: u32,
    /// Visible to nobody before this bus-clock time (time since the clock's origin).
    pub not_before: Option<Duration>,
    /// Attempts already made (0 to [`crate::MAX_PRIOR_ATTEMPTS`], else `INVALID_OPTION`): a work
    /// queue delivers it first as attempt `attempts + 1`, and one that arrives with
    /// `attempts >= max_attempts` is dead without a delivery. Other subscriptions ignore it.
    pub attempts: u32,
    /// Keep it as its topic's retained value ([`Retain::Keep`]), or clear that value
    /// ([`Retain::Clear`]; the message is still delivered).
    pub retain: crate::logs::Retain,
}

impl PublishOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the message id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// Sets the ordering key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Sets the time to live.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
    /// Sets the work-queue priority (higher first).
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }
    /// Sets the attempts already made (a work queue counts from there).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }
    /// Delays the message until this bus-clock time.
    pub fn not_before(mut self, at: Duration) -> Self {
        self.not_before = Some(at);
        self
    }
    /// Keeps the message as its topic's retained value: subscriptions made later with
    /// [`crate::Replay::Retained`] receive it first.
    pub fn retain(mut self) -> Self {
        self.retain = crate::logs::Retain::Keep;
        self
    }
    /// Clears the topic's retained value (the message is still delivered).
    pub fn clear_retained(mut self) -> Self {
        self.retain = crate::logs::Retain::Clear;
        self
    }
    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl SubscribeOptions {
    /// Sets how many messages may run at once.
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }
    /// Sets the queue bound.
    pub fn max_queue(mut self, n: usize) -> Self {
        self.max_queue = Some(n);
        self
    }
    /// Sets the overflow policy.
    pub fn overflow(mut self, o: Overflow) -> Self {
        self.overflow = Some(o);
        self
    }
    /// Sets the handler timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t.as_micros().min(u64::MAX as u128) as u64);
        self
    }
    /// Delivers in batches with `policy`.
    pub fn batch(mut self, policy: BatchPolicy) -> Self {
        self.batch = Some(policy);
        self
    }
    /// Joins the work queue named `name`: each message goes to one member.
    pub fn group(mut self, name: impl Into<String>) -> Self {
        self.group = Some(GroupOptions {
            name: name.into(),
            retry: self.group.and_then(|g| g.retry),
        });
        self
    }
    /// Sets the group's retry policy (call after [`SubscribeOptions::group`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        if let Some(g) = &mut self.group {
            g.retry = Some(policy);
        }
        self
    }
    /// Before live messages, replays retained values or history ([`crate::Replay`]).
    pub fn replay(mut self, replay: crate::logs::Replay) -> Self {
        self.replay = Some(replay);
        self
    }
    /// Batch claim for a group member: up to `max_size` messages per call, waiting up to
    /// `max_wait` for a fuller batch.
    pub fn claim(mut self, max_size: usize, max_wait: Duration) -> Self {
        self.batch = Some(BatchPolicy {
            max_size,
            max_wait: max_wait.as_micros().min(u64::MAX as u128) as u64,
            ..BatchPolicy::default()
        });
        self
    }
}

struct Running<P> {
    abort: AbortHandle,
    sub: SubId,
    attempt: u32,
    final_attempt: bool,
    messages: Vec<Message<P>>,
}

#[cfg(target_arch = "wasm32")]
#[derive(Default)]
struct Browser {
    timer: Option<(u64, gloo_timers::callback::Timeout)>,
    idle: Vec<futures::channel::oneshot::Sender<()>>,
    room: Vec<futures::channel::oneshot::Sender<()>>,
}

/// The direct path's state: the route published on directly twice in a row, with its
/// subscriptions' handlers, and the publishes and deliveries on it that the broker has not
/// counted yet.
///
/// A publish on that route counts itself here in one step instead of once per subscription in
/// the broker; the broker gets these counts before the driver asks it anything else (see
/// [`Inner::core`]), so every statistic read is exact.
struct DirectState<P> {
    route: RefCell<Rc<DirectRoute<P>>>,
    /// The route of the latest direct publish when it was not `route`: published on directly
    /// once more, it becomes `route` (a route published once is not worth looking up handlers
    /// for).
    candidate: RefCell<Option<Weak<[SubId]>>>,
    /// Bumped whenever a slot of [`Inner::handlers`] changes: `route`'s handlers of an earlier
    /// value are looked up again.
    handlers_gen: Cell<u64>,
    /// Nothing changed in the broker since `route`'s topic took a direct publish: the next
    /// publish without options on it is delivered directly without asking the broker. Cleared
    /// by every other use of the broker ([`Inner::core`]).
    ready: Cell<bool>,
    /// The sequence number of the latest direct publish.
    seq: Cell<u64>,
    /// Publishes delivered directly without asking the broker (which numbers and counts them
    /// when it gets them: they are the ones after its own sequence number, up to `seq`).
    published: Cell<u64>,
    /// Publishes delivered to every subscription of the route.
    full: Cell<u64>,
    /// While a publish is delivered: the route's subscriptions from `from` up to `to` (not
    /// included) took it.
    from: Cell<u32>,
    to: Cell<u32>,
}

struct DirectRoute<P> {
    /// Its topic, and the handle it was published through.
    topic: Rc<str>,
    handle: TopicHandle,
    /// The broker's route (a changed route is another list, so identity tells them apart).
    subs: Rc<[SubId]>,
    /// The synchronous handler of each of `subs` (`None`: it has none any more), as of
    /// `handlers_gen`.
    handlers: Box<[Option<SyncFn<P>>]>,
    handlers_gen: u64,
}

struct Inner<P> {
    /// The broker. Reached through [`Inner::core`], [`Inner::counted_core`] and
    /// [`Inner::core_ref`], which first count the direct deliveries in it; only the direct
    /// publish itself (and the look-up of the topic resolved last) uses it without them.
    core: RefCell<Broker<P>>,
    /// By subscription slot index, with the subscription's id to tell a reused slot apart.
    handlers: RefCell<Vec<HandlerSlot<P>>>,
    direct: DirectState<P>,
    clock: Rc<dyn Clock>,
    exec: LocalExecutor,
    running: RefCell<HashMap<DeliveryId, Running<P>>>,
    dispatching: Cell<bool>,
    /// The subscription whose handler a direct delivery is calling now (`true`: through the
    /// cached route, whose run of deliveries reaches up to it), until its delivery is counted:
    /// an unsubscribe from inside that handler counts it first, so that the subscription retires
    /// with it.
    direct_running: Cell<Option<(SubId, bool)>>,
    /// Set when the handler a direct delivery is calling unsubscribed its own subscription: the
    /// core's retired records stay where they are (the outcome of that call is still to be
    /// counted in the retired subscription's) until the call returned.
    retiring: Cell<bool>,
    on_error: Option<OnError<P>>,
    on_gap: Option<OnGap>,
    error_payload: Option<ErrorPayload<P>>,
    dead_payload: Option<DeadPayload<P>>,
    /// Where each subscription not yet retired leaves its final statistics (its handle's cell;
    /// weak, so a dropped handle keeps nothing alive).
    finals: RefCell<HashMap<SubId, Weak<RefCell<Option<SubscriptionStats>>>>>,
    /// What each pending request of this bus's requesters received.
    requests: RefCell<HashMap<crate::broker::RequestId, Rc<RefCell<requests::ReplyBox<P>>>>>,
    /// Async handlers run on the JavaScript event loop rather than on `exec`.
    #[cfg(target_arch = "wasm32")]
    browser: Option<RefCell<Browser>>,
}

impl<P: Clone> Inner<P> {
    /// The broker, with every direct delivery counted in it, to change it: the next direct
    /// publish asks it again.
    fn core(&self) -> RefMut<'_, Broker<P>> {
        self.direct.ready.set(false);
        self.counted_core()
    }

    /// The broker, with every direct delivery counted in it, for what cannot change whether a
    /// subscription takes a message directly.
    fn counted_core(&self) -> RefMut<'_, Broker<P>> {
        let mut core = self.core.borrow_mut();
        self.count_direct(&mut core);
        core
    }

    /// The broker, with every direct delivery counted in it, to read.
    fn core_ref(&self) -> Ref<'_, Broker<P>> {
        if self.has_uncounted() {
            self.count_direct(&mut self.core.borrow_mut());
        }
        self.core.borrow()
    }

    fn has_uncounted(&self) -> bool {
        let d = &self.direct;
        d.published.get() != 0 || d.full.get() != 0 || d.from.get() != d.to.get()
    }

    /// Counts the direct deliveries not counted yet in `core`.
    #[inline]
    fn count_direct(&self, core: &mut Broker<P>) {
        if self.has_uncounted() {
            self.count_direct_now(core);
        }
    }

    #[cold]
    #[inline(never)]
    fn count_direct_now(&self, core: &mut Broker<P>) {
        let d = &self.direct;
        let published = d.published.replace(0);
        if published > 0 {
            core.record_direct_published(published);
            debug_assert_eq!(core.sequence(), d.seq.get());
        }
        let full = d.full.replace(0);
        let (from, to) = (d.from.get() as usize, d.to.get() as usize);
        d.from.set(d.to.get());
        for (i, id) in d.route.borrow().subs.iter().enumerate() {
            let n = full + u64::from(from <= i && i < to);
            if n > 0 {
                core.record_direct(*id, n, 0);
            }
        }
    }

    /// `route` with its handlers when the broker accepted a direct publish on `handle` (with
    /// sequence number `seq`) and `route` is the cached route, or was the route of the direct
    /// publish before: then the publishes after it on `handle` are delivered directly (see
    /// [`DirectState::ready`]). `None` for a route published on once.
    #[inline(always)]
    fn direct_route(
        &self,
        handle: TopicHandle,
        route: &Rc<[SubId]>,
        topic: &Rc<str>,
        seq: u64,
    ) -> Option<Rc<DirectRoute<P>>> {
        let d = &self.direct;
        // The publishes delivered on `ready` are numbered after this one.
        d.seq.set(seq);
        let cached = d.route.borrow();
        let found = if Rc::ptr_eq(&cached.subs, route)
            && Rc::ptr_eq(&cached.topic, topic)
            && cached.handle == handle
            && cached.handlers_gen == d.handlers_gen.get()
        {
            cached.clone()
        } else {
            drop(cached);
            self.direct_route_again(handle, route, topic)?
        };
        d.ready.set(true);
        Some(found)
    }

    #[cold]
    #[inline(never)]
    fn direct_route_again(
        &self,
        handle: TopicHandle,
        route: &Rc<[SubId]>,
        topic: &Rc<str>,
    ) -> Option<Rc<DirectRoute<P>>> {
        let d = &self.direct;
        let same = Rc::ptr_eq(&d.route.borrow().subs, route);
        if !same {
            let mut candidate = d.candidate.borrow_mut();
            if !candidate
                .as_ref()
                .is_some_and(|c| std::ptr::eq(c.as_ptr(), Rc::as_ptr(route)))
            {
                *candidate = Some(Rc::downgrade(route));
                return None;
            }
            *candidate = None;
            drop(candidate);
            // What was delivered on the previous route is counted on it first.
            self.count_direct(&mut self.core.borrow_mut());
        }
        let fresh = Rc::new(DirectRoute {
            topic: topic.clone(),
            handle,
            subs: route.clone(),
            handlers: route.iter().map(|id| self.sync_handler(*id)).collect(),
            handlers_gen: d.handlers_gen.get(),
        });
        *d.route.borrow_mut() = fresh.clone();
        Some(fresh)
    }

    /// A slot of `handlers` changed: the direct route's handlers are looked up again. When a
    /// handler was `removed`, the route lets go of its handlers at once, so an unsubscribed
    /// handler is dropped now (or, when a handler of a direct publish unsubscribed it, once
    /// that publish's handlers have run).
    fn handlers_changed(&self, removed: bool) {
        let d = &self.direct;
        d.handlers_gen.set(d.handlers_gen.get() + 1);
        if removed {
            let mut route = d.route.borrow_mut();
            if !route.handlers.is_empty() {
                *route = Rc::new(DirectRoute {
                    topic: route.topic.clone(),
                    handle: route.handle,
                    subs: route.subs.clone(),
                    handlers: Box::new([]),
                    handlers_gen: u64::MAX,
                });
            }
        }
    }

    /// `id`'s handler when it is synchronous (and `id` still has it).
    fn sync_handler(&self, id: SubId) -> Option<SyncFn<P>> {
        match self.handlers.borrow().get(id.index() as usize) {
            Some(Some((owner, Handler::Sync(h)))) if *owner == id => Some(h.clone()),
            _ => None,
        }
    }

    /// Hands the core's retired subscriptions' final statistics to their handles (when alive).
    fn collect_retired(&self) {
        if self.retiring.get() {
            return;
        }
        loop {
            let Some((id, stats)) = self.counted_core().take_retired() else {
                return;
            };
            if let Some(cell) = self.finals.borrow_mut().remove(&id) {
                if let Some(cell) = cell.upgrade() {
                    *cell.borrow_mut() = Some(stats);
                }
            }
        }
    }

    /// The call whose handler unsubscribed its own subscription returned and its outcome is
    /// counted: the retired records are handed out.
    #[cold]
    #[inline(never)]
    fn retired_after_call(&self) {
        self.retiring.set(false);
        self.collect_retired();
    }

    fn handler(&self, id: SubId) -> Option<Handler<P>> {
        match self.handlers.borrow().get(id.index() as usize) {
            Some(Some((owner, h))) if *owner == id => Some(h.clone()),
            _ => None,
        }
    }
}

/// A publish/subscribe bus. Cloning gives another handle to the same bus. Single-threaded.
///
/// ```
/// use edgebus::{Bus, BusOptions, PublishOptions, SubscribeOptions};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let bus: Bus<u32> = Bus::new(BusOptions::default())?;
/// let total = Rc::new(Cell::new(0));
/// let t = total.clone();
/// bus.subscribe("metrics.>", move |m| {
///     t.set(t.get() + *m.payload());
///     Ok(())
/// })?;
/// bus.publish("metrics.cpu", 3)?;
/// bus.publish_with("metrics.mem", 4, PublishOptions::new().key("host-1"))?;
/// assert_eq!(total.get(), 7);
/// assert_eq!(bus.stats().delivered, 2);
/// # Ok::<(), edgebus::Error>(())
/// ```
pub struct Bus<P> {
    inner: Rc<Inner<P>>,
}

impl<P> Clone for Bus<P> {
    fn clone(&self) -> Self {
        Bus {
            inner: self.inner.clone(),
        }
    }
}

/// A live subscription; [`Subscription::unsubscribe`] ends it (dropping the handle does not).
pub struct Subscription<P> {
    bus: Weak<Inner<P>>,
    id: SubId,
    order: u64,
    pattern: String,
    /// Its final statistics, filled by the driver when the core retires it.
    last: Rc<RefCell<Option<SubscriptionStats>>>,
}

impl<P: Clone + ByteSize + 'static> Subscription<P> {
    /// Its id (its position in subscription order).
    pub fn id(&self) -> u64 {
        self.order
    }

    /// Its pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The broker's handle for it.
    pub fn sub_id(&self) -> SubId {
        self.id
    }

    /// Ends it: nothing that has not started is delivered. Returns `false` if it had already
    /// ended (unsubscribing twice is harmless).
    pub fn unsubscribe(&self) -> bool {
        match self.bus.upgrade() {
            Some(inner) => Bus { inner }.unsubscribe(self.id),
            None => false,
        }
    }

    /// Whether it is still subscribed.
    pub fn is_active(&self) -> bool {
        self.bus
            .upgrade()
            .is_some_and(|inner| inner.core_ref().is_subscribed(self.id))
    }

    /// Its statistics; after it was unsubscribed and its last delivery settled, the final ones
    /// (as in JavaScript). `None` only once the bus itself is gone and no final figures were kept.
    pub fn stats(&self) -> Option<SubscriptionStats> {
        if let Some(inner) = self.bus.upgrade() {
            inner.collect_retired();
            let core = inner.core_ref();
            if let Some(stats) = core.subscription_stats(self.id) {
                return Some(stats);
            }
            // Retired by its own handler, which is still running.
            if let Some(stats) = core.retired_stats(self.id) {
                return Some(stats);
            }
        }
        self.last.borrow().clone()
    }
}

impl<P: Clone + ByteSize + 'static> Bus<P> {
    /// A bus with `options`; fails with `INVALID_OPTION` when a setting is out of range.
    pub fn new(options: BusOptions<P>) -> Result<Self> {
        let timeout = match options.timeout {
            Some(t) if t.is_zero() => {
                return Err(Error::invalid_option("timeout", "must be positive"))
            }
            Some(t) => Some(t.as_micros().min(u64::MAX as u128) as u64),
            None => None,
        };
        let core = Broker::new(BrokerConfig {
            dedupe: options.dedupe,
            max_queue: options.max_queue,
            overflow: options.overflow,
            timeout,
            retention: options.retention,
            logs: options.logs,
            ..BrokerConfig::default()
        })?;
        let clock: Rc<dyn Clock> = options.clock.unwrap_or_else(|| Rc::new(SystemClock::new()));
        #[cfg(target_arch = "wasm32")]
        let browser = (!clock.is_virtual()).then(|| RefCell::new(Browser::default()));
        Ok(Bus {
            inner: Rc::new(Inner {
                core: RefCell::new(core),
                handlers: RefCell::new(Vec::new()),
                direct: DirectState {
                    candidate: RefCell::new(None),
                    route: RefCell::new(Rc::new(DirectRoute {
                        topic: Rc::from(""),
                        handle: TopicHandle::from_parts(u32::MAX, u32::MAX),
                        subs: Rc::from([]),
                        handlers: Box::new([]),
                        handlers_gen: 0,
                    })),
                    handlers_gen: Cell::new(0),
                    ready: Cell::new(false),
                    seq: Cell::new(0),
                    published: Cell::new(0),
                    full: Cell::new(0),
                    from: Cell::new(0),
                    to: Cell::new(0),
                },
                clock,
                exec: LocalExecutor::new(),
                running: RefCell::new(HashMap::new()),
                dispatching: Cell::new(false),
                direct_running: Cell::new(None),
                retiring: Cell::new(false),
                on_error: options.on_error,
                on_gap: options.on_gap,
                error_payload: options.error_payload,
                dead_payload: options.dead_payload,
                finals: RefCell::new(HashMap::new()),
                requests: RefCell::new(HashMap::new()),
                #[cfg(target_arch = "wasm32")]
                browser,
            }),
        })
    }

    /// The bus's clock.
    pub fn clock(&self) -> Rc<dyn Clock> {
        self.inner.clock.clone()
    }

    // ----- subscribing ---------------------------------------------------------------------

    /// Subscribes a synchronous handler to `pattern` with default options.
    pub fn subscribe<F>(&self, pattern: &str, handler: F) -> Result<Subscription<P>>
    where
        F: Fn(&Message<P>) -> HandlerResult + 'static,
    {
        self.subscribe_with(pattern, handler, SubscribeOptions::default())
    }

    /// Subscribes a synchronous handler with `options`.
    pub fn subscribe_with<F>(
        &self,
        pattern: &str,
        handler: F,
        options: SubscribeOptions,
    ) -> Result<Subscription<P>>
    where
        F: Fn(&Message<P>) -> HandlerResult + 'static,
    {
        no_batch(&options, "needs a batch handler: use subscribe_batch")?;
        self.add(pattern, Handler::Sync(Rc::new(handler)), options)
    }

    /// Subscribes an asynchronous handler: its future settles the delivery.
    pub fn subscribe_async<F, Fut>(
        &self,
        pattern: &str,
        handler: F,
        options: SubscribeOptions,
    ) -> Result<Subscription<P>>
    where
        F: Fn(Message<P>) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        no_batch(&options, "needs a batch handler: use subscribe_batch_async")?;
        let f: AsyncFn<P> = Rc::new(move |m| handler(m).boxed_local());
        self.add(pattern, Handler::Async(f), options)
    }

    /// Subscribes a synchronous batch handler (the default [`BatchPolicy`] unless `options`
    /// has one).
    pub fn subscribe_batch<F>(
        &self,
        pattern: &str,
        handler: F,
        mut options: SubscribeOptions,
    ) -> Result<Subscription<P>>
    where
        F: Fn(&[Message<P>]) -> HandlerResult + 'static,
    {
        options.batch.get_or_insert_with(BatchPolicy::default);
        self.add(pattern, Handler::Batch(Rc::new(handler)), options)
    }

    /// Subscribes an asynchronous batch handler.
    pub fn subscribe_batch_async<F, Fut>(
        &self,
        pattern: &str,
        handler: F,
        mut options: SubscribeOptions,
    ) -> Result<Subscription<P>>
    where
        F: Fn(Vec<Message<P>>) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        options.batch.get_or_insert_with(BatchPolicy::default);
        let f: BatchAsyncFn<P> = Rc::new(move |m| handler(m).boxed_local());
        self.add(pattern, Handler::BatchAsync(f), options)
    }

    fn add(
        &self,
        pattern: &str,
        handler: Handler<P>,
        options: SubscribeOptions,
    ) -> Result<Subscription<P>> {
        let mut core = self.inner.core();
        if options.replay.is_some() {
            core.note_time(self.inner.clock.now());
        }
        let id = core.subscribe(pattern, &options)?;
        core.set_direct(id, matches!(handler, Handler::Sync(_)));
        let order = core.subscription_order(id).unwrap_or(0);
        drop(core);
        let mut handlers = self.inner.handlers.borrow_mut();
        let slot = id.index() as usize;
        if handlers.len() <= slot {
            handlers.resize_with(slot + 1, || None);
        }
        handlers[slot] = Some((id, handler));
        drop(handlers);
        self.inner.handlers_changed(false);
        let last = Rc::new(RefCell::new(None));
        self.inner
            .finals
            .borrow_mut()
            .insert(id, Rc::downgrade(&last));
        let waiting = {
            let core = self.inner.core_ref();
            core.has_ready() || core.has_events()
        };
        if (options.group.is_some() || options.replay.is_some()) && waiting {
            // Messages waiting in the group, or replayed, go to the new subscription at once.
            self.pump();
        }
        Ok(Subscription {
            bus: Rc::downgrade(&self.inner),
            id,
            order,
            pattern: pattern.to_owned(),
            last,
        })
    }

    fn unsubscribe(&self, id: SubId) -> bool {
        // From inside its own handler, during a direct delivery: that delivery is counted before
        // the core retires it (the run of a cached route reaches up to it).
        let inner = &*self.inner;
        match inner.direct_running.get() {
            Some((running, true)) if running == id => {
                inner.direct.to.set(inner.direct.to.get() + 1);
                inner.retiring.set(true);
            }
            Some((running, false)) if running == id => {
                inner.direct_running.set(None);
                inner.counted_core().record_direct(id, 1, 0);
                inner.retiring.set(true);
            }
            _ => {}
        }
        let removed = self.inner.core().unsubscribe(id);
        self.inner.collect_retired();
        if removed {
            if let Some(h) = self
                .inner
                .handlers
                .borrow_mut()
                .get_mut(id.index() as usize)
            {
                if matches!(h, Some((owner, _)) if *owner == id) {
                    *h = None;
                }
            }
            self.inner.handlers_changed(true);
            self.pump();
        }
        removed
    }

    // ----- publishing ----------------------------------------------------------------------

    /// Publishes `payload` on `topic`. Synchronous handlers of idle subscriptions have run when
    /// it returns; a publish from inside a handler is delivered after that handler returns.
    /// Returns `false` when the idempotence filter dropped it as a duplicate.
    pub fn publish(&self, topic: &str, payload: P) -> Result<bool> {
        let handle = self.resolve(topic)?;
        self.publish_payload(handle, payload)
    }

    /// `topic`'s handle. The topic resolved last is looked up without the statistics counted
    /// first; any other may start a new topic table, after which no handle of the old one may
    /// be published on directly.
    #[inline(always)]
    fn resolve(&self, topic: &str) -> Result<TopicHandle> {
        let last = self.inner.core.borrow().resolved_last(topic);
        match last {
            Some(handle) => Ok(handle),
            None => self.inner.core().resolve(topic),
        }
    }

    /// Publishes with options (id, key, TTL, headers).
    pub fn publish_with(&self, topic: &str, payload: P, options: PublishOptions) -> Result<bool> {
        let out = outgoing(payload, options)?;
        let handle = self.resolve(topic)?;
        self.publish_outgoing(handle, out)
    }

    /// Delivers directly when every subscription reached is idle (and no handler is running),
    /// otherwise through the broker's queues.
    fn publish_outgoing(&self, handle: TopicHandle, out: Outgoing<P>) -> Result<bool> {
        let inner = &*self.inner;
        if !inner.dispatching.get() {
            // Deciding on the direct path reads no statistics: direct deliveries not counted
            // yet stay so (the publishes among them are counted first, to number this one).
            let accepted = {
                let mut core = inner.core.borrow_mut();
                if inner.direct.published.get() > 0 {
                    inner.count_direct(&mut core);
                }
                core.accept_direct(
                    handle,
                    out.not_before.is_some() || out.retain != crate::logs::Retain::No,
                    out.key.is_some(),
                    out.id.as_deref(),
                    || inner.clock.now(),
                )?
            };
            match accepted {
                Accepted::Deliver(subs, topic, seq) => {
                    let msg = Message::published_directly(topic, out, seq);
                    match inner.direct_route(handle, &subs, &msg.topic, seq) {
                        Some(route) => self.deliver_direct(&route, msg),
                        None => self.deliver_once(&subs, msg),
                    }
                    return Ok(true);
                }
                Accepted::Duplicate => return Ok(false),
                Accepted::Queue => {}
            }
        }
        self.publish_queued(handle, out)
    }

    /// Publishes through the broker's queues, then runs what is ready (unless a handler is
    /// running: the publish that called it runs it once it returns).
    #[inline(never)]
    fn publish_queued(&self, handle: TopicHandle, out: Outgoing<P>) -> Result<bool> {
        let inner = &*self.inner;
        let r = inner
            .core()
            .publish_to(handle, out, inner.clock.now(), PublishMode::Now)?;
        self.pump();
        Ok(r != Published::Duplicate)
    }

    /// Publishes several payloads on one topic in one call. All-or-nothing admission for
    /// `reject`/`wait` subscriptions. Returns how many were accepted (duplicates excluded).
    pub fn publish_batch(&self, topic: &str, payloads: Vec<P>) -> Result<usize> {
        self.publish_batch_with(
            topic,
            payloads
                .into_iter()
                .map(|p| (p, PublishOptions::default()))
                .collect(),
        )
    }

    /// Publishes several messages, each with its own options, on one topic.
    pub fn publish_batch_with(
        &self,
        topic: &str,
        messages: Vec<(P, PublishOptions)>,
    ) -> Result<usize> {
        let out = messages
            .into_iter()
            .map(|(p, o)| outgoing(p, o))
            .collect::<Result<Vec<_>>>()?;
        let mut core = self.inner.core();
        let handle = core.resolve(topic)?;
        let n = core
            .publish_batch(handle, out, self.inner.clock.now(), PublishMode::Now)?
            .unwrap_or(0);
        drop(core);
        self.pump();
        Ok(n)
    }

    /// Publishes, waiting for room when a `wait` subscription is full. Natively (and on a
    /// virtual clock) waiting runs the bus until there is room.
    pub async fn publish_async(
        &self,
        topic: &str,
        payload: P,
        options: PublishOptions,
    ) -> Result<bool> {
        let out = outgoing(payload, options)?;
        let mut stuck = false;
        loop {
            let r = {
                let mut core = self.inner.core();
                // Resolved on every try: while this call waits, other topics may fill the
                // table and start a new one, which makes an older handle stale.
                let handle = core.resolve(topic)?;
                let r = core.publish_to(
                    handle,
                    out.clone(),
                    self.inner.clock.now(),
                    PublishMode::Wait,
                )?;
                core.set_waiting(r == Published::MustWait);
                r
            };
            match r {
                Published::MustWait if stuck => {
                    self.inner.core().set_waiting(false);
                    return Err(Error::new(
                        ErrorCode::QueueFull,
                        "no room can appear: every running handler waits on something the \
                         virtual clock cannot advance",
                    ));
                }
                Published::MustWait => stuck = !self.wait_for_room().await,
                r => {
                    self.pump();
                    return Ok(r != Published::Duplicate);
                }
            }
        }
    }

    /// Waits until room may have appeared; `false` when it never can.
    async fn wait_for_room(&self) -> bool {
        #[cfg(target_arch = "wasm32")]
        if let Some(b) = &self.inner.browser {
            let (tx, rx) = futures::channel::oneshot::channel();
            b.borrow_mut().room.push(tx);
            self.pump();
            return rx.await.is_ok();
        }
        self.step(true) || self.wait_for_deadline()
    }

    /// With nothing running, waits for the core's next deadline, which can only be the TTL of a
    /// message waiting in a work queue without members (its expiry makes room there). `false`
    /// when there is none, or when it cannot be waited for here (WebAssembly on the real clock).
    fn wait_for_deadline(&self) -> bool {
        let inner = &*self.inner;
        let Some(deadline) = inner.core().next_deadline() else {
            return false;
        };
        let now = inner.clock.now();
        if deadline > now {
            if inner.clock.is_virtual() {
                inner.clock.advance_to(deadline);
            } else {
                #[cfg(not(target_arch = "wasm32"))]
                inner.exec.park(Some(Duration::from_micros(deadline - now)));
                #[cfg(target_arch = "wasm32")]
                return false;
            }
        }
        true
    }

    /// Calls each directly deliverable handler in order, then runs whatever they published.
    ///
    /// Deliveries are counted in [`Inner::direct`]: each successful call extends this publish's
    /// run of subscriptions that took it (anything that reads or changes the broker in between,
    /// such as a handler reading statistics, counts the run first); a publish that every
    /// subscription took adds one to the route's count. A failure, or a subscription whose
    /// handler is gone, is counted in the broker at once.
    #[inline(always)]
    fn deliver_direct(&self, route: &DirectRoute<P>, msg: Message<P>) {
        let inner = &*self.inner;
        let d = &inner.direct;
        let gen = d.handlers_gen.get();
        inner.dispatching.set(true);
        for (i, cached) in route.handlers.iter().enumerate() {
            let next = i as u32 + 1;
            let looked_up;
            // A handler before it may have unsubscribed it (it receives nothing more) or
            // subscribed others: then each handler is looked up again.
            let handler = if d.handlers_gen.get() == gen {
                cached.as_ref()
            } else {
                looked_up = inner.sync_handler(route.subs[i]);
                looked_up.as_ref()
            };
            let Some(h) = handler else {
                drop(inner.core());
                d.from.set(next);
                d.to.set(next);
                continue;
            };
            inner.direct_running.set(Some((route.subs[i], true)));
            let result = call(|| h(&msg));
            inner.direct_running.set(None);
            match result {
                Ok(()) => d.to.set(next),
                // Counted as delivered already when its handler unsubscribed it.
                Err(e) => self.direct_failed(route, i, d.to.get() == next, e, &msg),
            }
            if inner.retiring.get() {
                inner.retired_after_call();
            }
        }
        inner.dispatching.set(false);
        if d.from.get() == 0 && d.to.get() as usize == route.handlers.len() {
            d.to.set(0);
            d.full.set(d.full.get() + 1);
        } else {
            drop(inner.core());
            d.from.set(0);
            d.to.set(0);
        }
        // Still ready: no handler used the broker, so nothing waits in it.
        if !d.ready.get() && inner.core.borrow().has_ready() {
            self.pump();
        }
        // Dropped field by field, in their order: those a caller left empty cost (next to)
        // nothing to drop.
        let Message {
            topic,
            payload,
            id,
            key,
            headers,
            letter,
            ..
        } = msg;
        drop(topic);
        drop(payload);
        drop(id);
        drop(key);
        drop(headers);
        drop(letter);
    }

    /// The direct delivery to the `i`th subscription of `route` failed: counted in the broker
    /// and reported now; the calls go on with the next one.
    #[cold]
    #[inline(never)]
    fn direct_failed(
        &self,
        route: &DirectRoute<P>,
        i: usize,
        counted: bool,
        e: HandlerError,
        msg: &Message<P>,
    ) {
        let inner = &*self.inner;
        let d = &inner.direct;
        let id = route.subs[i];
        inner.core().record_direct(id, u64::from(!counted), 1);
        let next = i as u32 + 1;
        d.from.set(next);
        d.to.set(next);
        self.report(ErrorCode::HandlerFailed, e.into(), vec![msg.clone()], id, 1);
    }

    /// Calls each directly deliverable handler of a route published on once (whose handlers
    /// are not cached), in order, counting each delivery in the broker, then runs whatever
    /// they published.
    #[inline(never)]
    fn deliver_once(&self, subs: &[SubId], msg: Message<P>) {
        let inner = &*self.inner;
        inner.dispatching.set(true);
        for &id in subs {
            // Gone when a handler before it unsubscribed it: it receives nothing more.
            let Some(h) = inner.sync_handler(id) else {
                continue;
            };
            inner.direct_running.set(Some((id, false)));
            let result = call(|| h(&msg));
            // Counted already when its handler unsubscribed it.
            let delivered = inner.direct_running.take().is_some() as u64;
            let failed = result.is_err();
            inner
                .counted_core()
                .record_direct(id, delivered, failed as u64);
            if inner.retiring.get() {
                inner.retired_after_call();
            }
            if let Err(e) = result {
                self.report(ErrorCode::HandlerFailed, e.into(), vec![msg.clone()], id, 1);
            }
        }
        inner.dispatching.set(false);
        if inner.core.borrow().has_ready() {
            self.pump();
        }
    }

    // ----- running -------------------------------------------------------------------------

    /// Fires due timers and runs every ready delivery until none is left.
    fn pump(&self) {
        let inner = &*self.inner;
        if inner.dispatching.replace(true) {
            return;
        }
        loop {
            let now = inner.clock.now();
            let next = {
                let mut core = inner.core();
                core.fire_timers(now);
                core.next_delivery(now)
            };
            self.handle_events();
            match next {
                Some(d) => self.run(d),
                None => break,
            }
        }
        inner.dispatching.set(false);
        #[cfg(target_arch = "wasm32")]
        self.after_pump_browser();
    }

    fn handle_events(&self) {
        loop {
            let event = self.inner.core().poll_event();
            match event {
                None => break,
                Some(Event::TimedOut {
                    delivery,
                    final_attempt,
                    ..
                }) => {
                    let running = self.inner.running.borrow_mut().remove(&delivery);
                    if let Some(r) = running {
                        r.abort.abort();
                        if final_attempt || r.final_attempt {
                            let text = self.inner.core_ref().timeout_message(r.sub);
                            let err = Error::new(ErrorCode::HandlerTimeout, text);
                            self.report(
                                ErrorCode::HandlerTimeout,
                                Rc::new(err),
                                r.messages,
                                r.sub,
                                r.attempt,
                            );
                        }
                    }
                }
                Some(Event::Room) =>
                {
                    #[cfg(target_arch = "wasm32")]
                    if let Some(b) = &self.inner.browser {
                        for tx in b.borrow_mut().room.drain(..) {
                            let _ = tx.send(());
                        }
                    }
                }
                Some(Event::Retired(_)) => self.inner.collect_retired(),
                Some(Event::Gap) => loop {
                    let gap = self.inner.core().take_gap();
                    let Some((sub, gap)) = gap else { break };
                    if let Some(on_gap) = &self.inner.on_gap {
                        let (order, pattern) = self.inner.core_ref().describe(sub);
                        on_gap(order, &pattern, &gap);
                    }
                },
                Some(Event::Idle(_)) => {}
                Some(Event::RequestEnded(id, end)) => self.request_ended(id, end),
                Some(Event::Failed) => loop {
                    let failed = self.inner.core().take_failed();
                    let Some(f) = failed else { break };
                    let err = Error::new(f.code, &*f.error);
                    self.report(f.code, Rc::new(err), f.messages, f.sub, f.attempts);
                },
                Some(Event::Dead) => loop {
                    let letter = self.inner.core().take_dead();
                    match letter {
                        Some((letter, report)) => self.publish_dead(letter, report),
                        None => break,
                    }
                },
            }
        }
    }

    fn run(&self, d: crate::broker::Delivery<P>) {
        let handler = self.inner.handler(d.sub);
        let Some(handler) = handler else {
            // Unsubscribed between being made ready and now: nothing to run (claimed work-queue
            // messages go back to their group).
            self.inner
                .core
                .borrow_mut()
                .abandon(d.id, self.inner.clock.now());
            return;
        };
        match (handler, d.items) {
            (Handler::Sync(h), Items::One(m)) => {
                let r = call(|| h(&m));
                let request = m.request().filter(|_| r.is_ok());
                self.settle(d.id, d.sub, d.attempt, d.final_attempt, r, || vec![m]);
                if let Some(req) = request {
                    self.declined(req, d.sub);
                }
            }
            (Handler::Batch(h), Items::Batch(ms)) => {
                let r = call(|| h(&ms));
                let requests: Vec<_> = match &r {
                    Ok(()) => ms.iter().filter_map(Message::request).collect(),
                    Err(_) => Vec::new(),
                };
                self.settle(d.id, d.sub, d.attempt, d.final_attempt, r, || ms);
                for req in requests {
                    self.declined(req, d.sub);
                }
            }
            (Handler::Async(h), Items::One(m)) => {
                let fut = h(m.clone());
                self.spawn(d.id, d.sub, d.attempt, d.final_attempt, fut, vec![m]);
            }
            (Handler::BatchAsync(h), Items::Batch(ms)) => {
                let fut = h(ms.clone());
                self.spawn(d.id, d.sub, d.attempt, d.final_attempt, fut, ms);
            }
            (Handler::Respond(h), Items::One(m)) => {
                let mut reply = None;
                let r = call(|| h(&m).map(|v| reply = Some(v)));
                let request = m.request();
                self.settle(d.id, d.sub, d.attempt, d.final_attempt, r, || vec![m]);
                if let (Some(req), Some(v)) = (request, reply) {
                    self.replied(req, d.sub, v);
                }
            }
            (Handler::RespondAsync(h), Items::One(m)) => {
                let answer = h(m.clone());
                let (weak, sub, request) = (Rc::downgrade(&self.inner), d.sub, m.request());
                let fut = async move {
                    let v = answer.await?;
                    if let (Some(req), Some(inner)) = (request, weak.upgrade()) {
                        Bus { inner }.replied(req, sub, v);
                    }
                    Ok(())
                };
                self.spawn_answering(
                    d.id,
                    d.sub,
                    d.attempt,
                    d.final_attempt,
                    fut.boxed_local(),
                    vec![m],
                    false,
                );
            }
            // A handler kind always matches its subscription kind; complete defensively.
            _ => self
                .inner
                .core
                .borrow_mut()
                .complete(d.id, true, self.inner.clock.now()),
        }
    }

    /// Publishes a dead work-queue message on `$dead.<group>`: the core's letter, with the
    /// original payload (or what `dead_payload` builds). The group already counted it as dead; a
    /// `$dead` subscriber that refuses it (`reject`) counts the refusal as a drop. A death no
    /// delivery reported (`report`) is reported here, as that member's failure.
    fn publish_dead(&self, letter: DeadLetter<P>, report: Option<SubId>) {
        if let Some(sub) = report {
            let err = Error::new(letter.error.code, &*letter.error.message);
            self.report(
                letter.error.code,
                Rc::new(err),
                vec![letter.message.clone()],
                sub,
                letter.attempts,
            );
        }
        let payload = match &self.inner.dead_payload {
            Some(f) => f(&letter),
            None => letter.message.payload().clone(),
        };
        let size = payload.byte_size() as u64;
        let now = self.inner.clock.now();
        let published = self
            .inner
            .core
            .borrow_mut()
            .publish_dead(letter, payload, size, now);
        if !matches!(published, Ok(Published::Accepted { .. })) {
            self.inner.core().record_dropped(1);
        }
    }

    fn settle(
        &self,
        id: DeliveryId,
        sub: SubId,
        attempt: u32,
        final_attempt: bool,
        result: HandlerResult,
        messages: impl FnOnce() -> Vec<Message<P>>,
    ) {
        let now = self.inner.clock.now();
        match &result {
            Ok(()) => self.inner.core().complete(id, true, now),
            Err(e) => self
                .inner
                .core
                .borrow_mut()
                .complete_failed(id, &e.to_string(), now),
        }
        if let Err(e) = result {
            if final_attempt {
                self.report(ErrorCode::HandlerFailed, e.into(), messages(), sub, attempt);
            }
        }
    }

    fn spawn(
        &self,
        id: DeliveryId,
        sub: SubId,
        attempt: u32,
        final_attempt: bool,
        fut: LocalBoxFuture<'static, HandlerResult>,
        messages: Vec<Message<P>>,
    ) {
        self.spawn_answering(id, sub, attempt, final_attempt, fut, messages, true);
    }

    /// [`Bus::spawn`]; `declines`: a success without a reply declines the requests its messages
    /// carry (false for a responder, whose success is its reply).
    #[allow(clippy::too_many_arguments)]
    fn spawn_answering(
        &self,
        id: DeliveryId,
        sub: SubId,
        attempt: u32,
        final_attempt: bool,
        fut: LocalBoxFuture<'static, HandlerResult>,
        messages: Vec<Message<P>>,
        declines: bool,
    ) {
        let (abort, registration) = AbortHandle::new_pair();
        let weak = Rc::downgrade(&self.inner);
        let task = async move {
            let Ok(result) = Abortable::new(fut, registration).await else {
                return;
            };
            let Some(inner) = weak.upgrade() else { return };
            let bus = Bus { inner };
            let running = bus.inner.running.borrow_mut().remove(&id);
            let messages = running.map(|r| r.messages).unwrap_or_default();
            // Completed without a reply: the requests its messages carry are declined (a
            // responder's reply was taken before, which makes this answer late and ignored).
            let requests: Vec<_> = match (&result, declines) {
                (Ok(()), true) => messages.iter().filter_map(Message::request).collect(),
                _ => Vec::new(),
            };
            bus.settle(id, sub, attempt, final_attempt, result, || messages);
            for req in requests {
                bus.declined(req, sub);
            }
            bus.pump();
        };
        self.inner.running.borrow_mut().insert(
            id,
            Running {
                abort,
                sub,
                attempt,
                final_attempt,
                messages,
            },
        );
        #[cfg(target_arch = "wasm32")]
        if self.inner.browser.is_some() {
            wasm_bindgen_futures::spawn_local(task);
            return;
        }
        self.inner.exec.spawn(task.boxed_local());
    }

    fn report(
        &self,
        code: ErrorCode,
        error: Rc<dyn std::error::Error>,
        messages: Vec<Message<P>>,
        sub: SubId,
        attempts: u32,
    ) {
        let (subscription, pattern) = {
            let core = self.inner.core_ref();
            let s = core.subscription_stats(sub);
            (
                s.as_ref().map_or(0, |s| s.id),
                s.map(|s| s.pattern).unwrap_or_default(),
            )
        };
        // A final failure is the responder's answer to the requests its messages carry.
        for m in &messages {
            if let Some(req) = m.request() {
                self.failed_request(req, sub, code, &error.to_string());
            }
        }
        let report = ErrorReport {
            code,
            error,
            messages,
            subscription,
            pattern,
            attempts,
        };
        if let Some(f) = &self.inner.on_error {
            f(&report);
        }
        // Failures of `$errors` handlers are not republished there: that could loop forever.
        let from_errors = report
            .messages
            .iter()
            .any(|m| m.topic().starts_with("$errors"));
        if let (Some(to_payload), false) = (&self.inner.error_payload, from_errors) {
            let payload = to_payload(&report);
            // `$errors` is a valid topic and the bus is open unless closing; a refused
            // publish here has no caller to return to, and is already counted by the broker.
            let _ = self.publish("$errors", payload);
        }
    }

    /// One step of the run loop: run woken tasks and ready deliveries; when nothing is ready,
    /// wait for the next deadline (jumping to it on a virtual clock) or for a task to wake.
    /// Returns `false` when nothing can ever make progress (idle, or stuck on a virtual clock).
    fn step(&self, wait: bool) -> bool {
        let inner = &*self.inner;
        inner.exec.run_ready();
        self.pump();
        if inner.exec.has_woken() || inner.core_ref().has_ready() {
            return true;
        }
        if inner.core_ref().is_idle() && inner.running.borrow().is_empty() {
            return false;
        }
        if !wait {
            return false;
        }
        let deadline = inner.core().next_deadline();
        let now = inner.clock.now();
        match deadline {
            Some(d) if d <= now => true,
            Some(d) if inner.clock.is_virtual() => {
                inner.clock.advance_to(d);
                true
            }
            None if inner.clock.is_virtual() => false,
            #[cfg(not(target_arch = "wasm32"))]
            d => {
                inner
                    .exec
                    .park(d.map(|d| Duration::from_micros(d.saturating_sub(now))));
                true
            }
            #[cfg(target_arch = "wasm32")]
            _ => false,
        }
    }

    /// Runs the bus until nothing is queued or running: async handlers, timers, retries. On a
    /// virtual clock time jumps to each next deadline; natively on the real clock the thread
    /// sleeps until then. Returns `false` if it stopped while work remained (a handler waiting on
    /// something that can never happen on a virtual clock, or in WebAssembly on the real clock,
    /// where [`Bus::drain`] must be awaited instead).
    pub fn run_until_idle(&self) -> bool {
        while self.step(true) {}
        self.is_idle()
    }

    /// Runs what is ready now without waiting or moving time: woken tasks, due timers, ready
    /// deliveries.
    pub fn run_pending(&self) {
        while self.step(false) {}
    }

    /// Whether nothing is queued or running.
    pub fn is_idle(&self) -> bool {
        self.inner.core_ref().is_idle() && self.inner.running.borrow().is_empty()
    }

    /// Delivers partial batches now.
    pub fn flush(&self) {
        self.inner.core().flush();
        self.pump();
    }

    /// Flushes partial batches and resolves when everything queued has been handled.
    pub async fn drain(&self) {
        self.flush();
        #[cfg(target_arch = "wasm32")]
        if let Some(b) = &self.inner.browser {
            if self.is_idle() {
                return;
            }
            let (tx, rx) = futures::channel::oneshot::channel();
            b.borrow_mut().idle.push(tx);
            self.after_pump_browser();
            let _ = rx.await;
            return;
        }
        self.run_until_idle();
    }

    /// Refuses later publishes and subscribes with `CLOSED`, then drains. Returns what could
    /// not be delivered, never dropping it silently: delayed messages not visible yet, messages
    /// of work queues whose members all left, and failed work-queue messages still waiting for
    /// a retry (empty when everything was handled).
    pub async fn close(&self) -> Vec<Remaining<P>> {
        self.inner.core().close();
        self.drain().await;
        // Requests still waiting end with `CLOSED`: nothing left could answer them.
        self.inner.core().end_requests();
        self.handle_events();
        self.inner.core_ref().remaining()
    }

    /// Where the work-queue message with this id stands (see [`Broker::status`]): `None` when no
    /// group knows it (never published with this id, or finished and out of the retention
    /// window).
    pub fn status(&self, id: &str) -> Option<JobStatus> {
        let now = self.inner.clock.now();
        self.inner.core_ref().status(id, None, now)
    }

    /// Like [`Bus::status`], in one group.
    pub fn status_in(&self, id: &str, group: &str) -> Option<JobStatus> {
        let now = self.inner.clock.now();
        self.inner.core_ref().status(id, Some(group), now)
    }

    /// The retained values `pattern` matches, in publish order (`INVALID_PATTERN` for a bad pattern).
    pub fn retained(&self, pattern: &str) -> Result<Vec<Message<P>>> {
        let now = self.inner.clock.now();
        let mut core = self.inner.core();
        core.note_time(now);
        core.retained(pattern)
    }

    /// Clears `topic`'s retained value; whether it had one (`INVALID_TOPIC` for a bad topic).
    pub fn clear_retained(&self, topic: &str) -> Result<bool> {
        let now = self.inner.clock.now();
        self.inner.core().clear_retained(topic, now)
    }

    /// What `topic`'s log holds (see [`crate::LogInfo`]); `None` when it has none.
    pub fn log_of(&self, topic: &str) -> Option<crate::logs::LogInfo> {
        let now = self.inner.clock.now();
        self.inner.core().log_of(topic, now)
    }

    /// What a new subscription on `pattern` asking for `replay` would be given first, and the
    /// gaps it would hear of, without subscribing.
    pub fn replay(
        &self,
        pattern: &str,
        replay: &crate::logs::Replay,
    ) -> Result<(Vec<Message<P>>, Vec<crate::logs::Gap>)> {
        let now = self.inner.clock.now();
        self.inner
            .core()
            .replay(pattern, replay, now, (usize::MAX, u64::MAX))
    }

    /// Puts a durable copy of a message back into `topic`'s log with its number and publish time
    /// (bus-clock time since the clock's origin): as its retained value when `retained`, in its
    /// history when the topic has one. `None` carries only the topic's numbering on to `seq`.
    /// Numbers must rise per topic (`INVALID_ARGUMENT`).
    pub fn restore(
        &self,
        topic: &str,
        payload: Option<P>,
        seq: u64,
        published_at: Duration,
        retained: bool,
    ) -> Result<()> {
        let out = payload.map(|p| Outgoing {
            size: p.byte_size() as u64,
            ..Outgoing::new(p)
        });
        let at = published_at.as_micros().min(u128::from(u64::MAX)) as u64;
        let now = self.inner.clock.now();
        let mut core = self.inner.core();
        core.note_time(now);
        core.restore(topic, out, seq, at, retained)
    }

    /// Puts durable copies back, in order (see [`Bus::restore`]; `published_at` in bus-clock
    /// microseconds, a message's size measured here when its `size` is 0). Every entry is
    /// checked before any is applied: a refused call restores nothing.
    pub fn restore_all(&self, mut entries: Vec<crate::logs::Restored<P>>) -> Result<()> {
        for e in &mut entries {
            if let Some(out) = e.out.as_mut().filter(|o| o.size == 0) {
                out.size = out.payload.byte_size() as u64;
            }
        }
        let now = self.inner.clock.now();
        let mut core = self.inner.core();
        core.note_time(now);
        core.restore_all(entries)
    }

    /// Whether [`Bus::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.core_ref().is_closed()
    }

    /// A statistics snapshot.
    pub fn stats(&self) -> BusStats {
        let now = self.inner.clock.now();
        let mut core = self.inner.core();
        core.expire_logs(now);
        core.stats()
    }

    /// Resolves `topic` once; publishing through [`Bus::publish_to`] then skips the lookup.
    /// The handle stays valid until the bus has seen `max_topics` (16,384) other distinct
    /// topics; after that it is refused as stale (`INVALID_ARGUMENT`), never misrouted.
    pub fn topic(&self, topic: &str) -> Result<TopicHandle> {
        self.inner.core().resolve(topic)
    }

    /// Publishes on a resolved topic.
    pub fn publish_to(&self, topic: TopicHandle, payload: P) -> Result<bool> {
        self.publish_payload(topic, payload)
    }

    /// A publish without options: inlined into both publish calls, so `publish` makes one call
    /// for a direct delivery, not two.
    #[inline(always)]
    fn publish_payload(&self, topic: TopicHandle, payload: P) -> Result<bool> {
        let inner = &*self.inner;
        let d = &inner.direct;
        if !inner.dispatching.get() {
            // The broker took a direct publish on this topic and nothing changed since: this
            // one is delivered the same way, numbered and counted here.
            let cached = d
                .ready
                .get()
                .then(|| d.route.borrow())
                .filter(|r| r.handle == topic);
            if let Some(cached) = cached {
                let route = cached.clone();
                drop(cached);
                let seq = d.seq.get() + 1;
                d.seq.set(seq);
                d.published.set(d.published.get() + 1);
                let size = payload.byte_size() as u64;
                let name = route.topic.clone();
                self.deliver_direct(&route, Message::direct(name, payload, size, seq));
                return Ok(true);
            }
            // `publish_outgoing` for a message without options, with less to look at.
            let accepted = {
                let mut core = inner.core.borrow_mut();
                if d.published.get() > 0 {
                    inner.count_direct(&mut core);
                }
                core.accept_direct(topic, false, false, None, || inner.clock.now())?
            };
            match accepted {
                Accepted::Deliver(subs, name, seq) => {
                    let size = payload.byte_size() as u64;
                    let msg = Message::direct(name, payload, size, seq);
                    match inner.direct_route(topic, &subs, &msg.topic, seq) {
                        Some(route) => self.deliver_direct(&route, msg),
                        None => self.deliver_once(&subs, msg),
                    }
                    return Ok(true);
                }
                Accepted::Duplicate => return Ok(false),
                Accepted::Queue => {}
            }
        }
        let out = Outgoing {
            size: payload.byte_size() as u64,
            ..Outgoing::new(payload)
        };
        self.publish_queued(topic, out)
    }

    #[cfg(target_arch = "wasm32")]
    fn after_pump_browser(&self) {
        let Some(b) = &self.inner.browser else { return };
        if self.is_idle() {
            for tx in b.borrow_mut().idle.drain(..) {
                let _ = tx.send(());
            }
        }
        let deadline = self.inner.core().next_deadline();
        let mut state = b.borrow_mut();
        match (deadline, &state.timer) {
            (Some(d), Some((armed, _))) if *armed <= d => {}
            (Some(d), _) => {
                let now = self.inner.clock.now();
                let ms = d.saturating_sub(now).div_ceil(1000).min(u32::MAX as u64) as u32;
                let weak = Rc::downgrade(&self.inner);
                let timeout = gloo_timers::callback::Timeout::new(ms, move || {
                    if let Some(inner) = weak.upgrade() {
                        if let Some(b) = &inner.browser {
                            b.borrow_mut().timer = None;
                        }
                        Bus { inner }.pump();
                    }
                });
                state.timer = Some((d, timeout));
            }
            (None, _) => state.timer = None,
        }
    }
}

/// Runs a synchronous handler; natively a panic is caught and counted as a failure (in
/// WebAssembly a panic aborts the instance, which is why nothing there may panic).
#[inline(always)]
fn call(f: impl FnOnce() -> HandlerResult) -> HandlerResult {
    #[cfg(not(target_arch = "wasm32"))]
    {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(panic) => Err(panicked(panic)),
        }
    }
    #[cfg(target_arch = "wasm32")]
    {
        f()
    }
}

/// The error a panicking handler fails with.
#[cfg(not(target_arch = "wasm32"))]
fn panicked(panic: Box<dyn std::any::Any + Send>) -> HandlerError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "handler panicked".to_string());
    format!("handler panicked: {what}").into()
}

fn outgoing<P: ByteSize>(payload: P, o: PublishOptions) -> Result<Outgoing<P>> {
    let ttl = match o.ttl {
        Some(t) if t.is_zero() => return Err(Error::invalid_option("ttl", "must be positive")),
        Some(t) => Some(t.as_micros().min(u64::MAX as u128) as u64),
        None => None,
    };
    crate::message::check_prior_attempts(o.attempts)?;
    let headers = (!o.headers.is_empty()).then(|| Rc::from(o.headers));
    Ok(Outgoing {
        size: payload.byte_size() as u64,
        payload,
        id: o.id.map(Rc::from),
        key: o.key.map(Rc::from),
        headers,
        ttl,
        priority: o.priority,
        not_before: o
            .not_before
            .map(|t| t.as_micros().min(u64::MAX as u128) as u64),
        attempts: o.attempts,
        request: None,
        retain: o.retain,
    })
}

/// A standalone batch processor: collects items and calls its handler with a batch when
/// `max_size`, `max_bytes` or `max_wait` is reached, one batch at a time, in order, retrying a
/// failed batch with backoff. `flush`, `drain` and `close` deliver partial batches.
///
/// ```
/// use edgebus::{BatchPolicy, Batcher};
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let batches = Rc::new(RefCell::new(Vec::new()));
/// let b = batches.clone();
/// let batcher = Batcher::new(BatchPolicy { max_size: 2, ..BatchPolicy::default() }, move |items: &[u32]| {
///     b.borrow_mut().push(items.to_vec());
///     Ok(())
/// })?;
/// for i in 0..5 {
///     batcher.add(i)?;
/// }
/// batcher.flush();
/// assert_eq!(*batches.borrow(), vec![vec![0, 1], vec![2, 3], vec![4]]);
/// # Ok::<(), edgebus::Error>(())
/// ```
pub struct Batcher<T> {
    bus: Bus<T>,
    topic: TopicHandle,
    sub: Subscription<T>,
}

impl<T: Clone + ByteSize + 'static> Batcher<T> {
    /// A batcher on the real clock.
    pub fn new<F>(policy: BatchPolicy, handler: F) -> Result<Self>
    where
        F: Fn(&[T]) -> HandlerResult + 'static,
    {
        Self::with_options(policy, BusOptions::default(), handler)
    }

    /// A batcher with bus options (clock, `on_error`).
    pub fn with_options<F>(policy: BatchPolicy, options: BusOptions<T>, handler: F) -> Result<Self>
    where
        F: Fn(&[T]) -> HandlerResult + 'static,
    {
        let bus = Bus::new(BusOptions {
            max_queue: usize::MAX,
            overflow: Overflow::Reject,
            ..options
        })?;
        let sub = bus.subscribe_batch(
            "batch",
            move |msgs: &[Message<T>]| {
                let items: Vec<T> = msgs.iter().map(|m| m.payload().clone()).collect();
                handler(&items)
            },
            SubscribeOptions::default().batch(policy),
        )?;
        let topic = bus.topic("batch")?;
        Ok(Batcher { bus, topic, sub })
    }

    /// Adds an item (`MESSAGE_TOO_LARGE` if it alone exceeds `max_bytes`, `CLOSED` after close).
    pub fn add(&self, item: T) -> Result<()> {
        self.bus.publish_to(self.topic, item).map(|_| ())
    }

    /// Delivers the partial batch now.
    pub fn flush(&self) {
        self.bus.flush();
    }

    /// Runs until every item added has been handled (see [`Bus::run_until_idle`]).
    pub fn run_until_idle(&self) -> bool {
        self.bus.flush();
        self.bus.run_until_idle()
    }

    /// Flushes and resolves when every item has been handled.
    pub async fn drain(&self) {
        self.bus.drain().await
    }

    /// Refuses later items with `CLOSED`, flushes and drains.
    pub async fn close(&self) {
        // A batcher has no work queue nor delayed messages: nothing can remain.
        self.bus.close().await;
    }

    /// Statistics of the batcher's processing.
    pub fn stats(&self) -> Option<SubscriptionStats> {
        self.sub.stats()
    }
}
