//! The request path's JSON reader: one pass over the bytes that checks a
//! document exactly as [`super::parse_object`] does and keeps only the
//! top-level members asked for.
//!
//! A token's header and claims are judged on a handful of members. Going
//! through serde (a visitor per value, a `Cow` per member name) was about a
//! sixth of the module's own work on a new token; this reads the same
//! grammar directly.
//!
//! Same verdicts as serde_json + [`super::parse_strict`] is the contract, and
//! the differential tests and the `json` fuzz target hold it to that:
//! - RFC 8259 only: whitespace is space, tab, CR, LF; no trailing commas,
//!   comments, BOM, single quotes or bare names; nothing after the value.
//! - Strings: no raw control characters, valid UTF-8, the escapes
//!   `\" \\ \/ \b \f \n \r \t \uXXXX`, surrogates only in valid pairs.
//! - Numbers: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`; a plain
//!   unsigned integer of up to 19 digits is read here, anything else is
//!   handed to serde_json (so `-0`, floats, huge integers and overflow to
//!   infinity come out exactly as it reads them; they are rare in tokens).
//! - Duplicate member names (after unescaping) at any depth, and nesting
//!   deeper than the limit, are refused; the limit is at most 127, as
//!   serde_json's own recursion guard makes it.
//! - Errors come in the same kind and document order as serde's: the first
//!   problem met, reading left to right.

use super::{truncate, Field, JsonError, MAX_REPORTED_NAME};
use serde_json::Number;
use std::borrow::Cow;

/// Bytes that end a plain run inside a string: the closing quote, an escape,
/// a raw control character (one table read per byte instead of three tests).
/// Built at compile time: its indexing cannot fail at run time.
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// serde_json's recursion guard: 128 containers deep is an error.
const SERDE_MAX_DEPTH: usize = 127;

/// See the module doc; `wanted` are top-level member names.
pub(super) fn scan_object<'a, const N: usize>(
    bytes: &'a [u8],
    max_depth: usize,
    wanted: [&str; N],
) -> Result<[Option<Field<'a>>; N], JsonError> {
    let mut s = Scanner {
        b: bytes,
        text: std::str::from_utf8(bytes).ok(),
        i: 0,
        max_depth: max_depth.min(SERDE_MAX_DEPTH),
        // A token's header or claims: a handful of names, one allocation.
        names: Vec::with_capacity(16),
        dup: None,
    };
    match s.document(&wanted) {
        Ok(Some(fields)) => Ok(fields),
        Ok(None) => Err(JsonError::NotAnObject),
        Err(Fail::Deep) => Err(JsonError::TooDeep),
        Err(Fail::Dup) => Err(JsonError::DuplicateKey(s.dup.take().unwrap_or_default())),
        Err(Fail::Syntax(why)) => Err(JsonError::Syntax(format!("{} at byte {}", why.text(), s.i))),
    }
}

/// Why a scan stopped. Small on purpose: it is returned through every level
/// of every value, and turned into a [`JsonError`] once, at the top (the
/// offset is the scanner's position, a duplicate's name is kept aside).
#[derive(Clone, Copy, Debug)]
enum Fail {
    Syntax(Why),
    Deep,
    Dup,
}

/// The syntax error messages (as short as serde's, never quoting input).
#[derive(Clone, Copy, Debug)]
enum Why {
    Trailing,
    ExpectedValue,
    EofValue,
    ExpectedIdent,
    TrailingComma,
    ExpectedArrayEnd,
    ExpectedObjectEnd,
    KeyNotString,
    ExpectedColon,
    ControlChar,
    EofString,
    BadUnicode,
    BadEscape,
    LoneSurrogate,
    EndOfHexEscape,
    BadNumber,
    NumberOutOfRange,
}

impl Why {
    fn text(self) -> &'static str {
        match self {
            Why::Trailing => "trailing characters",
            Why::ExpectedValue => "expected value",
            Why::EofValue => "EOF while parsing a value",
            Why::ExpectedIdent => "expected ident",
            Why::TrailingComma => "trailing comma",
            Why::ExpectedArrayEnd => "expected `,` or `]`",
            Why::ExpectedObjectEnd => "expected `,` or `}`",
            Why::KeyNotString => "key must be a string",
            Why::ExpectedColon => "expected `:`",
            Why::ControlChar => "control character in string",
            Why::EofString => "EOF while parsing a string",
            Why::BadUnicode => "invalid unicode code point",
            Why::BadEscape => "invalid escape",
            Why::LoneSurrogate => "lone leading surrogate in hex escape",
            Why::EndOfHexEscape => "unexpected end of hex escape",
            Why::BadNumber => "invalid number",
            Why::NumberOutOfRange => "number out of range",
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    /// The whole document as text when it is valid UTF-8 (checked once, so
    /// a plain string is a slice of it; otherwise each string is checked
    /// where it stands, for serde's error and position).
    text: Option<&'a str>,
    i: usize,
    max_depth: usize,
    /// Member names of the objects being read, innermost last (one buffer
    /// for the whole document; each object truncates back to where it began).
    names: Vec<Cow<'a, str>>,
    /// The repeated name behind a `Fail::Dup` (truncated).
    dup: Option<String>,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// The whole document: the wanted members when it is an object.
    fn document<const N: usize>(
        &mut self,
        wanted: &[&str; N],
    ) -> Result<Option<[Option<Field<'a>>; N]>, Fail> {
        self.ws();
        let fields = if self.peek() == Some(b'{') {
            Some(self.top_object(wanted)?)
        } else {
            self.value(0)?;
            None
        };
        self.ws();
        if self.i != self.b.len() {
            return Err(Fail::Syntax(Why::Trailing));
        }
        Ok(fields)
    }

    /// Consumes `c` (after whitespace), or fails with `why`. (Not named
    /// `expect`: nothing here panics.)
    fn eat(&mut self, c: u8, why: Why) -> Result<(), Fail> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Fail::Syntax(why))
        }
    }

    /// The depth of a container opened at `depth`, if allowed.
    fn enter(&self, depth: usize) -> Result<usize, Fail> {
        let d = depth.saturating_add(1);
        if d > self.max_depth {
            return Err(Fail::Deep);
        }
        Ok(d)
    }

    /// Any value, checked and forgotten. `depth` is that of its container.
    fn value(&mut self, depth: usize) -> Result<(), Fail> {
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => {
                let inner = self.enter(depth)?;
                self.array(|s| s.value(inner))
            }
            Some(b'"') => self.string().map(drop),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(_) => Err(Fail::Syntax(Why::ExpectedValue)),
            None => Err(Fail::Syntax(Why::EofValue)),
        }
    }

    /// A wanted member's value.
    fn field(&mut self, depth: usize) -> Result<Field<'a>, Fail> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().map(Field::Str),
            Some(b'-' | b'0'..=b'9') => self.number().map(Field::Num),
            Some(b'[') => {
                let inner = self.enter(depth)?;
                let mut strings = Some(Vec::new());
                self.array(|s| {
                    s.ws();
                    if s.peek() == Some(b'"') {
                        let v = s.string()?;
                        if let Some(list) = strings.as_mut() {
                            list.push(v);
                        }
                    } else {
                        s.value(inner)?;
                        strings = None;
                    }
                    Ok(())
                })?;
                Ok(strings.map_or(Field::Other, Field::StrList))
            }
            _ => self.value(depth).map(|()| Field::Other),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Fail> {
        let end = self.i.saturating_add(word.len());
        if self.b.get(self.i..end) == Some(word) {
            self.i = end;
            Ok(())
        } else {
            Err(Fail::Syntax(Why::ExpectedIdent))
        }
    }

    /// `[ item (, item)* ]` or `[]`, from the `[`; `item` reads one element.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Result<(), Fail>) -> Result<(), Fail> {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        return Err(Fail::Syntax(Why::TrailingComma));
                    }
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Fail::Syntax(Why::ExpectedArrayEnd)),
            }
        }
    }

    /// An object below the top, checked and forgotten.
    fn object(&mut self, depth: usize) -> Result<(), Fail> {
        let inner = self.enter(depth)?;
        self.members(|s, _| s.value(inner))
    }

    /// The top-level object, keeping the wanted members.
    fn top_object<const N: usize>(
        &mut self,
        wanted: &[&str; N],
    ) -> Result<[Option<Field<'a>>; N], Fail> {
        let inner = self.enter(0)?;
        let mut fields: [Option<Field<'a>>; N] = std::array::from_fn(|_| None);
        self.members(|s, name| {
            match wanted.iter().position(|w| *w == name) {
                Some(k) => {
                    let v = s.field(inner)?;
                    if let Some(slot) = fields.get_mut(k) {
                        *slot = Some(v);
                    }
                }
                None => s.value(inner)?,
            }
            Ok(())
        })?;
        Ok(fields)
    }

    /// `{ "name": value (, ...)* }` or `{}`, from the `{`, refusing a
    /// repeated name (checked as soon as the name is read, as serde does);
    /// `value` reads each member's value given its name.
    fn members(
        &mut self,
        mut value: impl FnMut(&mut Self, &str) -> Result<(), Fail>,
    ) -> Result<(), Fail> {
        self.i += 1;
        let base = self.names.len();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            match self.peek() {
                Some(b'"') => {}
                Some(b'}') => return Err(Fail::Syntax(Why::TrailingComma)),
                _ => return Err(Fail::Syntax(Why::KeyNotString)),
            }
            let name = self.string()?;
            if self
                .names
                .get(base..)
                .is_some_and(|seen| seen.contains(&name))
            {
                self.dup = Some(truncate(&name, MAX_REPORTED_NAME));
                return Err(Fail::Dup);
            }
            self.eat(b':', Why::ExpectedColon)?;
            value(self, &name)?;
            self.names.push(name);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.names.truncate(base);
                    return Ok(());
                }
                _ => return Err(Fail::Syntax(Why::ExpectedObjectEnd)),
            }
        }
    }

    /// A string, from its opening quote: borrowed unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, Fail> {
        self.i += 1;
        let start = self.i;
        // Plain run first (one tight loop): most strings in a token have no
        // escapes at all.
        let rest = self.b.get(start..).unwrap_or_default();
        let run = rest
            .iter()
            // A 256-entry table indexed by a byte: always in bounds.
            .position(|&c| STRING_STOP[usize::from(c)])
            .unwrap_or(rest.len());
        self.i = start + run;
        match self.peek() {
            Some(b'"') => {
                // Between two ASCII bytes of valid text: a char boundary each.
                let checked = self.text.and_then(|t| t.get(start..self.i));
                let raw = rest.get(..run).unwrap_or_default();
                self.i += 1;
                return match checked {
                    Some(text) => Ok(Cow::Borrowed(text)),
                    None => std::str::from_utf8(raw)
                        .map(Cow::Borrowed)
                        .map_err(|_| Fail::Syntax(Why::BadUnicode)),
                };
            }
            Some(b'\\') => {}
            Some(_) => return Err(Fail::Syntax(Why::ControlChar)),
            None => return Err(Fail::Syntax(Why::EofString)),
        }
        let mut out: Vec<u8> = self.b.get(start..self.i).unwrap_or_default().to_vec();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out)
                        .map(Cow::Owned)
                        .map_err(|_| Fail::Syntax(Why::BadUnicode));
                }
                Some(b'\\') => {
                    self.i += 1;
                    self.escape(&mut out)?;
                }
                Some(0..=0x1f) => return Err(Fail::Syntax(Why::ControlChar)),
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
                None => return Err(Fail::Syntax(Why::EofString)),
            }
        }
    }

    /// One escape, after its backslash, appended to `out` as UTF-8.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), Fail> {
        let c = self.peek().ok_or(Fail::Syntax(Why::EofString))?;
        self.i += 1;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => return self.unicode_escape(out),
            _ => return Err(Fail::Syntax(Why::BadEscape)),
        };
        out.push(simple);
        Ok(())
    }

    /// `\uXXXX` after the `u`, and its pair when it is a leading surrogate.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Result<(), Fail> {
        let n = self.hex4()?;
        let code = match n {
            0xDC00..=0xDFFF => return Err(Fail::Syntax(Why::LoneSurrogate)),
            0xD800..=0xDBFF => {
                if self.peek() != Some(b'\\') {
                    return Err(Fail::Syntax(Why::EndOfHexEscape));
                }
                self.i += 1;
                if self.peek() != Some(b'u') {
                    return Err(Fail::Syntax(Why::EndOfHexEscape));
                }
                self.i += 1;
                let n2 = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&n2) {
                    return Err(Fail::Syntax(Why::LoneSurrogate));
                }
                (((u32::from(n) - 0xD800) << 10) | (u32::from(n2) - 0xDC00)) + 0x1_0000
            }
            _ => u32::from(n),
        };
        let ch = char::from_u32(code).ok_or(Fail::Syntax(Why::BadUnicode))?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, Fail> {
        let mut n: u16 = 0;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                Some(_) => return Err(Fail::Syntax(Why::BadEscape)),
                None => return Err(Fail::Syntax(Why::EofString)),
            };
            self.i += 1;
            n = (n << 4) | u16::from(d);
        }
        Ok(n)
    }

    /// A number: its grammar checked here; its value read here when it is
    /// a plain unsigned integer of up to 19 digits, by serde_json otherwise.
    fn number(&mut self) -> Result<Number, Fail> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(Fail::Syntax(Why::BadNumber));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Fail::Syntax(Why::BadNumber)),
        }
        let int_end = self.i;
        let mut plain = true;
        if self.peek() == Some(b'.') {
            plain = false;
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(Fail::Syntax(Why::BadNumber));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            plain = false;
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(Fail::Syntax(Why::BadNumber));
            }
            self.digits();
        }
        let text = self.b.get(start..self.i).unwrap_or_default();
        if plain && !negative && int_end - start <= 19 {
            // Only digits here (checked above), and 19 of them stay below
            // 10^19 < u64::MAX: no overflow.
            let n = text.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            return Ok(Number::from(n));
        }
        serde_json::from_slice::<Number>(text).map_err(|_| Fail::Syntax(Why::NumberOutOfRange))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::{parse_object, Field, JsonError, DEFAULT_MAX_DEPTH};

    const WANTED: [&str; 4] = ["iss", "aud", "exp", "\u{e9}"];

    /// The scanner's answer must be the full parse's: same error kind, or
    /// the same values for the wanted members.
    fn agree(doc: &[u8], max_depth: usize) {
        let scanned = super::scan_object(doc, max_depth, WANTED);
        let parsed = parse_object(doc, max_depth);
        let kind = |e: &JsonError| std::mem::discriminant(e);
        match (&scanned, &parsed) {
            (Ok(fields), Ok(map)) => {
                for (field, name) in fields.iter().zip(WANTED) {
                    assert_eq!(
                        field.as_ref(),
                        map.get(name).map(Field::of_value).as_ref(),
                        "member {name} of {:?}",
                        String::from_utf8_lossy(doc)
                    );
                }
            }
            (Err(a), Err(b)) => assert_eq!(
                kind(a),
                kind(b),
                "{a:?} vs {b:?} for {:?}",
                String::from_utf8_lossy(doc)
            ),
            _ => panic!(
                "scan {:?} vs parse {:?} for {:?}",
                scanned.map(|_| ()),
                parsed.map(|_| ()),
                String::from_utf8_lossy(doc)
            ),
        }
    }

    #[test]
    fn agrees_with_the_full_parse_on_edge_cases() {
        let cases: &[&str] = &[
            r#"{"iss":"a","aud":["x","y"],"exp":1700000000}"#,
            r#" { "iss" : "a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00" } "#,
            r#"{"\u00e9":1,"\u00E9":2}"#,
            r#"{"é":[],"aud":[]}"#,
            r#"{"aud":["a",1]}"#,
            r#"{"aud":["a",["b"]]}"#,
            r#"{"aud":"x","exp":-0}"#,
            r#"{"exp":1.5}"#,
            r#"{"exp":1e3}"#,
            r#"{"exp":1E+3}"#,
            r#"{"exp":1e-400}"#,
            r#"{"exp":1e400}"#,
            r#"{"exp":-1e400}"#,
            r#"{"exp":18446744073709551615}"#,
            r#"{"exp":18446744073709551616}"#,
            r#"{"exp":9999999999999999999}"#,
            r#"{"exp":99999999999999999999}"#,
            r#"{"exp":-9223372036854775808}"#,
            r#"{"exp":-9223372036854775809}"#,
            &format!(r#"{{"exp":1{}}}"#, "0".repeat(400)),
            r#"{"exp":0.1e1}"#,
            r#"{"exp":01}"#,
            r#"{"exp":-}"#,
            r#"{"exp":1.}"#,
            r#"{"exp":.5}"#,
            r#"{"exp":1e}"#,
            r#"{"exp":1e+}"#,
            r#"{"exp":+1}"#,
            r#"{"iss":"\ud800"}"#,
            r#"{"iss":"\udc00"}"#,
            r#"{"iss":"\ud800\u0041"}"#,
            r#"{"iss":"\ud800x"}"#,
            r#"{"iss":"\ud800\n"}"#,
            r#"{"iss":"\ud800\ud800\udc00"}"#,
            r#"{"iss":"\x"}"#,
            r#"{"iss":"\u12"}"#,
            r#"{"iss":"\u12g4"}"#,
            "{\"iss\":\"tab\there\"}",
            "{\"iss\":\"\u{7f}\"}",
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"b":1,"b":2}}"#,
            r#"{"a":[{"b":1},{"b":2}]}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"a":1,"a""#,
            r#"{"a":1,}"#,
            r#"{,}"#,
            r#"{"a" 1}"#,
            r#"{"a":1 "b":2}"#,
            r#"{a:1}"#,
            r#"{'a':1}"#,
            r#"{"a":tru}"#,
            r#"{"a":true,"b":false,"c":null}"#,
            r#"{"a":nul}"#,
            r#"{"a":[1,2,]}"#,
            r#"{"a":[,]}"#,
            r#"{"a":[]]}"#,
            r#"{}"#,
            r#"{} "#,
            r#"{} x"#,
            r#"{}{}"#,
            "{}\u{0b}",
            "\u{feff}{}",
            "[1,2]",
            "[1,2",
            "\"x\"",
            "1",
            "",
            "  ",
            "nul",
            "/* c */ {}",
            "{\"iss\":\"a\"}\n",
        ];
        for c in cases {
            for depth in [0, 1, 2, 3, DEFAULT_MAX_DEPTH] {
                agree(c.as_bytes(), depth);
            }
        }
        for bad in [
            &b"{\"iss\":\"\xff\"}"[..],
            b"{\"\xc3\":1}",
            b"{\"iss\":\"\xe2\x82\"}",
            b"\xff",
        ] {
            agree(bad, DEFAULT_MAX_DEPTH);
        }
    }

    #[test]
    fn agrees_on_depth_limits_and_deep_input() {
        for n in [1usize, 2, 31, 32, 33, 126, 127, 128, 129, 1000, 100_000] {
            let arrays = format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n));
            let objects = format!("{}{}", "{\"a\":".repeat(n), "}".repeat(n));
            let open = "[".repeat(n);
            for depth in [DEFAULT_MAX_DEPTH, 127, 128, 200, usize::MAX] {
                agree(arrays.as_bytes(), depth);
                agree(objects.as_bytes(), depth);
                agree(open.as_bytes(), depth);
            }
        }
    }

    /// A deterministic xorshift generator, so a failure replays.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[self.below(xs.len())]
        }
    }

    const STRINGS: &[&str] = &[
        "iss",
        "aud",
        "exp",
        "a",
        "",
        "\\u00e9",
        "é",
        "\\\"",
        "\\\\",
        "\\/",
        "\\n",
        "\\ud83d\\ude00",
        "\\ud800",
        "\\udc00",
        "x\\u0041y",
        "\\u0000",
        "\\t\\r",
        "https://issuer.example",
    ];
    const NUMBERS: &[&str] = &[
        "0",
        "-0",
        "1",
        "1700000000",
        "-5",
        "1.5",
        "1e3",
        "2E-2",
        "18446744073709551615",
        "18446744073709551616",
        "123456789012345678901234567890",
        "1e400",
        "0.000001",
        "-1.5e10",
    ];

    fn gen_value(r: &mut Rng, out: &mut String, depth: usize) {
        let ws = [" ", "", "\n", "\t", "\r", "  "];
        out.push_str(r.pick(&ws));
        match if depth > 5 { r.below(4) } else { r.below(7) } {
            0 => {
                out.push('"');
                out.push_str(r.pick(STRINGS));
                out.push('"');
            }
            1 => out.push_str(r.pick(NUMBERS)),
            2 => out.push_str(r.pick(&["true", "false", "null"])),
            3 => {
                out.push('"');
                out.push_str(r.pick(STRINGS));
                out.push_str(r.pick(STRINGS));
                out.push('"');
            }
            4 | 5 => {
                out.push('{');
                let n = r.below(5);
                for k in 0..n {
                    if k > 0 {
                        out.push(',');
                    }
                    out.push_str(r.pick(&ws));
                    out.push('"');
                    out.push_str(r.pick(STRINGS));
                    out.push_str("\":");
                    gen_value(r, out, depth + 1);
                }
                out.push('}');
            }
            _ => {
                out.push('[');
                let n = r.below(4);
                for k in 0..n {
                    if k > 0 {
                        out.push(',');
                    }
                    gen_value(r, out, depth + 1);
                }
                out.push(']');
            }
        }
        out.push_str(r.pick(&ws));
    }

    #[test]
    fn agrees_with_the_full_parse_on_generated_and_mutated_documents() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"{}[],:\"\\ -+.eE0123456789tfnulasrxu\xc3\xa9\xff\x00\x1f\n";
        for _ in 0..60_000 {
            let mut doc = String::from("{");
            let n = r.below(6);
            for k in 0..n {
                if k > 0 {
                    doc.push(',');
                }
                doc.push('"');
                doc.push_str(r.pick(STRINGS));
                doc.push_str("\":");
                gen_value(&mut r, &mut doc, 1);
            }
            doc.push('}');
            let mut bytes = doc.into_bytes();
            for _ in 0..r.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let at = r.below(bytes.len());
                match r.below(4) {
                    0 => bytes[at] = r.pick(alphabet),
                    1 => bytes.insert(at, r.pick(alphabet)),
                    2 => {
                        bytes.remove(at);
                    }
                    _ => bytes.truncate(at),
                }
            }
            let depth = r.pick(&[0, 1, 2, 3, DEFAULT_MAX_DEPTH]);
            agree(&bytes, depth);
        }
    }
}
