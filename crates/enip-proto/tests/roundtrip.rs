//! Property tests: for generated messages of every kind, `decode(encode(m)) == m`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use enip_proto::cpf::{IdentityItem, ServiceItem, SockAddr};
use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::path::{ElectronicKey, LogicalKind, LogicalValue};
use enip_proto::services::*;
use enip_proto::types::{DataType, LogixString, TypeTag, Value};
use enip_proto::wire::Reader;
use enip_proto::{
    Body, Command, Cpf, EPath, EncapStatus, Encapsulation, GeneralStatus, Header, Item, Path,
    Reply, Request, Segment,
};
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

// ---- paths -------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum SegSpec {
    Port(u16, Vec<u8>),
    Logical(LogicalKind, LogicalValue),
    Key(ElectronicKey),
    Symbol(Vec<u8>),
    Data(Vec<u8>),
}

fn logical_kind() -> impl Strategy<Value = LogicalKind> {
    prop_oneof![
        Just(LogicalKind::Class),
        Just(LogicalKind::Instance),
        Just(LogicalKind::Element),
        Just(LogicalKind::ConnectionPoint),
        Just(LogicalKind::Attribute),
        Just(LogicalKind::ServiceId),
    ]
}

fn seg_spec() -> impl Strategy<Value = SegSpec> {
    prop_oneof![
        (any::<u16>(), bytes(40)).prop_map(|(p, l)| SegSpec::Port(p, l)),
        (logical_kind(), any::<u32>(), 0..3u8).prop_map(|(k, v, w)| {
            let value = match (k, w) {
                (LogicalKind::ServiceId, _) | (_, 0) => LogicalValue::U8(v as u8),
                (_, 1) => LogicalValue::U16(v as u16),
                _ => LogicalValue::U32(v),
            };
            SegSpec::Logical(k, value)
        }),
        (any::<(u16, u16, u16, u8, u8)>()).prop_map(|(a, b, c, d, e)| SegSpec::Key(
            ElectronicKey {
                vendor: a,
                device_type: b,
                product_code: c,
                major: d,
                minor: e
            }
        )),
        bytes(255).prop_map(SegSpec::Symbol),
        bytes(60).prop_map(|mut d| {
            d.truncate(d.len() & !1);
            SegSpec::Data(d)
        }),
    ]
}

fn segment(s: &SegSpec) -> Segment<'_> {
    match s {
        SegSpec::Port(p, l) => Segment::Port { port: *p, link: l },
        SegSpec::Logical(kind, value) => Segment::Logical {
            kind: *kind,
            value: *value,
        },
        SegSpec::Key(k) => Segment::ElectronicKey(*k),
        SegSpec::Symbol(n) => Segment::Symbolic(n),
        SegSpec::Data(d) => Segment::Data(d),
    }
}

/// Paths short enough for a one-byte word count, as every sized path field needs.
fn encodable_path() -> impl Strategy<Value = Vec<SegSpec>> {
    prop::collection::vec(seg_spec(), 0..3)
        .prop_filter("fits 255 words", |v| path_bytes(v).len() <= 510)
}

fn path_bytes(specs: &[SegSpec]) -> Vec<u8> {
    let p: Path<'_> = specs.iter().map(segment).collect();
    p.to_bytes().unwrap()
}

proptest! {
    #[test]
    fn paths_round_trip(specs in prop::collection::vec(seg_spec(), 0..6)) {
        let path: Path<'_> = specs.iter().map(segment).collect();
        let b = path.to_bytes().unwrap();
        prop_assert_eq!(b.len() % 2, 0, "padded EPATH is a whole number of words");
        let e = EPath::new(&b, 0).unwrap();
        prop_assert_eq!(e.to_path(), path);
    }

    #[test]
    fn text_paths_round_trip(
        names in prop::collection::vec("[A-Za-z_][A-Za-z0-9_]{0,12}", 1..4),
        idx in prop::collection::vec(prop::collection::vec(any::<u32>(), 0..=3), 4),
        program in prop::option::of("[A-Za-z][A-Za-z0-9_]{0,8}"),
    ) {
        let mut text = String::new();
        if let Some(p) = &program {
            text.push_str(&format!("Program:{p}."));
        }
        for (i, n) in names.iter().enumerate() {
            if i > 0 { text.push('.'); }
            text.push_str(n);
            if !idx[i].is_empty() {
                let v: Vec<String> = idx[i].iter().map(|x| x.to_string()).collect();
                text.push_str(&format!("[{}]", v.join(",")));
            }
        }
        let path = Path::parse(&text).unwrap();
        prop_assert_eq!(path.to_string(), text.clone());
        let b = path.to_bytes().unwrap();
        let back = EPath::new(&b, 0).unwrap().to_path();
        prop_assert_eq!(back.to_string(), text);
    }

    #[test]
    fn numeric_text_paths_round_trip(c in any::<u32>(), i in any::<u32>(), a in prop::option::of(any::<u32>())) {
        let text = match a {
            Some(a) => format!("@{c}/{i}/{a}"),
            None => format!("@{c}/{i}"),
        };
        let p = Path::parse(&text).unwrap();
        prop_assert_eq!(p.to_string(), text.clone());
        prop_assert_eq!(p.target().class, Some(c));
        prop_assert_eq!(p.target().attribute, a);
        let hex = match a {
            Some(a) => format!("@{c:#x}/{i:#X}/{a:#o}"),
            None => format!("@{c:#x}/{i:#b}"),
        };
        prop_assert_eq!(Path::parse(&hex).unwrap(), p);
    }
}

// ---- encapsulation and CPF ---------------------------------------------------------

#[derive(Debug, Clone)]
enum ItemSpec {
    Null,
    ConnAddr(u32),
    SeqAddr(u32, u32),
    Unconnected(Vec<u8>),
    Connected(u16, Vec<u8>),
    Identity(u16, [u8; 4], u16, u16, u16, (u8, u8), u16, u32, Vec<u8>, u8),
    Services(u16, u16, [u8; 16]),
    SockOT([u8; 4], u16),
    SockTO([u8; 4], u16),
    Other(u16, Vec<u8>),
}

fn item_spec() -> impl Strategy<Value = ItemSpec> + Clone {
    prop_oneof![
        Just(ItemSpec::Null),
        any::<u32>().prop_map(ItemSpec::ConnAddr),
        any::<(u32, u32)>().prop_map(|(a, b)| ItemSpec::SeqAddr(a, b)),
        bytes(64).prop_map(ItemSpec::Unconnected),
        (any::<u16>(), bytes(64)).prop_map(|(s, d)| ItemSpec::Connected(s, d)),
        (
            any::<(u16, [u8; 4], u16, u16, u16)>(),
            any::<((u8, u8), u16, u32)>(),
            bytes(40),
            any::<u8>()
        )
            .prop_map(|((v, a, ven, ty, pc), (rev, st, ser), name, state)| {
                ItemSpec::Identity(v, a, ven, ty, pc, rev, st, ser, name, state)
            }),
        any::<(u16, u16, [u8; 16])>().prop_map(|(a, b, c)| ItemSpec::Services(a, b, c)),
        any::<([u8; 4], u16)>().prop_map(|(a, p)| ItemSpec::SockOT(a, p)),
        any::<([u8; 4], u16)>().prop_map(|(a, p)| ItemSpec::SockTO(a, p)),
        (0x0200u16..0x7FFF, bytes(32)).prop_map(|(t, d)| ItemSpec::Other(t, d)),
    ]
}

fn item(s: &ItemSpec) -> Item<'_> {
    match s {
        ItemSpec::Null => Item::NullAddress,
        ItemSpec::ConnAddr(c) => Item::ConnectedAddress { connection_id: *c },
        ItemSpec::SeqAddr(c, s) => Item::SequencedAddress {
            connection_id: *c,
            sequence: *s,
        },
        ItemSpec::Unconnected(d) => Item::UnconnectedData(d),
        ItemSpec::Connected(s, d) => Item::ConnectedData {
            sequence: *s,
            data: d,
        },
        ItemSpec::Identity(v, a, ven, ty, pc, rev, st, ser, name, state) => {
            Item::Identity(IdentityItem {
                protocol_version: *v,
                socket: SockAddr::ipv4(*a, 44818),
                vendor: *ven,
                device_type: *ty,
                product_code: *pc,
                revision: *rev,
                status: *st,
                serial: *ser,
                product_name: name,
                state: *state,
            })
        }
        ItemSpec::Services(v, c, n) => Item::Services(ServiceItem {
            protocol_version: *v,
            capabilities: *c,
            name: *n,
        }),
        ItemSpec::SockOT(a, p) => Item::SockAddrOT(SockAddr::ipv4(*a, *p)),
        ItemSpec::SockTO(a, p) => Item::SockAddrTO(SockAddr::ipv4(*a, *p)),
        ItemSpec::Other(t, d) => Item::Other {
            type_id: *t,
            data: d,
        },
    }
}

#[derive(Debug, Clone)]
enum BodySpec {
    Raw(Vec<u8>),
    List(Option<Vec<ItemSpec>>),
    Register(u16, u16),
    Send(u32, u16, Vec<ItemSpec>),
}

fn frame_spec() -> impl Strategy<Value = (Command, u32, u32, [u8; 8], u32, BodySpec)> {
    let items = || prop::collection::vec(item_spec(), 0..5);
    (
        any::<(u32, [u8; 8], u32)>(),
        prop_oneof![
            bytes(32).prop_map(|b| (Command::Nop, BodySpec::Raw(b))),
            Just((Command::UnRegisterSession, BodySpec::Raw(vec![]))),
            prop::option::of(items()).prop_map(|i| (Command::ListIdentity, BodySpec::List(i))),
            prop::option::of(items()).prop_map(|i| (Command::ListServices, BodySpec::List(i))),
            prop::option::of(items()).prop_map(|i| (Command::ListInterfaces, BodySpec::List(i))),
            any::<(u16, u16)>()
                .prop_map(|(v, o)| (Command::RegisterSession, BodySpec::Register(v, o))),
            (any::<(u32, u16)>(), items())
                .prop_map(|((h, t), i)| (Command::SendRRData, BodySpec::Send(h, t, i))),
            (any::<(u32, u16)>(), items())
                .prop_map(|((h, t), i)| (Command::SendUnitData, BodySpec::Send(h, t, i))),
            (0x0100u16..0xFFFF, bytes(16))
                .prop_map(|(c, b)| (Command::from_code(c), BodySpec::Raw(b))),
        ],
    )
        .prop_map(|((session, ctx, opts), (cmd, body))| (cmd, session, 0, ctx, opts, body))
}

proptest! {
    #[test]
    fn frames_round_trip((command, session, status, context, options, spec) in frame_spec()) {
        let body = match &spec {
            BodySpec::Raw(b) => Body::Raw(b),
            BodySpec::List(None) => Body::List(None),
            BodySpec::List(Some(i)) => Body::List(Some(Cpf::new(i.iter().map(item).collect()))),
            BodySpec::Register(v, o) => Body::RegisterSession(RegisterSession { protocol_version: *v, options: *o }),
            BodySpec::Send(h, t, i) => Body::SendData(SendData {
                interface_handle: *h, timeout: *t, cpf: Cpf::new(i.iter().map(item).collect()),
            }),
        };
        let header = Header {
            command, length: 0, session, status: EncapStatus::from_code(status), context, options,
        };
        let frame = Encapsulation { header, body };
        let bytes = frame.to_vec().unwrap();
        let back = Encapsulation::decode(&bytes).unwrap();
        prop_assert_eq!(usize::from(back.header.length) + 24, bytes.len());
        prop_assert_eq!(back.body, frame.body);
        prop_assert_eq!(back.header.session, session);
        prop_assert_eq!(back.header.context, context);
        // And the stream decoder agrees, at any chunking.
        let mut dec = enip_proto::FrameDecoder::new(65535);
        for b in &bytes { dec.feed(std::slice::from_ref(b)); }
        let again = dec.next_frame().unwrap().unwrap();
        prop_assert_eq!(again.to_vec().unwrap(), bytes);
    }
}

// ---- Message Router ----------------------------------------------------------------

proptest! {
    #[test]
    fn requests_round_trip(service in 0u8..0x80, specs in prop::collection::vec(seg_spec(), 0..4), data in bytes(64)) {
        let pb = path_bytes(&specs);
        let path = EPath::new(&pb, 0).unwrap();
        let req = Request { service, path, data: &data };
        let mut b = Vec::new();
        // A path over 255 words has no encoding (its size is one byte): refused, not cut.
        if pb.len() / 2 > 255 {
            prop_assert!(req.encode(&mut b).is_err());
            return Ok(());
        }
        req.encode(&mut b).unwrap();
        prop_assert_eq!(Request::decode(&b).unwrap(), req);
    }

    #[test]
    fn replies_round_trip(service in 0x80u8..=0xFF, reserved: u8, status: u8, ext in prop::collection::vec(any::<u16>(), 0..4), data in bytes(64)) {
        let r = Reply { service, reserved, status: GeneralStatus(status), extended: ext, data: &data };
        let b = r.to_vec().unwrap();
        prop_assert_eq!(b.len(), r.encoded_len());
        prop_assert_eq!(Reply::decode(&b).unwrap(), r);
    }
}

// ---- service bodies ----------------------------------------------------------------

fn rt<'a, T: enip_proto::services::Body<'a> + PartialEq + std::fmt::Debug>(
    v: &T,
    buf: &'a mut Vec<u8>,
) -> Result<(), TestCaseError> {
    v.encode(buf).unwrap();
    let back = T::from_bytes(buf).unwrap();
    prop_assert_eq!(&back, v);
    Ok(())
}

fn type_tag(code: u8, handle: u16, other: &[u8], which: u8) -> TypeTag<'_> {
    match which % 3 {
        0 => TypeTag::Elementary(0xC0 | (code & 0x1F)),
        1 => TypeTag::Struct(handle),
        _ => TypeTag::Other {
            code: 0xA1 + (code % 3),
            data: other,
        },
    }
}

proptest! {
    #[test]
    fn tag_services_round_trip(
        elements: u16, offset: u32, code: u8, handle: u16, which: u8,
        other in bytes(8), data in bytes(64), n in 1usize..=8, masks in bytes(16),
    ) {
        let t = type_tag(code, handle, &other, which);
        rt(&ReadTag { elements }, &mut Vec::new())?;
        rt(&ReadTagFragmented { elements, offset }, &mut Vec::new())?;
        rt(&TagData { type_tag: t, data: &data }, &mut Vec::new())?;
        rt(&WriteTag { type_tag: t, elements, data: &data }, &mut Vec::new())?;
        rt(&WriteTagFragmented { type_tag: t, elements, offset, data: &data }, &mut Vec::new())?;
        let mut m = masks.clone();
        m.resize(2 * n, 0xAA);
        rt(&ReadModifyWrite { or_mask: &m[..n], and_mask: &m[n..], extra: &other }, &mut Vec::new())?;
        rt(&ReadTemplate { offset, bytes: elements }, &mut Vec::new())?;
    }

    #[test]
    fn multiple_and_attribute_bodies_round_trip(
        msgs in prop::collection::vec(bytes(24), 0..20),
        ids in prop::collection::vec(any::<u16>(), 0..10),
        values in prop::collection::vec((1u16..=5, any::<u16>(), any::<[u8; 4]>()), 0..6),
    ) {
        let m = Multiple { messages: msgs.iter().map(|m| &m[..]).collect() };
        rt(&m, &mut Vec::new())?;
        rt(&AttributeIds(ids), &mut Vec::new())?;
        let size = template_attribute_size;
        let entries: Vec<_> = values.iter().map(|(id, st, v)| {
            let ok = st % 2 == 0;
            AttributeEntry {
                id: *id,
                status: Some(if ok { 0 } else { *st }),
                value: if ok { &v[..size(*id).unwrap()] } else { &[] },
            }
        }).collect();
        let list = AttributeList { entries };
        let mut b = Vec::new();
        list.encode(&mut b).unwrap();
        let back = AttributeList::decode_with(&mut Reader::new(&b), AttributeListForm::GetReply, size).unwrap();
        prop_assert_eq!(back, list);
    }

    #[test]
    fn symbol_lists_round_trip(entries in prop::collection::vec((any::<u32>(), bytes(40), any::<u16>(), any::<[u32; 5]>(), any::<[u32; 3]>(), any::<u8>()), 0..8)) {
        let requested = [1u16, 2, 3, 5, 6, 7, 8, 10];
        let list = SymbolList { entries: entries.iter().map(|(inst, name, ty, a, dims, x)| SymbolEntry {
            instance: *inst,
            attributes: vec![
                SymbolAttr::Name(name), SymbolAttr::Type(*ty), SymbolAttr::Address(a[0]),
                SymbolAttr::ObjectAddress(a[1]), SymbolAttr::SoftwareControl(a[2]),
                SymbolAttr::ElementSize(a[3] as u16), SymbolAttr::Dimensions(*dims),
                SymbolAttr::ExternalAccess(*x),
            ],
        }).collect() };
        let mut b = Vec::new();
        list.encode(&mut b).unwrap();
        prop_assert_eq!(SymbolList::decode_with(&mut Reader::new(&b), &requested).unwrap(), list);
    }

    #[test]
    fn connection_manager_bodies_round_trip(
        a in any::<[u32; 6]>(), s in any::<[u16; 4]>(), t in any::<[u8; 6]>(),
        large: bool, route in encodable_path(), msg in bytes(40),
        app in bytes(10),
    ) {
        let pb = path_bytes(&route);
        let path = EPath::new(&pb, 0).unwrap();
        rt(&UnconnectedSend { priority_tick: t[0], timeout_ticks: t[1], message: &msg, route: path, reserved: t[2] }, &mut Vec::new())?;
        let fo = ForwardOpen {
            large, priority_tick: t[0], timeout_ticks: t[1], ot_connection_id: a[0], to_connection_id: a[1],
            connection_serial: s[0], originator_vendor: s[1], originator_serial: a[2],
            timeout_multiplier: t[3], reserved: [t[4], t[5], t[0]], ot_rpi: a[3],
            ot_params: NetParams::point_to_point(s[2], large), to_rpi: a[4],
            to_params: NetParams { raw: if large { a[5] } else { u32::from(s[3]) }, large },
            transport: t[2], path,
        };
        let mut b = Vec::new();
        fo.encode(&mut b).unwrap();
        prop_assert_eq!(ForwardOpen::decode_with(&mut Reader::new(&b), large).unwrap(), fo);
        let app = &app[..app.len() & !1];
        rt(&ForwardOpenReply {
            ot_connection_id: a[0], to_connection_id: a[1], connection_serial: s[0],
            originator_vendor: s[1], originator_serial: a[2], ot_api: a[3], to_api: a[4],
            reserved: t[0], application: app,
        }, &mut Vec::new())?;
        rt(&ForwardClose {
            priority_tick: t[0], timeout_ticks: t[1], connection_serial: s[0],
            originator_vendor: s[1], originator_serial: a[2], reserved: t[2], path,
        }, &mut Vec::new())?;
        rt(&ForwardCloseReply {
            connection_serial: s[0], originator_vendor: s[1], originator_serial: a[2],
            reserved: t[3], application: app,
        }, &mut Vec::new())?;
        rt(&ConnectionFailure {
            connection_serial: s[0], originator_vendor: s[1], originator_serial: a[2],
            remaining_path_size: t[4], reserved: t[5],
        }, &mut Vec::new())?;
    }

    #[test]
    fn template_definitions_round_trip(
        members in prop::collection::vec((any::<u16>(), any::<u16>(), any::<u32>(), "[A-Za-z_][A-Za-z0-9_]{0,10}"), 0..8),
        name in "[A-Za-z_][A-Za-z0-9_]{0,10}(;n[A-Z]{0,8})?",
    ) {
        let def = TemplateDefinition {
            members: members.iter().map(|(i, t, o, _)| TemplateMember { info: *i, type_code: *t, offset: *o }).collect(),
            name: name.as_bytes(),
            member_names: members.iter().map(|m| m.3.as_bytes()).collect(),
        };
        let mut b = Vec::new();
        def.encode(&mut b).unwrap();
        prop_assert_eq!(TemplateDefinition::decode(&b, members.len() as u16).unwrap(), def);
    }

    #[test]
    fn values_round_trip(raw in bytes(8), s in bytes(100), which in 0usize..17) {
        let t = DataType::ALL[which];
        let mut b = raw.clone();
        b.resize(8, 0);
        let v = match t {
            DataType::String => Value::String(s.clone()),
            DataType::ShortString => Value::ShortString(s.clone()),
            DataType::Bool => Value::Bool(raw.first().is_some_and(|x| x % 2 == 1)),
            _ => Value::decode(t, &mut Reader::new(&b)).unwrap(),
        };
        let mut enc = Vec::new();
        v.encode(&mut enc).unwrap();
        if let Some(size) = t.size() { prop_assert_eq!(enc.len(), size); }
        let back = Value::decode(t, &mut Reader::new(&enc)).unwrap();
        // NaN payloads survive bit-for-bit; compare encodings.
        let mut enc2 = Vec::new();
        back.encode(&mut enc2).unwrap();
        prop_assert_eq!(enc2, enc);
        prop_assert_eq!(DataType::from_code(t.code()), Some(t));
        prop_assert_eq!(DataType::from_name(&t.name().to_lowercase()), Some(t));
        let ls = LogixString(s.iter().take(82).copied().collect());
        let mut lb = Vec::new();
        ls.encode(&mut lb).unwrap();
        prop_assert_eq!(LogixString::decode(&mut Reader::new(&lb)).unwrap(), ls);
    }
}
