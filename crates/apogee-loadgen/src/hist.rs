//! Latency histograms: values are recorded in microseconds, summaries are reported in ms.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A latency histogram in microseconds (1 µs .. 1 h, 3 significant digits).
pub fn new() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Records `micros`, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, micros: u64) {
    let v = micros.clamp(1, h.high());
    h.record(v).expect("value within bounds");
}

/// The percentiles every report shows.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn ms(micros: u64) -> f64 {
    (micros as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// Summarizes a histogram of microseconds; an empty one gives zeros.
pub fn summary(h: &Histogram<u64>) -> Summary {
    if h.is_empty() {
        return Summary {
            count: 0,
            mean_ms: 0.0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
        };
    }
    Summary {
        count: h.len(),
        mean_ms: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
    }
}

impl Summary {
    /// "p50 1.2 / p99 3.4 / max 5.6 ms".
    pub fn short(&self) -> String {
        format!(
            "p50 {:.3} / p99 {:.3} / max {:.3} ms",
            self.p50_ms, self.p99_ms, self.max_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_summarizes_to_zero() {
        let s = summary(&new());
        assert_eq!(s.count, 0);
        assert_eq!(s.max_ms, 0.0);
    }

    #[test]
    fn percentiles_are_reported_in_ms() {
        let mut h = new();
        for v in 1..=1000u64 {
            record(&mut h, v * 1000); // 1 ms .. 1000 ms
        }
        let s = summary(&h);
        assert_eq!(s.count, 1000);
        // 3 significant digits: within 0.1%.
        assert!((s.p50_ms - 500.0).abs() <= 0.5, "{s:?}");
        assert!((s.p90_ms - 900.0).abs() <= 0.9, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() <= 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() <= 1.0, "{s:?}");
        assert!((s.mean_ms - 500.5).abs() <= 0.6, "{s:?}");
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let mut h = new();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
    }
}
