//! cpppo's client operation grammar, parsed into [`Operation`]s.
//!
//! ```text
//! Tag                       read one element (no index: a scalar access)
//! Tag[3]  Tag[1-5]  Tag*5   element 3; elements 1..=5; 5 elements from the start
//! A.B[2].C[0-3]             members; only the last part may give a count
//! @0x22/1/3[/elm]           numeric class/instance/attribute[/element], 0x 0o 0b or decimal
//! Tag[0-9]+16               byte offset: Read/Write Tag Fragmented from there
//! Tag[0-3]=(DINT)1,2,3,4    write; (TYPE) cast, default REAL if a value has `.`, else INT
//! ```
//!
//! Extensions cpppo lacks, each refused by cpppo itself so no cpppo command changes
//! meaning: `Grid[1,2]` (several dimensions, the range on the last), `Program:Main.Tag`.
//! Every error carries the character offset it is about, and [`OpError::pointer`] puts a
//! caret under it.

use enip_proto::path::{LogicalKind, Path, Segment};
use enip_proto::types::DataType;

/// One parsed operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// The operation as typed.
    pub text: String,
    pub segments: Vec<Seg>,
    /// The encoded request path (no size prefix).
    pub path: Vec<u8>,
    /// cpppo's element count: `[i-j]` or `*N`; `None` means one element.
    pub count: Option<u16>,
    /// A byte offset (`+N`): forces the fragmented services.
    pub offset: Option<u32>,
    /// Values to write (`=...`).
    pub write: Option<WriteValues>,
}

/// An owned path segment, as the grammar produces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Symbol(String),
    Class(u32),
    Instance(u32),
    Attribute(u32),
    Element(u32),
}

/// Values of a write, cast as cpppo casts them.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteValues {
    pub data_type: DataType,
    pub values: Vec<Scalar>,
}

/// A value as cpppo holds it after the cast (and as it prints it back).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Int(i128),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Scalar {
    /// Python's repr, as cpppo prints written values.
    pub fn repr(&self) -> String {
        match self {
            Self::Int(i) => i.to_string(),
            Self::Float(f) => crate::pyfmt::float(*f),
            Self::Bool(b) => crate::pyfmt::boolean(*b).to_string(),
            Self::Str(s) => crate::pyfmt::string(s),
        }
    }
}

/// An operation that does not parse: what, and where (a byte offset into the text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at character {offset}")]
pub struct OpError {
    pub offset: usize,
    pub message: String,
}

impl OpError {
    fn new(offset: usize, message: impl Into<String>) -> Self {
        Self {
            offset,
            message: message.into(),
        }
    }

    /// The operation with a caret under the offending character, and the message.
    pub fn pointer(&self, input: &str) -> String {
        let col = input
            .char_indices()
            .take_while(|(i, _)| *i < self.offset)
            .count();
        format!("{input}\n{}^ {}", " ".repeat(col), self.message)
    }
}

/// The casts cpppo accepts, and the value range it accepts for each (signed types also
/// take their unsigned range: "all provided values will fit the type without loss").
const CASTS: [(&str, DataType); 13] = [
    ("SINT", DataType::Sint),
    ("INT", DataType::Int),
    ("DINT", DataType::Dint),
    ("LINT", DataType::Lint),
    ("USINT", DataType::Usint),
    ("UINT", DataType::Uint),
    ("UDINT", DataType::Udint),
    ("ULINT", DataType::Ulint),
    ("REAL", DataType::Real),
    ("LREAL", DataType::Lreal),
    ("BOOL", DataType::Bool),
    ("SSTRING", DataType::ShortString),
    ("STRING", DataType::String),
];

fn int_range(t: DataType) -> Option<(i128, i128)> {
    Some(match t {
        DataType::Sint => (-(1 << 7), (1 << 8) - 1),
        DataType::Int => (-(1 << 15), (1 << 16) - 1),
        DataType::Dint => (-(1 << 31), (1 << 32) - 1),
        DataType::Lint => (-(1 << 63), (1 << 64) - 1),
        DataType::Usint => (0, (1 << 8) - 1),
        DataType::Uint => (0, (1 << 16) - 1),
        DataType::Udint => (0, (1 << 32) - 1),
        DataType::Ulint => (0, (1 << 64) - 1),
        _ => return None,
    })
}

/// Parse one operation. `int_type` is the type of integer values without a cast (cpppo:
/// INT).
pub fn parse(text: &str, int_type: DataType) -> Result<Operation, OpError> {
    let (tag_part, val) = match text.find('=') {
        Some(i) => (
            text.get(..i).unwrap_or_default(),
            Some((text.get(i + 1..).unwrap_or_default(), i + 1)),
        ),
        None => (text, None),
    };
    let (tag_part, off_part) = match tag_part.find('+') {
        Some(i) => (
            tag_part.get(..i).unwrap_or_default(),
            Some((tag_part.get(i + 1..).unwrap_or_default(), i + 1)),
        ),
        None => (tag_part, None),
    };
    let (tag, tag_at) = trim(tag_part, 0);
    let offset = match off_part {
        Some((t, at)) => {
            let (t, at) = trim(t, at);
            if t.is_empty() {
                None
            } else {
                Some(
                    py_int(t)
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or_else(|| OpError::new(at, format!("bad byte offset `{t}`")))?,
                )
            }
        }
        None => None,
    };
    let (segments, count) = parse_path(tag, tag_at)?;
    let path = encode_path(&segments).map_err(|e| OpError::new(tag_at, e.to_string()))?;
    let write = match val {
        None => None,
        Some((v, at)) => {
            let (v, at) = trim(v, at);
            Some(parse_values(v, at, int_type)?)
        }
    };
    if let Some(w) = &write {
        check_write_count(text, w, count, offset)?;
    }
    Ok(Operation {
        text: text.to_string(),
        segments,
        path,
        count,
        offset,
        write,
    })
}

/// cpppo's checks: a plain write gives exactly one value per element; a write at a byte
/// offset needs a fixed-size type, an element range, an offset on an element boundary, and
/// must end inside the range.
fn check_write_count(
    text: &str,
    w: &WriteValues,
    count: Option<u16>,
    offset: Option<u32>,
) -> Result<(), OpError> {
    let eq = text.find('=').unwrap_or(0);
    let n = w.values.len();
    match offset {
        None => match count {
            Some(c) if usize::from(c) != n => Err(OpError::new(
                eq + 1,
                format!("{n} value(s) for {c} element(s): give exactly one value per element"),
            )),
            _ => Ok(()),
        },
        Some(byte) => {
            let size = w.data_type.size().ok_or_else(|| {
                OpError::new(eq + 1, "a write at a byte offset needs a fixed-size type")
            })? as u64;
            let plus = text.find('+').unwrap_or(0);
            let Some(c) = count else {
                return Err(OpError::new(
                    plus,
                    "a write at a byte offset needs an element range, as `Tag[0-9]+4=...`",
                ));
            };
            if u64::from(byte) % size != 0 {
                return Err(OpError::new(
                    plus + 1,
                    format!("byte offset {byte} is not a multiple of the {size}-byte element"),
                ));
            }
            let end = u64::from(byte) / size + n as u64;
            if end > u64::from(c) {
                return Err(OpError::new(
                    eq + 1,
                    format!(
                        "{n} value(s) from byte {byte} run past the {c} element(s) of the range"
                    ),
                ));
            }
            Ok(())
        }
    }
}

fn trim(s: &str, at: usize) -> (&str, usize) {
    let start = s.len() - s.trim_start().len();
    (s.trim(), at + start)
}

/// Python's `int(x)`: optional sign, decimal digits, `_` between digits, whitespace around.
fn py_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..)?),
        Some(b'+') => (false, t.get(1..)?),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    {
        return None;
    }
    let v: i128 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

/// cpppo's `parse_int`: decimal (leading zeros are not octal), or `0x` `0o` `0b`.
fn parse_int(s: &str) -> Option<i128> {
    if let Some(v) = py_int(s) {
        return Some(v);
    }
    let t = s.trim().to_ascii_lowercase();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t.trim_start_matches('+').to_string()),
    };
    let (radix, digits) = if let Some(d) = t.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = t.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = t.strip_prefix("0b") {
        (2, d)
    } else {
        return None;
    };
    let v = i128::from_str_radix(&digits.replace('_', ""), radix).ok()?;
    Some(if neg { -v } else { v })
}

fn parse_path(tag: &str, at: usize) -> Result<(Vec<Seg>, Option<u16>), OpError> {
    if tag.is_empty() {
        return Err(OpError::new(at, "expected a tag name or `@class/instance`"));
    }
    let mut segs = Vec::new();
    let mut count = None;
    let parts: Vec<(usize, &str)> = split_with_offsets(tag, '.', at);
    let n = parts.len();
    for (i, (pos, comp)) in parts.into_iter().enumerate() {
        let last = i + 1 == n;
        let comp_count = parse_component(comp, pos, i == 0, &mut segs)?;
        if !last && !matches!(comp_count, None | Some(1)) {
            return Err(OpError::new(
                pos,
                "only the last part of a path may give an element count",
            ));
        }
        if last {
            count = comp_count;
        }
    }
    Ok((segs, count))
}

fn split_with_offsets(s: &str, sep: char, at: usize) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == sep {
            out.push((at + start, s.get(start..i).unwrap_or_default()));
            start = i + c.len_utf8();
        }
    }
    out.push((at + start, s.get(start..).unwrap_or_default()));
    out
}

/// One `.`-separated part: `name`, `name[i]`, `name[i-j]`, `name*N`, `@c/i/a/e`, with
/// the element segments appended to `segs`. Returns the part's element count.
fn parse_component(
    comp: &str,
    at: usize,
    first: bool,
    segs: &mut Vec<Seg>,
) -> Result<Option<u16>, OpError> {
    if comp.is_empty() {
        return Err(OpError::new(at, "expected a name"));
    }
    let mut count: Option<u16> = None;
    let (head, star) = match comp.find('*') {
        Some(i) => (
            comp.get(..i).unwrap_or_default(),
            Some((comp.get(i + 1..).unwrap_or_default(), at + i + 1)),
        ),
        None => (comp, None),
    };
    if let Some((t, tat)) = star {
        let v = parse_int(t)
            .filter(|v| (1..=i128::from(u16::MAX)).contains(v))
            .ok_or_else(|| OpError::new(tat, format!("bad element count `{t}`")))?;
        count = Some(v as u16);
    }
    let (name, index) = match head.find('[') {
        Some(i) => {
            let inner = head.get(i + 1..).unwrap_or_default();
            let close = inner
                .find(']')
                .ok_or_else(|| OpError::new(at + head.len(), "expected `]`"))?;
            let after = inner.get(close + 1..).unwrap_or_default();
            if !after.is_empty() {
                return Err(OpError::new(
                    at + i + 1 + close + 1,
                    "unexpected text after `[...]`",
                ));
            }
            (
                head.get(..i).unwrap_or_default(),
                Some((inner.get(..close).unwrap_or_default(), at + i + 1)),
            )
        }
        None => (head, None),
    };
    if let Some(num) = name.strip_prefix('@') {
        if !first {
            return Err(OpError::new(
                at,
                "numeric addressing `@class/instance` only starts a path",
            ));
        }
        const KINDS: [fn(u32) -> Seg; 4] =
            [Seg::Class, Seg::Instance, Seg::Attribute, Seg::Element];
        for (k, (pos, term)) in split_with_offsets(num, '/', at + 1).into_iter().enumerate() {
            let make = KINDS.get(k).ok_or_else(|| {
                OpError::new(
                    pos - 1,
                    "at most 4 terms: `@class/instance/attribute/element`",
                )
            })?;
            let v = parse_int(term)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| {
                    OpError::new(
                        pos,
                        format!("bad number `{term}` (decimal, 0x.., 0o.. or 0b..)"),
                    )
                })?;
            segs.push(make(v));
        }
    } else {
        check_name(name, at, first)?;
        segs.push(Seg::Symbol(name.to_string()));
    }
    if let Some((idx, iat)) = index {
        let dims = split_with_offsets(idx, ',', iat);
        let nd = dims.len();
        if nd > 3 {
            return Err(OpError::new(iat, "more than 3 array dimensions"));
        }
        // cpppo replaces an element already given as the 4th numeric term.
        if matches!(segs.last(), Some(Seg::Element(_))) {
            segs.pop();
        }
        for (d, (pos, text)) in dims.into_iter().enumerate() {
            let (text, pos) = trim(text, pos);
            let (first_text, range) = match text.find('-').filter(|&i| i > 0) {
                Some(i) if d + 1 == nd => (
                    text.get(..i).unwrap_or_default(),
                    Some((text.get(i + 1..).unwrap_or_default(), pos + i + 1)),
                ),
                _ => (text, None),
            };
            let first_v = py_int(first_text)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| OpError::new(pos, format!("bad index `{first_text}`")))?;
            segs.push(Seg::Element(first_v));
            if let Some((lt, lat)) = range {
                let last_v = py_int(lt)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| OpError::new(lat, format!("bad index `{lt}`")))?;
                if last_v < first_v {
                    return Err(OpError::new(
                        pos,
                        format!("invalid element range {first_v}-{last_v}"),
                    ));
                }
                let n = u64::from(last_v - first_v) + 1;
                count = Some(u16::try_from(n).map_err(|_| {
                    OpError::new(pos, format!("{n} elements is more than a request can ask"))
                })?);
            }
        }
    }
    Ok(count)
}

fn check_name(name: &str, at: usize, first: bool) -> Result<(), OpError> {
    let mut chars = name.char_indices();
    match chars.next() {
        None => return Err(OpError::new(at, "expected a name")),
        Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
        Some((_, c)) if c.is_ascii_digit() && !first => {
            return Err(OpError::new(
                at,
                "a bit number (`Tag.5`) is not part of cpppo's grammar",
            ))
        }
        Some(_) => return Err(OpError::new(at, "expected a name (letter or `_` first)")),
    }
    for (i, c) in chars {
        // `Program:Main.Tag` and I/O tags such as `Local:1:I` keep `:` in the first part.
        if !(c.is_ascii_alphanumeric() || c == '_' || (first && c == ':')) {
            return Err(OpError::new(at + i, format!("unexpected character `{c}`")));
        }
    }
    if name.len() > 255 {
        return Err(OpError::new(at, "name longer than 255 characters"));
    }
    Ok(())
}

fn encode_path(segs: &[Seg]) -> Result<Vec<u8>, enip_proto::EncodeError> {
    let path: Path<'_> = segs
        .iter()
        .map(|s| match s {
            Seg::Symbol(n) => Segment::Symbolic(n.as_bytes()),
            Seg::Class(v) => Segment::logical(LogicalKind::Class, *v),
            Seg::Instance(v) => Segment::logical(LogicalKind::Instance, *v),
            Seg::Attribute(v) => Segment::logical(LogicalKind::Attribute, *v),
            Seg::Element(v) => Segment::logical(LogicalKind::Element, *v),
        })
        .collect();
    path.to_bytes()
}

fn parse_values(v: &str, at: usize, int_type: DataType) -> Result<WriteValues, OpError> {
    if v.is_empty() {
        return Err(OpError::new(at, "expected values after `=`"));
    }
    let mut data_type = if v.contains('.') {
        DataType::Real
    } else {
        int_type
    };
    let mut rest = v;
    let mut rest_at = at;
    if v.starts_with('(') {
        if let Some(close) = v.find(')') {
            let raw = v.get(1..close).unwrap_or_default();
            let (name, name_at) = trim(raw, at + 1);
            let upper = name.to_ascii_uppercase();
            data_type = CASTS
                .iter()
                .find(|(n, _)| *n == upper)
                .map(|(_, t)| *t)
                .ok_or_else(|| {
                    OpError::new(
                        name_at,
                        format!(
                            "unknown type `{name}` (one of {})",
                            CASTS.map(|(n, _)| n).join(" ")
                        ),
                    )
                })?;
            rest = v.get(close + 1..).unwrap_or_default();
            rest_at = at + close + 1;
        }
    }
    let fields = csv_fields(rest, rest_at);
    if fields.is_empty() {
        return Err(OpError::new(rest_at, "expected values after the type"));
    }
    let values = fields
        .into_iter()
        .map(|(text, pos)| cast(&text, pos, data_type))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WriteValues { data_type, values })
}

/// Python's `csv.reader` with `quotechar='"'`, `skipinitialspace=True`: comma-separated
/// fields, `"..."` quoting with `""` for a quote. An empty text has no fields.
fn csv_fields(s: &str, at: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    if s.is_empty() {
        return out;
    }
    let b: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    loop {
        while b.get(i).is_some_and(|(_, c)| *c == ' ') {
            i += 1;
        }
        let start = b.get(i).map_or(s.len(), |(p, _)| *p);
        let mut field = String::new();
        if b.get(i).is_some_and(|(_, c)| *c == '"') {
            i += 1;
            while let Some(&(_, c)) = b.get(i) {
                i += 1;
                if c == '"' {
                    if b.get(i).is_some_and(|(_, c)| *c == '"') {
                        field.push('"');
                        i += 1;
                    } else {
                        break;
                    }
                } else {
                    field.push(c);
                }
            }
        }
        while let Some(&(_, c)) = b.get(i) {
            if c == ',' {
                break;
            }
            field.push(c);
            i += 1;
        }
        out.push((field, at + start));
        if b.get(i).is_some_and(|(_, c)| *c == ',') {
            i += 1;
        } else {
            break;
        }
    }
    out
}

fn cast(text: &str, at: usize, t: DataType) -> Result<Scalar, OpError> {
    let bad = |what: &str| OpError::new(at, format!("`{text}` is not {what}"));
    match t {
        DataType::Real | DataType::Lreal => {
            let s = text.trim().replace('_', "");
            let v: f64 = s.parse().map_err(|_| bad("a number"))?;
            Ok(Scalar::Float(v))
        }
        DataType::Bool => match py_int(text) {
            Some(v) => Ok(Scalar::Bool(v != 0)),
            None => match text.to_ascii_lowercase().as_str() {
                "true" => Ok(Scalar::Bool(true)),
                "false" => Ok(Scalar::Bool(false)),
                _ => Err(bad("a BOOL (0, 1, true or false)")),
            },
        },
        DataType::String | DataType::ShortString => {
            if t == DataType::ShortString && text.len() > 255 {
                return Err(OpError::new(at, "an SSTRING holds at most 255 characters"));
            }
            Ok(Scalar::Str(text.to_string()))
        }
        _ => {
            let v = py_int(text).ok_or_else(|| bad("an integer"))?;
            let (lo, hi) = int_range(t).unwrap_or((0, 0));
            if v < lo || v > hi {
                return Err(OpError::new(
                    at,
                    format!("{v} does not fit {t} ({lo}..={hi})"),
                ));
            }
            Ok(Scalar::Int(v))
        }
    }
}

impl Operation {
    /// Elements the request asks for (cpppo's default: 1).
    pub fn elements(&self) -> u16 {
        self.count.unwrap_or(1)
    }

    /// cpppo's `format_path`: names joined by `.`, numeric paths as `@0x%04X/%d/%d`, and
    /// the LAST index group seen in the path appended (cpppo keeps only the last element,
    /// so `A.B[2].C[0-3]` prints as `A.B.C[0]`).
    pub fn tag_text(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        let mut numeric: Vec<String> = Vec::new();
        let mut group: Vec<u32> = Vec::new();
        let mut in_group = false;
        for s in &self.segments {
            match s {
                Seg::Symbol(n) => {
                    names.push(n);
                    in_group = false;
                }
                Seg::Class(v) if numeric.is_empty() => numeric.push(format!("0x{v:04X}")),
                Seg::Class(v) | Seg::Instance(v) | Seg::Attribute(v) => numeric.push(v.to_string()),
                Seg::Element(v) => {
                    if !in_group {
                        group.clear();
                        in_group = true;
                    }
                    group.push(*v);
                }
            }
        }
        let mut out = if numeric.is_empty() {
            names.join(".")
        } else {
            let mut s = format!("@{}", numeric.join("/"));
            for n in names {
                s.push('.');
                s.push_str(n);
            }
            s
        };
        if !group.is_empty() {
            let idx: Vec<String> = group.iter().map(u32::to_string).collect();
            out.push_str(&format!("[{}]", idx.join(",")));
        }
        out
    }

    /// cpppo's `elm`: the index in the path's last segment, if it is an element.
    pub fn element(&self) -> Option<u32> {
        match self.segments.last() {
            Some(Seg::Element(e)) => Some(*e),
            _ => None,
        }
    }

    /// Whether the path is a numeric `@class/instance/attribute` address.
    pub fn is_numeric(&self) -> bool {
        matches!(self.segments.first(), Some(Seg::Class(_)))
    }
}

/// The values to write, encoded for the wire as `data_type` elements.
pub fn encode_values(w: &WriteValues) -> Vec<u8> {
    use enip_proto::types::Value;
    let mut out = Vec::new();
    for v in &w.values {
        let value = match (w.data_type, v) {
            (DataType::Bool, Scalar::Bool(b)) => Value::Bool(*b),
            (DataType::Real, Scalar::Float(f)) => Value::Real(*f as f32),
            (DataType::Lreal, Scalar::Float(f)) => Value::Lreal(*f),
            (DataType::String, Scalar::Str(s)) => Value::String(s.as_bytes().to_vec()),
            (DataType::ShortString, Scalar::Str(s)) => Value::ShortString(s.as_bytes().to_vec()),
            // Integers were range-checked at parse time; the extra range of the signed
            // types wraps to the same bits, as cpppo writes them.
            (DataType::Sint, Scalar::Int(i)) => Value::Sint(*i as i8),
            (DataType::Int, Scalar::Int(i)) => Value::Int(*i as i16),
            (DataType::Dint, Scalar::Int(i)) => Value::Dint(*i as i32),
            (DataType::Lint, Scalar::Int(i)) => Value::Lint(*i as i64),
            (DataType::Usint, Scalar::Int(i)) => Value::Usint(*i as u8),
            (DataType::Uint, Scalar::Int(i)) => Value::Uint(*i as u16),
            (DataType::Udint, Scalar::Int(i)) => Value::Udint(*i as u32),
            (DataType::Ulint, Scalar::Int(i)) => Value::Ulint(*i as u64),
            _ => continue,
        };
        // Strings were length-checked; the rest cannot fail to encode.
        let _ = value.encode(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Operation {
        match parse(text, DataType::Int) {
            Ok(op) => op,
            Err(e) => panic!("{}", e.pointer(text)),
        }
    }

    fn err(text: &str) -> String {
        match parse(text, DataType::Int) {
            Ok(op) => panic!("{text} parsed: {op:?}"),
            Err(e) => e.pointer(text),
        }
    }

    #[test]
    fn grammar() {
        let cases: &[(&str, &str)] = &[
            ("SCADA", "SCADA elm=None count=None off=None"),
            ("SCADA[3]", "SCADA[3] elm=Some(3) count=None off=None"),
            ("SCADA[1-5]", "SCADA[1] elm=Some(1) count=Some(5) off=None"),
            ("SCADA*5", "SCADA elm=None count=Some(5) off=None"),
            ("SCADA[2]*3", "SCADA[2] elm=Some(2) count=Some(3) off=None"),
            (
                "SCADA[1-3]*9",
                "SCADA[1] elm=Some(1) count=Some(3) off=None",
            ),
            (
                "A.B[2].C[0-3]",
                "A.B.C[0] elm=Some(0) count=Some(4) off=None",
            ),
            ("A.B[2].C", "A.B.C[2] elm=None count=None off=None"),
            ("@0x22/1/3", "@0x0022/1/3 elm=None count=None off=None"),
            (
                "@0x22/1/3[1]",
                "@0x0022/1/3[1] elm=Some(1) count=None off=None",
            ),
            ("@1/1/7/2", "@0x0001/1/7[2] elm=Some(2) count=None off=None"),
            (
                "@1/1/7/2[5-6]",
                "@0x0001/1/7[5] elm=Some(5) count=Some(2) off=None",
            ),
            ("@0b11/0o7/010", "@0x0003/7/10 elm=None count=None off=None"),
            (
                "SCADA[0-9]+16",
                "SCADA[0] elm=Some(0) count=Some(10) off=Some(16)",
            ),
            (
                " SCADA[0-3] + 4 ",
                "SCADA[0] elm=Some(0) count=Some(4) off=Some(4)",
            ),
            ("Grid[1,2]", "Grid[1,2] elm=Some(2) count=None off=None"),
            (
                "Grid[1,2-3]",
                "Grid[1,2] elm=Some(2) count=Some(2) off=None",
            ),
            (
                "Program:Main.Step",
                "Program:Main.Step elm=None count=None off=None",
            ),
            ("SCADA+", "SCADA elm=None count=None off=None"),
        ];
        for (text, want) in cases {
            let op = ok(text);
            let got = format!(
                "{} elm={:?} count={:?} off={:?}",
                op.tag_text(),
                op.element(),
                op.count,
                op.offset
            );
            assert_eq!(&got, want, "{text}");
        }
    }

    #[test]
    fn paths_encode_as_logix_expects() {
        assert_eq!(ok("SCADA[3]").path, b"\x91\x05SCADA\x00\x28\x03");
        assert_eq!(ok("@0x22/1/3").path, [0x20, 0x22, 0x24, 0x01, 0x30, 0x03]);
        assert_eq!(
            ok("A.B[300]").path,
            b"\x91\x01A\x00\x91\x01B\x00\x29\x00\x2c\x01"
        );
    }

    #[test]
    fn values_and_casts() {
        let cases: &[(&str, &str)] = &[
            ("SCADA[1]=99", "INT [99]"),
            ("SCADA[0-1]=1.5,2", "REAL [1.5, 2.0]"),
            ("SCADA[0-3]=(DINT)1,2,3,4", "DINT [1, 2, 3, 4]"),
            ("X=( real )1", "REAL [1.0]"),
            ("X=(BOOL)1", "BOOL [True]"),
            ("X=(BOOL)false", "BOOL [False]"),
            ("X=(SSTRING)\"a,b\"", "SSTRING ['a,b']"),
            ("X=(STRING)it's", "STRING [\"it's\"]"),
            ("X[0-1]=(STRING)\"x\", y", "STRING ['x', 'y']"),
            ("X=(DINT)4000000000", "DINT [4000000000]"),
            ("X=(SINT)-128", "SINT [-128]"),
            ("X=(LREAL)1e300", "LREAL [1e+300]"),
            ("X=1_000", "INT [1000]"),
            ("X[0-3]+4=(DINT)5,6", "DINT [5, 6]"),
        ];
        for (text, want) in cases {
            let w = ok(text).write.unwrap();
            let got = format!(
                "{} {}",
                w.data_type,
                crate::pyfmt::list(w.values.iter().map(Scalar::repr))
            );
            assert_eq!(&got, want, "{text}");
        }
    }

    #[test]
    fn values_encode() {
        let enc = |t: &str| encode_values(ok(t).write.as_ref().unwrap());
        assert_eq!(
            enc("X[0-1]=(DINT)1,-1"),
            [1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(enc("X=(DINT)4294967295"), [0xFF; 4]);
        assert_eq!(enc("X=(REAL)1.5"), 1.5f32.to_le_bytes());
        assert_eq!(enc("X=(SSTRING)ab"), [2, b'a', b'b']);
        assert_eq!(enc("X=(STRING)ab"), [2, 0, b'a', b'b']);
        assert_eq!(enc("X=(BOOL)1"), [0xFF]);
    }

    #[test]
    fn errors_point_at_the_offending_character() {
        let cases: &[(&str, &str)] = &[
            ("SCADA[0-1", "SCADA[0-1\n         ^ expected `]`"),
            ("SCADA[x]", "SCADA[x]\n      ^ bad index `x`"),
            ("SCADA[3-1]", "SCADA[3-1]\n      ^ invalid element range 3-1"),
            ("SCADA[1]x", "SCADA[1]x\n        ^ unexpected text after `[...]`"),
            ("SC-ADA", "SC-ADA\n  ^ unexpected character `-`"),
            ("", "\n^ expected a tag name or `@class/instance`"),
            ("A..B", "A..B\n  ^ expected a name"),
            ("A[0-3].B", "A[0-3].B\n^ only the last part of a path may give an element count"),
            ("@1/x", "@1/x\n   ^ bad number `x` (decimal, 0x.., 0o.. or 0b..)"),
            ("@1/2/3/4/5", "@1/2/3/4/5\n        ^ at most 4 terms: `@class/instance/attribute/element`"),
            ("S[0-1]=(FOO)1,2", "S[0-1]=(FOO)1,2\n        ^ unknown type `FOO` (one of SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL BOOL SSTRING STRING)"),
            ("S[0-1]=1", "S[0-1]=1\n       ^ 1 value(s) for 2 element(s): give exactly one value per element"),
            ("S=(INT)70000", "S=(INT)70000\n       ^ 70000 does not fit INT (-32768..=65535)"),
            ("S=(DINT)1,x", "S=(DINT)1,x\n          ^ `x` is not an integer"),
            ("S=", "S=\n  ^ expected values after `=`"),
            ("S=(DINT)", "S=(DINT)\n        ^ expected values after the type"),
            ("S+x", "S+x\n  ^ bad byte offset `x`"),
            ("S[0-3]+3=(DINT)1", "S[0-3]+3=(DINT)1\n       ^ byte offset 3 is not a multiple of the 4-byte element"),
            ("S+4=(DINT)1", "S+4=(DINT)1\n ^ a write at a byte offset needs an element range, as `Tag[0-9]+4=...`"),
            ("S[0-1]+4=(DINT)1,2", "S[0-1]+4=(DINT)1,2\n         ^ 2 value(s) from byte 4 run past the 2 element(s) of the range"),
            ("S*0", "S*0\n  ^ bad element count `0`"),
            ("A.5", "A.5\n  ^ a bit number (`Tag.5`) is not part of cpppo's grammar"),
        ];
        for (text, want) in cases {
            assert_eq!(&err(text), want, "{text}");
        }
    }
}
