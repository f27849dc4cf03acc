use std::time::Duration;

use super::*;

fn parse(text: &str) -> Assertion {
    Assertion::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn error(text: &str) -> String {
    match Assertion::parse(text) {
        Ok(a) => panic!("{text:?} parsed as {a:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parses_every_metric() {
    let cases: &[(&str, Metric, MetricKind)] = &[
        ("requests > 100", Metric::Requests, MetricKind::Count),
        ("rps >= 250", Metric::Rps, MetricKind::PerSecond),
        (
            "success_rate >= 99.9%",
            Metric::SuccessRate,
            MetricKind::Fraction,
        ),
        ("error_rate < 1%", Metric::ErrorRate, MetricKind::Fraction),
        (
            "status_rate(503) < 5%",
            Metric::StatusRate(StatusSelector::Code(503)),
            MetricKind::Fraction,
        ),
        (
            "status_rate(5xx) < 5%",
            Metric::StatusRate(StatusSelector::Class(5)),
            MetricKind::Fraction,
        ),
        (
            "status_count(429) == 0",
            Metric::StatusCount(StatusSelector::Code(429)),
            MetricKind::Count,
        ),
        (
            "status_count(2xx) > 10",
            Metric::StatusCount(StatusSelector::Class(2)),
            MetricKind::Count,
        ),
        (
            "flag_rate(UO) > 20%",
            Metric::FlagRate(ResponseFlagName::parse("UO").unwrap()),
            MetricKind::Fraction,
        ),
        (
            "flag_count(URX) == 0",
            Metric::FlagCount(ResponseFlagName::parse("URX").unwrap()),
            MetricKind::Count,
        ),
        (
            "overflow_rate > 20%",
            Metric::OverflowRate,
            MetricKind::Fraction,
        ),
        (
            "ratelimited_rate < 0.5",
            Metric::RatelimitedRate,
            MetricKind::Fraction,
        ),
        (
            "transport_error_rate == 0",
            Metric::TransportErrorRate,
            MetricKind::Fraction,
        ),
        ("share <= 50%", Metric::Share, MetricKind::Fraction),
        (
            "latency_p50 < 10ms",
            Metric::Latency(LatencyStat::P50),
            MetricKind::Latency,
        ),
        (
            "latency_p90 < 10ms",
            Metric::Latency(LatencyStat::P90),
            MetricKind::Latency,
        ),
        (
            "latency_p99 < 50ms",
            Metric::Latency(LatencyStat::P99),
            MetricKind::Latency,
        ),
        (
            "latency_p999 < 1s",
            Metric::Latency(LatencyStat::P999),
            MetricKind::Latency,
        ),
        (
            "latency_max <= 2s",
            Metric::Latency(LatencyStat::Max),
            MetricKind::Latency,
        ),
        (
            "latency_mean < 1m30s",
            Metric::Latency(LatencyStat::Mean),
            MetricKind::Latency,
        ),
        (
            "stat(upstream_rq_retry) > 0",
            Metric::Stat("upstream_rq_retry".into()),
            MetricKind::Count,
        ),
        (
            "stat(outlier_detection.ejections_enforced_total) >= 1",
            Metric::Stat("outlier_detection.ejections_enforced_total".into()),
            MetricKind::Count,
        ),
    ];
    for (text, metric, kind) in cases {
        let a = parse(text);
        assert_eq!(&a.metric, metric, "{text}");
        assert_eq!(a.metric.kind(), *kind, "{text}");
        // The canonical text is what was written, for these canonical inputs.
        assert_eq!(a.to_string(), *text);
    }
}

#[test]
fn every_response_flag_is_accepted_and_others_are_not() {
    for flag in RESPONSE_FLAGS {
        let a = parse(&format!("flag_rate({flag}) < 1%"));
        assert_eq!(a.metric.response_flag().unwrap().as_str(), *flag);
    }
    for required in [
        "UO", "UF", "UH", "URX", "UT", "RL", "FI", "DI", "UC", "NR", "LR", "UR", "DC", "LH",
        "UMSDR", "DPE", "UPE", "NC", "OM", "DF", "DO", "IH", "SI", "RLSE",
    ] {
        assert!(RESPONSE_FLAGS.contains(&required), "{required}");
    }
    assert_eq!(
        error("flag_rate(uo) < 1%"),
        "invalid assertion `flag_rate(uo) < 1%` at column 11: unknown Envoy response flag `uo` (allowed: DC, LH, UH, UT, LR, UR, UF, UC, UO, URX, NR, DI, FI, RL, UAEX, RLSE, SI, IH, DPE, UMSDR, RFCF, NFCF, DT, UPE, NC, OM, DF, DO, DR)"
    );
}

#[test]
fn aliases_name_their_flags() {
    assert_eq!(
        parse("overflow_rate > 0")
            .metric
            .response_flag()
            .unwrap()
            .as_str(),
        "UO"
    );
    assert_eq!(
        parse("ratelimited_rate > 0")
            .metric
            .response_flag()
            .unwrap()
            .as_str(),
        "RL"
    );
    assert_eq!(parse("success_rate > 0").metric.response_flag(), None);
    assert!(parse("share > 0").metric.needs_backend());
}

#[test]
fn parses_every_operator() {
    for (text, op) in [
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
    ] {
        assert_eq!(parse(&format!("requests {text} 5")).op, op);
        // Spaces are optional.
        assert_eq!(parse(&format!("requests{text}5")).op, op);
        assert_eq!(op.to_string(), text);
    }
}

#[test]
fn operators_compare_observations() {
    let truth = |text: &str, observed: f64| parse(text).holds(observed);
    assert!(truth("requests < 5", 4.0) && !truth("requests < 5", 5.0));
    assert!(truth("requests <= 5", 5.0) && !truth("requests <= 5", 6.0));
    assert!(truth("requests > 5", 6.0) && !truth("requests > 5", 5.0));
    assert!(truth("requests >= 5", 5.0) && !truth("requests >= 5", 4.0));
    assert!(truth("requests == 5", 5.0) && !truth("requests == 5", 4.0));
    assert!(truth("requests != 5", 4.0) && !truth("requests != 5", 5.0));
    // Undefined observations fail every operator, != included.
    for op in ["<", "<=", ">", ">=", "==", "!="] {
        assert!(!truth(&format!("success_rate {op} 50%"), f64::NAN), "{op}");
    }
}

#[test]
fn percentages_are_fractions() {
    let a = parse("success_rate >= 99.9%");
    assert_eq!(
        a.threshold,
        Threshold::Percent {
            percent: 99.9,
            fraction: 0.999
        }
    );
    // 999 of 1000 is exactly at the threshold.
    assert!(a.holds(999.0 / 1000.0));
    assert!(!a.holds(998.0 / 1000.0));
    assert_eq!(parse("error_rate < 0.1%").threshold.value(), 0.001);
    assert!(parse("error_rate <= 0.1%").holds(1.0 / 1000.0));
    assert_eq!(parse("success_rate == 100%").threshold.value(), 1.0);
    assert_eq!(parse("success_rate >= 0%").threshold.value(), 0.0);
}

#[test]
fn bare_numbers_for_rates_are_fractions() {
    let a = parse("success_rate >= 0.999");
    assert_eq!(a.threshold, Threshold::Number(0.999));
    assert!(a.holds(0.9995));
    assert_eq!(parse("share >= 1").threshold.value(), 1.0);
}

#[test]
fn durations_are_seconds() {
    let a = parse("latency_p99 < 50ms");
    assert_eq!(a.threshold, Threshold::Duration(Duration::from_millis(50)));
    assert_eq!(a.threshold.value(), 0.05);
    assert!(a.holds(0.049));
    assert!(!a.holds(0.05));
    assert_eq!(parse("latency_max <= 1m30s").threshold.value(), 90.0);
}

#[test]
fn numbers_are_counts_and_rates_per_second() {
    assert_eq!(parse("requests >= 1000").threshold.value(), 1000.0);
    assert_eq!(parse("rps > 99.5").threshold.value(), 99.5);
    assert!(parse("rps > 99.5").holds(100.0));
}

#[test]
fn display_is_canonical_and_round_trips() {
    let cases = [
        ("  success_rate>=99.90%  ", "success_rate >= 99.9%"),
        ("status_rate( 5xx )<1%", "status_rate(5xx) < 1%"),
        ("latency_p99 < 1500ms", "latency_p99 < 1s500ms"),
        ("latency_max < 90s", "latency_max < 1m30s"),
        ("latency_max < 1h0m", "latency_max < 1h"),
        ("latency_p50 < 0s", "latency_p50 < 0s"),
        ("requests == 10.0", "requests == 10"),
        ("rps>=0.25", "rps >= 0.25"),
        (
            "stat (upstream_rq_retry) > 3",
            "stat(upstream_rq_retry) > 3",
        ),
    ];
    for (input, canonical) in cases {
        let a = parse(input);
        assert_eq!(a.to_string(), canonical, "{input}");
        assert_eq!(parse(canonical), a, "{canonical}");
        assert_eq!(canonical.parse::<Assertion>().unwrap(), a);
    }
}

#[test]
fn observations_are_formatted_like_thresholds() {
    assert_eq!(
        parse("success_rate >= 99%").format_observed(0.99951),
        "99.951%"
    );
    assert_eq!(parse("success_rate >= 0.9").format_observed(0.5), "0.5");
    assert_eq!(
        parse("latency_p99 < 50ms").format_observed(0.0425),
        "42.5ms"
    );
    assert_eq!(parse("requests > 1").format_observed(12.0), "12");
    assert_eq!(parse("requests > 1").format_observed(f64::NAN), "n/a");
}

#[test]
fn syntax_errors_say_where_and_what() {
    let cases = [
        (
            "",
            "invalid assertion `` at column 1: empty assertion: expected `<metric> <op> <value>`, for example `success_rate >= 99.9%`",
        ),
        (
            ">= 5",
            "invalid assertion `>= 5` at column 1: expected a metric name, found `>=`",
        ),
        (
            "succes_rate >= 99%",
            "invalid assertion `succes_rate >= 99%` at column 1: unknown metric `succes_rate`: did you mean `success_rate`? allowed: requests, rps, success_rate, error_rate, status_rate(N), status_count(N), flag_rate(F), flag_count(F), overflow_rate, ratelimited_rate, transport_error_rate, share, latency_p50, latency_p90, latency_p99, latency_p999, latency_max, latency_mean, stat(NAME)",
        ),
        (
            "success_rate = 99%",
            "invalid assertion `success_rate = 99%` at column 14: expected an operator (<, <=, >, >=, ==, !=), found `=` (equality is `==`)",
        ),
        (
            "success_rate => 99%",
            "invalid assertion `success_rate => 99%` at column 14: expected an operator (<, <=, >, >=, ==, !=), found `=>`",
        ),
        (
            "success_rate",
            "invalid assertion `success_rate` at column 13: expected an operator (<, <=, >, >=, ==, !=), found the end of the assertion",
        ),
        (
            "success_rate >=",
            "invalid assertion `success_rate >=` at column 16: expected a value after `>=`: a number (100), a percentage (99.9%) or a duration (50ms)",
        ),
        (
            "success_rate >= 99% over 5s",
            "invalid assertion `success_rate >= 99% over 5s` at column 21: unexpected `over 5s` after the value: an assertion ends with its value",
        ),
        (
            "requests > -1",
            "invalid assertion `requests > -1` at column 12: invalid value `-1`: expected a number (100, 0.5), a percentage (99.9%) or a duration (250ms, 2s, 1m30s: whole numbers of h, m, s or ms)",
        ),
        (
            "latency_p99 < 1.5s",
            "invalid assertion `latency_p99 < 1.5s` at column 15: invalid value `1.5s`: expected a number (100, 0.5), a percentage (99.9%) or a duration (250ms, 2s, 1m30s: whole numbers of h, m, s or ms)",
        ),
        (
            "success_rate > x%",
            "invalid assertion `success_rate > x%` at column 16: invalid percentage `x%`: expected a number before `%`, such as 99.9%",
        ),
        (
            "status_rate(5xx < 1%",
            "invalid assertion `status_rate(5xx < 1%` at column 21: expected `)` to close the metric's argument",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(text), expected, "{text:?}");
    }
}

#[test]
fn argument_errors_point_at_the_argument() {
    let cases = [
        (
            "status_rate < 1%",
            "invalid assertion `status_rate < 1%` at column 1: `status_rate` needs an argument, for example status_rate(503) or (5xx)",
        ),
        (
            "status_count(600) == 0",
            "invalid assertion `status_count(600) == 0` at column 14: invalid status `600`: expected a status code from 100 to 599 or a class from 1xx to 5xx",
        ),
        (
            "status_rate(6xx) == 0",
            "invalid assertion `status_rate(6xx) == 0` at column 13: invalid status `6xx`: expected a status code from 100 to 599 or a class from 1xx to 5xx",
        ),
        (
            "success_rate(2xx) > 1%",
            "invalid assertion `success_rate(2xx) > 1%` at column 14: `success_rate` takes no argument",
        ),
        (
            "flag_count() > 1",
            "invalid assertion `flag_count() > 1` at column 12: unknown Envoy response flag `` (allowed: DC, LH, UH, UT, LR, UR, UF, UC, UO, URX, NR, DI, FI, RL, UAEX, RLSE, SI, IH, DPE, UMSDR, RFCF, NFCF, DT, UPE, NC, OM, DF, DO, DR)",
        ),
        (
            "stat(a b) > 1",
            "invalid assertion `stat(a b) > 1` at column 6: invalid stat name `a b`: expected an Envoy counter name such as upstream_rq_retry or outlier_detection.ejections_enforced_total",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(text), expected, "{text:?}");
    }
}

#[test]
fn value_kinds_are_checked_against_the_metric() {
    let cases = [
        (
            "success_rate >= 99.9",
            "invalid assertion `success_rate >= 99.9` at column 17: `success_rate` is a rate: a bare number is a fraction from 0 to 1; for a percentage write `99.9%`",
        ),
        (
            "error_rate < 101%",
            "invalid assertion `error_rate < 101%` at column 14: `error_rate` is a rate: a percentage must be from 0% to 100%, got 101%",
        ),
        (
            "share > 5s",
            "invalid assertion `share > 5s` at column 9: `share` is a rate: compare it with a percentage (99.9%) or a fraction from 0 to 1 (0.999), not a duration",
        ),
        (
            "latency_p99 < 50",
            "invalid assertion `latency_p99 < 50` at column 15: `latency_p99` is a latency: give the value a unit, for example 50ms or 50s",
        ),
        (
            "latency_mean < 5%",
            "invalid assertion `latency_mean < 5%` at column 16: `latency_mean` is a latency: compare it with a duration such as 50ms, not a percentage",
        ),
        (
            "requests > 5%",
            "invalid assertion `requests > 5%` at column 12: `requests` is a count: compare it with a plain number such as 100; for a share use a rate metric",
        ),
        (
            "flag_count(UO) > 1s",
            "invalid assertion `flag_count(UO) > 1s` at column 18: `flag_count(UO)` is a count: compare it with a plain number such as 100; for a share use a rate metric",
        ),
        (
            "rps > 50%",
            "invalid assertion `rps > 50%` at column 7: `rps` is requests per second: compare it with a plain number such as 250",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(text), expected, "{text:?}");
    }
}

#[test]
fn columns_count_characters() {
    // `µ` is two bytes; the trailing `x` is still the 16th character.
    let err = Assertion::parse("requests > 5µs x").unwrap_err();
    assert_eq!(err.column, 16);
}

#[test]
fn status_selectors_match_statuses() {
    assert!(StatusSelector::Class(5).matches(503));
    assert!(!StatusSelector::Class(5).matches(499));
    assert!(StatusSelector::Code(429).matches(429));
    assert!(!StatusSelector::Code(429).matches(428));
}

#[test]
fn latency_stats_know_their_quantiles() {
    assert_eq!(LatencyStat::P999.quantile(), Some(0.999));
    assert_eq!(LatencyStat::Max.quantile(), None);
    assert_eq!(
        format_duration(Duration::from_millis(3_723_004)),
        "1h2m3s4ms"
    );
}

/// Display → parse is the identity for every metric, operator and value kind, with seeded
/// random values (awkward floats included).
#[test]
fn display_round_trips_for_random_assertions() {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let flag = ResponseFlagName::parse("URX").unwrap();
    let mut metrics = vec![
        Metric::Requests,
        Metric::Rps,
        Metric::SuccessRate,
        Metric::ErrorRate,
        Metric::StatusRate(StatusSelector::Class(4)),
        Metric::StatusCount(StatusSelector::Code(504)),
        Metric::FlagRate(flag),
        Metric::FlagCount(flag),
        Metric::OverflowRate,
        Metric::RatelimitedRate,
        Metric::TransportErrorRate,
        Metric::Share,
        Metric::Stat("health_check.failure".into()),
    ];
    metrics.extend(LatencyStat::ALL.map(Metric::Latency));
    let ops = [Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Eq, Op::Ne];
    for _ in 0..2000 {
        let metric = metrics[rng.random_range(0..metrics.len())].clone();
        let op = ops[rng.random_range(0..ops.len())];
        let threshold = match metric.kind() {
            MetricKind::Fraction if rng.random_bool(0.5) => Threshold::Number(rng.random::<f64>()),
            MetricKind::Fraction => {
                let text = format!("{}", rng.random_range(0..=100_000) as f64 / 1000.0);
                match Assertion::parse(&format!("share < {text}%"))
                    .unwrap()
                    .threshold
                {
                    t @ Threshold::Percent { .. } => t,
                    other => panic!("{other:?}"),
                }
            }
            MetricKind::Latency => {
                Threshold::Duration(Duration::from_millis(rng.random_range(0..400_000_000)))
            }
            MetricKind::Count | MetricKind::PerSecond => {
                Threshold::Number(rng.random_range(0.0..1e9))
            }
        };
        let assertion = Assertion {
            metric,
            op,
            threshold,
        };
        let text = assertion.to_string();
        assert_eq!(Assertion::parse(&text), Ok(assertion), "{text}");
    }
}
