//! Request hashing for consistent-hash load balancing (route `hash_policy`), as Envoy computes it.
//!
//! Every input is hashed with xxHash64 (seed 0). Several inputs (several headers or query
//! parameters) combine as Envoy does: `hash = rotl(hash, 1) ^ next`, skipping inputs that are
//! missing; only when every input is missing is there no hash, and the LB then picks at random.
//! A missing cookie with a TTL makes Envoy generate one: its value is the hex form of
//! `xxh64(peer_addr + local_addr)`, so every request racing on one connection gets the same
//! cookie, and the request is hashed by that value.

use std::net::SocketAddr;
use std::time::Duration;

use http::header::COOKIE;
use http::request::Parts;
use http::{HeaderName, HeaderValue};
use xxhash_rust::xxh64::xxh64;

/// Raw hash policy as EG's `consistentHash` block describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashPolicyConfig {
    /// `SourceIP`: the downstream connection's IP (without port).
    SourceIp,
    /// `Header` (deprecated): one header.
    Header(String),
    /// `Headers`: several headers hashed together.
    Headers(Vec<String>),
    /// `Cookie`: a cookie, generated when missing and a TTL is set.
    Cookie {
        /// Cookie name.
        name: String,
        /// `ttl`: when set, a missing cookie is generated with `Max-Age` = whole seconds.
        ttl: Option<Duration>,
        /// `attributes`, appended as `; name=value` (or `; name` when the value is empty), sorted
        /// by name (EG's map has no order; sorting keeps the header stable).
        attributes: Vec<(String, String)>,
    },
    /// `QueryParams`: several query parameters hashed together.
    QueryParams(Vec<String>),
}

/// Invalid hash policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashPolicyError {
    /// Header name not a valid HTTP header name.
    #[error("invalid hash header name {0:?}")]
    HeaderName(String),
    /// An empty list of headers or query parameters.
    #[error("consistent hash {0} list is empty")]
    Empty(&'static str),
    /// Cookie name empty or not a token, or an attribute that would break the header.
    #[error("invalid hash cookie {0:?}")]
    Cookie(String),
    /// Empty query parameter name.
    #[error("empty hash query parameter name")]
    QueryParam,
}

/// Validated hash policy for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashPolicy {
    methods: Vec<HashMethod>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HashMethod {
    SourceIp,
    Header(HeaderName),
    Cookie(CookieMethod),
    QueryParam(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CookieMethod {
    name: String,
    ttl: Option<Duration>,
    attributes: Vec<(String, String)>,
}

/// The hash of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOutcome {
    /// Use this hash for the consistent-hash pick.
    Hash(u64),
    /// No input present: the LB falls back to a random host.
    None,
    /// The cookie was missing: hash by the generated value and add `set_cookie` to the response.
    GenerateCookie {
        /// Hash of the generated cookie value.
        hash: u64,
        /// Value of the `Set-Cookie` response header.
        set_cookie: HeaderValue,
    },
}

impl HashPolicy {
    /// Validates a raw policy.
    pub fn try_new(config: &HashPolicyConfig) -> Result<Self, HashPolicyError> {
        let header = |n: &String| {
            HeaderName::try_from(n.as_str()).map_err(|_| HashPolicyError::HeaderName(n.clone()))
        };
        let methods = match config {
            HashPolicyConfig::SourceIp => vec![HashMethod::SourceIp],
            HashPolicyConfig::Header(name) => vec![HashMethod::Header(header(name)?)],
            HashPolicyConfig::Headers(names) => {
                if names.is_empty() {
                    return Err(HashPolicyError::Empty("headers"));
                }
                names
                    .iter()
                    .map(|n| header(n).map(HashMethod::Header))
                    .collect::<Result<_, _>>()?
            }
            HashPolicyConfig::Cookie {
                name,
                ttl,
                attributes,
            } => {
                let is_token = |s: &str| {
                    !s.is_empty()
                        && s.bytes()
                            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
                };
                if !is_token(name) {
                    return Err(HashPolicyError::Cookie(name.clone()));
                }
                for (k, v) in attributes {
                    if !is_token(k) || v.bytes().any(|b| b == b';' || b.is_ascii_control()) {
                        return Err(HashPolicyError::Cookie(format!("{k}={v}")));
                    }
                }
                let mut attributes = attributes.clone();
                attributes.sort();
                vec![HashMethod::Cookie(CookieMethod {
                    name: name.clone(),
                    ttl: *ttl,
                    attributes,
                })]
            }
            HashPolicyConfig::QueryParams(names) => {
                if names.is_empty() {
                    return Err(HashPolicyError::Empty("queryParams"));
                }
                if names.iter().any(String::is_empty) {
                    return Err(HashPolicyError::QueryParam);
                }
                names.iter().cloned().map(HashMethod::QueryParam).collect()
            }
        };
        Ok(Self { methods })
    }

    /// Hashes one request. `peer` is the downstream client address, `local` the proxy's
    /// listening address of that connection (both feed a generated cookie's value).
    pub fn hash(&self, parts: &Parts, peer: SocketAddr, local: SocketAddr) -> HashOutcome {
        let mut hash: Option<u64> = None;
        let mut set_cookie = None;
        for method in &self.methods {
            let next = match method {
                HashMethod::SourceIp => Some(xxh64(peer.ip().to_string().as_bytes(), 0)),
                HashMethod::Header(name) => header_hash(parts, name),
                HashMethod::QueryParam(name) => {
                    query_value(parts, name).map(|v| xxh64(v.as_bytes(), 0))
                }
                HashMethod::Cookie(c) => match cookie_value(parts, &c.name) {
                    Some(v) => Some(xxh64(v.as_bytes(), 0)),
                    None => match c.ttl {
                        Some(ttl) => {
                            let value = generated_cookie_value(peer, local);
                            set_cookie = Some(c.set_cookie(&value, ttl));
                            Some(xxh64(value.as_bytes(), 0))
                        }
                        None => None,
                    },
                },
            };
            if let Some(next) = next {
                // Rotating keeps duplicate inputs from cancelling out.
                hash = Some(hash.map_or(0, |h| h.rotate_left(1)) ^ next);
            }
        }
        match (hash, set_cookie) {
            (Some(hash), Some(set_cookie)) => HashOutcome::GenerateCookie { hash, set_cookie },
            (Some(hash), None) => HashOutcome::Hash(hash),
            (None, _) => HashOutcome::None,
        }
    }
}

impl CookieMethod {
    fn set_cookie(&self, value: &str, ttl: Duration) -> HeaderValue {
        let mut out = format!("{}=\"{}\"", self.name, value);
        let max_age = ttl.as_secs();
        // Envoy omits Max-Age for a zero TTL (a session cookie).
        if max_age != 0 {
            out.push_str(&format!("; Max-Age={max_age}"));
        }
        for (k, v) in &self.attributes {
            if v.is_empty() {
                out.push_str(&format!("; {k}"));
            } else {
                out.push_str(&format!("; {k}={v}"));
            }
        }
        out.push_str("; HttpOnly");
        // Name and attributes were validated as header-safe; the value is hex.
        HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

/// Envoy: `Hex::uint64ToHex(xxh64(remote.asString() + local.asString()))`.
fn generated_cookie_value(peer: SocketAddr, local: SocketAddr) -> String {
    format!("{:016x}", xxh64(format!("{peer}{local}").as_bytes(), 0))
}

/// All values of the header, sorted so order does not matter, chained through xxh64 seeds.
fn header_hash(parts: &Parts, name: &HeaderName) -> Option<u64> {
    let mut values: Vec<&[u8]> = parts
        .headers
        .get_all(name)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some(values.iter().fold(0u64, |seed, v| xxh64(v, seed)))
}

/// First value of a query parameter (raw, not percent-decoded); `?a` counts as `a=""`.
fn query_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// First non-empty value of the named cookie across all Cookie headers, quotes stripped.
fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    for header in parts.headers.get_all(COOKIE) {
        let Ok(header) = header.to_str() else {
            continue;
        };
        for pair in header.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k.trim() != name {
                continue;
            }
            let v = v.trim();
            let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                &v[1..v.len() - 1]
            } else {
                v
            };
            if !v.is_empty() {
                return Some(v);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    fn peer() -> SocketAddr {
        "10.1.2.3:40000".parse().expect("addr")
    }

    fn local() -> SocketAddr {
        "10.0.0.1:8080".parse().expect("addr")
    }

    fn policy(c: HashPolicyConfig) -> HashPolicy {
        HashPolicy::try_new(&c).expect("valid")
    }

    #[test]
    fn xxh64_matches_the_reference_vectors() {
        // Published XXH64 test vectors: empty input and "a" with seed 0.
        assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
    }

    #[test]
    fn source_ip_ignores_the_port() {
        let p = policy(HashPolicyConfig::SourceIp);
        let req = parts("/", &[]);
        let a = p.hash(&req, peer(), local());
        let b = p.hash(&req, "10.1.2.3:1".parse().expect("addr"), local());
        assert_eq!(a, b);
        assert_eq!(a, HashOutcome::Hash(xxh64(b"10.1.2.3", 0)));
    }

    #[test]
    fn headers_combine_and_missing_ones_are_skipped() {
        let one = policy(HashPolicyConfig::Header("x-user".into()));
        assert_eq!(
            one.hash(&parts("/", &[]), peer(), local()),
            HashOutcome::None
        );
        let h_user = xxh64(b"alice", 0);
        assert_eq!(
            one.hash(&parts("/", &[("x-user", "alice")]), peer(), local()),
            HashOutcome::Hash(h_user)
        );

        let two = policy(HashPolicyConfig::Headers(vec![
            "x-user".into(),
            "x-org".into(),
        ]));
        let both = two.hash(
            &parts("/", &[("x-user", "alice"), ("x-org", "acme")]),
            peer(),
            local(),
        );
        assert_eq!(
            both,
            HashOutcome::Hash(h_user.rotate_left(1) ^ xxh64(b"acme", 0))
        );
        // Only one present: hash of that one alone.
        assert_eq!(
            two.hash(&parts("/", &[("x-org", "acme")]), peer(), local()),
            HashOutcome::Hash(xxh64(b"acme", 0))
        );
        // Repeated header values hash the same in any order.
        let ab = one.hash(
            &parts("/", &[("x-user", "a"), ("x-user", "b")]),
            peer(),
            local(),
        );
        let ba = one.hash(
            &parts("/", &[("x-user", "b"), ("x-user", "a")]),
            peer(),
            local(),
        );
        assert_eq!(ab, ba);
        assert_ne!(ab, HashOutcome::Hash(xxh64(b"a", 0)));
    }

    #[test]
    fn query_params() {
        let p = policy(HashPolicyConfig::QueryParams(vec!["user".into()]));
        assert_eq!(
            p.hash(&parts("/a?x=1&user=bob&user=eve", &[]), peer(), local()),
            HashOutcome::Hash(xxh64(b"bob", 0))
        );
        assert_eq!(
            p.hash(&parts("/a?x=1", &[]), peer(), local()),
            HashOutcome::None
        );
        assert_eq!(
            p.hash(&parts("/a", &[]), peer(), local()),
            HashOutcome::None
        );
    }

    #[test]
    fn present_cookie_is_hashed_without_set_cookie() {
        let p = policy(HashPolicyConfig::Cookie {
            name: "session".into(),
            ttl: Some(Duration::from_secs(60)),
            attributes: vec![],
        });
        let req = parts("/", &[("cookie", "a=1; session=\"abc\"; b=2")]);
        assert_eq!(
            p.hash(&req, peer(), local()),
            HashOutcome::Hash(xxh64(b"abc", 0))
        );
        // Without a TTL a missing cookie gives no hash.
        let no_ttl = policy(HashPolicyConfig::Cookie {
            name: "session".into(),
            ttl: None,
            attributes: vec![],
        });
        assert_eq!(
            no_ttl.hash(&parts("/", &[]), peer(), local()),
            HashOutcome::None
        );
    }

    /// Envoy's format (router `addDownstreamSetCookie` + `Http::Utility::makeSetCookieValue`):
    /// `name="<16 lowercase hex>"`, then `; Max-Age=<s>` when non-zero, then (no Path: EG sets
    /// none) each attribute as `; k=v` or `; k`, then `; HttpOnly`. The value is
    /// `xxh64(remote.asString() + local.asString())`, stable per connection, and the request is
    /// hashed by that hex string.
    #[test]
    fn missing_cookie_with_ttl_is_generated_in_envoys_format() {
        let p = policy(HashPolicyConfig::Cookie {
            name: "session".into(),
            ttl: Some(Duration::from_secs(3600)),
            attributes: vec![
                ("SameSite".into(), "Strict".into()),
                ("Secure".into(), String::new()),
            ],
        });
        let out = p.hash(&parts("/", &[]), peer(), local());
        let value = format!("{:016x}", xxh64(b"10.1.2.3:4000010.0.0.1:8080", 0));
        let expected =
            format!("session=\"{value}\"; Max-Age=3600; SameSite=Strict; Secure; HttpOnly");
        assert_eq!(
            out,
            HashOutcome::GenerateCookie {
                hash: xxh64(value.as_bytes(), 0),
                set_cookie: HeaderValue::from_str(&expected).expect("header"),
            }
        );
        // Same connection, same cookie; a zero TTL makes a session cookie.
        assert_eq!(p.hash(&parts("/", &[]), peer(), local()), out);
        let session = policy(HashPolicyConfig::Cookie {
            name: "s".into(),
            ttl: Some(Duration::ZERO),
            attributes: vec![],
        });
        let HashOutcome::GenerateCookie { set_cookie, .. } =
            session.hash(&parts("/", &[]), peer(), local())
        else {
            panic!("expected a generated cookie");
        };
        assert_eq!(
            set_cookie,
            HeaderValue::from_str(&format!("s=\"{value}\"; HttpOnly")).expect("header")
        );
    }

    #[test]
    fn rejects_bad_config() {
        assert!(HashPolicy::try_new(&HashPolicyConfig::Header("bad header".into())).is_err());
        assert!(HashPolicy::try_new(&HashPolicyConfig::Headers(vec![])).is_err());
        assert!(HashPolicy::try_new(&HashPolicyConfig::QueryParams(vec![String::new()])).is_err());
        let cookie = |name: &str| HashPolicyConfig::Cookie {
            name: name.into(),
            ttl: None,
            attributes: vec![],
        };
        assert!(HashPolicy::try_new(&cookie("a;b")).is_err());
        assert!(HashPolicy::try_new(&cookie("")).is_err());
    }
}
