//! A raw EtherNet/IP client over loopback and an in-process server, shared by the
//! integration tests. Replies are decoded with enip-proto.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enip_device::Controller;
use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::mr::service as svc;
use enip_proto::{
    Body, Command, Cpf, EncapStatus, Encapsulation, FrameDecoder, Header, Path, Request,
};
use enip_server::{Options, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod serve;

/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// The tags every test serves.
pub const TAGS: [&str; 4] = [
    "SCADA=INT[10]",
    "Counts=DINT",
    "Name=STRING",
    "Program:Main.Step=DINT",
];

pub fn controller() -> Arc<Mutex<Controller>> {
    let mut c = Controller::new();
    for t in TAGS {
        c.add_tag(t).unwrap();
    }
    Arc::new(Mutex::new(c))
}

/// Serve `tags` on `ip:44818` (TCP and UDP), as a controller does, on a runtime of its
/// own thread, for tests that drive a blocking or foreign client.
pub fn serve_in_thread(ip: [u8; 4], tags: &[&str]) -> SocketAddr {
    let mut c = Controller::new();
    for t in tags {
        c.add_tag(t).unwrap();
    }
    serve::serve_controller(ip, c)
}

/// A server on a fresh loopback port, running until the test ends or it is done.
pub async fn start(options: Options) -> (Server, SocketAddr) {
    let server = Server::new(controller(), options).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let s = server.clone();
    tokio::spawn(async move { s.run(l, std::future::pending::<()>()).await });
    (server, addr)
}

pub fn read_tag(path: &str, elements: u16) -> Vec<u8> {
    Request::build(
        svc::READ_TAG,
        &Path::parse(path).unwrap(),
        &elements.to_le_bytes(),
    )
    .unwrap()
}

/// Write one INT.
pub fn write_int(path: &str, v: i16) -> Vec<u8> {
    let mut body = vec![0xC3, 0, 1, 0];
    body.extend_from_slice(&v.to_le_bytes());
    Request::build(svc::WRITE_TAG, &Path::parse(path).unwrap(), &body).unwrap()
}

pub struct Client {
    pub s: TcpStream,
    dec: FrameDecoder,
    pub session: u32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self {
            s: tokio::time::timeout(WAIT, TcpStream::connect(addr))
                .await
                .unwrap()
                .unwrap(),
            dec: FrameDecoder::new(65535),
            session: 0,
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    pub async fn send(&mut self, e: &Encapsulation<'_>) {
        self.send_raw(&e.to_vec().unwrap()).await;
    }

    /// The next frame's bytes, or None once the server has closed the connection.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(f) = self.dec.next_frame().unwrap() {
                return Some(f.to_vec().unwrap());
            }
            let n = tokio::time::timeout(WAIT, self.s.read(&mut buf))
                .await
                .expect("no reply and no close within 5 s");
            match n {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.dec.feed(&buf[..n]),
            }
        }
    }

    /// The next frame's bytes; fails if the server closed the connection instead.
    pub async fn reply(&mut self) -> Vec<u8> {
        self.recv()
            .await
            .expect("connection closed instead of a reply")
    }

    pub async fn register(&mut self) {
        self.send(&Encapsulation {
            header: Header::new(Command::RegisterSession, 0, *b"_pycomm_"),
            body: Body::RegisterSession(RegisterSession::default()),
        })
        .await;
        let r = self.reply().await;
        let reply = Encapsulation::decode(&r).unwrap();
        assert_eq!(reply.header.status, EncapStatus::Success);
        assert_eq!(reply.header.context, *b"_pycomm_");
        self.session = reply.header.session;
    }

    pub fn rr_frame(&self, mr: &[u8]) -> Vec<u8> {
        Encapsulation {
            header: Header::new(Command::SendRRData, self.session, [9; 8]),
            body: Body::SendData(SendData {
                interface_handle: 0,
                timeout: 10,
                cpf: Cpf::unconnected(mr),
            }),
        }
        .to_vec()
        .unwrap()
    }

    /// One unconnected request; the Message Router reply.
    pub async fn rr(&mut self, mr: &[u8]) -> Vec<u8> {
        let f = self.rr_frame(mr);
        self.send_raw(&f).await;
        let r = self.reply().await;
        let reply = Encapsulation::decode(&r).unwrap();
        assert_eq!(reply.header.status, EncapStatus::Success);
        assert_eq!(reply.header.context, [9; 8]);
        message(&r)
    }

    /// Whether the server closes the connection within 5 s (any bytes before the close
    /// are skipped).
    pub async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(until, self.s.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// Poll `f` until it holds, for up to 5 s.
pub async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let until = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < until {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// The Message Router bytes of a SendRRData / SendUnitData reply.
pub fn message(frame: &[u8]) -> Vec<u8> {
    Encapsulation::decode(frame)
        .unwrap()
        .send_data()
        .unwrap()
        .cpf
        .message()
        .unwrap()
        .data
        .to_vec()
}

/// The header of a reply frame.
pub fn header(frame: &[u8]) -> Header {
    Encapsulation::decode(frame).unwrap().header
}
