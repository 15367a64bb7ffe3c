//! Delivery counters and the latency histogram behind bus statistics.

/// Counters kept for the bus and for each subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages accepted by publish.
    pub published: u64,
    /// Deliveries handed to a subscriber.
    pub delivered: u64,
    /// Messages dropped by the idempotence filter.
    pub duplicates: u64,
    /// Messages dropped without delivery, e.g. by a full queue.
    pub dropped: u64,
    /// Messages that outlived their time to live.
    pub expired: u64,
    /// Deliveries whose handler failed.
    pub failed: u64,
    /// Deliveries abandoned because the subscription was cancelled.
    pub cancelled: u64,
}

impl Counters {
    /// Adds `other` into `self`, saturating rather than wrapping.
    pub fn add(&mut self, other: &Counters) {
        self.published = self.published.saturating_add(other.published);
        self.delivered = self.delivered.saturating_add(other.delivered);
        self.duplicates = self.duplicates.saturating_add(other.duplicates);
        self.dropped = self.dropped.saturating_add(other.dropped);
        self.expired = self.expired.saturating_add(other.expired);
        self.failed = self.failed.saturating_add(other.failed);
        self.cancelled = self.cancelled.saturating_add(other.cancelled);
    }
}

/// Each power-of-two range is split into this many linear buckets (2^6);
/// a bucket's width is then at most 1/64 of its values, under 1.6% error.
const SUB_BUCKET_BITS: u32 = 6;
const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
/// Largest power of two tracked: values up to 2^33 - 1 µs (about 2.4 hours).
const TOP_EXPONENT: u32 = 32;
const BUCKETS: usize = (TOP_EXPONENT - SUB_BUCKET_BITS + 2) as usize * SUB_BUCKETS;

/// Log-linear histogram of latencies in microseconds (HDR-style): relative error under 1/64, values
/// from 0 up to about 2.4 hours (larger values clamp to the top bucket).
///
/// Values below 128 are counted exactly. Buckets are allocated up to the largest value recorded, so
/// a histogram that only ever saw short latencies (every subscription starts that way) stays a few
/// words long; at most 1,792 buckets (14 KiB).
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        LatencyHistogram {
            counts: Vec::new(),
            total: 0,
        }
    }

    /// Counts one latency.
    pub fn record(&mut self, micros: u64) {
        self.record_n(micros, 1);
    }

    /// Counts `n` occurrences of the same latency.
    pub fn record_n(&mut self, micros: u64, n: u64) {
        let bucket = bucket_of(micros);
        if bucket >= self.counts.len() {
            self.counts.resize(bucket + 1, 0);
        }
        let count = &mut self.counts[bucket];
        *count = count.saturating_add(n);
        self.total = self.total.saturating_add(n);
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Value at quantile q in [0,1] (e.g. 0.5, 0.99): an upper bound of the bucket holding that rank; 0 when empty. q outside [0,1] is clamped.
    pub fn quantile(&self, q: f64) -> u64 {
        self.quantile_with_zeros(q, 0)
    }

    /// [`LatencyHistogram::quantile`] as if `zeros` more latencies of 0 were recorded, without
    /// copying the histogram (direct deliveries are counted that way, apart from it).
    pub fn quantile_with_zeros(&self, q: f64, zeros: u64) -> u64 {
        let total = self.total.saturating_add(zeros);
        if total == 0 {
            return 0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        // 1-based rank of the wanted value; float-to-int casts saturate.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        if zeros >= rank {
            return bucket_upper_bound(0);
        }
        let mut seen = zeros;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(count);
            if seen >= rank {
                return bucket_upper_bound(bucket);
            }
        }
        bucket_upper_bound(BUCKETS - 1)
    }

    /// Adds every latency recorded in `other` into `self`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.total = self.total.saturating_add(other.total);
    }

    /// Forgets every latency recorded.
    pub fn reset(&mut self) {
        self.counts.clear();
        self.total = 0;
    }
}

/// Buckets are numbered `shift * 64 + mantissa`, where `mantissa` is the
/// value's top 7 significant bits (64..128) and `shift` how far it was shifted
/// down; values below 128 keep shift 0 and so land in their own bucket.
fn bucket_of(micros: u64) -> usize {
    let bucket = if micros < 2 * SUB_BUCKETS as u64 {
        micros as usize
    } else {
        let exponent = 63 - micros.leading_zeros();
        let shift = exponent - SUB_BUCKET_BITS;
        shift as usize * SUB_BUCKETS + (micros >> shift) as usize
    };
    bucket.min(BUCKETS - 1)
}

/// Largest value that lands in `bucket`.
fn bucket_upper_bound(bucket: usize) -> u64 {
    let shift = (bucket / SUB_BUCKETS).saturating_sub(1);
    let mantissa = (bucket - shift * SUB_BUCKETS) as u64;
    ((mantissa + 1) << shift) - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const HOUR_MICROS: u64 = 3_600_000_000;

    #[test]
    fn quantiles_with_zeros_are_those_of_the_histogram_with_the_zeros_recorded() {
        let mut next = crate::test_rng::below(0x9e37_79b9_7f4a_7c15);
        for _ in 0..300 {
            let mut h = LatencyHistogram::new();
            for _ in 0..next(20) {
                let micros = match next(3) {
                    0 => 0,
                    1 => next(200),
                    _ => next(HOUR_MICROS),
                };
                h.record_n(micros, 1 + next(5));
            }
            let zeros = next(4) * next(30);
            let mut with = h.clone();
            with.record_n(0, zeros);
            for q in [0.0, 0.01, 0.5, 0.9, 0.99, 1.0, f64::NAN] {
                assert_eq!(
                    h.quantile_with_zeros(q, zeros),
                    with.quantile(q),
                    "q {q}, zeros {zeros}, {h:?}"
                );
            }
        }
    }

    fn assert_close(actual: u64, expected: u64) {
        let error = (actual as f64 - expected as f64).abs() / expected as f64;
        assert!(error <= 0.03, "{actual} is not within 3% of {expected}");
    }

    #[test]
    fn counters_add_field_by_field() {
        let mut total = Counters {
            published: 1,
            delivered: 2,
            duplicates: 3,
            dropped: 4,
            expired: 5,
            failed: 6,
            cancelled: 7,
        };
        total.add(&Counters {
            published: 10,
            delivered: 20,
            duplicates: 30,
            dropped: 40,
            expired: 50,
            failed: 60,
            cancelled: u64::MAX,
        });
        assert_eq!(
            total,
            Counters {
                published: 11,
                delivered: 22,
                duplicates: 33,
                dropped: 44,
                expired: 55,
                failed: 66,
                cancelled: u64::MAX,
            }
        );
    }

    #[test]
    fn empty_histogram_reports_zero() {
        let histogram = LatencyHistogram::new();
        assert_eq!(histogram.count(), 0);
        assert_eq!(histogram.quantile(0.5), 0);
    }

    #[test]
    fn small_values_are_exact() {
        let mut histogram = LatencyHistogram::default();
        for micros in 0..128 {
            histogram.record(micros);
        }
        assert_eq!(histogram.quantile(0.0), 0);
        assert_eq!(histogram.quantile(0.5), 63);
        assert_eq!(histogram.quantile(1.0), 127);
    }

    #[test]
    fn uniform_distribution_quantiles() {
        let mut histogram = LatencyHistogram::new();
        for micros in 1..=100_000 {
            histogram.record(micros);
        }
        assert_eq!(histogram.count(), 100_000);
        for (q, expected) in [
            (0.01, 1_000),
            (0.5, 50_000),
            (0.9, 90_000),
            (0.99, 99_000),
            (1.0, 100_000),
        ] {
            let value = histogram.quantile(q);
            assert!(value >= expected, "q={q}: {value} is below {expected}");
            assert_close(value, expected);
        }
    }

    #[test]
    fn geometric_spread_quantiles() {
        // 1, 2, 4, ... 2^31 µs: each value once, so rank k is 2^(k-1).
        let mut histogram = LatencyHistogram::new();
        for exponent in 0..32 {
            histogram.record_n(1 << exponent, 1);
        }
        for rank in 1..=32u64 {
            let q = rank as f64 / 32.0;
            assert_close(histogram.quantile(q), 1 << (rank - 1));
        }
    }

    #[test]
    fn every_value_up_to_an_hour_is_within_error() {
        let mut micros = 1u64;
        while micros <= HOUR_MICROS {
            let mut histogram = LatencyHistogram::new();
            histogram.record(micros);
            let value = histogram.quantile(0.5);
            assert!(value >= micros);
            assert_close(value, micros);
            micros = micros * 17 / 16 + 1;
        }
    }

    #[test]
    fn huge_values_clamp_to_the_top_bucket() {
        let mut histogram = LatencyHistogram::new();
        histogram.record(u64::MAX);
        histogram.record(HOUR_MICROS * 1000);
        assert_eq!(histogram.count(), 2);
        let top = histogram.quantile(1.0);
        assert!(top >= 2 * HOUR_MICROS);
        assert_eq!(histogram.quantile(0.0), top);
    }

    #[test]
    fn quantile_clamps_q() {
        let mut histogram = LatencyHistogram::new();
        histogram.record(10);
        histogram.record(1_000);
        assert_eq!(histogram.quantile(-1.0), 10);
        assert_eq!(histogram.quantile(f64::NAN), 10);
        assert_close(histogram.quantile(7.0), 1_000);
    }

    #[test]
    fn record_n_counts_each_occurrence() {
        let mut histogram = LatencyHistogram::new();
        histogram.record_n(100, 99);
        histogram.record_n(5_000, 1);
        histogram.record_n(9, 0);
        assert_eq!(histogram.count(), 100);
        assert_eq!(histogram.quantile(0.99), 100);
        assert_close(histogram.quantile(1.0), 5_000);
    }

    #[test]
    fn merge_and_reset() {
        let mut low = LatencyHistogram::new();
        let mut high = LatencyHistogram::new();
        for _ in 0..50 {
            low.record(100);
            high.record(10_000);
        }
        low.merge(&high);
        assert_eq!(low.count(), 100);
        assert_eq!(low.quantile(0.5), 100);
        assert_close(low.quantile(0.51), 10_000);
        assert_eq!(high.count(), 50);

        low.reset();
        assert_eq!(low.count(), 0);
        assert_eq!(low.quantile(1.0), 0);
        low.record(7);
        assert_eq!(low.quantile(1.0), 7);
    }
}
