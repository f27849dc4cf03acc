//! EG client selectors compiled into request matchers.
//!
//! All selectors of one rule merge into one matcher, as EG merges them: header and query matches
//! concatenate (AND), methods OR together, and the last `path` / `sourceCIDR` wins. A missing
//! header or query parameter never matches, even when inverted (Envoy's header matchers do not
//! treat a missing header as empty unless told to, and EG does not tell them).

use std::net::IpAddr;

use http::request::Parts;
use http::{HeaderName, Method};
use ipnet::IpNet;
use regex::Regex;

use super::{
    CidrMatchType, ClientSelectorConfig, HeaderMatchConfig, PathMatchType, QueryParamMatchConfig,
    RateLimitConfigError, StringMatchType,
};

/// A compiled rule matcher. `Default` matches every request.
#[derive(Debug, Clone, Default)]
pub struct RuleMatcher {
    headers: Vec<HeaderCond>,
    methods: Vec<(Method, bool)>,
    path: Option<PathCond>,
    cidr: Option<CidrCond>,
    query: Vec<QueryCond>,
}

/// What a matching request's bucket is keyed by: empty for a shared bucket, else the distinct values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DistinctKey(pub Vec<String>);

#[derive(Debug, Clone)]
enum StrCond {
    Exact(String),
    Regex(Regex),
    Distinct,
}

#[derive(Debug, Clone)]
struct HeaderCond {
    name: HeaderName,
    cond: StrCond,
    invert: bool,
}

#[derive(Debug, Clone)]
struct QueryCond {
    name: String,
    cond: StrCond,
    invert: bool,
}

#[derive(Debug, Clone)]
enum PathKind {
    Any,
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct PathCond {
    kind: PathKind,
    invert: bool,
}

#[derive(Debug, Clone)]
struct CidrCond {
    net: IpNet,
    distinct: bool,
    invert: bool,
}

impl RuleMatcher {
    /// Compiles the selectors of one rule (an empty list matches everything).
    pub fn try_new(selectors: &[ClientSelectorConfig]) -> Result<Self, RateLimitConfigError> {
        let mut m = RuleMatcher::default();
        for s in selectors {
            if s.headers.is_empty()
                && s.methods.is_empty()
                && s.path.is_none()
                && s.source_cidr.is_none()
                && s.query_params.is_empty()
            {
                return Err(RateLimitConfigError::EmptySelector);
            }
            for h in &s.headers {
                m.headers.push(header_cond(h)?);
            }
            m.methods
                .extend(s.methods.iter().map(|mm| (mm.value.clone(), mm.invert)));
            if let Some(p) = &s.path {
                let kind = match p.match_type {
                    PathMatchType::Exact => PathKind::Exact(p.value.clone()),
                    PathMatchType::PathPrefix if p.value == "/" || p.value.is_empty() => {
                        PathKind::Any
                    }
                    PathMatchType::PathPrefix => PathKind::Prefix(p.value.clone()),
                    PathMatchType::RegularExpression => PathKind::Regex(full_regex(&p.value)?),
                };
                m.path = Some(PathCond {
                    kind,
                    invert: p.invert,
                });
            }
            if let Some(c) = &s.source_cidr {
                let net: IpNet = c.value.parse().map_err(|e: ipnet::AddrParseError| {
                    RateLimitConfigError::Cidr(format!("invalid CIDR address: {}: {e}", c.value))
                })?;
                m.cidr = Some(CidrCond {
                    net,
                    distinct: c.match_type == CidrMatchType::Distinct,
                    invert: c.invert,
                });
            }
            for q in &s.query_params {
                m.query.push(query_cond(q)?);
            }
        }
        Ok(m)
    }

    /// True when every condition holds; distinct values are appended to `key`.
    pub fn matches(&self, parts: &Parts, peer_ip: IpAddr, key: &mut DistinctKey) -> bool {
        key.0.clear();
        if !self.methods.is_empty()
            && !self
                .methods
                .iter()
                .any(|(m, inv)| (parts.method == *m) != *inv)
        {
            return false;
        }
        if let Some(p) = &self.path {
            let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            let hit = match &p.kind {
                PathKind::Any => true,
                PathKind::Exact(v) => path == v,
                PathKind::Prefix(v) => path_separated_prefix(path, v),
                PathKind::Regex(r) => r.is_match(path),
            };
            if hit == p.invert {
                return false;
            }
        }
        if let Some(c) = &self.cidr {
            if c.net.contains(&peer_ip) == c.invert {
                return false;
            }
            if c.distinct {
                key.0.push(peer_ip.to_string());
            }
        }
        for h in &self.headers {
            let mut values = parts
                .headers
                .get_all(&h.name)
                .iter()
                .filter_map(|v| v.to_str().ok());
            let Some(first) = values.next() else {
                return false;
            };
            match &h.cond {
                StrCond::Distinct => key.0.push(first.to_owned()),
                cond => {
                    // Envoy matches the comma-joined values of a repeated header.
                    let rest: Vec<&str> = values.collect();
                    let hit = if rest.is_empty() {
                        str_match(cond, first)
                    } else {
                        let mut joined = first.to_owned();
                        for r in rest {
                            joined.push(',');
                            joined.push_str(r);
                        }
                        str_match(cond, &joined)
                    };
                    if hit == h.invert {
                        return false;
                    }
                }
            }
        }
        for q in &self.query {
            let Some(value) = query_value(parts, &q.name) else {
                return false;
            };
            match &q.cond {
                StrCond::Distinct => key.0.push(value.to_owned()),
                cond => {
                    if str_match(cond, value) == q.invert {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// True when some match produces a per-value bucket.
    pub fn is_distinct(&self) -> bool {
        self.cidr.as_ref().is_some_and(|c| c.distinct)
            || self
                .headers
                .iter()
                .any(|h| matches!(h.cond, StrCond::Distinct))
            || self
                .query
                .iter()
                .any(|q| matches!(q.cond, StrCond::Distinct))
    }
}

fn header_cond(h: &HeaderMatchConfig) -> Result<HeaderCond, RateLimitConfigError> {
    let name =
        HeaderName::try_from(h.name.as_str()).map_err(|_| RateLimitConfigError::HeaderValue)?;
    let cond = match (h.match_type, &h.value) {
        (StringMatchType::Distinct, _) if h.invert => {
            return Err(RateLimitConfigError::DistinctHeaderInvert);
        }
        (StringMatchType::Distinct, _) => StrCond::Distinct,
        (StringMatchType::Exact, Some(v)) => StrCond::Exact(v.clone()),
        (StringMatchType::RegularExpression, Some(v)) => StrCond::Regex(full_regex(v)?),
        (_, None) => return Err(RateLimitConfigError::HeaderValue),
    };
    Ok(HeaderCond {
        name,
        cond,
        invert: h.invert,
    })
}

fn query_cond(q: &QueryParamMatchConfig) -> Result<QueryCond, RateLimitConfigError> {
    let cond = match (q.match_type, &q.value) {
        (StringMatchType::Distinct, Some(_)) => {
            return Err(RateLimitConfigError::DistinctQueryValue);
        }
        (StringMatchType::Distinct, None) if q.invert => {
            return Err(RateLimitConfigError::DistinctQueryInvert);
        }
        (StringMatchType::Distinct, None) => StrCond::Distinct,
        (StringMatchType::Exact, Some(v)) => StrCond::Exact(v.clone()),
        (StringMatchType::Exact, None) => return Err(RateLimitConfigError::QueryExactValue),
        (StringMatchType::RegularExpression, Some(v)) => StrCond::Regex(full_regex(v)?),
        (StringMatchType::RegularExpression, None) => {
            return Err(RateLimitConfigError::QueryRegexValue);
        }
    };
    Ok(QueryCond {
        name: q.name.clone(),
        cond,
        invert: q.invert,
    })
}

/// Envoy's safe_regex matches the whole input.
fn full_regex(pattern: &str) -> Result<Regex, RateLimitConfigError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| RateLimitConfigError::Regex {
        regex: pattern.to_owned(),
        error: e.to_string(),
    })
}

fn str_match(cond: &StrCond, value: &str) -> bool {
    match cond {
        StrCond::Exact(v) => v == value,
        StrCond::Regex(r) => r.is_match(value),
        StrCond::Distinct => true,
    }
}

/// EG's `^<prefix>(/.*|\?.*|#.*|;.*|$)`: the prefix must end at a path separator.
fn path_separated_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || matches!(rest.as_bytes()[0], b'/' | b'?' | b'#' | b';'),
        None => false,
    }
}

/// First raw value of a query parameter; `?a` counts as `a=""`.
fn query_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}
