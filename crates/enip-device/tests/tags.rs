//! The controller's tag services, request bytes in, reply bytes out, against Logix's
//! statuses.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use enip_device::{Controller, ElementType, SpecError, TagSpec, UNCONNECTED_REPLY_LIMIT};
use enip_proto::mr::service as svc;
use enip_proto::services::{
    Body as _, Multiple, ReadModifyWrite, ReadTag, ReadTagFragmented, ReplyBody, ReplyContext,
    WriteTag, WriteTagFragmented,
};
use enip_proto::types::{DataType, LogixString, TypeTag};
use enip_proto::{GeneralStatus, Path, Reply, Request, ServiceKind};

fn ctrl(specs: &[&str]) -> Controller {
    let mut c = Controller::new();
    for s in specs {
        c.add_tag(s).unwrap();
    }
    c
}

fn request(service: u8, path: &str, body: &[u8]) -> Vec<u8> {
    Request::build(service, &Path::parse(path).unwrap(), body).unwrap()
}

fn status(reply: &[u8]) -> (u8, Vec<u16>) {
    let r = Reply::decode(reply).unwrap();
    (r.status.0, r.extended)
}

fn read(c: &mut Controller, path: &str, n: u16) -> Vec<u8> {
    let r = c.execute(
        &request(
            svc::READ_TAG,
            path,
            &ReadTag { elements: n }.to_vec().unwrap(),
        ),
        UNCONNECTED_REPLY_LIMIT,
    );
    let reply = Reply::decode(&r).unwrap();
    assert_eq!(
        reply.status,
        GeneralStatus::SUCCESS,
        "{}",
        reply.describe_status()
    );
    let ReplyBody::TagData(t) =
        ReplyBody::decode(&reply, &ReplyContext::new(ServiceKind::ReadTag)).unwrap()
    else {
        panic!()
    };
    t.data.to_vec()
}

fn write(c: &mut Controller, path: &str, t: DataType, n: u16, data: &[u8]) -> Vec<u8> {
    let body = WriteTag {
        type_tag: TypeTag::atomic(t),
        elements: n,
        data,
    }
    .to_vec()
    .unwrap();
    c.execute(
        &request(svc::WRITE_TAG, path, &body),
        UNCONNECTED_REPLY_LIMIT,
    )
}

fn dints(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn specs_parse_as_cpppo_writes_them() {
    let s = TagSpec::parse("SCADA=INT[1000]").unwrap();
    assert_eq!((s.name.as_str(), s.dims.as_slice()), ("SCADA", &[1000][..]));
    assert_eq!(TagSpec::parse("A=REAL[4,5]").unwrap().dims, vec![4, 5]);
    assert_eq!(TagSpec::parse("B=dint[2,3,4]").unwrap().dims, vec![2, 3, 4]);
    assert_eq!(
        TagSpec::parse("Program:Main.Step=DINT").unwrap().name,
        "Program:Main.Step"
    );
    // cpppo's default type is INT, one element.
    let s = TagSpec::parse("SCADA").unwrap();
    assert_eq!(
        (s.elem, s.dims.len()),
        (ElementType::Atomic(DataType::Int), 0)
    );
    assert_eq!(
        TagSpec::parse("S=").unwrap().elem,
        ElementType::Atomic(DataType::Int)
    );
    let errors = [
        ("X=FOO", "unknown type `FOO` in tag spec `X=FOO` (known: BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING SSTRING)"),
        ("X=INT[0]", "bad dimensions `0` in tag spec `X=INT[0]`: a dimension of 0"),
        ("X=INT[1,2,3,4]", "bad dimensions `1,2,3,4` in tag spec `X=INT[1,2,3,4]`: 1 to 3 dimensions"),
        ("X=INT[4096,4096,4096]", "bad dimensions `4096,4096,4096` in tag spec `X=INT[4096,4096,4096]`: more than 16,777,216 elements"),
        ("X=INT[3", "bad dimensions `3` in tag spec `X=INT[3`: missing `]`"),
        ("1X=INT", "bad tag name `1X`: must start with a letter or `_`"),
        ("Other:A.B=INT", "bad tag name `Other:A.B`: only `Program:NAME.` may scope a tag"),
        ("A-B=INT", "bad tag name `A-B`: only letters, digits and `_` are allowed"),
    ];
    for (spec, msg) in errors {
        assert_eq!(TagSpec::parse(spec).unwrap_err().to_string(), msg, "{spec}");
    }
    let mut c = ctrl(&["Tag=INT"]);
    assert_eq!(
        c.add_tag("TAG=DINT").unwrap_err(),
        SpecError::Duplicate("TAG".into())
    );
}

#[test]
fn dint_array_write_read_and_errors() {
    let mut c = ctrl(&["Counts=DINT[10]"]);
    assert_eq!(
        status(&write(
            &mut c,
            "Counts[2]",
            DataType::Dint,
            3,
            &dints(&[7, 8, 9])
        )),
        (0, vec![])
    );
    assert_eq!(read(&mut c, "counts[1]", 4), dints(&[0, 7, 8, 9]));
    // Beyond the end, by count or by index.
    let r = c.execute(&request(svc::READ_TAG, "Counts[8]", &[3, 0]), 500);
    assert_eq!(r, vec![0xCC, 0, 0xFF, 1, 0x05, 0x21]);
    let r = c.execute(&request(svc::READ_TAG, "Counts[10]", &[1, 0]), 500);
    assert_eq!(status(&r), (0xFF, vec![0x2105]));
    // Unknown tag: 0x04 with one word of 0, as a 1769-L23E answers.
    let r = c.execute(&request(svc::READ_TAG, "Nope", &[1, 0]), 500);
    assert_eq!(r, vec![0xCC, 0, 0x04, 1, 0, 0]);
    // Wrong type.
    assert_eq!(
        status(&write(&mut c, "Counts", DataType::Int, 1, &[1, 0])),
        (0xFF, vec![0x2107])
    );
    // Too few bytes for the count.
    assert_eq!(
        status(&write(&mut c, "Counts", DataType::Dint, 2, &[1, 0, 0, 0])),
        (0x13, vec![])
    );
    // Wrong number of indexes for the shape.
    let r = c.execute(&request(svc::READ_TAG, "Counts[1,2]", &[1, 0]), 500);
    assert_eq!(status(&r).0, 0x04);
    // None of the failed writes changed anything.
    assert_eq!(
        read(&mut c, "Counts", 10),
        dints(&[0, 0, 7, 8, 9, 0, 0, 0, 0, 0])
    );
}

#[test]
fn writes_ignore_trailing_and_pad_bytes() {
    // pycomm3 1.2.16 sends the value twice; libplctag pads a SINT to two bytes.
    let mut c = ctrl(&["D=DINT[2]", "S=SINT"]);
    assert_eq!(
        status(&write(&mut c, "D", DataType::Dint, 1, &dints(&[42, 42]))),
        (0, vec![])
    );
    assert_eq!(read(&mut c, "D", 2), dints(&[42, 0]));
    assert_eq!(
        status(&write(&mut c, "S", DataType::Sint, 1, &[0x85, 0x00])),
        (0, vec![])
    );
    assert_eq!(read(&mut c, "S", 1), vec![0x85]);
}

#[test]
fn multi_dimensional_indexes_are_row_major() {
    let mut c = ctrl(&["A=REAL[4,5]", "B=INT[2,3,4]"]);
    write(&mut c, "A[1,2]", DataType::Real, 1, &1.5f32.to_le_bytes());
    let all = read(&mut c, "A", 20);
    assert_eq!(&all[7 * 4..8 * 4], &1.5f32.to_le_bytes());
    write(&mut c, "B[1,2,3]", DataType::Int, 1, &[9, 0]);
    let all = read(&mut c, "B", 24);
    assert_eq!(&all[23 * 2..], &[9, 0]); // 1*12 + 2*4 + 3 = 23
    let r = c.execute(&request(svc::READ_TAG, "A[4,0]", &[1, 0]), 500);
    assert_eq!(status(&r), (0xFF, vec![0x2105]));
}

#[test]
fn large_reads_fragment_in_whole_elements() {
    let mut c = ctrl(&["SCADA=DINT[1000]"]);
    let values: Vec<i32> = (0..1000).collect();
    // Fill with fragmented writes of 100 elements.
    for chunk in 0..10u32 {
        let data = dints(&values[chunk as usize * 100..(chunk as usize + 1) * 100]);
        let body = WriteTagFragmented {
            type_tag: TypeTag::atomic(DataType::Dint),
            elements: 1000,
            offset: chunk * 400,
            data: &data,
        }
        .to_vec()
        .unwrap();
        let r = c.execute(&request(svc::WRITE_TAG_FRAGMENTED, "SCADA", &body), 500);
        assert_eq!(status(&r), (0, vec![]));
    }
    // A plain Read Tag too large answers 0x06 with as many whole elements as the limit
    // holds (for Read Tag the data is measured against the limit, as pycomm3 budgets).
    let r = c.execute(&request(svc::READ_TAG, "SCADA", &[0xE8, 0x03]), 500);
    let reply = Reply::decode(&r).unwrap();
    assert_eq!(reply.status, GeneralStatus::PARTIAL_TRANSFER);
    assert_eq!(reply.data.len() - 2, 500);
    assert_eq!(&reply.data[2..6], &dints(&[0])[..]);
    // Read Tag Fragmented loops to the whole array, offsets advancing by data bytes.
    let mut got = Vec::new();
    let mut rounds = 0;
    loop {
        let body = ReadTagFragmented {
            elements: 1000,
            offset: got.len() as u32,
        }
        .to_vec()
        .unwrap();
        let r = c.execute(&request(svc::READ_TAG_FRAGMENTED, "SCADA", &body), 500);
        assert!(r.len() <= 500);
        let reply = Reply::decode(&r).unwrap();
        got.extend_from_slice(&reply.data[2..]);
        rounds += 1;
        match reply.status {
            GeneralStatus::PARTIAL_TRANSFER => continue,
            GeneralStatus::SUCCESS => break,
            s => panic!("{s}"),
        }
    }
    assert_eq!(got, dints(&values));
    assert_eq!(rounds, 9); // 4000 bytes at 492 per fragment
                           // An offset past the end is refused.
    let body = ReadTagFragmented {
        elements: 10,
        offset: 41,
    }
    .to_vec()
    .unwrap();
    let r = c.execute(&request(svc::READ_TAG_FRAGMENTED, "SCADA", &body), 500);
    assert_eq!(status(&r), (0xFF, vec![0x2105]));
    // A write fragment starting past the end: 0x2104.
    let body = WriteTagFragmented {
        type_tag: TypeTag::atomic(DataType::Dint),
        elements: 2,
        offset: 8,
        data: &[0; 4],
    }
    .to_vec()
    .unwrap();
    let r = c.execute(&request(svc::WRITE_TAG_FRAGMENTED, "SCADA", &body), 500);
    assert_eq!(status(&r), (0xFF, vec![0x2104]));
}

#[test]
fn read_modify_write_sets_and_clears_bits() {
    let mut c = ctrl(&["Flags=DINT", "R=REAL"]);
    // pycomm3: 4-byte OR mask, 8-byte AND mask.
    let set = [
        4u8, 0, 0x20, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    let r = c.execute(&request(svc::READ_MODIFY_WRITE, "Flags", &set), 500);
    assert_eq!(status(&r), (0, vec![]));
    assert_eq!(read(&mut c, "Flags", 1), dints(&[0x20]));
    let clear = ReadModifyWrite {
        or_mask: &[0, 0, 0, 0],
        and_mask: &[0xDF, 0xFF, 0xFF, 0xFF],
        extra: &[],
    }
    .to_vec()
    .unwrap();
    c.execute(&request(svc::READ_MODIFY_WRITE, "Flags", &clear), 500);
    assert_eq!(read(&mut c, "Flags", 1), dints(&[0]));
    let r = c.execute(&request(svc::READ_MODIFY_WRITE, "R", &clear), 500);
    assert_eq!(status(&r), (0xFF, vec![0x2107]));
}

#[test]
fn bool_arrays_are_dword_arrays() {
    let mut c = ctrl(&["Bits=BOOL[96]"]);
    let t = c.tags.get(c.tags.find("bits").unwrap()).unwrap();
    assert_eq!(t.dims, vec![3]);
    // pycomm3 writes bit 40 as DWORD index 1.
    write(
        &mut c,
        "Bits[1]",
        DataType::Dword,
        1,
        &(1u32 << 8).to_le_bytes(),
    );
    let r = c.execute(&request(svc::READ_TAG, "Bits", &[3, 0]), 500);
    assert_eq!(&r[4..6], &[0xD3, 0x00]);
    assert_eq!(&r[6..], &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn program_scoped_and_string_tags() {
    let mut c = ctrl(&["Program:Main.Step=DINT", "Recipe=STRING", "Step=INT"]);
    write(&mut c, "Program:Main.Step", DataType::Dint, 1, &dints(&[5]));
    assert_eq!(read(&mut c, "program:main.step", 1), dints(&[5]));
    assert_eq!(read(&mut c, "Step", 1), vec![0, 0]);
    // STRING: A0 02 CE 0F, 88 bytes.
    let mut s = Vec::new();
    LogixString(b"hello".to_vec()).encode(&mut s).unwrap();
    let body = WriteTag {
        type_tag: TypeTag::Struct(0x0FCE),
        elements: 1,
        data: &s,
    }
    .to_vec()
    .unwrap();
    assert_eq!(
        status(&c.execute(&request(svc::WRITE_TAG, "Recipe", &body), 500)),
        (0, vec![])
    );
    let r = c.execute(&request(svc::READ_TAG, "Recipe", &[1, 0]), 500);
    assert_eq!(&r[4..8], &[0xA0, 0x02, 0xCE, 0x0F]);
    assert_eq!(&r[8..], &s[..]);
    // A LEN beyond 82 is refused and changes nothing.
    s[0] = 200;
    let body = WriteTag {
        type_tag: TypeTag::Struct(0x0FCE),
        elements: 1,
        data: &s,
    }
    .to_vec()
    .unwrap();
    assert_eq!(
        status(&c.execute(&request(svc::WRITE_TAG, "Recipe", &body), 500)).0,
        0x03
    );
    assert_eq!(
        &c.execute(&request(svc::READ_TAG, "Recipe", &[1, 0]), 500)[8..13],
        &[5, 0, 0, 0, b'h']
    );
    // The same through Write Tag Fragmented: a fragment holding a bad LEN is refused.
    let mut c = ctrl(&["Names=STRING[2]"]);
    let frag = |offset: u32, data: &[u8]| {
        let body = WriteTagFragmented {
            type_tag: TypeTag::Struct(0x0FCE),
            elements: 2,
            offset,
            data,
        }
        .to_vec()
        .unwrap();
        request(svc::WRITE_TAG_FRAGMENTED, "Names", &body)
    };
    let mut two = Vec::new();
    LogixString(b"ok".to_vec()).encode(&mut two).unwrap();
    LogixString(b"no".to_vec()).encode(&mut two).unwrap();
    two[88] = 99;
    assert_eq!(status(&c.execute(&frag(0, &two[..88]), 500)).0, 0);
    assert_eq!(status(&c.execute(&frag(88, &two[88..]), 500)).0, 0x03);
    two[88] = 2;
    assert_eq!(status(&c.execute(&frag(88, &two[88..]), 500)).0, 0);
}

#[test]
fn multiple_service_packet_reports_each_status() {
    let mut c = ctrl(&["A=DINT", "B=INT"]);
    let a = request(svc::READ_TAG, "A", &[1, 0]);
    let b = request(svc::READ_TAG, "B", &[1, 0]);
    let x = request(svc::READ_TAG, "Missing", &[1, 0]);
    let body = Multiple {
        messages: vec![&a, &b, &x],
    }
    .to_vec()
    .unwrap();
    let msp = Request::build(svc::MULTIPLE_SERVICE_PACKET, &Path::message_router(), &body).unwrap();
    let r = c.execute(&msp, 500);
    let reply = Reply::decode(&r).unwrap();
    assert_eq!(reply.status, GeneralStatus::EMBEDDED_SERVICE_ERROR);
    assert!(reply.extended.is_empty());
    let m = Multiple::from_bytes(reply.data).unwrap();
    let st: Vec<u8> = m.replies().map(|r| r.unwrap().status.0).collect();
    assert_eq!(st, vec![0, 0, 4]);
    // All good: status 0.
    let body = Multiple {
        messages: vec![&a, &b],
    }
    .to_vec()
    .unwrap();
    let msp = Request::build(svc::MULTIPLE_SERVICE_PACKET, &Path::message_router(), &body).unwrap();
    assert_eq!(status(&c.execute(&msp, 500)).0, 0);
}

#[test]
fn bad_requests_get_a_status_not_a_panic() {
    let mut c = ctrl(&["A=DINT"]);
    // Unsupported service on a tag.
    assert_eq!(status(&c.execute(&request(0x33, "A", &[]), 500)).0, 0x08);
    // Truncated service data.
    assert_eq!(
        status(&c.execute(&request(svc::READ_TAG_FRAGMENTED, "A", &[1]), 500)).0,
        0x13
    );
    // A path that lies about its size.
    let r = c.execute(&[0x4C, 0x09, 0x91, 0x01], 500);
    assert_eq!(status(&r).0, 0x04);
    // Empty input.
    assert_eq!(status(&c.execute(&[], 500)).0, 0x04);
    // Every prefix and byte-flip of a valid request answers something decodable.
    let good = request(
        svc::WRITE_TAG,
        "A",
        &WriteTag {
            type_tag: TypeTag::atomic(DataType::Dint),
            elements: 1,
            data: &[1, 2, 3, 4],
        }
        .to_vec()
        .unwrap(),
    );
    for n in 0..good.len() {
        assert!(Reply::decode(&c.execute(&good[..n], 500)).is_ok());
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[n] ^= 1 << bit;
            assert!(Reply::decode(&c.execute(&bad, 500)).is_ok());
        }
    }
}
