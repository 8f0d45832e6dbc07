//! Tags: their types, shapes and storage, and the `TAG=TYPE[dims]` specs cpppo users type.

use std::collections::HashMap;

use enip_proto::types::{DataType, TypeTag, LOGIX_STRING_HANDLE, LOGIX_STRING_SIZE};

use crate::udt::{StructType, Udts};

/// What one element of a tag or member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    Atomic(DataType),
    /// The builtin Logix STRING structure (handle 0x0FCE, 88 bytes).
    LogixString,
    /// A user-defined structure.
    Struct(StructType),
    /// cpppo's SSTRING: a CIP SHORT_STRING (USINT length + characters), stored in
    /// [`SSTRING_SIZE`] bytes, sent as long as it is.
    ShortString,
}

/// Storage for one SSTRING element: the length byte and up to 255 characters.
pub const SSTRING_SIZE: usize = 256;

impl ElementType {
    /// Bytes per element on the wire.
    pub fn size(self) -> usize {
        match self {
            Self::Atomic(t) => t.size().unwrap_or(0),
            Self::LogixString => LOGIX_STRING_SIZE,
            Self::Struct(s) => s.size as usize,
            Self::ShortString => SSTRING_SIZE,
        }
    }

    /// The type's name; a structure's own name is in [`crate::Udts`].
    pub fn name(self) -> &'static str {
        match self {
            Self::Atomic(t) => t.name(),
            Self::LogixString => "STRING",
            Self::Struct(_) => "STRUCT",
            Self::ShortString => "SSTRING",
        }
    }

    /// The type field of reads and writes.
    pub fn type_tag(self) -> TypeTag<'static> {
        match self {
            Self::Atomic(t) => TypeTag::atomic(t),
            Self::LogixString => TypeTag::Struct(LOGIX_STRING_HANDLE),
            Self::Struct(s) => TypeTag::Struct(s.handle),
            Self::ShortString => TypeTag::atomic(DataType::ShortString),
        }
    }
}

/// Why a tag spec does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("unknown type `{ty}` in tag spec `{spec}` (known: {known})")]
    UnknownType {
        spec: String,
        ty: String,
        known: String,
    },
    #[error("bad dimensions `{dims}` in tag spec `{spec}`: {why}")]
    BadDims {
        spec: String,
        dims: String,
        why: &'static str,
    },
    #[error("bad tag name `{name}`: {why}")]
    BadName { name: String, why: &'static str },
    #[error("bad address in tag spec `{spec}`: {why}")]
    BadAddress { spec: String, why: String },
    #[error("duplicate tag `{0}`")]
    Duplicate(String),
    #[error("bad structure name `{name}`: {why}")]
    BadTypeName { name: String, why: &'static str },
    #[error("type `{0}` is already defined (a structure, or a built-in type)")]
    DuplicateType(String),
    #[error("structure `{0}` has no members")]
    EmptyStruct(String),
    #[error("bad member `{member}` of structure `{udt}`: {why}")]
    BadMember {
        udt: String,
        member: String,
        why: &'static str,
    },
    #[error("duplicate member `{member}` in structure `{udt}`")]
    DuplicateMember { udt: String, member: String },
    #[error("unknown type `{ty}` for member `{member}` of structure `{udt}` (known: {known}; define a structure before using it)")]
    UnknownMemberType {
        udt: String,
        member: String,
        ty: String,
        known: String,
    },
    #[error("structure `{udt}` cannot contain itself (member `{member}`)")]
    RecursiveStruct { udt: String, member: String },
    #[error("structure `{udt}` is too large: {why}")]
    StructTooLarge { udt: String, why: String },
    #[error("too many structures: no template instance id is left")]
    TooManyStructs,
}

/// A tag definition: name (possibly `Program:X.Name`), element type, dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSpec {
    pub name: String,
    pub elem: ElementType,
    /// 0 to 3 dimensions, as declared (BOOL arrays in bits).
    pub dims: Vec<u32>,
}

/// Largest number of elements a tag may have (keeps memory bounded).
pub const MAX_ELEMENTS: u64 = 1 << 24;
/// Largest tag, in bytes (`LINT[16777216]`).
pub const MAX_TAG_BYTES: u64 = 1 << 27;

impl TagSpec {
    /// Parse `NAME`, `NAME=TYPE`, `NAME=TYPE[n]`, `NAME=TYPE[a,b]`, `NAME=TYPE[a,b,c]`,
    /// where TYPE is atomic or STRING, INT when not given (as in cpppo).
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        Self::parse_with(spec, &Udts::default())
    }

    /// As [`TagSpec::parse`], where TYPE may also name a structure in `types`.
    pub fn parse_with(spec: &str, types: &Udts) -> Result<Self, SpecError> {
        let (name, ty) = spec.split_once('=').unwrap_or((spec, "INT"));
        let name = name.trim();
        check_name(name)?;
        let ty = match ty.trim() {
            "" => "INT",
            t => t,
        };
        let (base, dims) = match ty.split_once('[') {
            Some((b, rest)) => {
                let inner = rest.strip_suffix(']').ok_or_else(|| SpecError::BadDims {
                    spec: spec.to_owned(),
                    dims: rest.to_owned(),
                    why: "missing `]`",
                })?;
                (b, parse_dims(spec, inner)?)
            }
            None => (ty, Vec::new()),
        };
        let elem = if base.trim().eq_ignore_ascii_case("SSTRING") {
            ElementType::ShortString
        } else {
            types
                .element_type(base.trim())
                .ok_or_else(|| SpecError::UnknownType {
                    spec: spec.to_owned(),
                    ty: base.to_owned(),
                    known: types.known().replacen("STRING", "STRING SSTRING", 1),
                })?
        };
        let elements: u64 = dims.iter().map(|&d| u64::from(d)).product();
        if elements.saturating_mul(elem.size() as u64) > MAX_TAG_BYTES {
            return Err(SpecError::BadDims {
                spec: spec.to_owned(),
                dims: dims
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                why: "more than 134,217,728 bytes of data",
            });
        }
        Ok(Self {
            name: name.to_owned(),
            elem,
            dims,
        })
    }
}

fn parse_dims(spec: &str, inner: &str) -> Result<Vec<u32>, SpecError> {
    let bad = |why| SpecError::BadDims {
        spec: spec.to_owned(),
        dims: inner.to_owned(),
        why,
    };
    let dims: Vec<u32> = inner
        .split(',')
        .map(|d| d.trim().parse::<u32>().map_err(|_| bad("not a number")))
        .collect::<Result<_, _>>()?;
    if dims.is_empty() || dims.len() > 3 {
        return Err(bad("1 to 3 dimensions"));
    }
    if dims.contains(&0) {
        return Err(bad("a dimension of 0"));
    }
    let total: u64 = dims.iter().map(|&d| u64::from(d)).product();
    if total > MAX_ELEMENTS {
        return Err(bad("more than 16,777,216 elements"));
    }
    Ok(dims)
}

fn check_name(name: &str) -> Result<(), SpecError> {
    let bad = |why| SpecError::BadName {
        name: name.to_owned(),
        why,
    };
    let base = match name.split_once('.') {
        Some((prog, base)) => {
            let p = prog
                .strip_prefix("Program:")
                .or_else(|| prog.strip_prefix("program:"))
                .ok_or_else(|| bad("only `Program:NAME.` may scope a tag"))?;
            check_ident(p).map_err(bad)?;
            base
        }
        None => name,
    };
    check_ident(base).map_err(bad)
}

pub(crate) fn check_ident(s: &str) -> Result<(), &'static str> {
    let mut chars = s.chars();
    match chars.next() {
        None => return Err("empty name"),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            return Err("must start with a letter or `_`")
        }
        _ => {}
    }
    if s.len() > 40 {
        return Err("longer than 40 characters");
    }
    if chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err("only letters, digits and `_` are allowed")
    }
}

/// A tag and its value bytes.
#[derive(Debug, Clone)]
pub struct Tag {
    pub name: String,
    pub elem: ElementType,
    /// Dimensions as seen on the wire (BOOL arrays in DWORDs), 0 to 3 of them.
    pub dims: Vec<u32>,
    pub data: Vec<u8>,
}

impl Tag {
    pub fn new(spec: &TagSpec) -> Self {
        let (elem, dims) = match (spec.elem, spec.dims.as_slice()) {
            // Logix stores BOOL arrays as DWORD arrays; dimensions count DWORDs.
            (ElementType::Atomic(DataType::Bool), [bits]) => (
                ElementType::Atomic(DataType::Dword),
                vec![bits.div_ceil(32)],
            ),
            (e, d) => (e, d.to_vec()),
        };
        let count: usize = dims.iter().map(|&d| d as usize).product();
        Self {
            name: spec.name.clone(),
            elem,
            data: vec![0; count.max(1) * elem.size()],
            dims,
        }
    }

    /// Elements in the tag (1 for a scalar).
    pub fn elements(&self) -> usize {
        self.data.len() / self.elem.size().max(1)
    }

    /// The flat element index of `indexes` (row-major), if valid for this tag's shape.
    pub fn flat_index(&self, indexes: &[u32]) -> Option<usize> {
        if indexes.is_empty() {
            return Some(0);
        }
        if indexes.len() != self.dims.len() {
            return None;
        }
        let mut flat = 0usize;
        for (&i, &d) in indexes.iter().zip(&self.dims) {
            if i >= d {
                return None;
            }
            flat = flat * d as usize + i as usize;
        }
        Some(flat)
    }
}

/// All tags, found by case-insensitive name (Logix names are case-insensitive).
#[derive(Debug, Clone, Default)]
pub struct Tags {
    tags: Vec<Tag>,
    by_name: HashMap<String, usize>,
}

impl Tags {
    pub fn insert(&mut self, spec: &TagSpec) -> Result<usize, SpecError> {
        let key = spec.name.to_ascii_lowercase();
        if self.by_name.contains_key(&key) {
            return Err(SpecError::Duplicate(spec.name.clone()));
        }
        let id = self.tags.len();
        self.tags.push(Tag::new(spec));
        self.by_name.insert(key, id);
        Ok(id)
    }

    /// Look a tag up by its full name (`Name` or `Program:X.Name`), any case.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    pub fn get(&self, id: usize) -> Option<&Tag> {
        self.tags.get(id)
    }

    pub fn get_mut(&mut self, id: usize) -> Option<&mut Tag> {
        self.tags.get_mut(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.tags.iter()
    }

    pub fn len(&self) -> usize {
        self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }
}
