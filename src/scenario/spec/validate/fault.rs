//! `spec.faults[]`: the target replicas, the time window and the type with its own fields.

use super::super::raw::RawFault;
use super::super::values::{self, fmt};
use super::super::{BackendSpec, FAULT_TYPES, FaultKind, FaultSpec};
use super::{Declared, check_fraction, check_status, resolve_backend, run_note};
use crate::scenario::check::Checker;
use crate::scenario::yaml::{child_index, child_key};

/// Fault fields that belong to some types only.
const TYPED_FAULT_FIELDS: &[&str] = &["latency", "status", "rate", "bytesPerSecond"];

pub(super) fn fault(
    c: &mut Checker<'_>,
    path: String,
    raw: RawFault,
    d: &Declared<'_>,
) -> Option<FaultSpec> {
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
