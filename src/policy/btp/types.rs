//! The `spec` of an Envoy Gateway v1.9.0 `BackendTrafficPolicy`, field for field as the CRD
//! defines it.
//!
//! Every field is optional so that "set" and "unset" stay apart (CEL rules and merging depend on
//! it); required fields are checked by [`super::validate`] with the API server's messages.
//! Durations stay strings and enums keep unknown values, so a bad value is reported at its
//! location together with every other error instead of failing the decode.

use indexmap::IndexMap;
use serde::Deserialize;

use super::values::{Quantity, crd_enum};

/// A Gateway API duration string (`^([0-9]{1,5}(h|m|s|ms)){1,4}$`), checked by validation.
pub type Duration = String;

/// String-to-string map in the order written (labels, tags, cookie attributes).
pub type StringMap = IndexMap<String, String>;

/// `BackendTrafficPolicy.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendTrafficPolicySpec {
    /// Deprecated single target.
    pub target_ref: Option<LocalPolicyTargetReferenceWithSectionName>,
    pub target_refs: Option<Vec<LocalPolicyTargetReferenceWithSectionName>>,
    pub target_selectors: Option<Vec<TargetSelector>>,
    /// `StrategicMerge` or `JSONMerge`; the CRD only rejects `Replace`.
    pub merge_type: Option<String>,
    pub load_balancer: Option<LoadBalancer>,
    pub retry: Option<Retry>,
    pub proxy_protocol: Option<ProxyProtocol>,
    pub tcp_keepalive: Option<TcpKeepalive>,
    pub health_check: Option<HealthCheck>,
    pub circuit_breaker: Option<CircuitBreaker>,
    pub timeout: Option<Timeout>,
    pub connection: Option<BackendConnection>,
    pub dns: Option<Dns>,
    pub http2: Option<Http2Settings>,
    pub rate_limit: Option<RateLimitSpec>,
    pub bandwidth_limit: Option<BandwidthLimitSpec>,
    pub fault_injection: Option<FaultInjection>,
    pub admission_control: Option<AdmissionControl>,
    pub use_client_protocol: Option<bool>,
    /// Deprecated, replaced by `compressor`.
    pub compression: Option<Vec<Compression>>,
    pub compressor: Option<Vec<Compression>>,
    pub response_override: Option<Vec<ResponseOverride>>,
    pub http_upgrade: Option<Vec<ProtocolUpgradeConfig>>,
    pub request_buffer: Option<RequestBuffer>,
    pub telemetry: Option<BackendTelemetry>,
    /// `Service` or `Endpoint`; the CRD has no enum.
    pub routing_type: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Targets

/// A target in the policy's namespace: `{group, kind, name, sectionName?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalPolicyTargetReferenceWithSectionName {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub section_name: Option<String>,
}

/// Targets picked by kind and labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetSelector {
    /// Defaults to `gateway.networking.k8s.io`.
    pub group: Option<String>,
    pub kind: Option<String>,
    pub match_labels: Option<StringMap>,
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
    pub namespaces: Option<TargetSelectorNamespaces>,
}

/// One `matchExpressions` entry of a label selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: Option<String>,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist` (not checked by the CRD).
    pub operator: Option<String>,
    pub values: Option<Vec<String>>,
}

/// A standard Kubernetes label selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    pub match_labels: Option<StringMap>,
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// Which namespaces a target selector searches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetSelectorNamespaces {
    /// Defaults to `Same`.
    pub from: Option<FromNamespaces>,
    pub selector: Option<LabelSelector>,
}

crd_enum! {
    /// `targetSelectors[].namespaces.from`.
    FromNamespaces { Same => "Same", All => "All", Selector => "Selector" }
}

// ---------------------------------------------------------------------------------------------
// Load balancer

/// `loadBalancer`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancer {
    #[serde(rename = "type")]
    pub type_: Option<LoadBalancerType>,
    pub consistent_hash: Option<ConsistentHash>,
    pub slow_start: Option<SlowStart>,
    pub zone_aware: Option<ZoneAware>,
    pub endpoint_override: Option<EndpointOverride>,
    pub backend_utilization: Option<BackendUtilization>,
    pub dynamic_module: Option<DynamicModuleLoadBalancer>,
}

crd_enum! {
    /// `loadBalancer.type`.
    LoadBalancerType {
        ConsistentHash => "ConsistentHash",
        LeastRequest => "LeastRequest",
        Random => "Random",
        RoundRobin => "RoundRobin",
        BackendUtilization => "BackendUtilization",
        DynamicModule => "DynamicModule",
    }
}

/// `loadBalancer.consistentHash`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsistentHash {
    #[serde(rename = "type")]
    pub type_: Option<ConsistentHashType>,
    /// Deprecated single header.
    pub header: Option<HashName>,
    pub headers: Option<Vec<HashName>>,
    pub cookie: Option<Cookie>,
    pub query_params: Option<Vec<HashName>>,
    /// Default 65537; must be prime (translator check).
    pub table_size: Option<i64>,
}

crd_enum! {
    /// `loadBalancer.consistentHash.type`.
    ConsistentHashType {
        SourceIp => "SourceIP",
        Header => "Header",
        Headers => "Headers",
        Cookie => "Cookie",
        QueryParams => "QueryParams",
    }
}

/// A header or query parameter name to hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HashName {
    pub name: Option<String>,
}

/// Cookie-based hashing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cookie {
    pub name: Option<String>,
    pub ttl: Option<Duration>,
    pub attributes: Option<StringMap>,
}

/// `loadBalancer.slowStart`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SlowStart {
    pub window: Option<Duration>,
}

/// `loadBalancer.zoneAware`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ZoneAware {
    pub prefer_local: Option<PreferLocalZone>,
    pub weighted_zones: Option<Vec<WeightedZone>>,
}

/// `zoneAware.preferLocal`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PreferLocalZone {
    pub force: Option<ForceLocalZone>,
    pub min_endpoints_threshold: Option<i64>,
    pub percentage_enabled: Option<i64>,
}

/// `zoneAware.preferLocal.force`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForceLocalZone {
    pub min_endpoints_in_zone_threshold: Option<i64>,
}

/// One `zoneAware.weightedZones` entry (list-map keyed by `zone`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WeightedZone {
    pub zone: Option<String>,
    pub weight: Option<i64>,
}

/// `loadBalancer.endpointOverride`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointOverride {
    pub extract_from: Option<Vec<EndpointOverrideExtractFrom>>,
}

/// Where an override endpoint is read from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointOverrideExtractFrom {
    pub header: Option<String>,
}

/// `loadBalancer.backendUtilization` (ORCA weighted round robin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendUtilization {
    pub blackout_period: Option<Duration>,
    pub weight_expiration_period: Option<Duration>,
    pub weight_update_period: Option<Duration>,
    pub error_utilization_penalty_percent: Option<i64>,
    pub metric_names_for_computing_utilization: Option<Vec<String>>,
    pub keep_response_headers: Option<bool>,
    pub out_of_band: Option<OutOfBand>,
}

/// `backendUtilization.outOfBand`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutOfBand {
    pub reporting_period: Option<Duration>,
    pub port: Option<i64>,
    pub authority: Option<String>,
}

/// `loadBalancer.dynamicModule`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DynamicModuleLoadBalancer {
    pub name: Option<String>,
    pub lb_policy_name: Option<String>,
    /// Free-form (`x-kubernetes-preserve-unknown-fields`).
    pub config: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------------
// Retry

/// `retry`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retry {
    /// Default 2.
    pub num_retries: Option<i64>,
    pub num_attempts_per_priority: Option<i64>,
    pub retry_on: Option<RetryOn>,
    pub per_retry: Option<PerRetryPolicy>,
}

/// `retry.retryOn`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryOn {
    pub triggers: Option<Vec<RetryTrigger>>,
    pub http_status_codes: Option<Vec<i64>>,
}

crd_enum! {
    /// `retry.retryOn.triggers[]`.
    RetryTrigger {
        Error5xx => "5xx",
        GatewayError => "gateway-error",
        Reset => "reset",
        ResetBeforeRequest => "reset-before-request",
        ConnectFailure => "connect-failure",
        Retriable4xx => "retriable-4xx",
        RefusedStream => "refused-stream",
        RetriableStatusCodes => "retriable-status-codes",
        Cancelled => "cancelled",
        DeadlineExceeded => "deadline-exceeded",
        Internal => "internal",
        ResourceExhausted => "resource-exhausted",
        Unavailable => "unavailable",
    }
}

/// `retry.perRetry`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PerRetryPolicy {
    pub timeout: Option<Duration>,
    pub back_off: Option<BackOffPolicy>,
}

/// `retry.perRetry.backOff`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackOffPolicy {
    pub base_interval: Option<Duration>,
    pub max_interval: Option<Duration>,
}

// ---------------------------------------------------------------------------------------------
// Connection-level settings

/// `proxyProtocol`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxyProtocol {
    pub version: Option<ProxyProtocolVersion>,
}

crd_enum! {
    /// `proxyProtocol.version`.
    ProxyProtocolVersion { V1 => "V1", V2 => "V2" }
}

/// `tcpKeepalive`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpKeepalive {
    pub probes: Option<i64>,
    pub idle_time: Option<Duration>,
    pub interval: Option<Duration>,
}

/// `timeout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Timeout {
    pub tcp: Option<TcpTimeout>,
    pub http: Option<HttpTimeout>,
}

/// `timeout.tcp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpTimeout {
    pub connect_timeout: Option<Duration>,
}

/// `timeout.http`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpTimeout {
    pub connection_idle_timeout: Option<Duration>,
    pub max_connection_duration: Option<Duration>,
    pub request_timeout: Option<Duration>,
    pub max_stream_duration: Option<Duration>,
    pub stream_idle_timeout: Option<Duration>,
}

/// `connection`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendConnection {
    pub buffer_limit: Option<Quantity>,
    /// Hidden in the API docs and not used by the v1.9.0 translator.
    pub socket_buffer_limit: Option<Quantity>,
    pub preconnect: Option<Preconnect>,
}

/// `connection.preconnect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Preconnect {
    pub per_endpoint_percent: Option<i64>,
    pub predictive_percent: Option<i64>,
}

/// `dns`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Dns {
    pub dns_refresh_rate: Option<Duration>,
    pub respect_dns_ttl: Option<bool>,
    pub lookup_family: Option<DnsLookupFamily>,
}

crd_enum! {
    /// `dns.lookupFamily`.
    DnsLookupFamily {
        IPv4 => "IPv4",
        IPv6 => "IPv6",
        IPv4Preferred => "IPv4Preferred",
        IPv6Preferred => "IPv6Preferred",
        IPv4AndIPv6 => "IPv4AndIPv6",
    }
}

/// `http2`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Http2Settings {
    pub initial_stream_window_size: Option<Quantity>,
    pub initial_connection_window_size: Option<Quantity>,
    pub max_concurrent_streams: Option<i64>,
    /// `TerminateConnection` or `TerminateStream`; the CRD has no enum.
    pub on_invalid_message: Option<String>,
    pub connection_keepalive: Option<Http2ConnectionKeepalive>,
}

/// `http2.connectionKeepalive`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Http2ConnectionKeepalive {
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub interval_jitter: Option<i64>,
    pub idle_interval: Option<Duration>,
}

// ---------------------------------------------------------------------------------------------
// Health checks

/// `healthCheck`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    pub active: Option<ActiveHealthCheck>,
    pub passive: Option<PassiveHealthCheck>,
    pub panic_threshold: Option<i64>,
}

/// `healthCheck.active`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActiveHealthCheck {
    #[serde(rename = "type")]
    pub type_: Option<ActiveHealthCheckerType>,
    /// Default 1s.
    pub timeout: Option<Duration>,
    /// Default 3s.
    pub interval: Option<Duration>,
    pub initial_jitter: Option<Duration>,
    /// Default 3.
    pub unhealthy_threshold: Option<i64>,
    /// Default 1.
    pub healthy_threshold: Option<i64>,
    pub http: Option<HttpActiveHealthChecker>,
    pub tcp: Option<TcpActiveHealthChecker>,
    pub grpc: Option<GrpcActiveHealthChecker>,
    pub overrides: Option<HealthCheckOverrides>,
    pub health_check_log: Option<HealthCheckLog>,
}

crd_enum! {
    /// `healthCheck.active.type`.
    ActiveHealthCheckerType { Http => "HTTP", Tcp => "TCP", Grpc => "GRPC" }
}

/// `healthCheck.active.http`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpActiveHealthChecker {
    pub hostname: Option<String>,
    pub path: Option<String>,
    pub method: Option<String>,
    pub expected_statuses: Option<Vec<i64>>,
    pub retriable_statuses: Option<Vec<i64>>,
    pub expected_response: Option<ActiveHealthCheckPayload>,
    pub request_body: Option<ActiveHealthCheckPayload>,
}

/// `healthCheck.active.tcp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpActiveHealthChecker {
    pub send: Option<ActiveHealthCheckPayload>,
    pub receive: Option<ActiveHealthCheckPayload>,
}

/// `healthCheck.active.grpc`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcActiveHealthChecker {
    pub service: Option<String>,
}

/// A health-check payload: text or base64 binary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActiveHealthCheckPayload {
    #[serde(rename = "type")]
    pub type_: Option<PayloadType>,
    pub text: Option<String>,
    /// Base64 (`format: byte`).
    pub binary: Option<String>,
}

crd_enum! {
    /// Health-check payload type.
    PayloadType { Text => "Text", Binary => "Binary" }
}

/// `healthCheck.active.overrides`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheckOverrides {
    pub port: Option<i64>,
}

/// `healthCheck.active.healthCheckLog`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheckLog {
    pub matches: Option<Vec<HealthCheckLogMatch>>,
    pub sinks: Option<Vec<HealthCheckLogSink>>,
}

crd_enum! {
    /// `healthCheckLog.matches[]`.
    HealthCheckLogMatch {
        Failure => "Failure",
        FailureSeriesStart => "FailureSeriesStart",
        Success => "Success",
        HealthyTransition => "HealthyTransition",
    }
}

/// One `healthCheckLog.sinks` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheckLogSink {
    #[serde(rename = "type")]
    pub type_: Option<HealthCheckLogSinkType>,
    pub file: Option<FileSink>,
}

crd_enum! {
    /// `healthCheckLog.sinks[].type`.
    HealthCheckLogSinkType { File => "File" }
}

/// A file sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileSink {
    pub path: Option<String>,
}

/// `healthCheck.passive` (outlier detection).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PassiveHealthCheck {
    /// Default false.
    pub split_external_local_origin_errors: Option<bool>,
    /// Default 3s.
    pub interval: Option<Duration>,
    /// Default 5.
    pub consecutive_local_origin_failures: Option<i64>,
    pub consecutive_gateway_errors: Option<i64>,
    /// Default 5.
    #[serde(rename = "consecutive5XxErrors")]
    pub consecutive_5xx_errors: Option<i64>,
    /// Default 30s.
    pub base_ejection_time: Option<Duration>,
    /// Default 10.
    pub max_ejection_percent: Option<i64>,
    pub failure_percentage_threshold: Option<i64>,
    /// Default false.
    pub always_eject_one_endpoint: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker

/// `circuitBreaker`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CircuitBreaker {
    pub max_connections: Option<i64>,
    pub max_pending_requests: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub max_parallel_retries: Option<i64>,
    pub max_requests_per_connection: Option<i64>,
    pub per_endpoint: Option<PerEndpointCircuitBreakers>,
    pub retry_budget: Option<RetryBudget>,
}

/// `circuitBreaker.perEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PerEndpointCircuitBreakers {
    pub max_connections: Option<i64>,
}

/// `circuitBreaker.retryBudget`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryBudget {
    pub percent: Option<Fraction>,
    pub min_retry_concurrency: Option<i64>,
}

/// A Gateway API fraction `numerator / denominator` (denominator defaults to 100).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Fraction {
    pub numerator: Option<i64>,
    pub denominator: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Rate limits

/// `rateLimit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// Deprecated: with it, only the named block is built.
    #[serde(rename = "type")]
    pub type_: Option<RateLimitType>,
    pub local: Option<LocalRateLimit>,
    pub global: Option<GlobalRateLimit>,
}

crd_enum! {
    /// `rateLimit.type`.
    RateLimitType { Global => "Global", Local => "Local" }
}

/// `rateLimit.local`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalRateLimit {
    pub rules: Option<Vec<RateLimitRule>>,
}

/// `rateLimit.global`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GlobalRateLimit {
    pub rules: Option<Vec<RateLimitRule>>,
}

/// One rate-limit rule (local or global).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitRule {
    pub client_selectors: Option<Vec<RateLimitSelectCondition>>,
    pub limit: Option<RateLimitValue>,
    pub cost: Option<RateLimitCost>,
    pub shared: Option<bool>,
    pub shadow_mode: Option<bool>,
    pub x_rate_limit_headers: Option<XRateLimitHeaders>,
}

crd_enum! {
    /// `rules[].xRateLimitHeaders`.
    XRateLimitHeaders { Off => "Off", DraftVersion03 => "DraftVersion03" }
}

/// One client selector; its conditions AND together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitSelectCondition {
    pub headers: Option<Vec<HeaderMatch>>,
    pub methods: Option<Vec<MethodMatch>>,
    pub path: Option<PathMatch>,
    #[serde(rename = "sourceCIDR")]
    pub source_cidr: Option<SourceMatch>,
    pub query_params: Option<Vec<QueryParamMatch>>,
}

/// A header condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderMatch {
    /// Defaults to `Exact`.
    #[serde(rename = "type")]
    pub type_: Option<StringMatchKind>,
    pub name: Option<String>,
    pub value: Option<String>,
    pub invert: Option<bool>,
}

/// A query parameter condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QueryParamMatch {
    /// Defaults to `Exact`.
    #[serde(rename = "type")]
    pub type_: Option<StringMatchKind>,
    pub name: Option<String>,
    pub value: Option<String>,
    pub invert: Option<bool>,
}

crd_enum! {
    /// Header and query parameter match type.
    StringMatchKind {
        Exact => "Exact",
        RegularExpression => "RegularExpression",
        Distinct => "Distinct",
    }
}

/// A method condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MethodMatch {
    pub value: Option<HttpMethod>,
    pub invert: Option<bool>,
}

crd_enum! {
    /// HTTP method of a method condition.
    HttpMethod {
        Get => "GET",
        Head => "HEAD",
        Post => "POST",
        Put => "PUT",
        Delete => "DELETE",
        Connect => "CONNECT",
        Options => "OPTIONS",
        Trace => "TRACE",
        Patch => "PATCH",
    }
}

/// A path condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PathMatch {
    /// Defaults to `PathPrefix`.
    #[serde(rename = "type")]
    pub type_: Option<PathMatchType>,
    /// Defaults to `/`.
    pub value: Option<String>,
    pub invert: Option<bool>,
}

crd_enum! {
    /// Path match type.
    PathMatchType {
        Exact => "Exact",
        PathPrefix => "PathPrefix",
        RegularExpression => "RegularExpression",
    }
}

/// A client address condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceMatch {
    /// Defaults to `Exact`.
    #[serde(rename = "type")]
    pub type_: Option<SourceMatchType>,
    pub value: Option<String>,
    pub invert: Option<bool>,
}

crd_enum! {
    /// Source CIDR match type.
    SourceMatchType { Exact => "Exact", Distinct => "Distinct" }
}

/// `rules[].limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitValue {
    pub requests: Option<i64>,
    pub unit: Option<RateLimitUnit>,
    pub from_metadata: Option<MetadataKey>,
}

crd_enum! {
    /// Rate-limit unit.
    RateLimitUnit {
        Second => "Second",
        Minute => "Minute",
        Hour => "Hour",
        Day => "Day",
        Week => "Week",
        Month => "Month",
        Year => "Year",
    }
}

/// A dynamic-metadata key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetadataKey {
    pub namespace: Option<String>,
    pub key: Option<String>,
}

/// `rules[].cost`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitCost {
    pub request: Option<RateLimitCostSpecifier>,
    pub response: Option<RateLimitCostSpecifier>,
}

/// Where a rate-limit cost comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitCostSpecifier {
    pub from: Option<RateLimitCostFrom>,
    pub number: Option<i64>,
    pub metadata: Option<MetadataKey>,
}

crd_enum! {
    /// `cost.*.from`.
    RateLimitCostFrom { Number => "Number", Metadata => "Metadata" }
}

// ---------------------------------------------------------------------------------------------
// Other HTTP features

/// `bandwidthLimit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BandwidthLimitSpec {
    pub request: Option<BandwidthLimitRequest>,
    pub response: Option<BandwidthLimitResponse>,
}

/// `bandwidthLimit.request`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BandwidthLimitRequest {
    pub limit: Option<BandwidthLimitValue>,
}

/// `bandwidthLimit.response`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BandwidthLimitResponse {
    pub limit: Option<BandwidthLimitValue>,
    pub response_trailers: Option<ResponseTrailers>,
}

/// A byte rate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BandwidthLimitValue {
    pub value: Option<Quantity>,
    pub unit: Option<BandwidthLimitUnit>,
}

crd_enum! {
    /// Bandwidth limit unit.
    BandwidthLimitUnit { Second => "Second", Minute => "Minute", Hour => "Hour" }
}

/// `bandwidthLimit.response.responseTrailers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResponseTrailers {
    pub prefix: Option<String>,
}

/// `faultInjection`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultInjection {
    pub delay: Option<FaultInjectionDelay>,
    pub abort: Option<FaultInjectionAbort>,
}

/// `faultInjection.delay`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultInjectionDelay {
    pub fixed_delay: Option<Duration>,
    /// Default 100.
    pub percentage: Option<f64>,
}

/// `faultInjection.abort`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultInjectionAbort {
    pub http_status: Option<i64>,
    pub grpc_status: Option<i64>,
    /// Default 100.
    pub percentage: Option<f64>,
}

/// `admissionControl`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdmissionControl {
    pub sampling_window: Option<Duration>,
    pub min_success_rate: Option<i64>,
    pub rejection_aggression: Option<i64>,
    pub min_request_rate: Option<i64>,
    pub max_rejection_percent: Option<i64>,
    pub success_criteria: Option<AdmissionControlSuccessCriteria>,
}

/// `admissionControl.successCriteria`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdmissionControlSuccessCriteria {
    pub http: Option<HttpSuccessCriteria>,
    pub grpc: Option<GrpcSuccessCriteria>,
}

/// HTTP status codes counted as success.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpSuccessCriteria {
    pub status_codes: Option<Vec<i64>>,
}

/// gRPC status codes counted as success.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcSuccessCriteria {
    pub status_codes: Option<Vec<GrpcStatus>>,
}

crd_enum! {
    /// gRPC status code names.
    GrpcStatus {
        Ok => "Ok",
        Cancelled => "Cancelled",
        UnknownCode => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// One `compressor` (or deprecated `compression`) entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Compression {
    #[serde(rename = "type")]
    pub type_: Option<CompressorType>,
    pub gzip: Option<EmptyConfig>,
    pub brotli: Option<EmptyConfig>,
    pub zstd: Option<EmptyConfig>,
    pub min_content_length: Option<Quantity>,
}

crd_enum! {
    /// Compressor type.
    CompressorType { Gzip => "Gzip", Brotli => "Brotli", Zstd => "Zstd" }
}

/// A compressor configuration object with no fields in v1.9.0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyConfig {}

/// One `responseOverride` rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResponseOverride {
    #[serde(rename = "match")]
    pub match_: Option<CustomResponseMatch>,
    pub response: Option<CustomResponse>,
    pub redirect: Option<CustomRedirect>,
    pub source: Option<ResponseOverrideSource>,
}

crd_enum! {
    /// Which responses a rule may replace.
    ResponseOverrideSource { All => "All", Local => "Local", Backend => "Backend" }
}

/// `responseOverride[].match`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CustomResponseMatch {
    pub status_codes: Option<Vec<StatusCodeMatch>>,
    pub response_headers: Option<Vec<HttpHeaderMatch>>,
}

/// A status code value or range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatusCodeMatch {
    /// Defaults to `Value`.
    #[serde(rename = "type")]
    pub type_: Option<StatusCodeValueType>,
    pub value: Option<i64>,
    pub range: Option<StatusCodeRange>,
}

crd_enum! {
    /// Status code match type.
    StatusCodeValueType { Value => "Value", Range => "Range" }
}

/// An inclusive status code range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatusCodeRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// A response header condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpHeaderMatch {
    pub name: Option<String>,
    pub value: Option<StringMatch>,
}

/// A string matcher.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StringMatch {
    /// Defaults to `Exact`.
    #[serde(rename = "type")]
    pub type_: Option<StringMatchType>,
    pub value: Option<String>,
}

crd_enum! {
    /// String matcher type.
    StringMatchType {
        Exact => "Exact",
        Prefix => "Prefix",
        Suffix => "Suffix",
        RegularExpression => "RegularExpression",
    }
}

/// `responseOverride[].response`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CustomResponse {
    pub content_type: Option<String>,
    pub body: Option<CustomResponseBody>,
    pub status_code: Option<i64>,
    pub header: Option<HttpHeaderFilter>,
}

/// A custom response body, inline or from a ConfigMap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CustomResponseBody {
    /// Defaults to `Inline`.
    #[serde(rename = "type")]
    pub type_: Option<ResponseValueType>,
    pub inline: Option<String>,
    pub value_ref: Option<LocalObjectReference>,
}

crd_enum! {
    /// Body source.
    ResponseValueType { Inline => "Inline", ValueRef => "ValueRef" }
}

/// A reference to an object in the policy's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalObjectReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
}

/// Header changes on a custom response (`remove` is rejected by the CRD).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpHeaderFilter {
    pub set: Option<Vec<HttpHeader>>,
    pub add: Option<Vec<HttpHeader>>,
    pub remove: Option<Vec<String>>,
}

/// A header name and value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpHeader {
    pub name: Option<String>,
    pub value: Option<String>,
}

/// `responseOverride[].redirect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CustomRedirect {
    pub scheme: Option<RedirectScheme>,
    pub hostname: Option<String>,
    pub path: Option<HttpPathModifier>,
    pub port: Option<i64>,
    /// 301 or 302 (default 302).
    pub status_code: Option<i64>,
}

crd_enum! {
    /// Redirect scheme.
    RedirectScheme { Http => "http", Https => "https" }
}

/// A redirect path rewrite.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpPathModifier {
    #[serde(rename = "type")]
    pub type_: Option<HttpPathModifierType>,
    pub replace_full_path: Option<String>,
    pub replace_prefix_match: Option<String>,
}

crd_enum! {
    /// Path rewrite type.
    HttpPathModifierType {
        ReplaceFullPath => "ReplaceFullPath",
        ReplacePrefixMatch => "ReplacePrefixMatch",
    }
}

/// One `httpUpgrade` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProtocolUpgradeConfig {
    /// Upgrade protocol, e.g. `websocket`, `CONNECT`, `spdy/3.1` (no enum).
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub connect: Option<ConnectConfig>,
}

/// CONNECT upgrade options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectConfig {
    pub terminate: Option<bool>,
}

/// `requestBuffer`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestBuffer {
    pub limit: Option<Quantity>,
}

/// `telemetry`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendTelemetry {
    pub tracing: Option<Tracing>,
    pub metrics: Option<BackendMetrics>,
}

/// `telemetry.metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendMetrics {
    pub route_stat_name: Option<String>,
}

/// `telemetry.tracing`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tracing {
    pub sampling_fraction: Option<Fraction>,
    pub client_sampling_fraction: Option<Fraction>,
    pub overall_sampling_fraction: Option<Fraction>,
    pub custom_tags: Option<IndexMap<String, CustomTag>>,
    pub tags: Option<StringMap>,
    pub span_name: Option<TracingSpanName>,
}

/// A custom tracing tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CustomTag {
    /// Defaults to `Literal`.
    #[serde(rename = "type")]
    pub type_: Option<CustomTagType>,
    pub literal: Option<LiteralCustomTag>,
    pub environment: Option<NamedCustomTag>,
    pub request_header: Option<NamedCustomTag>,
}

crd_enum! {
    /// Custom tag source.
    CustomTagType {
        Literal => "Literal",
        Environment => "Environment",
        RequestHeader => "RequestHeader",
    }
}

/// A literal tag value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LiteralCustomTag {
    pub value: Option<String>,
}

/// A tag read from an environment variable or a request header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamedCustomTag {
    pub name: Option<String>,
    pub default_value: Option<String>,
}

/// Span names for client and server spans.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TracingSpanName {
    pub client: Option<String>,
    pub server: Option<String>,
}
