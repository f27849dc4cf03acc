//! Route matching with Envoy Gateway's virtual hosts and Gateway API precedence.
//!
//! Routes are grouped into virtual hosts by hostname, as Envoy Gateway does: a request picks the
//! virtual host of its Host (exact > longest wildcard suffix > `*`) and only that virtual host's
//! routes are tried. Inside a virtual host, routes are ordered like Envoy Gateway sorts them:
//! path match type (Exact > RegularExpression > PathPrefix), longer path value, more header
//! matches, more exact header matches, more query matches, more exact query matches; then a
//! method match first (Gateway API) and finally configuration order, which the configuration
//! builder sets to creation time then name. The first route that matches wins; none → `NR`.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use http::request::Parts;

use super::config::{Hostname, PathMatch, RouteConfig, RouteMatch};

/// The route table of one listener.
#[derive(Debug)]
pub struct Router {
    routes: Vec<Arc<RouteConfig>>,
    exact: HashMap<String, Vec<usize>>,
    /// Wildcard virtual hosts, longest suffix first.
    wildcard: Vec<(String, Vec<usize>)>,
    any: Vec<usize>,
}

impl Router {
    /// Builds the table from routes in creation order.
    pub fn new(routes: Vec<RouteConfig>) -> Self {
        let routes: Vec<Arc<RouteConfig>> = routes.into_iter().map(Arc::new).collect();
        let mut order: Vec<usize> = (0..routes.len()).collect();
        // Stable sort keeps configuration order among equals.
        order.sort_by_key(|&i| Reverse(precedence(&routes[i].matches)));
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wildcard: Vec<(String, Vec<usize>)> = Vec::new();
        let mut any = Vec::new();
        for &i in &order {
            let r = &routes[i];
            if r.hostnames.is_empty() {
                any.push(i);
            }
            for h in &r.hostnames {
                match h {
                    Hostname::Exact(name) => exact.entry(name.clone()).or_default().push(i),
                    Hostname::Wildcard(suffix) => {
                        match wildcard.iter_mut().find(|(s, _)| s == suffix) {
                            Some((_, v)) => v.push(i),
                            None => wildcard.push((suffix.clone(), vec![i])),
                        }
                    }
                }
            }
        }
        wildcard.sort_by_key(|(s, _)| Reverse(s.len()));
        Router {
            routes,
            exact,
            wildcard,
            any,
        }
    }

    /// Every route, in configuration order.
    pub fn routes(&self) -> &[Arc<RouteConfig>] {
        &self.routes
    }

    /// The route for a request, if any.
    pub fn route(&self, req: &Parts) -> Option<&Arc<RouteConfig>> {
        self.route_index(req).map(|i| &self.routes[i])
    }

    /// The index (in [`Self::routes`]) of the route for a request, if any.
    pub fn route_index(&self, req: &Parts) -> Option<usize> {
        // Without hostnames on any route there is one virtual host: the Host header is not
        // needed.
        let vhost = if self.exact.is_empty() && self.wildcard.is_empty() {
            &self.any
        } else {
            self.virtual_host(&request_host(req))
        };
        let path = req.uri.path();
        let query = req.uri.query();
        vhost
            .iter()
            .copied()
            .find(|&i| matches_request(&self.routes[i].matches, req, path, query))
    }

    fn virtual_host(&self, host: &str) -> &[usize] {
        if let Some(v) = self.exact.get(host) {
            return v;
        }
        for (suffix, v) in &self.wildcard {
            // `*.example.com` needs at least one character before the suffix.
            if host.len() > suffix.len() && host.ends_with(suffix.as_str()) {
                return v;
            }
        }
        &self.any
    }
}

/// The sort key of a route match: bigger sorts first.
fn precedence(m: &RouteMatch) -> (u8, usize, usize, usize, usize, usize, bool) {
    let (kind, len) = match &m.path {
        PathMatch::Exact(p) => (3, p.len()),
        // Envoy Gateway counts the regex's own characters; ours is wrapped in `^(?:...)$`.
        PathMatch::RegularExpression(re) => (2, re.as_str().len().saturating_sub(6)),
        PathMatch::PathPrefix(p) => (1, p.len()),
    };
    let exact_headers = m.headers.iter().filter(|h| h.value.is_exact()).count();
    let exact_query = m.query_params.iter().filter(|q| q.value.is_exact()).count();
    (
        kind,
        len,
        m.headers.len(),
        exact_headers,
        m.query_params.len(),
        exact_query,
        m.method.is_some(),
    )
}

/// The request's host without port, lower-cased (Host header, else the URI authority);
/// borrowed when it is lower case already, as it nearly always is.
fn request_host(req: &Parts) -> Cow<'_, str> {
    let raw = req
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let host = strip_port(raw);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: keep the brackets, drop a trailing port.
        return host.rfind(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn matches_request(m: &RouteMatch, req: &Parts, path: &str, query: Option<&str>) -> bool {
    path_matches(&m.path, path)
        && m.method.as_ref().is_none_or(|method| req.method == *method)
        && m.headers.iter().all(|h| {
            let mut values = req.headers.get_all(&h.name).iter();
            match (values.next(), values.next()) {
                (None, _) => false,
                (Some(v), None) => v.to_str().is_ok_and(|s| h.value.matches(s)),
                // Envoy matches several values of one header joined with commas.
                (Some(_), Some(_)) => {
                    let joined: Vec<&str> = req
                        .headers
                        .get_all(&h.name)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect();
                    h.value.matches(&joined.join(","))
                }
            }
        })
        && m.query_params
            .iter()
            .all(|q| query_value(query, &q.name).is_some_and(|v| q.value.matches(&v)))
}

fn path_matches(m: &PathMatch, path: &str) -> bool {
    match m {
        PathMatch::Exact(p) => path == p,
        PathMatch::PathPrefix(p) => {
            let p = if p.len() > 1 {
                p.trim_end_matches('/')
            } else {
                p.as_str()
            };
            if p == "/" {
                return true;
            }
            // Gateway API prefixes match whole path elements: `/foo` matches `/foo/bar`,
            // not `/foobar`.
            path.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }
        PathMatch::RegularExpression(re) => re.is_match(path),
    }
}

/// The first value of query parameter `name`, as written (not percent-decoded).
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests;
