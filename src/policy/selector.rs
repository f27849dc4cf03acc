//! Kubernetes label selectors, as `metav1.LabelSelectorAsSelector` evaluates them.

use std::collections::BTreeMap;

use super::gateway_api::LabelSelectorRequirement;

/// Whether `labels` satisfy `matchLabels` and every `matchExpressions` entry.
///
/// An empty selector matches everything; a selector that Kubernetes could not parse (an unknown
/// operator, `In` without values, `Exists` with values) matches nothing.
pub fn selector_matches(
    match_labels: &BTreeMap<String, String>,
    match_expressions: &[LabelSelectorRequirement],
    labels: &BTreeMap<String, String>,
) -> bool {
    if !match_expressions.iter().all(requirement_is_valid) {
        return false;
    }
    match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        && match_expressions.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| r.values.contains(v)),
                "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

fn requirement_is_valid(r: &LabelSelectorRequirement) -> bool {
    match r.operator.as_str() {
        "In" | "NotIn" => !r.values.is_empty(),
        "Exists" | "DoesNotExist" => r.values.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn match_labels_and_expressions_are_anded() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(selector_matches(&labels(&[("app", "web")]), &[], &l));
        assert!(!selector_matches(&labels(&[("app", "db")]), &[], &l));
        assert!(selector_matches(
            &BTreeMap::new(),
            &[req("tier", "In", &["front", "x"])],
            &l
        ));
        assert!(!selector_matches(
            &labels(&[("app", "web")]),
            &[req("tier", "NotIn", &["front"])],
            &l
        ));
        assert!(selector_matches(
            &BTreeMap::new(),
            &[req("zone", "DoesNotExist", &[])],
            &l
        ));
        assert!(selector_matches(
            &BTreeMap::new(),
            &[req("app", "Exists", &[])],
            &l
        ));
        assert!(
            selector_matches(&BTreeMap::new(), &[], &l),
            "empty selects everything"
        );
    }

    #[test]
    fn unparsable_selectors_select_nothing() {
        let l = labels(&[("app", "web")]);
        assert!(!selector_matches(
            &BTreeMap::new(),
            &[req("app", "In", &[])],
            &l
        ));
        assert!(!selector_matches(
            &BTreeMap::new(),
            &[req("app", "Exists", &["web"])],
            &l
        ));
        assert!(!selector_matches(
            &BTreeMap::new(),
            &[req("app", "Equals", &["web"])],
            &l
        ));
    }
}
