//! Flask's tagged JSON (`flask.json.tag.TaggedJSONSerializer`), read and written byte for
//! byte as Flask writes it: keys sorted, `separators=(",", ":")`, `ensure_ascii=True`.
//!
//! Hand-written rather than serde_json because Flask's JSON needs what serde_json only
//! offers behind crate-wide features (integers of any size, `NaN`/`Infinity`), and because
//! the parser bounds nesting depth and number length itself.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::value::{hex32, FlaskValue};

/// Deepest nesting accepted; deeper input is refused rather than risking the stack.
pub(crate) const MAX_DEPTH: usize = 64;
/// Python refuses to parse integers longer than this (`sys.get_int_max_str_digits`).
const MAX_INT_DIGITS: usize = 4300;

/// The six tags, in Flask's order. A one-key dict whose key is one of them is escaped
/// with `" di"` when written.
const TAGS: [&str; 6] = [" di", " t", " b", " m", " u", " d"];

/// The HTTP date Flask writes for ` d` (`werkzeug.http.http_date`).
const HTTP_DATE: &[FormatItem<'static>] =
    format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");

/// Why tagged JSON could not be read. Never quotes the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError(pub(crate) &'static str);

// ---------------------------------------------------------------- writing

/// Writes `value` as Flask would: tagged, keys sorted, ASCII only.
pub(crate) fn write(value: &FlaskValue, out: &mut String) {
    match value {
        FlaskValue::Null => out.push_str("null"),
        FlaskValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        FlaskValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        FlaskValue::BigInt(s) => out.push_str(s),
        FlaskValue::Float(x) => write_float(*x, out),
        FlaskValue::Str(s) => write_str(s, out),
        FlaskValue::Bytes(b) => tagged(" b", out, |out| write_str(&STANDARD.encode(b), out)),
        FlaskValue::List(items) => write_items(items, out),
        FlaskValue::Tuple(items) => tagged(" t", out, |out| write_items(items, out)),
        FlaskValue::Dict(map) => match map.iter().next() {
            Some((key, v)) if map.len() == 1 && TAGS.contains(&key.as_str()) => tagged(" di", out, |out| {
                out.push('{');
                write_str(&format!("{key}__"), out);
                out.push(':');
                write(v, out);
                out.push('}');
            }),
            _ => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, out);
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
        },
        FlaskValue::Markup(s) => tagged(" m", out, |out| write_str(s, out)),
        FlaskValue::Uuid(b) => tagged(" u", out, |out| write_str(&hex32(b), out)),
        FlaskValue::DateTime(t) => tagged(" d", out, |out| write_str(&http_date(*t), out)),
    }
}

fn tagged(tag: &str, out: &mut String, inner: impl FnOnce(&mut String)) {
    out.push_str("{\"");
    out.push_str(tag);
    out.push_str("\":");
    inner(out);
    out.push('}');
}

fn write_items(items: &[FlaskValue], out: &mut String) {
    out.push('[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(v, out);
    }
    out.push(']');
}

/// The date in UTC, whole seconds, as `werkzeug.http.http_date` writes it.
pub(crate) fn http_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    // Only fails for years past 9999, which Python's datetime cannot hold either.
    t.format(HTTP_DATE).unwrap_or_default()
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional for exponents
/// -4 to 15, scientific (`1e+16`, `1.5e-05`) outside; `NaN`/`Infinity` as `json` writes them.
fn write_float(x: f64, out: &mut String) {
    if x.is_nan() {
        return out.push_str("NaN");
    }
    if x.is_infinite() {
        return out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e17".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    out.push_str(sign);
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    }
}

/// A JSON string as `json.dumps(..., ensure_ascii=True)` writes it.
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------- reading

/// Reads tagged JSON, untagging bottom-up as Flask does: children first, then any object
/// with exactly one key that is a tag.
pub(crate) fn parse(text: &str) -> Result<FlaskValue, JsonError> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(JsonError("trailing characters after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<FlaskValue, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError("nested too deeply"));
        }
        self.ws();
        let Some(&b) = self.s.get(self.i) else {
            return Err(JsonError("unexpected end of JSON"));
        };
        match b {
            b'{' => {
                self.i += 1;
                let mut map = BTreeMap::new();
                self.ws();
                if !self.eat("}") {
                    loop {
                        self.ws();
                        if self.s.get(self.i) != Some(&b'"') {
                            return Err(JsonError("expected a string key"));
                        }
                        let key = self.string()?;
                        self.ws();
                        if !self.eat(":") {
                            return Err(JsonError("expected ':'"));
                        }
                        let v = self.value(depth + 1)?;
                        map.insert(key, v);
                        self.ws();
                        if self.eat(",") {
                            continue;
                        }
                        if self.eat("}") {
                            break;
                        }
                        return Err(JsonError("expected ',' or '}'"));
                    }
                }
                untag(map)
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if !self.eat("]") {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        if self.eat(",") {
                            continue;
                        }
                        if self.eat("]") {
                            break;
                        }
                        return Err(JsonError("expected ',' or ']'"));
                    }
                }
                Ok(FlaskValue::List(items))
            }
            b'"' => self.string().map(FlaskValue::Str),
            _ if self.eat("null") => Ok(FlaskValue::Null),
            _ if self.eat("true") => Ok(FlaskValue::Bool(true)),
            _ if self.eat("false") => Ok(FlaskValue::Bool(false)),
            _ if self.eat("NaN") => Ok(FlaskValue::Float(f64::NAN)),
            _ if self.eat("Infinity") => Ok(FlaskValue::Float(f64::INFINITY)),
            _ if self.eat("-Infinity") => Ok(FlaskValue::Float(f64::NEG_INFINITY)),
            _ => self.number(),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<FlaskValue, JsonError> {
        let start = self.i;
        self.eat("-");
        let int_start = self.i;
        let n = self.digits();
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return Err(JsonError("invalid number"));
        }
        let mut float = false;
        if self.eat(".") {
            float = true;
            if self.digits() == 0 {
                return Err(JsonError("invalid number"));
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            float = true;
            if !self.eat("+") {
                self.eat("-");
            }
            if self.digits() == 0 {
                return Err(JsonError("invalid number"));
            }
        }
        // Only ASCII digits and signs were consumed.
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| JsonError("invalid number"))?;
        if float {
            return text.parse().map(FlaskValue::Float).map_err(|_| JsonError("invalid number"));
        }
        if let Ok(i) = text.parse::<i64>() {
            return Ok(FlaskValue::Int(i));
        }
        if n > MAX_INT_DIGITS {
            return Err(JsonError("integer too long"));
        }
        Ok(FlaskValue::BigInt(if text == "-0" { "0".into() } else { text.to_owned() }))
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let hex = self.s.get(self.i..self.i + 4).ok_or(JsonError("short \\u escape"))?;
        let hex = std::str::from_utf8(hex).map_err(|_| JsonError("bad \\u escape"))?;
        let v = u16::from_str_radix(hex, 16).map_err(|_| JsonError("bad \\u escape"))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err(JsonError("unterminated string"));
            };
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(JsonError("unterminated string"));
                    };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                // A high surrogate must be followed by a low one: a lone
                                // surrogate (legal in Python) has no Rust `String` form.
                                if !self.eat("\\u") {
                                    return Err(JsonError("lone surrogate in string"));
                                }
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(JsonError("lone surrogate in string"));
                                }
                                0x10000 + ((u32::from(hi) - 0xd800) << 10) + (u32::from(lo) - 0xdc00)
                            } else {
                                u32::from(hi)
                            };
                            char::from_u32(code).ok_or(JsonError("lone surrogate in string"))?
                        }
                        _ => return Err(JsonError("bad escape in string")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                // Python's `json.loads` refuses raw control characters in strings too.
                0..0x20 => return Err(JsonError("control character in string")),
                _ => out.push(b),
            }
        }
        // The input is a `&str`, and escapes add whole characters: always valid UTF-8.
        String::from_utf8(out).map_err(|_| JsonError("invalid UTF-8 in string"))
    }
}

/// One object, its values already untagged: a one-key object whose key is a tag becomes
/// that tag's type.
fn untag(mut map: BTreeMap<String, FlaskValue>) -> Result<FlaskValue, JsonError> {
    if map.len() != 1 {
        return Ok(FlaskValue::Dict(map));
    }
    let Some(tag) = map.keys().next().filter(|k| TAGS.contains(&k.as_str())).cloned() else {
        return Ok(FlaskValue::Dict(map));
    };
    let value = map.remove(&tag).unwrap_or(FlaskValue::Null);
    Ok(match (tag.as_str(), value) {
        (" di", FlaskValue::Dict(inner)) if inner.len() == 1 => {
            let (key, v) = inner.into_iter().next().ok_or(JsonError("bad \" di\" value"))?;
            let key = key.strip_suffix("__").ok_or(JsonError("bad \" di\" key"))?;
            FlaskValue::Dict(BTreeMap::from([(key.to_owned(), v)]))
        }
        (" t", FlaskValue::List(items)) => FlaskValue::Tuple(items),
        (" b", FlaskValue::Str(s)) => FlaskValue::Bytes(
            base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            )
            .decode(s)
            .map_err(|_| JsonError("bad base64 in \" b\""))?,
        ),
        (" m", FlaskValue::Str(s)) => FlaskValue::Markup(s),
        (" u", FlaskValue::Str(s)) => {
            FlaskValue::Uuid(parse_uuid(&s).ok_or(JsonError("bad UUID in \" u\""))?)
        }
        (" d", FlaskValue::Str(s)) => FlaskValue::DateTime(
            PrimitiveDateTime::parse(&s, HTTP_DATE)
                .map_err(|_| JsonError("bad date in \" d\""))?
                .assume_utc(),
        ),
        _ => return Err(JsonError("tag with a value of the wrong type")),
    })
}

/// 32 hex digits, with or without the four hyphens.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dumps(v: &FlaskValue) -> String {
        let mut s = String::new();
        write(v, &mut s);
        s
    }

    #[test]
    fn floats_are_written_like_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e300, "1e+300"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "Infinity"),
            (f64::NAN, "NaN"),
        ];
        for (x, want) in cases {
            assert_eq!(dumps(&FlaskValue::Float(x)), want, "{x:e}");
            if x.is_finite() {
                assert_eq!(parse(want), Ok(FlaskValue::Float(x)));
            }
        }
    }

    #[test]
    fn strings_are_ascii_escaped_like_python() {
        let v = FlaskValue::Str("a\"\\\n\u{1}\u{7f}é😀/".into());
        assert_eq!(dumps(&v), r#""a\"\\\n\u0001\u007f\u00e9\ud83d\ude00/""#);
        assert_eq!(parse(&dumps(&v)), Ok(v));
        assert!(parse(r#""\ud83d""#).is_err());
        assert!(parse("\"a\u{1}\"").is_err());
    }

    #[test]
    fn tags_round_trip() {
        let v = FlaskValue::Dict(BTreeMap::from([
            ("b".to_owned(), FlaskValue::Bytes(vec![0, 255, 1])),
            ("d".to_owned(), FlaskValue::DateTime(time::macros::datetime!(2024-05-17 12:30:45 UTC))),
            ("esc".to_owned(), FlaskValue::Dict(BTreeMap::from([(" t".to_owned(), 1.into())]))),
            ("m".to_owned(), FlaskValue::Markup("<b>x</b>".into())),
            ("t".to_owned(), FlaskValue::Tuple(vec![1.into(), "x".into()])),
            ("u".to_owned(), FlaskValue::Uuid([0x12; 16])),
            ("big".to_owned(), FlaskValue::BigInt("-1180591620717411303424".into())),
        ]));
        let text = dumps(&v);
        assert_eq!(
            text,
            concat!(
                r#"{"b":{" b":"AP8B"},"big":-1180591620717411303424,"#,
                r#""d":{" d":"Fri, 17 May 2024 12:30:45 GMT"},"esc":{" di":{" t__":1}},"#,
                r#""m":{" m":"<b>x</b>"},"t":{" t":[1,"x"]},"u":{" u":"12121212121212121212121212121212"}}"#
            )
        );
        assert_eq!(parse(&text), Ok(v));
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            "",
            "{",
            "[1,]",
            "01",
            "1.",
            "-",
            "{\"a\" 1}",
            "{1:2}",
            "\"abc",
            "[1] x",
            "{\" t\":1}",
            "{\" u\":\"zz\"}",
            "{\" d\":\"yesterday\"}",
            "{\" b\":\"!!\"}",
            "{\" di\":{\"a\":1}}",
            "tru",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(&deep), Err(JsonError("nested too deeply")));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
        assert!(parse(&"9".repeat(MAX_INT_DIGITS + 1)).is_err());
    }
}
