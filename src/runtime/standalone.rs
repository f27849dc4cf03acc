//! `chaosgate proxy`: the embedded proxy alone, for the Gateways in a set of manifests, with
//! endpoints from Envoy Gateway `Backend` objects or Services with EndpointSlices.

use std::net::{IpAddr, SocketAddr};

use super::compile::EndpointSource;
use crate::policy::objects::ObjectSet;

/// Endpoints as a cluster would know them, from the manifests themselves.
pub struct ManifestEndpoints<'a>(pub &'a ObjectSet);

impl EndpointSource for ManifestEndpoints<'_> {
    fn endpoints(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        port: Option<u16>,
    ) -> Vec<(SocketAddr, usize)> {
        let objects = self.0;
        if kind == "Backend" {
            return objects
                .backends
                .iter()
                .filter(|b| b.meta.namespace == namespace && b.meta.name == name)
                .flat_map(|b| b.spec.endpoints.iter())
                .filter_map(|e| e.ip.as_ref())
                .filter_map(|ip| Some(SocketAddr::new(ip.address.parse::<IpAddr>().ok()?, ip.port)))
                .enumerate()
                .map(|(i, addr)| (addr, i))
                .collect();
        }
        // A Service port maps to the EndpointSlice port of the same name (or the only one).
        let service = objects
            .services
            .iter()
            .find(|s| s.meta.namespace == namespace && s.meta.name == name);
        let port_name = service.and_then(|s| {
            s.spec
                .ports
                .iter()
                .find(|p| Some(p.port) == port)
                .and_then(|p| p.name.clone())
        });
        objects
            .endpoint_slices
            .iter()
            .filter(|e| e.namespace == namespace && e.service == name)
            .filter_map(|e| {
                let target = match (&port_name, e.ports.as_slice()) {
                    (Some(n), ports) => ports
                        .iter()
                        .find(|(pn, _)| pn.as_ref() == Some(n))
                        .map(|(_, p)| *p),
                    (None, [(_, only)]) => Some(*only),
                    (None, _) => port,
                }?;
                Some(SocketAddr::new(e.address.parse::<IpAddr>().ok()?, target))
            })
            .enumerate()
            .map(|(i, addr)| (addr, i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::proxy::server::Proxy;
    use crate::proxy::testing::{Backend, Behavior, get};
    use crate::runtime::compile::compile;
    use crate::scenario::inputs::Inputs;

    /// A Gateway with one rule per Service; both Services' EndpointSlices point at `backend`.
    fn manifests(backend: SocketAddr) -> String {
        let (ip, port) = (backend.ip(), backend.port());
        let service = |name: &str, app_protocol: &str| {
            format!(
                r#"
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec: {{ports: [{{name: http, port: 8080{app_protocol}}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: ["{ip}"]}}]
"#
            )
        };
        format!(
            r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: eg, namespace: default}}
spec:
  gatewayClassName: eg
  listeners: [{{name: http, protocol: HTTP, port: 80}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: app, namespace: default}}
spec:
  parentRefs: [{{name: eg}}]
  rules:
    - matches: [{{path: {{type: PathPrefix, value: /h2c}}}}]
      backendRefs: [{{name: fast, port: 8080}}]
    - backendRefs: [{{name: plain, port: 8080}}]
{}{}"#,
            service("fast", ", appProtocol: kubernetes.io/h2c"),
            service("plain", "")
        )
    }

    /// `chaosgate proxy` with a Service port `appProtocol: kubernetes.io/h2c`: the request goes
    /// upstream over HTTP/2 (prior knowledge), while the Service without one gets HTTP/1.1.
    #[tokio::test]
    async fn service_app_protocol_h2c_sends_http2_upstream() {
        let backend = Backend::start("b", Behavior::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, manifests(backend.addr)).unwrap();
        let inputs = Inputs::load(&[path]).unwrap_or_else(|(e, _)| panic!("{e}"));
        let compiled = compile(
            &inputs.analyze(),
            &inputs.objects,
            &ManifestEndpoints(&inputs.objects),
            1,
        )
        .unwrap();
        let listener = compiled.listeners[0].name.clone();
        let bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let proxy = Proxy::start(compiled.config, vec![(listener, bind)], None)
            .await
            .unwrap();
        let addr = proxy.listener_addrs()[0].1;

        let h2c = get(addr, "/h2c", &[]).await;
        assert_eq!(h2c.status, 200);
        assert_eq!(h2c.headers.get("x-upstream-version").unwrap(), "HTTP/2.0");
        let plain = get(addr, "/", &[]).await;
        assert_eq!(plain.status, 200);
        assert_eq!(plain.headers.get("x-upstream-version").unwrap(), "HTTP/1.1");
        proxy.shutdown().await;
    }
}
