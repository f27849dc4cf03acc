use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::expect::{LatencyStat, Op};
use crate::scenario::yaml::parse_documents;

/// The example of scenario-format.md, verbatim.
const DESIGN_EXAMPLE: &str = r#"apiVersion: chaosgate.dev/v1alpha1
kind: Scenario
metadata:
  name: payments-breaker-isolates-catalog
spec:
  description: A slow payments service trips its own breaker; catalog traffic is untouched.
  seed: 7                          # default 1; same seed, same random decisions
  manifests: [../deploy/gateway.yaml]   # optional: more object files, relative to this file
  backends:                        # one entry per Service that routes reference
    - name: payments               # matches backendRefs[].name
      namespace: default           # default: default
      port: 8080                   # optional; matches backendRefs[].port
      replicas: 3                  # endpoints behind the Service (default 1)
      latency: 5ms                 # or {fixed: 5ms} | {uniform: [1ms, 9ms]} | {lognormal: {p50: 5ms, p99: 40ms}}
      errorRate: 0                 # fraction of requests answered with errorStatus
      errorStatus: 500
      healthPath: /healthz         # answered 200 unless a fault says otherwise
  load:
    - name: shoppers               # default load-<index>
      gateway: default/eg          # optional when there is one Gateway
      listener: http               # optional when the Gateway has one listener
      host: shop.example.com       # Host header (route hostname matching)
      method: GET                  # default GET
      path: /payments
      headers: {x-user-id: one}
      rate: 300                    # open loop, requests per second ...
      # concurrency: 32            # ... or closed loop, N workers back to back (exactly one of the two)
      # stages: [{duration: 5s, rate: 100}, {duration: 10s, rate: 500}]   # instead of rate: a piecewise-linear ramp
      start: 0s                    # default 0s
      duration: 20s
      timeout: 10s                 # client-side request timeout (default 30s)
  faults:
    - backend: payments
      replicas: [0]                # default: every replica
      at: 5s
      duration: 8s                 # default: to the end of the run
      type: latency                # see the fault table
      latency: 2s
  expect:
    - name: payments breaker sheds load
      where: {backend: payments, from: 6s, to: 13s}
      assert: overflow_rate > 20%
    - name: catalog unaffected
      where: {route: default/catalog}
      assert: success_rate >= 99.9%
    - assert: latency_p99 < 50ms
      where: {route: default/catalog}
"#;

/// A small valid scenario the error tests start from; line numbers below refer to it.
const BASE: &str = "apiVersion: chaosgate.dev/v1alpha1
kind: Scenario
metadata: {name: base}
spec:
  backends:
    - name: payments
      replicas: 2
  load:
    - rate: 10
      duration: 20s
";

fn source(text: &str) -> SourceDoc {
    SourceDoc {
        file: Arc::new(PathBuf::from("s.yaml")),
        doc: parse_documents(text).expect("test YAML parses").remove(0),
    }
}

fn parse(text: &str) -> Result<Scenario, Vec<String>> {
    let doc = source(text);
    let value = doc.doc.value.clone();
    parse_scenario(&doc, &value).map_err(|errs| errs.iter().map(|e| e.to_string()).collect())
}

fn valid(text: &str) -> Scenario {
    parse(text)
        .unwrap_or_else(|errs| panic!("expected a valid scenario, got:\n{}", errs.join("\n")))
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(s) => panic!("expected errors, parsed {:#?}", s.spec),
        Err(errs) => errs,
    }
}

/// `BASE` with more YAML appended under `spec:` (indented two spaces by the caller).
fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

#[test]
fn the_design_example_parses() {
    let s = valid(DESIGN_EXAMPLE);
    assert_eq!(s.name, "payments-breaker-isolates-catalog");
    let spec = &s.spec;
    assert_eq!(spec.seed, 7);
    assert_eq!(spec.manifests, vec!["../deploy/gateway.yaml".to_string()]);
    assert_eq!(
        s.error(&ScenarioSpec::manifest_field(0), "not found")
            .to_string(),
        "s.yaml:8:15: spec.manifests[0]: not found"
    );
    assert_eq!(
        spec.backends,
        vec![BackendSpec {
            yaml_path: "spec.backends[0]".into(),
            name: "payments".into(),
            namespace: "default".into(),
            port: Some(8080),
            replicas: 3,
            latency: LatencyDist::Fixed(Duration::from_millis(5)),
            error_rate: 0.0,
            error_status: 500,
            health_path: "/healthz".into(),
            protocol: BackendProtocol::Http1,
        }]
    );
    let load = &spec.load[0];
    assert_eq!(load.name, "shoppers");
    assert_eq!(load.gateway, Some(NamespacedName::new("default", "eg")));
    assert_eq!(load.listener.as_deref(), Some("http"));
    assert_eq!(load.host.as_deref(), Some("shop.example.com"));
    assert_eq!(load.method, http::Method::GET);
    assert_eq!(load.path, "/payments");
    assert_eq!(load.headers, vec![("x-user-id".into(), "one".into())]);
    assert_eq!(load.shape, LoadShape::Rate(300.0));
    assert_eq!(load.start, Duration::ZERO);
    assert_eq!(load.duration, Duration::from_secs(20));
    assert_eq!(load.timeout, Duration::from_secs(10));
    assert_eq!(load.field("gateway"), "spec.load[0].gateway");
    assert_eq!(spec.run_length(), Duration::from_secs(20));
    assert_eq!(
        spec.faults,
        vec![FaultSpec {
            yaml_path: "spec.faults[0]".into(),
            backend: NamespacedName::new("default", "payments"),
            replicas: Some(vec![0]),
            at: Duration::from_secs(5),
            duration: Some(Duration::from_secs(8)),
            kind: FaultKind::Latency(LatencyDist::Fixed(Duration::from_secs(2))),
        }]
    );
    assert!(spec.faults[0].affects(0) && !spec.faults[0].affects(1));
    assert_eq!(
        spec.faults[0].end(spec.run_length()),
        Duration::from_secs(13)
    );
    assert_eq!(spec.expect.len(), 3);
    let breaker = &spec.expect[0];
    assert_eq!(breaker.title(), "payments breaker sheds load");
    assert_eq!(
        breaker.scope,
        Scope {
            backend: Some(NamespacedName::new("default", "payments")),
            from: Some(Duration::from_secs(6)),
            to: Some(Duration::from_secs(13)),
            ..Scope::default()
        }
    );
    assert_eq!(breaker.assertion.to_string(), "overflow_rate > 20%");
    let catalog = &spec.expect[1].scope.route;
    assert_eq!(
        catalog,
        &Some(RouteRef {
            namespace: "default".into(),
            name: "catalog".into(),
            rule: None
        })
    );
    let latency = &spec.expect[2];
    assert_eq!(latency.name, None);
    assert_eq!(latency.title(), "latency_p99 < 50ms");
    assert_eq!(
        latency.assertion.metric,
        crate::expect::Metric::Latency(LatencyStat::P99)
    );
    assert_eq!(latency.assertion.op, Op::Lt);
    // Later stages locate their own errors through the kept paths.
    assert_eq!(
        s.error(&load.field("gateway"), "no such Gateway")
            .to_string(),
        "s.yaml:20:7: spec.load[0].gateway: no such Gateway"
    );
}

#[test]
fn the_readme_examples_parse() {
    let readme = include_str!("../../../scenarios/README.md");
    let mut scenarios = 0;
    for block in readme.split("```yaml\n").skip(1) {
        let text = block.split("```").next().unwrap_or_default();
        for doc in parse_documents(text).expect("README YAML parses") {
            if doc.value["kind"] != "Scenario" {
                continue;
            }
            let source = SourceDoc {
                file: Arc::new(PathBuf::from("README.md")),
                doc,
            };
            let value = source.doc.value.clone();
            if let Err(errs) = parse_scenario(&source, &value) {
                panic!("README example: {errs:#?}");
            }
            scenarios += 1;
        }
    }
    assert!(scenarios >= 1);
}

#[test]
fn defaults_are_filled_in() {
    let s = valid(BASE);
    assert_eq!(s.spec.seed, 1);
    assert_eq!(s.spec.description, None);
    let backend = &s.spec.backends[0];
    assert_eq!(backend.namespace, "default");
    assert_eq!(backend.port, None);
    assert_eq!(backend.latency, LatencyDist::Fixed(Duration::ZERO));
    assert_eq!(backend.error_rate, 0.0);
    assert_eq!(backend.error_status, 500);
    assert_eq!(backend.health_path, "/healthz");
    assert_eq!(backend.protocol, BackendProtocol::Http1);
    let load = &s.spec.load[0];
    assert_eq!(load.name, "load-0");
    assert_eq!(load.gateway, None);
    assert_eq!(load.listener, None);
    assert_eq!(load.host, None);
    assert_eq!(load.method, http::Method::GET);
    assert_eq!(load.path, "/");
    assert!(load.headers.is_empty());
    assert_eq!(load.start, Duration::ZERO);
    assert_eq!(load.timeout, Duration::from_secs(30));
    assert_eq!(load.connections, None);
}

#[test]
fn every_latency_form_parses() {
    let cases = [
        ("5ms", LatencyDist::Fixed(Duration::from_millis(5))),
        ("{fixed: 1s}", LatencyDist::Fixed(Duration::from_secs(1))),
        (
            "{uniform: [1ms, 9ms]}",
            LatencyDist::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(9),
            },
        ),
        (
            "{uniform: {min: 2ms, max: 2ms}}",
            LatencyDist::Uniform {
                min: Duration::from_millis(2),
                max: Duration::from_millis(2),
            },
        ),
        (
            "{lognormal: {p50: 5ms, p99: 40ms}}",
            LatencyDist::LogNormal {
                p50: Duration::from_millis(5),
                p99: Duration::from_millis(40),
            },
        ),
    ];
    for (text, expected) in cases {
        let s = valid(&BASE.replace("replicas: 2", &format!("latency: {text}")));
        assert_eq!(s.spec.backends[0].latency, expected, "{text}");
    }
}

#[test]
fn every_fault_type_parses() {
    let cases = [
        (
            "type: latency\n      latency: {uniform: [1s, 2s]}",
            FaultKind::Latency(LatencyDist::Uniform {
                min: Duration::from_secs(1),
                max: Duration::from_secs(2),
            }),
        ),
        (
            "type: error",
            FaultKind::Error {
                status: 503,
                rate: 1.0,
            },
        ),
        (
            "type: error\n      status: 500\n      rate: 0.25",
            FaultKind::Error {
                status: 500,
                rate: 0.25,
            },
        ),
        ("type: hang", FaultKind::Hang),
        ("type: reset", FaultKind::Reset),
        ("type: kill", FaultKind::Kill),
        ("type: pause", FaultKind::Pause),
        ("type: partition", FaultKind::Partition),
        (
            "type: slowBody\n      bytesPerSecond: 1024",
            FaultKind::SlowBody {
                bytes_per_second: 1024,
            },
        ),
        ("type: unhealthy", FaultKind::Unhealthy),
    ];
    for (text, expected) in cases {
        let s = valid(&with(&format!(
            "  faults:\n    - backend: payments\n      at: 1s\n      {text}\n"
        )));
        let fault = &s.spec.faults[0];
        assert_eq!(fault.kind, expected, "{text}");
        assert_eq!(
            fault.kind.type_name(),
            text.split_whitespace().nth(1).unwrap()
        );
        assert_eq!(fault.replicas, None);
        assert_eq!(fault.duration, None);
        assert!(fault.affects(0) && fault.affects(1));
        assert_eq!(fault.end(s.spec.run_length()), Duration::from_secs(20));
    }
}

#[test]
fn load_shapes_parse() {
    let closed = valid(&BASE.replace("rate: 10", "concurrency: 32"));
    assert_eq!(closed.spec.load[0].shape, LoadShape::Concurrency(32));
    assert_eq!(closed.spec.load[0].shape.rate_at(Duration::ZERO), None);

    let ramp = valid(&BASE.replace(
        "    - rate: 10\n      duration: 20s\n",
        "    - stages: [{duration: 5s, rate: 100}, {duration: 10s, rate: 500}]\n      startRate: 20\n",
    ));
    let load = &ramp.spec.load[0];
    assert_eq!(
        load.shape,
        LoadShape::Stages {
            start_rate: 20.0,
            stages: vec![
                Stage {
                    duration: Duration::from_secs(5),
                    rate: 100.0
                },
                Stage {
                    duration: Duration::from_secs(10),
                    rate: 500.0
                },
            ]
        }
    );
    // duration defaults to the stages' total.
    assert_eq!(load.duration, Duration::from_secs(15));
    let rate = |secs: f64| load.shape.rate_at(Duration::from_secs_f64(secs)).unwrap();
    assert_eq!(rate(0.0), 20.0);
    assert_eq!(rate(2.5), 60.0);
    assert_eq!(rate(5.0), 100.0);
    assert_eq!(rate(10.0), 300.0);
    assert_eq!(rate(15.0), 0.0);

    let longer = valid(&BASE.replace("rate: 10", "stages: [{duration: 5s, rate: 100}]"));
    assert_eq!(longer.spec.load[0].duration, Duration::from_secs(20));
}

#[test]
fn run_length_is_the_latest_load_end() {
    let s = valid(&with(
        "    - name: late\n      start: 15s\n      duration: 10s\n      concurrency: 1\n  faults:\n    - {backend: payments, at: 22s, type: kill}\n  expect:\n    - {where: {from: 20s, to: 25}, assert: requests > 0}\n",
    ));
    assert_eq!(s.spec.run_length(), Duration::from_secs(25));
    assert_eq!(s.spec.expect[0].scope.to, Some(Duration::from_secs(25)));
    assert!(s.spec.load_named("late").is_some());
}

#[test]
fn scopes_resolve_references() {
    let s = valid(&with(
        "    - name: second\n      rate: 1\n      duration: 5s\n  expect:\n    - where: {route: shop/catalog/rule/2, backend: default/payments, replica: 1, load: second, from: 1}\n      assert: share < 60%\n    - where: {route: catalog/rule/read}\n      assert: status_count(5xx) == 0\n",
    ));
    let scope = &s.spec.expect[0].scope;
    assert_eq!(
        scope.route,
        Some(RouteRef {
            namespace: "shop".into(),
            name: "catalog".into(),
            rule: Some(RuleRef::Index(2))
        })
    );
    assert_eq!(
        scope.route.as_ref().unwrap().to_string(),
        "shop/catalog/rule/2"
    );
    assert_eq!(
        scope.backend,
        Some(NamespacedName::new("default", "payments"))
    );
    assert_eq!(scope.replica, Some(1));
    assert_eq!(scope.load.as_deref(), Some("second"));
    assert_eq!(scope.from, Some(Duration::from_secs(1)));
    assert_eq!(
        s.spec.expect[1].scope.route.as_ref().unwrap().rule,
        Some(RuleRef::Name("read".into()))
    );
}

#[test]
fn bare_backend_names_resolve_across_namespaces_when_unique() {
    let s = valid(&with(
        "    - name: second\n      rate: 1\n      duration: 5s\n  faults:\n    - {backend: catalog, at: 1s, type: hang}\n",
    ).replace("      replicas: 2\n", "      replicas: 2\n    - {name: catalog, namespace: shop}\n"));
    assert_eq!(
        s.spec.faults[0].backend,
        NamespacedName::new("shop", "catalog")
    );
    assert!(
        s.spec
            .backend(&NamespacedName::new("shop", "catalog"))
            .is_some()
    );
}

// ---- invalid scenarios: exact messages -------------------------------------------------------

fn assert_errors(text: &str, expected: &[&str]) {
    assert_eq!(errors(text), expected, "\n{text}");
}

#[test]
fn misspelled_keys_are_rejected() {
    assert_errors(
        &BASE.replace("replicas: 2", "replica: 2"),
        &[
            "s.yaml:7:7: spec.backends[0].replica: unknown field `replica`, expected one of `name`, `namespace`, `port`, `replicas`, `latency`, `errorRate`, `errorStatus`, `healthPath`, `protocol`",
        ],
    );
    assert_errors(
        &with("  expects: []\n"),
        &[
            "s.yaml:11:3: spec.expects: unknown field `expects`, expected one of `description`, `seed`, `manifests`, `backends`, `load`, `faults`, `expect`",
        ],
    );
}

#[test]
fn header_errors() {
    assert_errors(
        "apiVersion: chaosgate.dev/v1\nkind: Scenario\nmetadata: {name: Bad_Name}\nspce: {}\n",
        &[
            "s.yaml:1:1: apiVersion: unsupported apiVersion \"chaosgate.dev/v1\" for kind Scenario (allowed: chaosgate.dev/v1alpha1)",
            "s.yaml:1:1: spec: missing field `spec`: a Scenario needs at least `load` (and usually `backends` and `expect`)",
            "s.yaml:3:12: metadata.name: `Bad_Name` is not a valid name: a Scenario needs a name that is a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)",
            "s.yaml:4:1: spce: unknown field `spce`, expected one of `apiVersion`, `kind`, `metadata`, `spec`",
        ],
    );
}

#[test]
fn unknown_fault_type() {
    assert_errors(
        &with("  faults:\n    - backend: payments\n      at: 1s\n      type: lag\n"),
        &[
            "s.yaml:14:7: spec.faults[0].type: unknown fault type `lag` (allowed: latency, error, hang, reset, kill, pause, partition, slowBody, unhealthy)",
        ],
    );
}

#[test]
fn fields_of_other_fault_types() {
    assert_errors(
        &with(
            "  faults:\n    - backend: payments\n      at: 1s\n      type: latency\n      latency: 1s\n      status: 500\n    - backend: payments\n      at: 1s\n      type: kill\n      bytesPerSecond: 10\n",
        ),
        &[
            "s.yaml:16:7: spec.faults[0].status: `status` does not apply to fault type `latency` (its fields: `latency`)",
            "s.yaml:20:7: spec.faults[1].bytesPerSecond: `bytesPerSecond` does not apply to fault type `kill` (it takes no fields of its own)",
        ],
    );
}

#[test]
fn fault_type_missing_its_field() {
    assert_errors(
        &with(
            "  faults:\n    - {backend: payments, at: 1s, type: latency}\n    - {backend: payments, at: 1s, type: slowBody, bytesPerSecond: 0}\n",
        ),
        &[
            "s.yaml:12:35: spec.faults[0].type: fault type `latency` needs `latency`: a duration (2s) or a distribution ({uniform: [1s, 3s]})",
            "s.yaml:13:51: spec.faults[1].bytesPerSecond: bytesPerSecond must be at least 1 (a body that never arrives is `type: hang`)",
        ],
    );
}

#[test]
fn fault_backend_must_be_declared() {
    assert_errors(
        &with("  faults:\n    - {backend: paymnets, at: 1s, type: kill}\n"),
        &[
            "s.yaml:12:8: spec.faults[0].backend: no backend `paymnets` in spec.backends (declared: default/payments)",
        ],
    );
}

#[test]
fn fault_replicas_in_range() {
    assert_errors(
        &with("  faults:\n    - {backend: payments, replicas: [1, 2, 1], at: 1s, type: kill}\n"),
        &[
            "s.yaml:12:41: spec.faults[0].replicas[1]: replica 2 is out of range: backend `default/payments` has 2 replicas (indices 0 to 1)",
            "s.yaml:12:44: spec.faults[0].replicas[2]: replica 1 is listed twice",
        ],
    );
}

#[test]
fn fault_times_within_the_run() {
    assert_errors(
        &with(
            "  faults:\n    - {backend: payments, at: 20s, type: kill}\n    - {backend: payments, at: 15s, duration: 10s, type: hang}\n",
        ),
        &[
            "s.yaml:12:27: spec.faults[0].at: the fault starts at 20s, not before the end of the run: the run ends at 20s, the latest start + duration in spec.load",
            "s.yaml:13:36: spec.faults[1].duration: the fault ends at 25s, after the end of the run: the run ends at 20s, the latest start + duration in spec.load (leave `duration` out to last until then)",
        ],
    );
}

#[test]
fn error_fault_values() {
    assert_errors(
        &with("  faults:\n    - {backend: payments, at: 1s, type: error, status: 99, rate: 1.5}\n"),
        &[
            "s.yaml:12:48: spec.faults[0].status: status 99 is not a final HTTP status the backend can answer with (allowed: 200 to 599)",
            "s.yaml:12:60: spec.faults[0].rate: must be a fraction from 0 to 1 (0.05 for 5%), got 1.5",
        ],
    );
}

#[test]
fn load_needs_exactly_one_shape() {
    assert_errors(
        &BASE.replace(
            "rate: 10",
            "rate: 10\n      concurrency: 4\n      stages: [{duration: 1s, rate: 1}]",
        ),
        &[
            "s.yaml:10:7: spec.load[0].concurrency: `rate` and `concurrency` are both set: give exactly one of `rate` (open loop, requests per second), `concurrency` (closed loop, workers) or `stages` (a ramp of rates)",
            "s.yaml:11:7: spec.load[0].stages: `rate` and `stages` are both set: give exactly one of `rate` (open loop, requests per second), `concurrency` (closed loop, workers) or `stages` (a ramp of rates)",
        ],
    );
    assert_errors(
        &BASE.replace("    - rate: 10\n", "    - path: /\n"),
        &[
            "s.yaml:9:7: spec.load[0]: a load needs one of `rate` (open loop, requests per second), `concurrency` (closed loop, workers) or `stages` (a ramp of rates)",
        ],
    );
}

#[test]
fn load_needs_a_duration_and_valid_values() {
    assert_errors(
        &BASE.replace(
            "      duration: 20s\n",
            "      method: get\n      path: payments\n      host: http://x\n      headers: {host: a, x-ok: 1}\n      timeout: 0s\n",
        ),
        &[
            "s.yaml:9:7: spec.load[0]: missing field `duration`: how long the load runs, such as 20s (optional only with `stages`, which default it to their total)",
            "s.yaml:10:7: spec.load[0].method: methods are case-sensitive: write `GET`",
            "s.yaml:11:7: spec.load[0].path: invalid path `payments`: expected an absolute path such as /payments (a query is allowed: /search?q=1)",
            "s.yaml:12:7: spec.load[0].host: invalid host `http://x`: expected a host name with an optional port, such as shop.example.com or shop.example.com:8080",
            "s.yaml:13:17: spec.load[0].headers.host: set the Host header with the load's `host` field, not in `headers`",
            "s.yaml:14:7: spec.load[0].timeout: timeout must be above 0s",
        ],
    );
}

#[test]
fn durations_are_checked_with_their_path() {
    assert_errors(
        &BASE
            .replace("duration: 20s", "duration: 20")
            .replace("rate: 10", "rate: 10\n      start: 1.5s"),
        &[
            "s.yaml:11:7: spec.load[0].duration: invalid type: integer `20`, expected a duration with a unit, such as 250ms, 2s or 1m30s",
        ],
    );
    assert_errors(
        &BASE.replace("rate: 10", "rate: 10\n      start: 1.5s"),
        &[
            "s.yaml:10:7: spec.load[0].start: invalid duration `1.5s`: must match ^([0-9]{1,5}(h|m|s|ms)){1,4}$ (for example 250ms, 2s, 1m30s)",
        ],
    );
}

#[test]
fn ramp_errors() {
    assert_errors(
        &BASE.replace(
            "rate: 10",
            "stages: [{duration: 0s, rate: 0}, {duration: 5s, rate: -1}]\n      startRate: 3",
        ),
        &[
            "s.yaml:9:17: spec.load[0].stages[0].duration: a stage's duration must be above 0s",
            "s.yaml:9:56: spec.load[0].stages[1].rate: rate must be from 0 up to 10000000 requests per second, got -1",
        ],
    );
    assert_errors(
        &BASE.replace(
            "rate: 10\n      duration: 20s",
            "stages: [{duration: 10s, rate: 1}]\n      duration: 5s",
        ),
        &[
            "s.yaml:10:7: spec.load[0].duration: duration 5s is shorter than the stages (10s in total): leave `duration` out or make it at least as long",
        ],
    );
    assert_errors(
        &BASE.replace("rate: 10", "concurrency: 2\n      startRate: 5"),
        &[
            "s.yaml:10:7: spec.load[0].startRate: `startRate` only applies to `stages` (the rate the first stage ramps from)",
        ],
    );
}

#[test]
fn names_must_be_unique() {
    assert_errors(
        &BASE
            .replace(
                "      replicas: 2\n",
                "      replicas: 2\n    - name: payments\n",
            )
            .replace(
                "    - rate: 10\n      duration: 20s\n",
                "    - {name: a, rate: 1, duration: 1s}\n    - {name: a, rate: 1, duration: 1s}\n",
            ),
        &[
            "s.yaml:8:7: spec.backends[1].name: duplicate backend `default/payments` (first declared at spec.backends[0])",
            "s.yaml:11:8: spec.load[1].name: duplicate load name `a` (first declared at spec.load[0])",
        ],
    );
}

#[test]
fn backend_values() {
    assert_errors(
        &BASE.replace(
            "      replicas: 2\n",
            "      replicas: 0\n      port: 0\n      errorRate: 2\n      errorStatus: 700\n      healthPath: healthz\n      protocol: h3\n      latency: 5\n",
        ),
        &[
            "s.yaml:7:7: spec.backends[0].replicas: replicas must be from 1 to 1000, got 0",
            "s.yaml:8:7: spec.backends[0].port: port must be from 1 to 65535",
            "s.yaml:9:7: spec.backends[0].errorRate: must be a fraction from 0 to 1 (0.05 for 5%), got 2",
            "s.yaml:10:7: spec.backends[0].errorStatus: status 700 is not a final HTTP status the backend can answer with (allowed: 200 to 599)",
            "s.yaml:11:7: spec.backends[0].healthPath: invalid path `healthz`: expected an absolute path such as /payments (a query is allowed: /search?q=1)",
            "s.yaml:12:7: spec.backends[0].protocol: unknown protocol `h3` (allowed: http1, h2c)",
            "s.yaml:13:7: spec.backends[0].latency: a bare number is not a latency: give it a unit, for example 5ms (a duration (5ms) or one of {fixed: 5ms}, {uniform: [1ms, 9ms]}, {lognormal: {p50: 5ms, p99: 40ms}})",
        ],
    );
}

#[test]
fn latency_distribution_errors() {
    let latency = |text: &str| errors(&BASE.replace("replicas: 2", &format!("latency: {text}")));
    assert_eq!(
        latency("{uniform: [9ms, 1ms]}"),
        [
            "s.yaml:7:17: spec.backends[0].latency.uniform: uniform latency needs min <= max, got [9ms, 1ms]"
        ]
    );
    assert_eq!(
        latency("{lognormal: {p50: 50ms, p99: 5ms}}"),
        [
            "s.yaml:7:40: spec.backends[0].latency.lognormal.p99: lognormal latency needs p50 <= p99, got p50 50ms and p99 5ms"
        ]
    );
    assert_eq!(
        latency("{normal: 5ms}"),
        [
            "s.yaml:7:17: spec.backends[0].latency.normal: unknown latency distribution `normal` (allowed: fixed, uniform, lognormal)"
        ]
    );
    assert_eq!(
        latency("{lognormal: {p50: 5ms, p90: 9ms}}"),
        [
            "s.yaml:7:17: spec.backends[0].latency.lognormal: missing field `p99`",
            "s.yaml:7:39: spec.backends[0].latency.lognormal.p90: unknown field `p90`, expected `p50` or `p99`",
        ]
    );
}

#[test]
fn expectation_scope_errors() {
    assert_errors(
        &with(
            "  expect:\n    - where: {replica: 0, load: nope, from: 10s, to: 5s}\n      assert: requests > 0\n    - where: {backend: payments, replica: 2, route: a/b/c, to: 21s}\n      assert: success_rate > 0\n",
        ),
        &[
            "s.yaml:12:15: spec.expect[0].where.replica: `replica` needs `backend` in the same `where`: a replica index is per backend",
            "s.yaml:12:27: spec.expect[0].where.load: no load named `nope` in spec.load (declared: load-0)",
            "s.yaml:12:50: spec.expect[0].where.to: `to` (5s) must be after `from` (10s)",
            "s.yaml:14:34: spec.expect[1].where.replica: replica 2 is out of range: backend `default/payments` has 2 replicas (indices 0 to 1)",
            "s.yaml:14:46: spec.expect[1].where.route: invalid route reference `a/b/c`: expected `namespace/name` or `namespace/name/rule/<index or rule name>`",
            "s.yaml:14:60: spec.expect[1].where.to: `to` (21s) is after the end of the run: the run ends at 20s, the latest start + duration in spec.load",
        ],
    );
}

#[test]
fn expectation_assertion_errors() {
    assert_errors(
        &with(
            "  expect:\n    - assert: success_rate >= 99.9\n    - assert: share > 10%\n    - assert: stat(upstream_rq_retry) > 0\n      where: {load: load-0}\n    - {name: x, assert: requests > 0}\n    - {name: x, assert: requests > 1}\n",
        ),
        &[
            "s.yaml:12:7: spec.expect[0].assert: invalid assertion `success_rate >= 99.9` at column 17: `success_rate` is a rate: a bare number is a fraction from 0 to 1; for a percentage write `99.9%`",
            "s.yaml:13:7: spec.expect[1].assert: `share` needs `where.backend`: it is the share of the scope's requests served by that backend (and replica)",
            "s.yaml:15:15: spec.expect[2].where.load: `stat(upstream_rq_retry)` reads a proxy counter, which is kept per cluster: `where.load` cannot narrow it (allowed: route, backend, from, to)",
            "s.yaml:17:8: spec.expect[4].name: duplicate expectation name `x` (first declared at spec.expect[3])",
        ],
    );
}

#[test]
fn ambiguous_and_missing_backends_in_scope() {
    let text = with("  expect:\n    - {where: {backend: catalog}, assert: requests > 0}\n    - {where: {backend: x/y}, assert: requests > 0}\n")
        .replace("      replicas: 2\n", "      replicas: 2\n    - {name: catalog, namespace: a}\n    - {name: catalog, namespace: b}\n");
    assert_errors(
        &text,
        &[
            "s.yaml:14:16: spec.expect[0].where.backend: backend `catalog` is declared in several namespaces (a, b): write `namespace/catalog`",
            "s.yaml:15:16: spec.expect[1].where.backend: no backend `x/y` in spec.backends (declared: default/payments, a/catalog, b/catalog)",
        ],
    );
}

#[test]
fn a_scenario_needs_load() {
    assert_errors(
        "apiVersion: chaosgate.dev/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec:\n  seed: 3\n",
        &[
            "s.yaml:4:1: spec.load: a Scenario needs at least one load: the run lasts as long as its loads",
        ],
    );
}

#[test]
fn type_errors_are_all_reported() {
    assert_errors(
        &BASE
            .replace("replicas: 2", "replicas: many")
            .replace("rate: 10", "rate: fast"),
        &[
            "s.yaml:7:7: spec.backends[0].replicas: invalid type: string \"many\", expected an integer from 0 to 4294967295",
            "s.yaml:9:7: spec.load[0].rate: invalid type: string \"fast\", expected a number",
        ],
    );
}

#[test]
fn lists_where_mappings_belong() {
    assert_errors(
        "apiVersion: chaosgate.dev/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec: []\n",
        &["s.yaml:4:1: spec: invalid type: list, expected a mapping"],
    );
    assert_errors(
        &BASE.replace(
            "    - name: payments\n      replicas: 2\n",
            "    - [payments, 2]\n",
        ),
        &["s.yaml:6:7: spec.backends[0]: invalid type: list, expected a mapping"],
    );
    assert_errors(
        &with("  expect:\n    - {where: 5, assert: requests > 1}\n"),
        &["s.yaml:12:8: spec.expect[0].where: invalid type: integer `5`, expected a mapping"],
    );
}

#[test]
fn run_times_must_be_non_negative() {
    assert_errors(
        &with("  expect:\n    - {where: {from: -1, to: 3}, assert: requests > 1}\n"),
        &[
            "s.yaml:12:16: spec.expect[0].where.from: -1 is not a time in the run: give seconds from 0, or a duration such as 6s",
        ],
    );
}

#[test]
fn serde_struct_names_are_not_shown() {
    let doc = source(BASE);
    let d = doc.error(
        "spec",
        "invalid type: integer `5`, expected struct RawBackend",
    );
    assert_eq!(
        raw::plain_message(d).message,
        "invalid type: integer `5`, expected a mapping"
    );
}

#[test]
fn window_bounds_are_whole_seconds() {
    assert_errors(
        &with("  expect:\n    - {where: {from: 1500ms, to: 3s}, assert: requests > 1}\n"),
        &[
            "s.yaml:12:16: spec.expect[0].where.from: `from` (1s500ms) must be a whole number of seconds: requests are counted in 1s windows",
        ],
    );
}
