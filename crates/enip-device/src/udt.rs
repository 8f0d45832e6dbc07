//! User-defined structures (UDTs): definitions as a configuration writes them, laid out
//! as a Logix controller (firmware 27 and later) lays them out, and the Template object
//! (0x6C) data clients upload to decode them.

use std::collections::HashMap;

use enip_proto::services::{template_type, TemplateDefinition, TemplateMember};
use enip_proto::types::{DataType, LOGIX_STRING_CHARS, LOGIX_STRING_HANDLE};

use crate::tag::{check_ident, ElementType, SpecError};

/// A structure definition as a configuration file writes it. Member types are text:
/// `DINT`, `DINT[10]`, `BOOL`, `BOOL[64]`, `STRING`, or a structure defined before this one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UdtDef {
    pub name: String,
    pub members: Vec<MemberDef>,
}

/// One member of a [`UdtDef`]: a name and a type, `TYPE` or `TYPE[n]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDef {
    pub name: String,
    pub ty: String,
}

impl UdtDef {
    /// `UdtDef::new("Motor", &[("Speed", "REAL"), ("Hist", "DINT[10]")])`.
    pub fn new(name: &str, members: &[(&str, &str)]) -> Self {
        Self {
            name: name.to_owned(),
            members: members
                .iter()
                .map(|(n, t)| MemberDef {
                    name: (*n).to_owned(),
                    ty: (*t).to_owned(),
                })
                .collect(),
        }
    }
}

/// A structure type as tags and members refer to it; fixed once defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StructType {
    /// The Template object instance: the low 12 bits of the symbol type word.
    pub template: u16,
    /// The structure handle: `A0 02 hh hh` in reads and writes, Template attribute 1.
    pub handle: u16,
    /// Bytes of one element.
    pub size: u32,
}

/// One member of a structure's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Byte offset in the structure; for a BOOL, the offset of its host byte.
    pub offset: u32,
    pub kind: MemberKind,
    /// The SINT Logix adds to hold BOOL members. Clients hide it; paths cannot name it.
    pub hidden: bool,
}

/// What a member holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// One element, or `Some(n)` of them (a BOOL array is held as DWORDs, as in tags).
    Data {
        elem: ElementType,
        count: Option<u16>,
    },
    /// A BOOL: this bit of the host byte.
    Bit(u8),
}

impl MemberKind {
    fn bytes(self) -> usize {
        match self {
            Self::Data { elem, count } => {
                elem.size().saturating_mul(usize::from(count.unwrap_or(1)))
            }
            Self::Bit(_) => 0,
        }
    }
}

/// A structure type: its layout and its template.
#[derive(Debug, Clone)]
pub struct Udt {
    pub name: String,
    pub ty: StructType,
    /// In template order, hidden hosts included.
    pub members: Vec<Member>,
    /// 8 when an 8-byte value is inside: the structure then starts on an 8-byte boundary
    /// wherever it is a member.
    align: usize,
    /// A STRING is somewhere inside (writes check every STRING's LEN).
    holds_strings: bool,
    definition: Vec<u8>,
    definition_words: u32,
}

impl Udt {
    /// A visible member by name, any case.
    pub fn member(&self, name: &[u8]) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| !m.hidden && m.name.as_bytes().eq_ignore_ascii_case(name))
    }

    /// The Read Template data: member entries, then the names.
    pub fn definition(&self) -> &[u8] {
        &self.definition
    }

    /// Template attribute 4: the definition size in 32-bit words.
    pub fn definition_words(&self) -> u32 {
        self.definition_words
    }

    /// Template attribute 2: members in the template, hidden hosts included.
    pub fn member_count(&self) -> u16 {
        u16::try_from(self.members.len()).unwrap_or(u16::MAX)
    }
}

/// Largest structure, in bytes.
pub const MAX_UDT_SIZE: u32 = 2 * 1024 * 1024;
/// Most members one definition may declare.
pub const MAX_MEMBERS: usize = 512;

/// Template ids of user types, as Logix allocates them: 0x100..=0xEFF (pycomm3 treats
/// ids outside that range as predefined types).
const FIRST_TEMPLATE: u16 = 0x100;
const LAST_TEMPLATE: u16 = 0xEFF;

/// Logix names a BOOL host `ZZZZZZZZZZ` + the first 10 characters of the type name + the
/// host's index in the template (`ZZZZZZZZZZpycomm3_At0` in pycomm3's test controller).
const HOST_PREFIX: &str = "ZZZZZZZZZZ";
const HOST_NAME_CHARS: usize = 10;

/// The builtin STRING's template name.
const STRING_TEMPLATE_NAME: &str = "ASCIISTRING82";

/// Every structure type: the builtin STRING and those defined, by name (any case) and by
/// template id.
#[derive(Debug, Clone)]
pub struct Udts {
    types: Vec<Udt>,
    by_name: HashMap<String, usize>,
    by_template: HashMap<u16, usize>,
    next_template: u16,
}

impl Default for Udts {
    fn default() -> Self {
        let mut udts = Self {
            types: Vec::new(),
            by_name: HashMap::new(),
            by_template: HashMap::new(),
            next_template: FIRST_TEMPLATE,
        };
        udts.insert(string_udt());
        udts
    }
}

/// The builtin STRING: LEN DINT @0, DATA SINT[82] @4, 88 bytes, handle = id = 0x0FCE.
fn string_udt() -> Udt {
    let mut l = Layout::new("STRING");
    l.data("LEN", ElementType::Atomic(DataType::Dint), None, 4);
    let chars = u16::try_from(LOGIX_STRING_CHARS).unwrap_or(0);
    l.data("DATA", ElementType::Atomic(DataType::Sint), Some(chars), 1);
    let size = l.size();
    let members = l.members;
    let (definition, definition_words) = definition(STRING_TEMPLATE_NAME.as_bytes(), &members);
    Udt {
        name: "STRING".to_owned(),
        ty: StructType {
            template: LOGIX_STRING_HANDLE,
            handle: LOGIX_STRING_HANDLE,
            size: u32::try_from(size).unwrap_or(0),
        },
        members,
        align: 4,
        holds_strings: false,
        definition,
        definition_words,
    }
}

impl Udts {
    fn insert(&mut self, u: Udt) {
        let i = self.types.len();
        self.by_name.insert(u.name.to_ascii_lowercase(), i);
        self.by_template.insert(u.ty.template, i);
        self.types.push(u);
    }

    /// A structure by name, any case (`STRING` included).
    pub fn get(&self, name: &str) -> Option<&Udt> {
        let i = self.by_name.get(&name.to_ascii_lowercase())?;
        self.types.get(*i)
    }

    /// A structure by Template object instance.
    pub fn by_template(&self, id: u16) -> Option<&Udt> {
        let i = self.by_template.get(&id)?;
        self.types.get(*i)
    }

    /// The layout of a structured element type; `None` for atomics.
    pub fn layout(&self, elem: ElementType) -> Option<&Udt> {
        match elem {
            ElementType::Atomic(_) | ElementType::ShortString => None,
            ElementType::LogixString => self.by_template(LOGIX_STRING_HANDLE),
            ElementType::Struct(s) => self.by_template(s.template),
        }
    }

    /// The user-defined structures, in definition order.
    pub fn iter(&self) -> impl Iterator<Item = &Udt> {
        self.types
            .iter()
            .filter(|u| u.ty.template != LOGIX_STRING_HANDLE)
    }

    /// The element type a type name means: an atomic type, STRING, or a structure.
    pub fn element_type(&self, name: &str) -> Option<ElementType> {
        if name.eq_ignore_ascii_case("STRING") {
            return Some(ElementType::LogixString);
        }
        if let Some(t) = DataType::from_name(name).filter(|t| t.size().is_some()) {
            return Some(ElementType::Atomic(t));
        }
        self.get(name).map(|u| ElementType::Struct(u.ty))
    }

    /// The type names an error message lists.
    pub(crate) fn known(&self) -> String {
        let mut s =
            String::from("BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING");
        let mut udts = self.iter().peekable();
        if udts.peek().is_some() {
            s.push_str(", structures:");
            for u in udts {
                s.push(' ');
                s.push_str(&u.name);
            }
        }
        s
    }

    /// Define a structure. Member types must be atomic, STRING, or structures defined
    /// before, so definitions cannot be recursive.
    pub fn define(&mut self, def: &UdtDef) -> Result<StructType, SpecError> {
        let name = def.name.trim();
        check_ident(name).map_err(|why| SpecError::BadTypeName {
            name: name.to_owned(),
            why,
        })?;
        if self.element_type(name).is_some() || DataType::from_name(name).is_some() {
            return Err(SpecError::DuplicateType(name.to_owned()));
        }
        if def.members.is_empty() {
            return Err(SpecError::EmptyStruct(name.to_owned()));
        }
        let too_large = |why: String| SpecError::StructTooLarge {
            udt: name.to_owned(),
            why,
        };
        if def.members.len() > MAX_MEMBERS {
            return Err(too_large(format!(
                "{} members (at most {MAX_MEMBERS})",
                def.members.len()
            )));
        }
        let mut layout = Layout::new(name);
        let mut holds_strings = false;
        for m in &def.members {
            let member = m.name.trim();
            let bad = |why| SpecError::BadMember {
                udt: name.to_owned(),
                member: member.to_owned(),
                why,
            };
            check_ident(member).map_err(bad)?;
            let (base, count) = split_member_type(m.ty.trim()).map_err(bad)?;
            if base.eq_ignore_ascii_case(name) {
                return Err(SpecError::RecursiveStruct {
                    udt: name.to_owned(),
                    member: member.to_owned(),
                });
            }
            let elem = self
                .element_type(base)
                .ok_or_else(|| SpecError::UnknownMemberType {
                    udt: name.to_owned(),
                    member: member.to_owned(),
                    ty: base.to_owned(),
                    known: self.known(),
                })?;
            holds_strings |= match elem {
                ElementType::LogixString => true,
                ElementType::Struct(s) => self
                    .by_template(s.template)
                    .is_some_and(|u| u.holds_strings),
                ElementType::Atomic(_) | ElementType::ShortString => false,
            };
            match (elem, count) {
                (ElementType::Atomic(DataType::Bool), None) => layout.bit(member),
                (ElementType::Atomic(DataType::Bool), Some(bits)) => {
                    // Logix holds BOOL arrays as DWORDs, 32 bits each.
                    let dwords = u16::try_from(u32::from(bits).div_ceil(32)).unwrap_or(u16::MAX);
                    layout.data(
                        member,
                        ElementType::Atomic(DataType::Dword),
                        Some(dwords),
                        4,
                    )
                }
                (e, c) => layout.data(member, e, c, self.align_of(e)),
            }
        }
        let size = layout.size();
        if size > MAX_UDT_SIZE as usize {
            return Err(too_large(format!("{size} bytes (at most {MAX_UDT_SIZE})")));
        }
        let mut seen = HashMap::new();
        for m in &layout.members {
            if seen.insert(m.name.to_ascii_lowercase(), ()).is_some() {
                return Err(SpecError::DuplicateMember {
                    udt: name.to_owned(),
                    member: m.name.clone(),
                });
            }
        }
        let template = self.allocate_template().ok_or(SpecError::TooManyStructs)?;
        let align = layout.align.max(4);
        let members = layout.members;
        let mut type_name = format!("{name};n").into_bytes();
        // Two letters per member follow `;n` (a v32 controller sent `my_UDT;nHAEA` for two
        // members); pylogix reads them and fails when they are missing.
        for _ in &members {
            type_name.extend_from_slice(b"EA");
        }
        let (definition, definition_words) = definition(&type_name, &members);
        let handle = self.unique_handle(crc16(&definition));
        let ty = StructType {
            template,
            handle,
            size: u32::try_from(size).unwrap_or(MAX_UDT_SIZE),
        };
        self.insert(Udt {
            name: name.to_owned(),
            ty,
            members,
            align,
            holds_strings,
            definition,
            definition_words,
        });
        Ok(ty)
    }

    fn align_of(&self, elem: ElementType) -> usize {
        match elem {
            ElementType::Atomic(t) => t.size().unwrap_or(1),
            ElementType::ShortString => 1,
            ElementType::LogixString => 4,
            ElementType::Struct(s) => self.by_template(s.template).map_or(4, |u| u.align),
        }
    }

    /// The next free template id. Ids whose low byte is 0 or 0xA0 and above are skipped:
    /// pylogix takes a member type's low byte for an atomic type code when it knows it,
    /// and then never uploads the nested template.
    fn allocate_template(&mut self) -> Option<u16> {
        let mut id = self.next_template;
        while id <= LAST_TEMPLATE {
            let low = id & 0xFF;
            if low != 0 && low < 0xA0 && !self.by_template.contains_key(&id) {
                self.next_template = id + 1;
                return Some(id);
            }
            id += 1;
        }
        None
    }

    /// `handle`, or the next value no other structure uses (Logix's handle is a CRC of the
    /// definition; two equal handles would let a write of one type land in the other).
    fn unique_handle(&self, mut handle: u16) -> u16 {
        while handle == 0 || self.types.iter().any(|u| u.ty.handle == handle) {
            handle = handle.wrapping_add(1);
        }
        handle
    }

    /// Every Logix STRING inside `data` (elements of `elem`) has a LEN of 0..=82.
    pub(crate) fn strings_valid(&self, elem: ElementType, data: &[u8]) -> bool {
        match elem {
            ElementType::Atomic(_) | ElementType::ShortString => true,
            ElementType::LogixString => data.chunks(elem.size()).all(|c| {
                c.get(..4)
                    .and_then(|l| <[u8; 4]>::try_from(l).ok())
                    .map(i32::from_le_bytes)
                    .and_then(|n| usize::try_from(n).ok())
                    .is_some_and(|n| n <= LOGIX_STRING_CHARS)
            }),
            ElementType::Struct(s) => {
                let Some(u) = self.by_template(s.template).filter(|u| u.holds_strings) else {
                    return true;
                };
                data.chunks(elem.size().max(1)).all(|e| {
                    u.members.iter().all(|m| match m.kind {
                        MemberKind::Data {
                            elem: inner @ (ElementType::LogixString | ElementType::Struct(_)),
                            ..
                        } => {
                            let from = m.offset as usize;
                            e.get(from..from + m.kind.bytes())
                                .is_none_or(|b| self.strings_valid(inner, b))
                        }
                        _ => true,
                    })
                })
            }
        }
    }
}

/// `TYPE` or `TYPE[n]`: members have one dimension of 1..=65535 (the template's count is
/// a UINT).
fn split_member_type(ty: &str) -> Result<(&str, Option<u16>), &'static str> {
    let Some((base, rest)) = ty.split_once('[') else {
        return Ok((ty, None));
    };
    let inner = rest.strip_suffix(']').ok_or("missing `]` in its type")?;
    if inner.contains(',') {
        return Err("a member array has one dimension");
    }
    let n: u16 = inner
        .trim()
        .parse()
        .map_err(|_| "its dimension must be a number from 1 to 65535")?;
    if n == 0 {
        return Err("its dimension must be a number from 1 to 65535");
    }
    Ok((base.trim(), Some(n)))
}

/// Members placed as Logix places them: each on its natural boundary (a structure on 4,
/// or 8 when it holds an 8-byte value), consecutive BOOLs packed eight to a hidden SINT.
#[derive(Debug)]
struct Layout {
    /// Up to 10 characters of the type name, for host names.
    short: String,
    offset: usize,
    align: usize,
    members: Vec<Member>,
    /// The open BOOL host: its offset and the next free bit.
    host: Option<(u32, u8)>,
}

impl Layout {
    fn new(name: &str) -> Self {
        Self {
            short: name.chars().take(HOST_NAME_CHARS).collect(),
            offset: 0,
            align: 1,
            members: Vec::new(),
            host: None,
        }
    }

    fn offset(&self) -> u32 {
        // Bounded by MAX_MEMBERS × the largest member; checked against MAX_UDT_SIZE after.
        u32::try_from(self.offset).unwrap_or(u32::MAX)
    }

    fn bit(&mut self, name: &str) {
        let (offset, bit) = match self.host {
            Some((offset, bit)) if bit < 8 => (offset, bit),
            _ => {
                let offset = self.offset();
                self.members.push(Member {
                    name: format!("{HOST_PREFIX}{}{}", self.short, self.members.len()),
                    offset,
                    kind: MemberKind::Data {
                        elem: ElementType::Atomic(DataType::Sint),
                        count: None,
                    },
                    hidden: true,
                });
                self.offset += 1;
                (offset, 0)
            }
        };
        self.host = Some((offset, bit + 1));
        self.members.push(Member {
            name: name.to_owned(),
            offset,
            kind: MemberKind::Bit(bit),
            hidden: false,
        });
    }

    fn data(&mut self, name: &str, elem: ElementType, count: Option<u16>, align: usize) {
        self.host = None;
        self.offset = self.offset.next_multiple_of(align);
        self.align = self.align.max(align);
        let kind = MemberKind::Data { elem, count };
        self.members.push(Member {
            name: name.to_owned(),
            offset: self.offset(),
            kind,
            hidden: false,
        });
        self.offset = self.offset.saturating_add(kind.bytes());
    }

    /// The structure's size: a whole number of 4-byte words, or of 8-byte words when an
    /// 8-byte value is inside.
    fn size(&self) -> usize {
        self.offset.next_multiple_of(self.align.max(4))
    }
}

/// The Read Template data and its size in words (Template attribute 4).
///
/// Logix reports `ceil((bytes + 20) / 4)` words for `bytes` of member entries and names
/// (pycomm3's test controller: 141 bytes, 41 words; 120 bytes, 35 words). The data is
/// zero-padded to `words * 4 - 20` bytes so that both clients' byte counts read it whole
/// in one request: pycomm3 asks `words * 4 - 21` (it loses at most the last NUL), pylogix
/// `ceil((words * 4 - 23) / 4) * 4`.
fn definition(type_name: &[u8], members: &[Member]) -> (Vec<u8>, u32) {
    let def = TemplateDefinition {
        members: members.iter().map(template_member).collect(),
        name: type_name,
        member_names: members.iter().map(|m| m.name.as_bytes()).collect(),
    };
    let mut blob = Vec::new();
    let _ = def.encode(&mut blob);
    let words = (blob.len() + 20).div_ceil(4);
    blob.resize(words * 4 - 20, 0);
    (blob, u32::try_from(words).unwrap_or(u32::MAX))
}

fn template_member(m: &Member) -> TemplateMember {
    let (info, type_code) = match m.kind {
        MemberKind::Bit(bit) => (u16::from(bit), u16::from(DataType::Bool.code())),
        MemberKind::Data { elem, count } => {
            let code = match elem {
                ElementType::Atomic(t) => u16::from(t.code()),
                ElementType::ShortString => u16::from(DataType::ShortString.code()),
                ElementType::LogixString => template_type::STRUCT | LOGIX_STRING_HANDLE,
                ElementType::Struct(s) => template_type::STRUCT | s.template,
            };
            match count {
                Some(n) => (n, code | template_type::ARRAY),
                None => (0, code),
            }
        }
    };
    TemplateMember {
        info,
        type_code,
        offset: m.offset,
    }
}

/// CRC-16/CCITT-FALSE: Logix's handle is a CRC of the definition; any stable value works.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}
