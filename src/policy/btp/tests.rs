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
    match read_spec(&doc, "spec", &doc.doc.value["spec"]) {
        Ok(_) => Vec::new(),
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
    }
}

/// Errors without their `file:line:col: ` prefix (`path: message`).
fn at(text: &str) -> Vec<String> {
    errors(text)
        .into_iter()
        .map(|e| {
            e.split_once(": ")
                .map(|(_, rest)| rest.to_string())
                .unwrap_or(e)
        })
        .collect()
}

/// The spec as decoded, without CRD validation (for translator checks the CRD would stop).
fn decoded(text: &str) -> BackendTrafficPolicySpec {
    let doc = source(text);
    let value = doc.doc.value["spec"].clone();
    decode(&doc, "spec", &value).expect("spec decodes")
}

const NOT_CHECKED: &str = "spec: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

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
                // The stored (defaulted) policy is still valid and translates the same way.
                let mut stored = spec.clone();
                apply_defaults(&mut stored);
                let mut recheck = Checker::new(&doc);
                validate(&stored, &mut recheck, &base);
                assert!(
                    recheck.into_errors().is_empty(),
                    "{stem}/{name} defaults are valid"
                );
                assert_eq!(
                    translation_errors(&stored),
                    errs,
                    "{stem}/{name} after defaults"
                );
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

// ---------------------------------------------------------------------------------------------
// Decoding

#[test]
fn misspelled_keys_are_rejected_with_location() {
    assert_eq!(
        errors(&with(GW, "  retyr: {numRetries: 2}\n")),
        vec![
            "btp.yaml:4:3: spec.retyr: unknown field `retyr`, expected one of `targetRef`, `targetRefs`, `targetSelectors`, `mergeType`, `loadBalancer`, `retry`, `proxyProtocol`, `tcpKeepalive`, `healthCheck`, `circuitBreaker`, `timeout`, `connection`, `dns`, `http2`, `rateLimit`, `bandwidthLimit`, `faultInjection`, `admissionControl`, `useClientProtocol`, `compression`, `compressor`, `responseOverride`, `httpUpgrade`, `requestBuffer`, `telemetry`, `routingType`"
        ]
    );
    let errs = at(&with(
        GW,
        "  retry:\n    perRetry:\n      backoff: {baseInterval: 1s}\n",
    ));
    assert_eq!(
        errs,
        vec![
            "spec.retry.perRetry.backoff: unknown field `backoff`, expected `timeout` or `backOff`"
        ]
    );
    let errs = at(&with(
        GW,
        "  healthCheck:\n    passive:\n      consecutive5xxErrors: 3\n",
    ));
    assert!(
        errs[0].starts_with("spec.healthCheck.passive.consecutive5xxErrors: unknown field"),
        "{errs:?}"
    );
}

#[test]
fn decodes_a_full_policy() {
    let spec = spec_of(&with(
        ROUTE,
        "  mergeType: StrategicMerge\n  loadBalancer:\n    type: ConsistentHash\n    consistentHash:\n      type: Cookie\n      cookie: {name: s, ttl: 60s, attributes: {SameSite: Strict}}\n      tableSize: 524287\n  healthCheck:\n    passive: {consecutive5XxErrors: 3, baseEjectionTime: 2m30s}\n  connection: {bufferLimit: 100Mi}\n  http2: {initialStreamWindowSize: 65536}\n  rateLimit:\n    local:\n      rules:\n        - limit: {requests: 10, unit: Minute}\n        - clientSelectors:\n            - headers: [{name: x-user, value: one}]\n              sourceCIDR: {value: 10.0.0.0/8, type: Distinct}\n          limit: {requests: 3, unit: Hour}\n",
    ));
    let lb = spec.load_balancer.expect("loadBalancer");
    assert_eq!(lb.type_, Some(LoadBalancerType::ConsistentHash));
    let ch = lb.consistent_hash.expect("consistentHash");
    assert_eq!(ch.type_, Some(ConsistentHashType::Cookie));
    assert_eq!(ch.table_size, Some(524_287));
    assert_eq!(
        spec.health_check
            .and_then(|h| h.passive)
            .and_then(|p| p.consecutive_5xx_errors),
        Some(3)
    );
    let buffer = spec
        .connection
        .and_then(|c| c.buffer_limit)
        .expect("bufferLimit");
    assert_eq!(buffer.as_i64(), Some(100 * 1024 * 1024));
    assert!(
        translation_errors(&decoded(&with(
            ROUTE,
            "  connection: {bufferLimit: 100Mi}\n"
        )))
        .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// OpenAPI rule families

#[test]
fn required_fields_block_cel_rules() {
    assert_eq!(
        errors("spec:\n  targetRef: {group: gateway.networking.k8s.io, kind: Gateway}\n"),
        vec![
            "btp.yaml:2:3: spec.targetRef.name: Required value".to_string(),
            format!("btp.yaml:1:1: {NOT_CHECKED}"),
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  loadBalancer:\n    consistentHash: {tableSize: 3}\n"
        )),
        vec![
            "spec.loadBalancer.type: Required value",
            "spec.loadBalancer.consistentHash.type: Required value",
            NOT_CHECKED,
        ]
    );
}

#[test]
fn enums_list_the_crd_values_in_order() {
    assert_eq!(
        errors(&with(GW, "  loadBalancer:\n    type: Fastest\n")),
        vec![
            "btp.yaml:5:5: spec.loadBalancer.type: Unsupported value: \"Fastest\": supported values: \"ConsistentHash\", \"LeastRequest\", \"Random\", \"RoundRobin\", \"BackendUtilization\", \"DynamicModule\"".to_string(),
            format!("btp.yaml:1:1: {NOT_CHECKED}"),
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  retry:\n    retryOn:\n      triggers: [5xx, timeout]\n"
        )),
        vec![
            "spec.retry.retryOn.triggers[1]: Unsupported value: \"timeout\": supported values: \"5xx\", \"gateway-error\", \"reset\", \"reset-before-request\", \"connect-failure\", \"retriable-4xx\", \"refused-stream\", \"retriable-status-codes\", \"cancelled\", \"deadline-exceeded\", \"internal\", \"resource-exhausted\", \"unavailable\"",
            NOT_CHECKED,
        ]
    );
    // Enums the CRD writes as allOf of two identical enums add the allOf notice.
    assert_eq!(
        at(&with(
            GW,
            "  healthCheck:\n    active:\n      type: HTTPS\n"
        )),
        vec![
            "spec.healthCheck.active.type: Unsupported value: \"HTTPS\": supported values: \"HTTP\", \"TCP\", \"GRPC\"",
            "spec.healthCheck.active.type: Invalid value: \"\": \"spec.healthCheck.active.type\" must validate all the schemas (allOf). None validated",
            NOT_CHECKED,
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  responseOverride:\n    - match: {statusCodes: [{value: 404}]}\n      redirect: {statusCode: 303}\n"
        )),
        vec![
            "spec.responseOverride[0].redirect.statusCode: Unsupported value: 303: supported values: \"301\", \"302\"",
            NOT_CHECKED,
        ]
    );
}

#[test]
fn numeric_bounds_use_the_api_server_wording() {
    assert_eq!(
        errors(&with(
            GW,
            "  circuitBreaker:\n    maxConnections: 4294967296\n    maxPendingRequests: -1\n"
        )),
        vec![
            "btp.yaml:5:5: spec.circuitBreaker.maxConnections: Invalid value: 4294967296: spec.circuitBreaker.maxConnections in body should be less than or equal to 4294967295",
            "btp.yaml:6:5: spec.circuitBreaker.maxPendingRequests: Invalid value: -1: spec.circuitBreaker.maxPendingRequests in body should be greater than or equal to 0",
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  retry: {numRetries: -1}\n  healthCheck:\n    panicThreshold: 101\n    active: {type: TCP, tcp: {}, healthyThreshold: 0, overrides: {port: 70000}}\n"
        )),
        vec![
            "spec.retry.numRetries: Invalid value: -1: spec.retry.numRetries in body should be greater than or equal to 0",
            "spec.healthCheck.panicThreshold: Invalid value: 101: spec.healthCheck.panicThreshold in body should be less than or equal to 100",
            "spec.healthCheck.active.healthyThreshold: Invalid value: 0: spec.healthCheck.active.healthyThreshold in body should be greater than or equal to 1",
            "spec.healthCheck.active.overrides.port: Invalid value: 70000: spec.healthCheck.active.overrides.port in body should be less than or equal to 65535",
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  connection:\n    preconnect: {perEndpointPercent: 305}\n  http2: {maxConnectionsStreams: 1}\n"
        ))[0],
        "spec.http2.maxConnectionsStreams: unknown field `maxConnectionsStreams`, expected one of `initialStreamWindowSize`, `initialConnectionWindowSize`, `maxConcurrentStreams`, `onInvalidMessage`, `connectionKeepalive`"
    );
    assert_eq!(
        at(&with(
            GW,
            "  connection:\n    preconnect: {perEndpointPercent: 305}\n"
        )),
        vec![
            "spec.connection.preconnect.perEndpointPercent: Invalid value: 305: spec.connection.preconnect.perEndpointPercent in body should be less than or equal to 300"
        ]
    );
}

#[test]
fn string_lengths_and_patterns() {
    let long = "a".repeat(254);
    assert_eq!(
        at(&format!(
            "spec:\n  targetRefs:\n    - {{group: gateway.networking.k8s.io, kind: HTTPRoute, name: {long}, sectionName: Bad_Name}}\n"
        )),
        vec![
            "spec.targetRefs[0].name: Too long: may not be more than 253 bytes",
            "spec.targetRefs[0].sectionName: Invalid value: \"Bad_Name\": spec.targetRefs[0].sectionName in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'",
            NOT_CHECKED,
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  healthCheck:\n    active: {type: HTTP, http: {path: \"\"}}\n"
        )),
        vec![
            "spec.healthCheck.active.http.path: Invalid value: \"\": spec.healthCheck.active.http.path in body should be at least 1 chars long"
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  bandwidthLimit:\n    response:\n      limit: {value: 1Mi, unit: Second}\n      responseTrailers: {prefix: \"x\\r\"}\n"
        )),
        vec![
            "spec.bandwidthLimit.response.responseTrailers.prefix: Invalid value: \"x\\r\": spec.bandwidthLimit.response.responseTrailers.prefix in body should match '^[^\\r\\n\\x00]*$'"
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  healthCheck:\n    active: {type: TCP, tcp: {send: {type: Binary, binary: \"not base64!\"}}}\n"
        )),
        vec![
            "spec.healthCheck.active.tcp.send.binary: Invalid value: \"not base64!\": spec.healthCheck.active.tcp.send.binary in body must be of type byte: \"not base64!\"",
            NOT_CHECKED,
        ]
    );
}

#[test]
fn durations_follow_the_gateway_api_pattern() {
    assert_eq!(
        errors(&with(
            GW,
            "  timeout:\n    http: {requestTimeout: 1.5s}\n    tcp: {connectTimeout: 10s}\n"
        )),
        vec![
            "btp.yaml:5:12: spec.timeout.http.requestTimeout: Invalid value: \"1.5s\": spec.timeout.http.requestTimeout in body should match '^([0-9]{1,5}(h|m|s|ms)){1,4}$'"
        ]
    );
}

#[test]
fn quantities_check_strings_only() {
    assert_eq!(
        at(&with(GW, "  connection: {bufferLimit: 1m}\n")),
        vec![
            "spec.connection.bufferLimit: Invalid value: \"1m\": spec.connection.bufferLimit in body should match '^[1-9]+[0-9]*([EPTGMK]i|[EPTGMk])?$'",
            "spec.connection.bufferLimit: Invalid value: \"\": \"spec.connection.bufferLimit\" must validate all the schemas (allOf)",
        ]
    );
    assert_eq!(at(&with(GW, "  requestBuffer: {limit: lots}\n")).len(), 3);
    // Integers bypass the patterns: -1 is the translator's problem.
    let spec = spec_of(&with(GW, "  connection: {bufferLimit: -1}\n"));
    assert_eq!(
        translation_errors(&spec),
        vec!["BackendConnection: BufferLimit value -1 is out of range"]
    );
}

#[test]
fn list_sizes_and_uniqueness() {
    assert_eq!(
        at(&with(
            GW,
            "  healthCheck:\n    active:\n      type: TCP\n      tcp: {}\n      healthCheckLog:\n        matches: [Failure, Success, Failure]\n        sinks: [{type: File, file: {path: /a}}, {type: File, file: {path: /b}}]\n"
        )),
        vec![
            "spec.healthCheck.active.healthCheckLog.matches[2]: Duplicate value: \"Failure\"",
            "spec.healthCheck.active.healthCheckLog.sinks: Too many: 2: must have at most 1 item",
            NOT_CHECKED,
        ]
    );
    let rules = "        - limit: {requests: 1, unit: Second}\n".repeat(257);
    assert_eq!(
        at(&with(
            GW,
            &format!("  rateLimit:\n    global:\n      rules:\n{rules}")
        )),
        vec![
            "spec.rateLimit.global.rules: Too many: 257: must have at most 256 items",
            NOT_CHECKED
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  loadBalancer:\n    type: RoundRobin\n    zoneAware:\n      weightedZones: [{zone: a, weight: 1}, {zone: a, weight: 2}]\n"
        )),
        vec![
            "spec.loadBalancer.zoneAware.weightedZones[1]: Duplicate value: map[string]interface {}{\"zone\":\"a\"}"
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  responseOverride:\n    - match: {statusCodes: []}\n      response: {statusCode: 200}\n"
        )),
        vec![
            "spec.responseOverride[0].match.statusCodes: Invalid value: 0: spec.responseOverride[0].match.statusCodes in body should have at least 1 items"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// CEL rules

#[test]
fn spec_level_cel_rules() {
    assert_eq!(
        errors("spec:\n  useClientProtocol: true\n"),
        vec!["btp.yaml:1:1: spec: Invalid value: either targetRef or targetRefs must be used"]
    );
    // An empty targetRefs list still counts as "set", as CEL's has() sees it.
    assert!(at("spec:\n  targetRefs: []\n").is_empty());
    assert_eq!(
        at("spec:\n  targetRef: {group: example.com, kind: Service, name: s}\n"),
        vec![
            "spec: Invalid value: this policy can only have a targetRef.group of gateway.networking.k8s.io",
            "spec: Invalid value: this policy can only have a targetRef.kind of Gateway/ListenerSet/HTTPRoute/GRPCRoute/TCPRoute/UDPRoute/TLSRoute",
        ]
    );
    assert_eq!(
        at("spec:\n  targetRefs: [{group: '', kind: Service, name: s}]\n"),
        vec![
            "spec: Invalid value: this policy can only have a targetRefs[*].group of gateway.networking.k8s.io",
            "spec: Invalid value: this policy can only have a targetRefs[*].kind of Gateway/ListenerSet/HTTPRoute/GRPCRoute/TCPRoute/UDPRoute/TLSRoute",
        ]
    );
    assert_eq!(
        at(&with(GW, "  mergeType: Replace\n")),
        vec![
            "spec: Invalid value: mergeType can only be used with xRoute targets",
            "spec.mergeType: Invalid value: \"Replace\": Replace is not a valid MergeType for BackendTrafficPolicySpec",
        ]
    );
    assert_eq!(
        at("spec:\n  targetSelectors: [{kind: ListenerSet}]\n  mergeType: JSONMerge\n"),
        vec!["spec: Invalid value: mergeType can only be used with xRoute targets"]
    );
    assert_eq!(
        at(&with(
            ROUTE,
            "  compression: [{type: Gzip, gzip: {}}]\n  compressor: [{type: Brotli, brotli: {}}]\n"
        )),
        vec!["spec: Invalid value: either compression or compressor can be set, not both"]
    );
    assert_eq!(
        at(&with(
            ROUTE,
            "  requestBuffer: {limit: 1Mi}\n  httpUpgrade: [{type: websocket}]\n"
        )),
        vec!["spec: Invalid value: requestBuffer cannot be used together with httpUpgrade"]
    );
    assert!(
        at(&with(
            ROUTE,
            "  requestBuffer: {limit: 1Mi}\n  httpUpgrade: []\n"
        ))
        .is_empty()
    );
    assert_eq!(
        at(
            "spec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: TCPRoute, name: t}]\n  admissionControl: {}\n"
        ),
        vec![
            "spec: Invalid value: admissionControl can only be used with HTTPRoute, GRPCRoute, Gateway, or ListenerSet targets"
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  connection:\n    preconnect: {predictivePercent: 150}\n"
        )),
        vec![
            "spec: Invalid value: predictivePercent in preconnect policy only works with RoundRobin or Random load balancers"
        ]
    );
    assert!(at(&with(GW, "  loadBalancer: {type: Random}\n  connection:\n    preconnect: {predictivePercent: 150}\n")).is_empty());
    assert_eq!(
        at(
            "spec:\n  targetSelectors:\n    - kind: HTTPRoute\n      group: example.com\n      namespaces: {from: Selector}\n"
        ),
        vec![
            "spec.targetSelectors[0].namespaces: Invalid value: selector must be specified when from is Selector",
            "spec.targetSelectors[0]: Invalid value: group must be gateway.networking.k8s.io",
        ]
    );
}

#[test]
fn load_balancer_cel_rules() {
    let lb = |body: &str| at(&with(GW, &format!("  loadBalancer:\n{body}")));
    assert_eq!(
        lb("    type: ConsistentHash\n"),
        vec![
            "spec.loadBalancer: Invalid value: If LoadBalancer type is consistentHash, consistentHash field needs to be set."
        ]
    );
    assert_eq!(
        lb("    type: BackendUtilization\n"),
        vec![
            "spec.loadBalancer: Invalid value: If LoadBalancer type is BackendUtilization, backendUtilization field needs to be set."
        ]
    );
    assert_eq!(
        lb(
            "    type: DynamicModule\n    zoneAware: {weightedZones: [{zone: a, weight: 1}]}\n    endpointOverride: {extractFrom: [{header: x}]}\n"
        ),
        vec![
            "spec.loadBalancer: Invalid value: If LoadBalancer type is DynamicModule, dynamicModule field needs to be set.",
            "spec.loadBalancer: Invalid value: ZoneAware routing is not supported for DynamicModule load balancers.",
            "spec.loadBalancer: Invalid value: EndpointOverride is not supported for DynamicModule load balancers.",
        ]
    );
    assert_eq!(
        lb("    type: Random\n    slowStart: {window: 10s}\n"),
        vec![
            "spec.loadBalancer: Invalid value: Currently SlowStart is only supported for RoundRobin, LeastRequest, and BackendUtilization load balancers."
        ]
    );
    assert_eq!(
        lb(
            "    type: ConsistentHash\n    consistentHash: {type: SourceIP}\n    zoneAware: {preferLocal: {}}\n"
        ),
        vec![
            "spec.loadBalancer: Invalid value: PreferLocal zone-aware routing is not supported for ConsistentHash load balancers. Use weightedZones instead."
        ]
    );
    assert_eq!(
        lb(
            "    type: BackendUtilization\n    backendUtilization: {}\n    zoneAware: {preferLocal: {}, weightedZones: [{zone: a, weight: 1}]}\n"
        ),
        vec![
            "spec.loadBalancer: Invalid value: PreferLocal zone-aware routing is not currently supported for BackendUtilization load balancers. Only WeightedZones can be used with BackendUtilization.",
            "spec.loadBalancer: Invalid value: ZoneAware PreferLocal and WeightedZones cannot be specified together.",
        ]
    );
    assert_eq!(
        lb("    type: ConsistentHash\n    consistentHash: {type: Header, cookie: {name: c}}\n"),
        vec![
            "spec.loadBalancer.consistentHash: Invalid value: If consistent hash type is header, the header field must be set.",
            "spec.loadBalancer.consistentHash: Invalid value: If consistent hash type is cookie, the cookie field must be set.",
        ]
    );
    assert_eq!(
        lb("    type: ConsistentHash\n    consistentHash: {type: Headers}\n"),
        vec![
            "spec.loadBalancer.consistentHash: Invalid value: If consistent hash type is headers, the headers field must be set."
        ]
    );
    assert_eq!(
        lb("    type: ConsistentHash\n    consistentHash: {type: QueryParams}\n"),
        vec![
            "spec.loadBalancer.consistentHash: Invalid value: If consistent hash type is queryParams, the queryParams field must be set."
        ]
    );
    assert_eq!(
        lb(
            "    type: BackendUtilization\n    backendUtilization:\n      outOfBand: {reportingPeriod: 0s, port: 0, authority: \"\"}\n"
        ),
        vec![
            "spec.loadBalancer.backendUtilization.outOfBand.authority: Invalid value: \"\": spec.loadBalancer.backendUtilization.outOfBand.authority in body should be at least 1 chars long",
            "spec.loadBalancer.backendUtilization.outOfBand.port: Invalid value: 0: spec.loadBalancer.backendUtilization.outOfBand.port in body should be greater than or equal to 1",
            "spec.loadBalancer.backendUtilization.outOfBand.reportingPeriod: Invalid value: \"0s\": reportingPeriod must be greater than 0",
        ]
    );
}

#[test]
fn health_check_cel_rules() {
    let hc = |body: &str| at(&with(GW, &format!("  healthCheck:\n    active:\n{body}")));
    assert_eq!(
        hc("      type: HTTP\n      tcp: {}\n      grpc: {}\n"),
        vec![
            "spec.healthCheck.active: Invalid value: If Health Checker type is HTTP, http field needs to be set.",
            "spec.healthCheck.active: Invalid value: If Health Checker type is TCP, tcp field needs to be set.",
            "spec.healthCheck.active: Invalid value: The grpc field can only be set if the Health Checker type is GRPC.",
        ]
    );
    assert_eq!(
        hc(
            "      type: HTTP\n      http:\n        path: /h\n        method: get\n        requestBody: {type: Text, text: x}\n        expectedResponse: {type: Text, binary: eA==}\n"
        ),
        vec![
            "spec.healthCheck.active.http.expectedResponse: Invalid value: If payload type is Text, text field needs to be set.",
            "spec.healthCheck.active.http.expectedResponse: Invalid value: If payload type is Binary, binary field needs to be set.",
            "spec.healthCheck.active.http: Invalid value: The requestBody field can only be set when method is POST or PUT.",
        ]
    );
    assert!(hc("      type: HTTP\n      http: {path: /h, method: post, requestBody: {type: Text, text: x}}\n").is_empty());
    assert_eq!(
        hc(
            "      type: TCP\n      tcp: {}\n      healthCheckLog:\n        matches: [Failure]\n        sinks: [{type: File}]\n"
        ),
        vec![
            "spec.healthCheck.active.healthCheckLog.matches: Invalid value: a failure type and a success type must both be specified together",
            "spec.healthCheck.active.healthCheckLog.sinks[0]: Invalid value: If ProxyHealthCheckLogSink type is File, file field needs to be set.",
        ]
    );
}

#[test]
fn other_feature_cel_rules() {
    assert_eq!(
        at(&with(
            GW,
            "  circuitBreaker:\n    retryBudget: {percent: {numerator: 150}}\n"
        )),
        vec![
            "spec.circuitBreaker.retryBudget.percent: Invalid value: numerator must be less than or equal to denominator"
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  telemetry:\n    tracing:\n      samplingFraction: {numerator: 2, denominator: 1}\n"
        )),
        vec![
            "spec.telemetry.tracing.samplingFraction: Invalid value: numerator must be less than or equal to denominator"
        ]
    );
    assert_eq!(
        at(&with(GW, "  faultInjection: {}\n")),
        vec!["spec.faultInjection: Invalid value: Delay and abort faults are set at least one."]
    );
    assert_eq!(
        at(&with(
            GW,
            "  faultInjection:\n    abort: {percentage: 50}\n"
        )),
        vec![
            "spec.faultInjection.abort: Invalid value: httpStatus and grpcStatus are set at least one."
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  faultInjection:\n    abort: {httpStatus: 503, grpcStatus: 14}\n"
        )),
        vec![
            "spec.faultInjection.abort: Invalid value: httpStatus and grpcStatus cannot be simultaneously defined."
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  admissionControl: {samplingWindow: 500ms, minSuccessRate: 0, maxRejectionPercent: 101}\n"
        )),
        vec![
            "spec.admissionControl.maxRejectionPercent: Invalid value: 101: spec.admissionControl.maxRejectionPercent in body should be less than or equal to 100",
            "spec.admissionControl.minSuccessRate: Invalid value: 0: spec.admissionControl.minSuccessRate in body should be greater than or equal to 1",
            "spec.admissionControl: Invalid value: minSuccessRate must be between 1 and 100",
            "spec.admissionControl: Invalid value: maxRejectionPercent must be between 0 and 100",
            "spec.admissionControl: Invalid value: samplingWindow must be at least 1s",
        ]
    );
    // CEL reads durations with Go's parser, so a value the pattern rejects is still compared.
    assert_eq!(
        at(&with(GW, "  admissionControl: {samplingWindow: 0.5s}\n")),
        vec![
            "spec.admissionControl.samplingWindow: Invalid value: \"0.5s\": spec.admissionControl.samplingWindow in body should match '^([0-9]{1,5}(h|m|s|ms)){1,4}$'",
            "spec.admissionControl: Invalid value: samplingWindow must be at least 1s",
        ]
    );
    assert_eq!(
        at(&with(GW, "  bandwidthLimit: {}\n")),
        vec![
            "spec.bandwidthLimit: Invalid value: at least one of request or response must be specified"
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  http2:\n    connectionKeepalive: {interval: 10s, timeout: 10s}\n"
        )),
        vec!["spec.http2.connectionKeepalive: Invalid value: timeout must be less than interval"]
    );
    assert_eq!(
        at(&with(
            ROUTE,
            "  httpUpgrade: [{type: websocket, connect: {terminate: true}}]\n"
        )),
        vec![
            "spec.httpUpgrade[0]: Invalid value: The connect configuration is only allowed when the type is CONNECT."
        ]
    );
}

#[test]
fn rate_limit_cel_rules() {
    assert_eq!(
        at(&with(
            GW,
            "  rateLimit:\n    local:\n      rules:\n        - limit: {requests: 1, unit: Second, fromMetadata: {namespace: n, key: k}}\n          cost: {response: {from: Number, number: 1}}\n"
        )),
        vec![
            "spec.rateLimit.local.rules: Invalid value: response cost is not supported for Local Rate Limits",
            "spec.rateLimit.local.rules: Invalid value: limit fromMetadata is not supported for Local Rate Limits",
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  rateLimit:\n    global:\n      rules:\n        - clientSelectors: [{}]\n          limit: {requests: 1, unit: Second}\n          cost: {request: {from: Number, number: 1, metadata: {namespace: n, key: k}}}\n"
        )),
        vec![
            "spec.rateLimit.global.rules[0].clientSelectors[0]: Invalid value: at least one of headers, methods, path, sourceCIDR or queryParams must be specified",
            "spec.rateLimit.global.rules[0].cost.request: Invalid value: only one of number or metadata can be specified",
        ]
    );
}

#[test]
fn response_override_cel_rules() {
    let ro = |body: &str| at(&with(GW, &format!("  responseOverride:\n{body}")));
    assert_eq!(
        ro("    - match: {}\n"),
        vec![
            "spec.responseOverride[0].match: Invalid value: at least one of statusCodes or responseHeaders must be specified",
            "spec.responseOverride[0]: Invalid value: exactly one of response or redirect must be specified",
        ]
    );
    assert_eq!(
        ro(
            "    - match:\n        statusCodes: [{type: Value}, {type: Range}, {type: Range, range: {start: 500, end: 400}}]\n      response: {body: {type: ValueRef, valueRef: {group: '', kind: Secret, name: s}}}\n"
        ),
        vec![
            "spec.responseOverride[0].match.statusCodes[0]: Invalid value: value must be set for type Value",
            "spec.responseOverride[0].match.statusCodes[1]: Invalid value: range must be set for type Range",
            "spec.responseOverride[0].match.statusCodes[2].range: Invalid value: end must be greater than start",
            "spec.responseOverride[0].response.body: Invalid value: only ConfigMap is supported for ValueRef",
        ]
    );
    assert_eq!(
        ro(
            "    - match: {statusCodes: [{value: 404}]}\n      response: {body: {}, header: {remove: [x]}}\n"
        ),
        vec![
            "spec.responseOverride[0].response.body: Invalid value: inline must be set for type Inline",
            "spec.responseOverride[0].response.header: Invalid value: Remove is not supported for header in CustomResponse",
        ]
    );
    assert_eq!(
        ro(
            "    - match: {statusCodes: [{value: 404}]}\n      response: {body: {type: ValueRef}}\n"
        ),
        vec![
            "spec.responseOverride[0].response.body: Invalid value: valueRef must be set for type ValueRef"
        ]
    );
    assert_eq!(
        ro(
            "    - match: {statusCodes: [{value: 404}]}\n      redirect:\n        path: {type: ReplacePrefixMatch, replaceFullPath: /x}\n"
        ),
        vec![
            "spec.responseOverride[0].redirect.path: Invalid value: only ReplaceFullPath is supported for path.type",
            "spec.responseOverride[0].redirect.path: Invalid value: type must be 'ReplaceFullPath' when replaceFullPath is set",
            "spec.responseOverride[0].redirect.path: Invalid value: replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'",
        ]
    );
    assert_eq!(
        ro(
            "    - match: {statusCodes: [{value: 404}]}\n      redirect:\n        path: {type: ReplaceFullPath, replacePrefixMatch: /x}\n"
        ),
        vec![
            "spec.responseOverride[0].redirect.path: Invalid value: replaceFullPath must be specified when type is set to 'ReplaceFullPath'",
            "spec.responseOverride[0].redirect.path: Invalid value: type must be 'ReplacePrefixMatch' when replacePrefixMatch is set",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Translator errors

fn translated(extra: &str) -> Vec<String> {
    translation_errors(&spec_of(&with(GW, extra)))
}

#[test]
fn retry_backoff_errors() {
    let backoff = |b: &str| translated(&format!("  retry:\n    perRetry:\n      backOff: {b}\n"));
    assert_eq!(
        backoff("{baseInterval: 0s, maxInterval: 1s}"),
        vec!["Retry: baseInterval cannot be set to 0s"]
    );
    assert_eq!(
        backoff("{maxInterval: 0ms}"),
        vec!["Retry: maxInterval cannot be set to 0s"]
    );
    assert_eq!(
        backoff("{baseInterval: 2s, maxInterval: 1s}"),
        vec!["Retry: maxInterval cannot be less than baseInterval"]
    );
    assert!(backoff("{baseInterval: 100ms, maxInterval: 10s}").is_empty());
    assert_eq!(
        status_message(&backoff("{baseInterval: 0s}")),
        "Retry: baseInterval cannot be set to 0s."
    );
}

#[test]
fn load_balancer_table_size_must_be_prime() {
    let lb = |size: u32| {
        translated(&format!(
            "  loadBalancer:\n    type: ConsistentHash\n    consistentHash: {{type: SourceIP, tableSize: {size}}}\n"
        ))
    };
    assert_eq!(
        lb(1024),
        vec!["LoadBalancer: ConsistentHash: invalid TableSize value 1024"]
    );
    assert_eq!(
        status_message(&lb(1024)),
        "LoadBalancer: ConsistentHash: invalid TableSize value 1024."
    );
    assert!(lb(65537).is_empty());
    assert!(lb(5_000_011).is_empty());
}

#[test]
fn local_rate_limit_rule_errors() {
    let local =
        |rules: &str| translated(&format!("  rateLimit:\n    local:\n      rules:\n{rules}"));
    assert_eq!(
        local(
            "        - limit: {requests: 1, unit: Second}\n        - limit: {requests: 2, unit: Minute}\n"
        ),
        vec!["RateLimit: local rateLimit can not have more than one rule without clientSelectors"]
    );
    assert_eq!(
        local(
            "        - limit: {requests: 10, unit: Minute}\n        - clientSelectors: [{methods: [{value: GET}]}]\n          limit: {requests: 1, unit: Second}\n"
        ),
        vec![
            "RateLimit: local rateLimit rule limit unit must be a multiple of the default limit unit"
        ]
    );
    assert!(local("        - limit: {requests: 10, unit: Hour}\n        - clientSelectors: [{methods: [{value: GET}]}]\n          limit: {requests: 1, unit: Day}\n").is_empty());
    assert_eq!(
        translated(
            "  rateLimit:\n    type: Local\n    global:\n      rules: [{limit: {requests: 1, unit: Second}}]\n"
        ),
        vec!["RateLimit: local configuration empty for rateLimit"]
    );
    assert_eq!(
        translated(
            "  rateLimit:\n    type: Global\n    local:\n      rules: [{limit: {requests: 1, unit: Second}}]\n"
        ),
        vec!["RateLimit: global configuration empty for rateLimit"]
    );
    let spec = spec_of(&with(
        GW,
        "  rateLimit:\n    global:\n      rules: [{limit: {requests: 1, unit: Second}}]\n",
    ));
    let ctx = TranslateContext {
        global_rate_limit_enabled: false,
        ..TranslateContext::default()
    };
    assert_eq!(
        translation_errors_with(&spec, &ctx),
        vec![
            "RateLimit: enable Ratelimit in the EnvoyGateway config to configure global rateLimit"
        ]
    );
}

#[test]
fn rate_limit_match_errors() {
    let rule = |selector: &str| {
        translated(&format!(
            "  rateLimit:\n    global:\n      rules:\n        - clientSelectors: [{selector}]\n          limit: {{requests: 1, unit: Second}}\n"
        ))
    };
    assert_eq!(
        rule("{headers: [{name: x, type: RegularExpression, value: '*.illegal.regex'}]}"),
        vec![
            "RateLimit: regex \"*.illegal.regex\" is invalid: error parsing regexp: missing argument to repetition operator: `*`"
        ]
    );
    assert_eq!(
        rule("{path: {type: RegularExpression, value: '/a(b'}}"),
        vec![
            "RateLimit: regex \"/a(b\" is invalid: error parsing regexp: missing closing ): `/a(b`"
        ]
    );
    assert_eq!(
        rule("{queryParams: [{name: q, type: RegularExpression, value: 'a**'}]}"),
        vec![
            "RateLimit: regex \"a**\" is invalid: error parsing regexp: invalid nested repetition operator: `**`"
        ]
    );
    assert_eq!(
        rule("{headers: [{name: x, type: Distinct, invert: true}]}"),
        vec![
            "RateLimit: unable to translate rateLimit.Invert is not applicable for distinct header match type"
        ]
    );
    for header in [
        "{name: x, type: Distinct, value: v}",
        "{name: x}",
        "{name: x, type: RegularExpression}",
    ] {
        assert_eq!(
            rule(&format!("{{headers: [{header}]}}")),
            vec![
                "RateLimit: unable to translate rateLimit. Either the header.Type is not valid or the header is missing a value"
            ],
            "{header}"
        );
    }
    assert_eq!(
        rule("{headers: []}"),
        vec![
            "RateLimit: unable to translate rateLimit. At least one of the header or method or path or sourceCIDR or queryParameters must be specified"
        ]
    );
    assert_eq!(
        rule("{sourceCIDR: {value: 10.0.0.0/33}}"),
        vec!["RateLimit: unable to translate rateLimit: invalid CIDR address: 10.0.0.0/33"]
    );
    assert_eq!(
        rule("{queryParams: [{name: q}]}"),
        vec!["RateLimit: value is required for Exact query parameter match"]
    );
    assert_eq!(
        rule("{queryParams: [{name: q, type: RegularExpression, value: ''}]}"),
        vec!["RateLimit: value is required for RegularExpression query parameter match"]
    );
    assert_eq!(
        rule("{queryParams: [{name: q, type: Distinct, value: v}]}"),
        vec![
            "RateLimit: unable to translate rateLimit.Value is not applicable for distinct query parameter match type"
        ]
    );
    assert_eq!(
        rule("{queryParams: [{name: q, type: Distinct, invert: true}]}"),
        vec![
            "RateLimit: unable to translate rateLimit.Invert is not applicable for distinct query parameter match type"
        ]
    );
    assert!(rule("{headers: [{name: x, type: RegularExpression, value: '^a.*'}], path: {value: /api}, sourceCIDR: {value: 192.168.0.0/16}}").is_empty());
}

#[test]
fn quantity_range_errors() {
    assert_eq!(
        translated("  connection: {bufferLimit: 5Gi}\n"),
        vec!["BackendConnection: BufferLimit value 5Gi is out of range"]
    );
    assert_eq!(
        translated("  connection: {bufferLimit: 100Ei}\n"),
        vec!["BackendConnection: invalid BufferLimit value 100Ei"]
    );
    assert_eq!(
        translated("  http2: {initialStreamWindowSize: 1000, initialConnectionWindowSize: 4Gi}\n"),
        vec![
            "HTTP2: InitialStreamWindowSize value 1k is out of range, must be between 65535 and 2147483647\nInitialConnectionWindowSize value 4Gi is out of range, must be between 65535 and 2147483647"
        ]
    );
    assert_eq!(
        translated("  requestBuffer: {limit: 5000000000}\n"),
        vec!["RequestBuffer: limit value 5G is out of range, must be between 0 and 4294967295"]
    );
    assert_eq!(
        translated("  bandwidthLimit:\n    request: {limit: {value: 1000, unit: Second}}\n"),
        vec![
            "BandwidthLimit: request: bandwidth limit of 1000 bytes per Second is below the minimum of 1 KiB/s"
        ]
    );
    assert_eq!(
        translated("  bandwidthLimit:\n    response: {limit: {value: 60000, unit: Minute}}\n"),
        vec![
            "BandwidthLimit: response: bandwidth limit of 60000 bytes per Minute is below the minimum of 1 KiB/s"
        ]
    );
}

#[test]
fn telemetry_and_response_override_errors() {
    assert_eq!(
        translated("  telemetry:\n    metrics: {routeStatName: '%ROUTE_NAME%/%FOO%'}\n"),
        vec!["Telemetry: unable to configure Route Stat Name: unsupported operators: [%FOO%]"]
    );
    assert_eq!(
        translated("  telemetry:\n    metrics: {routeStatName: '100%'}\n"),
        vec![
            "Telemetry: unable to configure Route Stat Name: unable to configure stat name with invalid operator"
        ]
    );
    let spec = spec_of(&with(
        GW,
        "  responseOverride:\n    - match: {statusCodes: [{value: 404}]}\n      response:\n        body: {type: ValueRef, valueRef: {group: '', kind: ConfigMap, name: pages}}\n",
    ));
    assert!(
        translation_errors(&spec).is_empty(),
        "no ConfigMap lookup by default"
    );
    for (state, message) in [
        (
            ConfigMapState::Missing,
            "ResponseOverride: can't find the referenced configmap ns/pages",
        ),
        (
            ConfigMapState::NoData,
            "ResponseOverride: can't find the key response.body in the referenced configmap ns/pages",
        ),
    ] {
        let lookup = move |name: &str| {
            if name == "pages" {
                state
            } else {
                ConfigMapState::HasData
            }
        };
        let ctx = TranslateContext {
            namespace: "ns",
            config_maps: Some(&lookup),
            ..TranslateContext::default()
        };
        assert_eq!(translation_errors_with(&spec, &ctx), vec![message]);
    }
}

#[test]
fn errors_the_crd_would_stop_still_have_translator_texts() {
    // Built without CRD validation, as Envoy Gateway's own translator tests do.
    let spec = decoded(&with(
        GW,
        "  circuitBreaker: {maxConnections: -1, maxPendingRequests: 5000000000}\n  timeout:\n    http: {maxConnectionDuration: 22mib, requestTimeout: 1x}\n  tcpKeepalive: {idleTime: '5'}\n  requestBuffer: {limit: 1Mi}\n  httpUpgrade: [{type: websocket}]\n",
    ));
    let errs = translation_errors(&spec);
    assert_eq!(
        errs,
        vec![
            "CircuitBreaker: invalid MaxConnections value -1",
            "TCPKeepalive: invalid IdleTime value 5",
            "Timeout: invalid MaxConnectionDuration value 22mib\ninvalid RequestTimeout value 1x",
            "RequestBuffer: requestBuffer cannot be used together with httpUpgrade",
        ]
    );
    assert_eq!(
        status_message(&errs[..1]),
        "CircuitBreaker: invalid MaxConnections value -1."
    );
}

#[test]
fn features_are_reported_in_translator_order() {
    let spec = spec_of(&with(
        GW,
        "  retry:\n    perRetry: {backOff: {baseInterval: 0s}}\n  rateLimit:\n    local:\n      rules: [{limit: {requests: 1, unit: Second}}, {limit: {requests: 1, unit: Second}}]\n  loadBalancer:\n    type: ConsistentHash\n    consistentHash: {type: SourceIP, tableSize: 4}\n  http2: {initialStreamWindowSize: 1Ki}\n",
    ));
    let errs = translation_errors(&spec);
    assert_eq!(
        status_message(&errs),
        "RateLimit: local rateLimit can not have more than one rule without clientSelectors\nLoadBalancer: ConsistentHash: invalid TableSize value 4\nRetry: baseInterval cannot be set to 0s\nHTTP2: InitialStreamWindowSize value 1Ki is out of range, must be between 65535 and 2147483647."
    );
}

#[test]
fn status_message_formatting() {
    assert_eq!(status_message(&[]), "");
    assert_eq!(
        status_message(&["already ends.".to_string()]),
        "Already ends."
    );
    assert_eq!(status_message(&["a".to_string(), "b".to_string()]), "A\nb.");
}

#[test]
fn defaults_fill_what_the_api_server_stores() {
    let mut spec = spec_of(&with(
        GW,
        "  retry: {}\n  circuitBreaker: {perEndpoint: {}}\n  healthCheck:\n    active: {type: TCP, tcp: {}}\n    passive: {}\n  loadBalancer:\n    type: ConsistentHash\n    consistentHash: {type: SourceIP}\n  rateLimit:\n    global:\n      rules:\n        - clientSelectors: [{headers: [{name: x, value: y}], path: {}, sourceCIDR: {value: 10.0.0.0/8}}]\n          limit: {requests: 1, unit: Second}\n  responseOverride:\n    - match: {statusCodes: [{value: 404}]}\n      redirect: {hostname: example.com}\n",
    ));
    apply_defaults(&mut spec);
    let once = spec.clone();
    apply_defaults(&mut spec);
    assert_eq!(spec, once, "defaulting is idempotent");
    assert_eq!(
        spec.retry.as_ref().and_then(|r| r.num_retries),
        Some(DEFAULT_NUM_RETRIES)
    );
    let cb = spec.circuit_breaker.as_ref().expect("circuitBreaker");
    assert_eq!(cb.max_connections, Some(1024));
    assert_eq!(cb.max_parallel_retries, Some(1024));
    assert_eq!(cb.max_requests_per_connection, None, "no CRD default");
    assert_eq!(
        cb.per_endpoint.as_ref().and_then(|p| p.max_connections),
        Some(1024)
    );
    let hc = spec.health_check.as_ref().expect("healthCheck");
    let active = hc.active.as_ref().expect("active");
    assert_eq!(
        (active.timeout.as_deref(), active.interval.as_deref()),
        (Some("1s"), Some("3s"))
    );
    assert_eq!(
        (active.healthy_threshold, active.unhealthy_threshold),
        (Some(1), Some(3))
    );
    let passive = hc.passive.as_ref().expect("passive");
    assert_eq!(passive.consecutive_5xx_errors, Some(5));
    assert_eq!(passive.base_ejection_time.as_deref(), Some("30s"));
    assert_eq!(passive.max_ejection_percent, Some(10));
    assert_eq!(passive.consecutive_gateway_errors, None, "no CRD default");
    let ch = spec
        .load_balancer
        .as_ref()
        .and_then(|lb| lb.consistent_hash.as_ref())
        .expect("hash");
    assert_eq!(ch.table_size, Some(DEFAULT_CONSISTENT_HASH_TABLE_SIZE));
    let rules = spec
        .rate_limit
        .as_ref()
        .and_then(|r| r.global.as_ref())
        .and_then(|g| g.rules.as_ref());
    let selector = &rules.expect("rules")[0]
        .client_selectors
        .as_ref()
        .expect("selectors")[0];
    let path = selector.path.as_ref().expect("path");
    assert_eq!(
        (path.type_.clone(), path.value.as_deref()),
        (Some(PathMatchType::PathPrefix), Some("/"))
    );
    assert_eq!(
        selector.headers.as_ref().expect("headers")[0].type_,
        Some(StringMatchKind::Exact)
    );
    assert_eq!(
        selector.source_cidr.as_ref().and_then(|c| c.type_.clone()),
        Some(SourceMatchType::Exact)
    );
    let redirect = spec
        .response_override
        .as_ref()
        .and_then(|r| r[0].redirect.as_ref())
        .expect("redirect");
    assert_eq!(redirect.status_code, Some(DEFAULT_REDIRECT_STATUS_CODE));
}

#[test]
fn type_errors_use_the_api_server_wording() {
    assert_eq!(
        at(&with(
            GW,
            "  retry: {numRetries: '2', perRetry: {timeout: 5}}\n  useClientProtocol: 'yes'\n  loadBalancer: {type: Random, slowStart: {window: 1s}}\n"
        )),
        vec![
            "spec.retry.numRetries: Invalid value: \"string\": spec.retry.numRetries in body must be of type integer: \"string\"",
            "spec.retry.perRetry.timeout: Invalid value: \"integer\": spec.retry.perRetry.timeout in body must be of type string: \"integer\"",
            "spec.useClientProtocol: Invalid value: \"string\": spec.useClientProtocol in body must be of type boolean: \"string\"",
            NOT_CHECKED,
        ]
    );
    assert_eq!(
        at(&with(
            GW,
            "  connection: {bufferLimit: 1.5}\n  retry:\n    retryOn: {triggers: [5xx, {a: b}]}\n  circuitBreaker: {maxConnections: -1}\n"
        )),
        vec![
            "spec.connection.bufferLimit: Invalid value: \"number\": spec.connection.bufferLimit in body must be of type integer,string: \"number\"",
            "spec.retry.retryOn.triggers[1]: Invalid value: \"object\": spec.retry.retryOn.triggers[1] in body must be of type string: \"object\"",
            "spec.circuitBreaker.maxConnections: Invalid value: -1: spec.circuitBreaker.maxConnections in body should be greater than or equal to 0",
            NOT_CHECKED,
        ]
    );
    // Unknown fields are rejected while decoding, before any other check.
    assert_eq!(
        at(&with(GW, "  retry: {numRetries: '2', retryOnn: {}}\n")),
        vec![
            "spec.retry.retryOnn: unknown field `retryOnn`, expected one of `numRetries`, `numAttemptsPerPriority`, `retryOn`, `perRetry`"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Go regexp syntax

fn go_err(pattern: &str) -> String {
    match validate_go_regex(pattern) {
        Ok(()) => format!("accepted {pattern:?}"),
        Err(e) => e,
    }
}

#[test]
fn accepts_what_go_accepts() {
    for ok in [
        "",
        "abc",
        "^/api(/.*)?$",
        "a*?",
        "x{2,5}",
        "x{2,}",
        "{",
        "a{",
        "a{,5}",
        "a{01}",
        "(?i)abc",
        "(?i:a|b)",
        "(?P<name>x)",
        "(?<name>x)",
        "[a-z0-9_-]+",
        "[]a]",
        "[^]]",
        r"\d+\.\w*",
        r"\Qa.b\E*",
        r"\p{Greek}+",
        r"\pL",
        r"[\p{Lu}\d]",
        "[[:alpha:]]",
        r"\x41\x{1F600}\101",
        "^*",
        "(?s).",
        r"\bword\b",
        "(a)(b)",
        "a||b",
        "(|a)",
        "(?)",
        "x{1000}",
        "(a{10}){100}",
        "x{0}",
    ] {
        assert_eq!(validate_go_regex(ok), Ok(()), "{ok:?}");
    }
}

#[test]
fn rejects_with_go_messages() {
    let cases = [
        (
            "*.illegal.regex",
            "missing argument to repetition operator: `*`",
        ),
        ("+a", "missing argument to repetition operator: `+`"),
        ("a|*", "missing argument to repetition operator: `*`"),
        ("(*)", "missing argument to repetition operator: `*`"),
        ("(?i)*", "missing argument to repetition operator: `*`"),
        ("a**", "invalid nested repetition operator: `**`"),
        ("a*?+", "invalid nested repetition operator: `*?+`"),
        ("a{2}*", "invalid nested repetition operator: `{2}*`"),
        ("a{1001}", "invalid repeat count: `{1001}`"),
        ("a{5,2}", "invalid repeat count: `{5,2}`"),
        ("(a{100}){100}", "invalid repeat count: `{100}`"),
        ("a(b", "missing closing ): `a(b`"),
        ("a)b", "unexpected ): `a)b`"),
        ("[a-", "missing closing ]: `[a-`"),
        ("x[abc", "missing closing ]: `[abc`"),
        ("[z-a]", "invalid character class range: `z-a`"),
        ("[[:foo:]]", "invalid character class range: `[:foo:]`"),
        (r"\p{Foo}", r"invalid character class range: `\p{Foo}`"),
        (r"\p{Greek", r"invalid character class range: `\p{Greek`"),
        (r"\q", r"invalid escape sequence: `\q`"),
        (r"\1", r"invalid escape sequence: `\1`"),
        (r"\C", r"invalid escape sequence: `\C`"),
        (r"\xZZ", r"invalid escape sequence: `\xZZ`"),
        (r"\x{}", r"invalid escape sequence: `\x{}`"),
        (r"[\q]", r"invalid escape sequence: `\q`"),
        ("ab\\", "trailing backslash at end of expression: ``"),
        ("(?P<>x)", "invalid named capture: `(?P<>`"),
        ("(?P<a-b>x)", "invalid named capture: `(?P<a-b>`"),
        ("(?P<name", "invalid named capture: `(?P<name`"),
        ("(?x)", "invalid or unsupported Perl syntax: `(?x`"),
        ("(?-)", "invalid or unsupported Perl syntax: `(?-)`"),
        ("(?P=n)", "invalid or unsupported Perl syntax: `(?P`"),
        ("(?!a)", "invalid or unsupported Perl syntax: `(?!`"),
    ];
    for (pattern, message) in cases {
        assert_eq!(
            go_err(pattern),
            format!("error parsing regexp: {message}"),
            "{pattern:?}"
        );
    }
}
