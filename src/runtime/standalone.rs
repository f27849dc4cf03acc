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
