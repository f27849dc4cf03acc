use std::num::NonZeroU32;

use super::*;
use crate::proxy::cluster::host_set::HealthFlag;
use crate::proxy::config::Endpoint;
use crate::proxy::rng::RngSource;

fn cluster(weights: &[u32], lb: LbPolicy) -> (ClusterConfig, HostSet) {
    let eps: Vec<Endpoint> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| Endpoint {
            weight: NonZeroU32::new(*w).unwrap(),
            ..Endpoint::new(([127, 0, 0, 1], 3000 + i as u16).into(), "default/b", i)
        })
        .collect();
    let mut cfg = ClusterConfig::new("c", eps.clone());
    cfg.lb = lb;
    (cfg, HostSet::new(&eps))
}

fn counts(lb: &LoadBalancer, hosts: &HostSet, n: usize) -> Vec<usize> {
    let stats = ClusterStats::default();
    let mut c = vec![0; hosts.hosts().len()];
    for _ in 0..n {
        let i = lb.choose(hosts, &stats, PickContext::default()).unwrap();
        c[i] += 1;
    }
    c
}

fn rng() -> SharedRng {
    RngSource::new(42).stream("lb")
}

#[test]
fn round_robin_spreads_evenly() {
    let (cfg, hosts) = cluster(&[1, 1, 1, 1], LbPolicy::RoundRobin);
    let lb = LoadBalancer::new(&cfg, rng());
    assert_eq!(counts(&lb, &hosts, 100), vec![25, 25, 25, 25]);
}

#[test]
fn round_robin_follows_weights_smoothly() {
    let (cfg, hosts) = cluster(&[3, 1], LbPolicy::RoundRobin);
    let lb = LoadBalancer::new(&cfg, rng());
    let stats = ClusterStats::default();
    let seq: Vec<usize> = (0..8)
        .map(|_| lb.choose(&hosts, &stats, PickContext::default()).unwrap())
        .collect();
    assert_eq!(seq.iter().filter(|&&i| i == 0).count(), 6);
    // Never more than three picks of host 0 in a row.
    assert!(seq.windows(4).all(|w| w.contains(&1)));
}

#[test]
fn unhealthy_hosts_are_skipped() {
    let (cfg, hosts) = cluster(&[1, 1, 1, 1], LbPolicy::RoundRobin);
    hosts.set_health_flag(2, HealthFlag::FailedOutlierCheck, true);
    let lb = LoadBalancer::new(&cfg, rng());
    assert_eq!(counts(&lb, &hosts, 99), vec![33, 33, 0, 33]);
}

#[test]
fn panic_mode_uses_all_hosts_below_threshold() {
    let (cfg, hosts) = cluster(&[1, 1, 1, 1], LbPolicy::RoundRobin);
    for i in 0..3 {
        hosts.set_health_flag(i, HealthFlag::FailedActiveHc, true);
    }
    let lb = LoadBalancer::new(&cfg, rng());
    let stats = ClusterStats::default();
    // 25 % healthy < 50 %: panic, every host gets traffic.
    let mut seen = [false; 4];
    for _ in 0..8 {
        seen[lb.choose(&hosts, &stats, PickContext::default()).unwrap()] = true;
    }
    assert_eq!(seen, [true; 4]);
    assert_eq!(stats.lb_healthy_panic.get(), 8);
}

#[test]
fn no_healthy_host_without_panic_is_none() {
    let (mut cfg, hosts) = cluster(&[1, 1], LbPolicy::Random);
    cfg.panic_threshold = Percent::try_new(0, "t").unwrap();
    hosts.set_health_flag(0, HealthFlag::FailedActiveHc, true);
    hosts.set_health_flag(1, HealthFlag::FailedOutlierCheck, true);
    let lb = LoadBalancer::new(&cfg, rng());
    assert_eq!(
        lb.choose(&hosts, &ClusterStats::default(), PickContext::default()),
        None
    );
    // With the default threshold, zero healthy hosts means panic: still a pick.
    cfg.panic_threshold = Percent::try_new(50, "t").unwrap();
    let lb = LoadBalancer::new(&cfg, rng());
    assert!(
        lb.choose(&hosts, &ClusterStats::default(), PickContext::default())
            .is_some()
    );
}

#[test]
fn empty_cluster_is_none() {
    let (cfg, hosts) = cluster(&[], LbPolicy::RoundRobin);
    let lb = LoadBalancer::new(&cfg, rng());
    assert_eq!(
        lb.choose(&hosts, &ClusterStats::default(), PickContext::default()),
        None
    );
}

#[test]
fn least_request_prefers_idle_hosts() {
    let (cfg, hosts) = cluster(&[1, 1], LbPolicy::least_request(2).unwrap());
    let busy: Vec<_> = (0..5).map(|_| hosts.hosts()[0].start_request()).collect();
    let lb = LoadBalancer::new(&cfg, rng());
    let c = counts(&lb, &hosts, 200);
    // Host 0 wins only when both draws hit it (about 1/4 of the time).
    assert!(c[1] > 130, "{c:?}");
    drop(busy);
}

#[test]
fn weighted_least_request_divides_by_active() {
    let (cfg, hosts) = cluster(&[2, 1], LbPolicy::least_request(2).unwrap());
    let lb = LoadBalancer::new(&cfg, rng());
    assert_eq!(counts(&lb, &hosts, 30), vec![20, 10]);
    // Host 0 with 3 active: 2/4 = 0.5 against 1/1.
    let busy: Vec<_> = (0..3).map(|_| hosts.hosts()[0].start_request()).collect();
    assert_eq!(counts(&lb, &hosts, 30), vec![10, 20]);
    drop(busy);
}

#[test]
fn random_is_roughly_uniform_and_seeded() {
    let (cfg, hosts) = cluster(&[1, 1, 1], LbPolicy::Random);
    let a = counts(&LoadBalancer::new(&cfg, rng()), &hosts, 300);
    let b = counts(&LoadBalancer::new(&cfg, rng()), &hosts, 300);
    assert_eq!(a, b);
    assert!(a.iter().all(|&n| (70..=130).contains(&n)), "{a:?}");
}

#[test]
fn previous_hosts_are_avoided_when_possible() {
    let (cfg, hosts) = cluster(&[1, 1, 1], LbPolicy::Random);
    let lb = LoadBalancer::new(&cfg, rng());
    let stats = ClusterStats::default();
    let ctx = PickContext {
        previous_hosts: &[0, 1],
        hash: None,
    };
    let hits = (0..100)
        .filter(|_| lb.choose(&hosts, &stats, ctx) == Some(2))
        .count();
    // Each pick draws up to six times; missing host 2 every time has odds (2/3)^6 ≈ 9 %.
    assert!(hits > 80, "{hits}");
    // A single host is reused when nothing else exists.
    let (cfg1, one) = cluster(&[1], LbPolicy::Random);
    let lb1 = LoadBalancer::new(&cfg1, rng());
    assert_eq!(
        lb1.choose(
            &one,
            &stats,
            PickContext {
                previous_hosts: &[0],
                hash: None,
            }
        ),
        Some(0)
    );
}

#[test]
fn slow_start_factor_is_linear_from_ten_percent() {
    let w = Duration::from_secs(100);
    assert_eq!(slow_start_factor(Duration::ZERO, w), 0.1);
    assert_eq!(slow_start_factor(Duration::from_secs(50), w), 0.5);
    assert_eq!(slow_start_factor(Duration::from_secs(100), w), 1.0);
    assert_eq!(
        slow_start_factor(Duration::from_secs(5), Duration::from_secs(10)),
        0.5
    );
}

#[tokio::test(start_paused = true)]
async fn slow_start_ramps_a_returning_host() {
    let (mut cfg, hosts) = cluster(&[1, 1], LbPolicy::RoundRobin);
    cfg.slow_start = Some(SlowStart::try_new(Duration::from_secs(10)).unwrap());
    let lb = LoadBalancer::new(&cfg, rng());
    tokio::time::advance(Duration::from_secs(20)).await;
    hosts.set_health_flag(1, HealthFlag::FailedActiveHc, true);
    hosts.set_health_flag(1, HealthFlag::FailedActiveHc, false);
    // Host 1 restarts at 10 % weight: about 1 pick in 11.
    let c = counts(&lb, &hosts, 110);
    assert_eq!(c, vec![100, 10]);
    tokio::time::advance(Duration::from_secs(10)).await;
    let c = counts(&lb, &hosts, 100);
    assert_eq!(c, vec![50, 50]);
}

fn prioritized(priorities: &[u32]) -> (ClusterConfig, HostSet) {
    let eps: Vec<Endpoint> = priorities
        .iter()
        .enumerate()
        .map(|(i, p)| Endpoint {
            priority: *p,
            ..Endpoint::new(([127, 0, 0, 1], 4000 + i as u16).into(), "default/b", i)
        })
        .collect();
    let mut cfg = ClusterConfig::new("c", eps.clone());
    cfg.lb = LbPolicy::RoundRobin;
    (cfg, HostSet::new(&eps))
}

#[test]
fn lower_priority_gets_nothing_while_the_first_is_healthy() {
    let (cfg, hosts) = prioritized(&[0, 1]);
    let lb = LoadBalancer::new(&cfg, rng());
    assert_eq!(counts(&lb, &hosts, 50), vec![50, 0]);
    hosts.set_health_flag(0, HealthFlag::FailedOutlierCheck, true);
    assert_eq!(counts(&lb, &hosts, 50), vec![0, 50]);
}

#[test]
fn degraded_priority_spills_over_by_its_missing_health() {
    // Three P0 hosts with one down: health min(100, 1.4 × 66 %) = 93 → 7 % to P1.
    let (cfg, hosts) = prioritized(&[0, 0, 0, 1]);
    hosts.set_health_flag(0, HealthFlag::FailedActiveHc, true);
    let lb = LoadBalancer::new(&cfg, rng());
    let c = counts(&lb, &hosts, 1000);
    assert_eq!(c[0], 0);
    assert!((30..=110).contains(&c[3]), "{c:?}");
}

#[test]
fn no_healthy_level_panics_on_the_first() {
    let (cfg, hosts) = prioritized(&[0, 1]);
    hosts.set_health_flag(0, HealthFlag::FailedActiveHc, true);
    hosts.set_health_flag(1, HealthFlag::FailedActiveHc, true);
    let lb = LoadBalancer::new(&cfg, rng());
    assert_eq!(counts(&lb, &hosts, 10), vec![10, 0]);
}

#[test]
fn endpoint_override_prefers_named_healthy_hosts() {
    let (_, hosts) = cluster(&[1, 1, 1], LbPolicy::Random);
    let name = http::HeaderName::from_static("x-gateway-destination-endpoint");
    let mut req = http::HeaderMap::new();
    req.insert(
        &name,
        "10.0.0.1:80, 127.0.0.1:3002,127.0.0.1:3001"
            .parse()
            .unwrap(),
    );
    let names = [name];
    assert_eq!(override_host(&names, &req, &hosts, &[]), Some(2));
    assert_eq!(override_host(&names, &req, &hosts, &[2]), Some(1));
    hosts.set_health_flag(2, HealthFlag::FailedOutlierCheck, true);
    assert_eq!(override_host(&names, &req, &hosts, &[]), Some(1));
    assert_eq!(
        override_host(&names, &http::HeaderMap::new(), &hosts, &[]),
        None
    );
}

#[test]
fn consistent_hash_is_sticky_and_follows_the_usable_set() {
    let (cfg, hosts) = cluster(&[1, 1, 1], LbPolicy::ConsistentHash { table_size: 65_537 });
    let lb = LoadBalancer::new(&cfg, rng());
    let stats = ClusterStats::default();
    let pick = |h: u64| {
        lb.choose(
            &hosts,
            &stats,
            PickContext {
                previous_hosts: &[],
                hash: Some(h),
            },
        )
    };
    let first: Vec<_> = (0..64u64).map(|h| pick(h * 7919)).collect();
    let again: Vec<_> = (0..64u64).map(|h| pick(h * 7919)).collect();
    assert_eq!(first, again);
    let distinct: std::collections::HashSet<_> = first.iter().collect();
    assert_eq!(distinct.len(), 3, "64 hashes should reach all 3 hosts");
    // Host 1 leaves the usable set: its keys move, the others stay.
    hosts.set_health_flag(
        1,
        crate::proxy::cluster::host_set::HealthFlag::FailedActiveHc,
        true,
    );
    let after: Vec<_> = (0..64u64).map(|h| pick(h * 7919)).collect();
    for (b, a) in first.iter().zip(&after) {
        assert_ne!(*a, Some(1));
        if *b != Some(1) {
            assert_eq!(a, b);
        }
    }
    // No hash input: a random pick among usable hosts.
    let none = lb.choose(&hosts, &stats, PickContext::default());
    assert!(matches!(none, Some(0 | 2)));
}
