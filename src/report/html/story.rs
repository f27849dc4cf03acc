//! The scenario's story: backends, the fault timeline, the loads and, per route rule, the policy
//! that governed it with its effective settings — the `explain` document stored in `policies`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::escape::Esc;
use super::format::{flatten, scalar};
use crate::chaos::timeline::Edge;
use crate::report::results::RunResults;

/// The story section.
pub fn story(out: &mut String, r: &RunResults) {
    out.push_str(
        "<section id=\"story\">\n<h2>Scenario and policies</h2>\n<div class=\"grid\">\n<div>\n",
    );
    backends(out, r);
    loads(out, r);
    out.push_str("</div>\n<div>\n");
    faults(out, r);
    out.push_str("</div>\n</div>\n");
    route_policies(out, &r.policies);
    policy_status(out, &r.policies);
    out.push_str("</section>\n");
}

fn backends(out: &mut String, r: &RunResults) {
    let mut replicas: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &r.series.replicas {
        let (backend, replica) = s.name.rsplit_once('/').unwrap_or((&s.name, ""));
        replicas.entry(backend).or_default().push(replica);
    }
    out.push_str("<h3>Backends</h3>\n");
    if replicas.is_empty() {
        out.push_str("<p>No per-replica data was recorded.</p>\n");
        return;
    }
    out.push_str("<table>\n<tr><th>Backend</th><th class=\"num\">Replicas</th></tr>\n");
    for (backend, list) in &replicas {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td></tr>",
            Esc(backend),
            list.len()
        );
    }
    out.push_str("</table>\n");
}

fn loads(out: &mut String, r: &RunResults) {
    out.push_str("<h3>Load</h3>\n");
    if r.loads.is_empty() {
        out.push_str("<p>No load was recorded.</p>\n");
        return;
    }
    out.push_str(
        "<table>\n<tr><th>Load</th><th>Mode</th><th class=\"num\">Target</th>\
         <th class=\"num\">Sent</th><th class=\"num\">Achieved</th>\
         <th class=\"num\">Client overloads</th></tr>\n",
    );
    for load in &r.loads {
        let field = |k: &str| load.get(k).cloned().unwrap_or(Value::Null);
        let target = match (field("target_rate"), field("concurrency")) {
            (Value::Number(rate), _) => format!("{} req/s", trim_float(&rate)),
            (_, Value::Number(c)) => format!("{c} workers"),
            _ => "—".to_string(),
        };
        let achieved = match field("achieved_rate") {
            Value::Number(rate) => format!("{} req/s", trim_float(&rate)),
            other => scalar(&other),
        };
        let duration = match field("duration_s") {
            Value::Number(d) => format!(" for {}s", trim_float(&d)),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            Esc(&scalar(&field("name"))),
            Esc(&scalar(&field("mode"))),
            Esc(&target),
            Esc(&duration),
            Esc(&scalar(&field("sent"))),
            Esc(&achieved),
            Esc(&scalar(&field("client_overloads"))),
        );
    }
    out.push_str("</table>\n");
}

fn trim_float(n: &serde_json::Number) -> String {
    n.as_f64().map_or_else(
        || n.to_string(),
        |f| format!("{}", (f * 100.0).round() / 100.0),
    )
}

fn faults(out: &mut String, r: &RunResults) {
    out.push_str("<h3>Fault timeline</h3>\n");
    if r.faults.is_empty() {
        out.push_str("<p>No faults were injected.</p>\n");
        return;
    }
    out.push_str(
        "<table>\n<tr><th>#</th><th>Fault</th><th>Backend</th><th>Replicas</th>\
         <th class=\"num\">Starts</th><th class=\"num\">Ends</th></tr>\n",
    );
    // One row per fault: its start edge, joined with its end edge when it has one.
    let mut seen = Vec::new();
    for e in r.faults.iter().filter(|e| e.edge == Edge::Start) {
        seen.push(e.fault);
        let end = r
            .faults
            .iter()
            .find(|x| x.fault == e.fault && x.edge == Edge::End && x.at_s >= e.at_s);
        let replicas = if e.replicas.is_empty() {
            "all".to_string()
        } else {
            e.replicas
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let errors: Vec<&str> = [Some(e), end]
            .into_iter()
            .flatten()
            .filter_map(|x| x.error.as_deref())
            .collect();
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}{}</td><td><code>{}</code></td><td>{}</td>\
             <td class=\"num\" title=\"applied at {:.3}s\">{:.1}s</td><td class=\"num\">{}</td></tr>",
            e.fault,
            Esc(&e.kind),
            errors
                .iter()
                .map(|err| format!("<br><span class=\"bad\">not applied: {}</span>", Esc(err)))
                .collect::<String>(),
            Esc(&e.backend),
            Esc(&replicas),
            e.applied_s,
            e.at_s,
            end.map_or_else(|| "—".to_string(), |x| format!("{:.1}s", x.at_s)),
        );
    }
    out.push_str("</table>\n");
}

fn route_policies(out: &mut String, policies: &Value) {
    out.push_str("<h3>Policy in force per route rule</h3>\n");
    let routes = policies.get("routes").and_then(Value::as_array);
    let Some(routes) = routes.filter(|r| !r.is_empty()) else {
        out.push_str("<p>No route rules were recorded.</p>\n");
        return;
    };
    out.push_str(
        "<table>\n<tr><th>Route rule</th><th>Listener</th><th>Governing policy</th>\
         <th>Effective settings</th><th>Notes</th></tr>\n",
    );
    for route in routes {
        let text = |k: &str| route.get(k).map(scalar).unwrap_or_default();
        let rule = match route.get("ruleName").and_then(Value::as_str) {
            Some(name) => format!(
                "{} {}/{} rule {} ({name})",
                text("kind"),
                text("namespace"),
                text("name"),
                text("rule")
            ),
            None => format!(
                "{} {}/{} rule {}",
                text("kind"),
                text("namespace"),
                text("name"),
                text("rule")
            ),
        };
        let mut governing = match route.get("policy").and_then(Value::as_str) {
            Some(p) => format!("<code>{}</code>", Esc(p)),
            None => "<span class=\"warn\">none</span>".to_string(),
        };
        if let Some(m) = route.get("mergedWith").and_then(Value::as_str) {
            let _ = write!(governing, "<br>merged with <code>{}</code>", Esc(m));
        }
        for inherited in strings(route.get("inheritedFrom")) {
            let _ = write!(
                governing,
                "<br>inherits from <code>{}</code>",
                Esc(&inherited)
            );
        }
        let effective = route
            .get("effective")
            .map(flatten)
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| {
                format!(
                    "<li><code>{}</code> = <code>{}</code></li>",
                    Esc(&k),
                    Esc(&v)
                )
            })
            .collect::<String>();
        let mut notes = String::new();
        if let Some(code) = route.get("directResponse").and_then(Value::as_u64) {
            let _ = write!(
                notes,
                "<div class=\"callout alert\">answered directly with {code}{}</div>",
                route
                    .get("directResponseBy")
                    .and_then(Value::as_str)
                    .map(|p| format!(" (invalid policy <code>{}</code>)", Esc(p)))
                    .unwrap_or_default()
            );
        }
        let superseded = strings(route.get("supersededByRoute"));
        if !superseded.is_empty() {
            let _ = write!(
                notes,
                "<div>overridden by the route rule itself: <code>{}</code></div>",
                Esc(&superseded.join(", "))
            );
        }
        for w in strings(route.get("notEnforced")) {
            let _ = write!(
                notes,
                "<div class=\"callout\"><strong>not enforced:</strong> {}</div>",
                Esc(&w)
            );
        }
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code><br><span class=\"meta\">cluster <code>{}</code></span></td>\
             <td><code>{}/{}</code></td><td>{governing}</td><td><ul class=\"effective\">{}</ul>\
             </td><td>{notes}</td></tr>",
            Esc(&rule),
            Esc(&text("cluster")),
            Esc(&text("gateway")),
            Esc(&text("listener")),
            if effective.is_empty() {
                "<li>defaults</li>".to_string()
            } else {
                effective
            },
        );
    }
    out.push_str("</table>\n");
}

fn policy_status(out: &mut String, policies: &Value) {
    let list = policies.get("policies").and_then(Value::as_array);
    let unattached = strings(policies.get("unattached"));
    if list.is_none_or(|l| l.is_empty()) && unattached.is_empty() {
        return;
    }
    out.push_str(
        "<h3>Policy status</h3>\n<table>\n<tr><th>Policy</th><th>Ancestor</th><th>Conditions</th></tr>\n",
    );
    for policy in list.into_iter().flatten() {
        let name = format!(
            "{}/{}",
            policy.get("namespace").map(scalar).unwrap_or_default(),
            policy.get("name").map(scalar).unwrap_or_default()
        );
        let ancestors = policy.get("ancestors").and_then(Value::as_array);
        let Some(ancestors) = ancestors.filter(|a| !a.is_empty()) else {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td colspan=\"2\" class=\"warn\">reached no ancestor</td></tr>",
                Esc(&name)
            );
            continue;
        };
        for a in ancestors {
            let r = a.get("ancestorRef").cloned().unwrap_or(Value::Null);
            let ancestor = format!(
                "{} {}/{}{}",
                r.get("kind").map(scalar).unwrap_or_default(),
                r.get("namespace").map(scalar).unwrap_or_default(),
                r.get("name").map(scalar).unwrap_or_default(),
                r.get("sectionName")
                    .and_then(Value::as_str)
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            );
            let conditions: String = a
                .get("conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| {
                    let get = |k: &str| c.get(k).map(scalar).unwrap_or_default();
                    // Only Accepted says whether the policy works; other conditions inform.
                    let class = match (get("type").as_str(), get("status").as_str()) {
                        ("Accepted", "True") => "ok",
                        ("Accepted", _) => "bad",
                        _ => "warn",
                    };
                    format!(
                        "<div><span class=\"{class}\">{}={}</span> {}: {}</div>",
                        Esc(&get("type")),
                        Esc(&get("status")),
                        Esc(&get("reason")),
                        Esc(&get("message"))
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{conditions}</td></tr>",
                Esc(&name),
                Esc(&ancestor)
            );
        }
    }
    for u in &unattached {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td colspan=\"2\" class=\"warn\">targets nothing: no status written</td></tr>",
            Esc(u)
        );
    }
    out.push_str("</table>\n");
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(scalar)
        .collect()
}
