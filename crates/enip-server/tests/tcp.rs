//! The server over real sockets on loopback: sessions, unconnected and connected
//! messaging, discovery, and bad input that closes only its own connection.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::{Arc, Mutex};

use enip_device::Controller;
use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::mr::service as svc;
use enip_proto::{
    Body, Command, Cpf, EncapStatus, Encapsulation, FrameDecoder, Header, Path, Reply, Request,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

async fn server() -> std::net::SocketAddr {
    let mut c = Controller::new();
    c.add_tag("SCADA=DINT[1000]").unwrap();
    let ctrl = Arc::new(Mutex::new(c));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let udp = UdpSocket::bind(addr).await.unwrap();
    tokio::spawn(enip_server::serve_udp(udp, ctrl.clone()));
    tokio::spawn(enip_server::serve_tcp(l, ctrl));
    addr
}

struct Client {
    s: TcpStream,
    dec: FrameDecoder,
    session: u32,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        Self {
            s: TcpStream::connect(addr).await.unwrap(),
            dec: FrameDecoder::new(65535),
            session: 0,
        }
    }

    async fn send(&mut self, e: &Encapsulation<'_>) {
        self.s.write_all(&e.to_vec().unwrap()).await.unwrap();
    }

    /// The next frame's bytes, or None when the server closed the connection.
    async fn recv(&mut self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(f) = self.dec.next_frame().unwrap() {
                return Some(f.to_vec().unwrap());
            }
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), self.s.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            if n == 0 {
                return None;
            }
            self.dec.feed(&buf[..n]);
        }
    }

    async fn register(&mut self) {
        let e = Encapsulation {
            header: Header::new(Command::RegisterSession, 0, *b"_pycomm_"),
            body: Body::RegisterSession(RegisterSession::default()),
        };
        self.send(&e).await;
        let r = self.recv().await.unwrap();
        let reply = Encapsulation::decode(&r).unwrap();
        assert_eq!(reply.header.context, *b"_pycomm_");
        assert_ne!(reply.header.session, 0);
        assert!(reply.header.session < 1 << 31);
        self.session = reply.header.session;
    }

    async fn rr(&mut self, mr: &[u8]) -> Vec<u8> {
        let e = Encapsulation {
            header: Header::new(Command::SendRRData, self.session, [9; 8]),
            body: Body::SendData(SendData {
                interface_handle: 0,
                timeout: 10,
                cpf: Cpf::unconnected(mr),
            }),
        };
        self.send(&e).await;
        let r = self.recv().await.unwrap();
        let reply = Encapsulation::decode(&r).unwrap();
        assert_eq!(reply.header.context, [9; 8]);
        reply
            .send_data()
            .unwrap()
            .cpf
            .message()
            .unwrap()
            .data
            .to_vec()
    }
}

#[tokio::test]
async fn unconnected_reads_writes_and_errors_keep_the_connection() {
    let addr = server().await;
    let mut c = Client::connect(addr).await;
    c.register().await;
    let w = Request::build(
        svc::WRITE_TAG,
        &Path::parse("SCADA[3]").unwrap(),
        &[0xC4, 0, 1, 0, 42, 0, 0, 0],
    )
    .unwrap();
    assert_eq!(c.rr(&w).await, vec![0xCD, 0, 0, 0]);
    let r = Request::build(svc::READ_TAG, &Path::parse("SCADA[3]").unwrap(), &[1, 0]).unwrap();
    assert_eq!(c.rr(&r).await, vec![0xCC, 0, 0, 0, 0xC4, 0, 42, 0, 0, 0]);
    // A CIP error is a status; the connection carries on.
    let bad = Request::build(svc::READ_TAG, &Path::parse("Nope").unwrap(), &[1, 0]).unwrap();
    assert_eq!(c.rr(&bad).await, vec![0xCC, 0, 4, 1, 0, 0]);
    assert_eq!(c.rr(&r).await.len(), 10);
}

#[tokio::test]
async fn wrong_session_and_list_identity() {
    let addr = server().await;
    let mut c = Client::connect(addr).await;
    let e = Encapsulation {
        header: Header::new(Command::SendRRData, 77, [0; 8]),
        body: Body::SendData(SendData {
            interface_handle: 0,
            timeout: 0,
            cpf: Cpf::unconnected(&[0x01, 0x02, 0x20, 0x01, 0x24, 0x01]),
        }),
    };
    c.send(&e).await;
    let r = c.recv().await.unwrap();
    assert_eq!(
        Encapsulation::decode(&r).unwrap().header.status,
        EncapStatus::InvalidSession
    );
    // ListIdentity over the same TCP connection reports the address it arrived on.
    c.send(&Encapsulation {
        header: Header::new(Command::ListIdentity, 0, [1; 8]),
        body: Body::List(None),
    })
    .await;
    let r = c.recv().await.unwrap();
    let e = Encapsulation::decode(&r).unwrap();
    let Body::List(Some(cpf)) = &e.body else {
        panic!()
    };
    let id = cpf.identity().unwrap();
    assert_eq!(id.socket.addr, [127, 0, 0, 1]);
    assert_eq!(id.socket.port, addr.port());
    // And over UDP.
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let req = Encapsulation {
        header: Header::new(Command::ListIdentity, 0, *b"HiMom\0\0\0"),
        body: Body::List(None),
    };
    u.send_to(&req.to_vec().unwrap(), addr).await.unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(std::time::Duration::from_secs(5), u.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let e = Encapsulation::decode(&buf[..n]).unwrap();
    assert_eq!(e.header.context, *b"HiMom\0\0\0");
}

#[tokio::test]
async fn junk_closes_only_its_own_connection() {
    let addr = server().await;
    let mut good = Client::connect(addr).await;
    good.register().await;
    let mut bad = Client::connect(addr).await;
    // A header that declares 60,000 bytes: refused, connection closed.
    bad.s
        .write_all(&[0x6F, 0x00, 0x60, 0xEA, 0, 0, 0, 0])
        .await
        .unwrap();
    assert!(bad.recv().await.is_none());
    let r = Request::build(svc::READ_TAG, &Path::parse("SCADA").unwrap(), &[1, 0]).unwrap();
    let reply = good.rr(&r).await;
    assert_eq!(Reply::decode(&reply).unwrap().status.0, 0);
}

/// Bound to every interface (as `-a 0.0.0.0`), ListIdentity over UDP still reports a
/// reachable address — the one this host answers from — never 0.0.0.0.
#[tokio::test]
async fn udp_on_every_interface_reports_a_reachable_address() {
    let mut c = Controller::new();
    c.add_tag("SCADA=DINT").unwrap();
    // Not what the answer should say: the address the client can reach is.
    c.network.address = [10, 9, 8, 7];
    let udp = UdpSocket::bind("0.0.0.0:0").await.unwrap();
    let port = udp.local_addr().unwrap().port();
    tokio::spawn(enip_server::serve_udp(udp, Arc::new(Mutex::new(c))));
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let req = Encapsulation {
        header: Header::new(Command::ListIdentity, 0, [1; 8]),
        body: Body::Raw(&[]),
    }
    .to_vec()
    .unwrap();
    u.send_to(&req, ("127.0.0.1", port)).await.unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(std::time::Duration::from_secs(3), u.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let e = Encapsulation::decode(&buf[..n]).unwrap();
    let Body::List(Some(cpf)) = e.body else {
        panic!("{e:?}")
    };
    let Some(enip_proto::Item::Identity(id)) = cpf.items.first() else {
        panic!("{cpf:?}")
    };
    assert_eq!((id.socket.addr, id.socket.port), ([127, 0, 0, 1], port));
}
