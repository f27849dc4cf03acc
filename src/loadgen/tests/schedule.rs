//! Schedule math: exact intended times, counts equal to the integral of the rate.

use std::time::Duration;

use crate::loadgen::schedule::{Rate, Schedule, ScheduleError, Stage};

fn rate(r: f64) -> Rate {
    Rate::try_new(r).expect("valid rate")
}

fn stage(secs: u64, r: f64) -> Stage {
    Stage {
        duration: Duration::from_secs(secs),
        rate: rate(r),
    }
}

fn assert_close(actual: Duration, expected_secs: f64) {
    let diff = (actual.as_secs_f64() - expected_secs).abs();
    assert!(
        diff < 1e-6,
        "{actual:?} is not {expected_secs}s (off by {diff})"
    );
}

#[test]
fn constant_rate_times_are_exact_with_no_drift() {
    let s = Schedule::constant(rate(300.0)).expect("schedule");
    assert_eq!(s.intended(0), Some(Duration::ZERO));
    assert_eq!(s.intended(3), Some(Duration::from_millis(10)));
    assert_eq!(s.intended(1), Some(Duration::from_nanos(3_333_333)));
    // After an hour of requests there is still no accumulated error.
    assert_eq!(s.intended(300 * 3600), Some(Duration::from_secs(3600)));
    assert_eq!(
        s.intended(300 * 3600 + 1),
        Some(Duration::from_nanos(3_600_003_333_333))
    );
    assert_eq!(s.length(), None);
}

#[test]
fn constant_rate_count_is_the_integral() {
    let s = Schedule::constant(rate(100.0)).expect("schedule");
    assert_eq!(s.count_before(Duration::ZERO), 0);
    // Requests 0..=99 leave at 0, 10ms, ..., 990ms; request 100 at exactly 1s is not before 1s.
    assert_eq!(s.count_before(Duration::from_secs(1)), 100);
    assert_eq!(s.count_before(Duration::from_millis(1001)), 101);
    assert_eq!(s.count_before(Duration::from_secs(20)), 2000);
    assert_eq!(s.expected_count(Duration::from_secs(20)), 2000.0);
    // Fractional rates: 2.5 req/s for 3s is 7.5, so 8 requests (0, 0.4, ..., 2.8s).
    let s = Schedule::constant(rate(2.5)).expect("schedule");
    assert_eq!(s.count_before(Duration::from_secs(3)), 8);
    assert_eq!(s.intended(7), Some(Duration::from_millis(2800)));
}

#[test]
fn count_before_agrees_with_intended_everywhere() {
    let schedules = [
        Schedule::constant(rate(7.0)).expect("constant"),
        Schedule::stages(rate(0.0), &[stage(3, 40.0), stage(2, 40.0), stage(4, 5.0)])
            .expect("ramp"),
    ];
    for s in &schedules {
        for ms in (0..9000).step_by(37) {
            let t = Duration::from_millis(ms);
            let n = s.count_before(t);
            if n > 0 {
                assert!(s.intended(n - 1).expect("inside") < t, "{s:?} at {t:?}");
            }
            assert!(s.intended(n).is_none_or(|at| at >= t), "{s:?} at {t:?}");
        }
    }
}

#[test]
fn ramp_from_zero_follows_the_integral() {
    // 0 → 100 req/s over 10s: N(t) = 5·t², so request i is due at sqrt(i/5) s.
    let s = Schedule::stages(rate(0.0), &[stage(10, 100.0)]).expect("ramp");
    assert_eq!(s.intended(0), Some(Duration::ZERO));
    assert_close(s.intended(5).expect("in ramp"), 1.0);
    assert_close(s.intended(20).expect("in ramp"), 2.0);
    assert_close(s.intended(499).expect("in ramp"), (499.0f64 / 5.0).sqrt());
    assert_eq!(s.intended(500), None, "the ramp ends after 500 requests");
    assert_eq!(s.count_before(Duration::from_secs(10)), 500);
    assert_eq!(s.count_before(Duration::from_secs(60)), 500);
    assert_eq!(s.length(), Some(Duration::from_secs(10)));
}

#[test]
fn stages_ramp_from_the_previous_rate() {
    // 100 req/s held 2s (from an initial 100), up to 300 over 2s, down to 0 over 1s.
    let s = Schedule::stages(
        rate(100.0),
        &[stage(2, 100.0), stage(2, 300.0), stage(1, 0.0)],
    )
    .expect("ramp");
    // Integral: 200 + (100+300)/2·2 = 400, + 300/2·1 = 150 → 750.
    assert_eq!(s.expected_count(Duration::from_secs(5)), 750.0);
    assert_eq!(s.count_before(Duration::from_secs(5)), 750);
    // Flat part: exactly 10ms apart.
    assert_close(s.intended(150).expect("flat"), 1.5);
    // Start of the second stage is request 200 at 2s; in it N = 200 + 100τ + 50τ².
    assert_close(s.intended(200).expect("stage 2"), 2.0);
    assert_close(s.intended(350).expect("stage 2"), 3.0);
    // Ramp down: N = 600 + 300τ − 150τ²; request 675 at τ = 1 − sqrt(0.5).
    assert_close(s.intended(675).expect("stage 3"), 4.0 + 1.0 - 0.5f64.sqrt());
    assert_eq!(s.intended(750), None);
    // Times never go backwards.
    let times: Vec<_> = (0..750).map(|i| s.intended(i).expect("inside")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn zero_rate_stage_is_a_pause() {
    let s = Schedule::stages(
        rate(10.0),
        &[stage(1, 10.0), stage(2, 0.0), stage(1, 0.0), stage(1, 10.0)],
    )
    .expect("ramp");
    // 10 + 10 (ramp down over 2s) + 0 + 5 (ramp up over 1s).
    assert_eq!(s.count_before(Duration::from_secs(5)), 25);
    let after_pause = s.intended(20).expect("last stage");
    assert!(after_pause >= Duration::from_secs(4), "{after_pause:?}");
}

#[test]
fn invalid_schedules_are_rejected() {
    assert_eq!(Rate::try_new(-1.0), Err(ScheduleError::InvalidRate(-1.0)));
    assert!(Rate::try_new(f64::NAN).is_err());
    assert!(Rate::try_new(1e9).is_err());
    assert_eq!(Schedule::constant(rate(0.0)), Err(ScheduleError::ZeroRate));
    assert_eq!(
        Schedule::stages(rate(5.0), &[]),
        Err(ScheduleError::NoStages)
    );
    assert_eq!(
        Schedule::stages(rate(0.0), &[stage(1, 5.0), stage(0, 5.0)]),
        Err(ScheduleError::ZeroStageDuration(1))
    );
    assert_eq!(
        Schedule::stages(rate(0.0), &[stage(3, 0.0)]),
        Err(ScheduleError::Empty)
    );
}
