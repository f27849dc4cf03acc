use std::num::NonZeroU32;
use std::time::Duration;

use super::*;
use crate::proxy::config::{Endpoint, FailurePercentage, SuccessRate};
use crate::proxy::rng::RngSource;

fn detector(
    n: usize,
    config: OutlierDetectionConfig,
) -> (Arc<HostSet>, Arc<ClusterStats>, OutlierDetector) {
    let eps: Vec<Endpoint> = (0..n)
        .map(|i| Endpoint::new(([127, 0, 0, 1], 2000 + i as u16).into(), "default/b", i))
        .collect();
    let hosts = Arc::new(HostSet::new(&eps));
    let stats = Arc::new(ClusterStats::default());
    let d = OutlierDetector::new(
        config,
        Arc::clone(&hosts),
        Arc::clone(&stats),
        RngSource::new(1).stream("outlier"),
    );
    (hosts, stats, d)
}

fn cfg(consecutive_5xx: u32, max_pct: u32) -> OutlierDetectionConfig {
    OutlierDetectionConfig {
        consecutive_5xx: NonZeroU32::new(consecutive_5xx),
        max_ejection_percent: Percent::try_new(max_pct, "t").unwrap(),
        interval: Duration::from_secs(1),
        base_ejection_time: Duration::from_secs(10),
        ..OutlierDetectionConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn consecutive_5xx_ejects_at_threshold_and_success_resets() {
    let (hosts, stats, d) = detector(2, cfg(3, 100));
    let h = &hosts.hosts()[0];
    d.report(h, Outcome::Response(500));
    d.report(h, Outcome::Response(500));
    d.report(h, Outcome::Response(200));
    d.report(h, Outcome::Response(500));
    d.report(h, Outcome::Response(500));
    assert!(h.is_healthy());
    d.report(h, Outcome::Response(503));
    assert!(h.has_flag(HealthFlag::FailedOutlierCheck));
    assert_eq!(&*hosts.healthy(), &[1]);
    assert_eq!(stats.ejections_enforced_total.get(), 1);
    assert_eq!(stats.ejections_enforced_consecutive_5xx.get(), 1);
    assert_eq!(stats.ejections_active.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn default_ten_percent_blocks_ejection_of_small_clusters() {
    let (hosts, stats, d) = detector(4, cfg(1, 10));
    d.report(&hosts.hosts()[0], Outcome::Response(500));
    assert!(hosts.hosts()[0].is_healthy());
    assert_eq!(stats.ejections_overflow.get(), 1);
    assert_eq!(stats.ejections_detected_consecutive_5xx.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn always_eject_one_host_overrides_the_percentage() {
    let mut c = cfg(1, 10);
    c.always_eject_one_host = true;
    let (hosts, stats, d) = detector(4, c);
    d.report(&hosts.hosts()[0], Outcome::Response(500));
    d.report(&hosts.hosts()[1], Outcome::Response(500));
    assert!(!hosts.hosts()[0].is_healthy());
    assert!(hosts.hosts()[1].is_healthy());
    assert_eq!(stats.ejections_active.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn never_more_than_max_ejection_percent() {
    // Property: whatever the failure sequence, ejected hosts stay within the limit.
    for max in [20u32, 50, 75] {
        let (hosts, _, d) = detector(8, cfg(1, max));
        for round in 0..40usize {
            let h = &hosts.hosts()[(round * 5) % 8];
            d.report(h, Outcome::Response(500 + (round % 4) as u16));
            let ejected = 8 - hosts.healthy().len() as u64;
            assert!(
                100 * ejected <= u64::from(max) * 8,
                "max {max}: {ejected} ejected"
            );
            if round % 7 == 0 {
                tokio::time::advance(Duration::from_secs(3)).await;
                d.on_interval();
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn ejection_time_grows_with_count_and_decays() {
    let (hosts, stats, d) = detector(2, cfg(1, 100));
    let h = &hosts.hosts()[0];
    d.report(h, Outcome::Response(500));
    assert!(!h.is_healthy());
    tokio::time::advance(Duration::from_secs(9)).await;
    d.on_interval();
    assert!(!h.is_healthy(), "still ejected before base time");
    tokio::time::advance(Duration::from_secs(1)).await;
    d.on_interval();
    assert!(h.is_healthy(), "back after 1 × base");
    assert_eq!(stats.ejections_active.get(), 0);

    // Second ejection right away lasts 2 × base.
    d.report(h, Outcome::Response(500));
    tokio::time::advance(Duration::from_secs(10)).await;
    d.on_interval();
    assert!(!h.is_healthy());
    tokio::time::advance(Duration::from_secs(10)).await;
    d.on_interval();
    assert!(h.is_healthy());

    // Two healthy intervals decay the multiplier back to 0, so the next ejection is 1 × base.
    d.on_interval();
    d.on_interval();
    d.report(h, Outcome::Response(500));
    tokio::time::advance(Duration::from_secs(10)).await;
    d.on_interval();
    assert!(h.is_healthy());
}

#[tokio::test(start_paused = true)]
async fn ejection_time_is_capped() {
    let mut c = cfg(1, 100);
    c.max_ejection_time = Duration::from_secs(15);
    let (hosts, _, d) = detector(2, c);
    let h = &hosts.hosts()[0];
    for _ in 0..3 {
        d.report(h, Outcome::Response(500));
        tokio::time::advance(Duration::from_secs(15)).await;
        d.on_interval();
        assert!(h.is_healthy());
    }
}

#[tokio::test(start_paused = true)]
async fn gateway_failures_only_when_configured() {
    let mut c = cfg(0, 100);
    c.consecutive_5xx = None;
    let (hosts, _, d) = detector(2, c.clone());
    d.report(&hosts.hosts()[0], Outcome::Response(502));
    d.report(&hosts.hosts()[0], Outcome::Response(502));
    assert!(hosts.hosts()[0].is_healthy());

    c.consecutive_gateway_failure = NonZeroU32::new(2);
    let (hosts, stats, d) = detector(2, c);
    d.report(&hosts.hosts()[0], Outcome::Response(502));
    d.report(&hosts.hosts()[0], Outcome::Response(500));
    d.report(&hosts.hosts()[0], Outcome::Response(502));
    assert!(
        hosts.hosts()[0].is_healthy(),
        "500 resets the gateway streak"
    );
    d.report(&hosts.hosts()[0], Outcome::LocalFailure(503));
    assert!(!hosts.hosts()[0].is_healthy());
    assert_eq!(
        stats.ejections_enforced_consecutive_gateway_failure.get(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn split_mode_counts_local_origin_separately() {
    let mut c = cfg(2, 100);
    c.split_external_local_origin_errors = true;
    c.consecutive_local_origin_failure = NonZeroU32::new(3);
    let (hosts, stats, d) = detector(2, c);
    let h = &hosts.hosts()[0];
    d.report(h, Outcome::LocalFailure(503));
    d.report(h, Outcome::LocalFailure(503));
    assert!(h.is_healthy(), "local failures do not feed consecutive_5xx");
    d.report(h, Outcome::Response(200));
    d.report(h, Outcome::LocalFailure(503));
    d.report(h, Outcome::LocalFailure(503));
    assert!(h.is_healthy());
    d.report(h, Outcome::LocalFailure(503));
    assert!(!h.is_healthy());
    assert_eq!(
        stats
            .ejections_enforced_consecutive_local_origin_failure
            .get(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn unsplit_local_failures_count_as_5xx() {
    let (hosts, _, d) = detector(2, cfg(2, 100));
    let h = &hosts.hosts()[0];
    d.report(h, Outcome::LocalFailure(503));
    d.report(h, Outcome::LocalFailure(504));
    assert!(!h.is_healthy());
}

#[tokio::test(start_paused = true)]
async fn failure_percentage_needs_volume_and_hosts() {
    let mut c = cfg(0, 100);
    c.consecutive_5xx = None;
    c.failure_percentage = Some(FailurePercentage {
        request_volume: 10,
        minimum_hosts: 3,
        ..FailurePercentage::with_threshold(Percent::try_new(50, "t").unwrap())
    });
    let (hosts, stats, d) = detector(4, c);
    let feed = |i: usize, ok: u32, bad: u32| {
        for _ in 0..ok {
            d.report(&hosts.hosts()[i], Outcome::Response(200));
        }
        for _ in 0..bad {
            d.report(&hosts.hosts()[i], Outcome::Response(500));
        }
    };
    // Only two hosts have volume: nothing happens.
    feed(0, 2, 10);
    feed(1, 10, 0);
    d.on_interval();
    assert_eq!(hosts.healthy().len(), 4);
    // Next interval: three hosts with volume, host 0 at 80 % failures.
    feed(0, 2, 8);
    feed(1, 10, 0);
    feed(2, 9, 1);
    d.on_interval();
    assert!(!hosts.hosts()[0].is_healthy());
    assert_eq!(hosts.healthy().len(), 3);
    assert_eq!(stats.ejections_enforced_failure_percentage.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn uneject_returns_host_at_once() {
    let (hosts, stats, d) = detector(2, cfg(1, 100));
    d.report(&hosts.hosts()[1], Outcome::Response(500));
    assert!(d.ejected_since(1).is_some());
    d.uneject(1);
    assert!(hosts.hosts()[1].is_healthy());
    assert_eq!(stats.ejections_active.get(), 0);
    assert!(d.ejected_since(1).is_none());
}

#[tokio::test(start_paused = true)]
async fn success_rate_ejects_the_outlier_among_enough_hosts() {
    let mut c = cfg(0, 100);
    c.consecutive_5xx = None;
    c.success_rate = Some(SuccessRate {
        request_volume: 20,
        ..SuccessRate::default()
    });
    let (hosts, stats, d) = detector(6, c);
    let feed = |i: usize, ok: u32, bad: u32| {
        for _ in 0..ok {
            d.report(&hosts.hosts()[i], Outcome::Response(200));
        }
        for _ in 0..bad {
            d.report(&hosts.hosts()[i], Outcome::Response(503));
        }
    };
    for i in 0..5 {
        feed(i, 20, 0);
    }
    feed(5, 10, 10);
    d.on_interval();
    assert!(!hosts.hosts()[5].is_healthy());
    assert_eq!(hosts.healthy().len(), 5);
    assert_eq!(stats.ejections_enforced_success_rate.get(), 1);

    // Four hosts with volume are not enough.
    let (hosts, _, d) = detector(6, {
        let mut c = cfg(0, 100);
        c.consecutive_5xx = None;
        c.success_rate = Some(SuccessRate {
            request_volume: 20,
            ..SuccessRate::default()
        });
        c
    });
    for i in 0..3 {
        for _ in 0..20 {
            d.report(&hosts.hosts()[i], Outcome::Response(200));
        }
    }
    for _ in 0..20 {
        d.report(&hosts.hosts()[3], Outcome::Response(500));
    }
    d.on_interval();
    assert_eq!(hosts.healthy().len(), 6);
}

#[tokio::test(start_paused = true)]
async fn ejections_stay_within_the_limit_for_random_histories() {
    use rand::{Rng, SeedableRng};
    // Property: for any history of results and timer ticks, the number of ejected hosts never
    // exceeds max_ejection_percent (or one host with always_eject_one_host), and the
    // ejections_active gauge always equals the number of ejected hosts.
    for seed in 0..60u64 {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n = r.random_range(1..=12usize);
        let max = r.random_range(0..=100u32);
        let mut c = cfg(r.random_range(1..=3), max);
        c.always_eject_one_host = r.random_bool(0.3);
        c.consecutive_gateway_failure = NonZeroU32::new(r.random_range(0..=2));
        let always = c.always_eject_one_host;
        let (hosts, stats, d) = detector(n, c);
        for _ in 0..300 {
            match r.random_range(0..10) {
                0 => {
                    tokio::time::advance(Duration::from_millis(r.random_range(0..20_000))).await;
                    d.on_interval();
                }
                k => {
                    let h = &hosts.hosts()[r.random_range(0..n)];
                    let outcome = match k {
                        1..=3 => Outcome::Response(200),
                        4..=7 => Outcome::Response(500 + r.random_range(0..5u16)),
                        _ => Outcome::LocalFailure(503),
                    };
                    d.report(h, outcome);
                }
            }
            let ejected = hosts
                .hosts()
                .iter()
                .filter(|h| h.has_flag(HealthFlag::FailedOutlierCheck))
                .count() as u64;
            assert!(
                100 * ejected <= u64::from(max) * n as u64 || (always && ejected == 1),
                "seed {seed}: {ejected}/{n} ejected with max {max}%"
            );
            assert_eq!(stats.ejections_active.get(), ejected, "seed {seed}");
        }
    }
}
