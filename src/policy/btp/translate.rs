//! What Envoy Gateway's translator rejects in a policy the CRD accepted, with its wording.
//!
//! The translator builds the features in a fixed order and prefixes each failure with the
//! feature's name (`"Retry: baseInterval cannot be set to 0s"`); the errors are joined with
//! newlines into the `Accepted=False, reason=Invalid` status message. A failed policy turns the
//! HTTP routes it covers into direct 500 responses.

use std::net::IpAddr;

use super::goregexp::validate_go_regex;
use super::schema::go_quote;
use super::types::*;
use super::values::{CrdEnum, Quantity};

/// Largest Maglev table size Envoy Gateway accepts.
const MAX_CONSISTENT_HASH_TABLE_SIZE: i64 = 5_000_011;
const MAX_U32: i128 = 4_294_967_295;
const HTTP2_WINDOW_MIN: i128 = 65_535;
const HTTP2_WINDOW_MAX: i128 = 2_147_483_647;

/// What a ConfigMap referenced by a response override holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigMapState {
    /// No such ConfigMap in the policy's namespace.
    Missing,
    /// The ConfigMap has neither `data` nor `binaryData`.
    NoData,
    /// The ConfigMap has a body to serve.
    HasData,
}

/// Translator settings and lookups outside the policy itself.
#[derive(Clone, Copy)]
pub struct TranslateContext<'a> {
    /// Global rate limiting enabled in the EnvoyGateway configuration.
    pub global_rate_limit_enabled: bool,
    /// The policy's namespace (named in ConfigMap errors).
    pub namespace: &'a str,
    /// ConfigMap lookup by name in the policy's namespace; None skips those checks.
    pub config_maps: Option<&'a dyn Fn(&str) -> ConfigMapState>,
}

impl Default for TranslateContext<'_> {
    /// Global rate limiting on (as in Envoy Gateway's translator tests), no ConfigMap checks.
    fn default() -> Self {
        TranslateContext {
            global_rate_limit_enabled: true,
            namespace: "",
            config_maps: None,
        }
    }
}

/// The translator errors for `spec`, each `"<Feature>: <error>"`, in the translator's order.
pub fn translation_errors(spec: &BackendTrafficPolicySpec) -> Vec<String> {
    translation_errors_with(spec, &TranslateContext::default())
}

/// [`translation_errors`] with explicit translator settings.
pub fn translation_errors_with(
    spec: &BackendTrafficPolicySpec,
    ctx: &TranslateContext<'_>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut add = |feature: &str, result: Result<(), String>| {
        if let Err(e) = result {
            errors.push(format!("{feature}: {e}"));
        }
    };
    if let Some(rl) = &spec.rate_limit {
        add("RateLimit", rate_limit(rl, ctx));
    }
    if let Some(bl) = &spec.bandwidth_limit {
        add("BandwidthLimit", bandwidth_limit(bl));
    }
    if let Some(lb) = &spec.load_balancer {
        add("LoadBalancer", load_balancer(lb));
    }
    if let Some(cb) = &spec.circuit_breaker {
        add("CircuitBreaker", circuit_breaker(cb));
    }
    if let Some(ka) = &spec.tcp_keepalive {
        add("TCPKeepalive", tcp_keepalive(ka));
    }
    if let Some(r) = &spec.retry {
        add("Retry", retry(r));
    }
    if let Some(t) = &spec.timeout {
        add("Timeout", timeout(t));
    }
    if let Some(c) = &spec.connection {
        add("BackendConnection", backend_connection(c));
    }
    if let Some(h2) = &spec.http2 {
        add("HTTP2", http2(h2));
    }
    if let Some(ro) = &spec.response_override {
        add("ResponseOverride", response_override(ro, ctx));
    }
    let mut request_buffer_ok = false;
    if let Some(rb) = &spec.request_buffer {
        let result = request_buffer(rb);
        request_buffer_ok = result.is_ok();
        add("RequestBuffer", result);
    }
    if let Some(t) = &spec.telemetry {
        add("Telemetry", telemetry(t));
    }
    if request_buffer_ok && spec.http_upgrade.as_ref().is_some_and(|u| !u.is_empty()) {
        add(
            "RequestBuffer",
            Err("requestBuffer cannot be used together with httpUpgrade".to_string()),
        );
    }
    errors
}

/// The status condition message for translator errors: joined with newlines, first letter
/// upper-cased, a final "." added when missing (Envoy Gateway's `Error2ConditionMsg`).
pub fn status_message(errors: &[String]) -> String {
    let message = errors.join("\n");
    let mut chars = message.chars();
    let Some(first) = chars.next() else {
        return message;
    };
    let mut out: String = if first.is_alphabetic() {
        first.to_uppercase().chain(chars).collect()
    } else {
        message.clone()
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Rate limits

fn rate_limit(rl: &RateLimitSpec, ctx: &TranslateContext<'_>) -> Result<(), String> {
    match &rl.type_ {
        Some(RateLimitType::Global) => global_rate_limit(rl, ctx),
        Some(RateLimitType::Local) => local_rate_limit(rl),
        Some(RateLimitType::Unknown(other)) => Err(format!("invalid rateLimit type: {other}")),
        None => {
            if rl.local.is_some() {
                local_rate_limit(rl)?;
            }
            if rl.global.is_some() {
                global_rate_limit(rl, ctx)?;
            }
            Ok(())
        }
    }
}

/// Seconds in a rate-limit unit (0 for an unknown unit).
fn unit_seconds(unit: Option<&RateLimitUnit>) -> i64 {
    match unit {
        Some(RateLimitUnit::Second) => 1,
        Some(RateLimitUnit::Minute) => 60,
        Some(RateLimitUnit::Hour) => 3_600,
        Some(RateLimitUnit::Day) => 86_400,
        Some(RateLimitUnit::Week) => 604_800,
        Some(RateLimitUnit::Month) => 2_592_000,
        Some(RateLimitUnit::Year) => 31_536_000,
        Some(RateLimitUnit::Unknown(_)) | None => 0,
    }
}

fn has_selectors(rule: &RateLimitRule) -> bool {
    rule.client_selectors
        .as_ref()
        .is_some_and(|s| !s.is_empty())
}

fn local_rate_limit(rl: &RateLimitSpec) -> Result<(), String> {
    let Some(local) = &rl.local else {
        return Err("local configuration empty for rateLimit".to_string());
    };
    let rules = local.rules.as_deref().unwrap_or(&[]);
    // The first rule without selectors is the route's default bucket; a second is an error.
    let mut default_unit = None;
    for rule in rules.iter().filter(|r| !has_selectors(r)) {
        if default_unit.is_some() {
            return Err(
                "local rateLimit can not have more than one rule without clientSelectors"
                    .to_string(),
            );
        }
        default_unit = Some(unit_seconds(
            rule.limit.as_ref().and_then(|l| l.unit.as_ref()),
        ));
    }
    let default_unit = default_unit.unwrap_or(1);
    for rule in rules {
        let unit = unit_seconds(rule.limit.as_ref().and_then(|l| l.unit.as_ref()));
        if default_unit == 0 || unit % default_unit != 0 {
            return Err(
                "local rateLimit rule limit unit must be a multiple of the default limit unit"
                    .to_string(),
            );
        }
    }
    for rule in rules.iter().filter(|r| has_selectors(r)) {
        rate_limit_rule(rule)?;
    }
    Ok(())
}

fn global_rate_limit(rl: &RateLimitSpec, ctx: &TranslateContext<'_>) -> Result<(), String> {
    let Some(global) = &rl.global else {
        return Err("global configuration empty for rateLimit".to_string());
    };
    if !ctx.global_rate_limit_enabled {
        return Err(
            "enable Ratelimit in the EnvoyGateway config to configure global rateLimit".to_string(),
        );
    }
    for rule in global.rules.iter().flatten() {
        rate_limit_rule(rule)?;
    }
    Ok(())
}

/// Go's `regex.Validate`: `regex "<re>" is invalid: <regexp error>`.
fn check_regex(pattern: &str) -> Result<(), String> {
    validate_go_regex(pattern).map_err(|e| format!("regex {} is invalid: {e}", go_quote(pattern)))
}

fn rate_limit_rule(rule: &RateLimitRule) -> Result<(), String> {
    for selector in rule.client_selectors.iter().flatten() {
        let none = |len: Option<usize>| len.is_none_or(|n| n == 0);
        if none(selector.headers.as_ref().map(Vec::len))
            && none(selector.methods.as_ref().map(Vec::len))
            && selector.path.is_none()
            && selector.source_cidr.is_none()
            && none(selector.query_params.as_ref().map(Vec::len))
        {
            return Err("unable to translate rateLimit. At least one of the header or method or path or sourceCIDR or queryParameters must be specified".to_string());
        }
        for header in selector.headers.iter().flatten() {
            let kind = header.type_.clone().unwrap_or(StringMatchKind::Exact);
            match (&kind, &header.value) {
                (StringMatchKind::Exact, Some(_)) => {}
                (StringMatchKind::RegularExpression, Some(v)) => check_regex(v)?,
                (StringMatchKind::Distinct, None) => {
                    if header.invert == Some(true) {
                        return Err("unable to translate rateLimit.Invert is not applicable for distinct header match type".to_string());
                    }
                }
                _ => {
                    return Err("unable to translate rateLimit. Either the header.Type is not valid or the header is missing a value".to_string());
                }
            }
        }
        if let Some(path) = &selector.path {
            let value = path.value.as_deref().unwrap_or("/");
            match path.type_.clone().unwrap_or(PathMatchType::PathPrefix) {
                PathMatchType::PathPrefix | PathMatchType::Exact => {}
                PathMatchType::RegularExpression => check_regex(value)?,
                PathMatchType::Unknown(_) => {
                    return Err("unable to translate rateLimit: invalid path type.".to_string());
                }
            }
        }
        if let Some(cidr) = &selector.source_cidr {
            parse_cidr(cidr.value.as_deref().unwrap_or(""))
                .map_err(|e| format!("unable to translate rateLimit: {e}"))?;
        }
        for param in selector.query_params.iter().flatten() {
            if param.name.as_deref().unwrap_or("").is_empty() {
                return Err("name is required when QueryParamMatch is specified".to_string());
            }
            let value = param.value.as_deref();
            match param.type_.clone().unwrap_or(StringMatchKind::Exact) {
                StringMatchKind::Exact => {
                    if value.is_none_or(str::is_empty) {
                        return Err("value is required for Exact query parameter match".to_string());
                    }
                }
                StringMatchKind::RegularExpression => {
                    let Some(v) = value.filter(|v| !v.is_empty()) else {
                        return Err(
                            "value is required for RegularExpression query parameter match"
                                .to_string(),
                        );
                    };
                    check_regex(v)?;
                }
                StringMatchKind::Distinct => {
                    if param.invert == Some(true) {
                        return Err("unable to translate rateLimit.Invert is not applicable for distinct query parameter match type".to_string());
                    }
                    if value.is_some() {
                        return Err("unable to translate rateLimit.Value is not applicable for distinct query parameter match type".to_string());
                    }
                }
                StringMatchKind::Unknown(other) => {
                    return Err(format!("invalid query parameter match type: {other}"));
                }
            }
        }
    }
    Ok(())
}

/// Go's `net.ParseCIDR` acceptance, with its error text.
fn parse_cidr(text: &str) -> Result<(), String> {
    let invalid = || format!("invalid CIDR address: {text}");
    let (addr, mask) = text.split_once('/').ok_or_else(invalid)?;
    let ip: IpAddr = addr.parse().map_err(|_| invalid())?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    if mask.is_empty() || !mask.bytes().all(|b| b.is_ascii_digit()) || mask.len() > 8 {
        return Err(invalid());
    }
    let n: u32 = mask.parse().map_err(|_| invalid())?;
    if n > bits {
        return Err(invalid());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bandwidth, load balancing, circuit breaking

fn bandwidth_limit(bl: &BandwidthLimitSpec) -> Result<(), String> {
    let request = bl.request.as_ref().map(|r| ("request", r.limit.as_ref()));
    let response = bl.response.as_ref().map(|r| ("response", r.limit.as_ref()));
    for (direction, limit) in [request, response].into_iter().flatten() {
        let value = limit.and_then(|l| l.value.as_ref());
        let bytes = match value {
            Some(q) => q.as_i64().ok_or_else(|| {
                format!("{direction} limit value must be convertible to an int64")
            })?,
            None => 0,
        };
        if bytes < 0 {
            return Err(format!("{direction} limit value must be positive"));
        }
        let unit = limit.and_then(|l| l.unit.as_ref());
        let seconds: i64 = match unit {
            Some(BandwidthLimitUnit::Minute) => 60,
            Some(BandwidthLimitUnit::Hour) => 3_600,
            _ => 1,
        };
        if bytes / (seconds * 1024) == 0 {
            let unit_name = unit.map(|u| u.as_str()).unwrap_or("");
            return Err(format!(
                "{direction}: bandwidth limit of {bytes} bytes per {unit_name} is below the minimum of 1 KiB/s"
            ));
        }
    }
    Ok(())
}

/// Deterministic primality (Go's `ProbablyPrime(0)` is exact in this range).
fn is_prime(n: i64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

fn load_balancer(lb: &LoadBalancer) -> Result<(), String> {
    let slow_start = || -> Result<(), String> {
        if let Some(w) = lb.slow_start.as_ref().and_then(|s| s.window.as_deref()) {
            go_parse_duration(w)?;
        }
        Ok(())
    };
    match &lb.type_ {
        Some(LoadBalancerType::ConsistentHash) => {
            if let Some(size) = lb.consistent_hash.as_ref().and_then(|c| c.table_size)
                && (size > MAX_CONSISTENT_HASH_TABLE_SIZE || !is_prime(size))
            {
                return Err(format!("ConsistentHash: invalid TableSize value {size}"));
            }
        }
        Some(LoadBalancerType::LeastRequest | LoadBalancerType::RoundRobin) => slow_start()?,
        Some(LoadBalancerType::BackendUtilization) => {
            if let Some(bu) = &lb.backend_utilization {
                for (name, value) in [
                    ("BlackoutPeriod", &bu.blackout_period),
                    ("WeightExpirationPeriod", &bu.weight_expiration_period),
                    ("WeightUpdatePeriod", &bu.weight_update_period),
                ] {
                    if let Some(v) = value {
                        go_parse_duration(v)
                            .map_err(|e| format!("invalid {name} value {v}: {e}"))?;
                    }
                }
                if let Some(v) = bu
                    .out_of_band
                    .as_ref()
                    .and_then(|o| o.reporting_period.as_ref())
                {
                    go_parse_duration(v)
                        .map_err(|e| format!("invalid OutOfBand ReportingPeriod value {v}: {e}"))?;
                }
            }
            slow_start()?;
        }
        _ => {}
    }
    Ok(())
}

fn circuit_breaker(cb: &CircuitBreaker) -> Result<(), String> {
    for (name, value) in [
        ("MaxConnections", cb.max_connections),
        ("MaxParallelRequests", cb.max_parallel_requests),
        ("MaxPendingRequests", cb.max_pending_requests),
        ("MaxParallelRetries", cb.max_parallel_retries),
        ("MaxRequestsPerConnection", cb.max_requests_per_connection),
    ] {
        if let Some(v) = value
            && !(0..=MAX_U32).contains(&i128::from(v))
        {
            return Err(format!("invalid {name} value {v}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Durations: keepalive, retry, timeouts

fn tcp_keepalive(ka: &TcpKeepalive) -> Result<(), String> {
    for (name, value) in [("IdleTime", &ka.idle_time), ("Interval", &ka.interval)] {
        if let Some(v) = value
            && go_parse_duration(v).is_err()
        {
            return Err(format!("invalid {name} value {v}"));
        }
    }
    Ok(())
}

fn retry(r: &Retry) -> Result<(), String> {
    let Some(per_retry) = &r.per_retry else {
        return Ok(());
    };
    if let Some(t) = &per_retry.timeout {
        go_parse_duration(t)?;
    }
    let Some(back_off) = &per_retry.back_off else {
        return Ok(());
    };
    // Unparsable intervals are ignored by the translator, not reported.
    let base = back_off
        .base_interval
        .as_deref()
        .and_then(|v| go_parse_duration(v).ok());
    if base == Some(0) {
        return Err("baseInterval cannot be set to 0s".to_string());
    }
    if let Some(max) = back_off
        .max_interval
        .as_deref()
        .and_then(|v| go_parse_duration(v).ok())
    {
        if max == 0 {
            return Err("maxInterval cannot be set to 0s".to_string());
        }
        if base.is_some_and(|b| b > max) {
            return Err("maxInterval cannot be less than baseInterval".to_string());
        }
    }
    Ok(())
}

fn timeout(t: &Timeout) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut check = |name: &str, value: &Option<String>| {
        if let Some(v) = value
            && go_parse_duration(v).is_err()
        {
            errors.push(format!("invalid {name} value {v}"));
        }
    };
    if let Some(tcp) = &t.tcp {
        check("ConnectTimeout", &tcp.connect_timeout);
    }
    if let Some(http) = &t.http {
        check("ConnectionIdleTimeout", &http.connection_idle_timeout);
        check("MaxConnectionDuration", &http.max_connection_duration);
        check("RequestTimeout", &http.request_timeout);
        check("MaxStreamDuration", &http.max_stream_duration);
        check("StreamIdleTimeout", &http.stream_idle_timeout);
    }
    joined(errors)
}

/// Go's `errors.Join`: several errors become one, newline separated.
fn joined(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Go's `time.ParseDuration`: the value in nanoseconds, or Go's error text.
pub(crate) fn go_parse_duration(orig: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig;
    let mut negative = false;
    if let Some(c) = s.chars().next()
        && (c == '-' || c == '+')
    {
        negative = c == '-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(unit),
                    go_quote(orig)
                ));
            }
        };
        let number: f64 = format!(
            "{}.{}",
            if int_part.is_empty() { "0" } else { int_part },
            frac_part
        )
        .parse()
        .map_err(|_| invalid())?;
        total += number * scale;
        if total > i64::MAX as f64 {
            return Err(invalid());
        }
    }
    let nanos = total.round() as i128;
    Ok(if negative { -nanos } else { nanos })
}

// ---------------------------------------------------------------------------------------------
// Quantities: connection buffer, HTTP/2 windows, request buffer

fn backend_connection(c: &BackendConnection) -> Result<(), String> {
    if let Some(q) = &c.buffer_limit {
        let Some(v) = q.as_i64() else {
            return Err(format!("invalid BufferLimit value {}", q.canonical()));
        };
        if !(0..=MAX_U32).contains(&i128::from(v)) {
            return Err(format!(
                "BufferLimit value {} is out of range",
                q.canonical()
            ));
        }
    }
    Ok(())
}

fn window(name: &str, q: &Quantity) -> Option<String> {
    match q.as_i64() {
        None => Some(format!("invalid {name} value {}", q.canonical())),
        Some(v) if !(HTTP2_WINDOW_MIN..=HTTP2_WINDOW_MAX).contains(&i128::from(v)) => {
            Some(format!(
                "{name} value {} is out of range, must be between {HTTP2_WINDOW_MIN} and {HTTP2_WINDOW_MAX}",
                q.canonical()
            ))
        }
        Some(_) => None,
    }
}

fn http2(h2: &Http2Settings) -> Result<(), String> {
    let mut errors = Vec::new();
    if let Some(q) = &h2.initial_stream_window_size {
        errors.extend(window("InitialStreamWindowSize", q));
    }
    if let Some(q) = &h2.initial_connection_window_size {
        errors.extend(window("InitialConnectionWindowSize", q));
    }
    if let Some(ka) = &h2.connection_keepalive {
        for (name, value) in [
            ("Interval", &ka.interval),
            ("Timeout", &ka.timeout),
            ("IdleInterval", &ka.idle_interval),
        ] {
            if let Some(v) = value
                && let Err(e) = go_parse_duration(v)
            {
                errors.push(format!("invalid ConnectionKeepalive.{name}: {e}"));
            }
        }
    }
    joined(errors)
}

fn request_buffer(rb: &RequestBuffer) -> Result<(), String> {
    let Some(q) = &rb.limit else {
        return Ok(());
    };
    let Some(v) = q.as_i64() else {
        return Err("limit must be convertible to an int64".to_string());
    };
    if !(0..=MAX_U32).contains(&i128::from(v)) {
        return Err(format!(
            "limit value {} is out of range, must be between 0 and {MAX_U32}",
            q.canonical()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Response overrides and telemetry

fn response_override(rules: &[ResponseOverride], ctx: &TranslateContext<'_>) -> Result<(), String> {
    let Some(lookup) = ctx.config_maps else {
        return Ok(());
    };
    for rule in rules {
        if rule.redirect.is_some() {
            continue;
        }
        let Some(body) = rule.response.as_ref().and_then(|r| r.body.as_ref()) else {
            continue;
        };
        if !matches!(body.type_, Some(ResponseValueType::ValueRef)) {
            continue;
        }
        let name = body
            .value_ref
            .as_ref()
            .and_then(|v| v.name.as_deref())
            .unwrap_or("");
        match lookup(name) {
            ConfigMapState::HasData => {}
            ConfigMapState::NoData => {
                return Err(format!(
                    "can't find the key response.body in the referenced configmap {}/{name}",
                    ctx.namespace
                ));
            }
            ConfigMapState::Missing => {
                return Err(format!(
                    "can't find the referenced configmap {}/{name}",
                    ctx.namespace
                ));
            }
        }
    }
    Ok(())
}

fn telemetry(t: &BackendTelemetry) -> Result<(), String> {
    let Some(name) = t
        .metrics
        .as_ref()
        .and_then(|m| m.route_stat_name.as_deref())
    else {
        return Ok(());
    };
    if name.is_empty() {
        return Ok(());
    }
    const SUPPORTED: [&str; 4] = [
        "%ROUTE_NAME%",
        "%ROUTE_NAMESPACE%",
        "%ROUTE_KIND%",
        "%ROUTE_RULE_NAME%",
    ];
    let operators = stat_operators(name);
    let prefix = "unable to configure Route Stat Name";
    if operators.is_empty() && name.contains('%') {
        return Err(format!(
            "{prefix}: unable to configure stat name with invalid operator"
        ));
    }
    let unsupported: Vec<&str> = operators
        .into_iter()
        .filter(|o| !SUPPORTED.contains(o))
        .collect();
    if !unsupported.is_empty() {
        return Err(format!(
            "{prefix}: unsupported operators: [{}]",
            unsupported.join(" ")
        ));
    }
    Ok(())
}

/// The `%...%` operators of a stat name, left to right (Go's `%[^%]*%` matches).
fn stat_operators(name: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = name;
    let mut offset = 0;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        let Some(len) = after.find('%') else { break };
        let begin = offset + start;
        let end = begin + len + 2;
        found.push(&name[begin..end]);
        offset = end;
        rest = &name[end..];
    }
    found
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(go_parse_duration("0s"), Ok(0));
        assert_eq!(go_parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(go_parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(
            go_parse_duration("22mib"),
            Err("time: unknown unit \"mib\" in duration \"22mib\"".to_string())
        );
        assert_eq!(
            go_parse_duration("5"),
            Err("time: missing unit in duration \"5\"".to_string())
        );
        assert_eq!(
            go_parse_duration(""),
            Err("time: invalid duration \"\"".to_string())
        );
    }

    #[test]
    fn cidrs_follow_go() {
        assert!(parse_cidr("192.168.0.0/16").is_ok());
        assert!(parse_cidr("2001:db8::/32").is_ok());
        assert_eq!(
            parse_cidr("192.168.0.0/33"),
            Err("invalid CIDR address: 192.168.0.0/33".to_string())
        );
        assert_eq!(
            parse_cidr("10.0.0.1"),
            Err("invalid CIDR address: 10.0.0.1".to_string())
        );
    }

    #[test]
    fn primes() {
        assert!(is_prime(65537) && is_prime(524287) && is_prime(5_000_011));
        assert!(!is_prime(1024) && !is_prime(1) && !is_prime(5_000_012));
    }

    #[test]
    fn stat_operators_are_found() {
        assert_eq!(
            stat_operators("%ROUTE_NAME%/x/%FOO%"),
            vec!["%ROUTE_NAME%", "%FOO%"]
        );
        assert!(stat_operators("plain").is_empty());
    }
}
