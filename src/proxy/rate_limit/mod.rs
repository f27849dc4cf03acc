//! Request rate limiting (`rateLimit.local` and `rateLimit.global`).
//!
//! `matcher` turns EG client selectors into request matchers, `local` emulates Envoy's
//! `local_ratelimit` token buckets, `global` is an in-process stand-in for the envoyproxy/ratelimit
//! service (fixed windows aligned to the unit). Both share the raw rule types below.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, StatusCode};

pub mod global;
pub mod local;
pub mod matcher;

pub use global::{
    GlobalRateLimitConfig, GlobalRateLimitStats, GlobalRateLimiter, GlobalRuleSet, WallClock,
};
pub use local::{LocalRateLimitConfig, LocalRateLimitStats, LocalRateLimiter};

/// Status of every rate-limit rejection.
pub const REJECT_STATUS: StatusCode = StatusCode::TOO_MANY_REQUESTS;
/// Body of a local rate-limit rejection.
pub const LOCAL_REJECT_BODY: &str = "local_rate_limited";
/// Header (name, value) a local rejection carries; global rejections do not (EG suppresses it).
pub const LOCAL_REJECT_HEADER: (&str, &str) = ("x-envoy-ratelimited", "true");
/// Response flag for a rate-limited request.
pub const FLAG_RATE_LIMITED: &str = "RL";
/// Limit EG gives the implicit default bucket (per second): effectively unlimited.
pub const UNLIMITED_REQUESTS: u64 = 4_294_967_295;
/// Cap on Distinct buckets per limiter (Envoy `max_dynamic_descriptors` default as EG leaves it).
pub const MAX_DYNAMIC_DESCRIPTORS: usize = 10_000;

/// `limit.unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// 1 s.
    Second,
    /// 60 s.
    Minute,
    /// 3600 s.
    Hour,
    /// 86400 s.
    Day,
    /// 604800 s.
    Week,
    /// 30 days.
    Month,
    /// 365 days.
    Year,
}

/// `limit {requests, unit}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests per unit (0..=4294967295).
    pub requests: u64,
    /// Window / fill interval.
    pub unit: Unit,
}

/// Match type of a header or query parameter selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatchType {
    /// Equal to `value`.
    Exact,
    /// RE2 full match of `value`.
    RegularExpression,
    /// Every distinct value gets its own bucket (no value, no invert).
    Distinct,
}

/// `clientSelectors[].headers[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatchConfig {
    /// Header name (case-insensitive).
    pub name: String,
    /// Match type (EG default Exact).
    pub match_type: StringMatchType,
    /// Value for Exact/RegularExpression.
    pub value: Option<String>,
    /// Invert the match (not for Distinct).
    pub invert: bool,
}

/// `clientSelectors[].methods[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodMatchConfig {
    /// Method.
    pub value: Method,
    /// Match every other method instead.
    pub invert: bool,
}

/// `clientSelectors[].path.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatchType {
    /// Whole `:path` (including the query) equals the value.
    Exact,
    /// Path-separated prefix (EG default, value `/`).
    PathPrefix,
    /// RE2 full match on `:path`.
    RegularExpression,
}

/// `clientSelectors[].path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMatchConfig {
    /// Match type.
    pub match_type: PathMatchType,
    /// Value.
    pub value: String,
    /// Invert.
    pub invert: bool,
}

/// `clientSelectors[].sourceCIDR.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrMatchType {
    /// One bucket shared by the whole range.
    Exact,
    /// One bucket per client IP.
    Distinct,
}

/// `clientSelectors[].sourceCIDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCidrConfig {
    /// Match type (EG default Exact).
    pub match_type: CidrMatchType,
    /// CIDR, e.g. `10.0.0.0/8`.
    pub value: String,
    /// Match clients outside the range.
    pub invert: bool,
}

/// `clientSelectors[].queryParams[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParamMatchConfig {
    /// Parameter name.
    pub name: String,
    /// Match type (EG default Exact).
    pub match_type: StringMatchType,
    /// Value for Exact/RegularExpression.
    pub value: Option<String>,
    /// Invert (not for Distinct).
    pub invert: bool,
}

/// One `clientSelectors[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientSelectorConfig {
    /// Header matches (AND).
    pub headers: Vec<HeaderMatchConfig>,
    /// Methods (OR).
    pub methods: Vec<MethodMatchConfig>,
    /// Path match.
    pub path: Option<PathMatchConfig>,
    /// Source CIDR match.
    pub source_cidr: Option<SourceCidrConfig>,
    /// Query parameter matches (AND).
    pub query_params: Vec<QueryParamMatchConfig>,
}

/// One `rules[]` entry, shared by local and global.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConfig {
    /// Selectors; empty = every request of the route.
    pub client_selectors: Vec<ClientSelectorConfig>,
    /// Limit.
    pub limit: Limit,
    /// `cost.request.number` (default 1; 0 = check without consuming).
    pub cost: u64,
    /// `shared` (global): one counter for every route the policy reaches.
    pub shared: bool,
    /// `shadowMode`: count but never reject.
    pub shadow_mode: bool,
    /// `xRateLimitHeaders`: `Some(false)` = Off, `Some(true)` = DraftVersion03, `None` = inherit.
    pub x_ratelimit_headers: Option<bool>,
}

/// Configuration error; `Display` is EG's translator text (the caller prefixes `RateLimit: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitConfigError {
    /// Two selector-less local rules.
    #[error("local rateLimit can not have more than one rule without clientSelectors")]
    TwoDefaultRules,
    /// A local rule's unit is not a whole multiple of the default bucket's unit.
    #[error("local rateLimit rule limit unit must be a multiple of the default limit unit")]
    UnitNotMultiple,
    /// Invalid RE2.
    #[error("regex \"{regex}\" is invalid: {error}")]
    Regex {
        /// The pattern.
        regex: String,
        /// Parser error.
        error: String,
    },
    /// Distinct header with invert.
    #[error(
        "unable to translate rateLimit.Invert is not applicable for distinct header match type"
    )]
    DistinctHeaderInvert,
    /// Exact/Regex header without a value (or a bad header name).
    #[error(
        "unable to translate rateLimit. Either the header.Type is not valid or the header is missing a value"
    )]
    HeaderValue,
    /// A selector with nothing in it.
    #[error(
        "unable to translate rateLimit. At least one of the header or method or path or sourceCIDR or queryParameters must be specified"
    )]
    EmptySelector,
    /// Unparsable CIDR.
    #[error("unable to translate rateLimit: {0}")]
    Cidr(String),
    /// Exact query match without a value.
    #[error("value is required for Exact query parameter match")]
    QueryExactValue,
    /// Regex query match without a value.
    #[error("value is required for RegularExpression query parameter match")]
    QueryRegexValue,
    /// Distinct query match with a value.
    #[error(
        "unable to translate rateLimit.Value is not applicable for distinct query parameter match type"
    )]
    DistinctQueryValue,
    /// Distinct query match with invert.
    #[error(
        "unable to translate rateLimit.Invert is not applicable for distinct query parameter match type"
    )]
    DistinctQueryInvert,
    /// Limit above 4294967295.
    #[error("limit requests {0} is out of range, must be between 0 and 4294967295")]
    Requests(u64),
}

/// X-RateLimit draft-03 header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// `x-ratelimit-limit` (local: the bucket size; global: `N, N;w=<window>`...).
    pub limit: String,
    /// `x-ratelimit-remaining`.
    pub remaining: u64,
    /// `x-ratelimit-reset` in whole seconds.
    pub reset: u64,
}

/// Outcome of a rate-limit check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Reject with 429.
    pub limited: bool,
    /// X-RateLimit headers to add to the response (reply or upstream response), when enabled.
    pub headers: Option<RateLimitHeaders>,
}

impl Unit {
    /// Length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3_600,
            Unit::Day => 86_400,
            Unit::Week => 604_800,
            Unit::Month => 30 * 86_400,
            Unit::Year => 365 * 86_400,
        }
    }

    /// Length as a duration.
    pub fn duration(self) -> Duration {
        Duration::from_secs(self.seconds())
    }
}

impl RuleConfig {
    /// A rule with EG defaults (cost 1, not shared, not shadow, headers inherited).
    pub fn new(client_selectors: Vec<ClientSelectorConfig>, limit: Limit) -> Self {
        Self {
            client_selectors,
            limit,
            cost: 1,
            shared: false,
            shadow_mode: false,
            x_ratelimit_headers: None,
        }
    }
}

impl RateLimitHeaders {
    /// The three headers as (name, value) pairs.
    pub fn pairs(&self) -> [(HeaderName, HeaderValue); 3] {
        [
            (
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderValue::from_str(&self.limit)
                    .unwrap_or_else(|_| HeaderValue::from_static("0")),
            ),
            (
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderValue::from(self.remaining),
            ),
            (
                HeaderName::from_static("x-ratelimit-reset"),
                HeaderValue::from(self.reset),
            ),
        ]
    }
}

fn check_requests(limit: Limit) -> Result<(), RateLimitConfigError> {
    if limit.requests > UNLIMITED_REQUESTS {
        return Err(RateLimitConfigError::Requests(limit.requests));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
