use roxmltree::{Document, Node};
use serde_json::json;

use super::*;

/// A results document with the given expectations `(name, passed)`.
fn run(expectations: &[(&str, bool)], incomplete: Option<&str>) -> RunResults {
    let expectations: Vec<_> = expectations
        .iter()
        .map(|(name, passed)| {
            json!({"name": name, "assertion": "success_rate >= 99%", "observed": 0.5,
                   "observedText": "50%", "passed": passed, "requests": 10})
        })
        .collect();
    let doc = json!({
        "schemaVersion": 1, "scenario": "orders", "description": null, "file": "orders.yaml",
        "runId": "r1", "startedAt": "2026-11-27T09:00:00Z", "runtime": "embedded", "seed": 7,
        "durationS": 3.0, "elapsedS": 3.25, "complete": incomplete.is_none(),
        "incompleteReason": incomplete, "verdict": "passed", "expectations": expectations,
        "routes": [], "loads": [], "faults": [], "policies": {}, "proxyStats": {},
        "warnings": [], "series": {"title_prefix": "orders", "duration_s": 3.0, "faults": [],
                   "routes": [], "replicas": [], "clusters": []}
    });
    serde_json::from_value(doc).expect("valid results document")
}

fn count(node: Node<'_, '_>, attribute: &str) -> usize {
    node.attribute(attribute)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{attribute} on {:?}", node.tag_name()))
}

fn cases_with<'a>(node: Node<'a, 'a>, child: &str) -> usize {
    node.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter(|c| c.children().any(|n| n.has_tag_name(child)))
        .count()
}

/// Parses the document and checks that every count equals the elements it counts.
fn parse_consistent(text: &str) -> Document<'_> {
    let doc = Document::parse(text).expect("well-formed XML");
    let root = doc.root_element();
    for node in std::iter::once(root).chain(root.children().filter(|n| n.is_element())) {
        let cases = node
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .count();
        assert_eq!(count(node, "tests"), cases);
        assert_eq!(count(node, "failures"), cases_with(node, "failure"));
        assert_eq!(count(node, "errors"), cases_with(node, "error"));
    }
    doc
}

#[test]
fn a_passing_run_has_no_failures_and_keeps_its_identity_in_properties() {
    let text = render(&[run(&[("a", true), ("b", true)], None)]);
    let doc = parse_consistent(&text);
    let suite = doc.root_element().first_element_child().unwrap();
    assert_eq!(suite.attribute("timestamp"), Some("2026-11-27T09:00:00"));
    assert_eq!(suite.attribute("time"), Some("3.250"));
    let properties: Vec<_> = suite
        .descendants()
        .filter(|n| n.has_tag_name("property"))
        .map(|p| (p.attribute("name").unwrap(), p.attribute("value").unwrap()))
        .collect();
    assert!(properties.contains(&("seed", "7")));
    assert!(properties.contains(&("runtime", "embedded")));
    assert_eq!(count(doc.root_element(), "failures"), 0);
}

#[test]
fn a_failed_expectation_is_a_failure_naming_the_assertion_and_the_observation() {
    let text = render(&[run(&[("a", true), ("b", false)], None)]);
    let doc = parse_consistent(&text);
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.parent().unwrap().attribute("name"),
        Some("b"),
        "on the expectation that failed"
    );
    assert_eq!(
        failure.attribute("message"),
        Some("success_rate >= 99% (observed 50%)")
    );
}

#[test]
fn an_incomplete_run_decides_nothing_every_expectation_is_an_error() {
    let text = render(&[run(
        &[("a", true), ("b", false)],
        Some("interrupted (Ctrl-C)"),
    )]);
    let doc = parse_consistent(&text);
    assert_eq!(count(doc.root_element(), "errors"), 2);
    assert_eq!(count(doc.root_element(), "failures"), 0);
    let error = doc.descendants().find(|n| n.has_tag_name("error")).unwrap();
    assert_eq!(
        error.attribute("message"),
        Some("the run did not complete: interrupted (Ctrl-C)")
    );
}

#[test]
fn an_incomplete_run_without_expectations_still_shows_an_error() {
    let text = render(&[run(&[], Some("docker engine went away"))]);
    let doc = parse_consistent(&text);
    assert_eq!(count(doc.root_element(), "errors"), 1);
}

#[test]
fn several_runs_add_up() {
    let text = render(&[
        run(&[("a", false)], None),
        run(&[("a", true), ("b", true)], Some("x")),
    ]);
    let doc = parse_consistent(&text);
    assert_eq!(count(doc.root_element(), "tests"), 3);
    assert_eq!(doc.root_element().attribute("time"), Some("6.500"));
}

#[test]
fn any_text_survives_escaping() {
    let name = "p99 <50ms> & \"quoted\" 'single'\n\ttabbed";
    let text = render(&[run(&[(name, false), ("bell \u{7}", true)], None)]);
    let doc = parse_consistent(&text);
    let names: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(names, [name, "bell \u{FFFD}"]);
}
