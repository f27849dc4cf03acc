//! Raw spec → validated model. Every rule reports into the [`Checker`] and validation goes on, so
//! one run lists every problem. Backends and loads are always kept (with fallbacks for invalid
//! values) so that references to them do not raise follow-up errors.

mod backend;
mod expect;
mod fault;
mod load;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

use super::raw::RawSpec;
use super::values::{fmt, is_dns_label};
use super::{API_VERSION, BackendSpec, Expectation, KIND, LoadSpec, ScenarioSpec};
use crate::scenario::check::Checker;
use crate::scenario::diag::{Diagnostic, SourceDoc};
use crate::scenario::yaml::{child_index, child_key};

/// Top-level fields of a Scenario object; `status` is accepted and ignored like other objects'.
const TOP_LEVEL: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

/// What cross-references are checked against.
struct Declared<'a> {
    backends: &'a [BackendSpec],
    loads: &'a [LoadSpec],
    /// The run length, unknown when a load's times were invalid.
    run: Option<Duration>,
}

/// serde would read a list as a struct, field by field in order; the places that take a mapping
/// are checked first so `- [payments, 3]` is an error rather than a backend. True when all are.
pub(super) fn mappings_where_expected(
    doc: &SourceDoc,
    spec: &Value,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    let before = errors.len();
    let mut expect_mapping = |path: &str, value: &Value| {
        if !value.is_object() {
            errors.push(doc.error(
                path,
                format!("invalid type: {}, expected a mapping", describe(value)),
            ));
        }
    };
    expect_mapping("spec", spec);
    let items = |key: &str| -> Vec<(String, &Value)> {
        match spec.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (child_index(&child_key("spec", key), i), v))
                .collect(),
            _ => Vec::new(),
        }
    };
    for key in ["backends", "load", "faults", "expect"] {
        for (path, item) in items(key) {
            expect_mapping(&path, item);
            let nested = match key {
                "load" => item.get("stages").and_then(Value::as_array).map(|stages| {
                    stages
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (child_index(&child_key(&path, "stages"), i), s))
                        .collect::<Vec<_>>()
                }),
                "expect" => item
                    .get("where")
                    .filter(|w| !w.is_null())
                    .map(|w| vec![(child_key(&path, "where"), w)]),
                _ => None,
            };
            for (nested_path, value) in nested.unwrap_or_default() {
                expect_mapping(&nested_path, value);
            }
        }
    }
    errors.len() == before
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "list".to_string(),
        Value::Object(_) => "mapping".to_string(),
    }
}

/// Checks `apiVersion`, `kind`, top-level fields and `metadata.name`; returns the name.
pub(super) fn header(c: &mut Checker<'_>, value: &Value) -> Option<String> {
    let Value::Object(map) = value else {
        c.error(
            "",
            "a Scenario must be a mapping with apiVersion, kind, metadata and spec",
        );
        return None;
    };
    for key in map.keys().filter(|k| !TOP_LEVEL.contains(&k.as_str())) {
        c.error(
            key,
            format!(
                "unknown field `{key}`, expected one of `apiVersion`, `kind`, `metadata`, `spec`"
            ),
        );
    }
    match map.get("apiVersion") {
        Some(Value::String(v)) if v == API_VERSION => {}
        Some(other) => c.error(
            "apiVersion",
            format!("unsupported apiVersion {other} for kind {KIND} (allowed: {API_VERSION})"),
        ),
        None => c.error(
            "apiVersion",
            format!("missing field `apiVersion` (allowed: {API_VERSION})"),
        ),
    }
    match map.get("kind") {
        Some(Value::String(k)) if k == KIND => {}
        other => c.error(
            "kind",
            format!(
                "expected kind {KIND}, got {}",
                other.map_or("nothing".to_string(), Value::to_string)
            ),
        ),
    }
    let name = match map.get("metadata").and_then(|m| m.get("name")) {
        Some(Value::String(name)) if is_dns_label(name) => return Some(name.clone()),
        Some(Value::String(name)) => format!("`{name}` is not a valid name"),
        Some(other) => format!("{other} is not a valid name"),
        None => "missing field `name`".to_string(),
    };
    c.error(
        "metadata.name",
        format!(
            "{name}: a Scenario needs a name that is a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
        ),
    );
    None
}

/// Validates the whole spec.
pub(super) fn spec(c: &mut Checker<'_>, raw: RawSpec) -> ScenarioSpec {
    for (i, manifest) in raw.manifests.iter().enumerate() {
        c.ensure(
            !manifest.trim().is_empty(),
            &child_index("spec.manifests", i),
            "empty path: give a file of objects, relative to this scenario file",
        );
    }
    let backends: Vec<BackendSpec> = raw
        .backends
        .into_iter()
        .enumerate()
        .map(|(i, b)| backend::backend(c, child_index("spec.backends", i), b))
        .collect();
    unique(
        c,
        backends
            .iter()
            .map(|b| (b.key().to_string(), b.field("name"))),
        "backend",
    );
    c.ensure(
        !raw.load.is_empty(),
        "spec.load",
        "a Scenario needs at least one load: the run lasts as long as its loads",
    );
    let mut times_known = true;
    let loads: Vec<LoadSpec> = raw
        .load
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let (load, known) = load::load(c, i, l);
            times_known &= known;
            load
        })
        .collect();
    unique(
        c,
        loads.iter().map(|l| (l.name.clone(), l.field("name"))),
        "load name",
    );
    let run = times_known.then(|| loads.iter().map(LoadSpec::end).max().unwrap_or_default());
    let declared = Declared {
        backends: &backends,
        loads: &loads,
        run,
    };
    let faults = raw
        .faults
        .into_iter()
        .enumerate()
        .filter_map(|(i, f)| fault::fault(c, child_index("spec.faults", i), f, &declared))
        .collect();
    let expect: Vec<Expectation> = raw
        .expect
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| expect::expectation(c, child_index("spec.expect", i), e, &declared))
        .collect();
    unique(
        c,
        expect
            .iter()
            .filter_map(|e| Some((e.name.clone()?, e.field("name")))),
        "expectation name",
    );
    ScenarioSpec {
        description: raw.description,
        seed: raw.seed.unwrap_or(1),
        manifests: raw.manifests,
        backends,
        load: loads,
        faults,
        expect,
    }
}

/// Reports the second and later uses of each key, pointing back at the first.
fn unique(c: &mut Checker<'_>, items: impl Iterator<Item = (String, String)>, what: &str) {
    let mut seen: HashMap<String, String> = HashMap::new();
    for (key, path) in items {
        match seen.get(&key) {
            Some(first) => c.error(
                &path,
                format!("duplicate {what} `{key}` (first declared at {first})"),
            ),
            None => {
                let first = path.strip_suffix(".name").unwrap_or(&path).to_string();
                seen.insert(key, first);
            }
        }
    }
}

fn check_fraction(c: &mut Checker<'_>, path: &str, value: f64) {
    c.ensure(
        (0.0..=1.0).contains(&value),
        path,
        format!("must be a fraction from 0 to 1 (0.05 for 5%), got {value}"),
    );
}

fn check_status(c: &mut Checker<'_>, path: &str, status: u16) {
    c.ensure(
        (200..=599).contains(&status),
        path,
        format!("status {status} is not a final HTTP status the backend can answer with (allowed: 200 to 599)"),
    );
}

fn check_path(c: &mut Checker<'_>, path: &str, value: &str) {
    let ok = value.starts_with('/') && http::uri::PathAndQuery::from_str(value).is_ok();
    c.ensure(
        ok,
        path,
        format!("invalid path `{value}`: expected an absolute path such as /payments (a query is allowed: /search?q=1)"),
    );
}

/// The declared backend that `[ns/]name` names; a bare name matches any namespace if unique.
fn resolve_backend<'a>(
    c: &mut Checker<'_>,
    path: &str,
    text: &str,
    backends: &'a [BackendSpec],
) -> Option<&'a BackendSpec> {
    let declared = || {
        if backends.is_empty() {
            "no backends are declared".to_string()
        } else {
            let names: Vec<String> = backends.iter().map(|b| b.key().to_string()).collect();
            format!("declared: {}", names.join(", "))
        }
    };
    let found: Vec<&BackendSpec> = match text.split_once('/') {
        Some((ns, name)) => backends
            .iter()
            .filter(|b| b.namespace == ns && b.name == name)
            .collect(),
        None => backends.iter().filter(|b| b.name == text).collect(),
    };
    match found.as_slice() {
        [one] => Some(one),
        [] => {
            c.error(
                path,
                format!("no backend `{text}` in spec.backends ({})", declared()),
            );
            None
        }
        several => {
            let namespaces: Vec<&str> = several.iter().map(|b| b.namespace.as_str()).collect();
            c.error(
                path,
                format!(
                    "backend `{text}` is declared in several namespaces ({}): write `namespace/{text}`",
                    namespaces.join(", ")
                ),
            );
            None
        }
    }
}

/// Message tail explaining where the run ends.
fn run_note(run: Duration) -> String {
    format!(
        "the run ends at {}, the latest start + duration in spec.load",
        fmt(run)
    )
}
