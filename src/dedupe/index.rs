//! The filter's index: the key of each id in the window, in a bucket found from the id's hash.
//!
//! Laid out so that a check touches little memory at random. Each bucket has a one-byte tag
//! (7 bits of the hash, or empty, or deleted) in an array small enough to stay in a CPU cache,
//! and a key in a larger one. A lookup scans the tags of a group of 8 buckets at once and reads a
//! key only where a tag matches, so a new id usually costs a tag read alone. The filter keeps the
//! bucket of each id in recording order, so an eviction marks the oldest id's bucket free without
//! searching for it or reading its key. Buckets change only when the index is rebuilt (to grow or
//! to drop deleted marks), which places the ids again in recording order and updates their
//! buckets there.

use std::collections::VecDeque;

use super::Key;

/// Buckets whose tags are scanned together (one `u64`).
const GROUP: usize = 8;
const EMPTY: u8 = 0xFF;
const DELETED: u8 = 0x80;
/// The low bit of each of a group's tags.
const LOW_BITS: u64 = 0x0101_0101_0101_0101;
/// The high bit of each of a group's tags: clear in a full bucket's tag.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const MIN_BUCKETS: usize = 2 * GROUP;
/// Bucket numbers fit in a `u32`.
const MAX_BUCKETS: u64 = 1 << 32;

#[derive(Debug)]
pub(super) struct Index {
    /// A power of two of tags, one per bucket: 7 bits of the hash of the id in it, [`EMPTY`] or
    /// [`DELETED`].
    tags: Vec<u8>,
    /// The key of the id in each full bucket.
    keys: Vec<Key>,
    /// Shifts a hash right to its home group: 64 minus log2 of the number of groups.
    shift: u32,
    /// Full and deleted buckets.
    used: usize,
    /// The most full and deleted buckets before a rebuild.
    limit: usize,
}

impl Index {
    /// An index that holds `ids` ids before it is rebuilt.
    pub(super) fn with_capacity(ids: usize) -> Self {
        let mut buckets = MIN_BUCKETS;
        while max_used(buckets) < ids {
            let Some(doubled) = double(buckets) else {
                break;
            };
            buckets = doubled;
        }
        Self::with_buckets(buckets)
    }

    fn with_buckets(buckets: usize) -> Self {
        Index {
            tags: vec![EMPTY; buckets],
            keys: vec![Key(0); buckets],
            shift: 64 - (buckets / GROUP).trailing_zeros(),
            used: 0,
            limit: max_used(buckets),
        }
    }

    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }

    #[inline(always)]
    fn next(&self, group: usize) -> usize {
        (group + 1) & (self.tags.len() / GROUP - 1)
    }

    /// The tags of group `group`, bucket `group * GROUP + i` in byte `i`.
    #[inline(always)]
    fn group(&self, group: usize) -> u64 {
        let start = group * GROUP;
        self.tags
            .get(start..start + GROUP)
            .and_then(|tags| tags.try_into().ok())
            .map_or(u64::MAX, u64::from_le_bytes)
    }

    /// Starts loading the first keys of `group`, where an id hashed there most likely is, so
    /// that a repeat's key is on its way while the group's tags are read rather than after
    /// (and a new id's bucket is at hand to be written).
    #[inline(always)]
    fn prefetch_keys(&self, group: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let keys = self.keys.as_ptr().wrapping_add(group * GROUP);
            // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has; a prefetch only
            // hints the cache, reads nothing and never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(keys.cast()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = group;
    }

    /// The bucket of the id hashed to `hash` whose key `is` accepts, or else the free bucket
    /// where that id belongs.
    #[inline(always)]
    pub(super) fn find(&self, hash: u64, mut is: impl FnMut(Key) -> bool) -> Result<usize, usize> {
        let tag = tag(hash);
        let mut group = self.home(hash);
        self.prefetch_keys(group);
        let mut free = None;
        loop {
            let tags = self.group(group);
            let mut matches = match_tag(tags, tag);
            while matches != 0 {
                let bucket = group * GROUP + (matches.trailing_zeros() / 8) as usize;
                if self.keys.get(bucket).is_some_and(|&key| is(key)) {
                    return Ok(bucket);
                }
                matches &= matches - 1;
            }
            let spare = tags & HIGH_BITS;
            if free.is_none() && spare != 0 {
                free = Some(group * GROUP + (spare.trailing_zeros() / 8) as usize);
            }
            // A probe goes on past a full group only: an id is never placed beyond a group with
            // an empty bucket.
            let empty = match_empty(tags);
            if empty != 0 {
                return Err(free.unwrap_or(group * GROUP + (empty.trailing_zeros() / 8) as usize));
            }
            group = self.next(group);
        }
    }

    /// Makes room for one more id (before the [`Index::find`] that gives its bucket). A rebuild
    /// moves every id: `buckets` are the buckets of all the ids, in recording order, which it
    /// updates, and `hash` gives an id's hash again.
    #[inline(always)]
    pub(super) fn reserve_one(&mut self, buckets: &mut VecDeque<u32>, hash: impl Fn(Key) -> u64) {
        if self.used >= self.limit {
            self.rebuild(buckets, hash);
        }
    }

    /// Records in the free `bucket` given by [`Index::find`] (since the last change) the id
    /// hashed to `hash` with key `key`.
    #[inline(always)]
    pub(super) fn insert(&mut self, bucket: usize, hash: u64, key: Key) {
        if let (Some(slot), Some(stored)) = (self.tags.get_mut(bucket), self.keys.get_mut(bucket)) {
            if *slot == EMPTY {
                self.used += 1;
            }
            *slot = tag(hash);
            *stored = key;
        }
    }

    /// Frees `bucket`, which holds an id.
    #[inline(always)]
    pub(super) fn remove(&mut self, bucket: usize) {
        // A probe that reaches a group with an empty bucket stops there, so no id lies beyond
        // such a group on its probe: the bucket can become empty again instead of deleted.
        let tag = if match_empty(self.group(bucket / GROUP)) != 0 {
            self.used -= 1;
            EMPTY
        } else {
            DELETED
        };
        if let Some(slot) = self.tags.get_mut(bucket) {
            *slot = tag;
        }
    }

    /// Forgets every id, keeping the memory.
    pub(super) fn clear(&mut self) {
        self.tags.fill(EMPTY);
        self.used = 0;
    }

    /// Places the ids in a new index, twice as large when they fill more than half of what this
    /// one holds.
    #[cold]
    fn rebuild(&mut self, buckets: &mut VecDeque<u32>, hash: impl Fn(Key) -> u64) {
        let mut size = self.tags.len();
        while buckets.len() + 1 > max_used(size) / 2 {
            let Some(doubled) = double(size) else {
                break;
            };
            size = doubled;
        }
        let old = std::mem::replace(self, Index::with_buckets(size));
        for bucket in buckets {
            if let Some(&key) = old.keys.get(*bucket as usize) {
                let hash = hash(key);
                let (Ok(free) | Err(free)) = self.find(hash, |_| false);
                self.insert(free, hash, key);
                // The index has at most 2^32 buckets.
                *bucket = free as u32;
            }
        }
    }

    #[cfg(test)]
    pub(super) fn buckets(&self) -> usize {
        self.tags.len()
    }
}

/// Twice `buckets`, if that is not more than [`MAX_BUCKETS`] (nor than `usize` holds).
fn double(buckets: usize) -> Option<usize> {
    buckets
        .checked_mul(2)
        .filter(|&doubled| doubled as u64 <= MAX_BUCKETS)
}

/// Buckets of `buckets` that may be full or deleted: 7/8, so that probes stay short and end.
fn max_used(buckets: usize) -> usize {
    buckets - buckets / 8
}

/// The tag of a full bucket: 7 bits of the hash (the home group comes from its top bits).
#[inline(always)]
fn tag(hash: u64) -> u8 {
    (hash & 0x7F) as u8
}

/// The high bit set in each byte of `tags` equal to `tag`, and possibly in a byte after such a
/// byte (a false match costs a key comparison, nothing else).
#[inline(always)]
fn match_tag(tags: u64, tag: u8) -> u64 {
    let diff = tags ^ (LOW_BITS * u64::from(tag));
    diff.wrapping_sub(LOW_BITS) & !diff & HIGH_BITS
}

/// The high bit set in each byte of `tags` that is [`EMPTY`] (the only tag with its two high
/// bits set).
#[inline(always)]
fn match_empty(tags: u64) -> u64 {
    tags & (tags << 1) & HIGH_BITS
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The ids in an index, in recording order: number and bucket.
    #[derive(Default)]
    struct Live(Vec<(u64, u32)>);

    impl Live {
        /// Records id `n` hashed to `hash` (not in the index yet), as the filter does.
        fn insert(&mut self, index: &mut Index, n: u64, hash: impl Fn(u64) -> u64) {
            let mut buckets: VecDeque<u32> = self.0.iter().map(|&(_, b)| b).collect();
            index.reserve_one(&mut buckets, |key| hash(key.0 as u64));
            for (entry, bucket) in self.0.iter_mut().zip(buckets) {
                entry.1 = bucket;
            }
            let free = index
                .find(hash(n), |key| key == Key(n.into()))
                .expect_err("not in the index");
            index.insert(free, hash(n), Key(n.into()));
            self.0.push((n, free as u32));
        }

        fn assert_found(&self, index: &Index, universe: u64, hash: impl Fn(u64) -> u64) {
            for n in 0..universe {
                let found = index.find(hash(n), |key| key == Key(n.into())).ok();
                let expected = self
                    .0
                    .iter()
                    .find(|&&(m, _)| m == n)
                    .map(|&(_, b)| b as usize);
                assert_eq!(found, expected, "id {n}");
            }
        }
    }

    #[test]
    fn colliding_ids_are_found_across_the_table_end_and_after_removals() {
        // One home group (the last one) and one tag for all: every probe wraps around the end
        // and compares keys.
        let hash = |_: u64| u64::MAX;
        let mut index = Index::with_capacity(10);
        assert_eq!(index.buckets(), MIN_BUCKETS);
        let mut live = Live::default();
        for n in 0..12 {
            live.insert(&mut index, n, hash);
        }
        live.assert_found(&index, 20, hash);
        // Remove from the middle of the run: later ids stay reachable.
        for n in [3, 0, 7] {
            let at = live.0.iter().position(|&(m, _)| m == n).expect("live");
            let (_, bucket) = live.0.remove(at);
            index.remove(bucket as usize);
            live.assert_found(&index, 20, hash);
        }
        for n in 12..14 {
            live.insert(&mut index, n, hash);
        }
        live.assert_found(&index, 20, hash);
    }

    #[test]
    fn churn_keeps_the_table_small() {
        let hash = |n: u64| n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut index = Index::with_capacity(100);
        let mut live = Live::default();
        for n in 0..100_000 {
            live.insert(&mut index, n, hash);
            if live.0.len() > 100 {
                let (_, bucket) = live.0.remove(0);
                index.remove(bucket as usize);
            }
        }
        // 101 ids at most fill no more than half of the 7/8 of 256 buckets.
        assert!(index.buckets() <= 256, "{} buckets", index.buckets());
        live.assert_found(&index, 100_200, hash);
    }

    #[test]
    fn the_index_grows_to_2_to_the_32_buckets_at_most() {
        assert_eq!(double(MIN_BUCKETS), Some(2 * MIN_BUCKETS));
        assert_eq!(double(usize::MAX / 2 + 1), None);
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(double(1 << 31), Some(1 << 32));
            assert_eq!(double(1 << 32), None);
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Few home groups and tags, so ids collide, runs cross the table's end, removals
            /// leave deleted marks and rebuilds clear them.
            #[test]
            fn index_agrees_with_model(
                homes in 1u64..4,
                tags in 1u64..4,
                ops in prop::collection::vec((any::<bool>(), 0u64..40), 1..300),
            ) {
                let hash = move |n: u64| (n % homes) << 62 | (n % tags) << 3;
                let mut index = Index::with_capacity(0);
                let mut live = Live::default();
                for (insert, n) in ops {
                    let at = live.0.iter().position(|&(m, _)| m == n);
                    match (insert, at) {
                        (true, None) => live.insert(&mut index, n, hash),
                        (false, Some(at)) => {
                            let (_, bucket) = live.0.remove(at);
                            index.remove(bucket as usize);
                        }
                        _ => {}
                    }
                    live.assert_found(&index, 40, hash);
                    prop_assert!(index.used <= index.limit);
                }
            }
        }
    }
}
