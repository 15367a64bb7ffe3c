//! A trie node's children by token: a small vector, scanned linearly, until there are more than
//! [`FEW`]; only then a hash map. Most nodes of a topic tree have one child
//! (`orders.<id>.created`), and a hash map's smallest table holds four entries. Shared by the
//! subscription trie (`router`) and the trie of resolved topics (`topic_trie`).

use hashbrown::HashMap;

/// Children kept in a vector up to this many; a map above it.
pub(crate) const FEW: usize = 8;

/// Children of one trie node, by token.
#[derive(Debug)]
pub(crate) enum Children<N> {
    /// Up to [`FEW`] children, found by a linear scan; exactly sized (no spare room).
    Few(Box<[(Box<str>, N)]>),
    /// More than [`FEW`] children; it returns to `Few` at [`FEW`] / 2, so removal frees it.
    Many(Box<HashMap<Box<str>, N>>),
}

impl<N> Default for Children<N> {
    fn default() -> Self {
        Children::Few(Box::default())
    }
}

impl<N> Children<N> {
    pub(crate) fn get(&self, token: &str) -> Option<&N> {
        match self {
            Children::Few(few) => few.iter().find(|(k, _)| **k == *token).map(|(_, n)| n),
            Children::Many(many) => many.get(token),
        }
    }

    pub(crate) fn get_mut(&mut self, token: &str) -> Option<&mut N> {
        match self {
            Children::Few(few) => few.iter_mut().find(|(k, _)| **k == *token).map(|(_, n)| n),
            Children::Many(many) => many.get_mut(token),
        }
    }

    /// The child for `token`, made by `make` when missing.
    pub(crate) fn get_or_insert_with(&mut self, token: &str, make: impl FnOnce() -> N) -> &mut N {
        if let Children::Few(few) = self {
            if few.len() >= FEW && !few.iter().any(|(k, _)| **k == *token) {
                let map: HashMap<Box<str>, N> =
                    std::mem::take(few).into_vec().into_iter().collect();
                *self = Children::Many(Box::new(map));
            }
        }
        match self {
            Children::Few(few) => {
                let at = match few.iter().position(|(k, _)| **k == *token) {
                    Some(at) => at,
                    None => {
                        push_exact(few, (token.into(), make()));
                        few.len() - 1
                    }
                };
                &mut few[at].1
            }
            Children::Many(many) => {
                if !many.contains_key(token) {
                    many.insert(token.into(), make());
                }
                many.get_mut(token)
                    .expect("the child was inserted just above")
            }
        }
    }

    pub(crate) fn remove(&mut self, token: &str) {
        match self {
            Children::Few(few) => {
                if let Some(at) = few.iter().position(|(k, _)| **k == *token) {
                    swap_remove_exact(few, at);
                }
            }
            Children::Many(many) => {
                many.remove(token);
                if many.len() <= FEW / 2 {
                    let few: Vec<_> = many.drain().collect();
                    *self = Children::Few(few.into_boxed_slice());
                }
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Children::Few(few) => few.is_empty(),
            Children::Many(many) => many.is_empty(),
        }
    }

    /// Every child with its token, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &N)> {
        let (few, many) = match self {
            Children::Few(few) => (Some(few.iter().map(|(k, n)| (&**k, n))), None),
            Children::Many(many) => (None, Some(many.iter().map(|(k, n)| (&**k, n)))),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }
}

/// Appends to an exactly sized slice (a trie's lists are short and change far less often than
/// they are read: no spare room is kept, nor a capacity word).
pub(crate) fn push_exact<T>(slice: &mut Box<[T]>, value: T) {
    let mut v = std::mem::take(slice).into_vec();
    v.reserve_exact(1);
    v.push(value);
    *slice = v.into_boxed_slice();
}

/// Removes element `at` of an exactly sized slice, the last taking its place; an emptied slice
/// holds no allocation.
pub(crate) fn swap_remove_exact<T>(slice: &mut Box<[T]>, at: usize) -> T {
    let mut v = std::mem::take(slice).into_vec();
    let value = v.swap_remove(at);
    *slice = v.into_boxed_slice();
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn turns_into_a_map_above_few_and_back_below_half() {
        let mut c: Children<u32> = Children::default();
        for i in 0..=FEW as u32 {
            *c.get_or_insert_with(&i.to_string(), || i) += 100;
        }
        assert!(matches!(c, Children::Many(_)));
        for i in 0..=FEW as u32 {
            assert_eq!(c.get(&i.to_string()), Some(&(i + 100)));
        }
        let mut seen: Vec<u32> = c.iter().map(|(_, n)| *n).collect();
        seen.sort_unstable();
        assert_eq!(seen, (100..=100 + FEW as u32).collect::<Vec<_>>());
        for i in 0..=(FEW / 2) as u32 {
            c.remove(&i.to_string());
        }
        assert!(matches!(&c, Children::Few(few) if few.len() == FEW / 2));
        assert_eq!(c.get("0"), None);
        assert_eq!(c.get(&FEW.to_string()), Some(&(FEW as u32 + 100)));
        for i in 0..=FEW as u32 {
            c.remove(&i.to_string());
        }
        assert!(c.is_empty());
        assert!(matches!(&c, Children::Few(few) if few.is_empty()));
    }
}
