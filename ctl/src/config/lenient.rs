//! A serde `Deserializer` over a JSON value that reads crictl's config files the way crictl's
//! Go decoder does, into the k8s-cri types (which require every field):
//!
//! - a missing field, or `null`, is the field's zero value (an `Option` is `None`), at any depth;
//! - keys match the `.proto` field name (`port_mappings`), its JSON name (`portMappings`) or
//!   either case-insensitively (`Metadata`), as Go's `encoding/json` matches keys;
//! - an enum field takes its number (as crictl reads it) or its name (`"TCP"`, `"POD"`);
//! - an unknown key is dropped and its path recorded, so the caller can warn
//!   (`"comand"` is not silently ignored).
//!
//! Type errors are left to the inner value's deserializer; the caller wraps this in
//! `serde_path_to_error` so they name the field path.

use std::cell::RefCell;
use std::rc::Rc;

use serde::de::{self, IntoDeserializer, Visitor};
use serde_json::Value;

use crate::proto::enums::{self, Enum};
use crate::proto::json_name;

/// Unknown keys found so far, as dotted paths.
pub type Unknown = Rc<RefCell<Vec<String>>>;

/// A value being read; `None` is a missing field.
pub struct Lenient {
    value: Option<Value>,
    path: String,
    enum_type: Option<Enum>,
    unknown: Unknown,
}

impl Lenient {
    /// The root of a document.
    pub fn new(value: Value, unknown: Unknown) -> Self {
        Self {
            value: Some(value),
            path: String::new(),
            enum_type: None,
            unknown,
        }
    }

    fn child(&self, value: Option<Value>, path: String, enum_type: Option<Enum>) -> Self {
        Self {
            value,
            path,
            enum_type,
            unknown: self.unknown.clone(),
        }
    }

    /// The value, or None when it is missing or null (the zero value then).
    fn present(&self) -> Option<&Value> {
        self.value.as_ref().filter(|v| !v.is_null())
    }

    fn join(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.path)
        }
    }
}

type Error = serde_json::Error;

fn custom(m: String) -> Error {
    de::Error::custom(m)
}

macro_rules! zero_or_forward {
    ($($method:ident => $visit:ident($zero:expr)),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                match self.present() {
                    None => v.$visit($zero),
                    Some(_) => self.value.unwrap_or(Value::Null).$method(v),
                }
            }
        )*
    };
}

macro_rules! int_or_enum {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                match (self.present(), self.enum_type) {
                    (None, _) => v.visit_i64(0),
                    (Some(Value::String(s)), Some(e)) => match e.value(s) {
                        Some(n) => v.visit_i64(n.into()),
                        None => Err(custom(format!(
                            "unknown value {s:?}, expected a number or one of {}",
                            e.names().join(", ")
                        ))),
                    },
                    _ => self.value.unwrap_or(Value::Null).$method(v),
                }
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Lenient {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.value {
            None => v.visit_unit(),
            Some(x) => x.deserialize_any(v),
        }
    }

    zero_or_forward! {
        deserialize_bool => visit_bool(false),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('\0'),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_bytes(&[]),
    }

    int_or_enum!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64
    );

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.present() {
            None => v.visit_unit(),
            Some(_) => self.value.unwrap_or(Value::Null).deserialize_unit(v),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.present() {
            None => v.visit_none(),
            Some(_) => v.visit_some(self),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let items = match self.present() {
            None => vec![],
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return self.value.unwrap_or(Value::Null).deserialize_seq(v),
        };
        let me = &self;
        let items: Vec<Lenient> = items
            .into_iter()
            .enumerate()
            .map(|(i, x)| me.child(Some(x), format!("{}[{i}]", me.path), me.enum_type))
            .collect();
        v.visit_seq(de::value::SeqDeserializer::new(items.into_iter()))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let entries = match self.present() {
            None => vec![],
            Some(Value::Object(o)) => o.clone().into_iter().collect(),
            Some(_) => return self.value.unwrap_or(Value::Null).deserialize_map(v),
        };
        let me = &self;
        let entries: Vec<(String, Lenient)> = entries
            .into_iter()
            .map(|(k, x)| {
                let p = me.join(&k);
                (k, me.child(Some(x), p, None))
            })
            .collect();
        v.visit_map(de::value::MapDeserializer::new(entries.into_iter()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        let given = match self.present() {
            None => serde_json::Map::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(_) => {
                return self
                    .value
                    .unwrap_or(Value::Null)
                    .deserialize_struct(name, fields, v)
            }
        };
        let mut entries: Vec<(&'static str, Lenient)> = vec![];
        for (k, x) in given {
            let field = fields
                .iter()
                .find(|f| **f == k)
                .or_else(|| fields.iter().find(|f| json_name(f) == k))
                .or_else(|| fields.iter().find(|f| f.eq_ignore_ascii_case(&k)))
                .or_else(|| {
                    fields
                        .iter()
                        .find(|f| json_name(f).eq_ignore_ascii_case(&k))
                });
            match field {
                Some(f) => {
                    let e = enums::of(name, f);
                    entries.push((f, self.child(Some(x), self.join(f), e)));
                }
                None => self.unknown.borrow_mut().push(self.join(&k)),
            }
        }
        for f in fields {
            if !entries.iter().any(|(k, _)| k == f) {
                entries.push((f, self.child(None, self.join(f), enums::of(name, f))));
            }
        }
        v.visit_map(de::value::MapDeserializer::new(entries.into_iter()))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.value
            .unwrap_or(Value::Null)
            .deserialize_enum(name, variants, v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }
}

impl IntoDeserializer<'_, Error> for Lenient {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// Reads `value` as a `T`; returns it with the unknown keys' paths.
pub fn read<T: de::DeserializeOwned>(
    value: Value,
) -> Result<(T, Vec<String>), serde_path_to_error::Error<Error>> {
    let unknown = Unknown::default();
    let t = serde_path_to_error::deserialize(Lenient::new(value, unknown.clone()))?;
    let u = unknown.borrow().clone();
    Ok((t, u))
}
