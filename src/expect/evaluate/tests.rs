use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::expect::Assertion;
use crate::loadgen::flags::{FlagSet, ResponseFlag};
use crate::loadgen::recorder::{Observation, Observed};
use crate::scenario::spec::NamespacedName;

const ROUTES: [(&str, usize, &str, &str); 2] = [
    (
        "payments",
        0,
        "httproute/default/payments/rule/0",
        "default/payments",
    ),
    (
        "catalog",
        0,
        "httproute/default/catalog/rule/0",
        "default/catalog",
    ),
];

struct Run {
    recorder: WindowedRecorder,
    rules: Vec<RuleSeries>,
    loads: Vec<String>,
    stats: StatTimeline,
}

fn run() -> Run {
    let recorder = WindowedRecorder::try_new(Duration::from_secs(1)).unwrap();
    let rules = ROUTES
        .iter()
        .map(|(name, rule, cluster, backend)| RuleSeries {
            namespace: "default".into(),
            name: name.to_string(),
            rule: *rule,
            rule_name: None,
            route_id: recorder.routes().intern(&format!("default/{name}/{rule}")),
            cluster: cluster.to_string(),
            backends: vec![backend.to_string()],
        })
        .collect();
    Run {
        recorder,
        rules,
        loads: vec!["shoppers".into(), "browsers".into()],
        stats: StatTimeline::default(),
    }
}

impl Run {
    /// Records `count` requests at second `t` for `route` (index into ROUTES) served by `replica`.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        t: u64,
        route: usize,
        replica: u16,
        status: u16,
        flag: Option<ResponseFlag>,
        latency_ms: u64,
        count: usize,
    ) {
        let backend = self.recorder.backends().intern(ROUTES[route].3);
        let mut flags = FlagSet::EMPTY;
        if let Some(f) = flag {
            flags.insert(f);
        }
        for i in 0..count {
            let key = SeriesKey {
                load: route as u16,
                route: Some(self.rules[route].route_id),
                backend: Some(backend),
                replica: Some(replica),
            };
            self.recorder.record_observation(
                key,
                Observation {
                    intended: Duration::from_secs(t) + Duration::from_millis(i as u64),
                    latency: Some(Duration::from_millis(latency_ms)),
                    observed: Observed::Response { status, flags },
                },
            );
        }
    }

    fn check(&self, scope: Scope, assertion: &str) -> Verdict {
        let expectation = Expectation {
            yaml_path: "spec.expect[0]".into(),
            name: None,
            scope,
            assertion: Assertion::parse(assertion).unwrap(),
        };
        let ctx = EvalContext {
            recorder: &self.recorder,
            stats: &self.stats,
            loads: &self.loads,
            rules: &self.rules,
            run_length: Duration::from_secs(10),
        };
        evaluate(&expectation, &ctx)
    }
}

fn route(name: &str) -> Option<RouteRef> {
    Some(RouteRef {
        namespace: "default".into(),
        name: name.into(),
        rule: None,
    })
}

fn backend(name: &str) -> Option<NamespacedName> {
    Some(NamespacedName::new("default", name))
}

#[test]
fn overflow_rate_counts_only_the_scope() {
    let r = run();
    r.record(1, 0, 0, 200, None, 5, 60);
    r.record(
        5,
        0,
        0,
        503,
        Some(ResponseFlag::parse("UO").unwrap()),
        1,
        40,
    );
    r.record(5, 1, 0, 200, None, 2, 100);
    let v = r.check(
        Scope {
            backend: backend("payments"),
            ..Scope::default()
        },
        "overflow_rate > 30%",
    );
    assert_eq!(v.observed, Some(0.4));
    assert!(v.passed);
    assert_eq!(v.requests, 100);
    let v = r.check(
        Scope {
            route: route("catalog"),
            ..Scope::default()
        },
        "success_rate >= 99.9%",
    );
    assert!(v.passed, "{v:?}");
    // Narrowed in time: only the overflow second.
    let v = r.check(
        Scope {
            backend: backend("payments"),
            from: Some(Duration::from_secs(5)),
            to: Some(Duration::from_secs(6)),
            ..Scope::default()
        },
        "overflow_rate == 100%",
    );
    assert!(v.passed, "{v:?}");
}

#[test]
fn latency_share_and_rps() {
    let r = run();
    r.record(2, 1, 0, 200, None, 10, 75);
    r.record(2, 1, 1, 200, None, 40, 25);
    let v = r.check(
        Scope {
            route: route("catalog"),
            ..Scope::default()
        },
        "latency_p99 < 50ms",
    );
    assert!(v.passed, "{v:?}");
    let v = r.check(
        Scope {
            route: route("catalog"),
            ..Scope::default()
        },
        "latency_p50 < 20ms",
    );
    assert!(v.passed, "{v:?}");
    let v = r.check(
        Scope {
            backend: backend("catalog"),
            replica: Some(1),
            ..Scope::default()
        },
        "share == 25%",
    );
    assert!(v.passed, "{v:?}");
    let v = r.check(
        Scope {
            from: Some(Duration::from_secs(2)),
            to: Some(Duration::from_secs(4)),
            ..Scope::default()
        },
        "rps == 50",
    );
    assert!(v.passed, "{v:?}");
}

#[test]
fn a_rate_over_no_requests_fails_with_a_clear_observation() {
    let r = run();
    let v = r.check(
        Scope {
            route: route("payments"),
            ..Scope::default()
        },
        "success_rate > 99%",
    );
    assert!(!v.passed);
    assert_eq!(v.observed, None);
    assert!(v.observed_text.contains("no requests"));
}

#[test]
fn stat_sums_the_increase_over_clusters_in_scope() {
    let mut r = run();
    let sample = |payments: u64, catalog: u64| {
        let mut m = HashMap::new();
        m.insert(
            "httproute/default/payments/rule/0".to_string(),
            HashMap::from([("upstream_rq_retry".to_string(), payments)]),
        );
        m.insert(
            "httproute/default/catalog/rule/0".to_string(),
            HashMap::from([("upstream_rq_retry".to_string(), catalog)]),
        );
        m
    };
    r.stats.push(Duration::from_secs(0), sample(0, 0));
    r.stats.push(Duration::from_secs(3), sample(10, 1));
    r.stats.push(Duration::from_secs(6), sample(25, 1));
    let v = r.check(
        Scope {
            route: route("payments"),
            from: Some(Duration::from_secs(3)),
            ..Scope::default()
        },
        "stat(upstream_rq_retry) == 15",
    );
    assert!(v.passed, "{v:?}");
    let v = r.check(Scope::default(), "stat(upstream_rq_retry) == 26");
    assert!(v.passed, "{v:?}");
    // A listener counter, not a cluster one.
    let mut with_http = sample(25, 1);
    with_http.insert(
        "http.default/eg/http".to_string(),
        HashMap::from([("fault.aborts_injected".to_string(), 7)]),
    );
    r.stats.push(Duration::from_secs(9), with_http);
    let v = r.check(Scope::default(), "stat(fault.aborts_injected) == 7");
    assert!(v.passed, "{v:?}");
}

#[test]
fn stat_samples_stand_for_their_tick_and_the_whole_run_ends_at_the_last_one() {
    let mut r = run();
    let sample = |retries: u64| {
        HashMap::from([(
            "httproute/default/payments/rule/0".to_string(),
            HashMap::from([("upstream_rq_retry".to_string(), retries)]),
        )])
    };
    // Ticks of a busy machine: each sample a little late; the last one after the loads drained,
    // past the 10 s run length.
    r.stats.push(Duration::from_millis(4), sample(0));
    r.stats.push(Duration::from_millis(5_030), sample(40));
    r.stats.push(Duration::from_millis(10_020), sample(90));
    r.stats.push(Duration::from_millis(10_400), sample(100));
    let whole = r.check(Scope::default(), "stat(upstream_rq_retry) == 100");
    assert!(whole.passed, "{whole:?}");
    let first_half = Scope {
        to: Some(Duration::from_secs(5)),
        ..Scope::default()
    };
    let v = r.check(first_half, "stat(upstream_rq_retry) == 40");
    assert!(v.passed, "the sample of tick 5s stands for 5s: {v:?}");
    let second_half = Scope {
        from: Some(Duration::from_secs(5)),
        to: Some(Duration::from_secs(10)),
        ..Scope::default()
    };
    // Up to the run's end includes what its last requests did while they drained.
    let v = r.check(second_half, "stat(upstream_rq_retry) == 60");
    assert!(v.passed, "{v:?}");
}
