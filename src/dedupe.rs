//! Exact idempotence filter: remembers recent message ids so duplicates
//! can be dropped.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};

/// Window of the idempotence filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeWindow {
    /// How many of the most recently recorded distinct ids are remembered.
    pub max_ids: usize,
    /// How long an id is remembered, in the clock's unit (microseconds); `None` = no age limit.
    pub max_age: Option<u64>,
}

/// One remembered id, in recording order: only its ends are touched (eviction, age).
#[derive(Debug)]
struct Recorded {
    /// Absolute position of the id's first byte in the arena's history.
    start: u64,
    at: u64,
    hash: u64,
}

/// An index entry: everything the probe's equality check and a rehash need, so a lookup touches
/// the table and the id's bytes only (not the FIFO).
#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: u64,
    start: u64,
    len: usize,
    hash: u64,
}

/// Remembers the ids recorded within a [`DedupeWindow`] and says whether an id is new.
///
/// The clock is expected to move forward; a `now` earlier than one already seen is treated as the
/// latest `now` seen, so expired ids never come back.
#[derive(Debug)]
pub struct IdempotenceFilter {
    window: DedupeWindow,
    hasher: DefaultHashBuilder,
    /// One slot per id in `fifo`; the ids themselves live only in `arena`, so each is stored once.
    index: HashTable<Slot>,
    fifo: VecDeque<Recorded>,
    /// Sequence number of `fifo.front()`.
    front_seq: u64,
    /// The ids of `fifo`, back to back. Appending to one buffer instead of allocating per id
    /// roughly halves the cost of a first sighting; evicted ids stay as dead bytes at the front
    /// until compaction.
    arena: String,
    /// Absolute position of `arena`'s first byte.
    arena_start: u64,
    clock: u64,
}

/// Caps the up-front allocation when a caller asks for a huge window.
const MAX_INITIAL_CAPACITY: usize = 16 * 1024;
/// Typical id length, to size the arena up front.
const TYPICAL_ID_BYTES: usize = 16;
/// Dead arena bytes tolerated before compaction is considered; keeps small windows from shifting
/// the arena on every eviction.
const MIN_COMPACTION_BYTES: usize = 4096;

/// Whether `slot` holds `id`: lengths first, then the bytes in the arena.
fn holds(arena: &str, arena_start: u64, slot: &Slot, id: &str) -> bool {
    if slot.len != id.len() {
        return false;
    }
    let Some(from) = slot
        .start
        .checked_sub(arena_start)
        .and_then(|d| usize::try_from(d).ok())
    else {
        return false;
    };
    arena
        .as_bytes()
        .get(from..from + slot.len)
        .is_some_and(|bytes| bytes == id.as_bytes())
}

impl IdempotenceFilter {
    /// Panics never; max_ids of 0 is treated as 1 (callers validate before).
    pub fn new(window: DedupeWindow) -> Self {
        let window = DedupeWindow {
            max_ids: window.max_ids.max(1),
            ..window
        };
        let capacity = window.max_ids.min(MAX_INITIAL_CAPACITY);
        IdempotenceFilter {
            window,
            hasher: DefaultHashBuilder::default(),
            index: HashTable::with_capacity(capacity),
            fifo: VecDeque::with_capacity(capacity),
            front_seq: 0,
            arena: String::with_capacity(capacity * TYPICAL_ID_BYTES),
            arena_start: 0,
            clock: 0,
        }
    }

    /// The window in force (with `max_ids` raised to at least 1).
    pub fn window(&self) -> DedupeWindow {
        self.window
    }

    /// Records `id` at time `now` and returns true when it was NOT in the window (first sighting: let it through); returns false for a duplicate (the duplicate does not refresh the id's age or position).
    pub fn check(&mut self, id: &str, now: u64) -> bool {
        let now = self.advance_to(now);
        let hash = self.hasher.hash_one(id);
        let (arena, arena_start) = (self.arena.as_str(), self.arena_start);
        let entry = self.index.entry(
            hash,
            |slot| holds(arena, arena_start, slot, id),
            |slot| slot.hash,
        );
        let Entry::Vacant(vacant) = entry else {
            return false;
        };
        let start = self.arena_start + self.arena.len() as u64;
        vacant.insert(Slot {
            seq: self.front_seq + self.fifo.len() as u64,
            start,
            len: id.len(),
            hash,
        });
        self.fifo.push_back(Recorded {
            start,
            at: now,
            hash,
        });
        self.arena.push_str(id);
        if self.fifo.len() > self.window.max_ids {
            self.evict_front();
        }
        true
    }

    /// Whether `id` is in the window at `now`, without recording it.
    pub fn has(&mut self, id: &str, now: u64) -> bool {
        self.advance_to(now);
        let hash = self.hasher.hash_one(id);
        let (arena, arena_start) = (self.arena.as_str(), self.arena_start);
        self.index
            .find(hash, |slot| holds(arena, arena_start, slot, id))
            .is_some()
    }

    /// Number of ids in the window at `now`.
    pub fn len(&mut self, now: u64) -> usize {
        self.advance_to(now);
        self.fifo.len()
    }

    /// Whether no id is in the window at `now`.
    pub fn is_empty(&mut self, now: u64) -> bool {
        self.len(now) == 0
    }

    /// Forgets every id.
    pub fn clear(&mut self) {
        self.index.clear();
        self.fifo.clear();
        self.front_seq = 0;
        self.arena.clear();
        self.arena_start = 0;
    }

    /// Moves the clock forward and drops the ids that expired by then, so
    /// everything left in the FIFO is in the window.
    fn advance_to(&mut self, now: u64) -> u64 {
        self.clock = self.clock.max(now);
        let now = self.clock;
        if let Some(max_age) = self.window.max_age {
            // Recording times never decrease, so expired ids sit at the front.
            while self
                .fifo
                .front()
                .is_some_and(|oldest| now.saturating_sub(oldest.at) >= max_age)
            {
                self.evict_front();
            }
        }
        now
    }

    fn evict_front(&mut self) {
        let Some(oldest) = self.fifo.pop_front() else {
            return;
        };
        let seq = self.front_seq;
        if let Ok(entry) = self.index.find_entry(oldest.hash, |s| s.seq == seq) {
            entry.remove();
        }
        self.front_seq += 1;
        self.compact_arena();
    }

    /// Drops the dead bytes once they outweigh the live ones, so each byte
    /// is moved at most about once per byte appended (amortized O(1)).
    fn compact_arena(&mut self) {
        let live_start = match self.fifo.front() {
            Some(oldest) => oldest.start,
            None => self.arena_start + self.arena.len() as u64,
        };
        let Ok(dead) = usize::try_from(live_start.saturating_sub(self.arena_start)) else {
            return;
        };
        let live = self.arena.len().saturating_sub(dead);
        let worth_it = live == 0 || (dead >= MIN_COMPACTION_BYTES && dead > live);
        if worth_it && self.arena.is_char_boundary(dead) {
            self.arena.drain(..dead);
            self.arena_start += dead as u64;
        }
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
        }
    }
}
