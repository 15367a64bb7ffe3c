//! Deadlines: timeouts, TTL expiry, batch waits, retries, delayed messages, and the next wake-up.

use super::*;

impl<P: Clone> Broker<P> {
    /// The earliest time a live timer or expiry watch is due, if any.
    pub fn next_deadline(&mut self) -> Option<u64> {
        let timer = self.first_live(false);
        let watch = self.first_live(true);
        match (timer, watch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a live timer other than an expiry watch is pending: something a host should stay
    /// up for (a retry, a timeout, a batch wait, a delayed message). The expiry of a work queue's
    /// waiting messages while it has no members only updates counts, so a Node driver does not
    /// keep its process alive for it alone.
    pub fn timers_keep_alive(&mut self) -> bool {
        self.first_live(false).is_some()
    }

    /// The time of the first live timer (or expiry watch), dropping the stale ones on top
    /// (timers are invalidated lazily) so that a driver never waits for a deadline with nothing
    /// behind it.
    fn first_live(&mut self, watches: bool) -> Option<u64> {
        loop {
            let heap = if watches { &self.watches } else { &self.timers };
            let &Reverse((t, timer)) = heap.peek()?;
            if self.timer_is_live(t, timer) {
                return Some(t);
            }
            if watches {
                self.watches.pop();
            } else {
                self.timers.pop();
            }
        }
    }

    /// Whether `timer`, due `at`, still has something to do.
    pub(super) fn timer_is_live(&self, at: u64, timer: Timer) -> bool {
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
            Timer::Request(index, gen) => self.requests.is_pending(RequestId { index, gen }),
            // As retries, a closed bus lists such jobs in `remaining`.
            Timer::Expiry(index, gen, ji, jg) => {
                !self.closed
                    && matches!(
                        self.subs.get(index, gen),
                        Some(Sub { kind: Kind::Group(wq), .. })
                            if wq.member_count() == 0
                                && wq.waiting_until(JobRef { index: ji, gen: jg }).is_some()
                    )
            }
            // Only the latest watch armed for the queue.
            Timer::QueueExpiry(index, gen) => matches!(
                self.subs.get(index, gen),
                Some(Sub { kind: Kind::Plain(q), .. }) if q.watch() == Some(at)
            ),
        }
    }

    /// Runs every timer due at `now`: batch waits, retries, handler timeouts, delayed messages,
    /// then the expiry watches of work queues without members and of subscription queues.
    pub fn fire_timers(&mut self, now: u64) {
        self.last_now = now;
        self.fire_due_timers(now);
        while let Some(Reverse((due, _))) = self.watches.peek() {
            if *due > now {
                break;
            }
            match self.watches.pop() {
                Some(Reverse((_, Timer::Expiry(index, gen, ji, jg)))) => {
                    self.watch_due(SubId { index, gen }, JobRef { index: ji, gen: jg }, now)
                }
                Some(Reverse((at, Timer::QueueExpiry(index, gen)))) => {
                    self.queue_watch_due(SubId { index, gen }, at, now)
                }
                _ => {}
            }
        }
    }

    /// The watch of subscription `id`'s queue armed for `at` came due: the messages whose TTL
    /// ended leave the queue, counted expired (as when they would have been taken to start),
    /// making room for publishers waiting for it.
    fn queue_watch_due(&mut self, id: SubId, at: u64, now: u64) {
        let Some(sub) = self.subs.get_mut(id.index, id.gen) else {
            return;
        };
        let Kind::Plain(q) = &mut sub.kind else {
            return;
        };
        if q.watch() != Some(at) {
            return;
        }
        let (expired, next) = q.expire(now);
        if let Some(next) = next {
            arm(
                &mut self.watches,
                next,
                Timer::QueueExpiry(id.index, id.gen),
            );
        }
        if expired > 0 {
            sub.counted().counters.expired += expired as u64;
            self.counters.expired += expired as u64;
            self.queued -= expired;
            if sub.overflow == Overflow::Wait {
                self.room_changed();
            }
        }
    }

    /// The TTL of `job`, waiting in group `gid`, ended: it expires if nothing claims it.
    fn watch_due(&mut self, gid: SubId, job: JobRef, now: u64) {
        if self.closed {
            return;
        }
        if let Some(Sub {
            kind: Kind::Group(wq),
            ..
        }) = self.subs.get_mut(gid.index, gid.gen)
        {
            if wq.member_count() == 0 {
                wq.expire(job, now);
                // Counts what expired and buries what died.
                self.dispatch_group(gid);
            }
        }
    }

    fn fire_due_timers(&mut self, now: u64) {
        while let Some(Reverse((due, _))) = self.timers.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, timer))) = self.timers.pop() else {
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
                        let job = JobRef { index: ji, gen: jg };
                        wq.retry_due(job);
                        self.watch_waiting(gid, &[job]);
                        self.dispatch_group(gid);
                    }
                }
                Timer::ClaimWait(index, gen) => self.dispatch_group(SubId { index, gen }),
                Timer::Expiry(index, gen, ji, jg) => {
                    self.watch_due(SubId { index, gen }, JobRef { index: ji, gen: jg }, now)
                }
                Timer::QueueExpiry(index, gen) => {
                    self.queue_watch_due(SubId { index, gen }, due, now)
                }
                Timer::Visible(seq) => self.make_visible(seq, now),
                Timer::Request(index, gen) => self.request_due(RequestId { index, gen }),
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

    pub(super) fn time_out(&mut self, delivery: DeliveryId, now: u64) {
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
    /// times out (and a dead letter carries): `not acknowledged within 50 ms` for a work-queue
    /// member, `handler did not settle within 50 ms` otherwise.
    pub fn timeout_message(&self, sub: SubId) -> String {
        let (ms, member) = self.subs.get(sub.index, sub.gen).map_or((0, false), |s| {
            (s.timeout().unwrap_or(0), matches!(s.kind, Kind::Member(_)))
        });
        let ms = crate::clock::Millis(ms);
        if member {
            format!("not acknowledged within {ms} ms")
        } else {
            format!("handler did not settle within {ms} ms")
        }
    }

    pub(super) fn is_sub_live(&self, id: SubId) -> bool {
        self.subs.get(id.index, id.gen).is_some_and(|s| s.live)
    }

    /// Takes the next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
