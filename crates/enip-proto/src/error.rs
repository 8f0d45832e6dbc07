//! Decode and encode errors. Every decode error names what was wrong and the byte offset,
//! counted from the start of the buffer handed to the outermost decoder call.

use std::fmt;

/// What was wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The structure needs `needed` more bytes than the buffer holds.
    Truncated { what: &'static str, needed: usize },
    /// A declared length exceeds the configured maximum.
    TooLong {
        what: &'static str,
        declared: usize,
        max: usize,
    },
    /// A field holds a value the codec does not accept.
    Invalid { what: &'static str, value: u64 },
    /// Bytes follow a structure that must end the buffer.
    Trailing { what: &'static str, count: usize },
    /// A structurally valid value that this codec does not implement.
    Unsupported { what: &'static str, value: u64 },
}

/// A decode failure: what, and where (byte offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    pub kind: ErrorKind,
    pub offset: usize,
}

impl DecodeError {
    pub fn new(kind: ErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    /// Shift the offset of an error found in a sub-buffer that starts at `base`.
    #[must_use]
    pub fn at(mut self, base: usize) -> Self {
        self.offset = self.offset.saturating_add(base);
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Truncated { what, needed } => {
                write!(f, "{what} truncated: {needed} more byte(s) needed")?
            }
            ErrorKind::TooLong {
                what,
                declared,
                max,
            } => write!(
                f,
                "{what} declares {declared} bytes, more than the maximum {max}"
            )?,
            ErrorKind::Invalid { what, value } => write!(f, "invalid {what} {value:#x}")?,
            ErrorKind::Trailing { what, count } => {
                write!(f, "{count} unexpected byte(s) after {what}")?
            }
            ErrorKind::Unsupported { what, value } => write!(f, "unsupported {what} {value:#x}")?,
        }
        write!(f, " at byte {}", self.offset)
    }
}

/// A message that cannot be put on the wire: a length that does not fit its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {what}: {value} exceeds the limit {max}")]
pub struct EncodeError {
    pub what: &'static str,
    pub value: usize,
    pub max: usize,
}

pub type DecodeResult<T> = Result<T, DecodeError>;
pub type EncodeResult<T = ()> = Result<T, EncodeError>;

pub(crate) fn check_len(what: &'static str, value: usize, max: usize) -> EncodeResult<()> {
    if value > max {
        Err(EncodeError { what, value, max })
    } else {
        Ok(())
    }
}
