//! Route-level timers (§d.6): which deadline ends a request, and with which local reply.
//!
//! All start when the downstream request is complete. Before the response headers, the route
//! timeout (504 `UT`), max stream duration (408 `DT`) and stream idle timeout (408 `SI`) race;
//! the earliest wins. Once the body streams, the route timeout and max stream duration keep
//! running as one deadline, and the idle timer restarts with every body frame.

use std::time::Duration;

use tokio::time::Instant;

use super::config::ForwardAction;
use super::error::ProxyError;

/// The timers of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteTimers {
    /// The deadline while waiting for response headers, and what it means.
    pub headers: Option<(Instant, ProxyError)>,
    /// The deadline while the response body streams.
    pub body: Option<(Instant, ProxyError)>,
    /// The stream idle timeout while the body streams.
    pub body_idle: Option<Duration>,
}

impl RouteTimers {
    /// Starts the timers of `action` at `now`.
    pub fn start(action: &ForwardAction, now: Instant) -> Self {
        let route = action.timeout.map(|t| (now + t, ProxyError::RouteTimeout));
        let stream = action
            .max_stream_duration
            .map(|t| (now + t, ProxyError::MaxStreamDuration));
        let idle = action
            .idle_timeout
            .map(|t| (now + t, ProxyError::StreamIdleTimeout));
        RouteTimers {
            headers: earliest([route, stream, idle]),
            body: earliest([route, stream]),
            body_idle: action.idle_timeout,
        }
    }
}

/// The earliest of several optional deadlines (the first listed wins ties).
fn earliest<const N: usize>(
    deadlines: [Option<(Instant, ProxyError)>; N],
) -> Option<(Instant, ProxyError)> {
    deadlines.into_iter().flatten().min_by_key(|(at, _)| *at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(timeout: Option<u64>, stream: Option<u64>, idle: Option<u64>) -> ForwardAction {
        ForwardAction {
            timeout: timeout.map(Duration::from_millis),
            max_stream_duration: stream.map(Duration::from_millis),
            idle_timeout: idle.map(Duration::from_millis),
            ..ForwardAction::to_cluster("c")
        }
    }

    #[tokio::test(start_paused = true)]
    async fn earliest_timer_decides_the_reply() {
        let now = Instant::now();
        let ms = |n| now + Duration::from_millis(n);
        let t = RouteTimers::start(&action(Some(200), None, Some(3_600_000)), now);
        assert_eq!(t.headers, Some((ms(200), ProxyError::RouteTimeout)));
        let t = RouteTimers::start(&action(Some(200), Some(100), None), now);
        assert_eq!(t.headers, Some((ms(100), ProxyError::MaxStreamDuration)));
        assert_eq!(t.body, Some((ms(100), ProxyError::MaxStreamDuration)));
        let t = RouteTimers::start(&action(Some(200), None, Some(50)), now);
        assert_eq!(t.headers, Some((ms(50), ProxyError::StreamIdleTimeout)));
        assert_eq!(t.body, Some((ms(200), ProxyError::RouteTimeout)));
        assert_eq!(t.body_idle, Some(Duration::from_millis(50)));
        let t = RouteTimers::start(&action(None, None, None), now);
        assert_eq!((t.headers, t.body, t.body_idle), (None, None, None));
        // Equal deadlines: the route timeout is reported.
        let t = RouteTimers::start(&action(Some(100), Some(100), None), now);
        assert_eq!(t.headers, Some((ms(100), ProxyError::RouteTimeout)));
    }
}
