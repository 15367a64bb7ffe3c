//! A slab of values addressed by (index, generation), so a stale handle never reaches a value
//! that reused its slot.
//!
//! Entries live in chunks of [`CHUNK`] that never move: growing adds a chunk instead of copying
//! every entry into a vector twice the size, so a slab of many subscriptions holds about one
//! entry's worth of memory per entry (not up to two, plus the copy while it grows).

/// Entries per chunk (a power of two: an index splits into chunk and place by shifting).
const CHUNK_BITS: u32 = 8;
const CHUNK: usize = 1 << CHUNK_BITS;

#[derive(Debug)]
struct Entry<T> {
    gen: u32,
    value: Option<T>,
}

#[derive(Debug)]
pub(crate) struct Slab<T> {
    /// Every chunk but the first is allocated whole; the first grows like a vector, so a small
    /// slab stays small.
    chunks: Vec<Vec<Entry<T>>>,
    free: Vec<u32>,
    len: usize,
    /// Entries made so far (used or free).
    made: u32,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab {
            chunks: Vec::new(),
            free: Vec::new(),
            len: 0,
            made: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn entry(&self, index: u32) -> Option<&Entry<T>> {
        self.chunks
            .get((index >> CHUNK_BITS) as usize)?
            .get(index as usize & (CHUNK - 1))
    }

    fn entry_mut(&mut self, index: u32) -> Option<&mut Entry<T>> {
        self.chunks
            .get_mut((index >> CHUNK_BITS) as usize)?
            .get_mut(index as usize & (CHUNK - 1))
    }

    /// Stores `value` with generation `gen` (or the slot's next generation when `None`).
    pub(crate) fn insert(&mut self, value: T, gen: Option<u32>) -> (u32, u32) {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let e = self.entry_mut(index).expect("a free index is a made entry");
            e.gen = gen.unwrap_or(e.gen.wrapping_add(1));
            e.value = Some(value);
            (index, e.gen)
        } else {
            let index = self.made;
            self.made += 1;
            let chunk = (index >> CHUNK_BITS) as usize;
            if chunk == self.chunks.len() {
                let room = if chunk == 0 { 0 } else { CHUNK };
                self.chunks.push(Vec::with_capacity(room));
            }
            let gen = gen.unwrap_or(1);
            self.chunks[chunk].push(Entry {
                gen,
                value: Some(value),
            });
            (index, gen)
        }
    }

    pub(crate) fn get(&self, index: u32, gen: u32) -> Option<&T> {
        let e = self.entry(index)?;
        if e.gen == gen {
            e.value.as_ref()
        } else {
            None
        }
    }

    pub(crate) fn get_mut(&mut self, index: u32, gen: u32) -> Option<&mut T> {
        let e = self.entry_mut(index)?;
        if e.gen == gen {
            e.value.as_mut()
        } else {
            None
        }
    }

    pub(crate) fn remove(&mut self, index: u32, gen: u32) -> Option<T> {
        let e = self.entry_mut(index)?;
        if e.gen != gen {
            return None;
        }
        let v = e.value.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(v)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u32, &T)> {
        self.chunks
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, e)| e.value.as_ref().map(|v| (i as u32, e.gen, v)))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u32, u32, &mut T)> {
        self.chunks
            .iter_mut()
            .flatten()
            .enumerate()
            .filter_map(|(i, e)| {
                let gen = e.gen;
                e.value.as_mut().map(|v| (i as u32, gen, v))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn entries_across_chunks_keep_their_place_and_generation() {
        let mut slab = Slab::new();
        let n = 3 * CHUNK as u32 + 5;
        let ids: Vec<(u32, u32)> = (0..n).map(|v| slab.insert(v, None)).collect();
        assert_eq!(slab.chunks.len(), 4);
        assert!(slab.chunks[1..].iter().all(|c| c.capacity() == CHUNK));
        for (v, &(i, g)) in ids.iter().enumerate() {
            assert_eq!((i, g), (v as u32, 1));
            assert_eq!(slab.get(i, g), Some(&(v as u32)));
            assert_eq!(slab.get(i, g + 1), None);
        }
        // A freed slot is reused with the next generation; the old handle stays dead.
        let (i, g) = ids[CHUNK + 3];
        assert_eq!(slab.remove(i, g), Some(CHUNK as u32 + 3));
        assert_eq!(slab.remove(i, g), None);
        assert_eq!(slab.insert(7, None), (i, g + 1));
        assert_eq!(slab.get(i, g), None);
        assert_eq!(slab.get(i, g + 1), Some(&7));
        *slab.get_mut(i, g + 1).unwrap() = 8;
        assert_eq!(slab.len(), n as usize);
        let seen: Vec<(u32, u32, u32)> = slab.iter().map(|(i, g, v)| (i, g, *v)).collect();
        assert_eq!(seen.len(), n as usize);
        assert_eq!(seen[CHUNK + 3], (i, g + 1, 8));
        assert_eq!(seen[n as usize - 1], (n - 1, 1, n - 1));
        for (_, _, v) in slab.iter_mut() {
            *v += 1;
        }
        assert_eq!(slab.get(n - 1, 1), Some(&n));
        assert_eq!(slab.get(n, 1), None);
    }
}
