//! A controller served on `ip:44818` (TCP and UDP), as a real one is, on a runtime of
//! its own thread for the rest of the test process: for tests that drive a blocking or
//! foreign client. Shared through `#[path]` by the test crates that need it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use enip_device::Controller;

/// Serve `c` on `ip:44818`; returns once both sockets are bound.
pub fn serve_controller(ip: [u8; 4], c: Controller) -> SocketAddr {
    let addr = SocketAddr::from((ip, 44818));
    let ctrl = Arc::new(Mutex::new(c));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
            let udp = tokio::net::UdpSocket::bind(addr).await.unwrap();
            tokio::spawn(enip_server::serve_udp(udp, ctrl.clone()));
            tx.send(()).unwrap();
            enip_server::serve_tcp(tcp, ctrl).await;
        });
    });
    rx.recv().unwrap();
    addr
}
