//! Cluster settings from a policy: circuit breakers, connection timeouts, load balancing,
//! outlier detection, active health checks and upstream keepalive, with Envoy Gateway's defaults.

use std::num::NonZeroU32;
use std::time::Duration;

use super::{EndpointSource, rule_endpoints};
use crate::policy::btp::{
    ActiveHealthCheck, ActiveHealthCheckPayload, BackendTrafficPolicySpec, CircuitBreaker, CrdEnum,
    HealthCheck, LoadBalancer, PassiveHealthCheck,
};
use crate::policy::topology::RuleNode;
use crate::proxy::config::{
    CircuitBreakerThresholds, ClusterConfig, FailurePercentage, LbPolicy, OutlierDetectionConfig,
    Percent, RetryBudget, SlowStart, TcpKeepalive,
};
use crate::proxy::health_check::{CheckKind, GrpcCheckConfig, HealthCheckConfig, TcpCheckConfig};
use crate::scenario::duration::parse_duration;

/// Envoy Gateway's default Maglev table size.
const DEFAULT_TABLE_SIZE: u64 = 65537;

/// The cluster for one route rule.
pub(super) fn build(
    name: &str,
    rule: &RuleNode,
    route_namespace: &str,
    spec: &BackendTrafficPolicySpec,
    endpoints: &dyn EndpointSource,
) -> Result<ClusterConfig, String> {
    let mut cluster = ClusterConfig::new(name, rule_endpoints(rule, route_namespace, endpoints));
    if let Some(cb) = &spec.circuit_breaker {
        apply_circuit_breaker(&mut cluster, cb)?;
    }
    if let Some(timeout) = &spec.timeout {
        if let Some(d) = timeout
            .tcp
            .as_ref()
            .and_then(|t| t.connect_timeout.as_deref())
        {
            cluster.connect_timeout = duration(d)?;
        }
        if let Some(http) = &timeout.http {
            if let Some(d) = &http.connection_idle_timeout {
                cluster.idle_timeout = nonzero(duration(d)?);
            }
            if let Some(d) = &http.max_connection_duration {
                cluster.max_connection_duration = nonzero(duration(d)?);
            }
        }
    }
    if let Some(lb) = &spec.load_balancer {
        apply_load_balancer(&mut cluster, lb)?;
    }
    if let Some(hc) = &spec.health_check {
        apply_health_check(&mut cluster, hc)?;
    }
    if let Some(keepalive) = &spec.tcp_keepalive {
        cluster.tcp_keepalive = Some(TcpKeepalive {
            probes: keepalive.probes.map(|p| p as u32),
            idle: keepalive.idle_time.as_deref().map(duration).transpose()?,
            interval: keepalive.interval.as_deref().map(duration).transpose()?,
        });
    }
    Ok(cluster)
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

/// Envoy reads a zero timeout as "disabled".
fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

fn threshold(value: Option<i64>, default: u32) -> u32 {
    value.map_or(default, |v| u32::try_from(v).unwrap_or(u32::MAX))
}

fn apply_circuit_breaker(cluster: &mut ClusterConfig, cb: &CircuitBreaker) -> Result<(), String> {
    let defaults = CircuitBreakerThresholds::default();
    let budget = match &cb.retry_budget {
        Some(b) => {
            let percent = b.percent.as_ref().map_or(20.0, |f| {
                let denominator = f.denominator.unwrap_or(100).max(1) as f64;
                f.numerator.unwrap_or(0) as f64 / denominator * 100.0
            });
            let min = b
                .min_retry_concurrency
                .map(|m| u32::try_from(m).unwrap_or(u32::MAX));
            Some(RetryBudget::try_new(percent, min).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    cluster.circuit_breaker = CircuitBreakerThresholds {
        max_connections: threshold(cb.max_connections, defaults.max_connections),
        max_pending_requests: threshold(cb.max_pending_requests, defaults.max_pending_requests),
        max_requests: threshold(cb.max_parallel_requests, defaults.max_requests),
        max_retries: threshold(cb.max_parallel_retries, defaults.max_retries),
        per_host_max_connections: threshold(
            cb.per_endpoint.as_ref().and_then(|p| p.max_connections),
            defaults.per_host_max_connections,
        ),
        retry_budget: budget,
    };
    if let Some(n) = cb.max_requests_per_connection {
        // Envoy reads 0 as "no limit".
        cluster.max_requests_per_connection = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX));
    }
    Ok(())
}

fn apply_load_balancer(cluster: &mut ClusterConfig, lb: &LoadBalancer) -> Result<(), String> {
    let kind = lb
        .type_
        .as_ref()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    cluster.lb = match kind.as_str() {
        "RoundRobin" => LbPolicy::RoundRobin,
        "Random" => LbPolicy::Random,
        "ConsistentHash" => LbPolicy::ConsistentHash {
            table_size: lb
                .consistent_hash
                .as_ref()
                .and_then(|c| c.table_size)
                .map_or(DEFAULT_TABLE_SIZE, |t| t as u64),
        },
        // LeastRequest, and the types the proxy does not implement (BackendUtilization and
        // DynamicModule are reported as not enforced), keep Envoy Gateway's default.
        _ => LbPolicy::LeastRequest { choice_count: 2 },
    };
    if let Some(window) = lb.slow_start.as_ref().and_then(|s| s.window.as_deref()) {
        cluster.slow_start =
            Some(SlowStart::try_new(duration(window)?).map_err(|e| e.to_string())?);
    }
    Ok(())
}

fn apply_health_check(cluster: &mut ClusterConfig, hc: &HealthCheck) -> Result<(), String> {
    if let Some(threshold) = hc.panic_threshold {
        cluster.panic_threshold = Percent::try_new(threshold as u32, "healthCheck.panicThreshold")
            .map_err(|e| e.to_string())?;
    }
    if let Some(passive) = &hc.passive {
        cluster.outlier_detection = Some(outlier(passive)?);
    }
    if let Some(active) = &hc.active {
        cluster.health_check = active_check(active, &cluster.name)?;
    }
    Ok(())
}

fn outlier(p: &PassiveHealthCheck) -> Result<OutlierDetectionConfig, String> {
    let mut o = OutlierDetectionConfig::default();
    if let Some(d) = &p.interval {
        o.interval = duration(d)?;
    }
    if let Some(n) = p.consecutive_5xx_errors {
        o.consecutive_5xx = NonZeroU32::new(n as u32);
    }
    if let Some(n) = p.consecutive_gateway_errors {
        // Envoy Gateway turns enforcement on only when the threshold is set.
        o.consecutive_gateway_failure = NonZeroU32::new(n as u32);
        o.enforcing_consecutive_gateway_failure = Percent::HUNDRED;
    }
    if let Some(n) = p.consecutive_local_origin_failures {
        o.consecutive_local_origin_failure = NonZeroU32::new(n as u32);
    }
    o.split_external_local_origin_errors = p.split_external_local_origin_errors.unwrap_or(false);
    if let Some(d) = &p.base_ejection_time {
        o.base_ejection_time = duration(d)?;
    }
    // maxEjectionPercent 0 is not emitted, so Envoy's 10% applies.
    if let Some(percent) = p.max_ejection_percent.filter(|p| *p > 0) {
        o.max_ejection_percent =
            Percent::try_new(percent as u32, "healthCheck.passive.maxEjectionPercent")
                .map_err(|e| e.to_string())?;
    }
    if let Some(threshold) = p.failure_percentage_threshold {
        let threshold = Percent::try_new(
            threshold as u32,
            "healthCheck.passive.failurePercentageThreshold",
        )
        .map_err(|e| e.to_string())?;
        o.failure_percentage = Some(FailurePercentage::with_threshold(threshold));
    }
    o.always_eject_one_host = p.always_eject_one_endpoint.unwrap_or(false);
    o.validate().map_err(|e| e.to_string())?;
    Ok(o)
}

/// An active check (HTTP, TCP or gRPC).
fn active_check(a: &ActiveHealthCheck, cluster: &str) -> Result<Option<HealthCheckConfig>, String> {
    let kind = a
        .type_
        .as_ref()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    let mut config = match kind.as_str() {
        "HTTP" => {
            let Some(http) = &a.http else { return Ok(None) };
            let path = http.path.clone().unwrap_or_else(|| "/".to_string());
            // Host header: the configured hostname, else the cluster's name stands in for the
            // route hostname Envoy Gateway would use.
            let host = http.hostname.clone().unwrap_or_else(|| cluster.to_string());
            let mut config = HealthCheckConfig::http(&path, &host);
            if let CheckKind::Http(h) = &mut config.kind {
                if let Some(method) = &http.method {
                    h.method = method
                        .to_ascii_uppercase()
                        .parse()
                        .map_err(|_| format!("invalid health check method {method}"))?;
                }
                if let Some(codes) = &http.expected_statuses {
                    h.expected_statuses = codes.iter().map(|c| *c as u16).collect();
                }
                if let Some(codes) = &http.retriable_statuses {
                    h.retriable_statuses = codes.iter().map(|c| *c as u16).collect();
                }
                h.expected_body = http.expected_response.as_ref().map(payload).transpose()?;
                h.request_body = http.request_body.as_ref().map(payload).transpose()?;
            }
            config
        }
        "TCP" => {
            let Some(tcp) = &a.tcp else { return Ok(None) };
            HealthCheckConfig::tcp(TcpCheckConfig {
                send: tcp.send.as_ref().map(payload).transpose()?,
                receive: tcp
                    .receive
                    .as_ref()
                    .map(payload)
                    .transpose()?
                    .into_iter()
                    .collect(),
            })
        }
        "GRPC" => HealthCheckConfig::grpc(GrpcCheckConfig {
            service: a.grpc.as_ref().and_then(|g| g.service.clone()),
            authority: grpc_authority(cluster),
        }),
        _ => return Ok(None),
    };
    if let Some(d) = &a.timeout {
        config.timeout = duration(d)?;
    }
    if let Some(d) = &a.interval {
        config.interval = duration(d)?;
    }
    if let Some(d) = &a.initial_jitter {
        config.initial_jitter = duration(d)?;
    }
    if let Some(n) = a.unhealthy_threshold {
        config.unhealthy_threshold = n as u32;
    }
    if let Some(n) = a.healthy_threshold {
        config.healthy_threshold = n as u32;
    }
    Ok(Some(config))
}

/// The `:authority` of gRPC checks. Envoy Gateway sets no authority, so Envoy sends the cluster
/// name; its `/` separators cannot go into an authority here (the `http` crate refuses them), so
/// they become dots (`grpcroute.default.rpc.rule.0`).
fn grpc_authority(cluster: &str) -> String {
    cluster.replace('/', ".")
}

/// A Text or Binary (base64) payload as bytes.
fn payload(p: &ActiveHealthCheckPayload) -> Result<Vec<u8>, String> {
    if let Some(text) = &p.text {
        return Ok(text.as_bytes().to_vec());
    }
    match &p.binary {
        Some(b64) => base64_decode(b64).ok_or_else(|| format!("invalid base64 payload {b64:?}")),
        None => Ok(Vec::new()),
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET.iter().position(|a| *a == byte)? as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_checks_send_the_cluster_name_as_authority() {
        let authority = grpc_authority("grpcroute/default/rpc/rule/0");
        assert_eq!(authority, "grpcroute.default.rpc.rule.0");
        assert!(http::uri::Authority::try_from(authority.as_str()).is_ok());
    }

    #[test]
    fn decodes_base64_payloads() {
        assert_eq!(base64_decode("cGluZw==").unwrap(), b"ping");
        assert_eq!(base64_decode("AAEC").unwrap(), [0, 1, 2]);
        assert!(base64_decode("**").is_none());
    }
}
