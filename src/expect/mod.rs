//! Expectations: the assertion language `<metric> <op> <value>` and its evaluation.
//!
//! An assertion is parsed once from the scenario into an [`Assertion`], whose [`Assertion::holds`]
//! judges an observation taken in the metric's natural unit (fraction, seconds, count).

mod assertion;
pub mod evaluate;
mod metric;

pub use assertion::{Assertion, AssertionError, Op, Threshold, format_duration};
pub use metric::{
    LatencyStat, METRIC_NAMES, Metric, MetricKind, RESPONSE_FLAGS, ResponseFlagName, StatusSelector,
};

#[cfg(test)]
mod tests;
