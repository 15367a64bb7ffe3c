//! Shard selection for the JavaScript `ShardedBus` (the hash lives in `crate::shard`), and the
//! topic rules the package exports: the pattern matcher and the topic and pattern checks.

use super::error::to_js;
use crate::shard::shard_of;
use crate::topic::{validate_topic, Pattern};
use wasm_bindgen::prelude::*;

/// The shard of one key (or topic) among `shards`.
#[wasm_bindgen(js_name = shardOf)]
pub fn shard_of_js(key_or_topic: &str, shards: u32) -> u32 {
    shard_of(key_or_topic, shards)
}

/// Whether `topic` matches `pattern` (NATS rules, the router's own matcher); `INVALID_PATTERN` or
/// `INVALID_TOPIC` for bad input.
#[wasm_bindgen(js_name = patternMatches)]
pub fn pattern_matches(pattern: &str, topic: &str) -> Result<bool, JsValue> {
    let p = Pattern::parse(pattern).map_err(|e| to_js(e.into()))?;
    validate_topic(topic).map_err(|e| to_js(e.into()))?;
    Ok(p.matches(topic))
}

/// `INVALID_TOPIC` unless `topic` is a topic one may publish on (the rules of `topics.json`).
#[wasm_bindgen(js_name = validateTopic)]
pub fn validate_topic_js(topic: &str) -> Result<(), JsValue> {
    validate_topic(topic).map_err(|e| to_js(e.into()))
}

/// `INVALID_PATTERN` unless `pattern` is a valid subscription pattern.
#[wasm_bindgen(js_name = validatePattern)]
pub fn validate_pattern_js(pattern: &str) -> Result<(), JsValue> {
    Pattern::parse(pattern)
        .map(|_| ())
        .map_err(|e| to_js(e.into()))
}
