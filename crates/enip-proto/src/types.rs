//! CIP data types as Logix uses them: type codes, the type field of tag services, and
//! element encodings (atomics, SHORT_STRING, CIP STRING, the Logix STRING structure).

use crate::error::{DecodeResult, EncodeResult, ErrorKind};
use crate::wire::{Reader, Writer};

/// An elementary CIP data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Bool,
    Sint,
    Int,
    Dint,
    Lint,
    Usint,
    Uint,
    Udint,
    Ulint,
    Real,
    Lreal,
    Byte,
    Word,
    Dword,
    Lword,
    /// CIP STRING: UINT length + characters.
    String,
    /// SHORT_STRING: USINT length + characters.
    ShortString,
}

impl DataType {
    pub const ALL: [DataType; 17] = [
        Self::Bool,
        Self::Sint,
        Self::Int,
        Self::Dint,
        Self::Lint,
        Self::Usint,
        Self::Uint,
        Self::Udint,
        Self::Ulint,
        Self::Real,
        Self::Lreal,
        Self::Byte,
        Self::Word,
        Self::Dword,
        Self::Lword,
        Self::String,
        Self::ShortString,
    ];

    pub const fn code(self) -> u8 {
        match self {
            Self::Bool => 0xC1,
            Self::Sint => 0xC2,
            Self::Int => 0xC3,
            Self::Dint => 0xC4,
            Self::Lint => 0xC5,
            Self::Usint => 0xC6,
            Self::Uint => 0xC7,
            Self::Udint => 0xC8,
            Self::Ulint => 0xC9,
            Self::Real => 0xCA,
            Self::Lreal => 0xCB,
            Self::String => 0xD0,
            Self::Byte => 0xD1,
            Self::Word => 0xD2,
            Self::Dword => 0xD3,
            Self::Lword => 0xD4,
            Self::ShortString => 0xDA,
        }
    }

    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0xC1 => Self::Bool,
            0xC2 => Self::Sint,
            0xC3 => Self::Int,
            0xC4 => Self::Dint,
            0xC5 => Self::Lint,
            0xC6 => Self::Usint,
            0xC7 => Self::Uint,
            0xC8 => Self::Udint,
            0xC9 => Self::Ulint,
            0xCA => Self::Real,
            0xCB => Self::Lreal,
            0xD0 => Self::String,
            0xD1 => Self::Byte,
            0xD2 => Self::Word,
            0xD3 => Self::Dword,
            0xD4 => Self::Lword,
            0xDA => Self::ShortString,
            _ => return None,
        })
    }

    /// Bytes per element; `None` for the variable-length strings.
    pub const fn size(self) -> Option<usize> {
        Some(match self {
            Self::Bool | Self::Sint | Self::Usint | Self::Byte => 1,
            Self::Int | Self::Uint | Self::Word => 2,
            Self::Dint | Self::Udint | Self::Real | Self::Dword => 4,
            Self::Lint | Self::Ulint | Self::Lreal | Self::Lword => 8,
            Self::String | Self::ShortString => return None,
        })
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Bool => "BOOL",
            Self::Sint => "SINT",
            Self::Int => "INT",
            Self::Dint => "DINT",
            Self::Lint => "LINT",
            Self::Usint => "USINT",
            Self::Uint => "UINT",
            Self::Udint => "UDINT",
            Self::Ulint => "ULINT",
            Self::Real => "REAL",
            Self::Lreal => "LREAL",
            Self::Byte => "BYTE",
            Self::Word => "WORD",
            Self::Dword => "DWORD",
            Self::Lword => "LWORD",
            Self::String => "STRING",
            Self::ShortString => "SSTRING",
        }
    }

    /// Parse a type name (case-insensitive). `STRING` here is the CIP STRING; the Logix
    /// STRING structure is a template, see [`LOGIX_STRING_HANDLE`].
    pub fn from_name(s: &str) -> Option<Self> {
        let u = s.to_ascii_uppercase();
        if u == "SHORT_STRING" {
            return Some(Self::ShortString);
        }
        Self::ALL.into_iter().find(|t| t.name() == u)
    }

    pub fn is_integer(self) -> bool {
        !matches!(
            self,
            Self::Real | Self::Lreal | Self::String | Self::ShortString
        )
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The structure handle of the builtin Logix STRING (`A0 02 CE 0F`).
pub const LOGIX_STRING_HANDLE: u16 = 0x0FCE;
/// Characters in a Logix STRING.
pub const LOGIX_STRING_CHARS: usize = 82;
/// Bytes of a Logix STRING on the wire: DINT LEN, 82 chars, 2 pad.
pub const LOGIX_STRING_SIZE: usize = 88;

/// Abbreviated structure type code.
pub const TYPE_STRUCT: u8 = 0xA0;

/// The type field of Read Tag replies and Write Tag requests: `tt 00` for an elementary
/// type, `A0 02 hh hh` for a structure, or another constructed form kept as sent
/// (`code, length, bytes[length]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeTag<'a> {
    /// An elementary type code (may be one this codec has no [`DataType`] for).
    Elementary(u8),
    /// An abbreviated structure with its handle.
    Struct(u16),
    /// Any other constructed type descriptor.
    Other { code: u8, data: &'a [u8] },
}

impl<'a> TypeTag<'a> {
    pub fn atomic(t: DataType) -> Self {
        Self::Elementary(t.code())
    }

    pub fn data_type(&self) -> Option<DataType> {
        match self {
            Self::Elementary(c) => DataType::from_code(*c),
            _ => None,
        }
    }

    pub fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let at = r.offset();
        let code = r.u8("type code")?;
        let len = r.u8("type length")?;
        match (code, len) {
            (TYPE_STRUCT, 2) => Ok(Self::Struct(r.u16("structure handle")?)),
            (0xC0..=0xDF, 0) => Ok(Self::Elementary(code)),
            (0xA0..=0xA3, n) => Ok(Self::Other {
                code,
                data: r.bytes(usize::from(n), "type descriptor")?,
            }),
            _ => Err(crate::DecodeError::new(
                ErrorKind::Invalid {
                    what: "type code",
                    value: u64::from(code) | u64::from(len) << 8,
                },
                at,
            )),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        match *self {
            Self::Elementary(c) => {
                out.put_u8(c);
                out.put_u8(0);
            }
            Self::Struct(h) => {
                out.put_u8(TYPE_STRUCT);
                out.put_u8(2);
                out.put_u16(h);
            }
            Self::Other { code, data } => {
                out.put_u8(code);
                out.put_u8(crate::wire::short_len("type descriptor", data.len())?);
                out.put_bytes(data);
            }
        }
        Ok(())
    }

    /// Bytes this tag occupies on the wire.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Elementary(_) => 2,
            Self::Struct(_) => 4,
            Self::Other { data, .. } => 2 + data.len(),
        }
    }
}

/// One decoded element value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Sint(i8),
    Int(i16),
    Dint(i32),
    Lint(i64),
    Usint(u8),
    Uint(u16),
    Udint(u32),
    Ulint(u64),
    Real(f32),
    Lreal(f64),
    Byte(u8),
    Word(u16),
    Dword(u32),
    Lword(u64),
    String(Vec<u8>),
    ShortString(Vec<u8>),
}

impl Value {
    pub fn data_type(&self) -> DataType {
        match self {
            Self::Bool(_) => DataType::Bool,
            Self::Sint(_) => DataType::Sint,
            Self::Int(_) => DataType::Int,
            Self::Dint(_) => DataType::Dint,
            Self::Lint(_) => DataType::Lint,
            Self::Usint(_) => DataType::Usint,
            Self::Uint(_) => DataType::Uint,
            Self::Udint(_) => DataType::Udint,
            Self::Ulint(_) => DataType::Ulint,
            Self::Real(_) => DataType::Real,
            Self::Lreal(_) => DataType::Lreal,
            Self::Byte(_) => DataType::Byte,
            Self::Word(_) => DataType::Word,
            Self::Dword(_) => DataType::Dword,
            Self::Lword(_) => DataType::Lword,
            Self::String(_) => DataType::String,
            Self::ShortString(_) => DataType::ShortString,
        }
    }

    /// Decode one element of type `t`. BOOL is true for any non-zero byte.
    pub fn decode(t: DataType, r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(match t {
            DataType::Bool => Self::Bool(r.u8("BOOL")? != 0),
            DataType::Sint => Self::Sint(i8::from_le_bytes(r.array("SINT")?)),
            DataType::Int => Self::Int(i16::from_le_bytes(r.array("INT")?)),
            DataType::Dint => Self::Dint(i32::from_le_bytes(r.array("DINT")?)),
            DataType::Lint => Self::Lint(i64::from_le_bytes(r.array("LINT")?)),
            DataType::Usint => Self::Usint(r.u8("USINT")?),
            DataType::Uint => Self::Uint(r.u16("UINT")?),
            DataType::Udint => Self::Udint(r.u32("UDINT")?),
            DataType::Ulint => Self::Ulint(r.u64("ULINT")?),
            DataType::Real => Self::Real(f32::from_le_bytes(r.array("REAL")?)),
            DataType::Lreal => Self::Lreal(f64::from_le_bytes(r.array("LREAL")?)),
            DataType::Byte => Self::Byte(r.u8("BYTE")?),
            DataType::Word => Self::Word(r.u16("WORD")?),
            DataType::Dword => Self::Dword(r.u32("DWORD")?),
            DataType::Lword => Self::Lword(r.u64("LWORD")?),
            DataType::String => {
                let n = r.u16("STRING length")?;
                Self::String(r.bytes(usize::from(n), "STRING characters")?.to_vec())
            }
            DataType::ShortString => {
                let n = r.u8("SHORT_STRING length")?;
                Self::ShortString(r.bytes(usize::from(n), "SHORT_STRING characters")?.to_vec())
            }
        })
    }

    /// Encode one element. BOOL true is 0xFF, as Logix clients write it.
    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        match self {
            Self::Bool(b) => out.put_u8(if *b { 0xFF } else { 0 }),
            Self::Sint(v) => out.put_bytes(&v.to_le_bytes()),
            Self::Int(v) => out.put_bytes(&v.to_le_bytes()),
            Self::Dint(v) => out.put_bytes(&v.to_le_bytes()),
            Self::Lint(v) => out.put_bytes(&v.to_le_bytes()),
            Self::Usint(v) | Self::Byte(v) => out.put_u8(*v),
            Self::Uint(v) | Self::Word(v) => out.put_u16(*v),
            Self::Udint(v) | Self::Dword(v) => out.put_u32(*v),
            Self::Ulint(v) | Self::Lword(v) => out.put_u64(*v),
            Self::Real(v) => out.put_bytes(&v.to_le_bytes()),
            Self::Lreal(v) => out.put_bytes(&v.to_le_bytes()),
            Self::String(s) => {
                let at = out.placeholder_u16();
                out.patch_u16(at, "STRING length", s.len())?;
                out.put_bytes(s);
            }
            Self::ShortString(s) => {
                out.put_u8(crate::wire::short_len("SHORT_STRING length", s.len())?);
                out.put_bytes(s);
            }
        }
        Ok(())
    }

    /// Decode `count` elements of `t`.
    pub fn decode_many(t: DataType, data: &[u8], count: usize) -> DecodeResult<Vec<Value>> {
        let mut r = Reader::new(data);
        let cap = t.size().map_or(0, |s| count.min(data.len() / s.max(1)));
        let mut out = Vec::with_capacity(cap);
        for _ in 0..count {
            out.push(Self::decode(t, &mut r)?);
        }
        Ok(out)
    }
}

/// The Logix STRING structure: DINT LEN, SINT DATA[82], 2 pad bytes (88 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogixString(pub Vec<u8>);

impl LogixString {
    /// Decode one 88-byte element. A LEN outside 0..=82 is an error.
    pub fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let at = r.offset();
        let len = i32::from_le_bytes(r.array("STRING LEN")?);
        let data = r.bytes(LOGIX_STRING_CHARS, "STRING DATA")?;
        r.bytes(2, "STRING pad")?;
        match usize::try_from(len) {
            Ok(n) if n <= LOGIX_STRING_CHARS => {
                Ok(Self(data.get(..n).unwrap_or_default().to_vec()))
            }
            _ => Err(crate::DecodeError::new(
                ErrorKind::Invalid {
                    what: "STRING LEN",
                    value: u64::from(len as u32),
                },
                at,
            )),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        crate::error::check_len("STRING", self.0.len(), LOGIX_STRING_CHARS)?;
        out.put_u32(self.0.len() as u32);
        out.put_bytes(&self.0);
        out.resize(out.len() + LOGIX_STRING_CHARS - self.0.len() + 2, 0);
        Ok(())
    }
}
