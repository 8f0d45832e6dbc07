//! rseip 0.3.1, the pure-Rust Logix client, against our server: unconnected
//! (`AbEipClient`, which wraps every request in Unconnected Send, with an empty route path
//! unless one is set) and connected (`AbEipConnection`, Forward Open 0x54), every atomic
//! type, STRING, fragmented reads, Read-Modify-Write, Multiple Service Packet, NOP, the
//! tag list, and ListIdentity over TCP and UDP. rseip's Large Forward Open is malformed
//! (see `rseip_large_forward_open_is_malformed_and_refused`).
//!
//! Each test serves on its own loopback address at port 44818 (127.0.42.x), as a
//! controller does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use rseip::cip::connection::OpenOptions;
use rseip::cip::identity::IdentityObject;
use rseip::cip::{MessageReply, MessageRequest, REPLY_MASK};
use rseip::client::ab_eip::*;
use rseip::futures_util::StreamExt;
use rseip::precludes::*;
use rseip_core::cip::CommonPacketItem;
use rseip_core::codec::Encoder;

/// Serve the test tags on `ip:44818` (TCP and UDP).
fn serve(ip: [u8; 4]) -> SocketAddr {
    support::serve_in_thread(
        ip,
        &[
            "SCADA=DINT[1000]",
            "Count=DINT",
            "Temp=REAL",
            "Flag=BOOL",
            "Small=SINT",
            "Word=INT",
            "Big=LINT",
            "Bits=BOOL[96]",
            "Recipe=STRING",
            "Program:Main.Step=DINT",
        ],
    )
}

fn tag(name: &str) -> EPath {
    EPath::parse_tag(name).unwrap()
}

/// A Logix STRING (handle 0x0FCE): DINT length, 82 characters, 2 pad bytes.
struct LogixString(&'static str);

impl Encode for LogixString {
    fn encode_by_ref<A: Encoder>(&self, buf: &mut BytesMut, _: &mut A) -> Result<(), A::Error> {
        buf.put_slice(&[0xA0, 0x02, 0xCE, 0x0F, 1, 0]);
        buf.put_u32_le(self.0.len() as u32);
        buf.put_slice(self.0.as_bytes());
        buf.put_bytes(0, 84 - self.0.len());
        Ok(())
    }
    fn bytes_count(&self) -> usize {
        6 + 88
    }
}

fn decode_string(v: &TagValue<Vec<u8>>) -> String {
    assert_eq!(v.tag_type, TagType::Structure(0x0FCE));
    assert_eq!(v.value.len(), 88);
    let len = u32::from_le_bytes(v.value[..4].try_into().unwrap()) as usize;
    String::from_utf8(v.value[4..4 + len].to_vec()).unwrap()
}

/// Everything rseip's tag services do, against any of its clients. Values written differ
/// per `round` so that a second client proves it reads what it wrote.
async fn tag_services<C: AbService>(client: &mut C, round: i32) {
    // A scalar DINT.
    client
        .write_tag(
            tag("Count"),
            TagValue {
                tag_type: TagType::Dint,
                value: 42 + round,
            },
        )
        .await
        .unwrap();
    let v: TagValue<i32> = client.read_tag(tag("Count")).await.unwrap();
    assert_eq!(
        v,
        TagValue {
            tag_type: TagType::Dint,
            value: 42 + round
        }
    );

    // An array element, then a run of elements around it.
    client
        .write_tag(
            tag("SCADA[5]"),
            TagValue {
                tag_type: TagType::Dint,
                value: -1234 - round,
            },
        )
        .await
        .unwrap();
    let v: TagValue<i32> = client.read_tag(tag("SCADA[5]")).await.unwrap();
    assert_eq!(v.value, -1234 - round);
    let v: TagValue<Vec<i32>> = client.read_tag((tag("SCADA[4]"), 3_u16)).await.unwrap();
    assert_eq!(v.tag_type, TagType::Dint);
    assert_eq!(v.value, vec![0, -1234 - round, 0]);

    // Several elements in one write.
    client
        .write_tag(
            tag("SCADA[10]"),
            TagValue {
                tag_type: TagType::Dint,
                value: [1 + round, 2, 3, 4],
            },
        )
        .await
        .unwrap();
    let v: TagValue<Vec<i32>> = client.read_tag((tag("SCADA[9]"), 6_u16)).await.unwrap();
    assert_eq!(v.value, vec![0, 1 + round, 2, 3, 4, 0]);

    // REAL, BOOL, SINT, INT, LINT.
    client
        .write_tag(
            tag("Temp"),
            TagValue {
                tag_type: TagType::Real,
                value: 21.5_f32 + round as f32,
            },
        )
        .await
        .unwrap();
    let v: TagValue<f32> = client.read_tag(tag("Temp")).await.unwrap();
    assert_eq!(
        v,
        TagValue {
            tag_type: TagType::Real,
            value: 21.5 + round as f32
        }
    );
    for flag in [true, false, true] {
        client
            .write_tag(
                tag("Flag"),
                TagValue {
                    tag_type: TagType::Bool,
                    value: flag,
                },
            )
            .await
            .unwrap();
        let v: TagValue<bool> = client.read_tag(tag("Flag")).await.unwrap();
        assert_eq!(
            v,
            TagValue {
                tag_type: TagType::Bool,
                value: flag
            }
        );
    }
    // Logix answers BOOL true as 0xFF.
    let (t, raw): (TagType, u8) = client.read_tag(tag("Flag")).await.unwrap();
    assert_eq!((t, raw), (TagType::Bool, 0xFF));
    client
        .write_tag(
            tag("Small"),
            TagValue {
                tag_type: TagType::Sint,
                value: -7_i8,
            },
        )
        .await
        .unwrap();
    let v: TagValue<i8> = client.read_tag(tag("Small")).await.unwrap();
    assert_eq!((v.tag_type, v.value), (TagType::Sint, -7));
    client
        .write_tag(
            tag("Word"),
            TagValue {
                tag_type: TagType::Int,
                value: -30_000_i16,
            },
        )
        .await
        .unwrap();
    let v: TagValue<i16> = client.read_tag(tag("Word")).await.unwrap();
    assert_eq!((v.tag_type, v.value), (TagType::Int, -30_000));
    client
        .write_tag(
            tag("Big"),
            TagValue {
                tag_type: TagType::Lint,
                value: 1_i64 << 40,
            },
        )
        .await
        .unwrap();
    let v: TagValue<i64> = client.read_tag(tag("Big")).await.unwrap();
    assert_eq!((v.tag_type, v.value), (TagType::Lint, 1 << 40));

    // A BOOL array is DWORDs on the wire, indexed by DWORD (as client-compat.md says);
    // bit 40 is bit 8 of element 1.
    client
        .write_tag(
            tag("Bits[1]"),
            TagValue {
                tag_type: TagType::Dword,
                value: 1_u32 << 8,
            },
        )
        .await
        .unwrap();
    let v: TagValue<Vec<u32>> = client.read_tag((tag("Bits"), 3_u16)).await.unwrap();
    assert_eq!((v.tag_type, v.value), (TagType::Dword, vec![0, 1 << 8, 0]));

    // A program-scoped tag.
    client
        .write_tag(
            tag("Program:Main.Step"),
            TagValue {
                tag_type: TagType::Dint,
                value: 7,
            },
        )
        .await
        .unwrap();
    let v: TagValue<i32> = client.read_tag(tag("Program:Main.Step")).await.unwrap();
    assert_eq!(v.value, 7);

    // STRING: rseip has no string type; write and read the structure's bytes.
    let text = if round == 0 { "hello" } else { "rseip!" };
    client
        .write_tag(tag("Recipe"), LogixString(text))
        .await
        .unwrap();
    let v: TagValue<Vec<u8>> = client.read_tag(tag("Recipe")).await.unwrap();
    assert_eq!(decode_string(&v), text);

    // Read-Modify-Write: set bit 2 and clear bit 5 of Count.
    client
        .write_tag(
            tag("Count"),
            TagValue {
                tag_type: TagType::Dint,
                value: 0x20_i32,
            },
        )
        .await
        .unwrap();
    let mut rmw = ReadModifyWriteRequest::<4>::new().tag(tag("Count"));
    rmw.or_mask_mut()[0] = 0x04;
    rmw.and_mask_mut()[0] = 0xDF;
    client.read_modify_write(rmw).await.unwrap();
    let v: TagValue<i32> = client.read_tag(tag("Count")).await.unwrap();
    assert_eq!(v.value, 0x04);

    // A whole 4000-byte array by Read Tag Fragmented, in as many pieces as it takes.
    let mut all = Vec::new();
    loop {
        let req = ReadFragmentedRequest::new()
            .tag(tag("SCADA"))
            .count(1000)
            .offset(all.len() as u16);
        let (more, v) = client.read_tag_fragmented(req).await.unwrap();
        assert_eq!(v.tag_type, TagType::Dint);
        assert!(!v.value.is_empty());
        all.extend_from_slice(&v.value);
        if !more {
            break;
        }
    }
    assert_eq!(all.len(), 4000);
    let dint = |i: usize| i32::from_le_bytes(all[i * 4..i * 4 + 4].try_into().unwrap());
    assert_eq!(
        (dint(5), dint(10), dint(13), dint(999)),
        (-1234 - round, 1 + round, 4, 0)
    );

    // An unknown tag is a CIP error, not the end of the session.
    let err = client
        .read_tag::<_, TagValue<i32>>(tag("NoSuchTag"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("general status: 4,"), "{err}");
    let v: TagValue<i32> = client.read_tag(tag("Program:Main.Step")).await.unwrap();
    assert_eq!(v.value, 7);
}

/// A Multiple Service Packet of three reads, one of them failing.
async fn multiple_service<C: MessageService<Error = rseip::ClientError>>(client: &mut C) {
    let mut replies = client
        .multiple_service()
        .push(MessageRequest::new(SERVICE_READ_TAG, tag("Count"), 1_u16))
        .push(MessageRequest::new(
            SERVICE_READ_TAG,
            tag("NoSuchTag"),
            1_u16,
        ))
        .push(MessageRequest::new(
            SERVICE_READ_TAG,
            tag("Program:Main.Step"),
            1_u16,
        ))
        .call()
        .await
        .unwrap();
    let first: MessageReply<TagValue<i32>> = replies.next().unwrap().unwrap();
    assert_eq!(first.reply_service, SERVICE_READ_TAG + REPLY_MASK);
    assert!(first.status.is_ok(), "{:?}", first.status);
    assert_eq!(first.data.value, 0x04);
    // rseip turns a failed reply into an error item.
    let second = replies.next::<()>().unwrap().unwrap_err();
    assert!(
        second.to_string().contains("general status: 4,"),
        "{second}"
    );
    let third: MessageReply<TagValue<i32>> = replies.next().unwrap().unwrap();
    assert_eq!(third.data.value, 7);
    assert!(replies.next::<()>().is_none());
}

#[tokio::test]
async fn unconnected_client_with_empty_route_path() {
    let addr = serve([127, 0, 42, 1]);
    let mut client = AbEipClient::new_host_lookup(addr.ip().to_string())
        .await
        .unwrap();
    assert!(client.connection_path().is_empty());
    tag_services(&mut client, 0).await;
    // A NOP gets no reply (rseip fails on bytes it did not ask for).
    client.heartbeat().await.unwrap();
    let v: TagValue<i32> = client.read_tag(tag("Count")).await.unwrap();
    assert_eq!(v.value, 0x04);
    multiple_service(&mut client).await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn unconnected_client_with_backplane_route_path() {
    let addr = serve([127, 0, 42, 2]);
    let mut client = AbEipClient::new_host_lookup(addr.ip().to_string())
        .await
        .unwrap()
        .with_connection_path(PortSegment::default());
    tag_services(&mut client, 1).await;
    multiple_service(&mut client).await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn connected_client_forward_open() {
    let addr = serve([127, 0, 42, 3]);
    let mut conn = AbEipConnection::new_host_lookup(addr.ip().to_string(), OpenOptions::default())
        .await
        .unwrap();
    tag_services(&mut conn, 0).await;
    assert!(conn.connected());
    // The default 504-byte connection carries 100 DINTs in one Read Tag.
    let v: TagValue<Vec<i32>> = conn.read_tag((tag("SCADA"), 100_u16)).await.unwrap();
    assert_eq!(v.value.len(), 100);
    assert_eq!(v.value[10], 1);
    assert!(conn.connection_id().is_some_and(|id| id != 0));
    multiple_service(&mut conn).await;
    conn.close().await.unwrap();
}

/// rseip 0.3.1's `large_open(true)` is broken: it sends service 0x54 (Forward Open) with
/// the 32-bit connection parameters of a Large Forward Open (0x5B), 4 bytes too long for a
/// 0x54 (tshark: "Forward Open [Malformed Packet]"). We answer 0x13 with the failure
/// fields (serial, vendor, originator serial), as every Forward Open refusal has them.
/// When rseip sends 0x5B, this test fails: turn it into a positive one.
#[tokio::test]
async fn rseip_large_forward_open_is_malformed_and_refused() {
    let addr = serve([127, 0, 42, 4]);
    let options = OpenOptions::default()
        .large_open(true)
        .connection_size(4000);
    let mut conn = AbEipConnection::new_host_lookup(addr.ip().to_string(), options)
        .await
        .unwrap();
    let err = conn.read_tag::<_, TagValue<i32>>(tag("Count")).await;
    // The refusal carries the Forward Open failure fields, so rseip reports a refused
    // Forward Open rather than a parse error ("invalid length: 0, expected 8").
    assert_eq!(
        format!("{err:?}"),
        r#"Err(Custom { kind: "custom", msg: "forward open failed" })"#
    );
    assert!(!conn.connected());
    // The server is unharmed: a plain Forward Open on a new session works.
    let mut conn = AbEipConnection::new_host_lookup(addr.ip().to_string(), OpenOptions::default())
        .await
        .unwrap();
    let v: TagValue<i32> = conn.read_tag(tag("Count")).await.unwrap();
    assert_eq!(v.value, 0);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn two_connections_at_once_then_reconnect() {
    let addr = serve([127, 0, 42, 5]);
    let host = addr.ip().to_string();
    let mut a = AbEipConnection::new_host_lookup(&host, OpenOptions::default())
        .await
        .unwrap();
    let mut b = AbEipConnection::new_host_lookup(&host, OpenOptions::default())
        .await
        .unwrap();
    a.write_tag(
        tag("Count"),
        TagValue {
            tag_type: TagType::Dint,
            value: 11_i32,
        },
    )
    .await
    .unwrap();
    let v: TagValue<i32> = b.read_tag(tag("Count")).await.unwrap();
    assert_eq!(v.value, 11);
    assert_ne!(a.connection_id(), b.connection_id());
    a.close().await.unwrap();
    let v: TagValue<i32> = b.read_tag(tag("Count")).await.unwrap();
    assert_eq!(v.value, 11);
    b.close().await.unwrap();
    let mut c = AbEipConnection::new_host_lookup(&host, OpenOptions::default())
        .await
        .unwrap();
    let v: TagValue<i32> = c.read_tag(tag("Count")).await.unwrap();
    assert_eq!(v.value, 11);
    c.close().await.unwrap();
}

#[tokio::test]
async fn tag_list_upload() {
    let addr = serve([127, 0, 42, 6]);
    let mut client = AbEipClient::new_host_lookup(addr.ip().to_string())
        .await
        .unwrap();
    // (name, atomic type code, dimensions, structure instance id)
    type Entry = (String, Option<u8>, u8, Option<u16>);
    let mut names: Vec<Entry> = {
        let stream = client.list_tag().call();
        stream
            .map(|s| {
                let s = s.unwrap();
                let t = s.symbol_type;
                (s.name.to_string(), t.type_code(), t.dims(), t.instance_id())
            })
            .collect()
            .await
    };
    names.sort();
    let expect: Vec<Entry> = [
        ("Big", Some(0xC5), 0, None),
        ("Bits", Some(0xD3), 1, None),
        ("Count", Some(0xC4), 0, None),
        ("Flag", Some(0xC1), 0, None),
        ("Program:Main", Some(0x68), 0, None),
        ("Recipe", None, 0, Some(0x0FCE)),
        ("SCADA", Some(0xC4), 1, None),
        ("Small", Some(0xC2), 0, None),
        ("Temp", Some(0xCA), 0, None),
        ("Word", Some(0xC3), 0, None),
    ]
    .into_iter()
    .map(|(n, t, d, i)| (n.to_owned(), t, d, i))
    .collect();
    assert_eq!(names, expect);
    client.close().await.unwrap();
}

fn check_identity(id: &IdentityObject<'_>, ip: Ipv4Addr) {
    assert_eq!(id.protocol_version, 1);
    assert_eq!(id.vendor_id, 1);
    assert_eq!(id.product_name, "1756-L81E/B LOGIX5581E");
    assert_eq!(
        (
            id.socket_addr.sin_family,
            id.socket_addr.sin_port,
            id.socket_addr.sin_addr
        ),
        (2, 44818, u32::from(ip))
    );
    // rseip reads the state byte after the name; it must be there.
    assert_eq!(id.state, 3);
}

#[tokio::test]
async fn list_identity_over_tcp_and_by_udp_discovery() {
    let addr = serve([127, 0, 42, 7]);
    let SocketAddr::V4(v4) = addr else {
        unreachable!()
    };

    // Over TCP, without a session.
    let mut ctx = AbEipDriver::build_service(v4).await.unwrap();
    let mut cpf = ctx.list_identity().await.unwrap();
    let item: CommonPacketItem<IdentityObject<'_>> = cpf.next_typed().unwrap().unwrap();
    assert_eq!(item.type_code, 0x0C);
    check_identity(&item.data, *v4.ip());
    assert!(cpf.next_typed::<IdentityObject<'_>>().is_none());

    // By UDP, "broadcast" to our address.
    let found: Vec<(IdentityObject<'static>, SocketAddr)> =
        rseip::client::EipDiscovery::new(Ipv4Addr::LOCALHOST)
            .broadcast(*v4.ip())
            .repeat(1)
            .interval(Duration::from_millis(100))
            .run()
            .await
            .unwrap()
            .take(1)
            .collect()
            .await;
    assert_eq!(found.len(), 1);
    check_identity(&found[0].0, *v4.ip());
    assert_eq!(found[0].1, addr);
}
