//! The set of Kubernetes objects a scenario or manifest folder declares, typed and located.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::gateway_api::{
    BackendSpec, GatewaySpec, GrpcRouteSpec, HttpRouteSpec, L4RouteSpec, LabelSelector,
    ListenerSetSpec, ReferenceGrantSpec, ServiceSpec,
};
use crate::scenario::diag::SourceDoc;

/// The Kubernetes metadata chaosgate reads; the rest is bookkeeping and ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339 as written; orders policies (missing sorts first, like Go's zero time).
    pub creation_timestamp: Option<String>,
    pub generation: i64,
}

/// A typed object with its metadata and the document it came from (for located errors).
#[derive(Debug, Clone)]
pub struct Object<T> {
    pub meta: Meta,
    pub spec: T,
    pub source: Arc<SourceDoc>,
}

/// A BackendTrafficPolicy: its spec as written (JSON, for merges and `explain`) and its targets.
#[derive(Debug, Clone)]
pub struct PolicySpec {
    /// `spec` with explicit nulls removed, as Go's typed round trip would leave it.
    pub raw: Value,
    pub targets: PolicyTargets,
}

/// `targetRef`, `targetRefs` and `targetSelectors` of a policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTargets {
    #[serde(default)]
    pub target_ref: Option<TargetRef>,
    #[serde(default)]
    pub target_refs: Vec<TargetRef>,
    #[serde(default)]
    pub target_selectors: Vec<TargetSelector>,
}

/// A local reference to a Gateway, ListenerSet or route, optionally narrowed by section name.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub section_name: Option<String>,
}

/// Selects targets by label.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetSelector {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<super::gateway_api::LabelSelectorRequirement>,
    #[serde(default)]
    pub namespaces: Option<TargetSelectorNamespaces>,
}

/// `targetSelectors[].namespaces`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetSelectorNamespaces {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

/// One ready endpoint of a Service, from an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceEndpoint {
    pub service: String,
    pub namespace: String,
    pub address: String,
    pub ports: Vec<(Option<String>, u16)>,
}

/// Everything declared in a set of files.
#[derive(Debug, Clone, Default)]
pub struct ObjectSet {
    pub gateways: Vec<Object<GatewaySpec>>,
    pub listener_sets: Vec<Object<ListenerSetSpec>>,
    pub http_routes: Vec<Object<HttpRouteSpec>>,
    pub grpc_routes: Vec<Object<GrpcRouteSpec>>,
    pub tcp_routes: Vec<Object<L4RouteSpec>>,
    pub udp_routes: Vec<Object<L4RouteSpec>>,
    pub tls_routes: Vec<Object<L4RouteSpec>>,
    pub policies: Vec<Object<PolicySpec>>,
    pub reference_grants: Vec<Object<ReferenceGrantSpec>>,
    pub namespaces: Vec<Meta>,
    pub services: Vec<Object<ServiceSpec>>,
    pub endpoint_slices: Vec<SliceEndpoint>,
    pub backends: Vec<Object<BackendSpec>>,
    /// ConfigMaps, for responseOverride bodies: `data` by key (binaryData keys map to None).
    pub config_maps: Vec<(Meta, BTreeMap<String, Option<String>>)>,
    /// `kind: Scenario` documents, decoded by the scenario module.
    pub scenarios: Vec<Arc<SourceDoc>>,
}

impl Meta {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Envoy Gateway's policy order: creation time, then namespace, then name.
pub fn policy_order(a: &Meta, b: &Meta) -> Ordering {
    let time = match (&a.creation_timestamp, &b.creation_timestamp) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(y),
    };
    time.then_with(|| a.namespace.cmp(&b.namespace))
        .then_with(|| a.name.cmp(&b.name))
}

/// Removes explicit nulls: Go's typed decoding drops them, so merges must not see them.
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ns: &str, name: &str, ts: Option<&str>) -> Meta {
        Meta {
            name: name.into(),
            namespace: ns.into(),
            creation_timestamp: ts.map(Into::into),
            ..Meta::default()
        }
    }

    #[test]
    fn orders_policies_like_envoy_gateway() {
        let mut list = [
            meta("b", "x", Some("2024-01-02T00:00:00Z")),
            meta("a", "z", Some("2024-01-01T00:00:00Z")),
            meta("a", "y", Some("2024-01-01T00:00:00Z")),
            meta("z", "z", None),
        ];
        list.sort_by(policy_order);
        let keys: Vec<_> = list.iter().map(Meta::key).collect();
        assert_eq!(keys, ["z/z", "a/y", "a/z", "b/x"]);
    }

    #[test]
    fn strips_nulls_recursively() {
        let mut v = serde_json::json!({"a": null, "b": [{"c": null, "d": 1}]});
        strip_nulls(&mut v);
        assert_eq!(v, serde_json::json!({"b": [{"d": 1}]}));
    }
}
