//! A response's header fields on their way downstream.
//!
//! An upstream HTTP/1.1 head's lines stay where they arrived, as offsets into the head's
//! bytes. What the proxy removes is struck out, what it adds is kept beside them, and the
//! HTTP/1.1 server copies the lines to the client as they are. A `HeaderMap` is built only
//! when something needs one: a response override, the HTTP/2 server, a test. Building the
//! map cost about a tenth of a proxied request's instructions, and the common path reads
//! only two or three names.
//!
//! Names keep the case they arrived in, so every lookup compares without case; the names
//! the proxy acts on are classified once, as the head is read ([`Known`]). httparse has
//! already checked every name and value against the same rules `HeaderName` and `HeaderValue`
//! apply, so the lines need no second check.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use smallvec::SmallVec;

use super::http1::{Field, Fields, Known};

/// Most lines kept as lines (one bit each in the struck-out mask); a head with more becomes
/// a map at once.
pub const MAX_LINES: usize = 64;

/// Fields the proxy adds; the common case adds one (`server`), inline.
type Added = SmallVec<[(HeaderName, HeaderValue); 1]>;

/// The header fields of a response (see the module docs).
#[derive(Debug, Clone)]
pub struct ResponseHeaders(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// Boxed, as the map is: one allocation holds the lines and what is added to them, and
    /// the response that carries them stays small to move.
    Lines(Box<Lines>),
    Map(Box<HeaderMap>),
}

#[derive(Debug, Clone)]
struct Lines {
    head: Bytes,
    fields: Fields,
    /// Bit `i` set: `fields[i]` is removed.
    struck: u64,
    /// Fields the proxy added, after the lines.
    added: Added,
}

impl Lines {
    /// The lines not struck out.
    fn live(&self) -> impl Iterator<Item = &Field> {
        self.fields
            .iter()
            .enumerate()
            .filter(|(i, _)| self.struck & (1 << i) == 0)
            .map(|(_, f)| f)
    }

    /// Every field in order, the live lines then the added ones: name, value, what it is.
    fn all(&self) -> impl Iterator<Item = (&[u8], &[u8], Known)> {
        let head = &self.head[..];
        let lines = self.live().map(|f| (f.name(head), f.value(head), f.known));
        let added = self.added.iter().map(|(n, v)| {
            let name = n.as_str().as_bytes();
            (name, v.as_bytes(), Known::of(name))
        });
        lines.chain(added)
    }
}

fn known(name: &HeaderName) -> Known {
    Known::of(name.as_str().as_bytes())
}

impl Default for ResponseHeaders {
    fn default() -> Self {
        HeaderMap::new().into()
    }
}

impl From<HeaderMap> for ResponseHeaders {
    fn from(map: HeaderMap) -> Self {
        ResponseHeaders(Repr::Map(Box::new(map)))
    }
}

impl ResponseHeaders {
    /// The lines `fields` of `head`, all valid by httparse's checks; at most [`MAX_LINES`].
    pub(crate) fn lines(head: Bytes, fields: Fields) -> Self {
        debug_assert!(fields.len() <= MAX_LINES);
        ResponseHeaders(Repr::Lines(Box::new(Lines {
            head,
            fields,
            struck: 0,
            added: Added::new(),
        })))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&[u8]> {
        match &self.0 {
            Repr::Map(map) => map.get(name).map(HeaderValue::as_bytes),
            Repr::Lines(lines) => {
                let wanted = name.as_str().as_bytes();
                lines
                    .all()
                    .find(|(n, _, _)| n.eq_ignore_ascii_case(wanted))
                    .map(|(_, v, _)| v)
            }
        }
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.get(name).is_some()
    }

    /// Removes every field whose name `doomed` picks (it is given names in any case, and
    /// what they are).
    pub fn remove_where(&mut self, doomed: impl Fn(&[u8], Known) -> bool) {
        match &mut self.0 {
            Repr::Map(map) => {
                let names: Vec<HeaderName> = map
                    .keys()
                    .filter(|n| doomed(n.as_str().as_bytes(), known(n)))
                    .cloned()
                    .collect();
                for name in &names {
                    map.remove(name);
                }
            }
            Repr::Lines(lines) => {
                let head = &lines.head[..];
                for (i, field) in lines.fields.iter().enumerate() {
                    if doomed(field.name(head), field.known) {
                        lines.struck |= 1 << i;
                    }
                }
                lines
                    .added
                    .retain(|(n, _)| !doomed(n.as_str().as_bytes(), known(n)));
            }
        }
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        let wanted = name.as_str().as_bytes();
        self.remove_where(|n, _| n.eq_ignore_ascii_case(wanted));
    }

    /// Adds a value of `name`, after those already there.
    pub fn append(&mut self, name: HeaderName, value: HeaderValue) {
        match &mut self.0 {
            Repr::Map(map) => {
                map.append(name, value);
            }
            Repr::Lines(lines) => lines.added.push((name, value)),
        }
    }

    /// Sets `name` to `value` alone.
    pub fn insert(&mut self, name: HeaderName, value: HeaderValue) {
        match &mut self.0 {
            Repr::Map(map) => {
                map.insert(name, value);
            }
            Repr::Lines(_) => {
                self.remove(&name);
                self.append(name, value);
            }
        }
    }

    /// Adds every field of `more`.
    pub fn extend(&mut self, more: HeaderMap) {
        match &mut self.0 {
            Repr::Map(map) => map.extend(more),
            Repr::Lines(lines) => {
                let mut last = None;
                for (name, value) in more {
                    // `HeaderMap`'s iterator names only the first of a name's values.
                    let name = name.or_else(|| last.clone());
                    if let Some(name) = name {
                        last = Some(name.clone());
                        lines.added.push((name, value));
                    }
                }
            }
        }
    }

    /// Calls `f` with every field's name (in the case it arrived in), value, and what the
    /// name is, in order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8], Known)) {
        match &self.0 {
            Repr::Map(map) => {
                for (name, value) in map.iter() {
                    f(name.as_str().as_bytes(), value.as_bytes(), known(name));
                }
            }
            // Two loops rather than `all()`: `chain` costs a state check per item on the
            // path every response takes.
            Repr::Lines(lines) => {
                let head = &lines.head[..];
                for field in lines.live() {
                    f(field.name(head), field.value(head), field.known);
                }
                for (name, value) in &lines.added {
                    f(name.as_str().as_bytes(), value.as_bytes(), known(name));
                }
            }
        }
    }

    /// The fields as a map, built from the lines on first use.
    pub fn map_mut(&mut self) -> &mut HeaderMap {
        if let Repr::Lines(lines) = &self.0 {
            self.0 = Repr::Map(Box::new(to_map(lines)));
        }
        match &mut self.0 {
            Repr::Map(map) => map,
            Repr::Lines(_) => unreachable!("the lines were just turned into a map"),
        }
    }

    /// The fields as a map.
    pub fn into_map(self) -> HeaderMap {
        match self.0 {
            Repr::Map(map) => *map,
            Repr::Lines(lines) => to_map(&lines),
        }
    }
}

fn to_map(lines: &Lines) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(lines.fields.len() + lines.added.len());
    let head = &lines.head;
    for field in lines.live() {
        let (name, value) = field.ranges();
        // httparse accepted these bytes under the same rules, so neither conversion fails.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&head[name]),
            HeaderValue::from_maybe_shared(head.slice(value)),
        ) {
            map.append(name, value);
        }
    }
    for (name, value) in &lines.added {
        map.append(name.clone(), value.clone());
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines parsed from `head` (a response head without the status line).
    fn lines(head: &'static str) -> ResponseHeaders {
        let head = Bytes::from_static(head.as_bytes());
        let mut fields = Fields::new();
        let mut at = 0;
        for line in head.split(|b| *b == b'\n') {
            let colon = line.iter().position(|b| *b == b':').expect("a colon");
            let value_start = at + colon + 2;
            let value_end = at + line.len() - 1;
            fields.push(Field::at(&head, at..at + colon, value_start..value_end));
            at += line.len() + 1;
            if at >= head.len() {
                break;
            }
        }
        ResponseHeaders::lines(head, fields)
    }

    fn names(h: &ResponseHeaders) -> Vec<String> {
        let mut out = Vec::new();
        h.for_each(|n, v, _| {
            out.push(format!(
                "{}={}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(v)
            ))
        });
        out
    }

    const HEAD: &str = "Server: nginx\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nX-Trace: t\r\nset-cookie: b=2\r\n";

    #[test]
    fn lookups_ignore_case_and_find_the_first_value() {
        let h = lines(HEAD);
        assert_eq!(h.get(&http::header::CONTENT_TYPE), Some(&b"text/plain"[..]));
        assert_eq!(h.get(&http::header::SET_COOKIE), Some(&b"a=1"[..]));
        assert!(h.contains(&HeaderName::from_static("x-trace")));
        assert!(!h.contains(&http::header::DATE));
    }

    #[test]
    fn removed_lines_are_skipped_and_added_fields_follow() {
        let mut h = lines(HEAD);
        h.remove(&http::header::SET_COOKIE);
        h.insert(http::header::SERVER, HeaderValue::from_static("envoy"));
        h.append(
            HeaderName::from_static("x-extra"),
            HeaderValue::from_static("1"),
        );
        assert_eq!(
            names(&h),
            [
                "Content-Type=text/plain",
                "X-Trace=t",
                "server=envoy",
                "x-extra=1"
            ]
        );
        assert_eq!(h.get(&http::header::SERVER), Some(&b"envoy"[..]));
        h.remove_where(|n, _| n.eq_ignore_ascii_case(b"x-extra"));
        assert!(!h.contains(&HeaderName::from_static("x-extra")));
    }

    #[test]
    fn the_map_holds_what_the_lines_say() {
        let mut h = lines(HEAD);
        h.remove(&http::header::SERVER);
        let mut extra = HeaderMap::new();
        extra.append(http::header::SET_COOKIE, HeaderValue::from_static("c=3"));
        extra.append(http::header::SET_COOKIE, HeaderValue::from_static("d=4"));
        h.extend(extra);
        let map = h.clone().into_map();
        let cookies: Vec<_> = map.get_all(http::header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1", "b=2", "c=3", "d=4"]);
        assert!(!map.contains_key(http::header::SERVER));
        assert_eq!(map["x-trace"], "t");
        assert_eq!(map.len(), 6);
        // After `map_mut` the same lookups answer from the map.
        h.map_mut()
            .insert(http::header::DATE, HeaderValue::from_static("now"));
        assert_eq!(h.get(&http::header::DATE), Some(&b"now"[..]));
        assert_eq!(h.get(&http::header::SET_COOKIE), Some(&b"a=1"[..]));
    }

    #[test]
    fn a_map_answers_the_same_way() {
        let mut h = ResponseHeaders::from(lines(HEAD).into_map());
        h.remove_where(|n, _| n.eq_ignore_ascii_case(b"set-cookie"));
        h.insert(http::header::SERVER, HeaderValue::from_static("envoy"));
        assert_eq!(
            names(&h),
            ["server=envoy", "content-type=text/plain", "x-trace=t"]
        );
    }
}
