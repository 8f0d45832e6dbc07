//! `--json` records and `--list-tags` text.

use enip_client::ops::{Operation, Scalar};
use enip_client::{report, Error, Exec, ListItem, ListReply, OpResult, OpValue, TagList, TagValue};
use enip_proto::types::Value;
use serde_json::{json, Value as Json};

fn atomic(v: &Value) -> Json {
    match v {
        Value::Bool(b) => json!(b),
        Value::Sint(x) => json!(x),
        Value::Int(x) => json!(x),
        Value::Dint(x) => json!(x),
        Value::Lint(x) => json!(x),
        Value::Usint(x) | Value::Byte(x) => json!(x),
        Value::Uint(x) | Value::Word(x) => json!(x),
        Value::Udint(x) | Value::Dword(x) => json!(x),
        Value::Ulint(x) | Value::Lword(x) => json!(x),
        // JSON has no NaN or infinity: those become null.
        Value::Real(x) => json!(f64::from(*x)),
        Value::Lreal(x) => json!(x),
        Value::String(s) | Value::ShortString(s) => json!(enip_client::pyfmt::latin1(s)),
    }
}

pub fn value(v: &TagValue) -> Json {
    match v {
        TagValue::Atomic(a) => atomic(a),
        TagValue::String(s) => json!(s),
        TagValue::Struct { members, .. } => {
            Json::Object(members.iter().map(|(n, v)| (n.clone(), value(v))).collect())
        }
        TagValue::Array(items) => Json::Array(items.iter().map(value).collect()),
        TagValue::Raw(b) => json!(b),
    }
}

fn scalar(s: &Scalar) -> Json {
    match s {
        Scalar::Int(i) => i64::try_from(*i)
            .map(|v| json!(v))
            .or_else(|_| u64::try_from(*i).map(|v| json!(v)))
            .unwrap_or(Json::Null),
        Scalar::Float(f) => json!(f),
        Scalar::Bool(b) => json!(b),
        Scalar::Str(s) => json!(s),
    }
}

/// One operation's result: what was asked, what happened, the values.
pub fn op_json(op: &Operation, exec: &Exec, r: &OpResult, values: &[TagValue]) -> Json {
    let mut o = serde_json::Map::new();
    let mut put = |k: &str, v: Json| {
        o.insert(k.to_string(), v);
    };
    put("operation", json!(op.text));
    put("tag", json!(op.tag_text()));
    put(
        "action",
        json!(if op.write.is_some() { "write" } else { "read" }),
    );
    put(
        "elements",
        json!(if op.write.is_some() {
            op.write_elements()
        } else {
            op.elements()
        }),
    );
    put("ok", json!(r.result.is_ok()));
    put("status", json!(report::result_text(&r.result)));
    put("latency_ms", json!(r.latency.as_secs_f64() * 1000.0));
    if let Some(e) = op.element() {
        put("index", json!(e));
    }
    if op.fragmented(exec) {
        put("offset", json!(op.offset.unwrap_or(0)));
    }
    match &r.result {
        Ok(OpValue::Read(reading)) => {
            put("type", json!(reading.ty.name()));
            put("values", Json::Array(values.iter().map(value).collect()));
        }
        Ok(OpValue::Written) => {}
        Err(e) => {
            put("error", json!(e.to_string()));
            if let Error::Cip {
                status, extended, ..
            } = e
            {
                put("cip_status", json!(status.0));
                put("cip_extended", json!(extended));
            }
        }
    }
    if let Some(w) = &op.write {
        put("type", json!(w.data_type.name()));
        put("values", Json::Array(w.values.iter().map(scalar).collect()));
    }
    Json::Object(o)
}

pub fn list_json(desc: &str, r: &ListReply) -> Json {
    let items: Vec<Json> = r
        .items
        .iter()
        .map(|i| match i {
            ListItem::Identity(id) => json!({
                "type": "identity",
                "vendor": id.vendor,
                "device_type": id.device_type,
                "product_code": id.product_code,
                "revision": format!("{}.{}", id.revision.0, id.revision.1),
                "status": id.status,
                "serial": format!("0x{:08x}", id.serial),
                "product_name": id.product_name,
                "state": id.state,
                "address": format!("{}.{}.{}.{}:{}", id.socket_addr[0], id.socket_addr[1],
                    id.socket_addr[2], id.socket_addr[3], id.socket_port),
            }),
            ListItem::Service {
                version,
                capabilities,
                name,
                ..
            } => json!({
                "type": "service",
                "version": version,
                "capabilities": capabilities,
                "name": name,
            }),
            ListItem::Other { type_id, data } => json!({
                "type": type_id,
                "data": data,
            }),
        })
        .collect();
    json!({ "command": desc, "peer": r.peer.to_string(), "items": items })
}

pub fn print_tag_list(list: &TagList, as_json: bool) {
    let mut templates: Vec<_> = list.templates.iter().collect();
    templates.sort_by(|a, b| a.name.cmp(&b.name));
    if as_json {
        let tags: Vec<Json> = list
            .tags
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "type": t.type_text(&list.templates),
                    "dims": t.dims,
                    "instance": t.instance,
                    "symbol_type": t.symbol_type,
                    "element_size": t.element_size,
                })
            })
            .collect();
        let structs: Vec<Json> = templates
            .iter()
            .map(|t| {
                json!({
                    "name": t.display_name(),
                    "template": t.id,
                    "handle": t.handle,
                    "size": t.size,
                    "members": t.members.iter().filter(|m| !m.hidden()).map(|m| json!({
                        "name": m.name,
                        "type": m.type_text(&list.templates),
                        "offset": m.offset,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        say!(
            "{}",
            json!({ "tags": tags, "programs": list.programs, "structures": structs })
        );
        return;
    }
    let width = list
        .tags
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0)
        .max(20);
    for t in &list.tags {
        say!("{:<width$}  {}", t.name, t.type_text(&list.templates));
    }
    for t in templates {
        say!("");
        say!(
            "{} (template {}, handle 0x{:04X}, {} bytes)",
            t.display_name(),
            t.id,
            t.handle,
            t.size
        );
        let mw = t
            .members
            .iter()
            .filter(|m| !m.hidden())
            .map(|m| m.name.len())
            .max()
            .unwrap_or(0)
            .max(12);
        for m in t.members.iter().filter(|m| !m.hidden()) {
            say!(
                "  {:<mw$}  {:<16} offset {}",
                m.name,
                m.type_text(&list.templates),
                m.offset
            );
        }
    }
}
