//! Messages as handlers see them, and what a publisher hands in.
//!
//! A message is cheap to clone: the topic, id, key and headers are shared (`Rc`), and the payload is
//! whatever shared handle the caller chose (`Arc<T>`, `Bytes`, an index into a JavaScript table…).
//! Fan-out clones the message once per subscription and never copies the payload itself.

use crate::broker::RequestId;
use crate::work_queue::DeadLetter;
use std::rc::Rc;

/// Header pairs attached to a message (name, value).
pub type Headers = Rc<[(String, String)]>;

/// A published message.
#[derive(Debug, Clone)]
pub struct Message<P> {
    pub(crate) topic: Rc<str>,
    pub(crate) payload: P,
    pub(crate) id: Option<Rc<str>>,
    pub(crate) key: Option<Rc<str>>,
    pub(crate) headers: Option<Headers>,
    pub(crate) published_at: Option<u64>,
    pub(crate) expires_at: Option<u64>,
    pub(crate) size: u64,
    pub(crate) seq: u64,
    /// Its number on its topic when the topic is tracked (a retained value or history: see
    /// [`crate::logs`]); 0 otherwise.
    pub(crate) topic_seq: u64,
    /// Which try this delivery is (work queues retry; 1 otherwise).
    pub(crate) attempt: u32,
    /// Attempts made before it was published ([`Outgoing::attempts`]); a work queue counts from
    /// there.
    pub(crate) prior: u32,
    /// On `$dead.<group>`: the dead letter it carries.
    pub(crate) letter: Option<Rc<DeadLetter<P>>>,
    /// The request it carries, when it was published by a request: its responders' answers go
    /// to that request.
    pub(crate) request: Option<RequestId>,
}

impl<P> Message<P> {
    /// The topic it was published on.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The payload.
    pub fn payload(&self) -> &P {
        &self.payload
    }

    /// The publisher's message id, if any (used by the idempotence filter).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The ordering key, if any: messages sharing a key never overlap in one subscription.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Header pairs, if any.
    pub fn headers(&self) -> &[(String, String)] {
        self.headers.as_deref().unwrap_or(&[])
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// When it was published, in the bus clock's microseconds. `None` for a message handed to
    /// synchronous handlers directly inside `publish`, where the bus skips reading the clock (the
    /// handler runs at the moment of publishing).
    pub fn published_at(&self) -> Option<u64> {
        self.published_at
    }

    /// When it expires (its TTL ends), in the bus clock's microseconds.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// Its size in bytes as counted for batching (`maxBytes`).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Position in the bus's publish order (strictly increasing).
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Its number on its topic, when the topic keeps a retained value or a history: consecutive
    /// per topic, so a subscriber can tell what it missed (see [`crate::Replay`]).
    pub fn topic_seq(&self) -> Option<u64> {
        (self.topic_seq != 0).then_some(self.topic_seq)
    }

    /// Which try of this message the delivery is: 1 for the first, higher when a work queue
    /// (work queue) redelivers it after a failure or a missed acknowledgement.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// On a `$dead.<group>` topic, the dead letter: which group, topic, how many attempts, the
    /// last error `{ code, message }` and the message as it was published. The same record is
    /// the payload of a dead letter in JavaScript.
    pub fn dead_letter(&self) -> Option<&DeadLetter<P>> {
        self.letter.as_deref()
    }

    /// The request this message carries, if a request published it: a responder's answer
    /// goes to it.
    pub fn request(&self) -> Option<RequestId> {
        self.request
    }

    /// [`Message::published_directly`] for a message without options.
    #[inline(always)]
    pub(crate) fn direct(topic: Rc<str>, payload: P, size: u64, seq: u64) -> Self {
        Message {
            topic,
            payload,
            id: None,
            key: None,
            headers: None,
            published_at: None,
            expires_at: None,
            size,
            seq,
            topic_seq: 0,
            attempt: 1,
            prior: 0,
            letter: None,
            request: None,
        }
    }

    /// A message handed to synchronous handlers at the moment it is published (the direct
    /// path): no publish time read, no TTL to run, first try.
    #[inline(always)]
    pub(crate) fn published_directly(topic: Rc<str>, out: Outgoing<P>, seq: u64) -> Self {
        Message {
            id: out.id,
            key: out.key,
            headers: out.headers,
            ..Message::direct(topic, out.payload, out.size, seq)
        }
    }

    /// The message `out` becomes when it is published on `topic` at `at`, `seq`-th in publish
    /// order: its first try, its TTL running from then.
    pub(crate) fn published(topic: Rc<str>, out: Outgoing<P>, at: u64, seq: u64) -> Self {
        Message {
            topic,
            payload: out.payload,
            id: out.id,
            key: out.key,
            headers: out.headers,
            published_at: Some(at),
            expires_at: out.ttl.map(|t| at.saturating_add(t)),
            size: out.size,
            seq,
            topic_seq: 0,
            attempt: 1,
            prior: out.attempts,
            letter: None,
            request: out.request,
        }
    }

    pub(crate) fn is_expired(&self, now: u64) -> bool {
        matches!(self.expires_at, Some(t) if now >= t)
    }
}

/// What a publisher hands to the core for one message: the payload and its options, already
/// validated.
#[derive(Debug, Clone)]
pub struct Outgoing<P> {
    /// The payload.
    pub payload: P,
    /// Message id for the idempotence filter.
    pub id: Option<Rc<str>>,
    /// Ordering key.
    pub key: Option<Rc<str>>,
    /// Header pairs.
    pub headers: Option<Headers>,
    /// Time to live in microseconds; must be positive.
    pub ttl: Option<u64>,
    /// Size in bytes, for batching limits.
    pub size: u64,
    /// Work-queue priority: work queues hand out higher priorities first (default 0).
    pub priority: u32,
    /// Not visible to anyone before this time (clock microseconds).
    pub not_before: Option<u64>,
    /// Attempts already made elsewhere (0 to [`MAX_PRIOR_ATTEMPTS`]; default 0): a work queue
    /// counts its tries from here, so the first delivery is attempt `attempts + 1` and
    /// `max_attempts` bounds the total. Other subscriptions ignore it.
    pub attempts: u32,
    /// The request it carries ([`crate::broker::Broker::open_request`]).
    pub request: Option<RequestId>,
    /// What it does to its topic's retained value.
    pub retain: crate::logs::Retain,
}

/// The largest `attempts` a publisher may hand in ([`Outgoing::attempts`]).
pub const MAX_PRIOR_ATTEMPTS: u32 = 1000;

/// Checks a publisher's `attempts` (`INVALID_OPTION` naming it when out of range).
pub(crate) fn check_prior_attempts(attempts: u32) -> crate::error::Result<()> {
    if attempts > MAX_PRIOR_ATTEMPTS {
        return Err(crate::error::Error::invalid_option(
            "attempts",
            format!("must be an integer from 0 to {MAX_PRIOR_ATTEMPTS}, got {attempts}"),
        ));
    }
    Ok(())
}

impl<P> Outgoing<P> {
    /// A message with only a payload.
    pub fn new(payload: P) -> Self {
        Outgoing {
            payload,
            id: None,
            key: None,
            headers: None,
            ttl: None,
            size: 0,
            priority: 0,
            not_before: None,
            attempts: 0,
            request: None,
            retain: crate::logs::Retain::No,
        }
    }
}

/// The size in bytes a payload counts for in a batch's `max_bytes`.
///
/// Implemented for the usual payload types; for your own type, `impl ByteSize for MyType {}` counts
/// its shallow size, or override [`ByteSize::byte_size`] with something meaningful.
pub trait ByteSize {
    /// Bytes this value counts for.
    fn byte_size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

impl ByteSize for str {
    fn byte_size(&self) -> usize {
        self.len()
    }
}
impl ByteSize for String {
    fn byte_size(&self) -> usize {
        self.len()
    }
}
impl ByteSize for [u8] {
    fn byte_size(&self) -> usize {
        self.len()
    }
}
impl ByteSize for Vec<u8> {
    fn byte_size(&self) -> usize {
        self.len()
    }
}
impl<T: ByteSize + ?Sized> ByteSize for &T {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
}
impl<T: ByteSize + ?Sized> ByteSize for Box<T> {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
}
impl<T: ByteSize + ?Sized> ByteSize for Rc<T> {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
}
impl<T: ByteSize + ?Sized> ByteSize for std::sync::Arc<T> {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
}
impl<T: ByteSize> ByteSize for Option<T> {
    fn byte_size(&self) -> usize {
        self.as_ref().map_or(0, ByteSize::byte_size)
    }
}
macro_rules! shallow_byte_size {
    ($($t:ty),*) => { $(impl ByteSize for $t {})* };
}
shallow_byte_size!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64
);
