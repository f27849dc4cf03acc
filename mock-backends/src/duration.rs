//! Gateway API durations (GEP-2257): `250ms`, `2s`, `1m30s`, `1h`.
//!
//! A duration is one to four `<digits><unit>` parts with one to five digits each and units `h`, `m`,
//! `s` or `ms`; the parts add up (as Go's `time.ParseDuration` does). Zero is written `0s`. The
//! resolution is one millisecond; formatting drops anything finer.

use std::fmt;
use std::time::Duration;

use ::serde::de::{self, Visitor};
use ::serde::{Deserializer, Serializer};

/// Why a string is not a Gateway API duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty.
    #[error("empty duration; expected a Gateway API duration like 250ms, 2s or 1m30s")]
    Empty,
    /// A part has no digits before its unit, or the string does not start with a digit.
    #[error("`{0}`: expected digits before each unit, like 250ms, 2s or 1m30s")]
    MissingNumber(String),
    /// A number is not followed by one of `h`, `m`, `s`, `ms`.
    #[error("`{0}`: every number needs a unit h, m, s or ms (like 250ms, 2s or 1m30s)")]
    MissingUnit(String),
    /// A number has more than five digits.
    #[error("`{0}`: at most 5 digits per part")]
    TooManyDigits(String),
    /// More than four parts.
    #[error("`{0}`: at most 4 parts (like 1h2m3s4ms)")]
    TooManyParts(String),
}

/// Parses a Gateway API duration.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let bytes = text.as_bytes();
    let mut total = Duration::ZERO;
    let mut parts = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        let digits_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &text[digits_start..i];
        if digits.is_empty() {
            return Err(DurationError::MissingNumber(text.to_owned()));
        }
        if digits.len() > 5 {
            return Err(DurationError::TooManyDigits(text.to_owned()));
        }
        // Five digits always fit in a u64; the parse cannot fail.
        let value: u64 = digits.parse().unwrap_or(0);
        let rest = &bytes[i..];
        let part = if rest.starts_with(b"ms") {
            i += 2;
            Duration::from_millis(value)
        } else if rest.starts_with(b"h") {
            i += 1;
            Duration::from_secs(value * 3600)
        } else if rest.starts_with(b"m") {
            i += 1;
            Duration::from_secs(value * 60)
        } else if rest.starts_with(b"s") {
            i += 1;
            Duration::from_secs(value)
        } else {
            return Err(DurationError::MissingUnit(text.to_owned()));
        };
        parts += 1;
        if parts > 4 {
            return Err(DurationError::TooManyParts(text.to_owned()));
        }
        total += part;
    }
    Ok(total)
}

/// Formats a duration the canonical Gateway API way (`0s`, `250ms`, `1m30s`, `1h0m0s1ms` is written
/// `1h1ms`): zero parts are left out, sub-millisecond precision is dropped.
pub fn format(duration: Duration) -> String {
    Display(duration).to_string()
}

/// Formats a duration like [`format()`] without allocating.
#[derive(Debug, Clone, Copy)]
pub struct Display(pub Duration);

impl fmt::Display for Display {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total_ms = self.0.as_millis();
        if total_ms == 0 {
            return f.write_str("0s");
        }
        let hours = total_ms / 3_600_000;
        let minutes = total_ms / 60_000 % 60;
        let seconds = total_ms / 1000 % 60;
        let millis = total_ms % 1000;
        for (value, unit) in [(hours, "h"), (minutes, "m"), (seconds, "s"), (millis, "ms")] {
            if value > 0 {
                write!(f, "{value}{unit}")?;
            }
        }
        Ok(())
    }
}

/// `#[serde(with = "mock_backends::duration::serde")]` for `Duration` fields written as Gateway API
/// strings.
pub mod serde {
    use super::*;

    /// Writes the duration as a Gateway API string.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Display(*value))
    }

    /// Reads a Gateway API string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_str(DurationVisitor)
    }
}

/// A `Duration` that (de)serializes as a Gateway API string; handy inside collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct GatewayDuration(pub Duration);

impl ::serde::Serialize for GatewayDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self::serde::serialize(&self.0, serializer)
    }
}

impl<'de> ::serde::Deserialize<'de> for GatewayDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        self::serde::deserialize(deserializer).map(GatewayDuration)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Gateway API duration like 250ms, 2s or 1m30s")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gateway_api_durations() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse("1h2m3s4ms"), Ok(Duration::from_millis(3_723_004)));
        assert_eq!(parse("99999ms"), Ok(Duration::from_millis(99_999)));
        // Go adds repeated or unordered parts; so do we.
        assert_eq!(parse("1s1s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("500ms1m"), Ok(Duration::from_millis(60_500)));
    }

    #[test]
    fn rejects_what_gateway_api_rejects() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert!(matches!(parse("0"), Err(DurationError::MissingUnit(_))));
        assert!(matches!(parse("5"), Err(DurationError::MissingUnit(_))));
        assert!(matches!(parse("1.5s"), Err(DurationError::MissingUnit(_))));
        assert!(matches!(parse("5us"), Err(DurationError::MissingUnit(_))));
        assert!(matches!(parse("s"), Err(DurationError::MissingNumber(_))));
        assert!(matches!(parse("-1s"), Err(DurationError::MissingNumber(_))));
        assert!(matches!(parse(" 1s"), Err(DurationError::MissingNumber(_))));
        assert!(matches!(parse("1s "), Err(DurationError::MissingNumber(_))));
        assert!(matches!(
            parse("100000ms"),
            Err(DurationError::TooManyDigits(_))
        ));
        assert!(matches!(
            parse("1h1m1s1ms1ms"),
            Err(DurationError::TooManyParts(_))
        ));
    }

    #[test]
    fn formats_canonically_and_round_trips() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_micros(999)), "0s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(3_600_001)), "1h1ms");
        for text in ["250ms", "2s", "1m30s", "1h", "0s", "1h2m3s4ms"] {
            let value = parse(text).expect("valid");
            assert_eq!(format(value), text);
            assert_eq!(parse(&format(value)), Ok(value));
        }
    }

    #[test]
    fn serde_uses_strings() {
        let value: GatewayDuration = serde_json::from_str("\"1m30s\"").expect("valid");
        assert_eq!(value.0, Duration::from_secs(90));
        assert_eq!(
            serde_json::to_string(&value).expect("serializes"),
            "\"1m30s\""
        );
        let err = serde_json::from_str::<GatewayDuration>("\"90\"").expect_err("no unit");
        assert!(err.to_string().contains("unit"), "{err}");
        assert!(serde_json::from_str::<GatewayDuration>("90").is_err());
    }
}
