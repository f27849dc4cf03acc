//! The ordered request path, in one place.
//!
//! ```text
//! request ─▶ x-request-id ─▶ route match ──(none)──▶ 404 NR
//!                               │ direct response ─▶ configured reply
//!                               ▼
//!                          fault (route.fault: delay DI, abort FI)
//!                               ▼
//!                          buffer request body (route.request_buffer_limit: 413)
//!                               ▼
//!                          local rate limit ─▶ global rate limit (429 RL)
//!                               ▼
//!                          weighted cluster ─▶ request hash (consistent hash; may set a cookie)
//!                               ▼            ┌───────────── route timeout / max stream duration ──────────────┐
//!                          ┌─▶ pick host: health, panic, previous_hosts (503 UH)                             │
//!                          │   pool: idle / connect (503 UF) / pending (503 UO)                               │
//!                          │   admission on attach: max_requests (503 UO)                                    │
//!                          │   send with per-try timeout                                                     │
//!                          │   classify ─▶ outlier detection                                                 │
//!                          └── retry decision: back-off, max_retries (UO), num_retries (URX)                 │
//!                               ▼                                                                           ─┘
//!                          response (body streamed; route timeout still runs) or local reply
//!                          (a gRPC request gets it as HTTP 200 + grpc-status, trailers-only)
//!                               ▼
//!                          response override (route.response_overrides: first match wins)
//!                               ▼
//!                          access log + stats when the body ends
//! ```
//!
//! Envoy resolves the route before any HTTP filter runs, and every filter reads the matched
//! route's configuration. Envoy Gateway orders its filters fault → buffer → local rate limit →
//! global rate limit → custom response → router, which is the order above. The body is always
//! buffered whole (retries resend it); a route's buffer limit only adds the size check.
//! Every feature is built per route from its [`RouteConfig`](super::config::RouteConfig) by
//! [`features`]; a route without one pays a single `None` branch.

mod body;
mod exchange;
#[cfg(test)]
mod feature_tests;
mod features;
#[cfg(test)]
mod grpc_tests;
#[cfg(test)]
mod h2_tests;
mod headers;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::time::Instant;

pub use self::body::{BodyEnd, BodyError, ProxyBody};
use self::exchange::{Exchange, Records};
pub(crate) use self::features::FeatureStats;
pub use self::features::PAYLOAD_TOO_LARGE_BODY;
use self::features::{RateLimited, RouteFeatures};
use super::access_log::{AccessLogEntry, AccessLogSink};
use super::cluster::Cluster;
use super::cluster::host_set::{ActiveRequest, Host};
use super::cluster::outlier::Outcome;
use super::cluster::pool::{self, UpstreamResponse};
use super::cluster::resources::ResourceGuard;
use super::config::{ConfigError, ForwardAction, ListenerConfig, OverrideAction, RouteAction};
use super::error::{LocalReply, ProxyError};
use super::flags::{ResponseFlag, ResponseFlags};
use super::grpc;
use super::lb::hash::HashOutcome;
use super::lb::{PickContext, override_host};
use super::rate_limit::GlobalRateLimiter;
use super::response_headers::ResponseHeaders;
use super::retry::{AttemptResult, RetryDecision, RetryState};
use super::rng::SharedRng;
use super::router::Router;
use super::stats::{HttpStats, ListenerStats};
use super::timeout::RouteTimers;

/// An upstream response header that fails the host's active health checking at once (a
/// name built once: looking a header up by `&str` parses the name on every response).
static IMMEDIATE_HC_FAIL: http::HeaderName =
    http::HeaderName::from_static("x-envoy-immediate-health-check-fail");

/// What every listener's pipeline shares.
#[derive(Clone)]
pub struct Shared {
    /// The in-process global rate-limit service, one per proxy.
    pub global_rate_limit: Arc<GlobalRateLimiter>,
    /// Where access log entries go.
    pub sink: Arc<dyn AccessLogSink>,
    /// Weighted-cluster choice and retry jitter.
    pub rng: Arc<SharedRng>,
    /// Request id generation.
    pub request_ids: Arc<SharedRng>,
    /// The proxy's start (access log offsets).
    pub epoch: Instant,
}

/// The request path of one listener.
pub struct Pipeline {
    listener: Arc<str>,
    /// The listener's bound address (a generated hash cookie's value uses it).
    local: SocketAddr,
    router: Router,
    /// Per route (same index as the router's routes): its names and weighted clusters.
    targets: Vec<RouteTargets>,
    shared: Shared,
    /// The listener's stats and access log, shared with every request's exchange.
    records: Arc<Records>,
}

struct RouteTargets {
    name: Arc<str>,
    clusters: Vec<(Arc<Cluster>, u32)>,
    total_weight: u64,
    features: Arc<RouteFeatures>,
}

/// What the pipeline answers: the HTTP/1.1 server writes the header fields as they are;
/// [`Pipeline::handle`] gives it as an `http::Response`.
pub struct ProxyResponse {
    pub status: StatusCode,
    pub headers: ResponseHeaders,
    pub body: ProxyBody,
}

impl From<ProxyResponse> for Response<ProxyBody> {
    fn from(r: ProxyResponse) -> Self {
        let mut response = Response::new(r.body);
        *response.status_mut() = r.status;
        *response.headers_mut() = r.headers.into_map();
        response
    }
}

/// A successful upstream attempt: headers received, body still to stream.
struct Upstream {
    response: UpstreamResponse,
    attempt: (ResourceGuard, ActiveRequest),
}

impl Pipeline {
    /// Builds the pipeline of `listener` bound at `local`; `cluster` resolves route backends by
    /// name. Fails when a route's feature configuration is invalid.
    pub fn new(
        listener: &ListenerConfig,
        local: SocketAddr,
        cluster: impl Fn(&str) -> Option<Arc<Cluster>>,
        shared: Shared,
        stats: Arc<ListenerStats>,
    ) -> Result<Self, ConfigError> {
        let router = Router::new(listener.routes.clone());
        let targets = router
            .routes()
            .iter()
            .map(|r| {
                let clusters: Vec<(Arc<Cluster>, u32)> = match &r.action {
                    RouteAction::Forward(f) => f
                        .backends
                        .iter()
                        .filter_map(|b| cluster(&b.cluster).map(|c| (c, b.weight)))
                        .collect(),
                    RouteAction::DirectResponse { .. } => Vec::new(),
                };
                let total_weight = clusters.iter().map(|(_, w)| u64::from(*w)).sum();
                Ok(RouteTargets {
                    name: Arc::from(r.name.as_str()),
                    clusters,
                    total_weight,
                    features: Arc::new(RouteFeatures::try_new(r)?),
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        let records = Arc::new(Records {
            sink: Arc::clone(&shared.sink),
            listener: stats,
        });
        Ok(Pipeline {
            listener: Arc::from(listener.name.as_str()),
            local,
            router,
            targets,
            shared,
            records,
        })
    }

    /// The stats of this listener's route features, for the `/stats` registry.
    pub(crate) fn feature_stats(&self) -> FeatureStats {
        FeatureStats {
            routes: self
                .targets
                .iter()
                .map(|t| {
                    let cluster = t.clusters.first().map(|(c, _)| c.config.name.clone());
                    (self.listener.to_string(), cluster, Arc::clone(&t.features))
                })
                .collect(),
        }
    }

    /// The listener's HTTP stats (the server counts protocol errors in them).
    pub(crate) fn http_stats(&self) -> &HttpStats {
        &self.records.listener.stats
    }

    /// Handles one downstream request end to end.
    pub async fn handle<B>(&self, req: Request<B>, peer: SocketAddr) -> Response<ProxyBody>
    where
        B: Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        self.serve(req, peer, &mut HeaderMap::new()).await.into()
    }

    /// Handles one downstream request end to end; the response's header fields stay as the
    /// upstream's lines where they can (see [`ResponseHeaders`]). The request's header map is
    /// left in `spent`, so that a connection can build the next request's in its memory
    /// (building a map costs two allocations, dropping it two frees).
    pub async fn serve<B>(
        &self,
        req: Request<B>,
        peer: SocketAddr,
        spent: &mut HeaderMap,
    ) -> ProxyResponse
    where
        B: Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        let start = Instant::now();
        self.http_stats().downstream_rq_total.inc();
        let (mut parts, body) = req.into_parts();
        headers::clean_external_request(&mut parts.headers);
        let request_id = headers::ensure_request_id(&mut parts.headers, &self.shared.request_ids);
        let entry = AccessLogEntry {
            request_id,
            listener: Arc::clone(&self.listener),
            route: None,
            cluster: None,
            upstream_host: None,
            backend: None,
            replica: None,
            method: parts.method.clone(),
            path: parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
            status: 0,
            response_flags: ResponseFlags::EMPTY,
            attempts: 0,
            start: start.saturating_duration_since(self.shared.epoch),
            duration: Duration::ZERO,
            upstream_duration: None,
        };
        let mut x = Exchange::new(entry, start, Arc::clone(&self.records));
        x.grpc_request = grpc::is_grpc_request(&parts.headers);
        x.head_request = parts.method == http::Method::HEAD;

        // A response override's redirect runs the request again (at most once), as Envoy's
        // custom response filter does with `recreateStream`.
        let mut body = RequestBody::Stream(body);
        let mut redirect = None;
        loop {
            match self.pass(x, &parts, body, peer, redirect).await {
                Pass::Done(response) => {
                    *spent = parts.headers;
                    return response;
                }
                Pass::Redirect {
                    exchange,
                    request,
                    status,
                } => {
                    x = exchange;
                    parts = request;
                    body = RequestBody::Buffered(Bytes::new());
                    redirect = Some(status);
                }
            }
        }
    }

    /// One pass of a request through the path; `redirect` is set on the pass a response
    /// override's redirect started (its overrides are not applied again, and a 1xx/2xx final
    /// status becomes the redirect's status).
    async fn pass<B>(
        &self,
        mut x: Exchange,
        parts: &Parts,
        body: RequestBody<B>,
        peer: SocketAddr,
        redirect: Option<StatusCode>,
    ) -> Pass
    where
        B: Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        x.redirect = redirect;
        // Route match.
        let Some(index) = self.router.route_index(parts) else {
            self.http_stats().no_route.inc();
            return Pass::Done(self.reply(x, ProxyError::NoRoute.local_reply(), None));
        };
        let route = &self.router.routes()[index];
        let targets = &self.targets[index];
        let features = &*targets.features;
        let ov = Some((features, parts));
        x.entry.route = Some(Arc::clone(&targets.name));
        let action = match &route.action {
            RouteAction::DirectResponse { status, body } => {
                self.http_stats().rq_direct_response.inc();
                return Pass::Done(self.reply(x, LocalReply::new(*status, body.clone()), ov));
            }
            RouteAction::Forward(f) => f,
        };

        // Fault injection (delay, then abort).
        if let Some(fault) = features.fault(&self.shared.rng) {
            if let Some(delay) = fault.delay {
                x.entry.response_flags.insert(ResponseFlag::DelayInjected);
                tokio::time::sleep(delay).await;
            }
            if let Some(abort) = fault.abort {
                return Pass::Done(self.reply(x, abort, ov));
            }
        }

        // The request is buffered whole: retries resend it, and Envoy's route timeout starts
        // once the downstream request is complete. A buffer limit turns an oversized body
        // into Envoy's 413 (no response flag: Envoy sets none for it).
        let body = match read_body(body, features.buffer_limit).await {
            Ok(b) => b,
            Err(BodyRead::TooLarge) => {
                self.http_stats().downstream_rq_too_large.inc();
                let reply = LocalReply::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Bytes::from_static(PAYLOAD_TOO_LARGE_BODY.as_bytes()),
                );
                return Pass::Done(self.reply(x, reply, ov));
            }
            Err(BodyRead::Failed) => {
                x.entry
                    .response_flags
                    .insert(ResponseFlag::DownstreamConnectionTermination);
                let reply = LocalReply::new(StatusCode::BAD_REQUEST, Bytes::new());
                return Pass::Done(self.reply(x, reply, ov));
            }
        };

        // Rate limiting: local buckets, then the global service.
        let mut extra_headers = None;
        if features.local_rate_limit.is_some() || features.global_rate_limit.is_some() {
            match features.rate_limit(&self.shared.global_rate_limit, &targets.name, parts, peer) {
                RateLimited::Allow(h) => extra_headers = h,
                RateLimited::Limit(reply) => return Pass::Done(self.reply(x, reply, ov)),
            }
        }

        // The request hash (route hash_policy, which Envoy Gateway emits only for consistent
        // hashing). With several weighted clusters it also picks the cluster, as Envoy's
        // `use_hash_policy` does, so a client sticks to one backend.
        let mut hash = None;
        if let Some(policy) = &features.hash {
            match policy.hash(parts, peer, self.local) {
                HashOutcome::Hash(h) => hash = Some(h),
                HashOutcome::None => {}
                HashOutcome::GenerateCookie {
                    hash: h,
                    set_cookie,
                } => {
                    hash = Some(h);
                    extra_headers
                        .get_or_insert_with(http::HeaderMap::new)
                        .append(http::header::SET_COOKIE, set_cookie);
                }
            }
        }

        // Weighted cluster (Gateway API: all weights 0 → 500).
        let Some(cluster) = self.pick_cluster(targets, hash) else {
            let reply = LocalReply::new(StatusCode::INTERNAL_SERVER_ERROR, Bytes::new());
            return Pass::Done(self.reply(x, reply, ov));
        };
        x.entry.cluster = Some(Arc::clone(&cluster.name));
        // The entry's backend is the attempted host's; the cluster's when none is attempted
        // (filled in when the request settles, so the common case clones it once).
        x.cluster = Some(Arc::clone(cluster));
        cluster.note_traffic();

        let timers = RouteTimers::start(action, Instant::now());
        let upstream_headers = headers::UpstreamHeaders::new(parts, peer);
        let out = Outgoing {
            parts,
            headers: &upstream_headers,
            body: &body,
            hash,
        };
        match self
            .forward(cluster, action, out, timers.headers, &mut x)
            .await
        {
            Ok(up) => self.respond(x, up, timers, extra_headers, features, parts),
            Err(e) => {
                match e {
                    ProxyError::RouteTimeout => cluster.stats.upstream_rq_timeout.inc(),
                    ProxyError::MaxStreamDuration => {
                        cluster.stats.upstream_rq_max_duration_reached.inc();
                    }
                    _ => {}
                }
                if matches!(
                    e,
                    ProxyError::RouteTimeout
                        | ProxyError::MaxStreamDuration
                        | ProxyError::StreamIdleTimeout
                ) {
                    x.abandon_attempt(e);
                }
                Pass::Done(self.reply(x, e.local_reply(), ov))
            }
        }
    }

    /// Attempts and retries until a final response or failure (§d.5), all before the route
    /// deadline (`route`: the earliest route-level timer, and the error it ends the request
    /// with). The deadline is applied at each wait rather than around the whole loop, so
    /// that an attempt's per-try timeout and the route deadline share one timer.
    async fn forward(
        &self,
        cluster: &Arc<Cluster>,
        action: &ForwardAction,
        out: Outgoing<'_>,
        route: Deadline,
        x: &mut Exchange,
    ) -> Result<Upstream, ProxyError> {
        let Outgoing { parts, hash, .. } = out;
        let stats = &cluster.stats;
        let per_try = action.retry.as_ref().and_then(|r| r.per_try_timeout);
        let mut retry = action.retry.as_ref().map(RetryState::new);
        let mut previous_hosts: Vec<usize> = Vec::new();
        // The host of the attempt before, moved into `previous_hosts` only when a retry follows,
        // so a request without retries never allocates the list.
        let mut last_host: Option<usize> = None;
        // Held from a retry's admission until that retry's attempt ends.
        let mut _retry_slot: Option<ResourceGuard> = None;
        loop {
            previous_hosts.extend(last_host.take());
            let ctx = PickContext {
                previous_hosts: &previous_hosts,
                hash,
            };
            let preferred = override_host(
                &cluster.config.endpoint_override_headers,
                &parts.headers,
                &cluster.hosts,
                &previous_hosts,
            );
            let Some(index) = preferred.or_else(|| cluster.lb.choose(&cluster.hosts, stats, ctx))
            else {
                stats.upstream_cx_none_healthy.inc();
                return Err(ProxyError::NoHealthyUpstream);
            };
            let host = &cluster.hosts.hosts()[index];
            last_host = Some(index);
            x.attempt_on(host);
            let active = host.start_request();

            let attempt = self.attempt(cluster, host, out, per_try, route).await;
            let retried = retry.as_ref().is_some_and(|r| r.retries_done() > 0);
            let decision = |retry: &mut Option<RetryState<'_>>, result: AttemptResult<'_>| {
                retry
                    .as_mut()
                    .map_or(RetryDecision::Final, |r| r.decide(result, &self.shared.rng))
            };
            let backoff = match attempt {
                Ok(Attempt {
                    response,
                    sent_at,
                    rq_slot,
                }) => {
                    x.entry.upstream_duration = Some(sent_at.elapsed());
                    let status = response.status.as_u16();
                    let outlier = grpc::outlier_status(x.grpc_request, status, &response.headers);
                    cluster.report(host, Outcome::Response(outlier));
                    if response.headers.contains(&IMMEDIATE_HC_FAIL) {
                        cluster.immediate_health_check_fail(host);
                    }
                    let verdict = decision(
                        &mut retry,
                        AttemptResult::Response {
                            status,
                            headers: &response.headers,
                        },
                    );
                    let up = Upstream {
                        response,
                        attempt: (rq_slot, active),
                    };
                    match self.settle(cluster, verdict, retried, x) {
                        Settle::Done => return Ok(up),
                        Settle::Retry(backoff, slot) => {
                            _retry_slot = Some(slot);
                            backoff
                        }
                    }
                }
                // A route-level timer ends the request: no outcome, no retry (the caller
                // reports the abandoned attempt).
                Err(e) if route.is_some_and(|(_, route_error)| e == route_error) => return Err(e),
                Err(e) => {
                    if let Some(mapped) = e.local_origin_status() {
                        cluster.report(host, Outcome::LocalFailure(mapped));
                    }
                    if e == ProxyError::PerTryTimeout {
                        stats.upstream_rq_per_try_timeout.inc();
                    }
                    let verdict = decision(&mut retry, AttemptResult::Failure(e));
                    drop(active);
                    match self.settle(cluster, verdict, retried, x) {
                        Settle::Done => return Err(e),
                        Settle::Retry(backoff, slot) => {
                            _retry_slot = Some(slot);
                            backoff
                        }
                    }
                }
            };
            within(route, async {
                tokio::time::sleep(backoff).await;
                Ok(())
            })
            .await?;
        }
    }

    /// One attempt: a connection from the pool (pending and connection limits), admission
    /// against `max_requests` when the request attaches to it (overflow rejects at once and is
    /// counted as pending overflow, as in Envoy), send, wait for headers (per-try timeout).
    async fn attempt(
        &self,
        cluster: &Arc<Cluster>,
        host: &Arc<Host>,
        out: Outgoing<'_>,
        per_try: Option<Duration>,
        route: Deadline,
    ) -> Result<Attempt, ProxyError> {
        let Outgoing {
            parts,
            headers: upstream_headers,
            body,
            ..
        } = out;
        let h2 = cluster.config.upstream_protocol.is_h2_for(parts.version);
        let lease = within(route, pool::acquire(&cluster.pool, host, h2)).await?;
        let Some(rq_slot) = cluster.resources().requests.try_acquire() else {
            cluster.stats.upstream_rq_pending_overflow.inc();
            // The connection is unused: keep it for the next request.
            lease.finish();
            return Err(ProxyError::Overflow);
        };
        cluster.stats.upstream_rq_total.inc();
        let sent_at = Instant::now();
        // Per-try first: on a tie the attempt fails as a try, then the route deadline ends
        // the request before any retry.
        let per_try = per_try.map(|t| (sent_at + t, ProxyError::PerTryTimeout));
        let deadline = earliest(per_try, route);
        let response = if lease.is_h2() {
            let request = upstream_headers.h2_request(body.clone());
            // Boxed for the same reason as `pool::acquire`'s HTTP/2 path.
            within(deadline, Box::pin(lease.send_h2(request))).await?
        } else {
            let head = parts.method == http::Method::HEAD;
            let encode = |out: &mut Vec<u8>| upstream_headers.encode_h1(body.len(), out);
            lease.send_h1(encode, body, head, deadline).await?
        };
        Ok(Attempt {
            response,
            sent_at,
            rq_slot,
        })
    }

    /// Applies a retry verdict: final, limit exceeded (URX), or a retry admitted by
    /// `max_retries` (overflow → the last result is final, flag UO).
    fn settle(
        &self,
        cluster: &Cluster,
        verdict: RetryDecision,
        retried: bool,
        x: &mut Exchange,
    ) -> Settle {
        let stats = &cluster.stats;
        match verdict {
            RetryDecision::Final => {
                if retried {
                    stats.upstream_rq_retry_success.inc();
                }
                Settle::Done
            }
            RetryDecision::LimitExceeded => {
                stats.upstream_rq_retry_limit_exceeded.inc();
                x.entry
                    .response_flags
                    .insert(ResponseFlag::UpstreamRetryLimitExceeded);
                Settle::Done
            }
            RetryDecision::Retry(backoff) => match admit_retry(cluster) {
                Some(slot) => {
                    stats.upstream_rq_retry.inc();
                    stats.upstream_rq_retry_backoff_exponential.inc();
                    tracing::debug!(cluster = %cluster.name, ?backoff, "retrying request");
                    Settle::Retry(backoff, slot)
                }
                None => {
                    stats.upstream_rq_retry_overflow.inc();
                    x.entry
                        .response_flags
                        .insert(ResponseFlag::UpstreamOverflow);
                    Settle::Done
                }
            },
        }
    }

    /// The weighted cluster: by `hash` when the request has one, else at random.
    fn pick_cluster<'t>(&self, t: &'t RouteTargets, hash: Option<u64>) -> Option<&'t Arc<Cluster>> {
        match t.clusters.as_slice() {
            [] => None,
            [(c, w)] => (*w > 0).then_some(c),
            many => {
                if t.total_weight == 0 {
                    return None;
                }
                let mut ticket = match hash {
                    Some(h) => h % t.total_weight,
                    None => self.shared.rng.below(t.total_weight),
                };
                for (c, w) in many {
                    let w = u64::from(*w);
                    if ticket < w {
                        return Some(c);
                    }
                    ticket -= w;
                }
                None
            }
        }
    }

    /// Streams an upstream response downstream (after a matching response override), or
    /// starts the redirect pass a matching redirect override asks for.
    fn respond(
        &self,
        mut x: Exchange,
        up: Upstream,
        timers: RouteTimers,
        extra_headers: Option<http::HeaderMap>,
        features: &RouteFeatures,
        request: &Parts,
    ) -> Pass {
        let Upstream { response, attempt } = up;
        let UpstreamResponse {
            status: mut final_status,
            mut headers,
            body: incoming,
        } = response;
        let status = final_status.as_u16();
        if let Some(c) = &x.cluster {
            c.stats.count_status(status);
        }
        headers::clean_response(&mut headers);
        if let Some(extra) = extra_headers {
            headers.extend(extra);
        }
        let mut new_body = None;
        if let Some(code) = x.redirect {
            redirected_status(&mut final_status, code);
        } else if !features.overrides.is_empty() {
            match features.override_for(status, headers.map_mut(), false) {
                None => {}
                Some(OverrideAction::Response(r)) => {
                    new_body = features::apply_response(r, &mut final_status, headers.map_mut());
                }
                Some(OverrideAction::Redirect(r)) => {
                    let target = features::redirect_request(r, request);
                    // Envoy redirects only to a request some route matches; otherwise the
                    // original response goes through.
                    if self.router.route_index(&target).is_some() {
                        // The upstream body is not read: its connection closes with it.
                        drop((incoming, attempt));
                        return Pass::Redirect {
                            exchange: x,
                            request: target,
                            status: features::redirect_status(r),
                        };
                    }
                }
            }
        }
        x.attempt = Some(attempt);
        x.entry.status = final_status.as_u16();
        let body = match new_body {
            Some(body) => {
                // The upstream body is replaced unread: its connection closes with it.
                drop(incoming);
                ProxyBody::full(body, x)
            }
            None => ProxyBody::upstream(incoming, timers.body, timers.body_idle, x),
        };
        Pass::Done(ProxyResponse {
            status: final_status,
            headers,
            body,
        })
    }

    /// Sends a reply generated by the proxy; `ov` (the route's features and the request) lets
    /// a response override rewrite it. A gRPC request gets it in gRPC form first (see
    /// [`grpc`]): Envoy converts the local reply before it passes the encoder filters, so a
    /// response override then sees HTTP 200 with `grpc-status`.
    fn reply(
        &self,
        mut x: Exchange,
        mut reply: LocalReply,
        ov: Option<(&RouteFeatures, &Parts)>,
    ) -> ProxyResponse {
        if let Some(flag) = reply.flag {
            x.entry.response_flags.insert(flag);
        }
        // Envoy's router charges its own replies to the cluster's response-code stats.
        if let Some(c) = &x.cluster {
            c.stats.count_status(reply.status.as_u16());
        }
        if reply.overloaded {
            reply.headers.insert(
                super::retry::OVERLOADED_HEADER,
                HeaderValue::from_static("true"),
            );
        }
        if x.grpc_request {
            grpc::into_trailers_only(&mut reply, x.head_request);
        }
        if let Some(code) = x.redirect {
            redirected_status(&mut reply.status, code);
        } else if let Some((features, _)) = ov
            && !features.overrides.is_empty()
        {
            match features.override_for(reply.status.as_u16(), &reply.headers, true) {
                None => {}
                Some(OverrideAction::Response(r)) => {
                    if let Some(body) =
                        features::apply_response(r, &mut reply.status, &mut reply.headers)
                    {
                        reply.body = body;
                        reply.trailers_only = false;
                    }
                }
                // Envoy's redirect policy cannot recreate a stream that already sent a local
                // reply: the reply goes out unchanged.
                Some(OverrideAction::Redirect(_)) => {}
            }
        }
        x.entry.status = reply.status.as_u16();
        let mut h = reply.headers;
        if !reply.trailers_only {
            if !reply.body.is_empty() && !h.contains_key(http::header::CONTENT_TYPE) {
                h.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain"),
                );
            }
            h.insert(
                http::header::CONTENT_LENGTH,
                HeaderValue::from(reply.body.len()),
            );
        }
        h.insert(http::header::SERVER, HeaderValue::from_static("envoy"));
        ProxyResponse {
            status: reply.status,
            headers: h.into(),
            body: ProxyBody::full(reply.body, x),
        }
    }
}

/// On a redirect's pass a 1xx/2xx final status becomes the redirect's status; any other
/// status stays (Envoy's redirect policy applies its mutations to non-error responses only).
fn redirected_status(status: &mut StatusCode, redirect: StatusCode) {
    if (100..=299).contains(&status.as_u16()) {
        *status = redirect;
    }
}

/// Why the request body could not be buffered.
enum BodyRead {
    /// Larger than the route's buffer limit.
    TooLarge,
    /// The downstream body failed (the client went away or sent garbage).
    Failed,
}

/// The request body of a pass: the downstream stream, or the body a redirect pass resends.
enum RequestBody<B> {
    Stream(B),
    Buffered(Bytes),
}

/// How a pass ended: a response, or a response override's redirect to run.
enum Pass {
    Done(ProxyResponse),
    Redirect {
        exchange: Exchange,
        request: Parts,
        status: StatusCode,
    },
}

/// Buffers the whole request body, stopping as soon as it exceeds `limit`.
async fn read_body<B>(body: RequestBody<B>, limit: Option<u64>) -> Result<Bytes, BodyRead>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let body = match body {
        RequestBody::Buffered(b) if limit.is_some_and(|l| b.len() as u64 > l) => {
            return Err(BodyRead::TooLarge);
        }
        RequestBody::Buffered(b) => return Ok(b),
        // Most requests have no body: nothing to wait for or collect.
        RequestBody::Stream(body) if body.is_end_stream() => return Ok(Bytes::new()),
        RequestBody::Stream(body) => body,
    };
    let failed = |e: B::Error| {
        tracing::debug!(error = %e, "downstream request body failed");
        BodyRead::Failed
    };
    let Some(limit) = limit else {
        return body.collect().await.map(|c| c.to_bytes()).map_err(failed);
    };
    let mut body = std::pin::pin!(body);
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(failed)?.into_data() {
            if (buf.len() + data.len()) as u64 > limit {
                return Err(BodyRead::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// The request as every attempt sends it, plus its consistent-hash input.
#[derive(Clone, Copy)]
struct Outgoing<'a> {
    parts: &'a Parts,
    headers: &'a headers::UpstreamHeaders<'a>,
    body: &'a Bytes,
    hash: Option<u64>,
}

/// A deadline and the error it ends a wait with.
type Deadline = Option<(Instant, ProxyError)>;

/// The earlier of two deadlines (`a` on a tie).
fn earliest(a: Deadline, b: Deadline) -> Deadline {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.0 < x.0 { y } else { x }),
        (x, y) => x.or(y),
    }
}

/// `fut`, cut off at `deadline` with the deadline's error.
async fn within<T>(
    deadline: Deadline,
    fut: impl Future<Output = Result<T, ProxyError>>,
) -> Result<T, ProxyError> {
    match deadline {
        Some((at, e)) => tokio::time::timeout_at(at, fut).await.unwrap_or(Err(e)),
        None => fut.await,
    }
}

/// What a successful attempt holds.
struct Attempt {
    response: UpstreamResponse,
    sent_at: Instant,
    rq_slot: ResourceGuard,
}

enum Settle {
    Done,
    Retry(Duration, ResourceGuard),
}

/// Takes a `max_retries` slot, or a retry-budget slot when a budget is configured.
fn admit_retry(cluster: &Cluster) -> Option<ResourceGuard> {
    let r = cluster.resources();
    match &cluster.config.circuit_breaker.retry_budget {
        Some(budget) => {
            let outstanding = r.requests.current() + r.pending_requests.current();
            r.retries.try_acquire_below(budget.allowed(outstanding))
        }
        None => r.retries.try_acquire(),
    }
}

impl LocalReply {
    /// A reply with no flag and no extra headers.
    pub fn new(status: StatusCode, body: Bytes) -> Self {
        LocalReply {
            status,
            body,
            flag: None,
            overloaded: false,
            headers: http::HeaderMap::new(),
            grpc_status: None,
            trailers_only: false,
        }
    }
}
