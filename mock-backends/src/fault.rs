//! Backend-level faults and the compiled set that requests consult.
//!
//! JSON shape (the `type` tag and field names of the scenario fault table):
//!
//! ```json
//! {"type": "latency", "latency": "2s"}
//! {"type": "latency", "latency": {"lognormal": {"p50": "50ms", "p99": "400ms"}}}
//! {"type": "error", "status": 503, "rate": 0.5}
//! {"type": "hang"}
//! {"type": "reset"}
//! {"type": "slowBody", "bytesPerSecond": 1024}
//! {"type": "unhealthy"}
//! {"type": "kill"}
//! ```
//!
//! `error` defaults to `status: 503` and `rate: 1.0`.

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::latency::{LatencyDist, LatencyError, Sampler};

/// Something wrong with one replica, active until cleared.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FaultRepr", into = "FaultRepr")]
pub enum Fault {
    /// Responses are delayed by this much more (health answers are not).
    Latency(LatencyDist),
    /// That fraction of requests is answered with `status` (health answers are not).
    Error {
        /// The status of injected errors.
        status: u16,
        /// Fraction of requests hit, in `[0, 1]`.
        rate: f64,
    },
    /// Requests (health checks included) are accepted and not answered until the fault is cleared.
    Hang,
    /// The connection is reset (TCP RST) when a request arrives on it (health checks included).
    Reset,
    /// Response bodies trickle at this rate.
    SlowBody {
        /// Body bytes sent per second; at least 1.
        bytes_per_second: u64,
    },
    /// Only the health path fails, with 503; traffic is still served.
    Unhealthy,
    /// The replica stops: listener closed, connections dropped, connects refused. It starts again,
    /// fresh, on the same address when the fault is cleared.
    Kill,
}

/// Why a fault cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    /// An error status outside 200..=599.
    #[error("error status {0} is not a final HTTP status (allowed: 200..=599)")]
    InvalidStatus(u16),
    /// An error rate outside `[0, 1]`.
    #[error("error rate {0} is not a fraction between 0 and 1")]
    InvalidRate(f64),
    /// A slow body at zero bytes per second would never finish; that is a hang.
    #[error("slowBody needs bytesPerSecond >= 1")]
    ZeroRate,
    /// A latency distribution with an impossible shape.
    #[error(transparent)]
    Latency(#[from] LatencyError),
}

/// The wire form of [`Fault`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
enum FaultRepr {
    Latency {
        latency: LatencyDist,
    },
    Error {
        #[serde(default = "default_status")]
        status: u16,
        #[serde(default = "default_rate")]
        rate: f64,
    },
    Hang,
    Reset,
    #[serde(rename_all = "camelCase")]
    SlowBody {
        bytes_per_second: u64,
    },
    Unhealthy,
    Kill,
}

/// The active faults of a replica, compiled for the request path. Swapped as a whole.
#[derive(Debug, Default)]
pub(crate) struct ActiveFaults {
    pub(crate) list: Vec<Fault>,
    pub(crate) latency: Vec<Sampler>,
    pub(crate) errors: Vec<(StatusCode, f64)>,
    pub(crate) hang: bool,
    pub(crate) reset: bool,
    /// The slowest of the active slow-body faults.
    pub(crate) slow_body: Option<u64>,
    pub(crate) unhealthy: bool,
    pub(crate) kill: bool,
}

fn default_status() -> u16 {
    503
}

fn default_rate() -> f64 {
    1.0
}

/// A status the replica may answer with.
pub(crate) fn final_status(code: u16) -> Option<StatusCode> {
    if (200..=599).contains(&code) {
        StatusCode::from_u16(code).ok()
    } else {
        None
    }
}

impl Fault {
    /// Checks the fault's fields.
    pub fn validate(&self) -> Result<(), FaultError> {
        match *self {
            Self::Latency(dist) => Ok(dist.validate()?),
            Self::Error { status, rate } => {
                final_status(status).ok_or(FaultError::InvalidStatus(status))?;
                if (0.0..=1.0).contains(&rate) {
                    Ok(())
                } else {
                    Err(FaultError::InvalidRate(rate))
                }
            }
            Self::SlowBody {
                bytes_per_second: 0,
            } => Err(FaultError::ZeroRate),
            Self::Hang | Self::Reset | Self::SlowBody { .. } | Self::Unhealthy | Self::Kill => {
                Ok(())
            }
        }
    }
}

impl TryFrom<FaultRepr> for Fault {
    type Error = FaultError;

    fn try_from(repr: FaultRepr) -> Result<Self, FaultError> {
        let fault = match repr {
            FaultRepr::Latency { latency } => Fault::Latency(latency),
            FaultRepr::Error { status, rate } => Fault::Error { status, rate },
            FaultRepr::Hang => Fault::Hang,
            FaultRepr::Reset => Fault::Reset,
            FaultRepr::SlowBody { bytes_per_second } => Fault::SlowBody { bytes_per_second },
            FaultRepr::Unhealthy => Fault::Unhealthy,
            FaultRepr::Kill => Fault::Kill,
        };
        fault.validate()?;
        Ok(fault)
    }
}

impl From<Fault> for FaultRepr {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Latency(latency) => FaultRepr::Latency { latency },
            Fault::Error { status, rate } => FaultRepr::Error { status, rate },
            Fault::Hang => FaultRepr::Hang,
            Fault::Reset => FaultRepr::Reset,
            Fault::SlowBody { bytes_per_second } => FaultRepr::SlowBody { bytes_per_second },
            Fault::Unhealthy => FaultRepr::Unhealthy,
            Fault::Kill => FaultRepr::Kill,
        }
    }
}

impl ActiveFaults {
    /// Validates and compiles a fault list; several faults of one kind combine (latencies add,
    /// errors are tried in order, the slowest body rate wins).
    pub(crate) fn try_new(list: Vec<Fault>) -> Result<Self, FaultError> {
        let mut active = ActiveFaults::default();
        for fault in &list {
            fault.validate()?;
            match *fault {
                Fault::Latency(dist) => active.latency.push(dist.sampler()),
                Fault::Error { status, rate } => {
                    let status = final_status(status).ok_or(FaultError::InvalidStatus(status))?;
                    active.errors.push((status, rate));
                }
                Fault::Hang => active.hang = true,
                Fault::Reset => active.reset = true,
                Fault::SlowBody { bytes_per_second } => {
                    let slowest = active
                        .slow_body
                        .map_or(bytes_per_second, |r| r.min(bytes_per_second));
                    active.slow_body = Some(slowest);
                }
                Fault::Unhealthy => active.unhealthy = true,
                Fault::Kill => active.kill = true,
            }
        }
        active.list = list;
        Ok(active)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(json: &str) -> Result<Fault, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn parses_every_fault_type() {
        assert_eq!(
            parse(r#"{"type":"latency","latency":"2s"}"#).expect("latency"),
            Fault::Latency(LatencyDist::Fixed(Duration::from_secs(2)))
        );
        assert_eq!(
            parse(r#"{"type":"latency","latency":{"uniform":["1ms","3ms"]}}"#).expect("uniform"),
            Fault::Latency(LatencyDist::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(3)
            })
        );
        assert_eq!(
            parse(r#"{"type":"error"}"#).expect("error defaults"),
            Fault::Error {
                status: 503,
                rate: 1.0
            }
        );
        assert_eq!(
            parse(r#"{"type":"error","status":500,"rate":0.25}"#).expect("error"),
            Fault::Error {
                status: 500,
                rate: 0.25
            }
        );
        assert_eq!(parse(r#"{"type":"hang"}"#).expect("hang"), Fault::Hang);
        assert_eq!(parse(r#"{"type":"reset"}"#).expect("reset"), Fault::Reset);
        assert_eq!(
            parse(r#"{"type":"slowBody","bytesPerSecond":100}"#).expect("slow"),
            Fault::SlowBody {
                bytes_per_second: 100
            }
        );
        assert_eq!(
            parse(r#"{"type":"unhealthy"}"#).expect("unhealthy"),
            Fault::Unhealthy
        );
        assert_eq!(parse(r#"{"type":"kill"}"#).expect("kill"), Fault::Kill);
    }

    #[test]
    fn rejects_bad_faults() {
        let err = |json: &str| parse(json).expect_err(json).to_string();
        assert!(err(r#"{"type":"explode"}"#).contains("unknown variant"));
        assert!(err(r#"{"type":"error","rate":1.5}"#).contains("between 0 and 1"));
        assert!(err(r#"{"type":"error","status":99}"#).contains("200..=599"));
        assert!(err(r#"{"type":"slowBody","bytesPerSecond":0}"#).contains(">= 1"));
        assert!(err(r#"{"type":"slowBody","bytes_per_second":5}"#).contains("unknown field"));
        assert!(err(r#"{"type":"latency"}"#).contains("missing field `latency`"));
        assert!(err(r#"{"type":"error","statuss":500}"#).contains("unknown field"));
    }

    #[test]
    fn round_trips_through_json() {
        let faults = vec![
            Fault::Latency(LatencyDist::Fixed(Duration::from_millis(250))),
            Fault::Error {
                status: 502,
                rate: 0.5,
            },
            Fault::Hang,
            Fault::SlowBody {
                bytes_per_second: 10,
            },
            Fault::Unhealthy,
            Fault::Kill,
        ];
        let json = serde_json::to_string(&faults).expect("serializes");
        assert!(
            json.starts_with(r#"[{"type":"latency","latency":{"fixed":"250ms"}}"#),
            "{json}"
        );
        assert!(
            json.contains(r#"{"type":"slowBody","bytesPerSecond":10}"#),
            "{json}"
        );
        let back: Vec<Fault> = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, faults);
    }

    #[test]
    fn compiles_combinations() {
        let active = ActiveFaults::try_new(vec![
            Fault::Latency(LatencyDist::Fixed(Duration::from_millis(5))),
            Fault::Latency(LatencyDist::Fixed(Duration::from_millis(7))),
            Fault::Error {
                status: 500,
                rate: 0.5,
            },
            Fault::SlowBody {
                bytes_per_second: 100,
            },
            Fault::SlowBody {
                bytes_per_second: 10,
            },
        ])
        .expect("valid");
        assert_eq!(active.latency.len(), 2);
        assert_eq!(
            active.errors,
            vec![(StatusCode::INTERNAL_SERVER_ERROR, 0.5)]
        );
        assert_eq!(active.slow_body, Some(10));
        assert!(!active.hang && !active.kill && !active.unhealthy);
        assert_eq!(
            ActiveFaults::try_new(vec![Fault::Error {
                status: 700,
                rate: 1.0
            }])
            .map(|_| ()),
            Err(FaultError::InvalidStatus(700))
        );
    }
}
