//! Subscribing and unsubscribing: plain subscriptions, batch subscriptions, work queues and their members.

use super::*;

impl<P: Clone> Broker<P> {
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
            if options.replay.is_some() {
                return Err(Error::invalid_option(
                    "replay",
                    "is for plain and batch subscriptions: a work queue's messages are kept by its group",
                ));
            }
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
                Kind::Batch(Box::new(BatchQueue::new(*policy)))
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
        let pattern = pattern.clone();
        self.router.insert(&pattern, id);
        self.invalidate_routes(&pattern);
        if let Some(replay) = &options.replay {
            self.replay_into(id, &pattern, replay);
        }
        Ok(id)
    }

    pub(super) fn join_group(
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
        let key: Rc<str> = Rc::from(format!("{} {}", group.name, pattern.as_str()));
        let gid = match self.groups.get(&key).map(|&p| unpack(p)) {
            Some(gid) => {
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
                                crate::clock::Millis(wq.policy().backoff_initial),
                                crate::clock::Millis(wq.policy().backoff_max)
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
                    // A work queue keeps every message until it is acknowledged.
                    return Err(zero_queue("a work queue", options.max_queue.is_none()));
                }
                let wq = WorkQueue::new(
                    Rc::from(group.name.as_str()),
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
                self.invalidate_routes(&pattern);
                self.groups.insert(key, pack(gid));
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
    pub(super) fn add_sub(&mut self, make: impl FnOnce(u64) -> Sub<P>) -> SubId {
        self.next_order += 1;
        let order = self.next_order;
        let (index, gen) = self.subs.insert(make(order), Some(order as u32));
        SubId { index, gen }
    }

    /// Watches the TTLs of `jobs` of group `gid` that wait for a member, when it has none (with
    /// members, a claim finds an expired job).
    #[inline(never)]
    pub(super) fn watch_waiting(&mut self, gid: SubId, jobs: &[JobRef]) {
        if let Some(Sub {
            kind: Kind::Group(wq),
            ..
        }) = self.subs.get(gid.index, gid.gen)
        {
            if wq.member_count() == 0 {
                for &job in jobs {
                    if let Some(at) = wq.waiting_until(job) {
                        arm(
                            &mut self.watches,
                            at,
                            Timer::Expiry(gid.index, gid.gen, job.index, job.gen),
                        );
                    }
                }
            }
        }
    }

    /// Hands a group's ready jobs to members with room.
    pub(super) fn dispatch_group(&mut self, gid: SubId) {
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
            // failures no driver has reported yet, each the failure of the member whose try
            // failed (or that would have taken it). One whose tries were all made before it was
            // published, in a work queue without members, is nobody's: dead, with its letter,
            // and no handler failure to count or report.
            for (_, by) in &dead {
                if let Some(by) = by {
                    self.counters.failed += 1;
                    if let Some(m) = self.subs.get_mut(by.index, by.gen) {
                        m.counted().counters.failed += 1;
                    }
                }
            }
            self.dead.extend(dead);
            self.events.push_back(Event::Dead);
        }
        if let Some(at) = wake {
            arm(&mut self.timers, at, Timer::ClaimWait(gid.index, gid.gen));
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
                // The last member gone: nothing claims, so the TTLs of the jobs waiting are
                // watched.
                let waiting = if wq.member_count() == 0 {
                    wq.waiting()
                } else {
                    Vec::new()
                };
                self.watch_waiting(gid, &waiting);
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
        if cancelled > 0 {
            sub.counted().counters.cancelled += cancelled;
        }
        self.counters.cancelled += cancelled;
        let pattern = sub.pattern.clone();
        self.router.remove(&pattern, id);
        self.invalidate_routes(&pattern);
        self.free_if_done(id);
        self.room_changed();
        true
    }

    /// Whether the subscription is a work-queue member.
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
}
