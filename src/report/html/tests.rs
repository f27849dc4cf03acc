use serde_json::json;

use super::phases::{MomentKind, moments, route_phases};
use super::*;

fn point(t: f64, requests: u64, success: u64, uo: u64, p99: f64) -> serde_json::Value {
    json!({"t_s": t, "requests": requests, "success": success, "overflow_uo": uo,
           "ratelimited_rl": 0, "timeout_ut": 0, "no_healthy_uh": 0,
           "other_errors": requests - success - uo, "p50_ms": p99 / 2.0, "p99_ms": p99})
}

/// Six seconds, a fault from 2s to 4s: the breaker sheds during it, replica 0 goes quiet.
fn results() -> RunResults {
    let doc = json!({
        "schemaVersion": 1, "scenario": "shop <&> \"test\"", "description": "a <b>bold</b> claim",
        "file": "s.yaml", "runId": "20261127T090000Z-1", "startedAt": "2026-11-27T09:00:00Z",
        "runtime": "embedded", "seed": 1, "durationS": 6.0, "elapsedS": 4.2, "complete": false,
        "incompleteReason": "interrupted <ctrl-c>", "verdict": "incomplete",
        "expectations": [
            {"name": "fast <p99>", "assertion": "latency_p99 < 50ms", "observed": 0.3,
             "observedText": "300ms", "passed": false, "requests": 60},
            {"name": "sheds", "assertion": "overflow_rate > 10%", "observed": 0.5,
             "observedText": "50%", "passed": true, "requests": 60}
        ],
        "routes": [{"route": "default/a/rule/0", "backend": "default/a", "requests": 60,
            "success": 50, "successRate": 0.8333, "latencyMs": {"p50": 5.0, "p90": 8.0,
            "p99": 300.0, "p999": 300.0, "max": 310.0, "mean": 20.0},
            "flags": {"UO": 10}, "statuses": {"200": 50, "503": 10}, "transportErrors": 0}],
        "loads": [{"name": "l", "mode": "open", "target_rate": 10.0, "concurrency": null,
                   "duration_s": 6.0, "sent": 60, "achieved_rate": 10.0, "client_overloads": 0}],
        "faults": [
            {"atS": 2.0, "appliedS": 2.001, "fault": 0, "backend": "default/a", "replicas": [0],
             "type": "latency", "edge": "start"},
            {"atS": 4.0, "appliedS": 4.001, "fault": 0, "backend": "default/a", "replicas": [0],
             "type": "latency", "edge": "end"}
        ],
        "policies": {"policies": [], "unattached": ["default/lost"], "routes": [{
            "kind": "HTTPRoute", "namespace": "default", "name": "a", "rule": 0, "ruleName": null,
            "gateway": "default/eg", "listener": "http", "cluster": "httproute/default/a/rule/0",
            "policy": "default/p", "mergedWith": null,
            "effective": {"retry": {"numRetries": 2}, "x<y": "<z>"},
            "directResponse": null, "notEnforced": ["retry.perRetry.backOff: <not modelled>"]}]},
        "proxyStats": {}, "warnings": ["careful & <quick>"],
        "series": {"title_prefix": "s", "duration_s": 6.0,
            "faults": [{"label": "latency a", "start_s": 2.0, "end_s": 4.0}],
            "routes": [{"name": "default/a rule 0", "percentiles": [], "points": [
                point(0.0, 10, 10, 0, 10.0), point(1.0, 10, 10, 0, 12.0),
                point(2.0, 10, 5, 5, 300.0), point(3.0, 10, 5, 5, 250.0),
                point(4.0, 10, 10, 0, 11.0), point(5.0, 10, 10, 0, 9.0)]}],
            "replicas": [
                {"name": "a/0", "points": [[0.0, 5], [1.0, 5], [2.0, 0], [3.0, 0], [4.0, 5], [5.0, 5]]},
                {"name": "a/1", "points": [[0.0, 5], [1.0, 5], [2.0, 5], [3.0, 5], [4.0, 5], [5.0, 0]]}],
            "clusters": []}
    });
    serde_json::from_value(doc).expect("valid results document")
}

#[test]
fn phases_split_at_the_fault_window() {
    let phases = route_phases(&results().series);
    assert_eq!(phases.len(), 1);
    let p = &phases[0];
    assert_eq!((p.before.requests, p.before.success), (20, 20));
    assert_eq!(
        (p.during.requests, p.during.success, p.during.overflow),
        (20, 10, 10)
    );
    assert_eq!((p.after.requests, p.after.success), (20, 20));
    assert_eq!(p.before.worst_p99_ms, Some(12.0));
    assert_eq!(p.during.worst_p99_ms, Some(300.0));
}

#[test]
fn moments_tell_fault_breaker_and_failover_in_order() {
    let texts: Vec<(String, MomentKind)> = moments(&results())
        .into_iter()
        .map(|m| (format!("{:.0} {}", m.t_s, m.text), m.kind))
        .collect();
    let expected = [
        (
            "2 latency fault on default/a (replicas 0) starts",
            MomentKind::Fault,
        ),
        (
            "2 default/a rule 0: circuit breaker starts rejecting (UO)",
            MomentKind::Protection,
        ),
        (
            "2 a/0: gets no traffic while its siblings do (failover)",
            MomentKind::Protection,
        ),
        (
            "4 latency fault on default/a (replicas 0) ends",
            MomentKind::Fault,
        ),
        (
            "4 default/a rule 0: circuit breaker stops rejecting",
            MomentKind::Recovery,
        ),
        ("4 a/0: receives traffic again", MomentKind::Recovery),
    ];
    let expected: Vec<(String, MomentKind)> =
        expected.iter().map(|(t, k)| (t.to_string(), *k)).collect();
    // a/1 going quiet at 5s while a/0 serves is a failover too.
    assert_eq!(&texts[..6], &expected[..]);
    assert_eq!(
        texts[6].0,
        "5 a/1: gets no traffic while its siblings do (failover)"
    );
}

#[test]
fn the_page_escapes_every_text_and_links_only_existing_charts() {
    let chart = EmbeddedChart {
        file_name: "latency_over_time.png".into(),
        png: vec![0x89, b'P', b'N', b'G'],
    };
    let page = render(&results(), &[chart]);
    for raw in [
        "<b>bold</b>",
        "<p99>",
        "<ctrl-c>",
        "<quick>",
        "<z>",
        "<not modelled>",
        "shop <&>",
    ] {
        assert!(!page.contains(raw), "{raw} reached the page unescaped");
    }
    assert!(page.contains("shop &lt;&amp;&gt; &quot;test&quot;"));
    assert!(page.contains("class=\"banner incomplete\""));
    assert!(page.contains("interrupted &lt;ctrl-c&gt;"));
    assert!(page.contains("not enforced:</strong> retry.perRetry.backOff: &lt;not modelled&gt;"));
    assert!(page.contains("<code>retry.numRetries</code> = <code>2</code>"));
    assert!(page.contains("default/lost"));
    // The latency expectation links to its chart; the overflow one has no chart to link to.
    assert!(page.contains("<a href=\"#chart-latency-over-time\">Latency over time</a>"));
    assert!(!page.contains("#chart-outcomes-over-time"));
    assert!(page.contains("<figure id=\"chart-latency-over-time\">"));
    assert!(page.contains("src=\"data:image/png;base64,iVBORw==\""));
    assert_eq!(
        page.matches("class=\"fail\"").count(),
        3,
        "failed expectation, hurt route in both tables"
    );
}
