//! `enip-server`: the I/O around [`enip_device::Controller`]. TCP sessions on port 44818
//! (RegisterSession, SendRRData, SendUnitData, List*), and UDP discovery.
//!
//! The encapsulation rules live in [`Session::handle`], a plain function of the frame
//! and the controller, so they are tested without sockets; [`serve_tcp`] and
//! [`serve_udp`] only move bytes.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use enip_device::{Controller, UNCONNECTED_REPLY_LIMIT};
use enip_proto::cpf::{IdentityItem, Item, ServiceItem, SockAddr};
use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::{Body, Command, Cpf, EncapStatus, Encapsulation, FrameDecoder, Header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Largest encapsulation body accepted (a Large Forward Open connection carries 4002 bytes
/// of CIP plus framing).
pub const MAX_BODY: usize = 4400;

/// The controller, shared by every connection. Requests run under the lock, so a
/// multi-element write is never seen half applied.
pub type Shared = Arc<Mutex<Controller>>;

static NEXT_SESSION: AtomicU32 = AtomicU32::new(0x0001_0001);

/// The controller, even after a panic elsewhere poisoned the lock: the device itself
/// never panics on input (it is fuzzed for that), so its state is whole; keep serving.
fn lock(ctrl: &Shared) -> std::sync::MutexGuard<'_, Controller> {
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
                        let Some((to_id, r)) = c.execute_connected(conn.connection_id, m.data)
                        else {
                            // Unknown connection: dropped, as OpENer does.
                            return Next::Continue;
                        };
                        drop(c);
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
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => c.network.address,
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

/// Serve one TCP connection until the peer closes, unregisters, or sends junk.
pub async fn serve_connection(mut stream: TcpStream, ctrl: Shared) {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let _ = stream.set_nodelay(true);
    let mut dec = FrameDecoder::new(MAX_BODY);
    let mut session = Session::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::with_capacity(4096);
    'conn: loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        dec.feed(buf.get(..n).unwrap_or_default());
        out.clear();
        loop {
            match dec.next_frame() {
                Ok(Some(frame)) => {
                    if session.handle(&frame, &ctrl, local, &mut out) == Next::Close {
                        let _ = stream.write_all(&out).await;
                        break 'conn;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%e, "closing connection on a malformed frame");
                    let _ = stream.write_all(&out).await;
                    break 'conn;
                }
            }
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            break;
        }
    }
    session.end(&ctrl);
}

/// Accept TCP connections forever.
pub async fn serve_tcp(listener: TcpListener, ctrl: Shared) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, ctrl.clone()));
            }
            Err(e) => {
                tracing::warn!(%e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Answer List* requests over UDP; anything else gets status 0x0001.
pub async fn serve_udp(sock: UdpSocket, ctrl: Shared) {
    let local = sock.local_addr().ok();
    let mut buf = vec![0u8; 1500];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(frame) = Encapsulation::decode(buf.get(..n).unwrap_or_default()) else {
            continue;
        };
        let mut out = Vec::new();
        let local = local.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 44818)));
        if frame.header.command.allowed_on_udp() {
            list_reply(&frame.header, &ctrl, local, &mut out);
        } else {
            let e = Encapsulation {
                header: frame.header.reply(EncapStatus::InvalidCommand),
                body: Body::Raw(&[]),
            };
            let _ = e.encode(&mut out);
        }
        let _ = sock.send_to(&out, peer).await;
    }
}
