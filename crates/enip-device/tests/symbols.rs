//! The tag list (Symbol object 0x6B) and the STRING template (0x6C) as pycomm3, pylogix
//! and libplctag upload them.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use enip_device::Controller;
use enip_proto::mr::service as svc;
use enip_proto::path::Segment;
use enip_proto::services::{
    template_attribute_size, AttributeIds, Body as _, ReadTemplate, ReplyBody, ReplyContext,
    SymbolAttr, SymbolList, TemplateDefinition,
};
use enip_proto::{GeneralStatus, Path, Reply, Request, ServiceKind};

const PYCOMM3: [u16; 7] = [1, 2, 3, 5, 6, 8, 10];

fn list_request(program: Option<&str>, start: u32, attrs: &[u16]) -> Vec<u8> {
    let mut segs = Vec::new();
    if let Some(p) = program {
        segs.push(Segment::symbol(p));
    }
    segs.push(Segment::class(0x6B));
    segs.push(Segment::instance(start));
    let body = AttributeIds(attrs.to_vec()).to_vec().unwrap();
    Request::build(svc::GET_INSTANCE_ATTRIBUTE_LIST, &Path(segs), &body).unwrap()
}

/// One uploaded entry: instance, name, type word, dimensions.
type Entry = (u32, String, u16, [u32; 3]);

/// Upload the whole list, paging as pycomm3 does; returns the entries and the requests.
fn upload(c: &mut Controller, program: Option<&str>, limit: usize) -> (Vec<Entry>, usize) {
    let mut out = Vec::new();
    let mut start = 0;
    let mut requests = 0;
    loop {
        let r = c.execute(&list_request(program, start, &PYCOMM3), limit);
        requests += 1;
        let reply = Reply::decode(&r).unwrap();
        assert!(reply.status.carries_data(), "{}", reply.describe_status());
        assert!(r.len() <= limit);
        let ctx = ReplyContext {
            attributes: &PYCOMM3,
            ..ReplyContext::new(ServiceKind::GetInstanceAttributeList)
        };
        let list = match ReplyBody::decode(&reply, &ctx).unwrap() {
            ReplyBody::SymbolList(l) => l,
            ReplyBody::Empty => SymbolList::default(),
            other => panic!("{other:?}"),
        };
        for e in &list.entries {
            let dims = e.attributes.iter().find_map(|a| match a {
                SymbolAttr::Dimensions(d) => Some(*d),
                _ => None,
            });
            out.push((
                e.instance,
                String::from_utf8(e.name().unwrap().to_vec()).unwrap(),
                e.symbol_type().unwrap(),
                dims.unwrap(),
            ));
            start = e.instance + 1;
        }
        if reply.status == GeneralStatus::SUCCESS {
            return (out, requests);
        }
        assert!(
            !list.entries.is_empty(),
            "0x06 must carry at least one entry"
        );
    }
}

fn controller() -> Controller {
    let mut c = Controller::new();
    for s in [
        "SCADA=DINT[1000]",
        "Recipe=STRING",
        "Program:Main.Step=DINT",
        "Bits=BOOL[96]",
        "Grid=REAL[4,5]",
        "Program:Main.Batch=STRING[3]",
    ] {
        c.add_tag(s).unwrap();
    }
    c
}

#[test]
fn controller_scope_lists_tags_and_programs() {
    let mut c = controller();
    let (list, _) = upload(&mut c, None, 504);
    let names: Vec<(&str, u16, [u32; 3])> = list
        .iter()
        .map(|(_, n, t, d)| (n.as_str(), *t, *d))
        .collect();
    assert_eq!(
        names,
        vec![
            ("SCADA", 0x20C4, [1000, 0, 0]),
            ("Recipe", 0x8FCE, [0, 0, 0]),
            ("Bits", 0x20D3, [3, 0, 0]),
            ("Grid", 0x40CA, [4, 5, 0]),
            ("Program:Main", 0x1068, [0, 0, 0]),
        ]
    );
    let (scoped, _) = upload(&mut c, Some("Program:Main"), 504);
    let names: Vec<(&str, u16)> = scoped.iter().map(|(_, n, t, _)| (n.as_str(), *t)).collect();
    assert_eq!(names, vec![("Step", 0x00C4), ("Batch", 0xAFCE)]);
    let r = c.execute(&list_request(Some("Program:Nope"), 0, &PYCOMM3), 504);
    assert_eq!(
        Reply::decode(&r).unwrap().status,
        GeneralStatus::PATH_SEGMENT_ERROR
    );
    // An attribute the Symbol object does not have.
    let r = c.execute(&list_request(None, 0, &[1, 99]), 504);
    assert_eq!(
        Reply::decode(&r).unwrap().status,
        GeneralStatus::ATTRIBUTE_LIST_ERROR
    );
}

#[test]
fn long_lists_page_by_whole_entries() {
    let mut c = Controller::new();
    let names: Vec<String> = (0..300)
        .map(|i| format!("Tag_with_a_longish_name_{i:04}"))
        .collect();
    for n in &names {
        c.add_tag(&format!("{n}=DINT")).unwrap();
    }
    let (list, requests) = upload(&mut c, None, 504);
    let got: Vec<&str> = list.iter().map(|(_, n, _, _)| n.as_str()).collect();
    assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(requests > 10, "{requests} requests");
    // A bigger connection needs fewer round trips.
    let (_, fewer) = upload(&mut c, None, 4000);
    assert!(fewer < requests / 5, "{fewer} vs {requests}");
}

#[test]
fn tags_are_reachable_by_symbol_instance() {
    let mut c = controller();
    let (list, _) = upload(&mut c, None, 504);
    let scada = list.iter().find(|e| e.1 == "SCADA").unwrap().0;
    let w = Request::build(
        svc::WRITE_TAG,
        &Path::parse("SCADA[7]").unwrap(),
        &[0xC4, 0, 1, 0, 42, 0, 0, 0],
    )
    .unwrap();
    c.execute(&w, 504);
    let by_instance = Request::build(
        svc::READ_TAG,
        &Path(vec![
            Segment::class(0x6B),
            Segment::instance(scada),
            Segment::element(7),
        ]),
        &[1, 0],
    )
    .unwrap();
    let r = c.execute(&by_instance, 504);
    assert_eq!(&r[4..], &[0xC4, 0, 42, 0, 0, 0]);
    let missing = Request::build(
        svc::READ_TAG,
        &Path(vec![Segment::class(0x6B), Segment::instance(999)]),
        &[1, 0],
    )
    .unwrap();
    assert_eq!(
        Reply::decode(&c.execute(&missing, 504)).unwrap().status,
        GeneralStatus::PATH_SEGMENT_ERROR
    );
}

#[test]
fn string_template_reads_whole_for_every_client() {
    let mut c = controller();
    let ids = AttributeIds(vec![4, 5, 2, 1]).to_vec().unwrap();
    let req = Request::build(
        svc::GET_ATTRIBUTE_LIST,
        &Path::object(0x6C, 0x0FCE, None),
        &ids,
    )
    .unwrap();
    let r = c.execute(&req, 504);
    let reply = Reply::decode(&r).unwrap();
    let ctx = ReplyContext {
        attribute_size: template_attribute_size,
        ..ReplyContext::new(ServiceKind::GetAttributeList)
    };
    let ReplyBody::AttributeList(l) = ReplyBody::decode(&reply, &ctx).unwrap() else {
        panic!()
    };
    let order: Vec<u16> = l.entries.iter().map(|e| e.id).collect();
    assert_eq!(order, vec![4, 5, 2, 1], "request order");
    assert_eq!(l.get(4).unwrap().value, &15u32.to_le_bytes());
    assert_eq!(l.get(5).unwrap().value, &88u32.to_le_bytes());
    // pycomm3 asks attr4*4 - 21 bytes, pylogix ceil((attr4*4 - 23)/4)*4: both in one read.
    for count in [15 * 4 - 21, (15u16 * 4 - 23).div_ceil(4) * 4] {
        let body = ReadTemplate {
            offset: 0,
            bytes: count,
        }
        .to_vec()
        .unwrap();
        let req =
            Request::build(svc::READ_TEMPLATE, &Path::object(0x6C, 0x0FCE, None), &body).unwrap();
        let r = c.execute(&req, 504);
        let reply = Reply::decode(&r).unwrap();
        assert_eq!(reply.status, GeneralStatus::SUCCESS);
        assert_eq!(reply.data.len(), usize::from(count));
        let def = TemplateDefinition::decode(reply.data, 2).unwrap();
        assert_eq!(def.type_name(), b"ASCIISTRING82");
        assert_eq!(def.member_names, vec![&b"LEN"[..], &b"DATA"[..]]);
    }
    let req = Request::build(
        svc::GET_ATTRIBUTE_LIST,
        &Path::object(0x6C, 0x1234, None),
        &ids,
    )
    .unwrap();
    assert_eq!(
        Reply::decode(&c.execute(&req, 504)).unwrap().status,
        GeneralStatus::PATH_DESTINATION_UNKNOWN
    );
}
