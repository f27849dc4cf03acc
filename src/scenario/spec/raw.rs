//! The `Scenario` spec exactly as written: serde structs that reject unknown fields.
//!
//! Only the shape is checked here (field names, types). Values that need a rule (durations,
//! ranges, references) stay as written and are checked in `validate`, so one pass reports them all.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::scenario::diag::Diagnostic;

/// `spec` of a `kind: Scenario` object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSpec {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub manifests: Vec<String>,
    #[serde(default)]
    pub backends: Vec<RawBackend>,
    #[serde(default)]
    pub load: Vec<RawLoad>,
    #[serde(default)]
    pub faults: Vec<RawFault>,
    #[serde(default)]
    pub expect: Vec<RawExpectation>,
}

/// `spec.backends[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawBackend {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub replicas: Option<u32>,
    /// A duration string or a distribution mapping; parsed in `validate`.
    #[serde(default)]
    pub latency: Option<Value>,
    #[serde(default)]
    pub error_rate: Option<f64>,
    #[serde(default)]
    pub error_status: Option<u16>,
    #[serde(default)]
    pub health_path: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
}

/// `spec.load[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawLoad {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub listener: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// Values may be strings, numbers or booleans; they are sent as text.
    #[serde(default)]
    pub headers: IndexMap<String, Value>,
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub concurrency: Option<u32>,
    #[serde(default)]
    pub stages: Option<Vec<RawStage>>,
    #[serde(default)]
    pub start_rate: Option<f64>,
    #[serde(default)]
    pub start: Option<RawDuration>,
    #[serde(default)]
    pub duration: Option<RawDuration>,
    #[serde(default)]
    pub timeout: Option<RawDuration>,
    #[serde(default)]
    pub connections: Option<u32>,
}

/// `spec.load[].stages[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawStage {
    pub duration: RawDuration,
    pub rate: f64,
}

/// `spec.faults[]`: every type's fields, checked against `type` in `validate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawFault {
    pub backend: String,
    #[serde(default)]
    pub replicas: Option<Vec<usize>>,
    pub at: RawDuration,
    #[serde(default)]
    pub duration: Option<RawDuration>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub latency: Option<Value>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub bytes_per_second: Option<u64>,
}

/// `spec.expect[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawExpectation {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "where")]
    pub scope: Option<RawScope>,
    pub assert: String,
}

/// `spec.expect[].where`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawScope {
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default)]
    pub replica: Option<usize>,
    #[serde(default)]
    pub load: Option<String>,
    /// Seconds of the run: a duration string or a number of seconds.
    #[serde(default)]
    pub from: Option<Value>,
    #[serde(default)]
    pub to: Option<Value>,
}

/// A duration as written; only strings are accepted, so `duration: 20` gets a helpful message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawDuration(pub String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, such as 250ms, 2s or 1m30s")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(text.to_string()))
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

/// serde names the Rust struct it expected (`expected struct RawBackend`); users wrote YAML.
pub(super) fn plain_message(mut diagnostic: Diagnostic) -> Diagnostic {
    if let Some(at) = diagnostic.message.find("struct Raw") {
        let end = diagnostic.message[at + "struct ".len()..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(diagnostic.message.len(), |i| at + "struct ".len() + i);
        diagnostic.message.replace_range(at..end, "a mapping");
    }
    diagnostic
}
