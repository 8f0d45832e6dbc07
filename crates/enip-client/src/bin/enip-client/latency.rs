//! Operation latencies for `--thruput`'s percentiles, in constant memory however long the
//! run (`-r 100000000` would otherwise keep 1.6 GB of durations).
//!
//! A log-linear histogram of nanoseconds: exact below 64 ns, then 64 buckets per power
//! of two, so a reported percentile is within 1/64 (1.6 %) of the true one.

use std::time::Duration;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets for every `u64` of nanoseconds.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

#[derive(Debug, Clone)]
pub struct Latencies {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

fn bucket(ns: u64) -> usize {
    if ns < SUB {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros();
    let shift = exp - SUB_BITS;
    // The top SUB_BITS + 1 bits: SUB ..= 2 * SUB - 1.
    let top = ns >> shift;
    (shift as usize + 1) * SUB as usize + (top - SUB) as usize
}

/// The middle of a bucket's range of nanoseconds.
fn middle(b: usize) -> f64 {
    let row = (b / SUB as usize) as u32;
    let col = (b % SUB as usize) as u64;
    if row == 0 {
        return col as f64;
    }
    let shift = row - 1;
    let low = (SUB + col) << shift;
    low as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if let Some(c) = self.counts.get_mut(bucket(ns)) {
            *c += 1;
            self.total += 1;
        }
    }

    /// Add another run's latencies to these.
    pub fn merge(&mut self, other: &Latencies) {
        for (c, o) in self.counts.iter_mut().zip(&other.counts) {
            *c += o;
        }
        self.total += other.total;
    }

    /// The `p` quantile (0 < p ≤ 1) in milliseconds: the latency at rank ⌈p·n⌉; 0 with
    /// nothing recorded.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let rank = ((self.total as f64 * p).ceil() as u64).clamp(1, self.total.max(1));
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank && c > 0 {
                return middle(b) / 1e6;
            }
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for ns in (0..5_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let b = bucket(ns);
            assert!(b < BUCKETS, "{ns}");
            assert!(b >= last, "{ns}");
            last = b;
            // The bucket's middle is within 1/64 of every value in it.
            let m = middle(b);
            assert!((m - ns as f64).abs() <= ns as f64 / 64.0 + 0.5, "{ns}: {m}");
        }
    }

    #[test]
    fn percentiles_are_within_their_precision_of_the_exact_ones() {
        // xorshift over 1 µs .. 100 ms, skewed like real latencies.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut all = Vec::new();
        let mut h = Latencies::default();
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ns = 1_000 + (x % 1_000_000) * (x % 97 + 1);
            all.push(ns);
            h.record(Duration::from_nanos(ns));
        }
        all.sort_unstable();
        for p in [0.5, 0.9, 0.99, 0.999, 1.0] {
            let exact = all[((all.len() as f64 * p).ceil() as usize) - 1] as f64 / 1e6;
            let got = h.percentile_ms(p);
            assert!(
                (got - exact).abs() <= exact / 64.0,
                "p{p}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn nothing_recorded_is_zero() {
        assert_eq!(Latencies::default().percentile_ms(0.99), 0.0);
    }

    #[test]
    fn merged_runs_give_the_percentiles_of_all_their_latencies() {
        let (mut fast, mut slow, mut all) = (
            Latencies::default(),
            Latencies::default(),
            Latencies::default(),
        );
        for us in 1..=900u64 {
            fast.record(Duration::from_micros(us));
            all.record(Duration::from_micros(us));
        }
        for ms in 10..110u64 {
            slow.record(Duration::from_millis(ms));
            all.record(Duration::from_millis(ms));
        }
        fast.merge(&slow);
        assert_eq!(fast.total, 1_000);
        assert_eq!(fast.counts, all.counts);
        // p50 among the fast ones, p99 among the slow ones.
        assert!((fast.percentile_ms(0.5) - 0.5).abs() < 0.5 / 64.0);
        assert!((fast.percentile_ms(0.99) - 99.0).abs() < 99.0 / 64.0);
    }
}
