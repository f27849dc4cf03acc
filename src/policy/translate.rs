//! Translation errors: what Envoy Gateway's translator rejects in a spec the CRD accepted.

use serde_json::Value;

/// The translation errors of a (possibly merged) policy spec, each `"<Feature>: <error>"`.
pub fn translation_errors(_spec: &Value) -> Vec<String> {
    Vec::new()
}
