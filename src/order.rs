//! Sorting by a `u64` key through one routine: every sort of the crate orders `(key, tag)` pairs
//! of `u64`s, so the standard library's sort is compiled once rather than once per element type
//! and key closure (each copy is 2–4 KB of the WebAssembly build).

/// Sorts `(key, tag)` pairs by key, then tag.
#[inline(never)]
pub(crate) fn sort_pairs(pairs: &mut [(u64, u64)]) {
    pairs.sort_unstable();
}

/// `items` in the order of `key`; items with equal keys keep their order (a stable sort).
pub(crate) fn sorted_by_key<T>(items: Vec<T>, key: impl Fn(&T) -> u64) -> Vec<T> {
    let mut pairs: Vec<(u64, u64)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (key(item), i as u64))
        .collect();
    sort_pairs(&mut pairs);
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    pairs
        .iter()
        .filter_map(|&(_, i)| slots[i as usize].take())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_by_key_is_a_stable_sort() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for len in [0, 1, 2, 5, 17, 64, 300] {
            let items: Vec<(u64, usize)> = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 7, i)
                })
                .collect();
            let mut expected = items.clone();
            expected.sort_by_key(|&(k, _)| k);
            assert_eq!(sorted_by_key(items, |&(k, _)| k), expected);
        }
    }

    #[test]
    fn sort_pairs_orders_by_key_then_tag() {
        let mut pairs = vec![(3, 1), (1, 9), (3, 0), (2, 5), (1, 2)];
        sort_pairs(&mut pairs);
        assert_eq!(pairs, [(1, 2), (1, 9), (2, 5), (3, 0), (3, 1)]);
    }
}
