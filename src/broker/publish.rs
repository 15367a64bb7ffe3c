//! Admitting messages: dedupe, TTL, delay, overflow policies, fan-out into queues and groups.

use super::*;

impl<P: Clone> Broker<P> {
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
        check_prior_attempts(msg.attempts)?;
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
        size: u64,
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
            topic_seq: 0,
            attempt: 1,
            prior: 0,
            letter: Some(Rc::new(letter)),
            request: None,
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
        for m in &msgs {
            check_prior_attempts(m.attempts)?;
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
    pub fn check_room(&mut self, handle: TopicHandle, n: usize, size: u64) -> Result<()> {
        if self.closed {
            return Err(Error::closed("bus"));
        }
        let subs = self.route(handle)?;
        self.admit(&subs, n, size, PublishMode::Now).map(|_| ())
    }

    /// The work queue a waiting publish on `handle` waits for: the first full `wait` one it
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

    /// Marks whether the driver may call `id`'s handler directly when it would start a message
    /// at once (see
    /// [`Broker::publish_direct`]). Only plain subscriptions qualify.
    pub fn set_direct(&mut self, id: SubId, direct: bool) {
        if let Some(sub) = self.subs.get_mut(id.index, id.gen) {
            let direct = direct && matches!(sub.kind, Kind::Plain(_));
            if sub.direct != direct {
                sub.direct = direct;
                self.direct_gen += 1;
                if self.direct_gen == u32::MAX {
                    // Wrapped around: no route may keep an answer of the first round.
                    self.direct_gen = 0;
                    for entry in &mut self.topics {
                        entry.direct_gen = u32::MAX;
                    }
                }
            }
        }
    }

    /// Whether `id` would start a message published now at once, so that the driver may call its
    /// handler itself: live, marked direct, nothing queued, and a free slot of its concurrency.
    /// A message with a `key` needs the subscription idle (an earlier message of its key may be
    /// running); so does any message while messages wait to be handed to the driver (`ready`: a
    /// message started now would run before them).
    pub fn is_direct_ready(&self, id: SubId, keyed: bool) -> bool {
        // Only plain subscriptions are ever marked direct (see `set_direct`), so only a plain
        // queue can hold it back: asked per subscription per publish, no match on the kind.
        self.subs.get(id.index, id.gen).is_some_and(|s| {
            s.live
                && s.direct
                && (s.in_flight == 0
                    || (!keyed && s.in_flight < s.concurrency && self.ready.is_empty()))
                && matches!(&s.kind, Kind::Plain(q) if q.is_empty())
        })
    }

    /// Whether a message published now on `handle` (with a key or not) would start at once in
    /// every subscription its topic reaches, so that the driver may call their handlers itself,
    /// as [`Broker::publish_direct`] does. A driver asks this when it cannot tell on its own:
    /// while some subscription of the route is busy.
    pub fn starts_now(&mut self, handle: TopicHandle, keyed: bool) -> Result<bool> {
        if self.closed {
            return Ok(false);
        }
        let entry = self.entry(handle)?;
        let known = entry.direct_gen == self.direct_gen && entry.all_direct;
        let at = handle.index as usize;
        Ok((known || self.route_is_direct(at)) && self.route_ready(at, keyed))
    }

    /// Whether every subscription of the route of topic `at` (an index of the current table)
    /// would start a message now: see [`Broker::is_direct_ready`].
    fn route_ready(&self, at: usize, keyed: bool) -> bool {
        // Nothing queued or running anywhere: every subscription is idle.
        (self.queued == 0 && self.in_flight == 0)
            || self.topics[at]
                .subs
                .iter()
                .all(|id| self.is_direct_ready(*id, keyed))
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
        Ok(
            match self.accept_direct(
                handle,
                msg.not_before.is_some(),
                msg.key.is_some(),
                msg.id.as_deref(),
                now,
            )? {
                Accepted::Deliver(subs, topic, seq) => {
                    Direct::Deliver(subs, Message::published_directly(topic, msg, seq))
                }
                Accepted::Duplicate => Direct::Duplicate,
                Accepted::Queue => Direct::Queue(msg),
            },
        )
    }

    /// [`Broker::publish_direct`]'s decision for a message with a `not_before` (`delayed`) or
    /// not, with an `id` or not, leaving the message with the caller: a driver builds it where
    /// its handlers read it ([`Message::published_directly`]), not moved through a return value.
    /// Inlined into the driver's publish: most of it is a few comparisons, and fewer for a
    /// message without options.
    #[inline(always)]
    pub(crate) fn accept_direct(
        &mut self,
        handle: TopicHandle,
        delayed: bool,
        keyed: bool,
        id: Option<&str>,
        now: impl FnOnce() -> u64,
    ) -> Result<Accepted> {
        if self.closed {
            return Err(Error::closed("bus"));
        }
        let entry = self.entry(handle)?;
        // A known answer says the route is current too (see `TopicEntry::all_direct`).
        let known = entry.direct_gen == self.direct_gen && entry.all_direct;
        let at = handle.index as usize;
        if delayed || !(known || self.route_is_direct(at)) {
            return Ok(Accepted::Queue);
        }
        if !self.route_ready(at, keyed) {
            return Ok(Accepted::Queue);
        }
        if id.is_some() && self.dedupe.is_some() {
            let now = now();
            if self.is_duplicate(id, now) {
                return Ok(Accepted::Duplicate);
            }
            self.record_id(id, now);
        }
        self.seq += 1;
        self.counters.published += 1;
        let entry = &self.topics[at];
        Ok(Accepted::Deliver(
            entry.subs.clone(),
            entry.topic.clone(),
            self.seq,
        ))
    }

    /// Whether every subscription of the route of topic `at` (an index of the current table) is
    /// live and marked direct: brings the route up to date and works the answer out again,
    /// unless it is known.
    #[cold]
    #[inline(never)]
    fn route_is_direct(&mut self, at: usize) -> bool {
        let entry = &self.topics[at];
        if entry.direct_gen == self.direct_gen {
            return entry.all_direct;
        }
        if entry.gen != self.routes_gen {
            // Cannot fail: `at` is an index of the current table.
            let _ = self.route_stale(TopicHandle::from_parts(at as u32, self.topics_gen));
        }
        let subs = &self.subs;
        let tracked = self.logs.is_active() && self.logs.tracks(&self.topics[at].topic);
        let entry = &mut self.topics[at];
        entry.all_direct = !tracked
            && entry.subs.iter().all(|id| {
                subs.get(id.index, id.gen)
                    .is_some_and(|s| s.live && s.direct)
            });
        entry.direct_gen = self.direct_gen;
        entry.all_direct
    }

    /// Numbers and counts `n` messages a driver delivered directly after the last one
    /// [`Broker::accept_direct`] accepted, on the same terms (the broker did not change in
    /// between).
    pub(crate) fn record_direct_published(&mut self, n: u64) {
        self.seq += n;
        self.counters.published += n;
    }

    /// The sequence number of the latest message published.
    pub(crate) fn sequence(&self) -> u64 {
        self.seq
    }

    /// Checks `id` against the idempotence filter and records it: `true` for a first sighting.
    /// Always `true` when dedupe is off. Counts duplicates.
    pub fn check_id(&mut self, id: &str, now: u64) -> bool {
        // One look-up: the filter's `check` finds a seen id and records a new one.
        let Some(filter) = self.dedupe.as_mut() else {
            return true;
        };
        if filter.check(id, now) {
            return true;
        }
        self.counters.duplicates += 1;
        false
    }

    pub(super) fn is_duplicate(&mut self, id: Option<&str>, now: u64) -> bool {
        if let (Some(filter), Some(id)) = (self.dedupe.as_mut(), id) {
            if filter.has(id, now) {
                self.counters.duplicates += 1;
                return true;
            }
        }
        false
    }

    pub(super) fn record_id(&mut self, id: Option<&str>, now: u64) {
        if let (Some(filter), Some(id)) = (self.dedupe.as_mut(), id) {
            filter.check(id, now);
        }
    }

    /// Checks `n` messages (the largest `size` bytes) fit every subscription whose policy refuses
    /// rather than drops. `Ok(Some(MustWait))` when a `wait` subscription is full in wait mode.
    pub(super) fn admit(
        &self,
        subs: &[SubId],
        n: usize,
        size: u64,
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

    pub(super) fn enqueue(&mut self, subs: &[SubId], topic: Rc<str>, out: Outgoing<P>, now: u64) {
        self.last_now = now;
        let priority = out.priority;
        let retain = out.retain;
        self.seq += 1;
        self.counters.published += 1;
        let mut msg = Message::published(topic, out, now, self.seq);
        if retain != Retain::No || self.logs.is_active() {
            self.log(&mut msg, retain, now);
        }
        if let Some((last, rest)) = subs.split_last() {
            for id in rest {
                self.offer(*id, msg.clone(), priority, now);
            }
            self.offer(*last, msg, priority, now);
        }
    }

    /// Puts `msg` in the subscription's queue (applying its overflow policy) and starts what can
    /// start.
    pub(super) fn offer(&mut self, id: SubId, msg: Message<P>, priority: u32, now: u64) {
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
            sub.counted().counters.dropped += 1;
            self.counters.dropped += 1;
            if !dropped {
                if let Kind::Group(g) = &mut sub.kind {
                    g.refuse(&msg, now);
                }
                return;
            }
        }
        if let Kind::Group(g) = &mut sub.kind {
            let job = g.push(msg, priority);
            self.watch_waiting(id, &[job]);
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
            Kind::Plain(q) => {
                if let Some(at) = q.push(msg) {
                    arm(&mut self.watches, at, Timer::QueueExpiry(id.index, id.gen));
                }
            }
            Kind::Group(_) | Kind::Member(_) => {}
            Kind::Batch(b) => {
                if let Pushed::Opened(gen) = b.push(msg) {
                    let wait = b.policy.max_wait;
                    arm(
                        &mut self.timers,
                        now.saturating_add(wait),
                        Timer::BatchWait(id.index, id.gen, gen),
                    );
                }
            }
        }
        self.start(id);
    }

    /// Moves messages of `id` from its queue to the ready list while it has free slots.
    pub(super) fn start(&mut self, id: SubId) {
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

    pub(super) fn room_changed(&mut self) {
        if self.waiting && self.events.back() != Some(&Event::Room) {
            self.events.push_back(Event::Room);
        }
    }

    /// Tells the broker whether publishers are waiting for room, so it reports [`Event::Room`].
    /// Answering [`Published::MustWait`] sets it; the driver clears it when no one waits.
    pub fn set_waiting(&mut self, waiting: bool) {
        self.waiting = waiting;
    }
}
