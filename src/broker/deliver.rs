//! Handing deliveries to the driver, and settling them: completion, failure, retries, release.

use super::*;

impl<P: Clone> Broker<P> {
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
                        sub.counted().counters.cancelled += 1;
                        self.counters.cancelled += 1;
                        self.finish(id, key.as_ref());
                        continue;
                    }
                    if msg.is_expired(now) {
                        sub.counted().counters.expired += 1;
                        self.counters.expired += 1;
                        self.finish(id, key.as_ref());
                        continue;
                    }
                    let latency = msg.published_at.map_or(0, |t| now.saturating_sub(t));
                    sub.counted().latency.record(latency);
                    self.latency.record(latency);
                    sub.counted().counters.delivered += 1;
                    self.counters.delivered += 1;
                    let timeout = sub.timeout();
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
                        sub.counted().counters.cancelled += n;
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
                    if expired > 0 {
                        sub.counted().counters.expired += expired;
                    }
                    self.counters.expired += expired;
                    if msgs.is_empty() {
                        self.finish(id, None);
                        continue;
                    }
                    if attempt == 1 {
                        for m in &msgs {
                            let latency = m.published_at.map_or(0, |t| now.saturating_sub(t));
                            sub.counted().latency.record(latency);
                            self.latency.record(latency);
                        }
                        let n = msgs.len() as u64;
                        sub.counted().counters.delivered += n;
                        self.counters.delivered += n;
                    }
                    let (timeout, max_attempts) = match &sub.kind {
                        Kind::Batch(b) => (sub.timeout(), b.policy.max_attempts),
                        _ => (sub.timeout(), 1),
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
    pub(super) fn deliver_claim(
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
            self.watch_waiting(gid, &jobs);
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
            // Latency is to the first delivery by this bus (a message published with attempts
            // made elsewhere starts past 1).
            if m.attempt == m.prior + 1 {
                let latency = m.published_at.map_or(0, |t| now.saturating_sub(t));
                sub.counted().latency.record(latency);
                self.latency.record(latency);
            }
        }
        let n = msgs.len() as u64;
        sub.counted().counters.delivered += n;
        self.counters.delivered += n;
        let timeout = sub.timeout();
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
            arm(
                &mut self.timers,
                now.saturating_add(t),
                Timer::Timeout(index, gen),
            );
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
    pub(super) fn begin(
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
            arm(
                &mut self.timers,
                now.saturating_add(t),
                Timer::Timeout(index, gen),
            );
        }
        DeliveryId { index, gen }
    }

    /// Registers a delivery the driver started on its own (a handler it called directly that
    /// turned out to be asynchronous), so the subscription's concurrency, key order and timeout
    /// account for it. It must have been one that would start at once (see
    /// [`Broker::is_direct_ready`]).
    pub fn begin_external(&mut self, sub: SubId, key: Option<Rc<str>>, now: u64) -> DeliveryId {
        let timeout = match self.subs.get_mut(sub.index, sub.gen) {
            Some(s) => {
                s.in_flight += 1;
                if let Kind::Plain(q) = &mut s.kind {
                    q.activate(key.as_ref());
                }
                s.timeout()
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
    pub(super) fn unready_over_limit(&mut self, id: SubId) {
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
                if let Some(at) = q.push_front(msg) {
                    arm(&mut self.watches, at, Timer::QueueExpiry(id.index, id.gen));
                }
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
                let c = &mut sub.counted().counters;
                c.delivered = c.delivered.saturating_sub(count);
                c.cancelled += count;
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
        self.watch_waiting(gid, &jobs);
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

    pub(super) fn random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn settle_claim(
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
            arm(
                &mut self.timers,
                due,
                Timer::JobRetry(gid.index, gid.gen, job.index, job.gen),
            );
        }
        if dead > 0 {
            self.events.push_back(Event::Dead);
            self.counters.failed += dead;
            if let Some(m) = self.subs.get_mut(member.index, member.gen) {
                m.counted().counters.failed += dead;
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

    pub(super) fn settle(&mut self, mut f: InFlight<P>, ok: bool, now: u64) {
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
                    sub.counted().counters.failed += n;
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
                    arm(&mut self.timers, due, Timer::Retry(id.index, id.gen));
                    return;
                }
                self.finish(id, f.key.as_ref());
                return;
            }
            sub.counted().counters.failed += f.count;
            self.counters.failed += f.count;
        }
        self.finish(id, f.key.as_ref());
    }

    /// A slot of `id` is free again: release the key, start what waits, report idleness.
    pub(super) fn finish(&mut self, id: SubId, key: Option<&Rc<str>>) {
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

    pub(super) fn free_if_done(&mut self, id: SubId) {
        let Some(sub) = self.subs.get(id.index, id.gen) else {
            return;
        };
        if sub.live || sub.in_flight != 0 {
            return;
        }
        // The drivers keep showing its statistics once it is gone: what they are made of moves
        // into the retired record (no copy), and they are made when a driver takes them.
        let group = self.group_name(sub).cloned();
        let queued = sub.queued() as u64;
        let Some(sub) = self.subs.remove(id.index, id.gen) else {
            return;
        };
        self.retired.push_back((
            id,
            Retired {
                order: sub.order,
                pattern: sub.pattern,
                group,
                queued,
                counts: sub.stats,
            },
        ));
        self.events.push_back(Event::Retired(id));
    }

    /// The final statistics of an unsubscribed subscription, once its last delivery settled
    /// (reported with [`Event::Retired`]; every driver takes them, so they do not pile up).
    pub fn take_retired(&mut self) -> Option<(SubId, SubscriptionStats)> {
        self.retired.pop_front().map(|(id, r)| (id, r.stats()))
    }

    /// The final statistics of `id` when it retired and no one took its record yet.
    pub fn retired_stats(&self, id: SubId) -> Option<SubscriptionStats> {
        self.retired_ref(id).map(Retired::stats)
    }

    /// Whether `id` retired and no one took its record yet.
    pub fn is_retired(&self, id: SubId) -> bool {
        self.retired_ref(id).is_some()
    }

    fn retired_ref(&self, id: SubId) -> Option<&Retired> {
        self.retired.iter().rfind(|(r, _)| *r == id).map(|(_, r)| r)
    }

    /// `id`'s retired record when it retired and no one took it yet, taken with its
    /// [`Event::Retired`]: a driver that just unsubscribed an idle subscription reads it at
    /// once instead of in its next round.
    pub fn take_retired_of(&mut self, id: SubId) -> Option<Retired> {
        let at = self.retired.iter().rposition(|(r, _)| *r == id)?;
        // Usually the last one (it just retired): popped, with no shifting.
        let (_, retired) = if at + 1 == self.retired.len() {
            self.retired.pop_back()?
        } else {
            self.retired.remove(at)?
        };
        if let Some(e) = self.events.iter().rposition(|e| *e == Event::Retired(id)) {
            if e + 1 == self.events.len() {
                self.events.pop_back();
            } else {
                self.events.remove(e);
            }
        }
        Some(retired)
    }

    /// Whether a driver has anything to take: events, or deliveries ready to start.
    pub fn has_pending(&self) -> bool {
        !self.events.is_empty() || !self.ready.is_empty()
    }
}
