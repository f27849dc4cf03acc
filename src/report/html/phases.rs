//! What the fault timeline did to each route: outcomes and worst-second latency before, during
//! and after the faults, and the moments the proxy's protections visibly acted (first breaker
//! rejection, ejections, traffic leaving and returning to a replica).
//!
//! Everything here is derived from the per-second series already in `results.json`, so a report
//! re-rendered from an old results file tells the same story.

use crate::report::charts::{ChartInput, SecondPoint};
use crate::report::results::RunResults;

/// Which part of the run a one-second window belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the first fault started.
    Before,
    /// From the first fault's start to the last fault's end.
    During,
    /// After the last fault ended.
    After,
}

/// Outcome totals of one route in one phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseStats {
    pub requests: u64,
    pub success: u64,
    /// Circuit-breaker rejections (`UO`).
    pub overflow: u64,
    /// No healthy upstream (`UH`) and upstream timeouts (`UT`), other failures.
    pub other_failures: u64,
    /// The worst per-second p99 of the phase.
    pub worst_p99_ms: Option<f64>,
    /// The median of the per-second p50s of the phase.
    pub typical_p50_ms: Option<f64>,
}

/// One route's [`PhaseStats`] before, during and after the faults.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutePhases {
    pub route: String,
    pub before: PhaseStats,
    pub during: PhaseStats,
    pub after: PhaseStats,
}

/// Something that happened at a point of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Moment {
    /// Seconds since the run started.
    pub t_s: f64,
    /// What happened, as plain text.
    pub text: String,
    /// Fault edges and protections acting are styled differently.
    pub kind: MomentKind,
}

/// The kind of a [`Moment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MomentKind {
    Fault,
    Protection,
    Recovery,
}

/// The fault window: first start to last end, if there were faults.
pub fn fault_window(series: &ChartInput) -> Option<(f64, f64)> {
    let start = series.faults.iter().map(|f| f.start_s).reduce(f64::min)?;
    let end = series.faults.iter().map(|f| f.end_s).reduce(f64::max)?;
    Some((start, end.max(start)))
}

/// The phase of the one-second window starting at `t_s`.
fn phase_of(t_s: f64, window: (f64, f64)) -> Phase {
    let (start, end) = window;
    if t_s + 1.0 <= start {
        Phase::Before
    } else if t_s < end.max(start + 1e-9) {
        Phase::During
    } else {
        Phase::After
    }
}

/// Every route's phases, or nothing when the run had no faults.
pub fn route_phases(series: &ChartInput) -> Vec<RoutePhases> {
    let Some(window) = fault_window(series) else {
        return Vec::new();
    };
    series
        .routes
        .iter()
        .map(|route| {
            let pick = |phase: Phase| {
                let points: Vec<&SecondPoint> = route
                    .points
                    .iter()
                    .filter(|p| phase_of(p.t_s, window) == phase)
                    .collect();
                stats(&points)
            };
            RoutePhases {
                route: route.name.clone(),
                before: pick(Phase::Before),
                during: pick(Phase::During),
                after: pick(Phase::After),
            }
        })
        .collect()
}

fn stats(points: &[&SecondPoint]) -> PhaseStats {
    let mut out = PhaseStats::default();
    let mut p50s = Vec::new();
    for p in points {
        out.requests += p.requests;
        out.success += p.success;
        out.overflow += p.overflow_uo;
        out.other_failures += p.no_healthy_uh + p.timeout_ut + p.ratelimited_rl + p.other_errors;
        if let Some(p99) = p.p99_ms {
            out.worst_p99_ms = Some(out.worst_p99_ms.map_or(p99, |w: f64| w.max(p99)));
        }
        p50s.extend(p.p50_ms);
    }
    p50s.sort_by(f64::total_cmp);
    out.typical_p50_ms = p50s.get(p50s.len() / 2).copied();
    out
}

/// The run's notable moments in time order: fault edges, breakers starting and stopping to shed,
/// hosts ejected or failing health checks, traffic leaving a replica and coming back.
pub fn moments(results: &RunResults) -> Vec<Moment> {
    let mut out = Vec::new();
    for e in &results.faults {
        let replicas = if e.replicas.is_empty() {
            "all replicas".to_string()
        } else {
            let list: Vec<String> = e.replicas.iter().map(usize::to_string).collect();
            format!("replicas {}", list.join(", "))
        };
        let edge = match e.edge {
            crate::chaos::timeline::Edge::Start => "starts",
            crate::chaos::timeline::Edge::End => "ends",
        };
        let mut text = format!("{} fault on {} ({replicas}) {edge}", e.kind, e.backend);
        if let Some(error) = &e.error {
            text.push_str(&format!(" — failed to apply: {error}"));
        }
        out.push(Moment {
            t_s: e.applied_s,
            text,
            kind: MomentKind::Fault,
        });
    }
    for route in &results.series.routes {
        episodes(
            route.points.iter().map(|p| (p.t_s, p.overflow_uo > 0)),
            &mut out,
            &format!("{}: circuit breaker starts rejecting (UO)", route.name),
            &format!("{}: circuit breaker stops rejecting", route.name),
        );
        episodes(
            route.points.iter().map(|p| (p.t_s, p.no_healthy_uh > 0)),
            &mut out,
            &format!("{}: no healthy upstream (UH) responses start", route.name),
            &format!("{}: no healthy upstream (UH) responses stop", route.name),
        );
    }
    for cluster in &results.series.clusters {
        episodes(
            cluster.ejected_hosts.iter().map(|&(t, v)| (t, v > 0.0)),
            &mut out,
            &format!("{}: outlier detection ejects a host", cluster.name),
            &format!("{}: every ejected host is back", cluster.name),
        );
        // `membership_healthy` also drops for ejected hosts: what is left is health checking.
        let ejected_at = |i: usize| cluster.ejected_hosts.get(i).map_or(0.0, |&(_, e)| e);
        episodes(
            cluster
                .unhealthy_hosts
                .iter()
                .enumerate()
                .map(|(i, &(t, v))| (t, v - ejected_at(i) > 0.0)),
            &mut out,
            &format!(
                "{}: active health check marks a host unhealthy",
                cluster.name
            ),
            &format!("{}: every host passes health checks again", cluster.name),
        );
    }
    failovers(&results.series, &mut out);
    // Series moments carry their one-second window's start: within a second, the fault edge
    // that caused them reads first.
    let rank = |k: MomentKind| match k {
        MomentKind::Fault => 0,
        MomentKind::Protection => 1,
        MomentKind::Recovery => 2,
    };
    out.sort_by(|a, b| {
        (a.t_s.floor(), rank(a.kind), a.t_s)
            .partial_cmp(&(b.t_s.floor(), rank(b.kind), b.t_s))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    out
}

/// The start and end of every stretch where `active` holds (at most a few, to stay readable).
fn episodes(
    points: impl Iterator<Item = (f64, bool)>,
    out: &mut Vec<Moment>,
    start: &str,
    end: &str,
) {
    const MAX_EPISODES: usize = 3;
    let mut on = false;
    let mut count = 0;
    for (t, active) in points {
        if active && !on {
            count += 1;
            if count > MAX_EPISODES {
                return;
            }
            out.push(Moment {
                t_s: t,
                text: start.to_string(),
                kind: MomentKind::Protection,
            });
        } else if !active && on {
            out.push(Moment {
                t_s: t,
                text: end.to_string(),
                kind: MomentKind::Recovery,
            });
        }
        on = active;
    }
}

/// A replica that stops receiving requests while its siblings still do: the proxy moved its
/// traffic elsewhere (ejection, health check, breaker or load balancer), and back when it resumes.
fn failovers(series: &ChartInput, out: &mut Vec<Moment>) {
    for replica in &series.replicas {
        let backend = replica.name.rsplit_once('/').map_or("", |(b, _)| b);
        let siblings: Vec<_> = series
            .replicas
            .iter()
            .filter(|r| {
                r.name != replica.name && r.name.rsplit_once('/').map(|(b, _)| b) == Some(backend)
            })
            .collect();
        if siblings.is_empty() {
            continue;
        }
        let siblings_served = |t: f64| -> u64 {
            siblings
                .iter()
                .flat_map(|s| s.points.iter().filter(|(st, _)| (st - t).abs() < 1e-6))
                .map(|(_, n)| n)
                .sum()
        };
        let mut served_before = false;
        let mut away = false;
        let mut count = 0;
        for &(t, served) in &replica.points {
            if served > 0 {
                if away {
                    out.push(Moment {
                        t_s: t,
                        text: format!("{}: receives traffic again", replica.name),
                        kind: MomentKind::Recovery,
                    });
                    away = false;
                }
                served_before = true;
            } else if served_before && !away && siblings_served(t) > 0 {
                count += 1;
                if count > 3 {
                    return;
                }
                out.push(Moment {
                    t_s: t,
                    text: format!(
                        "{}: gets no traffic while its siblings do (failover)",
                        replica.name
                    ),
                    kind: MomentKind::Protection,
                });
                away = true;
            }
        }
    }
}
