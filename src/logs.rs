//! Retained values and per-topic history: what a subscription that joins late is given before
//! live messages.
//!
//! A topic is *tracked* while it has a retained value or matches a history pattern. Every message
//! on a tracked topic takes the topic's next sequence number ([`Message::topic_seq`]): a topic's
//! numbers are consecutive from 1, and a topic whose log was forgotten numbers on from above
//! every number of the logs forgotten before, so it never reuses one. Its history keeps the latest messages
//! (a run of consecutive numbers, evicted oldest first), its retained value the last message
//! published with `retain`. A replay picks what a new subscription asked for and reports, as
//! [`Gap`]s, the numbers it asked for that the log no longer holds: a hole is never silent.
//!
//! Bounds: retained values by count and bytes (the least recently published goes first),
//! history by messages per topic, age, topics and bytes (the oldest message across topics goes
//! first); every eviction is counted. A topic whose log holds nothing keeps only its numbering
//! (a few bytes), so that a subscriber's position on it stays meaningful; past as many such
//! topics as the bounds allow, the oldest are forgotten.

use crate::error::{Error, Result};
use crate::message::Message;
use crate::slab::Slab;
use crate::topic::Pattern;
use hashbrown::HashMap;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::rc::Rc;

/// The highest number a message may be restored with (2^50): numbers above stay exact in
/// JavaScript however they cross the boundary.
pub const MAX_SEQ: u64 = 1 << 50;

/// Logs holding nothing (only their numbering) kept at most, whatever the bounds: past it the
/// oldest are forgotten.
const MAX_EMPTY: usize = 65_536;

/// Bounds of retained values and history, and which topics have history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Most topics with a retained value (default 10,000).
    pub retain_max_topics: usize,
    /// Most bytes of retained values, as sized by the publisher (default 8 MiB).
    pub retain_max_bytes: u64,
    /// Topics whose messages are kept in a history (none by default).
    pub history: Vec<Pattern>,
    /// Most messages kept per topic (default 100).
    pub history_max_messages: usize,
    /// Messages older than this (clock units) leave the history (default: no age limit).
    pub history_max_age: Option<u64>,
    /// Most topics with a history (default 10,000).
    pub history_max_topics: usize,
    /// Most bytes of history across topics (default 32 MiB).
    pub history_max_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            retain_max_topics: 10_000,
            retain_max_bytes: 8 << 20,
            history: Vec::new(),
            history_max_messages: 100,
            history_max_age: None,
            history_max_topics: 10_000,
            history_max_bytes: 32 << 20,
        }
    }
}

impl LogConfig {
    /// `INVALID_OPTION` naming the first setting out of range.
    pub fn validate(&self) -> Result<()> {
        let at_least_one = [
            (self.retain_max_topics, "retain.maxTopics"),
            (self.history_max_messages, "history.maxMessages"),
            (self.history_max_topics, "history.maxTopics"),
        ];
        for (value, name) in at_least_one {
            if value == 0 {
                return Err(Error::invalid_option(name, "must be at least 1"));
            }
        }
        if self.history_max_age == Some(0) {
            return Err(Error::invalid_option(
                "history.maxAgeMs",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Where a new subscription's replay starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The retained values its pattern matches.
    Retained,
    /// Up to this many of the latest messages of each topic it matches.
    Last(u64),
    /// The messages after a position, per topic.
    Since {
        /// Per-topic positions: messages numbered above them.
        topics: Vec<(String, u64)>,
        /// For a topic not in `topics`: messages numbered above this.
        seq: Option<u64>,
        /// For a topic in neither: messages published at or after this time (clock units).
        time: Option<u64>,
    },
}

/// Numbers of a topic that a replay asked for and the log no longer holds (evicted, expired, or
/// never kept because the topic has no history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The topic.
    pub topic: Rc<str>,
    /// The first number missed; `None` when only the last is known (a replay by time).
    pub from: Option<u64>,
    /// The last number missed.
    pub to: u64,
}

/// A durable copy of a message a driver puts back ([`crate::Broker::restore_all`]).
#[derive(Debug)]
pub struct Restored<P> {
    /// Its topic.
    pub topic: String,
    /// The message as it was published; `None` carries only the topic's numbering on.
    pub out: Option<crate::message::Outgoing<P>>,
    /// Its number on its topic.
    pub seq: u64,
    /// When it was published (bus-clock microseconds).
    pub published_at: u64,
    /// Whether it is its topic's retained value.
    pub retained: bool,
}

/// What the log of one topic holds ([`TopicLogs::log_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogInfo {
    /// The number of the oldest message in its history (`last + 1` when it holds none).
    pub first: u64,
    /// The number given last on the topic.
    pub last: u64,
    /// The number of its retained value, if any.
    pub retained: Option<u64>,
    /// Messages in its history.
    pub held: usize,
}

/// What retained values and history counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStats {
    /// Topics with a log (a retained value, a history, or only their numbering).
    pub topics: u64,
    /// Retained values held.
    pub retained: u64,
    /// Messages held in histories.
    pub history: u64,
    /// Bytes of both.
    pub bytes: u64,
    /// Retained values and history messages evicted by a bound or the age limit.
    pub evicted: u64,
    /// Retained values and history messages whose TTL ended.
    pub expired: u64,
    /// Messages handed to new subscriptions by a replay.
    pub replayed: u64,
    /// Gaps reported by replays.
    pub gaps: u64,
}

/// What publishing with `retain` does to the topic's retained value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Retain {
    /// Nothing (a plain publish).
    #[default]
    No,
    /// The message becomes the retained value.
    Keep,
    /// The retained value is cleared (the message itself is still delivered).
    Clear,
}

#[derive(Debug)]
struct Log<P> {
    topic: Rc<str>,
    history_on: bool,
    /// Numbers up to this one were given before the log opened (to other topics, or to this
    /// one in a log since forgotten).
    base: u64,
    /// The number given last (`base` before the first).
    last: u64,
    retained: Option<Message<P>>,
    history: VecDeque<Message<P>>,
    /// The newest message numbered and no longer held (or never held): its number and
    /// publish time.
    lost: Option<(u64, u64)>,
    /// Queued in `empty` (it held nothing when it last did).
    listed_empty: bool,
    /// Listed in `changes` (it lost something since the driver last asked).
    listed_changed: bool,
}

impl<P> Log<P> {
    fn is_empty(&self) -> bool {
        self.retained.is_none() && self.history.is_empty()
    }

    fn tracked(&self) -> bool {
        self.history_on || self.retained.is_some()
    }

    fn lose(&mut self, m: &Message<P>) {
        let at = m.published_at.unwrap_or(0);
        if self.lost.is_none_or(|(seq, _)| m.topic_seq > seq) {
            self.lost = Some((m.topic_seq, at));
        }
    }

    /// Lists the log in `changes` (when they are reported) as having lost something: a message
    /// or its retained value.
    #[inline(never)]
    fn changed(&mut self, changes: &mut Option<Vec<Rc<str>>>) {
        if let Some(list) = changes {
            if !self.listed_changed {
                self.listed_changed = true;
                list.push(self.topic.clone());
            }
        }
    }

    /// Whether `seq` is still held (in the history or as the retained value).
    fn holds(&self, seq: u64) -> bool {
        self.retained.as_ref().is_some_and(|r| r.topic_seq == seq) || self.in_history(seq)
    }

    /// Whether `seq` is in the history (numbers rise along it; one expired by its TTL may be
    /// missing from the middle).
    fn in_history(&self, seq: u64) -> bool {
        self.history
            .binary_search_by_key(&seq, |m| m.topic_seq)
            .is_ok()
    }
}

/// A place in an eviction order: (log index, log generation, number).
type Place = (u32, u32, u64);

/// The retained values and histories of a broker's topics.
#[derive(Debug)]
pub struct TopicLogs<P> {
    config: LogConfig,
    logs: Slab<Log<P>>,
    /// Topic → its log, packed (index << 32 | gen): the same map type as the broker's topic
    /// table, whose code the WebAssembly module then holds once.
    ids: HashMap<Rc<str>, u64>,
    /// History messages in publish order (entries of evicted ones are skipped when reached,
    /// and compacted away when they outnumber the live ones).
    history_order: VecDeque<Place>,
    retained_order: VecDeque<Place>,
    /// Logs that held nothing when last looked at, oldest first (checked again when reached).
    empty: VecDeque<(u32, u32)>,
    /// The highest number of the logs forgotten (and of those restored): a new log numbers on
    /// from here, so a topic forgotten and published again never reuses a number.
    floor: u64,
    retained: usize,
    retained_bytes: u64,
    history_len: usize,
    history_bytes: u64,
    history_topics: usize,
    /// TTLs of the messages held: (when, log packed, number), soonest first.
    ttls: BinaryHeap<Reverse<(u64, u64, u64)>>,
    counted: LogStats,
    /// Topics whose log stopped being tracked since the last [`TopicLogs::take_untracked`] (a
    /// retained value gone by its TTL or a bound, on a topic without history).
    untracked: Vec<Rc<str>>,
    /// Topics whose log lost a message or its retained value, or was forgotten, since the last
    /// [`TopicLogs::take_changes`]; `None` unless reported (see [`TopicLogs::report_changes`]).
    changes: Option<Vec<Rc<str>>>,
}

/// The log's place in `ids`.
fn pack(index: u32, gen: u32) -> u64 {
    (u64::from(index) << 32) | u64::from(gen)
}

impl<P: Clone> TopicLogs<P> {
    /// Logs bounded by `config` (validated by the caller).
    pub fn new(config: LogConfig) -> Self {
        TopicLogs {
            config,
            logs: Slab::new(),
            ids: HashMap::new(),
            history_order: VecDeque::new(),
            retained_order: VecDeque::new(),
            empty: VecDeque::new(),
            floor: 0,
            retained: 0,
            retained_bytes: 0,
            history_len: 0,
            history_bytes: 0,
            history_topics: 0,
            ttls: BinaryHeap::new(),
            untracked: Vec::new(),
            changes: None,
            counted: LogStats::default(),
        }
    }

    /// Has the logs list, from now on, each topic whose log loses a message or its retained
    /// value (evicted, expired, replaced, cleared) or is forgotten, for a driver that mirrors
    /// them in storage ([`TopicLogs::take_changes`]); `false` stops it.
    pub fn report_changes(&mut self, on: bool) {
        if on == self.changes.is_some() {
            return;
        }
        if on {
            self.changes = Some(Vec::new());
        } else {
            self.take_changes();
            self.changes = None;
        }
    }

    /// The topics listed since the last call (see [`TopicLogs::report_changes`]), oldest change
    /// first, each once (but for a topic forgotten and then opened again meanwhile, which may be
    /// listed twice).
    pub fn take_changes(&mut self) -> Vec<Rc<str>> {
        let Some(list) = self.changes.as_mut() else {
            return Vec::new();
        };
        let list = std::mem::take(list);
        for topic in &list {
            if let Some((i, g)) = self.find(topic) {
                if let Some(log) = self.logs.get_mut(i, g) {
                    log.listed_changed = false;
                }
            }
        }
        list
    }

    /// Whether any topic may be tracked: history patterns, or retained values held.
    #[inline(always)]
    pub fn is_active(&self) -> bool {
        self.retained > 0 || !self.config.history.is_empty()
    }

    fn has_history(&self, topic: &str) -> bool {
        self.config.history.iter().any(|p| p.matches(topic))
    }

    fn find(&self, topic: &str) -> Option<(u32, u32)> {
        self.ids.get(topic).map(|&p| ((p >> 32) as u32, p as u32))
    }

    /// Whether messages on `topic` are numbered and kept.
    pub fn tracks(&self, topic: &str) -> bool {
        if !self.is_active() {
            return false;
        }
        match self.find(topic) {
            Some((i, g)) => self.logs.get(i, g).is_some_and(Log::tracked),
            None => self.has_history(topic),
        }
    }

    /// Numbers and keeps `msg` (published now on its topic, not a request) when its topic is
    /// tracked, or when `retain` makes it so. Returns whether the topic's tracking changed (a
    /// retained value appeared or went on a topic without history): the broker's routes of it
    /// are stale.
    pub fn record(&mut self, msg: &mut Message<P>, retain: Retain, now: u64) -> bool {
        // A request is for the responders subscribed when it is made (its answers are over by
        // the time anyone could replay it): neither numbered nor kept.
        if msg.request.is_some() || (!self.is_active() && retain != Retain::Keep) {
            return false;
        }
        self.expire(now);
        let (i, g) = match self.find(&msg.topic) {
            Some(at) => at,
            None => {
                let history_on = self.has_history(&msg.topic);
                if !history_on && retain != Retain::Keep {
                    return false;
                }
                self.open(msg.topic.clone(), history_on, self.floor)
            }
        };
        let log = self.logs.get_mut(i, g).expect("found in ids");
        let was_tracked = log.tracked();
        if !was_tracked && retain != Retain::Keep {
            return false;
        }
        self.keep(msg, retain, (i, g));
        if retain == Retain::Clear {
            self.take_retained(i, g);
        }
        let changed = self
            .logs
            .get(i, g)
            .is_some_and(|l| l.tracked() != was_tracked);
        self.bound();
        self.compact();
        changed
    }

    /// Numbers `msg` with log `(i, g)`'s next number and keeps it: in the history when the
    /// topic has one, as the retained value when `retain` says so.
    fn keep(&mut self, msg: &mut Message<P>, retain: Retain, (i, g): (u32, u32)) {
        let max_messages = self.config.history_max_messages;
        let Some(log) = self.logs.get_mut(i, g) else {
            return;
        };
        log.last += 1;
        let seq = log.last;
        msg.topic_seq = seq;
        let size = msg.size;
        let mut held = false;
        if let Some(at) = msg.expires_at {
            if log.history_on || retain == Retain::Keep {
                self.ttls.push(Reverse((at, pack(i, g), seq)));
            }
        }
        if log.history_on {
            if log.history.is_empty() {
                self.history_topics += 1;
            }
            log.history.push_back(msg.clone());
            self.history_len += 1;
            self.history_bytes += size;
            self.history_order.push_back((i, g, seq));
            held = true;
            if log.history.len() > max_messages {
                let old = log.history.pop_front().expect("over the bound");
                self.history_len -= 1;
                self.history_bytes -= old.size;
                self.counted.evicted += 1;
                if !log.holds(old.topic_seq) {
                    log.lose(&old);
                }
                log.changed(&mut self.changes);
            }
        }
        if retain == Retain::Keep {
            if let Some(old) = log.retained.replace(msg.clone()) {
                self.retained_bytes -= old.size;
                if !log.holds(old.topic_seq) {
                    log.lose(&old);
                }
                log.changed(&mut self.changes);
            } else {
                self.retained += 1;
            }
            self.retained_bytes += size;
            self.retained_order.push_back((i, g, seq));
            held = true;
        }
        if !held {
            log.lose(msg);
        }
    }

    /// Takes log `(i, g)`'s retained value away (not counted as an eviction); whether it had one.
    fn take_retained(&mut self, i: u32, g: u32) -> bool {
        self.unretain(i, g, None)
    }

    /// Takes log `(i, g)`'s retained value away (only when it is number `seq`, if given): counts
    /// it out, loses it unless the history still holds it, and settles the log. Whether it did.
    fn unretain(&mut self, i: u32, g: u32, seq: Option<u64>) -> bool {
        let Some(log) = self.logs.get_mut(i, g) else {
            return false;
        };
        if log
            .retained
            .as_ref()
            .is_none_or(|r| seq.is_some_and(|n| r.topic_seq != n))
        {
            return false;
        }
        let old = log.retained.take().expect("checked");
        self.retained -= 1;
        self.retained_bytes -= old.size;
        if !log.holds(old.topic_seq) {
            log.lose(&old);
        }
        log.changed(&mut self.changes);
        if !log.tracked() {
            self.untracked.push(log.topic.clone());
        }
        self.settle(i, g);
        true
    }

    /// The topics whose log stopped being tracked since the last call (their messages may be
    /// delivered directly again: the broker's routes of them are stale).
    pub fn take_untracked(&mut self) -> Vec<Rc<str>> {
        std::mem::take(&mut self.untracked)
    }

    /// Opens the log of `topic`, numbering on from `base`.
    fn open(&mut self, topic: Rc<str>, history_on: bool, base: u64) -> (u32, u32) {
        let (i, g) = self.logs.insert(
            Log {
                topic: topic.clone(),
                history_on,
                base,
                last: base,
                retained: None,
                history: VecDeque::new(),
                lost: None,
                listed_empty: false,
                listed_changed: false,
            },
            None,
        );
        self.ids.insert(topic, pack(i, g));
        self.forget_past_bound();
        (i, g)
    }

    /// Removes what is past its TTL and history messages past the age limit.
    pub fn expire(&mut self, now: u64) {
        while let Some(&Reverse((at, packed, seq))) = self.ttls.peek() {
            if at > now {
                break;
            }
            self.ttls.pop();
            self.drop_expired((packed >> 32) as u32, packed as u32, seq);
        }
        let Some(age) = self.config.history_max_age else {
            return;
        };
        while let Some(&(i, g, seq)) = self.history_order.front() {
            let at = self
                .logs
                .get(i, g)
                .and_then(|l| l.history.front())
                .filter(|m| m.topic_seq == seq)
                .map(|m| m.published_at.unwrap_or(0));
            match at {
                Some(at) if now.saturating_sub(at) < age => break,
                Some(_) => {
                    self.evict_oldest();
                }
                None => {
                    self.history_order.pop_front();
                }
            }
        }
    }

    /// Removes message `seq` of log `(i, g)`, whose TTL ended, wherever it is still held.
    fn drop_expired(&mut self, i: u32, g: u32, seq: u64) {
        let Some(log) = self.logs.get_mut(i, g) else {
            return;
        };
        let mut gone = None;
        if log.retained.as_ref().is_some_and(|r| r.topic_seq == seq) {
            let old = log.retained.take().expect("checked");
            self.retained -= 1;
            self.retained_bytes -= old.size;
            gone = Some(old);
            if !log.tracked() {
                self.untracked.push(log.topic.clone());
            }
        }
        if let Ok(at) = log.history.binary_search_by_key(&seq, |m| m.topic_seq) {
            let old = log.history.remove(at).expect("found");
            self.history_len -= 1;
            self.history_bytes -= old.size;
            if log.history.is_empty() {
                self.history_topics -= 1;
            }
            gone = Some(old);
        }
        if let Some(old) = gone {
            self.counted.expired += 1;
            log.lose(&old);
            log.changed(&mut self.changes);
            self.settle(i, g);
        }
    }

    /// Evicts until every bound holds.
    fn bound(&mut self) {
        while self.history_bytes > self.config.history_max_bytes
            || self.history_topics > self.config.history_max_topics
        {
            if !self.evict_oldest() {
                break;
            }
        }
        while self.retained > self.config.retain_max_topics
            || self.retained_bytes > self.config.retain_max_bytes
        {
            let Some((i, g, seq)) = self.retained_order.pop_front() else {
                break;
            };
            if self.unretain(i, g, Some(seq)) {
                self.counted.evicted += 1;
            }
        }
    }

    /// Evicts the oldest history message across topics; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((i, g, seq)) = self.history_order.pop_front() {
            let Some(log) = self.logs.get_mut(i, g) else {
                continue;
            };
            if log.history.front().is_none_or(|m| m.topic_seq != seq) {
                continue;
            }
            let old = log.history.pop_front().expect("checked");
            self.history_len -= 1;
            self.history_bytes -= old.size;
            self.counted.evicted += 1;
            if log.history.is_empty() {
                self.history_topics -= 1;
            }
            if !log.holds(old.topic_seq) {
                log.lose(&old);
            }
            log.changed(&mut self.changes);
            self.settle(i, g);
            return true;
        }
        false
    }

    /// Lists log `(i, g)` as empty when it holds nothing, and forgets the oldest empty logs
    /// past the bound.
    fn settle(&mut self, i: u32, g: u32) {
        if let Some(log) = self.logs.get_mut(i, g) {
            if log.is_empty() && !log.listed_empty {
                log.listed_empty = true;
                self.empty.push_back((i, g));
            }
        }
        self.forget_past_bound();
    }

    /// Forgets the oldest logs that hold nothing while there are more logs than the bounds
    /// allow topics.
    fn forget_past_bound(&mut self) {
        let most = self
            .config
            .retain_max_topics
            .saturating_add(self.config.history_max_topics);
        while self.logs.len() > most || self.empty.len() > MAX_EMPTY {
            let Some((i, g)) = self.empty.pop_front() else {
                break;
            };
            let Some(log) = self.logs.get_mut(i, g) else {
                continue;
            };
            log.listed_empty = false;
            if log.is_empty() {
                let mut log = self.logs.remove(i, g).expect("present");
                self.ids.remove(&log.topic);
                log.changed(&mut self.changes);
                // A topic that comes back numbers on from above every number it had.
                self.floor = self.floor.max(log.last);
            }
        }
    }

    /// Drops the entries of evicted messages from the eviction orders once they outnumber the
    /// live ones, so the orders stay within twice what is held.
    fn compact(&mut self) {
        if self.history_order.len() > 2 * self.history_len + 64 {
            let logs = &self.logs;
            self.history_order
                .retain(|&(i, g, seq)| logs.get(i, g).is_some_and(|l| l.in_history(seq)));
        }
        if self.retained_order.len() > 2 * self.retained + 64 {
            let logs = &self.logs;
            self.retained_order.retain(|&(i, g, seq)| {
                logs.get(i, g)
                    .and_then(|l| l.retained.as_ref())
                    .is_some_and(|r| r.topic_seq == seq)
            });
        }
    }

    /// Clears `topic`'s retained value. Returns (whether there was one, whether the topic's
    /// tracking changed).
    pub fn clear_retained(&mut self, topic: &str) -> (bool, bool) {
        let Some((i, g)) = self.find(topic) else {
            return (false, false);
        };
        let was_tracked = self.logs.get(i, g).is_some_and(Log::tracked);
        let had = self.take_retained(i, g);
        let tracked = self.logs.get(i, g).is_some_and(Log::tracked);
        (had, was_tracked != tracked)
    }

    /// The retained values `pattern` matches, in publish order.
    pub fn retained(&self, pattern: &Pattern, now: u64) -> Vec<Message<P>> {
        let out: Vec<Message<P>> = self
            .logs
            .iter()
            .filter_map(|(_, _, l)| l.retained.as_ref())
            .filter(|m| !m.is_expired(now) && pattern.matches(&m.topic))
            .cloned()
            .collect();
        in_publish_order(out)
    }

    /// What `topic`'s log holds.
    pub fn log_of(&self, topic: &str) -> Option<LogInfo> {
        let (i, g) = self.find(topic)?;
        let log = self.logs.get(i, g)?;
        Some(LogInfo {
            first: log.history.front().map_or(log.last + 1, |m| m.topic_seq),
            last: log.last,
            retained: log.retained.as_ref().map(|m| m.topic_seq),
            held: log.history.len(),
        })
    }

    /// The messages and gaps a new subscription on `pattern` asking for `replay` is given first:
    /// the messages in publish order across topics. `limit` (messages, payload bytes) keeps the
    /// newest that fit; the older ones left out are reported as gaps, one per topic.
    pub fn replay(
        &mut self,
        pattern: &Pattern,
        replay: &Replay,
        now: u64,
        limit: (usize, u64),
    ) -> (Vec<Message<P>>, Vec<Gap>) {
        self.expire(now);
        let mut messages = Vec::new();
        let mut gaps = Vec::new();
        // Per-topic positions by topic (a subscriber may name many): one look-up per log. The
        // same map type as `ids`, whose code the WebAssembly module then holds once.
        let positions: HashMap<Rc<str>, u64> = match replay {
            Replay::Since { topics, .. } => topics
                .iter()
                .map(|(t, n)| (Rc::from(t.as_str()), *n))
                .collect(),
            _ => HashMap::new(),
        };
        for (_, _, log) in self.logs.iter() {
            if !pattern.matches(&log.topic) {
                continue;
            }
            let held = held(log, now, self.config.history_max_age);
            match replay {
                Replay::Retained => {
                    if let Some(r) = log.retained.as_ref().filter(|m| !m.is_expired(now)) {
                        messages.push(r.clone());
                    }
                }
                Replay::Last(n) => {
                    // Not before the log's first number: nothing older was asked for by position.
                    let after = log.last.saturating_sub(*n).max(log.base);
                    after_seq(log, &held, after, &mut messages, &mut gaps);
                }
                Replay::Since { seq, time, .. } => {
                    match (positions.get(&*log.topic).copied().or(*seq), time) {
                        (Some(after), _) => after_seq(log, &held, after, &mut messages, &mut gaps),
                        (None, Some(t)) => {
                            messages.extend(
                                held.iter()
                                    .filter(|m| m.published_at.unwrap_or(0) >= *t)
                                    .map(|m| (*m).clone()),
                            );
                            if let Some((seq, at)) = log.lost {
                                if at >= *t {
                                    gaps.push(Gap {
                                        topic: log.topic.clone(),
                                        from: None,
                                        to: seq,
                                    });
                                }
                            }
                        }
                        (None, None) => after_seq(log, &held, 0, &mut messages, &mut gaps),
                    }
                }
            }
        }
        let mut messages = in_publish_order(messages);
        cut_to(&mut messages, &mut gaps, limit);
        (messages, gaps)
    }

    /// Checks that copies to restore (in order) number each topic on: from 1 to 2^50, above the
    /// topic's latest number and the earlier copies' (`INVALID_ARGUMENT`, naming the entry).
    /// Returns the order to put them back in, as `(time, index)` pairs: by publish time across
    /// topics (so that replays across topics, and eviction across topics, follow the order they
    /// were published in), each topic's copies in the order given (a copy stamped earlier than its
    /// topic's previous one goes with it).
    pub fn check_restore(&self, entries: &[Restored<P>]) -> Result<Vec<(u64, u64)>> {
        // Each topic's latest entry so far; the same map type as `ids` (its code is then in the
        // WebAssembly module once).
        let mut latest: HashMap<Rc<str>, u64> = HashMap::new();
        // (time, index) of each entry: its publish time, or its topic's previous entry's if later.
        let mut order: Vec<(u64, u64)> = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if e.seq == 0 || e.seq > MAX_SEQ {
                return Err(Error::new(
                    crate::error::ErrorCode::InvalidArgument,
                    format!(
                        "entries[{i}]: a restored message's number must be from 1 to 2^50, got {}",
                        e.seq
                    ),
                ));
            }
            let prev = latest.get(e.topic.as_str()).map(|&j| j as usize);
            let before = match prev {
                Some(j) => entries[j].seq,
                None => self
                    .find(&e.topic)
                    .and_then(|(i, g)| self.logs.get(i, g))
                    .map_or(0, |l| l.last),
            };
            if e.seq <= before {
                return Err(Error::new(
                    crate::error::ErrorCode::InvalidArgument,
                    format!(
                        "entries[{i}]: number {} on `{}` is not after {before}: restore each topic's messages in order",
                        e.seq, e.topic
                    ),
                ));
            }
            let at = prev.map_or(e.published_at, |j| e.published_at.max(order[j].0));
            order.push((at, i as u64));
            latest.insert(Rc::from(e.topic.as_str()), i as u64);
        }
        // By time, equal times in the order given.
        crate::order::sort_pairs(&mut order);
        Ok(order)
    }

    /// Puts back a message numbered `seq` on its topic (a durable copy reloaded by a driver,
    /// checked by [`TopicLogs::check_restore`]): as the retained value when `retained`, in the
    /// history when the topic has one. A message without a payload (`None`) only carries the
    /// numbering on. Returns whether the topic's tracking changed.
    pub fn restore(
        &mut self,
        msg: Option<Message<P>>,
        topic: Rc<str>,
        seq: u64,
        retained: bool,
    ) -> bool {
        let (i, g) = match self.find(&topic) {
            Some(at) => at,
            None => {
                // Its numbers before `seq` were its own: missed, unless restored next.
                let history_on = self.has_history(&topic);
                self.open(topic.clone(), history_on, 0)
            }
        };
        let log = self.logs.get_mut(i, g).expect("found in ids");
        debug_assert!(seq > log.last, "checked by check_restore");
        let was_tracked = log.tracked();
        if log.last + 1 < seq {
            // Numbers between were given and are not restored: missed.
            log.lost = Some((seq - 1, log.lost.map_or(0, |(_, at)| at)));
        }
        log.last = seq - 1;
        match msg {
            Some(mut msg) => {
                let retain = if retained { Retain::Keep } else { Retain::No };
                self.keep(&mut msg, retain, (i, g));
            }
            None => {
                log.last = seq;
                self.floor = self.floor.max(seq);
            }
        }
        self.settle(i, g);
        self.bound();
        self.compact();
        let tracked = self.logs.get(i, g).is_some_and(Log::tracked);
        was_tracked != tracked
    }

    /// Counts a replay made to a new subscription: its messages and gaps.
    pub fn count_replay(&mut self, messages: usize, gaps: usize) {
        self.counted.replayed += messages as u64;
        self.counted.gaps += gaps as u64;
    }

    /// What they hold and counted.
    pub fn stats(&self) -> LogStats {
        LogStats {
            topics: self.logs.len() as u64,
            retained: self.retained as u64,
            history: self.history_len as u64,
            bytes: self.retained_bytes + self.history_bytes,
            ..self.counted
        }
    }
}

/// `messages` in publish order (by the crate's one sort routine: see [`crate::order`]).
fn in_publish_order<P>(messages: Vec<Message<P>>) -> Vec<Message<P>> {
    let mut keys: Vec<(u64, u64)> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.seq, i as u64))
        .collect();
    crate::order::sort_pairs(&mut keys);
    let mut slots: Vec<Option<Message<P>>> = messages.into_iter().map(Some).collect();
    keys.iter()
        .filter_map(|&(_, i)| slots[i as usize].take())
        .collect()
}

/// The messages `log` holds (retained value and history, within their TTL and the age limit),
/// by number.
fn held<P>(log: &Log<P>, now: u64, max_age: Option<u64>) -> Vec<&Message<P>> {
    // (A restored message may be older than one kept before it: its age is checked here too,
    // not only when the oldest are evicted.)
    let young = |m: &&Message<P>| {
        max_age.is_none_or(|a| now.saturating_sub(m.published_at.unwrap_or(0)) < a)
    };
    let mut out: Vec<&Message<P>> = log
        .history
        .iter()
        .filter(|m| !m.is_expired(now))
        .filter(young)
        .collect();
    if let Some(r) = log.retained.as_ref().filter(|m| !m.is_expired(now)) {
        if !log.history.iter().any(|m| m.topic_seq == r.topic_seq) {
            let at = out.partition_point(|m| m.topic_seq < r.topic_seq);
            out.insert(at, r);
        }
    }
    out
}

/// Keeps the newest of `messages` (in publish order) within `limit` (a count, payload bytes).
/// What is left out of a topic is its oldest messages: they are reported as one gap, from the
/// first left out (or the start of an earlier gap of the topic) to the last left out, which takes
/// in every gap of the topic before it (a gap of a replay by time, whose start is unknown, makes
/// the start of the merged one unknown too; a later one of unknown start takes the range in).
/// Gaps after it, between messages kept, stay.
fn cut_to<P>(messages: &mut Vec<Message<P>>, gaps: &mut Vec<Gap>, (count, bytes): (usize, u64)) {
    let mut kept = 0;
    let mut size = 0u64;
    for m in messages.iter().rev() {
        if kept == count || size.saturating_add(m.size) > bytes {
            break;
        }
        kept += 1;
        size = size.saturating_add(m.size);
    }
    let cut = messages.len() - kept;
    if cut == 0 {
        return;
    }
    // Each topic's range left out, by topic; the same map type as `ids`.
    let mut at: HashMap<Rc<str>, u64> = HashMap::new();
    let mut ranges: Vec<Gap> = Vec::new();
    for m in messages.drain(..cut) {
        match at.get(&m.topic) {
            Some(&i) => ranges[i as usize].to = m.topic_seq,
            None => {
                at.insert(m.topic.clone(), ranges.len() as u64);
                ranges.push(Gap {
                    topic: m.topic.clone(),
                    from: Some(m.topic_seq),
                    to: m.topic_seq,
                });
            }
        }
    }
    // The topic's gaps up to its last message left out go into its range.
    gaps.retain(|g| {
        let Some(&i) = at.get(&g.topic) else {
            return true;
        };
        let r = &mut ranges[i as usize];
        if g.to > r.to {
            return true;
        }
        r.from = match (g.from, r.from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        false
    });
    // A later gap of unknown start (a replay by time: "up to n") already takes the range in.
    for g in gaps.iter().filter(|g| g.from.is_none()) {
        if let Some(&i) = at.get(&g.topic) {
            ranges[i as usize].to = 0;
        }
    }
    gaps.extend(ranges.into_iter().filter(|r| r.to > 0));
}

/// The messages of `log` numbered above `after`, and a gap for each run of numbers in
/// `(after, last]` not held.
fn after_seq<P: Clone>(
    log: &Log<P>,
    held: &[&Message<P>],
    after: u64,
    messages: &mut Vec<Message<P>>,
    gaps: &mut Vec<Gap>,
) {
    // From a subscriber's position on the topic, every later number it did not get is missed
    // (those up to the log's base too: the topic's, in a log forgotten since). Without one (0),
    // from the log's first number.
    let mut next = if after == 0 { log.base } else { after }.saturating_add(1);
    for m in held.iter().filter(|m| m.topic_seq > after) {
        if m.topic_seq > next {
            gaps.push(Gap {
                topic: log.topic.clone(),
                from: Some(next),
                to: m.topic_seq - 1,
            });
        }
        next = m.topic_seq + 1;
        messages.push((*m).clone());
    }
    if next <= log.last {
        gaps.push(Gap {
            topic: log.topic.clone(),
            from: Some(next),
            to: log.last,
        });
    }
}
