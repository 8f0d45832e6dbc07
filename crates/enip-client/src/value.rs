//! Typed tag values: what a read's bytes mean, given the type in the reply and, for
//! structures, the templates uploaded from the controller.

use std::collections::HashMap;

use enip_proto::services::template_type;
use enip_proto::types::{DataType, LogixString, TypeTag, Value, LOGIX_STRING_HANDLE};
use enip_proto::wire::Reader;

use crate::pyfmt;

/// The type field of a Read Tag reply, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireType {
    /// An elementary type: `C4 00` is DINT.
    Atomic(DataType),
    /// A structure, by its handle: `A0 02 CE 0F` is the Logix STRING.
    Struct(u16),
    /// A type code this client has no name for.
    Other(u8),
}

impl WireType {
    pub fn from_tag(t: &TypeTag<'_>) -> Self {
        match *t {
            TypeTag::Elementary(c) => DataType::from_code(c).map_or(Self::Other(c), Self::Atomic),
            TypeTag::Struct(h) => Self::Struct(h),
            TypeTag::Other { code, .. } => Self::Other(code),
        }
    }

    /// The type field as a write sends it back.
    pub fn to_tag(self) -> TypeTag<'static> {
        match self {
            Self::Atomic(t) => TypeTag::atomic(t),
            Self::Struct(h) => TypeTag::Struct(h),
            Self::Other(c) => TypeTag::Elementary(c),
        }
    }

    /// Bytes per element, when the type alone says (a known template says for structures).
    pub fn element_size(self) -> Option<usize> {
        match self {
            Self::Atomic(t) => t.size(),
            Self::Struct(LOGIX_STRING_HANDLE) => Some(enip_proto::types::LOGIX_STRING_SIZE),
            _ => None,
        }
    }

    pub fn name(self) -> String {
        match self {
            Self::Atomic(t) => t.name().to_string(),
            Self::Struct(LOGIX_STRING_HANDLE) => "STRING".into(),
            Self::Struct(h) => format!("STRUCT 0x{h:04X}"),
            Self::Other(c) => format!("0x{c:02X}"),
        }
    }
}

/// One decoded element.
#[derive(Debug, Clone, PartialEq)]
pub enum TagValue {
    /// An elementary value (CIP STRING and SHORT_STRING included).
    Atomic(Value),
    /// A Logix STRING structure, its characters one per byte.
    String(String),
    /// A structure decoded from its template: members in template order, hidden ones
    /// (BOOL hosts, `__` names) left out.
    Struct {
        type_name: String,
        members: Vec<(String, TagValue)>,
    },
    /// An array member of a structure.
    Array(Vec<TagValue>),
    /// Bytes of a structure whose template is not known.
    Raw(Vec<u8>),
}

impl TagValue {
    /// Python's repr, as cpppo prints values (structures print as dicts).
    pub fn repr(&self) -> String {
        match self {
            Self::Atomic(v) => atomic_repr(v),
            Self::String(s) => pyfmt::string(s),
            Self::Struct { members, .. } => {
                let items: Vec<String> = members
                    .iter()
                    .map(|(n, v)| format!("{}: {}", pyfmt::string(n), v.repr()))
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            Self::Array(items) => pyfmt::list(items.iter().map(Self::repr)),
            Self::Raw(bytes) => raw_repr(bytes),
        }
    }
}

/// How cpppo prints a structure it cannot decode: the raw bytes as an array of USINT.
pub fn raw_repr(bytes: &[u8]) -> String {
    format!(
        "{{'input': array('B', {})}}",
        pyfmt::list(bytes.iter().map(u8::to_string))
    )
}

pub fn atomic_repr(v: &Value) -> String {
    match v {
        Value::Bool(b) => pyfmt::boolean(*b).into(),
        Value::Sint(x) => x.to_string(),
        Value::Int(x) => x.to_string(),
        Value::Dint(x) => x.to_string(),
        Value::Lint(x) => x.to_string(),
        Value::Usint(x) | Value::Byte(x) => x.to_string(),
        Value::Uint(x) | Value::Word(x) => x.to_string(),
        Value::Udint(x) | Value::Dword(x) => x.to_string(),
        Value::Ulint(x) | Value::Lword(x) => x.to_string(),
        Value::Real(x) => pyfmt::float(f64::from(*x)),
        Value::Lreal(x) => pyfmt::float(*x),
        Value::String(s) | Value::ShortString(s) => pyfmt::string(&pyfmt::latin1(s)),
    }
}

/// A structure template (Template object 0x6C instance), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The template instance id (the low 12 bits of a symbol's type).
    pub id: u16,
    /// The structure handle read replies carry (`A0 02 <handle>`): attribute 1.
    pub handle: u16,
    pub name: String,
    /// Bytes of one structure on the wire: attribute 5.
    pub size: u32,
    pub members: Vec<Member>,
}

/// One member of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Array length, or the bit number of a BOOL member.
    pub info: u16,
    pub type_code: u16,
    pub offset: u32,
}

/// What a member holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberType {
    Atomic(DataType),
    /// A BOOL stored as one bit of the byte at the member's offset.
    Bit(u8),
    /// A nested structure, by template id.
    Struct(u16),
    Other(u16),
}

impl Member {
    /// Logix hides the bytes that host BOOL members (`ZZZZZZZZZZ...`) and system members.
    pub fn hidden(&self) -> bool {
        self.name.starts_with("ZZZZZZZZZZ") || self.name.starts_with("__")
    }

    pub fn member_type(&self) -> MemberType {
        let t = self.type_code;
        if t & template_type::STRUCT != 0 {
            return MemberType::Struct(t & template_type::TEMPLATE_MASK);
        }
        match DataType::from_code((t & 0xFF) as u8) {
            Some(DataType::Bool) if t & template_type::ARRAY == 0 => {
                MemberType::Bit((self.info & 7) as u8)
            }
            Some(d) => MemberType::Atomic(d),
            None => MemberType::Other(t),
        }
    }

    /// Elements: the array length for arrays, else 1.
    pub fn count(&self) -> usize {
        if self.type_code & template_type::ARRAY != 0 {
            usize::from(self.info)
        } else {
            1
        }
    }

    /// The type as a person writes it: `REAL`, `DINT[10]`, `BOOL (bit 3)`, `Point`.
    pub fn type_text(&self, templates: &Templates) -> String {
        let base = match self.member_type() {
            MemberType::Atomic(d) => d.name().to_string(),
            MemberType::Bit(b) => return format!("BOOL (bit {b})"),
            MemberType::Struct(id) => templates
                .by_id(id)
                .map_or_else(|| format!("STRUCT #{id}"), |t| t.display_name().to_string()),
            MemberType::Other(c) => format!("0x{c:04X}"),
        };
        if self.type_code & template_type::ARRAY != 0 {
            format!("{base}[{}]", self.info)
        } else {
            base
        }
    }
}

impl Template {
    /// Whether this is a string structure: `LEN` DINT then `DATA` SINT array.
    pub fn is_string(&self) -> bool {
        let visible: Vec<&Member> = self.members.iter().filter(|m| !m.hidden()).collect();
        matches!(visible.as_slice(), [len, data]
            if len.name.eq_ignore_ascii_case("LEN")
                && data.name.eq_ignore_ascii_case("DATA")
                && data.member_type() == MemberType::Atomic(DataType::Sint))
    }

    /// The name people use: `STRING` for the builtin string (`ASCIISTRING82`).
    pub fn display_name(&self) -> &str {
        if self.handle == LOGIX_STRING_HANDLE && self.is_string() {
            "STRING"
        } else {
            &self.name
        }
    }
}

/// Templates by id and by structure handle.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    by_id: HashMap<u16, Template>,
    by_handle: HashMap<u16, u16>,
}

impl Templates {
    pub fn insert(&mut self, t: Template) {
        self.by_handle.insert(t.handle, t.id);
        self.by_id.insert(t.id, t);
    }
    pub fn by_id(&self, id: u16) -> Option<&Template> {
        self.by_id.get(&id)
    }
    pub fn by_handle(&self, handle: u16) -> Option<&Template> {
        self.by_handle
            .get(&handle)
            .and_then(|id| self.by_id.get(id))
    }
    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.by_id.values()
    }
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Nesting deeper than this is a loop in hostile templates, not a real structure.
const MAX_DEPTH: usize = 16;

/// Decode the bytes of a read: elements of `ty`. Structures decode with their template
/// when `templates` has it, the Logix STRING always; anything else stays raw bytes.
pub fn decode(ty: WireType, data: &[u8], templates: &Templates) -> Vec<TagValue> {
    match ty {
        WireType::Atomic(t) => decode_atomics(t, data),
        WireType::Struct(h) => match templates.by_handle(h) {
            Some(tpl) if tpl.size > 0 => data
                .chunks(tpl.size as usize)
                .map(|c| decode_struct(tpl, c, templates, 0))
                .collect(),
            _ if h == LOGIX_STRING_HANDLE => data
                .chunks(enip_proto::types::LOGIX_STRING_SIZE)
                .map(logix_string)
                .collect(),
            _ => vec![TagValue::Raw(data.to_vec())],
        },
        WireType::Other(_) => vec![TagValue::Raw(data.to_vec())],
    }
}

fn decode_atomics(t: DataType, data: &[u8]) -> Vec<TagValue> {
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    while !r.is_empty() {
        match Value::decode(t, &mut r) {
            Ok(v) => out.push(TagValue::Atomic(v)),
            // A short last element: keep what is there rather than invent a value.
            Err(_) => {
                out.push(TagValue::Raw(r.rest().to_vec()));
                break;
            }
        }
    }
    out
}

fn logix_string(chunk: &[u8]) -> TagValue {
    match LogixString::decode(&mut Reader::new(chunk)) {
        Ok(s) => TagValue::String(pyfmt::latin1(&s.0)),
        Err(_) => TagValue::Raw(chunk.to_vec()),
    }
}

fn decode_struct(tpl: &Template, data: &[u8], templates: &Templates, depth: usize) -> TagValue {
    if depth > MAX_DEPTH {
        return TagValue::Raw(data.to_vec());
    }
    if tpl.is_string() {
        return string_struct(tpl, data);
    }
    let mut members = Vec::new();
    for m in tpl.members.iter().filter(|m| !m.hidden()) {
        let at = m.offset as usize;
        let v = match m.member_type() {
            MemberType::Bit(b) => match data.get(at) {
                Some(byte) => TagValue::Atomic(Value::Bool(byte & (1 << b) != 0)),
                None => TagValue::Raw(Vec::new()),
            },
            MemberType::Atomic(t) => {
                let size = t.size().unwrap_or(1);
                let n = m.count();
                let bytes = data.get(at..at + size * n).unwrap_or_default();
                let mut vals = decode_atomics(t, bytes);
                if m.type_code & template_type::ARRAY != 0 {
                    TagValue::Array(vals)
                } else {
                    vals.pop().unwrap_or(TagValue::Raw(Vec::new()))
                }
            }
            MemberType::Struct(id) => match templates.by_id(id) {
                Some(inner) if inner.size > 0 => {
                    let size = inner.size as usize;
                    let n = m.count();
                    let one = |i: usize| {
                        let from = at + i * size;
                        data.get(from..from + size)
                            .map_or(TagValue::Raw(Vec::new()), |b| {
                                decode_struct(inner, b, templates, depth + 1)
                            })
                    };
                    if m.type_code & template_type::ARRAY != 0 {
                        TagValue::Array((0..n).map(one).collect())
                    } else {
                        one(0)
                    }
                }
                _ => TagValue::Raw(Vec::new()),
            },
            MemberType::Other(_) => TagValue::Raw(Vec::new()),
        };
        members.push((m.name.clone(), v));
    }
    TagValue::Struct {
        type_name: tpl.display_name().to_string(),
        members,
    }
}

/// A string structure of any length (`STRING`, `STRING20`...): DINT LEN, SINT DATA[n].
fn string_struct(tpl: &Template, data: &[u8]) -> TagValue {
    let visible: Vec<&Member> = tpl.members.iter().filter(|m| !m.hidden()).collect();
    let (Some(len_m), Some(data_m)) = (visible.first(), visible.get(1)) else {
        return TagValue::Raw(data.to_vec());
    };
    let at = len_m.offset as usize;
    let len = data
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, i32::from_le_bytes);
    let cap = data_m.count();
    let n = usize::try_from(len).unwrap_or(0).min(cap);
    let from = data_m.offset as usize;
    match data.get(from..from + n) {
        Some(chars) => TagValue::String(pyfmt::latin1(chars)),
        None => TagValue::Raw(data.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point() -> Template {
        Template {
            id: 0x101,
            handle: 0xABCD,
            name: "Point".into(),
            size: 12,
            members: vec![
                Member {
                    name: "ZZZZZZZZZZPoint0".into(),
                    info: 0,
                    type_code: 0xC2,
                    offset: 0,
                },
                Member {
                    name: "On".into(),
                    info: 3,
                    type_code: 0xC1,
                    offset: 0,
                },
                Member {
                    name: "X".into(),
                    info: 0,
                    type_code: 0xCA,
                    offset: 4,
                },
                Member {
                    name: "H".into(),
                    info: 2,
                    type_code: 0x20C3,
                    offset: 8,
                },
            ],
        }
    }

    #[test]
    fn structures_decode_from_templates() {
        let mut t = Templates::default();
        t.insert(point());
        let mut data = vec![0b1000, 0, 0, 0];
        data.extend(1.5f32.to_le_bytes());
        data.extend([7, 0, 0xFF, 0xFF]);
        let v = decode(WireType::Struct(0xABCD), &data, &t);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].repr(), "{'On': True, 'X': 1.5, 'H': [7, -1]}");
        // Unknown handle: raw, as cpppo prints it.
        let v = decode(WireType::Struct(0x1234), &[1, 2], &t);
        assert_eq!(v[0].repr(), "{'input': array('B', [1, 2])}");
    }

    #[test]
    fn logix_strings_decode_without_templates() {
        let mut data = vec![5, 0, 0, 0];
        data.extend(b"hello");
        data.resize(88, 0);
        let v = decode(
            WireType::Struct(LOGIX_STRING_HANDLE),
            &data,
            &Templates::default(),
        );
        assert_eq!(v, vec![TagValue::String("hello".into())]);
    }

    #[test]
    fn atomics_decode() {
        let v = decode(
            WireType::Atomic(DataType::Real),
            &1.1f32.to_le_bytes(),
            &Templates::default(),
        );
        assert_eq!(v[0].repr(), "1.100000023841858");
        let v = decode(
            WireType::Atomic(DataType::ShortString),
            &[2, b'a', b'b', 0],
            &Templates::default(),
        );
        assert_eq!(pyfmt::list(v.iter().map(TagValue::repr)), "['ab', '']");
    }
}
