//! Values set and read by name (config files, the web API, replay), and tags at a CIP
//! address (`NAME@cls/ins/att=TYPE`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use enip_device::{Controller, Literal, SpecError, ValueError, UNCONNECTED_REPLY_LIMIT};
use enip_proto::mr::service as svc;
use enip_proto::{GeneralStatus, Path, Reply, Request};

fn ctrl(specs: &[&str]) -> Controller {
    let mut c = Controller::new();
    for s in specs {
        c.add_addressed_tag(s).unwrap();
    }
    c
}

#[test]
fn literals_parse_from_text() {
    let cases = [
        ("true", Literal::Bool(true)),
        ("FALSE", Literal::Bool(false)),
        ("42", Literal::Int(42)),
        ("-7", Literal::Int(-7)),
        ("0x1F", Literal::Int(31)),
        ("-0x10", Literal::Int(-16)),
        ("2.5", Literal::Float(2.5)),
        ("1e3", Literal::Float(1000.0)),
        ("hello", Literal::Text("hello".into())),
        ("", Literal::Text(String::new())),
    ];
    for (text, lit) in cases {
        assert_eq!(Literal::parse(text), lit, "{text}");
    }
}

#[test]
fn values_are_checked_then_stored_all_or_nothing() {
    let mut c = ctrl(&[
        "Counts=DINT[4]",
        "Speed=REAL",
        "Name=STRING",
        "Small=SINT[2]",
    ]);
    c.set_values("counts", 1, &[Literal::Int(5), Literal::Int(-6)])
        .unwrap();
    assert_eq!(
        c.values("Counts", 0, 4).unwrap(),
        [0, 5, -6, 0].map(Literal::Int).to_vec()
    );
    c.set_values("Speed", 0, &[Literal::Int(3)]).unwrap();
    assert_eq!(c.values("Speed", 0, 1).unwrap(), [Literal::Float(3.0)]);
    c.set_values("Name", 0, &[Literal::Text("Bread".into())])
        .unwrap();
    assert_eq!(
        c.values("Name", 0, 1).unwrap(),
        [Literal::Text("Bread".into())]
    );

    // A bad value anywhere stores nothing.
    let err = c
        .set_values("Small", 0, &[Literal::Int(1), Literal::Int(200)])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`Small[1]`: 200 is not a valid SINT: out of range"
    );
    assert_eq!(
        c.values("Small", 0, 2).unwrap(),
        [Literal::Int(0), Literal::Int(0)]
    );

    let errors = [
        (
            c.set_values("Nope", 0, &[Literal::Int(1)]).unwrap_err(),
            "no tag `Nope`",
        ),
        (
            c.set_values("Counts", 3, &[Literal::Int(1), Literal::Int(2)])
                .unwrap_err(),
            "`Counts` has 4 element(s); elements 3..5 are outside it",
        ),
        (
            c.set_values("Counts", 0, &[Literal::Float(1.5)])
                .unwrap_err(),
            "`Counts[0]`: 1.5 is not a valid DINT: not a whole number in range",
        ),
        (
            c.set_values("Speed", 0, &[Literal::Text("x".into())])
                .unwrap_err(),
            "`Speed[0]`: \"x\" is not a valid REAL: expected a number",
        ),
        (
            c.set_values("Name", 0, &[Literal::Text("x".repeat(83))])
                .unwrap_err(),
            "`Name[0]`: \"xxx…\" is not a valid STRING: longer than 82 bytes",
        ),
        (
            c.values("Counts", 2, 3).unwrap_err(),
            "`Counts` has 4 element(s); elements 2..5 are outside it",
        ),
    ];
    for (e, msg) in errors {
        let shown = e.to_string().replace(&"x".repeat(83), "xxx…");
        assert_eq!(shown, msg);
    }
    assert!(matches!(
        c.set_values("Nope", 0, &[]),
        Err(ValueError::UnknownTag(_))
    ));
}

#[test]
fn bool_arrays_take_bits() {
    let mut c = ctrl(&["Bits=BOOL[64]"]);
    c.set_values("Bits", 33, &[Literal::Bool(true), Literal::Bool(true)])
        .unwrap();
    assert_eq!(
        c.values("Bits", 0, 2).unwrap(),
        [Literal::Int(0), Literal::Int(0b110)]
    );
    assert!(c
        .set_values("Bits", 63, &vec![Literal::Bool(true); 2])
        .is_err());
}

fn attr_request(service: u8, path: &str, data: &[u8]) -> Vec<u8> {
    Request::build(service, &Path::parse(path).unwrap(), data).unwrap()
}

fn reply(c: &mut Controller, req: &[u8]) -> (GeneralStatus, Vec<u8>) {
    let r = c.execute(req, UNCONNECTED_REPLY_LIMIT);
    let r = Reply::decode(&r).unwrap();
    (r.status, r.data.to_vec())
}

#[test]
fn addressed_tags_answer_attribute_services_and_names() {
    let mut c = ctrl(&["Volts@0x22/1/3=INT[2]", "Amps@0x22/1/4=DINT", "Plain=DINT"]);
    c.set_values("Volts", 0, &[Literal::Int(230), Literal::Int(-1)])
        .unwrap();
    let get = attr_request(svc::GET_ATTRIBUTE_SINGLE, "@0x22/1/3", &[]);
    assert_eq!(
        reply(&mut c, &get),
        (GeneralStatus::SUCCESS, vec![0xE6, 0, 0xFF, 0xFF])
    );
    let set = attr_request(svc::SET_ATTRIBUTE_SINGLE, "@0x22/1/4", &[7, 0, 0, 0]);
    assert_eq!(reply(&mut c, &set), (GeneralStatus::SUCCESS, vec![]));
    assert_eq!(c.values("Amps", 0, 1).unwrap(), [Literal::Int(7)]);
    let all = attr_request(svc::GET_ATTRIBUTES_ALL, "@0x22/1", &[]);
    assert_eq!(
        reply(&mut c, &all),
        (
            GeneralStatus::SUCCESS,
            vec![0xE6, 0, 0xFF, 0xFF, 7, 0, 0, 0]
        )
    );
    // Wrong sizes, missing attributes, unknown objects.
    let short = attr_request(svc::SET_ATTRIBUTE_SINGLE, "@0x22/1/4", &[7, 0]);
    assert_eq!(reply(&mut c, &short).0, GeneralStatus::NOT_ENOUGH_DATA);
    let long = attr_request(svc::SET_ATTRIBUTE_SINGLE, "@0x22/1/4", &[7, 0, 0, 0, 0]);
    assert_eq!(reply(&mut c, &long).0, GeneralStatus::TOO_MUCH_DATA);
    assert_eq!(c.values("Amps", 0, 1).unwrap(), [Literal::Int(7)]);
    let missing = attr_request(svc::GET_ATTRIBUTE_SINGLE, "@0x22/1/9", &[]);
    assert_eq!(
        reply(&mut c, &missing).0,
        GeneralStatus::ATTRIBUTE_NOT_SUPPORTED
    );
    let other = attr_request(svc::GET_ATTRIBUTE_SINGLE, "@0x23/1/3", &[]);
    assert_eq!(
        reply(&mut c, &other).0,
        GeneralStatus::PATH_DESTINATION_UNKNOWN
    );
}

#[test]
fn addressed_tag_specs_are_checked() {
    let mut c = ctrl(&["A@0x22/1/1=INT"]);
    let errors = [
        ("B@0x22/1/1=INT", "bad address in tag spec `B@0x22/1/1=INT`: another tag already has this address"),
        ("B@0x01/1/1=INT", "bad address in tag spec `B@0x01/1/1=INT`: class 0x1 is one the controller implements itself"),
        ("B@0x22/1=INT", "bad address in tag spec `B@0x22/1=INT`: address `@0x22/1` must be @class/instance/attribute, e.g. @0x22/1/3"),
        ("B@0x22/x/1=INT", "bad address in tag spec `B@0x22/x/1=INT`: `x` in address `@0x22/x/1` is not a number"),
        ("B@0x22/0/1=INT", "bad address in tag spec `B@0x22/0/1=INT`: instance and attribute start at 1"),
    ];
    for (spec, msg) in errors {
        assert_eq!(
            c.add_addressed_tag(spec).unwrap_err().to_string(),
            msg,
            "{spec}"
        );
    }
    assert_eq!(
        c.add_addressed_tag("a@0x22/1/2=INT").unwrap_err(),
        SpecError::Duplicate("a".into())
    );
    // A failed spec leaves no address behind.
    assert!(c.add_addressed_tag("C@0x22/1/2=INT").is_ok());
}

#[test]
fn sstring_tags_as_cpppo_serves_them() {
    use enip_proto::services::{Body as _, ReadTag, WriteTag};
    use enip_proto::types::{DataType, TypeTag};
    let mut c = ctrl(&["Names=SSTRING[3]"]);
    let write = |c: &mut Controller, path: &str, n: u16, wire: &[u8]| {
        let body = WriteTag {
            type_tag: TypeTag::atomic(DataType::ShortString),
            elements: n,
            data: wire,
        }
        .to_vec()
        .unwrap();
        reply(c, &attr_request(svc::WRITE_TAG, path, &body)).0
    };
    let read = |c: &mut Controller, path: &str, n: u16| {
        let body = ReadTag { elements: n }.to_vec().unwrap();
        reply(c, &attr_request(svc::READ_TAG, path, &body))
    };
    assert_eq!(
        write(&mut c, "Names[1]", 2, b"\x03abc\x00"),
        GeneralStatus::SUCCESS
    );
    // Type DA, then each element as long as it is.
    assert_eq!(
        read(&mut c, "Names", 3),
        (GeneralStatus::SUCCESS, b"\xda\x00\x00\x03abc\x00".to_vec())
    );
    assert_eq!(
        c.values("Names", 0, 3).unwrap(),
        ["", "abc", ""].map(|s| Literal::Text(s.into()))
    );
    // Short data, and the wrong type, change nothing.
    assert_eq!(
        write(&mut c, "Names[0]", 1, b"\x05ab"),
        GeneralStatus::NOT_ENOUGH_DATA
    );
    assert_eq!(
        c.values("Names", 0, 1).unwrap(),
        [Literal::Text(String::new())]
    );
    c.set_values("Names", 2, &[Literal::Text("x".repeat(255))])
        .unwrap();
    assert!(c
        .set_values("Names", 2, &[Literal::Text("x".repeat(256))])
        .is_err());
    // A reply larger than the limit stops at a whole element with 0x06.
    let body = ReadTag { elements: 3 }.to_vec().unwrap();
    let r = c.execute(&attr_request(svc::READ_TAG, "Names", &body), 100);
    let r = Reply::decode(&r).unwrap();
    assert_eq!(
        (r.status, r.data),
        (GeneralStatus::PARTIAL_TRANSFER, &b"\xda\x00\x00\x03abc"[..])
    );
}

#[test]
fn addressed_tags_answer_tag_services_by_number_too() {
    use enip_proto::services::{Body as _, ReadTag, WriteTag};
    use enip_proto::types::{DataType, TypeTag};
    let mut c = ctrl(&["Volts@0x22/1/3=INT[2]"]);
    let w = WriteTag {
        type_tag: TypeTag::atomic(DataType::Int),
        elements: 1,
        data: &7i16.to_le_bytes(),
    }
    .to_vec()
    .unwrap();
    // cpppo's client writes `@0x22/1/3/1` and reads `@0x22/1/3` with the tag services.
    assert_eq!(
        reply(&mut c, &attr_request(svc::WRITE_TAG, "@0x22/1/3/1", &w)).0,
        GeneralStatus::SUCCESS
    );
    let r = ReadTag { elements: 2 }.to_vec().unwrap();
    assert_eq!(
        reply(&mut c, &attr_request(svc::READ_TAG, "@0x22/1/3", &r)),
        (GeneralStatus::SUCCESS, vec![0xC3, 0, 0, 0, 7, 0])
    );
    assert_eq!(
        reply(&mut c, &attr_request(svc::READ_TAG, "@0x22/1/4", &r)).0,
        GeneralStatus::PATH_SEGMENT_ERROR
    );
}
