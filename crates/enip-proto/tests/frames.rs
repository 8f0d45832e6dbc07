//! Real and client-quoted frames (enip-wire.md, client-compat.md) decoded to what they
//! mean and re-encoded byte for byte.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{dissect, hex, reply_body};
use enip_proto::mr::{class, service};
use enip_proto::services::{
    symbol_type, AttributeListForm, ForwardOpen, ReplyBody, ReplyContext, SymbolAttr,
    TemplateDefinition,
};
use enip_proto::status::describe;
use enip_proto::types::{LogixString, LOGIX_STRING_HANDLE};
use enip_proto::wire::Reader;
use enip_proto::{GeneralStatus, Request, ServiceKind, TypeTag};
use expect_test::{expect, Expect};

fn check(frame: &str, expected: Expect) {
    expected.assert_eq(&dissect(&hex(frame)));
}

#[test]
fn l61_unconnected_read_fragmented_request() {
    // cpppo's capture of a 1756-L61 v20.11 (enip-wire.md appendix A).
    check(
        "6f 00 2e 00  01 1e 02 11  00 00 00 00  03 00 00 00 00 00 00 00  00 00 00 00
         00 00 00 00  05 00  02 00  00 00 00 00  b2 00 1e 00
         52 02 20 06 24 01  05 9d  10 00
         52 04 91 05 53 43 41 44 41 00  01 00  00 00 00 00
         01 00  01 00",
        expect![[r#"
            SendRRData len=46 session=0x11021e01 status=success ctx=03 00 00 00 00 00 00 00
              interface=0 timeout=5
              NullAddress
              unconnected data
                Unconnected Send 0x52 path @6/1
                  tick=0x05 ticks=157 route [<port 1 link 0>]
                  Read Tag Fragmented 0x52 path SCADA
                    ReadTagFragmented(ReadTagFragmented { elements: 1, offset: 0 })
        "#]],
    );
}

#[test]
fn l61_unconnected_read_reply() {
    let frame = "6f 00 18 00 01 1e 02 11 00 00 00 00 03 00 00 00 00 00 00 00 00 00 00 00
                 00 00 00 00 05 00 02 00 00 00 00 00 b2 00 08 00 d2 00 00 00 c3 00 27 80";
    check(
        frame,
        expect![[r#"
            SendRRData len=24 session=0x11021e01 status=success ctx=03 00 00 00 00 00 00 00
              interface=0 timeout=5
              NullAddress
              unconnected data
                reply 0xd2 status 0x00 (success) data c3 00 27 80
        "#]],
    );
    let reply = hex("d2 00 00 00 c3 00 27 80");
    let body = reply_body(&reply, &ReplyContext::new(ServiceKind::ReadTagFragmented));
    let ReplyBody::TagData(t) = body else {
        panic!("{body:?}")
    };
    assert_eq!(t.type_tag, TypeTag::Elementary(0xC3));
    assert_eq!(i16::from_le_bytes([t.data[0], t.data[1]]), -32729); // 0x8027
}

#[test]
fn l61_write_fragmented_element() {
    let mut s = String::new();
    common::message(
        &mut s,
        &hex("53 05 91 05 53 43 41 44 41 00 28 0c c3 00 01 00 00 00 00 00 c9 40"),
        0,
    );
    expect![[r#"
        Write Tag Fragmented 0x53 path SCADA[12]
          WriteTagFragmented(WriteTagFragmented { type_tag: Elementary(195), elements: 1, offset: 0, data: [201, 64] })
    "#]]
    .assert_eq(&s);
}

#[test]
fn l61_identity_get_attributes_all_reply() {
    // Unconnected Send -> Identity Get Attributes All, as a 1756-L61 answered it.
    let reply = hex("81 00 00 00 01 00 0E 00 36 00 14 0B 60 31 1A 06 6C 00 14
         31 37 35 36 2d 4c 36 31 2f 42 20 4c 4f 47 49 58 35 35 36 31");
    let body = reply_body(&reply, &ReplyContext::new(ServiceKind::GetAttributesAll));
    let ReplyBody::Raw(d) = body else { panic!() };
    let mut r = Reader::new(d);
    assert_eq!(r.u16("vendor").unwrap(), 1);
    assert_eq!(r.u16("type").unwrap(), 0x0E);
    assert_eq!(r.u16("product").unwrap(), 0x36);
    assert_eq!((r.u8("").unwrap(), r.u8("").unwrap()), (20, 11));
    assert_eq!(r.u16("status").unwrap(), 0x3160); // REMOTE RUN
    assert_eq!(r.u32("serial").unwrap(), 0x006C061A);
    let v = enip_proto::Value::decode(enip_proto::DataType::ShortString, &mut r).unwrap();
    assert_eq!(
        v,
        enip_proto::Value::ShortString(b"1756-L61/B LOGIX5561".to_vec())
    );
    assert!(r.is_empty());
}

#[test]
fn l24er_list_identity_reply() {
    check(
        "63 00 45 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         01 00 | 0c 00 3f 00 | 01 00 | 00 02 af 12 0a a1 01 03 00 00 00 00 00 00 00 00
         | 01 00 | 0e 00 | 95 00 | 1b 0b | 30 00 | 5e 33 1e c0 | 1d
         31 37 36 39 2d 4c 32 34 45 52 2d 51 42 31 42 2f 41 20 4c 4f 47 49 58 35 33 32 34 45 52
         | 03",
        expect![[r#"
            ListIdentity len=69 session=0x0 status=success ctx=00 00 00 00 00 00 00 00
              identity v1 10.161.1.3:44818 vendor=1 type=0xe product=149 rev=27.11 status=0x0030 serial=0xc01e335e name="1769-L24ER-QB1B/A LOGIX5324ER" state=3
        "#]],
    );
}

#[test]
fn connected_read_appendix_b() {
    check(
        "70 00 24 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 02 00 a1 00 04 00 44 33 22 11 b1 00 10 00 01 00
         52 03 91 03 54 61 67 00 01 00 00 00 00 00",
        expect![[r#"
            SendUnitData len=36 session=0x1 status=success ctx=00 00 00 00 00 00 00 00
              interface=0 timeout=0
              ConnectedAddress { connection_id: 287454020 }
              connected data seq=1
                Read Tag Fragmented 0x52 path Tag
                  ReadTagFragmented(ReadTagFragmented { elements: 1, offset: 0 })
        "#]],
    );
}

#[test]
fn register_list_services_and_error_reply() {
    check(
        "65 00 04 00 00 00 00 00 00 00 00 00 5f 70 79 63 6f 6d 6d 5f 00 00 00 00 01 00 00 00",
        expect![[r#"
            RegisterSession len=4 session=0x0 status=success ctx=5f 70 79 63 6f 6d 6d 5f
              version=1 options=0
        "#]],
    );
    check(
        "04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        expect![[r#"
            ListServices len=0 session=0x0 status=success ctx=00 00 00 00 00 00 00 00
              (request)
        "#]],
    );
    check(
        "04 00 1a 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         01 00 00 01 14 00 01 00 20 01 43 6f 6d 6d 75 6e 69 63 61 74 69 6f 6e 73 00 00",
        expect![[r#"
            ListServices len=26 session=0x0 status=success ctx=00 00 00 00 00 00 00 00
              Services(ServiceItem { protocol_version: 1, capabilities: 288, name: [67, 111, 109, 109, 117, 110, 105, 99, 97, 116, 105, 111, 110, 115, 0, 0] })
        "#]],
    );
    // An error reply is a bare header with the status.
    check(
        "6f 00 00 00 07 00 00 00 64 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        expect![[r#"
            SendRRData len=0 session=0x7 status=invalid session handle ctx=00 00 00 00 00 00 00 00
              raw 
        "#]],
    );
    check(
        "64 00 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        expect![[r#"
            ListInterfaces len=2 session=0x0 status=success ctx=00 00 00 00 00 00 00 00
        "#]],
    );
}

#[test]
fn error_replies_name_their_status() {
    let b = hex("CC 00 04 01 00 00");
    let r = enip_proto::Reply::decode(&b).unwrap();
    assert_eq!(r.status, GeneralStatus::PATH_SEGMENT_ERROR);
    assert_eq!(r.extended, vec![0]);
    let b = hex("CC 00 FF 01 05 21");
    let r = enip_proto::Reply::decode(&b).unwrap();
    assert_eq!(
        r.describe_status(),
        "0xff (general error) [0x2105: access beyond end of the object]"
    );
    assert_eq!(
        describe(GeneralStatus(0xFF), &[0x2107]),
        "0xff (general error) [0x2107: data type does not match the tag]"
    );
    assert_eq!(
        describe(GeneralStatus(0xFF), &[0x2104]),
        "0xff (general error) [0x2104: address out of range]"
    );
}

#[test]
fn services_resolve_by_class() {
    let cases = [
        ("52 02 20 06 24 01", ServiceKind::UnconnectedSend),
        ("52 03 91 03 54 61 67 00", ServiceKind::ReadTagFragmented),
        ("4e 02 20 06 24 01", ServiceKind::ForwardClose),
        ("4e 03 91 03 54 61 67 00", ServiceKind::ReadModifyWrite),
        ("4c 03 20 6c 25 00 ce 0f", ServiceKind::ReadTemplate),
        ("4c 03 91 03 54 61 67 00", ServiceKind::ReadTag),
        ("4c 03 20 6b 25 00 05 00", ServiceKind::ReadTag),
        ("54 02 20 06 24 01", ServiceKind::ForwardOpen),
        ("5b 02 20 06 24 01", ServiceKind::LargeForwardOpen),
        ("54 03 91 03 54 61 67 00", ServiceKind::Other(0x54)),
        ("55 02 20 6b 24 00", ServiceKind::GetInstanceAttributeList),
        ("0a 02 20 02 24 01", ServiceKind::MultipleServicePacket),
    ];
    for (h, kind) in cases {
        let b = hex(h);
        assert_eq!(Request::decode(&b).unwrap().kind(), kind, "{h}");
    }
}

#[test]
fn pycomm3_large_forward_open_and_libplctag_forward_open() {
    // pycomm3: 0x5B, size 4000, path 01 00 20 02 24 01 (client-compat.md).
    let mut body = hex(
        "0a 05 00 00 00 00 27 04 19 71 27 04 09 10 09 10 19 71 07 00 00 00
         40 42 0f 00 a0 0f 00 42 40 42 0f 00 a0 0f 00 42 a3 03 01 00 20 02 24 01",
    );
    let mut req = hex("5b 02 20 06 24 01");
    req.append(&mut body);
    let r = Request::decode(&req).unwrap();
    let enip_proto::services::RequestBody::ForwardOpen(fo) =
        enip_proto::services::RequestBody::decode(&r).unwrap()
    else {
        panic!()
    };
    assert!(fo.large);
    assert_eq!(fo.ot_params.size(), 4000);
    assert_eq!(fo.ot_params.connection_type(), 2);
    assert!(fo.ot_params.variable());
    assert_eq!(fo.timeout_multiplier, 7);
    assert_eq!(fo.connection_triad(), (0x0427, 0x1009, 0x71191009));
    assert_eq!(fo.transport, 0xA3);
    assert_eq!(fo.path.to_string(), "<port 1 link 0>@2/1");
    let mut again = Vec::new();
    fo.encode(&mut again).unwrap();
    assert_eq!(again, r.data);

    // libplctag: 0x54, size 508 in the 16-bit parameters.
    let body = hex(
        "0a 05 00 00 00 00 01 00 00 00 01 00 3d f3 45 43 50 21 01 00 00 00
         40 42 0f 00 fc 43 40 42 0f 00 fc 43 a3 03 01 00 20 02 24 01",
    );
    let fo = ForwardOpen::decode_with(&mut Reader::new(&body), false).unwrap();
    assert_eq!(fo.ot_params.size(), 508);
    assert_eq!(fo.to_params.size(), 508);
    assert_eq!(fo.originator_vendor, 0xF33D);
}

#[test]
fn forward_open_reply_and_size_error() {
    let ok = hex("d4 00 00 00 01 00 00 80 27 04 19 71 27 04 09 10 09 10 19 71
         40 42 0f 00 40 42 0f 00 00 00");
    let ReplyBody::ForwardOpen(r) = reply_body(&ok, &ReplyContext::new(ServiceKind::ForwardOpen))
    else {
        panic!()
    };
    assert_eq!(r.ot_connection_id, 0x8000_0001);
    assert_eq!(r.to_connection_id, 0x7119_0427);
    // 0x01/0x0109 with the supported size as a second word, as libplctag expects.
    let err = hex("db 00 01 02 09 01 f4 01 27 04 09 10 09 10 19 71 00 00");
    let reply = enip_proto::Reply::decode(&err).unwrap();
    assert_eq!(reply.extended, vec![0x0109, 500]);
    let ReplyBody::ConnectionFailure(f) =
        reply_body(&err, &ReplyContext::new(ServiceKind::LargeForwardOpen))
    else {
        panic!()
    };
    assert_eq!(f.connection_serial, 0x0427);
    assert_eq!(f.remaining_path_size, 0);
}

#[test]
fn multiple_service_packet_request_and_reply() {
    // Two Read Tags in one 0x0A, offsets from the count field.
    let req = hex("0a 02 20 02 24 01 02 00 06 00 10 00
         4c 03 91 03 41 42 43 00 01 00
         4c 02 91 02 58 59 01 00");
    let mut s = String::new();
    common::message(&mut s, &req, 0);
    expect![[r#"
        Multiple Service Packet 0x0a path @2/1
          Read Tag 0x4c path ABC
            ReadTag(ReadTag { elements: 1 })
          Read Tag 0x4c path XY
            ReadTag(ReadTag { elements: 1 })
    "#]]
    .assert_eq(&s);
    let reply = hex("8a 00 1e 00 02 00 06 00 10 00
         cc 00 00 00 c4 00 2a 00 00 00
         cc 00 04 01 00 00");
    let ReplyBody::Multiple(m) = reply_body(
        &reply,
        &ReplyContext::new(ServiceKind::MultipleServicePacket),
    ) else {
        panic!()
    };
    let replies: Vec<_> = m.replies().map(|r| r.unwrap()).collect();
    assert_eq!(replies[0].data, &hex("c4 00 2a 00 00 00")[..]);
    assert_eq!(replies[1].status, GeneralStatus::PATH_SEGMENT_ERROR);
}

#[test]
fn symbol_list_reply_pycomm3_attributes() {
    // Two entries for attributes [1,2,3,5,6,8,10]: a DINT[10] and a STRING.
    let attrs = [1u16, 2, 3, 5, 6, 8, 10];
    let mut data = Vec::new();
    for (inst, name, ty, dims) in [
        (0x10u32, &b"Counts"[..], 0x20C4u16, [10u32, 0, 0]),
        (0x11, &b"Name"[..], 0x8FCE, [0, 0, 0]),
    ] {
        data.extend_from_slice(&inst.to_le_bytes());
        data.extend_from_slice(&(name.len() as u16).to_le_bytes());
        data.extend_from_slice(name);
        data.extend_from_slice(&ty.to_le_bytes());
        data.extend_from_slice(&[0; 4]);
        data.extend_from_slice(&[0; 4]);
        data.extend_from_slice(&0x0400_0000u32.to_le_bytes());
        for d in dims {
            data.extend_from_slice(&d.to_le_bytes());
        }
        data.push(0);
    }
    let mut reply = hex("d5 00 06 00");
    reply.extend_from_slice(&data);
    let ctx = ReplyContext {
        attributes: &attrs,
        ..ReplyContext::new(ServiceKind::GetInstanceAttributeList)
    };
    let ReplyBody::SymbolList(list) = reply_body(&reply, &ctx) else {
        panic!()
    };
    assert_eq!(list.entries.len(), 2);
    assert_eq!(list.entries[0].name(), Some(&b"Counts"[..]));
    let t = list.entries[1].symbol_type().unwrap();
    assert_eq!(t & symbol_type::STRUCT, symbol_type::STRUCT);
    assert_eq!(t & symbol_type::TEMPLATE_MASK, LOGIX_STRING_HANDLE);
    assert_eq!(
        list.entries[0].attributes[5],
        SymbolAttr::Dimensions([10, 0, 0])
    );
    // An entry cut short is an error at the byte where it stops.
    let cut = &data[..data.len() - 3];
    let e =
        enip_proto::services::SymbolList::decode_with(&mut Reader::new(cut), &attrs).unwrap_err();
    // The third dimension starts 5 bytes before the original end: 2 of its bytes remain.
    assert_eq!(e.offset, cut.len() - 2);
}

#[test]
fn template_attributes_and_string_definition() {
    // Get Attribute List on 0x6C for [4,5,2,1]: STRING's real metadata (pycomm3's list).
    let reply = hex(
        "83 00 00 00 04 00 04 00 00 00 0f 00 00 00 05 00 00 00 58 00 00 00
         02 00 00 00 02 00 01 00 00 00 ce 0f",
    );
    let ctx = ReplyContext {
        attribute_size: enip_proto::services::template_attribute_size,
        ..ReplyContext::new(ServiceKind::GetAttributeList)
    };
    let ReplyBody::AttributeList(l) = reply_body(&reply, &ctx) else {
        panic!()
    };
    assert_eq!(l.get(4).unwrap().value, &15u32.to_le_bytes()[..]);
    assert_eq!(l.get(5).unwrap().value, &88u32.to_le_bytes()[..]);
    assert_eq!(
        l.get(1).unwrap().value,
        &LOGIX_STRING_HANDLE.to_le_bytes()[..]
    );
    // Its definition: LEN DINT @0, DATA SINT[82] @4, 39 bytes = 15*4 - 21.
    let mut blob = hex("00 00 c4 00 00 00 00 00 52 00 c2 20 04 00 00 00");
    blob.extend_from_slice(b"ASCIISTRING82\0LEN\0DATA\0");
    assert_eq!(blob.len(), 15 * 4 - 21);
    let def = TemplateDefinition::decode(&blob, 2).unwrap();
    assert_eq!(def.type_name(), b"ASCIISTRING82");
    assert_eq!(def.member_names, vec![&b"LEN"[..], &b"DATA"[..]]);
    assert_eq!(def.members[1].info, 82);
    let mut again = Vec::new();
    def.encode(&mut again).unwrap();
    assert_eq!(again, blob);
    // Missing terminator: an error pointing past the end.
    assert!(TemplateDefinition::decode(&blob[..blob.len() - 1], 2).is_err());
}

#[test]
fn attribute_lists_for_set_and_wall_clock() {
    // pycomm3's PLC time request and the 0x8B reply (6 bytes skipped, then ULINT µs).
    let req = hex("03 02 20 8b 24 01 01 00 0b 00");
    let r = Request::decode(&req).unwrap();
    assert_eq!(r.path.target().class, Some(class::WALL_CLOCK));
    let set = hex("01 00 06 00 00 00 00 e4 0b 54 02 00");
    let list = enip_proto::services::AttributeList::decode_with(
        &mut Reader::new(&set),
        AttributeListForm::SetRequest,
        |id| (id == 6).then_some(8),
    );
    // 01 00 count, 06 00 id, then 8 bytes: decode needs exactly the declared size.
    let list = list.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(list.entries[0].id, 6);
    assert_eq!(service::GET_ATTRIBUTE_LIST, r.service);
}

#[test]
fn logix_string_roundtrip_and_bad_len() {
    let s = LogixString(b"hello".to_vec());
    let mut b = Vec::new();
    s.encode(&mut b).unwrap();
    assert_eq!(b.len(), 88);
    assert_eq!(&b[..9], &hex("05 00 00 00 68 65 6c 6c 6f")[..]);
    assert_eq!(LogixString::decode(&mut Reader::new(&b)).unwrap(), s);
    b[0] = 83;
    let e = LogixString::decode(&mut Reader::new(&b)).unwrap_err();
    assert_eq!(e.offset, 0);
    assert!(LogixString(vec![b'x'; 83]).encode(&mut Vec::new()).is_err());
}

#[test]
fn rmw_takes_the_declared_mask_size() {
    // pycomm3 sends an 8-byte AND mask for a 4-byte DINT.
    let req = hex("4e 03 91 03 54 61 67 00 04 00 20 00 00 00 ff ff ff ff ff ff ff ff");
    let r = Request::decode(&req).unwrap();
    let enip_proto::services::RequestBody::ReadModifyWrite(rmw) =
        enip_proto::services::RequestBody::decode(&r).unwrap()
    else {
        panic!()
    };
    assert_eq!(rmw.or_mask, &[0x20, 0, 0, 0]);
    assert_eq!(rmw.and_mask, &[0xff; 4]);
    assert_eq!(rmw.extra, &[0xff; 4]);
}

#[test]
fn write_tag_keeps_trailing_bytes_for_the_device() {
    // pycomm3 1.2.16 sends the value twice; the device reads only count x size.
    let req = hex("4d 03 91 03 54 61 67 00 c4 00 01 00 2a 00 00 00 2a 00 00 00");
    let r = Request::decode(&req).unwrap();
    let enip_proto::services::RequestBody::WriteTag(w) =
        enip_proto::services::RequestBody::decode(&r).unwrap()
    else {
        panic!()
    };
    assert_eq!(w.type_tag.data_type(), Some(enip_proto::DataType::Dint));
    assert_eq!(w.elements, 1);
    assert_eq!(w.data.len(), 8);
    // Struct write: A0 02 CE 0F.
    let req = hex("4d 03 91 03 53 74 72 00 a0 02 ce 0f 01 00");
    let r = Request::decode(&req).unwrap();
    let enip_proto::services::RequestBody::WriteTag(w) =
        enip_proto::services::RequestBody::decode(&r).unwrap()
    else {
        panic!()
    };
    assert_eq!(w.type_tag, TypeTag::Struct(LOGIX_STRING_HANDLE));
}

#[test]
fn unconnected_send_with_empty_route_and_odd_message() {
    // rseip: always 0x52, even with an empty route path.
    let req = hex("52 02 20 06 24 01 0a 05 08 00 0e 03 20 01 24 01 30 07 00 00");
    let mut s = String::new();
    common::message(&mut s, &req, 0);
    expect![[r#"
        Unconnected Send 0x52 path @6/1
          tick=0x0a ticks=5 route []
          Get Attribute Single 0x0e path @1/1/7
            Empty
    "#]]
    .assert_eq(&s);
    // An odd-length embedded message is padded before the route path.
    let req = hex("52 02 20 06 24 01 0a 05 0b 00 4d 02 91 01 41 00 c2 00 01 00 05 00 01 00 01 00");
    let mut s = String::new();
    common::message(&mut s, &req, 0);
    assert!(s.contains("route [<port 1 link 0>]"), "{s}");
    assert!(s.contains("data: [5]"), "{s}");
    // libplctag's route: its whole connection path.
    let req =
        hex("52 02 20 06 24 01 0a 05 0a 00 4c 03 91 03 54 61 67 00 01 00 03 00 01 00 20 02 24 01");
    let mut s = String::new();
    common::message(&mut s, &req, 0);
    assert!(s.contains("route [<port 1 link 0>@2/1]"), "{s}");
}
