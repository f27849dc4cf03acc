//! The CRD's admission rules for `BackendTrafficPolicy.spec`: OpenAPI constraints (required,
//! enums, bounds, lengths, patterns, list sizes and uniqueness) and every
//! `x-kubernetes-validations` CEL rule, each reported at the path where the API server reports it.
//!
//! CEL rules see the object after API-server defaulting, so defaulted fields
//! (`targetSelectors[].namespaces.from`, `statusCodes[].type`, `body.type`, fraction
//! denominators, ...) count as present here.

use super::schema::{
    DNS_SUBDOMAIN, DYNAMIC_MODULE_NAME, GROUP, HEADER_NAME, KIND, Kind, NO_CR_LF_NUL, NO_NUL_LF_CR,
    Schema, index, key,
};
use super::translate::go_parse_duration;
use super::types::*;
use super::values::CrdEnum;
use crate::scenario::check::Checker;

/// Largest value of the CRD's uint32-like integer fields.
const MAX_U32: i64 = 4_294_967_295;

const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";
const TARGET_KINDS: [&str; 7] = [
    "Gateway",
    "ListenerSet",
    "HTTPRoute",
    "GRPCRoute",
    "UDPRoute",
    "TCPRoute",
    "TLSRoute",
];
const XROUTE_KINDS: [&str; 5] = ["HTTPRoute", "GRPCRoute", "UDPRoute", "TCPRoute", "TLSRoute"];
const ADMISSION_CONTROL_KINDS: [&str; 4] = ["Gateway", "ListenerSet", "HTTPRoute", "GRPCRoute"];

/// Checks `spec` (found at `base`, normally `"spec"`) against every rule of the v1.9.0 CRD.
pub fn validate(spec: &BackendTrafficPolicySpec, check: &mut Checker<'_>, base: &str) {
    validate_after(spec, check, base, false);
}

/// [`validate`] for a spec whose mistyped fields were already reported and cut out: such
/// errors keep the API server from evaluating CEL rules (`type_errors`).
pub(crate) fn validate_after(
    spec: &BackendTrafficPolicySpec,
    check: &mut Checker<'_>,
    base: &str,
    type_errors: bool,
) {
    let mut schema = Schema::new(check);
    if type_errors {
        schema.block();
    }
    walk(&mut schema, spec, base);
    schema.finish(base);
}

fn walk(s: &mut Schema<'_, '_>, spec: &BackendTrafficPolicySpec, base: &str) {
    spec_rules(s, spec, base);
    if let Some(r) = &spec.target_ref {
        target_ref(s, r, &key(base, "targetRef"));
    }
    for_each(&spec.target_refs, &key(base, "targetRefs"), |p, r| {
        target_ref(s, r, p)
    });
    for_each(
        &spec.target_selectors,
        &key(base, "targetSelectors"),
        |p, t| target_selector(s, t, p),
    );
    if let Some(mt) = &spec.merge_type {
        s.cel(
            mt != "Replace",
            &key(base, "mergeType"),
            Kind::String(mt),
            "Replace is not a valid MergeType for BackendTrafficPolicySpec",
        );
    }
    if let Some(lb) = &spec.load_balancer {
        load_balancer(s, lb, &key(base, "loadBalancer"));
    }
    if let Some(r) = &spec.retry {
        retry(s, r, &key(base, "retry"));
    }
    if let Some(pp) = &spec.proxy_protocol {
        let path = key(base, "proxyProtocol");
        s.required(&pp.version, &key(&path, "version"));
        s.enumeration(pp.version.as_ref(), &key(&path, "version"));
    }
    if let Some(ka) = &spec.tcp_keepalive {
        let path = key(base, "tcpKeepalive");
        s.duration(&ka.idle_time, &key(&path, "idleTime"));
        s.duration(&ka.interval, &key(&path, "interval"));
    }
    if let Some(hc) = &spec.health_check {
        health_check(s, hc, &key(base, "healthCheck"));
    }
    if let Some(cb) = &spec.circuit_breaker {
        circuit_breaker(s, cb, &key(base, "circuitBreaker"));
    }
    if let Some(t) = &spec.timeout {
        let path = key(base, "timeout");
        if let Some(tcp) = &t.tcp {
            s.duration(
                &tcp.connect_timeout,
                &key(&key(&path, "tcp"), "connectTimeout"),
            );
        }
        if let Some(http) = &t.http {
            let path = key(&path, "http");
            s.duration(
                &http.connection_idle_timeout,
                &key(&path, "connectionIdleTimeout"),
            );
            s.duration(
                &http.max_connection_duration,
                &key(&path, "maxConnectionDuration"),
            );
            s.duration(&http.request_timeout, &key(&path, "requestTimeout"));
            s.duration(&http.max_stream_duration, &key(&path, "maxStreamDuration"));
            s.duration(&http.stream_idle_timeout, &key(&path, "streamIdleTimeout"));
        }
    }
    if let Some(c) = &spec.connection {
        let path = key(base, "connection");
        s.quantity(&c.buffer_limit, &key(&path, "bufferLimit"));
        s.quantity(&c.socket_buffer_limit, &key(&path, "socketBufferLimit"));
        if let Some(pc) = &c.preconnect {
            let path = key(&path, "preconnect");
            s.int_range(
                pc.per_endpoint_percent,
                &key(&path, "perEndpointPercent"),
                Some(100),
                Some(300),
            );
            s.int_range(
                pc.predictive_percent,
                &key(&path, "predictivePercent"),
                Some(100),
                None,
            );
        }
    }
    if let Some(d) = &spec.dns {
        let path = key(base, "dns");
        s.duration(&d.dns_refresh_rate, &key(&path, "dnsRefreshRate"));
        s.enumeration(d.lookup_family.as_ref(), &key(&path, "lookupFamily"));
    }
    if let Some(h2) = &spec.http2 {
        http2(s, h2, &key(base, "http2"));
    }
    if let Some(rl) = &spec.rate_limit {
        rate_limit(s, rl, &key(base, "rateLimit"));
    }
    if let Some(bl) = &spec.bandwidth_limit {
        bandwidth_limit(s, bl, &key(base, "bandwidthLimit"));
    }
    if let Some(fi) = &spec.fault_injection {
        fault_injection(s, fi, &key(base, "faultInjection"));
    }
    if let Some(ac) = &spec.admission_control {
        admission_control(s, ac, &key(base, "admissionControl"));
    }
    for field in ["compression", "compressor"] {
        let list = if field == "compression" {
            &spec.compression
        } else {
            &spec.compressor
        };
        for_each(list, &key(base, field), |p, c| {
            s.required(&c.type_, &key(p, "type"));
            s.enumeration(c.type_.as_ref(), &key(p, "type"));
            s.quantity(&c.min_content_length, &key(p, "minContentLength"));
        });
    }
    for_each(
        &spec.response_override,
        &key(base, "responseOverride"),
        |p, ro| response_override(s, ro, p),
    );
    for_each(&spec.http_upgrade, &key(base, "httpUpgrade"), |p, u| {
        s.required(&u.type_, &key(p, "type"));
        if u.connect.is_some() {
            match &u.type_ {
                Some(t) => s.cel(
                    t == "CONNECT",
                    p,
                    Kind::Object,
                    "The connect configuration is only allowed when the type is CONNECT.",
                ),
                None => s.cel_no_such_key(
                    p,
                    Kind::Object,
                    "type",
                    "The connect configuration is only allowed when the type is CONNECT.",
                ),
            }
        }
    });
    if let Some(rb) = &spec.request_buffer {
        s.quantity(&rb.limit, &key(&key(base, "requestBuffer"), "limit"));
    }
    if let Some(t) = &spec.telemetry {
        telemetry(s, t, &key(base, "telemetry"));
    }
}

/// Runs `f` on every item of an optional list with the item's path.
fn for_each<T>(list: &Option<Vec<T>>, path: &str, mut f: impl FnMut(&str, &T)) {
    for (i, item) in list.iter().flatten().enumerate() {
        f(&index(path, i), item);
    }
}

/// A CEL boolean that may also be a "no such key" evaluation error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cel {
    True,
    False,
    NoKey(&'static str),
}

impl Cel {
    fn of(b: bool) -> Cel {
        if b { Cel::True } else { Cel::False }
    }

    /// CEL's commutative `&&`: false wins over an error.
    fn and(self, other: Cel) -> Cel {
        match (self, other) {
            (Cel::False, _) | (_, Cel::False) => Cel::False,
            (Cel::NoKey(k), _) | (_, Cel::NoKey(k)) => Cel::NoKey(k),
            _ => Cel::True,
        }
    }

    /// CEL's commutative `||`: true wins over an error.
    fn or(self, other: Cel) -> Cel {
        match (self, other) {
            (Cel::True, _) | (_, Cel::True) => Cel::True,
            (Cel::NoKey(k), _) | (_, Cel::NoKey(k)) => Cel::NoKey(k),
            _ => Cel::False,
        }
    }

    fn not(self) -> Cel {
        match self {
            Cel::True => Cel::False,
            Cel::False => Cel::True,
            e => e,
        }
    }

    /// `cond ? a : b`.
    fn pick(self, then: Cel, otherwise: Cel) -> Cel {
        match self {
            Cel::True => then,
            Cel::False => otherwise,
            e => e,
        }
    }

    /// A test on a field that may be missing.
    fn field(value: Option<&str>, name: &'static str, test: impl Fn(&str) -> bool) -> Cel {
        match value {
            Some(v) => Cel::of(test(v)),
            None => Cel::NoKey(name),
        }
    }

    /// `list.all(x, test(x))`.
    fn all<T>(items: &[T], test: impl Fn(&T) -> Cel) -> Cel {
        items
            .iter()
            .fold(Cel::True, |acc, item| acc.and(test(item)))
    }

    fn report(self, s: &mut Schema<'_, '_>, path: &str, kind: Kind<'_>, message: &str) {
        match self {
            Cel::True => {}
            Cel::False => s.cel(false, path, kind, message),
            Cel::NoKey(field) => s.cel_no_such_key(path, kind, field, message),
        }
    }
}

/// CEL's `duration(s)`: Go's `time.ParseDuration`, which also reads values the CRD pattern
/// rejects (`1.5s`); the pattern error is reported separately and does not stop CEL. A value
/// Go cannot parse makes the rule fail to evaluate; that case is left out (None).
fn cel_duration(value: &Option<String>) -> Option<i128> {
    value.as_deref().and_then(|v| go_parse_duration(v).ok())
}

fn has<T>(value: &Option<T>) -> Cel {
    Cel::of(value.is_some())
}

/// The spec-level CEL rules (btp-spec §a.3).
fn spec_rules(s: &mut Schema<'_, '_>, spec: &BackendTrafficPolicySpec, base: &str) {
    let obj = Kind::Object;
    let selectors_used = spec
        .target_selectors
        .as_ref()
        .is_some_and(|v| !v.is_empty());
    has(&spec.target_ref)
        .and(has(&spec.target_refs).not())
        .or(has(&spec.target_ref).not().and(has(&spec.target_refs)))
        .or(Cel::of(selectors_used))
        .report(s, base, obj, "either targetRef or targetRefs must be used");

    let ref_group = |r: &LocalPolicyTargetReferenceWithSectionName| {
        Cel::field(r.group.as_deref(), "group", |g| g == GATEWAY_API_GROUP)
    };
    let ref_kind_in = |kinds: &'static [&'static str]| {
        move |r: &LocalPolicyTargetReferenceWithSectionName| {
            Cel::field(r.kind.as_deref(), "kind", |k| kinds.contains(&k))
        }
    };
    let sel_kind_in = |kinds: &'static [&'static str]| {
        move |t: &TargetSelector| Cel::field(t.kind.as_deref(), "kind", |k| kinds.contains(&k))
    };
    let refs: &[LocalPolicyTargetReferenceWithSectionName] =
        spec.target_refs.as_deref().unwrap_or(&[]);
    let selectors: &[TargetSelector] = spec.target_selectors.as_deref().unwrap_or(&[]);

    if let Some(r) = &spec.target_ref {
        ref_group(r).report(
            s,
            base,
            obj,
            "this policy can only have a targetRef.group of gateway.networking.k8s.io",
        );
        ref_kind_in(&TARGET_KINDS)(r).report(
            s,
            base,
            obj,
            "this policy can only have a targetRef.kind of Gateway/ListenerSet/HTTPRoute/GRPCRoute/TCPRoute/UDPRoute/TLSRoute",
        );
    }
    if spec.target_refs.is_some() {
        Cel::all(refs, ref_group).report(
            s,
            base,
            obj,
            "this policy can only have a targetRefs[*].group of gateway.networking.k8s.io",
        );
        Cel::all(refs, ref_kind_in(&TARGET_KINDS)).report(
            s,
            base,
            obj,
            "this policy can only have a targetRefs[*].kind of Gateway/ListenerSet/HTTPRoute/GRPCRoute/TCPRoute/UDPRoute/TLSRoute",
        );
    }
    let kinds_within = |kinds: &'static [&'static str]| {
        let single = match &spec.target_ref {
            Some(r) => ref_kind_in(kinds)(r),
            None => Cel::True,
        };
        let list = if spec.target_refs.is_some() {
            Cel::all(refs, ref_kind_in(kinds))
        } else {
            Cel::True
        };
        let sel = if spec.target_selectors.is_some() {
            Cel::all(selectors, sel_kind_in(kinds))
        } else {
            Cel::True
        };
        single.and(list).and(sel)
    };
    if spec.merge_type.is_some() {
        kinds_within(&XROUTE_KINDS).report(
            s,
            base,
            obj,
            "mergeType can only be used with xRoute targets",
        );
    }
    s.cel(
        spec.compression.is_none() || spec.compressor.is_none(),
        base,
        obj,
        "either compression or compressor can be set, not both",
    );
    s.cel(
        spec.request_buffer.is_none() || spec.http_upgrade.as_ref().is_none_or(|u| u.is_empty()),
        base,
        obj,
        "requestBuffer cannot be used together with httpUpgrade",
    );
    if spec.admission_control.is_some() {
        kinds_within(&ADMISSION_CONTROL_KINDS).report(
            s,
            base,
            obj,
            "admissionControl can only be used with HTTPRoute, GRPCRoute, Gateway, or ListenerSet targets",
        );
    }
    let predictive = spec
        .connection
        .as_ref()
        .and_then(|c| c.preconnect.as_ref())
        .is_some_and(|p| p.predictive_percent.is_some());
    let lb_ok = spec
        .load_balancer
        .as_ref()
        .and_then(|lb| lb.type_.as_ref())
        .is_some_and(|t| matches!(t, LoadBalancerType::Random | LoadBalancerType::RoundRobin));
    s.cel(
        !predictive || lb_ok,
        base,
        obj,
        "predictivePercent in preconnect policy only works with RoundRobin or Random load balancers",
    );
}

fn target_ref(s: &mut Schema<'_, '_>, r: &LocalPolicyTargetReferenceWithSectionName, path: &str) {
    group_field(s, &r.group, &key(path, "group"), true);
    kind_field(s, &r.kind, &key(path, "kind"));
    s.required(&r.name, &key(path, "name"));
    s.str_len(r.name.as_deref(), &key(path, "name"), Some(1), Some(253));
    let section = key(path, "sectionName");
    s.str_len(r.section_name.as_deref(), &section, Some(1), Some(253));
    s.pattern(r.section_name.as_deref(), &section, &DNS_SUBDOMAIN);
}

fn group_field(s: &mut Schema<'_, '_>, group: &Option<String>, path: &str, required: bool) {
    if required {
        s.required(group, path);
    }
    s.str_len(group.as_deref(), path, None, Some(253));
    s.pattern(group.as_deref(), path, &GROUP);
}

fn kind_field(s: &mut Schema<'_, '_>, kind: &Option<String>, path: &str) {
    s.required(kind, path);
    s.str_len(kind.as_deref(), path, Some(1), Some(63));
    s.pattern(kind.as_deref(), path, &KIND);
}

fn target_selector(s: &mut Schema<'_, '_>, t: &TargetSelector, path: &str) {
    // `group` defaults to gateway.networking.k8s.io, so it is never missing.
    group_field(s, &t.group, &key(path, "group"), false);
    kind_field(s, &t.kind, &key(path, "kind"));
    match_expressions(s, &t.match_expressions, &key(path, "matchExpressions"));
    if let Some(ns) = &t.namespaces {
        let ns_path = key(path, "namespaces");
        s.enumeration(ns.from.as_ref(), &key(&ns_path, "from"));
        if let Some(sel) = &ns.selector {
            let sel_path = key(&ns_path, "selector");
            match_expressions(
                s,
                &sel.match_expressions,
                &key(&sel_path, "matchExpressions"),
            );
        }
        let from_selector = matches!(ns.from, Some(FromNamespaces::Selector));
        s.cel(
            !from_selector || ns.selector.is_some(),
            &ns_path,
            Kind::Object,
            "selector must be specified when from is Selector",
        );
    }
    s.cel(
        t.group.as_deref().is_none_or(|g| g == GATEWAY_API_GROUP),
        path,
        Kind::Object,
        "group must be gateway.networking.k8s.io",
    );
}

fn match_expressions(
    s: &mut Schema<'_, '_>,
    list: &Option<Vec<LabelSelectorRequirement>>,
    path: &str,
) {
    for_each(list, path, |p, e| {
        s.required(&e.key, &key(p, "key"));
        s.required(&e.operator, &key(p, "operator"));
    });
}

fn load_balancer(s: &mut Schema<'_, '_>, lb: &LoadBalancer, path: &str) {
    s.required(&lb.type_, &key(path, "type"));
    s.enumeration(lb.type_.as_ref(), &key(path, "type"));
    if let Some(ch) = &lb.consistent_hash {
        consistent_hash(s, ch, &key(path, "consistentHash"));
    }
    if let Some(ss) = &lb.slow_start {
        let p = key(path, "slowStart");
        s.required(&ss.window, &key(&p, "window"));
        s.duration(&ss.window, &key(&p, "window"));
    }
    if let Some(za) = &lb.zone_aware {
        let p = key(path, "zoneAware");
        if let Some(pl) = &za.prefer_local {
            let pl_path = key(&p, "preferLocal");
            s.int_range(
                pl.percentage_enabled,
                &key(&pl_path, "percentageEnabled"),
                Some(0),
                Some(100),
            );
        }
        let zones = key(&p, "weightedZones");
        for_each(&za.weighted_zones, &zones, |zp, z| {
            s.required(&z.weight, &key(zp, "weight"));
            s.required(&z.zone, &key(zp, "zone"));
        });
        if let Some(list) = &za.weighted_zones {
            let keys: Vec<Option<&str>> = list.iter().map(|z| z.zone.as_deref()).collect();
            s.map_duplicates(&keys, "zone", &zones);
        }
    }
    if let Some(eo) = &lb.endpoint_override {
        let p = key(path, "endpointOverride");
        s.required(&eo.extract_from, &key(&p, "extractFrom"));
        s.items(&eo.extract_from, &key(&p, "extractFrom"), Some(1), Some(10));
    }
    if let Some(bu) = &lb.backend_utilization {
        let p = key(path, "backendUtilization");
        s.duration(&bu.blackout_period, &key(&p, "blackoutPeriod"));
        s.duration(
            &bu.weight_expiration_period,
            &key(&p, "weightExpirationPeriod"),
        );
        s.duration(&bu.weight_update_period, &key(&p, "weightUpdatePeriod"));
        s.int_range(
            bu.error_utilization_penalty_percent,
            &key(&p, "errorUtilizationPenaltyPercent"),
            Some(0),
            None,
        );
        if let Some(oob) = &bu.out_of_band {
            let p = key(&p, "outOfBand");
            let authority = key(&p, "authority");
            s.str_len(oob.authority.as_deref(), &authority, Some(1), Some(259));
            s.pattern(oob.authority.as_deref(), &authority, &NO_NUL_LF_CR);
            s.int_range(oob.port, &key(&p, "port"), Some(1), Some(65535));
            let period = key(&p, "reportingPeriod");
            s.duration(&oob.reporting_period, &period);
            if let Some(d) = cel_duration(&oob.reporting_period) {
                let text = oob.reporting_period.as_deref().unwrap_or_default();
                s.cel(
                    d > 0,
                    &period,
                    Kind::String(text),
                    "reportingPeriod must be greater than 0",
                );
            }
        }
    }
    if let Some(dm) = &lb.dynamic_module {
        let p = key(path, "dynamicModule");
        s.required(&dm.lb_policy_name, &key(&p, "lbPolicyName"));
        s.required(&dm.name, &key(&p, "name"));
        s.str_len(
            dm.lb_policy_name.as_deref(),
            &key(&p, "lbPolicyName"),
            Some(1),
            Some(253),
        );
        s.str_len(dm.name.as_deref(), &key(&p, "name"), Some(1), Some(253));
        s.pattern(dm.name.as_deref(), &key(&p, "name"), &DYNAMIC_MODULE_NAME);
    }

    let obj = Kind::Object;
    let ty = lb.type_.as_ref().map(CrdEnum::as_str);
    let is = |name: &'static str| Cel::field(ty, "type", move |t| t == name);
    let paired = |name: &'static str, field: Cel| is(name).pick(field, field.not());
    paired("ConsistentHash", has(&lb.consistent_hash)).report(
        s,
        path,
        obj,
        "If LoadBalancer type is consistentHash, consistentHash field needs to be set.",
    );
    paired("BackendUtilization", has(&lb.backend_utilization)).report(
        s,
        path,
        obj,
        "If LoadBalancer type is BackendUtilization, backendUtilization field needs to be set.",
    );
    paired("DynamicModule", has(&lb.dynamic_module)).report(
        s,
        path,
        obj,
        "If LoadBalancer type is DynamicModule, dynamicModule field needs to be set.",
    );
    Cel::field(ty, "type", |t| ["Random", "ConsistentHash", "DynamicModule"].contains(&t))
        .pick(has(&lb.slow_start).not(), Cel::True)
        .report(
            s,
            path,
            obj,
            "Currently SlowStart is only supported for RoundRobin, LeastRequest, and BackendUtilization load balancers.",
        );
    let prefer_local = lb
        .zone_aware
        .as_ref()
        .is_some_and(|z| z.prefer_local.is_some());
    let weighted = lb
        .zone_aware
        .as_ref()
        .is_some_and(|z| z.weighted_zones.is_some());
    is("ConsistentHash")
        .and(has(&lb.zone_aware))
        .pick(Cel::of(!prefer_local), Cel::True)
        .report(
            s,
            path,
            obj,
            "PreferLocal zone-aware routing is not supported for ConsistentHash load balancers. Use weightedZones instead.",
        );
    is("BackendUtilization")
        .and(has(&lb.zone_aware))
        .pick(Cel::of(!prefer_local), Cel::True)
        .report(
            s,
            path,
            obj,
            "PreferLocal zone-aware routing is not currently supported for BackendUtilization load balancers. Only WeightedZones can be used with BackendUtilization.",
        );
    is("DynamicModule")
        .pick(has(&lb.zone_aware).not(), Cel::True)
        .report(
            s,
            path,
            obj,
            "ZoneAware routing is not supported for DynamicModule load balancers.",
        );
    s.cel(
        !(prefer_local && weighted),
        path,
        obj,
        "ZoneAware PreferLocal and WeightedZones cannot be specified together.",
    );
    is("DynamicModule")
        .pick(has(&lb.endpoint_override).not(), Cel::True)
        .report(
            s,
            path,
            obj,
            "EndpointOverride is not supported for DynamicModule load balancers.",
        );
}

fn consistent_hash(s: &mut Schema<'_, '_>, ch: &ConsistentHash, path: &str) {
    s.required(&ch.type_, &key(path, "type"));
    s.enumeration(ch.type_.as_ref(), &key(path, "type"));
    if let Some(c) = &ch.cookie {
        let p = key(path, "cookie");
        s.required(&c.name, &key(&p, "name"));
        s.duration(&c.ttl, &key(&p, "ttl"));
    }
    if let Some(h) = &ch.header {
        s.required(&h.name, &key(&key(path, "header"), "name"));
    }
    for field in ["headers", "queryParams"] {
        let list = if field == "headers" {
            &ch.headers
        } else {
            &ch.query_params
        };
        for_each(list, &key(path, field), |p, h| {
            s.required(&h.name, &key(p, "name"))
        });
    }
    s.int_range(
        ch.table_size,
        &key(path, "tableSize"),
        Some(2),
        Some(5_000_011),
    );
    let ty = ch.type_.as_ref().map(CrdEnum::as_str);
    for (name, present, message) in [
        (
            "Header",
            ch.header.is_some(),
            "If consistent hash type is header, the header field must be set.",
        ),
        (
            "Headers",
            ch.headers.is_some(),
            "If consistent hash type is headers, the headers field must be set.",
        ),
        (
            "Cookie",
            ch.cookie.is_some(),
            "If consistent hash type is cookie, the cookie field must be set.",
        ),
        (
            "QueryParams",
            ch.query_params.is_some(),
            "If consistent hash type is queryParams, the queryParams field must be set.",
        ),
    ] {
        Cel::field(ty, "type", |t| t == name)
            .pick(Cel::of(present), Cel::of(!present))
            .report(s, path, Kind::Object, message);
    }
}

fn retry(s: &mut Schema<'_, '_>, r: &Retry, path: &str) {
    s.int_range(r.num_retries, &key(path, "numRetries"), Some(0), None);
    if let Some(pr) = &r.per_retry {
        let p = key(path, "perRetry");
        s.duration(&pr.timeout, &key(&p, "timeout"));
        if let Some(bo) = &pr.back_off {
            let p = key(&p, "backOff");
            s.duration(&bo.base_interval, &key(&p, "baseInterval"));
            s.duration(&bo.max_interval, &key(&p, "maxInterval"));
        }
    }
    if let Some(ro) = &r.retry_on {
        let p = key(path, "retryOn");
        status_codes(s, &ro.http_status_codes, &key(&p, "httpStatusCodes"));
        for_each(&ro.triggers, &key(&p, "triggers"), |tp, t| {
            s.enumeration(Some(t), tp);
        });
    }
}

/// A list of HTTP status codes, each 100..599.
fn status_codes(s: &mut Schema<'_, '_>, list: &Option<Vec<i64>>, path: &str) {
    for_each(list, path, |p, code| {
        s.int_range(Some(*code), p, Some(100), Some(599))
    });
}

fn health_check(s: &mut Schema<'_, '_>, hc: &HealthCheck, path: &str) {
    s.int_range(
        hc.panic_threshold,
        &key(path, "panicThreshold"),
        Some(0),
        Some(100),
    );
    if let Some(a) = &hc.active {
        active_health_check(s, a, &key(path, "active"));
    }
    if let Some(p) = &hc.passive {
        let path = key(path, "passive");
        s.duration(&p.base_ejection_time, &key(&path, "baseEjectionTime"));
        s.duration(&p.interval, &key(&path, "interval"));
        s.int_range(
            p.failure_percentage_threshold,
            &key(&path, "failurePercentageThreshold"),
            Some(0),
            Some(100),
        );
        s.int_range(
            p.max_ejection_percent,
            &key(&path, "maxEjectionPercent"),
            Some(0),
            Some(100),
        );
    }
}

fn active_health_check(s: &mut Schema<'_, '_>, a: &ActiveHealthCheck, path: &str) {
    s.required(&a.type_, &key(path, "type"));
    s.enumeration_all_of(a.type_.as_ref(), &key(path, "type"));
    s.int_range(
        a.healthy_threshold,
        &key(path, "healthyThreshold"),
        Some(1),
        None,
    );
    s.int_range(
        a.unhealthy_threshold,
        &key(path, "unhealthyThreshold"),
        Some(1),
        None,
    );
    s.duration(&a.initial_jitter, &key(path, "initialJitter"));
    s.duration(&a.interval, &key(path, "interval"));
    s.duration(&a.timeout, &key(path, "timeout"));
    if let Some(o) = &a.overrides {
        s.int_range(
            o.port,
            &key(&key(path, "overrides"), "port"),
            Some(1),
            Some(65535),
        );
    }
    if let Some(h) = &a.http {
        let p = key(path, "http");
        s.required(&h.path, &key(&p, "path"));
        s.str_len(h.path.as_deref(), &key(&p, "path"), Some(1), Some(1024));
        let host = key(&p, "hostname");
        s.str_len(h.hostname.as_deref(), &host, Some(1), Some(253));
        s.pattern(h.hostname.as_deref(), &host, &DNS_SUBDOMAIN);
        s.str_len(h.method.as_deref(), &key(&p, "method"), None, Some(16));
        status_codes(s, &h.expected_statuses, &key(&p, "expectedStatuses"));
        status_codes(s, &h.retriable_statuses, &key(&p, "retriableStatuses"));
        if let Some(pl) = &h.expected_response {
            payload(s, pl, &key(&p, "expectedResponse"));
        }
        if let Some(pl) = &h.request_body {
            payload(s, pl, &key(&p, "requestBody"));
        }
        let method_ok = h
            .method
            .as_deref()
            .is_some_and(|m| ["POST", "PUT"].contains(&m.to_ascii_uppercase().as_str()));
        s.cel(
            h.request_body.is_none() || method_ok,
            &p,
            Kind::Object,
            "The requestBody field can only be set when method is POST or PUT.",
        );
    }
    if let Some(t) = &a.tcp {
        let p = key(path, "tcp");
        if let Some(pl) = &t.receive {
            payload(s, pl, &key(&p, "receive"));
        }
        if let Some(pl) = &t.send {
            payload(s, pl, &key(&p, "send"));
        }
    }
    if let Some(log) = &a.health_check_log {
        health_check_log(s, log, &key(path, "healthCheckLog"));
    }

    let ty = a.type_.as_ref().map(CrdEnum::as_str);
    let is = |name: &'static str| Cel::field(ty, "type", move |t| t == name);
    is("HTTP").pick(has(&a.http), has(&a.http).not()).report(
        s,
        path,
        Kind::Object,
        "If Health Checker type is HTTP, http field needs to be set.",
    );
    is("TCP").pick(has(&a.tcp), has(&a.tcp).not()).report(
        s,
        path,
        Kind::Object,
        "If Health Checker type is TCP, tcp field needs to be set.",
    );
    has(&a.grpc).pick(is("GRPC"), Cel::True).report(
        s,
        path,
        Kind::Object,
        "The grpc field can only be set if the Health Checker type is GRPC.",
    );
}

fn payload(s: &mut Schema<'_, '_>, p: &ActiveHealthCheckPayload, path: &str) {
    s.required(&p.type_, &key(path, "type"));
    s.enumeration_all_of(p.type_.as_ref(), &key(path, "type"));
    s.base64(p.binary.as_deref(), &key(path, "binary"));
    let ty = p.type_.as_ref().map(CrdEnum::as_str);
    Cel::field(ty, "type", |t| t == "Text")
        .pick(has(&p.text), has(&p.text).not())
        .report(
            s,
            path,
            Kind::Object,
            "If payload type is Text, text field needs to be set.",
        );
    Cel::field(ty, "type", |t| t == "Binary")
        .pick(has(&p.binary), has(&p.binary).not())
        .report(
            s,
            path,
            Kind::Object,
            "If payload type is Binary, binary field needs to be set.",
        );
}

fn health_check_log(s: &mut Schema<'_, '_>, log: &HealthCheckLog, path: &str) {
    let matches_path = key(path, "matches");
    s.items(&log.matches, &matches_path, None, Some(4));
    for_each(&log.matches, &matches_path, |p, m| {
        s.enumeration(Some(m), p);
    });
    if let Some(matches) = &log.matches {
        let texts: Vec<String> = matches.iter().map(|m| m.as_str().to_string()).collect();
        s.set_duplicates(&texts, &matches_path);
        let failure = texts
            .iter()
            .any(|m| m == "Failure" || m == "FailureSeriesStart");
        let success = texts
            .iter()
            .any(|m| m == "Success" || m == "HealthyTransition");
        s.cel(
            failure == success,
            &matches_path,
            Kind::Array,
            "a failure type and a success type must both be specified together",
        );
    }
    let sinks_path = key(path, "sinks");
    s.items(&log.sinks, &sinks_path, None, Some(1));
    for_each(&log.sinks, &sinks_path, |p, sink| {
        s.required(&sink.type_, &key(p, "type"));
        s.enumeration(sink.type_.as_ref(), &key(p, "type"));
        if let Some(f) = &sink.file {
            let fp = key(&key(p, "file"), "path");
            s.required(&f.path, &fp);
            s.str_len(f.path.as_deref(), &fp, Some(1), None);
        }
        let ty = sink.type_.as_ref().map(CrdEnum::as_str);
        Cel::field(ty, "type", |t| t == "File")
            .pick(has(&sink.file), has(&sink.file).not())
            .report(
                s,
                p,
                Kind::Object,
                "If ProxyHealthCheckLogSink type is File, file field needs to be set.",
            );
    });
}

fn circuit_breaker(s: &mut Schema<'_, '_>, cb: &CircuitBreaker, path: &str) {
    for (field, value) in [
        ("maxConnections", cb.max_connections),
        ("maxParallelRequests", cb.max_parallel_requests),
        ("maxParallelRetries", cb.max_parallel_retries),
        ("maxPendingRequests", cb.max_pending_requests),
        ("maxRequestsPerConnection", cb.max_requests_per_connection),
    ] {
        s.int_range(value, &key(path, field), Some(0), Some(MAX_U32));
    }
    if let Some(pe) = &cb.per_endpoint {
        s.int_range(
            pe.max_connections,
            &key(&key(path, "perEndpoint"), "maxConnections"),
            Some(0),
            Some(MAX_U32),
        );
    }
    if let Some(rb) = &cb.retry_budget {
        let p = key(path, "retryBudget");
        s.required(&rb.percent, &key(&p, "percent"));
        if let Some(f) = &rb.percent {
            fraction(s, f, &key(&p, "percent"));
        }
    }
}

/// A Gateway API Fraction: numerator required, denominator defaults to 100.
fn fraction(s: &mut Schema<'_, '_>, f: &Fraction, path: &str) {
    s.required(&f.numerator, &key(path, "numerator"));
    s.int_range(f.numerator, &key(path, "numerator"), Some(0), None);
    s.int_range(f.denominator, &key(path, "denominator"), Some(1), None);
    let denominator = f.denominator.unwrap_or(100);
    match f.numerator {
        Some(n) => s.cel(
            n <= denominator,
            path,
            Kind::Object,
            "numerator must be less than or equal to denominator",
        ),
        None => s.cel_no_such_key(
            path,
            Kind::Object,
            "numerator",
            "numerator must be less than or equal to denominator",
        ),
    }
}

fn http2(s: &mut Schema<'_, '_>, h2: &Http2Settings, path: &str) {
    s.quantity(
        &h2.initial_connection_window_size,
        &key(path, "initialConnectionWindowSize"),
    );
    s.quantity(
        &h2.initial_stream_window_size,
        &key(path, "initialStreamWindowSize"),
    );
    s.int_range(
        h2.max_concurrent_streams,
        &key(path, "maxConcurrentStreams"),
        Some(1),
        Some(2_147_483_647),
    );
    if let Some(ka) = &h2.connection_keepalive {
        let p = key(path, "connectionKeepalive");
        s.duration(&ka.idle_interval, &key(&p, "idleInterval"));
        s.duration(&ka.interval, &key(&p, "interval"));
        s.int_range(
            ka.interval_jitter,
            &key(&p, "intervalJitter"),
            Some(0),
            Some(100),
        );
        s.duration(&ka.timeout, &key(&p, "timeout"));
        if let (Some(t), Some(i)) = (cel_duration(&ka.timeout), cel_duration(&ka.interval)) {
            s.cel(
                t < i,
                &p,
                Kind::Object,
                "timeout must be less than interval",
            );
        }
    }
}

fn rate_limit(s: &mut Schema<'_, '_>, rl: &RateLimitSpec, path: &str) {
    s.enumeration(rl.type_.as_ref(), &key(path, "type"));
    if let Some(g) = &rl.global {
        let p = key(path, "global");
        let rules = key(&p, "rules");
        s.required(&g.rules, &rules);
        s.items(&g.rules, &rules, None, Some(256));
        for_each(&g.rules, &rules, |rp, r| rate_limit_rule(s, r, rp));
    }
    if let Some(l) = &rl.local {
        let rules = key(&key(path, "local"), "rules");
        s.items(&l.rules, &rules, None, Some(16));
        for_each(&l.rules, &rules, |rp, r| rate_limit_rule(s, r, rp));
        if let Some(list) = &l.rules {
            let response_cost = list
                .iter()
                .all(|r| r.cost.as_ref().is_none_or(|c| c.response.is_none()));
            s.cel(
                response_cost,
                &rules,
                Kind::Array,
                "response cost is not supported for Local Rate Limits",
            );
            Cel::all(list, |r| match &r.limit {
                Some(limit) => Cel::of(limit.from_metadata.is_none()),
                None => Cel::NoKey("limit"),
            })
            .report(
                s,
                &rules,
                Kind::Array,
                "limit fromMetadata is not supported for Local Rate Limits",
            );
        }
    }
}

fn rate_limit_rule(s: &mut Schema<'_, '_>, r: &RateLimitRule, path: &str) {
    s.required(&r.limit, &key(path, "limit"));
    let selectors = key(path, "clientSelectors");
    s.items(&r.client_selectors, &selectors, None, Some(8));
    for_each(&r.client_selectors, &selectors, |p, c| {
        client_selector(s, c, p)
    });
    if let Some(limit) = &r.limit {
        let p = key(path, "limit");
        s.required(&limit.requests, &key(&p, "requests"));
        s.required(&limit.unit, &key(&p, "unit"));
        s.int_range(limit.requests, &key(&p, "requests"), Some(0), Some(MAX_U32));
        s.enumeration(limit.unit.as_ref(), &key(&p, "unit"));
        if let Some(md) = &limit.from_metadata {
            let p = key(&p, "fromMetadata");
            s.required(&md.key, &key(&p, "key"));
            s.required(&md.namespace, &key(&p, "namespace"));
            s.str_len(md.key.as_deref(), &key(&p, "key"), Some(1), None);
            s.str_len(
                md.namespace.as_deref(),
                &key(&p, "namespace"),
                Some(1),
                None,
            );
        }
    }
    if let Some(cost) = &r.cost {
        let p = key(path, "cost");
        for (field, spec) in [("request", &cost.request), ("response", &cost.response)] {
            let Some(c) = spec else { continue };
            let cp = key(&p, field);
            s.required(&c.from, &key(&cp, "from"));
            s.enumeration(c.from.as_ref(), &key(&cp, "from"));
            if let Some(md) = &c.metadata {
                let mp = key(&cp, "metadata");
                s.required(&md.key, &key(&mp, "key"));
                s.required(&md.namespace, &key(&mp, "namespace"));
            }
            s.cel(
                !(c.number.is_some() && c.metadata.is_some()),
                &cp,
                Kind::Object,
                "only one of number or metadata can be specified",
            );
        }
    }
    s.enumeration(
        r.x_rate_limit_headers.as_ref(),
        &key(path, "xRateLimitHeaders"),
    );
}

fn client_selector(s: &mut Schema<'_, '_>, c: &RateLimitSelectCondition, path: &str) {
    let headers = key(path, "headers");
    s.items(&c.headers, &headers, None, Some(128));
    for_each(&c.headers, &headers, |p, h| {
        named_match(s, &h.name, &h.value, p);
        s.enumeration(h.type_.as_ref(), &key(p, "type"));
    });
    for_each(&c.methods, &key(path, "methods"), |p, m| {
        s.required(&m.value, &key(p, "value"));
        s.enumeration(m.value.as_ref(), &key(p, "value"));
    });
    if let Some(pm) = &c.path {
        let p = key(path, "path");
        // `value` is required but defaults to "/", so it is never missing.
        s.enumeration(pm.type_.as_ref(), &key(&p, "type"));
        s.str_len(pm.value.as_deref(), &key(&p, "value"), None, Some(1024));
    }
    let params = key(path, "queryParams");
    s.items(&c.query_params, &params, None, Some(16));
    for_each(&c.query_params, &params, |p, q| {
        named_match(s, &q.name, &q.value, p);
        s.enumeration(q.type_.as_ref(), &key(p, "type"));
    });
    if let Some(sm) = &c.source_cidr {
        let p = key(path, "sourceCIDR");
        s.required(&sm.value, &key(&p, "value"));
        s.enumeration(sm.type_.as_ref(), &key(&p, "type"));
        s.str_len(sm.value.as_deref(), &key(&p, "value"), Some(1), Some(256));
    }
    s.cel(
        c.headers.is_some()
            || c.methods.is_some()
            || c.path.is_some()
            || c.source_cidr.is_some()
            || c.query_params.is_some(),
        path,
        Kind::Object,
        "at least one of headers, methods, path, sourceCIDR or queryParams must be specified",
    );
}

/// The name/value pair shared by header and query parameter conditions.
fn named_match(s: &mut Schema<'_, '_>, name: &Option<String>, value: &Option<String>, path: &str) {
    s.required(name, &key(path, "name"));
    s.str_len(name.as_deref(), &key(path, "name"), Some(1), Some(256));
    s.str_len(value.as_deref(), &key(path, "value"), None, Some(1024));
}

fn bandwidth_limit(s: &mut Schema<'_, '_>, bl: &BandwidthLimitSpec, path: &str) {
    if let Some(r) = &bl.request {
        let p = key(path, "request");
        s.required(&r.limit, &key(&p, "limit"));
        if let Some(l) = &r.limit {
            bandwidth_value(s, l, &key(&p, "limit"));
        }
    }
    if let Some(r) = &bl.response {
        let p = key(path, "response");
        s.required(&r.limit, &key(&p, "limit"));
        if let Some(l) = &r.limit {
            bandwidth_value(s, l, &key(&p, "limit"));
        }
        if let Some(t) = &r.response_trailers {
            s.pattern(
                t.prefix.as_deref(),
                &key(&key(&p, "responseTrailers"), "prefix"),
                &NO_CR_LF_NUL,
            );
        }
    }
    s.cel(
        bl.request.is_some() || bl.response.is_some(),
        path,
        Kind::Object,
        "at least one of request or response must be specified",
    );
}

fn bandwidth_value(s: &mut Schema<'_, '_>, v: &BandwidthLimitValue, path: &str) {
    s.required(&v.unit, &key(path, "unit"));
    s.required(&v.value, &key(path, "value"));
    s.enumeration(v.unit.as_ref(), &key(path, "unit"));
    s.quantity(&v.value, &key(path, "value"));
}

fn fault_injection(s: &mut Schema<'_, '_>, fi: &FaultInjection, path: &str) {
    if let Some(a) = &fi.abort {
        let p = key(path, "abort");
        s.int_range(a.grpc_status, &key(&p, "grpcStatus"), Some(0), Some(16));
        s.int_range(a.http_status, &key(&p, "httpStatus"), Some(200), Some(600));
        s.cel(
            !(a.http_status.is_some() && a.grpc_status.is_some()),
            &p,
            Kind::Object,
            "httpStatus and grpcStatus cannot be simultaneously defined.",
        );
        s.cel(
            a.http_status.is_some() || a.grpc_status.is_some(),
            &p,
            Kind::Object,
            "httpStatus and grpcStatus are set at least one.",
        );
    }
    if let Some(d) = &fi.delay {
        let p = key(path, "delay");
        s.required(&d.fixed_delay, &key(&p, "fixedDelay"));
        s.duration(&d.fixed_delay, &key(&p, "fixedDelay"));
    }
    s.cel(
        fi.delay.is_some() || fi.abort.is_some(),
        path,
        Kind::Object,
        "Delay and abort faults are set at least one.",
    );
}

fn admission_control(s: &mut Schema<'_, '_>, ac: &AdmissionControl, path: &str) {
    s.int_range(
        ac.max_rejection_percent,
        &key(path, "maxRejectionPercent"),
        Some(0),
        Some(100),
    );
    s.int_range(
        ac.min_request_rate,
        &key(path, "minRequestRate"),
        Some(0),
        None,
    );
    s.int_range(
        ac.min_success_rate,
        &key(path, "minSuccessRate"),
        Some(1),
        Some(100),
    );
    s.int_range(
        ac.rejection_aggression,
        &key(path, "rejectionAggression"),
        Some(1),
        None,
    );
    s.duration(&ac.sampling_window, &key(path, "samplingWindow"));
    if let Some(sc) = &ac.success_criteria {
        let p = key(path, "successCriteria");
        if let Some(g) = &sc.grpc {
            for_each(
                &g.status_codes,
                &key(&key(&p, "grpc"), "statusCodes"),
                |cp, c| {
                    s.enumeration(Some(c), cp);
                },
            );
        }
        if let Some(h) = &sc.http {
            status_codes(s, &h.status_codes, &key(&key(&p, "http"), "statusCodes"));
        }
    }
    s.cel(
        ac.min_success_rate.is_none_or(|v| (1..=100).contains(&v)),
        path,
        Kind::Object,
        "minSuccessRate must be between 1 and 100",
    );
    s.cel(
        ac.max_rejection_percent
            .is_none_or(|v| (0..=100).contains(&v)),
        path,
        Kind::Object,
        "maxRejectionPercent must be between 0 and 100",
    );
    if let Some(w) = cel_duration(&ac.sampling_window) {
        s.cel(
            w >= 1_000_000_000,
            path,
            Kind::Object,
            "samplingWindow must be at least 1s",
        );
    }
}

fn response_override(s: &mut Schema<'_, '_>, ro: &ResponseOverride, path: &str) {
    s.required(&ro.match_, &key(path, "match"));
    if let Some(m) = &ro.match_ {
        let p = key(path, "match");
        let headers = key(&p, "responseHeaders");
        s.items(&m.response_headers, &headers, Some(1), Some(16));
        for_each(&m.response_headers, &headers, |hp, h| {
            s.required(&h.name, &key(hp, "name"));
            s.required(&h.value, &key(hp, "value"));
            header_name(s, &h.name, &key(hp, "name"));
            if let Some(v) = &h.value {
                let vp = key(hp, "value");
                s.required(&v.value, &key(&vp, "value"));
                s.enumeration(v.type_.as_ref(), &key(&vp, "type"));
                s.str_len(v.value.as_deref(), &key(&vp, "value"), Some(1), Some(1024));
            }
        });
        let codes = key(&p, "statusCodes");
        s.items(&m.status_codes, &codes, Some(1), Some(50));
        for_each(&m.status_codes, &codes, |cp, c| status_code_match(s, c, cp));
        s.cel(
            m.status_codes.is_some() || m.response_headers.is_some(),
            &p,
            Kind::Object,
            "at least one of statusCodes or responseHeaders must be specified",
        );
    }
    if let Some(r) = &ro.redirect {
        redirect(s, r, &key(path, "redirect"));
    }
    if let Some(r) = &ro.response {
        custom_response(s, r, &key(path, "response"));
    }
    s.enumeration(ro.source.as_ref(), &key(path, "source"));
    s.cel(
        ro.response.is_some() != ro.redirect.is_some(),
        path,
        Kind::Object,
        "exactly one of response or redirect must be specified",
    );
}

fn header_name(s: &mut Schema<'_, '_>, name: &Option<String>, path: &str) {
    s.str_len(name.as_deref(), path, Some(1), Some(256));
    s.pattern(name.as_deref(), path, &HEADER_NAME);
}

fn status_code_match(s: &mut Schema<'_, '_>, c: &StatusCodeMatch, path: &str) {
    // `type` is required but defaults to `Value`.
    s.enumeration_all_of(c.type_.as_ref(), &key(path, "type"));
    let is_range = matches!(c.type_, Some(StatusCodeValueType::Range));
    let is_value = c.type_.is_none() || matches!(c.type_, Some(StatusCodeValueType::Value));
    if let Some(r) = &c.range {
        let p = key(path, "range");
        s.required(&r.end, &key(&p, "end"));
        s.required(&r.start, &key(&p, "start"));
        let message = "end must be greater than start";
        match (r.start, r.end) {
            (Some(start), Some(end)) => s.cel(end > start, &p, Kind::Object, message),
            (_, None) => s.cel_no_such_key(&p, Kind::Object, "end", message),
            (None, _) => s.cel_no_such_key(&p, Kind::Object, "start", message),
        }
    }
    s.cel(
        !is_value || c.value.is_some(),
        path,
        Kind::Object,
        "value must be set for type Value",
    );
    s.cel(
        !is_range || c.range.is_some(),
        path,
        Kind::Object,
        "range must be set for type Range",
    );
}

fn redirect(s: &mut Schema<'_, '_>, r: &CustomRedirect, path: &str) {
    let host = key(path, "hostname");
    s.str_len(r.hostname.as_deref(), &host, Some(1), Some(253));
    s.pattern(r.hostname.as_deref(), &host, &DNS_SUBDOMAIN);
    s.enumeration(r.scheme.as_ref(), &key(path, "scheme"));
    s.int_enumeration(r.status_code, &key(path, "statusCode"), &["301", "302"]);
    if let Some(pm) = &r.path {
        let p = key(path, "path");
        s.required(&pm.type_, &key(&p, "type"));
        s.enumeration(pm.type_.as_ref(), &key(&p, "type"));
        s.str_len(
            pm.replace_full_path.as_deref(),
            &key(&p, "replaceFullPath"),
            None,
            Some(1024),
        );
        s.str_len(
            pm.replace_prefix_match.as_deref(),
            &key(&p, "replacePrefixMatch"),
            None,
            Some(1024),
        );
        let ty = pm.type_.as_ref().map(CrdEnum::as_str);
        let is = |name: &'static str| Cel::field(ty, "type", move |t| t == name);
        let obj = Kind::Object;
        is("ReplaceFullPath").report(
            s,
            &p,
            obj,
            "only ReplaceFullPath is supported for path.type",
        );
        is("ReplaceFullPath")
            .pick(has(&pm.replace_full_path), Cel::True)
            .report(
                s,
                &p,
                obj,
                "replaceFullPath must be specified when type is set to 'ReplaceFullPath'",
            );
        has(&pm.replace_full_path)
            .pick(is("ReplaceFullPath"), Cel::True)
            .report(
                s,
                &p,
                obj,
                "type must be 'ReplaceFullPath' when replaceFullPath is set",
            );
        is("ReplacePrefixMatch")
            .pick(has(&pm.replace_prefix_match), Cel::True)
            .report(
                s,
                &p,
                obj,
                "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'",
            );
        has(&pm.replace_prefix_match)
            .pick(is("ReplacePrefixMatch"), Cel::True)
            .report(
                s,
                &p,
                obj,
                "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set",
            );
    }
}

fn custom_response(s: &mut Schema<'_, '_>, r: &CustomResponse, path: &str) {
    if let Some(b) = &r.body {
        let p = key(path, "body");
        // `type` is required but defaults to `Inline`.
        s.enumeration_all_of(b.type_.as_ref(), &key(&p, "type"));
        if let Some(vr) = &b.value_ref {
            let vp = key(&p, "valueRef");
            group_field(s, &vr.group, &key(&vp, "group"), true);
            kind_field(s, &vr.kind, &key(&vp, "kind"));
            s.required(&vr.name, &key(&vp, "name"));
            s.str_len(vr.name.as_deref(), &key(&vp, "name"), Some(1), Some(253));
        }
        let inline = b.type_.is_none() || matches!(b.type_, Some(ResponseValueType::Inline));
        let value_ref = matches!(b.type_, Some(ResponseValueType::ValueRef));
        s.cel(
            !inline || b.inline.is_some(),
            &p,
            Kind::Object,
            "inline must be set for type Inline",
        );
        s.cel(
            !value_ref || b.value_ref.is_some(),
            &p,
            Kind::Object,
            "valueRef must be set for type ValueRef",
        );
        if let Some(vr) = &b.value_ref {
            Cel::field(vr.kind.as_deref(), "kind", |k| k == "ConfigMap").report(
                s,
                &p,
                Kind::Object,
                "only ConfigMap is supported for ValueRef",
            );
        }
    }
    if let Some(h) = &r.header {
        let p = key(path, "header");
        for field in ["add", "set"] {
            let list = if field == "add" { &h.add } else { &h.set };
            let lp = key(&p, field);
            s.items(list, &lp, None, Some(16));
            for_each(list, &lp, |hp, header| {
                s.required(&header.name, &key(hp, "name"));
                s.required(&header.value, &key(hp, "value"));
                header_name(s, &header.name, &key(hp, "name"));
                s.str_len(
                    header.value.as_deref(),
                    &key(hp, "value"),
                    Some(1),
                    Some(4096),
                );
            });
            if let Some(items) = list {
                let keys: Vec<Option<&str>> = items.iter().map(|x| x.name.as_deref()).collect();
                s.map_duplicates(&keys, "name", &lp);
            }
        }
        let rp = key(&p, "remove");
        s.items(&h.remove, &rp, None, Some(16));
        if let Some(remove) = &h.remove {
            s.set_duplicates(remove, &rp);
        }
        s.cel(
            h.remove.as_ref().is_none_or(|r| r.is_empty()),
            &p,
            Kind::Object,
            "Remove is not supported for header in CustomResponse",
        );
    }
}

fn telemetry(s: &mut Schema<'_, '_>, t: &BackendTelemetry, path: &str) {
    let Some(tr) = &t.tracing else { return };
    let p = key(path, "tracing");
    for (field, f) in [
        ("clientSamplingFraction", &tr.client_sampling_fraction),
        ("overallSamplingFraction", &tr.overall_sampling_fraction),
        ("samplingFraction", &tr.sampling_fraction),
    ] {
        if let Some(f) = f {
            fraction(s, f, &key(&p, field));
        }
    }
    if let Some(tags) = &tr.custom_tags {
        let tp = key(&p, "customTags");
        for (name, tag) in tags {
            let cp = key(&tp, name);
            // `type` is required but defaults to `Literal`.
            s.enumeration(tag.type_.as_ref(), &key(&cp, "type"));
            if let Some(e) = &tag.environment {
                s.required(&e.name, &key(&key(&cp, "environment"), "name"));
            }
            if let Some(l) = &tag.literal {
                s.required(&l.value, &key(&key(&cp, "literal"), "value"));
            }
            if let Some(h) = &tag.request_header {
                s.required(&h.name, &key(&key(&cp, "requestHeader"), "name"));
            }
        }
    }
    if let Some(sn) = &tr.span_name {
        let sp = key(&p, "spanName");
        s.required(&sn.client, &key(&sp, "client"));
        s.required(&sn.server, &key(&sp, "server"));
    }
}
