//! Number and JSON formatting shared by the report pages.

use serde_json::Value;

/// Milliseconds with a precision that suits their size; `—` when absent.
pub fn ms(value: Option<f64>) -> String {
    match value {
        None => "—".to_string(),
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) if v >= 10.0 => format!("{v:.1} ms"),
        Some(v) => format!("{v:.2} ms"),
    }
}

/// A fraction as a percentage (`0.9991` → `99.91%`); `—` when absent.
pub fn pct(fraction: Option<f64>) -> String {
    fraction.map_or_else(|| "—".to_string(), |f| format!("{:.2}%", f * 100.0))
}

/// Seconds since the run started (`t=4.0s`).
pub fn at(seconds: f64) -> String {
    format!("t={seconds:.1}s")
}

/// `part / whole` as a fraction, `None` for an empty whole.
pub fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Flattens a JSON object into `a.b.c = value` lines, in document order.
pub fn flatten(value: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    flatten_into(value, String::new(), &mut out);
    out
}

fn flatten_into(value: &Value, prefix: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_into(v, path, out);
            }
        }
        // Lists of scalars read best on one line; lists of objects get an index per element.
        Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
            for (i, v) in items.iter().enumerate() {
                flatten_into(v, format!("{prefix}[{i}]"), out);
            }
        }
        other => out.push((prefix, scalar(other))),
    }
}

/// A JSON value as plain text (strings without quotes).
pub fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(ms(Some(512.4)), "512 ms");
        assert_eq!(ms(Some(41.26)), "41.3 ms");
        assert_eq!(ms(Some(2.345)), "2.35 ms");
        assert_eq!(ms(None), "—");
        assert_eq!(pct(Some(0.99912)), "99.91%");
        assert_eq!(pct(ratio(1, 0)), "—");
    }

    #[test]
    fn flattens_nested_objects() {
        let v = json!({"circuitBreaker": {"maxConnections": 50, "tags": ["a", "b"]},
                       "retry": {"on": [{"code": 503}]}, "name": "x"});
        assert_eq!(
            flatten(&v),
            vec![
                ("circuitBreaker.maxConnections".into(), "50".into()),
                ("circuitBreaker.tags".into(), r#"["a","b"]"#.into()),
                ("retry.on[0].code".into(), "503".into()),
                ("name".into(), "x".into()),
            ]
        );
    }
}
