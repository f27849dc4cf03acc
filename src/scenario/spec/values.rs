//! Parsers for the values a Scenario spells as text: durations, latency distributions, names and
//! references. Each reports into the [`Checker`] at the value's path and returns None when invalid.

use std::time::Duration;

use serde_json::Value;

use super::{LatencyDist, NamespacedName, RouteRef, RuleRef};
use crate::scenario::check::Checker;
use crate::scenario::duration::parse_duration;
use crate::scenario::yaml::{child_index, child_key};

/// The latency shapes, quoted when a latency is not understood.
const LATENCY_FORMS: &str = "a duration (5ms) or one of {fixed: 5ms}, {uniform: [1ms, 9ms]}, {lognormal: {p50: 5ms, p99: 40ms}}";

/// An RFC 1123 label (namespaces, Service names, scenario names): `[a-z0-9]([-a-z0-9]*[a-z0-9])?`,
/// at most 63 characters.
pub fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// An RFC 1123 subdomain (route and Gateway names): dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_dns_label)
}

/// A required Gateway API duration.
pub(super) fn duration(c: &mut Checker<'_>, path: &str, text: &str) -> Option<Duration> {
    match parse_duration(text) {
        Ok(d) => Some(d),
        Err(message) => {
            c.error(path, message);
            None
        }
    }
}

/// A latency: a duration string, or a mapping with exactly one of `fixed`, `uniform`, `lognormal`.
pub(super) fn latency(c: &mut Checker<'_>, path: &str, value: &Value) -> Option<LatencyDist> {
    let map = match value {
        Value::String(text) => return duration(c, path, text).map(LatencyDist::Fixed),
        Value::Number(n) => {
            c.error(
                path,
                format!("a bare number is not a latency: give it a unit, for example {n}ms ({LATENCY_FORMS})"),
            );
            return None;
        }
        Value::Object(map) if map.len() == 1 => map,
        _ => {
            c.error(path, format!("expected {LATENCY_FORMS}"));
            return None;
        }
    };
    let (form, inner) = map.iter().next()?;
    let inner_path = child_key(path, form);
    match form.as_str() {
        "fixed" => duration_value(c, &inner_path, inner).map(LatencyDist::Fixed),
        "uniform" => uniform(c, &inner_path, inner),
        "lognormal" => lognormal(c, &inner_path, inner),
        other => {
            c.error(
                &inner_path,
                format!(
                    "unknown latency distribution `{other}` (allowed: fixed, uniform, lognormal)"
                ),
            );
            None
        }
    }
}

/// `uniform: [min, max]` (or `{min, max}`), `min <= max`.
fn uniform(c: &mut Checker<'_>, path: &str, value: &Value) -> Option<LatencyDist> {
    let (min, max) = match value {
        Value::Array(items) if items.len() == 2 => (
            duration_value(c, &child_index(path, 0), &items[0]),
            duration_value(c, &child_index(path, 1), &items[1]),
        ),
        Value::Object(map) => {
            let known = check_keys(c, path, map, &["min", "max"]);
            let min = required_duration(c, path, map.get("min"), "min");
            let max = required_duration(c, path, map.get("max"), "max");
            if !known {
                return None;
            }
            (min, max)
        }
        _ => {
            c.error(
                path,
                "expected a list of two durations, [min, max], such as [1ms, 9ms]",
            );
            return None;
        }
    };
    let (min, max) = (min?, max?);
    if min > max {
        c.error(
            path,
            format!(
                "uniform latency needs min <= max, got [{}, {}]",
                fmt(min),
                fmt(max)
            ),
        );
        return None;
    }
    Some(LatencyDist::Uniform { min, max })
}

/// `lognormal: {p50, p99}`, `p50 <= p99`, and `p50 > 0` unless both are 0.
fn lognormal(c: &mut Checker<'_>, path: &str, value: &Value) -> Option<LatencyDist> {
    let Value::Object(map) = value else {
        c.error(
            path,
            "expected a mapping {p50: <duration>, p99: <duration>}, such as {p50: 5ms, p99: 40ms}",
        );
        return None;
    };
    let known = check_keys(c, path, map, &["p50", "p99"]);
    let p50 = required_duration(c, path, map.get("p50"), "p50");
    let p99 = required_duration(c, path, map.get("p99"), "p99");
    let (p50, p99) = (p50?, p99?);
    if !known {
        return None;
    }
    if p50 > p99 {
        c.error(
            &child_key(path, "p99"),
            format!(
                "lognormal latency needs p50 <= p99, got p50 {} and p99 {}",
                fmt(p50),
                fmt(p99)
            ),
        );
        return None;
    }
    if p50.is_zero() && !p99.is_zero() {
        c.error(
            &child_key(path, "p50"),
            "lognormal latency needs p50 > 0 when p99 > 0",
        );
        return None;
    }
    Some(LatencyDist::LogNormal { p50, p99 })
}

/// Reports keys of `map` that are not in `allowed`; true when there were none.
fn check_keys(
    c: &mut Checker<'_>,
    path: &str,
    map: &serde_json::Map<String, Value>,
    allowed: &[&str],
) -> bool {
    let mut ok = true;
    for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
        let expected: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
        c.error(
            &child_key(path, key),
            format!("unknown field `{key}`, expected {}", expected.join(" or ")),
        );
        ok = false;
    }
    ok
}

fn required_duration(
    c: &mut Checker<'_>,
    path: &str,
    value: Option<&Value>,
    field: &str,
) -> Option<Duration> {
    match value {
        Some(value) => duration_value(c, &child_key(path, field), value),
        None => {
            c.error(path, format!("missing field `{field}`"));
            None
        }
    }
}

/// A duration given as a JSON value; numbers get a "use a unit" message.
fn duration_value(c: &mut Checker<'_>, path: &str, value: &Value) -> Option<Duration> {
    match value {
        Value::String(text) => duration(c, path, text),
        Value::Number(n) => {
            c.error(
                path,
                format!("a bare number is not a duration: give it a unit, for example {n}ms"),
            );
            None
        }
        _ => {
            c.error(path, "expected a duration such as 250ms, 2s or 1m30s");
            None
        }
    }
}

/// `from`/`to`: seconds of the run, as a duration (`6s`) or a number of seconds (`6`, `0.5`).
pub(super) fn run_time(c: &mut Checker<'_>, path: &str, value: &Value) -> Option<Duration> {
    match value {
        Value::String(text) => duration(c, path, text),
        Value::Number(n) => match n.as_f64() {
            Some(secs) if secs.is_finite() && (0.0..=1e9).contains(&secs) => {
                Some(Duration::from_secs_f64(secs))
            }
            _ => {
                c.error(
                    path,
                    format!("{n} is not a time in the run: give seconds from 0, or a duration such as 6s"),
                );
                None
            }
        },
        _ => {
            c.error(
                path,
                "expected seconds of the run: a duration such as 6s or a number of seconds",
            );
            None
        }
    }
}

/// `[ns/]name`; the namespace defaults to `default`. `what` names the object in errors.
pub(super) fn namespaced(
    c: &mut Checker<'_>,
    path: &str,
    text: &str,
    what: &str,
) -> Option<NamespacedName> {
    let (namespace, name) = match text.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => ("default", text),
    };
    if !is_dns_label(namespace) || !is_dns_subdomain(name) {
        c.error(
            path,
            format!(
                "invalid {what} reference `{text}`: expected `name` or `namespace/name` (lowercase letters, digits, '-' and '.')"
            ),
        );
        return None;
    }
    Some(NamespacedName::new(namespace, name))
}

/// `[ns/]name` or `[ns/]name/rule/<index or name>`.
pub(super) fn route_ref(c: &mut Checker<'_>, path: &str, text: &str) -> Option<RouteRef> {
    let parts: Vec<&str> = text.split('/').collect();
    let (namespace, name, rule) = match parts.as_slice() {
        [name] => ("default", *name, None),
        [ns, name] => (*ns, *name, None),
        [name, "rule", rule] => ("default", *name, Some(*rule)),
        [ns, name, "rule", rule] => (*ns, *name, Some(*rule)),
        _ => ("", "", None),
    };
    let rule = match rule {
        None => Some(None),
        Some(r) if !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) => {
            r.parse().ok().map(|i| Some(RuleRef::Index(i)))
        }
        Some(r) if is_dns_label(r) => Some(Some(RuleRef::Name(r.to_string()))),
        Some(_) => None,
    };
    match rule {
        Some(rule) if is_dns_label(namespace) && is_dns_subdomain(name) => Some(RouteRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
            rule,
        }),
        _ => {
            c.error(
                path,
                format!(
                    "invalid route reference `{text}`: expected `namespace/name` or `namespace/name/rule/<index or rule name>`"
                ),
            );
            None
        }
    }
}

/// Durations in messages, in Gateway API spelling.
pub(super) fn fmt(d: Duration) -> String {
    crate::expect::format_duration(d)
}
