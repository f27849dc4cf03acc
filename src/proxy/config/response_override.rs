//! `responseOverride` rules (btp-spec §c.9), as Envoy Gateway feeds them to Envoy's
//! `custom_response` filter: match a final response by status and/or headers, then replace it
//! or redirect. The first matching rule wins.

use http::{HeaderName, HeaderValue, StatusCode};
use regex::Regex;

use super::ConfigError;

/// One `responseOverride[]` entry.
#[derive(Debug, Clone)]
pub struct ResponseOverrideRule {
    /// `match.statusCodes`: any one must match (empty = no status condition).
    pub status_codes: Vec<StatusCodeMatch>,
    /// `match.responseHeaders`: all must match (empty = no header condition).
    pub response_headers: Vec<ResponseHeaderMatch>,
    /// `source`: which responses the rule looks at.
    pub source: OverrideSource,
    /// What to do with a matching response.
    pub action: OverrideAction,
}

/// `statusCodes[]`: one value or an inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCodeMatch {
    /// `type: Value`.
    Value(u16),
    /// `type: Range` (`start..=end`, as EG translates it).
    Range {
        /// First code.
        start: u16,
        /// Last code (> start).
        end: u16,
    },
}

/// `responseHeaders[]`: a header of the response and a condition on its value.
#[derive(Debug, Clone)]
pub struct ResponseHeaderMatch {
    /// Header name (case-insensitive).
    pub name: HeaderName,
    /// Condition on the (first) value.
    pub value: HeaderValueMatch,
}

/// Gateway API `StringMatch` types allowed in `responseHeaders`.
#[derive(Debug, Clone)]
pub enum HeaderValueMatch {
    /// Equal.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Ends with.
    Suffix(String),
    /// Whole value matches (anchored, as Envoy's safe_regex).
    RegularExpression(Regex),
}

/// `source`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OverrideSource {
    /// Every response (EG default).
    #[default]
    All,
    /// Replies the proxy generated itself (local replies).
    Local,
    /// Upstream responses only.
    Backend,
}

/// `response` or `redirect`.
#[derive(Debug, Clone)]
pub enum OverrideAction {
    /// Replace parts of the response.
    Response(OverrideResponse),
    /// Answer with a redirect. Envoy follows it internally and returns the target's body with
    /// the redirect status; the embedded proxy does not: it answers the redirect status with a
    /// `Location` header and an empty body.
    Redirect(OverrideRedirect),
}

/// `response`.
#[derive(Debug, Clone, Default)]
pub struct OverrideResponse {
    /// `statusCode`; `None` keeps the original status.
    pub status_code: Option<u16>,
    /// `contentType`; `None` keeps the original content type (or text/plain for a new body).
    pub content_type: Option<String>,
    /// `body` (inline or resolved from the ConfigMap by the caller); `None` keeps the body.
    pub body: Option<String>,
    /// `header.add`: appended.
    pub add_headers: Vec<(HeaderName, HeaderValue)>,
    /// `header.set`: replace any existing value.
    pub set_headers: Vec<(HeaderName, HeaderValue)>,
}

/// `redirect`: unset parts keep the request's own.
#[derive(Debug, Clone, Default)]
pub struct OverrideRedirect {
    /// `scheme` (`http` or `https`).
    pub scheme: Option<String>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `path` (ReplaceFullPath).
    pub path: Option<String>,
    /// `port`.
    pub port: Option<u16>,
    /// `statusCode` 301 or 302 (default 302).
    pub status_code: Option<u16>,
}

impl StatusCodeMatch {
    /// Whether `status` matches.
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusCodeMatch::Value(v) => v == status,
            StatusCodeMatch::Range { start, end } => (start..=end).contains(&status),
        }
    }

    /// A range; `end` must be greater than `start` (EG's CEL rule).
    pub fn range(start: u16, end: u16) -> Result<Self, ConfigError> {
        if end <= start {
            return Err(ConfigError::OutOfRange {
                field: "responseOverride.match.statusCodes.range",
                message: "end must be greater than start".to_string(),
            });
        }
        Ok(StatusCodeMatch::Range { start, end })
    }
}

impl HeaderValueMatch {
    /// A full-match regular expression.
    pub fn regex(pattern: &str) -> Result<Self, ConfigError> {
        Regex::new(&format!("^(?:{pattern})$"))
            .map(HeaderValueMatch::RegularExpression)
            .map_err(|e| ConfigError::Regex {
                pattern: pattern.to_string(),
                message: e.to_string(),
            })
    }

    /// Whether `value` satisfies the condition.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            HeaderValueMatch::Exact(v) => value == v,
            HeaderValueMatch::Prefix(p) => value.starts_with(p.as_str()),
            HeaderValueMatch::Suffix(s) => value.ends_with(s.as_str()),
            HeaderValueMatch::RegularExpression(re) => re.is_match(value),
        }
    }
}

impl ResponseOverrideRule {
    /// Whether the rule applies to a response with `status` and `headers`; `local` says whether
    /// the proxy generated it.
    pub fn matches(&self, status: u16, headers: &http::HeaderMap, local: bool) -> bool {
        let source_ok = match self.source {
            OverrideSource::All => true,
            OverrideSource::Local => local,
            OverrideSource::Backend => !local,
        };
        source_ok
            && (self.status_codes.is_empty() || self.status_codes.iter().any(|m| m.matches(status)))
            && self.response_headers.iter().all(|m| {
                headers
                    .get(&m.name)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| m.value.matches(v))
            })
    }

    /// Checks EG's rules: at least one condition, valid status codes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::OutOfRange {
            field: "responseOverride",
            message,
        };
        if self.status_codes.is_empty() && self.response_headers.is_empty() {
            return Err(bad(
                "match needs at least one of statusCodes and responseHeaders".to_string(),
            ));
        }
        match &self.action {
            OverrideAction::Response(r) => {
                if let Some(c) = r.status_code
                    && StatusCode::from_u16(c).is_err()
                {
                    return Err(bad(format!("statusCode {c} is not a valid status")));
                }
                if let Some(ct) = &r.content_type
                    && HeaderValue::from_str(ct).is_err()
                {
                    return Err(bad(format!("contentType {ct:?} is not a header value")));
                }
            }
            OverrideAction::Redirect(r) => {
                if let Some(c) = r.status_code
                    && c != 301
                    && c != 302
                {
                    return Err(bad(format!("redirect statusCode {c} must be 301 or 302")));
                }
                if let Some(s) = &r.scheme
                    && s != "http"
                    && s != "https"
                {
                    return Err(bad(format!("redirect scheme {s:?} must be http or https")));
                }
            }
        }
        Ok(())
    }
}
