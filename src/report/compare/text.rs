//! The comparison as a terminal table.

use std::fmt::Write as _;

use super::{Comparison, MetricKind};
use crate::report::html::{ms, pct};

/// The comparison as plain text, ending with the list of regressions (or that there are none).
pub fn to_text(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} ({}) → {} ({}), max regression {}",
        c.scenario, c.base_run, c.base_verdict, c.new_run, c.new_verdict, c.bound
    );
    for r in &c.routes {
        let _ = writeln!(
            out,
            "\n{} → {}  (requests {} → {})",
            r.route,
            r.backend.as_deref().unwrap_or("-"),
            count(r.requests.0),
            count(r.requests.1)
        );
        let _ = writeln!(
            out,
            "  {:<13} {:>10} {:>10} {:>11}",
            "METRIC", "BASE", "NEW", "CHANGE"
        );
        for m in &r.metrics {
            let show = |v| match m.kind {
                MetricKind::Rate => pct(v),
                _ => ms(v),
            };
            let note = if m.regressed {
                "  REGRESSED"
            } else if m.improved() {
                "  better"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {:<13} {:>10} {:>10} {:>11}{note}",
                m.name,
                show(m.base),
                show(m.new),
                m.change_text()
            );
        }
    }
    if !c.expectations.is_empty() {
        out.push_str("\nexpectations\n");
    }
    for e in &c.expectations {
        let mark = |v: &Option<(bool, String)>| match v {
            Some((true, observed)) => format!("✓ {observed}"),
            Some((false, observed)) => format!("✗ {observed}"),
            None => "missing".to_string(),
        };
        let note = if e.regressed() {
            "  REGRESSED"
        } else if e.fixed() {
            "  fixed"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {}: {}  [{} → {}]{note}",
            e.name,
            e.assertion,
            mark(&e.base),
            mark(&e.new)
        );
    }
    let regressions = c.regressions();
    if regressions.is_empty() {
        let _ = writeln!(out, "\nno regression past {}", c.bound);
    } else {
        let _ = writeln!(
            out,
            "\n{} regression(s) past {}:",
            regressions.len(),
            c.bound
        );
        for r in &regressions {
            let _ = writeln!(out, "  {r}");
        }
    }
    out
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "missing".to_string(), |n| n.to_string())
}
