//! The ideal client: the least a load generator can do per request, to measure a server
//! against. A blocking socket, RegisterSession, then SendRRData frames built once with
//! a Read Tag (or a Multiple Service Packet of them) wrapped in Unconnected Send exactly
//! as cpppo's client sends it (priority 5, 157 ticks, route `1/0`); only the sender
//! context is patched per request. It keeps `depth` frames in flight, refilling the
//! window in one write after each read, matches replies by sender context and checks
//! every one (encapsulation status, CIP status, data size).
//!
//! Shared by `enip-server`'s `vs_cpppo` bench (the simulator's throughput) and
//! `enip-client`'s `clients` bench (how close our client comes to it), through
//! `#[path]`: the bench profile builds it into each.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::mr::service as svc;
use enip_proto::services::{
    Body as _, Multiple, ReadTag, ReplyBody, ReplyContext, UnconnectedSend,
};
use enip_proto::{
    Body, Command as Cmd, Cpf, EPath, EncapStatus, Encapsulation, FrameDecoder, Header, Path,
    Reply, Request, ServiceKind,
};

/// An Unconnected Send to the Connection Manager carrying `message`, route `1/0`: what
/// cpppo's client sends by default.
fn unconnected_send(message: &[u8]) -> Vec<u8> {
    let route = [0x01, 0x00];
    let body = UnconnectedSend {
        priority_tick: 5,
        timeout_ticks: 157,
        message,
        route: EPath::new(&route, 0).unwrap(),
        reserved: 0,
    }
    .to_vec()
    .unwrap();
    Request::build(svc::UNCONNECTED_SEND, &Path::connection_manager(), &body).unwrap()
}

fn read_tag(tag: &str, elements: u16) -> Vec<u8> {
    let body = ReadTag { elements }.to_vec().unwrap();
    Request::build(svc::READ_TAG, &Path::parse(tag).unwrap(), &body).unwrap()
}

/// What one frame asks for, and how its reply is checked. Reads are of the DINT array
/// `SCADA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    /// One Read Tag of `SCADA[0]`, `elements` DINTs.
    Read { elements: u16 },
    /// `reads` Read Tags, `SCADA[0]`, `SCADA[1]`, …, of `elements` DINTs each, in one
    /// Multiple Service Packet.
    Multiple { reads: usize, elements: u16 },
}

impl Packet {
    /// Tag reads per frame.
    pub fn reads(self) -> u64 {
        match self {
            Packet::Read { .. } => 1,
            Packet::Multiple { reads, .. } => reads as u64,
        }
    }

    /// The CIP message inside the SendRRData.
    fn message(self) -> Vec<u8> {
        match self {
            Packet::Read { elements } => unconnected_send(&read_tag("SCADA[0]", elements)),
            Packet::Multiple { reads, elements } => {
                let reads: Vec<Vec<u8>> = (0..reads)
                    .map(|i| read_tag(&format!("SCADA[{i}]"), elements))
                    .collect();
                let body = Multiple {
                    messages: reads.iter().map(Vec::as_slice).collect(),
                }
                .to_vec()
                .unwrap();
                let msp =
                    Request::build(svc::MULTIPLE_SERVICE_PACKET, &Path::message_router(), &body)
                        .unwrap();
                unconnected_send(&msp)
            }
        }
    }

    /// The whole frame for `session`, sender context zero (bytes 12..20 are patched per
    /// request).
    fn frame(self, session: u32) -> Vec<u8> {
        let message = self.message();
        Encapsulation {
            header: Header::new(Cmd::SendRRData, session, [0; 8]),
            body: Body::SendData(SendData {
                interface_handle: 0,
                timeout: 8,
                cpf: Cpf::unconnected(&message),
            }),
        }
        .to_vec()
        .unwrap()
    }

    /// Panics unless `reply` is a whole, successful answer to this packet.
    fn check(self, reply: &Encapsulation<'_>) {
        assert_eq!(reply.header.status, EncapStatus::Success, "{reply:?}");
        let m = reply
            .send_data()
            .and_then(|sd| sd.cpf.message())
            .unwrap_or_else(|| panic!("no message item in {reply:?}"));
        let r = Reply::decode(m.data).unwrap();
        assert!(r.status.is_success(), "{self:?} failed: {r:?}");
        match self {
            Packet::Read { elements } => {
                assert_eq!(r.service, svc::READ_TAG | svc::REPLY);
                assert_eq!(r.data.len(), 2 + 4 * usize::from(elements), "{r:?}");
            }
            Packet::Multiple { reads, elements } => {
                let ctx = ReplyContext::new(ServiceKind::MultipleServicePacket);
                let Ok(ReplyBody::Multiple(msp)) = ReplyBody::decode(&r, &ctx) else {
                    panic!("not a Multiple Service Packet reply: {r:?}");
                };
                let mut n = 0;
                for inner in msp.replies() {
                    let inner = inner.unwrap();
                    assert!(inner.status.is_success(), "{inner:?}");
                    assert_eq!(inner.data.len(), 2 + 4 * usize::from(elements), "{inner:?}");
                    n += 1;
                }
                assert_eq!(n, reads);
            }
        }
    }
}

struct Session {
    s: TcpStream,
    dec: FrameDecoder,
    buf: Vec<u8>,
    session: u32,
}

impl Session {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Self {
            s,
            dec: FrameDecoder::new(65_535),
            buf: vec![0; 64 * 1024],
            session: 0,
        };
        let reg = Encapsulation {
            header: Header::new(Cmd::RegisterSession, 0, *b"idealcli"),
            body: Body::RegisterSession(RegisterSession::default()),
        };
        c.s.write_all(&reg.to_vec().unwrap()).unwrap();
        let session = c.next(|f| {
            assert_eq!(f.header.status, EncapStatus::Success, "{f:?}");
            f.header.session
        });
        c.session = session;
        c
    }

    /// Wait for at least one frame; hand every complete frame to `each`, return the last
    /// result.
    fn next<T>(&mut self, mut each: impl FnMut(&Encapsulation<'_>) -> T) -> T {
        loop {
            let mut last = None;
            while let Some(f) = self.dec.next_frame().unwrap() {
                last = Some(each(&f));
            }
            if let Some(t) = last {
                return t;
            }
            let n = self.s.read(&mut self.buf).unwrap();
            assert!(n > 0, "the server closed the connection");
            self.dec.feed(&self.buf[..n]);
        }
    }
}

/// When to stop sending: a deadline, or a shared frame budget, whichever comes first.
#[derive(Debug)]
pub struct Stop {
    deadline: Instant,
    budget: AtomicU64,
}

impl Stop {
    pub fn new(deadline: Instant, frames: u64) -> Self {
        Self {
            deadline,
            budget: AtomicU64::new(frames),
        }
    }

    fn claim(&self) -> bool {
        Instant::now() < self.deadline
            && self
                .budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                .is_ok()
    }
}

/// What one ideal client did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    /// Frames answered.
    pub frames: u64,
    /// This client thread's own CPU seconds (user + system), connecting excluded.
    pub cpu: f64,
}

/// Run one ideal client on this thread: keep `depth` frames in flight until `stop`, then
/// drain.
pub fn run_client(addr: SocketAddr, packet: Packet, depth: usize, stop: &Stop) -> Outcome {
    let mut c = Session::connect(addr);
    let cpu0 = thread_cpu();
    let mut frame = packet.frame(c.session);
    let mut in_flight: HashSet<[u8; 8]> = HashSet::with_capacity(depth * 2);
    let mut next_ctx = 1u64;
    let mut done = 0u64;
    let mut out = Vec::with_capacity(frame.len() * depth);
    loop {
        // Refill the window in one write, as a pipelining client would.
        out.clear();
        while in_flight.len() < depth && stop.claim() {
            let ctx = next_ctx.to_le_bytes();
            next_ctx += 1;
            frame[12..20].copy_from_slice(&ctx);
            out.extend_from_slice(&frame);
            in_flight.insert(ctx);
        }
        if !out.is_empty() {
            c.s.write_all(&out).unwrap();
        }
        if in_flight.is_empty() {
            return Outcome {
                frames: done,
                cpu: thread_cpu() - cpu0,
            };
        }
        c.next(|f| {
            assert!(
                in_flight.remove(&f.header.context),
                "a reply with a context not in flight: {:?}",
                f.header
            );
            packet.check(f);
            done += 1;
        });
    }
}

/// `clients` ideal clients on threads of their own, each at `depth`, sharing `stop`.
pub fn run_clients(
    addr: SocketAddr,
    packet: Packet,
    clients: usize,
    depth: usize,
    stop: &Stop,
) -> Outcome {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|_| s.spawn(|| run_client(addr, packet, depth, stop)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .fold(Outcome::default(), |a, b| Outcome {
                frames: a.frames + b.frames,
                cpu: a.cpu + b.cpu,
            })
    })
}

/// The calling thread's CPU seconds, user + system (10 ms ticks).
pub fn thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<f64> = rest.split(' ').map(|x| x.parse().unwrap_or(0.0)).collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    (f[11] + f[12]) / clock_ticks()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
pub fn clock_ticks() -> f64 {
    static TICK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}
