//! [`J`]: a JSON value that keeps its keys in order (protobuf declaration order, or the
//! order a runtime wrote them) and knows whether an object is a message or a map, printed
//! byte for byte as the Go code behind crictl prints it:
//!
//! - [`J::jsonpb`]: golang/protobuf's `jsonpb.Marshaler{EmitDefaults: true, Indent: "  "}`,
//!   which crictl uses for lists (`ps`, `pods`, `images`, `stats` `-o json`). An empty list or
//!   map is printed open, as `[` and `]` on two lines.
//! - [`J::indent`]: `encoding/json`'s `Indent`, which crictl uses for the status documents
//!   (`inspect`, `inspectp`, `inspecti`, `info`): `[]` and `{}` when empty.
//! - [`J::yaml`]: `sigs.k8s.io/yaml.JSONToYAML`, which sorts keys (yaml.v2's natural order).
//!   The YAML is the same data, YAML 1.1 timestamps quoted as yaml.v2 quotes them
//!   ([`super::yaml`]); other quoting may differ in style (`''` for yaml.v2's `""`).
//!
//! Strings are escaped as Go's `encoding/json` escapes them (`<`, `>`, `&` as `\u003c`…).
//! Hand-written: serde_json's `Value` sorts keys (or needs a crate-wide feature that would
//! change crustd's output too) and has no notion of message vs map.

use std::fmt::Write as _;

/// Whether an object is a protobuf message (fields) or a map (arbitrary keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obj {
    /// A message: its fields, in declaration order.
    Message,
    /// A map or a plain JSON object.
    Map,
}

/// An ordered JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    /// A number, as its JSON text.
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Obj, Vec<(String, J)>),
}

const INDENT: &str = "  ";

impl J {
    /// An object of either kind.
    pub fn obj(kind: Obj, entries: Vec<(String, J)>) -> Self {
        J::Obj(kind, entries)
    }

    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(_, e) => e.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Replaces (or appends) `key` of an object.
    pub fn set(&mut self, key: &str, v: J) {
        if let J::Obj(_, e) = self {
            match e.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = v,
                None => e.push((key.to_string(), v)),
            }
        }
    }

    /// This value with every object below the top level in sorted key order, as Go's
    /// `json.Marshal` writes a `map[string]interface{}` (crictl re-marshals inspect's status).
    pub fn sorted_below_top(mut self) -> Self {
        if let J::Obj(_, e) = &mut self {
            for (_, v) in e.iter_mut() {
                *v = std::mem::replace(v, J::Null).sorted();
            }
        }
        self
    }

    fn sorted(self) -> Self {
        match self {
            J::Obj(_, mut e) => {
                e.sort_by(|a, b| a.0.cmp(&b.0));
                J::Obj(
                    Obj::Map,
                    e.into_iter().map(|(k, v)| (k, v.sorted())).collect(),
                )
            }
            J::Arr(a) => J::Arr(a.into_iter().map(J::sorted).collect()),
            v => v,
        }
    }

    /// As golang/protobuf's jsonpb with `Indent: "  "` prints it.
    pub fn jsonpb(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, "", true);
        s
    }

    /// As Go's `json.Indent(dst, src, "", "  ")` prints it.
    pub fn indent(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, "", false);
        s
    }

    /// `at` is the indentation of the line the value starts on; `open` prints empty lists
    /// and maps as jsonpb does.
    fn write(&self, s: &mut String, at: &str, open: bool) {
        match self {
            J::Null => s.push_str("null"),
            J::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => s.push_str(n),
            J::Str(t) => quote(s, t),
            J::Arr(a) => {
                if a.is_empty() {
                    s.push_str(if open { "[\n" } else { "[]" });
                    if open {
                        s.push_str(at);
                        s.push(']');
                    }
                    return;
                }
                let inner = format!("{at}{INDENT}");
                s.push('[');
                for (i, v) in a.iter().enumerate() {
                    s.push_str(if i == 0 { "\n" } else { ",\n" });
                    s.push_str(&inner);
                    v.write(s, &inner, open);
                }
                s.push('\n');
                s.push_str(at);
                s.push(']');
            }
            J::Obj(kind, e) => {
                if e.is_empty() {
                    match (open, kind) {
                        (false, _) => s.push_str("{}"),
                        (true, Obj::Map) => {
                            s.push_str("{\n");
                            s.push_str(at);
                            s.push('}');
                        }
                        (true, Obj::Message) => {
                            s.push_str("{\n\n");
                            s.push_str(at);
                            s.push('}');
                        }
                    }
                    return;
                }
                let inner = format!("{at}{INDENT}");
                s.push('{');
                for (i, (k, v)) in e.iter().enumerate() {
                    s.push_str(if i == 0 { "\n" } else { ",\n" });
                    s.push_str(&inner);
                    quote(s, k);
                    s.push_str(": ");
                    v.write(s, &inner, open);
                }
                s.push('\n');
                s.push_str(at);
                s.push('}');
            }
        }
    }

    /// As `sigs.k8s.io/yaml.JSONToYAML` (yaml.v2) writes it: keys sorted in yaml.v2's
    /// natural order.
    pub fn yaml(&self) -> anyhow::Result<String> {
        let yaml = serde_yaml::to_string(&self.to_yaml())?;
        Ok(super::yaml::quote_timestamps(&yaml))
    }

    fn to_yaml(&self) -> serde_yaml::Value {
        use serde_yaml::Value as Y;
        match self {
            J::Null => Y::Null,
            J::Bool(b) => Y::Bool(*b),
            J::Num(n) => n
                .parse::<i64>()
                .map(Y::from)
                .or_else(|_| n.parse::<u64>().map(Y::from))
                .or_else(|_| n.parse::<f64>().map(Y::from))
                .unwrap_or_else(|_| Y::String(n.clone())),
            J::Str(s) => Y::String(s.clone()),
            J::Arr(a) => Y::Sequence(a.iter().map(J::to_yaml).collect()),
            J::Obj(_, e) => {
                let mut e: Vec<&(String, J)> = e.iter().collect();
                e.sort_by(|a, b| natural_cmp(&a.0, &b.0));
                Y::Mapping(
                    e.into_iter()
                        .map(|(k, v)| (Y::String(k.clone()), v.to_yaml()))
                        .collect(),
                )
            }
        }
    }

    /// Parses JSON text keeping the order of its keys.
    pub fn parse(text: &str) -> Result<J, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// yaml.v2's key order (its `keyList.Less` for string keys): letters compare as characters,
/// a non-letter sorts before a letter, and digit runs compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let less = |a: &[char], b: &[char]| -> bool {
        for i in 0..a.len().min(b.len()) {
            if a[i] == b[i] {
                continue;
            }
            let (al, bl) = (a[i].is_alphabetic(), b[i].is_alphabetic());
            if al && bl {
                return a[i] < b[i];
            }
            if al || bl {
                return bl;
            }
            let (mut an, mut bn) = (0i64, 0i64);
            if a[i] == '0' || b[i] == '0' {
                for j in (0..i).rev() {
                    if !a[j].is_ascii_digit() {
                        break;
                    }
                    if a[j] != '0' {
                        (an, bn) = (1, 1);
                        break;
                    }
                }
            }
            let run = |v: &[char], mut n: i64| -> (i64, usize) {
                let mut k = i;
                while k < v.len() && v[k].is_ascii_digit() {
                    n = n
                        .wrapping_mul(10)
                        .wrapping_add(i64::from(v[k] as u8 - b'0'));
                    k += 1;
                }
                (n, k)
            };
            let ((an, ai), (bn, bi)) = (run(a, an), run(b, bn));
            if an != bn {
                return an < bn;
            }
            if ai != bi {
                return ai < bi;
            }
            return a[i] < b[i];
        }
        a.len() < b.len()
    };
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if less(&a, &b) {
        Ordering::Less
    } else if less(&b, &a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// A JSON string as Go's `encoding/json` writes it (HTML-safe).
pub fn quote(s: &mut String, t: &str) {
    s.push('"');
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

impl<'de> serde::Deserialize<'de> for J {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_none<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<J, E> {
                Ok(J::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<J, E> {
                Ok(J::Num(n.to_string()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<J, E> {
                Ok(J::Num(n.to_string()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<J, E> {
                Ok(J::Num(go_float(n)))
            }
            fn visit_str<E>(self, s: &str) -> Result<J, E> {
                Ok(J::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<J, E> {
                Ok(J::Str(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(J::Arr(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry::<String, J>()? {
                    v.push((k, x));
                }
                Ok(J::Obj(Obj::Map, v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A float as Go's `encoding/json` writes a float64 (shortest form; exponent form only
/// below 1e-6 or from 1e21).
pub fn go_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        }
    } else {
        let s = format!("{f}");
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    }
}

/// Go's `fmt.Sprintf("%.*g", p, v)`.
pub fn go_g(v: f64, p: usize) -> String {
    let p = p.max(1);
    if v == 0.0 {
        return "0".into();
    }
    let e = format!("{:.*e}", p - 1, v);
    let Some((mant, exp)) = e.split_once('e') else {
        return e;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), exp.abs())
    } else {
        let decimals = usize::try_from(p as i32 - 1 - exp).unwrap_or(0);
        trim(&format!("{v:.decimals$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> J {
        J::Str(t.into())
    }

    #[test]
    fn jsonpb_prints_empty_lists_and_maps_open() {
        let v = J::obj(
            Obj::Message,
            vec![
                ("containers".into(), J::Arr(vec![])),
                ("labels".into(), J::obj(Obj::Map, vec![])),
                (
                    "items".into(),
                    J::Arr(vec![J::obj(Obj::Message, vec![("id".into(), s("a<b"))])]),
                ),
            ],
        );
        assert_eq!(
            v.jsonpb(),
            "{\n  \"containers\": [\n  ],\n  \"labels\": {\n  },\n  \"items\": [\n    {\n      \"id\": \"a\\u003cb\"\n    }\n  ]\n}"
        );
        assert_eq!(
            v.indent(),
            "{\n  \"containers\": [],\n  \"labels\": {},\n  \"items\": [\n    {\n      \"id\": \"a\\u003cb\"\n    }\n  ]\n}"
        );
    }

    #[test]
    fn parse_keeps_key_order_and_sorting_is_below_top_only() {
        let v = J::parse(r#"{"z":1,"a":{"y":true,"b":null},"m":[{"d":1,"c":2}]}"#).unwrap();
        assert_eq!(v.indent().find("\"z\""), Some(4));
        let v = v.sorted_below_top();
        assert_eq!(
            v.indent(),
            "{\n  \"z\": 1,\n  \"a\": {\n    \"b\": null,\n    \"y\": true\n  },\n  \"m\": [\n    {\n      \"c\": 2,\n      \"d\": 1\n    }\n  ]\n}"
        );
    }

    #[test]
    fn yaml_sorts_keys_naturally() {
        let v = J::parse(r#"{"b10":1,"b9":"2","a":[]}"#).unwrap();
        assert_eq!(v.yaml().unwrap(), "a: []\nb9: '2'\nb10: 1\n");
        assert_eq!(natural_cmp("a2", "a10"), std::cmp::Ordering::Less);
        assert_eq!(natural_cmp("a_", "ab"), std::cmp::Ordering::Less);
    }

    #[test]
    fn numbers_as_go_prints_them() {
        assert_eq!(go_g(2.22, 3), "2.22");
        assert_eq!(go_g(130.0, 3), "130");
        assert_eq!(go_g(999.95, 3), "1e+03");
        assert_eq!(go_g(1.5, 4), "1.5");
        assert_eq!(go_g(12.3456, 4), "12.35");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(3.0), "3");
        assert_eq!(go_float(1e21), "1e+21");
    }
}
