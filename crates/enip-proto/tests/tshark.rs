//! Every kind of frame the codec encodes, put on a synthetic TCP/UDP conversation and
//! dissected by Wireshark's tshark: no frame may be "Malformed" or carry an expert error.
//!
//! Skips (printing why) without tshark, unless `CI=true`, where that is a failure.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/tshark.rs"]
mod tshark;

use enip_proto::cpf::{IdentityItem, ServiceItem, SockAddr};
use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::mr::service as svc;
use enip_proto::path::Segment;
use enip_proto::services::*;
use enip_proto::status::{cm, logix};
use enip_proto::types::{DataType, TypeTag};
use enip_proto::{
    Body as EBody, Command, Cpf, EPath, Encapsulation, GeneralStatus, Header, Item, Path, Reply,
};
use tshark::{check_clean, tshark_or_skip, WireFrame};

const SESSION: u32 = 0x0000_1234;

struct Conv {
    frames: Vec<WireFrame>,
    ctx: u64,
}

impl Conv {
    fn frame(&mut self, label: &str, from_client: bool, e: &Encapsulation<'_>) {
        self.frames
            .push(WireFrame::tcp(label, from_client, e.to_vec().unwrap()));
    }

    fn next_ctx(&mut self) -> [u8; 8] {
        self.ctx += 1;
        self.ctx.to_le_bytes()
    }

    fn pair(&mut self, label: &str, cmd: Command, req: EBody<'_>, reply: EBody<'_>) {
        let ctx = self.next_ctx();
        let session = if cmd == Command::RegisterSession {
            0
        } else {
            SESSION
        };
        let h = Header::new(cmd, session, ctx);
        self.frame(
            label,
            true,
            &Encapsulation {
                header: h,
                body: req,
            },
        );
        let h = Header::new(cmd, SESSION, ctx);
        self.frame(
            &format!("{label} reply"),
            false,
            &Encapsulation {
                header: h,
                body: reply,
            },
        );
    }

    /// SendRRData request and reply around Message Router bytes.
    fn rr(&mut self, label: &str, request: &[u8], reply: &[u8]) {
        let sd = |d| {
            EBody::SendData(SendData {
                interface_handle: 0,
                timeout: 5,
                cpf: Cpf::unconnected(d),
            })
        };
        self.pair(label, Command::SendRRData, sd(request), sd(reply));
    }

    /// The same, wrapped in Unconnected Send with route `01 00`.
    fn ucs(&mut self, label: &str, request: &[u8], reply: &[u8]) {
        let route = Path(vec![Segment::port(1, 0)]).to_bytes().unwrap();
        let body = UnconnectedSend {
            priority_tick: 0x0A,
            timeout_ticks: 5,
            message: request,
            route: EPath::new(&route, 0).unwrap(),
            reserved: 0,
        }
        .to_vec()
        .unwrap();
        let wrapped =
            enip_proto::Request::build(svc::UNCONNECTED_SEND, &Path::connection_manager(), &body)
                .unwrap();
        self.rr(label, &wrapped, reply);
    }

    fn connected(&mut self, label: &str, seq: u16, request: &[u8], reply: &[u8]) {
        let ctx = self.next_ctx();
        let mk = |id, d| {
            EBody::SendData(SendData {
                interface_handle: 0,
                timeout: 0,
                cpf: Cpf::connected(id, seq, d),
            })
        };
        let h = Header::new(Command::SendUnitData, SESSION, ctx);
        self.frame(
            label,
            true,
            &Encapsulation {
                header: h,
                body: mk(OT_ID, request),
            },
        );
        self.frame(
            &format!("{label} reply"),
            false,
            &Encapsulation {
                header: h,
                body: mk(TO_ID, reply),
            },
        );
    }
}

const OT_ID: u32 = 0x8000_0001;
const TO_ID: u32 = 0x7119_0427;

fn req(service: u8, path: &str, body: &[u8]) -> Vec<u8> {
    enip_proto::Request::build(service, &Path::parse(path).unwrap(), body).unwrap()
}
fn obj(service: u8, class: u32, inst: u32, attr: Option<u32>, body: &[u8]) -> Vec<u8> {
    enip_proto::Request::build(service, &Path::object(class, inst, attr), body).unwrap()
}
fn ok(service: u8, data: &[u8]) -> Vec<u8> {
    Reply::success(service, data).to_vec().unwrap()
}
fn enc(b: &impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    b(&mut v);
    v
}

fn identity_item(name: &[u8]) -> Item<'_> {
    Item::Identity(IdentityItem {
        protocol_version: 1,
        socket: SockAddr::ipv4([127, 0, 0, 1], 44818),
        vendor: 1,
        device_type: 0x0E,
        product_code: 166,
        revision: (32, 11),
        status: 0x3160,
        serial: 0x0012_3456,
        product_name: name,
        state: 3,
    })
}

fn conversation() -> Vec<WireFrame> {
    let mut c = Conv {
        frames: Vec::new(),
        ctx: 0,
    };
    let name = b"1756-L81E/B LOGIX5581E";

    c.pair(
        "RegisterSession",
        Command::RegisterSession,
        EBody::RegisterSession(RegisterSession::default()),
        EBody::RegisterSession(RegisterSession::default()),
    );
    c.pair(
        "ListIdentity (TCP)",
        Command::ListIdentity,
        EBody::List(None),
        EBody::List(Some(Cpf::new(vec![identity_item(name)]))),
    );
    c.pair(
        "ListServices",
        Command::ListServices,
        EBody::List(None),
        EBody::List(Some(Cpf::new(vec![Item::Services(
            ServiceItem::communications(),
        )]))),
    );
    c.pair(
        "ListInterfaces",
        Command::ListInterfaces,
        EBody::List(None),
        EBody::List(Some(Cpf::default())),
    );
    let nop = Encapsulation {
        header: Header::new(Command::Nop, SESSION, [0; 8]),
        body: EBody::Raw(&[]),
    };
    c.frame("NOP", true, &nop);

    // Identity and other objects.
    let mut ident = vec![
        1, 0, 0x0E, 0, 166, 0, 32, 11, 0x60, 0x31, 0x56, 0x34, 0x12, 0,
    ];
    ident.push(name.len() as u8);
    ident.extend_from_slice(name);
    c.ucs(
        "Identity Get Attributes All",
        &obj(svc::GET_ATTRIBUTES_ALL, 1, 1, None, &[]),
        &ok(svc::GET_ATTRIBUTES_ALL, &ident),
    );
    c.rr(
        "Identity Get Attributes All (bare)",
        &obj(svc::GET_ATTRIBUTES_ALL, 1, 1, None, &[]),
        &ok(svc::GET_ATTRIBUTES_ALL, &ident),
    );
    c.ucs(
        "Get Attribute Single",
        &obj(svc::GET_ATTRIBUTE_SINGLE, 1, 1, Some(7), &[]),
        &ok(svc::GET_ATTRIBUTE_SINGLE, &ident[14..]),
    );
    c.ucs(
        "Set Attribute Single refused",
        &obj(
            svc::SET_ATTRIBUTE_SINGLE,
            0xF5,
            1,
            Some(6),
            &[3, 0, b'p', b'l', b'c', 0],
        ),
        &Reply::error(
            svc::SET_ATTRIBUTE_SINGLE,
            GeneralStatus::ATTRIBUTE_NOT_SETTABLE,
            &[],
        )
        .to_vec()
        .unwrap(),
    );
    let ids = AttributeIds(vec![4, 5, 2, 1]).to_vec().unwrap();
    let (v4, v5, v2, v1) = (
        15u32.to_le_bytes(),
        88u32.to_le_bytes(),
        2u16.to_le_bytes(),
        0x0FCEu16.to_le_bytes(),
    );
    let attrs = AttributeList {
        entries: vec![
            AttributeEntry {
                id: 4,
                status: Some(0),
                value: &v4,
            },
            AttributeEntry {
                id: 5,
                status: Some(0),
                value: &v5,
            },
            AttributeEntry {
                id: 2,
                status: Some(0),
                value: &v2,
            },
            AttributeEntry {
                id: 1,
                status: Some(0),
                value: &v1,
            },
        ],
    };
    c.ucs(
        "Template Get Attribute List",
        &obj(svc::GET_ATTRIBUTE_LIST, 0x6C, 0x0FCE, None, &ids),
        &ok(svc::GET_ATTRIBUTE_LIST, &enc(&|o| attrs.encode(o).unwrap())),
    );
    let now = 1_700_000_000_000_000u64.to_le_bytes();
    let set = AttributeList {
        entries: vec![AttributeEntry {
            id: 6,
            status: None,
            value: &now,
        }],
    };
    let set_reply = AttributeList {
        entries: vec![AttributeEntry {
            id: 6,
            status: Some(0),
            value: &[],
        }],
    };
    c.ucs(
        "Wall clock Set Attribute List",
        &obj(
            svc::SET_ATTRIBUTE_LIST,
            0x8B,
            1,
            None,
            &enc(&|o| set.encode(o).unwrap()),
        ),
        &ok(
            svc::SET_ATTRIBUTE_LIST,
            &enc(&|o| set_reply.encode(o).unwrap()),
        ),
    );

    // Tag services.
    let read = ReadTag { elements: 2 }.to_vec().unwrap();
    let dint = TypeTag::atomic(DataType::Dint);
    let data = TagData {
        type_tag: dint,
        data: &[1, 0, 0, 0, 2, 0, 0, 0],
    }
    .to_vec()
    .unwrap();
    c.ucs(
        "Read Tag",
        &req(svc::READ_TAG, "Program:Main.Counts[1]", &read),
        &ok(svc::READ_TAG, &data),
    );
    let frag = ReadTagFragmented {
        elements: 100,
        offset: 0,
    }
    .to_vec()
    .unwrap();
    let partial = Reply::new(
        svc::READ_TAG_FRAGMENTED,
        GeneralStatus::PARTIAL_TRANSFER,
        &data,
    )
    .to_vec()
    .unwrap();
    c.ucs(
        "Read Tag Fragmented (partial)",
        &req(svc::READ_TAG_FRAGMENTED, "Big", &frag),
        &partial,
    );
    let w = WriteTag {
        type_tag: TypeTag::Struct(0x0FCE),
        elements: 1,
        data: &[0; 88],
    }
    .to_vec()
    .unwrap();
    c.ucs(
        "Write Tag (STRING)",
        &req(svc::WRITE_TAG, "Recipe", &w),
        &ok(svc::WRITE_TAG, &[]),
    );
    let wf = WriteTagFragmented {
        type_tag: TypeTag::atomic(DataType::Int),
        elements: 1,
        offset: 0,
        data: &[0xC9, 0x40],
    }
    .to_vec()
    .unwrap();
    c.ucs(
        "Write Tag Fragmented",
        &req(svc::WRITE_TAG_FRAGMENTED, "SCADA[12]", &wf),
        &ok(svc::WRITE_TAG_FRAGMENTED, &[]),
    );
    let rmw = ReadModifyWrite {
        or_mask: &[0x20, 0, 0, 0],
        and_mask: &[0xFF; 4],
        extra: &[],
    }
    .to_vec()
    .unwrap();
    c.ucs(
        "Read Modify Write",
        &req(svc::READ_MODIFY_WRITE, "Flags", &rmw),
        &ok(svc::READ_MODIFY_WRITE, &[]),
    );
    let beyond = Reply::error(
        svc::READ_TAG,
        GeneralStatus::GENERAL_ERROR,
        &[logix::ACCESS_BEYOND_END],
    )
    .to_vec()
    .unwrap();
    c.ucs(
        "Read Tag beyond end",
        &req(svc::READ_TAG, "SCADA[999]", &read),
        &beyond,
    );
    let missing = Reply::error(svc::READ_TAG, GeneralStatus::PATH_SEGMENT_ERROR, &[0])
        .to_vec()
        .unwrap();
    c.ucs(
        "Read Tag unknown tag",
        &req(svc::READ_TAG, "Nope", &read),
        &missing,
    );
    let inst = req(svc::READ_TAG, "@0x6B/0x25", &read);
    c.ucs(
        "Read Tag by symbol instance",
        &inst,
        &ok(svc::READ_TAG, &data),
    );

    // Multiple Service Packet with one failure.
    let a = req(svc::READ_TAG, "A", &read);
    let b = req(svc::READ_TAG, "B", &read);
    let msp = Multiple {
        messages: vec![&a, &b],
    }
    .to_vec()
    .unwrap();
    let ra = ok(svc::READ_TAG, &data);
    let rb = missing.clone();
    let msp_reply = Multiple {
        messages: vec![&ra, &rb],
    }
    .to_vec()
    .unwrap();
    c.ucs(
        "Multiple Service Packet",
        &enip_proto::Request::build(svc::MULTIPLE_SERVICE_PACKET, &Path::message_router(), &msp)
            .unwrap(),
        &Reply::new(
            svc::MULTIPLE_SERVICE_PACKET,
            GeneralStatus::EMBEDDED_SERVICE_ERROR,
            &msp_reply,
        )
        .to_vec()
        .unwrap(),
    );

    // Symbol list and template read.
    let list_req = AttributeIds(vec![1, 2, 8]).to_vec().unwrap();
    let list = SymbolList {
        entries: vec![SymbolEntry {
            instance: 0x25,
            attributes: vec![
                SymbolAttr::Name(b"SCADA"),
                SymbolAttr::Type(0x20C4),
                SymbolAttr::Dimensions([1000, 0, 0]),
            ],
        }],
    };
    c.ucs(
        "Get Instance Attribute List",
        &obj(svc::GET_INSTANCE_ATTRIBUTE_LIST, 0x6B, 0, None, &list_req),
        &ok(
            svc::GET_INSTANCE_ATTRIBUTE_LIST,
            &enc(&|o| list.encode(o).unwrap()),
        ),
    );
    let mut blob = vec![0, 0, 0xC4, 0, 0, 0, 0, 0, 82, 0, 0xC2, 0x20, 4, 0, 0, 0];
    blob.extend_from_slice(b"ASCIISTRING82\0LEN\0DATA\0");
    let tr = ReadTemplate {
        offset: 0,
        bytes: 39,
    }
    .to_vec()
    .unwrap();
    c.ucs(
        "Read Template",
        &obj(svc::READ_TEMPLATE, 0x6C, 0x0FCE, None, &tr),
        &ok(svc::READ_TEMPLATE, &blob),
    );

    // Connection Manager: Large Forward Open refused for size, Forward Open, connected
    // traffic, Forward Close.
    let conn_path = Path(vec![
        Segment::port(1, 0),
        Segment::class(2),
        Segment::instance(1),
    ])
    .to_bytes()
    .unwrap();
    let mk_fo = |large: bool| ForwardOpen {
        large,
        priority_tick: 0x0A,
        timeout_ticks: 5,
        ot_connection_id: 0,
        to_connection_id: TO_ID,
        connection_serial: 0x0427,
        originator_vendor: 0x1009,
        originator_serial: 0x7119_1009,
        timeout_multiplier: 7,
        reserved: [0; 3],
        ot_rpi: 2_000_000,
        ot_params: NetParams::point_to_point(if large { 4000 } else { 500 }, large),
        to_rpi: 2_000_000,
        to_params: NetParams::point_to_point(if large { 4000 } else { 500 }, large),
        transport: 0xA3,
        path: EPath::new(&conn_path, 0).unwrap(),
    };
    let lfo = mk_fo(true);
    let fail = ConnectionFailure {
        connection_serial: 0x0427,
        originator_vendor: 0x1009,
        originator_serial: 0x7119_1009,
        remaining_path_size: 0,
        reserved: 0,
    }
    .to_vec()
    .unwrap();
    let mut fail_reply = Reply::new(
        svc::LARGE_FORWARD_OPEN,
        GeneralStatus::CONNECTION_FAILURE,
        &fail,
    );
    fail_reply.extended = vec![cm::INVALID_CONNECTION_SIZE, 500];
    c.rr(
        "Large Forward Open (size refused)",
        &enip_proto::Request::build(
            svc::LARGE_FORWARD_OPEN,
            &Path::connection_manager(),
            &enc(&|o| lfo.encode(o).unwrap()),
        )
        .unwrap(),
        &fail_reply.to_vec().unwrap(),
    );
    let fo = mk_fo(false);
    let fo_reply = ForwardOpenReply {
        ot_connection_id: OT_ID,
        to_connection_id: TO_ID,
        connection_serial: 0x0427,
        originator_vendor: 0x1009,
        originator_serial: 0x7119_1009,
        ot_api: 2_000_000,
        to_api: 2_000_000,
        reserved: 0,
        application: &[],
    }
    .to_vec()
    .unwrap();
    c.rr(
        "Forward Open",
        &enip_proto::Request::build(
            svc::FORWARD_OPEN,
            &Path::connection_manager(),
            &enc(&|o| fo.encode(o).unwrap()),
        )
        .unwrap(),
        &ok(svc::FORWARD_OPEN, &fo_reply),
    );
    c.connected(
        "Connected Read Tag",
        1,
        &req(svc::READ_TAG, "SCADA", &read),
        &ok(svc::READ_TAG, &data),
    );
    c.connected(
        "Connected Read Tag Fragmented",
        2,
        &req(svc::READ_TAG_FRAGMENTED, "SCADA", &frag),
        &partial,
    );
    let fc = ForwardClose {
        priority_tick: 0x0A,
        timeout_ticks: 5,
        connection_serial: 0x0427,
        originator_vendor: 0x1009,
        originator_serial: 0x7119_1009,
        reserved: 0,
        path: EPath::new(&conn_path, 0).unwrap(),
    }
    .to_vec()
    .unwrap();
    let fc_reply = ForwardCloseReply {
        connection_serial: 0x0427,
        originator_vendor: 0x1009,
        originator_serial: 0x7119_1009,
        reserved: 0,
        application: &[],
    }
    .to_vec()
    .unwrap();
    c.rr(
        "Forward Close",
        &enip_proto::Request::build(svc::FORWARD_CLOSE, &Path::connection_manager(), &fc).unwrap(),
        &ok(svc::FORWARD_CLOSE, &fc_reply),
    );
    let unreg = Encapsulation {
        header: Header::new(Command::UnRegisterSession, SESSION, [0; 8]),
        body: EBody::Raw(&[]),
    };
    c.frame("UnRegisterSession", true, &unreg);

    // UDP discovery.
    let ctx = *b"HiMom\0\0\0";
    let li = Encapsulation {
        header: Header::new(Command::ListIdentity, 0, ctx),
        body: EBody::List(None),
    };
    c.frames.push(WireFrame::udp(
        "ListIdentity (UDP)",
        true,
        li.to_vec().unwrap(),
    ));
    let li_reply = Encapsulation {
        header: Header::new(Command::ListIdentity, 0, ctx),
        body: EBody::List(Some(Cpf::new(vec![identity_item(name)]))),
    };
    c.frames.push(WireFrame::udp(
        "ListIdentity (UDP) reply",
        false,
        li_reply.to_vec().unwrap(),
    ));
    let ls = Encapsulation {
        header: Header::new(Command::ListServices, 0, ctx),
        body: EBody::List(None),
    };
    c.frames.push(WireFrame::udp(
        "ListServices (UDP)",
        true,
        ls.to_vec().unwrap(),
    ));
    c.frames
}

#[test]
fn tshark_finds_nothing_wrong_with_any_frame_we_encode() {
    if !tshark_or_skip("tshark_finds_nothing_wrong_with_any_frame_we_encode").unwrap() {
        return;
    }
    let frames = conversation();
    assert!(frames.len() > 50, "{} frames", frames.len());
    let verdicts = check_clean(&frames).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verdicts.len(), frames.len());
    // Wireshark understood them as what they are (not as undissected data).
    let info: Vec<_> = verdicts
        .iter()
        .map(|v| format!("{}: {}", v.label, v.summary))
        .collect();
    let all = info.join("\n");
    println!("{all}");
    for needle in [
        "Register Session",
        "List Identity",
        "List Services",
        "Forward Open",
        "Forward Close",
        "Multiple Service Packet",
        "Unconnected Send",
    ] {
        assert!(all.contains(needle), "tshark never named {needle}:\n{all}");
    }
}
