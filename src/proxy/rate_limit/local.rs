//! Envoy's local rate limit (`envoy.filters.http.local_ratelimit`) as EG configures it per route.
//!
//! Each rule owns a token bucket of `requests` tokens that starts full and refills smoothly at
//! `requests / unit` (Envoy's atomic token bucket). The first selector-less rule is the default
//! bucket (else 4294967295 per second); it is used only by requests that match no other rule.
//! Matched buckets are consumed in order of increasing fill rate and the first empty one rejects.
//! Distinct rules get one bucket per distinct value, created on demand, at most
//! [`MAX_DYNAMIC_DESCRIPTORS`] in all (least recently used evicted first).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use http::request::Parts;
use tokio::time::Instant;

use super::matcher::{DistinctKey, RuleMatcher};
use super::{
    Decision, Limit, MAX_DYNAMIC_DESCRIPTORS, RateLimitConfigError, RateLimitHeaders, RuleConfig,
    UNLIMITED_REQUESTS, Unit, check_requests,
};

/// Raw local rate limit of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRateLimitConfig {
    /// `rateLimit.local.rules`.
    pub rules: Vec<RuleConfig>,
    /// Listener-level X-RateLimit headers (on unless ClientTrafficPolicy `disableRateLimitHeaders`).
    pub x_ratelimit_headers: bool,
}

/// `http_local_rate_limiter.http_local_rate_limit.*` counters.
#[derive(Debug, Default)]
pub struct LocalRateLimitStats {
    /// Requests checked.
    pub enabled: AtomicU64,
    /// Requests a bucket let through.
    pub ok: AtomicU64,
    /// Requests that found a bucket empty (also in shadow mode).
    pub rate_limited: AtomicU64,
    /// Requests answered with 429.
    pub enforced: AtomicU64,
}

/// A route's local rate limiter; share it (`Arc`) across connections.
#[derive(Debug)]
pub struct LocalRateLimiter {
    default: RuleState,
    default_limit: Option<Limit>,
    rules: Vec<LocalRule>,
    dynamic: Mutex<HashMap<(usize, DistinctKey), DynamicBucket>>,
    headers_default: bool,
    default_bucket: Arc<TokenBucket>,
    stats: LocalRateLimitStats,
}

#[derive(Debug)]
struct LocalRule {
    matcher: RuleMatcher,
    state: RuleState,
    /// Shared bucket for non-Distinct rules.
    bucket: Option<Arc<TokenBucket>>,
}

#[derive(Debug, Clone, Copy)]
struct RuleState {
    limit: Limit,
    cost: u64,
    shadow: bool,
    headers: Option<bool>,
}

#[derive(Debug)]
struct DynamicBucket {
    bucket: Arc<TokenBucket>,
    last_used: Instant,
}

/// Smoothly refilling token bucket (starts full).
#[derive(Debug)]
struct TokenBucket {
    max: f64,
    per_fill: f64,
    interval_nanos: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    /// None until first use: the bucket is full.
    last: Option<Instant>,
}

impl LocalRateLimiter {
    /// Validates the rules with EG's translator rules.
    pub fn try_new(config: &LocalRateLimitConfig) -> Result<Self, RateLimitConfigError> {
        let mut default_limit = None;
        let mut default = RuleState {
            limit: Limit {
                requests: UNLIMITED_REQUESTS,
                unit: Unit::Second,
            },
            cost: 1,
            shadow: false,
            headers: None,
        };
        for rule in config
            .rules
            .iter()
            .filter(|r| r.client_selectors.is_empty())
        {
            if default_limit.is_some() {
                return Err(RateLimitConfigError::TwoDefaultRules);
            }
            check_requests(rule.limit)?;
            default_limit = Some(rule.limit);
            default = RuleState::of(rule);
        }
        let mut rules = Vec::new();
        for rule in config
            .rules
            .iter()
            .filter(|r| !r.client_selectors.is_empty())
        {
            check_requests(rule.limit)?;
            if rule.limit.unit.seconds() % default.limit.unit.seconds() != 0 {
                return Err(RateLimitConfigError::UnitNotMultiple);
            }
            let matcher = RuleMatcher::try_new(&rule.client_selectors)?;
            let bucket = (!matcher.is_distinct()).then(|| Arc::new(TokenBucket::new(rule.limit)));
            rules.push(LocalRule {
                matcher,
                state: RuleState::of(rule),
                bucket,
            });
        }
        Ok(Self {
            default,
            default_limit,
            rules,
            dynamic: Mutex::new(HashMap::new()),
            headers_default: config.x_ratelimit_headers,
            default_bucket: Arc::new(TokenBucket::new(default.limit)),
            stats: LocalRateLimitStats::default(),
        })
    }

    /// The configured default bucket (None = the implicit unlimited one).
    pub fn default_bucket(&self) -> Option<Limit> {
        self.default_limit
    }

    /// Checks and consumes for one request at `now`. On `limited`, reply 429 with
    /// [`super::LOCAL_REJECT_BODY`], [`super::LOCAL_REJECT_HEADER`] and the headers (flag `RL`).
    pub fn check(&self, parts: &Parts, peer_ip: IpAddr, now: Instant) -> Decision {
        self.stats.enabled.fetch_add(1, Ordering::Relaxed);
        let mut key = DistinctKey::default();
        let mut matched: Vec<(RuleState, Arc<TokenBucket>)> = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matcher.matches(parts, peer_ip, &mut key) {
                continue;
            }
            let bucket = match &rule.bucket {
                Some(b) => b.clone(),
                None => self.dynamic_bucket(i, rule.state.limit, std::mem::take(&mut key), now),
            };
            matched.push((rule.state, bucket));
        }
        // Envoy consumes the slowest-filling bucket first (stable for equal rates).
        matched.sort_by(|a, b| a.1.rate().total_cmp(&b.1.rate()));

        // Requests that match no rule use the default bucket (always_consume_default_token_bucket=false).
        if matched.is_empty() {
            matched.push((self.default, self.default_bucket.clone()));
        }
        let mut bucket_said_no = false;
        let mut rejecting = None;
        for (i, (state, bucket)) in matched.iter().enumerate() {
            if !bucket.consume(state.cost, now) {
                bucket_said_no = true;
                // A shadow-mode bucket counts the miss but lets the request on.
                if !state.shadow {
                    rejecting = Some(i);
                    break;
                }
            }
        }
        let limited = rejecting.is_some();
        let (ctx_state, ctx_bucket) = &matched[rejecting.unwrap_or(0)];
        if bucket_said_no {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.ok.fetch_add(1, Ordering::Relaxed);
        }
        if limited {
            self.stats.enforced.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                limit = ctx_state.limit.requests,
                "local rate limit: request rejected"
            );
        }
        let headers = ctx_state
            .headers
            .unwrap_or(self.headers_default)
            .then(|| ctx_bucket.headers(now));
        Decision { limited, headers }
    }

    /// Stats with their Envoy names.
    pub fn stats(&self) -> &LocalRateLimitStats {
        &self.stats
    }

    /// Number of live Distinct buckets.
    pub fn dynamic_buckets(&self) -> usize {
        lock(&self.dynamic).len()
    }

    fn dynamic_bucket(
        &self,
        rule: usize,
        limit: Limit,
        key: DistinctKey,
        now: Instant,
    ) -> Arc<TokenBucket> {
        let mut map = lock(&self.dynamic);
        let k = (rule, key);
        if let Some(d) = map.get_mut(&k) {
            d.last_used = now;
            return d.bucket.clone();
        }
        if map.len() >= MAX_DYNAMIC_DESCRIPTORS {
            // Envoy keeps an LRU of dynamic descriptors; evict the least recently used.
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, d)| d.last_used)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let bucket = Arc::new(TokenBucket::new(limit));
        map.insert(
            k,
            DynamicBucket {
                bucket: bucket.clone(),
                last_used: now,
            },
        );
        bucket
    }
}

impl LocalRateLimitStats {
    /// `(envoy stat name, value)` pairs.
    pub fn snapshot(&self) -> [(&'static str, u64); 4] {
        [
            (
                "http_local_rate_limiter.http_local_rate_limit.enabled",
                self.enabled.load(Ordering::Relaxed),
            ),
            (
                "http_local_rate_limiter.http_local_rate_limit.ok",
                self.ok.load(Ordering::Relaxed),
            ),
            (
                "http_local_rate_limiter.http_local_rate_limit.rate_limited",
                self.rate_limited.load(Ordering::Relaxed),
            ),
            (
                "http_local_rate_limiter.http_local_rate_limit.enforced",
                self.enforced.load(Ordering::Relaxed),
            ),
        ]
    }
}

impl RuleState {
    fn of(rule: &RuleConfig) -> Self {
        Self {
            limit: rule.limit,
            cost: rule.cost,
            shadow: rule.shadow_mode,
            headers: rule.x_ratelimit_headers,
        }
    }
}

impl TokenBucket {
    fn new(limit: Limit) -> Self {
        let requests = limit.requests as f64;
        Self {
            max: requests,
            per_fill: requests,
            interval_nanos: limit.unit.duration().as_nanos() as f64,
            state: Mutex::new(BucketState {
                tokens: requests,
                last: None,
            }),
        }
    }

    /// Tokens per second.
    fn rate(&self) -> f64 {
        self.per_fill / self.interval_nanos * 1e9
    }

    fn refill(&self, st: &mut BucketState, now: Instant) -> f64 {
        if let Some(last) = st.last {
            let elapsed = now.saturating_duration_since(last).as_nanos() as f64;
            // Multiply before dividing so whole fill intervals give whole tokens exactly.
            st.tokens = (st.tokens + elapsed * self.per_fill / self.interval_nanos).min(self.max);
        }
        st.last = Some(now);
        st.tokens
    }

    /// Takes `cost` tokens; cost 0 only checks that a token is left.
    fn consume(&self, cost: u64, now: Instant) -> bool {
        let mut st = lock(&self.state);
        let tokens = self.refill(&mut st, now);
        if cost == 0 {
            return tokens >= 1.0;
        }
        let cost = cost as f64;
        if tokens < cost {
            return false;
        }
        st.tokens = tokens - cost;
        true
    }

    /// Envoy: limit = max tokens, remaining = whole tokens left, reset = whole seconds until the
    /// next token (0 while tokens remain).
    fn headers(&self, now: Instant) -> RateLimitHeaders {
        let mut st = lock(&self.state);
        let tokens = self.refill(&mut st, now);
        let reset = if tokens >= 1.0 || self.per_fill == 0.0 {
            0
        } else {
            let ms = ((1.0 - tokens) * self.interval_nanos / self.per_fill / 1e6).ceil() as u64;
            ms / 1000
        };
        RateLimitHeaders {
            limit: (self.max as u64).to_string(),
            remaining: tokens.max(0.0) as u64,
            reset,
        }
    }
}

/// Locks held here are short and never across `.await`; a poisoned lock still has valid state.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
