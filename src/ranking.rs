//! Ranking formulas of SPEC section 4. PostgreSQL computes the stored columns with the SQL functions
//! `hot_rank` and `wilson_lower_bound` (see the first migration); these mirror them so that the
//! formulas are readable, unit-tested, and checked against the database in the integration tests.

use chrono::{DateTime, TimeZone, Utc};

/// Seconds of age that weigh as much as a tenfold score (12.5 hours).
const HOT_DECAY_SECONDS: f64 = 45_000.0;

/// z for an 80% confidence interval.
const WILSON_Z: f64 = 1.281_551_565_545;

/// The epoch of the hot rank: 2025-01-01T00:00Z.
pub fn hot_epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

/// sign(score) · log10(max(|score|, 1)) + (created_at − 2025-01-01) / 45000 s.
pub fn hot_rank(score: i32, created_at: DateTime<Utc>) -> f64 {
    let order = f64::from(score.unsigned_abs().max(1)).log10();
    let sign = f64::from(score.signum());
    let age = created_at - hot_epoch();
    let seconds = age
        .num_microseconds()
        .map_or(age.num_seconds() as f64, |us| us as f64 / 1e6);
    sign * order + seconds / HOT_DECAY_SECONDS
}

/// Lower bound of the Wilson score interval at 80% confidence: how good a comment is at least,
/// given its votes, so that one upvote does not outrank fifty upvotes and one downvote.
pub fn wilson_lower_bound(up: i32, down: i32) -> f64 {
    let n = f64::from(up + down);
    if n == 0.0 {
        return 0.0;
    }
    let p = f64::from(up) / n;
    let z2 = WILSON_Z * WILSON_Z;
    (p + z2 / (2.0 * n) - WILSON_Z * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt()) / (1.0 + z2 / n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn hot_rank_at_epoch_is_the_log_of_the_score() {
        assert_eq!(hot_rank(1, hot_epoch()), 0.0);
        assert!((hot_rank(100, hot_epoch()) - 2.0).abs() < 1e-12);
        assert!((hot_rank(-10, hot_epoch()) + 1.0).abs() < 1e-12);
        assert_eq!(hot_rank(0, hot_epoch()), 0.0);
    }

    #[test]
    fn twelve_and_a_half_hours_weigh_as_much_as_a_tenfold_score() {
        let later = hot_epoch() + Duration::seconds(45_000);
        assert!((hot_rank(1, later) - hot_rank(10, hot_epoch())).abs() < 1e-12);
    }

    #[test]
    fn wilson_prefers_many_upvotes_over_one() {
        assert_eq!(wilson_lower_bound(0, 0), 0.0);
        assert!(wilson_lower_bound(50, 1) > wilson_lower_bound(1, 0));
        assert!(wilson_lower_bound(1, 0) > wilson_lower_bound(0, 1));
        let bound = wilson_lower_bound(10, 0);
        assert!(bound > 0.8 && bound < 1.0, "{bound}");
    }
}
