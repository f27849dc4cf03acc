//! Routes from one rule on one listener: hostnames, matches, the forward action with its
//! timeouts and retries (the HTTPRoute's own fields beat the policy's), and the per-route
//! features of the policy (fault injection, rate limits, request buffering, hashing).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};

use super::features;
use crate::policy::btp::{BackendTrafficPolicySpec, CrdEnum};
use crate::policy::gateway_api::{GrpcRouteMatch, HttpRouteMatch, ValueMatch};
use crate::policy::resolve::RuleOutcome;
use crate::policy::topology::{RuleMatches, RuleNode, Topology, hostnames_intersect};
use crate::proxy::config::{
    ForwardAction, HeaderMatch, Hostname, PathMatch, QueryParamMatch, RetryBackoff, RetryOn,
    RetryPolicy, RouteAction, RouteConfig, RouteMatch, RouteSource, StringMatch,
};
use crate::scenario::duration::parse_duration;

/// Envoy's route timeout when neither the HTTPRoute nor the policy sets one.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The floor of the route idle timeout Envoy Gateway derives from a request timeout.
const MIN_DERIVED_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The routes of one rule on one listener: one per match, Gateway API's default match when the
/// rule has none.
pub(super) fn build(
    topology: &Topology,
    outcome: &RuleOutcome,
    spec: &BackendTrafficPolicySpec,
    cluster: &str,
    policy_id: &str,
    body_from: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<RouteConfig>, String> {
    let a = outcome.attachment;
    let route = &topology.routes[a.route];
    let rule = &route.rules[a.rule];
    let listener = &topology.gateways[a.gateway].listeners[a.listener].listener;
    let hostnames = effective_hostnames(listener.hostname.as_deref(), &route.hostnames)?;
    let source = RouteSource {
        kind: route.kind.kind_name().to_string(),
        namespace: route.meta.namespace.clone(),
        name: route.meta.name.clone(),
        rule: a.rule,
        rule_name: rule.name.clone(),
    };
    let action = match outcome.direct_response {
        Some(status) => RouteAction::DirectResponse {
            status: StatusCode::from_u16(status).map_err(|e| e.to_string())?,
            body: Bytes::new(),
        },
        None if rule.backend_refs.iter().all(|b| b.weight == Some(0)) => {
            RouteAction::DirectResponse {
                // Envoy Gateway answers a rule without usable backends with a 500.
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: Bytes::new(),
            }
        }
        None => RouteAction::Forward(forward_action(rule, spec, cluster)?),
    };
    let matches = route_matches(rule)?;
    let prefix = format!(
        "{}/{}/{}/rule/{}",
        route.kind.prefix(),
        route.meta.namespace,
        route.meta.name,
        a.rule
    );
    let features = features::route_features(spec, policy_id, body_from)?;
    Ok(matches
        .into_iter()
        .enumerate()
        .map(|(i, matches)| {
            let mut config = RouteConfig::new(
                format!("{prefix}/match/{i}"),
                source.clone(),
                matches,
                action.clone(),
            );
            config.hostnames = hostnames.clone();
            features.apply(&mut config);
            config
        })
        .collect())
}

/// The hostnames a route answers on a listener: the route's hostnames that the listener's
/// hostname admits (the narrower of each pair), or the listener's when the route has none.
fn effective_hostnames(listener: Option<&str>, route: &[String]) -> Result<Vec<Hostname>, String> {
    let names: Vec<String> = match (listener, route.is_empty()) {
        (None, true) => Vec::new(),
        (Some(l), true) => vec![l.to_string()],
        (None, false) => route.to_vec(),
        (Some(l), false) => route
            .iter()
            .filter(|r| hostnames_intersect(l, r))
            .map(|r| {
                if r.starts_with('*') && !l.starts_with('*') {
                    l.to_string()
                } else {
                    r.clone()
                }
            })
            .collect(),
    };
    names
        .iter()
        .map(|h| Hostname::try_new(h).map_err(|e| e.to_string()))
        .collect()
}

fn route_matches(rule: &RuleNode) -> Result<Vec<RouteMatch>, String> {
    let matches = match &rule.matches {
        RuleMatches::Http(m) if !m.is_empty() => {
            m.iter().map(http_match).collect::<Result<Vec<_>, _>>()?
        }
        RuleMatches::Grpc(m) if !m.is_empty() => {
            m.iter().map(grpc_match).collect::<Result<Vec<_>, _>>()?
        }
        _ => vec![RouteMatch::default()],
    };
    Ok(matches)
}

fn http_match(m: &HttpRouteMatch) -> Result<RouteMatch, String> {
    let mut out = RouteMatch::default();
    if let Some(path) = &m.path {
        let value = path.value.clone().unwrap_or_else(|| "/".to_string());
        out.path = match path.kind.as_deref().unwrap_or("PathPrefix") {
            "Exact" => PathMatch::Exact(value),
            "RegularExpression" => PathMatch::regex(&value).map_err(|e| e.to_string())?,
            _ => PathMatch::PathPrefix(value),
        };
    }
    out.headers = m
        .headers
        .iter()
        .map(header_match)
        .collect::<Result<_, _>>()?;
    out.query_params = m
        .query_params
        .iter()
        .map(|q| {
            Ok(QueryParamMatch {
                name: q.name.clone(),
                value: string_match(q)?,
            })
        })
        .collect::<Result<_, String>>()?;
    out.method = m
        .method
        .as_deref()
        .map(|m| Method::from_bytes(m.as_bytes()).map_err(|e| e.to_string()))
        .transpose()?;
    Ok(out)
}

/// gRPC matches become HTTP/2 POST path matches on `/<service>/<method>`, as Envoy Gateway
/// translates them.
fn grpc_match(m: &GrpcRouteMatch) -> Result<RouteMatch, String> {
    let mut out = RouteMatch::default();
    if let Some(method) = &m.method {
        let regex = method.kind.as_deref() == Some("RegularExpression");
        out.path = match (method.service.as_deref(), method.method.as_deref(), regex) {
            (Some(s), Some(m), false) => PathMatch::Exact(format!("/{s}/{m}")),
            (Some(s), None, false) => PathMatch::PathPrefix(format!("/{s}/")),
            (None, Some(m), false) => PathMatch::regex(&format!("/[^/]+/{}", regex::escape(m)))
                .map_err(|e| e.to_string())?,
            (s, m, true) => PathMatch::regex(&format!(
                "/{}/{}",
                s.unwrap_or("[^/]+"),
                m.unwrap_or("[^/]+")
            ))
            .map_err(|e| e.to_string())?,
            (None, None, false) => PathMatch::PathPrefix("/".to_string()),
        };
    }
    out.headers = m
        .headers
        .iter()
        .map(header_match)
        .collect::<Result<_, _>>()?;
    Ok(out)
}

fn header_match(h: &ValueMatch) -> Result<HeaderMatch, String> {
    HeaderMatch::try_new(&h.name, string_match(h)?).map_err(|e| e.to_string())
}

fn string_match(m: &ValueMatch) -> Result<StringMatch, String> {
    match m.kind.as_deref().unwrap_or("Exact") {
        "RegularExpression" => StringMatch::regex(&m.value).map_err(|e| e.to_string()),
        _ => Ok(StringMatch::Exact(m.value.clone())),
    }
}

/// The request timeout in force: the HTTPRoute's `timeouts.request` (or `backendRequest`
/// without retries), else the policy's `requestTimeout`, else Envoy's 15s; zero disables it.
pub fn effective_request_timeout(
    rule: &RuleNode,
    spec: &BackendTrafficPolicySpec,
) -> Result<Option<Duration>, String> {
    let from_route = match (&rule.request_timeout, &rule.backend_request_timeout) {
        (Some(t), _) => Some(t),
        (None, Some(t)) if rule.route_retry.is_none() => Some(t),
        _ => None,
    };
    let from_policy = spec
        .timeout
        .as_ref()
        .and_then(|t| t.http.as_ref())
        .and_then(|h| h.request_timeout.as_ref());
    let timeout = match from_route.or(from_policy) {
        Some(text) => parse_duration(text)?,
        None => DEFAULT_REQUEST_TIMEOUT,
    };
    Ok((!timeout.is_zero()).then_some(timeout))
}

fn forward_action(
    rule: &RuleNode,
    spec: &BackendTrafficPolicySpec,
    cluster: &str,
) -> Result<ForwardAction, String> {
    let mut action = ForwardAction::to_cluster(cluster);
    action.timeout = effective_request_timeout(rule, spec)?;
    let http = spec.timeout.as_ref().and_then(|t| t.http.as_ref());
    // Envoy Gateway: the policy's streamIdleTimeout, else max(1h, request timeout).
    action.idle_timeout = match http.and_then(|h| h.stream_idle_timeout.as_deref()) {
        Some(text) => Some(parse_duration(text)?).filter(|d| !d.is_zero()),
        None => action.timeout.map(|t| t.max(MIN_DERIVED_IDLE_TIMEOUT)),
    };
    if let Some(text) = http.and_then(|h| h.max_stream_duration.as_deref()) {
        action.max_stream_duration = Some(parse_duration(text)?).filter(|d| !d.is_zero());
    }
    action.retry = match &rule.route_retry {
        Some(route_retry) => Some(route_retry_policy(route_retry, rule)?),
        None => spec.retry.as_ref().map(policy_retry).transpose()?,
    };
    action.hash_policy = features::hash_policy(spec);
    Ok(action)
}

/// An HTTPRoute rule's `retry` (GEP-1731) as Envoy Gateway translates it.
fn route_retry_policy(
    r: &crate::policy::gateway_api::HttpRouteRetry,
    rule: &RuleNode,
) -> Result<RetryPolicy, String> {
    let mut policy = RetryPolicy::envoy_gateway_default();
    if let Some(attempts) = r.attempts {
        policy.num_retries = attempts;
    }
    if !r.codes.is_empty() {
        policy = policy
            .with_status_codes(&r.codes)
            .map_err(|e| e.to_string())?;
    }
    if let Some(backoff) = &r.backoff {
        policy.backoff =
            RetryBackoff::try_new(parse_duration(backoff)?, None).map_err(|e| e.to_string())?;
    }
    if let Some(t) = &rule.backend_request_timeout {
        policy.per_try_timeout = Some(parse_duration(t)?);
    }
    Ok(policy)
}

/// The policy's `retry` block with Envoy Gateway's defaults (btp-spec §c.2).
fn policy_retry(r: &crate::policy::btp::Retry) -> Result<RetryPolicy, String> {
    let mut policy = RetryPolicy::envoy_gateway_default();
    if let Some(n) = r.num_retries {
        policy.num_retries = n as u32;
    }
    if let Some(on) = &r.retry_on {
        if let Some(triggers) = &on.triggers {
            let list: Vec<&str> = triggers.iter().map(|t| t.as_str()).collect();
            policy.retry_on = RetryOn::parse(&list.join(",")).map_err(|e| e.to_string())?;
            // Triggers without status codes leave the retriable list empty.
            policy.retriable_status_codes = Vec::new();
        }
        if let Some(codes) = &on.http_status_codes {
            let codes: Vec<u16> = codes.iter().map(|c| *c as u16).collect();
            policy = policy
                .with_status_codes(&codes)
                .map_err(|e| e.to_string())?;
        }
    }
    if let Some(per_retry) = &r.per_retry {
        if let Some(t) = &per_retry.timeout {
            policy.per_try_timeout = Some(parse_duration(t)?);
        }
        if let Some(backoff) = &per_retry.back_off {
            let base = backoff
                .base_interval
                .as_deref()
                .map(parse_duration)
                .transpose()?
                .unwrap_or(Duration::from_millis(25));
            let max = backoff
                .max_interval
                .as_deref()
                .map(parse_duration)
                .transpose()?;
            policy.backoff = RetryBackoff::try_new(base, max).map_err(|e| e.to_string())?;
        }
    }
    Ok(policy)
}
