//! `enip-server`: the I/O around [`enip_device::Controller`]. TCP sessions on port 44818
//! (RegisterSession, SendRRData, SendUnitData, List*), and UDP discovery.
//!
//! Codemap:
//! - [`Session::handle`] (this file): the encapsulation rules, a plain function of the
//!   frame and the controller, tested without sockets;
//! - [`runtime`]: [`Server`], the accept loop and connection tasks (limits, idle timeout,
//!   response delay, never-reading clients), UDP, and the `disable`/`done` controls;
//! - [`web`]: the `-w` listener: cpppo's `/api`, `/metrics` and a dashboard (`api`,
//!   `html` and `glob` are its private parts);
//! - [`metrics`]: the Prometheus registry;
//! - [`config`]: `--config FILE.yaml`, parsed then applied whole or not at all;
//! - [`history`]: `--history` (cpppo's line format, rotation, gzip) and `--replay`;
//! - [`hooks`]: ready-made custom tags ([`hooks::HttpJson`]).
//!
//! The binary's own modules: `cli` (cpppo's flags, then checked settings) and `logfile`
//! (`--log`, reopened on SIGHUP).
//!
//! [`serve_tcp`] and [`serve_udp`] remain as one-call wrappers with default options.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use enip_device::{Controller, UNCONNECTED_REPLY_LIMIT};
use enip_proto::cpf::{IdentityItem, Item, ServiceItem, SockAddr};
use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::{Body, Command, Cpf, EncapStatus, Encapsulation, Header};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

mod api;
pub mod config;
pub mod generate;
mod glob;
pub mod guard;
pub mod history;
pub mod hooks;
mod html;
pub mod metrics;
pub mod runtime;
pub mod web;

pub use metrics::Metrics;
pub use runtime::{ConnectionInfo, Delay, Options, Server};

/// Largest encapsulation body accepted (a Large Forward Open connection carries 4002 bytes
/// of CIP plus framing).
pub const MAX_BODY: usize = 4400;

/// The controller, shared by every connection. Requests run under the lock, so a
/// multi-element write is never seen half applied.
pub type Shared = Arc<Mutex<Controller>>;

static NEXT_SESSION: AtomicU32 = AtomicU32::new(0x0001_0001);

/// The controller, even after a panic elsewhere poisoned the lock: the device itself
/// never panics on input (it is fuzzed for that), so its state is whole; keep serving.
pub fn lock(ctrl: &Shared) -> std::sync::MutexGuard<'_, Controller> {
    ctrl.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the connection should do after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    Close,
}

/// One TCP connection's encapsulation state.
#[derive(Debug, Default)]
pub struct Session {
    handle: Option<u32>,
    /// Connections opened through this session, closed with it.
    connections: Vec<u32>,
    /// Hand the controller the wall-clock time before each request (the device has no
    /// clock). Off, the time stays whatever the caller set, as tests want.
    pub clock: bool,
}

/// Now, in µs since 1970 UTC.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Session {
    /// Handle one frame, appending any reply to `out`. `local` is the address the
    /// connection arrived on (ListIdentity reports it).
    pub fn handle(
        &mut self,
        frame: &Encapsulation<'_>,
        ctrl: &Shared,
        local: SocketAddr,
        out: &mut Vec<u8>,
    ) -> Next {
        self.handle_observed(frame, ctrl, local, out, &mut |_, _| {})
    }

    /// The registered session handle, if RegisterSession succeeded.
    pub fn registered(&self) -> Option<u32> {
        self.handle
    }

    /// As [`Session::handle`], calling `observe(request, reply)` with the Message Router
    /// bytes of every CIP exchange, after the controller lock is released (metrics).
    pub fn handle_observed(
        &mut self,
        frame: &Encapsulation<'_>,
        ctrl: &Shared,
        local: SocketAddr,
        out: &mut Vec<u8>,
        observe: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Next {
        let h = frame.header;
        let reply =
            |session: Option<u32>, status: EncapStatus, body: Body<'_>, out: &mut Vec<u8>| {
                let e = Encapsulation {
                    header: Header {
                        session: session.unwrap_or(h.session),
                        ..h.reply(status)
                    },
                    body,
                };
                let _ = e.encode(out);
            };
        match h.command {
            Command::Nop => Next::Continue,
            Command::ListIdentity | Command::ListServices | Command::ListInterfaces => {
                list_reply(&h, ctrl, local, out);
                Next::Continue
            }
            Command::RegisterSession => {
                let ok = matches!(
                    frame.body,
                    Body::RegisterSession(RegisterSession {
                        protocol_version: 1,
                        options: 0
                    })
                );
                if self.handle.is_some() {
                    reply(
                        self.handle,
                        EncapStatus::InvalidCommand,
                        Body::Raw(&[]),
                        out,
                    );
                } else if !ok {
                    reply(
                        self.handle,
                        EncapStatus::UnsupportedProtocol,
                        Body::RegisterSession(RegisterSession::default()),
                        out,
                    );
                } else {
                    let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed) & 0x7FFF_FFFF;
                    self.handle = Some(id.max(1));
                    reply(
                        self.handle,
                        EncapStatus::Success,
                        Body::RegisterSession(RegisterSession::default()),
                        out,
                    );
                }
                Next::Continue
            }
            Command::UnRegisterSession => Next::Close,
            Command::SendRRData | Command::SendUnitData => {
                if self.handle != Some(h.session) {
                    reply(
                        self.handle,
                        EncapStatus::InvalidSession,
                        Body::Raw(&[]),
                        out,
                    );
                    return Next::Continue;
                }
                let Some(m) = frame.send_data().and_then(|sd| sd.cpf.message()) else {
                    reply(self.handle, EncapStatus::IncorrectData, Body::Raw(&[]), out);
                    return Next::Continue;
                };
                let mut c = lock(ctrl);
                if self.clock {
                    c.now_us = now_us();
                }
                match m.connected {
                    None => {
                        let before = c.connections.len();
                        let r = c.execute(m.data, UNCONNECTED_REPLY_LIMIT);
                        if c.connections.len() > before {
                            // A Forward Open: remember it so the session closes it.
                            if let Some(id) = newest_connection(&r) {
                                self.connections.push(id);
                            }
                        }
                        drop(c);
                        observe(m.data, &r);
                        let timeout = frame.send_data().map_or(0, |sd| sd.timeout);
                        reply(
                            self.handle,
                            EncapStatus::Success,
                            Body::SendData(SendData {
                                interface_handle: 0,
                                timeout,
                                cpf: Cpf::unconnected(&r),
                            }),
                            out,
                        );
                    }
                    Some(conn) => {
                        // Only this session's connections: another client's connection
                        // id is as unknown here as a made-up one.
                        if !self.connections.contains(&conn.connection_id) {
                            return Next::Continue;
                        }
                        let Some((to_id, r)) = c.execute_connected(conn.connection_id, m.data)
                        else {
                            // Unknown connection: dropped, as OpENer does.
                            return Next::Continue;
                        };
                        drop(c);
                        observe(m.data, &r);
                        reply(
                            self.handle,
                            EncapStatus::Success,
                            Body::SendData(SendData {
                                interface_handle: 0,
                                timeout: 0,
                                cpf: Cpf::connected(to_id, conn.sequence, &r),
                            }),
                            out,
                        );
                    }
                }
                Next::Continue
            }
            _ => {
                reply(
                    self.handle,
                    EncapStatus::InvalidCommand,
                    Body::Raw(&[]),
                    out,
                );
                Next::Continue
            }
        }
    }

    /// Close what the session opened.
    pub fn end(&mut self, ctrl: &Shared) {
        let mut c = lock(ctrl);
        for id in self.connections.drain(..) {
            c.connections.remove(id);
        }
    }
}

/// The O→T id in a successful Forward Open reply.
fn newest_connection(reply: &[u8]) -> Option<u32> {
    match reply {
        [0xD4 | 0xDB, 0, 0, 0, a, b, c, d, ..] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// The reply to ListIdentity, ListServices or ListInterfaces (TCP or UDP).
pub fn list_reply(h: &Header, ctrl: &Shared, local: SocketAddr, out: &mut Vec<u8>) {
    let c = lock(ctrl);
    let id = &c.identity;
    let addr = match local.ip() {
        IpAddr::V4(a) if !a.is_unspecified() => a.octets(),
        _ => c.network.address,
    };
    let name = id.name_bytes();
    let items = match h.command {
        Command::ListIdentity => vec![Item::Identity(IdentityItem {
            protocol_version: 1,
            socket: SockAddr::ipv4(addr, local.port()),
            vendor: id.vendor,
            device_type: id.device_type,
            product_code: id.product_code,
            revision: id.revision,
            status: id.status,
            serial: id.serial,
            product_name: name,
            state: id.state,
        })],
        Command::ListServices => vec![Item::Services(ServiceItem::communications())],
        _ => vec![],
    };
    let e = Encapsulation {
        header: h.reply(EncapStatus::Success),
        body: Body::List(Some(Cpf::new(items))),
    };
    let _ = e.encode(out);
}

/// Serve one TCP connection until the peer closes, unregisters, or sends junk, with
/// [`Options::default`] (a server of its own; prefer [`Server::serve_stream`]).
pub async fn serve_connection(stream: TcpStream, ctrl: Shared) {
    match Server::new(ctrl, Options::default()) {
        Ok(s) => s.serve_stream(stream).await,
        Err(e) => tracing::error!(%e, "cannot set up the server"),
    }
}

/// Accept TCP connections forever with [`Options::default`] (see [`Server::run`]).
pub async fn serve_tcp(listener: TcpListener, ctrl: Shared) {
    match Server::new(ctrl, Options::default()) {
        Ok(s) => {
            if let Err(e) = s.run(listener, std::future::pending::<()>()).await {
                tracing::error!(%e, "TCP server failed");
            }
        }
        Err(e) => tracing::error!(%e, "cannot set up the server"),
    }
}

/// Answer List* requests over UDP forever (see [`Server::run_udp`]).
pub async fn serve_udp(sock: UdpSocket, ctrl: Shared) {
    match Server::new(ctrl, Options::default()) {
        Ok(s) => {
            if let Err(e) = s.run_udp(sock, std::future::pending::<()>()).await {
                tracing::error!(%e, "UDP server failed");
            }
        }
        Err(e) => tracing::error!(%e, "cannot set up the server"),
    }
}
