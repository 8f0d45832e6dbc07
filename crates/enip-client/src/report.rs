//! cpppo's printed line for an operation's result, computed as its client computes it
//! (quirks included: see [`line`]).

use crate::error::Error;
use crate::exec::{Exec, OpValue};
use crate::ops::{Operation, Scalar};
use crate::pyfmt;
use crate::value::{raw_repr, TagValue};

/// cpppo's result text: `OK`, `Status 4 [0]`; for failures that are not a CIP status
/// (cpppo has none: it raises), the error itself.
pub fn result_text(result: &Result<OpValue, Error>) -> String {
    match result {
        Ok(_) => "OK".into(),
        Err(Error::Cip {
            status, extended, ..
        }) => pyfmt::status(status.0, extended),
        Err(e) => e.to_string(),
    }
}

/// A read's values as cpppo prints them: a list, or for a structure it cannot decode
/// the raw-bytes dict.
pub fn values_repr(values: &[TagValue]) -> String {
    match values {
        [TagValue::Raw(b)] => raw_repr(b),
        v => pyfmt::list(v.iter().map(TagValue::repr)),
    }
}

/// The line cpppo's client prints for an operation (`-p`):
///
/// - reads print `==` and the values (`None` on failure); Read Tag shows the requested
///   count, Read Tag Fragmented the count received and the byte offset;
/// - writes print `<=` and the values sent, even when the write failed; Write Tag
///   Fragmented shows `elements - offset` as the count (cpppo subtracts a byte offset
///   from an element count: `SCADA[0-3]+4=...` prints `[  0--1 ]+  4`);
/// - the tag is cpppo's `format_path`: only the LAST index group of the path is shown.
pub fn line(
    op: &Operation,
    exec: &Exec,
    result: &Result<OpValue, Error>,
    values: &[TagValue],
) -> String {
    let frag = op.fragmented(exec);
    let off = if frag {
        i64::from(op.offset.unwrap_or(0))
    } else {
        0
    };
    let (action, shown, count) = match &op.write {
        Some(w) => {
            let shown = pyfmt::list(w.values.iter().map(Scalar::repr));
            let elements = i64::from(op.write_elements());
            ("<=", shown, if frag { elements - off } else { elements })
        }
        None => {
            let requested = i64::from(op.elements());
            match result {
                Ok(OpValue::Read(_)) => {
                    let n = match values {
                        [TagValue::Raw(_)] => 1,
                        v => v.len() as i64,
                    };
                    ("==", values_repr(values), if frag { n } else { requested })
                }
                _ => ("==", "None".to_string(), requested),
            }
        }
    };
    pyfmt::line(
        &op.tag_text(),
        op.element().map(i64::from),
        count,
        off,
        action,
        &shown,
        &pyfmt::string(&result_text(result)),
    )
}
