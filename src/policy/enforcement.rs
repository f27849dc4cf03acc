//! Which policy fields the embedded proxy enforces, so that everything else is reported to the
//! user as not enforced instead of being dropped silently.

use serde_json::Value;

/// Field paths (and everything below them) the embedded proxy enforces with Envoy's semantics.
const ENFORCED: &[&str] = &[
    "circuitBreaker",
    "retry.numRetries",
    "retry.retryOn",
    "retry.perRetry",
    "timeout.tcp.connectTimeout",
    "timeout.http.connectionIdleTimeout",
    "timeout.http.maxConnectionDuration",
    "timeout.http.requestTimeout",
    "timeout.http.maxStreamDuration",
    "timeout.http.streamIdleTimeout",
    "healthCheck.panicThreshold",
    "healthCheck.passive",
    "healthCheck.active.type",
    "healthCheck.active.timeout",
    "healthCheck.active.interval",
    "healthCheck.active.initialJitter",
    "healthCheck.active.unhealthyThreshold",
    "healthCheck.active.healthyThreshold",
    "healthCheck.active.http",
    "healthCheck.active.tcp",
    "healthCheck.active.grpc",
    "loadBalancer.type",
    "loadBalancer.consistentHash",
    "loadBalancer.slowStart",
    "rateLimit.local",
    "rateLimit.global",
    "faultInjection",
    "requestBuffer",
    "tcpKeepalive",
    "responseOverride",
    "useClientProtocol",
];

/// Load balancer types the proxy has; the others fall back to Envoy Gateway's LeastRequest.
const ENFORCED_LB_TYPES: &[&str] = &["RoundRobin", "LeastRequest", "Random", "ConsistentHash"];

/// The set fields of an effective spec that the embedded proxy does not enforce, as dotted
/// paths of the largest unenforced subtrees (`compressor`, `http2.initialStreamWindowSize`).
pub fn not_enforced(effective: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Value::Object(map) = effective {
        for (key, value) in map {
            walk(key, value, &mut out);
        }
    }
    if let Some(kind) = effective
        .pointer("/loadBalancer/type")
        .and_then(Value::as_str)
        && !ENFORCED_LB_TYPES.contains(&kind)
    {
        out.push(format!("loadBalancer.type={kind}"));
    }
    out
}

fn walk(path: &str, value: &Value, out: &mut Vec<String>) {
    if ENFORCED
        .iter()
        .any(|e| path == *e || path.starts_with(&format!("{e}.")))
    {
        return;
    }
    let has_enforced_below = ENFORCED.iter().any(|e| e.starts_with(&format!("{path}.")));
    match value {
        Value::Object(map) if has_enforced_below => {
            for (key, child) in map {
                walk(&format!("{path}.{key}"), child, out);
            }
        }
        _ => out.push(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reports_largest_unenforced_subtrees() {
        let effective = json!({
            "circuitBreaker": {"maxConnections": 10},
            "compressor": [{"type": "Gzip"}],
            "http2": {"initialStreamWindowSize": "64Ki"},
            "timeout": {"tcp": {"connectTimeout": "1s"}, "http": {"requestTimeout": "2s"}},
            "loadBalancer": {"type": "RoundRobin", "zoneAware": {"preferLocal": {}}},
            "retry": {"numRetries": 3, "numAttemptsPerPriority": 2}
        });
        assert_eq!(
            not_enforced(&effective),
            [
                "compressor",
                "http2",
                "loadBalancer.zoneAware",
                "retry.numAttemptsPerPriority"
            ]
        );
    }
}
