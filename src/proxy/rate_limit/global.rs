//! In-process stand-in for the envoyproxy/ratelimit service behind EG's global rate limit.
//!
//! The service counts in fixed windows aligned to the unit on the wall clock (a Minute window
//! starts at :00). Every matching rule counts (by its request cost) and the request is over the
//! limit when any non-shadow counter exceeds its limit after the increment; over-limit requests
//! still count, as in the service. Non-shared rules count per route; shared rules count once for
//! every route the policy reaches (keyed by the rule name `<ns>/<policy>/rule/<i>`). A rejection is
//! a 429 **without** `x-envoy-ratelimited` (EG suppresses Envoy headers by default).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::request::Parts;
use tokio::time::Instant;

use super::matcher::{DistinctKey, RuleMatcher};
use super::{Decision, Limit, RateLimitConfigError, RateLimitHeaders, RuleConfig, check_requests};

/// Entries kept before windows that have ended are swept.
const SWEEP_AT: usize = 100_000;

/// Raw global rate limit of one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalRateLimitConfig {
    /// `<namespace>/<policy name>`; rule names are `<policy_id>/rule/<index>`.
    pub policy_id: String,
    /// `rateLimit.global.rules`.
    pub rules: Vec<RuleConfig>,
    /// Listener-level X-RateLimit headers (on by default).
    pub x_ratelimit_headers: bool,
}

/// Maps tokio's clock to Unix time, so windows align to the wall clock and tests can pause time.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    origin: Instant,
    origin_unix: Duration,
}

/// Validated rules of one policy plus the stats of the route(s) using them.
#[derive(Debug)]
pub struct GlobalRuleSet {
    rules: Vec<GlobalRule>,
    headers_default: bool,
    stats: GlobalRateLimitStats,
}

/// `ratelimit.*` counters (Envoy keeps them per upstream cluster).
#[derive(Debug, Default)]
pub struct GlobalRateLimitStats {
    /// `ratelimit.ok`: checked and under every limit (or only over shadow limits).
    pub ok: AtomicU64,
    /// `ratelimit.over_limit`: rejected.
    pub over_limit: AtomicU64,
}

/// The counting service shared by every route of a run.
#[derive(Debug)]
pub struct GlobalRateLimiter {
    clock: WallClock,
    counters: Mutex<HashMap<CounterKey, Window>>,
}

#[derive(Debug)]
struct GlobalRule {
    name: String,
    matcher: RuleMatcher,
    limit: Limit,
    cost: u64,
    shared: bool,
    shadow: bool,
    headers: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CounterKey {
    scope: String,
    distinct: DistinctKey,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    unit: u64,
    index: u64,
    count: u64,
}

struct Status {
    limit: u64,
    unit_secs: u64,
    remaining: u64,
    reset: u64,
    headers: Option<bool>,
}

impl WallClock {
    /// `origin` (a tokio instant) corresponds to `origin_unix` since the Unix epoch.
    pub fn new(origin: Instant, origin_unix: Duration) -> Self {
        Self {
            origin,
            origin_unix,
        }
    }

    /// Anchors tokio's clock to the system clock now.
    pub fn system() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            origin: Instant::now(),
            origin_unix: unix,
        }
    }

    /// Whole Unix seconds at `now`.
    pub fn unix_secs(&self, now: Instant) -> u64 {
        (self.origin_unix + now.saturating_duration_since(self.origin)).as_secs()
    }
}

impl GlobalRuleSet {
    /// Validates the rules (selectors, limits).
    pub fn try_new(config: &GlobalRateLimitConfig) -> Result<Self, RateLimitConfigError> {
        let mut rules = Vec::with_capacity(config.rules.len());
        for (i, r) in config.rules.iter().enumerate() {
            check_requests(r.limit)?;
            rules.push(GlobalRule {
                name: format!("{}/rule/{i}", config.policy_id),
                matcher: RuleMatcher::try_new(&r.client_selectors)?,
                limit: r.limit,
                cost: r.cost,
                shared: r.shared,
                shadow: r.shadow_mode,
                headers: r.x_ratelimit_headers,
            });
        }
        Ok(Self {
            rules,
            headers_default: config.x_ratelimit_headers,
            stats: GlobalRateLimitStats::default(),
        })
    }

    /// The stats.
    pub fn stats(&self) -> &GlobalRateLimitStats {
        &self.stats
    }
}

impl GlobalRateLimitStats {
    /// `(envoy stat name, value)` pairs.
    pub fn snapshot(&self) -> [(&'static str, u64); 2] {
        [
            ("ratelimit.ok", self.ok.load(Ordering::Relaxed)),
            (
                "ratelimit.over_limit",
                self.over_limit.load(Ordering::Relaxed),
            ),
        ]
    }
}

impl GlobalRateLimiter {
    /// A service whose windows align to `clock`.
    pub fn new(clock: WallClock) -> Self {
        Self {
            clock,
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `route` against `rules` at `now`. A request matching no rule is not
    /// sent to the service: no stats and no headers.
    pub fn check(
        &self,
        rules: &GlobalRuleSet,
        route: &str,
        parts: &Parts,
        peer_ip: IpAddr,
        now: Instant,
    ) -> Decision {
        let unix = self.clock.unix_secs(now);
        let mut key = DistinctKey::default();
        let mut statuses: Vec<Status> = Vec::new();
        let mut limited = false;
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if counters.len() >= SWEEP_AT {
            counters.retain(|_, w| w.index == unix / w.unit);
        }
        for rule in &rules.rules {
            if !rule.matcher.matches(parts, peer_ip, &mut key) {
                continue;
            }
            let unit = rule.limit.unit.seconds();
            let index = unix / unit;
            let scope = if rule.shared {
                rule.name.clone()
            } else {
                format!("{route}|{}", rule.name)
            };
            let w = counters
                .entry(CounterKey {
                    scope,
                    distinct: std::mem::take(&mut key),
                })
                .or_insert(Window {
                    unit,
                    index,
                    count: 0,
                });
            if w.index != index {
                *w = Window {
                    unit,
                    index,
                    count: 0,
                };
            }
            w.count = w.count.saturating_add(rule.cost);
            let over = w.count > rule.limit.requests;
            if over && !rule.shadow {
                limited = true;
            }
            if over {
                tracing::debug!(rule = %rule.name, shadow = rule.shadow, "global rate limit: over limit");
            }
            statuses.push(Status {
                limit: rule.limit.requests,
                unit_secs: unit,
                remaining: rule.limit.requests.saturating_sub(w.count),
                reset: unit - unix % unit,
                headers: rule.headers,
            });
        }
        drop(counters);
        if statuses.is_empty() {
            return Decision {
                limited: false,
                headers: None,
            };
        }
        if limited {
            rules.stats.over_limit.fetch_add(1, Ordering::Relaxed);
        } else {
            rules.stats.ok.fetch_add(1, Ordering::Relaxed);
        }
        Decision {
            limited,
            headers: draft03_headers(&statuses, rules.headers_default),
        }
    }
}

/// Envoy's draft-03 headers from the service's statuses: the status with the least remaining
/// gives remaining/reset; the limit lists it first, then every status as `N;w=<window s>`.
fn draft03_headers(statuses: &[Status], default_on: bool) -> Option<RateLimitHeaders> {
    let min = statuses.iter().min_by_key(|s| s.remaining)?;
    if !min.headers.unwrap_or(default_on) {
        return None;
    }
    let mut limit = min.limit.to_string();
    for s in statuses {
        limit.push_str(&format!(", {};w={}", s.limit, s.unit_secs));
    }
    Some(RateLimitHeaders {
        limit,
        remaining: min.remaining,
        reset: min.reset,
    })
}
