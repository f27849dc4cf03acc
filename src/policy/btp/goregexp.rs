//! Which regular expressions Go's `regexp.Compile` rejects, with Go's error text.
//!
//! Envoy Gateway checks rate-limit regexes with Go's `regexp` (RE2 syntax, Perl flags) and puts
//! the parser's message into the policy status, e.g.
//! ``error parsing regexp: missing argument to repetition operator: `*` ``. The Rust `regex`
//! crate accepts a slightly different language and words its errors differently, so this module
//! walks the pattern the way Go's `regexp/syntax` parser does, keeping only what decides errors:
//! the operand stack (expressions, `(` and `|` markers) and nested repeat counts.

use std::fmt;

/// Largest count in `x{n,m}`, and largest product of nested counts.
const MAX_REPEAT: i64 = 1000;

/// A Go `regexp/syntax` parse error: `error parsing regexp: <code>: `<expr>``.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GoError {
    code: &'static str,
    expr: String,
}

impl fmt::Display for GoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error parsing regexp: {}: `{}`", self.code, self.expr)
    }
}

const INVALID_CHAR_RANGE: &str = "invalid character class range";
const INVALID_ESCAPE: &str = "invalid escape sequence";
const INVALID_NAMED_CAPTURE: &str = "invalid named capture";
const INVALID_PERL_OP: &str = "invalid or unsupported Perl syntax";
const INVALID_REPEAT_OP: &str = "invalid nested repetition operator";
const INVALID_REPEAT_SIZE: &str = "invalid repeat count";
const MISSING_BRACKET: &str = "missing closing ]";
const MISSING_PAREN: &str = "missing closing )";
const MISSING_REPEAT_ARGUMENT: &str = "missing argument to repetition operator";
const TRAILING_BACKSLASH: &str = "trailing backslash at end of expression";
const UNEXPECTED_PAREN: &str = "unexpected )";

fn err<T>(code: &'static str, expr: &str) -> Result<T, GoError> {
    Err(GoError {
        code,
        expr: expr.to_string(),
    })
}

/// Checks `pattern` as Go's `regexp.Compile` would; the error is Go's message.
pub fn validate_go_regex(pattern: &str) -> Result<(), String> {
    Parser {
        whole: pattern,
        stack: Vec::new(),
    }
    .parse()
    .map_err(|e| e.to_string())
}

/// One entry of Go's parse stack, reduced to what decides errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    /// A parsed expression and the largest product of counted repeats on any path inside it.
    Expr(i64),
    LeftParen,
    VerticalBar,
}

struct Parser<'a> {
    whole: &'a str,
    stack: Vec<Item>,
}

/// The text between two suffixes of the same string (`before[..len(before)-len(after)]`).
fn between<'a>(before: &'a str, after: &str) -> &'a str {
    &before[..before.len() - after.len()]
}

fn first_char(s: &str) -> Option<char> {
    s.chars().next()
}

impl<'a> Parser<'a> {
    fn parse(mut self) -> Result<(), GoError> {
        let mut t = self.whole;
        let mut last_repeat: Option<&'a str> = None;
        while let Some(c) = first_char(t) {
            let mut repeat: Option<&'a str> = None;
            match c {
                '(' => {
                    if t.as_bytes().get(1) == Some(&b'?') {
                        t = self.perl_flags(t)?;
                    } else {
                        self.stack.push(Item::LeftParen);
                        t = &t[1..];
                    }
                }
                '|' => {
                    self.vertical_bar();
                    t = &t[1..];
                }
                ')' => {
                    self.right_paren()?;
                    t = &t[1..];
                }
                '^' | '$' | '.' => {
                    self.stack.push(Item::Expr(1));
                    t = &t[1..];
                }
                '[' => t = self.class(t)?,
                '*' | '+' | '?' => {
                    let before = t;
                    t = self.repeat(None, before, &t[1..], last_repeat)?;
                    repeat = Some(before);
                }
                '{' => match parse_repeat(t) {
                    None => {
                        self.stack.push(Item::Expr(1));
                        t = &t[1..];
                    }
                    Some((min, max, after)) => {
                        let before = t;
                        if !(0..=MAX_REPEAT).contains(&min)
                            || max > MAX_REPEAT
                            || (max >= 0 && min > max)
                        {
                            return err(INVALID_REPEAT_SIZE, between(before, after));
                        }
                        t = self.repeat(Some((min, max)), before, after, last_repeat)?;
                        repeat = Some(before);
                    }
                },
                '\\' => t = self.backslash(t)?,
                other => {
                    self.stack.push(Item::Expr(1));
                    t = &t[other.len_utf8()..];
                }
            }
            last_repeat = repeat;
        }
        self.concat();
        if self.swap_vertical_bar() {
            self.stack.pop();
        }
        self.alternate();
        if self.stack.len() != 1 {
            return err(MISSING_PAREN, self.whole);
        }
        Ok(())
    }

    /// Applies `*`, `+`, `?` (counts None) or `{min,max}` to the top expression.
    fn repeat(
        &mut self,
        counts: Option<(i64, i64)>,
        before: &'a str,
        after: &'a str,
        last_repeat: Option<&'a str>,
    ) -> Result<&'a str, GoError> {
        let after = after.strip_prefix('?').unwrap_or(after);
        if let Some(last) = last_repeat {
            // Perl forbids stacking repetition operators (`a**`, `a*{2}`).
            return err(INVALID_REPEAT_OP, between(last, after));
        }
        let op = between(before, after);
        let Some(Item::Expr(inner)) = self.stack.last().copied() else {
            return err(MISSING_REPEAT_ARGUMENT, op);
        };
        let product = match counts {
            None => inner,
            Some((_, 0)) => 1,
            Some((min, max)) => {
                let m = if max == -1 { min } else { max };
                inner.saturating_mul(m.max(1))
            }
        };
        if let Some((min, max)) = counts
            && (min >= 2 || max >= 2)
            && product > MAX_REPEAT
        {
            return err(INVALID_REPEAT_SIZE, op);
        }
        if let Some(top) = self.stack.last_mut() {
            *top = Item::Expr(product);
        }
        Ok(after)
    }

    /// Collapses the expressions above the topmost marker into one (empty → empty match).
    fn collapse(&mut self) {
        let mut product = 1;
        let mut any = false;
        while let Some(Item::Expr(p)) = self.stack.last().copied() {
            product = product.max(p);
            any = true;
            self.stack.pop();
        }
        let _ = any;
        self.stack.push(Item::Expr(product));
    }

    fn concat(&mut self) {
        self.collapse();
    }

    fn alternate(&mut self) {
        self.collapse();
    }

    fn vertical_bar(&mut self) {
        self.concat();
        if !self.swap_vertical_bar() {
            self.stack.push(Item::VerticalBar);
        }
    }

    /// Moves the expression on top below a `|` marker, keeping alternatives under it.
    fn swap_vertical_bar(&mut self) -> bool {
        let n = self.stack.len();
        if n >= 2 && self.stack[n - 2] == Item::VerticalBar {
            self.stack.swap(n - 2, n - 1);
            return true;
        }
        false
    }

    fn right_paren(&mut self) -> Result<(), GoError> {
        self.concat();
        if self.swap_vertical_bar() {
            self.stack.pop();
        }
        self.alternate();
        if self.stack.len() < 2 {
            return err(UNEXPECTED_PAREN, self.whole);
        }
        let inner = self.stack.pop();
        if self.stack.pop() != Some(Item::LeftParen) {
            return err(UNEXPECTED_PAREN, self.whole);
        }
        if let Some(Item::Expr(p)) = inner {
            self.stack.push(Item::Expr(p));
        }
        Ok(())
    }

    /// `(?flags)`, `(?flags:`, `(?P<name>` and `(?<name>`.
    fn perl_flags(&mut self, s: &'a str) -> Result<&'a str, GoError> {
        let b = s.as_bytes();
        let starts_with_p = s.len() > 4 && b[2] == b'P' && b[3] == b'<';
        let starts_with_name = s.len() > 3 && b[2] == b'<';
        if starts_with_p || starts_with_name {
            let expr_start = if starts_with_name { 3 } else { 4 };
            let Some(end) = s.find('>') else {
                return err(INVALID_NAMED_CAPTURE, s);
            };
            let capture = &s[..=end];
            let name = &s[expr_start..end];
            if name.is_empty() || !name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()) {
                return err(INVALID_NAMED_CAPTURE, capture);
            }
            self.stack.push(Item::LeftParen);
            return Ok(&s[end + 1..]);
        }
        let mut t = &s[2..];
        let mut negated = false;
        let mut saw_flag = false;
        while let Some(c) = first_char(t) {
            t = &t[c.len_utf8()..];
            match c {
                'i' | 'm' | 's' | 'U' => saw_flag = true,
                '-' => {
                    if negated {
                        break;
                    }
                    negated = true;
                    saw_flag = false;
                }
                ':' | ')' => {
                    if negated && !saw_flag {
                        break;
                    }
                    if c == ':' {
                        self.stack.push(Item::LeftParen);
                    }
                    return Ok(t);
                }
                _ => break,
            }
        }
        err(INVALID_PERL_OP, between(s, t))
    }

    /// A backslash outside a class: assertions, `\Q...\E`, classes, or an escaped character.
    fn backslash(&mut self, t: &'a str) -> Result<&'a str, GoError> {
        match t.as_bytes().get(1) {
            Some(b'A' | b'b' | b'B' | b'z') => {
                self.stack.push(Item::Expr(1));
                return Ok(&t[2..]);
            }
            Some(b'C') => return err(INVALID_ESCAPE, &t[..2]),
            Some(b'Q') => {
                let rest = &t[2..];
                let (literal, after) = match rest.find("\\E") {
                    Some(i) => (&rest[..i], &rest[i + 2..]),
                    None => (rest, ""),
                };
                for _ in literal.chars() {
                    self.stack.push(Item::Expr(1));
                }
                return Ok(after);
            }
            _ => {}
        }
        if let Some(rest) = unicode_class(t)? {
            self.stack.push(Item::Expr(1));
            return Ok(rest);
        }
        if let Some(rest) = perl_class(t) {
            self.stack.push(Item::Expr(1));
            return Ok(rest);
        }
        let (_, rest) = parse_escape(t)?;
        self.stack.push(Item::Expr(1));
        Ok(rest)
    }

    /// A bracketed character class starting at `s`.
    fn class(&mut self, s: &'a str) -> Result<&'a str, GoError> {
        let mut t = &s[1..];
        if let Some(rest) = t.strip_prefix('^') {
            t = rest;
        }
        let mut first = true;
        while t.is_empty() || !t.starts_with(']') || first {
            first = false;
            if t.len() > 2
                && t.starts_with("[:")
                && let Some(rest) = named_class(t)?
            {
                t = rest;
                continue;
            }
            if let Some(rest) = unicode_class(t)? {
                t = rest;
                continue;
            }
            if let Some(rest) = perl_class(t) {
                t = rest;
                continue;
            }
            let range = t;
            let (lo, rest) = class_char(t, s)?;
            t = rest;
            if t.len() >= 2 && t.starts_with('-') && t.as_bytes()[1] != b']' {
                let (hi, rest) = class_char(&t[1..], s)?;
                t = rest;
                if hi < lo {
                    return err(INVALID_CHAR_RANGE, between(range, t));
                }
            }
        }
        self.stack.push(Item::Expr(1));
        Ok(&t[1..])
    }
}

/// `{n}`, `{n,}` or `{n,m}` at the start of `s`: (min, max (-1 = unbounded), rest).
/// A count too large to read gives min -1. None means `{` is a literal.
fn parse_repeat(s: &str) -> Option<(i64, i64, &str)> {
    let s = s.strip_prefix('{')?;
    let (mut min, s) = parse_int(s)?;
    let (max, s) = if let Some(s) = s.strip_prefix(',') {
        if s.starts_with('}') {
            (-1, s)
        } else {
            let (max, s) = parse_int(s)?;
            if max < 0 {
                min = -1;
            }
            (max, s)
        }
    } else {
        if s.is_empty() {
            return None;
        }
        (min, s)
    };
    let rest = s.strip_prefix('}')?;
    Some((min, max, rest))
}

/// A decimal count without leading zeros; -1 when it reaches 1e8.
fn parse_int(s: &str) -> Option<(i64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits >= 2 && s.starts_with('0')) {
        return None;
    }
    let mut n: i64 = 0;
    for b in s[..digits].bytes() {
        if n >= 100_000_000 {
            n = -1;
            break;
        }
        n = n * 10 + i64::from(b - b'0');
    }
    Some((n, &s[digits..]))
}

/// `\d`, `\D`, `\s`, `\S`, `\w`, `\W`.
fn perl_class(t: &str) -> Option<&str> {
    let b = t.as_bytes();
    if b.len() >= 2 && b[0] == b'\\' && b"dDsSwW".contains(&b[1]) {
        return Some(&t[2..]);
    }
    None
}

/// `[:alpha:]` and friends inside a class. None when `t` is not such a name.
fn named_class(t: &str) -> Result<Option<&str>, GoError> {
    const NAMES: [&str; 14] = [
        "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
        "space", "upper", "word", "xdigit",
    ];
    let Some(i) = t[2..].find(":]") else {
        return Ok(None);
    };
    let name = &t[..i + 4];
    let inner = &t[2..i + 2];
    let inner = inner.strip_prefix('^').unwrap_or(inner);
    if !NAMES.contains(&inner) {
        return err(INVALID_CHAR_RANGE, name);
    }
    Ok(Some(&t[i + 4..]))
}

/// `\pL`, `\p{Greek}`, `\P{...}`, `\p{^...}`. None when `t` does not start with one.
fn unicode_class(s: &str) -> Result<Option<&str>, GoError> {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b'\\' || (b[1] != b'p' && b[1] != b'P') {
        return Ok(None);
    }
    let t = &s[2..];
    let (seq, name, rest) = match first_char(t) {
        Some('{') => {
            let Some(end) = s.find('}') else {
                return err(INVALID_CHAR_RANGE, s);
            };
            (&s[..=end], &s[3..end], &s[end + 1..])
        }
        Some(c) => {
            let rest = &t[c.len_utf8()..];
            let seq = between(s, rest);
            (seq, &seq[2..], rest)
        }
        None => (s, "", ""),
    };
    let name = name.strip_prefix('^').unwrap_or(name);
    if !unicode_name_known(name) {
        return err(INVALID_CHAR_RANGE, seq);
    }
    Ok(Some(rest))
}

/// Whether Go knows a Unicode class name: Any, Assigned, ASCII, a general category (or its
/// long alias) or a script. Categories and scripts are looked up through the `regex` crate's
/// Unicode tables, which match names as loosely as Go's canonical form does.
fn unicode_name_known(name: &str) -> bool {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_- ".contains(c))
    {
        return false;
    }
    let canonical: String = name
        .chars()
        .filter(|c| !"_- ".contains(*c))
        .collect::<String>()
        .to_ascii_lowercase();
    if ["any", "assigned", "ascii", "lc"].contains(&canonical.as_str()) {
        return true;
    }
    ["gc", "sc"]
        .iter()
        .any(|prefix| regex::Regex::new(&format!(r"\p{{{prefix}={name}}}")).is_ok())
}

/// One character of a class: an escape or a literal (its code point and the rest).
fn class_char<'a>(s: &'a str, whole_class: &str) -> Result<(u32, &'a str), GoError> {
    match first_char(s) {
        None => err(MISSING_BRACKET, whole_class),
        Some('\\') => parse_escape(s),
        Some(c) => Ok((c as u32, &s[c.len_utf8()..])),
    }
}

fn unhex(c: Option<char>) -> Option<u32> {
    c.and_then(|c| c.to_digit(16))
}

/// An escaped character (`\n`, `\x41`, `\101`, `\.`), as its code point and the rest.
fn parse_escape(s: &str) -> Result<(u32, &str), GoError> {
    let t = &s[1..];
    let Some(c) = first_char(t) else {
        return err(TRAILING_BACKSLASH, "");
    };
    let mut t = &t[c.len_utf8()..];
    let is_octal = |t: &str| {
        t.as_bytes()
            .first()
            .is_some_and(|b| (b'0'..=b'7').contains(b))
    };
    match c {
        '1'..='7' if !is_octal(t) => {}
        '0'..='7' => {
            // Up to three octal digits (a lone non-zero digit would be a backreference).
            let mut r = c as u32 - '0' as u32;
            for _ in 1..3 {
                if !is_octal(t) {
                    break;
                }
                r = r * 8 + u32::from(t.as_bytes()[0] - b'0');
                t = &t[1..];
            }
            return Ok((r, t));
        }
        'x' => {
            if let Some(c2) = first_char(t) {
                t = &t[c2.len_utf8()..];
                if c2 == '{' {
                    let (mut r, mut digits) = (0u32, 0);
                    while let Some(c3) = first_char(t) {
                        t = &t[c3.len_utf8()..];
                        if c3 == '}' {
                            if digits == 0 {
                                break;
                            }
                            return Ok((r, t));
                        }
                        let Some(v) = unhex(Some(c3)) else { break };
                        r = r * 16 + v;
                        if r > 0x10FFFF {
                            break;
                        }
                        digits += 1;
                    }
                } else {
                    let c3 = first_char(t);
                    if let Some(c3) = c3 {
                        t = &t[c3.len_utf8()..];
                    }
                    if let (Some(x), Some(y)) = (unhex(Some(c2)), unhex(c3)) {
                        return Ok((x * 16 + y, t));
                    }
                }
            }
        }
        'a' => return Ok((7, t)),
        'f' => return Ok((12, t)),
        'n' => return Ok((10, t)),
        'r' => return Ok((13, t)),
        't' => return Ok((9, t)),
        'v' => return Ok((11, t)),
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => return Ok((c as u32, t)),
        _ => {}
    }
    err(INVALID_ESCAPE, between(s, t))
}
