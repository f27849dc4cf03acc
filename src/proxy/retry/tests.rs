use super::*;
use crate::proxy::config::RetryBackoff;
use crate::proxy::rng::RngSource;

fn policy(triggers: &str, codes: &[u16], n: u32) -> RetryPolicy {
    RetryPolicy {
        num_retries: n,
        retry_on: RetryOn::parse(triggers).unwrap(),
        retriable_status_codes: codes.to_vec(),
        per_try_timeout: None,
        backoff: RetryBackoff::default(),
    }
}

fn resp(status: u16, headers: &ResponseHeaders) -> AttemptResult<'_> {
    AttemptResult::Response { status, headers }
}

#[test]
fn status_triggers() {
    let h = ResponseHeaders::default();
    let p = policy("5xx", &[], 1);
    assert!(is_retriable(&p, resp(500, &h)));
    assert!(!is_retriable(&p, resp(404, &h)));
    let p = policy("gateway-error", &[], 1);
    assert!(is_retriable(&p, resp(503, &h)));
    assert!(!is_retriable(&p, resp(500, &h)));
    let p = policy("retriable-4xx", &[], 1);
    assert!(is_retriable(&p, resp(409, &h)));
    assert!(!is_retriable(&p, resp(429, &h)));
    let p = policy("retriable-status-codes", &[500], 1);
    assert!(is_retriable(&p, resp(500, &h)));
    assert!(!is_retriable(&p, resp(503, &h)));
    // Codes without the trigger do nothing.
    let p = policy("connect-failure", &[500], 1);
    assert!(!is_retriable(&p, resp(500, &h)));
}

#[test]
fn overloaded_responses_are_not_retried() {
    let mut h = ResponseHeaders::default();
    h.insert(OVERLOADED_HEADER, "true".parse().unwrap());
    assert!(!is_retriable(&policy("5xx", &[], 1), resp(503, &h)));
}

#[test]
fn failure_triggers() {
    let cf = AttemptResult::Failure(ProxyError::ConnectFailure);
    let reset = AttemptResult::Failure(ProxyError::Reset {
        before_request: false,
    });
    let early = AttemptResult::Failure(ProxyError::Reset {
        before_request: true,
    });
    let per_try = AttemptResult::Failure(ProxyError::PerTryTimeout);
    let overflow = AttemptResult::Failure(ProxyError::Overflow);
    let p = policy("connect-failure", &[], 1);
    assert!(is_retriable(&p, cf));
    assert!(!is_retriable(&p, reset));
    assert!(!is_retriable(&p, per_try));
    let p = policy("reset-before-request", &[], 1);
    assert!(is_retriable(&p, early));
    assert!(!is_retriable(&p, reset));
    let p = policy("5xx", &[], 1);
    assert!(is_retriable(&p, cf) && is_retriable(&p, reset) && is_retriable(&p, per_try));
    assert!(!is_retriable(&p, overflow));
    assert!(!is_retriable(
        &p,
        AttemptResult::Failure(ProxyError::RouteTimeout)
    ));
}

#[test]
fn grpc_status_in_headers() {
    let mut h = ResponseHeaders::default();
    h.insert(crate::proxy::grpc::GRPC_STATUS, "14".parse().unwrap());
    assert!(is_retriable(&policy("unavailable", &[], 1), resp(200, &h)));
    assert!(!is_retriable(&policy("internal", &[], 1), resp(200, &h)));
}

#[test]
fn limit_is_counted() {
    let h = ResponseHeaders::default();
    let p = policy("5xx", &[], 2);
    let rng = RngSource::new(3).stream("retry");
    let mut s = RetryState::new(&p);
    assert!(matches!(
        s.decide(resp(500, &h), &rng),
        RetryDecision::Retry(_)
    ));
    assert!(matches!(
        s.decide(resp(500, &h), &rng),
        RetryDecision::Retry(_)
    ));
    assert_eq!(s.decide(resp(500, &h), &rng), RetryDecision::LimitExceeded);
    assert_eq!(s.retries_done(), 2);
    assert_eq!(s.decide(resp(200, &h), &rng), RetryDecision::Final);
}

#[test]
fn backoff_is_full_jitter_exponential_and_capped() {
    let p = policy("5xx", &[], 10);
    let rng = RngSource::new(9).stream("retry");
    for _ in 0..200 {
        assert!(backoff(&p, 1, &rng) < Duration::from_millis(25));
        assert!(backoff(&p, 2, &rng) < Duration::from_millis(75));
        assert!(backoff(&p, 8, &rng) <= Duration::from_millis(250));
    }
    let max_seen = (0..200).map(|_| backoff(&p, 8, &rng)).max().unwrap();
    assert_eq!(
        max_seen,
        Duration::from_millis(250),
        "large draws hit the cap"
    );
}
