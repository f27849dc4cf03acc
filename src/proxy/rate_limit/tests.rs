use std::net::IpAddr;
use std::time::Duration;

use http::Method;
use http::request::Parts;
use tokio::time::Instant;

use super::*;

fn req(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("request").into_parts().0
}

fn get(uri: &str, headers: &[(&str, &str)]) -> Parts {
    req(Method::GET, uri, headers)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn header(name: &str, value: &str, invert: bool) -> HeaderMatchConfig {
    HeaderMatchConfig {
        name: name.into(),
        match_type: StringMatchType::Exact,
        value: Some(value.into()),
        invert,
    }
}

fn distinct_header(name: &str) -> HeaderMatchConfig {
    HeaderMatchConfig {
        name: name.into(),
        match_type: StringMatchType::Distinct,
        value: None,
        invert: false,
    }
}

fn selector_headers(h: Vec<HeaderMatchConfig>) -> ClientSelectorConfig {
    ClientSelectorConfig {
        headers: h,
        ..Default::default()
    }
}

fn limit(requests: u64, unit: Unit) -> Limit {
    Limit { requests, unit }
}

fn local(rules: Vec<RuleConfig>) -> LocalRateLimiter {
    LocalRateLimiter::try_new(&LocalRateLimitConfig {
        rules,
        x_ratelimit_headers: true,
    })
    .expect("valid")
}

fn hdrs(d: &Decision) -> (String, u64, u64) {
    let h = d.headers.as_ref().expect("headers");
    (h.limit.clone(), h.remaining, h.reset)
}

#[tokio::test(start_paused = true)]
async fn doc_demo_three_per_hour_for_user_one() {
    let rl = local(vec![RuleConfig::new(
        vec![selector_headers(vec![header("x-user-id", "one", false)])],
        limit(3, Unit::Hour),
    )]);
    let one = get("/", &[("x-user-id", "one")]);
    let now = Instant::now();
    // Reset is 0 while a token is left, else the whole seconds until the next one.
    for (remaining, reset) in [(2, 0), (1, 0), (0, 1200)] {
        let d = rl.check(&one, ip("10.0.0.1"), now);
        assert!(!d.limited);
        assert_eq!(hdrs(&d), ("3".into(), remaining, reset));
    }
    let d = rl.check(&one, ip("10.0.0.1"), now);
    assert!(d.limited);
    // The next token comes after 3600/3 = 1200 s.
    assert_eq!(hdrs(&d), ("3".into(), 0, 1200));
    // Other users fall in the unlimited default bucket.
    let two = get("/", &[("x-user-id", "two")]);
    for _ in 0..10 {
        let d = rl.check(&two, ip("10.0.0.1"), now);
        assert!(!d.limited);
        assert_eq!(
            d.headers.as_ref().map(|h| (h.limit.as_str(), h.reset)),
            Some(("4294967295", 0))
        );
    }
    let [enabled, ok, rate_limited, enforced] = rl.stats().snapshot();
    assert_eq!(
        enabled,
        ("http_local_rate_limiter.http_local_rate_limit.enabled", 14)
    );
    assert_eq!(ok.1, 13);
    assert_eq!(rate_limited.1, 1);
    assert_eq!(
        enforced,
        ("http_local_rate_limiter.http_local_rate_limit.enforced", 1)
    );
    // Smooth refill: one token 1200 s later, not the whole bucket.
    tokio::time::advance(Duration::from_secs(1200)).await;
    assert!(!rl.check(&one, ip("10.0.0.1"), Instant::now()).limited);
    assert!(rl.check(&one, ip("10.0.0.1"), Instant::now()).limited);
}

#[tokio::test(start_paused = true)]
async fn invert_leaves_org_test_unlimited() {
    let rl = local(vec![RuleConfig::new(
        vec![selector_headers(vec![
            header("x-user-id", "one", false),
            header("x-org-id", "test", true),
        ])],
        limit(3, Unit::Hour),
    )]);
    let now = Instant::now();
    let in_test = get("/", &[("x-user-id", "one"), ("x-org-id", "test")]);
    for _ in 0..10 {
        assert!(!rl.check(&in_test, ip("10.0.0.1"), now).limited);
    }
    let in_foo = get("/", &[("x-user-id", "one"), ("x-org-id", "foo")]);
    let results: Vec<bool> = (0..4)
        .map(|_| rl.check(&in_foo, ip("10.0.0.1"), now).limited)
        .collect();
    assert_eq!(results, [false, false, false, true]);
    // A missing header never matches, inverted or not.
    let no_org = get("/", &[("x-user-id", "one")]);
    assert!(!rl.check(&no_org, ip("10.0.0.1"), now).limited);
}

#[tokio::test(start_paused = true)]
async fn distinct_headers_and_ips_get_their_own_buckets() {
    let rl = local(vec![RuleConfig::new(
        vec![selector_headers(vec![distinct_header("x-user-id")])],
        limit(2, Unit::Minute),
    )]);
    let now = Instant::now();
    for user in ["a", "b", "c"] {
        let r = get("/", &[("x-user-id", user)]);
        assert!(!rl.check(&r, ip("10.0.0.1"), now).limited);
        assert!(!rl.check(&r, ip("10.0.0.1"), now).limited);
        assert!(rl.check(&r, ip("10.0.0.1"), now).limited, "user {user}");
    }
    assert_eq!(rl.dynamic_buckets(), 3);
    // Missing header: no descriptor, default bucket.
    assert!(!rl.check(&get("/", &[]), ip("10.0.0.1"), now).limited);

    let cidr = |match_type, invert| ClientSelectorConfig {
        source_cidr: Some(SourceCidrConfig {
            match_type,
            value: "10.0.0.0/8".into(),
            invert,
        }),
        ..Default::default()
    };
    let per_ip = local(vec![RuleConfig::new(
        vec![cidr(CidrMatchType::Distinct, false)],
        limit(1, Unit::Second),
    )]);
    assert!(!per_ip.check(&get("/", &[]), ip("10.0.0.1"), now).limited);
    assert!(per_ip.check(&get("/", &[]), ip("10.0.0.1"), now).limited);
    assert!(!per_ip.check(&get("/", &[]), ip("10.0.0.2"), now).limited);
    assert!(!per_ip.check(&get("/", &[]), ip("192.168.0.1"), now).limited);
    assert!(!per_ip.check(&get("/", &[]), ip("192.168.0.1"), now).limited);

    let shared = local(vec![RuleConfig::new(
        vec![cidr(CidrMatchType::Exact, false)],
        limit(1, Unit::Second),
    )]);
    assert!(!shared.check(&get("/", &[]), ip("10.0.0.1"), now).limited);
    assert!(shared.check(&get("/", &[]), ip("10.0.0.2"), now).limited);
    let outside = local(vec![RuleConfig::new(
        vec![cidr(CidrMatchType::Exact, true)],
        limit(1, Unit::Second),
    )]);
    assert!(!outside.check(&get("/", &[]), ip("10.0.0.1"), now).limited);
    assert!(!outside.check(&get("/", &[]), ip("10.0.0.1"), now).limited);
    assert!(!outside.check(&get("/", &[]), ip("8.8.8.8"), now).limited);
    assert!(outside.check(&get("/", &[]), ip("8.8.4.4"), now).limited);
}

#[tokio::test(start_paused = true)]
async fn distinct_buckets_are_capped() {
    let rl = local(vec![RuleConfig::new(
        vec![selector_headers(vec![distinct_header("x-id")])],
        limit(1, Unit::Hour),
    )]);
    let start = Instant::now();
    for i in 0..=MAX_DYNAMIC_DESCRIPTORS {
        let id = i.to_string();
        rl.check(
            &get("/", &[("x-id", id.as_str())]),
            ip("10.0.0.1"),
            start + Duration::from_millis(i as u64),
        );
    }
    assert_eq!(rl.dynamic_buckets(), MAX_DYNAMIC_DESCRIPTORS);
    // The least recently used ("0") was evicted: it gets a fresh, full bucket.
    let later = start + Duration::from_secs(20);
    assert!(
        !rl.check(&get("/", &[("x-id", "0")]), ip("10.0.0.1"), later)
            .limited
    );
    assert!(
        rl.check(&get("/", &[("x-id", "5")]), ip("10.0.0.1"), later)
            .limited
    );
}

#[test]
fn path_prefix_is_path_separated() {
    let sel = |t, v: &str, invert| ClientSelectorConfig {
        path: Some(PathMatchConfig {
            match_type: t,
            value: v.into(),
            invert,
        }),
        ..Default::default()
    };
    let m = matcher::RuleMatcher::try_new(&[sel(PathMatchType::PathPrefix, "/api", false)])
        .expect("valid");
    let mut key = matcher::DistinctKey::default();
    let hit = |m: &matcher::RuleMatcher, uri: &str, key: &mut matcher::DistinctKey| {
        m.matches(&get(uri, &[]), ip("1.1.1.1"), key)
    };
    for yes in ["/api", "/api/", "/api/v1", "/api?x=1", "/api;v=1"] {
        assert!(hit(&m, yes, &mut key), "{yes}");
    }
    for no in ["/apix", "/api-v2", "/", "/v1/api"] {
        assert!(!hit(&m, no, &mut key), "{no}");
    }
    let exact =
        matcher::RuleMatcher::try_new(&[sel(PathMatchType::Exact, "/a", false)]).expect("valid");
    assert!(hit(&exact, "/a", &mut key));
    assert!(!hit(&exact, "/a?x", &mut key));
    let re = matcher::RuleMatcher::try_new(&[sel(
        PathMatchType::RegularExpression,
        "/v[0-9]+/.*",
        false,
    )])
    .expect("valid");
    assert!(hit(&re, "/v2/x", &mut key));
    assert!(!hit(&re, "/x/v2/x", &mut key));
    let inv = matcher::RuleMatcher::try_new(&[sel(PathMatchType::PathPrefix, "/api", true)])
        .expect("valid");
    assert!(!hit(&inv, "/api/x", &mut key));
    assert!(hit(&inv, "/other", &mut key));
}

#[test]
fn methods_or_together_and_query_params_match() {
    let m = matcher::RuleMatcher::try_new(&[ClientSelectorConfig {
        methods: vec![
            MethodMatchConfig {
                value: Method::POST,
                invert: false,
            },
            MethodMatchConfig {
                value: Method::PUT,
                invert: false,
            },
        ],
        query_params: vec![QueryParamMatchConfig {
            name: "tier".into(),
            match_type: StringMatchType::Exact,
            value: Some("free".into()),
            invert: false,
        }],
        ..Default::default()
    }])
    .expect("valid");
    let mut key = matcher::DistinctKey::default();
    let peer = ip("1.1.1.1");
    assert!(m.matches(&req(Method::POST, "/?tier=free", &[]), peer, &mut key));
    assert!(m.matches(&req(Method::PUT, "/?a=1&tier=free", &[]), peer, &mut key));
    assert!(!m.matches(&req(Method::GET, "/?tier=free", &[]), peer, &mut key));
    assert!(!m.matches(&req(Method::POST, "/?tier=paid", &[]), peer, &mut key));
    assert!(!m.matches(&req(Method::POST, "/", &[]), peer, &mut key));
}

#[tokio::test(start_paused = true)]
async fn buckets_refill_smoothly_over_paused_time() {
    let rl = local(vec![RuleConfig::new(vec![], limit(2, Unit::Second))]);
    let r = get("/", &[]);
    let peer = ip("10.0.0.1");
    assert!(!rl.check(&r, peer, Instant::now()).limited);
    assert!(!rl.check(&r, peer, Instant::now()).limited);
    assert!(rl.check(&r, peer, Instant::now()).limited);
    tokio::time::advance(Duration::from_millis(499)).await;
    assert!(rl.check(&r, peer, Instant::now()).limited);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(!rl.check(&r, peer, Instant::now()).limited);
    assert!(rl.check(&r, peer, Instant::now()).limited);
    // Capped at max_tokens after a long idle time.
    tokio::time::advance(Duration::from_secs(60)).await;
    let results: Vec<bool> = (0..3)
        .map(|_| rl.check(&r, peer, Instant::now()).limited)
        .collect();
    assert_eq!(results, [false, false, true]);
    assert_eq!(rl.default_bucket(), Some(limit(2, Unit::Second)));
}

#[tokio::test(start_paused = true)]
async fn matched_rules_skip_the_default_bucket_and_the_slowest_bucket_reports() {
    let rl = local(vec![
        RuleConfig::new(vec![], limit(1, Unit::Second)),
        RuleConfig::new(
            vec![selector_headers(vec![header("x-a", "1", false)])],
            limit(5, Unit::Minute),
        ),
        RuleConfig::new(
            vec![selector_headers(vec![header("x-b", "1", false)])],
            limit(100, Unit::Second),
        ),
    ]);
    let now = Instant::now();
    let both = get("/", &[("x-a", "1"), ("x-b", "1")]);
    for i in 0..5 {
        let d = rl.check(&both, ip("10.0.0.1"), now);
        assert!(!d.limited, "request {i}");
        // Headers come from the slowest-filling bucket (5/min).
        assert_eq!(hdrs(&d).0, "5");
    }
    let d = rl.check(&both, ip("10.0.0.1"), now);
    assert!(d.limited);
    assert_eq!(hdrs(&d), ("5".into(), 0, 12));
    // The default bucket was never touched by matched requests.
    assert!(!rl.check(&get("/", &[]), ip("10.0.0.1"), now).limited);
    assert!(rl.check(&get("/", &[]), ip("10.0.0.1"), now).limited);
}

#[tokio::test(start_paused = true)]
async fn shadow_mode_cost_and_header_switches() {
    let mut shadow = RuleConfig::new(
        vec![selector_headers(vec![header("x-a", "1", false)])],
        limit(1, Unit::Hour),
    );
    shadow.shadow_mode = true;
    shadow.x_ratelimit_headers = Some(false);
    let rl = local(vec![shadow]);
    let r = get("/", &[("x-a", "1")]);
    let now = Instant::now();
    for _ in 0..3 {
        let d = rl.check(&r, ip("10.0.0.1"), now);
        assert!(!d.limited);
        assert!(d.headers.is_none());
    }
    assert_eq!(
        rl.stats()
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        rl.stats()
            .enforced
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    let mut costly = RuleConfig::new(vec![], limit(10, Unit::Hour));
    costly.cost = 4;
    let rl = LocalRateLimiter::try_new(&LocalRateLimitConfig {
        rules: vec![costly],
        x_ratelimit_headers: false,
    })
    .expect("valid");
    let results: Vec<bool> = (0..3)
        .map(|_| rl.check(&get("/", &[]), ip("10.0.0.1"), now).limited)
        .collect();
    assert_eq!(results, [false, false, true]);
    assert!(
        rl.check(&get("/", &[]), ip("10.0.0.1"), now)
            .headers
            .is_none()
    );
}

#[test]
fn config_errors_use_eg_texts() {
    let err = |rules| {
        LocalRateLimiter::try_new(&LocalRateLimitConfig {
            rules,
            x_ratelimit_headers: true,
        })
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        err(vec![
            RuleConfig::new(vec![], limit(1, Unit::Second)),
            RuleConfig::new(vec![], limit(1, Unit::Minute))
        ]),
        "local rateLimit can not have more than one rule without clientSelectors"
    );
    assert_eq!(
        err(vec![
            RuleConfig::new(vec![], limit(1, Unit::Minute)),
            RuleConfig::new(
                vec![selector_headers(vec![header("x", "y", false)])],
                limit(1, Unit::Second)
            ),
        ]),
        "local rateLimit rule limit unit must be a multiple of the default limit unit"
    );
    // Year is not a whole number of Months (365 vs 30 days).
    assert!(
        LocalRateLimiter::try_new(&LocalRateLimitConfig {
            rules: vec![
                RuleConfig::new(vec![], limit(1, Unit::Month)),
                RuleConfig::new(
                    vec![selector_headers(vec![header("x", "y", false)])],
                    limit(1, Unit::Year)
                ),
            ],
            x_ratelimit_headers: true,
        })
        .is_err()
    );
    assert_eq!(
        err(vec![RuleConfig::new(
            vec![ClientSelectorConfig::default()],
            limit(1, Unit::Second)
        )]),
        "unable to translate rateLimit. At least one of the header or method or path or sourceCIDR or queryParameters must be specified"
    );
    let mut bad = distinct_header("x");
    bad.invert = true;
    assert_eq!(
        err(vec![RuleConfig::new(
            vec![selector_headers(vec![bad])],
            limit(1, Unit::Second)
        )]),
        "unable to translate rateLimit.Invert is not applicable for distinct header match type"
    );
    let no_value = HeaderMatchConfig {
        name: "x".into(),
        match_type: StringMatchType::Exact,
        value: None,
        invert: false,
    };
    assert_eq!(
        err(vec![RuleConfig::new(
            vec![selector_headers(vec![no_value])],
            limit(1, Unit::Second)
        )]),
        "unable to translate rateLimit. Either the header.Type is not valid or the header is missing a value"
    );
    let bad_re = HeaderMatchConfig {
        name: "x".into(),
        match_type: StringMatchType::RegularExpression,
        value: Some("(".into()),
        invert: false,
    };
    assert!(
        err(vec![RuleConfig::new(
            vec![selector_headers(vec![bad_re])],
            limit(1, Unit::Second)
        )])
        .starts_with("regex \"(\" is invalid: ")
    );
    let bad_cidr = ClientSelectorConfig {
        source_cidr: Some(SourceCidrConfig {
            match_type: CidrMatchType::Exact,
            value: "10.0.0/8".into(),
            invert: false,
        }),
        ..Default::default()
    };
    assert!(
        err(vec![RuleConfig::new(
            vec![bad_cidr],
            limit(1, Unit::Second)
        )])
        .starts_with("unable to translate rateLimit: ")
    );
    let q = |t, v: Option<&str>, invert| ClientSelectorConfig {
        query_params: vec![QueryParamMatchConfig {
            name: "q".into(),
            match_type: t,
            value: v.map(Into::into),
            invert,
        }],
        ..Default::default()
    };
    let qerr = |s| err(vec![RuleConfig::new(vec![s], limit(1, Unit::Second))]);
    assert_eq!(
        qerr(q(StringMatchType::Exact, None, false)),
        "value is required for Exact query parameter match"
    );
    assert_eq!(
        qerr(q(StringMatchType::RegularExpression, None, false)),
        "value is required for RegularExpression query parameter match"
    );
    assert_eq!(
        qerr(q(StringMatchType::Distinct, Some("v"), false)),
        "unable to translate rateLimit.Value is not applicable for distinct query parameter match type"
    );
    assert_eq!(
        qerr(q(StringMatchType::Distinct, None, true)),
        "unable to translate rateLimit.Invert is not applicable for distinct query parameter match type"
    );
}

fn global_rules(rules: Vec<RuleConfig>) -> GlobalRuleSet {
    GlobalRuleSet::try_new(&GlobalRateLimitConfig {
        policy_id: "default/btp".into(),
        rules,
        x_ratelimit_headers: true,
    })
    .expect("valid")
}

#[tokio::test(start_paused = true)]
async fn global_windows_reset_at_the_unit_boundary() {
    // Unix time 119 s at the start: the minute window [60, 120) ends in one second.
    let clock = WallClock::new(Instant::now(), Duration::from_secs(119));
    let svc = GlobalRateLimiter::new(clock);
    let rules = global_rules(vec![RuleConfig::new(vec![], limit(2, Unit::Minute))]);
    let r = get("/", &[]);
    let peer = ip("10.0.0.1");
    let d = svc.check(&rules, "route-a", &r, peer, Instant::now());
    assert!(!d.limited);
    assert_eq!(hdrs(&d), ("2, 2;w=60".into(), 1, 1));
    assert!(
        !svc.check(&rules, "route-a", &r, peer, Instant::now())
            .limited
    );
    let d = svc.check(&rules, "route-a", &r, peer, Instant::now());
    assert!(d.limited);
    assert_eq!(hdrs(&d).1, 0);
    // Another route has its own counter for a non-shared rule.
    assert!(
        !svc.check(&rules, "route-b", &r, peer, Instant::now())
            .limited
    );
    tokio::time::advance(Duration::from_millis(999)).await;
    assert!(
        svc.check(&rules, "route-a", &r, peer, Instant::now())
            .limited
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    let d = svc.check(&rules, "route-a", &r, peer, Instant::now());
    assert!(!d.limited);
    assert_eq!(hdrs(&d), ("2, 2;w=60".into(), 1, 60));
    let [ok, over] = rules.stats().snapshot();
    assert_eq!(ok, ("ratelimit.ok", 4));
    assert_eq!(over, ("ratelimit.over_limit", 2));
}

#[tokio::test(start_paused = true)]
async fn global_every_rule_counts_shared_shadow_and_distinct() {
    let svc = GlobalRateLimiter::new(WallClock::new(Instant::now(), Duration::from_secs(0)));
    let mut shared = RuleConfig::new(vec![], limit(3, Unit::Hour));
    shared.shared = true;
    let per_user = RuleConfig::new(
        vec![selector_headers(vec![distinct_header("x-user")])],
        limit(1, Unit::Hour),
    );
    let rules = global_rules(vec![shared, per_user]);
    let now = Instant::now();
    let peer = ip("10.0.0.1");
    // First request of user a: both counters count.
    assert!(
        !svc.check(&rules, "r1", &get("/", &[("x-user", "a")]), peer, now)
            .limited
    );
    // Second of user a: over the per-user limit; the shared counter counts it too.
    assert!(
        svc.check(&rules, "r1", &get("/", &[("x-user", "a")]), peer, now)
            .limited
    );
    // User b on another route: shared counter now at 3 (a, a, b) — still within 3.
    assert!(
        !svc.check(&rules, "r2", &get("/", &[("x-user", "b")]), peer, now)
            .limited
    );
    // Shared counter exceeded from any route.
    assert!(svc.check(&rules, "r3", &get("/", &[]), peer, now).limited);

    let mut shadow = RuleConfig::new(vec![], limit(1, Unit::Hour));
    shadow.shadow_mode = true;
    let shadow_rules = global_rules(vec![shadow]);
    for _ in 0..5 {
        let d = svc.check(&shadow_rules, "r9", &get("/", &[]), peer, now);
        assert!(!d.limited);
    }
    // Nothing matches: no stats, no headers.
    let only_post = global_rules(vec![RuleConfig::new(
        vec![ClientSelectorConfig {
            methods: vec![MethodMatchConfig {
                value: Method::POST,
                invert: false,
            }],
            ..Default::default()
        }],
        limit(1, Unit::Hour),
    )]);
    let d = svc.check(&only_post, "r1", &get("/", &[]), peer, now);
    assert_eq!(
        d,
        Decision {
            limited: false,
            headers: None
        }
    );
    assert_eq!(only_post.stats().snapshot()[0].1, 0);
}

#[tokio::test(start_paused = true)]
async fn global_request_cost() {
    let svc = GlobalRateLimiter::new(WallClock::new(Instant::now(), Duration::from_secs(0)));
    let mut rule = RuleConfig::new(vec![], limit(10, Unit::Minute));
    rule.cost = 4;
    let rules = global_rules(vec![rule]);
    let now = Instant::now();
    let results: Vec<bool> = (0..3)
        .map(|_| {
            svc.check(&rules, "r", &get("/", &[]), ip("10.0.0.1"), now)
                .limited
        })
        .collect();
    assert_eq!(results, [false, false, true]);
}

#[test]
fn limiters_are_shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<LocalRateLimiter>();
    send_sync::<GlobalRateLimiter>();
    send_sync::<GlobalRuleSet>();
    send_sync::<crate::proxy::fault::FaultInjector>();
    send_sync::<crate::proxy::lb::hash::HashPolicy>();
    send_sync::<crate::proxy::lb::maglev::MaglevTable>();
    send_sync::<crate::proxy::health_check::HealthCheckStats>();
    send_sync::<crate::proxy::health_check::HealthCheckerHandle>();
}
