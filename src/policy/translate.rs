//! Translation errors: what Envoy Gateway's translator rejects in a spec the CRD accepted.

use serde_json::Value;

use super::btp::{
    BackendTrafficPolicySpec, ConfigMapState, TranslateContext, translation_errors_with,
};
use super::objects::ObjectSet;

/// The translation errors of a (possibly merged) policy spec, each `"<Feature>: <error>"`;
/// ConfigMaps named by `responseOverride` are looked up in `namespace`.
pub fn translation_errors(objects: &ObjectSet, spec: &Value, namespace: &str) -> Vec<String> {
    let spec: BackendTrafficPolicySpec = match serde_json::from_value(spec.clone()) {
        Ok(spec) => spec,
        // Both halves of a merge decoded alone, so this only happens on a broken merge.
        Err(e) => {
            return vec![format!(
                "BackendTrafficPolicy: cannot decode the merged spec: {e}"
            )];
        }
    };
    let lookup = |name: &str| config_map_state(objects, namespace, name);
    let ctx = TranslateContext {
        // The embedded runtime runs a global rate limiter of its own, so global limits work.
        global_rate_limit_enabled: true,
        namespace,
        config_maps: Some(&lookup),
    };
    translation_errors_with(&spec, &ctx)
}

fn config_map_state(objects: &ObjectSet, namespace: &str, name: &str) -> ConfigMapState {
    match objects
        .config_maps
        .iter()
        .find(|(m, _)| m.namespace == namespace && m.name == name)
    {
        None => ConfigMapState::Missing,
        Some((_, data)) if data.is_empty() => ConfigMapState::NoData,
        Some(_) => ConfigMapState::HasData,
    }
}
