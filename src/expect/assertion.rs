//! `<metric> <op> <value>`: parsing with column-precise errors, canonical text and evaluation.
//!
//! Value kinds follow the metric's unit:
//! - rates (`success_rate`, `share`, ...) take a percentage (`99.9%`) or a bare fraction from 0 to 1
//!   (`0.999`); a bare number above 1 is an error, because `99.9` for a rate is almost always a
//!   percentage without its `%`;
//! - latencies take a duration with a unit in Gateway API spelling (`50ms`, `1s`, `1m30s`); a bare
//!   number is an error, because its unit would be a guess;
//! - counts (`requests`, `status_count`, `flag_count`, `stat`) and `rps` take a plain number.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

use super::metric::{Metric, MetricError, MetricKind, metric_from_parts};
use crate::scenario::duration::parse_duration;

/// The operators, as listed in errors.
const OPS: &str = "<, <=, >, >=, ==, !=";

/// A parsed `<metric> <op> <value>` expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    pub metric: Metric,
    pub op: Op,
    pub threshold: Threshold,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// The value an observation is compared with, as the user wrote it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// A plain number: a count, a rate per second, or a fraction for rate metrics.
    Number(f64),
    /// A percentage (`99.9%`): `percent` as written, `fraction` = percent / 100 (0.999).
    Percent { percent: f64, fraction: f64 },
    /// A duration, for latency metrics.
    Duration(Duration),
}

/// An assertion that cannot be parsed or does not type-check; `column` is 1-based, in characters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid assertion `{text}` at column {column}: {message}")]
pub struct AssertionError {
    pub text: String,
    pub column: usize,
    pub message: String,
}

impl Assertion {
    /// Parses and type-checks `<metric> <op> <value>`.
    pub fn parse(text: &str) -> Result<Assertion, AssertionError> {
        Parser { text, pos: 0 }.assertion()
    }

    /// Whether the observation (a fraction for rates, seconds for latencies, a count or a rate per
    /// second otherwise) satisfies the assertion. An undefined observation (NaN, such as a rate
    /// over no requests) never does.
    pub fn holds(&self, observed: f64) -> bool {
        if observed.is_nan() {
            return false;
        }
        let limit = self.threshold.value();
        match self.op {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
            Op::Eq => observed == limit,
            Op::Ne => observed != limit,
        }
    }

    /// An observation written in the same style as the threshold (`99.95%`, `42.5ms`, `1200`),
    /// for reports.
    pub fn format_observed(&self, observed: f64) -> String {
        if observed.is_nan() {
            return "n/a".to_string();
        }
        match self.metric.kind() {
            MetricKind::Fraction => match self.threshold {
                Threshold::Number(_) => format!("{}", round_to(observed, 6)),
                _ => format!("{}%", round_to(observed * 100.0, 4)),
            },
            MetricKind::Latency => format!("{}ms", round_to(observed * 1000.0, 3)),
            MetricKind::Count | MetricKind::PerSecond => format!("{}", round_to(observed, 3)),
        }
    }
}

impl FromStr for Assertion {
    type Err = AssertionError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Assertion::parse(text)
    }
}

impl fmt::Display for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.op, self.threshold)
    }
}

impl Op {
    /// The operator's text.
    pub fn as_str(&self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Threshold {
    /// The value in the metric's natural unit: a fraction, seconds, or the number itself.
    pub fn value(&self) -> f64 {
        match *self {
            Threshold::Number(n) => n,
            Threshold::Percent { fraction, .. } => fraction,
            Threshold::Duration(d) => d.as_secs_f64(),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Threshold::Number(n) => write!(f, "{n}"),
            Threshold::Percent { percent, .. } => write!(f, "{percent}%"),
            Threshold::Duration(d) => f.write_str(&format_duration(d)),
        }
    }
}

/// Writes a duration in Gateway API spelling that parses back to the same value (`1m30s`,
/// `2s500ms`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms == 0 {
        return "0s".to_string();
    }
    let parts = [
        (total_ms / 3_600_000, "h"),
        (total_ms / 60_000 % 60, "m"),
        (total_ms / 1000 % 60, "s"),
        (total_ms % 1000, "ms"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect()
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// A cursor over the assertion text; positions are byte offsets, errors report columns.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn assertion(mut self) -> Result<Assertion, AssertionError> {
        self.skip_spaces();
        if self.at_end() {
            return Err(self.error_at(
                self.pos,
                "empty assertion: expected `<metric> <op> <value>`, for example `success_rate >= 99.9%`",
            ));
        }
        let metric = self.metric()?;
        self.skip_spaces();
        let op = self.op()?;
        self.skip_spaces();
        let value_start = self.pos;
        let token = self.take_while(|c| !c.is_whitespace());
        if token.is_empty() {
            return Err(self.error_at(
                value_start,
                format!(
                    "expected a value after `{op}`: a number (100), a percentage (99.9%) or a duration (50ms)"
                ),
            ));
        }
        self.skip_spaces();
        if !self.at_end() {
            let rest = self.text[self.pos..].trim_end();
            return Err(self.error_at(
                self.pos,
                format!("unexpected `{rest}` after the value: an assertion ends with its value"),
            ));
        }
        let threshold = self.threshold(token, value_start)?;
        check_kind(&metric, &threshold).map_err(|message| self.error_at(value_start, message))?;
        Ok(Assertion {
            metric,
            op,
            threshold,
        })
    }

    fn metric(&mut self) -> Result<Metric, AssertionError> {
        let name_start = self.pos;
        let name = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
        if name.is_empty() {
            return Err(self.error_at(
                name_start,
                format!("expected a metric name, found `{}`", self.next_token()),
            ));
        }
        self.skip_spaces();
        let mut arg = None;
        if self.peek() == Some('(') {
            self.pos += 1;
            let arg_start = self.pos;
            let inner = self.take_while(|c| c != ')');
            if self.peek() != Some(')') {
                return Err(self.error_at(self.pos, "expected `)` to close the metric's argument"));
            }
            self.pos += 1;
            let leading = inner.len() - inner.trim_start().len();
            arg = Some((inner.trim(), arg_start + leading));
        }
        metric_from_parts(name, arg.map(|(a, _)| a)).map_err(|err| match err {
            MetricError::Unknown(m) | MetricError::Name(m) => self.error_at(name_start, m),
            MetricError::Argument(m) => {
                self.error_at(arg.map(|(_, at)| at).unwrap_or(name_start), m)
            }
        })
    }

    fn op(&mut self) -> Result<Op, AssertionError> {
        let rest = &self.text[self.pos..];
        let (op, len) = if rest.starts_with("<=") {
            (Op::Le, 2)
        } else if rest.starts_with(">=") {
            (Op::Ge, 2)
        } else if rest.starts_with("==") {
            (Op::Eq, 2)
        } else if rest.starts_with("!=") {
            (Op::Ne, 2)
        } else if rest.starts_with('<') {
            (Op::Lt, 1)
        } else if rest.starts_with('>') {
            (Op::Gt, 1)
        } else {
            let found = if self.at_end() {
                "the end of the assertion".to_string()
            } else {
                format!("`{}`", self.next_token())
            };
            let hint = if rest.starts_with('=') && !rest.starts_with("=>") {
                " (equality is `==`)"
            } else {
                ""
            };
            return Err(self.error_at(
                self.pos,
                format!("expected an operator ({OPS}), found {found}{hint}"),
            ));
        };
        self.pos += len;
        Ok(op)
    }

    fn threshold(&self, token: &str, at: usize) -> Result<Threshold, AssertionError> {
        if let Some(number) = token.strip_suffix('%') {
            if !is_decimal(number) {
                return Err(self.error_at(
                    at,
                    format!(
                        "invalid percentage `{token}`: expected a number before `%`, such as 99.9%"
                    ),
                ));
            }
            let percent = parse_decimal(number).map_err(|m| self.error_at(at, m))?;
            // Shifting the decimal point in the text keeps 99.9% exactly the double nearest 0.999.
            let fraction =
                parse_decimal(&format!("{number}e-2")).map_err(|m| self.error_at(at, m))?;
            return Ok(Threshold::Percent { percent, fraction });
        }
        if is_decimal(token) {
            return parse_decimal(token)
                .map(Threshold::Number)
                .map_err(|m| self.error_at(at, m));
        }
        if token.starts_with(|c: char| c.is_ascii_digit())
            && let Ok(d) = parse_duration(token)
        {
            return Ok(Threshold::Duration(d));
        }
        Err(self.error_at(
            at,
            format!(
                "invalid value `{token}`: expected a number (100, 0.5), a percentage (99.9%) or a duration (250ms, 2s, 1m30s: whole numbers of h, m, s or ms)"
            ),
        ))
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        let len = self.text[start..]
            .find(|c: char| !keep(c))
            .unwrap_or(self.text.len() - start);
        self.pos += len;
        &self.text[start..self.pos]
    }

    fn skip_spaces(&mut self) {
        self.take_while(char::is_whitespace);
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// The text from the cursor up to the next space, for "found `...`" messages.
    fn next_token(&self) -> &'a str {
        let rest = &self.text[self.pos..];
        rest.split(char::is_whitespace).next().unwrap_or(rest)
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> AssertionError {
        AssertionError {
            text: self.text.to_string(),
            column: self.text[..pos].chars().count() + 1,
            message: message.into(),
        }
    }
}

/// `123` or `12.5`: digits with an optional fraction.
fn is_decimal(text: &str) -> bool {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && fraction.is_none_or(digits)
}

fn parse_decimal(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err(format!("number `{text}` is too large")),
    }
}

/// Checks that the value's kind suits the metric's unit, saying what would.
fn check_kind(metric: &Metric, threshold: &Threshold) -> Result<(), String> {
    match (metric.kind(), threshold) {
        (MetricKind::Fraction, Threshold::Number(n)) if *n > 1.0 => Err(format!(
            "`{metric}` is a rate: a bare number is a fraction from 0 to 1; for a percentage write `{n}%`"
        )),
        (MetricKind::Fraction, Threshold::Percent { percent, .. }) if *percent > 100.0 => Err(
            format!("`{metric}` is a rate: a percentage must be from 0% to 100%, got {percent}%"),
        ),
        (MetricKind::Fraction, Threshold::Duration(_)) => Err(format!(
            "`{metric}` is a rate: compare it with a percentage (99.9%) or a fraction from 0 to 1 (0.999), not a duration"
        )),
        (MetricKind::Latency, Threshold::Number(n)) => Err(format!(
            "`{metric}` is a latency: give the value a unit, for example {n}ms or {n}s"
        )),
        (MetricKind::Latency, Threshold::Percent { .. }) => Err(format!(
            "`{metric}` is a latency: compare it with a duration such as 50ms, not a percentage"
        )),
        (MetricKind::Count, Threshold::Percent { .. } | Threshold::Duration(_)) => Err(format!(
            "`{metric}` is a count: compare it with a plain number such as 100; for a share use a rate metric"
        )),
        (MetricKind::PerSecond, Threshold::Percent { .. } | Threshold::Duration(_)) => {
            Err(format!(
                "`{metric}` is requests per second: compare it with a plain number such as 250"
            ))
        }
        _ => Ok(()),
    }
}
