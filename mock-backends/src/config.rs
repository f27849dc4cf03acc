//! The configuration of one replica (also the binary's `--config` JSON).

use http::HeaderValue;
use serde::{Deserialize, Serialize};

use crate::fault::final_status;
use crate::latency::{LatencyDist, LatencyError};

/// What one replica of a backend does when nothing is wrong with it.
///
/// JSON (camelCase; everything but `backend` has a default):
/// `{"backend": "payments", "namespace": "default", "replica": 0, "latency": "5ms",
///   "errorRate": 0.0, "errorStatus": 500, "healthPath": "/healthz", "seed": 1}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicaConfig {
    /// The Service name (`backendRefs[].name`).
    pub backend: String,
    /// The Service namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The replica index behind the Service.
    #[serde(default)]
    pub replica: usize,
    /// Delay of every normal response.
    #[serde(default)]
    pub latency: LatencyDist,
    /// Fraction of normal requests answered with `error_status`.
    #[serde(default)]
    pub error_rate: f64,
    /// Status of errors drawn from `error_rate`.
    #[serde(default = "default_error_status")]
    pub error_status: u16,
    /// Path answered by the health check (never delayed, never an `error_rate` error).
    #[serde(default = "default_health_path")]
    pub health_path: String,
    /// Seed of the replica's random decisions (mixed with `replica`).
    #[serde(default = "default_seed")]
    pub seed: u64,
}

/// Why a replica configuration is not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `backend` or `namespace` is empty or cannot be sent in a header.
    #[error("{field} {value:?} must be non-empty and printable ASCII")]
    InvalidName {
        /// `backend` or `namespace`.
        field: &'static str,
        /// The rejected value.
        value: String,
    },
    /// `errorRate` outside `[0, 1]`.
    #[error("errorRate {0} is not a fraction between 0 and 1")]
    InvalidErrorRate(f64),
    /// `errorStatus` outside 200..=599.
    #[error("errorStatus {0} is not a final HTTP status (allowed: 200..=599)")]
    InvalidErrorStatus(u16),
    /// `healthPath` does not start with `/`.
    #[error("healthPath {0:?} must start with /")]
    InvalidHealthPath(String),
    /// A latency distribution with an impossible shape.
    #[error("latency: {0}")]
    Latency(#[from] LatencyError),
}

fn default_namespace() -> String {
    "default".to_owned()
}

fn default_error_status() -> u16 {
    500
}

fn default_health_path() -> String {
    "/healthz".to_owned()
}

fn default_seed() -> u64 {
    1
}

impl ReplicaConfig {
    /// A healthy, instant replica with the defaults (`/healthz`, error status 500, seed 1).
    pub fn new(namespace: impl Into<String>, backend: impl Into<String>, replica: usize) -> Self {
        Self {
            backend: backend.into(),
            namespace: namespace.into(),
            replica,
            latency: LatencyDist::ZERO,
            error_rate: 0.0,
            error_status: default_error_status(),
            health_path: default_health_path(),
            seed: default_seed(),
        }
    }

    /// Checks every field; [`crate::Replica::start`] calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [("backend", &self.backend), ("namespace", &self.namespace)] {
            if value.is_empty() || HeaderValue::from_str(value).is_err() || !value.is_ascii() {
                return Err(ConfigError::InvalidName {
                    field,
                    value: value.clone(),
                });
            }
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(ConfigError::InvalidErrorRate(self.error_rate));
        }
        final_status(self.error_status)
            .ok_or(ConfigError::InvalidErrorStatus(self.error_status))?;
        if !self.health_path.starts_with('/') {
            return Err(ConfigError::InvalidHealthPath(self.health_path.clone()));
        }
        self.latency.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn minimal_json_takes_defaults() {
        let config: ReplicaConfig =
            serde_json::from_str(r#"{"backend":"payments"}"#).expect("valid");
        assert_eq!(config, ReplicaConfig::new("default", "payments", 0));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn full_json_round_trips() {
        let json = r#"{"backend":"payments","namespace":"shop","replica":2,"latency":{"fixed":"5ms"},"errorRate":0.1,"errorStatus":502,"healthPath":"/health","seed":7}"#;
        let config: ReplicaConfig = serde_json::from_str(json).expect("valid");
        assert_eq!(config.latency, LatencyDist::Fixed(Duration::from_millis(5)));
        assert_eq!(config.replica, 2);
        assert_eq!(serde_json::to_string(&config).expect("serializes"), json);
    }

    #[test]
    fn rejects_misspelled_keys_and_bad_values() {
        let err = serde_json::from_str::<ReplicaConfig>(r#"{"backend":"a","errorrate":0.5}"#)
            .expect_err("misspelled");
        assert!(
            err.to_string().contains("unknown field `errorrate`"),
            "{err}"
        );

        let mut config = ReplicaConfig::new("default", "a", 0);
        config.error_rate = 2.0;
        assert_eq!(config.validate(), Err(ConfigError::InvalidErrorRate(2.0)));
        config.error_rate = 0.0;
        config.error_status = 1000;
        assert_eq!(
            config.validate(),
            Err(ConfigError::InvalidErrorStatus(1000))
        );
        config.error_status = 500;
        config.health_path = "healthz".into();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::InvalidHealthPath(_))
        ));
        config.health_path = "/healthz".into();
        config.backend = "bad\nname".into();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::InvalidName {
                field: "backend",
                ..
            })
        ));
    }
}
