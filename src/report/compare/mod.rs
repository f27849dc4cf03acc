//! `chaosgate compare BASE.json NEW.json`: how two runs of the same scenario differ — latency
//! percentiles and success rate per route and backend, and expectation verdicts — and whether
//! the new run regressed past a bound.
//!
//! The rules, with the bound `B` (`--max-regression`, default 10%):
//! - a latency percentile (p50, p90, p99, p99.9) regressed when `new > base × (1 + B)`:
//!   relative, because latency scales with the scenario; the maximum is shown but never gates
//!   (it is one sample);
//! - a success rate regressed when it fell by more than `B` percentage points
//!   (`new < base − B`): absolute, because a relative bound on a rate near 100% hides real
//!   losses and one on the error rate flags noise;
//! - an expectation that held in BASE and fails in NEW is always a regression, whatever `B`.
//!
//! Routes or expectations present in only one run are reported, never counted as regressions.

use std::path::Path;

use crate::report::results::{RouteStats, RunResults};

mod html;
mod text;

pub use html::to_html;
pub use text::to_text;

/// The largest tolerated regression, as a fraction (`0.10` for `10%`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound(f64);

/// Why two results files cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A file could not be read or is not a results file.
    #[error("{0}")]
    Read(String),
    /// The files are runs of different scenarios.
    #[error("cannot compare runs of different scenarios: {base} and {new}")]
    DifferentScenarios {
        /// Scenario of the base run.
        base: String,
        /// Scenario of the new run.
        new: String,
    },
    /// The files were written by different versions of the results format.
    #[error("cannot compare results schema v{base} with v{new}")]
    SchemaVersion {
        /// Version of the base file.
        base: u32,
        /// Version of the new file.
        new: u32,
    },
    /// The `--max-regression` value is not a percentage.
    #[error("--max-regression: {0}")]
    Bound(String),
}

/// Two runs side by side.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub scenario: String,
    pub base_run: String,
    pub new_run: String,
    pub bound: Bound,
    pub base_verdict: String,
    pub new_verdict: String,
    pub routes: Vec<RouteDelta>,
    pub expectations: Vec<ExpectationDelta>,
}

/// One route rule and backend in both runs.
#[derive(Debug, Clone)]
pub struct RouteDelta {
    pub route: String,
    pub backend: Option<String>,
    /// Requests in BASE and NEW; `None` when the route is missing from that run.
    pub requests: (Option<u64>, Option<u64>),
    pub metrics: Vec<MetricDelta>,
}

/// One metric of one route in both runs.
#[derive(Debug, Clone)]
pub struct MetricDelta {
    /// `success rate`, `p50`, `p90`, `p99`, `p99.9` or `max`.
    pub name: &'static str,
    pub kind: MetricKind,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// Whether this metric moved past the bound in the bad direction.
    pub regressed: bool,
}

/// How a metric is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A fraction compared in percentage points; higher is better.
    Rate,
    /// Milliseconds compared relatively; lower is better.
    LatencyGated,
    /// Milliseconds shown for information only.
    LatencyInfo,
}

/// One expectation's verdict in both runs.
#[derive(Debug, Clone)]
pub struct ExpectationDelta {
    pub name: String,
    pub assertion: String,
    /// `(passed, observed text)` in BASE and NEW; `None` when missing from that run.
    pub base: Option<(bool, String)>,
    pub new: Option<(bool, String)>,
}

impl Bound {
    /// A bound from a fraction in `[0, 10]` (`0.1` is 10%).
    pub fn try_new(fraction: f64) -> Result<Bound, CompareError> {
        if fraction.is_finite() && (0.0..=10.0).contains(&fraction) {
            Ok(Bound(fraction))
        } else {
            Err(CompareError::Bound(format!(
                "{fraction} is not a fraction between 0 and 10 (0% to 1000%)"
            )))
        }
    }

    /// Parses `10%` or `10` (both mean ten percent).
    pub fn parse(text: &str) -> Result<Bound, CompareError> {
        let number = text.trim().trim_end_matches('%').trim();
        let percent: f64 = number.parse().map_err(|_| {
            CompareError::Bound(format!("{text:?} is not a percentage such as 10%"))
        })?;
        Bound::try_new(percent / 100.0)
    }

    /// The bound as a fraction.
    pub fn fraction(self) -> f64 {
        self.0
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", (self.0 * 10_000.0).round() / 100.0)
    }
}

impl MetricDelta {
    fn new(
        name: &'static str,
        kind: MetricKind,
        base: Option<f64>,
        new: Option<f64>,
        bound: Bound,
    ) -> MetricDelta {
        let regressed = match (kind, base, new) {
            (MetricKind::Rate, Some(b), Some(n)) => n < b - bound.0 - 1e-12,
            (MetricKind::LatencyGated, Some(b), Some(n)) => n > b * (1.0 + bound.0) + 1e-12,
            _ => false,
        };
        MetricDelta {
            name,
            kind,
            base,
            new,
            regressed,
        }
    }

    /// The change as text: `+12.5%` for latencies, `−3.20 pp` for rates, empty when undefined.
    pub fn change_text(&self) -> String {
        let (Some(b), Some(n)) = (self.base, self.new) else {
            return String::new();
        };
        match self.kind {
            MetricKind::Rate => format!("{:+.2} pp", (n - b) * 100.0),
            _ if b > 0.0 => format!("{:+.1}%", (n / b - 1.0) * 100.0),
            _ => String::new(),
        }
    }

    /// Whether the metric got better (lower latency, higher success), beyond rounding.
    pub fn improved(&self) -> bool {
        match (self.kind, self.base, self.new) {
            (MetricKind::Rate, Some(b), Some(n)) => n > b + 1e-9,
            (_, Some(b), Some(n)) => n < b * (1.0 - 1e-9),
            _ => false,
        }
    }
}

impl ExpectationDelta {
    /// Held in BASE, fails in NEW.
    pub fn regressed(&self) -> bool {
        matches!((&self.base, &self.new), (Some((true, _)), Some((false, _))))
    }

    /// Failed in BASE, holds in NEW.
    pub fn fixed(&self) -> bool {
        matches!((&self.base, &self.new), (Some((false, _)), Some((true, _))))
    }
}

impl Comparison {
    /// Compares two runs of the same scenario.
    pub fn new(
        base: &RunResults,
        new: &RunResults,
        bound: Bound,
    ) -> Result<Comparison, CompareError> {
        if base.scenario != new.scenario {
            return Err(CompareError::DifferentScenarios {
                base: base.scenario.clone(),
                new: new.scenario.clone(),
            });
        }
        if base.schema_version != new.schema_version {
            return Err(CompareError::SchemaVersion {
                base: base.schema_version,
                new: new.schema_version,
            });
        }
        let key = |s: &RouteStats| (s.route.clone(), s.backend.clone());
        let mut routes: Vec<RouteDelta> = base
            .routes
            .iter()
            .map(|b| {
                let n = new.routes.iter().find(|n| key(n) == key(b));
                route_delta(Some(b), n, bound)
            })
            .collect();
        routes.extend(
            new.routes
                .iter()
                .filter(|n| !base.routes.iter().any(|b| key(b) == key(n)))
                .map(|n| route_delta(None, Some(n), bound)),
        );
        let verdict = |r: &crate::expect::evaluate::Verdict| (r.passed, r.observed_text.clone());
        let mut expectations: Vec<ExpectationDelta> = base
            .expectations
            .iter()
            .map(|b| ExpectationDelta {
                name: b.name.clone(),
                assertion: b.assertion.clone(),
                base: Some(verdict(b)),
                new: new
                    .expectations
                    .iter()
                    .find(|n| n.name == b.name)
                    .map(verdict),
            })
            .collect();
        expectations.extend(
            new.expectations
                .iter()
                .filter(|n| !base.expectations.iter().any(|b| b.name == n.name))
                .map(|n| ExpectationDelta {
                    name: n.name.clone(),
                    assertion: n.assertion.clone(),
                    base: None,
                    new: Some(verdict(n)),
                }),
        );
        Ok(Comparison {
            scenario: base.scenario.clone(),
            base_run: base.run_id.clone(),
            new_run: new.run_id.clone(),
            bound,
            base_verdict: format!("{:?}", base.verdict).to_lowercase(),
            new_verdict: format!("{:?}", new.verdict).to_lowercase(),
            routes,
            expectations,
        })
    }

    /// Reads and compares two results files.
    pub fn from_files(base: &Path, new: &Path, bound: Bound) -> Result<Comparison, CompareError> {
        let base = RunResults::read(base).map_err(CompareError::Read)?;
        let new = RunResults::read(new).map_err(CompareError::Read)?;
        Comparison::new(&base, &new, bound)
    }

    /// Every regression past the bound, one line each.
    pub fn regressions(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.routes {
            for m in r.metrics.iter().filter(|m| m.regressed) {
                out.push(format!(
                    "{} → {}: {} {}",
                    r.route,
                    r.backend.as_deref().unwrap_or("-"),
                    m.name,
                    m.change_text()
                ));
            }
        }
        for e in self.expectations.iter().filter(|e| e.regressed()) {
            out.push(format!(
                "expectation {:?} held before and fails now",
                e.name
            ));
        }
        out
    }
}

fn route_delta(base: Option<&RouteStats>, new: Option<&RouteStats>, bound: Bound) -> RouteDelta {
    let any = base.or(new);
    let lat = |s: Option<&RouteStats>, pick: fn(&RouteStats) -> Option<f64>| s.and_then(pick);
    let metric = |name, kind, pick: fn(&RouteStats) -> Option<f64>| {
        MetricDelta::new(name, kind, lat(base, pick), lat(new, pick), bound)
    };
    RouteDelta {
        route: any.map(|s| s.route.clone()).unwrap_or_default(),
        backend: any.and_then(|s| s.backend.clone()),
        requests: (base.map(|s| s.requests), new.map(|s| s.requests)),
        metrics: vec![
            metric("success rate", MetricKind::Rate, |s| s.success_rate),
            metric("p50", MetricKind::LatencyGated, |s| s.latency_ms.p50),
            metric("p90", MetricKind::LatencyGated, |s| s.latency_ms.p90),
            metric("p99", MetricKind::LatencyGated, |s| s.latency_ms.p99),
            metric("p99.9", MetricKind::LatencyGated, |s| s.latency_ms.p999),
            metric("max", MetricKind::LatencyInfo, |s| s.latency_ms.max),
        ],
    }
}

#[cfg(test)]
mod tests;
