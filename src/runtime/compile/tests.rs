use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::proxy::config::{LbPolicy, RouteAction};
use crate::scenario::inputs::Inputs;

/// Two endpoints per Service, on made-up loopback ports.
struct Fake;

impl EndpointSource for Fake {
    fn endpoints(
        &self,
        _kind: &str,
        _ns: &str,
        name: &str,
        _port: Option<u16>,
    ) -> Vec<(SocketAddr, usize)> {
        let base = 20000 + name.len() as u16 * 10;
        (0..2)
            .map(|i| (SocketAddr::from(([127, 0, 0, 1], base + i as u16)), i))
            .collect()
    }
}

const MANIFESTS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: default}
spec:
  gatewayClassName: eg
  listeners:
    - {name: http, protocol: HTTP, port: 80, hostname: "*.example.com"}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [shop.example.com]
  rules:
    - matches: [{path: {type: PathPrefix, value: /pay}}, {path: {type: Exact, value: /health}}]
      timeouts: {request: 3s}
      backendRefs: [{name: payments, port: 8080}]
    - backendRefs: [{name: catalog, port: 8080, weight: 3}, {name: search, port: 8080, weight: 1}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: shop, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop}]
  circuitBreaker: {maxConnections: 50, maxPendingRequests: 0, maxParallelRequests: 20}
  retry: {numRetries: 4, retryOn: {triggers: [5xx], httpStatusCodes: [502]}}
  timeout: {tcp: {connectTimeout: 2s}, http: {requestTimeout: 9s}}
  loadBalancer: {type: ConsistentHash, consistentHash: {type: Header, header: {name: x-user}}}
  healthCheck: {passive: {consecutive5XxErrors: 1, maxEjectionPercent: 100}, panicThreshold: 0}
  faultInjection: {abort: {httpStatus: 503, percentage: 10}}
  rateLimit: {local: {rules: [{limit: {requests: 3, unit: Hour}, clientSelectors: [{headers: [{name: x-user-id, value: one}]}]}]}}
"#;

fn compiled() -> Compiled {
    compiled_from(MANIFESTS)
}

fn compiled_from(manifests: &str) -> Compiled {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, manifests).unwrap();
    let inputs = Inputs::load(&[path]).unwrap_or_else(|(e, _)| panic!("{e}"));
    let analysis = inputs.analyze();
    compile(&analysis, &inputs.objects, &Fake, 7).unwrap()
}

#[test]
fn one_cluster_per_rule_with_policy_settings() {
    let c = compiled();
    let names: Vec<&str> = c.config.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "httproute/default/shop/rule/0",
            "httproute/default/shop/rule/1"
        ]
    );
    let payments = &c.config.clusters[0];
    assert_eq!(payments.circuit_breaker.max_connections, 50);
    assert_eq!(payments.circuit_breaker.max_pending_requests, 0);
    assert_eq!(payments.circuit_breaker.max_requests, 20);
    assert_eq!(
        payments.circuit_breaker.max_retries, 1024,
        "Envoy Gateway's max_retries"
    );
    assert_eq!(payments.connect_timeout, Duration::from_secs(2));
    assert_eq!(payments.lb, LbPolicy::ConsistentHash { table_size: 65537 });
    assert_eq!(payments.panic_threshold.get(), 0);
    let outlier = payments.outlier_detection.as_ref().unwrap();
    assert_eq!(outlier.consecutive_5xx.map(|n| n.get()), Some(1));
    assert_eq!(outlier.max_ejection_percent.get(), 100);
    // Weighted backendRefs share one cluster, their weights split over their endpoints.
    let mixed = &c.config.clusters[1];
    let weights: Vec<(String, u32)> = mixed
        .endpoints
        .iter()
        .map(|e| (e.backend.clone(), e.weight.get()))
        .collect();
    assert_eq!(
        weights,
        [
            ("default/catalog".into(), 1500),
            ("default/catalog".into(), 1500),
            ("default/search".into(), 500),
            ("default/search".into(), 500)
        ]
    );
}

#[test]
fn routes_carry_matches_timeouts_retries_and_features() {
    let c = compiled();
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].name, "default/eg/http");
    let routes = &c.config.listeners[0].routes;
    let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "httproute/default/shop/rule/0/match/0",
            "httproute/default/shop/rule/0/match/1",
            "httproute/default/shop/rule/1/match/0"
        ]
    );
    let RouteAction::Forward(forward) = &routes[0].action else {
        panic!("forward")
    };
    // The HTTPRoute's timeouts.request beats the policy's requestTimeout.
    assert_eq!(forward.timeout, Some(Duration::from_secs(3)));
    let RouteAction::Forward(other) = &routes[2].action else {
        panic!("forward")
    };
    assert_eq!(other.timeout, Some(Duration::from_secs(9)));
    assert_eq!(other.idle_timeout, Some(Duration::from_secs(3600)));
    let retry = forward.retry.as_ref().unwrap();
    assert_eq!(retry.num_retries, 4);
    assert!(retry.retry_on.five_xx && !retry.retry_on.retriable_status_codes);
    assert_eq!(retry.retriable_status_codes, vec![502]);
    assert!(forward.hash_policy.is_some());
    assert!(routes[0].fault.is_some());
    assert!(routes[0].local_rate_limit.is_some());
    assert_eq!(routes[0].hostnames.len(), 1);
}

const PROTOCOLS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: default}
spec:
  gatewayClassName: eg
  listeners:
    - {name: http, protocol: HTTP, port: 80}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: plain, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [plain.example.com]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: client, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [client.example.com]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: rpc, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [rpc.example.com]
  rules: [{backendRefs: [{name: grpc, port: 9000}]}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: client, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: client}]
  useClientProtocol: true
"#;

/// The upstream protocol of the compiled cluster `name`.
fn upstream_protocol(c: &Compiled, name: &str) -> crate::proxy::config::UpstreamProtocol {
    c.config
        .clusters
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
        .upstream_protocol
}

/// Envoy Gateway: `useClientProtocol` → use_downstream_protocol_config; a GRPCRoute cluster →
/// explicit HTTP/2; otherwise explicit HTTP/1.1.
#[test]
fn upstream_protocol_follows_route_kind_and_use_client_protocol() {
    use crate::proxy::config::UpstreamProtocol;
    let c = compiled_from(PROTOCOLS);
    let protocol = |name: &str| upstream_protocol(&c, name);
    assert_eq!(
        protocol("httproute/default/plain/rule/0"),
        UpstreamProtocol::Http1
    );
    assert_eq!(
        protocol("httproute/default/client/rule/0"),
        UpstreamProtocol::UseDownstream
    );
    assert_eq!(
        protocol("grpcroute/default/rpc/rule/0"),
        UpstreamProtocol::Http2
    );
}

const APP_PROTOCOLS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: default}
spec:
  gatewayClassName: eg
  listeners:
    - {name: http, protocol: HTTP, port: 80}
---
apiVersion: v1
kind: Service
metadata: {name: h2c, namespace: default}
spec: {ports: [{name: http, port: 8080, appProtocol: kubernetes.io/h2c}]}
---
apiVersion: v1
kind: Service
metadata: {name: eg-h2c, namespace: default}
spec: {ports: [{port: 8080, appProtocol: gateway.envoyproxy.io/h2c}]}
---
apiVersion: v1
kind: Service
metadata: {name: grpc, namespace: default}
spec: {ports: [{port: 8080, appProtocol: grpc}]}
---
apiVersion: v1
kind: Service
metadata: {name: other-port, namespace: default}
spec: {ports: [{port: 8080}, {port: 9090, appProtocol: kubernetes.io/h2c}]}
---
apiVersion: v1
kind: Service
metadata: {name: ws, namespace: default}
spec: {ports: [{port: 8080, appProtocol: kubernetes.io/ws}]}
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: default}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: plain-1, namespace: default, labels: {kubernetes.io/service-name: plain}}
addressType: IPv4
ports: [{name: http, port: 8080, appProtocol: kubernetes.io/h2c}]
endpoints: [{addresses: [10.0.0.1]}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: b-h2c, namespace: default}
spec:
  endpoints: [{ip: {address: 10.0.0.2, port: 8080}}]
  appProtocols: [gateway.envoyproxy.io/h2c]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: b-ws, namespace: default}
spec:
  endpoints: [{ip: {address: 10.0.0.3, port: 8080}}]
  appProtocols: [gateway.envoyproxy.io/ws]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [app.example.com]
  rules:
    - {matches: [{path: {value: /r0}}], backendRefs: [{name: h2c, port: 8080}]}
    - {matches: [{path: {value: /r1}}], backendRefs: [{name: eg-h2c, port: 8080}]}
    - {matches: [{path: {value: /r2}}], backendRefs: [{name: grpc, port: 8080}]}
    - {matches: [{path: {value: /r3}}], backendRefs: [{name: other-port, port: 8080}]}
    - {matches: [{path: {value: /r4}}], backendRefs: [{name: ws, port: 8080}]}
    - {matches: [{path: {value: /r5}}], backendRefs: [{name: plain, port: 8080}, {name: h2c, port: 8080}]}
    - {matches: [{path: {value: /r6}}], backendRefs: [{name: plain, port: 8080}, {name: h2c, port: 8080, weight: 0}]}
    - {matches: [{path: {value: /r7}}], backendRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: b-h2c}]}
    - {matches: [{path: {value: /r8}}], backendRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: b-ws}]}
    - {matches: [{path: {value: /r9}}], backendRefs: [{name: ws, port: 8080}, {name: h2c, port: 8080}]}
    - {matches: [{path: {value: /r10}}], backendRefs: [{name: plain, port: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: client, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [client.example.com]
  rules: [{backendRefs: [{name: ws, port: 8080}, {name: h2c, port: 8080}]}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: client, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: client}]
  useClientProtocol: true
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: rpc, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [rpc.example.com]
  rules:
    - backendRefs: [{name: plain, port: 8080}]
    - matches: [{method: {service: x.Y}}]
      backendRefs: [{name: ws, port: 8080}]
"#;

/// Envoy Gateway v1.9.0 (internal/gatewayapi/route.go `resolveBackendProtocol`,
/// `shouldForceHTTP1Upstream`; internal/xds/translator/cluster.go
/// `buildTypedExtensionProtocolOptions`): the backend's appProtocol picks the upstream protocol.
#[test]
fn upstream_protocol_follows_backend_app_protocol() {
    use crate::proxy::config::UpstreamProtocol::{Http1, Http2, UseDownstream};
    let c = compiled_from(APP_PROTOCOLS);
    let protocol = |name: &str| upstream_protocol(&c, name);
    let rule = |i: usize| protocol(&format!("httproute/default/app/rule/{i}"));
    // A Service port's kubernetes.io/h2c (or the Backend spelling) or grpc → HTTP/2.
    assert_eq!(rule(0), Http2);
    assert_eq!(rule(1), Http2);
    assert_eq!(rule(2), Http2);
    // Only the port the backendRef names counts.
    assert_eq!(rule(3), Http1);
    // WebSocket → explicit HTTP/1.1.
    assert_eq!(rule(4), Http1);
    // One HTTP/2 destination makes the cluster HTTP/2; a weight-0 backendRef is no destination.
    assert_eq!(rule(5), Http2);
    assert_eq!(rule(6), Http1);
    // Envoy Gateway Backend `appProtocols`.
    assert_eq!(rule(7), Http2);
    assert_eq!(rule(8), Http1);
    // WebSocket beats HTTP/2 (Envoy Gateway would split the rule into per-backend clusters).
    assert_eq!(rule(9), Http1);
    // An EndpointSlice port's appProtocol is not read.
    assert_eq!(rule(10), Http1);
    // useClientProtocol beats every appProtocol.
    assert_eq!(protocol("httproute/default/client/rule/0"), UseDownstream);
    // A GRPCRoute is HTTP/2 whatever the appProtocol, except WebSocket forces HTTP/1.1.
    assert_eq!(protocol("grpcroute/default/rpc/rule/0"), Http2);
    assert_eq!(protocol("grpcroute/default/rpc/rule/1"), Http1);

    let mixed: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| w.contains("WebSocket appProtocol together with HTTP/2"))
        .collect();
    // Envoy Gateway splits such rules whatever useClientProtocol says.
    assert_eq!(mixed.len(), 3, "{:?}", c.warnings);
    for cluster in [
        "httproute/default/app/rule/9",
        "httproute/default/client/rule/0",
        "grpcroute/default/rpc/rule/1",
    ] {
        assert!(mixed.iter().any(|w| w.contains(cluster)), "{mixed:?}");
    }
}
