//! Policy scopes and the graph of which scope overrides or merges into which, for the
//! `Overridden` and `Merged` status messages of parent policies.

use std::collections::{BTreeMap, BTreeSet};

use super::topology::RouteKind;

/// What kind of attachment point a scope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScopeKind {
    Gateway,
    GatewayListener,
    ListenerSet,
    ListenerSetListener,
    Route,
    RouteRule,
}

/// A policy attachment point.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    pub kind: ScopeKind,
    pub namespace: String,
    pub name: String,
    pub section: String,
    pub route_kind: Option<RouteKind>,
}

/// Parent → child relations between scopes, plus structural containment for traversal.
#[derive(Debug, Clone, Default)]
pub struct ScopeGraph {
    children: BTreeMap<Scope, BTreeSet<Scope>>,
    containment: BTreeMap<Scope, BTreeSet<Scope>>,
}

impl Scope {
    fn new(kind: ScopeKind, namespace: &str, name: &str, section: &str) -> Scope {
        Scope {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            section: section.into(),
            route_kind: None,
        }
    }

    pub fn gateway(namespace: &str, name: &str) -> Scope {
        Scope::new(ScopeKind::Gateway, namespace, name, "")
    }

    pub fn gateway_listener(namespace: &str, name: &str, listener: &str) -> Scope {
        Scope::new(ScopeKind::GatewayListener, namespace, name, listener)
    }

    pub fn listener_set(namespace: &str, name: &str) -> Scope {
        Scope::new(ScopeKind::ListenerSet, namespace, name, "")
    }

    pub fn listener_set_listener(namespace: &str, name: &str, listener: &str) -> Scope {
        Scope::new(ScopeKind::ListenerSetListener, namespace, name, listener)
    }

    pub fn route(kind: RouteKind, namespace: &str, name: &str) -> Scope {
        Scope {
            route_kind: Some(kind),
            ..Scope::new(ScopeKind::Route, namespace, name, "")
        }
    }

    /// The whole resource a section scope belongs to (listener → Gateway, rule → route).
    fn resource(&self) -> Scope {
        let kind = match self.kind {
            ScopeKind::GatewayListener => ScopeKind::Gateway,
            ScopeKind::ListenerSetListener => ScopeKind::ListenerSet,
            ScopeKind::RouteRule => ScopeKind::Route,
            other => {
                return Scope {
                    kind: other,
                    ..self.clone()
                };
            }
        };
        Scope {
            kind,
            section: String::new(),
            ..self.clone()
        }
    }

    fn label(&self) -> String {
        if self.section.is_empty() {
            format!("{}/{}", self.namespace, self.name)
        } else {
            format!("{}/{}/{}", self.namespace, self.name, self.section)
        }
    }
}

impl ScopeGraph {
    /// Records that `child` has its own policy below `parent`.
    pub fn add(&mut self, parent: Scope, child: Scope) {
        if matches!(
            parent.kind,
            ScopeKind::GatewayListener | ScopeKind::ListenerSetListener | ScopeKind::RouteRule
        ) {
            self.containment
                .entry(parent.resource())
                .or_default()
                .insert(parent.clone());
        }
        self.children.entry(parent).or_default().insert(child);
    }

    /// Records that a ListenerSet belongs to a Gateway.
    pub fn register_listener_set(&mut self, listener_set: Scope, gateway: Scope) {
        self.containment
            .entry(gateway)
            .or_default()
            .insert(listener_set);
    }

    /// Scopes recorded directly under `parent`.
    pub fn direct_children(&self, parent: &Scope) -> BTreeSet<Scope> {
        self.children.get(parent).cloned().unwrap_or_default()
    }

    /// Direct children plus those of contained scopes (a Gateway's listeners and ListenerSets);
    /// a listener also inherits the routes recorded on its whole resource.
    pub fn with_descendants(&self, parent: &Scope) -> BTreeSet<Scope> {
        let mut result = self.direct_children(parent);
        match parent.kind {
            ScopeKind::Gateway | ScopeKind::ListenerSet | ScopeKind::Route => {
                for contained in self.containment.get(parent).into_iter().flatten() {
                    result.extend(self.direct_children(contained));
                    if contained.kind == ScopeKind::ListenerSet {
                        for sub in self.containment.get(contained).into_iter().flatten() {
                            result.extend(self.direct_children(sub));
                        }
                    }
                }
            }
            ScopeKind::GatewayListener | ScopeKind::ListenerSetListener => {
                let inherited = self.direct_children(&parent.resource());
                result.extend(inherited.into_iter().filter(|c| c.kind == ScopeKind::Route));
            }
            ScopeKind::RouteRule => {}
        }
        result
    }
}

/// Envoy Gateway's rendering of a set of scopes:
/// `these gateway listeners: [a b] and these routes: [c]`; empty when there are none.
pub fn format_scopes(scopes: &BTreeSet<Scope>) -> String {
    let groups = [
        (ScopeKind::GatewayListener, "these gateway listeners"),
        (ScopeKind::ListenerSet, "these listenersets"),
        (
            ScopeKind::ListenerSetListener,
            "these listenerset listeners",
        ),
        (ScopeKind::Route, "these routes"),
        (ScopeKind::RouteRule, "these route rules"),
    ];
    let parts: Vec<String> = groups
        .iter()
        .filter_map(|(kind, label)| {
            let mut entries: Vec<String> = scopes
                .iter()
                .filter(|s| s.kind == *kind)
                .map(Scope::label)
                .collect();
            if entries.is_empty() {
                return None;
            }
            entries.sort();
            Some(format!("{label}: [{}]", entries.join(" ")))
        })
        .collect();
    parts.join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_sees_listener_policies_and_routes_below_listeners() {
        let mut g = ScopeGraph::default();
        let gw = Scope::gateway("envoy-gateway", "gateway-1");
        let listener = Scope::gateway_listener("envoy-gateway", "gateway-1", "listener-2");
        g.add(gw.clone(), listener.clone());
        g.add(
            gw.clone(),
            Scope::route(RouteKind::Http, "default", "httproute-1"),
        );
        g.add(
            listener.clone(),
            Scope::route(RouteKind::Grpc, "default", "grpcroute-1"),
        );
        assert_eq!(
            format_scopes(&g.with_descendants(&gw)),
            "these gateway listeners: [envoy-gateway/gateway-1/listener-2] and these routes: [default/grpcroute-1 default/httproute-1]"
        );
        // A listener inherits the routes attached to the whole Gateway.
        assert_eq!(
            format_scopes(&g.with_descendants(&listener)),
            "these routes: [default/grpcroute-1 default/httproute-1]"
        );
    }

    #[test]
    fn empty_set_formats_to_nothing() {
        assert_eq!(format_scopes(&BTreeSet::new()), "");
    }
}
