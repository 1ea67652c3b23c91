//! Series arithmetic: EWMA, least-squares slope and the sparkline.

/// Exponentially weighted moving average of `values` in order; `None` for
/// an empty series.
pub fn ewma(values: impl IntoIterator<Item = f64>, alpha: f64) -> Option<f64> {
    values.into_iter().fold(None, |acc, x| {
        Some(acc.map_or(x, |e| alpha * x + (1.0 - alpha) * e))
    })
}

/// Least-squares slope of `(x, y)` points, in y per unit of x; `None` with
/// fewer than two distinct x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (
            num + (x - mean_x) * (y - mean_y),
            den + (x - mean_x).powi(2),
        )
    });
    (den > 0.0).then(|| num / den)
}

/// Bars from low to high.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Shown for a week without a counted index.
pub const GAP: char = '·';

/// One bar per value in `[0, 1]`, a gap mark for `None`.
pub fn sparkline(values: impl IntoIterator<Item = Option<f64>>) -> String {
    values
        .into_iter()
        .map(|v| match v {
            Some(v) => BARS[((v.clamp(0.0, 1.0) * 7.0).round()) as usize],
            None => GAP,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_weights_recent_values_by_alpha() {
        assert_eq!(ewma([], 0.4), None);
        assert_eq!(ewma([0.5], 0.4), Some(0.5));
        let e = ewma([0.0, 1.0], 0.4).unwrap();
        assert!((e - 0.4).abs() < 1e-12);
    }

    #[test]
    fn slope_fits_a_line_and_respects_gaps() {
        assert_eq!(slope(&[(0.0, 1.0)]), None);
        let s = slope(&[(0.0, 0.1), (1.0, 0.2), (3.0, 0.4)]).unwrap();
        assert!((s - 0.1).abs() < 1e-12);
        let flat = slope(&[(0.0, 0.5), (5.0, 0.5)]).unwrap();
        assert!(flat.abs() < 1e-12);
    }

    #[test]
    fn sparkline_maps_unit_interval_to_bars_with_gaps() {
        assert_eq!(
            sparkline([Some(0.0), None, Some(0.5), Some(1.0), Some(7.0)]),
            "▁·▅██"
        );
    }
}
