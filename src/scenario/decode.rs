//! Typed decoding of JSON values with every error located, not just the first.
//!
//! serde stops at the first error. To report all of them, the offending field is cut out of a
//! scratch copy and decoding runs again, until it succeeds or nothing more can be cut.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use super::diag::{Diagnostic, SourceDoc};
use super::yaml::{child_index, child_key};

/// Most errors reported for one object before giving up on it.
const MAX_ERRORS_PER_OBJECT: usize = 32;

/// Decodes `value` (found at `base` inside `doc`) into `T`, reporting every field error.
pub fn decode<T: DeserializeOwned>(
    doc: &SourceDoc,
    base: &str,
    value: &Value,
) -> Result<T, Vec<Diagnostic>> {
    let mut scratch = value.clone();
    let mut errors = Vec::new();
    // Fields cut so far, as full paths: their "missing field" follow-ups are not news.
    let mut cut: Vec<String> = Vec::new();
    for _ in 0..MAX_ERRORS_PER_OBJECT {
        let err = match serde_path_to_error::deserialize::<_, T>(scratch.clone()) {
            Ok(decoded) if errors.is_empty() => return Ok(decoded),
            Ok(_) => return Err(sorted(errors)),
            Err(err) => err,
        };
        let segments: Vec<PathStep> = err
            .path()
            .iter()
            .filter_map(PathStep::from_segment)
            .collect();
        let message = err.into_inner().to_string();
        let missing = missing_field(&message);
        let path = join(base, &segments);
        let already_cut = missing.is_some_and(|field| cut.contains(&child_key(&path, field)));
        if !already_cut {
            errors.push(doc.error(&path, polish(&message)));
        }
        // Cut the field that failed; a missing field makes its parent unusable instead.
        let (target, cut_path) = cut_target(base, &segments);
        if target.is_empty() || !remove(&mut scratch, target) {
            return Err(sorted(errors));
        }
        cut.push(cut_path);
    }
    Err(sorted(errors))
}

/// Errors in the order a reader meets them in the file.
fn sorted(mut errors: Vec<Diagnostic>) -> Vec<Diagnostic> {
    errors.sort_by_key(|d| (d.pos.line, d.pos.col));
    errors
}

/// One step of a path into a JSON value.
#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

impl PathStep {
    fn from_segment(segment: &Segment) -> Option<PathStep> {
        match segment {
            Segment::Map { key } => Some(PathStep::Key(key.clone())),
            Segment::Seq { index } => Some(PathStep::Index(*index)),
            Segment::Enum { .. } | Segment::Unknown => None,
        }
    }
}

fn join(base: &str, steps: &[PathStep]) -> String {
    steps
        .iter()
        .fold(base.to_string(), |path, step| match step {
            PathStep::Key(k) => child_key(&path, k),
            PathStep::Index(i) => child_index(&path, *i),
        })
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// The steps to remove: the deepest map entry at or above the failing value (so list indices of
/// siblings stay as the user wrote them), or its parent's entry when a required field is missing.
fn cut_target<'a>(base: &str, steps: &'a [PathStep]) -> (&'a [PathStep], String) {
    // serde points at the failing value for type errors, at the object that lacks the field for
    // a missing field: both are cut at the deepest map entry.
    let mut end = steps.len();
    while end > 0 && !matches!(steps[end - 1], PathStep::Key(_)) {
        end -= 1;
    }
    (&steps[..end], join(base, &steps[..end]))
}

fn remove(value: &mut Value, steps: &[PathStep]) -> bool {
    let Some((last, parents)) = steps.split_last() else {
        return false;
    };
    let mut current = value;
    for step in parents {
        current = match (step, current) {
            (PathStep::Key(k), Value::Object(map)) => match map.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (PathStep::Index(i), Value::Array(items)) => match items.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, current) {
        (PathStep::Key(k), Value::Object(map)) => map.remove(k).is_some(),
        _ => false,
    }
}

/// serde's messages, phrased for people writing YAML rather than Rust.
fn polish(message: &str) -> String {
    message
        .replace("invalid type: map", "invalid type: mapping")
        .replace("invalid type: sequence", "invalid type: list")
        .replace("expected a sequence", "expected a list")
        .replace("expected a map", "expected a mapping")
        .replace("expected u32", "expected an integer from 0 to 4294967295")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected i32", "expected an integer")
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected f32", "expected a number")
        .replace("expected u16", "expected an integer from 0 to 65535")
        .replace("expected usize", "expected a non-negative integer")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use serde::Deserialize;

    use super::*;
    use crate::scenario::yaml::parse_documents;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Outer {
        name: String,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        items: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Inner {
        count: u32,
    }

    fn source(text: &str) -> SourceDoc {
        SourceDoc {
            file: Arc::new(PathBuf::from("f.yaml")),
            doc: parse_documents(text).unwrap().remove(0),
        }
    }

    fn errors(text: &str) -> Vec<String> {
        let doc = source(text);
        let value = doc.doc.value["spec"].clone();
        decode::<Outer>(&doc, "spec", &value)
            .unwrap_err()
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn decodes_valid_input() {
        let doc = source("spec:\n  name: a\n  inner: {count: 3}\n");
        let value = doc.doc.value["spec"].clone();
        let outer: Outer = decode(&doc, "spec", &value).unwrap();
        assert_eq!(outer.name, "a");
        assert!(outer.items.is_empty());
        assert_eq!(outer.inner.unwrap().count, 3);
    }

    #[test]
    fn reports_every_error_with_location() {
        let errs = errors(
            "spec:\n  name: a\n  nmae: b\n  inner:\n    count: -1\n  items:\n    - count: 1\n    - cuont: 2\n",
        );
        assert_eq!(
            errs,
            vec![
                "f.yaml:3:3: spec.nmae: unknown field `nmae`, expected one of `name`, `inner`, `items`",
                "f.yaml:5:5: spec.inner.count: invalid value: integer `-1`, expected an integer from 0 to 4294967295",
                "f.yaml:8:7: spec.items[1].cuont: unknown field `cuont`, expected `count`",
                "f.yaml:8:7: spec.items[1]: missing field `count`",
            ]
        );
    }

    #[test]
    fn missing_required_field_is_reported_once() {
        let errs = errors("spec:\n  inner: {}\n");
        assert_eq!(
            errs,
            vec![
                "f.yaml:1:1: spec: missing field `name`",
                "f.yaml:2:3: spec.inner: missing field `count`",
            ]
        );
    }
}
