//! cpppo's city-temperature example, with our [`TagHook`]: each tag is a city whose
//! value is fetched from an HTTP JSON endpoint when a client reads it (cached 10 s),
//! and writes are refused.
//!
//! ```text
//! cargo run -p enip-server --example weather -- \
//!     'http://127.0.0.1:8000/data/2.5/weather?q={name}&units=metric' /main/temp \
//!     London=REAL Tokyo=REAL
//! python -m cpppo.server.enip.client -a 127.0.0.1 London Tokyo
//! ```
//!
//! `{name}` in the URL becomes the tag's name; the JSON pointer picks the value (here
//! OpenWeatherMap's `main.temp`). It serves on 127.0.0.1:44818 (`ENIP_ADDRESS` changes
//! that).
//!
//! [`TagHook`]: enip_device::TagHook

use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use enip_device::Controller;
use enip_server::hooks::HttpJson;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, pointer, tags @ ..] = args.as_slice() else {
        bail!("usage: weather URL JSON-POINTER CITY=REAL [CITY=REAL ...]");
    };
    if tags.is_empty() {
        bail!("give at least one city, e.g. London=REAL");
    }
    let mut ctrl = Controller::new();
    for t in tags {
        let id = ctrl.add_tag(t).with_context(|| format!("bad tag `{t}`"))?;
        let name = ctrl
            .tags
            .get(id)
            .map(|t| t.name.clone())
            .unwrap_or_default();
        ctrl.set_hook(
            &name,
            Box::new(HttpJson::new(url.as_str(), pointer.as_str())),
        );
    }
    let addr = std::env::var("ENIP_ADDRESS").unwrap_or_else(|_| "127.0.0.1:44818".into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    eprintln!("weather: serving {} cities on {addr}", tags.len());
    enip_server::serve_tcp(listener, Arc::new(Mutex::new(ctrl))).await;
    Ok(())
}
