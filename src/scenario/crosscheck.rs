//! Checks between a Scenario and the Gateway API objects it runs against: loads must reach a
//! listener, expectations must name real routes and rules, and every Service a route sends
//! traffic to must be a declared mock backend.

use super::diag::Diagnostic;
use super::spec::{RuleRef, Scenario};
use crate::policy::gateway_api::BackendRef;
use crate::policy::topology::{RouteNode, Topology};

/// Every inconsistency between `scenario` and `topology`, located in the scenario file (or in
/// the route manifest, for undeclared backends).
pub fn crosscheck(scenario: &Scenario, topology: &Topology) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    check_loads(scenario, topology, &mut errors);
    check_expectations(scenario, topology, &mut errors);
    check_backends(scenario, topology, &mut errors);
    errors
}

/// The Gateway and listener index a load sends to.
pub fn load_target(
    scenario: &Scenario,
    topology: &Topology,
    load: usize,
) -> Result<(usize, usize), Diagnostic> {
    let load = &scenario.spec.load[load];
    let gateway = match &load.gateway {
        Some(gw) => topology
            .gateway_index(&gw.namespace, &gw.name)
            .ok_or_else(|| {
                scenario.error(
                    &load.field("gateway"),
                    format!(
                        "no Gateway {}/{} in the scenario's manifests{}",
                        gw.namespace,
                        gw.name,
                        gateway_list(topology)
                    ),
                )
            })?,
        None => match topology.gateways.len() {
            1 => 0,
            0 => {
                return Err(scenario.error(
                    &load.yaml_path,
                    "the scenario declares no Gateway to send load to",
                ));
            }
            _ => {
                return Err(scenario.error(
                    &load.yaml_path,
                    format!(
                        "several Gateways are declared: set `gateway`{}",
                        gateway_list(topology)
                    ),
                ));
            }
        },
    };
    let listeners = &topology.gateways[gateway].listeners;
    let names = || {
        listeners
            .iter()
            .map(|l| l.listener.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let listener = match &load.listener {
        Some(name) => listeners
            .iter()
            .position(|l| &l.listener.name == name)
            .ok_or_else(|| {
                scenario.error(
                    &load.field("listener"),
                    format!("the Gateway has no listener `{name}`; it has: {}", names()),
                )
            })?,
        None if listeners.len() == 1 => 0,
        None => {
            return Err(scenario.error(
                &load.yaml_path,
                format!(
                    "the Gateway has several listeners: set `listener` to one of: {}",
                    names()
                ),
            ));
        }
    };
    let protocol = listeners[listener].listener.protocol.as_str();
    if !matches!(protocol, "HTTP") {
        return Err(scenario.error(
            &load.yaml_path,
            format!(
                "load goes to HTTP listeners only; listener `{}` is {protocol}",
                listeners[listener].listener.name
            ),
        ));
    }
    Ok((gateway, listener))
}

fn gateway_list(topology: &Topology) -> String {
    if topology.gateways.is_empty() {
        return String::new();
    }
    let names: Vec<String> = topology.gateways.iter().map(|g| g.meta.key()).collect();
    format!(" (declared: {})", names.join(", "))
}

fn check_loads(scenario: &Scenario, topology: &Topology, errors: &mut Vec<Diagnostic>) {
    for index in 0..scenario.spec.load.len() {
        if let Err(e) = load_target(scenario, topology, index) {
            errors.push(e);
        }
    }
}

fn check_expectations(scenario: &Scenario, topology: &Topology, errors: &mut Vec<Diagnostic>) {
    for expectation in &scenario.spec.expect {
        let Some(route_ref) = &expectation.scope.route else {
            continue;
        };
        let path = expectation.field("where.route");
        let routes: Vec<&RouteNode> = topology
            .routes
            .iter()
            .filter(|r| r.meta.namespace == route_ref.namespace && r.meta.name == route_ref.name)
            .collect();
        let Some(route) = routes.first() else {
            errors.push(scenario.error(
                &path,
                format!(
                    "no route {}/{} in the scenario's manifests",
                    route_ref.namespace, route_ref.name
                ),
            ));
            continue;
        };
        match &route_ref.rule {
            Some(RuleRef::Index(i)) if *i >= route.rules.len() => errors.push(scenario.error(
                &path,
                format!(
                    "{} {}/{} has {} rules (indices 0..{})",
                    route.kind,
                    route.meta.namespace,
                    route.meta.name,
                    route.rules.len(),
                    route.rules.len()
                ),
            )),
            Some(RuleRef::Name(name))
                if !route
                    .rules
                    .iter()
                    .any(|r| r.name.as_deref() == Some(name.as_str())) =>
            {
                let named: Vec<&str> = route
                    .rules
                    .iter()
                    .filter_map(|r| r.name.as_deref())
                    .collect();
                errors.push(scenario.error(
                    &path,
                    format!(
                        "{} {}/{} has no rule named `{name}`{}",
                        route.kind,
                        route.meta.namespace,
                        route.meta.name,
                        if named.is_empty() {
                            " (its rules have no names)".to_string()
                        } else {
                            format!("; named rules: {}", named.join(", "))
                        }
                    ),
                ))
            }
            _ => {}
        }
    }
}

/// Every Service a route rule sends to must be a declared backend, so a mock can serve it.
fn check_backends(scenario: &Scenario, topology: &Topology, errors: &mut Vec<Diagnostic>) {
    for route in &topology.routes {
        for (rule_index, rule) in route.rules.iter().enumerate() {
            for (ref_index, backend_ref) in rule.backend_refs.iter().enumerate() {
                if !is_service(backend_ref) {
                    continue;
                }
                let namespace = backend_ref
                    .namespace
                    .clone()
                    .unwrap_or_else(|| route.meta.namespace.clone());
                let declared = scenario
                    .spec
                    .backends
                    .iter()
                    .find(|b| b.namespace == namespace && b.name == backend_ref.name);
                let path = format!("spec.rules[{rule_index}].backendRefs[{ref_index}]");
                match declared {
                    None => errors.push(route.source.error(
                        &path,
                        format!(
                            "Service {namespace}/{} is not a backend of scenario `{}`: declare it under spec.backends so chaosgate can start a mock for it",
                            backend_ref.name, scenario.name
                        ),
                    )),
                    Some(b) => {
                        if let (Some(want), Some(have)) = (backend_ref.port, b.port)
                            && want != have
                        {
                            errors.push(route.source.error(
                                &format!("{path}.port"),
                                format!("port {want} does not match backend {namespace}/{}'s port {have} in the scenario", b.name),
                            ));
                        }
                    }
                }
            }
        }
    }
}

fn is_service(backend_ref: &BackendRef) -> bool {
    backend_ref.group.as_deref().unwrap_or("").is_empty()
        && backend_ref.kind.as_deref().unwrap_or("Service") == "Service"
}
