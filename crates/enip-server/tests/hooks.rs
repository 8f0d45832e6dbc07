//! A tag computed on read from a local HTTP JSON endpoint (cpppo's weather example).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use enip_device::{Controller, Literal, UNCONNECTED_REPLY_LIMIT};
use enip_proto::mr::service as svc;
use enip_proto::services::{Body as _, ReadTag, WriteTag};
use enip_proto::types::{DataType, TypeTag};
use enip_proto::{Path, Reply, Request};
use enip_server::hooks::HttpJson;

/// A tiny weather service: `/weather?q=CITY` answers `{"main": {"temp": T}}`, with T
/// rising by 1 each request; `q=Atlantis` answers 404; after `fail` is set, 500.
fn weather_service() -> (String, Arc<AtomicU32>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/weather?q={{name}}&units=metric",
        l.local_addr().unwrap()
    );
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            let mut first = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            r.read_line(&mut first).unwrap();
            loop {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                if l == "\r\n" || l.is_empty() {
                    break;
                }
            }
            let n = h.fetch_add(1, Ordering::SeqCst) + 1;
            let (code, body) = if first.contains("q=Atlantis") {
                ("404 Not Found", "{}".to_owned())
            } else if first.contains("q=Nowhere") {
                ("200 OK", "{\"main\": {}}".to_owned())
            } else if n >= 100 {
                ("500 Oops", "{}".to_owned())
            } else {
                (
                    "200 OK",
                    format!("{{\"main\": {{\"temp\": {}.5}}}}", 20 + n),
                )
            };
            let _ = write!(
                s,
                "HTTP/1.0 {code}\r\nContent-Type: application/json\r\n\r\n{body}"
            );
        }
    });
    (url, hits)
}

fn read(c: &mut Controller, tag: &str) -> Result<f32, u8> {
    let req = Request::build(
        svc::READ_TAG,
        &Path::parse(tag).unwrap(),
        &ReadTag { elements: 1 }.to_vec().unwrap(),
    )
    .unwrap();
    let r = c.execute(&req, UNCONNECTED_REPLY_LIMIT);
    let reply = Reply::decode(&r).unwrap();
    if reply.status.0 != 0 {
        return Err(reply.status.0);
    }
    Ok(f32::from_le_bytes(r[r.len() - 4..].try_into().unwrap()))
}

#[test]
fn http_json_tags_fetch_on_read_cache_and_refuse_writes() {
    let (url, hits) = weather_service();
    let mut c = Controller::new();
    for city in [
        "London=REAL",
        "Atlantis=REAL",
        "Nowhere=REAL",
        "Sao_Paulo=DINT",
    ] {
        c.add_tag(city).unwrap();
    }
    let mut london = HttpJson::new(url.clone(), "/main/temp");
    london.max_age = Duration::from_millis(200);
    assert!(c.set_hook("London", Box::new(london)));
    for city in ["Atlantis", "Nowhere", "Sao_Paulo"] {
        assert!(c.set_hook(city, Box::new(HttpJson::new(url.clone(), "/main/temp"))));
    }

    assert_eq!(read(&mut c, "London"), Ok(21.5));
    // Within max_age the cached value is answered, without a request.
    assert_eq!(read(&mut c, "London"), Ok(21.5));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(read(&mut c, "London"), Ok(22.5));

    // Failures fail the read (0x0C) rather than answer a stale or made-up value.
    assert_eq!(read(&mut c, "Atlantis"), Err(0x0C));
    assert_eq!(read(&mut c, "Nowhere"), Err(0x0C));
    // 23.5 does not fit a DINT: refused, not rounded.
    assert_eq!(read(&mut c, "Sao_Paulo"), Err(0x0C));

    let w = WriteTag {
        type_tag: TypeTag::atomic(DataType::Real),
        elements: 1,
        data: &1.0f32.to_le_bytes(),
    }
    .to_vec()
    .unwrap();
    let req = Request::build(svc::WRITE_TAG, &Path::parse("London").unwrap(), &w).unwrap();
    let r = c.execute(&req, UNCONNECTED_REPLY_LIMIT);
    assert_eq!(Reply::decode(&r).unwrap().status.0, 0x0E);
    assert_eq!(c.values("London", 0, 1).unwrap(), [Literal::Float(22.5)]);
}

#[test]
fn fetch_errors_say_what_went_wrong() {
    let (url, _) = weather_service();
    let e = HttpJson::new("https://example.invalid/x", "/a")
        .fetch("X")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "only http:// URLs are supported, not `https://example.invalid/x`"
    );
    let e = HttpJson::new(url.clone(), "/main/temp")
        .fetch("Atlantis")
        .unwrap_err();
    assert!(e.to_string().ends_with("answered HTTP 404"), "{e}");
    let e = HttpJson::new(url, "/main/temp")
        .fetch("Nowhere")
        .unwrap_err();
    assert!(
        e.to_string().ends_with("no `/main/temp` in the document"),
        "{e}"
    );
    // A closed port: a clear error, quickly.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = HttpJson::new(format!("http://{closed}/"), "/a")
        .fetch("X")
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot reach http://{closed}/")),
        "{e}"
    );
}
