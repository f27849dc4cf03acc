//! Gateway API PolicyStatus, built the way Envoy Gateway builds it: ancestors in the order they
//! are first touched, conditions merged by type in place, at most 16 ancestors.

use serde::Serialize;

/// The controller name Envoy Gateway writes on every ancestor.
pub const CONTROLLER_NAME: &str = "gateway.envoyproxy.io/gatewayclass-controller";
const MAX_ANCESTORS: usize = 16;
/// One above the CRD limit, so truncation can still tell that the list overflowed.
const SOFT_CAP: usize = MAX_ANCESTORS + 1;
const TRUNCATED_MESSAGE: &str =
    "Ancestors have been truncated because the number of policy ancestors exceeds 16.";

/// The object a policy status entry is about (a Gateway or ListenerSet, maybe one listener).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AncestorRef {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// One status condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// The status of a policy for one ancestor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AncestorStatus {
    pub ancestor_ref: AncestorRef,
    pub controller_name: String,
    pub conditions: Vec<Condition>,
}

/// A policy's status: every ancestor it reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyStatus {
    pub ancestors: Vec<AncestorStatus>,
}

impl AncestorRef {
    /// An ancestor of kind Gateway (with the listener when one is named).
    pub fn gateway(namespace: &str, name: &str, section: Option<&str>) -> AncestorRef {
        AncestorRef {
            group: "gateway.networking.k8s.io".into(),
            kind: "Gateway".into(),
            namespace: namespace.into(),
            name: name.into(),
            section_name: section.map(Into::into),
        }
    }

    /// An ancestor of kind ListenerSet.
    pub fn listener_set(namespace: &str, name: &str, section: Option<&str>) -> AncestorRef {
        AncestorRef {
            kind: "ListenerSet".into(),
            ..AncestorRef::gateway(namespace, name, section)
        }
    }
}

impl Condition {
    fn new(kind: &str, status: bool, reason: &str, message: &str) -> Condition {
        Condition {
            kind: kind.into(),
            status: if status { "True" } else { "False" }.into(),
            reason: reason.into(),
            message: message.into(),
        }
    }
}

impl PolicyStatus {
    /// Sets a condition on an ancestor: replaces the condition of the same type in place, or
    /// appends it; a new ancestor is appended (and the list kept within the soft cap).
    pub fn set(
        &mut self,
        ancestor: &AncestorRef,
        kind: &str,
        status: bool,
        reason: &str,
        message: &str,
    ) {
        let condition = Condition::new(kind, status, reason, message);
        if let Some(entry) = self
            .ancestors
            .iter_mut()
            .find(|a| a.ancestor_ref == *ancestor)
        {
            match entry.conditions.iter_mut().find(|c| c.kind == kind) {
                Some(existing) => *existing = condition,
                None => entry.conditions.push(condition),
            }
            return;
        }
        self.ancestors.push(AncestorStatus {
            ancestor_ref: ancestor.clone(),
            controller_name: CONTROLLER_NAME.into(),
            conditions: vec![condition],
        });
        if self.ancestors.len() > SOFT_CAP {
            let worst = (0..self.ancestors.len())
                .reduce(|worst, i| {
                    if rank_less(&self.ancestors[worst], &self.ancestors[i]) {
                        i
                    } else {
                        worst
                    }
                })
                .unwrap_or(0);
            self.ancestors.remove(worst);
        }
    }

    /// Accepted=False with a reason (Conflicted, TargetNotFound, Invalid) and message.
    pub fn reject(&mut self, ancestor: &AncestorRef, reason: &str, message: &str) {
        self.set(ancestor, "Accepted", false, reason, message);
    }

    /// Accepted=True, unless the ancestor already has an Accepted condition.
    pub fn accept_if_unset(&mut self, ancestor: &AncestorRef) {
        let has_accepted = self.ancestors.iter().any(|a| {
            a.ancestor_ref == *ancestor && a.conditions.iter().any(|c| c.kind == "Accepted")
        });
        if !has_accepted {
            self.set(
                ancestor,
                "Accepted",
                true,
                "Accepted",
                "Policy has been accepted.",
            );
        }
    }

    /// The DeprecatedField warning, combined with an existing warning as Envoy Gateway does.
    pub fn warn_deprecated(&mut self, ancestor: &AncestorRef, message: &str) {
        if message.is_empty() {
            return;
        }
        let existing = self
            .ancestors
            .iter()
            .find(|a| a.ancestor_ref == *ancestor)
            .and_then(|a| a.conditions.iter().find(|c| c.kind == "Warning"))
            .cloned();
        let (reason, message) = match existing {
            None => ("DeprecatedField".to_string(), message.to_string()),
            Some(c) => {
                let combined = if c.message == message || c.message.contains(message) {
                    c.message.clone()
                } else if message.contains(&c.message) {
                    message.to_string()
                } else {
                    format!("{}; {message}", c.message)
                };
                let reason = if c.reason.is_empty() || c.reason == "DeprecatedField" {
                    "DeprecatedField"
                } else {
                    "Warnings"
                };
                (reason.to_string(), combined)
            }
        };
        self.set(ancestor, "Warning", true, &reason, &message);
    }

    /// Cuts the list to 16 ancestors, most important first, and marks the cut.
    pub fn truncate(&mut self) {
        if self.ancestors.len() <= MAX_ANCESTORS {
            return;
        }
        self.ancestors.sort_by(|a, b| {
            if rank_less(a, b) {
                std::cmp::Ordering::Less
            } else if rank_less(b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        self.ancestors.truncate(MAX_ANCESTORS);
        let last = self.ancestors[MAX_ANCESTORS - 1].ancestor_ref.clone();
        self.set(&last, "Aggregated", true, "Aggregated", TRUNCATED_MESSAGE);
    }
}

/// Not accepted first, then overridden, then the rest; ties by namespace, then name.
fn rank_less(a: &AncestorStatus, b: &AncestorStatus) -> bool {
    let (ra, rb) = (rank(a), rank(b));
    if ra != rb {
        return ra < rb;
    }
    (&a.ancestor_ref.namespace, &a.ancestor_ref.name)
        < (&b.ancestor_ref.namespace, &b.ancestor_ref.name)
}

fn rank(a: &AncestorStatus) -> u8 {
    let has = |kind: &str, status: &str| {
        a.conditions
            .iter()
            .any(|c| c.kind == kind && c.status == status)
    };
    if has("Accepted", "False") {
        0
    } else if has("Overridden", "True") {
        1
    } else {
        2
    }
}

/// Envoy Gateway's `Error2ConditionMsg`: first letter upper-cased, a final "." added.
pub fn condition_message(error: &str) -> String {
    let mut chars = error.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(name: &str) -> AncestorRef {
        AncestorRef::gateway("ns", name, None)
    }

    #[test]
    fn conditions_merge_by_type_in_place() {
        let mut s = PolicyStatus::default();
        s.accept_if_unset(&gw("a"));
        s.warn_deprecated(
            &gw("a"),
            "spec.targetRef is deprecated, use spec.targetRefs instead",
        );
        s.reject(&gw("a"), "Invalid", "Boom.");
        s.accept_if_unset(&gw("a"));
        let kinds: Vec<_> = s.ancestors[0]
            .conditions
            .iter()
            .map(|c| (c.kind.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(kinds, [("Accepted", "False"), ("Warning", "True")]);
    }

    #[test]
    fn truncates_to_sixteen_with_rejected_first() {
        let mut s = PolicyStatus::default();
        for i in 0..20 {
            let a = gw(&format!("g{i:02}"));
            if i == 19 {
                s.reject(&a, "Conflicted", "x");
            } else {
                s.accept_if_unset(&a);
            }
        }
        s.truncate();
        assert_eq!(s.ancestors.len(), 16);
        assert_eq!(s.ancestors[0].ancestor_ref.name, "g19");
        let last = &s.ancestors[15];
        assert_eq!(last.conditions.last().unwrap().kind, "Aggregated");
        assert_eq!(last.conditions.last().unwrap().message, TRUNCATED_MESSAGE);
    }

    #[test]
    fn condition_message_formats_like_envoy_gateway() {
        assert_eq!(
            condition_message("retry: baseInterval cannot be set to 0s"),
            "Retry: baseInterval cannot be set to 0s."
        );
        assert_eq!(condition_message("Already done."), "Already done.");
    }
}
