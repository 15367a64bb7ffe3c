//! A small deterministic generator for unit tests (xorshift64): the same sequence on every run
//! and every target, no dependency.

/// Numbers below `m` from the xorshift64 sequence started at `seed` (not zero).
pub(crate) fn below(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut x = seed;
    move |m| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    }
}
