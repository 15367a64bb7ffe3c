//! Requests: a publish that its responders answer.
//!
//! The broker keeps every pending request (how many replies it takes, which responders it
//! waits for and which answered, its deadline) and decides what each answer does; the driver
//! keeps the requester's wait and the replies' values, and hands each responder's answer in
//! with [`Broker::answer`]. A request's message is published as any other (with
//! [`Outgoing::request`] set), through the broker's queues, so every delivery rule applies to it:
//! a work queue hands it to one member, which answers as a load-balanced service.
//!
//! The rules, for native and wasm drivers alike:
//! - A request reaches the subscriptions its topic matches: its responders (a work queue with a
//!   member counts once: one member answers for it). None: `NO_RESPONDERS`, at once, and nothing
//!   is published.
//! - A responder answers once: a reply, a final failure (after any retries of its work queue),
//!   or a decline (its handler completed without a reply: a native handler that returns no
//!   value, a JavaScript one that returned or resolved to `undefined`). A second answer of the
//!   same responder, and any answer after the request ended, is late: ignored and counted.
//! - A request ends at its `max`-th reply, when every responder has answered, at its deadline
//!   ([`RequestEnd::TimedOut`]), when its requester gives it up ([`Broker::cancel_request`]), or
//!   when the driver ends every pending request as it finishes closing ([`Broker::end_requests`]).
//!   One that ends without a reply fails with its last failure, or, when every responder
//!   declined, as having no responders.

use super::*;

/// Identifies a pending request until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl RequestId {
    /// Slot index (reused after the request ended).
    pub fn index(self) -> u32 {
        self.index
    }
    /// Generation of the slot.
    pub fn generation(self) -> u32 {
        self.gen
    }
    /// Rebuilds an id from its parts.
    pub fn from_parts(index: u32, gen: u32) -> RequestId {
        RequestId { index, gen }
    }
}

/// How a request ended other than by its answers or its requester ([`Event::RequestEnded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEnd {
    /// Its deadline passed.
    TimedOut,
    /// The bus finished closing with it pending.
    Closed,
}

/// What an answer did ([`Broker::answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A reply, taken: hand it to the requester. `last`: the request ended with it.
    Reply {
        /// The request ended with this reply.
        last: bool,
    },
    /// A responder failed for good. `last`: no responder can still answer and the request ended
    /// (a request with no reply then fails with this failure).
    Failed {
        /// The request ended with this failure.
        last: bool,
        /// Replies the request had taken before it.
        replies: u32,
    },
    /// A responder declined (completed without a reply). `last`: no responder can still answer
    /// and the request ended; then `failures` says whether any failed (a request with no reply
    /// fails with the last failure, or as having no responders when there was none).
    Declined {
        /// The request ended with this decline.
        last: bool,
        /// Replies the request had taken before it.
        replies: u32,
        /// Failures the request had taken before it.
        failures: u32,
    },
    /// The request had ended, or this responder had answered it already: ignored, counted late.
    Late,
}

/// A responder's answer ([`Broker::answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// A reply (its value stays with the driver).
    Reply,
    /// A final failure.
    Failure,
    /// Completed without a reply.
    Decline,
}

/// A pending request.
#[derive(Debug)]
struct PendingRequest {
    /// Replies it takes at most.
    max: u32,
    replies: u32,
    failures: u32,
    /// Responders it reached (as reported so far).
    expected: u32,
    /// Reports still to come, each adding responders ([`RequestTable::reached`]); 0 for a
    /// request whose responders were all known when it opened.
    reports: u32,
    /// Responders that answered, by their key.
    answered: Vec<u64>,
}

impl PendingRequest {
    /// Every responder it will have has answered.
    fn all_answered(&self) -> bool {
        self.reports == 0 && self.answered.len() as u32 >= self.expected
    }
}

/// What requests counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RequestCounts {
    sent: u64,
    replies: u64,
    failed: u64,
    declined: u64,
    timed_out: u64,
    no_responders: u64,
    cancelled: u64,
    late: u64,
}

/// What a report of responders did ([`RequestTable::reached`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// Still waiting for answers (or reports).
    Pending,
    /// Every responder had answered already: the request ended, with these replies and
    /// failures (none of either: it had no responders).
    Ended {
        /// Replies it took.
        replies: u32,
        /// Failures it took.
        failures: u32,
    },
    /// The request had ended before: ignored.
    Gone,
}

/// The most replies a request may take (`max`).
pub const MAX_REPLIES: u32 = 1 << 30;

/// The rules of requests (see the module docs), on their own: pending requests, what each answer
/// and each report of responders does, and the counts. A [`Broker`] keeps one for the requests
/// published through it; a driver whose responders are elsewhere (the edge hub, whose requests
/// reach other hubs) keeps one of its own and reports responders as it learns of them.
#[derive(Debug)]
pub struct RequestTable {
    requests: Slab<PendingRequest>,
    counts: RequestCounts,
}

impl Default for RequestTable {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestTable {
    /// An empty table.
    pub fn new() -> Self {
        RequestTable {
            requests: Slab::new(),
            counts: RequestCounts::default(),
        }
    }

    /// Opens a request taking up to `max` replies from `expected` responders known now, and
    /// from those `reports` more reports will bring ([`RequestTable::reached`]). `INVALID_OPTION`
    /// for a `max` out of range.
    pub fn open(&mut self, max: u32, expected: u32, reports: u32) -> Result<RequestId> {
        check_max(max)?;
        let (index, gen) = self.requests.insert(
            PendingRequest {
                max,
                replies: 0,
                failures: 0,
                expected,
                reports,
                answered: Vec::new(),
            },
            None,
        );
        self.counts.sent += 1;
        Ok(RequestId { index, gen })
    }

    /// Counts a request refused for having no responder at all.
    pub fn refused_without_responders(&mut self) {
        self.counts.no_responders += 1;
    }

    /// One report of `request`'s responders came: `responders` more, and `reports` more
    /// reports to wait for. The counts saturate: a report of more than a u32 can count keeps
    /// the request waiting (until its deadline), never wraps around to an end.
    pub fn reached(&mut self, request: RequestId, reports: u32, responders: u32) -> Reached {
        let Some(r) = self.requests.get_mut(request.index, request.gen) else {
            return Reached::Gone;
        };
        r.reports = r.reports.saturating_add(reports).saturating_sub(1);
        r.expected = r.expected.saturating_add(responders);
        if !r.all_answered() {
            return Reached::Pending;
        }
        let (replies, failures) = (r.replies, r.failures);
        if replies == 0 && failures == 0 {
            self.counts.no_responders += 1;
        }
        self.requests.remove(request.index, request.gen);
        Reached::Ended { replies, failures }
    }

    /// `responder`'s answer to `request`: a reply, a final failure or a decline. Says what it
    /// did.
    pub fn answer(&mut self, request: RequestId, responder: u64, kind: AnswerKind) -> Answer {
        let Some(r) = self.requests.get_mut(request.index, request.gen) else {
            self.counts.late += 1;
            return Answer::Late;
        };
        if r.answered.contains(&responder) {
            self.counts.late += 1;
            return Answer::Late;
        }
        r.answered.push(responder);
        let all = r.all_answered();
        let (replies, failures) = (r.replies, r.failures);
        let answer = match kind {
            AnswerKind::Reply => {
                r.replies += 1;
                self.counts.replies += 1;
                Answer::Reply {
                    last: all || r.replies >= r.max,
                }
            }
            AnswerKind::Failure => {
                r.failures += 1;
                self.counts.failed += 1;
                Answer::Failed { last: all, replies }
            }
            AnswerKind::Decline => {
                self.counts.declined += 1;
                if all && replies == 0 && failures == 0 {
                    self.counts.no_responders += 1;
                }
                Answer::Declined {
                    last: all,
                    replies,
                    failures,
                }
            }
        };
        if matches!(
            answer,
            Answer::Reply { last: true }
                | Answer::Failed { last: true, .. }
                | Answer::Declined { last: true, .. }
        ) {
            self.requests.remove(request.index, request.gen);
        }
        answer
    }

    /// Ends `request` for its requester (aborted, or no longer wanted); false when it had ended.
    pub fn cancel(&mut self, request: RequestId) -> bool {
        let ended = self.requests.remove(request.index, request.gen).is_some();
        if ended {
            self.counts.cancelled += 1;
        }
        ended
    }

    /// `request`'s deadline came: it ends, counted timed out; false when it had ended.
    pub fn time_out(&mut self, request: RequestId) -> bool {
        let ended = self.requests.remove(request.index, request.gen).is_some();
        if ended {
            self.counts.timed_out += 1;
        }
        ended
    }

    /// Ends every pending request (counted cancelled); returns their ids.
    pub fn end_all(&mut self) -> Vec<RequestId> {
        let ids: Vec<RequestId> = self
            .requests
            .iter()
            .map(|(index, gen, _)| RequestId { index, gen })
            .collect();
        for id in &ids {
            self.requests.remove(id.index, id.gen);
            self.counts.cancelled += 1;
        }
        ids
    }

    /// Whether `request` is pending.
    pub fn is_pending(&self, request: RequestId) -> bool {
        self.requests.get(request.index, request.gen).is_some()
    }

    /// Requests pending.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.requests.len() == 0
    }

    /// What requests counted, and how many are pending.
    pub fn stats(&self) -> RequestStats {
        let c = &self.counts;
        RequestStats {
            sent: c.sent,
            replies: c.replies,
            failed: c.failed,
            declined: c.declined,
            timed_out: c.timed_out,
            no_responders: c.no_responders,
            cancelled: c.cancelled,
            late: c.late,
            pending: self.requests.len() as u64,
        }
    }
}

/// `INVALID_OPTION` for a `max` out of range.
fn check_max(max: u32) -> Result<()> {
    match max {
        1..=MAX_REPLIES => Ok(()),
        _ => Err(max_error(max)),
    }
}

#[cold]
fn max_error(max: u32) -> Error {
    Error::invalid_option(
        "max",
        format_args!("must be an integer from 1 to {MAX_REPLIES}, got {max}"),
    )
}

/// A responder's key in a [`RequestTable`]: its subscription id.
fn key(sub: SubId) -> u64 {
    (u64::from(sub.index) << 32) | u64::from(sub.gen)
}

impl<P: Clone> Broker<P> {
    /// Opens a request on `handle`'s topic that takes up to `max` replies, ending at `deadline`
    /// (clock units) when given. Publish its message next, with [`Outgoing::request`] set to the
    /// id returned. Fails with `NO_RESPONDERS` (counted) when no subscription matches,
    /// `INVALID_OPTION` for a `max` out of range, `CLOSED`, or `INVALID_ARGUMENT` for a
    /// stale handle.
    pub fn open_request(
        &mut self,
        handle: TopicHandle,
        max: u32,
        deadline: Option<u64>,
    ) -> Result<RequestId> {
        if self.closed {
            return Err(Error::closed("bus"));
        }
        check_max(max)?;
        let expected = self.reach(handle)?;
        if expected == 0 {
            self.requests.refused_without_responders();
            let topic = &self.topics[handle.index as usize].topic;
            return Err(Error::new(
                ErrorCode::NoResponders,
                format!(
                    "no subscription answers requests on {}",
                    crate::topic::Quoted(topic)
                ),
            ));
        }
        let id = self.requests.open(max, expected, 0)?;
        if let Some(at) = deadline {
            arm(&mut self.timers, at, Timer::Request(id.index, id.gen));
        }
        Ok(id)
    }

    /// How many subscriptions a message published now on `handle`'s topic reaches: each live
    /// subscription, a work queue once when it has a member (a request's responders). A driver
    /// that waits for every delivery of a message to settle waits for this many.
    pub fn reach(&mut self, handle: TopicHandle) -> Result<u32> {
        let subs = self.route(handle)?;
        Ok(subs.iter().filter(|id| self.answers(**id)).count() as u32)
    }

    /// Whether subscription `id` answers requests now.
    fn answers(&self, id: SubId) -> bool {
        match self.subs.get(id.index, id.gen) {
            Some(s) if s.live => match &s.kind {
                Kind::Group(wq) => wq.member_count() > 0,
                Kind::Member(_) => false,
                Kind::Plain(_) | Kind::Batch(_) => true,
            },
            _ => false,
        }
    }

    /// `responder`'s answer to `request`: a reply, a final failure or a decline. Says what it
    /// did.
    pub fn answer(&mut self, request: RequestId, responder: SubId, kind: AnswerKind) -> Answer {
        self.requests.answer(request, key(responder), kind)
    }

    /// Opens a request whose responders are elsewhere, learnt of from `reports` reports
    /// ([`Broker::request_reached`]), answered through [`Broker::answer_from`]; its deadline and
    /// its end are this broker's as for [`Broker::open_request`]. For a driver that routes
    /// requests to other brokers (the edge hub).
    pub fn open_remote_request(
        &mut self,
        max: u32,
        reports: u32,
        deadline: Option<u64>,
    ) -> Result<RequestId> {
        let id = self.requests.open(max, 0, reports)?;
        if let Some(at) = deadline {
            arm(&mut self.timers, at, Timer::Request(id.index, id.gen));
        }
        Ok(id)
    }

    /// A report of a remote request's responders (see [`RequestTable::reached`]).
    pub fn request_reached(
        &mut self,
        request: RequestId,
        reports: u32,
        responders: u32,
    ) -> Reached {
        self.requests.reached(request, reports, responders)
    }

    /// A remote responder's answer, `responder` naming it within the request.
    pub fn answer_from(&mut self, request: RequestId, responder: u64, kind: AnswerKind) -> Answer {
        self.requests.answer(request, responder, kind)
    }

    /// Counts a request refused without responders before it was opened (a remote one).
    pub fn refused_without_responders(&mut self) {
        self.requests.refused_without_responders();
    }

    /// Ends `request` for its requester (aborted, or no longer wanted); false when it had ended.
    pub fn cancel_request(&mut self, request: RequestId) -> bool {
        self.requests.cancel(request)
    }

    /// Whether `request` is pending.
    pub fn is_request_pending(&self, request: RequestId) -> bool {
        self.requests.is_pending(request)
    }

    /// Requests pending.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// Ends every pending request with [`RequestEnd::Closed`] (an [`Event::RequestEnded`] each):
    /// the driver calls it when it finishes closing, once handlers that could still answer have
    /// settled.
    pub fn end_requests(&mut self) {
        for id in self.requests.end_all() {
            self.events
                .push_back(Event::RequestEnded(id, RequestEnd::Closed));
        }
    }

    /// `request`'s deadline came: it ends, counted timed out.
    pub(super) fn request_due(&mut self, request: RequestId) {
        if self.requests.time_out(request) {
            self.events
                .push_back(Event::RequestEnded(request, RequestEnd::TimedOut));
        }
    }

    /// What requests counted, and how many are pending.
    pub fn request_stats(&self) -> RequestStats {
        self.requests.stats()
    }
}
