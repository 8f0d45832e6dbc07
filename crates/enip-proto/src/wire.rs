//! Little-endian wire primitives: a bounds-checked reader that reports offsets, and
//! writer helpers on `Vec<u8>`.

use crate::error::{DecodeError, DecodeResult, EncodeResult, ErrorKind};

/// A cursor over a byte slice. Offsets in errors are `base + position`, so a reader made
/// for a sub-slice still reports positions in the outer buffer.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// A reader whose error offsets start at `base`.
    pub fn with_base(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn error(&self, kind: ErrorKind) -> DecodeError {
        DecodeError::new(kind, self.offset())
    }

    pub fn invalid(&self, what: &'static str, value: impl Into<u64>) -> DecodeError {
        self.error(ErrorKind::Invalid {
            what,
            value: value.into(),
        })
    }

    /// The unread bytes, consuming them.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    pub fn bytes(&mut self, n: usize, what: &'static str) -> DecodeResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end.and_then(|end| self.buf.get(self.pos..end).map(|s| (s, end))) {
            Some((s, end)) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(self.error(ErrorKind::Truncated {
                what,
                needed: n - self.remaining(),
            })),
        }
    }

    /// A sub-reader over the next `n` bytes; errors inside it report outer offsets.
    pub fn sub(&mut self, n: usize, what: &'static str) -> DecodeResult<Reader<'a>> {
        let base = self.offset();
        Ok(Reader::with_base(self.bytes(n, what)?, base))
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> DecodeResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> DecodeResult<u8> {
        Ok(u8::from_le_bytes(self.array(what)?))
    }
    pub fn u16(&mut self, what: &'static str) -> DecodeResult<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub fn u16_be(&mut self, what: &'static str) -> DecodeResult<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    pub fn u32(&mut self, what: &'static str) -> DecodeResult<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &'static str) -> DecodeResult<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self, what: &'static str) -> DecodeResult<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.error(ErrorKind::Trailing {
                what,
                count: self.remaining(),
            }))
        }
    }
}

/// Writer helpers: everything CIP writes is little-endian.
pub trait Writer {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_bytes(&mut self, b: &[u8]);
    /// Reserve a little-endian u16 to be filled by [`Writer::patch_u16`].
    fn placeholder_u16(&mut self) -> usize;
    /// Write `value` into a placeholder, refusing values that do not fit.
    fn patch_u16(&mut self, at: usize, what: &'static str, value: usize) -> EncodeResult;
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
    fn placeholder_u16(&mut self) -> usize {
        let at = self.len();
        self.extend_from_slice(&[0, 0]);
        at
    }
    fn patch_u16(&mut self, at: usize, what: &'static str, value: usize) -> EncodeResult {
        let v = u16::try_from(value).map_err(|_| crate::EncodeError {
            what,
            value,
            max: u16::MAX as usize,
        })?;
        if let Some(slot) = self.get_mut(at..at + 2) {
            slot.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    }
}

/// A length that must fit a one-byte field.
pub(crate) fn short_len(what: &'static str, len: usize) -> EncodeResult<u8> {
    u8::try_from(len).map_err(|_| crate::EncodeError {
        what,
        value: len,
        max: u8::MAX as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_report_offset_and_shortfall() {
        let mut r = Reader::with_base(&[1, 2, 3], 10);
        assert_eq!(r.u16("a").ok(), Some(0x0201));
        let e = r.u32("b").err();
        assert_eq!(
            e,
            Some(DecodeError::new(
                ErrorKind::Truncated {
                    what: "b",
                    needed: 3
                },
                12
            ))
        );
        // A failed read consumes nothing.
        assert_eq!(r.u8("c").ok(), Some(3));
        assert!(r.finish("x").is_ok());
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut r = Reader::new(&[0; 4]);
        assert!(r.bytes(usize::MAX, "x").is_err());
        assert!(r.sub(5, "x").is_err());
    }
}
