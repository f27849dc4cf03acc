//! YAML documents as JSON values plus a map from field path to source position.
//!
//! Kubernetes reads manifests by converting YAML to JSON; doing the same keeps merge patches and
//! `explain` output in the CRD's JSON form. The side map lets every later error, from serde or from
//! validation, point at `file:line:col` by field path.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// One YAML document converted to JSON, with positions by field path (`spec.rules[0].name`).
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    /// Where the document starts.
    pub start: Pos,
    positions: HashMap<String, Pos>,
}

/// A YAML syntax error or an unsupported construct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl Document {
    /// Position of the value at `path`, or of the closest enclosing field that has one.
    pub fn pos(&self, path: &str) -> Pos {
        let mut path = path;
        loop {
            if let Some(pos) = self.positions.get(path) {
                return *pos;
            }
            match parent_path(path) {
                Some(parent) => path = parent,
                None => return self.start,
            }
        }
    }
}

/// The path one level up: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → `` (the root), root → None.
fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Joins a path and a map key.
pub fn child_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Joins a path and a list index.
pub fn child_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

/// Parses every document of a YAML stream. Empty documents are dropped.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| YamlError {
            pos: Pos {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.documents)
}

/// A container being filled while events stream in.
enum Frame {
    Seq {
        items: Vec<Value>,
        path: String,
        anchor: usize,
    },
    Map {
        map: Map<String, Value>,
        path: String,
        pending_key: Option<(String, Pos)>,
        anchor: usize,
    },
}

#[derive(Default)]
struct Builder {
    documents: Vec<Document>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    positions: HashMap<String, Pos>,
    doc_start: Pos,
    root: Option<Value>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let pos = pos_of(&span);
        match event {
            Event::DocumentStart(_) => {
                self.doc_start = pos;
                self.positions.clear();
                self.anchors.clear();
                self.root = None;
            }
            Event::DocumentEnd => {
                if let Some(value) = self.root.take()
                    && !value.is_null()
                {
                    self.documents.push(Document {
                        value,
                        start: self.doc_start,
                        positions: std::mem::take(&mut self.positions),
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar_value(&text, style, tag.as_deref().map(|t| t.suffix.as_str()));
                // A scalar in key position names the next map entry.
                if let Some(Frame::Map {
                    pending_key: pending @ None,
                    path,
                    map,
                    ..
                }) = self.stack.last_mut()
                {
                    let key = match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    if map.contains_key(&key) {
                        return Err(YamlError {
                            pos,
                            message: format!("duplicate key `{key}` in {}", describe(path)),
                        });
                    }
                    *pending = Some((key, pos));
                    return Ok(());
                }
                self.finish_value(value, anchor, pos)?;
            }
            Event::Alias(id) => {
                let value = self.anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    pos,
                    message: "alias to an unknown anchor".to_string(),
                })?;
                if let Some(Frame::Map {
                    pending_key: None, ..
                }) = self.stack.last()
                {
                    return Err(YamlError {
                        pos,
                        message: "aliases are not supported as mapping keys".to_string(),
                    });
                }
                self.finish_value(value, 0, pos)?;
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.open_child(pos)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    path,
                    anchor,
                });
            }
            Event::MappingStart(anchor, _) => {
                let path = self.open_child(pos)?;
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    path,
                    pending_key: None,
                    anchor,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Map { map, anchor, .. }) => (Value::Object(map), anchor),
                    None => return Ok(()),
                };
                self.store(value, anchor);
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }

    /// Records the position of a new child container and returns its path.
    fn open_child(&mut self, pos: Pos) -> Result<String, YamlError> {
        let path = match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { items, path, .. }) => child_index(path, items.len()),
            Some(Frame::Map {
                pending_key: Some((key, key_pos)),
                path,
                ..
            }) => {
                let child = child_key(path, key);
                self.positions.insert(child.clone(), *key_pos);
                return Ok(child);
            }
            Some(Frame::Map { .. }) => {
                return Err(YamlError {
                    pos,
                    message: "complex mapping keys are not supported".to_string(),
                });
            }
        };
        self.positions.insert(path.clone(), pos);
        Ok(path)
    }

    fn finish_value(&mut self, value: Value, anchor: usize, pos: Pos) -> Result<(), YamlError> {
        self.open_child(pos)?;
        self.store(value, anchor);
        Ok(())
    }

    /// Places a finished value into its parent (or as the document root).
    fn store(&mut self, value: Value, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                map, pending_key, ..
            }) => {
                if let Some((key, _)) = pending_key.take() {
                    map.insert(key, value);
                }
            }
        }
    }
}

fn describe(path: &str) -> String {
    if path.is_empty() {
        "the document".to_string()
    } else {
        format!("`{path}`")
    }
}

/// Resolves a scalar with the YAML 1.2 core schema, as Kubernetes' YAML-to-JSON conversion does
/// for the values that appear in manifests.
fn scalar_value(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::String(text.to_string()),
        Some("int") | Some("float") | Some("bool") | Some("null") | None => {}
        Some(_) => return Value::String(text.to_string()),
    }
    if style != ScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::Number(n);
    }
    if let Some(n) = parse_float(text) {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<Number> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        u64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u64>().ok()?
    } else {
        return None;
    };
    if negative {
        let value = i64::try_from(magnitude).ok()?;
        Some(Number::from(-value))
    } else {
        Some(Number::from(magnitude))
    }
}

fn parse_float(text: &str) -> Option<Number> {
    let valid = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if !valid {
        return None;
    }
    Number::from_f64(text.parse::<f64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_documents_and_tracks_positions() {
        let text = "a: 1\nb:\n  c: [x, 'y']\n  d:\n    - e: true\n---\n# empty\n---\nz: ~\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0].value,
            serde_json::json!({"a": 1, "b": {"c": ["x", "y"], "d": [{"e": true}]}})
        );
        assert_eq!(docs[0].pos("a"), Pos { line: 1, col: 1 });
        assert_eq!(docs[0].pos("b.c[1]"), Pos { line: 3, col: 10 });
        assert_eq!(docs[0].pos("b.d[0].e"), Pos { line: 5, col: 7 });
        // Unknown paths fall back to the closest known parent.
        assert_eq!(docs[0].pos("b.d[0].missing"), Pos { line: 5, col: 7 });
        assert_eq!(docs[1].value, serde_json::json!({"z": null}));
        assert_eq!(docs[1].pos("z").line, 9);
    }

    #[test]
    fn resolves_scalars_like_kubernetes() {
        let docs =
            parse_documents("a: '10'\nb: 10\nc: 1.5\nd: 100M\ne: -3\nf: 0x10\ng: yes\n").unwrap();
        assert_eq!(
            docs[0].value,
            serde_json::json!({"a": "10", "b": 10, "c": 1.5, "d": "100M", "e": -3, "f": 16, "g": "yes"})
        );
    }

    #[test]
    fn rejects_duplicate_keys_with_position() {
        let err = parse_documents("spec:\n  a: 1\n  a: 2\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, col: 3 });
        assert!(
            err.message.contains("duplicate key `a` in `spec`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1);
        assert!(!err.message.is_empty());
    }

    #[test]
    fn expands_aliases() {
        let docs = parse_documents("a: &x {b: 1}\nc: *x\n").unwrap();
        assert_eq!(
            docs[0].value,
            serde_json::json!({"a": {"b": 1}, "c": {"b": 1}})
        );
    }
}
