//! `spec.load[]`: request shape, open/closed loop or ramp, and times.

use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

use super::super::raw::{RawLoad, RawStage};
use super::super::values::{self, fmt, is_dns_subdomain};
use super::super::{LoadShape, LoadSpec, Stage};
use super::check_path;
use crate::scenario::check::Checker;
use crate::scenario::yaml::{child_index, child_key};

/// Highest open-loop rate, requests per second (the load generator's limit).
const MAX_RATE: f64 = 10_000_000.0;
/// Most closed-loop workers of one load.
const MAX_CONCURRENCY: u32 = 100_000;

/// A load, and whether its start and duration are valid (so the run length can be trusted).
pub(super) fn load(c: &mut Checker<'_>, index: usize, raw: RawLoad) -> (LoadSpec, bool) {
    let path = child_index("spec.load", index);
    let at = |field: &str| child_key(&path, field);
    let name = raw.name.unwrap_or_else(|| format!("load-{index}"));
    c.ensure(
        !name.trim().is_empty() && !name.chars().any(char::is_control),
        &at("name"),
        "a load name must be non-empty printable text",
    );
    let gateway = raw
        .gateway
        .as_deref()
        .and_then(|g| values::namespaced(c, &at("gateway"), g, "Gateway"));
    if let Some(listener) = &raw.listener {
        c.ensure(
            is_dns_subdomain(listener),
            &at("listener"),
            format!(
                "`{listener}` is not a valid listener name: lowercase letters, digits, '-' and '.'"
            ),
        );
    }
    if let Some(host) = &raw.host {
        let valid = http::uri::Authority::from_str(host).is_ok_and(|a| !a.as_str().contains('@'));
        c.ensure(
            valid,
            &at("host"),
            format!("invalid host `{host}`: expected a host name with an optional port, such as shop.example.com or shop.example.com:8080"),
        );
    }
    let method = method(c, &at("method"), raw.method.as_deref().unwrap_or("GET"));
    let request_path = raw.path.unwrap_or_else(|| "/".to_string());
    check_path(c, &at("path"), &request_path);
    let headers = headers(c, &at("headers"), raw.headers);
    let has_stages = raw.stages.is_some();
    let shape = shape(
        c,
        &path,
        raw.rate,
        raw.concurrency,
        raw.stages,
        raw.start_rate,
    );
    let start = match &raw.start {
        Some(s) => values::duration(c, &at("start"), &s.0),
        None => Some(Duration::ZERO),
    };
    let stages_total = match &shape {
        Some(LoadShape::Stages { stages, .. }) => Some(stages.iter().map(|s| s.duration).sum()),
        _ => None,
    };
    let duration = match (&raw.duration, stages_total) {
        (Some(d), _) => values::duration(c, &at("duration"), &d.0),
        (None, Some(total)) => Some(total),
        (None, None) if has_stages => None,
        (None, None) => {
            c.error(
                &path,
                "missing field `duration`: how long the load runs, such as 20s (optional only with `stages`, which default it to their total)",
            );
            None
        }
    };
    if let Some(d) = duration {
        c.ensure(
            !d.is_zero(),
            &at("duration"),
            "a load's duration must be above 0s",
        );
        if let Some(total) = stages_total.filter(|total| d < *total) {
            c.error(
                &at("duration"),
                format!(
                    "duration {} is shorter than the stages ({} in total): leave `duration` out or make it at least as long",
                    fmt(d),
                    fmt(total)
                ),
            );
        }
    }
    let timeout = match &raw.timeout {
        Some(t) => values::duration(c, &at("timeout"), &t.0),
        None => Some(Duration::from_secs(30)),
    };
    if let Some(t) = timeout {
        c.ensure(!t.is_zero(), &at("timeout"), "timeout must be above 0s");
    }
    if let Some(n) = raw.connections {
        c.ensure(n >= 1, &at("connections"), "connections must be at least 1");
    }
    let times_known = start.is_some() && duration.is_some();
    let load = LoadSpec {
        yaml_path: path.clone(),
        name,
        gateway,
        listener: raw.listener,
        host: raw.host,
        method,
        path: request_path,
        headers,
        shape: shape.unwrap_or(LoadShape::Rate(1.0)),
        start: start.unwrap_or_default(),
        duration: duration.unwrap_or_default(),
        timeout: timeout.unwrap_or_default(),
        connections: raw.connections,
    };
    (load, times_known)
}

fn method(c: &mut Checker<'_>, path: &str, text: &str) -> http::Method {
    let upper = text.to_ascii_uppercase();
    if upper != text && http::Method::from_bytes(upper.as_bytes()).is_ok_and(|m| is_standard(&m)) {
        c.error(path, format!("methods are case-sensitive: write `{upper}`"));
        return http::Method::GET;
    }
    match http::Method::from_bytes(text.as_bytes()) {
        Ok(m) => m,
        Err(_) => {
            c.error(
                path,
                format!(
                    "invalid method `{text}`: expected an HTTP method such as GET, POST or PUT"
                ),
            );
            http::Method::GET
        }
    }
}

fn is_standard(m: &http::Method) -> bool {
    [
        http::Method::GET,
        http::Method::HEAD,
        http::Method::POST,
        http::Method::PUT,
        http::Method::DELETE,
        http::Method::CONNECT,
        http::Method::OPTIONS,
        http::Method::TRACE,
        http::Method::PATCH,
    ]
    .contains(m)
}

fn headers(
    c: &mut Checker<'_>,
    path: &str,
    raw: indexmap::IndexMap<String, Value>,
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        let at = child_key(path, &name);
        let Ok(header) = http::HeaderName::from_bytes(name.as_bytes()) else {
            c.error(&at, format!("`{name}` is not a valid header name"));
            continue;
        };
        if header == http::header::HOST {
            c.error(
                &at,
                "set the Host header with the load's `host` field, not in `headers`",
            );
            continue;
        }
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                c.error(&at, "a header value must be text (or a number)");
                continue;
            }
        };
        if http::HeaderValue::from_str(&text).is_err() {
            c.error(
                &at,
                "invalid header value: only visible ASCII, spaces and tabs are allowed",
            );
            continue;
        }
        out.push((header.as_str().to_string(), text));
    }
    out
}

/// Exactly one of `rate`, `concurrency`, `stages`; `startRate` only with `stages`.
fn shape(
    c: &mut Checker<'_>,
    path: &str,
    rate: Option<f64>,
    concurrency: Option<u32>,
    stages: Option<Vec<RawStage>>,
    start_rate: Option<f64>,
) -> Option<LoadShape> {
    let at = |field: &str| child_key(path, field);
    let given: Vec<&str> = [
        ("rate", rate.is_some()),
        ("concurrency", concurrency.is_some()),
        ("stages", stages.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(name, _)| *name)
    .collect();
    const CHOICES: &str = "`rate` (open loop, requests per second), `concurrency` (closed loop, workers) or `stages` (a ramp of rates)";
    match given.as_slice() {
        [] => {
            c.error(path, format!("a load needs one of {CHOICES}"));
            return None;
        }
        [_] => {}
        [first, rest @ ..] => {
            for other in rest {
                c.error(
                    &at(other),
                    format!("`{first}` and `{other}` are both set: give exactly one of {CHOICES}"),
                );
            }
            return None;
        }
    }
    if start_rate.is_some() && stages.is_none() {
        c.error(
            &at("startRate"),
            "`startRate` only applies to `stages` (the rate the first stage ramps from)",
        );
    }
    if let Some(rate) = rate {
        return check_rate(c, &at("rate"), rate, false).then_some(LoadShape::Rate(rate));
    }
    if let Some(n) = concurrency {
        let ok = (1..=MAX_CONCURRENCY).contains(&n);
        c.ensure(
            ok,
            &at("concurrency"),
            format!("concurrency must be from 1 to {MAX_CONCURRENCY} workers, got {n}"),
        );
        return ok.then_some(LoadShape::Concurrency(n));
    }
    let raw_stages = stages.unwrap_or_default();
    let stages_path = at("stages");
    if raw_stages.is_empty() {
        c.error(
            &stages_path,
            "give at least one stage, such as [{duration: 10s, rate: 100}]",
        );
        return None;
    }
    let start_rate = start_rate.unwrap_or(0.0);
    let mut ok = check_rate(c, &at("startRate"), start_rate, true);
    let mut out = Vec::with_capacity(raw_stages.len());
    for (i, stage) in raw_stages.into_iter().enumerate() {
        let stage_path = child_index(&stages_path, i);
        let duration = values::duration(c, &child_key(&stage_path, "duration"), &stage.duration.0);
        if duration.is_some_and(|d| d.is_zero()) {
            c.error(
                &child_key(&stage_path, "duration"),
                "a stage's duration must be above 0s",
            );
            ok = false;
        }
        ok &= check_rate(c, &child_key(&stage_path, "rate"), stage.rate, true);
        match duration {
            Some(duration) => out.push(Stage {
                duration,
                rate: stage.rate,
            }),
            None => ok = false,
        }
    }
    if ok && start_rate == 0.0 && out.iter().all(|s| s.rate == 0.0) {
        c.error(
            &stages_path,
            "every stage has rate 0, so no request would be sent",
        );
        ok = false;
    }
    ok.then_some(LoadShape::Stages {
        start_rate,
        stages: out,
    })
}

fn check_rate(c: &mut Checker<'_>, path: &str, rate: f64, zero_ok: bool) -> bool {
    let ok = rate.is_finite() && rate <= MAX_RATE && (rate > 0.0 || (zero_ok && rate == 0.0));
    let low = if zero_ok { "from 0" } else { "above 0" };
    c.ensure(
        ok,
        path,
        format!("rate must be {low} up to {MAX_RATE} requests per second, got {rate}"),
    );
    ok
}
