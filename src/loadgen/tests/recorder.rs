//! The windowed recorder: windows by intended time, keys, flags, percentiles, bounded memory.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::loadgen::flags::{FlagSet, ResponseFlag};
use crate::loadgen::recorder::{Observation, Observed, SeriesKey, WindowedRecorder};
use crate::loadgen::sample::{Outcome, ResponseInfo, Sample, SampleSink, TransportErrorKind};

const SEC: Duration = Duration::from_secs(1);

fn recorder() -> WindowedRecorder {
    WindowedRecorder::try_new(SEC).expect("recorder")
}

fn key(load: u16, backend: Option<u32>) -> SeriesKey {
    SeriesKey {
        load,
        route: None,
        backend,
        replica: None,
    }
}

fn ok(intended_ms: u64, latency_ms: u64) -> Observation {
    Observation {
        intended: Duration::from_millis(intended_ms),
        latency: Some(Duration::from_millis(latency_ms)),
        observed: Observed::Response {
            status: 200,
            flags: FlagSet::EMPTY,
        },
    }
}

fn all(_: &SeriesKey) -> bool {
    true
}

#[test]
fn windows_are_chosen_by_intended_time() {
    let r = recorder();
    let k = key(0, None);
    r.record_observation(k, ok(999, 5000)); // window 0, even though it finished at ~6s
    r.record_observation(k, ok(1000, 1)); // window 1
    r.record_observation(k, ok(2500, 1)); // window 2
    assert_eq!(r.aggregate(all, Duration::ZERO, SEC).requests, 1);
    assert_eq!(r.aggregate(all, SEC, 2 * SEC).requests, 1);
    // [0.5s, 2.1s) overlaps windows 0, 1 and 2.
    let agg = r.aggregate(all, Duration::from_millis(500), Duration::from_millis(2100));
    assert_eq!(agg.requests, 3);
    let max = agg.max();
    assert!(
        max >= Duration::from_secs(5) && max < Duration::from_millis(5005),
        "{max:?}"
    );
    assert_eq!(r.aggregate(all, 3 * SEC, 10 * SEC).requests, 0);
}

#[test]
fn keys_statuses_flags_and_errors_are_counted_apart() {
    let r = recorder();
    let payments = r.backends().intern("payments");
    let catalog = r.backends().intern("catalog");
    assert_eq!(r.backends().intern("payments"), payments);
    let mut uo = FlagSet::EMPTY;
    uo.insert(ResponseFlag::UpstreamOverflow);
    for i in 0..10 {
        r.record_observation(key(0, Some(catalog)), ok(i * 10, 2));
    }
    for i in 0..4 {
        let obs = Observation {
            observed: Observed::Response {
                status: 503,
                flags: uo,
            },
            ..ok(i * 10, 1)
        };
        r.record_observation(key(0, Some(payments)), obs);
    }
    let timeout = Observation {
        observed: Observed::TransportError(TransportErrorKind::Timeout),
        ..ok(50, 30)
    };
    r.record_observation(key(1, None), timeout);
    let shed = Observation {
        latency: None,
        observed: Observed::ClientOverload,
        ..ok(60, 0)
    };
    r.record_observation(key(1, None), shed);

    let whole = r.aggregate(all, Duration::ZERO, 10 * SEC);
    assert_eq!(whole.requests, 16);
    assert_eq!(whole.status_count(200), 10);
    assert_eq!(whole.status_class_count(5), 4);
    assert_eq!(whole.flag_count(ResponseFlag::UpstreamOverflow), 4);
    assert_eq!(
        whole.transport_errors.get(&TransportErrorKind::Timeout),
        Some(&1)
    );
    assert_eq!(whole.client_overloads, 1);
    assert_eq!(whole.histogram.len(), 15, "a shed request has no latency");
    assert!((whole.success_rate() - 10.0 / 16.0).abs() < 1e-9);

    let only_payments = r.aggregate(|k| k.backend == Some(payments), Duration::ZERO, 10 * SEC);
    assert_eq!(only_payments.requests, 4);
    assert_eq!(only_payments.success_rate(), 0.0);
    let load1 = r.aggregate(|k| k.load == 1, Duration::ZERO, 10 * SEC);
    assert_eq!((load1.requests, load1.transport_error_count()), (2, 1));
    let p50 = load1.p50();
    assert!(
        p50 >= Duration::from_millis(30) && p50 < Duration::from_micros(30_032),
        "{p50:?}"
    );
}

#[test]
fn percentiles_match_a_known_distribution() {
    let r = recorder();
    // Latencies 1..=1000 ms, uniformly, spread over 10 windows.
    for i in 1..=1000u64 {
        r.record_observation(key(0, None), ok(i * 10, i));
    }
    let agg = r.aggregate(all, Duration::ZERO, 20 * SEC);
    let within = |d: Duration, ms: f64| {
        let got = d.as_secs_f64() * 1000.0;
        assert!((got - ms).abs() <= ms * 0.001 + 0.001, "{got}ms vs {ms}ms");
    };
    within(agg.p50(), 500.0);
    within(agg.p90(), 900.0);
    within(agg.p99(), 990.0);
    within(agg.p999(), 999.0);
    within(agg.max(), 1000.0);
    within(agg.mean(), 500.5);
}

#[test]
fn memory_stays_one_compact_entry_per_window_and_key() {
    let r = recorder();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Ten minutes of 1s windows, 50 requests each, two keys.
    for w in 0..600u64 {
        for _ in 0..50 {
            let k = key(0, Some(rng.random_range(0..2)));
            r.record_observation(
                k,
                ok(
                    w * 1000 + rng.random_range(0..1000),
                    rng.random_range(1..200),
                ),
            );
        }
    }
    let (live, closed) = r.entry_counts();
    assert!(live <= 4, "only the newest windows stay dense, got {live}");
    assert!((2 * 598..=2 * 600).contains(&closed), "{closed}");
    assert_eq!(
        r.aggregate(all, Duration::ZERO, 600 * SEC).requests,
        600 * 50
    );
    r.flush();
    assert_eq!(r.entry_counts(), (0, 2 * 600));
    // ~25 samples per entry: a few hundred bytes each, not a dense 188 KB histogram.
    let per_entry = r.compacted_bytes() / (2 * 600);
    assert!(per_entry < 600, "{per_entry} bytes per (window, key)");
    assert_eq!(
        r.aggregate(all, Duration::ZERO, 600 * SEC).requests,
        600 * 50
    );
}

#[test]
fn late_samples_for_compacted_windows_are_merged_not_lost() {
    let r = recorder();
    let k = key(0, None);
    r.record_observation(k, ok(100, 10));
    r.record_observation(k, ok(5000, 10)); // compacts window 0
    r.record_observation(k, ok(200, 20)); // late, for window 0
    r.record_observation(k, ok(9000, 10)); // compacts window 0 again (merged)
    let w0 = r.aggregate(all, Duration::ZERO, SEC);
    assert_eq!(w0.requests, 2);
    assert_eq!(w0.histogram.len(), 2);
    let max = w0.max();
    assert!(
        max >= Duration::from_millis(20) && max < Duration::from_micros(20_020),
        "{max:?}"
    );
    let timeline: Vec<_> = r.timeline(all, Duration::ZERO, 20 * SEC).collect();
    assert_eq!(timeline.len(), 10, "windows 0..=9, gaps included");
    assert_eq!(timeline[5].1.requests, 1);
    assert_eq!(timeline[6].1.requests, 0);
}

#[test]
fn concurrent_sinks_lose_nothing() {
    let r = Arc::new(recorder());
    let threads: Vec<_> = (0..4u16)
        .map(|t| {
            let r = Arc::clone(&r);
            std::thread::spawn(move || {
                for i in 0..5000u64 {
                    let sample = Sample {
                        load: t % 2,
                        request_id: i,
                        intended: Duration::from_millis(i),
                        sent: Duration::from_millis(i),
                        latency: Duration::from_micros(100 + i),
                        outcome: Outcome::Response(ResponseInfo {
                            status: if i % 10 == 0 { 503 } else { 200 },
                            backend: Some(Arc::from(if i % 2 == 0 { "a" } else { "b" })),
                            replica: Some((i % 3) as u16),
                            overloaded: i % 10 == 0,
                            ratelimited: false,
                        }),
                    };
                    r.record(sample);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("recording thread");
    }
    let agg = r.aggregate(all, Duration::ZERO, 10 * SEC);
    assert_eq!(agg.requests, 20_000);
    assert_eq!(agg.status_count(503), 2000);
    assert_eq!(agg.flag_count(ResponseFlag::UpstreamOverflow), 2000);
    let a = r.backends().get("a").expect("interned");
    let replica0_of_a = r.aggregate(
        |k| k.backend == Some(a) && k.replica == Some(0),
        Duration::ZERO,
        10 * SEC,
    );
    // i even and i % 3 == 0 → i % 6 == 0: 834 of 0..5000, per thread.
    assert_eq!(replica0_of_a.requests, 4 * 834);
}
