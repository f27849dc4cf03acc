//! Reading a `BackendTrafficPolicy.spec` the way the API server admits it.
//!
//! The API server first decodes the object: with strict field validation (kubectl's default)
//! an unknown field rejects the request and nothing else is reported. Then it validates the
//! schema — a value of the wrong JSON type is one more located error
//! (`Invalid value: "string": spec.x in body must be of type integer: "string"`), and it keeps
//! CEL rules from running — and finally the CEL rules.

use serde_json::Value;

use super::types::BackendTrafficPolicySpec;
use super::validate::validate_after;
use crate::scenario::check::Checker;
use crate::scenario::decode::decode;
use crate::scenario::diag::{Diagnostic, SourceDoc};

/// Most decoding rounds before giving up on cutting out mistyped values.
const MAX_ROUNDS: usize = 16;

/// Decodes the `spec` value found at `base` in `doc` and checks it against the CRD, reporting
/// what the API server would: unknown fields alone, or else type errors, schema errors and CEL
/// rule failures together.
pub fn read_spec(
    doc: &SourceDoc,
    base: &str,
    value: &Value,
) -> Result<BackendTrafficPolicySpec, Vec<Diagnostic>> {
    let mut scratch = value.clone();
    let mut type_errors: Vec<Diagnostic> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let errors = match decode::<BackendTrafficPolicySpec>(doc, base, &scratch) {
            Ok(spec) => {
                let mut check = Checker::new(doc);
                validate_after(&spec, &mut check, base, !type_errors.is_empty());
                type_errors.extend(check.into_errors());
                return if type_errors.is_empty() {
                    Ok(spec)
                } else {
                    Err(type_errors)
                };
            }
            Err(errors) => errors,
        };
        let unknown: Vec<Diagnostic> = errors
            .iter()
            .filter(|d| d.message.starts_with("unknown field"))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(unknown);
        }
        for mut d in errors {
            let Some(message) = api_type_error(&d.message, &d.path) else {
                type_errors.push(d);
                continue;
            };
            let cut = d
                .path
                .strip_prefix(base)
                .is_some_and(|rest| remove(&mut scratch, rest));
            d.message = message;
            type_errors.push(d);
            if !cut {
                return Err(type_errors);
            }
        }
    }
    Err(type_errors)
}

/// The API server's wording for a value of the wrong JSON type, from serde's message.
fn api_type_error(message: &str, path: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid type: ")?;
    let (found, expected) = rest.split_once(", expected ")?;
    let actual = if found.starts_with("string ") {
        "string"
    } else if found.starts_with("integer ") {
        "integer"
    } else if found.starts_with("floating point ") {
        "number"
    } else if found.starts_with("boolean ") {
        "boolean"
    } else {
        match found {
            "mapping" | "map" => "object",
            "list" | "sequence" => "array",
            "null" => "null",
            _ => return None,
        }
    };
    let wanted = if expected.starts_with("an integer or a quantity string") {
        "integer,string"
    } else if expected.starts_with("an integer") || expected.starts_with("a non-negative integer") {
        "integer"
    } else if expected.starts_with("struct ") || expected == "a mapping" || expected == "a map" {
        "object"
    } else {
        match expected {
            "a string" => "string",
            "a boolean" => "boolean",
            "a number" => "number",
            "a list" | "a sequence" => "array",
            _ => return None,
        }
    };
    Some(format!(
        "Invalid value: \"{actual}\": {path} in body must be of type {wanted}: \"{actual}\""
    ))
}

/// Removes the value at `rest` (`.a.b[2].c`, relative to the spec) from `value`.
fn remove(value: &mut Value, rest: &str) -> bool {
    let mut steps: Vec<Step> = Vec::new();
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        let (key, mut indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            steps.push(Step::Key(key.to_string()));
        }
        while let Some(inner) = indices.strip_prefix('[') {
            let Some((n, after)) = inner.split_once(']') else {
                return false;
            };
            let Ok(n) = n.parse() else { return false };
            steps.push(Step::Index(n));
            indices = after;
        }
    }
    // Cut at the deepest key, as decoding does: a mistyped list item takes its list along, so
    // the indices of later errors stay as written.
    while matches!(steps.last(), Some(Step::Index(_))) {
        steps.pop();
    }
    let Some((Step::Key(last), parents)) = steps.split_last() else {
        return false;
    };
    let mut current = value;
    for step in parents {
        let next = match (step, current) {
            (Step::Key(k), Value::Object(map)) => map.get_mut(k),
            (Step::Index(i), Value::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else { return false };
        current = next;
    }
    match current {
        Value::Object(map) => map.remove(last).is_some(),
        _ => false,
    }
}

/// One step of a relative field path.
enum Step {
    Key(String),
    Index(usize),
}
