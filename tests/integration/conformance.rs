//! Envoy Gateway v1.9.0's own translator cases (../shared/conformance): every policy status
//! chaosgate's `explain` computes must equal the status Envoy Gateway wrote.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::support::{explain_json, explain_json_with, shared_dir};
use chaosgate::scenario::load::LoadOptions;
use chaosgate::scenario::yaml::parse_documents;

const CASE_DIR: &str = "conformance/envoy-gateway-v1.9.0";

/// Input list keys of the upstream harness, in the order objects are written out.
const INPUT_KEYS: [&str; 12] = [
    "gateways",
    "listenerSets",
    "httpRoutes",
    "grpcRoutes",
    "tlsRoutes",
    "tcpRoutes",
    "udpRoutes",
    "referenceGrants",
    "namespaces",
    "backendTrafficPolicies",
    "backends",
    "configMaps",
];

/// Field spellings the upstream harness accepts case-insensitively but the API server does not.
const SPELLING_FIXES: [(&str, &str); 1] = [("\"backoff\":", "\"backOff\":")];

fn read_yaml(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_documents(&text)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
        .remove(0)
        .value
}

/// Writes a case's input lists as one multi-document file, giving policies increasing creation
/// timestamps so their order is the harness's list order.
fn write_case_input(case: &str) -> (tempfile::TempDir, PathBuf) {
    let input = read_yaml(&shared_dir().join(CASE_DIR).join(format!("{case}.in.yaml")));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("{case}.yaml"));
    let mut text = String::new();
    for key in INPUT_KEYS {
        // The upstream harness matches keys case-insensitively (`httproutes` works there).
        let list = input
            .as_object()
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
            .map(|(_, v)| v);
        for (i, object) in list
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mut object = object.clone();
            if key == "backendTrafficPolicies" {
                object["metadata"]["creationTimestamp"] =
                    json!(format!("2024-01-01T00:{:02}:{:02}Z", i / 60, i % 60));
            }
            let mut doc = serde_json::to_string(&object).expect("json");
            for (from, to) in SPELLING_FIXES {
                doc = doc.replace(from, to);
            }
            text.push_str("---\n");
            text.push_str(&doc);
            text.push('\n');
        }
    }
    std::fs::write(&path, text).expect("write case");
    (dir, path)
}

/// The statuses Envoy Gateway wrote: (namespace/name, ancestors) in its output order.
fn expected_statuses(case: &str) -> Vec<(String, Value)> {
    let output = read_yaml(&shared_dir().join(CASE_DIR).join(format!("{case}.out.yaml")));
    output["backendTrafficPolicies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let key = format!(
                "{}/{}",
                p["metadata"]["namespace"].as_str().unwrap_or("default"),
                p["metadata"]["name"].as_str().unwrap_or("")
            );
            (key, normalize_ancestors(&p["status"]["ancestors"]))
        })
        .collect()
}

/// Keeps the fields both sides carry: ancestor refs and condition type/status/reason/message.
fn normalize_ancestors(ancestors: &Value) -> Value {
    let Some(list) = ancestors.as_array() else {
        return Value::Null;
    };
    Value::Array(
        list.iter()
            .map(|a| {
                let r = &a["ancestorRef"];
                let conditions: Vec<Value> = a["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| json!({"type": c["type"], "status": c["status"], "reason": c["reason"], "message": c["message"]}))
                    .collect();
                json!({
                    "ancestorRef": {"group": r["group"], "kind": r["kind"], "namespace": r["namespace"], "name": r["name"], "sectionName": r["sectionName"]},
                    "conditions": conditions,
                })
            })
            .collect(),
    )
}

fn actual_statuses(explain: &Value) -> Vec<(String, Value)> {
    explain["policies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let key = format!(
                "{}/{}",
                p["namespace"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or("")
            );
            (key, normalize_ancestors(&p["ancestors"]))
        })
        .collect()
}

fn check_statuses(case: &str) -> Value {
    let (_dir, path) = write_case_input(case);
    // Envoy Gateway's harness feeds objects straight to the translator, past the API server.
    let no_crd = LoadOptions {
        crd_validation: false,
    };
    let explain = explain_json_with(&[path], no_crd)
        .unwrap_or_else(|e| panic!("{case}: explain failed:\n{e}"));
    let expected = expected_statuses(case);
    let actual = actual_statuses(&explain);
    let show = |v: &[(String, Value)]| {
        serde_json::to_string_pretty(
            &v.iter()
                .map(|(k, a)| json!({"policy": k, "ancestors": a}))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default()
    };
    assert_eq!(
        show(&actual),
        show(&expected),
        "{case}: policy statuses differ from Envoy Gateway's"
    );
    check_ir_routes(case, &explain);
    explain
}

/// Compares, per route rule and listener, which policy Envoy Gateway applied (the IR route's
/// policy metadata), whether it became a 500 direct response, and for TCP/UDP routes which
/// features were set.
fn check_ir_routes(case: &str, explain: &Value) {
    let output = read_yaml(&shared_dir().join(CASE_DIR).join(format!("{case}.out.yaml")));
    let ours = explain["routes"].as_array().cloned().unwrap_or_default();
    let find = |listener: &str, cluster: &str| {
        ours.iter()
            .find(|r| {
                let set = r["listenerSet"]
                    .as_str()
                    .map(|s| format!("{s}/"))
                    .unwrap_or_default();
                let name = format!(
                    "{}/{set}{}",
                    r["gateway"].as_str().unwrap_or(""),
                    r["listener"].as_str().unwrap_or("")
                );
                name == listener && r["cluster"] == cluster
            })
            .unwrap_or_else(|| panic!("{case}: no explain entry for {cluster} on {listener}"))
    };
    let mut checked = 0;
    for (_, ir) in output["xdsIR"].as_object().into_iter().flatten() {
        for listener in ir["http"].as_array().into_iter().flatten() {
            let listener_name = listener["name"].as_str().unwrap_or("");
            for route in listener["routes"].as_array().into_iter().flatten() {
                let Some(cluster) = route["destination"]["name"].as_str() else {
                    continue; // a route without destination (no usable backend) is not a rule outcome
                };
                let entry = find(listener_name, cluster);
                let applied = route["metadata"]["policies"]
                    .as_array()
                    .and_then(|p| p.iter().find(|p| p["kind"] == "BackendTrafficPolicy"))
                    .map(|p| {
                        format!(
                            "{}/{}",
                            p["namespace"].as_str().unwrap_or(""),
                            p["name"].as_str().unwrap_or("")
                        )
                    });
                let expected_policy = if route.get("traffic").is_some() {
                    applied
                } else {
                    None
                };
                assert_eq!(
                    entry["policy"].as_str().map(String::from),
                    expected_policy,
                    "{case}: policy of {cluster} on {listener_name}"
                );
                let direct = route["directResponse"]["statusCode"].as_u64();
                if entry["directResponse"].as_u64().is_some() || direct == Some(500) {
                    assert_eq!(
                        entry["directResponse"].as_u64(),
                        direct,
                        "{case}: direct response of {cluster} on {listener_name}"
                    );
                }
                checked += 1;
            }
        }
        let l4 = ir["tcp"].as_array().into_iter().flatten().flat_map(|l| {
            let name = l["name"].as_str().unwrap_or("").to_string();
            l["routes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |r| (name.clone(), r))
        });
        let udp = ir["udp"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["route"].is_object())
            .map(|l| {
                (
                    l["name"].as_str().unwrap_or("").to_string(),
                    l["route"].clone(),
                )
            });
        for (listener_name, route) in l4.chain(udp) {
            let cluster = route["destination"]["name"].as_str().unwrap_or("");
            let entry = find(&listener_name, cluster);
            for (ir_field, spec_field) in [
                ("loadBalancer", "loadBalancer"),
                ("proxyProtocol", "proxyProtocol"),
                ("healthCheck", "healthCheck"),
                ("circuitBreaker", "circuitBreaker"),
                ("tcpKeepalive", "tcpKeepalive"),
                ("timeout", "timeout"),
                ("backendConnection", "connection"),
                ("dns", "dns"),
            ] {
                assert_eq!(
                    entry["effective"].get(spec_field).is_some(),
                    route.get(ir_field).is_some(),
                    "{case}: {spec_field} on {cluster} ({listener_name})"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "{case}: no IR routes compared");
}

macro_rules! status_case {
    ($test:ident, $case:literal) => {
        #[test]
        fn $test() {
            check_statuses($case);
        }
    };
}

status_case!(status_conditions, "backendtrafficpolicy-status-conditions");
status_case!(
    section_name_override,
    "backendtrafficpolicy-section-name-override"
);
status_case!(
    invalid_no_section,
    "backendtrafficpolicy-invalid-no-section"
);
status_case!(override_replace, "backendtrafficpolicy-override-replace");
status_case!(
    multiple_targets_targetselector,
    "backendtrafficpolicy-multiple-targets-targetselector"
);
status_case!(strategic_merge, "backendtrafficpolicy-strategic-merge");
status_case!(
    strategic_merge_section,
    "backendtrafficpolicy-strategic-merge-section"
);
status_case!(
    strategic_merge_global_ratelimit,
    "backendtrafficpolicy-strategic-merge-global-ratelimit"
);
status_case!(
    compressor_json_merge,
    "backendtrafficpolicy-compressor-json-merge"
);
status_case!(
    with_circuitbreakers,
    "backendtrafficpolicy-with-circuitbreakers"
);
status_case!(with_retries, "backendtrafficpolicy-with-retries");
status_case!(with_timeout, "backendtrafficpolicy-with-timeout");
status_case!(
    httproute_with_timeout,
    "httproute-and-backendtrafficpolicy-with-timeout"
);
status_case!(with_healthcheck, "backendtrafficpolicy-with-healthcheck");
status_case!(
    with_panic_threshold,
    "backendtrafficpolicy-with-panic-threshold"
);
status_case!(with_loadbalancer, "backendtrafficpolicy-with-loadbalancer");
status_case!(
    invalid_consistent_hash_table_size,
    "backendtrafficpolicy-with-loadbalancer-invalid-consistent-hash-table-size"
);
status_case!(
    with_local_ratelimit,
    "backendtrafficpolicy-with-local-ratelimit"
);
status_case!(
    local_ratelimit_invalid_multiple_defaults,
    "backendtrafficpolicy-with-local-ratelimit-invalid-multiple-route-level-limits"
);
status_case!(with_ratelimit, "backendtrafficpolicy-with-ratelimit");
status_case!(
    ratelimit_invalid_regex,
    "backendtrafficpolicy-with-ratelimit-invalid-regex"
);
status_case!(
    fault_injection,
    "backendtrafficpolicy-status-fault-injection"
);
status_case!(
    tcp_udp_listeners,
    "backendtrafficpolicy-with-tcp-udp-listeners-apply-on-gateway"
);
status_case!(
    circuitbreakers_error,
    "backendtrafficpolicy-with-circuitbreakers-error"
);
status_case!(timeout_error, "backendtrafficpolicy-with-timeout-error");

/// With the API server in front (the default), values the CRD rejects are located scenario
/// errors, not statuses: INDEX.md's note on the two CRD-invalid inputs.
#[test]
fn crd_invalid_inputs_are_located_errors_by_default() {
    for (case, needle) in [
        (
            "backendtrafficpolicy-with-circuitbreakers-error",
            "spec.circuitBreaker.maxConnections: Invalid value: -1: spec.circuitBreaker.maxConnections in body should be greater than or equal to 0",
        ),
        (
            "backendtrafficpolicy-with-timeout-error",
            "spec.timeout.http.maxConnectionDuration: Invalid value: \"22mib\"",
        ),
    ] {
        let (_dir, path) = write_case_input(case);
        let err = explain_json(&[path]).expect_err(case);
        assert!(
            err.contains(needle),
            "{case}: expected `{needle}` in\n{err}"
        );
    }
}
