//! The `kind: Scenario` object: raw serde structs, then a validated model with every error located.
//!
//! [`parse_scenario`] checks everything the Scenario object can check alone (shapes, values,
//! references between its own backends, loads, faults and expectations, times within the run).
//! What needs the Gateway API objects (load targets resolving to a route, `where.route` naming a
//! route rule, routes referencing declared backends) is left to the caller: every model item keeps
//! its field path (`yaml_path`) so those errors can be located with [`Scenario::error`].

use serde_json::Value;

use super::check::Checker;
use super::decode::decode;
use super::diag::{Diagnostic, SourceDoc};

mod model;
mod raw;
mod validate;
mod values;

pub use model::{
    BackendProtocol, BackendSpec, Expectation, FaultKind, FaultSpec, LatencyDist, LoadShape,
    LoadSpec, NamespacedName, RouteRef, RuleRef, ScenarioSpec, Scope, Stage,
};
pub use values::{is_dns_label, is_dns_subdomain};

/// The `apiVersion` of a Scenario object.
pub const API_VERSION: &str = "chaosgate.dev/v1alpha1";
/// The `kind` of a Scenario object.
pub const KIND: &str = "Scenario";
/// Fault types, in the order the documentation lists them.
pub const FAULT_TYPES: &[&str] = &[
    "latency",
    "error",
    "hang",
    "reset",
    "kill",
    "pause",
    "partition",
    "slowBody",
    "unhealthy",
];

/// A validated `kind: Scenario` object.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// `metadata.name`, a DNS label (it names the report folder).
    pub name: String,
    pub spec: ScenarioSpec,
    /// The document it came from, to locate later errors by field path.
    pub source: SourceDoc,
}

/// Parses and validates a whole `kind: Scenario` object, reporting every error at once.
pub fn parse_scenario(doc: &SourceDoc, value: &Value) -> Result<Scenario, Vec<Diagnostic>> {
    let mut checker = Checker::new(doc);
    let name = validate::header(&mut checker, value);
    let spec_value = value.get("spec");
    let mut errors = checker.into_errors();
    let spec = match spec_value {
        None | Some(Value::Null) => {
            errors.push(doc.error(
                "spec",
                "missing field `spec`: a Scenario needs at least `load` (and usually `backends` and `expect`)",
            ));
            None
        }
        Some(spec_value) if !validate::mappings_where_expected(doc, spec_value, &mut errors) => {
            None
        }
        Some(spec_value) => match decode::<raw::RawSpec>(doc, "spec", spec_value) {
            Err(decode_errors) => {
                errors.extend(decode_errors.into_iter().map(raw::plain_message));
                None
            }
            Ok(raw) => {
                let mut checker = Checker::new(doc);
                let spec = validate::spec(&mut checker, raw);
                errors.extend(checker.into_errors());
                Some(spec)
            }
        },
    };
    match (name, spec) {
        (Some(name), Some(spec)) if errors.is_empty() => Ok(Scenario {
            name,
            spec,
            source: doc.clone(),
        }),
        _ => {
            // Stable: errors at one place keep the order they were found in.
            errors.sort_by_key(|d| (d.pos.line, d.pos.col));
            Err(errors)
        }
    }
}

impl Scenario {
    /// A diagnostic at `path` in the scenario's document, for checks made by later stages.
    pub fn error(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        self.source.error(path, message)
    }
}

#[cfg(test)]
mod tests;
