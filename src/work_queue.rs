//! Work queues: subscriptions that name the same group and pattern are the members of one work
//! queue, and each message goes to exactly one member.
//!
//! A [`WorkQueue`] holds the group's jobs and decides who gets what; the broker owns the timers
//! and the deliveries. A job is *ready* (waiting for a member), *parked* (behind an earlier job
//! with the same key), *in flight* (claimed by a member), or *retrying* (failed, waiting for its
//! backoff). Ready jobs are claimed highest priority first, in publish order within a priority,
//! round-robin among members with free capacity. Jobs sharing a key are claimed one at a time, in
//! publish order, across every member and every retry: the next one waits until the previous one
//! is done or dead.
//!
//! A handler that returns acknowledges its job(s). One that fails (or misses its ack deadline)
//! sends each job back with exponential backoff plus jitter, until `max_attempts`; then the job is
//! dead and handed to the driver to publish on `$dead.<group>` (the [`DeadLetter`] is built here,
//! once, for every driver). A job whose TTL ends before its retry could run is dead at once. Jobs
//! that failed in a batch member's claim are retried on their own, never with fresh messages, so
//! one poison message does not hold back the others.

use crate::batch::exponential_backoff;
use crate::error::{Error, ErrorCode, Result};
use crate::message::Message;
use crate::slab::Slab;
use crate::topic::validate_topic;
use hashbrown::HashMap;
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;

/// Retry policy of a work queue. Times are in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per message before it goes to `$dead.<group>` (default 5; 1 means no retry).
    pub max_attempts: u32,
    /// Base delay before the first retry (default 100 ms); doubles on each further retry.
    pub backoff_initial: u64,
    /// Longest base delay between retries (default 30 s).
    pub backoff_max: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            backoff_initial: 100_000,
            backoff_max: 30_000_000,
        }
    }
}

impl RetryPolicy {
    /// Checks every setting is in range.
    pub fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(Error::invalid_option("maxAttempts", "must be at least 1"));
        }
        if self.backoff_max < self.backoff_initial {
            return Err(Error::invalid_option(
                "backoff.maxMs",
                "must not be below backoff.initialMs",
            ));
        }
        Ok(())
    }

    /// The base delay after failed attempt number `attempt` (1 for the first failure):
    /// `initial * 2^(attempt-1)`, capped at `max`. The jittered delay lies in `[base/2, base]`.
    pub fn backoff(&self, attempt: u32) -> u64 {
        exponential_backoff(self.backoff_initial, self.backoff_max, attempt)
    }
}

/// Where a message of a work queue stands, as [`crate::Broker::status`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for a member (or behind an earlier message with the same key).
    Pending,
    /// Published with a `not_before` still in the future.
    Delayed,
    /// Claimed by a member, not settled yet.
    InFlight,
    /// Failed and waiting for its retry.
    Failed,
    /// Acknowledged.
    Done,
    /// Failed `max_attempts` times and published on `$dead.<group>`.
    Dead,
    /// Its TTL ended before a member claimed it (counted as expired).
    Expired,
    /// Dropped by the overflow policy, `dropOldest` or `dropNewest` (counted as dropped).
    Dropped,
}

impl JobState {
    /// The name JavaScript sees: `pending`, `delayed`, `in-flight`, `failed`, `done`, `dead`,
    /// `expired`, `dropped`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Delayed => "delayed",
            JobState::InFlight => "in-flight",
            JobState::Failed => "failed",
            JobState::Done => "done",
            JobState::Dead => "dead",
            JobState::Expired => "expired",
            JobState::Dropped => "dropped",
        }
    }
}

/// The status of one message id in a work queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// Where it stands.
    pub state: JobState,
    /// Handler calls so far.
    pub attempts: u32,
    /// The group holding it (`None` while it is delayed and not routed yet).
    pub group: Option<Rc<str>>,
}

/// The last error of a dead work-queue message: `{ code, message }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadError {
    /// `HANDLER_FAILED` or `HANDLER_TIMEOUT`.
    pub code: ErrorCode,
    /// The handler's error message, or the core's timeout text (`not acknowledged within 50 ms`).
    pub message: Rc<str>,
}

/// A message that failed for good: the one dead-letter shape, built here and published by every
/// driver on `$dead.<group>` unchanged. In JavaScript it is the payload, `{ group, topic,
/// attempts, error: { code, message }, message }`; natively it is [`Message::dead_letter`] of the
/// `$dead.<group>` message (whose payload is the original payload, or what
/// `BusOptions::dead_payload` builds from the letter).
#[derive(Debug, Clone)]
pub struct DeadLetter<P> {
    /// The group's name.
    pub group: Rc<str>,
    /// The topic the message was published on.
    pub topic: Rc<str>,
    /// Handler calls made.
    pub attempts: u32,
    /// The last error.
    pub error: DeadError,
    /// The message as it was published.
    pub message: Message<P>,
}

/// How long finished ids stay queryable by status. Times are in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most finished ids remembered per group (default 10,000).
    pub max_ids: usize,
    /// Longest a finished id is remembered (default 1 hour; `None`: no age limit).
    pub max_age: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_ids: 10_000,
            max_age: Some(3_600_000_000),
        }
    }
}

/// Checks a group name: one or more topic tokens (it names the `$dead.<group>` topic).
pub fn validate_group(name: &str) -> Result<()> {
    if name.starts_with('$') {
        return Err(Error::invalid_option(
            "group",
            format!("`{name}` must not start with `$`"),
        ));
    }
    validate_topic(name).map_err(|e| {
        Error::invalid_option(
            "group",
            format!("`{name}` is not a valid group name ({e}); it must be usable as a topic"),
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct JobRef {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Ready,
    Parked,
    InFlight,
    Retrying,
}

#[derive(Debug)]
struct Job<P, S> {
    msg: Message<P>,
    /// The member whose delivery of it failed last.
    failed_by: Option<S>,
    priority: u32,
    attempts: u32,
    place: Place,
    /// Failed inside a batch: later tries go alone.
    solo: bool,
    error: Option<(ErrorCode, Rc<str>)>,
}

/// A member of the group: a subscription with its own capacity and claim size.
#[derive(Debug, Clone)]
struct Member<S> {
    sub: S,
    capacity: u32,
    in_flight: u32,
    /// Batch claim: most messages per claim, and how long to wait for a fuller one.
    claim: Option<(usize, u64)>,
    /// While a batch member waits for a fuller batch: until when.
    wait_until: Option<u64>,
}

/// Counts of a group, reported by `stats()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GroupCounters {
    pub(crate) published: u64,
    pub(crate) done: u64,
    pub(crate) retried: u64,
    pub(crate) dead: u64,
    pub(crate) expired: u64,
}

#[derive(Debug)]
struct Finished {
    state: JobState,
    attempts: u32,
    at: u64,
}

/// What a claim hands out.
pub(crate) struct Claim<S> {
    pub(crate) member: S,
    pub(crate) jobs: Vec<JobRef>,
}

/// The outcome of settling claimed jobs.
pub(crate) enum Settled {
    Done,
    /// Retry due at this time.
    Retry(JobRef, u64),
    Dead,
}

/// One work queue: its messages (jobs), members, counters and status window.
#[derive(Debug)]
pub(crate) struct WorkQueue<P, S> {
    name: Rc<str>,
    policy: RetryPolicy,
    jobs: Slab<Job<P, S>>,
    /// Ready jobs by (priority descending, publish order).
    ready: BTreeSet<(std::cmp::Reverse<u32>, u64, JobRef)>,
    /// Keys held by a job that is ready, in flight or retrying, with the jobs parked behind it.
    lanes: HashMap<Rc<str>, VecDeque<JobRef>>,
    members: Vec<Member<S>>,
    cursor: usize,
    /// Jobs not in flight: ready, parked or retrying.
    depth: usize,
    retrying: usize,
    /// Jobs claimed and not settled.
    in_flight: usize,
    counters: GroupCounters,
    live_ids: HashMap<Rc<str>, JobRef>,
    finished: HashMap<Rc<str>, Finished>,
    finished_order: VecDeque<(Rc<str>, u64)>,
    retention: Retention,
    /// Set by a flush: batch members claim what there is without waiting.
    flushing: bool,
    /// Expired at claim time since the broker last looked (it adds them to its own counters).
    newly_expired: u64,
    /// Jobs that had failed before and whose TTL ended before a member could take them again:
    /// dead, waiting for the broker to bury them (their failure is final).
    newly_dead: Vec<JobRef>,
}

impl<P, S> WorkQueue<P, S> {
    /// Nothing waiting and nothing in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.depth == 0 && self.in_flight == 0
    }

    /// Room before the queue bound `max` is reached.
    pub(crate) fn room(&self, max: usize) -> usize {
        max.saturating_sub(self.depth)
    }

    /// Ready jobs.
    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// The group's name.
    pub(crate) fn name(&self) -> &Rc<str> {
        &self.name
    }

    /// The group's retry policy.
    pub(crate) fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Jobs not in flight: ready, parked or retrying.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// Jobs waiting for their retry.
    pub(crate) fn retrying(&self) -> usize {
        self.retrying
    }

    /// Jobs claimed and not settled.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The group's counts.
    pub(crate) fn counters(&self) -> GroupCounters {
        self.counters
    }

    /// How many members it has.
    pub(crate) fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Whether a batch member waits for a fuller batch (a claim-wait timer is current).
    pub(crate) fn is_waiting_for_batch(&self) -> bool {
        self.members.iter().any(|m| m.wait_until.is_some())
    }

    /// From now on, batch members claim what there is without waiting (a flush).
    pub(crate) fn flush(&mut self) {
        self.flushing = true;
    }

    /// Jobs found expired at claim time since the last call.
    pub(crate) fn take_newly_expired(&mut self) -> u64 {
        std::mem::take(&mut self.newly_expired)
    }

    /// Jobs found dead at claim time (failed before, TTL ended) since the last call; bury each.
    pub(crate) fn take_newly_dead(&mut self) -> Vec<JobRef> {
        std::mem::take(&mut self.newly_dead)
    }
}

impl<P, S: PartialEq> WorkQueue<P, S> {
    /// Adds a member with `capacity` concurrent claims; `claim` is its batch claim (most
    /// messages per claim, longest wait for a fuller one).
    pub(crate) fn join(&mut self, sub: S, capacity: u32, claim: Option<(usize, u64)>) {
        self.members.push(Member {
            sub,
            capacity,
            in_flight: 0,
            claim,
            wait_until: None,
        });
    }

    /// Removes a member (its claims already handed out settle as usual).
    pub(crate) fn leave(&mut self, sub: &S) {
        self.members.retain(|m| m.sub != *sub);
    }

    /// Whether `sub` is a member that claims batches.
    pub(crate) fn claims_batches(&self, sub: &S) -> bool {
        self.members
            .iter()
            .any(|m| m.sub == *sub && m.claim.is_some())
    }
}

impl<P: Clone, S: Copy + PartialEq> WorkQueue<P, S> {
    pub(crate) fn new(name: Rc<str>, policy: RetryPolicy, retention: Retention) -> Self {
        WorkQueue {
            name,
            policy,
            jobs: Slab::new(),
            ready: BTreeSet::new(),
            lanes: HashMap::new(),
            members: Vec::new(),
            cursor: 0,
            depth: 0,
            retrying: 0,
            in_flight: 0,
            counters: GroupCounters::default(),
            live_ids: HashMap::new(),
            finished: HashMap::new(),
            finished_order: VecDeque::new(),
            retention,
            flushing: false,
            newly_expired: 0,
            newly_dead: Vec::new(),
        }
    }

    /// The TTL's end of `job` while it waits for a member (ready or parked). With no members,
    /// nothing claims it, so the broker watches for that time (see [`WorkQueue::expire`]).
    pub(crate) fn waiting_until(&self, job: JobRef) -> Option<u64> {
        let j = self.jobs.get(job.index, job.gen)?;
        matches!(j.place, Place::Ready | Place::Parked)
            .then_some(j.msg.expires_at)
            .flatten()
    }

    /// Every job waiting for a member (ready or parked).
    pub(crate) fn waiting(&self) -> Vec<JobRef> {
        let mut out = Vec::new();
        for (index, gen, j) in self.jobs.iter() {
            if matches!(j.place, Place::Ready | Place::Parked) {
                out.push(JobRef { index, gen });
            }
        }
        out
    }

    /// With no members, nothing claims: a job waiting whose TTL has ended by `now` ends here, as
    /// a claim would have found it (expired; dead when an attempt had failed before, or was made
    /// before it was published). The broker counts and buries (see `take_newly_expired`).
    pub(crate) fn expire(&mut self, job: JobRef, now: u64) {
        let Some(j) = self.jobs.get(job.index, job.gen) else {
            return;
        };
        if !j.msg.is_expired(now) {
            return;
        }
        let (place, priority, seq, failed_before) =
            (j.place, j.priority, j.msg.seq, j.attempts > 0);
        match place {
            Place::Ready => {
                self.ready.remove(&(std::cmp::Reverse(priority), seq, job));
            }
            Place::Parked => {}
            Place::InFlight | Place::Retrying => return,
        }
        self.depth -= 1;
        if failed_before {
            // Buried by the broker; that lets the next job with its key go (or takes a parked
            // one out of its key's line).
            self.counters.dead += 1;
            self.newly_dead.push(job);
        } else {
            self.counters.expired += 1;
            self.newly_expired += 1;
            self.end(job, JobState::Expired, now);
        }
    }

    /// Adds a published message. One that had attempts made before it was published
    /// ([`Message::prior`]) counts from there; until a try here fails, its last error is that none
    /// of those attempts was acknowledged (the error of its letter should it die without a
    /// delivery here).
    pub(crate) fn push(&mut self, msg: Message<P>, priority: u32) -> JobRef {
        let prior = msg.prior;
        self.counters.published += 1;
        self.depth += 1;
        let key = msg.key.clone();
        let id = msg.id.clone();
        let seq = msg.seq;
        let parked = match &key {
            Some(k) => self.lanes.contains_key(k),
            None => false,
        };
        let (index, gen) = self.jobs.insert(
            Job {
                msg,
                priority,
                failed_by: None,
                attempts: prior,
                place: if parked { Place::Parked } else { Place::Ready },
                solo: false,
                error: (prior > 0).then(|| {
                    (
                        ErrorCode::HandlerTimeout,
                        Rc::from(format!(
                            "not acknowledged in the {prior} attempt(s) made before it was published"
                        )),
                    )
                }),
            },
            None,
        );
        let job = JobRef { index, gen };
        if let Some(id) = id {
            self.finished.remove(&id);
            self.live_ids.insert(id, job);
        }
        match key {
            Some(k) if parked => {
                if let Some(lane) = self.lanes.get_mut(&k) {
                    lane.push_back(job);
                }
            }
            Some(k) => {
                self.lanes.insert(k, VecDeque::new());
                self.ready.insert((std::cmp::Reverse(priority), seq, job));
            }
            None => {
                self.ready.insert((std::cmp::Reverse(priority), seq, job));
            }
        }
        job
    }

    /// Drops the oldest ready message of the lowest priority, to make room. Returns whether one
    /// was dropped.
    pub(crate) fn drop_oldest(&mut self, now: u64) -> bool {
        let Some(&(lowest, _, _)) = self.ready.last() else {
            return false;
        };
        let Some(&entry) = self
            .ready
            .range((lowest, 0, JobRef { index: 0, gen: 0 })..)
            .next()
        else {
            return false;
        };
        self.ready.remove(&entry);
        let job = entry.2;
        self.depth -= 1;
        self.end(job, JobState::Dropped, now);
        true
    }

    /// Counts a message refused by the `dropNewest` overflow policy as published and dropped, as
    /// `dropOldest` counts the message it drops: its id answers `status` with `dropped`.
    pub(crate) fn refuse(&mut self, msg: &Message<P>, now: u64) {
        self.counters.published += 1;
        if let Some(id) = &msg.id {
            if !self.live_ids.contains_key(id) {
                self.remember(id.clone(), JobState::Dropped, 0, now);
            }
        }
    }

    /// Hands out work to members with free capacity, round-robin. `now` decides batch waits;
    /// returns the claims and, for batch members that wait for a fuller batch, when to wake.
    pub(crate) fn claim(&mut self, now: u64, out: &mut Vec<Claim<S>>) -> Option<u64> {
        let mut wake: Option<u64> = None;
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        // Each pass gives at most one claim per member; stop when a full pass hands out nothing.
        loop {
            let mut progressed = false;
            for step in 0..n {
                if self.ready.is_empty() {
                    return wake;
                }
                let m = (self.cursor + step) % n;
                let member = &self.members[m];
                if member.in_flight >= member.capacity {
                    continue;
                }
                let size = match member.claim {
                    Some((max_size, max_wait)) => {
                        let top_solo = self.top_is_solo();
                        if !top_solo
                            && self.ready.len() < max_size
                            && max_wait > 0
                            && !self.flushing
                        {
                            let until = *self.members[m].wait_until.get_or_insert(now + max_wait);
                            if now < until {
                                wake = Some(wake.map_or(until, |w: u64| w.min(until)));
                                continue;
                            }
                        }
                        max_size
                    }
                    None => 1,
                };
                let sub = self.members[m].sub;
                let jobs = self.take(size, now, sub);
                if jobs.is_empty() {
                    continue;
                }
                let member = &mut self.members[m];
                member.wait_until = None;
                member.in_flight += 1;
                out.push(Claim {
                    member: member.sub,
                    jobs,
                });
                self.cursor = (m + 1) % n;
                progressed = true;
            }
            if !progressed {
                return wake;
            }
        }
    }

    fn top_is_solo(&self) -> bool {
        self.ready
            .first()
            .and_then(|(_, _, j)| self.jobs.get(j.index, j.gen))
            .is_some_and(|j| j.solo)
    }

    /// Takes up to `max` ready jobs for `member` (a solo job only alone), skipping expired ones
    /// and ones that arrived with every attempt made (dead, as `member`'s failure when no try
    /// here failed).
    fn take(&mut self, max: usize, now: u64, member: S) -> Vec<JobRef> {
        let mut jobs = Vec::new();
        while jobs.len() < max {
            let Some(&entry) = self.ready.first() else {
                break;
            };
            let job = entry.2;
            let Some(j) = self.jobs.get(job.index, job.gen) else {
                self.ready.remove(&entry);
                continue;
            };
            if j.solo && !jobs.is_empty() {
                break;
            }
            self.ready.remove(&entry);
            // Published with every attempt made (`Outgoing::attempts`), or delivered and failed
            // before and expired now: its failure is final, not an expiry.
            if j.attempts >= self.policy.max_attempts || (j.msg.is_expired(now) && j.attempts > 0) {
                if let Some(j) = self.jobs.get_mut(job.index, job.gen) {
                    j.failed_by.get_or_insert(member);
                }
                self.counters.dead += 1;
                self.depth -= 1;
                self.newly_dead.push(job);
                continue;
            }
            if j.msg.is_expired(now) {
                self.counters.expired += 1;
                self.newly_expired += 1;
                self.depth -= 1;
                self.end(job, JobState::Expired, now);
                continue;
            }
            let solo = j.solo;
            if let Some(j) = self.jobs.get_mut(job.index, job.gen) {
                j.place = Place::InFlight;
                j.attempts += 1;
            }
            self.depth -= 1;
            self.in_flight += 1;
            jobs.push(job);
            if solo {
                break;
            }
        }
        jobs
    }

    /// The message of a claimed job, with its attempt number.
    pub(crate) fn message(&self, job: JobRef) -> Option<(Message<P>, u32, u32)> {
        self.jobs.get(job.index, job.gen).map(|j| {
            let mut m = j.msg.clone();
            m.attempt = j.attempts;
            (m, j.attempts, self.policy.max_attempts)
        })
    }

    /// A claim that was never run (its member left before it started): the jobs go back as they
    /// were, and the attempt does not count.
    pub(crate) fn unclaim(&mut self, member: S, jobs: &[JobRef]) {
        self.member_done(member);
        for &job in jobs {
            let Some(j) = self.jobs.get_mut(job.index, job.gen) else {
                continue;
            };
            j.attempts -= 1;
            j.place = Place::Ready;
            self.ready
                .insert((std::cmp::Reverse(j.priority), j.msg.seq, job));
            self.in_flight -= 1;
            self.depth += 1;
        }
    }

    pub(crate) fn member_done(&mut self, member: S) {
        if let Some(m) = self.members.iter_mut().find(|m| m.sub == member) {
            m.in_flight = m.in_flight.saturating_sub(1);
        }
    }

    /// Settles one claimed job: acknowledged, or failed with `error` (then retried with backoff
    /// whose jitter comes from `random`, or dead). `batch`: it was claimed by a batch member, so
    /// every later try goes alone. A job whose TTL ends before its retry would come due is dead
    /// now: no retry can run, and its failure is final.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn settle(
        &mut self,
        job: JobRef,
        member: S,
        ok: bool,
        error: Option<(ErrorCode, Rc<str>)>,
        batch: bool,
        now: u64,
        random: u64,
    ) -> Option<Settled> {
        let j = self.jobs.get_mut(job.index, job.gen)?;
        if j.place != Place::InFlight {
            return None;
        }
        self.in_flight -= 1;
        if ok {
            self.counters.done += 1;
            self.end(job, JobState::Done, now);
            return Some(Settled::Done);
        }
        j.error = error;
        j.failed_by = Some(member);
        if j.attempts >= self.policy.max_attempts {
            self.counters.dead += 1;
            return Some(Settled::Dead);
        }
        let base = self.policy.backoff(j.attempts);
        let half = base / 2;
        let delay = half
            + if base > half {
                random % (base - half + 1)
            } else {
                0
            };
        let due = now.saturating_add(delay);
        if j.msg.is_expired(due) {
            self.counters.dead += 1;
            return Some(Settled::Dead);
        }
        j.place = Place::Retrying;
        j.solo |= batch;
        self.depth += 1;
        self.retrying += 1;
        self.counters.retried += 1;
        Some(Settled::Retry(job, due))
    }

    /// A dead job's letter; the job is removed (its key lane moves on).
    pub(crate) fn bury(&mut self, job: JobRef, now: u64) -> Option<DeadLetter<P>> {
        let j = self.jobs.get(job.index, job.gen)?;
        let (code, message) = j
            .error
            .clone()
            .unwrap_or((ErrorCode::HandlerFailed, Rc::from("handler failed")));
        let letter = DeadLetter {
            group: self.name.clone(),
            topic: j.msg.topic.clone(),
            attempts: j.attempts,
            error: DeadError { code, message },
            message: j.msg.clone(),
        };
        self.end(job, JobState::Dead, now);
        Some(letter)
    }

    /// The member whose delivery of `job` failed last.
    pub(crate) fn failed_by(&self, job: JobRef) -> Option<S> {
        self.jobs.get(job.index, job.gen).and_then(|j| j.failed_by)
    }

    /// Whether a retry timer for `job` is still current.
    pub(crate) fn is_retrying(&self, job: JobRef) -> bool {
        self.jobs
            .get(job.index, job.gen)
            .is_some_and(|j| j.place == Place::Retrying)
    }

    /// A retry came due: the job is ready again.
    pub(crate) fn retry_due(&mut self, job: JobRef) {
        let Some(j) = self.jobs.get_mut(job.index, job.gen) else {
            return;
        };
        if j.place != Place::Retrying {
            return;
        }
        j.place = Place::Ready;
        self.retrying -= 1;
        self.ready
            .insert((std::cmp::Reverse(j.priority), j.msg.seq, job));
    }

    /// Removes a job that reached a final state, records it for `status`, and lets the next job
    /// with its key go.
    fn end(&mut self, job: JobRef, state: JobState, now: u64) {
        let Some(j) = self.jobs.remove(job.index, job.gen) else {
            return;
        };
        if let Some(id) = &j.msg.id {
            if self.live_ids.get(id) == Some(&job) {
                self.live_ids.remove(id);
                self.remember(id.clone(), state, j.attempts, now);
            }
        }
        if let Some(k) = &j.msg.key {
            if j.place != Place::Parked {
                self.release_lane(k);
            } else if let Some(lane) = self.lanes.get_mut(k) {
                lane.retain(|x| *x != job);
            }
        }
    }

    fn release_lane(&mut self, key: &Rc<str>) {
        let next = match self.lanes.get_mut(key) {
            Some(lane) => lane.pop_front(),
            None => return,
        };
        match next {
            Some(job) => {
                if let Some(j) = self.jobs.get_mut(job.index, job.gen) {
                    j.place = Place::Ready;
                    self.ready
                        .insert((std::cmp::Reverse(j.priority), j.msg.seq, job));
                }
            }
            None => {
                self.lanes.remove(key);
            }
        }
    }

    fn remember(&mut self, id: Rc<str>, state: JobState, attempts: u32, at: u64) {
        self.expire_finished(at);
        self.finished.insert(
            id.clone(),
            Finished {
                state,
                attempts,
                at,
            },
        );
        self.finished_order.push_back((id, at));
        while self.finished_order.len() > self.retention.max_ids {
            if let Some((old, at)) = self.finished_order.pop_front() {
                if self.finished.get(&old).is_some_and(|f| f.at == at) {
                    self.finished.remove(&old);
                }
            }
        }
    }

    fn expire_finished(&mut self, now: u64) {
        let Some(age) = self.retention.max_age else {
            return;
        };
        while let Some((id, at)) = self.finished_order.front() {
            if now.saturating_sub(*at) < age {
                break;
            }
            if self.finished.get(id).is_some_and(|f| f.at == *at) {
                self.finished.remove(id);
            }
            self.finished_order.pop_front();
        }
    }

    /// The status of `id` in this group, if it is here or finished inside the retention window.
    pub(crate) fn status(&self, id: &str, now: u64) -> Option<JobStatus> {
        if let Some(job) = self.live_ids.get(id) {
            let j = self.jobs.get(job.index, job.gen)?;
            let state = match j.place {
                Place::Ready | Place::Parked => JobState::Pending,
                Place::InFlight => JobState::InFlight,
                Place::Retrying => JobState::Failed,
            };
            return Some(JobStatus {
                state,
                attempts: j.attempts,
                group: Some(self.name.clone()),
            });
        }
        let f = self.finished.get(id)?;
        if let Some(age) = self.retention.max_age {
            if now.saturating_sub(f.at) >= age {
                return None;
            }
        }
        Some(JobStatus {
            state: f.state,
            attempts: f.attempts,
            group: Some(self.name.clone()),
        })
    }

    /// Finished ids remembered now.
    pub(crate) fn remembered(&self) -> usize {
        self.finished.len()
    }

    /// Every job not finished, in publish order, with its state (for a close summary).
    pub(crate) fn remaining(&self) -> Vec<(Message<P>, JobState, u32)> {
        let v: Vec<_> = self
            .jobs
            .iter()
            .map(|(_, _, j)| {
                let state = match j.place {
                    Place::Ready | Place::Parked => JobState::Pending,
                    Place::InFlight => JobState::InFlight,
                    Place::Retrying => JobState::Failed,
                };
                (j.msg.clone(), state, j.attempts)
            })
            .collect();
        crate::order::sorted_by_key(v, |(m, _, _)| m.seq)
    }
}
