//! The library against our simulator, in-process: every service, both session kinds.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use enip_client::ops::{self, Operation};
use enip_client::{
    discover, Client, Error, Exec, OpValue, Options, Routing, TagPath, TagValue, WireType,
};
use enip_proto::types::{DataType, LogixString, Value, LOGIX_STRING_HANDLE};
use enip_proto::Command;

fn path(t: &str) -> TagPath {
    TagPath::parse(t).unwrap()
}

fn opts(connected: bool) -> Options {
    Options {
        connected,
        timeout: Duration::from_secs(5),
        ..Options::default()
    }
}

async fn both(addr: SocketAddr) -> [(&'static str, Client); 2] {
    [
        (
            "unconnected",
            Client::connect(addr, opts(false)).await.unwrap(),
        ),
        (
            "connected",
            Client::connect(addr, opts(true)).await.unwrap(),
        ),
    ]
}

fn reprs(v: &[TagValue]) -> String {
    enip_client::pyfmt::list(v.iter().map(TagValue::repr))
}

#[tokio::test]
async fn every_atomic_type_writes_and_reads_back() {
    let addr = support::serve([127, 0, 50, 1]);
    // (path, type, values written) → what reads back, as cpppo would print it.
    let cases: &[(&str, DataType, &[Value], &str)] = &[
        (
            "SCADA[3]",
            DataType::Dint,
            &[Value::Dint(-7), Value::Dint(1 << 30)],
            "[-7, 1073741824]",
        ),
        ("Small[0]", DataType::Int, &[Value::Int(-32768)], "[-32768]"),
        (
            "Speed[1]",
            DataType::Real,
            &[Value::Real(1.1), Value::Real(-0.5)],
            "[1.100000023841858, -0.5]",
        ),
        ("Flag", DataType::Bool, &[Value::Bool(true)], "[True]"),
        (
            "Big",
            DataType::Lint,
            &[Value::Lint(i64::MIN)],
            "[-9223372036854775808]",
        ),
        ("Grid[1,2]", DataType::Real, &[Value::Real(2.5)], "[2.5]"),
        (
            "Program:Main.Step",
            DataType::Dint,
            &[Value::Dint(42)],
            "[42]",
        ),
        (
            "Names[1]",
            DataType::ShortString,
            &[Value::ShortString(b"it's".to_vec())],
            "[\"it's\"]",
        ),
    ];
    for (mode, c) in both(addr).await {
        for (tag, ty, values, want) in cases {
            let mut data = Vec::new();
            for v in *values {
                v.encode(&mut data).unwrap();
            }
            let n = values.len() as u16;
            c.write_tag(&path(tag), WireType::Atomic(*ty), n, &data)
                .await
                .unwrap_or_else(|e| panic!("{mode} write {tag}: {e}"));
            let got = c.read(&path(tag), n).await.unwrap();
            assert_eq!(&reprs(&got), want, "{mode} {tag}");
        }
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn large_reads_and_writes_fragment_by_themselves() {
    let addr = support::serve([127, 0, 50, 2]);
    for (mode, c) in both(addr).await {
        let values: Vec<i32> = (0..1000).map(|i| i * 7 - 3000).collect();
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let before = c.requests_sent();
        c.write_tag(
            &path("SCADA"),
            WireType::Atomic(DataType::Dint),
            1000,
            &data,
        )
        .await
        .unwrap();
        let writes = c.requests_sent() - before;
        assert!(writes > 1, "{mode}: 4000 bytes went in {writes} request(s)");
        let r = c.read_tag(&path("SCADA"), 1000).await.unwrap();
        assert_eq!(r.ty, WireType::Atomic(DataType::Dint));
        assert_eq!(r.data, data, "{mode}");
        // From a byte offset, to the end of the range.
        let r = c
            .read_tag_fragmented(&path("SCADA"), 1000, 3992)
            .await
            .unwrap();
        assert_eq!(r.data, data[3992..], "{mode}");
        c.write_tag_fragmented(
            &path("SCADA"),
            WireType::Atomic(DataType::Dint),
            1000,
            3996,
            &5i32.to_le_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(reprs(&c.read(&path("SCADA[999]"), 1).await.unwrap()), "[5]");
    }
}

#[tokio::test]
async fn strings_bool_arrays_and_bits() {
    let addr = support::serve([127, 0, 50, 3]);
    for (mode, c) in both(addr).await {
        let mut s = Vec::new();
        LogixString(format!("{mode} recipe").into_bytes())
            .encode(&mut s)
            .unwrap();
        c.write_tag(
            &path("Recipe"),
            WireType::Struct(LOGIX_STRING_HANDLE),
            1,
            &s,
        )
        .await
        .unwrap();
        assert_eq!(
            c.read(&path("Recipe"), 1).await.unwrap(),
            vec![TagValue::String(format!("{mode} recipe"))]
        );

        c.write_bool(&path("Bits"), 40, true).await.unwrap();
        c.write_bool(&path("Bits"), 3, true).await.unwrap();
        c.write_bool(&path("Bits"), 3, false).await.unwrap();
        assert_eq!(
            c.read_bools(&path("Bits"), 38, 4).await.unwrap(),
            [false, false, true, false]
        );
        assert_eq!(
            c.read_bools(&path("Bits"), 0, 64)
                .await
                .unwrap()
                .iter()
                .filter(|b| **b)
                .count(),
            1
        );

        c.write_tag(
            &path("SCADA[5]"),
            WireType::Atomic(DataType::Dint),
            1,
            &0x0100i32.to_le_bytes(),
        )
        .await
        .unwrap();
        c.write_bit(&path("SCADA[5]"), DataType::Dint, 3, true)
            .await
            .unwrap();
        c.write_bit(&path("SCADA[5]"), DataType::Dint, 31, true)
            .await
            .unwrap();
        c.write_bit(&path("SCADA[5]"), DataType::Dint, 8, false)
            .await
            .unwrap();
        assert_eq!(
            reprs(&c.read(&path("SCADA[5]"), 1).await.unwrap()),
            "[-2147483640]"
        );
        assert!(c.read_bit(&path("SCADA[5]"), 3).await.unwrap());
        assert!(!c.read_bit(&path("SCADA[5]"), 4).await.unwrap());
        let e = c
            .write_bit(&path("SCADA[5]"), DataType::Dint, 32, true)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "DINT has no bit 32");
        let e = c.read_bools(&path("SCADA"), 0, 3).await.unwrap_err();
        assert_eq!(e.to_string(), "SCADA is DINT, not a BOOL array (DWORD)");
    }
}

#[tokio::test]
async fn tag_list_and_structures_decode() {
    let addr = support::serve([127, 0, 50, 4]);
    let c = Client::connect(addr, opts(true)).await.unwrap();
    // Before the templates are known a structure is raw bytes.
    let raw = c.read(&path("Motors[1]"), 1).await.unwrap();
    assert!(
        matches!(raw.as_slice(), [TagValue::Raw(b)] if b.len() == 144),
        "{raw:?}"
    );
    let list = c.tag_list().await.unwrap();
    let shown: Vec<String> = list
        .tags
        .iter()
        .map(|t| format!("{} {}", t.name, t.type_text(&list.templates)))
        .collect();
    expect_test::expect![[r#"
        [
            "SCADA DINT[1000]",
            "Small INT[10]",
            "Speed REAL[4]",
            "Flag BOOL",
            "Bits BOOL[64]",
            "Names SSTRING[2]",
            "Recipe STRING",
            "Big LINT",
            "Un UDINT",
            "Tiny SINT",
            "Dbl LREAL",
            "Grid REAL[4,5]",
            "Volts INT[2]",
            "Motors Motor[4]",
            "Program:Main.Step DINT",
        ]
    "#]]
    .assert_debug_eq(&shown);
    assert_eq!(list.programs, ["Program:Main"]);
    let motor = list.templates.iter().find(|t| t.name == "Motor").unwrap();
    let members: Vec<String> = motor
        .members
        .iter()
        .filter(|m| !m.hidden())
        .map(|m| format!("{} {} @{}", m.name, m.type_text(&list.templates), m.offset))
        .collect();
    assert_eq!(
        members,
        [
            "Speed REAL @0",
            "Running BOOL (bit 0) @4",
            "Faulted BOOL (bit 1) @4",
            "Name STRING @8",
            "Hist DINT[10] @96",
            "Pos Point @136"
        ]
    );

    c.write_tag(
        &path("Motors[1].Speed"),
        WireType::Atomic(DataType::Real),
        1,
        &2.5f32.to_le_bytes(),
    )
    .await
    .unwrap();
    c.write_tag(
        &path("Motors[1].Running"),
        WireType::Atomic(DataType::Bool),
        1,
        &[0xFF],
    )
    .await
    .unwrap();
    c.write_tag(
        &path("Motors[1].Pos.Y"),
        WireType::Atomic(DataType::Real),
        1,
        &(-1.0f32).to_le_bytes(),
    )
    .await
    .unwrap();
    let mut name = Vec::new();
    LogixString(b"pump".to_vec()).encode(&mut name).unwrap();
    c.write_tag(
        &path("Motors[1].Name"),
        WireType::Struct(LOGIX_STRING_HANDLE),
        1,
        &name,
    )
    .await
    .unwrap();
    let v = c.read(&path("Motors[0]"), 2).await.unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[1].repr(),
        "{'Speed': 2.5, 'Running': True, 'Faulted': False, 'Name': 'pump', \
         'Hist': [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 'Pos': {'X': 0.0, 'Y': -1.0}}"
    );
}

#[tokio::test]
async fn attributes_identity_and_list_commands() {
    let addr = support::serve([127, 0, 50, 5]);
    for (mode, c) in both(addr).await {
        let id = c.identity().await.unwrap();
        assert_eq!(id.product_name, "1756-L81E/B LOGIX5581E", "{mode}");
        let name = c.get_attribute_single(1, 1, 7).await.unwrap();
        assert_eq!(&name[1..], b"1756-L81E/B LOGIX5581E", "{mode}");
        c.set_attribute_single(0x22, 1, 3, &[1, 0, 2, 0])
            .await
            .unwrap();
        assert_eq!(
            c.get_attribute_single(0x22, 1, 3).await.unwrap(),
            [1, 0, 2, 0]
        );
        let e = c.get_attribute_single(0x77, 1, 1).await.unwrap_err();
        assert!(e.cip_status().is_some(), "{mode}: {e}");
        assert!(c.get_attributes_all(1, 1).await.unwrap().len() > 20);

        let li = c.list_identity().await.unwrap();
        assert_eq!(li.identity().unwrap().product_name, id.product_name);
        let ls = c.list_services().await.unwrap();
        assert!(
            ls.cpppo_format().contains("'Communications'"),
            "{}",
            ls.cpppo_format()
        );
        c.list_interfaces().await.unwrap();
    }
    let r = discover::list_udp(Command::ListIdentity, addr, false, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].peer, addr);
    assert_eq!(r[0].identity().unwrap().socket_addr, [127, 0, 50, 5]);
    // A broadcast waits out its time limit collecting answers.
    let t = Instant::now();
    let r = discover::list_udp(
        Command::ListServices,
        addr,
        true,
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.len(), 1);
    // Nobody there: a unicast times out, a broadcast is an empty list.
    let nobody = SocketAddr::from(([127, 0, 50, 6], 44818));
    let t = Instant::now();
    let e = discover::list_udp(
        Command::ListIdentity,
        nobody,
        false,
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{e}");
    let r = discover::list_udp(
        Command::ListIdentity,
        nobody,
        true,
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    assert!(r.is_empty());
}

#[tokio::test]
async fn errors_name_the_cip_status() {
    let addr = support::serve([127, 0, 50, 7]);
    let c = Client::connect(addr, opts(false)).await.unwrap();
    let cases: &[(&str, u16, &str)] = &[
        ("Nope", 1, "Read Tag Nope: CIP status 0x04 (path segment error) [0x0000]"),
        ("SCADA[1000]", 1, "Read Tag SCADA[1000]: CIP status 0xff (general error) [0x2105: access beyond end of the object]"),
    ];
    for (tag, n, want) in cases {
        let e = c.read_tag(&path(tag), *n).await.unwrap_err();
        assert_eq!(&e.to_string(), want);
    }
    let e = c
        .write_tag(
            &path("SCADA[0]"),
            WireType::Atomic(DataType::Int),
            1,
            &[1, 0],
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Write Tag SCADA[0]: CIP status 0xff (general error) [0x2107: data type does not match the tag]"
    );
    // A CIP error leaves the session usable.
    assert!(c.read_tag(&path("SCADA[0]"), 1).await.is_ok());
    // Nothing listens on the port: the connect fails at once and says where.
    let e = Client::connect(SocketAddr::from(([127, 0, 50, 7], 1)), opts(false))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
}

#[tokio::test]
async fn sessions_route_connect_and_fall_back() {
    let addr = support::serve([127, 0, 50, 8]);
    let c = Client::connect(addr, opts(true)).await.unwrap();
    let conn = c.connection().unwrap();
    assert!(conn.large && conn.size == 4002, "{conn:?}");
    assert_eq!(c.message_limit(), 4000);
    c.close().await.unwrap();
    // After close, requests fail at once with the reason.
    let e = c.read_tag(&path("SCADA"), 1).await.unwrap_err();
    assert!(matches!(e, Error::Closed(_)), "{e}");

    let direct = Options {
        routing: Routing::Direct,
        ..opts(false)
    };
    let c = Client::connect(addr, direct).await.unwrap();
    assert!(c.read_tag(&path("SCADA"), 1).await.is_ok());
    let direct_connected = Options {
        routing: Routing::Direct,
        ..opts(true)
    };
    let c = Client::connect(addr, direct_connected).await.unwrap();
    assert!(c.read_tag(&path("SCADA"), 1).await.is_ok());
    let slot3 = Options {
        routing: Routing::backplane(3),
        ..opts(false)
    };
    let c = Client::connect(addr, slot3).await.unwrap();
    assert!(c.read_tag(&path("SCADA"), 1).await.is_ok());
}

/// A `(STRING)` write to a Logix STRING tag takes two requests the first time (the CIP
/// STRING is refused as a type mismatch, then the Logix STRING structure goes): a read
/// after it in the same pipeline still sees it.
#[tokio::test]
async fn a_read_after_a_retried_string_write_sees_it() {
    let addr = support::serve([127, 0, 50, 10]);
    for (mode, c) in both(addr).await {
        let texts: Vec<String> = [
            "Recipe=(STRING)hello",
            "Recipe",
            "Recipe=(STRING)bye",
            "Recipe",
        ]
        .map(String::from)
        .to_vec();
        let exec = Exec {
            depth: 5,
            ..Exec::default()
        };
        let mut seen = Vec::new();
        c.execute(parse_all(&texts), exec, |_, r| seen.push(r.result))
            .await;
        let read = |r: &enip_client::Result<OpValue>| match r {
            Ok(OpValue::Read(r)) => c.decode(r).iter().map(TagValue::repr).collect::<Vec<_>>(),
            other => panic!("{mode}: {other:?}"),
        };
        assert!(
            matches!(seen[0], Ok(OpValue::Written)),
            "{mode}: {:?}",
            seen[0]
        );
        assert_eq!(read(&seen[1]), ["'hello'"], "{mode}");
        assert!(
            matches!(seen[2], Ok(OpValue::Written)),
            "{mode}: {:?}",
            seen[2]
        );
        assert_eq!(read(&seen[3]), ["'bye'"], "{mode}");
    }
}

fn parse_all(texts: &[String]) -> Vec<Operation> {
    texts
        .iter()
        .map(|t| ops::parse(t, DataType::Int).unwrap())
        .collect()
}

#[tokio::test]
async fn execute_pipelines_packs_and_keeps_order() {
    let addr = support::serve([127, 0, 50, 9]);
    for (mode, c) in both(addr).await {
        for (round, (depth, multiple)) in [(1, false), (20, false), (1, true), (20, true)]
            .into_iter()
            .enumerate()
        {
            // Each read sits between two writes in the same pipeline and must see the
            // first, not the second: requests go in operation order. The values differ
            // per round, so a read sent ahead of its write sees last round's.
            let value = |i: usize| (i * 3 + round) as i32;
            let mut texts = Vec::new();
            for i in 0..100 {
                texts.push(format!("SCADA[{i}]=(DINT){}", value(i)));
                texts.push(format!("SCADA[{i}]"));
                texts.push(format!("SCADA[{i}]=(DINT){}", -value(i)));
            }
            texts.push("SCADA[0-999]".into());
            texts.push("Nope".into());
            let exec = Exec {
                depth,
                multiple,
                ..Exec::default()
            };
            let mut seen = Vec::new();
            let stats = c
                .execute(parse_all(&texts), exec, |op, r| {
                    seen.push((op.text.clone(), r.index, r.result.clone()));
                })
                .await;
            let what = format!("{mode} depth {depth} multiple {multiple}");
            assert_eq!(stats.operations, 302, "{what}");
            assert_eq!(seen.len(), 302, "{what}");
            for (i, (text, index, result)) in seen.iter().enumerate() {
                assert_eq!(*index, i, "{what}");
                assert_eq!(text, &texts[i], "{what}");
                match (i, result) {
                    (301, Err(e)) => assert!(e.cip_status().is_some(), "{what}: {e}"),
                    (300, Ok(OpValue::Read(r))) => assert_eq!(r.data.len(), 4000, "{what}"),
                    (i, Ok(OpValue::Read(r))) if i % 3 == 1 => {
                        assert_eq!(r.data, value(i / 3).to_le_bytes(), "{what} {text}")
                    }
                    (_, Ok(OpValue::Written)) => {}
                    other => panic!("{what}: {other:?}"),
                }
            }
            if multiple {
                assert!(stats.requests < 60, "{what}: {} requests", stats.requests);
            } else {
                assert!(stats.requests >= 302, "{what}: {} requests", stats.requests);
            }
        }
    }
}
