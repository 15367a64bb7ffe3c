//! The shared delivery scenarios (`tests/data/scenarios.json`) run against the Rust `Bus` on a
//! `ManualClock`: natively (`cargo test`) and as WebAssembly in Node and headless Chromium.
//! `tests/js/scenarios.test.mjs` runs the same file through the JavaScript API, so both drivers
//! are held to the same deliveries, errors, statuses and statistics after every step.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use edgebus::{
    Bus, DedupeWindow, ManualClock, Message, Overflow, Pattern, PublishOptions, Replay, Request,
    RequestOptions, RetryPolicy, SubscribeOptions, Subscription,
};
use futures::channel::oneshot;
use futures::FutureExt;
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

mod common;
use common::*;

const DOC: &str = include_str!("data/scenarios.json");

/// Like `assert!` / `assert_eq!`, but returns the failure so every scenario runs and all
/// disagreements are reported together.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
macro_rules! ensure_eq {
    ($got:expr, $want:expr, $($msg:tt)+) => {{
        let (got, want) = (&$got, &$want);
        if got != want {
            return Err(format!("{}: got {:?}, expected {:?}", format!($($msg)+), got, want));
        }
    }};
}

type Settle = oneshot::Sender<Result<(), String>>;

/// What one scenario's handlers and `on_error` saw.
#[derive(Default)]
struct Seen {
    logs: HashMap<String, Vec<String>>,
    sequence: Vec<String>,
    errors: Vec<String>,
    /// Gaps replays reported: (subscription id, `topic:from-to`).
    gaps: Vec<(u64, String)>,
    /// Gated handler calls not settled by the scenario yet, oldest first.
    running: Vec<(String, Settle)>,
}

fn ms(v: &Value) -> Duration {
    Duration::from_millis(v.as_u64().expect("a whole number of ms"))
}

fn overflow(v: &Value) -> Overflow {
    match v.as_str().unwrap() {
        "dropOldest" => Overflow::DropOldest,
        "dropNewest" => Overflow::DropNewest,
        "reject" => Overflow::Reject,
        "wait" => Overflow::Wait,
        other => panic!("unknown overflow {other}"),
    }
}

fn keys_of(o: &Value) -> Vec<&str> {
    o.as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn subscribe_options(o: Option<&Value>) -> SubscribeOptions {
    let mut s = SubscribeOptions::default();
    let Some(o) = o else { return s };
    for k in keys_of(o) {
        let v = &o[k];
        s = match k {
            "concurrency" => s.concurrency(v.as_u64().unwrap() as u32),
            "maxQueue" => s.max_queue(v.as_u64().unwrap() as usize),
            "overflow" => s.overflow(overflow(v)),
            "timeoutMs" | "ackTimeoutMs" => s.timeout(ms(v)),
            "group" => s.group(v.as_str().unwrap()),
            "replay" => s.replay(replay(v)),
            // Applied below, once the group is set.
            "maxAttempts" | "backoff" => s,
            other => panic!("option {other} is not part of the scenario language"),
        };
    }
    if o.get("maxAttempts").is_some() || o.get("backoff").is_some() {
        let d = RetryPolicy::default();
        let b = &o["backoff"];
        s = s.retry(RetryPolicy {
            max_attempts: o["maxAttempts"]
                .as_u64()
                .map_or(d.max_attempts, |n| n as u32),
            backoff_initial: b["initialMs"]
                .as_u64()
                .map_or(d.backoff_initial, |n| n * 1000),
            backoff_max: b["maxMs"].as_u64().map_or(d.backoff_max, |n| n * 1000),
        });
    }
    s
}

/// A `replay` option as the JavaScript API takes it (`sinceMs` on the bus clock).
fn replay(v: &Value) -> Replay {
    if v.as_str() == Some("retained") {
        return Replay::Retained;
    }
    if let Some(n) = v["last"].as_u64() {
        return Replay::Last(n);
    }
    let (topics, seq) = match &v["sinceSeq"] {
        Value::Object(per) => (
            per.iter()
                .map(|(t, n)| (t.clone(), n.as_u64().unwrap()))
                .collect(),
            None,
        ),
        n => (Vec::new(), n.as_u64()),
    };
    Replay::Since {
        topics,
        seq,
        time: v["sinceMs"].as_u64().map(|ms| ms * 1000),
    }
}

fn publish_options(o: Option<&Value>) -> PublishOptions {
    let mut p = PublishOptions::new();
    let Some(o) = o else { return p };
    for k in keys_of(o) {
        let v = &o[k];
        p = match k {
            "id" => p.id(v.as_str().unwrap()),
            "key" => p.key(v.as_str().unwrap()),
            "ttlMs" => p.ttl(ms(v)),
            "priority" => p.priority(v.as_u64().unwrap() as u32),
            "notBefore" => p.not_before(ms(v)),
            "retain" if v.as_bool() == Some(true) => p.retain(),
            other => panic!("publish option {other} is not part of the scenario language"),
        };
    }
    p
}

/// `actual` has every field of `expected` with equal values; arrays compare element by element.
fn subset(actual: &Value, expected: &Value, path: &str) -> Result<(), String> {
    match expected {
        Value::Array(want) => {
            let Some(got) = actual.as_array() else {
                return Err(format!("{path}: expected an array, got {actual}"));
            };
            ensure_eq!(got.len(), want.len(), "{path}: length of {actual}");
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                subset(g, w, &format!("{path}[{i}]"))?;
            }
        }
        Value::Object(want) => {
            ensure!(
                actual.is_object(),
                "{path}: expected an object, got {actual}"
            );
            for (k, w) in want {
                subset(&actual[k], w, &format!("{path}.{k}"))?;
            }
        }
        // JSON numbers: compare as numbers (u64 counters against integer literals).
        Value::Number(w) => ensure_eq!(actual.as_f64(), w.as_f64(), "{path}"),
        w => ensure_eq!(actual, w, "{path}"),
    }
    Ok(())
}

fn record(
    seen: &Rc<RefCell<Seen>>,
    as_: &str,
    by_topic: Option<&str>,
    m: &Message<String>,
) -> String {
    let entry = if by_topic == Some("topic") {
        m.topic().to_string()
    } else if by_topic == Some("seq") {
        format!(
            "{}@{}",
            m.payload(),
            m.topic_seq().map_or("undefined".into(), |n| n.to_string())
        )
    } else if m.attempt() > 1 {
        format!("{}#{}", m.payload(), m.attempt())
    } else {
        m.payload().clone()
    };
    let mut s = seen.borrow_mut();
    s.logs.get_mut(as_).unwrap().push(entry.clone());
    s.sequence.push(format!("{as_}:{entry}"));
    entry
}

fn subscribe(
    bus: &Bus<String>,
    seen: &Rc<RefCell<Seen>>,
    step: &Value,
) -> edgebus::Result<Subscription<String>> {
    let as_ = step["as"].as_str().unwrap().to_string();
    seen.borrow_mut().logs.insert(as_.clone(), Vec::new());
    let by_topic: Option<&'static str> = match step["record"].as_str() {
        Some("topic") => Some("topic"),
        Some("seq") => Some("seq"),
        _ => None,
    };
    let pattern = step["pattern"].as_str().unwrap();
    let options = subscribe_options(step.get("options"));
    let seen = seen.clone();
    match step["handler"].as_str().unwrap() {
        "sync" => {
            let fail_on: Vec<String> = step["failOn"]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            bus.subscribe_with(
                pattern,
                move |m| {
                    record(&seen, &as_, by_topic, m);
                    if fail_on.contains(m.payload()) {
                        return Err(format!("handler refuses {}", m.payload()).into());
                    }
                    Ok(())
                },
                options,
            )
        }
        // A responder's reply is `<payload>:<as>`.
        "responder" => {
            let fail_on: Vec<String> = step["failOn"]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            bus.respond_with(
                pattern,
                move |m| {
                    record(&seen, &as_, by_topic, m);
                    if fail_on.contains(m.payload()) {
                        return Err(format!("handler refuses {}", m.payload()).into());
                    }
                    Ok(format!("{}:{as_}", m.payload()))
                },
                options,
            )
        }
        "gatedResponder" => bus.respond_async(
            pattern,
            move |m: Message<String>| {
                record(&seen, &as_, by_topic, &m);
                let (tx, rx) = oneshot::channel();
                seen.borrow_mut().running.push((m.payload().clone(), tx));
                let reply = format!("{}:{as_}", m.payload());
                async move {
                    match rx.await {
                        Ok(Ok(())) => Ok(reply),
                        Ok(Err(e)) => Err(e.into()),
                        Err(_) => Err("never settled".into()),
                    }
                }
            },
            options,
        ),
        "gated" => bus.subscribe_async(
            pattern,
            move |m: Message<String>| {
                record(&seen, &as_, by_topic, &m);
                let (tx, rx) = oneshot::channel();
                seen.borrow_mut().running.push((m.payload().clone(), tx));
                async move {
                    match rx.await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(e.into()),
                        Err(_) => Err("never settled".into()),
                    }
                }
            },
            options,
        ),
        other => panic!("unknown handler kind {other}"),
    }
}

fn run(doc: &Value, scenario: &Value) -> Result<(), String> {
    let name = scenario["name"].as_str().unwrap();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let b = &scenario["bus"];
    let on_error = seen.clone();
    let (bus, clock): (Bus<String>, ManualClock) = virtual_bus(|o| {
        for k in keys_of(b) {
            let v = &b[k];
            match k {
                "maxQueue" => o.max_queue = v.as_u64().unwrap() as usize,
                "history" => {
                    o.logs.history = v["topics"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| Pattern::parse(p.as_str().unwrap()).unwrap())
                        .collect();
                    if let Some(n) = v["maxMessages"].as_u64() {
                        o.logs.history_max_messages = n as usize;
                    }
                    if let Some(n) = v["maxAgeMs"].as_u64() {
                        o.logs.history_max_age = Some(n * 1000);
                    }
                }
                "retain" => {
                    if let Some(n) = v["maxTopics"].as_u64() {
                        o.logs.retain_max_topics = n as usize;
                    }
                }
                "overflow" => o.overflow = overflow(v),
                "timeoutMs" => o.timeout = Some(ms(v)),
                "dedupe" => {
                    o.dedupe = Some(DedupeWindow {
                        max_ids: v["maxIds"].as_u64().unwrap() as usize,
                        max_age: v["maxAgeMs"].as_u64().map(|m| m * 1000),
                    })
                }
                other => panic!("bus option {other} is not part of the scenario language"),
            }
        }
        let gaps = on_error.clone();
        o.on_gap = Some(Rc::new(move |sub, _pattern: &str, g: &edgebus::Gap| {
            let from = g.from.map_or(String::new(), |n| n.to_string());
            gaps.borrow_mut()
                .gaps
                .push((sub, format!("{}:{from}-{}", g.topic, g.to)));
        }));
        o.on_error = Some(Rc::new(move |r| {
            on_error
                .borrow_mut()
                .errors
                .push(r.code.as_str().to_string())
        }));
    });
    let mut subs: HashMap<String, Subscription<String>> = HashMap::new();
    let mut requests: HashMap<String, Request<String>> = HashMap::new();
    for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
        let what = step["do"].as_str().unwrap();
        let at = format!("{name} / step {i} ({what})");
        if let Some(d) = step["defect"].as_str() {
            if doc["knownDefects"].get(d).is_some() {
                continue;
            }
        }
        match what {
            "subscribe" => match (&step["error"], subscribe(&bus, &seen, step)) {
                (Value::String(code), Err(e)) => ensure_eq!(e.code().as_str(), code, "{at}"),
                (Value::String(code), Ok(_)) => return Err(format!("{at}: expected {code}")),
                (_, Err(e)) => return Err(format!("{at}: {e}")),
                (_, Ok(s)) => {
                    subs.insert(step["as"].as_str().unwrap().to_string(), s);
                }
            },
            "publish" | "publishAsync" => {
                let topic = step["topic"].as_str().unwrap();
                let payload = step["payload"].as_str().unwrap().to_string();
                let options = publish_options(step.get("options"));
                let result = if what == "publish" {
                    bus.publish_with(topic, payload, options)
                } else {
                    bus.publish_async(topic, payload, options)
                        .now_or_never()
                        .ok_or_else(|| format!("{at}: publish_async did not resolve at once"))?
                };
                match (&step["error"], result) {
                    (Value::String(code), Err(e)) => ensure_eq!(e.code().as_str(), code, "{at}"),
                    (Value::String(code), Ok(r)) => {
                        return Err(format!("{at}: expected {code}, got {r}"))
                    }
                    (_, Err(e)) => return Err(format!("{at}: {e}")),
                    (_, Ok(r)) => {
                        if let Some(want) = step["returns"].as_bool() {
                            ensure_eq!(r, want, "{at}");
                        }
                    }
                }
            }
            "clearRetained" => {
                let had = bus
                    .clear_retained(step["topic"].as_str().unwrap())
                    .map_err(|e| format!("{at}: {e}"))?;
                ensure_eq!(json!(had), step["returns"], "{at}");
            }
            "expectRetained" => {
                let got: Vec<String> = bus
                    .retained(step["pattern"].as_str().unwrap())
                    .map_err(|e| format!("{at}: {e}"))?
                    .iter()
                    .map(|m| format!("{}@{}", m.payload(), m.topic_seq().unwrap_or(0)))
                    .collect();
                ensure_eq!(json!(got), step["retained"], "{at}");
            }
            "expectGaps" => {
                let s = seen.borrow();
                for (as_, want) in step["gaps"].as_object().unwrap() {
                    let id = subs[as_].id();
                    let got: Vec<&String> = s
                        .gaps
                        .iter()
                        .filter(|(i, _)| *i == id)
                        .map(|(_, g)| g)
                        .collect();
                    ensure_eq!(json!(got), *want, "{at}: {as_}");
                }
            }
            "publishBatch" => {
                let topic = step["topic"].as_str().unwrap();
                let o = step.get("options");
                let ids = o.and_then(|o| o.get("ids")).and_then(Value::as_array);
                let shared = o.map(|o| {
                    let mut o = o.clone();
                    o.as_object_mut().unwrap().remove("ids");
                    o
                });
                let messages = step["payloads"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let mut options = publish_options(shared.as_ref());
                        if let Some(id) = ids.and_then(|ids| ids[i].as_str()) {
                            options = options.id(id);
                        }
                        (p.as_str().unwrap().to_string(), options)
                    })
                    .collect();
                match (&step["error"], bus.publish_batch_with(topic, messages)) {
                    (Value::String(code), Err(e)) => ensure_eq!(e.code().as_str(), code, "{at}"),
                    (Value::String(code), Ok(n)) => {
                        return Err(format!("{at}: expected {code}, got {n}"))
                    }
                    (_, Err(e)) => return Err(format!("{at}: {e}")),
                    (_, Ok(n)) => {
                        if let Some(want) = step["returns"].as_u64() {
                            ensure_eq!(n as u64, want, "{at}");
                        }
                    }
                }
            }
            "request" => {
                let topic = step["topic"].as_str().unwrap();
                let payload = step["payload"].as_str().unwrap().to_string();
                let o = step.get("options").cloned().unwrap_or(json!({}));
                let mut options = RequestOptions::new();
                for k in keys_of(&o) {
                    match k {
                        "timeoutMs" => options = options.timeout(ms(&o[k])),
                        "key" => options = options.key(o[k].as_str().unwrap()),
                        "max" => options = options.max(o[k].as_u64().unwrap() as u32),
                        other => panic!("{at}: request option {other} is not in the language"),
                    }
                }
                let started = if step["many"].as_bool() == Some(true) {
                    bus.start_request_many(topic, payload, options)
                } else {
                    bus.start_request(topic, payload, options)
                };
                match (&step["error"], started) {
                    (Value::String(code), Err(e)) => ensure_eq!(e.code().as_str(), code, "{at}"),
                    (Value::String(code), Ok(_)) => return Err(format!("{at}: expected {code}")),
                    (_, Err(e)) => return Err(format!("{at}: {e}")),
                    (_, Ok(r)) => {
                        requests.insert(step["as"].as_str().unwrap().to_string(), r);
                    }
                }
            }
            "expectRequest" => {
                let r = &requests[step["as"].as_str().unwrap()];
                let state = if r.is_ended() { "ended" } else { "pending" };
                ensure_eq!(state, step["state"].as_str().unwrap(), "{at}: state");
                ensure_eq!(json!(r.replies_so_far()), step["replies"], "{at}: replies");
                let error = match r.outcome() {
                    Some(Err(e)) => Value::String(e.code().as_str().to_string()),
                    _ => Value::Null,
                };
                ensure_eq!(
                    error,
                    step.get("error").cloned().unwrap_or(Value::Null),
                    "{at}: error"
                );
            }
            "complete" | "fail" => {
                let payload = step["payload"].as_str().unwrap();
                let tx = {
                    let mut s = seen.borrow_mut();
                    let k = s
                        .running
                        .iter()
                        .position(|(p, _)| p == payload)
                        .ok_or_else(|| format!("{at}: no handler call running with {payload}"))?;
                    s.running.remove(k).1
                };
                let result = if what == "complete" {
                    Ok(())
                } else {
                    Err(format!("failed {payload}"))
                };
                // A call the bus gave up on has dropped its end: settling it changes nothing.
                let _ = tx.send(result);
            }
            "unsubscribe" => {
                ensure!(subs[step["as"].as_str().unwrap()].unsubscribe(), "{at}");
            }
            "advance" => {
                // Millisecond by millisecond, so timers run at their own time, in time order, as
                // the JavaScript ManualClock runs them.
                for _ in 0..step["ms"].as_u64().unwrap() {
                    clock.advance(1000);
                    bus.run_pending();
                }
            }
            "expectDeliveries" => {
                let s = seen.borrow();
                for (as_, want) in step["deliveries"].as_object().unwrap() {
                    ensure_eq!(json!(s.logs[as_]), *want, "{at}: {as_}");
                }
                if let Some(want) = step.get("sequence") {
                    ensure_eq!(json!(s.sequence), *want, "{at}: sequence");
                }
            }
            "expectErrors" => {
                ensure_eq!(json!(seen.borrow().errors), step["errors"], "{at}");
            }
            "expectStats" => {
                if let Some(want) = step.get("stats") {
                    let got = serde_json::to_value(bus.stats()).unwrap();
                    subset(&got, want, &format!("{at}: stats()"))?;
                }
                let none = Map::new();
                let per = step
                    .get("subscriptions")
                    .and_then(Value::as_object)
                    .unwrap_or(&none);
                for (as_, want) in per {
                    let got = serde_json::to_value(subs[as_].stats().unwrap()).unwrap();
                    subset(&got, want, &format!("{at}: {as_}.stats()"))?;
                }
            }
            "expectStatus" => {
                let id = step["id"].as_str().unwrap();
                let got = bus.status(id).map(|s| {
                    json!({
                        "state": s.state.as_str(),
                        "attempts": s.attempts,
                        "group": s.group.as_deref(),
                    })
                });
                match (&step["status"], got) {
                    (Value::Null, got) => ensure_eq!(got, None, "{at}"),
                    (_, None) => return Err(format!("{at}: no status for {id}")),
                    (want, Some(got)) => subset(&got, want, &format!("{at}: status({id})"))?,
                }
            }
            other => panic!("{at}: unknown step {other}"),
        }
        bus.run_pending();
    }
    // Nothing is left hanging: settle whatever still runs, then the bus becomes idle.
    let rest: Vec<_> = seen.borrow_mut().running.drain(..).collect();
    for (_, tx) in rest {
        let _ = tx.send(Ok(()));
    }
    bus.run_pending();
    ensure!(bus.run_until_idle(), "{name}: the bus never became idle");
    Ok(())
}

#[test]
fn every_shared_scenario_holds_on_the_rust_bus() {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    assert_eq!(
        doc["clockStartMs"].as_u64().unwrap() * 1000,
        START,
        "the scenarios' clock starts where virtual_bus's does"
    );
    let scenarios = doc["scenarios"].as_array().unwrap();
    assert!(scenarios.len() >= 20);
    let failures: Vec<String> = scenarios
        .iter()
        .filter_map(|s| run(&doc, s).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        scenarios.len(),
        failures.join("\n")
    );
}
