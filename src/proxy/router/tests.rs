use bytes::Bytes;
use http::{Method, Request, StatusCode};

use super::*;
use crate::proxy::config::{
    ForwardAction, HeaderMatch, QueryParamMatch, RouteAction, RouteSource, StringMatch,
};

fn route(name: &str, hostnames: &[&str], matches: RouteMatch) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        source: RouteSource {
            kind: "HTTPRoute".into(),
            namespace: "default".into(),
            name: name.into(),
            rule: 0,
            rule_name: None,
        },
        hostnames: hostnames
            .iter()
            .map(|h| Hostname::try_new(h).unwrap())
            .collect(),
        matches,
        action: RouteAction::Forward(ForwardAction::to_cluster("c")),
        fault: None,
        local_rate_limit: None,
        global_rate_limit: None,
        request_buffer_limit: None,
        response_overrides: Vec::new(),
    }
}

fn path(p: PathMatch) -> RouteMatch {
    RouteMatch {
        path: p,
        ..RouteMatch::default()
    }
}

fn req(method: Method, host: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn get(router: &Router, host: &str, uri: &str) -> Option<String> {
    router
        .route(&req(Method::GET, host, uri, &[]))
        .map(|r| r.name.clone())
}

#[test]
fn exact_beats_regex_beats_prefix_and_longer_prefix_wins() {
    let router = Router::new(vec![
        route("prefix-root", &[], path(PathMatch::PathPrefix("/".into()))),
        route(
            "prefix-api",
            &[],
            path(PathMatch::PathPrefix("/api".into())),
        ),
        route(
            "prefix-api-v1",
            &[],
            path(PathMatch::PathPrefix("/api/v1".into())),
        ),
        route(
            "regex",
            &[],
            path(PathMatch::regex("/api/v[0-9]+/items").unwrap()),
        ),
        route("exact", &[], path(PathMatch::Exact("/api/v1/items".into()))),
    ]);
    assert_eq!(get(&router, "a", "/api/v1/items").as_deref(), Some("exact"));
    assert_eq!(get(&router, "a", "/api/v2/items").as_deref(), Some("regex"));
    assert_eq!(
        get(&router, "a", "/api/v1/other").as_deref(),
        Some("prefix-api-v1")
    );
    assert_eq!(
        get(&router, "a", "/api/x?q=1").as_deref(),
        Some("prefix-api")
    );
    assert_eq!(get(&router, "a", "/apix").as_deref(), Some("prefix-root"));
}

#[test]
fn prefix_matches_whole_elements() {
    let router = Router::new(vec![route(
        "foo",
        &[],
        path(PathMatch::PathPrefix("/foo/".into())),
    )]);
    assert!(get(&router, "a", "/foo").is_some());
    assert!(get(&router, "a", "/foo/bar").is_some());
    assert!(get(&router, "a", "/foobar").is_none());
}

#[test]
fn hostname_exact_beats_wildcard_beats_any() {
    let router = Router::new(vec![
        route("any", &[], RouteMatch::default()),
        route("wild", &["*.example.com"], RouteMatch::default()),
        route("deeper", &["*.api.example.com"], RouteMatch::default()),
        route("exact", &["www.example.com"], RouteMatch::default()),
    ]);
    assert_eq!(
        get(&router, "www.example.com:8080", "/").as_deref(),
        Some("exact")
    );
    assert_eq!(
        get(&router, "Foo.Example.com", "/").as_deref(),
        Some("wild")
    );
    assert_eq!(
        get(&router, "x.api.example.com", "/").as_deref(),
        Some("deeper")
    );
    assert_eq!(get(&router, "example.com", "/").as_deref(), Some("any"));
    assert_eq!(get(&router, "other.org", "/").as_deref(), Some("any"));
}

#[test]
fn no_fallback_to_other_virtual_hosts() {
    let router = Router::new(vec![
        route("any", &[], RouteMatch::default()),
        route("exact", &["a.com"], path(PathMatch::Exact("/only".into()))),
    ]);
    assert_eq!(get(&router, "a.com", "/elsewhere"), None);
    assert_eq!(get(&router, "b.com", "/elsewhere").as_deref(), Some("any"));
}

#[test]
fn headers_query_and_method_break_ties() {
    let with_header = RouteMatch {
        headers: vec![HeaderMatch::try_new("X-Env", StringMatch::Exact("canary".into())).unwrap()],
        ..RouteMatch::default()
    };
    let with_regex_header = RouteMatch {
        headers: vec![HeaderMatch::try_new("x-env", StringMatch::regex("can.*").unwrap()).unwrap()],
        ..RouteMatch::default()
    };
    let with_query = RouteMatch {
        query_params: vec![QueryParamMatch {
            name: "v".into(),
            value: StringMatch::Exact("2".into()),
        }],
        ..RouteMatch::default()
    };
    let with_method = RouteMatch {
        method: Some(Method::POST),
        ..RouteMatch::default()
    };
    let router = Router::new(vec![
        route("plain", &[], RouteMatch::default()),
        route("method", &[], with_method),
        route("query", &[], with_query),
        route("regex-header", &[], with_regex_header),
        route("header", &[], with_header),
    ]);
    let name = |m: Method, uri: &str, h: &[(&str, &str)]| {
        router.route(&req(m, "a", uri, h)).map(|r| r.name.clone())
    };
    assert_eq!(
        name(Method::GET, "/", &[("x-env", "canary")]).as_deref(),
        Some("header")
    );
    assert_eq!(
        name(Method::GET, "/", &[("x-env", "candy")]).as_deref(),
        Some("regex-header")
    );
    assert_eq!(name(Method::GET, "/?v=2", &[]).as_deref(), Some("query"));
    assert_eq!(name(Method::POST, "/?v=3", &[]).as_deref(), Some("method"));
    assert_eq!(name(Method::GET, "/?v=3", &[]).as_deref(), Some("plain"));
}

#[test]
fn equal_routes_keep_configuration_order() {
    let router = Router::new(vec![
        route("first", &[], RouteMatch::default()),
        route("second", &[], RouteMatch::default()),
    ]);
    assert_eq!(get(&router, "a", "/").as_deref(), Some("first"));
}

#[test]
fn no_match_is_none() {
    let mut r = route("direct", &[], path(PathMatch::Exact("/x".into())));
    r.action = RouteAction::DirectResponse {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: Bytes::new(),
    };
    let router = Router::new(vec![r]);
    assert_eq!(get(&router, "a", "/y"), None);
    assert_eq!(get(&router, "a", "/x").as_deref(), Some("direct"));
}

#[test]
fn strip_port_handles_ipv6() {
    assert_eq!(strip_port("[::1]:80"), "[::1]");
    assert_eq!(strip_port("a.com:80"), "a.com");
    assert_eq!(strip_port("a.com"), "a.com");
}
