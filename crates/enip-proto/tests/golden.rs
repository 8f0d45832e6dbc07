//! Golden frames from real devices and real clients (`test_data/*.frames`, sources in
//! `test_data/README.md`): each decodes, re-encodes byte for byte, and describes. A frame
//! the source marks `# WARNING` (modified by its source, or breaking the length rules as
//! received) may instead be refused with a typed error.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::path::PathBuf;

use enip_proto::services::RequestBody;
use enip_proto::{Encapsulation, Reply, Request};

#[derive(Debug, Default)]
struct Frame {
    file: String,
    name: String,
    layer: String,
    warning: bool,
    bytes: Vec<u8>,
}

fn load() -> Vec<Frame> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "frames"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let file = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut cur: Option<Frame> = None;
        let mut warning = false;
        let mut in_hex = false;
        for line in text.lines() {
            let t = line.trim();
            if line.starts_with('#') {
                warning |= t.contains("WARNING");
                in_hex = false;
            } else if let Some(name) = t.strip_prefix("[frame ").and_then(|n| n.strip_suffix(']')) {
                out.extend(cur.take());
                cur = Some(Frame {
                    file: file.clone(),
                    name: name.into(),
                    warning,
                    ..Default::default()
                });
                warning = false;
                in_hex = false;
            } else if let Some(l) = t.strip_prefix("layer:") {
                cur.as_mut().unwrap().layer = l.trim().into();
            } else if let Some(h) = t.strip_prefix("hex:") {
                cur.as_mut().unwrap().bytes.extend(common::hex(h));
                in_hex = true;
            } else if in_hex && line.starts_with(char::is_whitespace) && !t.is_empty() {
                cur.as_mut().unwrap().bytes.extend(common::hex(t));
            } else {
                in_hex = false;
                if t.is_empty() {
                    // A blank line ends a comment block that belonged to no frame.
                    if cur.is_none() {
                        warning = false;
                    }
                }
            }
        }
        out.extend(cur.take());
    }
    out
}

fn check_request(d: &[u8]) -> Result<(), String> {
    let r = Request::decode(d).map_err(|e| e.to_string())?;
    let body = RequestBody::decode(&r).map_err(|e| e.to_string())?;
    let mut again = Vec::new();
    body.encode(&mut again).map_err(|e| e.to_string())?;
    if again != r.data {
        return Err("request body re-encode differs".into());
    }
    match body {
        RequestBody::UnconnectedSend(u) => check_request(u.message),
        RequestBody::Multiple(m) => m.messages.iter().try_for_each(|m| check_request(m)),
        _ => Ok(()),
    }
}

fn check(f: &Frame) -> Result<String, String> {
    match f.layer.as_str() {
        "encap" => {
            let e = Encapsulation::decode(&f.bytes).map_err(|e| e.to_string())?;
            let again = e.to_vec().map_err(|e| e.to_string())?;
            if again != f.bytes {
                return Err(format!(
                    "re-encode differs:\n  got  {}\n  want {}",
                    common::to_hex(&again),
                    common::to_hex(&f.bytes)
                ));
            }
            if let Some(m) = e.send_data().and_then(|sd| sd.cpf.message()) {
                if m.data.first().is_some_and(|b| b & 0x80 == 0) {
                    check_request(m.data)?;
                } else {
                    let r = Reply::decode(m.data).map_err(|e| e.to_string())?;
                    if r.to_vec().map_err(|e| e.to_string())? != m.data {
                        return Err("reply re-encode differs".into());
                    }
                }
            }
            enip_proto::describe::frame(&f.bytes).map_err(|e| e.to_string())
        }
        "mr-request" => {
            check_request(&f.bytes)?;
            enip_proto::describe::message(&f.bytes).map_err(|e| e.to_string())
        }
        "mr-reply" => {
            let r = Reply::decode(&f.bytes).map_err(|e| e.to_string())?;
            if r.to_vec().map_err(|e| e.to_string())? != f.bytes {
                return Err("reply re-encode differs".into());
            }
            enip_proto::describe::message(&f.bytes).map_err(|e| e.to_string())
        }
        other => Err(format!("unknown layer {other:?}")),
    }
}

#[test]
fn every_golden_frame_decodes_and_reencodes_exactly() {
    let frames = load();
    assert!(frames.len() >= 100, "only {} golden frames", frames.len());
    let mut failures = Vec::new();
    let mut refused = 0;
    for f in &frames {
        assert!(!f.bytes.is_empty(), "{}:{} has no bytes", f.file, f.name);
        match (check(f), f.warning) {
            (Ok(_), false) => {}
            (Err(e), true) => {
                refused += 1;
                println!("{}:{} refused as expected: {e}", f.file, f.name);
            }
            (Ok(d), true) => println!("{}:{} is marked WARNING but decodes:\n{d}", f.file, f.name),
            (Err(e), false) => failures.push(format!("{}:{}: {e}", f.file, f.name)),
        }
    }
    println!(
        "{} golden frames, {} refused as marked",
        frames.len(),
        refused
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_l61_capture_is_all_there() {
    let frames: Vec<_> = load()
        .into_iter()
        .filter(|f| f.file == "cpppo-1756-L61.frames")
        .collect();
    assert_eq!(frames.len(), 14);
    // Its Read Tag Fragmented reply carries INT 0x8027, as the capture shows.
    let reply = frames
        .iter()
        .find(|f| f.bytes.ends_with(&[0xc3, 0x00, 0x27, 0x80]));
    assert!(reply.is_some());
}
