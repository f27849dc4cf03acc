//! `spec.expect[]`: the assertion and the `where` scope, checked against the declared objects.

use super::super::raw::{RawExpectation, RawScope};
use super::super::values::{self, fmt};
use super::super::{BackendSpec, Expectation, Scope};
use super::{Declared, resolve_backend, run_note};
use crate::expect::{Assertion, Metric};
use crate::scenario::check::Checker;
use crate::scenario::yaml::child_key;

pub(super) fn expectation(
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
    // Requests are counted in one-second windows by intended send time: a bound inside a
    // second would be silently widened, so it is refused instead.
    for (field, value) in [("from", from), ("to", to)] {
        if let Some(v) = value.filter(|v| v.subsec_nanos() != 0) {
            c.error(
                &at(field),
                format!(
                    "`{field}` ({}) must be a whole number of seconds: requests are counted in 1s windows",
                    fmt(v)
                ),
            );
            ok = false;
        }
    }
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
