//! Latency distributions for replicas and latency faults.
//!
//! JSON/YAML shapes: `"5ms"` or `{"fixed": "5ms"}`, `{"uniform": ["1ms", "9ms"]}` (also
//! `{"uniform": {"min": "1ms", "max": "9ms"}}`), `{"lognormal": {"p50": "5ms", "p99": "40ms"}}`.
//! Serialization always writes the tagged form.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::{self, GatewayDuration};

/// The standard normal quantile at 0.99: `p99 = p50 * exp(Z99 * sigma)` for a log-normal.
const Z99: f64 = 2.326_347_874_040_841;

/// Samples are capped here so a wide log-normal tail cannot park a request for days.
const MAX_SAMPLE: Duration = Duration::from_secs(3600);

/// How long a replica (or a latency fault) delays each response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyDist {
    /// Always the same delay (zero means no delay).
    Fixed(Duration),
    /// Uniform between `min` and `max`, both included.
    Uniform {
        /// Smallest delay.
        min: Duration,
        /// Largest delay.
        max: Duration,
    },
    /// Log-normal with the given median and 99th percentile.
    LogNormal {
        /// Median delay.
        p50: Duration,
        /// 99th-percentile delay; not below `p50`.
        p99: Duration,
    },
}

/// Why a latency distribution is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LatencyError {
    /// `uniform` with `min > max`.
    #[error("uniform latency needs min <= max, got [{min}, {max}]")]
    UniformReversed {
        /// The given minimum, formatted.
        min: String,
        /// The given maximum, formatted.
        max: String,
    },
    /// `lognormal` with `p99 < p50`.
    #[error("lognormal latency needs p99 >= p50, got p50 {p50} and p99 {p99}")]
    LogNormalReversed {
        /// The given median, formatted.
        p50: String,
        /// The given 99th percentile, formatted.
        p99: String,
    },
    /// `lognormal` with a zero median but a non-zero p99: no log-normal has that shape.
    #[error("lognormal latency needs p50 > 0 when p99 > 0")]
    LogNormalZeroMedian,
}

/// A validated distribution ready for sampling (log-normal parameters precomputed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Sampler {
    Fixed(Duration),
    Uniform { min_ns: u64, max_ns: u64 },
    LogNormal { mu: f64, sigma: f64 },
}

impl Default for LatencyDist {
    fn default() -> Self {
        Self::ZERO
    }
}

impl LatencyDist {
    /// No delay.
    pub const ZERO: Self = Self::Fixed(Duration::ZERO);

    /// Checks that the distribution makes sense.
    pub fn validate(&self) -> Result<(), LatencyError> {
        match *self {
            Self::Fixed(_) => Ok(()),
            Self::Uniform { min, max } if min > max => Err(LatencyError::UniformReversed {
                min: duration::format(min),
                max: duration::format(max),
            }),
            Self::Uniform { .. } => Ok(()),
            Self::LogNormal { p50, p99 } if p99 < p50 => Err(LatencyError::LogNormalReversed {
                p50: duration::format(p50),
                p99: duration::format(p99),
            }),
            Self::LogNormal { p50, p99 } if p50.is_zero() && !p99.is_zero() => {
                Err(LatencyError::LogNormalZeroMedian)
            }
            Self::LogNormal { .. } => Ok(()),
        }
    }

    /// Draws one delay. Invalid shapes are clamped (reversed bounds swapped, zero median gives zero).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        self.sampler().sample(rng)
    }

    /// True when every sample is zero.
    pub fn is_zero(&self) -> bool {
        match *self {
            Self::Fixed(d) => d.is_zero(),
            Self::Uniform { min, max } => min.is_zero() && max.is_zero(),
            Self::LogNormal { p50, .. } => p50.is_zero(),
        }
    }

    pub(crate) fn sampler(&self) -> Sampler {
        match *self {
            Self::Fixed(d) => Sampler::Fixed(d),
            Self::Uniform { min, max } => {
                let (a, b) = (nanos(min), nanos(max));
                Sampler::Uniform {
                    min_ns: a.min(b),
                    max_ns: a.max(b),
                }
            }
            Self::LogNormal { p50, .. } if p50.is_zero() => Sampler::Fixed(Duration::ZERO),
            Self::LogNormal { p50, p99 } => {
                let mu = p50.as_secs_f64().ln();
                let sigma = (p99.as_secs_f64().ln() - mu).max(0.0) / Z99;
                Sampler::LogNormal { mu, sigma }
            }
        }
    }
}

impl Sampler {
    pub(crate) fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            Self::Fixed(d) => d,
            Self::Uniform { min_ns, max_ns } => {
                Duration::from_nanos(rng.random_range(min_ns..=max_ns))
            }
            Self::LogNormal { mu, sigma } => {
                let secs = (mu + sigma * standard_normal(rng)).exp();
                Duration::try_from_secs_f64(secs)
                    .unwrap_or(MAX_SAMPLE)
                    .min(MAX_SAMPLE)
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Box–Muller; one draw per call keeps the RNG stream easy to reason about.
fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // 1 - [0, 1) is (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

struct Range(GatewayDuration, GatewayDuration);
struct Quantiles(GatewayDuration, GatewayDuration);

impl Serialize for LatencyDist {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match *self {
            Self::Fixed(d) => map.serialize_entry("fixed", &GatewayDuration(d))?,
            Self::Uniform { min, max } => {
                map.serialize_entry("uniform", &[GatewayDuration(min), GatewayDuration(max)])?
            }
            Self::LogNormal { p50, p99 } => map.serialize_entry(
                "lognormal",
                &Quantiles(GatewayDuration(p50), GatewayDuration(p99)),
            )?,
        }
        map.end()
    }
}

impl Serialize for Quantiles {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("LogNormal", 2)?;
        s.serialize_field("p50", &self.0)?;
        s.serialize_field("p99", &self.1)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for LatencyDist {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let dist = deserializer.deserialize_any(DistVisitor)?;
        dist.validate().map_err(de::Error::custom)?;
        Ok(dist)
    }
}

struct DistVisitor;

impl<'de> Visitor<'de> for DistVisitor {
    type Value = LatencyDist;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a duration (5ms) or one of {fixed: 5ms}, {uniform: [1ms, 9ms]}, \
             {lognormal: {p50: 5ms, p99: 40ms}}",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<LatencyDist, E> {
        duration::parse(v)
            .map(LatencyDist::Fixed)
            .map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LatencyDist, A::Error> {
        const KINDS: &[&str] = &["fixed", "uniform", "lognormal"];
        let Some(kind) = map.next_key::<String>()? else {
            return Err(de::Error::invalid_length(
                0,
                &"exactly one of fixed, uniform, lognormal",
            ));
        };
        let dist = match kind.as_str() {
            "fixed" => LatencyDist::Fixed(map.next_value::<GatewayDuration>()?.0),
            "uniform" => {
                let Range(min, max) = map.next_value()?;
                LatencyDist::Uniform {
                    min: min.0,
                    max: max.0,
                }
            }
            "lognormal" => {
                let Quantiles(p50, p99) = map.next_value()?;
                LatencyDist::LogNormal {
                    p50: p50.0,
                    p99: p99.0,
                }
            }
            other => return Err(de::Error::unknown_field(other, KINDS)),
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "a latency has exactly one of fixed, uniform, lognormal",
            ));
        }
        Ok(dist)
    }
}

impl<'de> Deserialize<'de> for Range {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RangeVisitor)
    }
}

struct RangeVisitor;

impl<'de> Visitor<'de> for RangeVisitor {
    type Value = Range;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[min, max] or {min: .., max: ..}")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Range, A::Error> {
        let min = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let max = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        Ok(Range(min, max))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Range, A::Error> {
        let (mut min, mut max) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "min" => min = Some(map.next_value()?),
                "max" => max = Some(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, &["min", "max"])),
            }
        }
        Ok(Range(
            min.ok_or_else(|| de::Error::missing_field("min"))?,
            max.ok_or_else(|| de::Error::missing_field("max"))?,
        ))
    }
}

impl<'de> Deserialize<'de> for Quantiles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            p50: GatewayDuration,
            p99: GatewayDuration,
        }
        let raw = Raw::deserialize(deserializer)?;
        Ok(Quantiles(raw.p50, raw.p99))
    }
}

#[cfg(test)]
mod tests;
