//! Raw spec → validated model. Every rule reports into the [`Checker`] and validation goes on, so
//! one run lists every problem. Backends and loads are always kept (with fallbacks for invalid
//! values) so that references to them do not raise follow-up errors.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

use super::raw::{RawBackend, RawExpectation, RawFault, RawLoad, RawScope, RawSpec};
use super::values::{self, fmt, is_dns_label, is_dns_subdomain};
use super::{
    API_VERSION, BackendProtocol, BackendSpec, Expectation, FAULT_TYPES, FaultKind, FaultSpec,
    KIND, LoadShape, LoadSpec, ScenarioSpec, Scope, Stage,
};
use crate::expect::{Assertion, Metric};
use crate::scenario::check::Checker;
use crate::scenario::diag::{Diagnostic, SourceDoc};
use crate::scenario::yaml::{child_index, child_key};

/// Most replicas one backend may have.
const MAX_REPLICAS: u32 = 1000;
/// Highest open-loop rate, requests per second (the load generator's limit).
const MAX_RATE: f64 = 10_000_000.0;
/// Most closed-loop workers of one load.
const MAX_CONCURRENCY: u32 = 100_000;
/// Top-level fields of a Scenario object; `status` is accepted and ignored like other objects'.
const TOP_LEVEL: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
/// Fault fields that belong to some types only.
const TYPED_FAULT_FIELDS: &[&str] = &["latency", "status", "rate", "bytesPerSecond"];

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
        .map(|(i, b)| backend(c, child_index("spec.backends", i), b))
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
            let (load, known) = load(c, i, l);
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
        .filter_map(|(i, f)| fault(c, child_index("spec.faults", i), f, &declared))
        .collect();
    let expect: Vec<Expectation> = raw
        .expect
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| expectation(c, child_index("spec.expect", i), e, &declared))
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

fn backend(c: &mut Checker<'_>, path: String, raw: RawBackend) -> BackendSpec {
    let at = |field: &str| child_key(&path, field);
    let label_rule = "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
    c.ensure(
        is_dns_label(&raw.name),
        &at("name"),
        format!("`{}` is not a valid Service name: {label_rule}", raw.name),
    );
    let namespace = raw.namespace.unwrap_or_else(|| "default".to_string());
    c.ensure(
        is_dns_label(&namespace),
        &at("namespace"),
        format!("`{namespace}` is not a valid namespace: {label_rule}"),
    );
    c.ensure(
        raw.port != Some(0),
        &at("port"),
        "port must be from 1 to 65535",
    );
    let replicas = raw.replicas.unwrap_or(1);
    c.ensure(
        (1..=MAX_REPLICAS).contains(&replicas),
        &at("replicas"),
        format!("replicas must be from 1 to {MAX_REPLICAS}, got {replicas}"),
    );
    let latency = raw
        .latency
        .as_ref()
        .and_then(|v| values::latency(c, &at("latency"), v))
        .unwrap_or_default();
    let error_rate = raw.error_rate.unwrap_or(0.0);
    check_fraction(c, &at("errorRate"), error_rate);
    let error_status = raw.error_status.unwrap_or(500);
    check_status(c, &at("errorStatus"), error_status);
    let health_path = raw.health_path.unwrap_or_else(|| "/healthz".to_string());
    check_path(c, &at("healthPath"), &health_path);
    let protocol = match raw.protocol.as_deref() {
        None | Some("http1") => BackendProtocol::Http1,
        Some("h2c") => BackendProtocol::H2c,
        Some(other) => {
            c.error(
                &at("protocol"),
                format!("unknown protocol `{other}` (allowed: http1, h2c)"),
            );
            BackendProtocol::Http1
        }
    };
    BackendSpec {
        yaml_path: path,
        name: raw.name,
        namespace,
        port: raw.port,
        replicas: replicas.max(1) as usize,
        latency,
        error_rate,
        error_status,
        health_path,
        protocol,
    }
}

/// A load, and whether its start and duration are valid (so the run length can be trusted).
fn load(c: &mut Checker<'_>, index: usize, raw: RawLoad) -> (LoadSpec, bool) {
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
    stages: Option<Vec<super::raw::RawStage>>,
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

fn fault(c: &mut Checker<'_>, path: String, raw: RawFault, d: &Declared<'_>) -> Option<FaultSpec> {
    let at = |field: &str| child_key(&path, field);
    let backend = resolve_backend(c, &at("backend"), &raw.backend, d.backends);
    if let (Some(backend), Some(replicas)) = (backend, &raw.replicas) {
        check_replicas(c, &at("replicas"), replicas, backend);
    }
    let start = values::duration(c, &at("at"), &raw.at.0);
    let duration = raw
        .duration
        .as_ref()
        .and_then(|t| values::duration(c, &at("duration"), &t.0));
    if duration.is_some_and(|t| t.is_zero()) {
        c.error(
            &at("duration"),
            "a fault's duration must be above 0s (leave it out to last until the end of the run)",
        );
    }
    if let (Some(run), Some(start)) = (d.run, start) {
        if start >= run {
            c.error(
                &at("at"),
                format!(
                    "the fault starts at {}, not before the end of the run: {}",
                    fmt(start),
                    run_note(run)
                ),
            );
        } else if let Some(end) = duration.map(|t| start + t).filter(|end| *end > run) {
            c.error(
                &at("duration"),
                format!("the fault ends at {}, after the end of the run: {} (leave `duration` out to last until then)", fmt(end), run_note(run)),
            );
        }
    }
    let kind = fault_kind(c, &path, &raw);
    let (backend, start, kind) = (backend?, start?, kind?);
    Some(FaultSpec {
        yaml_path: path,
        backend: backend.key(),
        replicas: raw.replicas,
        at: start,
        duration,
        kind,
    })
}

fn check_replicas(c: &mut Checker<'_>, path: &str, replicas: &[usize], backend: &BackendSpec) {
    if replicas.is_empty() {
        c.error(
            path,
            "an empty list hits no replica: list replica indices, or leave `replicas` out for every replica",
        );
    }
    for (i, &replica) in replicas.iter().enumerate() {
        let item = child_index(path, i);
        if replica >= backend.replicas {
            c.error(
                &item,
                format!(
                    "replica {replica} is out of range: backend `{}` has {} replica{} (indices 0 to {})",
                    backend.key(),
                    backend.replicas,
                    if backend.replicas == 1 { "" } else { "s" },
                    backend.replicas - 1
                ),
            );
        } else if replicas[..i].contains(&replica) {
            c.error(&item, format!("replica {replica} is listed twice"));
        }
    }
}

/// The fault type and its own fields; fields of other types are errors.
fn fault_kind(c: &mut Checker<'_>, path: &str, raw: &RawFault) -> Option<FaultKind> {
    let at = |field: &str| child_key(path, field);
    let own: &[&str] = match raw.kind.as_str() {
        "latency" => &["latency"],
        "error" => &["status", "rate"],
        "slowBody" => &["bytesPerSecond"],
        "hang" | "reset" | "kill" | "pause" | "partition" | "unhealthy" => &[],
        other => {
            c.error(
                &at("type"),
                format!(
                    "unknown fault type `{other}` (allowed: {})",
                    FAULT_TYPES.join(", ")
                ),
            );
            return None;
        }
    };
    let present = [
        raw.latency.is_some(),
        raw.status.is_some(),
        raw.rate.is_some(),
        raw.bytes_per_second.is_some(),
    ];
    let mut stray = false;
    for (field, _) in TYPED_FAULT_FIELDS
        .iter()
        .zip(present)
        .filter(|(field, set)| *set && !own.contains(field))
    {
        stray = true;
        let allowed = if own.is_empty() {
            "it takes no fields of its own".to_string()
        } else {
            let names: Vec<String> = own.iter().map(|f| format!("`{f}`")).collect();
            format!("its fields: {}", names.join(", "))
        };
        c.error(
            &at(field),
            format!(
                "`{field}` does not apply to fault type `{}` ({allowed})",
                raw.kind
            ),
        );
    }
    let kind = match raw.kind.as_str() {
        "latency" => match &raw.latency {
            Some(v) => FaultKind::Latency(values::latency(c, &at("latency"), v)?),
            None => {
                c.error(
                    &at("type"),
                    "fault type `latency` needs `latency`: a duration (2s) or a distribution ({uniform: [1s, 3s]})",
                );
                return None;
            }
        },
        "error" => {
            let status = raw.status.unwrap_or(503);
            check_status(c, &at("status"), status);
            let rate = raw.rate.unwrap_or(1.0);
            check_fraction(c, &at("rate"), rate);
            FaultKind::Error { status, rate }
        }
        "slowBody" => match raw.bytes_per_second {
            Some(0) => {
                c.error(
                    &at("bytesPerSecond"),
                    "bytesPerSecond must be at least 1 (a body that never arrives is `type: hang`)",
                );
                return None;
            }
            Some(n) => FaultKind::SlowBody {
                bytes_per_second: n,
            },
            None => {
                c.error(
                    &at("type"),
                    "fault type `slowBody` needs `bytesPerSecond`, such as 1024",
                );
                return None;
            }
        },
        "hang" => FaultKind::Hang,
        "reset" => FaultKind::Reset,
        "kill" => FaultKind::Kill,
        "pause" => FaultKind::Pause,
        "partition" => FaultKind::Partition,
        _ => FaultKind::Unhealthy,
    };
    (!stray).then_some(kind)
}

fn expectation(
    c: &mut Checker<'_>,
    path: String,
    raw: RawExpectation,
    d: &Declared<'_>,
) -> Option<Expectation> {
    let at = |field: &str| child_key(&path, field);
    if let Some(name) = &raw.name {
        c.ensure(
            !name.trim().is_empty(),
            &at("name"),
            "an expectation name must not be empty (leave it out to use the assertion as its name)",
        );
    }
    let assertion = match Assertion::parse(&raw.assert) {
        Ok(a) => Some(a),
        Err(err) => {
            c.error(&at("assert"), err.to_string());
            None
        }
    };
    let scope = scope(c, &at("where"), raw.scope.unwrap_or_default(), d);
    let assertion = assertion?;
    let scope = scope?;
    let where_path = at("where");
    if assertion.metric.needs_backend() && scope.backend.is_none() {
        c.error(
            &at("assert"),
            format!(
                "`{}` needs `where.backend`: it is the share of the scope's requests served by that backend (and replica)",
                assertion.metric
            ),
        );
        return None;
    }
    if let Metric::Stat(_) = assertion.metric {
        for (field, set) in [
            ("load", scope.load.is_some()),
            ("replica", scope.replica.is_some()),
        ] {
            if set {
                c.error(
                    &child_key(&where_path, field),
                    format!(
                        "`{}` reads a proxy counter, which is kept per cluster: `where.{field}` cannot narrow it (allowed: route, backend, from, to)",
                        assertion.metric
                    ),
                );
            }
        }
    }
    Some(Expectation {
        yaml_path: path,
        name: raw.name,
        scope,
        assertion,
    })
}

fn scope(c: &mut Checker<'_>, path: &str, raw: RawScope, d: &Declared<'_>) -> Option<Scope> {
    let at = |field: &str| child_key(path, field);
    let mut ok = true;
    let route = match &raw.route {
        Some(r) => {
            let route = values::route_ref(c, &at("route"), r);
            ok &= route.is_some();
            route
        }
        None => None,
    };
    let backend = match &raw.backend {
        Some(b) => {
            let found = resolve_backend(c, &at("backend"), b, d.backends);
            ok &= found.is_some();
            found
        }
        None => None,
    };
    if let Some(replica) = raw.replica {
        match backend {
            Some(b) if replica >= b.replicas => {
                c.error(
                    &at("replica"),
                    format!(
                        "replica {replica} is out of range: backend `{}` has {} replica{} (indices 0 to {})",
                        b.key(),
                        b.replicas,
                        if b.replicas == 1 { "" } else { "s" },
                        b.replicas - 1
                    ),
                );
                ok = false;
            }
            Some(_) => {}
            None if raw.backend.is_none() => {
                c.error(
                    &at("replica"),
                    "`replica` needs `backend` in the same `where`: a replica index is per backend",
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(load) = &raw.load
        && !d.loads.iter().any(|l| &l.name == load)
    {
        let names: Vec<&str> = d.loads.iter().map(|l| l.name.as_str()).collect();
        c.error(
            &at("load"),
            format!(
                "no load named `{load}` in spec.load (declared: {})",
                names.join(", ")
            ),
        );
        ok = false;
    }
    let from = raw
        .from
        .as_ref()
        .and_then(|v| values::run_time(c, &at("from"), v));
    let to = raw
        .to
        .as_ref()
        .and_then(|v| values::run_time(c, &at("to"), v));
    ok &= raw.from.is_none() || from.is_some();
    ok &= raw.to.is_none() || to.is_some();
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        c.error(
            &at("to"),
            format!("`to` ({}) must be after `from` ({})", fmt(to), fmt(from)),
        );
        ok = false;
    }
    if let Some(run) = d.run {
        if let Some(from) = from.filter(|f| *f >= run) {
            c.error(
                &at("from"),
                format!(
                    "`from` ({}) is not before the end of the run: {}",
                    fmt(from),
                    run_note(run)
                ),
            );
            ok = false;
        }
        if let Some(to) = to.filter(|t| *t > run) {
            c.error(
                &at("to"),
                format!(
                    "`to` ({}) is after the end of the run: {}",
                    fmt(to),
                    run_note(run)
                ),
            );
            ok = false;
        }
    }
    ok.then(|| Scope {
        route,
        backend: backend.map(BackendSpec::key),
        replica: raw.replica,
        load: raw.load,
        from,
        to,
    })
}
