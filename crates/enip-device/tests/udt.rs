//! User-defined structures: their layout, their templates as clients upload them, the tag
//! list entries of structure tags, and the tag services on structures and members.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::fmt::Write as _;

use enip_device::{Controller, MemberKind, UdtDef, UNCONNECTED_REPLY_LIMIT};
use enip_proto::mr::service as svc;
use enip_proto::path::Segment;
use enip_proto::services::{
    template_attribute_size, AttributeIds, Body as _, ReadTemplate, ReplyBody, ReplyContext,
    SymbolAttr, SymbolList, TemplateDefinition, WriteTag,
};
use enip_proto::types::{LogixString, TypeTag};
use enip_proto::{GeneralStatus, Path, Reply, Request, ServiceKind};
use expect_test::{expect, Expect};

/// The structures the tests share: a nested type, BOOLs, a STRING, an array member and
/// an 8-byte member.
fn controller() -> Controller {
    let mut c = Controller::new();
    c.define_udt(&UdtDef::new("Point", &[("X", "REAL"), ("Y", "REAL")]))
        .unwrap();
    c.define_udt(&UdtDef::new(
        "Motor",
        &[
            ("Speed", "REAL"),
            ("Running", "BOOL"),
            ("Faulted", "BOOL"),
            ("Name", "STRING"),
            ("Hist", "DINT[10]"),
            ("Pos", "Point"),
            ("Count", "LINT"),
        ],
    ))
    .unwrap();
    for spec in [
        "Motors=Motor[4]",
        "Cell=Motor",
        "Program:Main.Cell=Motor",
        "Big=Motor[40]",
        "Plain=DINT",
    ] {
        c.add_tag(spec).unwrap();
    }
    c
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn request(service: u8, path: &str, body: &[u8]) -> Vec<u8> {
    Request::build(service, &Path::parse(path).unwrap(), body).unwrap()
}

/// Execute and show the reply as hex.
fn run(c: &mut Controller, service: u8, path: &str, body: &[u8]) -> String {
    hex(&c.execute(&request(service, path, body), UNCONNECTED_REPLY_LIMIT))
}

fn write_body(type_tag: TypeTag<'_>, elements: u16, data: &[u8]) -> Vec<u8> {
    WriteTag {
        type_tag,
        elements,
        data,
    }
    .to_vec()
    .unwrap()
}

/// Each structure's members, offsets, size, template id and handle.
fn layout(c: &Controller) -> String {
    let mut s = String::new();
    for u in c.udts.iter() {
        writeln!(
            s,
            "{} template={:#05X} handle={:#06X} size={} words={} members={}",
            u.name,
            u.ty.template,
            u.ty.handle,
            u.ty.size,
            u.definition_words(),
            u.member_count()
        )
        .unwrap();
        for m in &u.members {
            let kind = match m.kind {
                MemberKind::Bit(b) => format!("bit {b}"),
                MemberKind::Data { elem, count } => match count {
                    Some(n) => format!("{elem:?}[{n}]"),
                    None => format!("{elem:?}"),
                },
            };
            let hidden = if m.hidden { " hidden" } else { "" };
            writeln!(s, "  {:>4} {} {kind}{hidden}", m.offset, m.name).unwrap();
        }
    }
    s
}

#[test]
fn layout_aligns_members_and_packs_bools_as_logix_does() {
    let c = controller();
    expect![[r#"
        Point template=0x101 handle=0x2584 size=8 words=13 members=2
             0 X Atomic(Real)
             4 Y Atomic(Real)
        Motor template=0x102 handle=0xCDF6 size=152 words=42 members=8
             0 Speed Atomic(Real)
             4 ZZZZZZZZZZMotor1 Atomic(Sint) hidden
             4 Running bit 0
             4 Faulted bit 1
             8 Name LogixString
            96 Hist Atomic(Dint)[10]
           136 Pos Struct(StructType { template: 257, handle: 9604, size: 8 })
           144 Count Atomic(Lint)
    "#]]
    .assert_eq(&layout(&c));
}

/// The definitions of pycomm3's test controller (tests/pycomm3.L5X), against the offsets
/// and template sizes its tag upload recorded (tests/offline/all_tags.json).
#[test]
fn layout_matches_a_real_controller() {
    let mut c = Controller::new();
    let bools: Vec<(String, &str)> = (1..=16)
        .map(|i| (format!("b{i}"), "BOOL"))
        .chain([("int".to_owned(), "INT")])
        .chain((1..=8).map(|i| (format!("bb{i}"), "BOOL")))
        .collect();
    let bools: Vec<(&str, &str)> = bools.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    c.define_udt(&UdtDef::new("pycomm3_BoolsUDT", &bools))
        .unwrap();
    c.define_udt(&UdtDef::new(
        "pycomm3_AtomicArrayUDT",
        &[
            ("bools", "BOOL[64]"),
            ("sints", "SINT[8]"),
            ("ints", "INT[4]"),
            ("dints", "DINT[10]"),
            ("lints", "LINT[4]"),
            ("reals", "REAL[10]"),
        ],
    ))
    .unwrap();
    c.define_udt(&UdtDef::new(
        "pycomm3_AtomicUDT",
        &[
            ("bool", "BOOL"),
            ("sint", "SINT"),
            ("int", "INT"),
            ("dint", "DINT"),
            ("lint", "LINT"),
            ("real", "REAL"),
        ],
    ))
    .unwrap();
    let hosts: Vec<(u32, &str)> = c
        .udts
        .get("pycomm3_BoolsUDT")
        .unwrap()
        .members
        .iter()
        .filter(|m| m.hidden)
        .map(|m| (m.offset, m.name.as_str()))
        .collect();
    // Hosts named after the first 10 characters and their own template index.
    assert_eq!(
        hosts,
        [
            (0, "ZZZZZZZZZZpycomm3_Bo0"),
            (1, "ZZZZZZZZZZpycomm3_Bo9"),
            (4, "ZZZZZZZZZZpycomm3_Bo19")
        ]
    );
    let arrays = c.udts.get("pycomm3_AtomicArrayUDT").unwrap();
    let offsets: Vec<u32> = arrays.members.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [0, 8, 16, 24, 64, 96]);
    assert_eq!((arrays.ty.size, arrays.definition_words()), (136, 35));
    let atomic = c.udts.get("pycomm3_AtomicUDT").unwrap();
    let offsets: Vec<u32> = atomic.members.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [0, 0, 1, 2, 4, 8, 16]);
    assert_eq!((atomic.member_count(), atomic.definition_words()), (7, 41));
    // That controller (a CompactLogix before firmware 27) sized it 20; firmware 27 and
    // later pad a structure holding a LINT to a multiple of 8.
    assert_eq!(atomic.ty.size, 24);
}

#[test]
fn eight_byte_structures_align_to_8_inside_others() {
    let mut c = controller();
    c.define_udt(&UdtDef::new(
        "Outer",
        &[
            ("Flag", "BOOL"),
            ("M", "Motor"),
            ("P", "Point[3]"),
            ("S", "SINT"),
        ],
    ))
    .unwrap();
    let u = c.udts.get("outer").unwrap();
    let offsets: Vec<(&str, u32)> = u
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.offset))
        .collect();
    expect![[r#"[("ZZZZZZZZZZOuter0", 0), ("Flag", 0), ("M", 8), ("P", 160), ("S", 184)]"#]]
        .assert_eq(&format!("{offsets:?}"));
    assert_eq!(u.ty.size, 192);
}

fn template_attributes(c: &mut Controller, id: u16, attrs: &[u16]) -> String {
    let ids = AttributeIds(attrs.to_vec()).to_vec().unwrap();
    let req = Request::build(
        svc::GET_ATTRIBUTE_LIST,
        &Path::object(0x6C, u32::from(id), None),
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
    l.entries
        .iter()
        .map(|e| format!("{}={}", e.id, hex(e.value)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn template_attributes_answer_in_request_order() {
    let mut c = controller();
    let motor = c.udts.get("Motor").unwrap().ty.template;
    // pycomm3 and libplctag; pylogix, whose member count must land at byte 24 of the
    // attribute block (so attribute 3 is 2 bytes).
    check(
        &template_attributes(&mut c, motor, &[4, 5, 2, 1]),
        expect!["4=2A 00 00 00, 5=98 00 00 00, 2=08 00, 1=F6 CD"],
    );
    let pylogix = template_attributes(&mut c, motor, &[4, 3, 2, 1]);
    check(
        &pylogix,
        expect!["4=2A 00 00 00, 3=00 00, 2=08 00, 1=F6 CD"],
    );
    let ids = AttributeIds(vec![4, 3, 2, 1]).to_vec().unwrap();
    let req = Request::build(
        svc::GET_ATTRIBUTE_LIST,
        &Path::object(0x6C, u32::from(motor), None),
        &ids,
    )
    .unwrap();
    let block = c.execute(&req, 504);
    assert_eq!(
        u16::from_le_bytes([block[24], block[25]]),
        8,
        "{}",
        hex(&block)
    );
    // STRING keeps its real metadata.
    check(
        &template_attributes(&mut c, 0x0FCE, &[4, 5, 2, 1]),
        expect!["4=0F 00 00 00, 5=58 00 00 00, 2=02 00, 1=CE 0F"],
    );
    // No such template.
    let req = Request::build(
        svc::GET_ATTRIBUTE_LIST,
        &Path::object(0x6C, 0x999, None),
        &ids,
    )
    .unwrap();
    assert_eq!(hex(&c.execute(&req, 504)), "83 00 05 00");
}

fn check(actual: &str, expected: Expect) {
    expected.assert_eq(actual);
}

fn read_template(c: &mut Controller, id: u16, offset: u32, bytes: u16, limit: usize) -> Vec<u8> {
    let body = ReadTemplate { offset, bytes }.to_vec().unwrap();
    let req = Request::build(
        svc::READ_TEMPLATE,
        &Path::object(0x6C, u32::from(id), None),
        &body,
    )
    .unwrap();
    c.execute(&req, limit)
}

fn show_definition(data: &[u8], members: u16) -> String {
    let def = TemplateDefinition::decode(data, members).unwrap();
    let mut s = format!("{}\n", String::from_utf8_lossy(def.name));
    for (m, n) in def.members.iter().zip(&def.member_names) {
        writeln!(
            s,
            "  info={:<2} type={:#06X} offset={:<3} {}",
            m.info,
            m.type_code,
            m.offset,
            String::from_utf8_lossy(n)
        )
        .unwrap();
    }
    s
}

#[test]
fn read_template_reads_whole_with_each_clients_byte_count() {
    let mut c = controller();
    let motor = c.udts.get("Motor").unwrap();
    let (id, words, members) = (
        motor.ty.template,
        motor.definition_words(),
        motor.member_count(),
    );
    let blob = motor.definition().to_vec();
    assert_eq!(blob.len() as u32, words * 4 - 20);
    let pycomm3 = (words * 4 - 21) as u16;
    let pylogix = (words * 4 - 23).div_ceil(4) as u16 * 4;
    for count in [pycomm3, pylogix] {
        let r = read_template(&mut c, id, 0, count, 504);
        let reply = Reply::decode(&r).unwrap();
        assert_eq!(reply.status, GeneralStatus::SUCCESS);
        assert_eq!(reply.data, &blob[..usize::from(count)]);
    }
    expect![[r#"
        Motor;nEAEAEAEAEAEAEAEA
          info=0  type=0x00CA offset=0   Speed
          info=0  type=0x00C2 offset=4   ZZZZZZZZZZMotor1
          info=0  type=0x00C1 offset=4   Running
          info=1  type=0x00C1 offset=4   Faulted
          info=0  type=0x8FCE offset=8   Name
          info=10 type=0x20C4 offset=96  Hist
          info=0  type=0x8101 offset=136 Pos
          info=0  type=0x00C5 offset=144 Count
    "#]]
    .assert_eq(&show_definition(&blob, members));
    // A reply limit smaller than the template: 0x06 and what fits, then the rest from the
    // offset the client has reached.
    let mut got = Vec::new();
    loop {
        let r = read_template(&mut c, id, got.len() as u32, pycomm3 - got.len() as u16, 60);
        assert!(r.len() <= 60);
        let reply = Reply::decode(&r).unwrap();
        got.extend_from_slice(reply.data);
        if reply.status == GeneralStatus::SUCCESS {
            break;
        }
        assert_eq!(reply.status, GeneralStatus::PARTIAL_TRANSFER);
    }
    assert_eq!(got, &blob[..usize::from(pycomm3)]);
    // Past the end.
    let r = read_template(&mut c, id, 1000, 10, 504);
    assert_eq!(hex(&r), "CC 00 FF 01 05 21");
}

/// Upload the controller-scope tag list as pycomm3 asks for it.
fn tag_list(c: &mut Controller, program: Option<&str>) -> String {
    const ATTRS: [u16; 4] = [1, 2, 7, 8];
    let mut segs = Vec::new();
    if let Some(p) = program {
        segs.push(Segment::symbol(p));
    }
    segs.extend([Segment::class(0x6B), Segment::instance(0)]);
    let body = AttributeIds(ATTRS.to_vec()).to_vec().unwrap();
    let req = Request::build(svc::GET_INSTANCE_ATTRIBUTE_LIST, &Path(segs), &body).unwrap();
    let r = c.execute(&req, 4000);
    let reply = Reply::decode(&r).unwrap();
    assert_eq!(reply.status, GeneralStatus::SUCCESS);
    let ctx = ReplyContext {
        attributes: &ATTRS,
        ..ReplyContext::new(ServiceKind::GetInstanceAttributeList)
    };
    let ReplyBody::SymbolList(SymbolList { entries }) = ReplyBody::decode(&reply, &ctx).unwrap()
    else {
        panic!()
    };
    let mut s = String::new();
    for e in entries {
        let size = e.attributes.iter().find_map(|a| match a {
            SymbolAttr::ElementSize(n) => Some(*n),
            _ => None,
        });
        let dims = e.attributes.iter().find_map(|a| match a {
            SymbolAttr::Dimensions(d) => Some(*d),
            _ => None,
        });
        writeln!(
            s,
            "{} type={:#06X} size={} dims={:?}",
            String::from_utf8_lossy(e.name().unwrap()),
            e.symbol_type().unwrap(),
            size.unwrap(),
            dims.unwrap()
        )
        .unwrap();
    }
    s
}

#[test]
fn tag_list_gives_structure_tags_their_template() {
    let mut c = controller();
    expect![[r#"
        Motors type=0xA102 size=152 dims=[4, 0, 0]
        Cell type=0x8102 size=152 dims=[0, 0, 0]
        Big type=0xA102 size=152 dims=[40, 0, 0]
        Plain type=0x00C4 size=4 dims=[0, 0, 0]
        Program:Main type=0x1068 size=0 dims=[0, 0, 0]
    "#]]
    .assert_eq(&tag_list(&mut c, None));
    expect![[r#"
        Cell type=0x8102 size=152 dims=[0, 0, 0]
    "#]]
    .assert_eq(&tag_list(&mut c, Some("Program:Main")));
}

#[test]
fn whole_structures_read_with_their_handle_and_write_back() {
    let mut c = controller();
    let motor = c.udts.get("Motor").unwrap().ty;
    let mut value = vec![0u8; 152];
    value[0..4].copy_from_slice(&1.5f32.to_le_bytes());
    value[4] = 0b10; // Faulted
    let mut name = Vec::new();
    LogixString(b"pump".to_vec()).encode(&mut name).unwrap();
    value[8..96].copy_from_slice(&name);
    value[96 + 12..96 + 16].copy_from_slice(&7i32.to_le_bytes()); // Hist[3]
    value[140..144].copy_from_slice(&2.0f32.to_le_bytes()); // Pos.Y
    value[144..152].copy_from_slice(&(-5i64).to_le_bytes());
    let body = write_body(TypeTag::Struct(motor.handle), 1, &value);
    check(
        &run(&mut c, svc::WRITE_TAG, "Motors[2]", &body),
        expect!["CD 00 00 00"],
    );
    let r = c.execute(&request(svc::READ_TAG, "Motors[2]", &[1, 0]), 504);
    assert_eq!(&r[..6], &[0xCC, 0, 0, 0, 0xA0, 0x02]);
    assert_eq!(&r[6..8], &motor.handle.to_le_bytes());
    assert_eq!(&r[8..], &value[..]);
    // Neighbours untouched; two elements read as one run.
    let r = c.execute(&request(svc::READ_TAG, "Motors[1]", &[2, 0]), 504);
    assert_eq!(&r[8..8 + 152], &[0; 152][..]);
    assert_eq!(&r[8 + 152..], &value[..]);
    // Members of what was written.
    check(
        &run(&mut c, svc::READ_TAG, "Motors[2].Speed", &[1, 0]),
        expect!["CC 00 00 00 CA 00 00 00 C0 3F"],
    );
    check(
        &run(&mut c, svc::READ_TAG, "Motors[2].Faulted", &[1, 0]),
        expect!["CC 00 00 00 C1 00 01"],
    );
    check(
        &run(&mut c, svc::READ_TAG, "Motors[2].Running", &[1, 0]),
        expect!["CC 00 00 00 C1 00 00"],
    );
    check(
        &run(&mut c, svc::READ_TAG, "Motors[2].Hist[3]", &[1, 0]),
        expect!["CC 00 00 00 C4 00 07 00 00 00"],
    );
    check(
        &run(&mut c, svc::READ_TAG, "Motors[2].Pos.Y", &[1, 0]),
        expect!["CC 00 00 00 CA 00 00 00 00 40"],
    );
    check(
        &run(&mut c, svc::READ_TAG, "Motors[2].Count", &[1, 0]),
        expect!["CC 00 00 00 C5 00 FB FF FF FF FF FF FF FF"],
    );
    let r = c.execute(&request(svc::READ_TAG, "Motors[2].Name", &[1, 0]), 504);
    assert_eq!(&r[4..8], &[0xA0, 0x02, 0xCE, 0x0F]);
    assert_eq!(&r[8..], &name[..]);
    let r = c.execute(&request(svc::READ_TAG, "Motors[2].Pos", &[1, 0]), 504);
    check(
        &hex(&r),
        expect!["CC 00 00 00 A0 02 84 25 00 00 00 00 00 00 00 40"],
    );
    // STRING members are members too.
    check(
        &run(&mut c, svc::READ_TAG, "Motors[2].Name.LEN", &[1, 0]),
        expect!["CC 00 00 00 C4 00 04 00 00 00"],
    );
    check(
        &run(&mut c, svc::READ_TAG, "Motors[2].Name.DATA[1]", &[3, 0]),
        expect!["CC 00 00 00 C2 00 75 6D 70"],
    );
}

#[test]
fn members_write_alone_and_bool_members_touch_only_their_bit() {
    let mut c = controller();
    let tt = TypeTag::atomic;
    use enip_proto::types::DataType::{Bool, Dint, Real};
    check(
        &run(
            &mut c,
            svc::WRITE_TAG,
            "Cell.Speed",
            &write_body(tt(Real), 1, &3.0f32.to_le_bytes()),
        ),
        expect!["CD 00 00 00"],
    );
    // pycomm3 writes TRUE as 0xFF (and sends the value twice); pylogix as 0x01.
    run(
        &mut c,
        svc::WRITE_TAG,
        "Cell.Faulted",
        &write_body(tt(Bool), 1, &[0xFF, 0xFF]),
    );
    run(
        &mut c,
        svc::WRITE_TAG,
        "cell.running",
        &write_body(tt(Bool), 1, &[0x01]),
    );
    // Both bits set in the hidden host byte after Speed.
    let r = c.execute(&request(svc::READ_TAG, "Cell", &[1, 0]), 504);
    assert_eq!(&r[8..13], &[0, 0, 0x40, 0x40, 0b11]);
    run(
        &mut c,
        svc::WRITE_TAG,
        "Cell.Running",
        &write_body(tt(Bool), 1, &[0]),
    );
    let r = c.execute(&request(svc::READ_TAG, "Cell", &[1, 0]), 504);
    assert_eq!(r[12], 0b10);
    // Member arrays, from an index to their end.
    let body = write_body(tt(Dint), 3, &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
    check(
        &run(&mut c, svc::WRITE_TAG, "Cell.Hist[7]", &body),
        expect!["CD 00 00 00"],
    );
    check(
        &run(&mut c, svc::READ_TAG, "Cell.Hist[6]", &[4, 0]),
        expect!["CC 00 00 00 C4 00 00 00 00 00 01 00 00 00 02 00 00 00 03 00 00 00"],
    );
    // Program scope: its own Cell.
    run(
        &mut c,
        svc::WRITE_TAG,
        "Program:Main.Cell.Pos.X",
        &write_body(tt(Real), 1, &1.0f32.to_le_bytes()),
    );
    check(
        &run(&mut c, svc::READ_TAG, "Program:Main.Cell.Pos.X", &[1, 0]),
        expect!["CC 00 00 00 CA 00 00 00 80 3F"],
    );
    check(
        &run(&mut c, svc::READ_TAG, "Cell.Pos.X", &[1, 0]),
        expect!["CC 00 00 00 CA 00 00 00 00 00"],
    );
    // Symbol-instance addressing (pycomm3, firmware >= 21): Motors is instance 1.
    let by_instance = Request::build(
        svc::READ_TAG,
        &Path(vec![
            Segment::class(0x6B),
            Segment::instance(2),
            Segment::symbol("Hist"),
            Segment::element(8),
        ]),
        &[1, 0],
    )
    .unwrap();
    check(
        &hex(&c.execute(&by_instance, 504)),
        expect!["CC 00 00 00 C4 00 02 00 00 00"],
    );
}

#[test]
fn read_modify_write_on_integer_members_only() {
    let mut c = controller();
    // pycomm3's bit write on a DINT member: 4-byte OR mask, 8-byte AND mask.
    let set = [
        4u8, 0, 0x20, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    check(
        &run(&mut c, svc::READ_MODIFY_WRITE, "Motors[3].Hist[9]", &set),
        expect!["CE 00 00 00"],
    );
    check(
        &run(&mut c, svc::READ_TAG, "Motors[3].Hist[9]", &[1, 0]),
        expect!["CC 00 00 00 C4 00 20 00 00 00"],
    );
    check(
        &run(&mut c, svc::READ_MODIFY_WRITE, "Motors[3].Count", &set),
        expect!["CE 00 00 00"],
    );
    // Not on a REAL, a BOOL member or a whole structure.
    for path in [
        "Motors[3].Speed",
        "Motors[3].Running",
        "Motors[3]",
        "Motors[3].Pos",
    ] {
        check(
            &run(&mut c, svc::READ_MODIFY_WRITE, path, &set),
            expect!["CE 00 FF 01 07 21"],
        );
    }
}

#[test]
fn large_structure_arrays_read_in_fragments() {
    let mut c = controller();
    let motor = c.udts.get("Motor").unwrap().ty;
    let values: Vec<u8> = (0..40 * 152).map(|i| (i % 7) as u8).collect();
    // Fill through Write Tag Fragmented, 400 bytes at a time (not whole elements).
    for (k, chunk) in values.chunks(400).enumerate() {
        let body = enip_proto::services::WriteTagFragmented {
            type_tag: TypeTag::Struct(motor.handle),
            elements: 40,
            offset: (k * 400) as u32,
            data: chunk,
        }
        .to_vec()
        .unwrap();
        check(
            &run(&mut c, svc::WRITE_TAG_FRAGMENTED, "Big", &body),
            expect!["D3 00 00 00"],
        );
    }
    // A plain Read Tag too large for the limit: 0x06 and whole elements.
    let r = c.execute(&request(svc::READ_TAG, "Big", &[40, 0]), 504);
    assert_eq!(&r[..6], &[0xCC, 0, 0x06, 0, 0xA0, 0x02]);
    assert_eq!(&r[6..8], &motor.handle.to_le_bytes());
    assert_eq!(r.len() - 8, 3 * 152);
    let mut got = Vec::new();
    let mut rounds = 0;
    loop {
        let body = enip_proto::services::ReadTagFragmented {
            elements: 40,
            offset: got.len() as u32,
        }
        .to_vec()
        .unwrap();
        let r = c.execute(&request(svc::READ_TAG_FRAGMENTED, "Big", &body), 504);
        assert!(r.len() <= 504);
        assert_eq!(&r[4..6], &[0xA0, 0x02]);
        assert_eq!(&r[6..8], &motor.handle.to_le_bytes());
        got.extend_from_slice(&r[8..]);
        rounds += 1;
        match r[2] {
            0x06 => continue,
            0x00 => break,
            s => panic!("status {s:#04X}"),
        }
    }
    assert_eq!(got, values);
    assert_eq!(rounds, 14); // 3 elements (456 bytes) per fragment
                            // An element bigger than the reply limit still makes progress, in bytes.
    let body = enip_proto::services::ReadTagFragmented {
        elements: 1,
        offset: 0,
    }
    .to_vec()
    .unwrap();
    let r = c.execute(&request(svc::READ_TAG_FRAGMENTED, "Big[5]", &body), 100);
    assert_eq!((r[2], r.len()), (0x06, 100));
    assert_eq!(&r[8..], &values[5 * 152..5 * 152 + 92]);
}

#[test]
fn structure_errors_are_logix_statuses() {
    let mut c = controller();
    let motor = c.udts.get("Motor").unwrap().ty;
    let point = c.udts.get("Point").unwrap().ty;
    let cases: [(u8, &str, Vec<u8>); 12] = [
        // No such member: 0x04 with one word of 0, as an unknown tag.
        (svc::READ_TAG, "Motors[1].Nope", vec![1, 0]),
        // Hidden hosts cannot be named; a bit has no members.
        (svc::READ_TAG, "Cell.ZZZZZZZZZZMotor1", vec![1, 0]),
        (svc::READ_TAG, "Cell.Running.X", vec![1, 0]),
        // A member of an array needs the element first; atomics have no members.
        (svc::READ_TAG, "Motors.Speed", vec![1, 0]),
        (svc::READ_TAG, "Plain.Speed", vec![1, 0]),
        // Index past a member array's end, and a count past it.
        (svc::READ_TAG, "Cell.Hist[10]", vec![1, 0]),
        (svc::READ_TAG, "Cell.Hist[8]", vec![3, 0]),
        // Two indexes into a 1-D member; an index into a scalar member.
        (svc::READ_TAG, "Cell.Hist[1,2]", vec![1, 0]),
        (svc::READ_TAG, "Cell.Speed[0]", vec![1, 0]),
        // Whole-structure writes need the structure's own handle.
        (
            svc::WRITE_TAG,
            "Cell",
            write_body(TypeTag::Struct(point.handle), 1, &[0; 152]),
        ),
        (
            svc::WRITE_TAG,
            "Cell",
            write_body(TypeTag::Struct(motor.handle), 1, &[0; 100]),
        ),
        // Two BOOLs into one bit.
        (
            svc::WRITE_TAG,
            "Cell.Running",
            write_body(TypeTag::atomic(enip_proto::DataType::Bool), 2, &[1, 1]),
        ),
    ];
    let got: Vec<String> = cases
        .iter()
        .map(|(s, p, b)| format!("{p}: {}", run(&mut c, *s, p, b)))
        .collect();
    expect![[r#"
        Motors[1].Nope: CC 00 04 01 00 00
        Cell.ZZZZZZZZZZMotor1: CC 00 04 01 00 00
        Cell.Running.X: CC 00 04 01 00 00
        Motors.Speed: CC 00 04 01 00 00
        Plain.Speed: CC 00 04 01 00 00
        Cell.Hist[10]: CC 00 FF 01 05 21
        Cell.Hist[8]: CC 00 FF 01 05 21
        Cell.Hist[1,2]: CC 00 04 01 00 00
        Cell.Speed[0]: CC 00 04 01 00 00
        Cell: CD 00 FF 01 07 21
        Cell: CD 00 13 00
        Cell.Running: CD 00 FF 01 05 21"#]]
    .assert_eq(&got.join("\n"));
}

#[test]
fn a_refused_structure_write_changes_nothing() {
    let mut c = controller();
    let motor = c.udts.get("Motor").unwrap().ty;
    let mut value = vec![0x11u8; 152];
    value[8..12].copy_from_slice(&83i32.to_le_bytes()); // Name.LEN past 82
    let body = write_body(TypeTag::Struct(motor.handle), 1, &value);
    check(
        &run(&mut c, svc::WRITE_TAG, "Motors[0]", &body),
        expect!["CD 00 03 00"],
    );
    let r = c.execute(&request(svc::READ_TAG, "Motors[0]", &[1, 0]), 504);
    assert_eq!(&r[8..], &[0; 152][..]);
    value[8..12].copy_from_slice(&82i32.to_le_bytes());
    let body = write_body(TypeTag::Struct(motor.handle), 1, &value);
    check(
        &run(&mut c, svc::WRITE_TAG, "Motors[0]", &body),
        expect!["CD 00 00 00"],
    );
}

#[test]
fn definitions_are_checked() {
    let mut c = controller();
    let bad = [
        UdtDef::new("Motor", &[("A", "DINT")]),
        UdtDef::new("dint", &[("A", "DINT")]),
        UdtDef::new("String", &[("A", "DINT")]),
        UdtDef::new("2Fast", &[("A", "DINT")]),
        UdtDef::new("Empty", &[]),
        UdtDef::new("Loop", &[("A", "DINT"), ("Me", "Loop[2]")]),
        UdtDef::new("Twice", &[("A", "DINT"), ("a", "REAL")]),
        UdtDef::new("Unknown", &[("A", "Motr")]),
        UdtDef::new("Later", &[("A", "Defined_later")]),
        UdtDef::new("BadDim", &[("A", "DINT[2,3]")]),
        UdtDef::new("ZeroDim", &[("A", "DINT[0]")]),
        UdtDef::new("Open", &[("A", "DINT[4")]),
        UdtDef::new("BadMember", &[("A b", "DINT")]),
        UdtDef::new("Clash", &[("Flag", "BOOL"), ("ZZZZZZZZZZClash0", "SINT")]),
        UdtDef::new("Huge", &[("A", "Motor[65535]")]),
    ];
    let got: Vec<String> = bad
        .iter()
        .map(|d| c.define_udt(d).unwrap_err().to_string())
        .collect();
    expect![[r#"
        type `Motor` is already defined (a structure, or a built-in type)
        type `dint` is already defined (a structure, or a built-in type)
        type `String` is already defined (a structure, or a built-in type)
        bad structure name `2Fast`: must start with a letter or `_`
        structure `Empty` has no members
        structure `Loop` cannot contain itself (member `Me`)
        duplicate member `a` in structure `Twice`
        unknown type `Motr` for member `A` of structure `Unknown` (known: BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING, structures: Point Motor; define a structure before using it)
        unknown type `Defined_later` for member `A` of structure `Later` (known: BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING, structures: Point Motor; define a structure before using it)
        bad member `A` of structure `BadDim`: a member array has one dimension
        bad member `A` of structure `ZeroDim`: its dimension must be a number from 1 to 65535
        bad member `A` of structure `Open`: missing `]` in its type
        bad member `A b` of structure `BadMember`: only letters, digits and `_` are allowed
        duplicate member `ZZZZZZZZZZClash0` in structure `Clash`
        structure `Huge` is too large: 9961320 bytes (at most 2097152)"#]]
    .assert_eq(&got.join("\n"));
    // Tags: an unknown type lists the structures; a structure array over the size cap.
    let errors = [
        c.add_tag("M=Motr").unwrap_err().to_string(),
        c.add_tag("M=Motor[1000000]").unwrap_err().to_string(),
    ];
    expect![[r#"
        unknown type `Motr` in tag spec `M=Motr` (known: BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING SSTRING, structures: Point Motor)
        bad dimensions `1000000` in tag spec `M=Motor[1000000]`: more than 134,217,728 bytes of data"#]]
    .assert_eq(&errors.join("\n"));
    // Nothing half-defined was left behind.
    assert_eq!(c.udts.iter().count(), 2);
}

#[test]
fn template_ids_skip_what_clients_mistake_for_type_codes() {
    let mut c = Controller::new();
    let ids: Vec<u16> = (0..200)
        .map(|i| {
            c.define_udt(&UdtDef::new(&format!("T{i}"), &[("A", "DINT")]))
                .unwrap()
                .template
        })
        .collect();
    assert!(ids.iter().all(|&id| (0x100..=0xEFF).contains(&id)));
    assert!(ids.iter().all(|&id| id & 0xFF != 0 && id & 0xFF < 0xA0));
    assert_eq!((ids[0], ids[158], ids[159]), (0x101, 0x19F, 0x201));
    // Same definition, distinct handles.
    let mut handles: Vec<u16> = c.udts.iter().map(|u| u.ty.handle).collect();
    handles.sort_unstable();
    handles.dedup();
    assert_eq!(handles.len(), 200);
}

#[test]
fn mangled_member_requests_get_a_status_not_a_panic() {
    let mut c = controller();
    let motor = c.udts.get("Motor").unwrap().ty;
    let good = [
        request(
            svc::WRITE_TAG,
            "Program:Main.Cell.Pos.Y",
            &write_body(
                TypeTag::atomic(enip_proto::DataType::Real),
                1,
                &[0, 0, 0x80, 0x3F],
            ),
        ),
        request(
            svc::WRITE_TAG,
            "Motors[3]",
            &write_body(TypeTag::Struct(motor.handle), 1, &[0; 152]),
        ),
        request(
            svc::READ_TAG_FRAGMENTED,
            "Big[39].Name.DATA[5]",
            &[2, 0, 1, 0, 0, 0],
        ),
        read_template_request(motor.template),
    ];
    for g in &good {
        for n in 0..g.len() {
            assert!(Reply::decode(&c.execute(&g[..n], 100)).is_ok());
            for bit in 0..8 {
                let mut bad = g.clone();
                bad[n] ^= 1 << bit;
                assert!(Reply::decode(&c.execute(&bad, 100)).is_ok());
            }
        }
    }
}

fn read_template_request(id: u16) -> Vec<u8> {
    let body = ReadTemplate {
        offset: 4,
        bytes: 100,
    }
    .to_vec()
    .unwrap();
    Request::build(
        svc::READ_TEMPLATE,
        &Path::object(0x6C, u32::from(id), None),
        &body,
    )
    .unwrap()
}
