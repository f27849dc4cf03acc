//! The run folder's outputs end to end: one real `chaosgate run` of a tiny failover scenario,
//! then `report.html`, `junit.xml`, `chaosgate report`, `chaosgate compare` and the committed
//! `docs/results.schema.json` checked against what it wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use tempfile::TempDir;

/// Two replicas behind passive health checking; replica 0 answers 503 for two seconds. One
/// expectation holds, one fails on purpose, and names carry markup to prove escaping.
const SCENARIO: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg}
spec:
  gatewayClassName: eg
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders}
spec:
  parentRefs: [{name: eg}]
  rules:
    - backendRefs: [{name: orders, port: 8080}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: orders-outlier}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: orders}]
  healthCheck:
    passive: {consecutive5XxErrors: 2, interval: 1s, baseEjectionTime: 5s, maxEjectionPercent: 50}
---
apiVersion: chaosgate.dev/v1alpha1
kind: Scenario
metadata: {name: tiny-orders-failover}
spec:
  description: "Replica 0 of <orders> fails & is ejected."
  seed: 11
  backends:
    - {name: orders, port: 8080, replicas: 2, latency: 2ms}
  load:
    - {name: clients, path: /, rate: 50, duration: 3s}
  faults:
    - {backend: orders, replicas: [0], at: 1s, duration: 1s, type: error, status: 503}
  expect:
    - name: "most requests succeed & <failover> works"
      assert: success_rate >= 50%
    - name: impossible latency (fails on purpose)
      assert: latency_max < 1ms
"#;

const HELD: &str = "most requests succeed & <failover> works";
const FAILS: &str = "impossible latency (fails on purpose)";

/// The run folder of the one real run all tests share (run once, read-only afterwards).
fn run_dir() -> &'static Path {
    static RUN: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = RUN.get_or_init(|| {
        let tmp = TempDir::new().expect("temp dir");
        let scenario = tmp.path().join("tiny.yaml");
        std::fs::write(&scenario, SCENARIO).expect("write scenario");
        let out = tmp.path().join("out");
        let output = chaosgate(&[
            "run".as_ref(),
            scenario.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--quiet".as_ref(),
        ]);
        // 1: an expectation failed, which is what this scenario asks for.
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let runs = out.join("tiny-orders-failover");
        let run = std::fs::read_dir(&runs)
            .expect("scenario folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.is_dir() && !p.ends_with("latest"))
            .expect("a run folder");
        (tmp, run)
    });
    dir
}

/// A private copy of the run folder that a test may change.
fn copy_of_run() -> (TempDir, PathBuf) {
    let tmp = TempDir::new().expect("temp dir");
    for entry in std::fs::read_dir(run_dir()).expect("run folder") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, tmp.path().join(path.file_name().expect("name"))).expect("copy");
    }
    let results = tmp.path().join("results.json");
    (tmp, results)
}

fn chaosgate<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chaosgate"))
        .args(args)
        .output()
        .expect("run chaosgate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).expect("json")).expect("write");
}

/// Every value of `attr="…"` in the page.
fn attribute_values<'a>(page: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    page.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &page[i + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// Standard base64 decoding (test side, independent of the encoder under test).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

#[test]
fn report_html_is_self_contained_and_tells_the_verdicts() {
    let page = std::fs::read_to_string(run_dir().join("report.html")).expect("report.html");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("FAILED"), "the verdict banner");
    // Names are escaped, never passed through as markup.
    assert!(page.contains("most requests succeed &amp; &lt;failover&gt; works"));
    assert!(page.contains(FAILS));
    assert!(!page.contains("<failover>") && !page.contains("<orders>"));
    assert!(page.contains('✓') && page.contains('✗'));
    // Nothing is fetched: no scripts, no stylesheets, every link an anchor in the page.
    for forbidden in ["<script", "<link", "@import", "url("] {
        assert!(!page.contains(forbidden), "{forbidden}");
    }
    for href in attribute_values(&page, "href") {
        let id = href
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external link {href}"));
        assert!(
            page.contains(&format!(" id=\"{id}\"")),
            "dangling anchor {href}"
        );
    }
    let images = attribute_values(&page, "src");
    assert_eq!(images.len(), 5, "one image per chart");
    for src in images {
        assert!(!src.contains("http://") && !src.contains("https://"));
        let data = src
            .strip_prefix("data:image/png;base64,")
            .unwrap_or_else(|| panic!("not a PNG data URI: {}", &src[..src.len().min(40)]));
        let png = base64_decode(data).expect("valid base64");
        let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .expect("decodes as PNG");
        assert!(image.width() > 100 && image.height() > 100);
    }
    // The story: the policy in force, the fault and the failover moments.
    assert!(page.contains("default/orders-outlier"));
    assert!(page.contains("healthCheck.passive.consecutive5XxErrors"));
    assert!(page.contains("error fault on default/orders (replicas 0) starts"));
    assert!(
        page.contains("outlier detection ejects a host"),
        "the ejection moment"
    );
}

#[test]
fn junit_xml_is_well_formed_with_one_failure() {
    super::support::assert_valid_junit(&run_dir().join("junit.xml"));
    let text = std::fs::read_to_string(run_dir().join("junit.xml")).expect("junit.xml");
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("2"));
    assert_eq!(root.attribute("failures"), Some("1"));
    assert_eq!(root.attribute("errors"), Some("0"));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(suite.attribute("name"), Some("tiny-orders-failover"));
    assert_eq!(suite.attribute("tests"), Some("2"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    assert!(
        suite
            .attribute("time")
            .and_then(|t| t.parse::<f64>().ok())
            .is_some()
    );
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().filter_map(|c| c.attribute("name")).collect();
    assert_eq!(names, vec![HELD, FAILS]);
    let failures: Vec<_> = cases
        .iter()
        .flat_map(|c| c.children().filter(|n| n.has_tag_name("failure")))
        .collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0].parent().and_then(|p| p.attribute("name")),
        Some(FAILS)
    );
    assert!(
        failures[0]
            .attribute("message")
            .is_some_and(|m| m.starts_with("latency_max < 1ms (observed "))
    );
    // Only the elements the JUnit schema allows at these levels.
    for node in doc.descendants().filter(|n| n.is_element()) {
        assert!(
            [
                "testsuites",
                "testsuite",
                "properties",
                "property",
                "testcase",
                "failure",
                "error"
            ]
            .contains(&node.tag_name().name()),
            "unexpected element {:?}",
            node.tag_name()
        );
    }
}

#[test]
fn report_command_recreates_the_outputs() {
    let (tmp, results) = copy_of_run();
    let original = std::fs::read_to_string(tmp.path().join("report.html")).expect("report.html");
    for name in [
        "report.html",
        "junit.xml",
        "latency_over_time.png",
        "proxy_state.png",
    ] {
        std::fs::remove_file(tmp.path().join(name)).expect("remove");
    }
    let output = chaosgate(&[&results]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "no subcommand is a usage error"
    );
    let output = chaosgate(&["report".as_ref(), results.as_os_str()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let printed: Vec<PathBuf> = stdout(&output).lines().map(PathBuf::from).collect();
    assert_eq!(printed.len(), 7, "five charts, the page and junit.xml");
    for path in &printed {
        assert!(path.exists(), "{}", path.display());
        assert_eq!(path.parent(), Some(tmp.path()));
    }
    let again = std::fs::read_to_string(tmp.path().join("report.html")).expect("report.html");
    assert_eq!(
        again, original,
        "re-rendering the same results gives the same page"
    );
    assert!(tmp.path().join("junit.xml").exists());

    let missing = chaosgate(&["report", "/nonexistent/results.json"]);
    assert_eq!(missing.status.code(), Some(2));
    std::fs::write(&results, "{}").expect("write");
    let garbage = chaosgate(&["report".as_ref(), results.as_os_str()]);
    assert_eq!(garbage.status.code(), Some(2));
    assert!(stderr(&garbage).contains("not a chaosgate results file"));
}

/// Writes a modified copy of the real results as `name` in `dir`.
fn variant(dir: &Path, name: &str, change: impl FnOnce(&mut Value)) -> PathBuf {
    let mut doc = read_json(&run_dir().join("results.json"));
    change(&mut doc);
    let path = dir.join(name);
    write_json(&path, &doc);
    path
}

/// Multiplies every latency percentile of every route by `factor`.
fn scale_latency(doc: &mut Value, factor: f64) {
    for route in doc["routes"].as_array_mut().expect("routes") {
        for (_, v) in route["latencyMs"].as_object_mut().expect("latencyMs") {
            if let Some(x) = v.as_f64() {
                *v = Value::from(x * factor);
            }
        }
    }
}

fn compare(base: &Path, new: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["compare".as_ref(), base.as_os_str(), new.as_os_str()];
    args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
    chaosgate(&args)
}

#[test]
fn compare_accepts_an_improvement() {
    let tmp = TempDir::new().expect("temp dir");
    let base = run_dir().join("results.json");
    let new = variant(tmp.path(), "new.json", |doc| scale_latency(doc, 0.5));
    let output = compare(&base, &new, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains("-50.0%") && text.contains("better"), "{text}");
    assert!(text.contains("no regression past 10%"), "{text}");
}

#[test]
fn compare_fails_on_a_latency_regression_past_the_bound() {
    let tmp = TempDir::new().expect("temp dir");
    let base = run_dir().join("results.json");
    let new = variant(tmp.path(), "new.json", |doc| scale_latency(doc, 1.25));
    let output = compare(&base, &new, &["--max-regression", "10%"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(
        text.contains("default/orders/rule/0 → default/orders: p99 +25.0%"),
        "{text}"
    );
    assert!(text.contains("REGRESSED"));
    // The same change is within a 30% bound.
    let output = compare(&base, &new, &["--max-regression", "30%"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn compare_bounds_success_rate_in_percentage_points() {
    let tmp = TempDir::new().expect("temp dir");
    let base = variant(tmp.path(), "base.json", |doc| {
        doc["routes"][0]["successRate"] = Value::from(0.99);
    });
    let new = variant(tmp.path(), "new.json", |doc| {
        doc["routes"][0]["successRate"] = Value::from(0.94);
    });
    let output = compare(&base, &new, &["--max-regression", "4%"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stdout(&output).contains("success rate -5.00 pp"));
    let output = compare(&base, &new, &["--max-regression", "6%"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn compare_reports_changed_verdicts() {
    let tmp = TempDir::new().expect("temp dir");
    let base = run_dir().join("results.json");
    let broken = variant(tmp.path(), "broken.json", |doc| {
        doc["expectations"][0]["passed"] = Value::from(false);
        doc["verdict"] = Value::from("failed");
    });
    let html = tmp.path().join("compare.html");
    let output = compare(&base, &broken, &["--html", html.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(
        text.contains(&format!("expectation {HELD:?} held before and fails now")),
        "{text}"
    );
    let page = std::fs::read_to_string(&html).expect("compare.html");
    assert!(page.contains("now fails") && page.contains("REGRESSED"));
    assert!(page.contains("most requests succeed &amp; &lt;failover&gt; works"));
    assert!(!page.contains("http://") && !page.contains("https://"));

    // The other way round a verdict is fixed: reported, and no regression.
    let output = compare(&broken, &base, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("fixed"));
}

#[test]
fn compare_rejects_bad_input_with_exit_2() {
    let tmp = TempDir::new().expect("temp dir");
    let base = run_dir().join("results.json");
    let other = variant(tmp.path(), "other.json", |doc| {
        doc["scenario"] = Value::from("another-scenario");
    });
    let output = compare(&base, &other, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("different scenarios"),
        "{}",
        stderr(&output)
    );
    let output = compare(&base, &tmp.path().join("missing.json"), &[]);
    assert_eq!(output.status.code(), Some(2));
    let output = compare(&base, &base, &["--max-regression", "lots"]);
    assert_eq!(output.status.code(), Some(2));
}

// --- docs/results.schema.json -------------------------------------------------------------

/// Checks `value` against `schema`, for the JSON Schema 2020-12 keywords the committed schema
/// uses; any other keyword is reported, so the schema cannot silently outgrow this checker.
fn validate(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    const ANNOTATIONS: [&str; 4] = ["$schema", "$id", "title", "description"];
    let Some(map) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{at}: not allowed"));
        }
        return;
    };
    for (key, rule) in map {
        match key.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$defs" => {}
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .unwrap_or_else(|| panic!("unsupported $ref {rule}"));
                validate(root, &root["$defs"][name], value, at, errors);
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => panic!("bad type {rule}"),
                };
                let ok = types.iter().any(|t| match *t {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "boolean" => value.is_boolean(),
                    "null" => value.is_null(),
                    "number" => value.is_number(),
                    "integer" => value.is_i64() || value.is_u64(),
                    other => panic!("unknown type {other}"),
                });
                if !ok {
                    errors.push(format!("{at}: {value} is not {types:?}"));
                }
            }
            "const" if value != rule => errors.push(format!("{at}: {value} is not {rule}")),
            "enum" if !rule.as_array().is_some_and(|a| a.contains(value)) => {
                errors.push(format!("{at}: {value} is not one of {rule}"))
            }
            "const" | "enum" => {}
            "minimum" | "maximum" | "minLength" | "minItems" | "pattern" => {
                check_bound(key, rule, value, at, errors)
            }
            "required" => {
                if let Some(obj) = value.as_object() {
                    for name in rule
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        if !obj.contains_key(name) {
                            errors.push(format!("{at}: missing {name}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(obj) = value.as_object() {
                    for (name, sub) in rule.as_object().into_iter().flatten() {
                        if let Some(v) = obj.get(name) {
                            validate(root, sub, v, &format!("{at}.{name}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(obj) = value.as_object() {
                    let known = map.get("properties").and_then(Value::as_object);
                    for (name, v) in obj {
                        if !known.is_some_and(|k| k.contains_key(name)) {
                            validate(root, rule, v, &format!("{at}.{name}"), errors);
                        }
                    }
                }
            }
            "prefixItems" | "items" => {
                if let Some(items) = value.as_array() {
                    let prefix = map.get("prefixItems").and_then(Value::as_array);
                    for (i, v) in items.iter().enumerate() {
                        let sub = match prefix.and_then(|p| p.get(i)) {
                            Some(p) if key == "prefixItems" => p,
                            None if key == "items" => rule,
                            _ => continue,
                        };
                        validate(root, sub, v, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            other => panic!("the schema uses {other}, which this checker does not implement"),
        }
    }
}

fn check_bound(key: &str, rule: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let limit = rule.as_f64();
    let bad = match key {
        "minimum" => value.as_f64().zip(limit).is_some_and(|(v, l)| v < l),
        "maximum" => value.as_f64().zip(limit).is_some_and(|(v, l)| v > l),
        "minLength" => value
            .as_str()
            .zip(limit)
            .is_some_and(|(v, l)| (v.chars().count() as f64) < l),
        "minItems" => value
            .as_array()
            .zip(limit)
            .is_some_and(|(v, l)| (v.len() as f64) < l),
        _ => value.as_str().is_some_and(|v| {
            !regex::Regex::new(rule.as_str().expect("pattern"))
                .expect("regex")
                .is_match(v)
        }),
    };
    if bad {
        errors.push(format!("{at}: {value} violates {key} {rule}"));
    }
}

fn schema() -> Value {
    read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results.schema.json"))
}

fn schema_errors(doc: &Value) -> Vec<String> {
    let schema = schema();
    let mut errors = Vec::new();
    validate(&schema, &schema, doc, "$", &mut errors);
    errors
}

#[test]
fn results_json_matches_the_committed_schema() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let doc = read_json(&run_dir().join("results.json"));
    assert_eq!(schema_errors(&doc), Vec::<String>::new());
    // The run had a fault, a policy and both verdicts, so the optional parts were exercised.
    assert!(!doc["faults"].as_array().expect("faults").is_empty());
    assert!(
        !doc["policies"]["routes"]
            .as_array()
            .expect("routes")
            .is_empty()
    );

    // The checker can fail: a wrong enum, a missing field, an unknown field, a wrong type.
    let mut bad = doc.clone();
    bad["verdict"] = Value::from("maybe");
    bad.as_object_mut().expect("object").remove("seed");
    bad["surprise"] = Value::from(1);
    bad["routes"][0]["latencyMs"]["p99"] = Value::from("fast");
    bad["series"]["replicas"][0]["points"][0] = serde_json::json!([0.0, 1, 2]);
    let errors = schema_errors(&bad);
    for needle in [
        "$.verdict",
        "missing seed",
        "$.surprise",
        "$.routes[0].latencyMs.p99",
        "$.series.replicas[0].points[0][2]",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "{needle} in {errors:#?}"
        );
    }
}
