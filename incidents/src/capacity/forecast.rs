//! Time-to-full forecast (history → **forecast** → capacity decision): a robust linear fit of a
//! pool's hourly means over its forecast window, and the days until the fitted line reaches the
//! pool's capacity.
//!
//! The fit is Theil–Sen: the slope is the median of the slopes between pairs of points, the
//! intercept the median of the residual offsets, so up to ~29 % of wild points (a backup filling a
//! volume for an hour, a counter reset) do not move the line. A window of `n` points has
//! `n(n-1)/2` pairs; past [`MAX_PAIRS`] a deterministic subset is used — pairs a fixed set of lags
//! apart, spread over the middle half of the window — so the cost per pool stays bounded
//! (a 30-day window of hourly points would otherwise be 258,840 pairs).

use super::history::DAY_MS;
use crate::Millis;

/// Most pairwise slopes a fit computes.
pub const MAX_PAIRS: usize = 4096;

/// A fitted line `value(t) = level + slope_per_ms · (t − origin_ms)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Growth per millisecond.
    pub slope_per_ms: f64,
    /// Fitted value at `origin_ms`.
    pub level: f64,
    /// Where `level` is taken (the newest point's time).
    pub origin_ms: Millis,
}

impl Fit {
    /// The fitted value at `at`.
    pub fn at(&self, at: Millis) -> f64 {
        self.level + self.slope_per_ms * (at - self.origin_ms) as f64
    }

    /// Growth per day.
    pub fn slope_per_day(&self) -> f64 {
        self.slope_per_ms * DAY_MS as f64
    }

    /// Days from `now` until the line reaches `capacity`: 0 when it is there already, `None`
    /// when it does not grow.
    pub fn days_to_full(&self, capacity: f64, now: Millis) -> Option<f64> {
        if self.slope_per_ms.is_nan() || self.slope_per_ms <= 0.0 {
            return None;
        }
        let left = capacity - self.at(now);
        let days = (left / self.slope_per_ms / DAY_MS as f64).max(0.0);
        days.is_finite().then_some(days)
    }
}

/// The median of `values` (reordered); `None` when empty.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mid = values.len() / 2;
    let (_, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if values.len() % 2 == 1 {
        return Some(upper);
    }
    let lower = values[..mid]
        .iter()
        .copied()
        .max_by(f64::total_cmp)
        .unwrap_or(upper);
    Some(lower + (upper - lower) / 2.0)
}

/// Index pairs `(i, j)`, `i < j`, whose slopes the fit takes: all of them for a small window,
/// else pairs a fixed set of lags apart (lags spread over `n/4 ..= 3n/4`), at most about
/// [`MAX_PAIRS`].
fn pairs(n: usize) -> Vec<(usize, usize)> {
    if n < 2 {
        return Vec::new();
    }
    if n.saturating_mul(n - 1) / 2 <= MAX_PAIRS {
        return (0..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .collect();
    }
    let (low, high) = (n / 4, 3 * n / 4);
    // Lags spread evenly over low..=high give n / 2 pairs each on average.
    let lags = (MAX_PAIRS / (n / 2)).clamp(1, high - low + 1);
    let mut out = Vec::with_capacity(MAX_PAIRS + n);
    for step in 0..lags {
        let k = if lags == 1 {
            n / 2
        } else {
            low + step * (high - low) / (lags - 1)
        };
        out.extend((0..n - k).map(|i| (i, i + k)));
    }
    out
}

/// The Theil–Sen line through `points` (`(time, value)`, oldest first, finite values); `None`
/// with fewer than two distinct times.
pub fn theil_sen(points: &[(Millis, f64)]) -> Option<Fit> {
    let mut slopes: Vec<f64> = pairs(points.len())
        .into_iter()
        .filter_map(|(i, j)| {
            let ((ti, yi), (tj, yj)) = (points[i], points[j]);
            (tj != ti).then(|| (yj - yi) / (tj - ti) as f64)
        })
        .filter(|s| s.is_finite())
        .collect();
    let slope = median(&mut slopes)?;
    let origin_ms = points.iter().map(|p| p.0).max()?;
    let mut levels: Vec<f64> = points
        .iter()
        .map(|&(t, y)| y - slope * (t - origin_ms) as f64)
        .collect();
    let level = median(&mut levels)?;
    Some(Fit {
        slope_per_ms: slope,
        level,
        origin_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::history::HOUR_MS;
    use proptest::prelude::*;

    #[test]
    fn median_table() {
        let cases: [(&[f64], Option<f64>); 5] = [
            (&[], None),
            (&[3.0], Some(3.0)),
            (&[3.0, 1.0], Some(2.0)),
            (&[5.0, 1.0, 3.0], Some(3.0)),
            (&[4.0, 1.0, 3.0, 2.0], Some(2.5)),
        ];
        for (values, want) in cases {
            assert_eq!(median(&mut values.to_vec()), want, "{values:?}");
        }
    }

    #[test]
    fn pairs_are_all_for_small_windows_and_bounded_for_large_ones() {
        assert!(pairs(1).is_empty());
        assert_eq!(pairs(3), [(0, 1), (0, 2), (1, 2)]);
        for n in [91, 720, 8760] {
            let p = pairs(n);
            assert!(p.len() <= MAX_PAIRS + n, "{n}: {}", p.len());
            assert!(p.len() >= MAX_PAIRS / 2, "{n}: {}", p.len());
            assert!(p.iter().all(|&(i, j)| i < j && j < n), "{n}");
        }
    }

    #[test]
    fn days_to_full_table() {
        let day = DAY_MS as f64;
        let fit = |slope_per_day: f64, level: f64| Fit {
            slope_per_ms: slope_per_day / day,
            level,
            origin_ms: 0,
        };
        let cases = [
            (fit(10.0, 500.0), 0, Some(50.0)),
            (fit(10.0, 500.0), DAY_MS * 10, Some(40.0)),
            (fit(10.0, 1200.0), 0, Some(0.0)),
            (fit(0.0, 500.0), 0, None),
            (fit(-5.0, 500.0), 0, None),
        ];
        for (fit, now, want) in cases {
            let got = fit.days_to_full(1000.0, now);
            assert_eq!(
                got.map(|d| (d * 1e6).round() / 1e6),
                want,
                "{fit:?} at {now}"
            );
        }
    }

    #[test]
    fn too_few_points_give_no_fit() {
        assert_eq!(theil_sen(&[]), None);
        assert_eq!(theil_sen(&[(0, 1.0)]), None);
        assert_eq!(theil_sen(&[(5, 1.0), (5, 2.0)]), None);
    }

    proptest! {
        /// A noisy line (noise ±1 % of the level) with up to 20 % wild outliers (5 to 50 times
        /// the value), hourly points over 3 to 60 days: the slope comes back within 2 % of the
        /// true one plus twice the noise amplitude spread over the window.
        #[test]
        fn a_noisy_line_with_outliers_gives_its_slope_back(
            slope_per_day in 1.0f64..1000.0,
            base in 1000.0f64..100_000.0,
            hours in 72usize..1440,
            noise in prop::collection::vec(-1.0f64..1.0, 1440),
            outliers in prop::collection::vec((0usize..1440, 5.0f64..50.0), 0..288),
        ) {
            let wanted_outliers = outliers.len().min(hours / 5);
            let mut points: Vec<(Millis, f64)> = (0..hours)
                .map(|h| {
                    let t = h as i64 * HOUR_MS;
                    let y = base + slope_per_day * t as f64 / DAY_MS as f64;
                    (t, y + noise[h] * 0.01 * base)
                })
                .collect();
            for &(at, factor) in &outliers[..wanted_outliers] {
                points[at % hours].1 *= factor;
            }
            let fit = theil_sen(&points).unwrap();
            let spread = 0.02 * slope_per_day + 2.0 * 0.01 * base / (hours as f64 / 24.0);
            prop_assert!(
                (fit.slope_per_day() - slope_per_day).abs() <= spread,
                "fitted {} per day, true {slope_per_day}, tolerance {spread}",
                fit.slope_per_day()
            );
        }
    }
}
