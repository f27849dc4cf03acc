//! `chaosgate explain`: policy status and the effective policy of every route rule, as the JSON
//! contract of scenario-format.md and as a table for people.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::enforcement::not_enforced;
use super::resolve::{Resolution, RuleOutcome};
use super::status::AncestorStatus;
use super::topology::Topology;

/// The `explain --output json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub policies: Vec<PolicyReport>,
    pub routes: Vec<RouteReport>,
    /// Policies whose targets matched nothing: Envoy Gateway writes no status for them.
    pub unattached: Vec<String>,
}

/// One processed policy and its Gateway API status.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    pub namespace: String,
    pub name: String,
    /// `null` when the policy was processed but reached no ancestor (unknown targets).
    pub ancestors: Option<Vec<AncestorStatus>>,
}

/// One route rule on one listener, with the policy that governs it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteReport {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub rule: usize,
    pub rule_name: Option<String>,
    pub gateway: String,
    /// `namespace/name` of the ListenerSet that contributed the listener, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener_set: Option<String>,
    pub listener: String,
    pub cluster: String,
    pub policy: Option<String>,
    pub merged_with: Option<String>,
    /// TCP/UDP routes: policies that supplied fields the first one left unset.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inherited_from: Vec<String>,
    pub effective: Value,
    pub direct_response: Option<u16>,
    /// The policy whose translation failed, when `directResponse` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_response_by: Option<String>,
    /// Effective fields the HTTPRoute rule itself overrides (`timeouts.request`, `retry`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub superseded_by_route: Vec<String>,
    pub not_enforced: Vec<String>,
}

impl Explanation {
    /// Assembles the report from a resolution.
    pub fn new(topology: &Topology, resolution: &Resolution) -> Explanation {
        let key = |i: usize| resolution.sorted[i].key();
        let policies = resolution
            .processed
            .iter()
            .map(|p| {
                let meta = &resolution.sorted[p.index];
                PolicyReport {
                    namespace: meta.namespace.clone(),
                    name: meta.name.clone(),
                    ancestors: (!p.status.ancestors.is_empty()).then(|| p.status.ancestors.clone()),
                }
            })
            .collect();
        let routes = resolution
            .rules
            .iter()
            .map(|r| route_report(topology, r, &key))
            .collect();
        Explanation {
            policies,
            routes,
            unattached: resolution.unattached.iter().map(|&i| key(i)).collect(),
        }
    }

    /// The human form: route rules with their governing policy, then each policy's status.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let rows: Vec<[String; 4]> = self
            .routes
            .iter()
            .map(|r| {
                let rule = match &r.rule_name {
                    Some(name) => format!(
                        "{} {}/{} rule {} ({name})",
                        r.kind, r.namespace, r.name, r.rule
                    ),
                    None => format!("{} {}/{} rule {}", r.kind, r.namespace, r.name, r.rule),
                };
                let listener = match &r.listener_set {
                    Some(set) => format!("{}/{set}/{}", r.gateway, r.listener),
                    None => format!("{}/{}", r.gateway, r.listener),
                };
                let policy = match (&r.policy, &r.merged_with, r.direct_response) {
                    (_, _, Some(status)) => format!(
                        "direct response {status} ({} failed)",
                        r.direct_response_by.as_deref().unwrap_or("policy")
                    ),
                    (Some(p), Some(m), None) => format!("{p} merged with {m}"),
                    (Some(p), None, None) if !r.inherited_from.is_empty() => {
                        format!("{p} + {}", r.inherited_from.join(", "))
                    }
                    (Some(p), None, None) => p.clone(),
                    (None, _, None) => "(none: Envoy defaults)".into(),
                };
                [rule, listener, r.cluster.clone(), policy]
            })
            .collect();
        let headers = ["ROUTE RULE", "LISTENER", "CLUSTER", "POLICY"];
        let widths: Vec<usize> = (0..4)
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].len())
                    .chain([headers[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: [&str; 4]| {
            let mut s = String::new();
            for (c, cell) in cells.iter().enumerate() {
                if c < 3 {
                    let _ = write!(s, "{cell:<w$}  ", w = widths[c]);
                } else {
                    s.push_str(cell);
                }
            }
            s.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(headers));
        for (row, route) in rows.iter().zip(&self.routes) {
            let _ = writeln!(out, "{}", line([&row[0], &row[1], &row[2], &row[3]]));
            if let Some(map) = route.effective.as_object().filter(|m| !m.is_empty()) {
                for (field, value) in map {
                    let _ = writeln!(out, "    {field}: {}", compact(value));
                }
            }
            for field in &route.superseded_by_route {
                let _ = writeln!(out, "    ! {field} is overridden by the HTTPRoute rule");
            }
            if !route.not_enforced.is_empty() {
                let _ = writeln!(
                    out,
                    "    ! not enforced by the embedded proxy: {}",
                    route.not_enforced.join(", ")
                );
            }
        }
        if self.routes.is_empty() {
            let _ = writeln!(out, "(no route rules attach to any Gateway listener)");
        }
        let _ = writeln!(out);
        for policy in &self.policies {
            let _ = writeln!(
                out,
                "BackendTrafficPolicy {}/{}",
                policy.namespace, policy.name
            );
            match &policy.ancestors {
                None => {
                    let _ = writeln!(out, "  (no ancestors: its targets were not found)");
                }
                Some(ancestors) => {
                    for a in ancestors {
                        let r = &a.ancestor_ref;
                        let section = r
                            .section_name
                            .as_deref()
                            .map(|s| format!("/{s}"))
                            .unwrap_or_default();
                        let _ = writeln!(out, "  {} {}/{}{section}", r.kind, r.namespace, r.name);
                        for c in &a.conditions {
                            let _ = writeln!(
                                out,
                                "    {}={} {}: {}",
                                c.kind, c.status, c.reason, c.message
                            );
                        }
                    }
                }
            }
        }
        for name in &self.unattached {
            let _ = writeln!(
                out,
                "BackendTrafficPolicy {name}\n  (not attached: its targets match nothing; no status)"
            );
        }
        out
    }
}

fn route_report(
    topology: &Topology,
    outcome: &RuleOutcome,
    key: &dyn Fn(usize) -> String,
) -> RouteReport {
    let a = outcome.attachment;
    let route = &topology.routes[a.route];
    let gateway = &topology.gateways[a.gateway];
    let rule = &route.rules[a.rule];
    let effective = &outcome.effective;
    let mut superseded = Vec::new();
    if rule.request_timeout.is_some() && effective.pointer("/timeout/http/requestTimeout").is_some()
    {
        superseded.push("timeout.http.requestTimeout".to_string());
    }
    if rule.route_retry.is_some() && effective.get("retry").is_some() {
        superseded.push("retry".to_string());
    }
    RouteReport {
        kind: route.kind.kind_name().to_string(),
        namespace: route.meta.namespace.clone(),
        name: route.meta.name.clone(),
        rule: a.rule,
        rule_name: rule.name.clone(),
        gateway: gateway.meta.key(),
        listener_set: gateway.listeners[a.listener]
            .listener_set
            .as_ref()
            .map(|(ns, name)| format!("{ns}/{name}")),
        listener: gateway.listeners[a.listener].listener.name.clone(),
        cluster: route.cluster_name(a.rule),
        policy: outcome.policy.map(key),
        merged_with: outcome.merged_with.map(key),
        inherited_from: outcome.inherited_from.iter().map(|&i| key(i)).collect(),
        effective: effective.clone(),
        direct_response: outcome.direct_response,
        direct_response_by: outcome.failed_policy.map(key),
        superseded_by_route: superseded,
        not_enforced: not_enforced(effective),
    }
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
