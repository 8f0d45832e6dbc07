//! No input panics the client: generated operation texts, generated read data and
//! templates, and a server that answers every request with generated reply bytes.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use enip_client::ops;
use enip_client::value::{decode, Member, Template, Templates, WireType};
use enip_client::{Client, Options, TagPath};
use enip_proto::types::DataType;
use enip_proto::{Body, Command, Cpf, Encapsulation, FrameDecoder, Header};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Texts made of the grammar's own characters, so most get past the first check.
fn op_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "S", "C", "A", "_", "0", "1", "9", ".", "[", "]", "-", ",", "*", "+", "=", "(", ")",
            "DINT", "REAL", "STRING", "\"", " ", "@", "/", "0x", "0b", ":", "é", "\t",
        ]),
        0..24,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn operations_parse_or_point_inside_the_text(text in op_text()) {
        match ops::parse(&text, DataType::Int) {
            Ok(op) => {
                // What parses encodes a path that decodes, and prints.
                prop_assert!(enip_proto::EPath::new(&op.path, 0).is_ok());
                let _ = op.tag_text();
                let _ = op.element();
                if let Some(w) = &op.write {
                    let _ = ops::encode_values(w);
                }
            }
            Err(e) => {
                prop_assert!(e.offset <= text.len(), "{e:?}");
                let _ = e.pointer(&text);
            }
        }
    }

    #[test]
    fn any_bytes_decode_as_any_type(
        code in any::<u8>(),
        handle in any::<u16>(),
        data in prop::collection::vec(any::<u8>(), 0..300),
        members in prop::collection::vec((any::<u16>(), any::<u16>(), 0u32..400), 0..8),
        size in 0u32..300,
    ) {
        let mut t = Templates::default();
        t.insert(Template {
            id: handle & 0x0FFF,
            handle,
            name: "T".into(),
            size,
            members: members
                .iter()
                .enumerate()
                .map(|(i, (info, type_code, offset))| Member {
                    name: format!("M{i}"),
                    info: *info,
                    type_code: *type_code,
                    offset: *offset,
                })
                .collect(),
        });
        for ty in [
            WireType::Struct(handle),
            WireType::Other(code),
            DataType::from_code(code).map_or(WireType::Other(code), WireType::Atomic),
        ] {
            for v in decode(ty, &data, &t) {
                let _ = v.repr();
            }
        }
    }
}

/// A server that registers, then answers each request with the next generated reply:
/// a SendRRData whose data item is arbitrary bytes (a Message Router reply, or not).
async fn junk_server(replies: Vec<Vec<u8>>) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.56.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut dec = FrameDecoder::new(65_535);
        let mut buf = vec![0u8; 65_536];
        let mut replies = replies.into_iter();
        loop {
            let n = match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            dec.feed(&buf[..n]);
            let mut out = Vec::new();
            while let Ok(Some(f)) = dec.next_frame() {
                let mut h = f.header;
                if h.command == Command::RegisterSession {
                    h.session = 7;
                    out.extend(
                        Encapsulation {
                            header: h,
                            body: f.body.clone(),
                        }
                        .to_vec()
                        .unwrap(),
                    );
                    continue;
                }
                let Some(data) = replies.next() else { return };
                out.extend(
                    Encapsulation {
                        header: Header::new(h.command, h.session, h.context),
                        body: Body::SendData(enip_proto::encap::SendData {
                            interface_handle: 0,
                            timeout: 0,
                            cpf: Cpf::unconnected(&data),
                        }),
                    }
                    .to_vec()
                    .unwrap(),
                );
            }
            if s.write_all(&out).await.is_err() {
                return;
            }
        }
    });
    addr
}

/// `n` generated replies: arbitrary bytes, half of them shaped like replies to the
/// services asked, to get past the first checks.
fn generated_replies(n: usize, seed: u64) -> Vec<Vec<u8>> {
    // xorshift: deterministic, no dependency.
    let mut x: u64 = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut replies = Vec::new();
    for i in 0..n {
        let len = (next() % 40) as usize;
        let mut r: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half look like replies to the services asked, to get past the first checks.
        if i % 2 == 0 && r.len() >= 4 {
            r[0] = [0xCC, 0xD2, 0xCD, 0xD3, 0xCE, 0x8A, 0x8E, 0xD5][(next() % 8) as usize];
            r[1] = 0;
            r[2] = [0, 6, 0x1E, 4][(next() % 4) as usize];
            r[3] = (next() % 3) as u8;
        }
        replies.push(r);
    }
    replies
}

/// A session to a junk server that waits half a second for each reply.
async fn connect_impatiently(addr: SocketAddr) -> Client {
    let options = Options {
        timeout: Duration::from_millis(500),
        ..Options::default()
    };
    Client::connect(addr, options).await.unwrap()
}

#[tokio::test]
async fn generated_replies_fail_cleanly() {
    let addr = junk_server(generated_replies(400, 0x9E37_79B9_7F4A_7C15)).await;
    let c = connect_impatiently(addr).await;
    let p = TagPath::parse("SCADA").unwrap();
    let mut outcomes = [0usize; 2];
    for i in 0..100 {
        let ok = match i % 5 {
            0 => c.read_tag(&p, 3).await.is_ok(),
            1 => c.read_tag_fragmented(&p, 3, 4).await.is_ok(),
            2 => c
                .write_tag(&p, WireType::Atomic(DataType::Dint), 1, &[0; 4])
                .await
                .is_ok(),
            3 => c.get_attribute_single(1, 1, 7).await.is_ok(),
            _ => c.read_modify_write(&p, &[1], &[0xFE]).await.is_ok(),
        };
        outcomes[usize::from(ok)] += 1;
        if c.broken().is_some() {
            break;
        }
    }
    // Everything came back as an outcome; most junk is an error.
    assert!(outcomes[0] > outcomes[1], "{outcomes:?}");
}

/// The pipeline against generated replies: plain reads (the fast lane), fragmented
/// reads, writes and packets, 20 in flight. Every operation gets exactly one outcome, in
/// order, and the run ends (the server closes when its replies run out).
#[tokio::test]
async fn generated_replies_to_a_pipeline_fail_cleanly() {
    for (seed, multiple) in [
        (0x2545_F491_4F6C_DD1D, false),
        (0x1234_5678_9ABC_DEF1, true),
    ] {
        let addr = junk_server(generated_replies(300, seed)).await;
        let c = connect_impatiently(addr).await;
        let texts = ["SCADA[0-2]", "SCADA[1]+4", "SCADA[2]=(DINT)5", "SCADA[3]"];
        let ops: Vec<ops::Operation> = (0..200)
            .map(|i| ops::parse(texts[i % texts.len()], DataType::Int).unwrap())
            .collect();
        let mut seen = Vec::new();
        let run = c.execute(
            ops,
            enip_client::Exec {
                depth: 20,
                multiple,
                ..enip_client::Exec::default()
            },
            |_, r| seen.push(r.index),
        );
        let Ok(stats) = tokio::time::timeout(Duration::from_secs(30), run).await else {
            panic!("multiple {multiple}: the pipeline did not end");
        };
        assert_eq!(stats.operations, 200);
        assert_eq!(seen, (0..200).collect::<Vec<_>>(), "multiple {multiple}");
    }
}
