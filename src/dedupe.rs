//! Exact idempotence filter: remembers recent message ids so duplicates
//! can be dropped.
//!
//! Laid out for large windows (100,000 ids and more), where the filter outgrows the CPU's caches
//! and a check costs what it touches at random. Each id is a 16-byte key: an id of up to 15 bytes
//! is stored inside it, a longer one in an append-only arena it points to. The `index` holds
//! the keys by hash, with a one-byte tag per bucket that settles most lookups of a new id without
//! reading a key; a repeat is confirmed on the stored key (the tag only narrows the search:
//! equality is always decided on the stored bytes, so the filter stays exact). A queue of the
//! ids' buckets in recording order says which id leaves next and where it is, so an eviction
//! reads neither a key nor a hash. A short id is hashed from its key's two words with one folded
//! multiply keyed by random per-filter seeds (as foldhash does for inputs of 9 to 16 bytes), a
//! long one with hashbrown's default hasher; both keep the seeds secret, so ids from the network
//! cannot be picked to collide.

mod index;

use std::collections::VecDeque;
use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;

use index::Index;

/// Window of the idempotence filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeWindow {
    /// How many of the most recently recorded distinct ids are remembered.
    pub max_ids: usize,
    /// How long an id is remembered, in the clock's unit (microseconds); `None` = no age limit.
    pub max_age: Option<u64>,
}

/// Ids this long or shorter live inside their [`Key`].
const INLINE: usize = 15;
/// Low byte of a [`Key`] whose id lives in the arena (an inline key has its length there).
const SPILLED: u128 = 0xFF;

/// One remembered id. Inline (at most [`INLINE`] bytes): the length in the low byte, then the
/// bytes, then zeros, so two inline keys are equal exactly when their ids are. Spilled: [`SPILLED`],
/// the length (56 bits) and the id's position in the arena (64 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key(u128);

impl Key {
    /// The key of a short id, `None` when it is longer than [`INLINE`].
    fn inline(id: &[u8]) -> Option<Key> {
        let n = id.len();
        // Two overlapping loads instead of a byte copy: the bytes they share are the same.
        let bytes = if n >= 8 {
            if n > INLINE {
                return None;
            }
            let lo = u64::from_le_bytes(id[..8].try_into().ok()?);
            let hi = u64::from_le_bytes(id[n - 8..].try_into().ok()?);
            u128::from(lo) | u128::from(hi) << ((n - 8) * 8)
        } else if n >= 4 {
            let lo = u32::from_le_bytes(id[..4].try_into().ok()?);
            let hi = u32::from_le_bytes(id[n - 4..].try_into().ok()?);
            u128::from(lo) | u128::from(hi) << ((n - 4) * 8)
        } else {
            id.iter()
                .rev()
                .fold(0u128, |acc, &b| acc << 8 | u128::from(b))
        };
        Some(Key(bytes << 8 | n as u128))
    }

    fn spilled(start: u64, len: usize) -> Key {
        Key(SPILLED | (len as u128 & ((1 << 56) - 1)) << 8 | u128::from(start) << 64)
    }

    /// `(arena position, length)` of a spilled id.
    fn span(self) -> Option<(u64, usize)> {
        (self.0 & 0xFF == SPILLED).then_some((
            (self.0 >> 64) as u64,
            ((self.0 >> 8) as u64 & ((1 << 56) - 1)) as usize,
        ))
    }

    /// The hash of the id this key stands for (the same as of the id's bytes).
    fn hash(self, hasher: &Hasher, arena: &Arena) -> u64 {
        match self.span() {
            None => hasher.short(self),
            Some((start, len)) => hasher.long(arena.get(start, len).unwrap_or_default()),
        }
    }
}

/// Multiplies and folds the 128-bit product's halves together (as foldhash and ahash do).
#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    product as u64 ^ (product >> 64) as u64
}

/// Hashes ids with a random state of its own, so which ids collide cannot be chosen from outside
/// (ids can come from the network). A short id is hashed from its [`Key`], whose two words hold
/// its length and bytes, with one folded multiply keyed by two random seeds; a long one with
/// hashbrown's default hasher.
#[derive(Debug)]
struct Hasher {
    long: DefaultHashBuilder,
    seeds: [u64; 2],
}

impl Hasher {
    fn new() -> Self {
        let long = DefaultHashBuilder::default();
        let seeds = [long.hash_one(0u8), long.hash_one(1u8)];
        Hasher { long, seeds }
    }

    #[inline(always)]
    fn short(&self, key: Key) -> u64 {
        let (lo, hi) = (key.0 as u64, (key.0 >> 64) as u64);
        folded_multiply(lo ^ self.seeds[0], hi ^ self.seeds[1])
    }

    fn long(&self, id: &[u8]) -> u64 {
        self.long.hash_one(id)
    }

    /// The hash of `id`, and its inline key when it is short.
    #[inline(always)]
    fn id(&self, id: &[u8]) -> (u64, Option<Key>) {
        match Key::inline(id) {
            Some(key) => (self.short(key), Some(key)),
            None => (self.long(id), None),
        }
    }
}

/// The bytes of the spilled ids, back to back in recording order. Evicted ids stay as dead
/// bytes at the front until they outweigh the live ones, so each byte moves at most about once.
#[derive(Debug, Default)]
struct Arena {
    bytes: Vec<u8>,
    /// Absolute position of `bytes[0]`.
    start: u64,
}

/// Dead arena bytes tolerated before compaction is considered; keeps small windows from shifting
/// the arena on every eviction.
const MIN_COMPACTION_BYTES: usize = 4096;

impl Arena {
    fn push(&mut self, id: &[u8]) -> Key {
        let key = Key::spilled(self.end(), id.len());
        self.bytes.extend_from_slice(id);
        key
    }

    /// Absolute position just past the last byte.
    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    fn get(&self, start: u64, len: usize) -> Option<&[u8]> {
        let from = usize::try_from(start.checked_sub(self.start)?).ok()?;
        self.bytes.get(from..from.checked_add(len)?)
    }

    /// The oldest live id, which ended at `end`, left the window.
    fn evicted(&mut self, end: u64) {
        let dead = usize::try_from(end.saturating_sub(self.start)).unwrap_or(usize::MAX);
        let dead = dead.min(self.bytes.len());
        let live = self.bytes.len() - dead;
        if live == 0 || (dead >= MIN_COMPACTION_BYTES && dead > live) {
            self.bytes.drain(..dead);
            self.start += dead as u64;
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.start = 0;
    }
}

/// Remembers the ids recorded within a [`DedupeWindow`] and says whether an id is new.
///
/// The clock is expected to move forward; a `now` earlier than one already seen is treated as the
/// latest `now` seen, so expired ids never come back.
#[derive(Debug)]
pub struct IdempotenceFilter {
    window: DedupeWindow,
    hasher: Hasher,
    /// The key of each id in the window, by the hash of the id.
    index: Index,
    /// The bucket of each id in the window in `index`, oldest first.
    buckets: VecDeque<u32>,
    /// Recording time of each id in `buckets`, only kept with an age limit.
    times: VecDeque<u64>,
    /// The position of each spilled id in the window and where its bytes end in the arena,
    /// oldest first.
    spilled: VecDeque<(Position, u64)>,
    arena: Arena,
    /// The position of the oldest id.
    first: Position,
    clock: u64,
}

/// Where an id is in recording order: ids get consecutive positions (wrapping around), so the
/// offset of an id in the filter's queues is its position minus the oldest id's. The window holds
/// at most [`MAX_IDS`] ids (one more for a moment while the oldest leaves), so the positions of
/// the ids in it are distinct.
type Position = u32;

/// The most ids a window holds: 2^31, beyond what fits in memory (over 100 GiB).
const MAX_IDS: usize = 1 << 31;

/// Caps the up-front allocation when a caller asks for a huge window.
const MAX_INITIAL_CAPACITY: usize = 8 * 1024;

impl IdempotenceFilter {
    /// Panics never; max_ids of 0 is treated as 1, and one above 2^31 as 2^31 (callers validate
    /// before).
    pub fn new(window: DedupeWindow) -> Self {
        let window = DedupeWindow {
            max_ids: window.max_ids.clamp(1, MAX_IDS),
            ..window
        };
        let capacity = window.max_ids.min(MAX_INITIAL_CAPACITY);
        IdempotenceFilter {
            window,
            hasher: Hasher::new(),
            index: Index::with_capacity(capacity),
            buckets: VecDeque::with_capacity(capacity),
            times: VecDeque::new(),
            spilled: VecDeque::new(),
            arena: Arena::default(),
            first: 0,
            clock: 0,
        }
    }

    /// The window in force (with `max_ids` raised to at least 1 and capped at 2^31).
    pub fn window(&self) -> DedupeWindow {
        self.window
    }

    /// Records `id` at time `now` and returns true when it was NOT in the window (first sighting: let it through); returns false for a duplicate (the duplicate does not refresh the id's age or position).
    pub fn check(&mut self, id: &str, now: u64) -> bool {
        let now = self.advance_to(now);
        let id = id.as_bytes();
        // Short ids, the common case, are looked up by key alone, with nothing else to keep at
        // hand; long ones out of line.
        let (free, hash, key) = match Key::inline(id) {
            Some(key) => {
                let hash = self.hasher.short(key);
                let Self {
                    index,
                    buckets,
                    hasher,
                    arena,
                    ..
                } = self;
                index.reserve_one(buckets, |key| key.hash(hasher, arena));
                let Err(free) = index.find(hash, |stored| stored == key) else {
                    return false;
                };
                (free, hash, key)
            }
            None => match self.vacancy_for_long(id) {
                Some(vacancy) => vacancy,
                None => return false,
            },
        };
        self.index.insert(free, hash, key);
        // The index has at most 2^32 buckets.
        self.buckets.push_back(free as u32);
        if self.window.max_age.is_some() {
            self.times.push_back(now);
        }
        if self.buckets.len() > self.window.max_ids {
            self.evict_front();
        }
        true
    }

    /// For a long `id` not in the window: its bucket, its hash and its key, with its bytes in the
    /// arena. `None` when it is in the window.
    #[inline(never)]
    fn vacancy_for_long(&mut self, id: &[u8]) -> Option<(usize, u64, Key)> {
        let hash = self.hasher.long(id);
        let Self {
            index,
            buckets,
            spilled,
            arena,
            hasher,
            first,
            ..
        } = self;
        index.reserve_one(buckets, |key| key.hash(hasher, arena));
        let free = index.find(hash, |key| holds(key, None, id, arena)).err()?;
        // The window holds at most `MAX_IDS` ids, so the count fits.
        let at = first.wrapping_add(buckets.len() as Position);
        let key = arena.push(id);
        spilled.push_back((at, arena.end()));
        Some((free, hash, key))
    }

    /// Whether `id` is in the window at `now`, without recording it.
    pub fn has(&mut self, id: &str, now: u64) -> bool {
        self.advance_to(now);
        let id = id.as_bytes();
        let (hash, probe) = self.hasher.id(id);
        let arena = &self.arena;
        self.index
            .find(hash, |key| holds(key, probe, id, arena))
            .is_ok()
    }

    /// Number of ids in the window at `now`.
    pub fn len(&mut self, now: u64) -> usize {
        self.advance_to(now);
        self.buckets.len()
    }

    /// Whether no id is in the window at `now`.
    pub fn is_empty(&mut self, now: u64) -> bool {
        self.len(now) == 0
    }

    /// Forgets every id (keeping the memory for the ids to come).
    pub fn clear(&mut self) {
        self.index.clear();
        self.buckets.clear();
        self.times.clear();
        self.spilled.clear();
        self.arena.clear();
        self.first = 0;
    }

    /// Moves the clock forward and drops the ids that expired by then, so
    /// everything left in `buckets` is in the window.
    fn advance_to(&mut self, now: u64) -> u64 {
        self.clock = self.clock.max(now);
        let now = self.clock;
        if let Some(max_age) = self.window.max_age {
            // Recording times never decrease, so expired ids sit at the front.
            while self
                .times
                .front()
                .is_some_and(|&at| now.saturating_sub(at) >= max_age)
            {
                self.evict_front();
            }
        }
        now
    }

    fn evict_front(&mut self) {
        let Some(bucket) = self.buckets.pop_front() else {
            return;
        };
        self.times.pop_front();
        self.index.remove(bucket as usize);
        let at = self.first;
        self.first = at.wrapping_add(1);
        if self
            .spilled
            .front()
            .is_some_and(|&(spilled, _)| spilled == at)
        {
            if let Some((_, end)) = self.spilled.pop_front() {
                self.arena.evicted(end);
            }
        }
    }
}

/// Whether the stored `key` is the id being looked up (`probe` is its inline key, if short).
#[inline(always)]
fn holds(key: Key, probe: Option<Key>, id: &[u8], arena: &Arena) -> bool {
    match probe {
        Some(probe) => key == probe,
        None => key.span().is_some_and(|(start, len)| {
            len == id.len() && arena.get(start, len).is_some_and(|b| b == id)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn filter(max_ids: usize, max_age: Option<u64>) -> IdempotenceFilter {
        IdempotenceFilter::new(DedupeWindow { max_ids, max_age })
    }

    #[test]
    fn duplicates_are_caught() {
        let mut f = filter(10, None);
        assert!(f.check("a", 0));
        assert!(f.check("b", 0));
        assert!(!f.check("a", 5));
        assert!(f.has("b", 5));
        assert!(!f.has("c", 5));
        assert_eq!(f.len(5), 2);
    }

    #[test]
    fn oldest_id_leaves_when_the_window_is_full() {
        let mut f = filter(2, None);
        assert!(f.check("a", 0));
        assert!(f.check("b", 0));
        // A duplicate does not move "a" to the back.
        assert!(!f.check("a", 0));
        assert!(f.check("c", 0));
        assert!(!f.has("a", 0));
        assert!(f.has("b", 0));
        assert!(f.check("a", 0));
        assert!(!f.has("b", 0));
        assert_eq!(f.len(0), 2);
    }

    #[test]
    fn ids_expire_at_exactly_max_age() {
        let mut f = filter(100, Some(10));
        assert!(f.check("a", 100));
        assert!(!f.check("a", 109));
        assert!(f.has("a", 109));
        // The duplicate at 109 did not refresh the age.
        assert!(!f.has("a", 110));
        assert_eq!(f.len(110), 0);
        assert!(f.check("a", 110));
    }

    #[test]
    fn zero_max_ids_keeps_one() {
        let mut f = filter(0, None);
        assert_eq!(f.window().max_ids, 1);
        assert!(f.check("a", 0));
        assert!(!f.check("a", 0));
        assert!(f.check("b", 0));
        assert!(f.check("a", 0));
    }

    #[test]
    fn zero_max_age_remembers_nothing() {
        let mut f = filter(4, Some(0));
        assert!(f.check("a", 7));
        assert!(f.check("a", 7));
        assert!(f.is_empty(7));
    }

    #[test]
    fn clock_going_back_does_not_revive_ids() {
        let mut f = filter(4, Some(10));
        assert!(f.check("a", 100));
        assert!(!f.has("a", 200));
        assert!(!f.has("a", 101));
        assert!(f.check("b", 50));
        assert!(f.has("b", 209));
        assert!(!f.has("b", 210));
    }

    #[test]
    fn clear_forgets_everything() {
        let mut f = filter(4, None);
        f.check("a", 0);
        f.check("b", 0);
        f.clear();
        assert!(f.is_empty(0));
        assert!(f.check("a", 0));
        assert_eq!(f.len(0), 1);
    }

    #[test]
    fn survives_many_evictions_and_rehashes() {
        let mut f = filter(1000, None);
        for round in 0..3 {
            for i in 0..5000 {
                assert!(f.check(&format!("id-{round}-{i}"), 0));
            }
            assert_eq!(f.len(0), 1000);
            assert!(f.has(&format!("id-{round}-4999"), 0));
            assert!(f.has(&format!("id-{round}-4000"), 0));
            assert!(!f.has(&format!("id-{round}-3999"), 0));
        }
        // Evictions leave no lasting marks: the index stays at the size 1,000 ids need.
        assert!(f.index.buckets() <= 4096, "{} buckets", f.index.buckets());
    }

    #[test]
    fn spilled_ids_leave_in_order_across_the_position_wrap() {
        let id = |n: usize| format!("{n}-{}", "x".repeat(20));
        let mut f = filter(3, None);
        f.first = Position::MAX - 4;
        for n in 0..20 {
            assert!(f.check(&id(n), 0));
            for back in 0..3.min(n + 1) {
                assert!(f.has(&id(n - back), 0), "{n} - {back}");
            }
            if n >= 3 {
                assert!(!f.has(&id(n - 3), 0));
            }
            assert_eq!(f.spilled.len(), 3.min(n + 1));
        }
        assert!(f.first < 20, "positions wrapped");
    }

    #[test]
    fn long_ids_survive_arena_compaction() {
        let id = |n: usize| format!("{n}-{}", "ß".repeat(700));
        let mut f = filter(3, Some(1_000));
        for n in 0..50 {
            assert!(f.check(&id(n), n as u64));
            assert!(!f.check(&id(n), n as u64));
            for back in 0..3.min(n + 1) {
                assert!(f.has(&id(n - back), n as u64), "{n} - {back}");
            }
            if n >= 3 {
                assert!(!f.has(&id(n - 3), n as u64));
            }
        }
        assert_eq!(f.len(49), 3);
        assert_eq!(f.len(1_048), 1);
        assert!(f.is_empty(1_049));
        assert!(f.check(&id(49), 1_049));
    }

    #[test]
    fn ids_of_every_length_are_told_apart() {
        // Around the inline limit, with zero bytes that padding could confuse, and long ids
        // sharing a prefix.
        let mut ids: Vec<String> = (0..=40).map(|n| "x".repeat(n)).collect();
        ids.extend(["\0", "\0\0", "x\0", "ab", "ab\0", "ß", "ßß", "é"].map(String::from));
        ids.extend((0..5).map(|n| format!("{}{n}", "p".repeat(20))));
        let mut f = filter(ids.len(), None);
        for id in &ids {
            assert!(f.check(id, 0), "{id:?} is new");
        }
        for id in &ids {
            assert!(!f.check(id, 0), "{id:?} was seen");
            assert!(f.has(id, 0));
        }
        assert!(!f.has("x".repeat(41).as_str(), 0));
        assert!(!f.has("a", 0));
        assert_eq!(f.len(0), ids.len());
    }

    #[test]
    fn long_and_short_ids_leave_in_recording_order() {
        let id = |n: usize| {
            if n % 3 == 0 {
                format!("long-id-{n:0>24}")
            } else {
                format!("s{n}")
            }
        };
        let mut f = filter(10, None);
        for n in 0..200 {
            assert!(f.check(&id(n), 0));
            for back in 0..10.min(n + 1) {
                assert!(f.has(&id(n - back), 0), "{n} - {back}");
            }
            if n >= 10 {
                assert!(!f.has(&id(n - 10), 0));
            }
        }
        f.clear();
        assert!(f.is_empty(0));
        assert!(f.check(&id(199), 0));
        assert!(!f.check(&id(199), 0));
    }

    #[test]
    fn each_filter_hashes_with_seeds_of_its_own() {
        let (a, b) = (Hasher::new(), Hasher::new());
        assert_ne!(a.seeds, b.seeds);
        let key = |id: &str| Key::inline(id.as_bytes()).expect("short");
        assert_ne!(a.short(key("msg-1")), b.short(key("msg-1")));
        // The length is part of the key, so trailing zero bytes change the hash.
        assert_ne!(a.short(key("a")), a.short(key("a\0")));
        // A key rehashed when the index grows hashes as the id did when it was recorded.
        let arena = Arena::default();
        for id in ["", "a", "msg-123456", "fifteen-bytes!!"] {
            assert_eq!(key(id).hash(&a, &arena), a.id(id.as_bytes()).0);
        }
    }

    #[test]
    fn compaction_keeps_long_ids_findable() {
        // 300-byte ids, window of 4: compaction runs once dead bytes pass MIN_COMPACTION_BYTES.
        let id = |n: usize| format!("{n:0>3}{}", "abc".repeat(99));
        let mut f = filter(4, None);
        for n in 0..100 {
            assert!(f.check(&id(n), 0));
            for back in 0..4.min(n + 1) {
                assert!(f.has(&id(n - back), 0), "{n} - {back}");
            }
        }
        assert!(f.arena.start > 0, "the arena was compacted");
        assert!(f.arena.bytes.len() < 2 * MIN_COMPACTION_BYTES + 4 * 300);
        for n in 96..100 {
            assert!(f.has(&id(n), 0));
            assert!(!f.check(&id(n), 0));
        }
        assert!(!f.has(&id(95), 0));
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Every id ever let through, oldest first, with its recording time.
        struct Model {
            max_ids: usize,
            max_age: Option<u64>,
            recorded: Vec<(String, u64)>,
        }

        impl Model {
            fn window(&self, now: u64) -> impl Iterator<Item = &(String, u64)> {
                let max_age = self.max_age;
                self.recorded
                    .iter()
                    .rev()
                    .take(self.max_ids.max(1))
                    .filter(move |(_, at)| max_age.is_none_or(|age| now < at + age))
            }

            fn has(&self, id: &str, now: u64) -> bool {
                self.window(now).any(|(seen, _)| seen == id)
            }

            fn check(&mut self, id: &str, now: u64) -> bool {
                if self.has(id, now) {
                    return false;
                }
                self.recorded.push((id.to_owned(), now));
                true
            }

            fn len(&self, now: u64) -> usize {
                self.window(now).count()
            }
        }

        #[derive(Debug, Clone)]
        enum Op {
            Check(u8),
            Has(u8),
            Len,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0u8..12).prop_map(Op::Check),
                2 => (0u8..12).prop_map(Op::Has),
                1 => Just(Op::Len),
            ]
        }

        /// Id number `n` of a run: short ids (stored inline), ids of exactly 15 and 16 bytes,
        /// and long ones (stored in the arena), some differing only at their end.
        fn mixed_id(n: u8) -> String {
            match n % 4 {
                0 => format!("{n}"),
                1 => format!("{n:0>15}"),
                2 => format!("{n:0>16}"),
                _ => format!("{}{n}", "long/".repeat(usize::from(n % 7) + 4)),
            }
        }

        proptest! {
            #[test]
            fn filter_agrees_with_model(
                max_ids in 0usize..8,
                max_age in prop::option::of(0u64..20),
                steps in prop::collection::vec((op(), 0u64..6), 1..200),
            ) {
                let mut filter = IdempotenceFilter::new(DedupeWindow { max_ids, max_age });
                let mut model = Model { max_ids, max_age, recorded: Vec::new() };
                let mut now = 0;
                for (op, step) in steps {
                    now += step;
                    match op {
                        Op::Check(id) => {
                            let id = format!("id{id}");
                            prop_assert_eq!(filter.check(&id, now), model.check(&id, now));
                        }
                        Op::Has(id) => {
                            let id = format!("id{id}");
                            prop_assert_eq!(filter.has(&id, now), model.has(&id, now));
                        }
                        Op::Len => prop_assert_eq!(filter.len(now), model.len(now)),
                    }
                }
                prop_assert_eq!(filter.len(now), model.len(now));
            }

            /// Long ids only (100 to 1,000 bytes, stored in the arena), so that evictions pile up
            /// dead arena bytes and compaction moves the live ones while the window is in use.
            #[test]
            fn filter_agrees_with_model_through_arena_compaction(
                max_ids in 1usize..8,
                max_age in prop::option::of(1u64..30),
                steps in prop::collection::vec((0u8..10, 0u8..48, 0u64..3), 100..300),
            ) {
                let long_id = |n: u8| format!("{}/{n}", "x".repeat(100 + usize::from(n) * 19));
                let mut filter = IdempotenceFilter::new(DedupeWindow { max_ids, max_age });
                let mut model = Model { max_ids, max_age, recorded: Vec::new() };
                let (mut now, mut recorded) = (0, 0usize);
                for (op, n, step) in steps {
                    now += step;
                    let id = long_id(n);
                    if op < 7 {
                        let new = filter.check(&id, now);
                        prop_assert_eq!(new, model.check(&id, now), "check {}", n);
                        recorded += usize::from(new);
                    } else {
                        prop_assert_eq!(filter.has(&id, now), model.has(&id, now), "has {}", n);
                    }
                    prop_assert_eq!(filter.len(now), model.len(now));
                }
                // Ids are at most about 1,000 bytes and at most 7 are live, so 40 evicted ids
                // are more dead bytes than MIN_COMPACTION_BYTES and than the live ones.
                if recorded - filter.len(now) >= 40 {
                    prop_assert!(filter.arena.start > 0, "the arena was compacted");
                }
            }

            /// Long runs of churn: many evictions (so the index is rebuilt to drop its deleted
            /// marks), ages expiring, `clear()`, and positions wrapping around while long ids
            /// are in the window.
            #[test]
            fn filter_agrees_with_model_through_churn(
                max_ids in 1usize..64,
                max_age in prop::option::of(1u64..50),
                wrap in any::<bool>(),
                steps in prop::collection::vec((0u8..100, 0u16..200, 0u64..3), 500..1500),
            ) {
                let id = |n: u16| {
                    if n % 5 == 0 {
                        format!("{}{n}", "long-".repeat(4))
                    } else {
                        format!("{n}")
                    }
                };
                let mut filter = IdempotenceFilter::new(DedupeWindow { max_ids, max_age });
                if wrap {
                    filter.first = Position::MAX - 100;
                }
                let mut model = Model { max_ids, max_age, recorded: Vec::new() };
                let mut now = 0;
                for (op, n, step) in steps {
                    now += step;
                    let id = id(n);
                    match op {
                        0 => {
                            filter.clear();
                            model.recorded.clear();
                        }
                        1..=30 => prop_assert_eq!(filter.has(&id, now), model.has(&id, now), "has {}", id),
                        _ => prop_assert_eq!(filter.check(&id, now), model.check(&id, now), "check {}", id),
                    }
                    prop_assert_eq!(filter.len(now), model.len(now));
                }
            }

            #[test]
            fn filter_agrees_with_model_on_ids_of_any_length(
                max_ids in 1usize..40,
                max_age in prop::option::of(1u64..40),
                steps in prop::collection::vec((any::<bool>(), 0u8..64, 0u64..4), 1..400),
            ) {
                let mut filter = IdempotenceFilter::new(DedupeWindow { max_ids, max_age });
                let mut model = Model { max_ids, max_age, recorded: Vec::new() };
                let mut now = 0;
                for (record, n, step) in steps {
                    now += step;
                    let id = mixed_id(n);
                    if record {
                        prop_assert_eq!(filter.check(&id, now), model.check(&id, now), "check {}", id);
                    } else {
                        prop_assert_eq!(filter.has(&id, now), model.has(&id, now), "has {}", id);
                    }
                    prop_assert_eq!(filter.len(now), model.len(now));
                }
            }
        }
    }
}
