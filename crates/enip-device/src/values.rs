//! Tag values as people write them — in a config file, a web API URL, a replayed history —
//! checked against the tag's type and stored all at once or not at all.

use enip_proto::types::{DataType, LogixString, Value};

use crate::controller::Controller;
use crate::tag::{ElementType, Tag, SSTRING_SIZE};

/// An untyped value; it takes the type of the tag it is written to.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Text(s) => write!(f, "{s:?}"),
        }
    }
}

impl Literal {
    /// A literal from text: `true`/`false`, an integer (decimal or `0x`), a float, or
    /// otherwise the text itself.
    pub fn parse(s: &str) -> Self {
        let t = s.trim();
        if t.eq_ignore_ascii_case("true") {
            return Self::Bool(true);
        }
        if t.eq_ignore_ascii_case("false") {
            return Self::Bool(false);
        }
        let (neg, digits) = match t.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, t),
        };
        let int = match digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            Some(h) => i128::from_str_radix(h, 16).ok(),
            None => digits.parse::<i128>().ok(),
        };
        if let Some(i) = int {
            return Self::Int(if neg { -i } else { i });
        }
        match t.parse::<f64>() {
            Ok(x) if !t.is_empty() => Self::Float(x),
            _ => Self::Text(s.to_owned()),
        }
    }

    fn from_value(v: &Value) -> Self {
        match v {
            Value::Bool(b) => Self::Bool(*b),
            Value::Sint(x) => Self::Int((*x).into()),
            Value::Int(x) => Self::Int((*x).into()),
            Value::Dint(x) => Self::Int((*x).into()),
            Value::Lint(x) => Self::Int((*x).into()),
            Value::Usint(x) | Value::Byte(x) => Self::Int((*x).into()),
            Value::Uint(x) | Value::Word(x) => Self::Int((*x).into()),
            Value::Udint(x) | Value::Dword(x) => Self::Int((*x).into()),
            Value::Ulint(x) | Value::Lword(x) => Self::Int((*x).into()),
            Value::Real(x) => Self::Float((*x).into()),
            Value::Lreal(x) => Self::Float(*x),
            Value::String(s) | Value::ShortString(s) => {
                Self::Text(String::from_utf8_lossy(s).into_owned())
            }
        }
    }
}

/// Why values could not be set or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("no tag `{0}`")]
    UnknownTag(String),
    #[error("`{tag}` has {elements} element(s); elements {start}..{end} are outside it")]
    OutOfRange {
        tag: String,
        elements: usize,
        start: usize,
        end: usize,
    },
    #[error("`{tag}[{index}]`: {value} is not a valid {ty}: {why}")]
    BadValue {
        tag: String,
        index: usize,
        value: String,
        ty: &'static str,
        why: &'static str,
    },
    #[error("`{0}` is a structure: set its members by name")]
    Structure(String),
}

impl Controller {
    /// Set elements `start..start + values.len()` of tag `name` (any case). Every value is
    /// checked before any is stored. A BOOL array (stored as DWORDs) takes one bool per
    /// bit, `start` counting bits, when every value is a bool.
    pub fn set_values(
        &mut self,
        name: &str,
        start: usize,
        values: &[Literal],
    ) -> Result<(), ValueError> {
        let id = self
            .tags
            .find(name)
            .ok_or_else(|| ValueError::UnknownTag(name.to_owned()))?;
        self.tags
            .get_mut(id)
            .ok_or_else(|| ValueError::UnknownTag(name.to_owned()))?
            .set_values(start, values)
    }

    /// Elements `start..start + count` of tag `name`, as literals.
    pub fn values(
        &self,
        name: &str,
        start: usize,
        count: usize,
    ) -> Result<Vec<Literal>, ValueError> {
        let tag = self
            .tags
            .find(name)
            .and_then(|id| self.tags.get(id))
            .ok_or_else(|| ValueError::UnknownTag(name.to_owned()))?;
        let size = tag.elem.size();
        let end = start + count;
        let bytes = tag
            .data
            .get(start * size..end * size)
            .filter(|_| end <= tag.elements())
            .ok_or_else(|| out_of_range(tag, start, end))?;
        Ok(bytes
            .chunks(size.max(1))
            .map(|c| decode(tag.elem, c))
            .collect())
    }
}

/// The elements in `bytes` (whole elements of `elem`), as literals.
pub fn literals(elem: ElementType, bytes: &[u8]) -> Vec<Literal> {
    bytes
        .chunks_exact(elem.size().max(1))
        .map(|c| decode(elem, c))
        .collect()
}

impl Tag {
    /// Set elements `start..start + values.len()`, all or none; see
    /// [`Controller::set_values`].
    pub fn set_values(&mut self, start: usize, values: &[Literal]) -> Result<(), ValueError> {
        let bits = self.elem == ElementType::Atomic(DataType::Dword)
            && !values.is_empty()
            && values.iter().all(|v| matches!(v, Literal::Bool(_)));
        if bits {
            return set_bits(self, start, values);
        }
        let size = self.elem.size();
        let end = start + values.len();
        if end > self.elements() {
            return Err(out_of_range(self, start, end));
        }
        let mut bytes = Vec::with_capacity(values.len() * size);
        for (i, v) in values.iter().enumerate() {
            encode(self, start + i, v, &mut bytes)?;
        }
        if let Some(dst) = self.data.get_mut(start * size..end * size) {
            dst.copy_from_slice(&bytes);
        }
        Ok(())
    }
}

fn out_of_range(tag: &Tag, start: usize, end: usize) -> ValueError {
    ValueError::OutOfRange {
        tag: tag.name.clone(),
        elements: tag.elements(),
        start,
        end,
    }
}

fn set_bits(tag: &mut Tag, start: usize, values: &[Literal]) -> Result<(), ValueError> {
    let end = start + values.len();
    let nbits = tag.elements() * 32;
    if end > nbits {
        return Err(ValueError::OutOfRange {
            tag: tag.name.clone(),
            elements: nbits,
            start,
            end,
        });
    }
    for (i, v) in values.iter().enumerate() {
        let bit = start + i;
        if let (Literal::Bool(b), Some(byte)) = (v, tag.data.get_mut(bit / 8)) {
            let mask = 1u8 << (bit % 8);
            if *b {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }
    Ok(())
}

fn decode(elem: ElementType, bytes: &[u8]) -> Literal {
    let mut r = enip_proto::wire::Reader::new(bytes);
    match elem {
        ElementType::Atomic(t) => Value::decode(t, &mut r)
            .map(|v| Literal::from_value(&v))
            .unwrap_or(Literal::Int(0)),
        ElementType::LogixString => LogixString::decode(&mut r).map_or_else(
            |_| Literal::Text(String::new()),
            |s| Literal::Text(String::from_utf8_lossy(&s.0).into_owned()),
        ),
        ElementType::ShortString => {
            let n = bytes.first().map_or(0, |&n| usize::from(n));
            let chars = bytes.get(1..1 + n).unwrap_or_default();
            Literal::Text(String::from_utf8_lossy(chars).into_owned())
        }
        // A whole structure: its bytes in hex.
        ElementType::Struct(_) => Literal::Text(bytes.iter().map(|b| format!("{b:02x}")).collect()),
    }
}

fn encode(tag: &Tag, index: usize, v: &Literal, out: &mut Vec<u8>) -> Result<(), ValueError> {
    let bad = |ty: &'static str, why: &'static str| ValueError::BadValue {
        tag: tag.name.clone(),
        index,
        value: v.to_string(),
        ty,
        why,
    };
    let t = match tag.elem {
        ElementType::Struct(_) => return Err(ValueError::Structure(tag.name.clone())),
        ElementType::ShortString => {
            let Literal::Text(s) = v else {
                return Err(bad("SSTRING", "expected text"));
            };
            let n = u8::try_from(s.len()).map_err(|_| bad("SSTRING", "longer than 255 bytes"))?;
            out.push(n);
            out.extend_from_slice(s.as_bytes());
            out.resize(out.len() + SSTRING_SIZE - 1 - s.len(), 0);
            return Ok(());
        }
        ElementType::LogixString => {
            let Literal::Text(s) = v else {
                return Err(bad("STRING", "expected text"));
            };
            return LogixString(s.as_bytes().to_vec())
                .encode(out)
                .map_err(|_| bad("STRING", "longer than 82 bytes"));
        }
        ElementType::Atomic(t) => t,
    };
    let name = t.name();
    let int = |lo: i128, hi: i128| -> Result<i128, ValueError> {
        match v {
            Literal::Int(i) if (lo..=hi).contains(i) => Ok(*i),
            Literal::Int(_) => Err(bad(name, "out of range")),
            Literal::Bool(b) => Ok(i128::from(*b)),
            Literal::Float(x) if x.fract() == 0.0 && (lo as f64..=hi as f64).contains(x) => {
                Ok(*x as i128)
            }
            Literal::Float(_) => Err(bad(name, "not a whole number in range")),
            Literal::Text(_) => Err(bad(name, "expected a number")),
        }
    };
    let float = || match v {
        Literal::Float(x) => Ok(*x),
        Literal::Int(i) => Ok(*i as f64),
        _ => Err(bad(name, "expected a number")),
    };
    let value = match t {
        DataType::Bool => Value::Bool(match v {
            Literal::Bool(b) => *b,
            Literal::Int(0) => false,
            Literal::Int(1) => true,
            _ => return Err(bad(name, "expected true, false, 0 or 1")),
        }),
        DataType::Sint => Value::Sint(int(i8::MIN.into(), i8::MAX.into())? as i8),
        DataType::Int => Value::Int(int(i16::MIN.into(), i16::MAX.into())? as i16),
        DataType::Dint => Value::Dint(int(i32::MIN.into(), i32::MAX.into())? as i32),
        DataType::Lint => Value::Lint(int(i64::MIN.into(), i64::MAX.into())? as i64),
        DataType::Usint | DataType::Byte => Value::Usint(int(0, u8::MAX.into())? as u8),
        DataType::Uint | DataType::Word => Value::Uint(int(0, u16::MAX.into())? as u16),
        DataType::Udint | DataType::Dword => Value::Udint(int(0, u32::MAX.into())? as u32),
        DataType::Ulint | DataType::Lword => Value::Ulint(int(0, u64::MAX.into())? as u64),
        DataType::Real => Value::Real(float()? as f32),
        DataType::Lreal => Value::Lreal(float()?),
        DataType::String | DataType::ShortString => {
            return Err(bad(name, "not a tag element type"))
        }
    };
    value.encode(out).map_err(|_| bad(name, "cannot encode"))
}
