//! Open-loop arrival schedules: the exact intended send time of request *i*.
//!
//! A schedule is a rate function r(t) ≥ 0; request *i* (0-based) is due at the first t where the
//! integral N(t) = ∫₀ᵗ r reaches *i*, so request 0 leaves at t = 0. Every time is computed from *i*
//! directly (never by adding intervals), so no rounding error accumulates over a long run.
//!
//! Ramps follow k6's `ramping-arrival-rate`: each stage moves the rate linearly from where the
//! previous stage ended to its own `rate`; the first stage starts from `initial` (0 unless the
//! scenario also gives a start rate). After the last stage the schedule ends.

use std::time::Duration;

use thiserror::Error;

/// Highest rate a schedule accepts, in requests per second.
pub const MAX_RATE: f64 = 10_000_000.0;

/// Nanoseconds in one second, as the integer the constant-rate math works in.
const NANOS_PER_SEC: u128 = 1_000_000_000;
/// Constant rates are kept in millihertz so the intended times are exact integers.
const MILLI: u128 = 1_000;

/// Why a schedule could not be built.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScheduleError {
    /// The rate is negative, not a number, or above [`MAX_RATE`].
    #[error("rate {0} is not a number between 0 and {MAX_RATE} requests per second")]
    InvalidRate(f64),
    /// A constant schedule needs a positive rate.
    #[error("a constant rate must be above 0 requests per second")]
    ZeroRate,
    /// `stages` was empty.
    #[error("a ramp needs at least one stage")]
    NoStages,
    /// A stage lasts zero time.
    #[error("stage {0} has a zero duration")]
    ZeroStageDuration(usize),
    /// Every stage has rate 0, so nothing would ever be sent.
    #[error("the stages never send a request (every rate is 0)")]
    Empty,
}

/// A validated request rate, in requests per second (may be 0 inside a ramp).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Rate(f64);

/// One stage of a ramp: over `duration`, the rate moves linearly to `rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// The rate at the end of the stage.
    pub rate: Rate,
}

/// When each request of an open-loop load is meant to leave, relative to the load's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Rate in millihertz; request i is due at floor(i·10¹²/mhz) ns.
    Constant {
        millihertz: u128,
    },
    Ramp(Vec<Segment>),
}

/// One linear piece of a ramp, in seconds and requests.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start: f64,
    length: f64,
    from: f64,
    to: f64,
    /// Requests due before this segment starts (the integral up to `start`).
    before: f64,
    /// Requests due within this segment.
    count: f64,
}

impl Rate {
    /// Checks that `per_second` is a finite number in `0..=MAX_RATE`.
    pub fn try_new(per_second: f64) -> Result<Self, ScheduleError> {
        if per_second.is_finite() && (0.0..=MAX_RATE).contains(&per_second) {
            Ok(Self(per_second))
        } else {
            Err(ScheduleError::InvalidRate(per_second))
        }
    }

    /// Requests per second.
    pub fn per_second(self) -> f64 {
        self.0
    }
}

impl Schedule {
    /// `rate` requests per second from the start, for as long as the load runs.
    pub fn constant(rate: Rate) -> Result<Self, ScheduleError> {
        // Rounded to a millihertz: 1/3 req/s becomes 0.333 req/s, which no scenario can tell apart.
        let millihertz = (rate.0 * 1000.0).round() as u128;
        if millihertz == 0 {
            return Err(ScheduleError::ZeroRate);
        }
        Ok(Self {
            kind: Kind::Constant { millihertz },
        })
    }

    /// A piecewise-linear ramp starting at `initial` (k6 `startRate`; 0 when not given).
    pub fn stages(initial: Rate, stages: &[Stage]) -> Result<Self, ScheduleError> {
        if stages.is_empty() {
            return Err(ScheduleError::NoStages);
        }
        let mut segments = Vec::with_capacity(stages.len());
        let (mut start, mut before, mut from) = (0.0, 0.0, initial.0);
        for (index, stage) in stages.iter().enumerate() {
            let length = stage.duration.as_secs_f64();
            if length <= 0.0 {
                return Err(ScheduleError::ZeroStageDuration(index));
            }
            let to = stage.rate.0;
            let count = (from + to) / 2.0 * length;
            segments.push(Segment {
                start,
                length,
                from,
                to,
                before,
                count,
            });
            start += length;
            before += count;
            from = to;
        }
        if before <= 0.0 {
            return Err(ScheduleError::Empty);
        }
        Ok(Self {
            kind: Kind::Ramp(segments),
        })
    }

    /// The intended send time of request `i`, or `None` when the schedule has ended before it.
    pub fn intended(&self, i: u64) -> Option<Duration> {
        match &self.kind {
            Kind::Constant { millihertz } => {
                let nanos = u128::from(i) * NANOS_PER_SEC * MILLI / millihertz;
                Some(duration_from_nanos(nanos))
            }
            Kind::Ramp(segments) => ramp_time(segments, i as f64).map(Duration::from_secs_f64),
        }
    }

    /// How many requests are due strictly before `t` (the number of `i` with `intended(i) < t`).
    pub fn count_before(&self, t: Duration) -> u64 {
        match &self.kind {
            Kind::Constant { millihertz } => {
                // floor(i·10¹²/m) < T  ⇔  i·10¹² < T·m  ⇔  i < T·m/10¹²: the count is the ceiling.
                let scaled = t.as_nanos() * millihertz;
                let unit = NANOS_PER_SEC * MILLI;
                u64::try_from(scaled.div_ceil(unit)).unwrap_or(u64::MAX)
            }
            Kind::Ramp(segments) => {
                let guess = integral(segments, t.as_secs_f64()).ceil() as u64;
                self.settle_count(guess, t)
            }
        }
    }

    /// The expected number of requests in the first `t` (the integral of the rate).
    pub fn expected_count(&self, t: Duration) -> f64 {
        match &self.kind {
            Kind::Constant { millihertz } => t.as_secs_f64() * (*millihertz as f64) / 1000.0,
            Kind::Ramp(segments) => integral(segments, t.as_secs_f64()),
        }
    }

    /// The highest rate the schedule reaches, in requests per second.
    pub fn peak_rate(&self) -> f64 {
        match &self.kind {
            Kind::Constant { millihertz } => *millihertz as f64 / 1000.0,
            Kind::Ramp(segments) => segments
                .iter()
                .map(|s| s.from.max(s.to))
                .fold(0.0, f64::max),
        }
    }

    /// How long the schedule lasts: the stages' total; `None` for a constant rate (no end).
    pub fn length(&self) -> Option<Duration> {
        match &self.kind {
            Kind::Constant { .. } => None,
            Kind::Ramp(segments) => segments
                .last()
                .map(|s| Duration::from_secs_f64(s.start + s.length)),
        }
    }

    /// Corrects a float estimate of `count_before` so that it agrees with `intended` exactly.
    fn settle_count(&self, guess: u64, t: Duration) -> u64 {
        let mut count = guess;
        // The float estimate is off by at most one request either way; four steps bound the loop.
        for _ in 0..4 {
            if count > 0 && self.intended(count - 1).is_none_or(|at| at >= t) {
                count -= 1;
            } else if self.intended(count).is_some_and(|at| at < t) {
                count += 1;
            } else {
                break;
            }
        }
        count
    }
}

/// The integral of the rate from 0 to `t` seconds.
fn integral(segments: &[Segment], t: f64) -> f64 {
    let index = segments.partition_point(|s| s.start + s.length <= t);
    let Some(segment) = segments.get(index) else {
        return segments.last().map_or(0.0, |s| s.before + s.count);
    };
    let tau = (t - segment.start).max(0.0);
    let slope = (segment.to - segment.from) / segment.length;
    segment.before + segment.from * tau + slope * tau * tau / 2.0
}

/// The time in seconds at which the integral reaches `m`, or `None` past the ramp's end.
fn ramp_time(segments: &[Segment], m: f64) -> Option<f64> {
    // The first segment whose end lies beyond m; segments that send nothing are stepped over.
    let index = segments.partition_point(|s| s.before + s.count <= m);
    let segment = segments.get(index)?;
    let within = m - segment.before;
    if within <= 0.0 {
        return Some(segment.start);
    }
    // Solve from·τ + (to−from)/(2·len)·τ² = within. This form has no cancellation when from ≈ 0
    // and also covers the flat case (to = from).
    let slope = (segment.to - segment.from) / segment.length;
    let root = (segment.from * segment.from + 2.0 * slope * within)
        .max(0.0)
        .sqrt();
    let tau = 2.0 * within / (segment.from + root);
    Some(segment.start + tau.clamp(0.0, segment.length))
}

/// A `Duration` from nanoseconds, saturating at `Duration::MAX`'s whole seconds.
fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    let sub = (nanos % NANOS_PER_SEC) as u32;
    Duration::new(secs, sub)
}
