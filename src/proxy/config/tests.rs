use std::time::Duration;

use super::*;

fn listener(routes: Vec<RouteConfig>) -> ListenerConfig {
    ListenerConfig {
        name: "default/eg/http".into(),
        routes,
    }
}

fn route(name: &str, cluster: &str) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        source: RouteSource {
            kind: "HTTPRoute".into(),
            namespace: "default".into(),
            name: "x".into(),
            rule: 0,
            rule_name: None,
        },
        hostnames: vec![],
        matches: RouteMatch::default(),
        action: RouteAction::Forward(ForwardAction::to_cluster(cluster)),
        fault: None,
        local_rate_limit: None,
        global_rate_limit: None,
        request_buffer_limit: None,
        response_overrides: Vec::new(),
    }
}

#[test]
fn percent_range_is_checked() {
    assert_eq!(Percent::try_new(100, "x").map(Percent::get), Ok(100));
    assert!(Percent::try_new(101, "x").is_err());
}

#[test]
fn unknown_cluster_is_rejected() {
    let cfg = ProxyConfig {
        listeners: vec![listener(vec![route("r", "missing")])],
        clusters: vec![ClusterConfig::new("c", vec![])],
        seed: 1,
    };
    assert!(matches!(
        cfg.validate(),
        Err(ConfigError::UnknownCluster { .. })
    ));
}

#[test]
fn duplicate_cluster_is_rejected() {
    let cfg = ProxyConfig {
        listeners: vec![],
        clusters: vec![
            ClusterConfig::new("c", vec![]),
            ClusterConfig::new("c", vec![]),
        ],
        seed: 1,
    };
    assert!(matches!(cfg.validate(), Err(ConfigError::Duplicate { .. })));
}

#[test]
fn valid_config_passes() {
    let cfg = ProxyConfig {
        listeners: vec![listener(vec![route("r", "c")])],
        clusters: vec![ClusterConfig::new("c", vec![])],
        seed: 1,
    };
    assert_eq!(cfg.validate(), Ok(()));
}

#[test]
fn hostnames_parse() {
    assert_eq!(
        Hostname::try_new("*.Example.com"),
        Ok(Hostname::Wildcard(".example.com".into()))
    );
    assert_eq!(
        Hostname::try_new("foo.com"),
        Ok(Hostname::Exact("foo.com".into()))
    );
    assert!(Hostname::try_new("*").is_err());
    assert!(Hostname::try_new("a.*.com").is_err());
}

#[test]
fn retry_on_parses_envoy_names() {
    let on = RetryOn::parse("connect-failure,retriable-status-codes").unwrap();
    assert!(on.connect_failure && on.retriable_status_codes && !on.five_xx);
    assert!(RetryOn::parse("5xx,bogus").is_err());
}

#[test]
fn backoff_defaults_and_checks() {
    let b = RetryBackoff::try_new(Duration::from_millis(10), None).unwrap();
    assert_eq!(b.max(), Duration::from_millis(100));
    assert!(RetryBackoff::try_new(Duration::ZERO, None).is_err());
    assert!(
        RetryBackoff::try_new(Duration::from_millis(10), Some(Duration::from_millis(5))).is_err()
    );
}

#[test]
fn status_codes_are_checked_sorted_and_deduplicated() {
    let p = RetryPolicy::envoy_gateway_default()
        .with_status_codes(&[503, 500, 503])
        .unwrap();
    assert_eq!(p.retriable_status_codes, vec![500, 503]);
    assert!(
        RetryPolicy::envoy_gateway_default()
            .with_status_codes(&[600])
            .is_err()
    );
}

#[test]
fn regex_is_anchored() {
    let StringMatch::RegularExpression(re) = StringMatch::regex("a+").unwrap() else {
        panic!("not a regex");
    };
    assert!(re.is_match("aaa"));
    assert!(!re.is_match("baaa"));
    assert!(PathMatch::regex("(").is_err());
}

#[test]
fn cluster_defaults_follow_envoy_gateway() {
    let c = ClusterConfig::new("c", vec![]);
    assert_eq!(c.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.circuit_breaker.max_retries, 1024);
    assert_eq!(c.panic_threshold.get(), 50);
    assert_eq!(c.lb, LbPolicy::LeastRequest { choice_count: 2 });
    assert!(LbPolicy::least_request(1).is_err());
    assert!(SlowStart::try_new(Duration::ZERO).is_err());
}

#[test]
fn retry_budget_allows_the_larger_of_percent_and_minimum() {
    let b = RetryBudget::try_new(20.0, None).unwrap();
    assert_eq!(b.allowed(0), 3);
    assert_eq!(b.allowed(100), 20);
    assert!(RetryBudget::try_new(100.5, None).is_err());
}

#[test]
fn feature_blocks_are_validated() {
    let eps = vec![Endpoint::new(([127, 0, 0, 1], 1).into(), "default/b", 0)];
    let config = |c: ClusterConfig, r: RouteConfig| ProxyConfig {
        listeners: vec![listener(vec![r])],
        clusters: vec![c],
        seed: 1,
    };
    let ok = ClusterConfig::new("c", eps.clone());
    assert!(config(ok.clone(), route("r", "c")).validate().is_ok());

    assert!(LbPolicy::consistent_hash(65_536).is_err());
    let mut bad = ok.clone();
    bad.lb = LbPolicy::ConsistentHash { table_size: 4 };
    assert!(config(bad, route("r", "c")).validate().is_err());

    let mut bad = ok.clone();
    let mut hc = crate::proxy::health_check::HealthCheckConfig::http("/hc", "example.com");
    hc.interval = Duration::ZERO;
    bad.health_check = Some(hc);
    let err = config(bad, route("r", "c")).validate().unwrap_err();
    assert!(
        err.to_string().starts_with("c: healthCheck.active:"),
        "{err}"
    );

    let mut r = route("r", "c");
    r.response_overrides = vec![ResponseOverrideRule {
        status_codes: Vec::new(),
        response_headers: Vec::new(),
        source: OverrideSource::All,
        action: OverrideAction::Response(OverrideResponse::default()),
    }];
    assert!(config(ok.clone(), r).validate().is_err());
    assert!(StatusCodeMatch::range(500, 500).is_err());

    let mut r = route("r", "c");
    if let RouteAction::Forward(f) = &mut r.action {
        f.hash_policy = Some(crate::proxy::lb::hash::HashPolicyConfig::Headers(Vec::new()));
    }
    let err = config(ok, r).validate().unwrap_err();
    assert!(err.to_string().contains("consistentHash"), "{err}");
}
