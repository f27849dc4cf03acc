//! `mergeType`: combining a route policy (the patch) with its closest parent policy.
//!
//! Envoy Gateway marshals both policies to JSON and applies a Kubernetes strategic merge patch
//! or an RFC 7396 JSON merge patch; this reproduces both on JSON values, including the order in
//! which a strategic merge leaves keyed list items.

use serde_json::{Map, Value};

/// Spec fields whose lists a strategic merge combines by their `type` key (patchMergeKey).
const KEYED_LISTS: [&str; 3] = ["compression", "compressor", "httpUpgrade"];

/// Merges `patch` (the route policy's spec) into `parent` (the parent policy's spec).
///
/// The error text is Envoy Gateway's, to follow `error merging policies: `.
pub fn merge_specs(parent: &Value, patch: &Value, merge_type: &str) -> Result<Value, String> {
    match merge_type {
        "StrategicMerge" => Ok(strategic_merge(parent, patch, true)),
        "JSONMerge" => Ok(json_merge(parent, patch)),
        other => Err(format!("unsupported merge type: {other}")),
    }
}

/// RFC 7396: objects merge recursively, anything else (lists included) is replaced, null deletes.
pub fn json_merge(original: &Value, patch: &Value) -> Value {
    let Value::Object(patch_map) = patch else {
        return patch.clone();
    };
    let mut out = match original {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch_map {
        if value.is_null() {
            out.remove(key);
        } else {
            let merged = json_merge(out.get(key).unwrap_or(&Value::Null), value);
            out.insert(key.clone(), merged);
        }
    }
    Value::Object(out)
}

fn strategic_merge(original: &Value, patch: &Value, top_level: bool) -> Value {
    let (Value::Object(orig_map), Value::Object(patch_map)) = (original, patch) else {
        return patch.clone();
    };
    let mut out = orig_map.clone();
    for (key, value) in patch_map {
        if value.is_null() {
            out.remove(key);
            continue;
        }
        let merged = match (out.get(key), value) {
            (Some(Value::Array(orig)), Value::Array(items))
                if top_level && KEYED_LISTS.contains(&key.as_str()) =>
            {
                Value::Array(merge_keyed_list(orig, items, "type"))
            }
            (Some(orig @ Value::Object(_)), Value::Object(_)) => {
                strategic_merge(orig, value, false)
            }
            _ => value.clone(),
        };
        out.insert(key.clone(), merged);
    }
    Value::Object(out)
}

/// Merges lists item by item on `key`; the result keeps the patch's order and slots the items
/// only the original has in by their original position, as Kubernetes' merge does.
fn merge_keyed_list(original: &[Value], patch: &[Value], key: &str) -> Vec<Value> {
    let key_of = |v: &Value| v.get(key).cloned();
    let original_index = |v: &Value| -> isize {
        let k = key_of(v);
        original
            .iter()
            .position(|o| k.is_some() && key_of(o) == k)
            .map_or(-1, |i| i as isize)
    };
    let mut merged: Vec<Value> = patch
        .iter()
        .map(|item| {
            match original
                .iter()
                .find(|o| key_of(o).is_some() && key_of(o) == key_of(item))
            {
                Some(orig) => strategic_merge(orig, item, false),
                None => item.clone(),
            }
        })
        .collect();
    let server_only: Vec<&Value> = original
        .iter()
        .filter(|o| {
            !patch
                .iter()
                .any(|p| key_of(p).is_some() && key_of(p) == key_of(o))
        })
        .collect();
    let mut position = 0;
    for item in server_only {
        let index = original_index(item);
        let slot = (position..merged.len()).find(|&k| original_index(&merged[k]) > index);
        match slot {
            Some(k) => {
                merged.insert(k, item.clone());
                position = k + 1;
            }
            None => {
                merged.push(item.clone());
                position = merged.len();
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strategic_merge_matches_envoy_gateway_example() {
        // btp-spec.md §b.6 and conformance case backendtrafficpolicy-strategic-merge.
        let parent = json!({
            "timeout": {"tcp": {"connectTimeout": "15s"}, "http": {"connectionIdleTimeout": "16s", "maxConnectionDuration": "17s"}},
            "httpUpgrade": [{"type": "websocket"}]
        });
        let route = json!({
            "timeout": {"tcp": {"connectTimeout": "10s"}},
            "connection": {"bufferLimit": "100M"},
            "httpUpgrade": [{"type": "spdy/3.1"}]
        });
        let merged = merge_specs(&parent, &route, "StrategicMerge").unwrap();
        assert_eq!(
            merged,
            json!({
                "timeout": {"tcp": {"connectTimeout": "10s"}, "http": {"connectionIdleTimeout": "16s", "maxConnectionDuration": "17s"}},
                "httpUpgrade": [{"type": "spdy/3.1"}, {"type": "websocket"}],
                "connection": {"bufferLimit": "100M"}
            })
        );
    }

    #[test]
    fn strategic_merge_replaces_unkeyed_lists() {
        let parent = json!({"retry": {"retryOn": {"triggers": ["5xx", "reset"]}, "numRetries": 3}});
        let route = json!({"retry": {"retryOn": {"triggers": ["connect-failure"]}}});
        let merged = merge_specs(&parent, &route, "StrategicMerge").unwrap();
        assert_eq!(
            merged,
            json!({"retry": {"retryOn": {"triggers": ["connect-failure"]}, "numRetries": 3}})
        );
    }

    #[test]
    fn keyed_list_keeps_original_positions_for_server_only_items() {
        let original = [
            json!({"type": "a"}),
            json!({"type": "b"}),
            json!({"type": "c", "x": 1}),
        ];
        let patch = [json!({"type": "c", "y": 2}), json!({"type": "x"})];
        let merged = merge_keyed_list(&original, &patch, "type");
        assert_eq!(
            merged,
            [
                json!({"type": "a"}),
                json!({"type": "b"}),
                json!({"type": "c", "x": 1, "y": 2}),
                json!({"type": "x"})
            ]
        );
    }

    #[test]
    fn json_merge_replaces_every_list() {
        let parent = json!({"compressor": [{"type": "Gzip", "gzip": {}}, {"type": "Brotli", "brotli": {}}], "a": {"b": 1}});
        let route = json!({"compressor": [{"type": "Brotli", "brotli": {}}], "a": {"c": 2}});
        let merged = merge_specs(&parent, &route, "JSONMerge").unwrap();
        assert_eq!(
            merged,
            json!({"compressor": [{"type": "Brotli", "brotli": {}}], "a": {"b": 1, "c": 2}})
        );
    }

    #[test]
    fn unknown_merge_type_is_an_error_with_envoy_gateway_text() {
        assert_eq!(
            merge_specs(&json!({}), &json!({}), "Deep").unwrap_err(),
            "unsupported merge type: Deep"
        );
    }
}
