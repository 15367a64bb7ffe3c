//! Work queues: claiming, acknowledgement, dead letters, status.

use super::*;

impl<P: Clone> Broker<P> {
    /// Where the work-queue message with this id stands: delayed, in a group (pending, in
    /// flight, failed and waiting for a retry), or finished inside the retention window (done,
    /// dead, expired, dropped). With several groups holding it, `group` picks one; otherwise
    /// the first group (in creation order) that knows it answers.
    pub fn status(&self, id: &str, group: Option<&str>, now: u64) -> Option<JobStatus> {
        if group.is_none() && self.scheduled_ids.contains_key(id) {
            return Some(JobStatus {
                state: JobState::Delayed,
                attempts: self.delayed_attempts(id),
                group: None,
            });
        }
        let mut found: Option<(u64, JobStatus)> = None;
        for gid in self.groups.values().map(|&p| unpack(p)) {
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
                attempts: self.delayed_attempts(id),
                group: None,
            });
        }
        found.map(|(_, st)| st)
    }

    /// The attempts a delayed message was published with (made before it was published).
    fn delayed_attempts(&self, id: &str) -> u32 {
        self.scheduled_ids
            .get(id)
            .and_then(|seq| self.scheduled.get(seq))
            .map_or(0, |s| s.msg.attempts)
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
        let mut seqs: Vec<(u64, u64)> = self.scheduled.keys().map(|&s| (s, 0)).collect();
        crate::order::sort_pairs(&mut seqs);
        for (seq, _) in seqs {
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
                    topic_seq: 0,
                    attempt: 0,
                    prior: s.msg.attempts,
                    letter: None,
                    request: s.msg.request,
                },
                group: None,
                state: JobState::Delayed,
                attempts: s.msg.attempts,
            });
        }
        for gid in self.groups.values().map(|&p| unpack(p)) {
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
    pub(super) fn make_visible(&mut self, seq: u64, now: u64) {
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
    pub(super) fn schedule(&mut self, topic: Rc<str>, msg: Outgoing<P>, at: u64) -> Result<()> {
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
        arm(&mut self.timers, at, Timer::Visible(seq));
        Ok(())
    }

    /// Adds counts gathered by a driver that delivered directly (without the broker's queues):
    /// `delivered` immediate deliveries (latency zero) and `failed` of them, for `id`.
    pub fn record_direct(&mut self, id: SubId, delivered: u64, failed: u64) {
        self.counters.delivered += delivered;
        self.counters.failed += failed;
        self.direct_delivered += delivered;
        if let Some(sub) = self.subs.get_mut(id.index, id.gen) {
            if delivered > 0 || failed > 0 {
                let stats = sub.counted();
                stats.counters.delivered += delivered;
                stats.counters.failed += failed;
                stats.direct_delivered += delivered;
            }
        } else if let Some(r) = self.retired_of(id) {
            // Counted as for a live one (its final statistics cannot tell them apart).
            if delivered > 0 || failed > 0 {
                let c = r.counted();
                c.counters.delivered += delivered;
                c.counters.failed += failed;
                c.direct_delivered += delivered;
            }
        }
    }

    /// Counts `n` messages a driver did not hand to `id` because it unsubscribed in between
    /// (the subscription may be gone already: then only the broker's counter moves).
    pub fn record_cancelled(&mut self, id: SubId, n: u64) {
        self.counters.cancelled += n;
        if let Some(sub) = self.subs.get_mut(id.index, id.gen) {
            if n > 0 {
                sub.counted().counters.cancelled += n;
            }
        } else if let Some(r) = self.retired_of(id) {
            if n > 0 {
                r.counted().counters.cancelled += n;
            }
        }
    }

    /// The retired record of `id` not yet taken by the driver.
    pub(super) fn retired_of(&mut self, id: SubId) -> Option<&mut Retired> {
        self.retired
            .iter_mut()
            .find(|(r, _)| *r == id)
            .map(|(_, r)| r)
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
