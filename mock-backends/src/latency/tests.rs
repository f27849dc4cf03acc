use super::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Sorted samples from a fixed seed.
fn samples(dist: LatencyDist, n: usize) -> Vec<Duration> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut out: Vec<Duration> = (0..n).map(|_| dist.sample(&mut rng)).collect();
    out.sort();
    out
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index]
}

fn assert_near(actual: Duration, expected: Duration, tolerance: f64) {
    let (a, e) = (actual.as_secs_f64(), expected.as_secs_f64());
    assert!(
        (a - e).abs() <= e * tolerance,
        "expected {expected:?} +-{:.0}%, got {actual:?}",
        tolerance * 100.0
    );
}

#[test]
fn fixed_and_zero_are_constant() {
    assert!(
        samples(LatencyDist::Fixed(ms(5)), 100)
            .iter()
            .all(|d| *d == ms(5))
    );
    assert!(
        samples(LatencyDist::ZERO, 100)
            .iter()
            .all(Duration::is_zero)
    );
    assert!(LatencyDist::ZERO.is_zero());
    let zero_lognormal = LatencyDist::LogNormal {
        p50: ms(0),
        p99: ms(0),
    };
    assert!(zero_lognormal.validate().is_ok());
    assert!(samples(zero_lognormal, 100).iter().all(Duration::is_zero));
}

#[test]
fn uniform_stays_in_range_and_spreads() {
    let sorted = samples(
        LatencyDist::Uniform {
            min: ms(10),
            max: ms(30),
        },
        20_000,
    );
    assert!(sorted[0] >= ms(10));
    assert!(sorted[sorted.len() - 1] <= ms(30));
    assert_near(quantile(&sorted, 0.5), ms(20), 0.05);
    assert_near(quantile(&sorted, 0.1), ms(12), 0.05);
    assert_near(quantile(&sorted, 0.9), ms(28), 0.05);
    // A degenerate range is a fixed delay.
    assert!(
        samples(
            LatencyDist::Uniform {
                min: ms(3),
                max: ms(3)
            },
            10
        )
        .iter()
        .all(|d| *d == ms(3))
    );
}

#[test]
fn lognormal_hits_its_quantiles() {
    let sorted = samples(
        LatencyDist::LogNormal {
            p50: ms(5),
            p99: ms(40),
        },
        50_000,
    );
    assert_near(quantile(&sorted, 0.5), ms(5), 0.05);
    assert_near(quantile(&sorted, 0.99), ms(40), 0.12);
    // sigma = 0 when p99 == p50: a fixed delay.
    let flat = samples(
        LatencyDist::LogNormal {
            p50: ms(8),
            p99: ms(8),
        },
        100,
    );
    assert!(flat.iter().all(|d| (d.as_secs_f64() - 0.008).abs() < 1e-9));
}

#[test]
fn same_seed_same_samples() {
    let dist = LatencyDist::LogNormal {
        p50: ms(5),
        p99: ms(40),
    };
    let mut a = ChaCha8Rng::seed_from_u64(1);
    let mut b = ChaCha8Rng::seed_from_u64(1);
    let xs: Vec<_> = (0..50).map(|_| dist.sample(&mut a)).collect();
    let ys: Vec<_> = (0..50).map(|_| dist.sample(&mut b)).collect();
    assert_eq!(xs, ys);
}

#[test]
fn validation_rejects_impossible_shapes() {
    assert!(matches!(
        LatencyDist::Uniform {
            min: ms(9),
            max: ms(1)
        }
        .validate(),
        Err(LatencyError::UniformReversed { .. })
    ));
    assert!(matches!(
        LatencyDist::LogNormal {
            p50: ms(9),
            p99: ms(1)
        }
        .validate(),
        Err(LatencyError::LogNormalReversed { .. })
    ));
    assert_eq!(
        LatencyDist::LogNormal {
            p50: ms(0),
            p99: ms(1)
        }
        .validate(),
        Err(LatencyError::LogNormalZeroMedian)
    );
}

#[test]
fn deserializes_every_scenario_shape() {
    let parse = |json: &str| serde_json::from_str::<LatencyDist>(json);
    assert_eq!(parse(r#""5ms""#).expect("plain"), LatencyDist::Fixed(ms(5)));
    assert_eq!(
        parse(r#"{"fixed":"2s"}"#).expect("fixed"),
        LatencyDist::Fixed(ms(2000))
    );
    assert_eq!(
        parse(r#"{"uniform":["1ms","9ms"]}"#).expect("uniform list"),
        LatencyDist::Uniform {
            min: ms(1),
            max: ms(9)
        }
    );
    assert_eq!(
        parse(r#"{"uniform":{"min":"1ms","max":"9ms"}}"#).expect("uniform map"),
        LatencyDist::Uniform {
            min: ms(1),
            max: ms(9)
        }
    );
    assert_eq!(
        parse(r#"{"lognormal":{"p50":"5ms","p99":"40ms"}}"#).expect("lognormal"),
        LatencyDist::LogNormal {
            p50: ms(5),
            p99: ms(40)
        }
    );
}

#[test]
fn rejects_bad_shapes_with_a_reason() {
    let err = |json: &str| {
        serde_json::from_str::<LatencyDist>(json)
            .expect_err(json)
            .to_string()
    };
    assert!(err(r#"{"gaussian":"5ms"}"#).contains("unknown field `gaussian`"));
    assert!(err(r#"{"fixed":"5ms","uniform":["1ms","2ms"]}"#).contains("exactly one"));
    assert!(err(r#"{"uniform":["1ms"]}"#).contains("invalid length"));
    assert!(err(r#"{"uniform":["9ms","1ms"]}"#).contains("min <= max"));
    assert!(err(r#"{"lognormal":{"p50":"5ms"}}"#).contains("p99"));
    assert!(err(r#"{"lognormal":{"p50":"5ms","p99":"40ms","p90":"9ms"}}"#).contains("p90"));
    assert!(err(r#""5""#).contains("unit"));
    assert!(err("5").contains("a duration"));
}

#[test]
fn serializes_tagged_and_round_trips() {
    for (dist, json) in [
        (LatencyDist::Fixed(ms(2000)), r#"{"fixed":"2s"}"#),
        (
            LatencyDist::Uniform {
                min: ms(1),
                max: ms(9),
            },
            r#"{"uniform":["1ms","9ms"]}"#,
        ),
        (
            LatencyDist::LogNormal {
                p50: ms(5),
                p99: ms(40),
            },
            r#"{"lognormal":{"p50":"5ms","p99":"40ms"}}"#,
        ),
    ] {
        assert_eq!(serde_json::to_string(&dist).expect("serializes"), json);
        assert_eq!(
            serde_json::from_str::<LatencyDist>(json).expect("parses"),
            dist
        );
    }
}
