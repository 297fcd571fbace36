//! Latency samples and what the table prints from them.

use std::time::Duration;

/// The latencies (µs) and errors of one workload.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub micros: Vec<u64>,
    pub errors: u64,
    /// The first error seen, to say what went wrong.
    pub first_error: Option<String>,
}

impl Samples {
    pub fn record(&mut self, elapsed: Duration, outcome: Result<(), String>) {
        self.micros
            .push(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
        if let Err(e) = outcome {
            self.errors += 1;
            self.first_error.get_or_insert(e);
        }
    }

    pub fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Percentiles in milliseconds (nearest rank), sorted once.
    pub fn summary(&mut self) -> Summary {
        self.micros.sort_unstable();
        let n = self.micros.len();
        let at = |p: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            let rank = ((p / 100.0) * n as f64).ceil() as usize;
            self.micros[rank.clamp(1, n) - 1] as f64 / 1000.0
        };
        Summary {
            calls: n as u64,
            errors: self.errors,
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: self.micros.last().map_or(0.0, |&m| m as f64 / 1000.0),
        }
    }
}

/// Percentiles of one workload, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub calls: u64,
    pub errors: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for ms in 1..=100u64 {
            s.record(Duration::from_millis(ms), Ok(()));
        }
        s.record(Duration::from_millis(1), Err("boom".into()));
        let sum = s.summary();
        assert_eq!(sum.calls, 101);
        assert_eq!(sum.errors, 1);
        assert_eq!(sum.p50, 50.0);
        assert_eq!(sum.p99, 99.0);
        assert_eq!(sum.max, 100.0);
    }
}
