//! `WasmBroker`: the [`Broker`] as the JavaScript driver sees it.
//!
//! Payloads never enter WebAssembly: the driver keeps each message's envelope in a JavaScript
//! table and hands the core its slot number. The core tells the driver when a slot is free again
//! (the last copy of the message was dropped). Work comes back from [`WasmBroker::pump`] as one
//! flat `Uint32Array` of records, so a whole round of deliveries crosses the boundary once:
//!
//! | record | layout |
//! | --- | --- |
//! | deliver | `1, delivery index, delivery gen, sub index, sub gen, slot, attempt` |
//! | batch | `2, delivery index, delivery gen, sub index, sub gen, attempt, final, n, slot × n` |
//! | timed out | `3, delivery index, delivery gen, sub index, sub gen, final` |
//! | idle | `4, sub index, sub gen` |
//! | room | `5` |
//! | release | `6, slot` |
//! | claimed (work-queue member) | `7, delivery index, delivery gen, sub index, sub gen, final, n, (slot, attempt) × n` |
//! | dead letters | `8` (take them with [`WasmBroker::take_dead`]) |
//! | failures to report | `9` (take them with [`WasmBroker::take_failed`]) |
//! | retired | `10` (an unsubscribed subscription's final statistics: [`WasmBroker::take_retired`]) |
//! | request ended | `11, request index, request gen, closed` |
//! | numbered | `12, slot, number` (a message on a tracked topic got its topic number) |
//! | gaps | `13` (replays reported gaps: [`WasmBroker::take_gaps`]) |
//!
//! Topic handles are `(index, gen)` pairs from [`WasmBroker::resolve`]. The core starts a new
//! topic table (a new generation) when the table is full, only ever inside `resolve`; the driver
//! drops its route cache when `resolve` reports a generation it has not seen, and the core
//! refuses a handle of another generation, so a cached handle never reaches another topic.

use super::error::to_js;
use super::js::{self, Obj};
use super::scratch_str;
use crate::batch::BatchPolicy;
use crate::broker::{
    Answer, AnswerKind, Broker, BrokerConfig, DeliveryId, Event, GroupOptions, Items, PublishMode,
    Published, Reached, RequestEnd, RequestId, Retired, SubId, SubscribeOptions, TopicHandle,
};
use crate::clock::ms_to_micros;
use crate::dedupe::DedupeWindow;
use crate::error::Error;
use crate::logs::{LogConfig, Replay, Retain};
use crate::message::Outgoing;
use crate::queue::Overflow;
use crate::snapshot::SubscriptionStats;
use crate::topic::Pattern;
use crate::work_queue::{Retention, RetryPolicy};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

const DELIVER: u32 = 1;
const BATCH: u32 = 2;
const TIMED_OUT: u32 = 3;
const IDLE: u32 = 4;
const ROOM: u32 = 5;
const RELEASE: u32 = 6;
const CLAIMED: u32 = 7;
const DEAD: u32 = 8;
const FAILED: u32 = 9;
const RETIRED: u32 = 10;
const REQUEST_ENDED: u32 = 11;
const NUMBERED: u32 = 12;
const GAPS: u32 = 13;

/// [`WasmBroker::answer`]'s verdicts.
const ANSWER_LATE: u32 = 0;
const ANSWER_REPLY: u32 = 1;
const ANSWER_REPLY_LAST: u32 = 2;
const ANSWER_FAILED: u32 = 3;
const ANSWER_FAILED_LAST: u32 = 4;
const ANSWER_DECLINED: u32 = 5;
const ANSWER_DECLINED_LAST: u32 = 6;
/// The last answer, a failure or a decline, ended a gathering that had replies: it is complete.
const ANSWER_COMPLETE_LAST: u32 = 7;
/// The last answer, a decline, ended a request without a reply after a failure: it fails with that.
const ANSWER_DECLINED_FAILED_LAST: u32 = 8;
/// [`WasmBroker::answer`]'s kinds.
const KIND_REPLY: u32 = 0;
const KIND_FAILURE: u32 = 1;
const KIND_DECLINE: u32 = 2;

/// A message's place in the driver's envelope table; the last copy dropped frees it.
#[derive(Debug)]
struct SlotRef {
    slot: u32,
    released: Rc<RefCell<Vec<u32>>>,
}

impl Drop for SlotRef {
    fn drop(&mut self) {
        self.released.borrow_mut().push(self.slot);
    }
}

type Slot = Rc<SlotRef>;

/// Overflow policies by their code on the boundary, and their names in the JavaScript API.
const OVERFLOWS: [(Overflow, &str); 4] = [
    (Overflow::DropOldest, "dropOldest"),
    (Overflow::DropNewest, "dropNewest"),
    (Overflow::Reject, "reject"),
    (Overflow::Wait, "wait"),
];

fn overflow_from(code: i32) -> Option<Overflow> {
    usize::try_from(code)
        .ok()
        .and_then(|i| OVERFLOWS.get(i))
        .map(|(o, _)| *o)
}

/// `publish` verdicts.
const ACCEPTED: u32 = 0;
const DUPLICATE: u32 = 1;
const MUST_WAIT: u32 = 2;
/// Added to a `publish` verdict when the call left nothing for a round to hand out: no delivery
/// ready, no event, no slot to release, no timer armed. The driver may skip the pump it would run
/// next (nothing it would do depends on the call).
const QUIET: u32 = 8;

/// The boundary's numbers, defined here once and read by the JavaScript driver when it starts:
/// `{ records: { deliver, batch, … }, verdicts: { accepted, duplicate, mustWait }, overflow:
/// [["dropOldest", 0], …], subscribeOptions: ["concurrency", …] }` (the last: the order of
/// [`WasmBroker::subscribe`]'s option numbers).
#[wasm_bindgen]
pub fn protocol() -> Result<JsValue, JsValue> {
    let records = Obj::new()
        .num("deliver", DELIVER.into())
        .num("batch", BATCH.into())
        .num("timedOut", TIMED_OUT.into())
        .num("idle", IDLE.into())
        .num("room", ROOM.into())
        .num("release", RELEASE.into())
        .num("claimed", CLAIMED.into())
        .num("dead", DEAD.into())
        .num("failed", FAILED.into())
        .num("retired", RETIRED.into())
        .num("requestEnded", REQUEST_ENDED.into())
        .num("numbered", NUMBERED.into())
        .num("gaps", GAPS.into());
    let answers = Obj::new()
        .num("late", ANSWER_LATE.into())
        .num("reply", ANSWER_REPLY.into())
        .num("replyLast", ANSWER_REPLY_LAST.into())
        .num("failed", ANSWER_FAILED.into())
        .num("failedLast", ANSWER_FAILED_LAST.into())
        .num("declined", ANSWER_DECLINED.into())
        .num("declinedLast", ANSWER_DECLINED_LAST.into())
        .num("completeLast", ANSWER_COMPLETE_LAST.into())
        .num("declinedFailedLast", ANSWER_DECLINED_FAILED_LAST.into());
    let answer_kinds = Obj::new()
        .num("reply", KIND_REPLY.into())
        .num("failure", KIND_FAILURE.into())
        .num("decline", KIND_DECLINE.into());
    let verdicts = Obj::new()
        .num("accepted", ACCEPTED.into())
        .num("duplicate", DUPLICATE.into())
        .num("mustWait", MUST_WAIT.into())
        .num("quiet", QUIET.into());
    // `[name, code]` pairs in the order the API lists them.
    let overflow = js_sys::Array::new();
    for (i, (_, name)) in OVERFLOWS.iter().enumerate() {
        overflow.push(&js_sys::Array::of2(
            &JsValue::from_str(name),
            &JsValue::from(i as u32),
        ));
    }
    let subscribe_options = js_sys::Array::new();
    for name in SUBSCRIBE_OPTIONS {
        subscribe_options.push(&JsValue::from_str(name));
    }
    Ok(Obj::new()
        .set("records", &records.into_js())
        .set("verdicts", &verdicts.into_js())
        .set("answers", &answers.into_js())
        .set("answerKinds", &answer_kinds.into_js())
        .set("overflow", &overflow)
        .set("subscribeOptions", &subscribe_options)
        .into_js())
}

fn mode(wait: bool) -> PublishMode {
    if wait {
        PublishMode::Wait
    } else {
        PublishMode::Now
    }
}

/// Non-negative count from JavaScript (validated there); `Infinity` means unbounded.
fn count(v: f64) -> usize {
    if v.is_finite() && v >= 0.0 {
        v as usize
    } else {
        usize::MAX
    }
}

/// A message's size in bytes from JavaScript (`sizeOf`'s answer, checked there to be a number
/// ≥ 0): a fraction counts as the next whole byte, so a batch never holds more than `maxBytes`
/// by the caller's own measure; `Infinity` is over every limit.
fn bytes(v: f64) -> u64 {
    if v.is_finite() && v >= 0.0 {
        v.ceil() as u64
    } else {
        u64::MAX
    }
}

/// A `notBefore` time in ms from JavaScript; `None` when negative (absent).
fn not_before(ms: f64) -> Option<u64> {
    (ms.is_finite() && ms >= 0.0).then(|| ms_to_micros(ms))
}

/// Positive duration in ms from JavaScript; `None` for 0, negative, NaN or `Infinity`.
fn duration(ms: f64) -> Option<u64> {
    (ms.is_finite() && ms > 0.0).then(|| ms_to_micros(ms).max(1))
}

/// Resolves `topic` and appends `[handle index, handle gen, known, sub index, sub gen, …]` to
/// `out` (`known`: 1 when the topic was in the core's table already, see
/// [`Broker::resolve_known`]).
fn resolve_into(core: &mut Broker<Slot>, topic: &str, out: &mut Vec<u32>) -> Result<(), JsValue> {
    let (handle, known) = core.resolve_known(topic).map_err(to_js)?;
    let subs = core.route(handle).map_err(to_js)?;
    let flags = u32::from(known) | u32::from(core.is_tracked_handle(handle)) << 1;
    route_words(handle, flags, &subs, out);
    Ok(())
}

/// A route as the driver reads it: `[handle index, handle gen, flags, (sub index, sub gen)…]`;
/// flags: 1 the topic was known, 2 it is tracked (its messages go through the core, which
/// numbers and keeps them).
fn route_words(handle: TopicHandle, flags: u32, subs: &[SubId], out: &mut Vec<u32>) {
    out.reserve(3 + subs.len() * 2);
    out.extend_from_slice(&[handle.index(), handle.generation(), flags]);
    for s in subs {
        out.push(s.index());
        out.push(s.generation());
    }
}

/// A subscription's options as the JavaScript layer hands them over: numbers in the order of
/// [`SUBSCRIBE_OPTIONS`], `NaN` for one not given (`backoff` and `batch` are 1 when the object was
/// given), the overflow policy as its code (see [`protocol`]), the group's name apart.
#[derive(Default)]
struct SubscribeArgs {
    concurrency: Option<u32>,
    max_queue: Option<f64>,
    overflow: Option<i32>,
    timeout_ms: Option<f64>,
    batch: Option<BatchArgs>,
    group: Option<String>,
    max_attempts: Option<u32>,
    backoff: Option<BackoffArgs>,
}

#[derive(Default)]
struct BatchArgs {
    max_size: Option<f64>,
    max_bytes: Option<f64>,
    max_wait_ms: Option<f64>,
    max_attempts: Option<u32>,
    backoff: Option<BackoffArgs>,
}

#[derive(Default)]
struct BackoffArgs {
    initial_ms: Option<f64>,
    max_ms: Option<f64>,
}

/// The numbers of [`WasmBroker::subscribe`]'s options, in order (read by the JavaScript layer
/// from [`protocol`]).
const SUBSCRIBE_OPTIONS: [&str; 19] = [
    "concurrency",
    "maxQueue",
    "overflow",
    "timeoutMs",
    "maxAttempts",
    "backoff",
    "backoff.initialMs",
    "backoff.maxMs",
    "batch",
    "batch.maxSize",
    "batch.maxBytes",
    "batch.maxWaitMs",
    "batch.maxAttempts",
    "batch.backoff.initialMs",
    "batch.backoff.maxMs",
    "replay",
    "replay.n",
    "replay.sinceMs",
    "replay.now",
];

/// A replay from the numbers the JavaScript layer validated: `kind` 0 retained, 1 the last `n`,
/// 2 since (per-topic numbers, else `n`, else the time `since_ms`).
fn replay_of(
    kind: f64,
    n: Option<f64>,
    since_ms: Option<f64>,
    topics: Option<Vec<String>>,
    seqs: Option<Vec<f64>>,
) -> Replay {
    let whole = |v: f64| {
        if v.is_finite() && v > 0.0 {
            v as u64
        } else {
            0
        }
    };
    match kind as u32 {
        0 => Replay::Retained,
        1 => Replay::Last(n.map_or(
            u64::MAX,
            |v| if v.is_finite() { whole(v) } else { u64::MAX },
        )),
        _ => Replay::Since {
            topics: topics
                .unwrap_or_default()
                .into_iter()
                .zip(seqs.unwrap_or_default())
                .map(|(t, s)| (t, whole(s)))
                .collect(),
            seq: n.map(whole),
            time: since_ms.map(|t| if t > 0.0 { ms_to_micros(t) } else { 0 }),
        },
    }
}

/// Reads the numbers of a subscription's options (JavaScript's values are never trusted: an
/// integer option out of its range is an `INVALID_OPTION` error naming it).
struct OptionNumbers<'a>(&'a [f64]);

impl OptionNumbers<'_> {
    /// The number at `i`, `None` when not given.
    fn get(&self, i: usize) -> Option<f64> {
        self.0.get(i).copied().filter(|v| !v.is_nan())
    }

    /// The integer at `i`, from `min` to `max` (named `expected` in the error).
    fn int(&self, i: usize, min: f64, max: f64, expected: &str) -> Result<Option<f64>, Error> {
        match self.get(i) {
            Some(v) if v.fract() != 0.0 || !(min..=max).contains(&v) => Err(Error::invalid_option(
                "options",
                format!("field `{}` must be {expected}", SUBSCRIBE_OPTIONS[i]),
            )),
            v => Ok(v),
        }
    }

    fn u32(&self, i: usize) -> Result<Option<u32>, Error> {
        let v = self.int(
            i,
            0.0,
            f64::from(u32::MAX),
            "an integer from 0 to 4294967295",
        )?;
        Ok(v.map(|n| n as u32))
    }

    fn backoff(&self, i: usize) -> Option<BackoffArgs> {
        self.get(i).map(|_| BackoffArgs {
            initial_ms: self.get(i + 1),
            max_ms: self.get(i + 2),
        })
    }
}

impl SubscribeArgs {
    /// Reads the numbers (none: every default) and the group.
    fn read(numbers: &[f64], group: Option<String>) -> Result<SubscribeArgs, Error> {
        let o = OptionNumbers(numbers);
        let overflow = o.int(
            2,
            f64::from(i32::MIN),
            f64::from(i32::MAX),
            "a 32-bit integer",
        )?;
        let batch = match o.get(8) {
            Some(_) => Some(BatchArgs {
                max_size: o.get(9),
                max_bytes: o.get(10),
                max_wait_ms: o.get(11),
                max_attempts: o.u32(12)?,
                backoff: Some(BackoffArgs {
                    initial_ms: o.get(13),
                    max_ms: o.get(14),
                }),
            }),
            None => None,
        };
        Ok(SubscribeArgs {
            concurrency: o.u32(0)?,
            max_queue: o.get(1),
            overflow: overflow.map(|n| n as i32),
            timeout_ms: o.get(3),
            batch,
            group,
            max_attempts: o.u32(4)?,
            backoff: o.backoff(5),
        })
    }

    fn into_options(self) -> SubscribeOptions {
        let group = self.group.map(|name| {
            let named = self.max_attempts.is_some() || self.backoff.is_some();
            let d = RetryPolicy::default();
            let b = self.backoff.unwrap_or_default();
            let initial = b.initial_ms.map_or(d.backoff_initial, ms_to_micros);
            GroupOptions {
                name,
                retry: named.then(|| RetryPolicy {
                    max_attempts: self.max_attempts.unwrap_or(d.max_attempts),
                    backoff_initial: initial,
                    backoff_max: b.max_ms.map_or(d.backoff_max.max(initial), ms_to_micros),
                }),
            }
        });
        let batch = self.batch.map(|b| {
            let d = BatchPolicy::default();
            let backoff = b.backoff.unwrap_or_default();
            let initial = backoff.initial_ms.map_or(d.backoff_initial, ms_to_micros);
            BatchPolicy {
                max_size: b.max_size.map_or(d.max_size, count),
                max_bytes: b.max_bytes.map_or(d.max_bytes, bytes),
                max_wait: b.max_wait_ms.map_or(d.max_wait, ms_to_micros),
                max_attempts: b.max_attempts.unwrap_or(d.max_attempts),
                backoff_initial: initial,
                backoff_max: backoff
                    .max_ms
                    .map_or(d.backoff_max.max(initial), ms_to_micros),
            }
        });
        SubscribeOptions {
            concurrency: self.concurrency.unwrap_or(1),
            max_queue: self.max_queue.map(count),
            overflow: self.overflow.and_then(overflow_from),
            timeout: self.timeout_ms.and_then(duration),
            batch,
            group,
            replay: None,
        }
    }
}

/// The broker core for the JavaScript `Bus` (internal to the package).
#[wasm_bindgen]
pub struct WasmBroker {
    core: Broker<Slot>,
    released: Rc<RefCell<Vec<u32>>>,
    /// Where JavaScript writes an ASCII topic for [`WasmBroker::resolve_scratch`].
    topic_in: Vec<u8>,
    /// Where `resolve_scratch`, `subscribe_scratch` and `unsubscribe` leave their answer, read
    /// by JavaScript in place.
    route_out: Vec<u32>,
    /// Where `pump` leaves its records, read by JavaScript in place.
    records: Vec<u32>,
    /// The error of the last call that answered 0 instead of throwing (see
    /// [`WasmBroker::take_error`]).
    error: Option<JsValue>,
    /// Durable copies handed over by [`WasmBroker::restore_add`], put back together by
    /// [`WasmBroker::restore_commit`].
    restoring: Vec<crate::logs::Restored<Slot>>,
}

/// A retired subscription's counts appended as words, low then high (read back by
/// [`WasmBroker::final_stats`]; the latency quantiles in microseconds, as the histogram keeps
/// them), their number written at `out[k_at]`; none when it counted nothing.
fn final_words(r: &Retired, out: &mut Vec<u32>, k_at: usize) {
    if r.is_quiet() {
        return;
    }
    let start = out.len();
    let (c, queued, latency) = r.counts();
    let micros = |ms: f64| (ms * 1000.0).round() as u64;
    for n in [
        queued,
        c.delivered,
        c.dropped,
        c.expired,
        c.failed,
        c.cancelled,
        latency.count,
        micros(latency.p50_ms),
        micros(latency.p99_ms),
    ] {
        out.extend_from_slice(&[n as u32, (n >> 32) as u32]);
    }
    out[k_at] = (out.len() - start) as u32;
}

/// What a publish does to its topic's retained value, from JavaScript's code: 1 keep, 2 clear.
fn retain_of(code: u32) -> Retain {
    match code {
        1 => Retain::Keep,
        2 => Retain::Clear,
        _ => Retain::No,
    }
}

/// `[slot, number]` of each message, flat.
fn slots_and_numbers(list: &[crate::message::Message<Slot>]) -> Vec<f64> {
    let mut out = Vec::with_capacity(list.len() * 2);
    for m in list {
        out.push(f64::from(m.payload().slot));
        out.push(m.topic_seq().unwrap_or(0) as f64);
    }
    out
}

/// Bytes of the topic buffer: longer topics take the string path.
const TOPIC_SCRATCH_BYTES: usize = 256;

#[wasm_bindgen]
impl WasmBroker {
    /// A broker. `dedupe_max_ids` 0 turns dedupe off; durations ≤ 0 or infinite mean none.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dedupe_max_ids: f64,
        dedupe_max_age_ms: f64,
        max_queue: f64,
        overflow: i32,
        timeout_ms: f64,
        retention_max_ids: f64,
        retention_max_age_ms: f64,
        seed: f64,
        logs: &[f64],
        history: Option<String>,
    ) -> Result<WasmBroker, JsValue> {
        let d = LogConfig::default();
        let at = |i: usize| logs.get(i).copied().filter(|n| !n.is_nan());
        let mut patterns = Vec::new();
        for p in history
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|p| !p.is_empty())
        {
            patterns.push(Pattern::parse(p).map_err(|e| to_js(Error::from(e)))?);
        }
        let logs = LogConfig {
            retain_max_topics: at(0).map_or(d.retain_max_topics, count),
            retain_max_bytes: at(1).map_or(d.retain_max_bytes, bytes),
            history: patterns,
            history_max_messages: at(2).map_or(d.history_max_messages, count),
            history_max_age: at(3).map_or(d.history_max_age, duration),
            history_max_topics: at(4).map_or(d.history_max_topics, count),
            history_max_bytes: at(5).map_or(d.history_max_bytes, bytes),
        };
        let dedupe = (dedupe_max_ids > 0.0).then(|| DedupeWindow {
            max_ids: count(dedupe_max_ids),
            max_age: duration(dedupe_max_age_ms),
        });
        let core = Broker::new(BrokerConfig {
            dedupe,
            max_queue: count(max_queue),
            overflow: overflow_from(overflow).unwrap_or_default(),
            timeout: duration(timeout_ms),
            track_idle: true,
            report_invalidated: true,
            retention: Retention {
                max_ids: count(retention_max_ids),
                max_age: duration(retention_max_age_ms),
            },
            seed: seed as u64,
            logs,
            report_numbered: true,
            ..BrokerConfig::default()
        })
        .map_err(to_js)?;
        Ok(WasmBroker {
            core,
            released: Rc::new(RefCell::new(Vec::new())),
            restoring: Vec::new(),
            topic_in: vec![0; TOPIC_SCRATCH_BYTES],
            route_out: Vec::new(),
            error: None,
            records: Vec::new(),
        })
    }

    /// Subscribes; returns `[index, gen, id, stale topic handle…]`: the handles after the first
    /// three are the cached routes this subscription changed (the driver drops those, and only
    /// those). `options` are numbers in the order of [`SUBSCRIBE_OPTIONS`] (none: every
    /// default), already validated by the JavaScript layer and copied at its call
    /// ([`SubscribeArgs`]); what it leaves out (`NaN`) takes the bus defaults. With a `group`,
    /// the subscription joins that work queue: `batch` is then its batch claim, `timeoutMs` its
    /// acknowledgement deadline, and `maxAttempts`/`backoff` the group's retry policy.
    pub fn subscribe(
        &mut self,
        pattern: &str,
        options: &[f64],
        group: Option<String>,
        replay_topics: Option<Vec<String>>,
        replay_seqs: Option<Vec<f64>>,
    ) -> Result<Vec<f64>, JsValue> {
        let args = SubscribeArgs::read(options, group).map_err(to_js)?;
        let mut subscribe = args.into_options();
        let o = OptionNumbers(options);
        if let Some(kind) = o.get(15) {
            subscribe.replay = Some(replay_of(
                kind,
                o.get(16),
                o.get(17),
                replay_topics,
                replay_seqs,
            ));
            self.core.note_time(o.get(18).map_or(0, ms_to_micros));
        }
        let id = self.core.subscribe(pattern, &subscribe).map_err(to_js)?;
        self.core.set_direct(id, true);
        let order = self.core.subscription_order(id).unwrap_or(0);
        let mut handles = Vec::new();
        self.core.drain_invalidated(&mut handles);
        let mut out = vec![id.index() as f64, id.generation() as f64, order as f64];
        out.extend(handles.into_iter().map(f64::from));
        Ok(out)
    }

    /// [`WasmBroker::subscribe`] with every default, for the pattern of `len` bytes in the topic
    /// buffer (see [`WasmBroker::topic_scratch`]): no string crossing and no array made. Returns
    /// where the answer is in memory (a byte offset, valid until the next call): its length in
    /// `u32`s, then `[index, gen, id low word, id high word, stale topic handle…]`. Returns 0
    /// when it refused the pattern: the error is then taken with [`WasmBroker::take_error`]
    /// (a plain number crosses without the adapter a `Result` needs).
    pub fn subscribe_scratch(&mut self, len: u32) -> u32 {
        match self.try_subscribe_scratch(len) {
            Ok(at) => at,
            Err(e) => {
                self.error = Some(e);
                0
            }
        }
    }

    fn try_subscribe_scratch(&mut self, len: u32) -> Result<u32, JsValue> {
        let pattern = scratch_str(&self.topic_in, len).ok_or_else(|| {
            to_js(crate::error::Error::new(
                crate::error::ErrorCode::InvalidPattern,
                format!("the topic buffer's first {len} bytes are not a pattern (at most {TOPIC_SCRATCH_BYTES} bytes of UTF-8)"),
            ))
        })?;
        let id = self
            .core
            .subscribe(pattern, &SubscribeOptions::default())
            .map_err(to_js)?;
        self.core.set_direct(id, true);
        let order = self.core.subscription_order(id).unwrap_or(0);
        let mut out = std::mem::take(&mut self.route_out);
        out.clear();
        out.extend_from_slice(&[
            0,
            id.index(),
            id.generation(),
            order as u32,
            (order >> 32) as u32,
        ]);
        self.core.drain_invalidated(&mut out);
        Ok(self.lend_answer(out))
    }

    /// The error of the last call that answered 0 (undefined when there is none).
    pub fn take_error(&mut self) -> JsValue {
        self.error.take().unwrap_or(JsValue::UNDEFINED)
    }

    /// Keeps `out` (whose first word is a placeholder) as the answer JavaScript reads in place:
    /// writes its length after that word there and returns its byte offset.
    fn lend_answer(&mut self, mut out: Vec<u32>) -> u32 {
        out[0] = out.len() as u32 - 1;
        self.route_out = out;
        self.route_out.as_ptr() as usize as u32
    }

    /// Unsubscribes, first adding the deliveries and failures the driver made directly and has
    /// not told yet. Returns where the answer is in memory (a byte offset, valid until the next
    /// call): its length in `u32`s, then `[state, pending, k, final word × k, stale topic
    /// handle…]`. `state` is 0 when it was already gone, 1 when its final statistics come later
    /// (a retired record), 2 when it retired at once: then the `k` final words are its counts
    /// (none when it counted nothing), which the driver keeps as they are and turns into
    /// statistics with [`WasmBroker::final_stats`] only if asked. With `more` (the driver may
    /// have counted deliveries to it on routes it caches, which the stale ones tell), state 3
    /// takes the place of 2: it retired at once and its record waits for
    /// [`WasmBroker::retire`]. `pending` is 1 when [`WasmBroker::pump`] has records to hand out
    /// (else the driver need not call it; with state 3, `retire` says).
    pub fn unsubscribe(
        &mut self,
        index: u32,
        gen: u32,
        delivered: f64,
        failed: f64,
        more: bool,
    ) -> u32 {
        let id = SubId::from_parts(index, gen);
        if delivered > 0.0 || failed > 0.0 {
            self.core.record_direct(id, delivered as u64, failed as u64);
        }
        let mut out = std::mem::take(&mut self.route_out);
        out.clear();
        out.extend_from_slice(&[0, 0, 0, 0]);
        if self.core.unsubscribe(id) {
            out[1] = 1;
            if more {
                if self.core.is_retired(id) {
                    out[1] = 3;
                }
            } else if let Some(r) = self.core.take_retired_of(id) {
                out[1] = 2;
                final_words(&r, &mut out, 3);
            }
        }
        out[2] = (out[1] != 3 && self.has_pending()) as u32;
        self.core.drain_invalidated(&mut out);
        self.lend_answer(out)
    }

    /// Ends the unsubscribe of a subscription in state 3 (see [`WasmBroker::unsubscribe`]):
    /// adds the direct deliveries and failures the driver counted on the stale routes, then
    /// hands out its record. Returns where the answer is: its length, then `[pending, k, final
    /// word × k]`, as for state 2.
    pub fn retire(&mut self, index: u32, gen: u32, delivered: f64, failed: f64) -> u32 {
        let id = SubId::from_parts(index, gen);
        if delivered > 0.0 || failed > 0.0 {
            self.core.record_direct(id, delivered as u64, failed as u64);
        }
        let mut out = std::mem::take(&mut self.route_out);
        out.clear();
        out.extend_from_slice(&[0, 0, 0]);
        if let Some(r) = self.core.take_retired_of(id) {
            final_words(&r, &mut out, 2);
        }
        out[1] = self.has_pending() as u32;
        self.lend_answer(out)
    }

    fn has_pending(&self) -> bool {
        self.core.has_pending() || !self.released.borrow().is_empty()
    }

    /// The final statistics of a subscription that retired at once (state 2 of
    /// [`WasmBroker::unsubscribe`]): its id, pattern and group, with the counts of the final words
    /// it gave (none: every count zero).
    pub fn final_stats(
        &self,
        id: f64,
        pattern: String,
        group: Option<String>,
        words: &[u32],
    ) -> Result<JsValue, JsValue> {
        let mut stats = SubscriptionStats {
            id: id as u64,
            pattern,
            group,
            ..SubscriptionStats::default()
        };
        if !words.is_empty() {
            let mut n = words
                .chunks_exact(2)
                .map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32));
            let mut next = || n.next().unwrap_or(0);
            stats.queued = next();
            stats.delivered = next();
            stats.dropped = next();
            stats.expired = next();
            stats.failed = next();
            stats.cancelled = next();
            stats.latency.count = next();
            stats.latency.p50_ms = next() as f64 / 1000.0;
            stats.latency.p99_ms = next() as f64 / 1000.0;
        }
        js::subscription_stats(&stats)
    }

    /// Validates and resolves a topic: `[handle index, handle gen, known, sub index, sub gen,
    /// …]`, the subscriptions in subscription order; `known` is 1 when the topic was resolved
    /// before (a route worth caching), 0 the first time. A handle gen the driver has not seen means the core
    /// started a new topic table: every handle cached before is stale.
    pub fn resolve(&mut self, topic: &str) -> Result<Vec<u32>, JsValue> {
        let mut out = Vec::new();
        resolve_into(&mut self.core, topic, &mut out)?;
        Ok(out)
    }

    /// Where JavaScript writes a topic for [`WasmBroker::resolve_scratch`] (a byte offset in the
    /// instance's memory, stable for the broker's life), and how many bytes fit.
    pub fn topic_scratch(&self) -> Vec<u32> {
        vec![
            self.topic_in.as_ptr() as usize as u32,
            TOPIC_SCRATCH_BYTES as u32,
        ]
    }

    /// [`WasmBroker::resolve`] for the topic of `len` bytes in the topic buffer, with no string
    /// crossing: the answer (same layout) is left in the core's memory at
    /// [`WasmBroker::route_ptr`]; returns its length in `u32`s.
    pub fn resolve_scratch(&mut self, len: u32) -> Result<u32, JsValue> {
        let topic = scratch_str(&self.topic_in, len).ok_or_else(|| {
            to_js(crate::error::Error::new(
                crate::error::ErrorCode::InvalidTopic,
                format!("the topic buffer's first {len} bytes are not a topic (at most {TOPIC_SCRATCH_BYTES} bytes of UTF-8)"),
            ))
        })?;
        let mut out = std::mem::take(&mut self.route_out);
        out.clear();
        let r = resolve_into(&mut self.core, topic, &mut out);
        let n = out.len() as u32;
        self.route_out = out;
        r.map(|()| n)
    }

    /// The route of a topic resolved before, by its handle (a cached route the driver was told
    /// is stale): the answer of [`WasmBroker::resolve_scratch`] (the topic known), left at
    /// [`WasmBroker::route_ptr`]; returns its length in `u32`s, or 0 when the handle is not the
    /// topic's any more (the topic table started anew since): then the driver resolves the topic.
    pub fn reroute(&mut self, index: u32, gen: u32) -> u32 {
        let handle = TopicHandle::from_parts(index, gen);
        let Ok(subs) = self.core.route(handle) else {
            return 0;
        };
        let mut out = std::mem::take(&mut self.route_out);
        out.clear();
        let flags = 1 | u32::from(self.core.is_tracked_handle(handle)) << 1;
        route_words(handle, flags, &subs, &mut out);
        let n = out.len() as u32;
        self.route_out = out;
        n
    }

    /// Where the last `resolve_scratch` left its answer (valid until the next call).
    pub fn route_ptr(&self) -> u32 {
        self.route_out.as_ptr() as usize as u32
    }

    /// Checks that `n` messages of up to `size` bytes fit every refusing subscription of the
    /// topic (`QUEUE_FULL` / `MESSAGE_TOO_LARGE` otherwise), publishing nothing.
    pub fn check_room(
        &mut self,
        handle: u32,
        handle_gen: u32,
        n: f64,
        size: f64,
    ) -> Result<(), JsValue> {
        self.core
            .check_room(
                TopicHandle::from_parts(handle, handle_gen),
                count(n),
                bytes(size),
            )
            .map_err(to_js)
    }

    /// Publishes one message: 0 accepted, 1 duplicate, 2 must wait (only when `wait`), plus
    /// `QUIET` (8) when the call left nothing for a pump to hand out.
    /// `attempts`: attempts already made (see [`Outgoing::attempts`]; above 1000 `INVALID_OPTION`).
    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &mut self,
        handle: u32,
        handle_gen: u32,
        slot: u32,
        id: Option<String>,
        key: Option<String>,
        ttl_ms: f64,
        size: f64,
        priority: u32,
        not_before_ms: f64,
        attempts: u32,
        now_ms: f64,
        wait: bool,
        retain: u32,
        request: f64,
    ) -> Result<u32, JsValue> {
        let mut msg = self.outgoing(slot, id, key.as_deref(), ttl_ms, size);
        msg.retain = retain_of(retain);
        // The request this message carries (`open_request`'s id; NaN or -1: none).
        if request >= 0.0 {
            let r = request as u64;
            msg.request = Some(RequestId::from_parts((r >> 32) as u32, r as u32));
        }
        msg.priority = priority;
        msg.not_before = not_before(not_before_ms);
        msg.attempts = attempts;
        let armed = self.core.armed();
        let r = self
            .core
            .publish_to(
                TopicHandle::from_parts(handle, handle_gen),
                msg,
                ms_to_micros(now_ms),
                mode(wait),
            )
            .map_err(to_js)?;
        let verdict = match r {
            Published::Accepted { .. } => ACCEPTED,
            Published::Duplicate => DUPLICATE,
            Published::MustWait => MUST_WAIT,
        };
        let quiet = !self.core.has_ready()
            && !self.core.has_events()
            && !self.core.has_numbered()
            && self.released.borrow().is_empty()
            && self.core.armed() == armed;
        Ok(if quiet { verdict | QUIET } else { verdict })
    }

    /// Publishes several messages on one topic; returns how many were accepted, or -1 when a
    /// `wait` subscription is full (only when `wait`). `ids`, when given, has one string per
    /// slot, and `has_id` says which of them are ids (the empty string is an id, as for
    /// `publish`); `sizes` has one size per slot, or is empty.
    #[allow(clippy::too_many_arguments)]
    pub fn publish_batch(
        &mut self,
        handle: u32,
        handle_gen: u32,
        slots: &[u32],
        ids: Option<Vec<String>>,
        has_id: &[u8],
        key: Option<String>,
        ttl_ms: f64,
        sizes: &[f64],
        priority: u32,
        not_before_ms: f64,
        now_ms: f64,
        wait: bool,
    ) -> Result<i32, JsValue> {
        let mut ids = ids.map(|v| v.into_iter());
        let msgs: Vec<Outgoing<Slot>> = slots
            .iter()
            .enumerate()
            .map(|(i, &slot)| {
                let id = ids
                    .as_mut()
                    .and_then(|it| it.next())
                    .filter(|_| has_id.get(i).is_some_and(|&b| b != 0));
                let size = sizes.get(i).copied().unwrap_or(0.0);
                let mut m = self.outgoing(slot, id, key.as_deref(), ttl_ms, size);
                m.priority = priority;
                m.not_before = not_before(not_before_ms);
                m
            })
            .collect();
        let r = self
            .core
            .publish_batch(
                TopicHandle::from_parts(handle, handle_gen),
                msgs,
                ms_to_micros(now_ms),
                mode(wait),
            )
            .map_err(to_js)?;
        Ok(r.map_or(-1, |n| n as i32))
    }

    fn outgoing(
        &self,
        slot: u32,
        id: Option<String>,
        key: Option<&str>,
        ttl_ms: f64,
        size: f64,
    ) -> Outgoing<Slot> {
        Outgoing {
            payload: Rc::new(SlotRef {
                slot,
                released: self.released.clone(),
            }),
            id: id.map(Rc::from),
            key: key.map(Rc::from),
            headers: None,
            ttl: duration(ttl_ms),
            size: bytes(size),
            priority: 0,
            not_before: None,
            attempts: 0,
            request: None,
            retain: crate::logs::Retain::No,
        }
    }

    /// Checks an id against the bus's idempotence filter (recording it): `true` the first time.
    pub fn check_id(&mut self, id: &str, now_ms: f64) -> bool {
        self.core.check_id(id, ms_to_micros(now_ms))
    }

    /// [`WasmBroker::check_id`] for the id of `len` bytes in the topic buffer (see
    /// [`WasmBroker::topic_scratch`]): 1 the first time, 0 for a duplicate, 2 when the bytes are
    /// not an id (nothing recorded).
    pub fn check_id_scratch(&mut self, len: u32, now_ms: f64) -> u32 {
        match scratch_str(&self.topic_in, len) {
            Some(id) => u32::from(self.core.check_id(id, ms_to_micros(now_ms))),
            None => 2,
        }
    }

    /// Whether a message published now on the topic of `handle` (with a key or not) would start
    /// at once in every subscription it reaches, so the driver may call their handlers itself
    /// (see [`Broker::starts_now`]); false for a stale handle (the driver resolves it again on
    /// the way through the core).
    pub fn starts_now(&mut self, handle: u32, handle_gen: u32, keyed: bool) -> bool {
        self.core
            .starts_now(TopicHandle::from_parts(handle, handle_gen), keyed)
            .unwrap_or(false)
    }

    /// Registers a delivery the driver started itself that turned out asynchronous; returns
    /// `delivery index × 2^32 + delivery gen` (one number: nothing to allocate per call).
    pub fn begin(&mut self, index: u32, gen: u32, key: Option<String>, now_ms: f64) -> f64 {
        let d = self.core.begin_external(
            SubId::from_parts(index, gen),
            key.map(Rc::from),
            ms_to_micros(now_ms),
        );
        f64::from(d.index()) * 4_294_967_296.0 + f64::from(d.generation())
    }

    /// Applies completions (`delivery index, delivery gen, ok` triples; each failed one takes
    /// the next of `reasons`, its error's message), fires due timers and returns the next round
    /// of records (see the module docs), left in the core's memory at
    /// [`WasmBroker::records_ptr`] (valid until the next call); returns their length in `u32`s.
    pub fn pump(&mut self, now_ms: f64, completions: &[u32], reasons: Option<Vec<String>>) -> u32 {
        let mut out = std::mem::take(&mut self.records);
        out.clear();
        self.pump_into(now_ms, completions, reasons, &mut out);
        let n = out.len() as u32;
        self.records = out;
        n
    }

    /// Where the last `pump` left its records.
    pub fn records_ptr(&self) -> u32 {
        self.records.as_ptr() as usize as u32
    }

    fn pump_into(
        &mut self,
        now_ms: f64,
        completions: &[u32],
        reasons: Option<Vec<String>>,
        out: &mut Vec<u32>,
    ) {
        let now = ms_to_micros(now_ms);
        let mut reasons = reasons.unwrap_or_default().into_iter();
        for c in completions.chunks_exact(3) {
            let id = DeliveryId::from_parts(c[0], c[1]);
            if c[2] != 0 {
                self.core.complete(id, true, now);
            } else {
                match reasons.next() {
                    Some(r) => self.core.complete_failed(id, &r, now),
                    None => self.core.complete(id, false, now),
                }
            }
        }
        self.core.fire_timers(now);
        // Numbers first: a message may be handed out in this same round.
        self.core.drain_numbered(|p, seq| {
            out.extend_from_slice(&[NUMBERED, p.slot, seq as u32, (seq >> 32) as u32]);
        });
        // Events raised by completions and timers come first (an idle subscription may get a new
        // delivery in this same round); events raised while handing out deliveries come after.
        self.drain_events(out);
        while let Some(d) = self.core.next_delivery(now) {
            if self.core.is_member(d.sub) {
                let ms = match &d.items {
                    Items::One(m) => std::slice::from_ref(m),
                    Items::Batch(ms) => &ms[..],
                };
                out.extend_from_slice(&[
                    CLAIMED,
                    d.id.index(),
                    d.id.generation(),
                    d.sub.index(),
                    d.sub.generation(),
                    d.final_attempt as u32,
                    ms.len() as u32,
                ]);
                for m in ms {
                    out.push(m.payload().slot);
                    out.push(m.attempt());
                }
                continue;
            }
            match d.items {
                Items::One(m) => out.extend_from_slice(&[
                    DELIVER,
                    d.id.index(),
                    d.id.generation(),
                    d.sub.index(),
                    d.sub.generation(),
                    m.payload().slot,
                    d.attempt,
                ]),
                Items::Batch(ms) => {
                    out.extend_from_slice(&[
                        BATCH,
                        d.id.index(),
                        d.id.generation(),
                        d.sub.index(),
                        d.sub.generation(),
                        d.attempt,
                        d.final_attempt as u32,
                        ms.len() as u32,
                    ]);
                    out.extend(ms.iter().map(|m| m.payload().slot));
                }
            }
        }
        self.drain_events(out);
        for slot in self.released.borrow_mut().drain(..) {
            out.extend_from_slice(&[RELEASE, slot]);
        }
    }

    fn drain_events(&mut self, out: &mut Vec<u32>) {
        while let Some(e) = self.core.poll_event() {
            match e {
                Event::TimedOut {
                    delivery,
                    sub,
                    final_attempt,
                } => out.extend_from_slice(&[
                    TIMED_OUT,
                    delivery.index(),
                    delivery.generation(),
                    sub.index(),
                    sub.generation(),
                    final_attempt as u32,
                ]),
                Event::Idle(sub) => out.extend_from_slice(&[IDLE, sub.index(), sub.generation()]),
                Event::Room => out.push(ROOM),
                Event::Dead => out.push(DEAD),
                Event::Failed => out.push(FAILED),
                Event::Retired(_) => out.push(RETIRED),
                Event::Gap => out.push(GAPS),
                Event::RequestEnded(id, end) => out.extend_from_slice(&[
                    REQUEST_ENDED,
                    id.index(),
                    id.generation(),
                    u32::from(end == RequestEnd::Closed),
                ]),
            }
        }
    }

    /// The gaps replays reported: `[sub index, sub gen, topic, from (-1: unknown), to]` per
    /// gap, flat.
    pub fn take_gaps(&mut self) -> js_sys::Array {
        let a = js_sys::Array::new();
        while let Some((sub, gap)) = self.core.take_gap() {
            a.push(&JsValue::from(sub.index()));
            a.push(&JsValue::from(sub.generation()));
            a.push(&JsValue::from_str(&gap.topic));
            a.push(&JsValue::from(gap.from.map_or(-1.0, |n| n as f64)));
            a.push(&JsValue::from(gap.to as f64));
        }
        a
    }

    /// The retained values `pattern` matches, in publish order: `[slot, number]` pairs, flat.
    pub fn retained(&mut self, pattern: &str, now_ms: f64) -> Result<Vec<f64>, JsValue> {
        self.core.note_time(ms_to_micros(now_ms));
        let list = self.core.retained(pattern).map_err(to_js)?;
        Ok(slots_and_numbers(&list))
    }

    /// What a new subscription on `pattern` asking for this replay (see
    /// [`WasmBroker::subscribe`]) would be given first: `[slots and numbers, gaps]`, the first
    /// as [`WasmBroker::retained`]'s, the second as [`WasmBroker::take_gaps`]' (sub 0, 0). At
    /// most `max_messages` and `max_bytes` (the newest; the rest reported as gaps).
    #[allow(clippy::too_many_arguments)]
    pub fn replay(
        &mut self,
        pattern: &str,
        kind: f64,
        n: f64,
        since_ms: f64,
        topics: Option<Vec<String>>,
        seqs: Option<Vec<f64>>,
        max_messages: f64,
        max_bytes: f64,
        now_ms: f64,
    ) -> Result<js_sys::Array, JsValue> {
        let num = |v: f64| (!v.is_nan()).then_some(v);
        let replay = replay_of(kind, num(n), num(since_ms), topics, seqs);
        // Checked by the JavaScript layer (a whole number ≥ 0 of messages, a number ≥ 0 of
        // bytes, or Infinity): a fraction of a byte does not make room for one more.
        let max_bytes = if max_bytes.is_finite() && max_bytes >= 0.0 {
            max_bytes.floor() as u64
        } else {
            u64::MAX
        };
        let limit = (max_messages.max(0.0) as usize, max_bytes);
        let (list, gaps) = self
            .core
            .replay(pattern, &replay, ms_to_micros(now_ms), limit)
            .map_err(to_js)?;
        let out = js_sys::Array::new();
        out.push(&js_sys::Float64Array::from(&slots_and_numbers(&list)[..]));
        let g = js_sys::Array::new();
        for gap in gaps {
            g.push(&JsValue::from(0));
            g.push(&JsValue::from(0));
            g.push(&JsValue::from_str(&gap.topic));
            g.push(&JsValue::from(gap.from.map_or(-1.0, |n| n as f64)));
            g.push(&JsValue::from(gap.to as f64));
        }
        out.push(&g);
        Ok(out)
    }

    /// Numbers and keeps a message the driver delivers directly (see [`Broker::log_direct`]):
    /// its number on its topic (0 when the topic is not tracked) × 4, plus 2 when routes went
    /// stale (take them with [`WasmBroker::take_invalidated`]), plus 1 when slots wait to be
    /// released (a pump hands them over; asked for once a few have gathered, not per message).
    #[allow(clippy::too_many_arguments)]
    pub fn log_direct(
        &mut self,
        handle: u32,
        handle_gen: u32,
        slot: u32,
        id: Option<String>,
        key: Option<String>,
        ttl_ms: f64,
        size: f64,
        retain: u32,
        now_ms: f64,
    ) -> Result<f64, JsValue> {
        let mut msg = self.outgoing(slot, id, key.as_deref(), ttl_ms, size);
        msg.retain = retain_of(retain);
        let seq = self
            .core
            .log_direct(
                TopicHandle::from_parts(handle, handle_gen),
                msg,
                ms_to_micros(now_ms),
            )
            .map_err(to_js)?;
        let stale = self.core.has_invalidated();
        let release = self.released.borrow().len() >= 32;
        Ok(seq as f64 * 4.0 + f64::from(u8::from(stale) * 2 + u8::from(release)))
    }

    /// Clears `topic`'s retained value; whether it had one.
    pub fn clear_retained(&mut self, topic: &str, now_ms: f64) -> Result<bool, JsValue> {
        self.core
            .clear_retained(topic, ms_to_micros(now_ms))
            .map_err(to_js)
    }

    /// What `topic`'s log holds: `[first, last, retained (-1: none), held]`, or empty.
    pub fn log_of(&mut self, topic: &str, now_ms: f64) -> Vec<f64> {
        self.core
            .log_of(topic, ms_to_micros(now_ms))
            .map_or_else(Vec::new, |l| {
                vec![
                    l.first as f64,
                    l.last as f64,
                    l.retained.map_or(-1.0, |n| n as f64),
                    l.held as f64,
                ]
            })
    }

    /// Hands over one durable copy for [`WasmBroker::restore_commit`]; `slot` -1 carries only
    /// the numbering on.
    #[allow(clippy::too_many_arguments)]
    pub fn restore_add(
        &mut self,
        topic: String,
        slot: f64,
        seq: f64,
        published_at_ms: f64,
        retained: bool,
        id: Option<String>,
        key: Option<String>,
        ttl_ms: f64,
        size: f64,
    ) {
        // Checked by the JavaScript layer (a whole number); anything else is refused by the
        // core as number 0.
        let seq = if seq.is_finite() && seq >= 1.0 && seq.fract() == 0.0 {
            seq as u64
        } else {
            0
        };
        let out =
            (slot >= 0.0).then(|| self.outgoing(slot as u32, id, key.as_deref(), ttl_ms, size));
        self.restoring.push(crate::logs::Restored {
            topic,
            out,
            seq,
            published_at: ms_to_micros(published_at_ms.max(0.0)),
            retained,
        });
    }

    /// Puts back the `count` copies handed over since the last call (see
    /// [`Broker::restore_all`]: all or none). Any other number of copies waiting restores none.
    pub fn restore_commit(&mut self, count: u32, now_ms: f64) -> Result<(), JsValue> {
        let entries = std::mem::take(&mut self.restoring);
        if entries.len() != count as usize {
            return Err(to_js(crate::Error::new(
                crate::ErrorCode::InvalidArgument,
                "the durable copies handed over are not the number expected",
            )));
        }
        self.core.note_time(ms_to_micros(now_ms));
        self.core.restore_all(entries).map_err(to_js)
    }

    /// Removes retained values and history messages past their TTL or the age limit (before
    /// statistics are read).
    pub fn expire_logs(&mut self, now_ms: f64) {
        self.core.expire_logs(ms_to_micros(now_ms));
    }

    /// What retained values and history hold and counted, after an expiry pass at `now_ms`:
    /// `[topics, retained, history, bytes, evicted, expired, replayed, gaps]` (the `logs` of
    /// [`WasmBroker::stats`], without gathering anything else).
    pub fn log_stats(&mut self, now_ms: f64) -> Vec<f64> {
        self.core.expire_logs(ms_to_micros(now_ms));
        let s = self.core.log_stats();
        [
            s.topics, s.retained, s.history, s.bytes, s.evicted, s.expired, s.replayed, s.gaps,
        ]
        .map(|n| n as f64)
        .to_vec()
    }

    /// From now on (`on`), lists each topic whose log loses a message or its retained value, or
    /// is forgotten ([`WasmBroker::take_log_changes`]): for a driver mirroring the logs in storage.
    pub fn report_log_changes(&mut self, on: bool) {
        self.core.report_log_changes(on);
    }

    /// The topics whose log lost something or was forgotten since the last call, oldest change
    /// first (empty unless [`WasmBroker::report_log_changes`] turned the list on).
    pub fn take_log_changes(&mut self) -> js_sys::Array {
        self.core
            .take_log_changes()
            .iter()
            .map(|t| JsValue::from_str(t))
            .collect()
    }

    /// The topic handles whose cached route went stale since the last call (a retained value
    /// came or went).
    pub fn take_invalidated(&mut self) -> Vec<u32> {
        self.core.take_invalidated()
    }

    /// The next dead letter, `[group, topic, slot, attempts, code, error, report index, report
    /// gen]` (the core's letter; the report pair is `-1, -1` unless the driver must still report
    /// the failure as that member's), or `undefined`.
    pub fn take_dead(&mut self) -> JsValue {
        let Some((l, report)) = self.core.take_dead() else {
            return JsValue::UNDEFINED;
        };
        let a = js_sys::Array::new();
        a.push(&JsValue::from_str(&l.group));
        a.push(&JsValue::from_str(&l.topic));
        a.push(&JsValue::from(l.message.payload().slot));
        a.push(&JsValue::from(l.attempts));
        a.push(&JsValue::from_str(l.error.code.as_str()));
        a.push(&JsValue::from_str(&l.error.message));
        let (ri, rg) = report.map_or((-1.0, -1.0), |s| (s.index() as f64, s.generation() as f64));
        a.push(&JsValue::from(ri));
        a.push(&JsValue::from(rg));
        a.into()
    }

    /// The next retired subscription: `[index, gen, stats]`, or `undefined`.
    pub fn take_retired(&mut self) -> Result<JsValue, JsValue> {
        let Some((id, stats)) = self.core.take_retired() else {
            return Ok(JsValue::UNDEFINED);
        };
        let a = js_sys::Array::new();
        a.push(&JsValue::from(id.index()));
        a.push(&JsValue::from(id.generation()));
        a.push(&js::subscription_stats(&stats)?);
        Ok(a.into())
    }

    /// The next final failure no delivery reported, `[sub index, sub gen, attempts, code,
    /// error, slot…]`, or `undefined`.
    pub fn take_failed(&mut self) -> JsValue {
        let Some(f) = self.core.take_failed() else {
            return JsValue::UNDEFINED;
        };
        let a = js_sys::Array::new();
        a.push(&JsValue::from(f.sub.index()));
        a.push(&JsValue::from(f.sub.generation()));
        a.push(&JsValue::from(f.attempts));
        a.push(&JsValue::from_str(f.code.as_str()));
        a.push(&JsValue::from_str(&f.error));
        for m in &f.messages {
            a.push(&JsValue::from(m.payload().slot));
        }
        a.into()
    }

    /// The `HANDLER_TIMEOUT` message for a timed-out delivery of this subscription.
    pub fn timeout_message(&self, index: u32, gen: u32) -> String {
        self.core.timeout_message(SubId::from_parts(index, gen))
    }

    /// Where a work-queue message stands: `{ state, attempts, group }` or `undefined`.
    pub fn status(&self, id: &str, group: Option<String>, now_ms: f64) -> Result<JsValue, JsValue> {
        match self.core.status(id, group.as_deref(), ms_to_micros(now_ms)) {
            Some(st) => Ok(Obj::new()
                .set("state", &JsValue::from_str(st.state.as_str()))
                .num("attempts", st.attempts.into())
                .opt_str("group", st.group.as_deref())
                .into_js()),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// What a close would leave undelivered: `[{ slot, group, state, attempts }]`.
    pub fn remaining(&self) -> Result<JsValue, JsValue> {
        let rows = js_sys::Array::new();
        for r in self.core.remaining().iter() {
            rows.push(
                &Obj::new()
                    .num("slot", r.message.payload().slot.into())
                    .opt_str("group", r.group.as_deref())
                    .set("state", &JsValue::from_str(r.state.as_str()))
                    .num("attempts", r.attempts.into())
                    .into_js(),
            );
        }
        Ok(rows.into())
    }

    /// Opens a request on the topic of `handle` that takes up to `max` replies and ends at
    /// `deadline_ms` on the bus clock (none when not finite); returns `request index × 2^32 +
    /// request gen`. Publish its message next. Fails with `NO_RESPONDERS` (see
    /// [`Broker::open_request`]).
    pub fn open_request(
        &mut self,
        handle: u32,
        handle_gen: u32,
        max: u32,
        deadline_ms: f64,
    ) -> Result<f64, JsValue> {
        let id = self
            .core
            .open_request(
                TopicHandle::from_parts(handle, handle_gen),
                max,
                not_before(deadline_ms),
            )
            .map_err(to_js)?;
        Ok(f64::from(id.index()) * 4_294_967_296.0 + f64::from(id.generation()))
    }

    /// An answer to a request, of `kind` (one of `protocol().answerKinds`), from `responder`:
    /// a subscription (`index × 2^32 + gen`), or, for a remote request, the number the driver
    /// gives a remote responder. Returns one of `protocol().answers` (see [`Broker::answer`]);
    /// an unknown kind or a responder that is not a safe integer ≥ 0 is late.
    pub fn answer(&mut self, index: u32, gen: u32, responder: f64, kind: u32) -> u32 {
        let kind = match kind {
            KIND_REPLY => AnswerKind::Reply,
            KIND_FAILURE => AnswerKind::Failure,
            KIND_DECLINE => AnswerKind::Decline,
            _ => return ANSWER_LATE,
        };
        if !((0.0..=9_007_199_254_740_991.0).contains(&responder) && responder.fract() == 0.0) {
            return ANSWER_LATE;
        }
        match self
            .core
            .answer_from(RequestId::from_parts(index, gen), responder as u64, kind)
        {
            Answer::Late => ANSWER_LATE,
            Answer::Reply { last: false } => ANSWER_REPLY,
            Answer::Reply { last: true } => ANSWER_REPLY_LAST,
            Answer::Failed { last: false, .. } => ANSWER_FAILED,
            Answer::Declined { last: false, .. } => ANSWER_DECLINED,
            // How the request ended is the core's word: complete with the replies it took, failing
            // with a failure, or without responders.
            Answer::Failed { replies: 1.., .. } | Answer::Declined { replies: 1.., .. } => {
                ANSWER_COMPLETE_LAST
            }
            Answer::Failed { .. } => ANSWER_FAILED_LAST,
            Answer::Declined { failures: 1.., .. } => ANSWER_DECLINED_FAILED_LAST,
            Answer::Declined { .. } => ANSWER_DECLINED_LAST,
        }
    }

    /// How many subscriptions a message published now on topic `handle` reaches (see
    /// [`Broker::reach`]).
    pub fn reach(&mut self, handle: u32, handle_gen: u32) -> Result<u32, JsValue> {
        self.core
            .reach(TopicHandle::from_parts(handle, handle_gen))
            .map_err(to_js)
    }

    /// Opens a request whose responders are elsewhere, learnt of from `reports` reports
    /// ([`Broker::open_remote_request`]); `deadline_ms` as for `open_request`. Returns `index ×
    /// 2^32 + gen`.
    pub fn open_remote_request(
        &mut self,
        max: u32,
        reports: u32,
        deadline_ms: f64,
    ) -> Result<f64, JsValue> {
        let id = self
            .core
            .open_remote_request(max, reports, not_before(deadline_ms))
            .map_err(to_js)?;
        Ok(f64::from(id.index()) * 4_294_967_296.0 + f64::from(id.generation()))
    }

    /// A report of a remote request's responders: 0 pending, 1 it ended with replies, 2 with
    /// failures and no reply, 3 without responders, 4 it had ended.
    pub fn request_reached(&mut self, index: u32, gen: u32, reports: u32, responders: u32) -> u32 {
        match self
            .core
            .request_reached(RequestId::from_parts(index, gen), reports, responders)
        {
            Reached::Pending => 0,
            Reached::Ended { replies, .. } if replies > 0 => 1,
            Reached::Ended { failures, .. } if failures > 0 => 2,
            Reached::Ended { .. } => 3,
            Reached::Gone => 4,
        }
    }

    /// Counts a remote request refused without responders before it was opened.
    pub fn refused_without_responders(&mut self) {
        self.core.refused_without_responders();
    }

    /// What requests counted: `{ sent, replies, failed, declined, timedOut, noResponders,
    /// cancelled, late, pending }`.
    pub fn request_stats(&self) -> Result<JsValue, JsValue> {
        js::request_stats_of(&self.core.request_stats())
    }

    /// Ends a request for its requester; false when it had ended.
    pub fn cancel_request(&mut self, index: u32, gen: u32) -> bool {
        self.core.cancel_request(RequestId::from_parts(index, gen))
    }

    /// Ends every pending request (each reported by a `requestEnded` record of the next round).
    pub fn end_requests(&mut self) {
        self.core.end_requests();
    }

    /// Gives back a delivery whose subscription left before it started.
    pub fn abandon(&mut self, index: u32, gen: u32, now_ms: f64) {
        self.core
            .abandon(DeliveryId::from_parts(index, gen), ms_to_micros(now_ms));
    }

    /// The group a waiting publish on the topic waits for, if it is a full `wait` group.
    pub fn waiting_on(&mut self, handle: u32, handle_gen: u32) -> Option<String> {
        self.core
            .waiting_on(TopicHandle::from_parts(handle, handle_gen))
            .map(|g| g.to_string())
    }

    /// Counts `n` messages the driver did not hand to a subscription that left in between.
    pub fn record_cancelled(&mut self, index: u32, gen: u32, n: f64) {
        self.core
            .record_cancelled(SubId::from_parts(index, gen), n as u64);
    }

    /// Counts messages the driver had to drop.
    pub fn record_dropped(&mut self, n: f64) {
        self.core.record_dropped(n as u64);
    }

    /// The next timer deadline in ms, or -1.
    pub fn next_deadline(&mut self) -> f64 {
        self.core
            .next_deadline()
            .map_or(-1.0, |t| t as f64 / 1000.0)
    }

    /// Whether a pending timer is one a host should stay up for (not only the expiry watch of a
    /// work queue without members): the driver's timer keeps a Node process alive then.
    pub fn timers_keep_alive(&mut self) -> bool {
        self.core.timers_keep_alive()
    }

    /// Tells the core whether publishers wait for room.
    pub fn set_waiting(&mut self, waiting: bool) {
        self.core.set_waiting(waiting);
    }

    /// Seals open batches.
    pub fn flush(&mut self) {
        self.core.flush();
    }

    /// Closes the core (later publishes fail with `CLOSED`) and seals open batches.
    pub fn close(&mut self) {
        self.core.close();
    }

    /// Whether nothing is queued or running.
    pub fn is_idle(&self) -> bool {
        self.core.is_idle()
    }

    /// Adds counts of deliveries the driver made directly.
    pub fn record_direct(&mut self, index: u32, gen: u32, delivered: f64, failed: f64) {
        self.core.record_direct(
            SubId::from_parts(index, gen),
            delivered as u64,
            failed as u64,
        );
    }

    /// Adds messages the driver published directly.
    pub fn record_published(&mut self, n: f64) {
        self.core.record_published(n as u64);
    }

    /// Statistics snapshot as a plain object.
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        js::bus_stats(&self.core.stats())
    }

    /// One subscription's statistics, or `undefined` once it is gone.
    pub fn subscription_stats(&self, index: u32, gen: u32) -> Result<JsValue, JsValue> {
        match self.core.subscription_stats(SubId::from_parts(index, gen)) {
            Some(s) => js::subscription_stats(&s),
            None => Ok(JsValue::UNDEFINED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The option numbers with `given` set by name, every other one `NaN` (not given).
    fn numbers(given: &[(&str, f64)]) -> Vec<f64> {
        let mut v = vec![f64::NAN; SUBSCRIBE_OPTIONS.len()];
        for &(name, x) in given {
            let i = SUBSCRIBE_OPTIONS.iter().position(|n| *n == name);
            v[i.unwrap_or_else(|| panic!("no option {name}"))] = x;
        }
        v
    }

    fn read(given: &[(&str, f64)], group: Option<&str>) -> SubscribeOptions {
        SubscribeArgs::read(&numbers(given), group.map(String::from))
            .unwrap_or_else(|e| panic!("{e}"))
            .into_options()
    }

    #[test]
    fn option_numbers_are_read_by_their_place() {
        let o = read(
            &[
                ("concurrency", 4.0),
                ("maxQueue", f64::INFINITY),
                ("overflow", 2.0),
                ("timeoutMs", 1500.0),
                ("batch", 1.0),
                ("batch.maxSize", 10.0),
                ("batch.maxWaitMs", 5.0),
                ("batch.maxAttempts", 3.0),
                ("batch.backoff.maxMs", 50.0),
            ],
            None,
        );
        assert_eq!(o.concurrency, 4);
        assert_eq!(o.max_queue, Some(usize::MAX));
        assert_eq!(o.overflow, Some(Overflow::Reject));
        assert_eq!(o.timeout, Some(1_500_000));
        let b = o.batch.expect("a batch policy");
        let d = BatchPolicy::default();
        assert_eq!((b.max_size, b.max_bytes), (10, d.max_bytes));
        assert_eq!((b.max_wait, b.max_attempts), (5_000, 3));
        assert_eq!(
            (b.backoff_initial, b.backoff_max),
            (d.backoff_initial, 50_000)
        );
        assert!(o.group.is_none());
    }

    #[test]
    fn no_numbers_take_every_default() {
        let o = SubscribeArgs::read(&[], None)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_options();
        assert_eq!(o.concurrency, 1);
        assert_eq!((o.max_queue, o.overflow, o.timeout), (None, None, None));
        assert!(o.batch.is_none() && o.group.is_none());
    }

    #[test]
    fn a_group_has_its_own_retry_policy_only_when_one_was_given() {
        let plain = read(&[], Some("mailers"));
        let g = plain.group.expect("a group");
        assert_eq!((g.name.as_str(), g.retry), ("mailers", None));
        // An empty `backoff` object names a policy (every default), as `maxAttempts` does.
        let d = RetryPolicy::default();
        let o = read(&[("backoff", 1.0)], Some("mailers"));
        assert_eq!(o.group.and_then(|g| g.retry), Some(d));
        let o = read(
            &[
                ("maxAttempts", 2.0),
                ("backoff", 1.0),
                ("backoff.initialMs", 10.0),
            ],
            Some("mailers"),
        );
        let r = o.group.and_then(|g| g.retry).expect("a retry policy");
        assert_eq!((r.max_attempts, r.backoff_initial), (2, 10_000));
        assert_eq!(r.backoff_max, d.backoff_max);
    }

    #[test]
    fn integer_options_out_of_range_are_refused_by_name() {
        for (name, v) in [
            ("concurrency", -1.0),
            ("concurrency", 1.5),
            ("maxAttempts", 4_294_967_296.0),
            ("batch.maxAttempts", f64::INFINITY),
            ("overflow", 2_147_483_648.0),
        ] {
            let Err(e) = SubscribeArgs::read(&numbers(&[(name, v), ("batch", 1.0)]), None) else {
                panic!("{name} = {v} was taken");
            };
            assert_eq!(e.code(), ErrorCode::InvalidOption);
            assert!(
                e.message().contains(&format!("`{name}`")),
                "{}",
                e.message()
            );
        }
    }
}
