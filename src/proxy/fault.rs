//! Fault injection (`faultInjection`), emulating Envoy's `envoy.filters.http.fault` as EG configures it.
//!
//! EG maps each percentage to a fraction over one million (`p × 10000`), so a decision is one
//! uniform draw in `0..1_000_000` compared with that numerator. Delay and abort draw
//! independently. Header-driven faults (`x-envoy-fault-*`) are never configured by EG and are
//! deliberately not read here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::StatusCode;
use rand::Rng;

/// Response flag Envoy logs when a delay was injected.
pub const FLAG_DELAY_INJECTED: &str = "DI";
/// Response flag Envoy logs when an abort was injected.
pub const FLAG_FAULT_INJECTED: &str = "FI";
/// Body of every abort local reply (and the gRPC message).
pub const ABORT_BODY: &str = "fault filter abort";

/// Invalid fault configuration; messages follow EG's CEL texts where one exists.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultConfigError {
    /// Neither delay nor abort was given.
    #[error("Delay and abort faults are set at least one.")]
    Empty,
    /// A percentage outside 0..=100 (or not a number).
    #[error("percentage {0} must be between 0 and 100")]
    Percentage(f32),
    /// HTTP abort status outside 200..=600.
    #[error("abort httpStatus {0} must be between 200 and 600")]
    HttpStatus(u32),
    /// gRPC abort status outside 0..=16.
    #[error("abort grpcStatus {0} must be between 0 and 16")]
    GrpcStatus(u32),
}

/// A validated percentage with Envoy's per-million precision (0.0001 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPercentage {
    per_million: u32,
}

/// Raw abort code as written in the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortCode {
    /// `abort.httpStatus` (200..=600).
    Http(u32),
    /// `abort.grpcStatus` (0..=16).
    Grpc(u32),
}

/// Raw fault configuration (what the policy says); validated by [`FaultInjector::try_new`].
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// `delay`: fixed delay and percentage (EG default 100).
    pub delay: Option<DelayConfig>,
    /// `abort`: code and percentage (EG default 100).
    pub abort: Option<AbortConfig>,
}

/// Raw `delay` block.
#[derive(Debug, Clone, PartialEq)]
pub struct DelayConfig {
    /// `delay.fixedDelay`.
    pub fixed_delay: Duration,
    /// `delay.percentage` (0..=100; 0 = never).
    pub percentage: f32,
}

/// Raw `abort` block.
#[derive(Debug, Clone, PartialEq)]
pub struct AbortConfig {
    /// HTTP or gRPC status to answer with.
    pub code: AbortCode,
    /// `abort.percentage` (0..=100; 0 = never).
    pub percentage: f32,
}

/// Validated abort kind that the local reply is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// Reply with this HTTP status.
    Http(StatusCode),
    /// Reply 200 with this `grpc-status`.
    Grpc(u32),
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultDecision {
    /// Hold the request this long before going on (flag `DI`).
    pub delay: Option<Duration>,
    /// After the delay, answer locally instead of forwarding (flag `FI`).
    pub abort: Option<Abort>,
}

/// Envoy fault filter stats (`fault.delays_injected`, `fault.aborts_injected`).
#[derive(Debug, Default)]
pub struct FaultStats {
    /// `fault.delays_injected`.
    pub delays_injected: AtomicU64,
    /// `fault.aborts_injected`.
    pub aborts_injected: AtomicU64,
}

/// Per-route fault injector: validated config plus its stats.
#[derive(Debug)]
pub struct FaultInjector {
    delay: Option<(Duration, FaultPercentage)>,
    abort: Option<(Abort, FaultPercentage)>,
    stats: FaultStats,
}

impl FaultPercentage {
    /// Validates `percent` (0..=100) and converts it the way EG does: `uint32(p × 10000)` over a million.
    pub fn try_new(percent: f32) -> Result<Self, FaultConfigError> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(FaultConfigError::Percentage(percent));
        }
        // float32 product then truncation, as the Go translator computes it.
        let per_million = (percent * 10_000.0) as u32;
        Ok(Self { per_million })
    }

    /// Numerator over 1_000_000.
    pub fn per_million(self) -> u32 {
        self.per_million
    }

    /// One draw: true with probability per_million / 1e6; 0 never hits.
    pub fn hit(self, rng: &mut impl Rng) -> bool {
        self.per_million > 0 && rng.random_range(0..1_000_000u32) < self.per_million
    }
}

impl Abort {
    /// The HTTP status and explicit gRPC status of Envoy's abort local reply (body
    /// [`ABORT_BODY`]). A `grpcStatus` abort replies HTTP 200 with that gRPC status: a gRPC
    /// request then gets it as `grpc-status` (see [`crate::proxy::grpc`]), and a plain HTTP
    /// request gets a 200 with the body. An HTTP abort's status is mapped to a gRPC code only
    /// when the request is gRPC.
    pub fn reply(self) -> (StatusCode, Option<u32>) {
        match self {
            Abort::Http(status) => (status, None),
            Abort::Grpc(code) => (StatusCode::OK, Some(code)),
        }
    }
}

impl FaultInjector {
    /// Validates the raw config (EG rules: at least one of delay/abort; status ranges; percentages).
    pub fn try_new(config: &FaultConfig) -> Result<Self, FaultConfigError> {
        if config.delay.is_none() && config.abort.is_none() {
            return Err(FaultConfigError::Empty);
        }
        let delay = match &config.delay {
            Some(d) => Some((d.fixed_delay, FaultPercentage::try_new(d.percentage)?)),
            None => None,
        };
        let abort = match &config.abort {
            Some(a) => {
                let kind = match a.code {
                    AbortCode::Http(code) => {
                        if !(200..=600).contains(&code) {
                            return Err(FaultConfigError::HttpStatus(code));
                        }
                        let status = u16::try_from(code)
                            .ok()
                            .and_then(|c| StatusCode::from_u16(c).ok())
                            .ok_or(FaultConfigError::HttpStatus(code))?;
                        Abort::Http(status)
                    }
                    AbortCode::Grpc(code) => {
                        if code > 16 {
                            return Err(FaultConfigError::GrpcStatus(code));
                        }
                        Abort::Grpc(code)
                    }
                };
                Some((kind, FaultPercentage::try_new(a.percentage)?))
            }
            None => None,
        };
        Ok(Self {
            delay,
            abort,
            stats: FaultStats::default(),
        })
    }

    /// Draws the delay and the abort independently and counts what was injected.
    pub fn decide(&self, rng: &mut impl Rng) -> FaultDecision {
        let delay = self.delay.and_then(|(d, p)| p.hit(rng).then_some(d));
        let abort = self.abort.and_then(|(a, p)| p.hit(rng).then_some(a));
        if delay.is_some() {
            self.stats.delays_injected.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                delay_ms = delay.map(|d| d.as_millis() as u64),
                "fault: delay injected"
            );
        }
        if abort.is_some() {
            self.stats.aborts_injected.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(?abort, "fault: abort injected");
        }
        FaultDecision { delay, abort }
    }

    /// The injector's stats.
    pub fn stats(&self) -> &FaultStats {
        &self.stats
    }
}

impl FaultDecision {
    /// Response flags for the access log, in Envoy's order (`DI` then `FI`).
    pub fn flags(&self) -> impl Iterator<Item = &'static str> {
        self.delay
            .map(|_| FLAG_DELAY_INJECTED)
            .into_iter()
            .chain(self.abort.map(|_| FLAG_FAULT_INJECTED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn injector(delay: Option<f32>, abort: Option<(AbortCode, f32)>) -> FaultInjector {
        let config = FaultConfig {
            delay: delay.map(|p| DelayConfig {
                fixed_delay: Duration::from_secs(2),
                percentage: p,
            }),
            abort: abort.map(|(code, p)| AbortConfig {
                code,
                percentage: p,
            }),
        };
        FaultInjector::try_new(&config).expect("valid")
    }

    #[test]
    fn validation_follows_eg_rules() {
        let empty = FaultConfig {
            delay: None,
            abort: None,
        };
        assert_eq!(
            FaultInjector::try_new(&empty).unwrap_err().to_string(),
            "Delay and abort faults are set at least one."
        );
        let bad = |code| FaultConfig {
            delay: None,
            abort: Some(AbortConfig {
                code,
                percentage: 1.0,
            }),
        };
        assert!(FaultInjector::try_new(&bad(AbortCode::Http(199))).is_err());
        assert!(FaultInjector::try_new(&bad(AbortCode::Http(601))).is_err());
        assert!(FaultInjector::try_new(&bad(AbortCode::Grpc(17))).is_err());
        assert!(FaultInjector::try_new(&bad(AbortCode::Http(600))).is_ok());
        assert!(FaultPercentage::try_new(100.5).is_err());
        assert!(FaultPercentage::try_new(f32::NAN).is_err());
        assert_eq!(FaultPercentage::try_new(0.0001).unwrap().per_million(), 1);
        assert_eq!(
            FaultPercentage::try_new(50.0).unwrap().per_million(),
            500_000
        );
    }

    #[test]
    fn half_of_requests_abort_and_draws_are_independent() {
        let inj = injector(Some(50.0), Some((AbortCode::Http(501), 50.0)));
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut delays, mut aborts, mut both) = (0u32, 0u32, 0u32);
        for _ in 0..10_000 {
            let d = inj.decide(&mut rng);
            delays += u32::from(d.delay.is_some());
            aborts += u32::from(d.abort.is_some());
            both += u32::from(d.delay.is_some() && d.abort.is_some());
        }
        // 10000 draws at p=0.5: sd = 50, so ±250 is five sigma.
        assert!((4750..=5250).contains(&delays), "delays {delays}");
        assert!((4750..=5250).contains(&aborts), "aborts {aborts}");
        // Independent draws: both ≈ 25 %.
        assert!((2300..=2700).contains(&both), "both {both}");
        assert_eq!(
            inj.stats().delays_injected.load(Ordering::Relaxed),
            u64::from(delays)
        );
        assert_eq!(
            inj.stats().aborts_injected.load(Ordering::Relaxed),
            u64::from(aborts)
        );
    }

    #[test]
    fn zero_never_and_hundred_always() {
        let inj = injector(Some(0.0), Some((AbortCode::Http(500), 100.0)));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..1000 {
            let d = inj.decide(&mut rng);
            assert_eq!(d.delay, None);
            assert_eq!(
                d.abort,
                Some(Abort::Http(StatusCode::INTERNAL_SERVER_ERROR))
            );
            assert_eq!(d.flags().collect::<Vec<_>>(), vec!["FI"]);
        }
        let inj = injector(Some(100.0), None);
        let d = inj.decide(&mut rng);
        assert_eq!(d.delay, Some(Duration::from_secs(2)));
        assert_eq!(d.flags().collect::<Vec<_>>(), vec!["DI"]);
    }

    #[test]
    fn abort_replies() {
        assert_eq!(
            Abort::Http(StatusCode::NOT_IMPLEMENTED).reply(),
            (StatusCode::NOT_IMPLEMENTED, None)
        );
        // Envoy's fault filter: "If gRPC status code is set, then http status will be set to
        // Http::Code::OK (200)".
        assert_eq!(Abort::Grpc(14).reply(), (StatusCode::OK, Some(14)));
    }
}
