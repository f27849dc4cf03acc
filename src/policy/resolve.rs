//! Envoy Gateway's BackendTrafficPolicy processing: targets, the six passes, conflicts,
//! precedence, merges, translation errors and the resulting status of every policy.
//!
//! The order of operations follows Envoy Gateway v1.9.0 closely on purpose: which policy wins a
//! conflict, which condition a status carries and in what order all fall out of it.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::gateway_api::ReferenceGrantSpec;
use super::merge::merge_specs;
use super::objects::{Meta, Object, PolicySpec, TargetRef, policy_order};
use super::scope::{Scope, ScopeGraph, format_scopes};
use super::selector::selector_matches;
use super::status::{AncestorRef, PolicyStatus, condition_message};
use super::topology::{RouteKind, RuleAttachment, Topology};

/// Spec fields that pick targets or the merge mode, not traffic settings.
const TARGETING_FIELDS: [&str; 4] = ["targetRef", "targetRefs", "targetSelectors", "mergeType"];
/// Fields a TCP or TLS route takes from a route-level policy, field by field.
const TCP_FIELDS: [&str; 8] = [
    "loadBalancer",
    "proxyProtocol",
    "healthCheck",
    "circuitBreaker",
    "tcpKeepalive",
    "timeout",
    "connection",
    "dns",
];
/// A Gateway-level policy does not set `connection` on TCP routes.
const TCP_FIELDS_FROM_GATEWAY: [&str; 7] = [
    "loadBalancer",
    "proxyProtocol",
    "healthCheck",
    "circuitBreaker",
    "tcpKeepalive",
    "timeout",
    "dns",
];
const UDP_FIELDS: [&str; 2] = ["loadBalancer", "dns"];

/// Computes the translation errors (`"<Feature>: <error>"`) of a policy spec, given the
/// namespace its references (ConfigMaps) are resolved in.
pub type TranslateFn<'a> = &'a dyn Fn(&Value, &str) -> Vec<String>;

/// The settings that govern one route rule on one listener.
#[derive(Debug, Clone, Default)]
pub struct RuleOutcome {
    pub attachment: RuleAttachment,
    /// Index (into the sorted policy list) of the policy whose settings apply.
    pub policy: Option<usize>,
    /// The parent policy it was merged with.
    pub merged_with: Option<usize>,
    /// TCP/UDP routes: other policies that filled fields the first one left unset.
    pub inherited_from: Vec<usize>,
    /// The effective spec (CRD field names, only fields that are set).
    pub effective: Value,
    /// Set when a policy failed to translate: the route answers 500 directly.
    pub direct_response: Option<u16>,
    /// The policy whose failure caused the direct response.
    pub failed_policy: Option<usize>,
}

/// The status of one policy that Envoy Gateway processed.
#[derive(Debug, Clone)]
pub struct ResolvedPolicy {
    pub index: usize,
    pub status: PolicyStatus,
}

/// Everything policy resolution decided.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// Policies in Envoy Gateway's order (creation time, namespace, name).
    pub sorted: Vec<Meta>,
    /// Processed policies, in processing order, with their status.
    pub processed: Vec<ResolvedPolicy>,
    /// Policies whose targets matched nothing (no status is written for them).
    pub unattached: Vec<usize>,
    pub rules: Vec<RuleOutcome>,
}

/// A resolved policy target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Target {
    group: String,
    kind: String,
    namespace: String,
    name: String,
    section: Option<String>,
}

/// A rejection while resolving a target: reason and message of Accepted=False.
struct ResolveError {
    reason: &'static str,
    message: String,
}

/// The parent context of a route's parentRef: ancestor, scope and listeners reached.
struct ParentContext {
    gateway: usize,
    listeners: Vec<usize>,
}

/// Resolves every policy in `policies` against `topology`.
pub fn resolve(
    topology: &Topology,
    policies: &[Object<PolicySpec>],
    reference_grants: &[Object<ReferenceGrantSpec>],
    translate: TranslateFn<'_>,
) -> Resolution {
    let mut order: Vec<usize> = (0..policies.len()).collect();
    order.sort_by(|&a, &b| policy_order(&policies[a].meta, &policies[b].meta));
    let sorted: Vec<&Object<PolicySpec>> = order.iter().map(|&i| &policies[i]).collect();
    let mut resolver = Resolver::new(topology, sorted, reference_grants, translate);
    resolver.run();
    resolver.finish()
}

struct Resolver<'a> {
    topology: &'a Topology,
    policies: Vec<&'a Object<PolicySpec>>,
    grants: &'a [Object<ReferenceGrantSpec>],
    translate: TranslateFn<'a>,
    rules: Vec<RuleOutcome>,
    /// TCP/UDP: which fields are set, by which policy, in the order they were set.
    l4_fields: Vec<Vec<(String, usize)>>,
    gateway_attached: Vec<bool>,
    gateway_listeners_attached: Vec<BTreeSet<String>>,
    listener_set_attached: HashMap<(String, String), (bool, BTreeSet<String>)>,
    route_attached: Vec<bool>,
    route_rules_attached: Vec<BTreeSet<String>>,
    gateway_policy: HashMap<(usize, String), usize>,
    listener_set_policy: HashMap<((String, String), String), usize>,
    overrides: ScopeGraph,
    merged: ScopeGraph,
    statuses: Vec<PolicyStatus>,
    processed_order: Vec<usize>,
}

impl<'a> Resolver<'a> {
    fn new(
        topology: &'a Topology,
        policies: Vec<&'a Object<PolicySpec>>,
        grants: &'a [Object<ReferenceGrantSpec>],
        translate: TranslateFn<'a>,
    ) -> Self {
        let rules = topology
            .attachments
            .iter()
            .map(|&attachment| RuleOutcome {
                attachment,
                effective: Value::Object(Map::new()),
                ..RuleOutcome::default()
            })
            .collect::<Vec<_>>();
        Resolver {
            topology,
            l4_fields: vec![Vec::new(); rules.len()],
            rules,
            grants,
            translate,
            gateway_attached: vec![false; topology.gateways.len()],
            gateway_listeners_attached: vec![BTreeSet::new(); topology.gateways.len()],
            listener_set_attached: HashMap::new(),
            route_attached: vec![false; topology.routes.len()],
            route_rules_attached: vec![BTreeSet::new(); topology.routes.len()],
            gateway_policy: HashMap::new(),
            listener_set_policy: HashMap::new(),
            overrides: ScopeGraph::default(),
            merged: ScopeGraph::default(),
            statuses: vec![PolicyStatus::default(); policies.len()],
            processed_order: Vec::new(),
            policies,
        }
    }

    fn run(&mut self) {
        self.build_parent_maps();
        let is_gateway = |t: &Target| t.kind == "Gateway";
        let is_listener_set = |t: &Target| t.kind == "ListenerSet";
        // 1. Route rules, 2. whole routes (selectors included).
        self.pass(
            None,
            |t| !is_gateway(t) && t.section.is_some(),
            Self::process_route,
        );
        self.pass(
            Some(TargetPool::Routes),
            |t| !is_gateway(t) && t.section.is_none(),
            Self::process_route,
        );
        if !self.topology.listener_sets.is_empty() {
            // 3. ListenerSet listeners, 4. whole ListenerSets.
            self.pass(
                None,
                |t| is_listener_set(t) && t.section.is_some(),
                Self::process_listener_set,
            );
            self.pass(
                Some(TargetPool::ListenerSets),
                |t| is_listener_set(t) && t.section.is_none(),
                Self::process_listener_set,
            );
        }
        // 5. Gateway listeners, 6. whole Gateways.
        self.pass(
            None,
            |t| is_gateway(t) && t.section.is_some(),
            Self::process_gateway,
        );
        self.pass(
            Some(TargetPool::Gateways),
            |t| is_gateway(t) && t.section.is_none(),
            Self::process_gateway,
        );
        for status in &mut self.statuses {
            status.truncate();
        }
    }

    fn finish(mut self) -> Resolution {
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let mut sources: Vec<usize> = Vec::new();
            for &(_, p) in &self.l4_fields[i] {
                if !sources.contains(&p) {
                    sources.push(p);
                }
            }
            if !self.topology.routes[rule.attachment.route].kind.is_http() && !sources.is_empty() {
                rule.policy = sources.first().copied();
                rule.inherited_from = sources[1..].to_vec();
            }
        }
        let processed: Vec<ResolvedPolicy> = self
            .processed_order
            .iter()
            .map(|&index| ResolvedPolicy {
                index,
                status: self.statuses[index].clone(),
            })
            .collect();
        let unattached = (0..self.policies.len())
            .filter(|p| !self.processed_order.contains(p))
            .collect();
        Resolution {
            sorted: self.policies.iter().map(|p| p.meta.clone()).collect(),
            processed,
            unattached,
            rules: self.rules,
        }
    }

    /// One processing pass: every policy, in order, for each of its targets this pass takes.
    /// Without a pool only `targetRef(s)` count (selectors never name a section).
    fn pass(
        &mut self,
        pool: Option<TargetPool>,
        takes: impl Fn(&Target) -> bool,
        process: fn(&mut Self, usize, &Target),
    ) {
        for p in 0..self.policies.len() {
            let targets = match pool {
                Some(pool) => self.targets(p, pool),
                None => self.plain_targets(p),
            };
            for target in targets.iter().filter(|t| takes(t)) {
                self.mark_processed(p);
                process(self, p, target);
            }
        }
    }

    fn mark_processed(&mut self, policy: usize) {
        if !self.processed_order.contains(&policy) {
            self.processed_order.push(policy);
        }
    }

    // ----- targets -----

    /// `targetRef` and `targetRefs`, in the policy's namespace.
    fn plain_targets(&self, policy: usize) -> Vec<Target> {
        let object = self.policies[policy];
        let targets = &object.spec.targets;
        targets
            .target_ref
            .iter()
            .chain(targets.target_refs.iter())
            .filter(|r| **r != TargetRef::default())
            .map(|r| Target {
                group: r.group.clone(),
                kind: r.kind.clone(),
                namespace: object.meta.namespace.clone(),
                name: r.name.clone(),
                section: r.section_name.clone(),
            })
            .collect()
    }

    /// Selector matches among `pool` (oldest first), then the plain references, deduplicated.
    fn targets(&self, policy: usize, pool: TargetPool) -> Vec<Target> {
        let object = self.policies[policy];
        let mut selected: Vec<(Option<String>, Target)> = Vec::new();
        for selector in &object.spec.targets.target_selectors {
            let group = selector
                .group
                .clone()
                .unwrap_or_else(|| "gateway.networking.k8s.io".into());
            for (kind, meta) in self.pool_objects(pool) {
                if kind != selector.kind || group != "gateway.networking.k8s.io" {
                    continue;
                }
                if !self.selector_namespace_ok(selector, &object.meta.namespace, &meta.namespace) {
                    continue;
                }
                if !selector_matches(
                    &selector.match_labels,
                    &selector.match_expressions,
                    &meta.labels,
                ) {
                    continue;
                }
                if !self.cross_namespace_permitted(&object.meta.namespace, kind, meta) {
                    continue;
                }
                let target = Target {
                    group: group.clone(),
                    kind: kind.to_string(),
                    namespace: meta.namespace.clone(),
                    name: meta.name.clone(),
                    section: None,
                };
                let entry = (meta.creation_timestamp.clone(), target);
                if !selected.contains(&entry) {
                    selected.push(entry);
                }
            }
        }
        // Oldest first; a missing timestamp is Go's zero time.
        selected.sort_by(|a, b| match (&a.0, &b.0) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(y),
        });
        let mut out: Vec<Target> = selected.into_iter().map(|(_, t)| t).collect();
        for target in self.plain_targets(policy) {
            if !out.contains(&target) {
                out.push(target);
            }
        }
        out
    }

    fn pool_objects(&self, pool: TargetPool) -> Vec<(&'static str, &'a Meta)> {
        let topology = self.topology;
        match pool {
            TargetPool::Routes => topology
                .routes
                .iter()
                .filter(|r| r.parents.iter().any(|p| p.gateway.is_some()))
                .map(|r| (r.kind.kind_name(), &r.meta))
                .collect(),
            TargetPool::Gateways => topology
                .gateways
                .iter()
                .map(|g| ("Gateway", &g.meta))
                .collect(),
            TargetPool::ListenerSets => topology
                .listener_sets
                .iter()
                .map(|(m, _)| ("ListenerSet", m))
                .collect(),
        }
    }

    fn selector_namespace_ok(
        &self,
        selector: &super::objects::TargetSelector,
        policy_ns: &str,
        target_ns: &str,
    ) -> bool {
        let Some(namespaces) = &selector.namespaces else {
            return target_ns == policy_ns;
        };
        match namespaces.from.as_deref().unwrap_or("") {
            "" | "Same" => target_ns == policy_ns,
            "All" => true,
            "Selector" => {
                let (Some(labels), Some(ns_selector)) = (
                    self.topology.namespace_labels(target_ns),
                    &namespaces.selector,
                ) else {
                    return false;
                };
                let is_empty =
                    ns_selector.match_labels.is_empty() && ns_selector.match_expressions.is_empty();
                !is_empty
                    && selector_matches(
                        &ns_selector.match_labels,
                        &ns_selector.match_expressions,
                        labels,
                    )
            }
            _ => false,
        }
    }

    /// A target in another namespace needs a ReferenceGrant there.
    fn cross_namespace_permitted(&self, policy_ns: &str, kind: &str, target: &Meta) -> bool {
        if policy_ns == target.namespace {
            return true;
        }
        self.grants.iter().any(|grant| {
            grant.meta.namespace == target.namespace
                && grant.spec.from.iter().any(|f| {
                    f.namespace == policy_ns
                        && f.group == "gateway.envoyproxy.io"
                        && f.kind == "BackendTrafficPolicy"
                })
                && grant.spec.to.iter().any(|t| {
                    t.group == "gateway.networking.k8s.io"
                        && t.kind == kind
                        && t.name
                            .as_deref()
                            .is_none_or(|n| n.is_empty() || n == target.name)
                })
        })
    }

    /// The first policy (in order) on each Gateway, Gateway listener and ListenerSet (listener),
    /// for merges.
    fn build_parent_maps(&mut self) {
        for p in 0..self.policies.len() {
            for target in self.targets(p, TargetPool::Gateways) {
                if target.kind != "Gateway" {
                    continue;
                }
                let Some(gw) = self.topology.gateway_index(&target.namespace, &target.name) else {
                    continue;
                };
                let section = target.section.clone().unwrap_or_default();
                if !section.is_empty() && self.direct_listener(gw, &section).is_none() {
                    continue;
                }
                self.gateway_policy.entry((gw, section)).or_insert(p);
            }
            if self.topology.listener_sets.is_empty() {
                continue;
            }
            for target in self.targets(p, TargetPool::ListenerSets) {
                if target.kind != "ListenerSet" {
                    continue;
                }
                let key = (target.namespace.clone(), target.name.clone());
                let Some(gw) = self.listener_set_gateway(&key) else {
                    continue;
                };
                let section = target.section.clone().unwrap_or_default();
                if !section.is_empty() && self.listener_set_listener(gw, &key, &section).is_none() {
                    continue;
                }
                self.listener_set_policy.entry((key, section)).or_insert(p);
            }
        }
    }

    fn direct_listener(&self, gateway: usize, name: &str) -> Option<usize> {
        self.topology.gateways[gateway]
            .listeners
            .iter()
            .position(|l| l.listener_set.is_none() && l.listener.name == name)
    }

    fn listener_set_gateway(&self, key: &(String, String)) -> Option<usize> {
        self.topology
            .listener_sets
            .iter()
            .find(|(m, _)| m.namespace == key.0 && m.name == key.1)
            .map(|(_, gw)| *gw)
    }

    fn listener_set_listener(
        &self,
        gateway: usize,
        key: &(String, String),
        name: &str,
    ) -> Option<usize> {
        self.topology.gateways[gateway]
            .listeners
            .iter()
            .position(|l| l.listener_set.as_ref() == Some(key) && l.listener.name == name)
    }

    // ----- routes -----

    fn process_route(&mut self, policy: usize, target: &Target) {
        let Some(kind) = RouteKind::from_kind(&target.kind) else {
            return;
        };
        let Some(route_index) = self
            .topology
            .route_index(kind, &target.namespace, &target.name)
        else {
            return;
        };
        let topology = self.topology;
        let route = &topology.routes[route_index];
        if !route.parents.iter().any(|p| p.gateway.is_some()) {
            return;
        }
        let resolve_error = self.claim_route(route_index, target);

        let route_scope = Scope::route(kind, &route.meta.namespace, &route.meta.name);
        let mut ancestors = Vec::new();
        let mut parent_contexts = Vec::new();
        for parent in &route.parents {
            let Some(gateway) = parent.gateway else {
                continue;
            };
            let p = &parent.parent_ref;
            let section = p.section_name.as_deref();
            match p.kind.as_deref().unwrap_or("Gateway") {
                "Gateway" => {
                    let scope = match section {
                        Some(s) => Scope::gateway_listener(&parent.namespace, &p.name, s),
                        None => Scope::gateway(&parent.namespace, &p.name),
                    };
                    self.overrides.add(scope, route_scope.clone());
                    ancestors.push(AncestorRef::gateway(&parent.namespace, &p.name, section));
                }
                _ => {
                    let gw_meta = &topology.gateways[gateway].meta;
                    self.overrides.register_listener_set(
                        Scope::listener_set(&parent.namespace, &p.name),
                        Scope::gateway(&gw_meta.namespace, &gw_meta.name),
                    );
                    let scope = match section {
                        Some(s) => Scope::listener_set_listener(&parent.namespace, &p.name, s),
                        None => Scope::listener_set(&parent.namespace, &p.name),
                    };
                    self.overrides.add(scope, route_scope.clone());
                    ancestors.push(AncestorRef::listener_set(
                        &parent.namespace,
                        &p.name,
                        section,
                    ));
                }
            }
            parent_contexts.push(ParentContext {
                gateway,
                listeners: parent.listeners.clone(),
            });
        }

        if let Some(err) = resolve_error {
            for ancestor in &ancestors {
                self.statuses[policy].reject(ancestor, err.reason, &err.message);
            }
            return;
        }

        let object = self.policies[policy];
        let spec = traffic_spec(&object.spec.raw);
        match object.spec.raw.get("mergeType").and_then(Value::as_str) {
            None => {
                let errors = (self.translate)(&spec, &object.meta.namespace);
                self.apply_to_route(
                    policy,
                    None,
                    &spec,
                    &errors,
                    route_index,
                    target.section.as_deref(),
                    None,
                );
                for ancestor in &ancestors {
                    self.reject_invalid(policy, ancestor, &errors);
                }
            }
            Some(merge_type) => {
                for ctx in &parent_contexts {
                    for &listener in &ctx.listeners {
                        self.merge_on_listener(
                            policy,
                            merge_type,
                            &spec,
                            route_index,
                            target,
                            ctx.gateway,
                            listener,
                            &route_scope,
                        );
                    }
                }
            }
        }

        for ancestor in &ancestors {
            self.statuses[policy].accept_if_unset(ancestor);
        }
        let warning = deprecation_warning(&object.spec.raw);
        for ancestor in &ancestors {
            self.statuses[policy].warn_deprecated(ancestor, &warning);
        }
        if target.section.is_none() && !self.route_rules_attached[route_index].is_empty() {
            let rules: Vec<&str> = self.route_rules_attached[route_index]
                .iter()
                .map(String::as_str)
                .collect();
            let message = format!(
                "This policy is being overridden by other backendTrafficPolicy for these route rules: [{}]",
                rules.join(" ")
            );
            for ancestor in &ancestors {
                self.statuses[policy].set(ancestor, "Overridden", true, "Overridden", &message);
            }
        }
    }

    /// Claims the route (or rule) for this policy, or says why it cannot.
    fn claim_route(&mut self, route_index: usize, target: &Target) -> Option<ResolveError> {
        let route = &self.topology.routes[route_index];
        match &target.section {
            Some(section) => {
                if !route
                    .rules
                    .iter()
                    .any(|r| r.name.as_deref() == Some(section.as_str()))
                {
                    return Some(ResolveError {
                        reason: "TargetNotFound",
                        message: format!(
                            "No section name {section} found for {} {}/{}",
                            route.kind, route.meta.namespace, route.meta.name
                        ),
                    });
                }
                if !self.route_rules_attached[route_index].insert(section.clone()) {
                    return Some(ResolveError {
                        reason: "Conflicted",
                        message: format!(
                            "Unable to target RouteRule {}/{section}, another BackendTrafficPolicy has already attached to it",
                            route.meta.name
                        ),
                    });
                }
            }
            None => {
                if std::mem::replace(&mut self.route_attached[route_index], true) {
                    return Some(ResolveError {
                        reason: "Conflicted",
                        message: format!(
                            "Unable to target {} {}, another BackendTrafficPolicy has already attached to it",
                            route.kind, route.meta.name
                        ),
                    });
                }
            }
        }
        None
    }

    /// A route policy with `mergeType` on one listener: merge with the closest parent policy.
    #[allow(clippy::too_many_arguments)]
    fn merge_on_listener(
        &mut self,
        policy: usize,
        merge_type: &str,
        spec: &Value,
        route_index: usize,
        target: &Target,
        gateway: usize,
        listener: usize,
        route_scope: &Scope,
    ) {
        let gw = &self.topology.gateways[gateway];
        let node = &gw.listeners[listener];
        let listener_name = node.listener.name.clone();
        let (ancestor, parent) = match &node.listener_set {
            Some(key) => {
                let ancestor = AncestorRef::listener_set(&key.0, &key.1, Some(&listener_name));
                let parent = self
                    .listener_set_policy
                    .get(&(key.clone(), listener_name.clone()))
                    .map(|&p| {
                        (
                            p,
                            Scope::listener_set_listener(&key.0, &key.1, &listener_name),
                        )
                    })
                    .or_else(|| {
                        self.listener_set_policy
                            .get(&(key.clone(), String::new()))
                            .map(|&p| (p, Scope::listener_set(&key.0, &key.1)))
                    })
                    .or_else(|| {
                        self.gateway_policy
                            .get(&(gateway, String::new()))
                            .map(|&p| (p, Scope::gateway(&gw.meta.namespace, &gw.meta.name)))
                    });
                (ancestor, parent)
            }
            None => {
                let ancestor =
                    AncestorRef::gateway(&gw.meta.namespace, &gw.meta.name, Some(&listener_name));
                let parent = self
                    .gateway_policy
                    .get(&(gateway, listener_name.clone()))
                    .map(|&p| {
                        (
                            p,
                            Scope::gateway_listener(
                                &gw.meta.namespace,
                                &gw.meta.name,
                                &listener_name,
                            ),
                        )
                    })
                    .or_else(|| {
                        self.gateway_policy
                            .get(&(gateway, String::new()))
                            .map(|&p| (p, Scope::gateway(&gw.meta.namespace, &gw.meta.name)))
                    });
                (ancestor, parent)
            }
        };
        let only = Some((gateway, listener));
        let section = target.section.as_deref();
        let own_namespace = self.policies[policy].meta.namespace.clone();
        let Some((parent_policy, parent_scope)) = parent else {
            let errors = (self.translate)(spec, &own_namespace);
            self.apply_to_route(policy, None, spec, &errors, route_index, section, only);
            self.reject_invalid(policy, &ancestor, &errors);
            return;
        };
        let parent_raw = &self.policies[parent_policy].spec.raw;
        let parent_spec = traffic_spec(parent_raw);
        let merged = match merge_specs(&parent_spec, spec, merge_type) {
            Ok(merged) => merged,
            Err(e) => {
                let message = condition_message(&format!("error merging policies: {e}"));
                self.statuses[policy].reject(&ancestor, "Invalid", &message);
                return;
            }
        };
        // References resolve in the namespace of the policy that supplied responseOverride.
        let route_overrides = spec
            .get("responseOverride")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let namespace = if route_overrides {
            own_namespace
        } else {
            self.policies[parent_policy].meta.namespace.clone()
        };
        let errors = (self.translate)(&merged, &namespace);
        let effective = merge_rate_limit_rules(merged, &parent_spec, spec, merge_type);
        self.apply_to_route(
            policy,
            Some(parent_policy),
            &effective,
            &errors,
            route_index,
            section,
            only,
        );
        if !errors.is_empty() {
            self.reject_invalid(policy, &ancestor, &errors);
            return;
        }
        self.merged.add(parent_scope, route_scope.clone());
        let parent_meta = &self.policies[parent_policy].meta;
        let message = format!(
            "Merged with policy {}/{}",
            parent_meta.namespace, parent_meta.name
        );
        self.statuses[policy].set(&ancestor, "Merged", true, "Merged", &message);
    }

    /// Gives a route's rules (one rule when `section` names it) this policy's settings, where no
    /// more specific policy got there first; `only` limits it to one listener.
    #[allow(clippy::too_many_arguments)]
    fn apply_to_route(
        &mut self,
        policy: usize,
        merged_with: Option<usize>,
        spec: &Value,
        errors: &[String],
        route_index: usize,
        section: Option<&str>,
        only: Option<(usize, usize)>,
    ) {
        let route = &self.topology.routes[route_index];
        for i in 0..self.rules.len() {
            let a = self.rules[i].attachment;
            if a.route != route_index || only.is_some_and(|o| o != (a.gateway, a.listener)) {
                continue;
            }
            if section.is_some_and(|s| route.rules[a.rule].name.as_deref() != Some(s)) {
                continue;
            }
            let fields: &[&str] = match route.kind {
                RouteKind::Http | RouteKind::Grpc => {
                    self.apply_http(i, policy, merged_with, spec, errors);
                    continue;
                }
                RouteKind::Tcp | RouteKind::Tls => &TCP_FIELDS,
                RouteKind::Udp => &UDP_FIELDS,
            };
            self.apply_fields(i, policy, spec, errors, fields);
        }
    }

    /// HTTP routes take the whole bundle of the first (most specific) policy, or become a 500.
    fn apply_http(
        &mut self,
        i: usize,
        policy: usize,
        merged_with: Option<usize>,
        spec: &Value,
        errors: &[String],
    ) {
        let rule = &mut self.rules[i];
        if rule.policy.is_some() {
            return;
        }
        if !errors.is_empty() {
            rule.direct_response = Some(500);
            rule.failed_policy.get_or_insert(policy);
            return;
        }
        rule.policy = Some(policy);
        rule.merged_with = merged_with;
        rule.effective = spec.clone();
    }

    /// TCP/UDP routes inherit field by field; a feature that failed to translate is not set.
    fn apply_fields(
        &mut self,
        i: usize,
        policy: usize,
        spec: &Value,
        errors: &[String],
        fields: &[&str],
    ) {
        let failed: Vec<&str> = errors.iter().filter_map(|e| failed_field(e)).collect();
        for &field in fields {
            let Some(value) = spec.get(field) else {
                continue;
            };
            if failed.contains(&field) || self.l4_fields[i].iter().any(|(f, _)| f == field) {
                continue;
            }
            self.l4_fields[i].push((field.to_string(), policy));
            if let Value::Object(map) = &mut self.rules[i].effective {
                map.insert(field.to_string(), value.clone());
            }
        }
    }

    /// Gateway or ListenerSet level: every rule on the given listeners not yet covered.
    fn apply_to_listeners(
        &mut self,
        policy: usize,
        spec: &Value,
        errors: &[String],
        gateway: usize,
        listeners: &[usize],
    ) {
        for i in 0..self.rules.len() {
            let a = self.rules[i].attachment;
            if a.gateway != gateway || !listeners.contains(&a.listener) {
                continue;
            }
            let fields: &[&str] = match self.topology.routes[a.route].kind {
                RouteKind::Http | RouteKind::Grpc => {
                    self.apply_http(i, policy, None, spec, errors);
                    continue;
                }
                RouteKind::Tcp | RouteKind::Tls => &TCP_FIELDS_FROM_GATEWAY,
                RouteKind::Udp => &UDP_FIELDS,
            };
            self.apply_fields(i, policy, spec, errors, fields);
        }
    }

    // ----- gateways and listener sets -----

    fn process_gateway(&mut self, policy: usize, target: &Target) {
        let Some(gateway) = self.topology.gateway_index(&target.namespace, &target.name) else {
            return;
        };
        let gw = &self.topology.gateways[gateway];
        let (ns, name) = (gw.meta.namespace.clone(), gw.meta.name.clone());
        let section = target.section.clone();
        let ancestor = AncestorRef::gateway(&ns, &name, section.as_deref());
        let resolve_error = match &section {
            Some(s) if self.direct_listener(gateway, s).is_none() => Some(ResolveError {
                reason: "TargetNotFound",
                message: format!("No section name {s} found for Gateway {ns}/{name}"),
            }),
            Some(s) if !self.gateway_listeners_attached[gateway].insert(s.clone()) => {
                Some(ResolveError {
                    reason: "Conflicted",
                    message: format!(
                        "Unable to target Listener {ns}/{name}/{s}, another BackendTrafficPolicy has already attached to it"
                    ),
                })
            }
            None if std::mem::replace(&mut self.gateway_attached[gateway], true) => {
                Some(ResolveError {
                    reason: "Conflicted",
                    message: format!(
                        "Unable to target Gateway {name}, another BackendTrafficPolicy has already attached to it"
                    ),
                })
            }
            _ => None,
        };
        if let Some(err) = resolve_error {
            self.statuses[policy].reject(&ancestor, err.reason, &err.message);
            return;
        }
        let own_scope = match &section {
            Some(s) => {
                let scope = Scope::gateway_listener(&ns, &name, s);
                self.overrides
                    .add(Scope::gateway(&ns, &name), scope.clone());
                scope
            }
            None => Scope::gateway(&ns, &name),
        };
        let listeners: Vec<usize> = match &section {
            Some(s) => self.direct_listener(gateway, s).into_iter().collect(),
            None => (0..gw.listeners.len()).collect(),
        };
        let object = self.policies[policy];
        self.translate_onto_listeners(policy, &ancestor, gateway, &listeners);
        self.statuses[policy].accept_if_unset(&ancestor);
        self.statuses[policy].warn_deprecated(&ancestor, &deprecation_warning(&object.spec.raw));
        self.set_parent_conditions(policy, &ancestor, &own_scope);
    }

    fn process_listener_set(&mut self, policy: usize, target: &Target) {
        let key = (target.namespace.clone(), target.name.clone());
        let Some(gateway) = self.listener_set_gateway(&key) else {
            return;
        };
        let section = target.section.clone();
        let ancestor = AncestorRef::listener_set(&key.0, &key.1, section.as_deref());
        let listener = section
            .as_ref()
            .and_then(|s| self.listener_set_listener(gateway, &key, s));
        let state = self.listener_set_attached.entry(key.clone()).or_default();
        let resolve_error = match &section {
            Some(s) if listener.is_none() => Some(ResolveError {
                reason: "TargetNotFound",
                message: format!(
                    "No section name {s} found for ListenerSet {}/{}",
                    key.0, key.1
                ),
            }),
            Some(s) if !state.1.insert(s.clone()) => Some(ResolveError {
                reason: "Conflicted",
                message: format!(
                    "Unable to target Listener {}/{s}, another BackendTrafficPolicy has already attached to it",
                    key.1
                ),
            }),
            None if std::mem::replace(&mut state.0, true) => Some(ResolveError {
                reason: "Conflicted",
                message: format!(
                    "Unable to target ListenerSet {}, another BackendTrafficPolicy has already attached to it",
                    key.1
                ),
            }),
            _ => None,
        };
        if let Some(err) = resolve_error {
            self.statuses[policy].reject(&ancestor, err.reason, &err.message);
            return;
        }
        let gw_meta = self.topology.gateways[gateway].meta.clone();
        let own_scope = match &section {
            Some(s) => {
                self.overrides.register_listener_set(
                    Scope::listener_set(&key.0, &key.1),
                    Scope::gateway(&gw_meta.namespace, &gw_meta.name),
                );
                let scope = Scope::listener_set_listener(&key.0, &key.1, s);
                self.overrides
                    .add(Scope::listener_set(&key.0, &key.1), scope.clone());
                scope
            }
            None => {
                let scope = Scope::listener_set(&key.0, &key.1);
                self.overrides.add(
                    Scope::gateway(&gw_meta.namespace, &gw_meta.name),
                    scope.clone(),
                );
                scope
            }
        };
        let listeners: Vec<usize> = match listener {
            Some(l) => vec![l],
            None => self.topology.gateways[gateway]
                .listeners
                .iter()
                .enumerate()
                .filter(|(_, l)| l.listener_set.as_ref() == Some(&key))
                .map(|(i, _)| i)
                .collect(),
        };
        let object = self.policies[policy];
        self.translate_onto_listeners(policy, &ancestor, gateway, &listeners);
        self.statuses[policy].accept_if_unset(&ancestor);
        self.set_parent_conditions(policy, &ancestor, &own_scope);
        // ListenerSet policies get their deprecation warning last, as Envoy Gateway writes it.
        self.statuses[policy].warn_deprecated(&ancestor, &deprecation_warning(&object.spec.raw));
    }

    /// A Gateway or ListenerSet level policy: translate it, give it to the listeners' rules, and
    /// mark the ancestor Invalid when the translation failed.
    fn translate_onto_listeners(
        &mut self,
        policy: usize,
        ancestor: &AncestorRef,
        gateway: usize,
        listeners: &[usize],
    ) {
        let object = self.policies[policy];
        let spec = traffic_spec(&object.spec.raw);
        let errors = (self.translate)(&spec, &object.meta.namespace);
        self.apply_to_listeners(policy, &spec, &errors, gateway, listeners);
        self.reject_invalid(policy, ancestor, &errors);
    }

    /// Accepted=False/Invalid with Envoy Gateway's message, when there are translation errors.
    fn reject_invalid(&mut self, policy: usize, ancestor: &AncestorRef, errors: &[String]) {
        if !errors.is_empty() {
            self.statuses[policy].reject(
                ancestor,
                "Invalid",
                &condition_message(&errors.join("\n")),
            );
        }
    }

    /// `Merged` and `Overridden` on a parent policy, from the routes and scopes below it.
    fn set_parent_conditions(&mut self, policy: usize, ancestor: &AncestorRef, own_scope: &Scope) {
        let merged = self.merged.direct_children(own_scope);
        let overridden: BTreeSet<Scope> = self
            .overrides
            .with_descendants(own_scope)
            .difference(&merged)
            .cloned()
            .collect();
        let merged_message = format_scopes(&merged);
        if !merged_message.is_empty() {
            let message = format!(
                "This policy is being merged by other backendTrafficPolicies for {merged_message}"
            );
            self.statuses[policy].set(ancestor, "Merged", true, "Merged", &message);
        }
        let overridden_message = format_scopes(&overridden);
        if !overridden_message.is_empty() {
            let message = format!(
                "This policy is being overridden by other backendTrafficPolicies for {overridden_message}"
            );
            self.statuses[policy].set(ancestor, "Overridden", true, "Overridden", &message);
        }
    }
}

/// Where a policy's selectors look for targets in a pass.
#[derive(Debug, Clone, Copy)]
enum TargetPool {
    Routes,
    Gateways,
    ListenerSets,
}

/// The spec without the fields that pick targets or the merge mode.
pub fn traffic_spec(raw: &Value) -> Value {
    let mut spec = raw.clone();
    if let Value::Object(map) = &mut spec {
        for field in TARGETING_FIELDS {
            map.remove(field);
        }
    }
    spec
}

/// The DeprecatedField warning text for a policy, empty when it uses no deprecated field.
fn deprecation_warning(raw: &Value) -> String {
    let mut parts = Vec::new();
    if raw
        .get("compression")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        parts.push("spec.compression is deprecated, use spec.compressor instead");
    }
    if raw.get("targetRef").is_some() {
        parts.push("spec.targetRef is deprecated, use spec.targetRefs instead");
    }
    parts.join("; ")
}

/// The spec field a translation error belongs to (`"CircuitBreaker: ..."` → `circuitBreaker`).
fn failed_field(error: &str) -> Option<&'static str> {
    let feature = error.split(':').next()?;
    Some(match feature {
        "LoadBalancer" => "loadBalancer",
        "CircuitBreaker" => "circuitBreaker",
        "TCPKeepalive" => "tcpKeepalive",
        "Timeout" => "timeout",
        "BackendConnection" => "connection",
        "ProxyProtocol" => "proxyProtocol",
        "HealthCheck" => "healthCheck",
        "DNS" => "dns",
        _ => return None,
    })
}

/// With a strategic merge of two policies that both limit rates, Envoy Gateway unions their
/// rate-limit rules (route rules first), where the spec-level merge alone would replace them.
fn merge_rate_limit_rules(
    mut merged: Value,
    parent: &Value,
    route: &Value,
    merge_type: &str,
) -> Value {
    if merge_type != "StrategicMerge" {
        return merged;
    }
    let (Some(parent_rl), Some(route_rl)) = (parent.get("rateLimit"), route.get("rateLimit"))
    else {
        return merged;
    };
    for kind in ["local", "global"] {
        let parent_rules = parent_rl
            .get(kind)
            .and_then(|k| k.get("rules"))
            .and_then(Value::as_array);
        let route_rules = route_rl
            .get(kind)
            .and_then(|k| k.get("rules"))
            .and_then(Value::as_array);
        let (Some(parent_rules), Some(route_rules)) = (parent_rules, route_rules) else {
            continue;
        };
        let route_has_default = route_rules
            .iter()
            .any(|r| r.get("clientSelectors").is_none());
        let mut union = route_rules.clone();
        // The route's default bucket replaces the parent's: the IR keeps one default.
        union.extend(
            parent_rules
                .iter()
                .filter(|r| !(route_has_default && r.get("clientSelectors").is_none()))
                .cloned(),
        );
        if let Some(rules) = merged.pointer_mut(&format!("/rateLimit/{kind}/rules")) {
            *rules = Value::Array(union);
        }
    }
    merged
}
