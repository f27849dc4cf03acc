//! The CRD's `default:` values, filled in the way the API server does before it stores a
//! policy: a default applies when its parent object is present and the field is absent.
//!
//! Envoy Gateway only ever sees stored (defaulted) policies, so merges (`mergeType`) and
//! effective settings work on these values. Envoy Gateway's own translator tests feed
//! policies without this step; callers choose.

use super::types::*;

/// CRD default of the circuit-breaker thresholds (and `perEndpoint.maxConnections`).
pub const DEFAULT_CIRCUIT_BREAKER_THRESHOLD: i64 = 1024;
/// CRD default of a Gateway API fraction's denominator.
pub const DEFAULT_FRACTION_DENOMINATOR: i64 = 100;
/// CRD default of `loadBalancer.consistentHash.tableSize`.
pub const DEFAULT_CONSISTENT_HASH_TABLE_SIZE: i64 = 65_537;
/// CRD default of `retry.numRetries`.
pub const DEFAULT_NUM_RETRIES: i64 = 2;
/// CRD default of fault-injection percentages.
pub const DEFAULT_FAULT_PERCENTAGE: f64 = 100.0;
/// CRD default of `responseOverride[].redirect.statusCode`.
pub const DEFAULT_REDIRECT_STATUS_CODE: i64 = 302;

fn set<T>(field: &mut Option<T>, value: T) {
    if field.is_none() {
        *field = Some(value);
    }
}

fn fraction(f: &mut Fraction) {
    set(&mut f.denominator, DEFAULT_FRACTION_DENOMINATOR);
}

/// Fills every CRD default into `spec`, as the API server does on create and update.
pub fn apply_defaults(spec: &mut BackendTrafficPolicySpec) {
    for selector in spec.target_selectors.iter_mut().flatten() {
        set(&mut selector.group, "gateway.networking.k8s.io".to_string());
        if let Some(ns) = &mut selector.namespaces {
            set(&mut ns.from, FromNamespaces::Same);
        }
    }
    if let Some(cb) = &mut spec.circuit_breaker {
        for field in [
            &mut cb.max_connections,
            &mut cb.max_parallel_requests,
            &mut cb.max_parallel_retries,
            &mut cb.max_pending_requests,
        ] {
            set(field, DEFAULT_CIRCUIT_BREAKER_THRESHOLD);
        }
        if let Some(pe) = &mut cb.per_endpoint {
            set(&mut pe.max_connections, DEFAULT_CIRCUIT_BREAKER_THRESHOLD);
        }
        if let Some(percent) = cb.retry_budget.as_mut().and_then(|rb| rb.percent.as_mut()) {
            fraction(percent);
        }
    }
    if let Some(fi) = &mut spec.fault_injection {
        if let Some(abort) = &mut fi.abort {
            set(&mut abort.percentage, DEFAULT_FAULT_PERCENTAGE);
        }
        if let Some(delay) = &mut fi.delay {
            set(&mut delay.percentage, DEFAULT_FAULT_PERCENTAGE);
        }
    }
    if let Some(hc) = &mut spec.health_check {
        if let Some(a) = &mut hc.active {
            set(&mut a.healthy_threshold, 1);
            set(&mut a.unhealthy_threshold, 3);
            set(&mut a.interval, "3s".to_string());
            set(&mut a.timeout, "1s".to_string());
        }
        if let Some(p) = &mut hc.passive {
            set(&mut p.always_eject_one_endpoint, false);
            set(&mut p.base_ejection_time, "30s".to_string());
            set(&mut p.consecutive_5xx_errors, 5);
            set(&mut p.consecutive_local_origin_failures, 5);
            set(&mut p.interval, "3s".to_string());
            set(&mut p.max_ejection_percent, 10);
            set(&mut p.split_external_local_origin_errors, false);
        }
    }
    if let Some(lb) = &mut spec.load_balancer {
        if let Some(bu) = &mut lb.backend_utilization {
            set(&mut bu.keep_response_headers, false);
        }
        if let Some(ch) = &mut lb.consistent_hash {
            set(&mut ch.table_size, DEFAULT_CONSISTENT_HASH_TABLE_SIZE);
        }
    }
    if let Some(rl) = &mut spec.rate_limit {
        let local = rl.local.as_mut().and_then(|l| l.rules.as_mut());
        let global = rl.global.as_mut().and_then(|g| g.rules.as_mut());
        for rule in local.into_iter().chain(global).flatten() {
            for selector in rule.client_selectors.iter_mut().flatten() {
                client_selector(selector);
            }
        }
    }
    for ro in spec.response_override.iter_mut().flatten() {
        response_override(ro);
    }
    if let Some(r) = &mut spec.retry {
        set(&mut r.num_retries, DEFAULT_NUM_RETRIES);
    }
    if let Some(tr) = spec.telemetry.as_mut().and_then(|t| t.tracing.as_mut()) {
        for f in [
            &mut tr.client_sampling_fraction,
            &mut tr.overall_sampling_fraction,
            &mut tr.sampling_fraction,
        ]
        .into_iter()
        .flatten()
        {
            fraction(f);
        }
        for tag in tr.custom_tags.iter_mut().flat_map(|t| t.values_mut()) {
            set(&mut tag.type_, CustomTagType::Literal);
        }
    }
}

fn client_selector(c: &mut RateLimitSelectCondition) {
    for h in c.headers.iter_mut().flatten() {
        set(&mut h.invert, false);
        set(&mut h.type_, StringMatchKind::Exact);
    }
    for m in c.methods.iter_mut().flatten() {
        set(&mut m.invert, false);
    }
    if let Some(p) = &mut c.path {
        set(&mut p.invert, false);
        set(&mut p.type_, PathMatchType::PathPrefix);
        set(&mut p.value, "/".to_string());
    }
    for q in c.query_params.iter_mut().flatten() {
        set(&mut q.invert, false);
        set(&mut q.type_, StringMatchKind::Exact);
    }
    if let Some(s) = &mut c.source_cidr {
        set(&mut s.invert, false);
        set(&mut s.type_, SourceMatchType::Exact);
    }
}

fn response_override(ro: &mut ResponseOverride) {
    if let Some(m) = &mut ro.match_ {
        for h in m.response_headers.iter_mut().flatten() {
            if let Some(v) = &mut h.value {
                set(&mut v.type_, StringMatchType::Exact);
            }
        }
        for c in m.status_codes.iter_mut().flatten() {
            set(&mut c.type_, StatusCodeValueType::Value);
        }
    }
    if let Some(r) = &mut ro.redirect {
        set(&mut r.status_code, DEFAULT_REDIRECT_STATUS_CODE);
    }
    if let Some(b) = ro.response.as_mut().and_then(|r| r.body.as_mut()) {
        set(&mut b.type_, ResponseValueType::Inline);
    }
}
