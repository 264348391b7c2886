//! Measuring the simulator itself: wall time, CPU time and peak memory of a run. These are
//! the only readings of the real world in the crate, and none of them feeds back into the
//! simulation (they are not part of the trace hash).

use std::time::{Duration, Instant};

/// Wall time, thread CPU time and peak resident memory since [`Meter::start`].
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    wall: Instant,
    cpu: Option<Duration>,
}

/// What a [`Meter`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Measured {
    /// Wall-clock seconds.
    pub wall_secs: f64,
    /// CPU seconds of the measuring thread, where the OS tells (Linux).
    pub cpu_secs: Option<f64>,
    /// Peak resident memory of the process in bytes, where the OS tells (Linux).
    pub peak_rss_bytes: Option<u64>,
}

impl Meter {
    /// Starts measuring.
    #[must_use]
    pub fn start() -> Self {
        Self {
            wall: wall_now(),
            cpu: thread_cpu_time(),
        }
    }

    /// What was spent since [`Meter::start`].
    #[must_use]
    pub fn read(&self) -> Measured {
        let wall = wall_now().duration_since(self.wall);
        let cpu = match (self.cpu, thread_cpu_time()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
            _ => None,
        };
        Measured {
            wall_secs: wall.as_secs_f64(),
            cpu_secs: cpu,
            peak_rss_bytes: peak_rss_bytes(),
        }
    }
}

/// The simulator's one wall-clock read: it measures speed, and anchors virtual time zero
/// (machines see only offsets from it, so no decision depends on its value).
#[allow(clippy::disallowed_methods)]
fn wall_now() -> Instant {
    Instant::now()
}

/// CPU time of the calling thread, from `/proc/thread-self/schedstat` (nanoseconds on CPU).
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Peak resident set size of the process, from `VmHWM` in `/proc/self/status`.
fn peak_rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The instant virtual time zero maps to. Machines only ever see it plus a virtual
/// offset, so its value never changes a run's decisions.
pub(crate) fn epoch() -> Instant {
    wall_now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_sane_on_linux() {
        let m = Meter::start();
        let mut x = 0u64;
        for i in 0..200_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let r = m.read();
        assert!(r.wall_secs >= 0.0);
        if cfg!(target_os = "linux") {
            assert!(r.cpu_secs.is_some());
            assert!(r.peak_rss_bytes.is_some_and(|b| b > 0));
        }
    }
}
