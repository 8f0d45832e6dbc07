//! A readable, indented description of a frame or Message Router message, decoded as deep
//! as the codec goes (Unconnected Send and Multiple Service Packet contents included).
//! For logs, `-v` output and the `dissect` example.

use std::fmt::Write;

use crate::services::RequestBody;
use crate::{Body, DecodeResult, Encapsulation, Item, Reply, Request};

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// Describe one whole encapsulation frame.
pub fn frame(bytes: &[u8]) -> DecodeResult<String> {
    let e = Encapsulation::decode(bytes)?;
    let mut s = String::new();
    let h = &e.header;
    let _ = writeln!(
        s,
        "{} len={} session={:#x} status={} ctx={}",
        h.command.name(),
        h.length,
        h.session,
        h.status.name(),
        hex(&h.context)
    );
    match &e.body {
        Body::Raw(b) => {
            let _ = writeln!(s, "  raw {}", hex(b));
        }
        Body::List(None) => {
            let _ = writeln!(s, "  (request)");
        }
        Body::List(Some(cpf)) => items(&mut s, &cpf.items)?,
        Body::RegisterSession(r) => {
            let _ = writeln!(s, "  version={} options={}", r.protocol_version, r.options);
        }
        Body::SendData(sd) => {
            let _ = writeln!(
                s,
                "  interface={} timeout={}",
                sd.interface_handle, sd.timeout
            );
            items(&mut s, &sd.cpf.items)?;
        }
    }
    Ok(s)
}

fn items(s: &mut String, items: &[Item<'_>]) -> DecodeResult<()> {
    for item in items {
        match item {
            Item::UnconnectedData(d) => {
                let _ = writeln!(s, "  unconnected data");
                message_into(s, d, 2)?;
            }
            Item::ConnectedData { sequence, data } => {
                let _ = writeln!(s, "  connected data seq={sequence}");
                message_into(s, data, 2)?;
            }
            Item::Identity(id) => {
                let a = id.socket.addr;
                let _ = writeln!(
                    s,
                    "  identity v{} {}.{}.{}.{}:{} vendor={} type={:#x} product={} rev={}.{} status={:#06x} serial={:#010x} name={:?} state={}",
                    id.protocol_version, a[0], a[1], a[2], a[3], id.socket.port,
                    id.vendor, id.device_type, id.product_code, id.revision.0, id.revision.1,
                    id.status, id.serial, String::from_utf8_lossy(id.product_name), id.state
                );
            }
            other => {
                let _ = writeln!(s, "  {other:?}");
            }
        }
    }
    Ok(())
}

/// Describe a Message Router request or reply (told apart by the reply bit).
pub fn message(bytes: &[u8]) -> DecodeResult<String> {
    let mut s = String::new();
    message_into(&mut s, bytes, 0)?;
    Ok(s)
}

fn message_into(s: &mut String, d: &[u8], depth: usize) -> DecodeResult<()> {
    let pad = " ".repeat(depth * 2);
    if d.first().is_some_and(|b| b & 0x80 != 0) {
        let r = Reply::decode(d)?;
        let _ = writeln!(
            s,
            "{pad}reply {:#04x} status {} data {}",
            r.service,
            r.describe_status(),
            hex(r.data)
        );
        return Ok(());
    }
    let r = Request::decode(d)?;
    let _ = writeln!(
        s,
        "{pad}{} {:#04x} path {}",
        r.kind().name(),
        r.service,
        r.path
    );
    match RequestBody::decode(&r)? {
        RequestBody::UnconnectedSend(u) => {
            let _ = writeln!(
                s,
                "{pad}  tick={:#04x} ticks={} route [{}]",
                u.priority_tick, u.timeout_ticks, u.route
            );
            message_into(s, u.message, depth + 1)?;
        }
        RequestBody::Multiple(m) => {
            for msg in &m.messages {
                message_into(s, msg, depth + 1)?;
            }
        }
        other => {
            let _ = writeln!(s, "{pad}  {other:?}");
        }
    }
    Ok(())
}
