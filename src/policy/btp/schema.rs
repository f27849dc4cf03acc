//! The Kubernetes API server's OpenAPI and CEL error messages for custom resources, emitted at
//! the field path where the API server reports them.
//!
//! Formats follow `k8s.io/apimachinery/pkg/util/validation/field` as the apiextensions server
//! uses it: `Required value`, `Unsupported value: "x": supported values: "A", "B"`,
//! `Invalid value: -1: spec.x in body should be greater than or equal to 0`,
//! `Too long: may not be more than 253 bytes`, `Too many: 9: must have at most 8 items`,
//! `Duplicate value: "x"`, and for a failed CEL rule `Invalid value: <message>` (objects and
//! arrays; scalars show their value: `Invalid value: "Replace": <message>`), as Kubernetes 1.35+
//! prints them (Envoy Gateway v1.9.0 tests against 1.33–1.36, default 1.36).
//!
//! As in the API server, CEL rules are not evaluated when a "blocking" schema error was found
//! (required, enum, too long, too many, wrong type or format); one notice replaces them.

use std::sync::LazyLock;

use regex::Regex;

use super::values::{CrdEnum, Quantity};
use crate::scenario::check::Checker;
use crate::scenario::duration::{DURATION_PATTERN, parse_duration};
use crate::scenario::yaml::{child_index, child_key};

/// `spec.x.y` joined with a key.
pub(crate) fn key(path: &str, name: &str) -> String {
    child_key(path, name)
}

/// `spec.x[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    child_index(path, i)
}

/// A CRD string pattern compiled once, remembered with its source text for messages.
pub(crate) struct Pattern {
    pub(crate) source: &'static str,
    regex: LazyLock<Regex>,
}

impl Pattern {
    pub(crate) const fn new(source: &'static str, build: fn() -> Regex) -> Pattern {
        Pattern {
            source,
            regex: LazyLock::new(build),
        }
    }

    fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

macro_rules! pattern {
    ($name:ident, $source:literal) => {
        pub(crate) static $name: $crate::policy::btp::schema::Pattern =
            $crate::policy::btp::schema::Pattern::new($source, || {
                // The CRD patterns are fixed strings known to compile.
                #[allow(clippy::expect_used)]
                regex::Regex::new($source).expect("CRD pattern compiles")
            });
    };
}

pattern!(
    GROUP,
    r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
);
pattern!(KIND, r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$");
pattern!(
    DNS_SUBDOMAIN,
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
);
pattern!(HEADER_NAME, r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$");
pattern!(NO_CR_LF_NUL, r"^[^\r\n\x00]*$");
pattern!(NO_NUL_LF_CR, r"^[^\x00\n\r]*$");
pattern!(DYNAMIC_MODULE_NAME, r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$");
pattern!(
    QUANTITY_SYNTAX,
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
);
pattern!(QUANTITY_POSITIVE, r"^[1-9]+[0-9]*([EPTGMK]i|[EPTGMk])?$");

/// Go's `strconv.Quote` for the values quoted in messages.
pub(crate) fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What a CEL rule is attached to: objects and arrays hide their value in the message, scalars
/// show it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind<'v> {
    Object,
    Array,
    String(&'v str),
}

impl Kind<'_> {
    /// `Invalid value: ` plus the shown value, if any.
    fn prefix(self) -> String {
        match self {
            Kind::Object | Kind::Array => "Invalid value: ".to_string(),
            Kind::String(v) => format!("Invalid value: {}: ", go_quote(v)),
        }
    }
}

/// Emits schema and CEL errors into a [`Checker`] with the API server's wording.
pub(crate) struct Schema<'c, 'a> {
    check: &'c mut Checker<'a>,
    /// CEL failures, reported after the schema errors unless a blocking error was found.
    cel_errors: Vec<(String, String)>,
    blocked: bool,
}

impl<'c, 'a> Schema<'c, 'a> {
    pub(crate) fn new(check: &'c mut Checker<'a>) -> Self {
        Schema {
            check,
            cel_errors: Vec::new(),
            blocked: false,
        }
    }

    /// Reports the CEL failures, or the API server's notice that they were not evaluated
    /// (located at `base`; the API server gives it no path).
    pub(crate) fn finish(self, base: &str) {
        if self.blocked {
            self.check.error(
                base,
                "Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            );
            return;
        }
        for (path, message) in self.cel_errors {
            self.check.error(&path, message);
        }
    }

    /// Marks CEL rules as not evaluated (a type error was already reported).
    pub(crate) fn block(&mut self) {
        self.blocked = true;
    }

    /// An error that keeps CEL rules from running (required, enum, too long, too many).
    fn blocking(&mut self, path: &str, message: impl Into<String>) {
        self.blocked = true;
        self.error(path, message);
    }

    pub(crate) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.check.error(path, message);
    }

    /// `required:` — `<path>: Required value`.
    pub(crate) fn required<T>(&mut self, value: &Option<T>, path: &str) {
        if value.is_none() {
            self.blocking(path, "Required value");
        }
    }

    /// `minimum` / `maximum` on an integer.
    pub(crate) fn int_range(
        &mut self,
        value: Option<i64>,
        path: &str,
        min: Option<i64>,
        max: Option<i64>,
    ) {
        let Some(v) = value else { return };
        if let Some(min) = min
            && v < min
        {
            self.error(
                path,
                format!(
                    "Invalid value: {v}: {path} in body should be greater than or equal to {}",
                    min
                ),
            );
        }
        if let Some(max) = max
            && v > max
        {
            self.error(
                path,
                format!(
                    "Invalid value: {v}: {path} in body should be less than or equal to {}",
                    max
                ),
            );
        }
    }

    /// `minLength` / `maxLength` (counted in characters, as the API server does).
    pub(crate) fn str_len(
        &mut self,
        value: Option<&str>,
        path: &str,
        min: Option<usize>,
        max: Option<usize>,
    ) {
        let Some(text) = value else { return };
        let len = text.chars().count();
        if let Some(max) = max
            && len > max
        {
            let unit = if max == 1 { "byte" } else { "bytes" };
            self.blocking(path, format!("Too long: may not be more than {max} {unit}"));
        }
        if let Some(min) = min
            && len < min
        {
            self.error(
                path,
                format!(
                    "Invalid value: {}: {path} in body should be at least {min} chars long",
                    go_quote(text)
                ),
            );
        }
    }

    /// `pattern`; returns whether it matched.
    pub(crate) fn pattern(&mut self, value: Option<&str>, path: &str, pattern: &Pattern) -> bool {
        let Some(text) = value else { return true };
        if pattern.is_match(text) {
            return true;
        }
        self.pattern_error(text, path, pattern.source);
        false
    }

    fn pattern_error(&mut self, text: &str, path: &str, source: &str) {
        self.error(
            path,
            format!(
                "Invalid value: {}: {path} in body should match '{source}'",
                go_quote(text)
            ),
        );
    }

    /// A Gateway API Duration field; returns the parsed value when valid.
    pub(crate) fn duration(
        &mut self,
        value: &Option<String>,
        path: &str,
    ) -> Option<std::time::Duration> {
        let text = value.as_deref()?;
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(_) => {
                self.pattern_error(text, path, DURATION_PATTERN);
                None
            }
        }
    }

    /// A Quantity field (`allOf` of two patterns; integers bypass them).
    pub(crate) fn quantity(&mut self, value: &Option<Quantity>, path: &str) {
        let Some(q) = value else { return };
        if !q.was_string() {
            return;
        }
        let syntax = self.pattern(Some(q.text()), path, &QUANTITY_SYNTAX);
        let positive = self.pattern(Some(q.text()), path, &QUANTITY_POSITIVE);
        self.all_of(syntax as usize + positive as usize, 2, path);
    }

    /// The extra error the API server adds when an `allOf` branch fails.
    fn all_of(&mut self, validated: usize, total: usize, path: &str) {
        if validated == total {
            return;
        }
        let extra = if validated == 0 {
            ". None validated"
        } else {
            ""
        };
        self.error(
            path,
            format!("Invalid value: \"\": \"{path}\" must validate all the schemas (allOf){extra}"),
        );
    }

    /// `enum:` on a string field.
    pub(crate) fn enumeration<E: CrdEnum>(&mut self, value: Option<&E>, path: &str) -> bool {
        let Some(v) = value else { return true };
        if v.is_known() {
            return true;
        }
        self.blocking(path, unsupported(&go_quote(v.as_str()), E::VALUES));
        false
    }

    /// An enum written as `allOf: [{enum}, {enum}]` in the CRD (both branches fail together;
    /// the duplicate message is collapsed as the API server does).
    pub(crate) fn enumeration_all_of<E: CrdEnum>(&mut self, value: Option<&E>, path: &str) {
        if !self.enumeration(value, path) {
            self.all_of(0, 2, path);
        }
    }

    /// `enum:` on an integer field.
    pub(crate) fn int_enumeration(&mut self, value: Option<i64>, path: &str, allowed: &[&str]) {
        let Some(v) = value else { return };
        if !allowed.contains(&v.to_string().as_str()) {
            self.blocking(path, unsupported(&v.to_string(), allowed));
        }
    }

    /// `maxItems` / `minItems`.
    pub(crate) fn items<T>(
        &mut self,
        value: &Option<Vec<T>>,
        path: &str,
        min: Option<usize>,
        max: Option<usize>,
    ) {
        let Some(items) = value else { return };
        if let Some(max) = max
            && items.len() > max
        {
            let unit = if max == 1 { "item" } else { "items" };
            self.blocking(
                path,
                format!("Too many: {}: must have at most {max} {unit}", items.len()),
            );
        }
        if let Some(min) = min
            && items.len() < min
        {
            self.error(
                path,
                format!(
                    "Invalid value: {}: {path} in body should have at least {min} items",
                    items.len()
                ),
            );
        }
    }

    /// `format: byte` (standard base64).
    pub(crate) fn base64(&mut self, value: Option<&str>, path: &str) {
        let Some(text) = value else { return };
        if !is_base64(text) {
            let quoted = go_quote(text);
            // A format failure is a type error to the API server, which blocks CEL.
            self.blocking(
                path,
                format!("Invalid value: {quoted}: {path} in body must be of type byte: {quoted}"),
            );
        }
    }

    /// `x-kubernetes-list-type: set`: a repeated entry is reported at its index.
    pub(crate) fn set_duplicates(&mut self, items: &[String], path: &str) {
        for (i, item) in items.iter().enumerate() {
            if items[..i].contains(item) {
                self.error(
                    &index(path, i),
                    format!("Duplicate value: {}", go_quote(item)),
                );
            }
        }
    }

    /// `x-kubernetes-list-type: map` keyed by one string field.
    pub(crate) fn map_duplicates(&mut self, keys: &[Option<&str>], key_name: &str, path: &str) {
        for (i, item) in keys.iter().enumerate() {
            let Some(item) = item else { continue };
            if keys[..i].contains(&Some(item)) {
                self.error(
                    &index(path, i),
                    format!(
                        "Duplicate value: map[string]interface {{}}{{\"{key_name}\":{}}}",
                        go_quote(item)
                    ),
                );
            }
        }
    }

    /// An `x-kubernetes-validations` rule on the value at `path`.
    pub(crate) fn cel(&mut self, ok: bool, path: &str, kind: Kind<'_>, message: &str) {
        if !ok {
            self.cel_errors
                .push((path.to_string(), format!("{}{message}", kind.prefix())));
        }
    }

    /// A CEL rule that reads a missing field: the API server reports the evaluation error.
    /// (Only reachable for defaulted fields: a missing required field blocks CEL.)
    pub(crate) fn cel_no_such_key(
        &mut self,
        path: &str,
        kind: Kind<'_>,
        field: &str,
        message: &str,
    ) {
        self.cel_errors.push((
            path.to_string(),
            format!(
                "{}no such key: {field} evaluating rule: {message}",
                kind.prefix()
            ),
        ));
    }
}

/// `Unsupported value: <v>: supported values: "A", "B"`.
fn unsupported(value: &str, allowed: &[&str]) -> String {
    let list: Vec<String> = allowed.iter().map(|v| go_quote(v)).collect();
    format!(
        "Unsupported value: {value}: supported values: {}",
        list.join(", ")
    )
}

/// Go's `base64.StdEncoding.DecodeString` acceptance (padding required; CR/LF ignored).
fn is_base64(text: &str) -> bool {
    let bytes: Vec<u8> = text
        .bytes()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect();
    if bytes.len() % 4 != 0 {
        return false;
    }
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    if padding > 2 {
        return false;
    }
    let body = &bytes[..bytes.len() - padding];
    body.iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(go_quote("*.illegal.regex"), "\"*.illegal.regex\"");
    }

    #[test]
    fn base64_follows_std_encoding() {
        assert!(is_base64("cG9uZw=="));
        assert!(is_base64(""));
        assert!(!is_base64("pong"[..3].as_ref()));
        assert!(!is_base64("c!9uZw=="));
    }
}
