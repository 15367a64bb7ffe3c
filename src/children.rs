//! A trie node's children by token: a small vector, scanned linearly, until there are more than
//! [`FEW`]; only then a hash map. Most nodes of a topic tree have one child
//! (`orders.<id>.created`), and a hash map's smallest table holds four entries. Shared by the
//! subscription trie (`router`) and the trie of resolved topics (`topic_trie`).

use hashbrown::hash_map::EntryRef;
use hashbrown::{Equivalent, HashMap};

/// Children kept in a vector up to this many; a map above it.
pub(crate) const FEW: usize = 8;

/// Children of one trie node, by token.
#[derive(Debug)]
pub(crate) enum Children<N> {
    /// Up to [`FEW`] children, found by a linear scan; exactly sized (no spare room).
    Few(Box<[(Token, N)]>),
    /// More than [`FEW`] children; it returns to `Few` at [`FEW`] / 2, so removal frees it.
    Many(Box<HashMap<Token, N>>),
}

impl<N> Default for Children<N> {
    fn default() -> Self {
        Children::Few(Box::default())
    }
}

impl<N> Children<N> {
    pub(crate) fn get(&self, token: &str) -> Option<&N> {
        match self {
            Children::Few(few) => few
                .iter()
                .find(|(k, _)| same_token(k.as_bytes(), token.as_bytes()))
                .map(|(_, n)| n),
            Children::Many(many) => many.get(&Key(token.as_bytes())),
        }
    }

    pub(crate) fn get_mut(&mut self, token: &str) -> Option<&mut N> {
        match self {
            Children::Few(few) => few
                .iter_mut()
                .find(|(k, _)| same_token(k.as_bytes(), token.as_bytes()))
                .map(|(_, n)| n),
            Children::Many(many) => many.get_mut(&Key(token.as_bytes())),
        }
    }

    /// The child for `token`, made by `make` when missing.
    pub(crate) fn get_or_insert_with(&mut self, token: &str, make: impl FnOnce() -> N) -> &mut N {
        if let Children::Few(few) = self {
            if few.len() >= FEW
                && !few
                    .iter()
                    .any(|(k, _)| same_token(k.as_bytes(), token.as_bytes()))
            {
                let map: HashMap<Token, N> = std::mem::take(few).into_vec().into_iter().collect();
                *self = Children::Many(Box::new(map));
            }
        }
        match self {
            Children::Few(few) => {
                let at = match few
                    .iter()
                    .position(|(k, _)| same_token(k.as_bytes(), token.as_bytes()))
                {
                    Some(at) => at,
                    None => {
                        push_exact(few, (Token::new(token), make()));
                        few.len() - 1
                    }
                };
                &mut few[at].1
            }
            // One lookup, found or not.
            Children::Many(many) => match many.entry_ref(&Key(token.as_bytes())) {
                EntryRef::Occupied(e) => e.into_mut(),
                EntryRef::Vacant(e) => e.insert_with_key(Token::new(token), make()),
            },
        }
    }

    pub(crate) fn remove(&mut self, token: &str) {
        match self {
            Children::Few(few) => {
                if let Some(at) = few
                    .iter()
                    .position(|(k, _)| same_token(k.as_bytes(), token.as_bytes()))
                {
                    swap_remove_exact(few, at);
                }
            }
            Children::Many(many) => {
                many.remove(&Key(token.as_bytes()));
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
            Children::Few(few) => (Some(few.iter().map(|(k, n)| (k.as_str(), n))), None),
            Children::Many(many) => (None, Some(many.iter().map(|(k, n)| (k.as_str(), n)))),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }
}

/// Bytes a token keeps in place: with its length and the variant's tag, three words.
const INLINE: usize = 3 * std::mem::size_of::<usize>() - 2;

/// A child's token: kept in place when short (most tokens are: `orders`, `created`, an id), on
/// the heap otherwise. One word more than a `Box<str>`, and no allocation (with its header and
/// rounding) for a short token.
#[derive(Clone)]
pub(crate) enum Token {
    Short { len: u8, bytes: [u8; INLINE] },
    Long(Box<str>),
}

impl Token {
    pub(crate) fn new(token: &str) -> Token {
        if token.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..token.len()].copy_from_slice(token.as_bytes());
            Token::Short {
                len: token.len() as u8,
                bytes,
            }
        } else {
            Token::Long(token.into())
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            Token::Short { len, bytes } => &bytes[..*len as usize],
            Token::Long(s) => s.as_bytes(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Token::Short { len, bytes } => {
                std::str::from_utf8(&bytes[..*len as usize]).expect("copied from a str")
            }
            Token::Long(s) => s,
        }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        same_token(self.as_bytes(), other.as_bytes())
    }
}

impl Eq for Token {}

// Hashed and compared as bytes, never through `as_str` (whose UTF-8 check cost more than the
// comparison): a map keyed by tokens is searched with a [`Key`], which hashes alike.
impl std::hash::Hash for Token {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Key(self.as_bytes()).hash(state)
    }
}

/// A token being looked up in a map of [`Token`]s: its bytes, hashed as a `Token` is.
struct Key<'a>(&'a [u8]);

impl std::hash::Hash for Key<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.0);
        // As `str` does: keeps ("ab", "c") and ("a", "bc") apart in a hashed sequence.
        state.write_u8(0xff);
    }
}

impl Equivalent<Token> for Key<'_> {
    #[inline]
    fn equivalent(&self, key: &Token) -> bool {
        same_token(self.0, key.as_bytes())
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

/// `a == b`, without a call to `memcmp` for the short tokens most topics are made of (matching
/// a topic never seen scans a few children at each level), nor a loop: two loads that overlap
/// when the length is not a power of two cover every byte.
#[inline]
fn same_token(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word4 = |s: &[u8], at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[at..at + 4]);
        u32::from_ne_bytes(w)
    };
    let word8 = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    match n {
        0 => true,
        // The first, middle and last bytes: every byte of one to three.
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=8 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        9..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn short_tokens_stay_in_place_and_long_ones_work_alike() {
        assert_eq!(
            std::mem::size_of::<Token>(),
            3 * std::mem::size_of::<usize>()
        );
        let long = "x".repeat(INLINE + 1);
        let mut c: Children<u32> = Children::default();
        for (i, t) in ["", "a", "created", &"y".repeat(INLINE), &long, "é✓"]
            .iter()
            .enumerate()
        {
            let token = Token::new(t);
            assert_eq!(token.as_str(), *t);
            assert_eq!(matches!(token, Token::Short { .. }), t.len() <= INLINE);
            *c.get_or_insert_with(t, || i as u32) += 0;
        }
        assert_eq!(c.get(&long), Some(&4));
        assert_eq!(c.get("é✓"), Some(&5));
        assert_eq!(c.get("create"), None);
        // The same in a map (past FEW children), searched by `&str`.
        for i in 0..FEW as u32 {
            c.get_or_insert_with(&format!("k{i}"), || 100 + i);
        }
        assert!(matches!(c, Children::Many(_)));
        assert_eq!(c.get(&long), Some(&4));
        assert_eq!(c.get("created"), Some(&2));
        assert_eq!(c.get("k3"), Some(&103));
    }

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
