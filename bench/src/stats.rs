//! Medians, percentiles and bootstrap intervals.

/// The `p`-quantile (0..=1) of an ascending slice, nearest rank; NaN when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of the finite values (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Bootstrap resamples per interval: enough that the interval's ends do not move between
/// runs on the same samples by more than the last printed digit.
const RESAMPLES: usize = 4000;

/// SplitMix64: a fixed-seed generator, so the same samples always give the same interval
/// (a results file can be checked by recomputing it).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The percentile bootstrap interval (`level`, e.g. 0.9) of the median of the finite
/// `values`: the rounds are resampled with replacement and the median taken each time.
/// With one value the interval is that value; NaN when there is none.
pub(crate) fn median_interval(values: &[f64], level: f64) -> (f64, f64) {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = SplitMix(0x005E_ED0F_B007_57A9);
    let mut medians = Vec::with_capacity(RESAMPLES);
    let mut draw = vec![0.0; v.len()];
    for _ in 0..RESAMPLES {
        for d in draw.iter_mut() {
            *d = v[rng.below(v.len())];
        }
        medians.push(median(&draw));
    }
    medians.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    (percentile(&medians, tail), percentile(&medians, 1.0 - tail))
}

/// The per-round ratios of paired samples (`a[i] / b[i]`: round `i` of one server against
/// round `i` of the other, measured back to back), skipping pairs with a missing side.
pub(crate) fn paired_ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).filter(|r| r.is_finite()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentile() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[f64::NAN]).is_nan());
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
    }

    #[test]
    fn interval_brackets_the_median_and_narrows_with_agreement() {
        let spread = [0.8, 1.0, 1.1, 1.2, 1.5];
        let (lo, hi) = median_interval(&spread, 0.9);
        assert!(lo <= median(&spread) && median(&spread) <= hi);
        assert!(lo < hi);
        let (lo, hi) = median_interval(&[1.3; 5], 0.9);
        assert_eq!((lo, hi), (1.3, 1.3));
        assert_eq!(median_interval(&[2.0], 0.9), (2.0, 2.0));
        assert!(median_interval(&[], 0.9).0.is_nan());
        assert_eq!(paired_ratios(&[2.0, 3.0, f64::NAN], &[1.0, 2.0, 1.0]), vec![2.0, 1.5]);
    }
}
