//! The upstream protocol of a route rule's cluster, from the route kind, the policy's
//! `useClientProtocol` and each backend's application protocol, as Envoy Gateway v1.9.0 decides it.
//!
//! Per backendRef (internal/gatewayapi/route.go, `processServiceDestinationSetting`,
//! `processBackendDestinationSetting`, `resolveBackendProtocol`, `shouldForceHTTP1Upstream`):
//! - an HTTPRoute backend starts as HTTP, a GRPCRoute backend as gRPC;
//! - the Service port whose `port` equals the backendRef's port refines it with its
//!   `appProtocol`: `kubernetes.io/h2c` (or `gateway.envoyproxy.io/h2c`) → HTTP/2, `grpc` →
//!   gRPC (HTTP/2); this only applies to an HTTP default, so a GRPCRoute stays gRPC. EndpointSlice
//!   port `appProtocol`s are not read;
//! - an Envoy Gateway `Backend`'s `spec.appProtocols` are applied in order the same way;
//! - a WebSocket appProtocol (`kubernetes.io/ws[s]`, `gateway.envoyproxy.io/ws[s]`) forces
//!   HTTP/1.1 on HTTP-based routes (gRPC included);
//! - weight-0 backendRefs are left out.
//!
//! Per cluster (internal/xds/translator/cluster.go, `buildTypedExtensionProtocolOptions`):
//! `useClientProtocol` wins, then any forced HTTP/1.1, then any HTTP/2 or gRPC destination,
//! else HTTP/1.1.

use crate::policy::btp::BackendTrafficPolicySpec;
use crate::policy::objects::ObjectSet;
use crate::policy::topology::{RouteKind, RuleNode};
use crate::proxy::config::UpstreamProtocol;

/// What one backendRef asks of the cluster's upstream protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Destination {
    /// HTTP/2 (an h2c or grpc appProtocol, or a GRPCRoute).
    pub http2: bool,
    /// A WebSocket appProtocol: explicit HTTP/1.1.
    pub force_http1: bool,
}

/// The destinations of a rule's backendRefs (weight-0 ones are not destinations).
pub(super) fn destinations(
    objects: &ObjectSet,
    kind: RouteKind,
    rule: &RuleNode,
    route_namespace: &str,
) -> Vec<Destination> {
    rule.backend_refs
        .iter()
        .filter(|b| b.weight != Some(0))
        .map(|b| {
            let namespace = b.namespace.as_deref().unwrap_or(route_namespace);
            let app_protocols = match b.kind.as_deref().unwrap_or("Service") {
                "Service" => service_app_protocol(objects, namespace, &b.name, b.port)
                    .into_iter()
                    .collect(),
                "Backend" => backend_app_protocols(objects, namespace, &b.name),
                _ => Vec::new(),
            };
            destination(kind, &app_protocols)
        })
        .collect()
}

/// The cluster's upstream protocol from its destinations.
pub(super) fn upstream_protocol(
    kind: RouteKind,
    spec: &BackendTrafficPolicySpec,
    destinations: &[Destination],
) -> UpstreamProtocol {
    if spec.use_client_protocol == Some(true) {
        UpstreamProtocol::UseDownstream
    } else if destinations.iter().any(|d| d.force_http1) {
        UpstreamProtocol::Http1
    } else if kind == RouteKind::Grpc || destinations.iter().any(|d| d.http2) {
        UpstreamProtocol::Http2
    } else {
        UpstreamProtocol::Http1
    }
}

/// Envoy Gateway gives each backendRef a cluster of its own when one destination forces
/// HTTP/1.1 and another (or the same) wants HTTP/2 (`HasMixedUpstreamProtocolRequirements`).
pub(super) fn mixed(destinations: &[Destination]) -> bool {
    destinations.iter().any(|d| d.force_http1) && destinations.iter().any(|d| d.http2)
}

fn destination(kind: RouteKind, app_protocols: &[String]) -> Destination {
    let mut http2 = kind == RouteKind::Grpc;
    let mut force_http1 = false;
    for app_protocol in app_protocols {
        // Only an HTTPRoute's plain-HTTP default is refined; the first refinement sticks.
        if kind == RouteKind::Http && !http2 {
            http2 = matches!(
                app_protocol.as_str(),
                "kubernetes.io/h2c" | "gateway.envoyproxy.io/h2c" | "grpc"
            );
        }
        force_http1 |= matches!(
            app_protocol.as_str(),
            "kubernetes.io/ws"
                | "kubernetes.io/wss"
                | "gateway.envoyproxy.io/ws"
                | "gateway.envoyproxy.io/wss"
        );
    }
    Destination { http2, force_http1 }
}

/// The `appProtocol` of the Service port the backendRef names (by port number).
fn service_app_protocol(
    objects: &ObjectSet,
    namespace: &str,
    name: &str,
    port: Option<u16>,
) -> Option<String> {
    objects
        .services
        .iter()
        .find(|s| s.meta.namespace == namespace && s.meta.name == name)?
        .spec
        .ports
        .iter()
        .find(|p| Some(p.port) == port)?
        .app_protocol
        .clone()
}

/// `spec.appProtocols` of an Envoy Gateway Backend.
fn backend_app_protocols(objects: &ObjectSet, namespace: &str, name: &str) -> Vec<String> {
    objects
        .backends
        .iter()
        .find(|b| b.meta.namespace == namespace && b.meta.name == name)
        .and_then(|b| b.spec.app_protocols.as_ref())
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}
