//! Retained values and history: numbering and keeping the messages of tracked topics, replaying
//! them to new subscriptions, listing, clearing and restoring them (the rules are in
//! [`crate::logs`]).

use super::*;
use crate::logs::{Gap, LogInfo, LogStats, Replay, Restored, Retain};

impl<P: Clone> Broker<P> {
    /// Numbers and keeps `msg` when its topic is tracked (or `retain` makes it so).
    pub(super) fn log(&mut self, msg: &mut Message<P>, retain: Retain, now: u64) {
        if self.logs.record(msg, retain, now) {
            let topic = msg.topic.clone();
            self.tracking_changed(&topic);
        }
        self.untracked();
        if self.config.report_numbered && msg.topic_seq != 0 {
            self.numbered.push((msg.payload.clone(), msg.topic_seq));
        }
    }

    /// A topic gained or lost its retained value (and has no history): its messages go through
    /// the queues from now on, or may be delivered directly again. Its cached routes are stale.
    #[inline(never)]
    fn tracking_changed(&mut self, topic: &str) {
        if let Ok(pattern) = Pattern::parse(topic) {
            self.invalidate_routes(&pattern);
        }
    }

    /// Other topics the logs stopped tracking meanwhile (a retained value gone by its TTL or a
    /// bound): their cached routes are stale too. (A replay's expiry leaves them for the next
    /// publish, expiry pass, clear or restore.)
    #[inline(never)]
    fn untracked(&mut self) {
        for topic in self.logs.take_untracked() {
            self.tracking_changed(&topic);
        }
    }

    /// Numbers and keeps a message the driver delivers itself, directly (its route ready, as
    /// [`Broker::starts_now`] tells; the driver counts the publish with the direct ones). Returns
    /// its number on its topic, 0 when the topic is not tracked (nothing kept).
    pub fn log_direct(&mut self, handle: TopicHandle, out: Outgoing<P>, now: u64) -> Result<u64> {
        if self.closed {
            return Err(Error::closed("bus"));
        }
        let topic = self.entry(handle)?.topic.clone();
        if out.retain == Retain::No && !self.logs.is_active() {
            return Ok(0);
        }
        self.last_now = now;
        // Its place in publish order, which replays follow (the count of publishes is the
        // driver's, told with its direct ones).
        self.seq += 1;
        let retain = out.retain;
        let mut msg = Message::published(topic, out, now, self.seq);
        if self.logs.record(&mut msg, retain, now) {
            let topic = msg.topic.clone();
            self.tracking_changed(&topic);
        }
        self.untracked();
        Ok(msg.topic_seq)
    }

    /// Whether messages on `topic` are numbered and kept (a retained value, or history).
    pub fn is_tracked(&self, topic: &str) -> bool {
        self.logs.tracks(topic)
    }

    /// Whether messages on `handle`'s topic are numbered and kept (false for a stale handle).
    pub fn is_tracked_handle(&self, handle: TopicHandle) -> bool {
        self.logs.is_active() && self.entry(handle).is_ok_and(|e| self.logs.tracks(&e.topic))
    }

    /// Hands each message numbered since the last call to `f` with its number (only with
    /// `report_numbered`): a driver whose messages live outside the core learns them here.
    pub fn drain_numbered(&mut self, mut f: impl FnMut(&P, u64)) {
        for (p, seq) in self.numbered.drain(..) {
            f(&p, seq);
        }
    }

    /// Whether messages were numbered since [`Broker::drain_numbered`] last ran.
    pub fn has_numbered(&self) -> bool {
        !self.numbered.is_empty()
    }

    /// Tells the broker the time, for a call that takes none (a subscription's replay evicts
    /// history past its age limit first).
    pub fn note_time(&mut self, now: u64) {
        self.last_now = self.last_now.max(now);
    }

    /// Offers subscription `id` (just made) what `replay` asks for, before any live message,
    /// and queues the gaps for [`Broker::take_gap`].
    pub(super) fn replay_into(&mut self, id: SubId, pattern: &Pattern, replay: &Replay) {
        let now = self.last_now;
        let (messages, gaps) = self
            .logs
            .replay(pattern, replay, now, (usize::MAX, u64::MAX));
        self.logs.count_replay(messages.len(), gaps.len());
        for m in messages {
            self.offer(id, m, 0, now);
        }
        if !gaps.is_empty() {
            for gap in gaps {
                self.gaps.push_back((id, gap));
            }
            self.events.push_back(Event::Gap);
        }
    }

    /// The next gap a replay reported: the subscription it was for, and the gap.
    pub fn take_gap(&mut self) -> Option<(SubId, Gap)> {
        self.gaps.pop_front()
    }

    /// The retained values `pattern` matches, in publish order (`INVALID_PATTERN` for a bad pattern).
    pub fn retained(&mut self, pattern: &str) -> Result<Vec<Message<P>>> {
        let pattern = Pattern::parse(pattern)?;
        Ok(self.logs.retained(&pattern, self.last_now))
    }

    /// Clears `topic`'s retained value at `now`; whether there was one (not when its TTL ended:
    /// it is expired first, counted as such). `INVALID_TOPIC` for a bad topic.
    pub fn clear_retained(&mut self, topic: &str, now: u64) -> Result<bool> {
        validate_topic(topic)?;
        self.expire_logs(now);
        let (had, changed) = self.logs.clear_retained(topic);
        if changed {
            self.tracking_changed(topic);
        }
        self.untracked();
        Ok(had)
    }

    /// What `topic`'s log holds at `now` (what its TTLs and the age limit ended is removed
    /// first): its history's numbers, its last number, its retained value's.
    pub fn log_of(&mut self, topic: &str, now: u64) -> Option<LogInfo> {
        self.expire_logs(now);
        self.logs.log_of(topic)
    }

    /// What a new subscription on `pattern` asking for `replay` would be given first, without
    /// subscribing: for a driver whose subscribers are elsewhere (an edge hub answering another).
    /// `limit` (messages, payload bytes) keeps the newest messages that fit and reports the older
    /// ones as gaps (`(usize::MAX, u64::MAX)`: everything).
    pub fn replay(
        &mut self,
        pattern: &str,
        replay: &Replay,
        now: u64,
        limit: (usize, u64),
    ) -> Result<(Vec<Message<P>>, Vec<Gap>)> {
        let pattern = Pattern::parse(pattern)?;
        self.note_time(now);
        Ok(self.logs.replay(&pattern, replay, now, limit))
    }

    /// Puts one durable copy back (see [`Broker::restore_all`]).
    pub fn restore(
        &mut self,
        topic: &str,
        out: Option<Outgoing<P>>,
        seq: u64,
        published_at: u64,
        retained: bool,
    ) -> Result<()> {
        self.restore_all(vec![Restored {
            topic: topic.into(),
            out,
            seq,
            published_at,
            retained,
        }])
    }

    /// Puts durable copies back into the logs (a driver reloading what it stored), by publish
    /// time across topics, each topic's in the order given: each with its number on its topic
    /// and its publish time (not after the bus's time: a copy stamped later would outlive its
    /// age limit), as the retained value when `retained`, in the history when the topic has
    /// one; a copy without a message carries only its topic's numbering on. Every entry is
    /// checked before any is applied (a valid topic, a number from 1 to 2^50 above the topic's
    /// latest and the batch's earlier ones): a refused batch restores nothing (`INVALID_TOPIC`
    /// or `INVALID_ARGUMENT`, naming the entry).
    pub fn restore_all(&mut self, entries: Vec<Restored<P>>) -> Result<()> {
        if self.closed {
            return Err(Error::closed("bus"));
        }
        for (i, e) in entries.iter().enumerate() {
            validate_topic(&e.topic).map_err(|err| {
                let err = Error::from(err);
                Error::new(err.code(), format!("entries[{i}]: {}", err.message()))
            })?;
        }
        let order = self.logs.check_restore(&entries)?;
        let mut entries = entries;
        for (_, i) in order {
            let e = std::mem::replace(
                &mut entries[i as usize],
                Restored {
                    topic: String::new(),
                    out: None,
                    seq: 0,
                    published_at: 0,
                    retained: false,
                },
            );
            let published_at = e.published_at.min(self.last_now);
            let topic: Rc<str> = Rc::from(e.topic);
            // Restored messages take their places in publish order as they are put back.
            self.seq += 1;
            let order = self.seq;
            let msg = e
                .out
                .map(|out| Message::published(topic.clone(), out, published_at, order));
            if self.logs.restore(msg, topic.clone(), e.seq, e.retained) {
                self.tracking_changed(&topic);
            }
        }
        self.untracked();
        Ok(())
    }

    /// Removes what is past its TTL or the age limit at `now` (also done by every publish, replay
    /// and listing; a driver calls it before reading statistics).
    pub fn expire_logs(&mut self, now: u64) {
        self.note_time(now);
        self.logs.expire(now);
        self.untracked();
    }

    /// Has the logs list each topic whose log loses a message or its retained value (evicted,
    /// expired, replaced, cleared) or is forgotten, from now on (`false` stops it): a driver that
    /// mirrors the logs in storage learns what to trim there from
    /// [`Broker::take_log_changes`], without telling the causes apart itself.
    pub fn report_log_changes(&mut self, on: bool) {
        self.logs.report_changes(on);
    }

    /// The topics whose log lost something or was forgotten since the last call (with
    /// [`Broker::report_log_changes`]; empty without), oldest change first.
    pub fn take_log_changes(&mut self) -> Vec<Rc<str>> {
        self.logs.take_changes()
    }

    /// What retained values and history hold and counted.
    pub fn log_stats(&self) -> LogStats {
        self.logs.stats()
    }
}
