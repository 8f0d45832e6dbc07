//! Shared test helpers: hex parsing and a full-depth textual dissection of frames, so
//! tests assert on what a frame means, not on API shapes.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use enip_proto::services::{ReplyBody, ReplyContext, RequestBody};
use enip_proto::{Encapsulation, Reply, Request};

/// Hex with any whitespace, `|` separators and `..` elisions removed.
pub fn hex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    assert!(clean.len() % 2 == 0, "odd hex length in {s:?}");
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).unwrap())
        .collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decode a whole frame, check that it and every message in it re-encode to the same
/// bytes, and describe it.
pub fn dissect(frame: &[u8]) -> String {
    let e = Encapsulation::decode(frame).unwrap_or_else(|err| panic!("decode: {err}"));
    assert_eq!(
        to_hex(&e.to_vec().unwrap()),
        to_hex(frame),
        "re-encode differs"
    );
    if let Some(m) = e.send_data().and_then(|sd| sd.cpf.message()) {
        reencode(m.data);
    }
    enip_proto::describe::frame(frame).unwrap_or_else(|err| panic!("describe: {err}"))
}

/// Check that a Message Router message and its nested messages re-encode exactly.
fn reencode(d: &[u8]) {
    if d.first().is_some_and(|b| b & 0x80 != 0) {
        let r = Reply::decode(d).unwrap();
        assert_eq!(r.to_vec().unwrap(), d, "reply re-encode differs");
        return;
    }
    let r = Request::decode(d).unwrap();
    let mut again = Vec::new();
    r.encode(&mut again).unwrap();
    assert_eq!(again, d, "request re-encode differs");
    let body = RequestBody::decode(&r).unwrap_or_else(|e| panic!("body: {e}"));
    let mut again = Vec::new();
    body.encode(&mut again).unwrap();
    assert_eq!(again, r.data, "request body re-encode differs");
    match body {
        RequestBody::UnconnectedSend(u) => reencode(u.message),
        RequestBody::Multiple(m) => m.messages.iter().for_each(|m| reencode(m)),
        _ => {}
    }
}

/// Describe a Message Router message after checking it re-encodes exactly.
pub fn message(s: &mut String, d: &[u8], _depth: usize) {
    reencode(d);
    s.push_str(&enip_proto::describe::message(d).unwrap_or_else(|e| panic!("describe: {e}")));
}

/// Decode a reply body in the context of the request it answers.
pub fn reply_body<'a>(reply: &'a [u8], ctx: &ReplyContext<'_>) -> ReplyBody<'a> {
    let r = Reply::decode(reply).unwrap();
    let b = ReplyBody::decode(&r, ctx).unwrap_or_else(|e| panic!("reply body: {e}"));
    let mut again = Vec::new();
    b.encode(&mut again).unwrap();
    assert_eq!(
        to_hex(&again),
        to_hex(r.data),
        "reply body re-encode differs"
    );
    b
}
