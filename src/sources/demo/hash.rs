//! A tiny deterministic hash. Every random-looking choice in the demo is a pure function of
//! the seed and a few integers, so the same seed always tells the same story and a metric
//! point computed for a backfill equals the one computed live.

/// The splitmix64 finaliser: a good 64-bit mix in a few instructions.
pub(super) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a seed and a short list of integers (negative values are fine: they wrap).
pub(super) fn hash(seed: u64, parts: &[i64]) -> u64 {
    parts
        .iter()
        .fold(splitmix64(seed), |h, &p| splitmix64(h ^ p as u64))
}

/// A uniform value in `[0, 1)` from a hash.
pub(super) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniform integer in `[lo, hi]` from a hash.
pub(super) fn between(h: u64, lo: i64, hi: i64) -> i64 {
    lo + (h % (hi - lo + 1).max(1) as u64) as i64
}

/// Domain tags keep hashes for different purposes independent of each other.
pub(super) mod tag {
    pub const TEAM: i64 = 1;
    pub const VERSION: i64 = 2;
    pub const PROFILE: i64 = 3;
    pub const PHASE: i64 = 4;
    pub const NOISE: i64 = 5;
    pub const EPISODE: i64 = 6;
    pub const PICK: i64 = 7;
    pub const ACCOUNT: i64 = 8;
    pub const ADDON: i64 = 9;
    pub const INSIGHT: i64 = 10;
    pub const UPDATE_ID: i64 = 11;
    pub const FIRST_SEEN: i64 = 12;
    pub const SPIKE: i64 = 13;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_spread() {
        assert_eq!(hash(7, &[1, 2]), hash(7, &[1, 2]));
        assert_ne!(hash(7, &[1, 2]), hash(8, &[1, 2]));
        assert_ne!(hash(7, &[1, 2]), hash(7, &[2, 1]));
        let mean = (0..10_000).map(|i| unit(hash(1, &[i]))).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        for i in 0..1000 {
            let v = between(hash(3, &[i]), 5, 9);
            assert!((5..=9).contains(&v));
        }
    }
}
