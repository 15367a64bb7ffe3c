//! A scripted driver for the sans-IO broker: a manual clock, the operations a real driver performs
//! (subscribe, publish, pump, complete a delivery, advance time, close), and the records and
//! events the core hands back, kept for the test to assert on.
//!
//! It does what the native `Bus` and the JavaScript driver do, minus handlers: a handler is the
//! test itself, settling each started delivery with `ok` or `fail` when the script says so. Payloads
//! are `u32`s naming the messages, so a delivery reads as the list of payloads it carries.
//!
//! After every step that moves messages, the driver checks the counting identities a driver relies
//! on (see [`Driver::check`]): every message routed to a plain subscription is accounted for exactly
//! once, and the broker's totals are the sums of its subscriptions'.

use super::super::*;
use hashbrown::HashMap as Map;

/// A delivery the core handed out and the script has not settled yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Started {
    pub id: DeliveryId,
    pub sub: SubId,
    pub attempt: u32,
    pub final_attempt: bool,
    /// The payloads it carries, in order (one for a single message).
    pub payloads: Vec<u32>,
    /// Whether it came as a batch.
    pub batch: bool,
}

/// What the driver knows about a subscription it made, to check the broker's counts against.
#[derive(Debug, Default, Clone)]
struct Tally {
    /// A plain subscription (no batch, no group): the identities below hold for it exactly.
    plain: bool,
    /// Messages the broker routed to it (taken from the route at publish time).
    routed: u64,
    /// Deliveries the script completed successfully.
    ok: u64,
}

/// The scripted driver.
pub(crate) struct Driver {
    pub b: Broker<u32>,
    /// The manual clock, in microseconds (the broker's unit).
    pub now: u64,
    /// Deliveries started and not settled, oldest first.
    pub running: Vec<Started>,
    /// Every event the core reported, oldest first (the script may clear it).
    pub events: Vec<Event>,
    tallies: Map<SubId, Tally>,
    /// Deliveries the driver started on its own (`begin_external`) and has not completed.
    external: Vec<(DeliveryId, SubId)>,
    /// Delayed messages not visible yet: (due time, topic).
    delayed: Vec<(u64, Rc<str>)>,
}

pub(crate) const MS: u64 = 1_000;

impl Driver {
    pub fn new() -> Driver {
        Driver::with(BrokerConfig::default())
    }

    pub fn with(config: BrokerConfig) -> Driver {
        Driver {
            b: Broker::new(config).expect("valid config"),
            now: 0,
            running: Vec::new(),
            events: Vec::new(),
            tallies: Map::new(),
            delayed: Vec::new(),
            external: Vec::new(),
        }
    }

    // ----- subscriptions -----------------------------------------------------------------------

    /// A plain subscription with default options.
    pub fn sub(&mut self, pattern: &str) -> SubId {
        self.sub_with(pattern, SubscribeOptions::default())
    }

    pub fn sub_with(&mut self, pattern: &str, options: SubscribeOptions) -> SubId {
        self.try_sub(pattern, options).expect("subscribe")
    }

    pub fn try_sub(&mut self, pattern: &str, options: SubscribeOptions) -> Result<SubId> {
        let plain = options.batch.is_none() && options.group.is_none();
        let replayed = self.b.log_stats().replayed;
        self.b.note_time(self.now);
        let id = self.b.subscribe(pattern, &options)?;
        // A replay routes messages to the new subscription as it is made.
        let routed = self.b.log_stats().replayed - replayed;
        self.tallies.insert(
            id,
            Tally {
                plain,
                routed,
                ..Tally::default()
            },
        );
        Ok(id)
    }

    /// A member of the work queue `group` on `pattern`.
    pub fn member(&mut self, pattern: &str, group: &str, options: SubscribeOptions) -> SubId {
        let options = SubscribeOptions {
            group: Some(GroupOptions {
                name: group.to_owned(),
                retry: options.group.as_ref().and_then(|g| g.retry),
            }),
            ..options
        };
        self.sub_with(pattern, options)
    }

    pub fn unsub(&mut self, id: SubId) -> bool {
        let gone = self.b.unsubscribe(id);
        self.drain_events();
        gone
    }

    // ----- publishing --------------------------------------------------------------------------

    /// Publishes `payload` on `topic` (synchronous mode); panics on an error.
    pub fn publish(&mut self, topic: &str, payload: u32) -> Published {
        self.send(topic, Outgoing::new(payload), PublishMode::Now)
            .expect("publish")
    }

    /// Publishes a message built by the script.
    pub fn send(
        &mut self,
        topic: &str,
        msg: Outgoing<u32>,
        mode: PublishMode,
    ) -> Result<Published> {
        let handle = self.b.resolve(topic)?;
        let route = self.b.route(handle)?;
        let delayed_until = msg.not_before.filter(|at| *at > self.now);
        let out = self.b.publish_to(handle, msg, self.now, mode)?;
        if let Published::Accepted { .. } = out {
            match delayed_until {
                // Routed when it becomes visible (see `pump`).
                Some(at) => self.delayed.push((at, Rc::from(topic))),
                None => self.count_routed(&route),
            }
        }
        self.drain_events();
        self.check();
        Ok(out)
    }

    /// A message with an id.
    pub fn with_id(payload: u32, id: &str) -> Outgoing<u32> {
        let mut m = Outgoing::new(payload);
        m.id = Some(Rc::from(id));
        m
    }

    /// A message with a key.
    pub fn keyed(payload: u32, key: &str) -> Outgoing<u32> {
        let mut m = Outgoing::new(payload);
        m.key = Some(Rc::from(key));
        m
    }

    fn count_routed(&mut self, route: &[SubId]) {
        for id in route {
            if let Some(t) = self.tallies.get_mut(id) {
                t.routed += 1;
            }
        }
    }

    // ----- running -----------------------------------------------------------------------------

    /// One driver round: fire the timers due now, take every ready delivery. Returns what started
    /// in this round (also kept in `running`).
    pub fn pump(&mut self) -> Vec<Started> {
        let unattributed = self.unattributed_drops();
        self.b.fire_timers(self.now);
        self.count_visible(unattributed);
        let mut out = Vec::new();
        while let Some(d) = self.b.next_delivery(self.now) {
            let (payloads, batch) = match &d.items {
                Items::One(m) => (vec![m.payload], false),
                Items::Batch(ms) => (ms.iter().map(|m| m.payload).collect(), true),
            };
            out.push(Started {
                id: d.id,
                sub: d.sub,
                attempt: d.attempt,
                final_attempt: d.final_attempt,
                payloads,
                batch,
            });
        }
        self.running.extend(out.iter().cloned());
        self.drain_events();
        self.check();
        out
    }

    /// Payloads started by one pump, in order (a batch's payloads in a row).
    pub fn pump_payloads(&mut self) -> Vec<u32> {
        self.pump().into_iter().flat_map(|s| s.payloads).collect()
    }

    /// Moves the clock `ms` milliseconds ahead and pumps.
    pub fn advance(&mut self, ms: u64) -> Vec<Started> {
        self.advance_us(ms * MS)
    }

    pub fn advance_us(&mut self, us: u64) -> Vec<Started> {
        self.now += us;
        self.pump()
    }

    /// Moves the clock to the next deadline (if any) and pumps.
    pub fn advance_to_deadline(&mut self) -> Option<Vec<Started>> {
        let at = self.b.next_deadline()?;
        self.now = self.now.max(at);
        Some(self.pump())
    }

    /// Settles the running delivery that carries `payload` (as its first item).
    pub fn ok(&mut self, payload: u32) {
        self.settle(payload, None);
    }

    /// Fails the running delivery that carries `payload` with `error`.
    pub fn fail(&mut self, payload: u32, error: &str) {
        self.settle(payload, Some(error));
    }

    fn settle(&mut self, payload: u32, error: Option<&str>) {
        let pos = self
            .running
            .iter()
            .position(|s| s.payloads.first() == Some(&payload))
            .unwrap_or_else(|| panic!("no running delivery carries {payload}: {:?}", self.running));
        let s = self.running.remove(pos);
        match error {
            None => {
                self.b.complete(s.id, true, self.now);
                if let Some(t) = self.tallies.get_mut(&s.sub) {
                    t.ok += s.payloads.len() as u64;
                }
            }
            Some(e) => self.b.complete_failed(s.id, e, self.now),
        }
        self.drain_events();
    }

    /// Registers a delivery the driver started itself (a direct handler call that went async).
    pub fn begin_external(&mut self, sub: SubId, key: Option<&str>) -> DeliveryId {
        let id = self.b.begin_external(sub, key.map(Rc::from), self.now);
        self.external.push((id, sub));
        id
    }

    /// Completes a delivery started with [`Driver::begin_external`].
    pub fn complete_external(&mut self, id: DeliveryId) {
        self.external.retain(|(e, _)| *e != id);
        self.b.complete(id, true, self.now);
        self.drain_events();
    }

    /// Settles every running delivery successfully and pumps, until nothing runs. Returns the
    /// payloads it settled, in start order (those running already first).
    pub fn run_ok(&mut self) -> Vec<u32> {
        let mut seen = self.running_payloads();
        loop {
            let started = self.pump();
            seen.extend(started.iter().flat_map(|s| s.payloads.iter().copied()));
            if self.running.is_empty() {
                return seen;
            }
            let first: Vec<u32> = self.running.iter().map(|s| s.payloads[0]).collect();
            for p in first {
                self.ok(p);
            }
        }
    }

    /// Payloads of the running deliveries, in start order.
    pub fn running_payloads(&self) -> Vec<u32> {
        self.running
            .iter()
            .flat_map(|s| s.payloads.iter().copied())
            .collect()
    }

    /// Takes the next dead letter and publishes it on `$dead.<group>` with `payload`, as a driver
    /// does on [`Event::Dead`]; returns whether its failure was left for the driver to report.
    pub fn publish_next_dead(&mut self, payload: u32) -> (DeadLetter<u32>, Option<SubId>) {
        let (letter, unreported) = self.b.take_dead().expect("a dead letter");
        let handle = self.b.resolve(&format!("$dead.{}", letter.group)).unwrap();
        let route = self.b.route(handle).unwrap();
        let out = self.b.publish_dead(letter.clone(), payload, 1, self.now);
        if let Ok(Published::Accepted { .. }) = out {
            self.count_routed(&route);
        }
        self.drain_events();
        (letter, unreported)
    }

    pub fn close(&mut self) {
        self.b.close();
        self.drain_events();
    }

    /// Takes the events reported since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.drain_events();
        std::mem::take(&mut self.events)
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.b.poll_event() {
            if let Event::TimedOut { delivery, .. } = e {
                // A timed-out delivery is settled by the core; its late result is ignored.
                self.running.retain(|s| s.id != delivery);
                self.external.retain(|(e, _)| *e != delivery);
            }
            self.events.push(e);
        }
    }

    /// Counts the routes of the delayed messages `fire_timers` just made visible (those due by
    /// now). One that a full refusing queue made the core drop (counted by the broker only)
    /// reached no subscription.
    fn count_visible(&mut self, unattributed_before: u64) {
        let now = self.now;
        let (visible, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.delayed = still;
        let mut dropped = self.unattributed_drops() - unattributed_before;
        for (_, topic) in visible {
            let handle = self.b.resolve(&topic).expect("a topic published before");
            let route = self.b.route(handle).expect("a current handle");
            // A refusing queue that was full then is still full now (nothing ran in between).
            if dropped > 0 && self.b.check_room(handle, 1, 0).is_err() {
                dropped -= 1;
                continue;
            }
            self.count_routed(&route);
        }
    }

    /// Drops the broker counted that no subscription or group did (delayed messages refused).
    fn unattributed_drops(&self) -> u64 {
        let s = self.b.stats();
        let subs: u64 = s.per_subscription.iter().map(|s| s.dropped).sum();
        let retired: u64 = self.b.retired.iter().map(|(_, r)| r.stats().dropped).sum();
        let groups: u64 = s.groups.iter().map(|g| g.dropped).sum();
        s.dropped - subs - retired - groups
    }

    // ----- observing ---------------------------------------------------------------------------

    pub fn stats(&self) -> BusStats {
        self.b.stats()
    }

    pub fn sub_stats(&self, id: SubId) -> SubscriptionStats {
        self.b.subscription_stats(id).expect("subscription known")
    }

    /// The counting identities every driver relies on, checked after each step:
    /// - a plain subscription's routed messages are each delivered, dropped, expired, cancelled
    ///   or still queued (nothing is ready between pumps), and its delivered messages each
    ///   completed ok, failed, or still running;
    /// - the broker's `queued` and `inFlight` are the sums over its subscriptions and groups;
    /// - the broker's `delivered` is the sum of its subscriptions' (live and retired).
    pub fn check(&self) {
        let stats = self.b.stats();
        // Handed to the ready list (counted in flight) and not started: only a pump empties it.
        let ready = |id: SubId| -> u64 {
            if !self.b.has_ready() {
                return 0;
            }
            let s = self.b.subscription_stats(id).unwrap_or_default();
            let running = self.running.iter().filter(|r| r.sub == id).count();
            let external = self.external.iter().filter(|(_, s)| *s == id).count();
            s.in_flight - (running + external) as u64
        };
        for (id, t) in &self.tallies {
            if !t.plain {
                continue;
            }
            let Some(s) = self.b.subscription_stats(*id).or_else(|| self.retired(*id)) else {
                continue;
            };
            assert_eq!(
                t.routed,
                s.delivered + s.dropped + s.expired + s.cancelled + s.queued + ready(*id),
                "every message routed to #{} is accounted for once: {s:?}",
                s.id
            );
            let running = self.running.iter().filter(|r| r.sub == *id).count() as u64;
            assert_eq!(
                s.delivered,
                t.ok + s.failed + running,
                "every delivery of #{} settled once or is running: {s:?}",
                s.id
            );
        }
        let per = &stats.per_subscription;
        let group_depth: u64 = stats.groups.iter().map(|g| g.depth).sum();
        assert_eq!(
            stats.queued,
            per.iter().map(|s| s.queued).sum::<u64>() + group_depth,
            "bus queued is the sum of its queues"
        );
        let retired_in_flight: u64 = self
            .b
            .retired
            .iter()
            .map(|(_, r)| r.stats().in_flight)
            .sum();
        // Unsubscribed, with deliveries still to settle: no longer listed, not retired yet.
        let gone_in_flight: u64 = self
            .tallies
            .keys()
            .filter(|id| !self.b.is_subscribed(**id))
            .filter_map(|id| self.b.subscription_stats(*id))
            .map(|s| s.in_flight)
            .sum();
        assert_eq!(
            stats.in_flight,
            per.iter().map(|s| s.in_flight).sum::<u64>() + retired_in_flight + gone_in_flight,
            "bus inFlight is the sum of its subscriptions'"
        );
    }

    fn retired(&self, id: SubId) -> Option<SubscriptionStats> {
        self.b
            .retired
            .iter()
            .find(|(r, _)| *r == id)
            .map(|(_, r)| r.stats())
    }
}

/// Options with `concurrency`.
pub(crate) fn concurrent(n: u32) -> SubscribeOptions {
    SubscribeOptions {
        concurrency: n,
        ..SubscribeOptions::default()
    }
}

/// Options with a bounded queue and an overflow policy.
pub(crate) fn bounded(max_queue: usize, overflow: Overflow) -> SubscribeOptions {
    SubscribeOptions {
        max_queue: Some(max_queue),
        overflow: Some(overflow),
        ..SubscribeOptions::default()
    }
}
