//! Shard selection for the JavaScript `ShardedBus` (the hash lives in `crate::shard`).

use crate::shard::shard_of;
use wasm_bindgen::prelude::*;

/// The shard of one key (or topic) among `shards`.
#[wasm_bindgen(js_name = shardOf)]
pub fn shard_of_js(key_or_topic: &str, shards: u32) -> u32 {
    shard_of(key_or_topic, shards)
}

/// The shards of many keys at once: one boundary crossing per flush instead of one per message.
#[wasm_bindgen(js_name = shardOfMany)]
pub fn shard_of_many(keys: Vec<String>, shards: u32) -> Vec<u32> {
    keys.iter().map(|k| shard_of(k, shards)).collect()
}
