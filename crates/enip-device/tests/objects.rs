//! Identity, controller name and the Connection Manager, as pycomm3, pylogix, libplctag
//! and rseip reach them.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use enip_device::{Controller, RoutePolicy, UNCONNECTED_REPLY_LIMIT};
use enip_proto::mr::service as svc;
use enip_proto::path::Segment;
use enip_proto::services::{
    Body as _, ConnectionFailure, ForwardClose, ForwardOpen, ForwardOpenReply, NetParams,
    UnconnectedSend,
};
use enip_proto::{EPath, GeneralStatus, Path, Reply, Request};

fn obj(service: u8, class: u32, inst: u32, attr: Option<u32>, body: &[u8]) -> Vec<u8> {
    Request::build(service, &Path::object(class, inst, attr), body).unwrap()
}

fn ucs(message: &[u8], route: &Path<'_>) -> Vec<u8> {
    let rb = route.to_bytes().unwrap();
    let body = UnconnectedSend {
        priority_tick: 0x0A,
        timeout_ticks: 5,
        message,
        route: EPath::new(&rb, 0).unwrap(),
        reserved: 0,
    }
    .to_vec()
    .unwrap();
    Request::build(svc::UNCONNECTED_SEND, &Path::connection_manager(), &body).unwrap()
}

#[test]
fn identity_through_unconnected_send_and_bare() {
    let mut c = Controller::new();
    let gaa = obj(svc::GET_ATTRIBUTES_ALL, 1, 1, None, &[]);
    let slot0 = Path(vec![Segment::port(1, 0)]);
    let wrapped = c.execute(&ucs(&gaa, &slot0), UNCONNECTED_REPLY_LIMIT);
    let bare = c.execute(&gaa, UNCONNECTED_REPLY_LIMIT);
    // The embedded reply comes back with no 0xD2 wrapper.
    assert_eq!(wrapped, bare);
    let r = Reply::decode(&bare).unwrap();
    assert_eq!(r.service, 0x81);
    let mut want = vec![
        1, 0, 0x0E, 0, 166, 0, 32, 11, 0x60, 0x31, 0x2A, 0x4F, 0, 0, 22,
    ];
    want.extend_from_slice(b"1756-L81E/B LOGIX5581E");
    assert_eq!(r.data, &want[..]);
    // rseip: empty route; libplctag: its whole connection path.
    assert_eq!(c.execute(&ucs(&gaa, &Path::default()), 504), bare);
    let whole = Path(vec![
        Segment::port(1, 0),
        Segment::class(2),
        Segment::instance(1),
    ]);
    assert_eq!(c.execute(&ucs(&gaa, &whole), 504), bare);
}

#[test]
fn route_path_policy_as_cpppo_route_path_and_simple() {
    let gaa = obj(svc::GET_ATTRIBUTES_ALL, 1, 1, None, &[]);
    let route = |port, slot| Path(vec![Segment::port(port, slot)]);
    let status = |c: &mut Controller, r: &Path<'_>| {
        let reply = c.execute(&ucs(&gaa, r), UNCONNECTED_REPLY_LIMIT);
        let r = Reply::decode(&reply).unwrap();
        (r.status, r.extended.clone())
    };
    let ok = (GeneralStatus::SUCCESS, vec![]);
    let port = (GeneralStatus::CONNECTION_FAILURE, vec![0x0311]);
    let link = (GeneralStatus::CONNECTION_FAILURE, vec![0x0312]);

    // `--route-path 1/0`: that route, or none.
    let mut c = Controller::new();
    c.route = RoutePolicy::parse("1/0").unwrap();
    assert_eq!(status(&mut c, &route(1, 0)), ok);
    assert_eq!(status(&mut c, &Path::default()), ok);
    assert_eq!(status(&mut c, &route(1, 3)), link);
    assert_eq!(status(&mut c, &route(2, 0)), port);
    // The JSON form cpppo prints in its --help means the same.
    assert_eq!(
        RoutePolicy::parse(r#"[{"port": 1, "link": 0}]"#),
        RoutePolicy::parse("1/0")
    );
    // `-S` / `--route-path false`: a simple device takes only an empty route.
    c.route = RoutePolicy::parse("false").unwrap();
    assert_eq!(status(&mut c, &Path::default()), ok);
    assert_eq!(status(&mut c, &route(1, 0)), port);
    // The default takes anything.
    c.route = RoutePolicy::default();
    assert_eq!(status(&mut c, &route(7, 9)), ok);

    for (text, msg) in [
        ("1/", "bad route path `1/`: bad link address ``"),
        ("1", "bad route path `1`: expected `/link` after the port"),
        ("x/0", "bad route path `x/0`: bad port number `x`"),
        (
            r#"[{"port": 1}]"#,
            r#"bad route path `[{"port": 1}]`: expected [{"port": N, "link": N}, ...]"#,
        ),
    ] {
        assert_eq!(RoutePolicy::parse(text).unwrap_err(), msg, "{text}");
    }
}

#[test]
fn identity_attributes_and_refusals() {
    let mut c = Controller::new();
    c.identity.product_name = "1769-L33ER".into();
    let r = c.execute(&obj(svc::GET_ATTRIBUTE_SINGLE, 1, 1, Some(7), &[]), 504);
    assert_eq!(Reply::decode(&r).unwrap().data, b"\x0a1769-L33ER");
    let r = c.execute(&obj(svc::GET_ATTRIBUTE_SINGLE, 1, 1, Some(99), &[]), 504);
    assert_eq!(
        Reply::decode(&r).unwrap().status,
        GeneralStatus::ATTRIBUTE_NOT_SUPPORTED
    );
    let r = c.execute(
        &obj(svc::SET_ATTRIBUTE_SINGLE, 1, 1, Some(7), &[1, b'x']),
        504,
    );
    assert_eq!(
        Reply::decode(&r).unwrap().status,
        GeneralStatus::ATTRIBUTE_NOT_SETTABLE
    );
    let r = c.execute(&obj(svc::GET_ATTRIBUTES_ALL, 1, 2, None, &[]), 504);
    assert_eq!(
        Reply::decode(&r).unwrap().status,
        GeneralStatus::PATH_DESTINATION_UNKNOWN
    );
    let r = c.execute(&obj(svc::GET_ATTRIBUTES_ALL, 0x99, 1, None, &[]), 504);
    assert_eq!(
        Reply::decode(&r).unwrap().status,
        GeneralStatus::PATH_DESTINATION_UNKNOWN
    );
    // Controller name, class 0x64: STRING with a UINT length.
    c.identity.controller_name = "Plant_A".into();
    let r = c.execute(&obj(svc::GET_ATTRIBUTES_ALL, 0x64, 1, None, &[]), 504);
    assert_eq!(Reply::decode(&r).unwrap().data, b"\x07\x00Plant_A");
}

fn forward_open(large: bool, size: u16, serial: u16) -> Vec<u8> {
    let path = Path(vec![
        Segment::port(1, 0),
        Segment::class(2),
        Segment::instance(1),
    ])
    .to_bytes()
    .unwrap();
    let fo = ForwardOpen {
        large,
        priority_tick: 0x0A,
        timeout_ticks: 5,
        ot_connection_id: 0,
        to_connection_id: 0x7119_0427,
        connection_serial: serial,
        originator_vendor: 0x1009,
        originator_serial: 0x7119_1009,
        timeout_multiplier: 7,
        reserved: [0; 3],
        ot_rpi: 2_000_000,
        ot_params: NetParams::point_to_point(size, large),
        to_rpi: 2_000_000,
        to_params: NetParams::point_to_point(size, large),
        transport: 0xA3,
        path: EPath::new(&path, 0).unwrap(),
    };
    let mut body = Vec::new();
    fo.encode(&mut body).unwrap();
    Request::build(fo.service(), &Path::connection_manager(), &body).unwrap()
}

#[test]
fn forward_open_connected_traffic_and_close() {
    let mut c = Controller::new();
    c.add_tag("SCADA=DINT[1000]").unwrap();
    let r = c.execute(&forward_open(true, 4000, 0x0427), 504);
    let reply = Reply::decode(&r).unwrap();
    assert_eq!(
        (reply.service, reply.status),
        (0xDB, GeneralStatus::SUCCESS)
    );
    let fo = ForwardOpenReply::from_bytes(reply.data).unwrap();
    assert_ne!(fo.ot_connection_id, 0);
    assert_eq!(fo.to_connection_id, 0x7119_0427);
    assert_eq!(
        (fo.connection_serial, fo.originator_vendor),
        (0x0427, 0x1009)
    );
    // The same triad again: duplicate.
    let r = c.execute(&forward_open(true, 4000, 0x0427), 504);
    let reply = Reply::decode(&r).unwrap();
    assert_eq!(
        (reply.status.0, reply.extended.clone()),
        (0x01, vec![0x0100])
    );
    assert_eq!(
        ConnectionFailure::from_bytes(reply.data)
            .unwrap()
            .connection_serial,
        0x0427
    );
    // Connected requests answer with the T->O id, within the connection size.
    let read =
        Request::build(svc::READ_TAG, &Path::parse("SCADA").unwrap(), &[0xE8, 0x03]).unwrap();
    let (to, reply) = c.execute_connected(fo.ot_connection_id, &read).unwrap();
    assert_eq!(to, 0x7119_0427);
    // pycomm3 reads DINT[1000] with a plain Read Tag on a 4000-byte connection: the
    // data alone is measured against the connection size.
    assert_eq!(reply.len(), 4 + 2 + 4000);
    assert_eq!(
        Reply::decode(&reply).unwrap().status,
        GeneralStatus::SUCCESS
    );
    c.add_tag("Wide=DINT[1001]").unwrap();
    let wide = Request::build(svc::READ_TAG, &Path::parse("Wide").unwrap(), &[0xE9, 0x03]).unwrap();
    let (_, reply) = c.execute_connected(fo.ot_connection_id, &wide).unwrap();
    assert_eq!(
        Reply::decode(&reply).unwrap().status,
        GeneralStatus::PARTIAL_TRANSFER
    );
    assert!(c.execute_connected(0x1234, &read).is_none());
    // Forward Close, then again: not found.
    let path = Path(vec![
        Segment::port(1, 0),
        Segment::class(2),
        Segment::instance(1),
    ])
    .to_bytes()
    .unwrap();
    let fc = ForwardClose {
        priority_tick: 0x0A,
        timeout_ticks: 5,
        connection_serial: 0x0427,
        originator_vendor: 0x1009,
        originator_serial: 0x7119_1009,
        reserved: 0,
        path: EPath::new(&path, 0).unwrap(),
    }
    .to_vec()
    .unwrap();
    let close = Request::build(svc::FORWARD_CLOSE, &Path::connection_manager(), &fc).unwrap();
    assert_eq!(
        Reply::decode(&c.execute(&close, 504)).unwrap().status,
        GeneralStatus::SUCCESS
    );
    assert!(c.connections.is_empty());
    let r = c.execute(&close, 504);
    let reply = Reply::decode(&r).unwrap();
    assert_eq!((reply.status.0, reply.extended), (0x01, vec![0x0107]));
}

#[test]
fn oversized_large_forward_open_suggests_a_size() {
    let mut c = Controller::new();
    let r = c.execute(&forward_open(true, 8000, 1), 504);
    let reply = Reply::decode(&r).unwrap();
    assert_eq!((reply.status.0, reply.extended), (0x01, vec![0x0109, 4002]));
    // libplctag's retry with the suggested size succeeds; so does a small 0x54.
    assert_eq!(
        Reply::decode(&c.execute(&forward_open(true, 4002, 1), 504))
            .unwrap()
            .status
            .0,
        0
    );
    assert_eq!(
        Reply::decode(&c.execute(&forward_open(false, 500, 2), 504))
            .unwrap()
            .status
            .0,
        0
    );
    assert_eq!(c.connections.len(), 2);
    // Forward Open inside an Unconnected Send works too (pylogix sends it bare).
    let wrapped = ucs(
        &forward_open(false, 504, 3),
        &Path(vec![Segment::port(1, 0)]),
    );
    assert_eq!(
        Reply::decode(&c.execute(&wrapped, 504)).unwrap().service,
        0xD4
    );
}

#[test]
fn wall_clock_reads_and_sets_plc_time() {
    let mut c = Controller::new();
    c.now_us = 1_700_000_000_000_000;
    // pycomm3 / pylogix GetPLCTime, byte for byte.
    let req = [0x03, 0x02, 0x20, 0x8B, 0x24, 0x01, 0x01, 0x00, 0x0B, 0x00];
    let r = c.execute(&req, 504);
    let mut want = vec![0x83, 0, 0, 0, 1, 0, 0x0B, 0, 0, 0];
    want.extend_from_slice(&c.now_us.to_le_bytes());
    assert_eq!(r, want);
    // pylogix SetPLCTime: Set Attribute List attribute 6.
    let target = 1_600_000_000_000_000u64;
    let mut body = vec![1, 0, 6, 0];
    body.extend_from_slice(&target.to_le_bytes());
    let set = Request::build(svc::SET_ATTRIBUTE_LIST, &Path::object(0x8B, 1, None), &body).unwrap();
    let r = c.execute(&set, 504);
    assert_eq!(r, vec![0x84, 0, 0, 0, 1, 0, 6, 0, 0, 0]);
    // The clock runs on from the time set.
    c.now_us += 5_000_000;
    assert_eq!(c.plc_time_us(), target + 5_000_000);
    let r = c.execute(&req, 504);
    assert_eq!(&r[10..], &(target + 5_000_000).to_le_bytes());
    // An attribute the clock lacks: per-attribute 0x14 and an attribute list error.
    let ids = [
        0x03, 0x02, 0x20, 0x8B, 0x24, 0x01, 0x02, 0x00, 0x0B, 0x00, 0x63, 0x00,
    ];
    let reply = Reply::decode(&c.execute(&ids, 504)).unwrap().status;
    assert_eq!(reply, GeneralStatus::ATTRIBUTE_LIST_ERROR);
}

#[test]
fn tcpip_and_ethernet_link_objects() {
    let mut c = Controller::new();
    c.network.address = [192, 168, 1, 10];
    c.network.host_name = "plc1".into();
    let get = |c: &mut Controller, class, attr| {
        let r = c.execute(
            &obj(svc::GET_ATTRIBUTE_SINGLE, class, 1, Some(attr), &[]),
            504,
        );
        let reply = Reply::decode(&r).unwrap();
        (reply.status, reply.data.to_vec())
    };
    // Interface configuration: addresses as host-order UDINTs, little-endian.
    let (st, d) = get(&mut c, 0xF5, 5);
    assert_eq!(st, GeneralStatus::SUCCESS);
    assert_eq!(&d[..4], &[0x0A, 0x01, 0xA8, 0xC0]);
    assert_eq!(get(&mut c, 0xF5, 6).1, b"\x04\x00plc1");
    assert_eq!(get(&mut c, 0xF5, 4).1, vec![2, 0, 0x20, 0xF6, 0x24, 1]);
    assert_eq!(get(&mut c, 0xF6, 3).1, c.network.mac.to_vec());
    assert_eq!(
        get(&mut c, 0xF5, 42).0,
        GeneralStatus::ATTRIBUTE_NOT_SUPPORTED
    );
    let r = c.execute(
        &obj(
            svc::SET_ATTRIBUTE_SINGLE,
            0xF5,
            1,
            Some(6),
            &[2, 0, b'x', b'y'],
        ),
        504,
    );
    assert_eq!(
        Reply::decode(&r).unwrap().status,
        GeneralStatus::ATTRIBUTE_NOT_SETTABLE
    );
    let r = c.execute(&obj(svc::GET_ATTRIBUTES_ALL, 0xF6, 1, None, &[]), 504);
    assert_eq!(Reply::decode(&r).unwrap().data.len(), 4 + 4 + 6);
}
