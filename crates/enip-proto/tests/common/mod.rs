//! Shared test helpers: hex parsing and a full-depth textual dissection of frames, so
//! tests assert on what a frame means, not on API shapes.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt::Write;

use enip_proto::services::{ReplyBody, ReplyContext, RequestBody};
use enip_proto::{Body, Encapsulation, Item, Reply, Request};

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

/// Decode a whole frame, check that it re-encodes to the same bytes, and describe it.
pub fn dissect(frame: &[u8]) -> String {
    let e = Encapsulation::decode(frame).unwrap_or_else(|err| panic!("decode: {err}"));
    assert_eq!(
        to_hex(&e.to_vec().unwrap()),
        to_hex(frame),
        "re-encode differs"
    );
    let mut s = String::new();
    let h = &e.header;
    writeln!(
        s,
        "{} len={} session={:#x} status={} ctx={}",
        h.command.name(),
        h.length,
        h.session,
        h.status.name(),
        to_hex(&h.context)
    )
    .unwrap();
    match &e.body {
        Body::Raw(b) => writeln!(s, "  raw {}", to_hex(b)).unwrap(),
        Body::List(None) => writeln!(s, "  (request)").unwrap(),
        Body::List(Some(cpf)) => items(&mut s, &cpf.items),
        Body::RegisterSession(r) => {
            writeln!(s, "  version={} options={}", r.protocol_version, r.options).unwrap()
        }
        Body::SendData(sd) => {
            writeln!(
                s,
                "  interface={} timeout={}",
                sd.interface_handle, sd.timeout
            )
            .unwrap();
            items(&mut s, &sd.cpf.items);
        }
    }
    s
}

fn items(s: &mut String, items: &[Item<'_>]) {
    for item in items {
        match item {
            Item::UnconnectedData(d) => {
                writeln!(s, "  unconnected data").unwrap();
                message(s, d, 2);
            }
            Item::ConnectedData { sequence, data } => {
                writeln!(s, "  connected data seq={sequence}").unwrap();
                message(s, data, 2);
            }
            Item::Identity(id) => writeln!(
                s,
                "  identity v{} {}.{}.{}.{}:{} vendor={} type={:#x} product={} rev={}.{} status={:#06x} serial={:#010x} name={:?} state={}",
                id.protocol_version,
                id.socket.addr[0], id.socket.addr[1], id.socket.addr[2], id.socket.addr[3],
                id.socket.port,
                id.vendor, id.device_type, id.product_code, id.revision.0, id.revision.1,
                id.status, id.serial, String::from_utf8_lossy(id.product_name), id.state
            )
            .unwrap(),
            other => writeln!(s, "  {other:?}").unwrap(),
        }
    }
}

/// Describe a Message Router message (request or reply, by the reply bit).
pub fn message(s: &mut String, d: &[u8], depth: usize) {
    let pad = " ".repeat(depth * 2);
    if d.first().is_some_and(|b| b & 0x80 != 0) {
        let r = Reply::decode(d).unwrap();
        assert_eq!(r.to_vec().unwrap(), d, "reply re-encode differs");
        writeln!(
            s,
            "{pad}reply {:#04x} status {} data {}",
            r.service,
            r.describe_status(),
            to_hex(r.data)
        )
        .unwrap();
        return;
    }
    let r = Request::decode(d).unwrap();
    let mut again = Vec::new();
    r.encode(&mut again).unwrap();
    assert_eq!(again, d, "request re-encode differs");
    writeln!(
        s,
        "{pad}{} {:#04x} path {}",
        r.kind().name(),
        r.service,
        r.path
    )
    .unwrap();
    let body = RequestBody::decode(&r).unwrap_or_else(|e| panic!("body: {e}"));
    let mut again = Vec::new();
    body.encode(&mut again).unwrap();
    assert_eq!(again, r.data, "request body re-encode differs");
    match body {
        RequestBody::UnconnectedSend(u) => {
            writeln!(
                s,
                "{pad}  tick={:#04x} ticks={} route [{}]",
                u.priority_tick, u.timeout_ticks, u.route
            )
            .unwrap();
            message(s, u.message, depth + 1);
        }
        RequestBody::Multiple(m) => {
            for msg in &m.messages {
                message(s, msg, depth + 1);
            }
        }
        other => writeln!(s, "{pad}  {other:?}").unwrap(),
    }
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
