//! Tests of the BackendTrafficPolicy reader: decoding, every CRD rule family and CEL message,
//! translator errors, and Envoy Gateway's own conformance inputs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::scenario::check::Checker;
use crate::scenario::decode::decode;
use crate::scenario::diag::SourceDoc;
use crate::scenario::yaml::parse_documents;

fn source(text: &str) -> SourceDoc {
    SourceDoc {
        file: Arc::new(PathBuf::from("btp.yaml")),
        doc: parse_documents(text).expect("test YAML parses").remove(0),
    }
}

/// Decodes and validates `spec` of a one-document YAML text; every error as printed.
fn errors(text: &str) -> Vec<String> {
    let doc = source(text);
    let value = doc.doc.value["spec"].clone();
    match decode::<BackendTrafficPolicySpec>(&doc, "spec", &value) {
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
        Ok(spec) => {
            let mut check = Checker::new(&doc);
            validate(&spec, &mut check, "spec");
            check
                .into_errors()
                .iter()
                .map(ToString::to_string)
                .collect()
        }
    }
}

/// Only the messages (after `file:line:col: path: `), for rules whose position is obvious.
fn messages(text: &str) -> Vec<String> {
    errors(text)
        .into_iter()
        .map(|e| e.splitn(5, ": ").nth(2).map(str::to_string).unwrap_or(e))
        .collect()
}

fn spec_of(text: &str) -> BackendTrafficPolicySpec {
    let doc = source(text);
    let value = doc.doc.value["spec"].clone();
    let spec: BackendTrafficPolicySpec = decode(&doc, "spec", &value).expect("spec decodes");
    let mut check = Checker::new(&doc);
    validate(&spec, &mut check, "spec");
    let errs = check.into_errors();
    assert!(errs.is_empty(), "CRD rejects the spec: {errs:?}");
    spec
}

const GW: &str =
    "spec:\n  targetRefs:\n    - {group: gateway.networking.k8s.io, kind: Gateway, name: gw}\n";
const ROUTE: &str =
    "spec:\n  targetRefs:\n    - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}\n";

fn with(base: &str, extra: &str) -> String {
    format!("{base}{extra}")
}

// ---------------------------------------------------------------------------------------------
// Conformance inputs

/// Where `shared/` lives: next to the repository (CI) or at /work/shared.
fn shared_dir() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if beside.exists() {
        beside
    } else {
        PathBuf::from("/work/shared")
    }
}

/// Renames `retry.perRetry.backoff` to `backOff`: Envoy Gateway's test harness reads field
/// names case-insensitively, the API server (and chaosgate) does not.
fn normalise_spelling(spec: &mut serde_json::Value) -> bool {
    let Some(per_retry) = spec
        .get_mut("retry")
        .and_then(|r| r.get_mut("perRetry"))
        .and_then(|p| p.as_object_mut())
    else {
        return false;
    };
    match per_retry.remove("backoff") {
        Some(v) => {
            per_retry.insert("backOff".to_string(), v);
            true
        }
        None => false,
    }
}

/// What the API server and then the translator make of one conformance policy.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Accepted by the CRD; the translator's status message when it fails.
    Accepted(Option<String>),
    /// Rejected by the CRD with these messages (path-free part).
    CrdRejected(Vec<String>),
}

/// Policies whose outcome is not "accepted, translates cleanly".
fn expected_outcome(file: &str, policy: &str) -> Option<Outcome> {
    let cb = |field: &str| {
        Outcome::CrdRejected(vec![format!(
            "Invalid value: -1: {{spec}}.circuitBreaker.{field} in body should be greater than or equal to 0"
        )])
    };
    let rejected_5_4s = Outcome::CrdRejected(vec![
        "Invalid value: \"5.4s\": {spec}.faultInjection.delay.fixedDelay in body should match '^([0-9]{1,5}(h|m|s|ms)){1,4}$'".to_string(),
    ]);
    let not_checked = "Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".to_string();
    Some(match (file, policy) {
        // Inputs the CRD itself rejects (INDEX.md: "values that the CRD itself rejects"; the
        // fault-injection and table-size inputs are further such cases).
        ("backendtrafficpolicy-with-circuitbreakers-error", "policy-for-gateway") => cb("maxConnections"),
        ("backendtrafficpolicy-with-circuitbreakers-error", "policy-for-route") => cb("maxRequestsPerConnection"),
        ("backendtrafficpolicy-with-circuitbreakers-error", "policy-for-route2") => cb("maxParallelRetries"),
        ("backendtrafficpolicy-with-timeout-error", "policy-for-gateway") => Outcome::CrdRejected(vec![
            "Invalid value: \"22mib\": {spec}.timeout.http.maxConnectionDuration in body should match '^([0-9]{1,5}(h|m|s|ms)){1,4}$'".to_string(),
        ]),
        ("backendtrafficpolicy-status-fault-injection", "policy-for-gateway") => Outcome::CrdRejected(vec![
            "Invalid value: 14: {spec}.faultInjection.abort.httpStatus in body should be greater than or equal to 200".to_string(),
        ]),
        ("backendtrafficpolicy-status-fault-injection", "policy-for-route" | "policy-for-grpcroute") => rejected_5_4s,
        ("backendtrafficpolicy-with-loadbalancer-invalid-consistent-hash-table-size", "policy-for-route") => {
            Outcome::CrdRejected(vec!["Required value".to_string(), not_checked])
        }
        ("backendtrafficpolicy-with-loadbalancer-invalid-consistent-hash-table-size", "policy-for-route2") => {
            Outcome::CrdRejected(vec![
                "Required value".to_string(),
                "Invalid value: 5000012: {spec}.loadBalancer.consistentHash.tableSize in body should be less than or equal to 5000011".to_string(),
                not_checked,
            ])
        }
        // Translator rejections, with the status messages of the .out.yaml files.
        ("backendtrafficpolicy-with-retries", "policy-for-route-2") => {
            Outcome::Accepted(Some("Retry: baseInterval cannot be set to 0s.".to_string()))
        }
        ("backendtrafficpolicy-with-retries", "policy-for-route-3") => {
            Outcome::Accepted(Some("Retry: maxInterval cannot be less than baseInterval.".to_string()))
        }
        ("backendtrafficpolicy-with-local-ratelimit-invalid-multiple-route-level-limits", "policy-for-gateway") => {
            Outcome::Accepted(Some(
                "RateLimit: local rateLimit can not have more than one rule without clientSelectors.".to_string(),
            ))
        }
        ("backendtrafficpolicy-with-ratelimit-invalid-regex", "policy-for-gateway") => Outcome::Accepted(Some(
            "RateLimit: regex \"*.illegal.regex\" is invalid: error parsing regexp: missing argument to repetition operator: `*`."
                .to_string(),
        )),
        _ => return None,
    })
}

#[test]
fn conformance_policies_are_read_as_the_api_server_would() {
    let dir = shared_dir().join("conformance/envoy-gateway-v1.9.0");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("conformance directory is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".in.yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 25,
        "found {} conformance inputs",
        files.len()
    );
    let (mut policies, mut respelled, mut special) = (0, 0, 0);
    for file in &files {
        let stem = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".in.yaml"))
            .expect("conformance file name");
        let text = std::fs::read_to_string(file).expect("conformance input is readable");
        let doc = SourceDoc {
            file: Arc::new(PathBuf::from(format!("{stem}.in.yaml"))),
            doc: parse_documents(&text)
                .expect("conformance YAML parses")
                .remove(0),
        };
        let list = doc.doc.value["backendTrafficPolicies"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, policy) in list.iter().enumerate() {
            policies += 1;
            let base = format!("backendTrafficPolicies[{i}].spec");
            let name = policy["metadata"]["name"].as_str().expect("policy name");
            let mut value = policy["spec"].clone();
            if normalise_spelling(&mut value) {
                respelled += 1;
                // As written, the API server rejects the spelling.
                let raw = decode::<BackendTrafficPolicySpec>(&doc, &base, &policy["spec"]);
                let errs = raw.expect_err("`backoff` is not a CRD field");
                assert!(
                    errs[0].message.starts_with("unknown field `backoff`"),
                    "{errs:?}"
                );
            }
            let spec: BackendTrafficPolicySpec = decode(&doc, &base, &value)
                .unwrap_or_else(|e| panic!("{stem}/{name} does not decode: {e:?}"));
            let mut check = Checker::new(&doc);
            validate(&spec, &mut check, &base);
            let crd: Vec<String> = check
                .into_errors()
                .iter()
                .map(|d| d.message.replace(&base, "{spec}"))
                .collect();
            let outcome = if crd.is_empty() {
                let errs = translation_errors(&spec);
                Outcome::Accepted((!errs.is_empty()).then(|| status_message(&errs)))
            } else {
                Outcome::CrdRejected(crd)
            };
            let expected = expected_outcome(stem, name);
            special += usize::from(expected.is_some());
            assert_eq!(
                outcome,
                expected.unwrap_or(Outcome::Accepted(None)),
                "{stem}/{name}"
            );
        }
    }
    assert!(policies > 40, "only {policies} policies found");
    assert_eq!(
        respelled, 4,
        "the retries case spells backOff as backoff four times"
    );
    assert_eq!(special, 13, "every listed exception was met");
}
