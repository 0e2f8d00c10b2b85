//! How fast a copy goes and how long it still takes, estimated from the
//! `BytesDone` readings the service sends (about every 200 ms).

use std::time::{Duration, Instant};

/// Readings closer together than this are summed into one, so that two
/// signals arriving back to back do not make the rate jump.
const MIN_INTERVAL: Duration = Duration::from_millis(150);
/// Weight of the newest reading: the rate follows a change within a few seconds.
const SMOOTHING: f64 = 0.3;

#[derive(Debug, Default)]
pub struct TransferRate {
    /// The reading the next one is measured against.
    last: Option<(Instant, u64)>,
    bytes_per_second: Option<f64>,
}

impl TransferRate {
    /// `done` bytes were copied by `now`.
    pub fn update(&mut self, now: Instant, done: u64) {
        let Some((then, before)) = self.last else {
            self.last = Some((now, done));
            return;
        };
        let elapsed = now.saturating_duration_since(then);
        if elapsed < MIN_INTERVAL {
            return;
        }
        let rate = done.saturating_sub(before) as f64 / elapsed.as_secs_f64();
        self.bytes_per_second = Some(match self.bytes_per_second {
            Some(old) => old + SMOOTHING * (rate - old),
            None => rate,
        });
        self.last = Some((now, done));
    }

    /// Bytes per second, once two readings were far enough apart.
    pub fn bytes_per_second(&self) -> Option<f64> {
        self.bytes_per_second
    }

    /// The time the rest of `total` takes at the current rate.
    pub fn time_left(&self, done: u64, total: u64) -> Option<Duration> {
        let rate = self.bytes_per_second.filter(|r| *r > 0.0)?;
        let rest = total.saturating_sub(done) as f64;
        Some(Duration::from_secs_f64(rest / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_steady_copy_gives_its_rate_and_the_time_left() {
        let start = Instant::now();
        let mut rate = TransferRate::default();
        rate.update(start, 0);
        assert_eq!(rate.bytes_per_second(), None, "one reading is no rate");
        for i in 1..=10 {
            // 100 MiB/s, read every 200 ms.
            rate.update(start + Duration::from_millis(200 * i), 20 * MIB * i);
        }
        let bps = rate.bytes_per_second().expect("a rate");
        assert!((bps - 100.0 * MIB as f64).abs() < 1.0, "{bps}");
        let left = rate.time_left(200 * MIB, 1200 * MIB).expect("time left");
        assert_eq!(left.as_secs(), 10, "1,000 MiB at 100 MiB/s");
    }

    #[test]
    fn readings_close_together_count_as_one_and_a_stall_slows_the_estimate() {
        let start = Instant::now();
        let mut rate = TransferRate::default();
        rate.update(start, 0);
        rate.update(start + Duration::from_millis(10), 50 * MIB);
        assert_eq!(rate.bytes_per_second(), None, "10 ms apart: no rate yet");
        rate.update(start + Duration::from_secs(1), 100 * MIB);
        let steady = rate.bytes_per_second().unwrap();
        rate.update(start + Duration::from_secs(2), 100 * MIB);
        let stalled = rate.bytes_per_second().unwrap();
        assert!(stalled < steady, "{stalled} < {steady}");
        assert!(stalled > 0.0, "smoothed, not dropped to zero at once");
    }

    #[test]
    fn no_rate_means_no_time_left() {
        let rate = TransferRate::default();
        assert_eq!(rate.time_left(0, MIB), None);
    }
}
