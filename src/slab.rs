//! A slab of values addressed by (index, generation), so a stale handle never reaches a value
//! that reused its slot.

#[derive(Debug)]
struct Entry<T> {
    gen: u32,
    value: Option<T>,
}

#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Stores `value` with generation `gen` (or the slot's next generation when `None`).
    pub(crate) fn insert(&mut self, value: T, gen: Option<u32>) -> (u32, u32) {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let e = &mut self.entries[index as usize];
            e.gen = gen.unwrap_or(e.gen.wrapping_add(1));
            e.value = Some(value);
            (index, e.gen)
        } else {
            let index = self.entries.len() as u32;
            let gen = gen.unwrap_or(1);
            self.entries.push(Entry {
                gen,
                value: Some(value),
            });
            (index, gen)
        }
    }

    pub(crate) fn get(&self, index: u32, gen: u32) -> Option<&T> {
        let e = self.entries.get(index as usize)?;
        if e.gen == gen {
            e.value.as_ref()
        } else {
            None
        }
    }

    pub(crate) fn get_mut(&mut self, index: u32, gen: u32) -> Option<&mut T> {
        let e = self.entries.get_mut(index as usize)?;
        if e.gen == gen {
            e.value.as_mut()
        } else {
            None
        }
    }

    pub(crate) fn remove(&mut self, index: u32, gen: u32) -> Option<T> {
        let e = self.entries.get_mut(index as usize)?;
        if e.gen != gen {
            return None;
        }
        let v = e.value.take()?;
        self.free.push(index);
        self.len -= 1;
        Some(v)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u32, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.value.as_ref().map(|v| (i as u32, e.gen, v)))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u32, u32, &mut T)> {
        self.entries.iter_mut().enumerate().filter_map(|(i, e)| {
            let gen = e.gen;
            e.value.as_mut().map(|v| (i as u32, gen, v))
        })
    }
}
