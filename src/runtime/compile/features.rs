//! Per-route policy features: fault injection, local and global rate limits, request
//! buffering, response overrides and the consistent-hash input.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

use crate::policy::btp::{
    BackendTrafficPolicySpec, CrdEnum, HeaderMatch, QueryParamMatch, RateLimitRule,
    RateLimitSelectCondition, ResponseOverride,
};
use crate::proxy::config::{
    HeaderValueMatch, OverrideAction, OverrideRedirect, OverrideResponse, OverrideSource,
    ResponseHeaderMatch, ResponseOverrideRule, RouteConfig, StatusCodeMatch,
};
use crate::proxy::fault::{AbortCode, AbortConfig, DelayConfig, FaultConfig};
use crate::proxy::lb::hash::HashPolicyConfig;
use crate::proxy::rate_limit::{
    CidrMatchType, ClientSelectorConfig, GlobalRateLimitConfig, HeaderMatchConfig, Limit,
    LocalRateLimitConfig, MethodMatchConfig, PathMatchConfig, PathMatchType, QueryParamMatchConfig,
    RuleConfig, SourceCidrConfig, StringMatchType, Unit,
};
use crate::scenario::duration::parse_duration;

/// The features one policy gives every route of a rule.
#[derive(Debug, Clone, Default)]
pub(super) struct RouteFeatures {
    fault: Option<FaultConfig>,
    local_rate_limit: Option<LocalRateLimitConfig>,
    global_rate_limit: Option<GlobalRateLimitConfig>,
    request_buffer_limit: Option<u64>,
    response_overrides: Vec<ResponseOverrideRule>,
}

impl RouteFeatures {
    pub(super) fn apply(&self, route: &mut RouteConfig) {
        route.fault = self.fault.clone();
        route.local_rate_limit = self.local_rate_limit.clone();
        route.global_rate_limit = self.global_rate_limit.clone();
        route.request_buffer_limit = self.request_buffer_limit;
        route.response_overrides = self.response_overrides.clone();
    }
}

/// Reads the per-route features of `spec`; `policy_id` (`ns/name`) names global rules and
/// `body_from` resolves responseOverride ConfigMap bodies.
pub(super) fn route_features(
    spec: &BackendTrafficPolicySpec,
    policy_id: &str,
    body_from: &dyn Fn(&str) -> Option<String>,
) -> Result<RouteFeatures, String> {
    let mut out = RouteFeatures {
        response_overrides: response_overrides(spec, body_from)?,
        ..RouteFeatures::default()
    };
    if let Some(f) = &spec.fault_injection {
        out.fault = Some(fault(f)?);
    }
    if let Some(rl) = &spec.rate_limit {
        // The deprecated `type` picks one block; without it both apply.
        let kind = rl.type_.as_ref().map(|t| t.as_str().to_string());
        if kind.as_deref() != Some("Global")
            && let Some(local) = &rl.local
        {
            out.local_rate_limit = Some(LocalRateLimitConfig {
                rules: rules(local.rules.as_deref().unwrap_or_default())?,
                x_ratelimit_headers: true,
            });
        }
        if kind.as_deref() != Some("Local")
            && let Some(global) = &rl.global
        {
            out.global_rate_limit = Some(GlobalRateLimitConfig {
                policy_id: policy_id.to_string(),
                rules: rules(global.rules.as_deref().unwrap_or_default())?,
                x_ratelimit_headers: true,
            });
        }
    }
    if let Some(limit) = spec.request_buffer.as_ref().and_then(|r| r.limit.as_ref()) {
        out.request_buffer_limit = Some(
            limit
                .as_i64()
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(|| format!("requestBuffer.limit {limit} is out of range"))?,
        );
    }
    Ok(out)
}

fn fault(f: &crate::policy::btp::FaultInjection) -> Result<FaultConfig, String> {
    let delay = match &f.delay {
        Some(d) => Some(DelayConfig {
            fixed_delay: d
                .fixed_delay
                .as_deref()
                .map(parse_duration)
                .transpose()?
                .unwrap_or(Duration::ZERO),
            percentage: d.percentage.unwrap_or(100.0) as f32,
        }),
        None => None,
    };
    let abort = match &f.abort {
        Some(a) => {
            let code = match (a.http_status, a.grpc_status) {
                (Some(s), _) => AbortCode::Http(s as u32),
                (None, Some(s)) => AbortCode::Grpc(s as u32),
                (None, None) => {
                    return Err("faultInjection.abort needs httpStatus or grpcStatus".into());
                }
            };
            Some(AbortConfig {
                code,
                percentage: a.percentage.unwrap_or(100.0) as f32,
            })
        }
        None => None,
    };
    Ok(FaultConfig { delay, abort })
}

fn rules(list: &[RateLimitRule]) -> Result<Vec<RuleConfig>, String> {
    list.iter().map(rule).collect()
}

fn rule(r: &RateLimitRule) -> Result<RuleConfig, String> {
    let limit = r.limit.as_ref().ok_or("rateLimit rule without limit")?;
    let unit = match limit
        .unit
        .as_ref()
        .map(|u| u.as_str().to_string())
        .as_deref()
    {
        Some("Second") => Unit::Second,
        Some("Minute") => Unit::Minute,
        Some("Hour") => Unit::Hour,
        Some("Day") => Unit::Day,
        Some("Week") => Unit::Week,
        Some("Month") => Unit::Month,
        Some("Year") => Unit::Year,
        other => return Err(format!("unknown rate limit unit {other:?}")),
    };
    let selectors = r
        .client_selectors
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(selector)
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = RuleConfig::new(
        selectors,
        Limit {
            requests: limit.requests.unwrap_or(0).max(0) as u64,
            unit,
        },
    );
    if let Some(cost) = r
        .cost
        .as_ref()
        .and_then(|c| c.request.as_ref())
        .and_then(|c| c.number)
    {
        config.cost = cost.max(0) as u64;
    }
    config.shared = r.shared.unwrap_or(false);
    config.shadow_mode = r.shadow_mode.unwrap_or(false);
    config.x_ratelimit_headers = r.x_rate_limit_headers.as_ref().map(|h| h.as_str() != "Off");
    Ok(config)
}

fn selector(s: &RateLimitSelectCondition) -> Result<ClientSelectorConfig, String> {
    let headers = s
        .headers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(header)
        .collect::<Result<_, _>>()?;
    let methods = s
        .methods
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| {
            let value = m.value.as_ref()?;
            Some(
                Method::from_bytes(value.as_str().as_bytes()).map(|value| MethodMatchConfig {
                    value,
                    invert: m.invert.unwrap_or(false),
                }),
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let path = s.path.as_ref().map(|p| PathMatchConfig {
        match_type: match p.type_.as_ref().map(|t| t.as_str().to_string()).as_deref() {
            Some("Exact") => PathMatchType::Exact,
            Some("RegularExpression") => PathMatchType::RegularExpression,
            _ => PathMatchType::PathPrefix,
        },
        value: p.value.clone().unwrap_or_else(|| "/".to_string()),
        invert: p.invert.unwrap_or(false),
    });
    let source_cidr = s.source_cidr.as_ref().map(|c| SourceCidrConfig {
        match_type: if c.type_.as_ref().is_some_and(|t| t.as_str() == "Distinct") {
            CidrMatchType::Distinct
        } else {
            CidrMatchType::Exact
        },
        value: c.value.clone().unwrap_or_default(),
        invert: c.invert.unwrap_or(false),
    });
    let query_params = s
        .query_params
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(query)
        .collect::<Result<_, _>>()?;
    Ok(ClientSelectorConfig {
        headers,
        methods,
        path,
        source_cidr,
        query_params,
    })
}

fn match_type(kind: Option<&str>) -> StringMatchType {
    match kind {
        Some("RegularExpression") => StringMatchType::RegularExpression,
        Some("Distinct") => StringMatchType::Distinct,
        _ => StringMatchType::Exact,
    }
}

fn header(h: &HeaderMatch) -> Result<HeaderMatchConfig, String> {
    Ok(HeaderMatchConfig {
        name: h
            .name
            .clone()
            .ok_or("rate limit header match without name")?,
        match_type: match_type(h.type_.as_ref().map(|t| t.as_str())),
        value: h.value.clone(),
        invert: h.invert.unwrap_or(false),
    })
}

fn query(q: &QueryParamMatch) -> Result<QueryParamMatchConfig, String> {
    Ok(QueryParamMatchConfig {
        name: q
            .name
            .clone()
            .ok_or("rate limit query match without name")?,
        match_type: match_type(q.type_.as_ref().map(|t| t.as_str())),
        value: q.value.clone(),
        invert: q.invert.unwrap_or(false),
    })
}

/// The consistent-hash input of the route, when the policy hashes.
pub(super) fn hash_policy(spec: &BackendTrafficPolicySpec) -> Option<HashPolicyConfig> {
    let lb = spec.load_balancer.as_ref()?;
    if lb.type_.as_ref().map(|t| t.as_str()) != Some("ConsistentHash") {
        return None;
    }
    let ch = lb.consistent_hash.as_ref()?;
    let names = |list: &Option<Vec<crate::policy::btp::HashName>>| -> Vec<String> {
        list.as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|h| h.name.clone())
            .collect()
    };
    match ch.type_.as_ref().map(|t| t.as_str()) {
        Some("SourceIP") => Some(HashPolicyConfig::SourceIp),
        Some("Header") => ch
            .header
            .as_ref()
            .and_then(|h| h.name.clone())
            .map(HashPolicyConfig::Header),
        Some("Headers") => Some(HashPolicyConfig::Headers(names(&ch.headers))),
        Some("QueryParams") => Some(HashPolicyConfig::QueryParams(names(&ch.query_params))),
        Some("Cookie") => {
            let cookie = ch.cookie.as_ref()?;
            let mut attributes: Vec<(String, String)> = cookie
                .attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect();
            attributes.sort();
            Some(HashPolicyConfig::Cookie {
                name: cookie.name.clone()?,
                ttl: cookie.ttl.as_deref().and_then(|t| parse_duration(t).ok()),
                attributes,
            })
        }
        _ => None,
    }
}

/// Reads `responseOverride` rules; `body_from` finds a ConfigMap body by name for `valueRef`.
pub(super) fn response_overrides(
    spec: &BackendTrafficPolicySpec,
    body_from: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ResponseOverrideRule>, String> {
    spec.response_override
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|r| response_override(r, body_from))
        .collect()
}

fn response_override(
    r: &ResponseOverride,
    body_from: &dyn Fn(&str) -> Option<String>,
) -> Result<ResponseOverrideRule, String> {
    let m = r.match_.as_ref();
    let status_codes = m
        .and_then(|m| m.status_codes.as_deref())
        .unwrap_or_default()
        .iter()
        .map(
            |c| match (c.type_.as_ref().map(|t| t.as_str()), c.value, &c.range) {
                (Some("Range"), _, Some(range)) => StatusCodeMatch::range(
                    range.start.unwrap_or(0) as u16,
                    range.end.unwrap_or(0) as u16,
                )
                .map_err(|e| e.to_string()),
                (_, Some(v), _) => Ok(StatusCodeMatch::Value(v as u16)),
                _ => Err("responseOverride status code match without a value".to_string()),
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    let response_headers = m
        .and_then(|m| m.response_headers.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let name = HeaderName::from_bytes(h.name.as_deref().unwrap_or_default().as_bytes())
                .map_err(|e| e.to_string())?;
            let value = h
                .value
                .as_ref()
                .and_then(|v| v.value.clone())
                .unwrap_or_default();
            let value = match h
                .value
                .as_ref()
                .and_then(|v| v.type_.as_ref())
                .map(|t| t.as_str())
            {
                Some("Prefix") => HeaderValueMatch::Prefix(value),
                Some("Suffix") => HeaderValueMatch::Suffix(value),
                Some("RegularExpression") => {
                    HeaderValueMatch::regex(&value).map_err(|e| e.to_string())?
                }
                _ => HeaderValueMatch::Exact(value),
            };
            Ok(ResponseHeaderMatch { name, value })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let source = match r.source.as_ref().map(|s| s.as_str()) {
        Some("Local") => OverrideSource::Local,
        Some("Backend") => OverrideSource::Backend,
        _ => OverrideSource::All,
    };
    let action = match (&r.response, &r.redirect) {
        (Some(resp), _) => {
            let body =
                match &resp.body {
                    Some(b) if b.type_.as_ref().map(|t| t.as_str()) == Some("ValueRef") => {
                        let name = b
                            .value_ref
                            .as_ref()
                            .and_then(|v| v.name.clone())
                            .unwrap_or_default();
                        Some(body_from(&name).ok_or_else(|| {
                            format!("responseOverride: no body in ConfigMap {name}")
                        })?)
                    }
                    Some(b) => b.inline.clone(),
                    None => None,
                };
            let headers = |list: &Option<Vec<crate::policy::btp::HttpHeader>>| -> Result<Vec<(HeaderName, HeaderValue)>, String> {
                list.as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(|h| {
                        let name = HeaderName::from_bytes(h.name.as_deref().unwrap_or_default().as_bytes()).map_err(|e| e.to_string())?;
                        let value = HeaderValue::from_str(h.value.as_deref().unwrap_or_default()).map_err(|e| e.to_string())?;
                        Ok((name, value))
                    })
                    .collect()
            };
            let filter = resp.header.as_ref();
            OverrideAction::Response(OverrideResponse {
                status_code: resp.status_code.map(|s| s as u16),
                content_type: resp.content_type.clone(),
                body,
                add_headers: headers(&filter.and_then(|f| f.add.clone()))?,
                set_headers: headers(&filter.and_then(|f| f.set.clone()))?,
            })
        }
        (None, Some(redirect)) => OverrideAction::Redirect(OverrideRedirect {
            scheme: redirect.scheme.as_ref().map(|s| s.as_str().to_string()),
            hostname: redirect.hostname.clone(),
            path: redirect
                .path
                .as_ref()
                .and_then(|p| p.replace_full_path.clone()),
            port: redirect.port.map(|p| p as u16),
            status_code: redirect.status_code.map(|s| s as u16),
        }),
        (None, None) => return Err("responseOverride needs response or redirect".into()),
    };
    Ok(ResponseOverrideRule {
        status_codes,
        response_headers,
        source,
        action,
    })
}
