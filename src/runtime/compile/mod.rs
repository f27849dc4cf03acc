//! From resolved policies to the embedded proxy's configuration: one listener per Gateway HTTP
//! listener, one route per rule match, one cluster per route rule (Envoy Gateway's names), and
//! every policy field the proxy enforces mapped onto Envoy's settings.

mod app_protocol;
mod cluster;
mod features;
mod route;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;

use serde_json::Value;

use crate::policy::btp::BackendTrafficPolicySpec;
use crate::policy::objects::ObjectSet;
use crate::policy::topology::Topology;
use crate::proxy::config::{ClusterConfig, Endpoint, ListenerConfig, ProxyConfig};
use crate::scenario::inputs::Analysis;

pub use route::effective_request_timeout;

/// Where the endpoints of a Service (or Envoy Gateway Backend) are.
pub trait EndpointSource {
    /// Endpoints of `namespace/name` for a backendRef with this port: (address, replica index).
    fn endpoints(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        port: Option<u16>,
    ) -> Vec<(SocketAddr, usize)>;
}

/// A proxy configuration and what it serves.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub config: ProxyConfig,
    /// The listeners, with the Gateway listener each one stands for.
    pub listeners: Vec<CompiledListener>,
    /// Things the embedded proxy will not serve (TCP/UDP/TLS listeners, empty clusters).
    pub warnings: Vec<String>,
}

/// One proxy listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledListener {
    /// `ns/gateway/listener` (Envoy Gateway's IR listener name).
    pub name: String,
    pub gateway: usize,
    pub listener: usize,
    pub port: u16,
}

/// Builds the proxy configuration for every HTTP listener of every Gateway.
pub fn compile(
    analysis: &Analysis,
    objects: &ObjectSet,
    endpoints: &dyn EndpointSource,
    seed: u64,
) -> Result<Compiled, String> {
    let topology = &analysis.topology;
    let mut listeners: BTreeMap<(usize, usize), ListenerConfig> = BTreeMap::new();
    let mut clusters: BTreeMap<String, ClusterConfig> = BTreeMap::new();
    let mut warnings = Vec::new();
    for outcome in &analysis.resolution.rules {
        let a = outcome.attachment;
        let route = &topology.routes[a.route];
        let listener = &topology.gateways[a.gateway].listeners[a.listener].listener;
        if !route.kind.is_http() || !matches!(listener.protocol.as_str(), "HTTP") {
            let message = format!(
                "{} {}/{} on listener {}: the embedded proxy serves plain HTTP listeners only; this rule is not served",
                route.kind, route.meta.namespace, route.meta.name, listener.name
            );
            if !warnings.contains(&message) {
                warnings.push(message);
            }
            continue;
        }
        let spec = decode_effective(&outcome.effective)?;
        let cluster_name = route.cluster_name(a.rule);
        // Envoy Gateway names one cluster per rule; when a rule is reached through several
        // listeners, xDS keeps the first definition of that name.
        if !clusters.contains_key(&cluster_name) {
            let mut built = cluster::build(
                &cluster_name,
                &route.rules[a.rule],
                &route.meta.namespace,
                &spec,
                endpoints,
            )
            .map_err(|e| format!("cluster {cluster_name}: {e}"))?;
            let rule = &route.rules[a.rule];
            let destinations =
                app_protocol::destinations(objects, route.kind, rule, &route.meta.namespace);
            built.upstream_protocol =
                app_protocol::upstream_protocol(route.kind, &spec, &destinations);
            if app_protocol::mixed(&destinations) {
                warnings.push(format!(
                    "cluster {cluster_name}: a WebSocket appProtocol together with HTTP/2 (an h2c or grpc appProtocol, or a GRPCRoute); Envoy Gateway splits the rule into one cluster per backendRef ({cluster_name}/backend/N), the embedded proxy serves it as one cluster"
                ));
            }
            if built.endpoints.is_empty() {
                warnings.push(format!("cluster {cluster_name} has no endpoints: requests to it get 503 no healthy upstream"));
            }
            clusters.insert(cluster_name.clone(), built);
        }
        let name = listener_name(topology, a.gateway, a.listener);
        let entry = listeners
            .entry((a.gateway, a.listener))
            .or_insert_with(|| ListenerConfig {
                name,
                routes: Vec::new(),
            });
        let sorted = &analysis.resolution.sorted;
        let policy_id = outcome.policy.map(|i| sorted[i].key()).unwrap_or_default();
        // responseOverride ConfigMaps live with the policy that supplied the list.
        let namespaces: Vec<&str> = outcome
            .policy
            .iter()
            .chain(outcome.merged_with.iter())
            .map(|&i| sorted[i].namespace.as_str())
            .collect();
        let body_from = |name: &str| {
            namespaces
                .iter()
                .find_map(|ns| config_map_body(objects, ns, name))
        };
        let routes = route::build(
            topology,
            outcome,
            &spec,
            &cluster_name,
            &policy_id,
            &body_from,
        )
        .map_err(|e| {
            format!(
                "{} {}/{} rule {}: {e}",
                route.kind, route.meta.namespace, route.meta.name, a.rule
            )
        })?;
        entry.routes.extend(routes);
    }
    let compiled_listeners = listeners
        .keys()
        .map(|&(gateway, listener)| CompiledListener {
            name: listener_name(topology, gateway, listener),
            gateway,
            listener,
            port: topology.gateways[gateway].listeners[listener].listener.port,
        })
        .collect();
    let config = ProxyConfig {
        listeners: listeners.into_values().collect(),
        clusters: clusters.into_values().collect(),
        seed,
    };
    config.validate().map_err(|e| e.to_string())?;
    Ok(Compiled {
        config,
        listeners: compiled_listeners,
        warnings,
    })
}

/// Envoy Gateway's IR listener name: `ns/gateway/listener` (with the ListenerSet for its listeners).
pub fn listener_name(topology: &Topology, gateway: usize, listener: usize) -> String {
    let gw = &topology.gateways[gateway];
    let node = &gw.listeners[listener];
    match &node.listener_set {
        Some((ns, name)) => format!(
            "{}/{}/{ns}/{name}/{}",
            gw.meta.namespace, gw.meta.name, node.listener.name
        ),
        None => format!(
            "{}/{}/{}",
            gw.meta.namespace, gw.meta.name, node.listener.name
        ),
    }
}

/// A ConfigMap's response body: key `response.body`, or its only key.
fn config_map_body(objects: &ObjectSet, namespace: &str, name: &str) -> Option<String> {
    let (_, data) = objects
        .config_maps
        .iter()
        .find(|(m, _)| m.namespace == namespace && m.name == name)?;
    match data.get("response.body") {
        Some(body) => body.clone(),
        None if data.len() == 1 => data.values().next().cloned().flatten(),
        None => None,
    }
}

fn decode_effective(effective: &Value) -> Result<BackendTrafficPolicySpec, String> {
    serde_json::from_value(effective.clone())
        .map_err(|e| format!("cannot read the effective policy: {e}"))
}

/// Endpoints for the backendRefs of one rule: each backendRef's weight is shared by its
/// endpoints, as Envoy's locality weighting splits traffic between backendRefs.
fn rule_endpoints(
    rule: &crate::policy::topology::RuleNode,
    route_ns: &str,
    source: &dyn EndpointSource,
) -> Vec<Endpoint> {
    // A common scale so that integer endpoint weights keep the backendRef ratios.
    const SCALE: u32 = 1000;
    let mut out = Vec::new();
    for backend_ref in &rule.backend_refs {
        let weight = backend_ref.weight.unwrap_or(1);
        if weight == 0 {
            continue;
        }
        let kind = backend_ref.kind.as_deref().unwrap_or("Service");
        let namespace = backend_ref.namespace.as_deref().unwrap_or(route_ns);
        let found = source.endpoints(kind, namespace, &backend_ref.name, backend_ref.port);
        let count = u32::try_from(found.len()).unwrap_or(u32::MAX).max(1);
        let per_endpoint = (weight.saturating_mul(SCALE) / count).max(1);
        for (addr, replica) in found {
            let mut endpoint =
                Endpoint::new(addr, format!("{namespace}/{}", backend_ref.name), replica);
            endpoint.weight = NonZeroU32::new(per_endpoint).unwrap_or(NonZeroU32::MIN);
            out.push(endpoint);
        }
    }
    out
}

#[cfg(test)]
mod tests;
