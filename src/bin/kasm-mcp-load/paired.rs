//! The paired open loop: N calls on ONE schedule over the same time window. Tick `i` of
//! stream `k` is intended to start at `i + k/N` periods; each call is timed from its own
//! intended start (no coordinated omission); a thread paces the starts with the OS's
//! high-resolution timer (tokio's is whole milliseconds). Every stream sees the same machine (the same
//! idle-vCPU wake-ups, the same neighbours), so the difference of two streams measures
//! what one adds over the other, which two runs one after the other cannot do here.

use std::time::{Duration, Instant};

use crate::calls::Call;
use crate::stats::Samples;

/// The answer of a call that never came back (its task ended without a result).
const LOST: &str = "the call's task ended without an answer";

/// When tick `tick` of stream `stream` (of `streams`) is intended to start, from the start.
pub fn intended_offset(period: Duration, tick: usize, stream: usize, streams: usize) -> Duration {
    period.mul_f64(tick as f64 + stream as f64 / streams.max(1) as f64)
}

/// Send each of `calls` `rate` times per second for `duration` seconds, interleaved.
/// The samples of each stream are recorded in tick order (errors included), so
/// `micros[i]` of every stream belongs to tick `i` until the samples are sorted.
/// `lateness` receives, per call, how long after its intended start the pacer handed it
/// to the runtime (µs): the pacer's own share of every latency.
pub async fn run<const N: usize>(
    http: &reqwest::Client,
    calls: &[Call; N],
    rate: u32,
    duration: f64,
    lateness: &std::sync::Mutex<Vec<u64>>,
) -> ([Samples; N], Duration) {
    let rate = rate.max(1);
    let ticks = (f64::from(rate) * duration.max(0.0)).round() as usize;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runtime = tokio::runtime::Handle::current();
    let calls = calls.clone();
    let http = http.clone();
    let started = Instant::now();
    // The pacer is a thread of its own that sleeps with the OS's high-resolution timer:
    // tokio's timer rounds every deadline up to a whole millisecond, which at 1,000 calls/s
    // would move the half-period offset by up to ±0.5 ms (the sign set by where the start
    // falls in tokio's millisecond) and bias the paired difference by as much.
    let pacer = tokio::task::spawn_blocking(move || {
        let mut late = Vec::with_capacity(ticks.saturating_mul(N));
        for tick in 0..ticks {
            for (stream, call) in calls.iter().enumerate() {
                let intended = started + intended_offset(period, tick, stream, N);
                let now = Instant::now();
                if intended > now {
                    std::thread::sleep(intended - now);
                }
                late.push(u64::try_from(intended.elapsed().as_micros()).unwrap_or(u64::MAX));
                let (call, http, tx) = (call.clone(), http.clone(), tx.clone());
                runtime.spawn(async move {
                    let outcome = call.send(&http).await;
                    let _ = tx.send((stream, tick, intended.elapsed(), outcome));
                });
            }
        }
        late
    });
    type Slot = Option<(Duration, Result<(), String>)>;
    let mut slots: [Vec<Slot>; N] = std::array::from_fn(|_| vec![None; ticks]);
    while let Some((stream, tick, elapsed, outcome)) = rx.recv().await {
        if let Some(slot) = slots.get_mut(stream).and_then(|s| s.get_mut(tick)) {
            *slot = Some((elapsed, outcome));
        }
    }
    let elapsed = started.elapsed();
    if let (Ok(late), Ok(mut sink)) = (pacer.await, lateness.lock()) {
        *sink = late;
    }
    let samples = slots.map(|stream| {
        let mut samples = Samples::default();
        for slot in stream {
            let (elapsed, outcome) = slot.unwrap_or((Duration::ZERO, Err(LOST.to_string())));
            samples.record(elapsed, outcome);
        }
        samples
    });
    (samples, elapsed)
}

/// Percentiles of the per-tick differences `ours[i] - base[i]` (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Differences {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// The percentiles (nearest rank) of `ours[i] - base[i]` over the ticks both have: unlike
/// `p99(ours) - p99(base)`, the p99 of these is the tail of what one call adds over the
/// call paired with it, a tail of the base stream cancelling in its own tick.
pub fn differences_ms(ours: &[u64], base: &[u64]) -> Option<Differences> {
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut differences: Vec<i64> = ours
        .iter()
        .zip(base)
        .map(|(&a, &b)| as_i64(a).saturating_sub(as_i64(b)))
        .collect();
    if differences.is_empty() {
        return None;
    }
    differences.sort_unstable();
    let n = differences.len();
    let at = |p: f64| {
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        differences
            .get(rank.clamp(1, n) - 1)
            .map_or(f64::NAN, |&d| d as f64 / 1000.0)
    };
    Some(Differences {
        p50: at(50.0),
        p90: at(90.0),
        p99: at(99.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_interleaved_evenly_within_a_period() {
        let period = Duration::from_millis(1);
        assert_eq!(intended_offset(period, 0, 0, 2), Duration::ZERO);
        assert_eq!(intended_offset(period, 0, 1, 2), Duration::from_micros(500));
        assert_eq!(
            intended_offset(period, 3, 1, 2),
            Duration::from_micros(3500)
        );
        let third = intended_offset(period, 1, 1, 3).as_nanos();
        assert!((1_333_000..=1_334_000).contains(&third), "{third}");
    }

    #[test]
    fn percentiles_of_per_tick_differences() {
        // Tick-wise: +1000, -500, +200 µs → median +200 µs, unlike p50(ours) - p50(base).
        let ours = [2000, 1000, 1400];
        let base = [1000, 1500, 1200];
        let d = differences_ms(&ours, &base).map(|d| (d.p50, d.p90, d.p99));
        assert_eq!(d, Some((0.2, 1.0, 1.0)));
        assert_eq!(differences_ms(&[], &[]), None);
    }

    #[test]
    fn a_tail_shared_by_both_streams_cancels_in_the_differences() {
        // 100 ticks: tick 0 is 10 ms late for both streams (the machine), every other tick
        // the second stream adds 0.2 ms. p99(ours) - p99(base) sees 0.2 ms; the differences
        // see 0.2 ms at p50 and p99 and never the shared 10 ms.
        let base: Vec<u64> = (0..100)
            .map(|i| if i == 0 { 10_000 } else { 300 })
            .collect();
        let ours: Vec<u64> = base.iter().map(|b| b + 200).collect();
        let d = differences_ms(&ours, &base).map(|d| (d.p50, d.p99));
        assert_eq!(d, Some((0.2, 0.2)));
    }

    #[test]
    fn a_tail_of_our_own_shows_in_the_differences_but_not_in_the_difference_of_p99s() {
        // 100 ticks: the direct call is 5 ms late in ticks 0-1 (the machine), ours in ticks
        // 2-3 (our own stall), 0.3 ms otherwise for both. Both p99s are 5 ms, so
        // p99(ours) - p99(base) says 0; the per-tick differences show +4.7 ms at p99 (and
        // -4.7 ms at the other end, which p50 and p90 do not reach).
        let late = |ticks: [usize; 2]| -> Vec<u64> {
            (0..100)
                .map(|i| if ticks.contains(&i) { 5_000 } else { 300 })
                .collect()
        };
        let (base, ours) = (late([0, 1]), late([2, 3]));
        let p99 = |v: &[u64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v[98]
        };
        assert_eq!(p99(&ours), p99(&base));
        let d = differences_ms(&ours, &base).map(|d| (d.p50, d.p90, d.p99));
        assert_eq!(d, Some((0.0, 0.0, 4.7)));
    }
}
