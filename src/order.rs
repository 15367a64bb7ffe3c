//! Sorting by a `u64` key through one routine: every sort of the crate orders `(key, tag)` pairs
//! of `u64`s, so one sort is compiled rather than one per element type and key closure. It is
//! written here, an insertion sort for short runs and a heapsort beyond: the standard library's
//! sort took about 5 KB of the WebAssembly build, and what the crate sorts (a topic's
//! subscriptions when its route is worked out, statistics, what `close()` leaves) is short or
//! rare enough that its speed does not show.

/// Runs this short are sorted by insertion.
const SHORT: usize = 16;

/// Sorts `(key, tag)` pairs by key, then tag.
#[inline(never)]
pub(crate) fn sort_pairs(pairs: &mut [(u64, u64)]) {
    let n = pairs.len();
    if n <= SHORT {
        for i in 1..n {
            let mut j = i;
            while j > 0 && pairs[j] < pairs[j - 1] {
                pairs.swap(j, j - 1);
                j -= 1;
            }
        }
        return;
    }
    // A max-heap of the whole slice, then its largest pair moved to the end, one by one.
    for root in (0..n / 2).rev() {
        sift_down(pairs, root, n);
    }
    for end in (1..n).rev() {
        pairs.swap(0, end);
        sift_down(pairs, 0, end);
    }
}

/// Moves the pair at `root` down the heap `pairs[..end]` until both its children are smaller.
fn sift_down(pairs: &mut [(u64, u64)], mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && pairs[child] < pairs[child + 1] {
            child += 1;
        }
        if pairs[root] >= pairs[child] {
            return;
        }
        pairs.swap(root, child);
        root = child;
    }
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
        let mut next = crate::test_rng::below(0x2545_f491_4f6c_dd1d);
        for len in [0, 1, 2, 5, 17, 64, 300] {
            let items: Vec<(u64, usize)> = (0..len).map(|i| (next(7), i)).collect();
            let mut expected = items.clone();
            expected.sort_by_key(|&(k, _)| k);
            assert_eq!(sorted_by_key(items, |&(k, _)| k), expected);
        }
    }

    #[test]
    fn sort_pairs_sorts_as_the_standard_library_does() {
        let mut next = crate::test_rng::below(0x9e37_79b9_7f4a_7c15);
        for len in (0..=70).chain([255, 256, 1000, 4097]) {
            // Few distinct keys (many ties broken by the tag, some pairs equal) and many.
            for spread in [3, u64::MAX] {
                let mut pairs: Vec<(u64, u64)> =
                    (0..len).map(|_| (next(spread), next(4))).collect();
                let mut expected = pairs.clone();
                expected.sort_unstable();
                sort_pairs(&mut pairs);
                assert_eq!(pairs, expected, "{len} pairs, keys below {spread}");
            }
        }
        let mut sorted: Vec<(u64, u64)> = (0..100).map(|i| (i, 0)).collect();
        let mut reversed: Vec<(u64, u64)> = sorted.iter().rev().copied().collect();
        sort_pairs(&mut sorted);
        sort_pairs(&mut reversed);
        assert_eq!(sorted, reversed);
    }

    #[test]
    fn sort_pairs_orders_by_key_then_tag() {
        let mut pairs = vec![(3, 1), (1, 9), (3, 0), (2, 5), (1, 2)];
        sort_pairs(&mut pairs);
        assert_eq!(pairs, [(1, 2), (1, 9), (2, 5), (3, 0), (3, 1)]);
    }
}
