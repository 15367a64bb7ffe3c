//! Plain JavaScript values built by hand: objects with named properties, arrays, numbers. (A
//! serde bridge does the same with a generic serializer and deserializer per type, about a tenth
//! of the WebAssembly binary; the few shapes crossing here do not need one. Subscription options
//! come in as numbers: see `WasmBroker::subscribe`.)

use crate::snapshot::{BusStats, GroupStats, LatencySummary, RequestStats, SubscriptionStats};
use js_sys::{Array, Number, Object, Reflect};
use wasm_bindgen::prelude::*;

/// A plain object being filled in, property by property, in the order the API lists them.
pub(crate) struct Obj(Object);

impl Obj {
    pub(crate) fn new() -> Obj {
        Obj(Object::new())
    }

    /// Sets `key` (setting a property of a fresh plain object cannot fail).
    pub(crate) fn set(self, key: &str, value: &JsValue) -> Obj {
        let _ = Reflect::set(&self.0, &JsValue::from_str(key), value);
        self
    }

    /// Sets `key` to a number.
    pub(crate) fn num(self, key: &str, value: f64) -> Obj {
        self.set(key, &JsValue::from_f64(value))
    }

    /// Sets `key` to a count, a number while it is a safe integer (an error past 2^53 - 1, which
    /// no count reaches: a number would be off).
    pub(crate) fn count(self, key: &str, value: u64) -> Result<Obj, JsValue> {
        Ok(self.set(key, &safe_number(value)?))
    }

    /// Sets `key` to a string, or to `undefined` for `None`.
    pub(crate) fn opt_str(self, key: &str, value: Option<&str>) -> Obj {
        self.set(key, &value.map_or(JsValue::UNDEFINED, JsValue::from_str))
    }

    pub(crate) fn into_js(self) -> JsValue {
        self.0.into()
    }
}

/// A count as a JavaScript number; an `Error` when it is past `Number.MAX_SAFE_INTEGER`.
fn safe_number(value: u64) -> Result<JsValue, JsValue> {
    if value <= Number::MAX_SAFE_INTEGER as u64 {
        Ok(JsValue::from_f64(value as f64))
    } else {
        Err(js_sys::Error::new(&format!(
            "{value} can't be represented as a JavaScript number"
        ))
        .into())
    }
}

fn latency(l: &LatencySummary) -> Result<JsValue, JsValue> {
    Ok(Obj::new()
        .count("count", l.count)?
        .num("p50Ms", l.p50_ms)
        .num("p99Ms", l.p99_ms)
        .into_js())
}

/// `{ id, pattern, group?, delivered, dropped, expired, failed, cancelled, queued, inFlight,
/// latency: { count, p50Ms, p99Ms } }` (`group` only for a work-queue member).
pub(crate) fn subscription_stats(s: &SubscriptionStats) -> Result<JsValue, JsValue> {
    let mut o = Obj::new()
        .count("id", s.id)?
        .set("pattern", &JsValue::from_str(&s.pattern));
    if let Some(g) = &s.group {
        o = o.set("group", &JsValue::from_str(g));
    }
    Ok(o.count("delivered", s.delivered)?
        .count("dropped", s.dropped)?
        .count("expired", s.expired)?
        .count("failed", s.failed)?
        .count("cancelled", s.cancelled)?
        .count("queued", s.queued)?
        .count("inFlight", s.in_flight)?
        .set("latency", &latency(&s.latency)?)
        .into_js())
}

fn group_stats(g: &GroupStats) -> Result<JsValue, JsValue> {
    Ok(Obj::new()
        .set("name", &JsValue::from_str(&g.name))
        .set("pattern", &JsValue::from_str(&g.pattern))
        .count("members", g.members)?
        .count("depth", g.depth)?
        .count("retrying", g.retrying)?
        .count("inFlight", g.in_flight)?
        .count("published", g.published)?
        .count("done", g.done)?
        .count("retried", g.retried)?
        .count("dead", g.dead)?
        .count("expired", g.expired)?
        .count("dropped", g.dropped)?
        .count("remembered", g.remembered)?
        .into_js())
}

/// A bus's statistics with camelCase fields, `perSubscription` and `groups` as arrays of the
/// objects above.
pub(crate) fn bus_stats(s: &BusStats) -> Result<JsValue, JsValue> {
    let subs = Array::new();
    for sub in &s.per_subscription {
        subs.push(&subscription_stats(sub)?);
    }
    let groups = Array::new();
    for g in &s.groups {
        groups.push(&group_stats(g)?);
    }
    Ok(Obj::new()
        .count("published", s.published)?
        .count("delivered", s.delivered)?
        .count("duplicates", s.duplicates)?
        .count("dropped", s.dropped)?
        .count("expired", s.expired)?
        .count("failed", s.failed)?
        .count("cancelled", s.cancelled)?
        .count("queued", s.queued)?
        .count("inFlight", s.in_flight)?
        .count("subscriptions", s.subscriptions)?
        .set("latency", &latency(&s.latency)?)
        .set("perSubscription", &subs)
        .count("delayed", s.delayed)?
        .set("groups", &groups)
        .set("requests", &request_stats(&s.requests)?)
        .set(
            "logs",
            &Obj::new()
                .count("topics", s.logs.topics)?
                .count("retained", s.logs.retained)?
                .count("history", s.logs.history)?
                .count("bytes", s.logs.bytes)?
                .count("evicted", s.logs.evicted)?
                .count("expired", s.logs.expired)?
                .count("replayed", s.logs.replayed)?
                .count("gaps", s.logs.gaps)?
                .into_js(),
        )
        .into_js())
}

/// `{ sent, replies, failed, declined, timedOut, noResponders, cancelled, late, pending }`.
pub(crate) fn request_stats_of(r: &RequestStats) -> Result<JsValue, JsValue> {
    request_stats(r)
}

fn request_stats(r: &RequestStats) -> Result<JsValue, JsValue> {
    Ok(Obj::new()
        .count("sent", r.sent)?
        .count("replies", r.replies)?
        .count("failed", r.failed)?
        .count("declined", r.declined)?
        .count("timedOut", r.timed_out)?
        .count("noResponders", r.no_responders)?
        .count("cancelled", r.cancelled)?
        .count("late", r.late)?
        .count("pending", r.pending)?
        .into_js())
}
