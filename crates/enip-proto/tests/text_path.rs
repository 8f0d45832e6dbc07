//! The text forms people type: parse to the right segments, print back, and point at
//! the offending character when they don't parse.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{hex, to_hex};
use enip_proto::path::{parse_route_text, parse_text_prefix};
use enip_proto::Path;

fn check(text: &str, bytes: &str, printed: &str) {
    let p = Path::parse(text).unwrap_or_else(|e| panic!("{}", e.pointer(text)));
    assert_eq!(
        to_hex(&p.to_bytes().unwrap()),
        to_hex(&hex(bytes)),
        "{text}"
    );
    assert_eq!(p.to_string(), printed, "{text}");
}

#[test]
fn symbolic_paths() {
    check("Tag", "91 03 54 61 67 00", "Tag");
    check(
        "Tag.Member[1,2]",
        "91 03 54 61 67 00 91 06 4d 65 6d 62 65 72 28 01 28 02",
        "Tag.Member[1,2]",
    );
    check(
        "Program:Main.X",
        "91 0c 50 72 6f 67 72 61 6d 3a 4d 61 69 6e 91 01 58 00",
        "Program:Main.X",
    );
    // enip-wire.md §4.2's example.
    check(
        "Program:P.Arr[2].Mem",
        "91 09 50 72 6f 67 72 61 6d 3a 50 00 91 03 41 72 72 00 28 02 91 03 4d 65 6d 00",
        "Program:P.Arr[2].Mem",
    );
    check("A[300]", "91 01 41 00 29 00 2c 01", "A[300]");
    check("A[70000]", "91 01 41 00 2a 00 70 11 01 00", "A[70000]");
    check("A[ 1, 2 ,3 ]", "91 01 41 00 28 01 28 02 28 03", "A[1,2,3]");
    check(
        "Local:1:I.Data[0]",
        "91 09 4c 6f 63 61 6c 3a 31 3a 49 00 91 04 44 61 74 61 28 00",
        "Local:1:I.Data[0]",
    );
}

#[test]
fn numeric_paths() {
    check("@1/1/7", "20 01 24 01 30 07", "@1/1/7");
    check("@0x6B/0x25", "20 6b 24 25", "@107/37");
    check("@0x6b/300", "20 6b 25 00 2c 01", "@107/300");
    check("@2/1/3/5", "20 02 24 01 30 03 28 05", "@2/1/3[5]");
    check(
        "@0x6B/0x25[3].Member",
        "20 6b 24 25 28 03 91 06 4d 65 6d 62 65 72",
        "@107/37[3].Member",
    );
    check("@0b11/0o17", "20 03 24 0f", "@3/15");
}

#[test]
fn errors_point_at_the_offending_character() {
    let cases = [
        ("", 0, "empty path"),
        ("Tag.", 4, "expected a name"),
        ("Tag..X", 4, "expected a name (letter or `_` first)"),
        ("1Tag", 0, "expected a name (letter or `_` first)"),
        ("Tag[1", 5, "expected `,` or `]`"),
        ("Tag[]", 4, "expected a number"),
        ("Tag[1,2,3,4]", 3, "more than 3 array dimensions"),
        // Regression (found by the text_path fuzz target, issue 2): `/e` is an element
        // too, so this would print as four indexes that do not parse back.
        ("@1/2/3/4[1,2,3]", 8, "more than 3 array dimensions"),
        ("Tag[x]", 4, "expected a number"),
        (
            "Tag.5",
            4,
            "a bit number (`Tag.5`) is not part of a path; address the whole integer",
        ),
        ("Tag X", 3, "unexpected character"),
        (
            "@1",
            2,
            "expected `/instance` after the class (`@class/instance[/attribute]`)",
        ),
        ("@1/", 3, "expected a number"),
        ("@0x/1", 3, "expected a number"),
        (
            "@99999999999/1",
            1,
            "bad number `99999999999`: number too large to fit in target type",
        ),
        ("A:B.C:D", 5, "unexpected character"),
    ];
    for (text, offset, msg) in cases {
        let e = Path::parse(text).unwrap_err();
        assert_eq!((e.offset, e.message.as_str()), (offset, msg), "{text:?}");
    }
    let e = Path::parse("Tag[1,x]").unwrap_err();
    assert_eq!(e.pointer("Tag[1,x]"), "Tag[1,x]\n      ^ expected a number");
    let long = "A".repeat(256);
    assert_eq!(
        Path::parse(&long).unwrap_err().message,
        "name longer than 255 characters"
    );
}

#[test]
fn prefix_parse_stops_where_the_path_ends() {
    let (p, end) = parse_text_prefix("SCADA[1]=99").unwrap();
    assert_eq!(p.to_string(), "SCADA[1]");
    assert_eq!(end, 8);
}

#[test]
fn route_paths() {
    let p = parse_route_text("1/0").unwrap();
    assert_eq!(to_hex(&p.to_bytes().unwrap()), "01 00");
    let p = parse_route_text("1/0/2/10.0.0.1").unwrap();
    assert_eq!(
        to_hex(&p.to_bytes().unwrap()),
        to_hex(&hex("01 00 12 08 31 30 2e 30 2e 30 2e 31"))
    );
    let p = parse_route_text("1/3/18/127.0.0.1").unwrap();
    assert_eq!(
        to_hex(&p.to_bytes().unwrap()),
        to_hex(&hex("01 03 1f 09 12 00 31 32 37 2e 30 2e 30 2e 31 00"))
    );
    assert_eq!(parse_route_text("0/1").unwrap_err().offset, 0);
    assert_eq!(
        parse_route_text("1").unwrap_err().message,
        "expected `/link` after the port"
    );
    assert_eq!(parse_route_text("1/0/x/1").unwrap_err().offset, 4);
}
