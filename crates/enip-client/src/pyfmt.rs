//! Python's `repr` for the values cpppo prints, and cpppo's printed line per operation.
//!
//! cpppo users parse its output with scripts, so the text has to be byte for byte what
//! Python prints: `1.100000023841858` for a REAL holding 1.1, `'Status 4 [0]'`, `True`.

use std::fmt::Write as _;

/// `repr(float)`: the shortest digits that read back to the same double, in fixed
/// notation for exponents -4..16 and scientific (`1e+16`, `1.5e-05`) outside.
pub fn float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` prints the shortest round-trip digits, as Python's repr does.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let point = exp as usize + 1;
            if digits.len() <= point {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(digits.get(..point).unwrap_or_default());
                out.push('.');
                out.push_str(digits.get(point..).unwrap_or_default());
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(digits.get(..1).unwrap_or_default());
        if digits.len() > 1 {
            out.push('.');
            out.push_str(digits.get(1..).unwrap_or_default());
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// `repr(str)`: single quotes unless the text holds a `'` and no `"`; escapes for
/// backslash, the quote, and characters Python does not print.
pub fn string(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) || c == '\u{ad}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Bytes from the wire as cpppo turns them into a `str`: one character per byte.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// `repr(bool)`.
pub fn boolean(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// `repr(list)` of already repr'd items: `[1, 2, 3]`.
pub fn list<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// cpppo's result text for a reply status: `OK`, or `Status 255 [8453]` (extended
/// words in decimal), or `Status 6 ` — with the trailing space — when there are none.
pub fn status(general: u8, extended: &[u16]) -> String {
    if general == 0 {
        return "OK".into();
    }
    if extended.is_empty() {
        format!("Status {general} ")
    } else {
        format!(
            "Status {general} {}",
            list(extended.iter().map(|e| e.to_string()))
        )
    }
}

/// What cpppo's `validate` prints for one operation:
/// `"%20s[%3d-%-3d]+%3d %s %r: %r"`, or `"%20s              %s %r: %r"` when the path has
/// no element index. `value` and `result` are already repr'd.
pub fn line(
    tag: &str,
    element: Option<i64>,
    count: i64,
    offset: i64,
    action: &str,
    value: &str,
    result: &str,
) -> String {
    match element {
        None => format!("{tag:>20}              {action} {value}: {result}"),
        Some(e) => format!(
            "{tag:>20}[{e:>3}-{last:<3}]+{offset:>3} {action} {value}: {result}",
            last = e + count - 1
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_does() {
        for (x, py) in [
            (f64::from(1.1f32), "1.100000023841858"),
            (2.0, "2.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.25e-7, "1.25e-07"),
            (1e100, "1e+100"),
            (123456.789, "123456.789"),
            (f64::from(f32::MAX), "3.4028234663852886e+38"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (100.0, "100.0"),
            (0.1, "0.1"),
        ] {
            assert_eq!(float(x), py, "{x}");
        }
    }

    #[test]
    fn strings_print_as_python_does() {
        for (s, py) in [
            ("abc", "'abc'"),
            ("", "''"),
            ("it's", "\"it's\""),
            ("a'b\"c", "'a\\'b\"c'"),
            ("tab\there", "'tab\\there'"),
            ("\u{1}\u{7f}\u{e9}", "'\\x01\\x7f\u{e9}'"),
            ("back\\slash", "'back\\\\slash'"),
        ] {
            assert_eq!(string(s), py, "{s:?}");
        }
    }

    #[test]
    fn lines_match_cpppo() {
        // Lines copied from cpppo 5.2.5's client output.
        assert_eq!(
            line("SCADA[0]", Some(0), 4, 0, "==", "[5, 6, 0, 0]", "'OK'"),
            "            SCADA[0][  0-3  ]+  0 == [5, 6, 0, 0]: 'OK'"
        );
        assert_eq!(
            line("SCADA", None, 3, 0, "==", "[5, 6, 6]", "'OK'"),
            "               SCADA              == [5, 6, 6]: 'OK'"
        );
        assert_eq!(
            line("SCADA[0]", Some(0), 0, 4, "<=", "[5, 6]", "'OK'"),
            "            SCADA[0][  0--1 ]+  4 <= [5, 6]: 'OK'"
        );
        assert_eq!(
            line(
                "SCADA[1000]",
                Some(1000),
                1,
                0,
                "==",
                "None",
                "'Status 255 [8453]'"
            ),
            "         SCADA[1000][1000-1000]+  0 == None: 'Status 255 [8453]'"
        );
        assert_eq!(status(6, &[]), "Status 6 ");
        assert_eq!(status(4, &[0]), "Status 4 [0]");
        assert_eq!(status(0, &[]), "OK");
    }
}
