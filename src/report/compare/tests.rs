use serde_json::json;

use super::*;

/// A results document with one route and two expectations.
fn run(id: &str, success_rate: f64, p99: f64, second_passes: bool) -> RunResults {
    let doc = json!({
        "schemaVersion": 1, "scenario": "s", "description": null, "file": "s.yaml",
        "runId": id, "startedAt": "2026-11-27T09:00:00Z", "runtime": "embedded", "seed": 1,
        "durationS": 3.0, "elapsedS": 3.0, "complete": true, "incompleteReason": null,
        "verdict": if second_passes { "passed" } else { "failed" },
        "expectations": [
            {"name": "fast", "assertion": "latency_p99 < 50ms", "observed": 0.01,
             "observedText": "10ms", "passed": true, "requests": 100},
            {"name": "healthy", "assertion": "success_rate >= 99%", "observed": success_rate,
             "observedText": format!("{}%", success_rate * 100.0), "passed": second_passes,
             "requests": 100}
        ],
        "routes": [{
            "route": "default/a/rule/0", "backend": "default/a", "requests": 100,
            "success": (success_rate * 100.0) as u64, "successRate": success_rate,
            "latencyMs": {"p50": 5.0, "p90": 8.0, "p99": p99, "p999": p99, "max": p99, "mean": 5.0},
            "flags": {}, "statuses": {"200": 100}, "transportErrors": 0
        }],
        "loads": [], "faults": [], "policies": {}, "proxyStats": {}, "warnings": [],
        "series": {"title_prefix": "s", "duration_s": 3.0, "faults": [], "routes": [],
                   "replicas": [], "clusters": []}
    });
    serde_json::from_value(doc).expect("valid results document")
}

fn bound(text: &str) -> Bound {
    Bound::parse(text).expect("valid bound")
}

#[test]
fn parses_bounds() {
    assert_eq!(bound("10%").fraction(), 0.10);
    assert_eq!(bound("2.5").fraction(), 0.025);
    assert_eq!(bound("10%").to_string(), "10%");
    assert!(Bound::parse("ten").is_err());
    assert!(Bound::parse("-5%").is_err());
}

#[test]
fn latency_regresses_relative_to_the_base() {
    let base = run("a", 1.0, 100.0, true);
    let c = Comparison::new(&base, &run("b", 1.0, 110.0, true), bound("10%")).unwrap();
    assert!(
        c.regressions().is_empty(),
        "exactly +10% is within the bound"
    );
    let c = Comparison::new(&base, &run("b", 1.0, 111.0, true), bound("10%")).unwrap();
    assert_eq!(
        c.regressions(),
        vec![
            "default/a/rule/0 → default/a: p99 +11.0%",
            "default/a/rule/0 → default/a: p99.9 +11.0%"
        ]
    );
    let c = Comparison::new(&base, &run("b", 1.0, 50.0, true), bound("10%")).unwrap();
    assert!(c.regressions().is_empty());
    assert!(
        c.routes[0]
            .metrics
            .iter()
            .any(|m| m.name == "p99" && m.improved())
    );
}

#[test]
fn success_rate_regresses_in_percentage_points() {
    let base = run("a", 0.99, 10.0, true);
    let c = Comparison::new(&base, &run("b", 0.90, 10.0, true), bound("10%")).unwrap();
    assert!(
        c.regressions().is_empty(),
        "9 points down is within 10 points"
    );
    let c = Comparison::new(&base, &run("b", 0.88, 10.0, true), bound("10%")).unwrap();
    assert_eq!(
        c.regressions(),
        vec!["default/a/rule/0 → default/a: success rate -11.00 pp"]
    );
}

#[test]
fn an_expectation_that_stops_holding_is_a_regression() {
    let c = Comparison::new(
        &run("a", 1.0, 10.0, true),
        &run("b", 1.0, 10.0, false),
        bound("100%"),
    )
    .unwrap();
    assert_eq!(
        c.regressions(),
        vec!["expectation \"healthy\" held before and fails now"]
    );
    let text = to_text(&c);
    assert!(
        text.contains("healthy: success_rate >= 99%  [✓ 100% → ✗ 100%]  REGRESSED"),
        "{text}"
    );
    let back = Comparison::new(
        &run("b", 1.0, 10.0, false),
        &run("a", 1.0, 10.0, true),
        bound("0%"),
    )
    .unwrap();
    assert!(back.regressions().is_empty());
    assert!(back.expectations[1].fixed());
}

#[test]
fn refuses_different_scenarios() {
    let mut other = run("b", 1.0, 10.0, true);
    other.scenario = "t".into();
    assert!(matches!(
        Comparison::new(&run("a", 1.0, 10.0, true), &other, bound("10%")),
        Err(CompareError::DifferentScenarios { .. })
    ));
}

#[test]
fn html_escapes_names_and_marks_regressions() {
    let mut new = run("b", 1.0, 10.0, false);
    new.expectations[1].name = "<script>".into();
    let c = Comparison::new(&run("a", 1.0, 10.0, true), &new, bound("10%")).unwrap();
    let page = to_html(&c);
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;"));
    // `healthy` is missing from the new run and `<script>` is new: reported, not a regression.
    assert!(page.contains("NO REGRESSION"), "{page}");
    assert!(page.contains("missing"));
}
