//! Sessions own the CIP connections they open: another session cannot use or keep
//! them. Driven through `Session::handle`, the encapsulation rules without sockets.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use enip_device::Controller;
use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::path::Segment;
use enip_proto::services::{Body as _, ForwardOpen, ForwardOpenReply, NetParams, ReadTag};
use enip_proto::{Body, Command, Cpf, EPath, Encapsulation, Header, Path, Reply, Request};
use enip_server::{Session, Shared};

fn local() -> SocketAddr {
    "127.0.0.1:44818".parse().unwrap()
}

fn send(s: &mut Session, ctrl: &Shared, e: &Encapsulation<'_>) -> Vec<u8> {
    let bytes = e.to_vec().unwrap();
    let frame = Encapsulation::decode(&bytes).unwrap();
    let mut out = Vec::new();
    s.handle(&frame, ctrl, local(), &mut out);
    out
}

fn register(s: &mut Session, ctrl: &Shared) -> u32 {
    let r = send(
        s,
        ctrl,
        &Encapsulation {
            header: Header::new(Command::RegisterSession, 0, [0; 8]),
            body: Body::RegisterSession(RegisterSession::default()),
        },
    );
    Encapsulation::decode(&r).unwrap().header.session
}

fn forward_open(s: &mut Session, ctrl: &Shared, session: u32, serial: u16) -> u32 {
    let path = Path(vec![
        Segment::port(1, 0),
        Segment::class(2),
        Segment::instance(1),
    ])
    .to_bytes()
    .unwrap();
    let fo = ForwardOpen {
        large: false,
        priority_tick: 0x0A,
        timeout_ticks: 5,
        ot_connection_id: 0,
        to_connection_id: 0x1000 + u32::from(serial),
        connection_serial: serial,
        originator_vendor: 0x1009,
        originator_serial: 0x7119_1009,
        timeout_multiplier: 7,
        reserved: [0; 3],
        ot_rpi: 2_000_000,
        ot_params: NetParams::point_to_point(500, false),
        to_rpi: 2_000_000,
        to_params: NetParams::point_to_point(500, false),
        transport: 0xA3,
        path: EPath::new(&path, 0).unwrap(),
    };
    let mut body = Vec::new();
    fo.encode(&mut body).unwrap();
    let req = Request::build(fo.service(), &Path::connection_manager(), &body).unwrap();
    let r = send(
        s,
        ctrl,
        &Encapsulation {
            header: Header::new(Command::SendRRData, session, [0; 8]),
            body: Body::SendData(SendData {
                interface_handle: 0,
                timeout: 5,
                cpf: Cpf::unconnected(&req),
            }),
        },
    );
    let e = Encapsulation::decode(&r).unwrap();
    let m = e.send_data().unwrap().cpf.message().unwrap();
    let reply = Reply::decode(m.data).unwrap();
    assert_eq!(reply.status.0, 0);
    ForwardOpenReply::from_bytes(reply.data)
        .unwrap()
        .ot_connection_id
}

fn connected_read(s: &mut Session, ctrl: &Shared, session: u32, id: u32) -> Vec<u8> {
    let req = Request::build(
        0x4C,
        &Path::parse("SCADA").unwrap(),
        &ReadTag { elements: 1 }.to_vec().unwrap(),
    )
    .unwrap();
    send(
        s,
        ctrl,
        &Encapsulation {
            header: Header::new(Command::SendUnitData, session, [0; 8]),
            body: Body::SendData(SendData {
                interface_handle: 0,
                timeout: 0,
                cpf: Cpf::connected(id, 1, &req),
            }),
        },
    )
}

#[test]
fn a_connection_answers_only_the_session_that_opened_it() {
    let mut c = Controller::new();
    c.add_tag("SCADA=DINT").unwrap();
    let ctrl: Shared = Arc::new(Mutex::new(c));
    let (mut a, mut b) = (Session::default(), Session::default());
    let (sa, sb) = (register(&mut a, &ctrl), register(&mut b, &ctrl));
    let id = forward_open(&mut a, &ctrl, sa, 1);
    assert!(!connected_read(&mut a, &ctrl, sa, id).is_empty());
    // B uses A's connection id: dropped, as an unknown connection is.
    assert!(connected_read(&mut b, &ctrl, sb, id).is_empty());
    // B's own connection works; when A's session ends, A's connection goes, B's stays.
    let id_b = forward_open(&mut b, &ctrl, sb, 2);
    assert!(!connected_read(&mut b, &ctrl, sb, id_b).is_empty());
    a.end(&ctrl);
    assert_eq!(enip_server::lock(&ctrl).connections.len(), 1);
    assert!(!connected_read(&mut b, &ctrl, sb, id_b).is_empty());
}
