//! EPATH: padded CIP paths in binary, and the text forms people type.
//!
//! Binary: logical segments (class, instance, member/element, connection point,
//! attribute, service id, electronic key) in 8/16/32-bit forms, ANSI extended symbolic
//! segments (`91 len name [pad]`), simple data segments and port segments (route paths,
//! extended link addresses). Text: `Tag.Member[1,2]`, `Program:Main.X`, `@1/1/7`,
//! `@0x6B/0x25[3].Member`.

use std::fmt;

use crate::error::{DecodeError, DecodeResult, EncodeResult, ErrorKind};
use crate::wire::{short_len, Reader, Writer};

/// What a logical segment addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogicalKind {
    Class,
    Instance,
    /// Member id, or (in Logix tag paths) an array element index.
    Element,
    ConnectionPoint,
    Attribute,
    ServiceId,
}

impl LogicalKind {
    const fn type_bits(self) -> u8 {
        match self {
            Self::Class => 0x00,
            Self::Instance => 0x04,
            Self::Element => 0x08,
            Self::ConnectionPoint => 0x0C,
            Self::Attribute => 0x10,
            Self::ServiceId => 0x18,
        }
    }
}

/// A logical value with the width it is (or will be) encoded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogicalValue {
    U8(u8),
    U16(u16),
    U32(u32),
}

impl LogicalValue {
    /// The narrowest form that holds `v`.
    pub fn minimal(v: u32) -> Self {
        if let Ok(b) = u8::try_from(v) {
            Self::U8(b)
        } else if let Ok(w) = u16::try_from(v) {
            Self::U16(w)
        } else {
            Self::U32(v)
        }
    }

    pub fn get(self) -> u32 {
        match self {
            Self::U8(v) => v.into(),
            Self::U16(v) => v.into(),
            Self::U32(v) => v,
        }
    }
}

/// An electronic key (logical special segment, key format 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ElectronicKey {
    pub vendor: u16,
    pub device_type: u16,
    pub product_code: u16,
    /// Major revision; bit 7 is the compatibility bit.
    pub major: u8,
    pub minor: u8,
}

/// One path segment. Names borrow from the bytes or text they were parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment<'a> {
    /// A port segment: port number and link address (one byte for a slot, or an extended
    /// link address such as an IP address in ASCII).
    Port {
        port: u16,
        link: &'a [u8],
    },
    Logical {
        kind: LogicalKind,
        value: LogicalValue,
    },
    ElectronicKey(ElectronicKey),
    /// ANSI extended symbolic segment (0x91): a tag or member name.
    Symbolic(&'a [u8]),
    /// Simple data segment (0x80): a whole number of 16-bit words.
    Data(&'a [u8]),
}

impl<'a> Segment<'a> {
    pub fn class(v: u32) -> Self {
        Self::logical(LogicalKind::Class, v)
    }
    pub fn instance(v: u32) -> Self {
        Self::logical(LogicalKind::Instance, v)
    }
    pub fn attribute(v: u32) -> Self {
        Self::logical(LogicalKind::Attribute, v)
    }
    pub fn element(v: u32) -> Self {
        Self::logical(LogicalKind::Element, v)
    }
    pub fn connection_point(v: u32) -> Self {
        Self::logical(LogicalKind::ConnectionPoint, v)
    }
    /// A logical segment in its narrowest form.
    pub fn logical(kind: LogicalKind, v: u32) -> Self {
        Self::Logical {
            kind,
            value: LogicalValue::minimal(v),
        }
    }
    pub fn symbol(name: &'a str) -> Self {
        Self::Symbolic(name.as_bytes())
    }
    /// A backplane-style port segment: port and one-byte link (slot).
    pub fn port(port: u16, slot: u8) -> Segment<'static> {
        Segment::Port {
            port,
            link: SLOTS
                .get(usize::from(slot)..=usize::from(slot))
                .unwrap_or(&[0]),
        }
    }

    /// The logical value, if this is a logical segment of `kind`.
    pub fn logical_value(&self, kind: LogicalKind) -> Option<u32> {
        match self {
            Self::Logical { kind: k, value } if *k == kind => Some(value.get()),
            _ => None,
        }
    }

    /// Decode one segment.
    pub fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let at = r.offset();
        let b = r.u8("path segment")?;
        match b >> 5 {
            0b000 => {
                let extended_link = b & 0x10 != 0;
                let link_len = if extended_link {
                    usize::from(r.u8("link address size")?)
                } else {
                    1
                };
                let mut port = u16::from(b & 0x0F);
                if port == 0x0F {
                    port = r.u16("extended port number")?;
                }
                let link = r.bytes(link_len, "link address")?;
                if (r.offset() - at) % 2 == 1 {
                    r.u8("port segment pad")?;
                }
                Ok(Self::Port { port, link })
            }
            0b001 => {
                let ltype = b & 0x1C;
                let format = b & 0x03;
                if ltype == 0x14 {
                    // Special: only the electronic key (format 0, key format 4).
                    if format != 0 {
                        return Err(DecodeError::new(
                            ErrorKind::Unsupported {
                                what: "logical special segment",
                                value: b.into(),
                            },
                            at,
                        ));
                    }
                    let key_format = r.u8("electronic key format")?;
                    if key_format != 4 {
                        return Err(DecodeError::new(
                            ErrorKind::Unsupported {
                                what: "electronic key format",
                                value: key_format.into(),
                            },
                            at + 1,
                        ));
                    }
                    return Ok(Self::ElectronicKey(ElectronicKey {
                        vendor: r.u16("key vendor")?,
                        device_type: r.u16("key device type")?,
                        product_code: r.u16("key product code")?,
                        major: r.u8("key major revision")?,
                        minor: r.u8("key minor revision")?,
                    }));
                }
                let kind = match ltype {
                    0x00 => LogicalKind::Class,
                    0x04 => LogicalKind::Instance,
                    0x08 => LogicalKind::Element,
                    0x0C => LogicalKind::ConnectionPoint,
                    0x10 => LogicalKind::Attribute,
                    0x18 => LogicalKind::ServiceId,
                    _ => {
                        return Err(DecodeError::new(
                            ErrorKind::Unsupported {
                                what: "logical segment type",
                                value: b.into(),
                            },
                            at,
                        ))
                    }
                };
                let value = match format {
                    0 => LogicalValue::U8(r.u8("logical value")?),
                    1 if kind != LogicalKind::ServiceId => {
                        r.u8("logical segment pad")?;
                        LogicalValue::U16(r.u16("logical value")?)
                    }
                    2 if kind != LogicalKind::ServiceId => {
                        r.u8("logical segment pad")?;
                        LogicalValue::U32(r.u32("logical value")?)
                    }
                    _ => {
                        return Err(DecodeError::new(
                            ErrorKind::Invalid {
                                what: "logical segment format",
                                value: b.into(),
                            },
                            at,
                        ))
                    }
                };
                Ok(Self::Logical { kind, value })
            }
            0b100 => match b {
                0x91 => {
                    let n = usize::from(r.u8("symbol length")?);
                    let name = r.bytes(n, "symbol name")?;
                    if n % 2 == 1 {
                        r.u8("symbol pad")?;
                    }
                    Ok(Self::Symbolic(name))
                }
                0x80 => {
                    let words = usize::from(r.u8("data segment size")?);
                    Ok(Self::Data(r.bytes(words * 2, "data segment")?))
                }
                _ => Err(DecodeError::new(
                    ErrorKind::Unsupported {
                        what: "data segment type",
                        value: b.into(),
                    },
                    at,
                )),
            },
            _ => Err(DecodeError::new(
                ErrorKind::Unsupported {
                    what: "path segment type",
                    value: b.into(),
                },
                at,
            )),
        }
    }

    /// Append the padded encoding of this segment.
    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        match *self {
            Self::Port { port, link } => {
                let start = out.len();
                let extended_link = link.len() != 1;
                let port_bits = if port < 0x0F { port as u8 } else { 0x0F };
                out.put_u8(port_bits | if extended_link { 0x10 } else { 0 });
                if extended_link {
                    out.put_u8(short_len("link address", link.len())?);
                }
                if port_bits == 0x0F {
                    out.put_u16(port);
                }
                out.put_bytes(link);
                if (out.len() - start) % 2 == 1 {
                    out.put_u8(0);
                }
            }
            Self::Logical { kind, value } => {
                let t = 0x20 | kind.type_bits();
                match value {
                    LogicalValue::U8(v) => {
                        out.put_u8(t);
                        out.put_u8(v);
                    }
                    LogicalValue::U16(v) => {
                        if kind == LogicalKind::ServiceId {
                            return Err(crate::EncodeError {
                                what: "service id segment",
                                value: v.into(),
                                max: 255,
                            });
                        }
                        out.put_u8(t | 1);
                        out.put_u8(0);
                        out.put_u16(v);
                    }
                    LogicalValue::U32(v) => {
                        if kind == LogicalKind::ServiceId {
                            return Err(crate::EncodeError {
                                what: "service id segment",
                                value: v as usize,
                                max: 255,
                            });
                        }
                        out.put_u8(t | 2);
                        out.put_u8(0);
                        out.put_u32(v);
                    }
                }
            }
            Self::ElectronicKey(k) => {
                out.put_u8(0x34);
                out.put_u8(4);
                out.put_u16(k.vendor);
                out.put_u16(k.device_type);
                out.put_u16(k.product_code);
                out.put_u8(k.major);
                out.put_u8(k.minor);
            }
            Self::Symbolic(name) => {
                out.put_u8(0x91);
                out.put_u8(short_len("symbol name", name.len())?);
                out.put_bytes(name);
                if name.len() % 2 == 1 {
                    out.put_u8(0);
                }
            }
            Self::Data(d) => {
                if d.len() % 2 == 1 {
                    return Err(crate::EncodeError {
                        what: "data segment (odd length)",
                        value: d.len(),
                        max: d.len() - 1,
                    });
                }
                out.put_u8(0x80);
                out.put_u8(short_len("data segment words", d.len() / 2)?);
                out.put_bytes(d);
            }
        }
        Ok(())
    }
}

#[allow(clippy::indexing_slicing)] // const evaluation: an out-of-range index fails the build
static SLOTS: [u8; 256] = {
    let mut a = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        a[i] = i as u8;
        i += 1;
    }
    a
};

/// A validated, borrowed padded EPATH as it sits in a message. Iterating never fails:
/// the bytes were checked when the path was made.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EPath<'a> {
    bytes: &'a [u8],
}

impl<'a> EPath<'a> {
    /// Validate `bytes` as a sequence of segments; `base` is the offset of `bytes` in the
    /// buffer being decoded, for error reporting.
    pub fn new(bytes: &'a [u8], base: usize) -> DecodeResult<Self> {
        let mut r = Reader::with_base(bytes, base);
        while !r.is_empty() {
            Segment::decode(&mut r)?;
        }
        Ok(Self { bytes })
    }

    /// Read a path preceded by its size in 16-bit words (one byte).
    pub fn decode_sized(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let words = usize::from(r.u8("path size")?);
        let at = r.offset();
        Self::new(r.bytes(words * 2, "path")?, at)
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Size in 16-bit words.
    pub fn words(&self) -> usize {
        self.bytes.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn iter(&self) -> Segments<'a> {
        Segments {
            r: Reader::new(self.bytes),
        }
    }

    /// An owned segment list.
    pub fn to_path(&self) -> Path<'a> {
        Path(self.iter().collect())
    }

    /// The class, instance and attribute this path addresses, read from its leading
    /// logical segments (after any port segments).
    pub fn target(&self) -> Target {
        target_of(self.iter())
    }
}

impl fmt::Debug for EPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EPath({})", self.to_path())
    }
}

impl fmt::Display for EPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_path(), f)
    }
}

/// Iterator over a validated path's segments.
#[derive(Debug, Clone)]
pub struct Segments<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;
    fn next(&mut self) -> Option<Segment<'a>> {
        if self.r.is_empty() {
            return None;
        }
        Segment::decode(&mut self.r).ok()
    }
}

/// The object a path leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Target {
    pub class: Option<u32>,
    pub instance: Option<u32>,
    pub attribute: Option<u32>,
}

fn target_of<'a>(segments: impl Iterator<Item = Segment<'a>>) -> Target {
    let mut t = Target::default();
    for s in segments.skip_while(|s| matches!(s, Segment::Port { .. })) {
        match s {
            Segment::Logical {
                kind: LogicalKind::Class,
                value,
            } if t.class.is_none() => t.class = Some(value.get()),
            Segment::Logical {
                kind: LogicalKind::Instance,
                value,
            } if t.class.is_some() && t.instance.is_none() => t.instance = Some(value.get()),
            Segment::Logical {
                kind: LogicalKind::Attribute,
                value,
            } if t.instance.is_some() && t.attribute.is_none() => t.attribute = Some(value.get()),
            _ => break,
        }
    }
    t
}

/// An owned list of segments, for building requests and for text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Path<'a>(pub Vec<Segment<'a>>);

impl<'a> Path<'a> {
    /// `20 cc 24 ii [30 aa]` in narrowest forms.
    pub fn object(class: u32, instance: u32, attribute: Option<u32>) -> Self {
        let mut v = vec![Segment::class(class), Segment::instance(instance)];
        v.extend(attribute.map(Segment::attribute));
        Self(v)
    }

    /// The Message Router, `20 02 24 01`.
    pub fn message_router() -> Self {
        Self::object(0x02, 1, None)
    }

    /// The Connection Manager, `20 06 24 01`.
    pub fn connection_manager() -> Self {
        Self::object(0x06, 1, None)
    }

    pub fn segments(&self) -> &[Segment<'a>] {
        &self.0
    }

    pub fn target(&self) -> Target {
        target_of(self.0.iter().copied())
    }

    /// Append the padded encoding (without a size prefix).
    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        for s in &self.0 {
            s.encode(out)?;
        }
        Ok(())
    }

    /// Append the size in words (one byte), then the path.
    pub fn encode_sized(&self, out: &mut Vec<u8>) -> EncodeResult {
        let at = out.len();
        out.put_u8(0);
        self.encode(out)?;
        let words = short_len("path size in words", (out.len() - at - 1) / 2)?;
        if let Some(b) = out.get_mut(at) {
            *b = words;
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> EncodeResult<Vec<u8>> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Parse the text form of a tag or object path (see [`parse_text`]).
    pub fn parse(text: &'a str) -> Result<Self, TextError> {
        parse_text(text)
    }
}

impl<'a> FromIterator<Segment<'a>> for Path<'a> {
    fn from_iter<T: IntoIterator<Item = Segment<'a>>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

// ---------------------------------------------------------------------------------------
// Text forms

/// A text path that does not parse: what, and the character offset it points at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at character {offset}")]
pub struct TextError {
    pub offset: usize,
    pub message: String,
}

impl TextError {
    fn new(offset: usize, message: impl Into<String>) -> Self {
        Self {
            offset,
            message: message.into(),
        }
    }

    /// The input with a caret under the offending character.
    pub fn pointer(&self, input: &str) -> String {
        let col = input
            .char_indices()
            .take_while(|(i, _)| *i < self.offset)
            .count();
        format!("{input}\n{}^ {}", " ".repeat(col), self.message)
    }
}

/// Parse a path typed by a person:
///
/// - symbolic: `Tag`, `Tag.Member[1,2].X`, `Program:Main.Step`, `Local:1:I.Data[0]`;
///   each name becomes a 0x91 segment, each index an element segment right after it;
/// - numeric (cpppo): `@class/instance[/attribute[/element]]`, numbers in decimal,
///   `0x`, `0o` or `0b`, optionally followed by `[i,j]` indexes and `.Member` names
///   (Logix symbol-instance addressing: `@0x6B/0x25[3].Member`).
pub fn parse_text(text: &str) -> Result<Path<'_>, TextError> {
    let mut p = TextParser { s: text, pos: 0 };
    let path = p.path()?;
    if p.pos < text.len() {
        return Err(TextError::new(p.pos, "unexpected character"));
    }
    Ok(path)
}

/// Parse a path at the start of `text`, returning it and the byte offset where it ended
/// (for grammars that continue after the path, such as a client's `Tag[0-3]=1,2`).
pub fn parse_text_prefix(text: &str) -> Result<(Path<'_>, usize), TextError> {
    let mut p = TextParser { s: text, pos: 0 };
    let path = p.path()?;
    Ok((path, p.pos))
}

struct TextParser<'a> {
    s: &'a str,
    pos: usize,
}

const MAX_DIMS: usize = 3;

impl<'a> TextParser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn path(&mut self) -> Result<Path<'a>, TextError> {
        let mut segs = Vec::new();
        match self.peek() {
            None => return Err(TextError::new(0, "empty path")),
            Some(b'@') => {
                self.pos += 1;
                self.numeric(&mut segs)?;
                self.indexes(&mut segs)?;
            }
            Some(_) => {
                self.name(&mut segs, true)?;
                self.indexes(&mut segs)?;
            }
        }
        while self.peek() == Some(b'.') {
            self.pos += 1;
            self.name(&mut segs, false)?;
            self.indexes(&mut segs)?;
        }
        Ok(Path(segs))
    }

    fn numeric(&mut self, segs: &mut Vec<Segment<'a>>) -> Result<(), TextError> {
        const KINDS: [LogicalKind; 4] = [
            LogicalKind::Class,
            LogicalKind::Instance,
            LogicalKind::Attribute,
            LogicalKind::Element,
        ];
        for (i, kind) in KINDS.into_iter().enumerate() {
            if i > 0 {
                if self.peek() != Some(b'/') {
                    break;
                }
                self.pos += 1;
            }
            let v = self.number()?;
            segs.push(Segment::logical(kind, v));
        }
        if segs.len() < 2 {
            return Err(TextError::new(
                self.pos,
                "expected `/instance` after the class (`@class/instance[/attribute]`)",
            ));
        }
        Ok(())
    }

    fn number(&mut self) -> Result<u32, TextError> {
        let start = self.pos;
        let rest = self.s.get(start..).unwrap_or_default();
        let (radix, skip) = match rest.get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("0x") => (16, 2),
            Some("0o") => (8, 2),
            Some("0b") => (2, 2),
            _ => (10, 0),
        };
        let digits: usize = rest
            .bytes()
            .skip(skip)
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        let text = rest.get(skip..skip + digits).unwrap_or_default();
        if !text.chars().next().is_some_and(|c| c.is_digit(radix)) {
            return Err(TextError::new(start + skip, "expected a number"));
        }
        let v = u32::from_str_radix(text, radix).map_err(|e| {
            let shown = rest.get(..skip + digits).unwrap_or_default();
            TextError::new(start, format!("bad number `{shown}`: {e}"))
        })?;
        self.pos = start + skip + digits;
        Ok(v)
    }

    fn name(&mut self, segs: &mut Vec<Segment<'a>>, first: bool) -> Result<(), TextError> {
        let start = self.pos;
        let bytes = self.s.as_bytes();
        match bytes.get(start) {
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
            Some(c) if c.is_ascii_digit() && !first => {
                return Err(TextError::new(
                    start,
                    "a bit number (`Tag.5`) is not part of a path; address the whole integer",
                ))
            }
            Some(_) => {
                return Err(TextError::new(
                    start,
                    "expected a name (letter or `_` first)",
                ))
            }
            None => return Err(TextError::new(start, "expected a name")),
        }
        let len = bytes
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || (first && **c == b':'))
            .count();
        if len > 255 {
            return Err(TextError::new(start, "name longer than 255 characters"));
        }
        let name = self.s.get(start..start + len).unwrap_or_default();
        self.pos = start + len;
        segs.push(Segment::Symbolic(name.as_bytes()));
        Ok(())
    }

    fn indexes(&mut self, segs: &mut Vec<Segment<'a>>) -> Result<(), TextError> {
        if self.peek() != Some(b'[') {
            return Ok(());
        }
        let open = self.pos;
        self.pos += 1;
        // An element given as `@c/i/a/e` counts toward the three dimensions.
        let mut n = segs
            .iter()
            .rev()
            .take_while(|s| s.logical_value(LogicalKind::Element).is_some())
            .count();
        loop {
            self.skip_spaces();
            let v = self.number()?;
            n += 1;
            if n > MAX_DIMS {
                return Err(TextError::new(open, "more than 3 array dimensions"));
            }
            segs.push(Segment::element(v));
            self.skip_spaces();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(TextError::new(self.pos, "expected `,` or `]`")),
            }
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }
}

/// Prints the text form: names joined by `.`, element runs as `[i,j]`, leading numeric
/// addressing as `@class/instance/attribute` in decimal. Segments with no text form
/// (ports, keys, data) print in a bracketed descriptive form that does not re-parse.
impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut in_index = false;
        let mut numeric = 0; // numeric components printed so far
        let mut any = false;
        // Whether anything but port segments has been printed.
        let mut named = false;
        for s in &self.0 {
            let is_element = matches!(
                s,
                Segment::Logical {
                    kind: LogicalKind::Element,
                    ..
                }
            );
            if in_index && !is_element {
                f.write_str("]")?;
                in_index = false;
            }
            match s {
                Segment::Logical {
                    kind: LogicalKind::Element,
                    value,
                } => {
                    if in_index {
                        write!(f, ",{}", value.get())?;
                    } else {
                        write!(f, "[{}", value.get())?;
                        in_index = true;
                    }
                }
                Segment::Logical { kind, value }
                    if any_numeric_slot(*kind, numeric) && (numeric > 0 || !named) =>
                {
                    let sep = if numeric == 0 { "@" } else { "/" };
                    write!(f, "{sep}{}", value.get())?;
                    numeric += 1;
                }
                Segment::Logical { kind, value } => {
                    write!(f, "<{kind:?} {}>", value.get())?;
                }
                Segment::Symbolic(name) => {
                    if any {
                        f.write_str(".")?;
                    }
                    f.write_str(&String::from_utf8_lossy(name))?;
                    numeric = usize::MAX;
                }
                Segment::Port { port, link } => {
                    if let [slot] = link {
                        write!(f, "<port {port} link {slot}>")?;
                    } else {
                        write!(f, "<port {port} link {}>", String::from_utf8_lossy(link))?;
                    }
                }
                Segment::ElectronicKey(k) => write!(
                    f,
                    "<key {}/{}/{} {}.{}>",
                    k.vendor, k.device_type, k.product_code, k.major, k.minor
                )?,
                Segment::Data(d) => write!(f, "<data {} bytes>", d.len())?,
            }
            any = true;
            named |= !matches!(s, Segment::Port { .. });
        }
        if in_index {
            f.write_str("]")?;
        }
        Ok(())
    }
}

/// Whether a logical segment of `kind` continues an `@c/i/a` run that has printed
/// `printed` components.
fn any_numeric_slot(kind: LogicalKind, printed: usize) -> bool {
    matches!(
        (printed, kind),
        (0, LogicalKind::Class) | (1, LogicalKind::Instance) | (2, LogicalKind::Attribute)
    )
}

/// Parse a route path typed as `port/link[/port/link...]` (cpppo's `1/0`), where a link
/// is a slot number or an address such as `10.0.0.1`.
pub fn parse_route_text(text: &str) -> Result<Path<'_>, TextError> {
    let mut segs = Vec::new();
    let mut parts = text.split('/');
    let mut offset = 0;
    while let Some(port_text) = parts.next() {
        let port: u16 = parse_int(port_text)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| TextError::new(offset, format!("bad port number `{port_text}`")))?;
        offset += port_text.len() + 1;
        let Some(link_text) = parts.next() else {
            return Err(TextError::new(
                text.len(),
                "expected `/link` after the port",
            ));
        };
        let seg = match parse_int(link_text).and_then(|l| u8::try_from(l).ok()) {
            Some(slot) => Segment::port(port, slot),
            None if !link_text.is_empty()
                && link_text
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b':') =>
            {
                Segment::Port {
                    port,
                    link: link_text.as_bytes(),
                }
            }
            None => {
                return Err(TextError::new(
                    offset,
                    format!("bad link address `{link_text}`"),
                ))
            }
        };
        segs.push(seg);
        offset += link_text.len() + 1;
    }
    Ok(Path(segs))
}

fn parse_int(s: &str) -> Option<u32> {
    let l = s.to_ascii_lowercase();
    if let Some(h) = l.strip_prefix("0x") {
        u32::from_str_radix(h, 16).ok()
    } else if let Some(o) = l.strip_prefix("0o") {
        u32::from_str_radix(o, 8).ok()
    } else if let Some(b) = l.strip_prefix("0b") {
        u32::from_str_radix(b, 2).ok()
    } else {
        l.parse().ok()
    }
}
