//! CRI messages as protobuf's JSON mapping, the way crictl prints them: lowerCamelCase field
//! names, enum values by name (`"CONTAINER_RUNNING"`), 64-bit integers as strings, every field
//! present (unset messages as `null`), map keys sorted, fields in declaration order.
//!
//! The k8s-cri types derive serde's `Serialize` with the `.proto` field names; [`to_j`] runs
//! them through a serializer that applies the mapping. The struct and field names serde hands
//! it say which fields are enums ([`enums`]); the integer width says which are 64-bit.
//! Written here because no protobuf reflection is available for prost types without the
//! `.proto` at build time.

pub mod enums;

use serde::ser::{self, Serialize};

use crate::output::json::{Obj, J};

/// `v` (a CRI message) in protobuf's JSON mapping.
pub fn to_j<T: Serialize + ?Sized>(v: &T) -> J {
    // The serializer only fails on shapes the CRI types do not have (oneofs, tuples).
    v.serialize(Ser { field: None }).unwrap_or(J::Null)
}

/// protoc's `json_name`: `_x` becomes `X`.
pub fn json_name(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut up = false;
    for c in field.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A shape the mapping does not cover.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(String);

impl ser::Error for Unsupported {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Unsupported(msg.to_string())
    }
}

/// The serializer; `field` is the (message, field) the value belongs to.
#[derive(Clone, Copy)]
struct Ser {
    field: Option<(&'static str, &'static str)>,
}

impl Ser {
    fn int(self, v: i64) -> J {
        if let Some(e) = self.field.and_then(|(m, f)| enums::of(m, f)) {
            if let Some(n) = i32::try_from(v).ok().and_then(|v| e.name(v)) {
                return J::Str(n.to_string());
            }
        }
        J::Num(v.to_string())
    }
}

fn unsupported<T>(what: &str) -> Result<T, Unsupported> {
    Err(Unsupported(format!(
        "{what} has no protobuf JSON mapping here"
    )))
}

/// Collects a list.
struct Seq {
    ser: Ser,
    items: Vec<J>,
}

/// Collects a map (keys sorted at the end, as jsonpb sorts them).
struct Map {
    key: Option<String>,
    entries: Vec<(String, J)>,
}

/// Collects a message.
struct Msg {
    name: &'static str,
    fields: Vec<(String, J)>,
}

impl ser::Serializer for Ser {
    type Ok = J;
    type Error = Unsupported;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = ser::Impossible<J, Unsupported>;
    type SerializeMap = Map;
    type SerializeStruct = Msg;
    type SerializeStructVariant = ser::Impossible<J, Unsupported>;

    fn serialize_bool(self, v: bool) -> Result<J, Unsupported> {
        Ok(J::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<J, Unsupported> {
        Ok(self.int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<J, Unsupported> {
        Ok(self.int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<J, Unsupported> {
        Ok(self.int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<J, Unsupported> {
        Ok(J::Str(v.to_string()))
    }
    fn serialize_u8(self, v: u8) -> Result<J, Unsupported> {
        Ok(J::Num(v.to_string()))
    }
    fn serialize_u16(self, v: u16) -> Result<J, Unsupported> {
        Ok(J::Num(v.to_string()))
    }
    fn serialize_u32(self, v: u32) -> Result<J, Unsupported> {
        Ok(J::Num(v.to_string()))
    }
    fn serialize_u64(self, v: u64) -> Result<J, Unsupported> {
        Ok(J::Str(v.to_string()))
    }
    fn serialize_f32(self, v: f32) -> Result<J, Unsupported> {
        Ok(J::Num(crate::output::json::go_float(v.into())))
    }
    fn serialize_f64(self, v: f64) -> Result<J, Unsupported> {
        Ok(J::Num(crate::output::json::go_float(v)))
    }
    fn serialize_char(self, v: char) -> Result<J, Unsupported> {
        Ok(J::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<J, Unsupported> {
        Ok(J::Str(v.to_string()))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<J, Unsupported> {
        unsupported("bytes")
    }
    fn serialize_none(self) -> Result<J, Unsupported> {
        Ok(J::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<J, Unsupported> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<J, Unsupported> {
        Ok(J::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<J, Unsupported> {
        Ok(J::obj(Obj::Message, vec![]))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<J, Unsupported> {
        unsupported("an enum variant")
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<J, Unsupported> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<J, Unsupported> {
        unsupported("a oneof")
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, Unsupported> {
        Ok(Seq {
            ser: self,
            items: Vec::with_capacity(len.unwrap_or(0)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        unsupported("a oneof")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Map, Unsupported> {
        Ok(Map {
            key: None,
            entries: vec![],
        })
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Msg, Unsupported> {
        Ok(Msg {
            name,
            fields: Vec::with_capacity(len),
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        unsupported("a oneof")
    }
}

impl ser::SerializeSeq for Seq {
    type Ok = J;
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        self.items.push(v.serialize(self.ser)?);
        Ok(())
    }
    fn end(self) -> Result<J, Unsupported> {
        Ok(J::Arr(self.items))
    }
}

impl ser::SerializeTuple for Seq {
    type Ok = J;
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<J, Unsupported> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Seq {
    type Ok = J;
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<J, Unsupported> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeMap for Map {
    type Ok = J;
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Unsupported> {
        self.key = Some(match k.serialize(Ser { field: None })? {
            J::Str(s) | J::Num(s) => s,
            J::Bool(b) => b.to_string(),
            _ => return unsupported("a map key that is not a scalar"),
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        let k = self.key.take().unwrap_or_default();
        self.entries.push((k, v.serialize(Ser { field: None })?));
        Ok(())
    }
    fn end(mut self) -> Result<J, Unsupported> {
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(J::obj(Obj::Map, self.entries))
    }
}

impl ser::SerializeStruct for Msg {
    type Ok = J;
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        let j = v.serialize(Ser {
            field: Some((self.name, key)),
        })?;
        self.fields.push((json_name(key), j));
        Ok(())
    }
    fn end(self) -> Result<J, Unsupported> {
        Ok(J::obj(Obj::Message, self.fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1 as cri;

    #[test]
    fn the_mapping_of_a_container() {
        let c = cri::Container {
            id: "c1".into(),
            pod_sandbox_id: "p1".into(),
            metadata: Some(cri::ContainerMetadata {
                name: "box".into(),
                attempt: 2,
            }),
            state: cri::ContainerState::ContainerExited as i32,
            created_at: 1_700_000_000_123_456_789,
            labels: [("b".to_string(), "2".to_string()), ("a".into(), "1".into())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let j = to_j(&c);
        assert_eq!(j.get("podSandboxId"), Some(&J::Str("p1".into())));
        assert_eq!(j.get("state"), Some(&J::Str("CONTAINER_EXITED".into())));
        assert_eq!(
            j.get("createdAt"),
            Some(&J::Str("1700000000123456789".into()))
        );
        assert_eq!(j.get("image"), Some(&J::Null));
        let md = j.get("metadata").expect("metadata");
        assert_eq!(md.get("attempt"), Some(&J::Num("2".into())));
        let J::Obj(Obj::Map, labels) = j.get("labels").expect("labels") else {
            panic!("labels is not a map")
        };
        assert_eq!(labels[0].0, "a");
        let J::Obj(_, fields) = &j else { panic!() };
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(&names[..4], ["id", "podSandboxId", "metadata", "image"]);
    }

    #[test]
    fn enum_values_without_a_name_stay_numbers() {
        let p = cri::PortMapping {
            protocol: 7,
            ..Default::default()
        };
        assert_eq!(to_j(&p).get("protocol"), Some(&J::Num("7".into())));
        assert_eq!(json_name("pod_sandbox_id"), "podSandboxId");
        assert_eq!(json_name("ipv4"), "ipv4");
    }
}
