//! The per-route HTTP features built from [`RouteConfig`]: fault injection, request buffering,
//! local and global rate limits, response overrides and the consistent-hash policy. Each is
//! validated once when the pipeline is built; a route without a feature holds `None`, so the
//! request path pays one branch for it and nothing else.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::time::Instant;

use crate::proxy::config::{
    ConfigError, OverrideAction, OverrideRedirect, OverrideResponse, ResponseOverrideRule,
    RouteAction, RouteConfig,
};
use crate::proxy::error::LocalReply;
use crate::proxy::fault::{ABORT_BODY, FaultInjector};
use crate::proxy::flags::ResponseFlag;
use crate::proxy::lb::hash::HashPolicy;
use crate::proxy::rate_limit::{
    self, Decision, GlobalRateLimiter, GlobalRuleSet, LocalRateLimiter,
};
use crate::proxy::rng::SharedRng;
use crate::proxy::stats::{Scope, StatKind, StatSource};

/// Envoy's local reply body for a request body over the buffer limit.
pub const PAYLOAD_TOO_LARGE_BODY: &str = "Payload Too Large";

/// The validated features of one route.
#[derive(Debug, Default)]
pub(crate) struct RouteFeatures {
    pub fault: Option<FaultInjector>,
    pub buffer_limit: Option<u64>,
    pub local_rate_limit: Option<LocalRateLimiter>,
    pub global_rate_limit: Option<GlobalRuleSet>,
    pub overrides: Vec<ResponseOverrideRule>,
    pub hash: Option<HashPolicy>,
}

/// The fault filter's verdict for one request.
pub(crate) struct FaultOutcome {
    pub delay: Option<std::time::Duration>,
    pub abort: Option<LocalReply>,
}

/// The rate limiters' verdict.
pub(crate) enum RateLimited {
    /// Go on; add these X-RateLimit headers to the upstream response.
    Allow(Option<HeaderMap>),
    /// Answer 429 with this reply.
    Limit(LocalReply),
}

/// Sums the features' stats under Envoy's names for `/stats`.
pub(crate) struct FeatureStats {
    /// `(listener, first cluster of the route, features)`.
    pub routes: Vec<(String, Option<String>, Arc<RouteFeatures>)>,
}

impl RouteFeatures {
    /// Validates every feature block of `route`.
    pub fn try_new(route: &RouteConfig) -> Result<Self, ConfigError> {
        let name = route.name.as_str();
        let fault = route
            .fault
            .as_ref()
            .map(FaultInjector::try_new)
            .transpose()
            .map_err(|e| ConfigError::feature(name, "faultInjection", e))?;
        let local_rate_limit = route
            .local_rate_limit
            .as_ref()
            .map(LocalRateLimiter::try_new)
            .transpose()
            .map_err(|e| ConfigError::feature(name, "rateLimit.local", e))?;
        let global_rate_limit = route
            .global_rate_limit
            .as_ref()
            .map(GlobalRuleSet::try_new)
            .transpose()
            .map_err(|e| ConfigError::feature(name, "rateLimit.global", e))?;
        for rule in &route.response_overrides {
            rule.validate()?;
        }
        let hash = match &route.action {
            RouteAction::Forward(f) => f
                .hash_policy
                .as_ref()
                .map(HashPolicy::try_new)
                .transpose()
                .map_err(|e| ConfigError::feature(name, "loadBalancer.consistentHash", e))?,
            RouteAction::DirectResponse { .. } => None,
        };
        Ok(RouteFeatures {
            fault,
            buffer_limit: route.request_buffer_limit,
            local_rate_limit,
            global_rate_limit,
            overrides: route.response_overrides.clone(),
            hash,
        })
    }

    /// Envoy's fault filter: draws delay and abort; the abort reply is built here.
    pub fn fault(&self, rng: &SharedRng) -> Option<FaultOutcome> {
        let injector = self.fault.as_ref()?;
        let decision = rng.with(|r| injector.decide(r));
        let abort = decision.abort.map(|a| {
            let (status, grpc_status) = a.reply();
            let mut local = LocalReply::new(status, Bytes::from_static(ABORT_BODY.as_bytes()));
            local.grpc_status = grpc_status;
            local.flag = Some(ResponseFlag::FaultInjected);
            local
        });
        Some(FaultOutcome {
            delay: decision.delay,
            abort,
        })
    }

    /// The local then the global rate limit (Envoy Gateway orders them so).
    pub fn rate_limit(
        &self,
        global: &GlobalRateLimiter,
        route: &str,
        parts: &Parts,
        peer: SocketAddr,
    ) -> RateLimited {
        let mut headers = None;
        let now = Instant::now();
        if let Some(local) = &self.local_rate_limit {
            let d = local.check(parts, peer.ip(), now);
            if d.limited {
                let mut reply = rejection(&d, rate_limit::LOCAL_REJECT_BODY);
                let (k, v) = rate_limit::LOCAL_REJECT_HEADER;
                reply
                    .headers
                    .insert(HeaderName::from_static(k), HeaderValue::from_static(v));
                return RateLimited::Limit(reply);
            }
            merge_headers(&mut headers, &d);
        }
        if let Some(rules) = &self.global_rate_limit {
            let d = global.check(rules, route, parts, peer.ip(), now);
            if d.limited {
                // The ratelimit filter's 429 has no body and no x-envoy-ratelimited (EG default).
                return RateLimited::Limit(rejection(&d, ""));
            }
            merge_headers(&mut headers, &d);
        }
        RateLimited::Allow(headers)
    }

    /// The first override rule matching the response, if any.
    pub fn override_for(
        &self,
        status: u16,
        headers: &HeaderMap,
        local: bool,
    ) -> Option<&OverrideAction> {
        self.overrides
            .iter()
            .find(|r| r.matches(status, headers, local))
            .map(|r| &r.action)
    }
}

fn rejection(d: &Decision, body: &'static str) -> LocalReply {
    let mut reply = LocalReply::new(
        rate_limit::REJECT_STATUS,
        Bytes::from_static(body.as_bytes()),
    );
    reply.flag = Some(ResponseFlag::RateLimited);
    if let Some(h) = &d.headers {
        reply.headers.extend(h.pairs());
    }
    reply
}

fn merge_headers(out: &mut Option<HeaderMap>, d: &Decision) {
    if let Some(h) = &d.headers {
        let map = out.get_or_insert_with(HeaderMap::new);
        for (k, v) in h.pairs() {
            map.insert(k, v);
        }
    }
}

/// Applies a `response` override to status, headers and (when it sets one) the body.
/// Returns the new body, if the override replaces it.
pub(crate) fn apply_response(
    r: &OverrideResponse,
    status: &mut StatusCode,
    headers: &mut HeaderMap,
) -> Option<Bytes> {
    if let Some(s) = r.status_code.and_then(|c| StatusCode::from_u16(c).ok()) {
        *status = s;
    }
    let body = r.body.as_ref().map(|b| Bytes::from(b.clone()));
    if let Some(b) = &body {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(b.len()));
        headers.remove(http::header::TRANSFER_ENCODING);
        headers.remove(http::header::CONTENT_ENCODING);
    }
    if let Some(ct) = r
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        headers.insert(http::header::CONTENT_TYPE, ct);
    }
    for (k, v) in &r.set_headers {
        headers.insert(k.clone(), v.clone());
    }
    for (k, v) in &r.add_headers {
        headers.append(k.clone(), v.clone());
    }
    body
}

/// The request a redirect override runs (Envoy's custom response redirect policy): the
/// original one with its host (hostname and port) and path replaced, as a GET without a body.
/// The scheme is not used: the proxy's listeners are plain HTTP.
pub(crate) fn redirect_request(r: &OverrideRedirect, parts: &Parts) -> Parts {
    let authority = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()))
        .unwrap_or_default();
    let (req_host, req_port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.parse::<u16>().ok()),
        _ => (authority, None),
    };
    let host = r.hostname.clone().unwrap_or(req_host);
    let port = r
        .port
        .or(if r.hostname.is_some() { None } else { req_port });
    let host = match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    let path = r.path.clone().unwrap_or_else(|| {
        parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string())
    });
    let (mut target, ()) = http::Request::new(()).into_parts();
    target.method = http::Method::GET;
    target.version = parts.version;
    target.headers = parts.headers.clone();
    target.headers.remove(http::header::CONTENT_LENGTH);
    if let Ok(v) = HeaderValue::from_str(&host) {
        target.headers.insert(http::header::HOST, v);
    }
    target.uri = path.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    target
}

/// The status a redirect override gives a 1xx/2xx answer of its target (default 302).
pub(crate) fn redirect_status(r: &OverrideRedirect) -> StatusCode {
    r.status_code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::FOUND)
}

impl StatSource for FeatureStats {
    fn visit(&self, f: &mut dyn FnMut(Scope<'_>, &str, StatKind, u64)) {
        use std::sync::atomic::Ordering::Relaxed;
        // Fault stats per listener (the HTTP connection manager's prefix).
        let mut listeners: Vec<&str> = self.routes.iter().map(|(l, _, _)| l.as_str()).collect();
        listeners.dedup();
        for l in listeners {
            let mut sums = [0u64; 2];
            let mut any = false;
            for (_, _, r) in self.routes.iter().filter(|(name, _, _)| name == l) {
                if let Some(fi) = &r.fault {
                    any = true;
                    sums[0] += fi.stats().delays_injected.load(Relaxed);
                    sums[1] += fi.stats().aborts_injected.load(Relaxed);
                }
            }
            if any {
                f(
                    Scope::Http(l),
                    "fault.delays_injected",
                    StatKind::Counter,
                    sums[0],
                );
                f(
                    Scope::Http(l),
                    "fault.aborts_injected",
                    StatKind::Counter,
                    sums[1],
                );
            }
        }
        // The local rate limit filter's stat prefix is global (`http_local_rate_limiter.`).
        let mut local: Option<[(&str, u64); 4]> = None;
        for (_, _, r) in &self.routes {
            if let Some(l) = &r.local_rate_limit {
                let snap = l.stats().snapshot();
                let acc = local.get_or_insert(snap.map(|(n, _)| (n, 0)));
                for (a, (_, v)) in acc.iter_mut().zip(snap) {
                    a.1 += v;
                }
            }
        }
        for (name, v) in local.into_iter().flatten() {
            f(Scope::Root, name, StatKind::Counter, v);
        }
        // Envoy keeps `ratelimit.*` per upstream cluster.
        let mut per_cluster: Vec<(&str, [(&str, u64); 2])> = Vec::new();
        for (_, cluster, r) in &self.routes {
            let (Some(rules), Some(c)) = (&r.global_rate_limit, cluster) else {
                continue;
            };
            let snap = rules.stats().snapshot();
            match per_cluster.iter_mut().find(|(name, _)| name == c) {
                Some((_, acc)) => {
                    for (a, (_, v)) in acc.iter_mut().zip(snap) {
                        a.1 += v;
                    }
                }
                None => per_cluster.push((c, snap)),
            }
        }
        for (c, snap) in per_cluster {
            for (name, v) in snap {
                f(Scope::Cluster(c), name, StatKind::Counter, v);
            }
        }
    }
}
