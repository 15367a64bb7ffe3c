//! Shard selection for worker sharding: a stable hash of a message's key (or of its topic when it
//! has none) modulo the shard count. The same function runs natively and in wasm, so a key maps
//! to the same shard everywhere and across releases.

/// 32-bit FNV-1a over the UTF-8 bytes of `s`. Stable: changing it would move keys between shards.
pub fn stable_hash(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in s.as_bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The shard, in `0..shards`, of a message with this key (or topic). `shards` of 0 is treated
/// as 1, so the result is always a valid index.
///
/// ```
/// let s = edgebus::shard_of("customer-42", 4);
/// assert!(s < 4);
/// assert_eq!(s, edgebus::shard_of("customer-42", 4));
/// ```
pub fn shard_of(key_or_topic: &str, shards: u32) -> u32 {
    // FNV-1a alone leaves keys that differ only in their last bytes ("t1", "t2", …) close together
    // in the high bits; the murmur3 finalizer spreads every input bit over the whole word before
    // the multiply-shift picks the shard.
    let mixed = fmix32(stable_hash(key_or_topic));
    ((u64::from(mixed) * u64::from(shards.max(1))) >> 32) as u32
}

/// The murmur3 32-bit finalizer: a bijection whose every output bit depends on every input bit.
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        // Published FNV-1a 32-bit test vectors.
        assert_eq!(stable_hash(""), 0x811c_9dc5);
        assert_eq!(stable_hash("a"), 0xe40c_292c);
        assert_eq!(stable_hash("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn always_in_range_and_stable() {
        for n in [0u32, 1, 2, 3, 7, 64, u32::MAX] {
            for k in ["", "a", "orders.eu.created", "ключ", "customer-42"] {
                let s = shard_of(k, n);
                assert!(s < n.max(1), "{k} with {n} shards gave {s}");
                assert_eq!(s, shard_of(k, n));
            }
        }
    }

    #[test]
    fn short_keys_that_differ_in_one_character_spread_too() {
        for shards in [2u32, 4, 8] {
            let mut used = vec![0u32; shards as usize];
            for i in 0..20 {
                used[shard_of(&format!("t{i}"), shards) as usize] += 1;
            }
            let empty = used.iter().filter(|&&n| n == 0).count();
            assert!(empty <= (shards as usize) / 4, "{shards} shards: {used:?}");
        }
        let mut counts = [0u32; 8];
        for i in 0..8_000 {
            counts[shard_of(&format!("k{i}"), 8) as usize] += 1;
        }
        for c in counts {
            assert!(
                (800..1_200).contains(&c),
                "uneven spread of short keys: {counts:?}"
            );
        }
    }

    #[test]
    fn spreads_keys_evenly() {
        let shards = 4;
        let mut counts = [0u32; 4];
        for i in 0..40_000 {
            counts[shard_of(&format!("key-{i}"), shards) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "uneven spread: {counts:?}");
        }
    }
}
