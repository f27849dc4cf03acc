//! Which routes attach to which listeners, following the Gateway API attachment rules.
//!
//! The result mirrors Envoy Gateway's IR: one entry per route rule per listener it attaches
//! through, each backed by one cluster named `<kind>/<ns>/<name>/rule/<i>`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::gateway_api::{
    BackendRef, GrpcRouteMatch, HttpRouteMatch, HttpRouteRetry, LabelSelector, Listener,
    ParentReference,
};
use super::objects::{Meta, ObjectSet};
use super::selector::selector_matches;
use crate::scenario::diag::SourceDoc;

/// The route kinds a BackendTrafficPolicy can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    Http,
    Grpc,
    Tls,
    Tcp,
    Udp,
}

/// A listener of a Gateway, possibly contributed by a ListenerSet.
#[derive(Debug, Clone)]
pub struct ListenerNode {
    pub listener: Listener,
    /// `namespace/name` of the ListenerSet that contributed it, if any.
    pub listener_set: Option<(String, String)>,
}

/// A Gateway and all its listeners (its own first, then ListenerSet ones).
#[derive(Debug, Clone)]
pub struct GatewayNode {
    pub meta: Meta,
    pub listeners: Vec<ListenerNode>,
}

/// One rule of a route.
#[derive(Debug, Clone)]
pub struct RuleNode {
    pub name: Option<String>,
    pub backend_refs: Vec<BackendRef>,
    /// `timeouts.request` of an HTTPRoute rule (beats the policy's requestTimeout).
    pub request_timeout: Option<String>,
    /// `timeouts.backendRequest` of an HTTPRoute rule.
    pub backend_request_timeout: Option<String>,
    /// An HTTPRoute rule's own `retry` (beats the policy's retry).
    pub route_retry: Option<HttpRouteRetry>,
    /// The rule's request matches (HTTPRoute or GRPCRoute form).
    pub matches: RuleMatches,
}

/// The matches of a rule, in its route kind's form.
#[derive(Debug, Clone)]
pub enum RuleMatches {
    Http(Vec<HttpRouteMatch>),
    Grpc(Vec<GrpcRouteMatch>),
    /// TCP, TLS and UDP rules match on the listener alone.
    None,
}

/// A parentRef of a route and the listeners it attached through.
#[derive(Debug, Clone)]
pub struct ParentNode {
    pub parent_ref: ParentReference,
    /// Namespace of the parent (parentRef.namespace or the route's).
    pub namespace: String,
    /// Index of the managed Gateway (for ListenerSet parents, the ListenerSet's Gateway).
    pub gateway: Option<usize>,
    /// Listeners (indices into the Gateway's listener list) the route attached to.
    pub listeners: Vec<usize>,
}

/// A route with its parents and rules.
#[derive(Debug, Clone)]
pub struct RouteNode {
    pub kind: RouteKind,
    pub meta: Meta,
    pub hostnames: Vec<String>,
    pub parents: Vec<ParentNode>,
    pub rules: Vec<RuleNode>,
    pub source: Arc<SourceDoc>,
}

/// A route rule reached through one listener: the unit a policy governs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleAttachment {
    pub route: usize,
    pub rule: usize,
    pub gateway: usize,
    pub listener: usize,
}

/// Gateways, routes and the attachments between them.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub gateways: Vec<GatewayNode>,
    pub listener_sets: Vec<(Meta, usize)>,
    pub routes: Vec<RouteNode>,
    pub attachments: Vec<RuleAttachment>,
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl RouteKind {
    /// The Kubernetes kind (`HTTPRoute`).
    pub fn kind_name(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
            RouteKind::Tls => "TLSRoute",
            RouteKind::Tcp => "TCPRoute",
            RouteKind::Udp => "UDPRoute",
        }
    }

    /// Parses a Kubernetes kind name.
    pub fn from_kind(kind: &str) -> Option<RouteKind> {
        Some(match kind {
            "HTTPRoute" => RouteKind::Http,
            "GRPCRoute" => RouteKind::Grpc,
            "TLSRoute" => RouteKind::Tls,
            "TCPRoute" => RouteKind::Tcp,
            "UDPRoute" => RouteKind::Udp,
            _ => return None,
        })
    }

    /// The prefix of Envoy Gateway's cluster and IR route names (`httproute`).
    pub fn prefix(self) -> &'static str {
        match self {
            RouteKind::Http => "httproute",
            RouteKind::Grpc => "grpcroute",
            RouteKind::Tls => "tlsroute",
            RouteKind::Tcp => "tcproute",
            RouteKind::Udp => "udproute",
        }
    }

    /// HTTP and gRPC routes get the whole feature set; the others only cluster settings.
    pub fn is_http(self) -> bool {
        matches!(self, RouteKind::Http | RouteKind::Grpc)
    }

    fn allowed_on(self, protocol: &str) -> bool {
        match self {
            RouteKind::Http | RouteKind::Grpc => matches!(protocol, "HTTP" | "HTTPS"),
            RouteKind::Tls => protocol == "TLS",
            RouteKind::Tcp => matches!(protocol, "TCP" | "TLS"),
            RouteKind::Udp => protocol == "UDP",
        }
    }
}

impl fmt::Display for RouteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind_name())
    }
}

impl RouteNode {
    /// Envoy Gateway's cluster name for a rule: `httproute/<ns>/<name>/rule/<i>`. TCP, TLS and
    /// UDP routes have exactly one rule, which Envoy Gateway numbers -1.
    pub fn cluster_name(&self, rule: usize) -> String {
        let (ns, name) = (&self.meta.namespace, &self.meta.name);
        if self.kind.is_http() {
            format!("{}/{ns}/{name}/rule/{rule}", self.kind.prefix())
        } else {
            format!("{}/{ns}/{name}/rule/-1", self.kind.prefix())
        }
    }
}

impl Topology {
    /// Builds the attachment graph of every route to the Gateways in `objects`.
    pub fn build(objects: &ObjectSet) -> Topology {
        let mut topology = Topology {
            namespace_labels: objects
                .namespaces
                .iter()
                .map(|ns| (ns.name.clone(), ns.labels.clone()))
                .collect(),
            ..Topology::default()
        };
        for gateway in &objects.gateways {
            let listeners = gateway
                .spec
                .listeners
                .iter()
                .map(|l| ListenerNode {
                    listener: l.clone(),
                    listener_set: None,
                })
                .collect();
            topology.gateways.push(GatewayNode {
                meta: gateway.meta.clone(),
                listeners,
            });
        }
        for set in &objects.listener_sets {
            let parent_ns = set
                .spec
                .parent_ref
                .namespace
                .clone()
                .unwrap_or_else(|| set.meta.namespace.clone());
            let Some(gw) = topology.gateway_index(&parent_ns, &set.spec.parent_ref.name) else {
                continue;
            };
            for listener in &set.spec.listeners {
                topology.gateways[gw].listeners.push(ListenerNode {
                    listener: listener.clone(),
                    listener_set: Some((set.meta.namespace.clone(), set.meta.name.clone())),
                });
            }
            topology.listener_sets.push((set.meta.clone(), gw));
        }
        for route in &objects.http_routes {
            let rules = route
                .spec
                .rules
                .iter()
                .map(|r| RuleNode {
                    name: r.name.clone(),
                    backend_refs: r.backend_refs.clone(),
                    request_timeout: r.timeouts.as_ref().and_then(|t| t.request.clone()),
                    backend_request_timeout: r
                        .timeouts
                        .as_ref()
                        .and_then(|t| t.backend_request.clone()),
                    route_retry: r.retry.clone(),
                    matches: RuleMatches::Http(r.matches.clone()),
                })
                .collect();
            topology.add_route(
                RouteKind::Http,
                &route.meta,
                &route.spec.hostnames,
                &route.spec.parent_refs,
                rules,
                &route.source,
            );
        }
        for route in &objects.grpc_routes {
            let rules = route
                .spec
                .rules
                .iter()
                .map(|r| RuleNode {
                    matches: RuleMatches::Grpc(r.matches.clone()),
                    ..plain_rule(r.name.clone(), &r.backend_refs)
                })
                .collect();
            topology.add_route(
                RouteKind::Grpc,
                &route.meta,
                &route.spec.hostnames,
                &route.spec.parent_refs,
                rules,
                &route.source,
            );
        }
        for (kind, routes) in [
            (RouteKind::Tls, &objects.tls_routes),
            (RouteKind::Tcp, &objects.tcp_routes),
            (RouteKind::Udp, &objects.udp_routes),
        ] {
            for route in routes {
                let rules = route
                    .spec
                    .rules
                    .iter()
                    .map(|r| plain_rule(r.name.clone(), &r.backend_refs))
                    .collect();
                topology.add_route(
                    kind,
                    &route.meta,
                    &route.spec.hostnames,
                    &route.spec.parent_refs,
                    rules,
                    &route.source,
                );
            }
        }
        topology.attachments = topology.compute_attachments();
        topology
    }

    /// Index of the Gateway `namespace/name`.
    pub fn gateway_index(&self, namespace: &str, name: &str) -> Option<usize> {
        self.gateways
            .iter()
            .position(|g| g.meta.namespace == namespace && g.meta.name == name)
    }

    /// Index of the route of `kind` named `namespace/name`.
    pub fn route_index(&self, kind: RouteKind, namespace: &str, name: &str) -> Option<usize> {
        self.routes
            .iter()
            .position(|r| r.kind == kind && r.meta.namespace == namespace && r.meta.name == name)
    }

    /// Labels of a namespace, when the inputs declare it.
    pub fn namespace_labels(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.namespace_labels.get(namespace)
    }

    fn add_route(
        &mut self,
        kind: RouteKind,
        meta: &Meta,
        hostnames: &[String],
        parent_refs: &[ParentReference],
        rules: Vec<RuleNode>,
        source: &Arc<SourceDoc>,
    ) {
        let parents = parent_refs
            .iter()
            .map(|p| {
                let namespace = p
                    .namespace
                    .clone()
                    .unwrap_or_else(|| meta.namespace.clone());
                let mut node = ParentNode {
                    parent_ref: p.clone(),
                    namespace,
                    gateway: None,
                    listeners: Vec::new(),
                };
                self.attach(kind, meta, hostnames, &mut node);
                node
            })
            .collect();
        self.routes.push(RouteNode {
            kind,
            meta: meta.clone(),
            hostnames: hostnames.to_vec(),
            parents,
            rules,
            source: source.clone(),
        });
    }

    /// Finds the Gateway a parentRef names and the listeners that accept the route.
    fn attach(&self, kind: RouteKind, meta: &Meta, hostnames: &[String], parent: &mut ParentNode) {
        let p = &parent.parent_ref;
        let group = p.group.as_deref().unwrap_or("gateway.networking.k8s.io");
        if group != "gateway.networking.k8s.io" && group != "gateway.networking.x-k8s.io" {
            return;
        }
        let (gateway, listener_set) = match p.kind.as_deref().unwrap_or("Gateway") {
            "Gateway" => (self.gateway_index(&parent.namespace, &p.name), None),
            "ListenerSet" | "XListenerSet" => {
                let found = self
                    .listener_sets
                    .iter()
                    .find(|(m, _)| m.namespace == parent.namespace && m.name == p.name);
                match found {
                    Some((m, gw)) => (Some(*gw), Some((m.namespace.clone(), m.name.clone()))),
                    None => (None, None),
                }
            }
            _ => (None, None),
        };
        let Some(gw) = gateway else { return };
        parent.gateway = Some(gw);
        let gateway_ns = self.gateways[gw].meta.namespace.clone();
        for (index, node) in self.gateways[gw].listeners.iter().enumerate() {
            let listener = &node.listener;
            if node.listener_set != listener_set {
                continue;
            }
            if p.section_name.as_ref().is_some_and(|s| *s != listener.name) {
                continue;
            }
            if p.port.is_some_and(|port| port != listener.port) {
                continue;
            }
            let owner_ns = node
                .listener_set
                .as_ref()
                .map_or(gateway_ns.as_str(), |(ns, _)| ns.as_str());
            if self.listener_accepts(listener, owner_ns, kind, meta, hostnames) {
                parent.listeners.push(index);
            }
        }
    }

    fn listener_accepts(
        &self,
        listener: &Listener,
        owner_ns: &str,
        kind: RouteKind,
        meta: &Meta,
        hostnames: &[String],
    ) -> bool {
        let allowed = listener.allowed_routes.clone().unwrap_or_default();
        let kind_ok = if allowed.kinds.is_empty() {
            kind.allowed_on(&listener.protocol)
        } else {
            allowed.kinds.iter().any(|k| k.kind == kind.kind_name())
                && kind.allowed_on(&listener.protocol)
        };
        if !kind_ok {
            return false;
        }
        let namespaces = allowed.namespaces.unwrap_or_default();
        let ns_ok = match namespaces.from.as_deref().unwrap_or("Same") {
            "All" => true,
            "Selector" => {
                let empty = BTreeMap::new();
                let labels = self.namespace_labels(&meta.namespace).unwrap_or(&empty);
                namespaces
                    .selector
                    .as_ref()
                    .is_some_and(|s: &LabelSelector| {
                        selector_matches(&s.match_labels, &s.match_expressions, labels)
                    })
            }
            _ => meta.namespace == owner_ns,
        };
        if !ns_ok {
            return false;
        }
        match (&listener.hostname, kind) {
            (Some(listener_host), RouteKind::Http | RouteKind::Grpc | RouteKind::Tls)
                if !hostnames.is_empty() =>
            {
                hostnames
                    .iter()
                    .any(|h| hostnames_intersect(listener_host, h))
            }
            _ => true,
        }
    }

    fn compute_attachments(&self) -> Vec<RuleAttachment> {
        let mut out: Vec<RuleAttachment> = Vec::new();
        for (route_index, route) in self.routes.iter().enumerate() {
            // Envoy Gateway rejects TCP, TLS and UDP routes without exactly one rule.
            if !route.kind.is_http() && route.rules.len() != 1 {
                continue;
            }
            for parent in &route.parents {
                let Some(gateway) = parent.gateway else {
                    continue;
                };
                for &listener in &parent.listeners {
                    for rule in 0..route.rules.len() {
                        let a = RuleAttachment {
                            route: route_index,
                            rule,
                            gateway,
                            listener,
                        };
                        if !out.contains(&a) {
                            out.push(a);
                        }
                    }
                }
            }
        }
        out
    }
}

fn plain_rule(name: Option<String>, backend_refs: &[BackendRef]) -> RuleNode {
    RuleNode {
        name,
        backend_refs: backend_refs.to_vec(),
        request_timeout: None,
        backend_request_timeout: None,
        route_retry: None,
        matches: RuleMatches::None,
    }
}

/// Gateway API hostname intersection: exact, or a wildcard (`*.example.com`) on either side.
pub fn hostnames_intersect(a: &str, b: &str) -> bool {
    let a = a.to_ascii_lowercase();
    let b = b.to_ascii_lowercase();
    if a == b {
        return true;
    }
    let wildcard_covers = |wild: &str, host: &str| {
        wild.strip_prefix('*')
            .is_some_and(|suffix| host.ends_with(suffix) && host.len() > suffix.len())
    };
    wildcard_covers(&a, &b) || wildcard_covers(&b, &a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_intersection_follows_gateway_api() {
        assert!(hostnames_intersect("foo.example.com", "foo.example.com"));
        assert!(hostnames_intersect("*.example.com", "foo.example.com"));
        assert!(hostnames_intersect("foo.bar.example.com", "*.example.com"));
        assert!(hostnames_intersect("*.example.com", "*.bar.example.com"));
        assert!(!hostnames_intersect("*.example.com", "example.com"));
        assert!(!hostnames_intersect("foo.example.com", "bar.example.com"));
    }
}
