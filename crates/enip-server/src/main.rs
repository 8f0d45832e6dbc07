//! `enip-server`: a ControlLogix simulator.
//!
//! ```text
//! enip-server [-a ADDR[:PORT]] SCADA=INT[1000] Counts=DINT[10] Program:Main.Step=DINT
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Parser;
use enip_device::Controller;

/// A ControlLogix simulator that every common EtherNet/IP client can use.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to serve TCP and UDP on: `[iface][:port]` (default 0.0.0.0:44818).
    #[arg(short = 'a', long = "address", default_value = "0.0.0.0:44818")]
    address: String,
    /// Tags to serve: NAME=TYPE[dims], e.g. SCADA=INT[1000], Grid=REAL[4,5],
    /// Program:Main.Step=DINT, Recipe=STRING.
    #[arg(required = true)]
    tags: Vec<String>,
}

fn parse_address(a: &str) -> Result<SocketAddr> {
    let a = if a.starts_with(':') {
        format!("0.0.0.0{a}")
    } else {
        a.to_owned()
    };
    let a = if a.contains(':') {
        a
    } else {
        format!("{a}:44818")
    };
    a.parse()
        .with_context(|| format!("bad --address `{a}` (expected HOST[:PORT])"))
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let addr = parse_address(&args.address)?;
    let mut ctrl = Controller::new();
    for t in &args.tags {
        ctrl.add_tag(t)?;
    }
    if let std::net::IpAddr::V4(v4) = addr.ip() {
        if !v4.is_unspecified() {
            ctrl.network.address = v4.octets();
        }
    }
    let ctrl = Arc::new(Mutex::new(ctrl));
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on TCP {addr}"))?;
    let udp = tokio::net::UdpSocket::bind(addr)
        .await
        .with_context(|| format!("cannot listen on UDP {addr}"))?;
    let _ = udp.set_broadcast(true);
    eprintln!(
        "enip-server: serving {} tag(s) on {addr} (TCP and UDP)",
        args.tags.len()
    );
    // The device has no clock; hand it the time.
    let clock = ctrl.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
        loop {
            tick.tick().await;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64);
            if let Ok(mut c) = clock.lock() {
                c.now_us = now;
            }
        }
    });
    tokio::spawn(enip_server::serve_udp(udp, ctrl.clone()));
    tokio::select! {
        () = enip_server::serve_tcp(tcp, ctrl) => {}
        _ = tokio::signal::ctrl_c() => eprintln!("enip-server: stopping"),
    }
    Ok(())
}
