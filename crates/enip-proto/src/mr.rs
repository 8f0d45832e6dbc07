//! The CIP Message Router request and reply, and the service codes and object classes
//! Logix clients use. Object-specific service codes are resolved by (service, class).

use crate::error::{DecodeResult, EncodeResult};
use crate::path::{EPath, Path};
use crate::status::GeneralStatus;
use crate::wire::{short_len, Reader, Writer};

/// Service codes (request form; a reply sets bit 7).
pub mod service {
    pub const GET_ATTRIBUTES_ALL: u8 = 0x01;
    pub const SET_ATTRIBUTES_ALL: u8 = 0x02;
    pub const GET_ATTRIBUTE_LIST: u8 = 0x03;
    pub const SET_ATTRIBUTE_LIST: u8 = 0x04;
    pub const RESET: u8 = 0x05;
    pub const MULTIPLE_SERVICE_PACKET: u8 = 0x0A;
    pub const GET_ATTRIBUTE_SINGLE: u8 = 0x0E;
    pub const SET_ATTRIBUTE_SINGLE: u8 = 0x10;
    /// Read Tag, or Read Template on class 0x6C.
    pub const READ_TAG: u8 = 0x4C;
    pub const READ_TEMPLATE: u8 = 0x4C;
    pub const WRITE_TAG: u8 = 0x4D;
    /// Read-Modify-Write, or Forward Close on class 0x06.
    pub const READ_MODIFY_WRITE: u8 = 0x4E;
    pub const FORWARD_CLOSE: u8 = 0x4E;
    /// Read Tag Fragmented, or Unconnected Send on class 0x06.
    pub const READ_TAG_FRAGMENTED: u8 = 0x52;
    pub const UNCONNECTED_SEND: u8 = 0x52;
    pub const WRITE_TAG_FRAGMENTED: u8 = 0x53;
    pub const FORWARD_OPEN: u8 = 0x54;
    pub const GET_INSTANCE_ATTRIBUTE_LIST: u8 = 0x55;
    pub const LARGE_FORWARD_OPEN: u8 = 0x5B;
    /// Bit 7 marks a reply.
    pub const REPLY: u8 = 0x80;
}

/// Object classes.
pub mod class {
    pub const IDENTITY: u32 = 0x01;
    pub const MESSAGE_ROUTER: u32 = 0x02;
    pub const CONNECTION_MANAGER: u32 = 0x06;
    pub const PORT: u32 = 0xF4;
    pub const CONTROLLER_NAME: u32 = 0x64;
    pub const SYMBOL: u32 = 0x6B;
    pub const TEMPLATE: u32 = 0x6C;
    pub const WALL_CLOCK: u32 = 0x8B;
    pub const TCP_IP: u32 = 0xF5;
    pub const ETHERNET_LINK: u32 = 0xF6;
}

/// What a request asks for, once the service code is read against the target class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    GetAttributesAll,
    GetAttributeList,
    SetAttributeList,
    MultipleServicePacket,
    GetAttributeSingle,
    SetAttributeSingle,
    ReadTag,
    ReadTagFragmented,
    WriteTag,
    WriteTagFragmented,
    ReadModifyWrite,
    GetInstanceAttributeList,
    ReadTemplate,
    UnconnectedSend,
    ForwardOpen,
    LargeForwardOpen,
    ForwardClose,
    /// Any other service, passed through for the device to refuse or handle.
    Other(u8),
}

impl ServiceKind {
    /// Resolve a request service code (bit 7 clear) against the class the path targets
    /// (`None` for symbolic tag paths).
    pub fn resolve(service: u8, target_class: Option<u32>) -> Self {
        use self::service as s;
        let cm = target_class == Some(class::CONNECTION_MANAGER);
        match service & !s::REPLY {
            s::GET_ATTRIBUTES_ALL => Self::GetAttributesAll,
            s::GET_ATTRIBUTE_LIST => Self::GetAttributeList,
            s::SET_ATTRIBUTE_LIST => Self::SetAttributeList,
            s::MULTIPLE_SERVICE_PACKET => Self::MultipleServicePacket,
            s::GET_ATTRIBUTE_SINGLE => Self::GetAttributeSingle,
            s::SET_ATTRIBUTE_SINGLE => Self::SetAttributeSingle,
            0x4C if target_class == Some(class::TEMPLATE) => Self::ReadTemplate,
            0x4C => Self::ReadTag,
            0x4D => Self::WriteTag,
            0x4E if cm => Self::ForwardClose,
            0x4E => Self::ReadModifyWrite,
            0x52 if cm => Self::UnconnectedSend,
            0x52 => Self::ReadTagFragmented,
            0x53 => Self::WriteTagFragmented,
            0x54 if cm => Self::ForwardOpen,
            0x5B if cm => Self::LargeForwardOpen,
            0x55 => Self::GetInstanceAttributeList,
            other => Self::Other(other),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::GetAttributesAll => "Get Attributes All",
            Self::GetAttributeList => "Get Attribute List",
            Self::SetAttributeList => "Set Attribute List",
            Self::MultipleServicePacket => "Multiple Service Packet",
            Self::GetAttributeSingle => "Get Attribute Single",
            Self::SetAttributeSingle => "Set Attribute Single",
            Self::ReadTag => "Read Tag",
            Self::ReadTagFragmented => "Read Tag Fragmented",
            Self::WriteTag => "Write Tag",
            Self::WriteTagFragmented => "Write Tag Fragmented",
            Self::ReadModifyWrite => "Read Modify Write",
            Self::GetInstanceAttributeList => "Get Instance Attribute List",
            Self::ReadTemplate => "Read Template",
            Self::UnconnectedSend => "Unconnected Send",
            Self::ForwardOpen => "Forward Open",
            Self::LargeForwardOpen => "Large Forward Open",
            Self::ForwardClose => "Forward Close",
            Self::Other(_) => "unknown service",
        }
    }
}

/// A Message Router request: service, path, service data. Borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub service: u8,
    pub path: EPath<'a>,
    pub data: &'a [u8],
}

impl<'a> Request<'a> {
    /// Decode a request that fills `buf`.
    pub fn decode(buf: &'a [u8]) -> DecodeResult<Self> {
        Self::decode_from(&mut Reader::new(buf))
    }

    pub fn decode_from(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let service = r.u8("service code")?;
        if service & service::REPLY != 0 {
            return Err(r.invalid("request service code (reply bit set)", service));
        }
        let path = EPath::decode_sized(r)?;
        Ok(Self {
            service,
            path,
            data: r.rest(),
        })
    }

    /// The service, resolved against the path's target class.
    pub fn kind(&self) -> ServiceKind {
        ServiceKind::resolve(self.service, self.path.target().class)
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        out.put_u8(self.service);
        out.put_u8(short_len("path size in words", self.path.words())?);
        out.put_bytes(self.path.as_bytes());
        out.put_bytes(self.data);
        Ok(())
    }

    /// Build request bytes from a service, a path and an encoded body.
    pub fn build(service: u8, path: &Path<'_>, body: &[u8]) -> EncodeResult<Vec<u8>> {
        let mut out = Vec::with_capacity(2 + 16 + body.len());
        out.put_u8(service);
        path.encode_sized(&mut out)?;
        out.put_bytes(body);
        Ok(out)
    }
}

/// A Message Router reply: service | 0x80, general status, extended status words, data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The reply service code (bit 7 set).
    pub service: u8,
    /// The reserved byte (0 from conforming targets), kept for exact round trips.
    pub reserved: u8,
    pub status: GeneralStatus,
    /// Additional status words (allocated only when present).
    pub extended: Vec<u16>,
    pub data: &'a [u8],
}

impl<'a> Reply<'a> {
    /// A reply to `request_service` with `status` and `data`.
    pub fn new(request_service: u8, status: GeneralStatus, data: &'a [u8]) -> Self {
        Self {
            service: request_service | service::REPLY,
            reserved: 0,
            status,
            extended: Vec::new(),
            data,
        }
    }

    pub fn success(request_service: u8, data: &'a [u8]) -> Self {
        Self::new(request_service, GeneralStatus::SUCCESS, data)
    }

    /// An error reply with extended status words and no data.
    pub fn error(request_service: u8, status: GeneralStatus, extended: &[u16]) -> Self {
        Self {
            extended: extended.to_vec(),
            ..Self::new(request_service, status, &[])
        }
    }

    pub fn decode(buf: &'a [u8]) -> DecodeResult<Self> {
        Self::decode_from(&mut Reader::new(buf))
    }

    pub fn decode_from(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let service = r.u8("reply service code")?;
        if service & service::REPLY == 0 {
            return Err(r.invalid("reply service code (reply bit clear)", service));
        }
        let reserved = r.u8("reserved")?;
        let status = GeneralStatus(r.u8("general status")?);
        let words = usize::from(r.u8("additional status size")?);
        let raw = r.bytes(words * 2, "additional status")?;
        let extended = raw
            .chunks_exact(2)
            .map(|c| {
                u16::from_le_bytes([
                    c.first().copied().unwrap_or(0),
                    c.get(1).copied().unwrap_or(0),
                ])
            })
            .collect();
        Ok(Self {
            service,
            reserved,
            status,
            extended,
            data: r.rest(),
        })
    }

    /// The request service this replies to.
    pub fn request_service(&self) -> u8 {
        self.service & !service::REPLY
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        out.put_u8(self.service);
        out.put_u8(self.reserved);
        out.put_u8(self.status.0);
        out.put_u8(short_len("additional status size", self.extended.len())?);
        for w in &self.extended {
            out.put_u16(*w);
        }
        out.put_bytes(self.data);
        Ok(())
    }

    pub fn to_vec(&self) -> EncodeResult<Vec<u8>> {
        let mut v = Vec::with_capacity(4 + 2 * self.extended.len() + self.data.len());
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Bytes this reply occupies on the wire.
    pub fn encoded_len(&self) -> usize {
        4 + 2 * self.extended.len() + self.data.len()
    }

    /// The status as a person reads it, with extended codes named.
    pub fn describe_status(&self) -> String {
        crate::status::describe(self.status, &self.extended)
    }
}
