//! Service bodies, request and reply, for every service Logix clients use. Each body
//! type decodes from the service data of a [`crate::Request`] or [`crate::Reply`] and
//! encodes back to it exactly.

use crate::error::{DecodeError, DecodeResult, EncodeResult, ErrorKind};
use crate::mr::{Reply, Request, ServiceKind};
use crate::path::EPath;
use crate::status::GeneralStatus;
use crate::types::TypeTag;
use crate::wire::{short_len, Reader, Writer};

/// A service body: decode from service data, encode back.
pub trait Body<'a>: Sized {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self>;
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult;

    /// Decode a body that fills `data` exactly.
    fn from_bytes(data: &'a [u8]) -> DecodeResult<Self> {
        let mut r = Reader::new(data);
        let b = Self::decode(&mut r)?;
        r.finish("service data")?;
        Ok(b)
    }

    fn to_vec(&self) -> EncodeResult<Vec<u8>> {
        let mut v = Vec::with_capacity(64);
        self.encode(&mut v)?;
        Ok(v)
    }
}

// --------------------------------------------------------------------------------------
// Tag services

/// Read Tag 0x4C request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTag {
    pub elements: u16,
}

impl<'a> Body<'a> for ReadTag {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        Ok(Self {
            elements: r.u16("element count")?,
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        out.put_u16(self.elements);
        Ok(())
    }
}

/// Read Tag Fragmented 0x52 request: total element count and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTagFragmented {
    pub elements: u16,
    pub offset: u32,
}

impl<'a> Body<'a> for ReadTagFragmented {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        Ok(Self {
            elements: r.u16("element count")?,
            offset: r.u32("byte offset")?,
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        out.put_u16(self.elements);
        out.put_u32(self.offset);
        Ok(())
    }
}

/// Read Tag / Read Tag Fragmented reply data: the type, then the element bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagData<'a> {
    pub type_tag: TypeTag<'a>,
    pub data: &'a [u8],
}

impl<'a> Body<'a> for TagData<'a> {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        Ok(Self {
            type_tag: TypeTag::decode(r)?,
            data: r.rest(),
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        self.type_tag.encode(out)?;
        out.put_bytes(self.data);
        Ok(())
    }
}

/// Write Tag 0x4D request. `data` is everything after the count: a server reads exactly
/// count × element size from it and ignores the rest (pycomm3 and libplctag send extra).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteTag<'a> {
    pub type_tag: TypeTag<'a>,
    pub elements: u16,
    pub data: &'a [u8],
}

impl<'a> Body<'a> for WriteTag<'a> {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        Ok(Self {
            type_tag: TypeTag::decode(r)?,
            elements: r.u16("element count")?,
            data: r.rest(),
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        self.type_tag.encode(out)?;
        out.put_u16(self.elements);
        out.put_bytes(self.data);
        Ok(())
    }
}

/// Write Tag Fragmented 0x53 request: type, total element count, byte offset, chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteTagFragmented<'a> {
    pub type_tag: TypeTag<'a>,
    pub elements: u16,
    pub offset: u32,
    pub data: &'a [u8],
}

impl<'a> Body<'a> for WriteTagFragmented<'a> {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        Ok(Self {
            type_tag: TypeTag::decode(r)?,
            elements: r.u16("element count")?,
            offset: r.u32("byte offset")?,
            data: r.rest(),
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        self.type_tag.encode(out)?;
        out.put_u16(self.elements);
        out.put_u32(self.offset);
        out.put_bytes(self.data);
        Ok(())
    }
}

/// Read-Modify-Write 0x4E request: `new = (old & and_mask) | or_mask`. The masks are
/// `mask size` bytes each; bytes after them are ignored (pycomm3 sends an 8-byte AND mask
/// whatever the size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadModifyWrite<'a> {
    pub or_mask: &'a [u8],
    pub and_mask: &'a [u8],
    /// Bytes after the masks, kept so the request re-encodes exactly; a server ignores
    /// them.
    pub extra: &'a [u8],
}

/// Largest RMW mask accepted: an LWORD.
pub const MAX_MASK: usize = 8;

impl<'a> Body<'a> for ReadModifyWrite<'a> {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let at = r.offset();
        let n = usize::from(r.u16("mask size")?);
        if n == 0 || n > MAX_MASK {
            return Err(DecodeError::new(
                ErrorKind::Invalid {
                    what: "mask size",
                    value: n as u64,
                },
                at,
            ));
        }
        let or_mask = r.bytes(n, "OR mask")?;
        let and_mask = r.bytes(n, "AND mask")?;
        Ok(Self {
            or_mask,
            and_mask,
            extra: r.rest(),
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        if self.or_mask.len() != self.and_mask.len() {
            return Err(crate::EncodeError {
                what: "RMW masks of different sizes",
                value: self.and_mask.len(),
                max: self.or_mask.len(),
            });
        }
        out.put_u16(u16::try_from(self.or_mask.len()).unwrap_or(u16::MAX));
        out.put_bytes(self.or_mask);
        out.put_bytes(self.and_mask);
        out.put_bytes(self.extra);
        Ok(())
    }
}

// --------------------------------------------------------------------------------------
// Multiple Service Packet

/// Multiple Service Packet 0x0A, request or reply: a count, offsets from the count field,
/// and the embedded Message Router messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Multiple<'a> {
    pub messages: Vec<&'a [u8]>,
}

impl<'a> Multiple<'a> {
    /// The embedded requests, decoded.
    pub fn requests(&self) -> impl Iterator<Item = DecodeResult<Request<'a>>> + '_ {
        self.messages.iter().map(|m| Request::decode(m))
    }
    /// The embedded replies, decoded.
    pub fn replies(&self) -> impl Iterator<Item = DecodeResult<Reply<'a>>> + '_ {
        self.messages.iter().map(|m| Reply::decode(m))
    }
}

impl<'a> Body<'a> for Multiple<'a> {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let base = r.offset();
        let all = r.rest();
        let mut h = Reader::with_base(all, base);
        let count = usize::from(h.u16("service count")?);
        let table_end = 2 + 2 * count;
        if table_end > all.len() {
            return Err(DecodeError::new(
                ErrorKind::Truncated {
                    what: "service offsets",
                    needed: table_end - all.len(),
                },
                base + 2,
            ));
        }
        let mut offsets = Vec::with_capacity(count);
        for _ in 0..count {
            let at = h.offset();
            let off = usize::from(h.u16("service offset")?);
            let prev = offsets.last().copied().unwrap_or(table_end);
            if off < prev || off > all.len() {
                return Err(DecodeError::new(
                    ErrorKind::Invalid {
                        what: "service offset",
                        value: off as u64,
                    },
                    at,
                ));
            }
            offsets.push(off);
        }
        let mut messages = Vec::with_capacity(count);
        for (i, &start) in offsets.iter().enumerate() {
            let end = offsets.get(i + 1).copied().unwrap_or(all.len());
            messages.push(all.get(start..end).unwrap_or_default());
        }
        Ok(Self { messages })
    }

    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        let n = self.messages.len();
        let at = out.placeholder_u16();
        out.patch_u16(at, "service count", n)?;
        let mut off = 2 + 2 * n;
        for m in &self.messages {
            let slot = out.placeholder_u16();
            out.patch_u16(slot, "service offset", off)?;
            off += m.len();
        }
        for m in &self.messages {
            out.put_bytes(m);
        }
        Ok(())
    }
}

// --------------------------------------------------------------------------------------
// Attribute services

/// Attribute id lists: Get Attribute List 0x03 and Get Instance Attribute List 0x55
/// requests (`UINT count, UINT ids...`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttributeIds(pub Vec<u16>);

impl<'a> Body<'a> for AttributeIds {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let at = r.offset();
        let n = usize::from(r.u16("attribute count")?);
        if n * 2 > r.remaining() {
            return Err(DecodeError::new(
                ErrorKind::Truncated {
                    what: "attribute ids",
                    needed: n * 2 - r.remaining(),
                },
                at + 2,
            ));
        }
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(r.u16("attribute id")?);
        }
        Ok(Self(ids))
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        let at = out.placeholder_u16();
        out.patch_u16(at, "attribute count", self.0.len())?;
        for id in &self.0 {
            out.put_u16(*id);
        }
        Ok(())
    }
}

/// One entry of a Get Attribute List reply (or Set Attribute List request / reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeEntry<'a> {
    pub id: u16,
    /// Per-attribute status; absent in a Set Attribute List request.
    pub status: Option<u16>,
    /// The value: present in Get replies with status 0 and in Set requests.
    pub value: &'a [u8],
}

/// Get Attribute List reply, Set Attribute List request and reply. The value sizes are
/// not on the wire: the decoder asks `size_of(attribute id)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttributeList<'a> {
    pub entries: Vec<AttributeEntry<'a>>,
}

/// The shape of an attribute list body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeListForm {
    /// Get Attribute List reply: id, status, value when status is 0.
    GetReply,
    /// Set Attribute List request: id, value.
    SetRequest,
    /// Set Attribute List reply: id, status.
    SetReply,
}

impl<'a> AttributeList<'a> {
    pub fn decode_with(
        r: &mut Reader<'a>,
        form: AttributeListForm,
        size_of: impl Fn(u16) -> Option<usize>,
    ) -> DecodeResult<Self> {
        let n = usize::from(r.u16("attribute count")?);
        let mut entries = Vec::with_capacity(n.min(r.remaining() / 4));
        for _ in 0..n {
            let at = r.offset();
            let id = r.u16("attribute id")?;
            let status = match form {
                AttributeListForm::SetRequest => None,
                _ => Some(r.u16("attribute status")?),
            };
            let has_value = match form {
                AttributeListForm::GetReply => status == Some(0),
                AttributeListForm::SetRequest => true,
                AttributeListForm::SetReply => false,
            };
            let value = if has_value {
                let size = size_of(id).ok_or_else(|| {
                    DecodeError::new(
                        ErrorKind::Unsupported {
                            what: "attribute (size unknown)",
                            value: id.into(),
                        },
                        at,
                    )
                })?;
                r.bytes(size, "attribute value")?
            } else {
                &[]
            };
            entries.push(AttributeEntry { id, status, value });
        }
        Ok(Self { entries })
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        let at = out.placeholder_u16();
        out.patch_u16(at, "attribute count", self.entries.len())?;
        for e in &self.entries {
            out.put_u16(e.id);
            if let Some(s) = e.status {
                out.put_u16(s);
            }
            out.put_bytes(e.value);
        }
        Ok(())
    }

    pub fn get(&self, id: u16) -> Option<&AttributeEntry<'a>> {
        self.entries.iter().find(|e| e.id == id)
    }
}

/// Sizes of Template object (0x6C) attributes: 1 handle UINT, 2 member count UINT,
/// 3 UINT, 4 definition size UDINT (32-bit words), 5 structure size UDINT.
///
/// Attribute 3 is a UINT because pylogix, which asks for `[4, 3, 2, 1]`, reads the member
/// count at the fixed offset that a 2-byte attribute 3 puts it at; with 4 bytes it reads
/// a status word and sees no members.
pub fn template_attribute_size(id: u16) -> Option<usize> {
    match id {
        1..=3 => Some(2),
        4 | 5 => Some(4),
        _ => None,
    }
}

/// Sizes of wall clock (0x8B) attributes: 1..5 UINT/UDINT fields Logix has, 6 the ULINT
/// microseconds since 1970 (`01 00 0B 00` returns 6 bytes before the ULINT).
pub fn wall_clock_attribute_size(id: u16) -> Option<usize> {
    match id {
        1 | 11 => Some(8),
        6 => Some(8),
        _ => None,
    }
}

// --------------------------------------------------------------------------------------
// Symbol object: Get Instance Attribute List reply

/// One symbol attribute value in a Get Instance Attribute List reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolAttr<'a> {
    /// 1: name, UINT length + characters.
    Name(&'a [u8]),
    /// 2: symbol type word.
    Type(u16),
    /// 3: symbol address.
    Address(u32),
    /// 5: symbol object address.
    ObjectAddress(u32),
    /// 6: software control.
    SoftwareControl(u32),
    /// 7: element size in bytes.
    ElementSize(u16),
    /// 8: array dimensions.
    Dimensions([u32; 3]),
    /// 10: external access.
    ExternalAccess(u8),
}

impl<'a> SymbolAttr<'a> {
    pub fn id(&self) -> u16 {
        match self {
            Self::Name(_) => 1,
            Self::Type(_) => 2,
            Self::Address(_) => 3,
            Self::ObjectAddress(_) => 5,
            Self::SoftwareControl(_) => 6,
            Self::ElementSize(_) => 7,
            Self::Dimensions(_) => 8,
            Self::ExternalAccess(_) => 10,
        }
    }

    fn decode(id: u16, r: &mut Reader<'a>) -> DecodeResult<Self> {
        Ok(match id {
            1 => {
                let n = r.u16("symbol name length")?;
                Self::Name(r.bytes(usize::from(n), "symbol name")?)
            }
            2 => Self::Type(r.u16("symbol type")?),
            3 => Self::Address(r.u32("symbol address")?),
            5 => Self::ObjectAddress(r.u32("symbol object address")?),
            6 => Self::SoftwareControl(r.u32("software control")?),
            7 => Self::ElementSize(r.u16("element size")?),
            8 => Self::Dimensions([
                r.u32("dimension 0")?,
                r.u32("dimension 1")?,
                r.u32("dimension 2")?,
            ]),
            10 => Self::ExternalAccess(r.u8("external access")?),
            other => {
                return Err(r.error(ErrorKind::Unsupported {
                    what: "symbol attribute",
                    value: other.into(),
                }))
            }
        })
    }

    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        match *self {
            Self::Name(n) => {
                let at = out.placeholder_u16();
                out.patch_u16(at, "symbol name length", n.len())?;
                out.put_bytes(n);
            }
            Self::Type(v) | Self::ElementSize(v) => out.put_u16(v),
            Self::Address(v) | Self::ObjectAddress(v) | Self::SoftwareControl(v) => out.put_u32(v),
            Self::Dimensions(d) => d.iter().for_each(|x| out.put_u32(*x)),
            Self::ExternalAccess(v) => out.put_u8(v),
        }
        Ok(())
    }
}

/// Symbol type word bits.
pub mod symbol_type {
    pub const STRUCT: u16 = 0x8000;
    pub const DIMS_MASK: u16 = 0x6000;
    pub const DIMS_SHIFT: u16 = 13;
    pub const SYSTEM: u16 = 0x1000;
    pub const TEMPLATE_MASK: u16 = 0x0FFF;
    pub const BIT_POS_MASK: u16 = 0x0700;
    pub const BIT_POS_SHIFT: u16 = 8;
    pub const ATOMIC_MASK: u16 = 0x00FF;
}

/// One symbol instance: its id and the requested attributes, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolEntry<'a> {
    pub instance: u32,
    pub attributes: Vec<SymbolAttr<'a>>,
}

impl<'a> SymbolEntry<'a> {
    pub fn name(&self) -> Option<&'a [u8]> {
        self.attributes.iter().find_map(|a| match a {
            SymbolAttr::Name(n) => Some(*n),
            _ => None,
        })
    }
    pub fn symbol_type(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            SymbolAttr::Type(t) => Some(*t),
            _ => None,
        })
    }
}

/// Get Instance Attribute List reply: entries until the end of the data. The layout
/// depends on the requested attribute ids, which the decoder must be given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SymbolList<'a> {
    pub entries: Vec<SymbolEntry<'a>>,
}

impl<'a> SymbolList<'a> {
    pub fn decode_with(r: &mut Reader<'a>, requested: &[u16]) -> DecodeResult<Self> {
        let mut entries = Vec::new();
        while !r.is_empty() {
            let instance = r.u32("symbol instance")?;
            let mut attributes = Vec::with_capacity(requested.len());
            for id in requested {
                attributes.push(SymbolAttr::decode(*id, r)?);
            }
            entries.push(SymbolEntry {
                instance,
                attributes,
            });
        }
        Ok(Self { entries })
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        for e in &self.entries {
            out.put_u32(e.instance);
            for a in &e.attributes {
                a.encode(out)?;
            }
        }
        Ok(())
    }
}

// --------------------------------------------------------------------------------------
// Template object

/// Read Template request (0x4C on class 0x6C): byte offset and byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTemplate {
    pub offset: u32,
    pub bytes: u16,
}

impl<'a> Body<'a> for ReadTemplate {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        Ok(Self {
            offset: r.u32("template offset")?,
            bytes: r.u16("template byte count")?,
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        out.put_u32(self.offset);
        out.put_u16(self.bytes);
        Ok(())
    }
}

/// Flags of a template member's type word.
pub mod template_type {
    /// The member is an array; its info word is the element count.
    pub const ARRAY: u16 = 0x2000;
    /// The member is a structure whose template instance id is in the low 12 bits.
    pub const STRUCT: u16 = 0x8000;
    pub const TEMPLATE_MASK: u16 = 0x0FFF;
}

/// One member entry of a template definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateMember {
    /// Array length, or the bit number of a BOOL member.
    pub info: u16,
    /// CIP type code, 0x2000 = array, 0x8000|id = nested structure.
    pub type_code: u16,
    /// Byte offset of the member in the structure (of the host SINT for BOOL members).
    pub offset: u32,
}

/// A template definition blob: member entries, then NUL-terminated strings (the type
/// name, `Name;n...` for user types, then one name per member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDefinition<'a> {
    pub members: Vec<TemplateMember>,
    /// The raw first string, e.g. `my_UDT;nHAEA` or `ASCIISTRING82`.
    pub name: &'a [u8],
    pub member_names: Vec<&'a [u8]>,
}

impl<'a> TemplateDefinition<'a> {
    /// Decode a definition of `member_count` members (Template attribute 2).
    pub fn decode(data: &'a [u8], member_count: u16) -> DecodeResult<Self> {
        let mut r = Reader::new(data);
        let n = usize::from(member_count);
        if n * 8 > data.len() {
            return Err(DecodeError::new(
                ErrorKind::Truncated {
                    what: "template member entries",
                    needed: n * 8 - data.len(),
                },
                0,
            ));
        }
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            members.push(TemplateMember {
                info: r.u16("member info")?,
                type_code: r.u16("member type")?,
                offset: r.u32("member offset")?,
            });
        }
        let name = cstring(&mut r, "template name")?;
        let mut member_names = Vec::with_capacity(n);
        for _ in 0..n {
            member_names.push(cstring(&mut r, "member name")?);
        }
        // Anything after the last name is padding.
        r.rest();
        Ok(Self {
            members,
            name,
            member_names,
        })
    }

    /// The type name without the `;...` suffix.
    pub fn type_name(&self) -> &'a [u8] {
        self.name.split(|&c| c == b';').next().unwrap_or(self.name)
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        for m in &self.members {
            out.put_u16(m.info);
            out.put_u16(m.type_code);
            out.put_u32(m.offset);
        }
        out.put_bytes(self.name);
        out.put_u8(0);
        for n in &self.member_names {
            out.put_bytes(n);
            out.put_u8(0);
        }
        Ok(())
    }
}

fn cstring<'a>(r: &mut Reader<'a>, what: &'static str) -> DecodeResult<&'a [u8]> {
    let at = r.offset();
    let rest = r.clone().rest();
    match rest.iter().position(|&c| c == 0) {
        Some(n) => {
            let s = r.bytes(n, what)?;
            r.u8(what)?;
            Ok(s)
        }
        None => Err(DecodeError::new(
            ErrorKind::Truncated { what, needed: 1 },
            at + rest.len(),
        )),
    }
}

// --------------------------------------------------------------------------------------
// Connection Manager

/// Unconnected Send 0x52 request to the Connection Manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnconnectedSend<'a> {
    pub priority_tick: u8,
    pub timeout_ticks: u8,
    /// The embedded Message Router request.
    pub message: &'a [u8],
    /// The route path (port segments); may be empty.
    pub route: EPath<'a>,
    /// The reserved byte after the route path size.
    pub reserved: u8,
}

impl<'a> UnconnectedSend<'a> {
    /// The embedded request, decoded.
    pub fn request(&self) -> DecodeResult<Request<'a>> {
        Request::decode(self.message)
    }
}

impl<'a> Body<'a> for UnconnectedSend<'a> {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let priority_tick = r.u8("priority/tick")?;
        let timeout_ticks = r.u8("timeout ticks")?;
        let len = usize::from(r.u16("embedded message length")?);
        let message = r.bytes(len, "embedded message")?;
        if len % 2 == 1 && !r.is_empty() {
            r.u8("embedded message pad")?;
        }
        // A missing route path is read as empty: some clients omit it for a local target.
        let (route, reserved) = if r.is_empty() {
            (EPath::default(), 0)
        } else {
            let words = usize::from(r.u8("route path size")?);
            let reserved = r.u8("reserved")?;
            let at = r.offset();
            (EPath::new(r.bytes(words * 2, "route path")?, at)?, reserved)
        };
        Ok(Self {
            priority_tick,
            timeout_ticks,
            message,
            route,
            reserved,
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        out.put_u8(self.priority_tick);
        out.put_u8(self.timeout_ticks);
        let at = out.placeholder_u16();
        out.patch_u16(at, "embedded message length", self.message.len())?;
        out.put_bytes(self.message);
        if self.message.len() % 2 == 1 {
            out.put_u8(0);
        }
        out.put_u8(short_len("route path size", self.route.words())?);
        out.put_u8(self.reserved);
        out.put_bytes(self.route.as_bytes());
        Ok(())
    }
}

/// Forward Open network connection parameters, in the 16-bit (0x54) or 32-bit (0x5B)
/// layout. The 32-bit form is the 16-bit one shifted left by 16 with a 16-bit size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetParams {
    pub raw: u32,
    pub large: bool,
}

impl NetParams {
    /// Point-to-point, low priority, variable size: what Logix clients ask for.
    pub fn point_to_point(size: u16, large: bool) -> Self {
        let raw = if large {
            0x4200_0000 | u32::from(size)
        } else {
            0x4200 | u32::from(size & 0x01FF)
        };
        Self { raw, large }
    }
    fn high(&self) -> u32 {
        if self.large {
            self.raw >> 16
        } else {
            self.raw
        }
    }
    /// Connection size in bytes.
    pub fn size(&self) -> u16 {
        if self.large {
            (self.raw & 0xFFFF) as u16
        } else {
            (self.raw & 0x01FF) as u16
        }
    }
    /// 0 null, 1 multicast, 2 point-to-point, 3 reserved.
    pub fn connection_type(&self) -> u8 {
        ((self.high() >> 13) & 3) as u8
    }
    /// 0 low, 1 high, 2 scheduled, 3 urgent.
    pub fn priority(&self) -> u8 {
        ((self.high() >> 10) & 3) as u8
    }
    pub fn variable(&self) -> bool {
        self.high() & 0x0200 != 0
    }
    pub fn redundant_owner(&self) -> bool {
        self.high() & 0x8000 != 0
    }
}

/// Forward Open 0x54 / Large Forward Open 0x5B request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardOpen<'a> {
    /// Large Forward Open (0x5B, 32-bit parameters).
    pub large: bool,
    pub priority_tick: u8,
    pub timeout_ticks: u8,
    pub ot_connection_id: u32,
    pub to_connection_id: u32,
    pub connection_serial: u16,
    pub originator_vendor: u16,
    pub originator_serial: u32,
    pub timeout_multiplier: u8,
    pub reserved: [u8; 3],
    pub ot_rpi: u32,
    pub ot_params: NetParams,
    pub to_rpi: u32,
    pub to_params: NetParams,
    pub transport: u8,
    /// The connection path (no reserved byte after its size).
    pub path: EPath<'a>,
}

impl<'a> ForwardOpen<'a> {
    pub fn service(&self) -> u8 {
        if self.large {
            crate::mr::service::LARGE_FORWARD_OPEN
        } else {
            crate::mr::service::FORWARD_OPEN
        }
    }

    /// Decode; `large` comes from the service code.
    pub fn decode_with(r: &mut Reader<'a>, large: bool) -> DecodeResult<Self> {
        let params = |r: &mut Reader<'a>| -> DecodeResult<NetParams> {
            let raw = if large {
                r.u32("network connection parameters")?
            } else {
                u32::from(r.u16("network connection parameters")?)
            };
            Ok(NetParams { raw, large })
        };
        let priority_tick = r.u8("priority/tick")?;
        let timeout_ticks = r.u8("timeout ticks")?;
        let ot_connection_id = r.u32("O->T connection id")?;
        let to_connection_id = r.u32("T->O connection id")?;
        let connection_serial = r.u16("connection serial")?;
        let originator_vendor = r.u16("originator vendor")?;
        let originator_serial = r.u32("originator serial")?;
        let timeout_multiplier = r.u8("timeout multiplier")?;
        let reserved = r.array("reserved")?;
        let ot_rpi = r.u32("O->T RPI")?;
        let ot_params = params(r)?;
        let to_rpi = r.u32("T->O RPI")?;
        let to_params = params(r)?;
        let transport = r.u8("transport type/trigger")?;
        let path = EPath::decode_sized(r)?;
        Ok(Self {
            large,
            priority_tick,
            timeout_ticks,
            ot_connection_id,
            to_connection_id,
            connection_serial,
            originator_vendor,
            originator_serial,
            timeout_multiplier,
            reserved,
            ot_rpi,
            ot_params,
            to_rpi,
            to_params,
            transport,
            path,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        let params = |out: &mut Vec<u8>, p: NetParams| {
            if self.large {
                out.put_u32(p.raw)
            } else {
                out.put_u16(p.raw as u16)
            }
        };
        out.put_u8(self.priority_tick);
        out.put_u8(self.timeout_ticks);
        out.put_u32(self.ot_connection_id);
        out.put_u32(self.to_connection_id);
        out.put_u16(self.connection_serial);
        out.put_u16(self.originator_vendor);
        out.put_u32(self.originator_serial);
        out.put_u8(self.timeout_multiplier);
        out.put_bytes(&self.reserved);
        out.put_u32(self.ot_rpi);
        params(out, self.ot_params);
        out.put_u32(self.to_rpi);
        params(out, self.to_params);
        out.put_u8(self.transport);
        out.put_u8(short_len("connection path size", self.path.words())?);
        out.put_bytes(self.path.as_bytes());
        Ok(())
    }

    /// The triple that identifies a connection: serial, vendor, originator serial.
    pub fn connection_triad(&self) -> (u16, u16, u32) {
        (
            self.connection_serial,
            self.originator_vendor,
            self.originator_serial,
        )
    }
}

/// Forward Open success reply (0xD4 / 0xDB with status 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardOpenReply<'a> {
    pub ot_connection_id: u32,
    pub to_connection_id: u32,
    pub connection_serial: u16,
    pub originator_vendor: u16,
    pub originator_serial: u32,
    pub ot_api: u32,
    pub to_api: u32,
    pub reserved: u8,
    /// Application reply (a whole number of words).
    pub application: &'a [u8],
}

impl<'a> Body<'a> for ForwardOpenReply<'a> {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let ot_connection_id = r.u32("O->T connection id")?;
        let to_connection_id = r.u32("T->O connection id")?;
        let connection_serial = r.u16("connection serial")?;
        let originator_vendor = r.u16("originator vendor")?;
        let originator_serial = r.u32("originator serial")?;
        let ot_api = r.u32("O->T API")?;
        let to_api = r.u32("T->O API")?;
        let words = usize::from(r.u8("application reply size")?);
        let reserved = r.u8("reserved")?;
        let application = r.bytes(words * 2, "application reply")?;
        Ok(Self {
            ot_connection_id,
            to_connection_id,
            connection_serial,
            originator_vendor,
            originator_serial,
            ot_api,
            to_api,
            reserved,
            application,
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        out.put_u32(self.ot_connection_id);
        out.put_u32(self.to_connection_id);
        out.put_u16(self.connection_serial);
        out.put_u16(self.originator_vendor);
        out.put_u32(self.originator_serial);
        out.put_u32(self.ot_api);
        out.put_u32(self.to_api);
        put_words(out, self.application)?;
        out.put_u8(self.reserved);
        out.put_bytes(self.application);
        Ok(())
    }
}

fn put_words(out: &mut Vec<u8>, data: &[u8]) -> EncodeResult {
    if data.len() % 2 == 1 {
        return Err(crate::EncodeError {
            what: "application reply (odd length)",
            value: data.len(),
            max: data.len() - 1,
        });
    }
    out.put_u8(short_len("application reply size", data.len() / 2)?);
    Ok(())
}

/// Forward Open / Forward Close failure reply data, and the Unconnected Send failure
/// data's leading fields: the connection triad, remaining path size, reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionFailure {
    pub connection_serial: u16,
    pub originator_vendor: u16,
    pub originator_serial: u32,
    pub remaining_path_size: u8,
    pub reserved: u8,
}

impl<'a> Body<'a> for ConnectionFailure {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let connection_serial = r.u16("connection serial")?;
        let originator_vendor = r.u16("originator vendor")?;
        let originator_serial = r.u32("originator serial")?;
        let remaining_path_size = r.u8("remaining path size")?;
        // Some targets stop before the reserved byte.
        let reserved = if r.is_empty() { 0 } else { r.u8("reserved")? };
        Ok(Self {
            connection_serial,
            originator_vendor,
            originator_serial,
            remaining_path_size,
            reserved,
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        out.put_u16(self.connection_serial);
        out.put_u16(self.originator_vendor);
        out.put_u32(self.originator_serial);
        out.put_u8(self.remaining_path_size);
        out.put_u8(self.reserved);
        Ok(())
    }
}

/// Forward Close 0x4E request to the Connection Manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardClose<'a> {
    pub priority_tick: u8,
    pub timeout_ticks: u8,
    pub connection_serial: u16,
    pub originator_vendor: u16,
    pub originator_serial: u32,
    pub reserved: u8,
    pub path: EPath<'a>,
}

impl<'a> Body<'a> for ForwardClose<'a> {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let priority_tick = r.u8("priority/tick")?;
        let timeout_ticks = r.u8("timeout ticks")?;
        let connection_serial = r.u16("connection serial")?;
        let originator_vendor = r.u16("originator vendor")?;
        let originator_serial = r.u32("originator serial")?;
        let words = usize::from(r.u8("connection path size")?);
        let reserved = r.u8("reserved")?;
        let at = r.offset();
        let path = EPath::new(r.bytes(words * 2, "connection path")?, at)?;
        Ok(Self {
            priority_tick,
            timeout_ticks,
            connection_serial,
            originator_vendor,
            originator_serial,
            reserved,
            path,
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        out.put_u8(self.priority_tick);
        out.put_u8(self.timeout_ticks);
        out.put_u16(self.connection_serial);
        out.put_u16(self.originator_vendor);
        out.put_u32(self.originator_serial);
        out.put_u8(short_len("connection path size", self.path.words())?);
        out.put_u8(self.reserved);
        out.put_bytes(self.path.as_bytes());
        Ok(())
    }
}

/// Forward Close success reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardCloseReply<'a> {
    pub connection_serial: u16,
    pub originator_vendor: u16,
    pub originator_serial: u32,
    pub reserved: u8,
    pub application: &'a [u8],
}

impl<'a> Body<'a> for ForwardCloseReply<'a> {
    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let connection_serial = r.u16("connection serial")?;
        let originator_vendor = r.u16("originator vendor")?;
        let originator_serial = r.u32("originator serial")?;
        let words = usize::from(r.u8("application reply size")?);
        let reserved = r.u8("reserved")?;
        let application = r.bytes(words * 2, "application reply")?;
        Ok(Self {
            connection_serial,
            originator_vendor,
            originator_serial,
            reserved,
            application,
        })
    }
    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        out.put_u16(self.connection_serial);
        out.put_u16(self.originator_vendor);
        out.put_u32(self.originator_serial);
        put_words(out, self.application)?;
        out.put_u8(self.reserved);
        out.put_bytes(self.application);
        Ok(())
    }
}

// --------------------------------------------------------------------------------------
// Dispatch

/// A request body, typed by (service, target class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBody<'a> {
    /// Services without a body: Get Attributes All, Get Attribute Single.
    Empty,
    ReadTag(ReadTag),
    ReadTagFragmented(ReadTagFragmented),
    WriteTag(WriteTag<'a>),
    WriteTagFragmented(WriteTagFragmented<'a>),
    ReadModifyWrite(ReadModifyWrite<'a>),
    Multiple(Multiple<'a>),
    /// Get Attribute List and Get Instance Attribute List.
    AttributeIds(AttributeIds),
    /// Set Attribute List (decode with [`AttributeList::decode_with`] once sizes are
    /// known) and Set Attribute Single: the raw value bytes.
    Values(&'a [u8]),
    ReadTemplate(ReadTemplate),
    UnconnectedSend(UnconnectedSend<'a>),
    ForwardOpen(ForwardOpen<'a>),
    ForwardClose(ForwardClose<'a>),
    /// A service this codec has no body for.
    Other(&'a [u8]),
}

impl<'a> RequestBody<'a> {
    /// Decode the body of `req` by its resolved service. Offsets in errors count from the
    /// start of `req.data`.
    pub fn decode(req: &Request<'a>) -> DecodeResult<Self> {
        let mut r = Reader::new(req.data);
        let body = match req.kind() {
            ServiceKind::GetAttributesAll | ServiceKind::GetAttributeSingle => {
                // Trailing bytes on a bodiless service are tolerated, as Logix does.
                r.rest();
                Self::Empty
            }
            ServiceKind::ReadTag => Self::ReadTag(ReadTag::decode(&mut r)?),
            ServiceKind::ReadTagFragmented => {
                Self::ReadTagFragmented(ReadTagFragmented::decode(&mut r)?)
            }
            ServiceKind::WriteTag => Self::WriteTag(WriteTag::decode(&mut r)?),
            ServiceKind::WriteTagFragmented => {
                Self::WriteTagFragmented(WriteTagFragmented::decode(&mut r)?)
            }
            ServiceKind::ReadModifyWrite => Self::ReadModifyWrite(ReadModifyWrite::decode(&mut r)?),
            ServiceKind::MultipleServicePacket => Self::Multiple(Multiple::decode(&mut r)?),
            ServiceKind::GetAttributeList | ServiceKind::GetInstanceAttributeList => {
                Self::AttributeIds(AttributeIds::decode(&mut r)?)
            }
            ServiceKind::SetAttributeList | ServiceKind::SetAttributeSingle => {
                Self::Values(r.rest())
            }
            ServiceKind::ReadTemplate => Self::ReadTemplate(ReadTemplate::decode(&mut r)?),
            ServiceKind::UnconnectedSend => Self::UnconnectedSend(UnconnectedSend::decode(&mut r)?),
            ServiceKind::ForwardOpen => Self::ForwardOpen(ForwardOpen::decode_with(&mut r, false)?),
            ServiceKind::LargeForwardOpen => {
                Self::ForwardOpen(ForwardOpen::decode_with(&mut r, true)?)
            }
            ServiceKind::ForwardClose => Self::ForwardClose(ForwardClose::decode(&mut r)?),
            ServiceKind::Other(_) => Self::Other(r.rest()),
        };
        r.finish("service data")?;
        Ok(body)
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        match self {
            Self::Empty => Ok(()),
            Self::ReadTag(b) => b.encode(out),
            Self::ReadTagFragmented(b) => b.encode(out),
            Self::WriteTag(b) => b.encode(out),
            Self::WriteTagFragmented(b) => b.encode(out),
            Self::ReadModifyWrite(b) => b.encode(out),
            Self::Multiple(b) => b.encode(out),
            Self::AttributeIds(b) => b.encode(out),
            Self::Values(v) | Self::Other(v) => {
                out.put_bytes(v);
                Ok(())
            }
            Self::ReadTemplate(b) => b.encode(out),
            Self::UnconnectedSend(b) => b.encode(out),
            Self::ForwardOpen(b) => b.encode(out),
            Self::ForwardClose(b) => b.encode(out),
        }
    }
}

/// What a reply's data means depends on the request: this carries what the decoder
/// needs to know about it.
#[derive(Debug, Clone, Copy)]
pub struct ReplyContext<'r> {
    pub kind: ServiceKind,
    /// Attribute ids of a Get Attribute List / Get Instance Attribute List request.
    pub attributes: &'r [u16],
    /// Sizes of Get Attribute List values.
    pub attribute_size: fn(u16) -> Option<usize>,
}

impl<'r> ReplyContext<'r> {
    pub fn new(kind: ServiceKind) -> Self {
        Self {
            kind,
            attributes: &[],
            attribute_size: |_| None,
        }
    }
}

/// A reply body, typed by the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody<'a> {
    /// No data (writes, RMW, most errors).
    Empty,
    TagData(TagData<'a>),
    Multiple(Multiple<'a>),
    AttributeList(AttributeList<'a>),
    SymbolList(SymbolList<'a>),
    ForwardOpen(ForwardOpenReply<'a>),
    ForwardClose(ForwardCloseReply<'a>),
    ConnectionFailure(ConnectionFailure),
    /// Raw data: Get Attributes All, Get Attribute Single, Read Template, unknown services,
    /// and error replies with data (for example an Unconnected Send failure's remaining
    /// path size).
    Raw(&'a [u8]),
}

impl<'a> ReplyBody<'a> {
    pub fn decode(reply: &Reply<'a>, ctx: &ReplyContext<'_>) -> DecodeResult<Self> {
        let mut r = Reader::new(reply.data);
        let ok = reply.status.carries_data();
        let cm_failure =
            reply.status == GeneralStatus::CONNECTION_FAILURE || (!ok && !reply.data.is_empty());
        let body = match ctx.kind {
            _ if r.is_empty() => Self::Empty,
            ServiceKind::ForwardOpen
            | ServiceKind::LargeForwardOpen
            | ServiceKind::ForwardClose
                if cm_failure =>
            {
                Self::ConnectionFailure(ConnectionFailure::decode(&mut r)?)
            }
            // 0x1E: some embedded replies failed; the packet is still a reply list.
            ServiceKind::MultipleServicePacket
                if ok || reply.status == GeneralStatus::EMBEDDED_SERVICE_ERROR =>
            {
                Self::Multiple(Multiple::decode(&mut r)?)
            }
            _ if !ok => Self::Raw(r.rest()),
            ServiceKind::ReadTag | ServiceKind::ReadTagFragmented => {
                Self::TagData(TagData::decode(&mut r)?)
            }
            ServiceKind::GetAttributeList => Self::AttributeList(AttributeList::decode_with(
                &mut r,
                AttributeListForm::GetReply,
                ctx.attribute_size,
            )?),
            ServiceKind::SetAttributeList => Self::AttributeList(AttributeList::decode_with(
                &mut r,
                AttributeListForm::SetReply,
                |_| None,
            )?),
            ServiceKind::GetInstanceAttributeList => {
                Self::SymbolList(SymbolList::decode_with(&mut r, ctx.attributes)?)
            }
            ServiceKind::ForwardOpen | ServiceKind::LargeForwardOpen => {
                Self::ForwardOpen(ForwardOpenReply::decode(&mut r)?)
            }
            ServiceKind::ForwardClose => Self::ForwardClose(ForwardCloseReply::decode(&mut r)?),
            _ => Self::Raw(r.rest()),
        };
        r.finish("reply data")?;
        Ok(body)
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        match self {
            Self::Empty => Ok(()),
            Self::TagData(b) => b.encode(out),
            Self::Multiple(b) => b.encode(out),
            Self::AttributeList(b) => b.encode(out),
            Self::SymbolList(b) => b.encode(out),
            Self::ForwardOpen(b) => b.encode(out),
            Self::ForwardClose(b) => b.encode(out),
            Self::ConnectionFailure(b) => b.encode(out),
            Self::Raw(b) => {
                out.put_bytes(b);
                Ok(())
            }
        }
    }
}
