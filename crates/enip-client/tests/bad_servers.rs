//! Servers that misbehave, made by hand: each registers a session properly, then stalls,
//! resets, answers garbage, answers out of order or to the wrong context. Every
//! operation gets its own outcome, and nothing waits past its timeout.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use enip_client::ops;
use enip_client::{Client, Error, Exec, OpValue, Options, Routing};
use enip_proto::mr::service as svc;
use enip_proto::path::LogicalKind;
use enip_proto::services::{Body as _, ForwardOpen, ForwardOpenReply, TagData, UnconnectedSend};
use enip_proto::types::{DataType, TypeTag};
use enip_proto::wire::Reader;
use enip_proto::GeneralStatus;
use enip_proto::{Body, Command, Cpf, Encapsulation, FrameDecoder, Header, Reply, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Registers, then reads requests and never answers.
    Stall,
    /// Never answers RegisterSession.
    SilentRegister,
    /// Resets the connection on the first request.
    Reset,
    /// Answers each request with a well-framed reply whose body is junk.
    FramedGarbage,
    /// Answers the first request with bytes that are not EtherNet/IP, then closes.
    Noise,
    /// Holds replies until it has `n`, then sends them newest first.
    Reverse(usize),
    /// Answers with a sender context nobody used.
    WrongContext,
    /// Never answers every `n`th request (the `n`th, `2n`th, …); answers the rest at once.
    SkipEvery(usize),
    /// Answers the first request, then closes in the middle of the second reply.
    CutShort,
    /// A controller from before Large Forward Open: 0x5B is "service not supported";
    /// Forward Open grants at most `max` bytes (0x01/0x0109 with the size otherwise).
    OldForwardOpen { max: u16 },
    /// Closes the connection on Large Forward Open, as cpppo does on services it lacks.
    DropOnLargeForwardOpen,
}

/// A misbehaving server on `ip:44818`, on a thread of its own.
fn fake(ip: [u8; 4], mode: Mode) -> SocketAddr {
    let addr = SocketAddr::from((ip, 44818));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = TcpListener::bind(addr).await.unwrap();
            tx.send(()).unwrap();
            loop {
                let (s, _) = l.accept().await.unwrap();
                tokio::spawn(serve(s, mode));
            }
        });
    });
    rx.recv().unwrap();
    addr
}

/// The reply to a request: Forward Open (when `fo_max` allows it), or a Read Tag reply
/// of DINT `element × 10` for `Tag[element]`, connected or not as the request was.
fn answer(frame: &Encapsulation<'_>, fo_max: u16) -> Vec<u8> {
    let m = frame.send_data().unwrap().cpf.message().unwrap();
    let outer = Request::decode(m.data).unwrap();
    let inner = match outer.service {
        svc::UNCONNECTED_SEND if outer.path.target().class == Some(6) => {
            UnconnectedSend::from_bytes(outer.data)
                .unwrap()
                .request()
                .unwrap()
        }
        _ => outer,
    };
    let mut data = Vec::new();
    let reply = match inner.service {
        svc::LARGE_FORWARD_OPEN => {
            Reply::error(inner.service, GeneralStatus::SERVICE_NOT_SUPPORTED, &[])
        }
        svc::FORWARD_OPEN => {
            let fo = ForwardOpen::decode_with(&mut Reader::new(inner.data), false).unwrap();
            if fo.ot_params.size() > fo_max {
                Reply::error(
                    inner.service,
                    GeneralStatus::CONNECTION_FAILURE,
                    &[0x0109, fo_max],
                )
            } else {
                ForwardOpenReply {
                    ot_connection_id: 0x1111,
                    to_connection_id: fo.to_connection_id,
                    connection_serial: fo.connection_serial,
                    originator_vendor: fo.originator_vendor,
                    originator_serial: fo.originator_serial,
                    ot_api: fo.ot_rpi,
                    to_api: fo.to_rpi,
                    reserved: 0,
                    application: &[],
                }
                .encode(&mut data)
                .unwrap();
                Reply::success(inner.service, &data)
            }
        }
        _ => {
            let element = inner
                .path
                .iter()
                .find_map(|s| s.logical_value(LogicalKind::Element))
                .unwrap_or(0);
            data = TagData {
                type_tag: TypeTag::atomic(DataType::Dint),
                data: &(element as i32 * 10).to_le_bytes(),
            }
            .to_vec()
            .unwrap();
            Reply::success(inner.service, &data)
        }
    };
    let reply = reply.to_vec().unwrap();
    let cpf = match m.connected {
        Some(c) => Cpf::connected(0x2222, c.sequence, &reply),
        None => Cpf::unconnected(&reply),
    };
    Encapsulation {
        header: Header::new(
            frame.header.command,
            frame.header.session,
            frame.header.context,
        ),
        body: Body::SendData(enip_proto::encap::SendData {
            interface_handle: 0,
            timeout: 0,
            cpf,
        }),
    }
    .to_vec()
    .unwrap()
}

fn is_large_forward_open(frame: &Encapsulation<'_>) -> bool {
    let m = frame.send_data().unwrap().cpf.message().unwrap();
    Request::decode(m.data).unwrap().service == svc::LARGE_FORWARD_OPEN
}

async fn serve(mut s: TcpStream, mode: Mode) {
    let mut dec = FrameDecoder::new(65_535);
    let mut buf = vec![0u8; 65_536];
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut answered = 0;
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        dec.feed(&buf[..n]);
        let mut out = Vec::new();
        while let Ok(Some(f)) = dec.next_frame() {
            match f.header.command {
                Command::RegisterSession => {
                    if matches!(mode, Mode::SilentRegister) {
                        continue;
                    }
                    let mut h = f.header;
                    h.session = 0x1234;
                    out.extend(
                        Encapsulation {
                            header: h,
                            body: f.body.clone(),
                        }
                        .to_vec()
                        .unwrap(),
                    );
                }
                Command::SendRRData | Command::SendUnitData => match mode {
                    Mode::Stall | Mode::SilentRegister => {}
                    Mode::Reset => {
                        // A zero linger makes the close a reset, and does not block.
                        #[allow(deprecated)]
                        let _ = s.set_linger(Some(Duration::ZERO));
                        return;
                    }
                    Mode::FramedGarbage => {
                        let mut h = f.header;
                        h.length = 4;
                        let mut r = Vec::new();
                        h.encode(&mut r);
                        r.extend([1, 2, 3, 4]);
                        out.extend(r);
                    }
                    Mode::Noise => {
                        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                        return;
                    }
                    Mode::Reverse(k) => {
                        held.push(answer(&f, 504));
                        if held.len() == k {
                            for r in held.drain(..).rev() {
                                out.extend(r);
                            }
                        }
                    }
                    Mode::SkipEvery(k) => {
                        answered += 1;
                        if answered % k != 0 {
                            out.extend(answer(&f, 504));
                        }
                    }
                    Mode::WrongContext => {
                        let mut r = answer(&f, 504);
                        r[12] ^= 0xFF;
                        out.extend(r);
                    }
                    Mode::CutShort => {
                        let r = answer(&f, 504);
                        answered += 1;
                        if answered > 1 {
                            let _ = s.write_all(&r[..30]).await;
                            return;
                        }
                        out.extend(r);
                    }
                    Mode::OldForwardOpen { max } => out.extend(answer(&f, max)),
                    Mode::DropOnLargeForwardOpen => {
                        if is_large_forward_open(&f) {
                            return;
                        }
                        out.extend(answer(&f, 504));
                    }
                },
                _ => {}
            }
        }
        if !out.is_empty() && s.write_all(&out).await.is_err() {
            return;
        }
    }
}

const T: Duration = Duration::from_millis(300);

fn opts() -> Options {
    Options {
        timeout: T,
        ..Options::default()
    }
}

fn reads(n: usize) -> Vec<ops::Operation> {
    (0..n)
        .map(|i| ops::parse(&format!("SCADA[{i}]"), DataType::Int).unwrap())
        .collect()
}

/// Run `n` reads at `depth`: each outcome, and how long the run took.
async fn run(
    addr: SocketAddr,
    n: usize,
    depth: usize,
) -> (Vec<enip_client::Result<OpValue>>, Duration) {
    let c = Client::connect(addr, opts()).await.unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    c.execute(
        reads(n),
        Exec {
            depth,
            ..Exec::default()
        },
        |_, r| out.push(r.result),
    )
    .await;
    (out, t.elapsed())
}

#[tokio::test]
async fn a_stalled_server_times_out_each_operation_and_nothing_more() {
    let addr = fake([127, 0, 51, 1], Mode::Stall);
    let (out, took) = run(addr, 6, 3).await;
    assert_eq!(out.len(), 6);
    for r in &out {
        assert!(
            matches!(r, Err(Error::Timeout { what, after })
                if what.starts_with("Read Tag SCADA[") && *after == T),
            "{r:?}"
        );
    }
    // Three in flight at a time: two rounds of one timeout each, plus scheduling.
    assert!(took >= 2 * T && took < 4 * T, "{took:?}");
}

#[tokio::test]
async fn a_server_that_never_registers_fails_the_connect_in_time() {
    let addr = fake([127, 0, 51, 2], Mode::SilentRegister);
    let t = Instant::now();
    let e = Client::connect(addr, opts()).await.unwrap_err();
    assert!(
        matches!(&e, Error::Timeout { what, .. } if what == "RegisterSession"),
        "{e}"
    );
    assert!(t.elapsed() < 2 * T);
}

#[tokio::test]
async fn a_reset_fails_every_request_in_flight_at_once() {
    let addr = fake([127, 0, 51, 3], Mode::Reset);
    let (out, took) = run(addr, 5, 5).await;
    assert_eq!(out.len(), 5);
    for r in &out {
        assert!(matches!(r, Err(Error::Closed(_))), "{r:?}");
    }
    assert!(took < T, "{took:?}");
}

#[tokio::test]
async fn framed_garbage_fails_its_operation_and_the_session_goes_on() {
    let addr = fake([127, 0, 51, 4], Mode::FramedGarbage);
    let (out, took) = run(addr, 3, 1).await;
    for r in &out {
        assert!(
            matches!(r, Err(Error::Protocol(m)) if m.contains("truncated")),
            "{r:?}"
        );
    }
    assert!(took < T, "{took:?}");
}

#[tokio::test]
async fn noise_then_close_fails_what_is_in_flight() {
    let addr = fake([127, 0, 51, 5], Mode::Noise);
    let (out, took) = run(addr, 4, 2).await;
    for r in &out {
        assert!(matches!(r, Err(Error::Closed(_))), "{r:?}");
    }
    assert!(took < T, "{took:?}");
}

#[tokio::test]
async fn replies_out_of_order_still_reach_their_requests() {
    let addr = fake([127, 0, 51, 6], Mode::Reverse(8));
    let (out, _) = run(addr, 16, 8).await;
    for (i, r) in out.iter().enumerate() {
        match r {
            Ok(OpValue::Read(r)) => assert_eq!(r.data, (i as i32 * 10).to_le_bytes(), "op {i}"),
            other => panic!("op {i}: {other:?}"),
        }
    }
}

/// A request that gets no answer times out by itself: the pipeline goes on around it
/// (the other requests in flight keep their slots busy), and results still come back in
/// operation order. Four silent requests at depth 4 wait out one timeout together, not
/// one after another.
#[tokio::test]
async fn a_silent_request_does_not_hold_up_the_rest_of_the_pipeline() {
    let addr = fake([127, 0, 51, 16], Mode::SkipEvery(10));
    let c = Client::connect(addr, opts()).await.unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let stats = c
        .execute(
            reads(40),
            Exec {
                depth: 4,
                ..Exec::default()
            },
            |_, r| out.push((r.index, r.result)),
        )
        .await;
    let took = t.elapsed();
    assert_eq!(stats.operations, 40);
    assert_eq!(out.len(), 40);
    for (i, (index, r)) in out.iter().enumerate() {
        assert_eq!(*index, i, "results in operation order");
        // The server counts RegisterSession out: request i is its (i+1)th.
        if (i + 1) % 10 == 0 {
            assert!(
                matches!(r, Err(Error::Timeout { what, after })
                    if *what == format!("Read Tag SCADA[{i}]") && *after == T),
                "op {i}: {r:?}"
            );
        } else {
            match r {
                Ok(OpValue::Read(r)) => assert_eq!(r.data, (i as i32 * 10).to_le_bytes()),
                other => panic!("op {i}: {other:?}"),
            }
        }
    }
    assert!(took >= T && took < 2 * T, "{took:?}");
}

#[tokio::test]
async fn a_reply_to_nobody_is_dropped_and_its_request_times_out() {
    let addr = fake([127, 0, 51, 7], Mode::WrongContext);
    let (out, took) = run(addr, 2, 2).await;
    for r in &out {
        assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    }
    assert!(took < 2 * T, "{took:?}");
}

#[tokio::test]
async fn a_reply_cut_short_fails_the_rest() {
    let addr = fake([127, 0, 51, 8], Mode::CutShort);
    let (out, _) = run(addr, 3, 1).await;
    assert!(matches!(&out[0], Ok(OpValue::Read(_))), "{:?}", out[0]);
    for r in &out[1..] {
        assert!(
            matches!(r, Err(Error::Closed(m)) if m.contains("middle of a frame") || m.contains("closed")),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn direct_routing_is_just_as_careful() {
    let addr = fake([127, 0, 51, 9], Mode::Reverse(4));
    let c = Client::connect(
        addr,
        Options {
            routing: Routing::Direct,
            ..opts()
        },
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    c.execute(
        reads(4),
        Exec {
            depth: 4,
            ..Exec::default()
        },
        |_, r| out.push(r.result),
    )
    .await;
    assert!(out.iter().all(|r| r.is_ok()), "{out:?}");
}

/// The binary prints a line per operation, exits 1, and takes no longer than the
/// timeouts it was given.
#[test]
fn the_command_line_reports_each_operation_and_exits_1() {
    let addr = fake([127, 0, 51, 10], Mode::Stall);
    let t = Instant::now();
    let out = Process::new(env!("CARGO_BIN_EXE_enip-client"))
        .args(["-a", &addr.ip().to_string(), "-t", "0.3", "-p", "-d", "2"])
        .args(["SCADA[1]", "SCADA[2-3]", "SCADA=(DINT)1"])
        .output()
        .unwrap();
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    // (expect-test would strip the leading spaces, which are part of cpppo's format.)
    let want = [
        "            SCADA[1][  1-1  ]+  0 == None: 'Read Tag SCADA[1]: no reply within 300ms'",
        "            SCADA[2][  2-3  ]+  0 == None: 'Read Tag SCADA[2]: no reply within 300ms'",
        "               SCADA              <= [1]: 'Write Tag SCADA: no reply within 300ms'",
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), want);
    assert!(took < Duration::from_secs(3), "{took:?}");

    let addr = fake([127, 0, 51, 11], Mode::Reset);
    let out = Process::new(env!("CARGO_BIN_EXE_enip-client"))
        .args([
            "-a",
            &addr.ip().to_string(),
            "-t",
            "5",
            "-p",
            "SCADA[1]",
            "SCADA[2]",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.lines()
            .all(|l| l.contains("== None: 'connection lost")),
        "{text}"
    );

    // With -r, no repetition starts after the loss: those begun are reported whole, the
    // rest counted once, not failed a line each.
    let t = Instant::now();
    let out = Process::new(env!("CARGO_BIN_EXE_enip-client"))
        .args(["-a", &addr.ip().to_string(), "-t", "5", "-d", "4", "-p"])
        .args(["-r", "1000000", "SCADA[1]", "SCADA[2]"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines = text.lines().count();
    assert!(
        lines >= 2 && lines % 2 == 0 && lines <= 200,
        "{lines}: {text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "the connection was lost: {} operations ({} repetitions of 2) were not run",
        2_000_000 - lines,
        (2_000_000 - lines) / 2
    );
    assert!(err.contains(&want), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// A stalled server under `-r`: after a whole timeout with no reply at all, no further
/// repetition starts (cpppo's client stops at its first missing reply). A server that
/// drops some requests but answers the rest is not stalled: every repetition runs.
#[test]
fn a_silent_server_ends_a_repeated_run_and_a_lossy_one_does_not() {
    let stalled = fake([127, 0, 51, 17], Mode::Stall);
    let t = Instant::now();
    // (Under `timeout`: without the rule this run would take 150,000 s.)
    let out = Process::new("timeout")
        .args(["20", env!("CARGO_BIN_EXE_enip-client")])
        .args([
            "-a",
            &stalled.ip().to_string(),
            "-t",
            "0.3",
            "-d",
            "2",
            "-p",
        ])
        .args(["-r", "1000000", "SCADA[1]"])
        .output()
        .unwrap();
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines = text.lines().count();
    assert!(
        (2..=200).contains(&lines) && text.lines().all(|l| l.ends_with("no reply within 300ms'")),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "no reply for 300ms: {} operations ({} repetitions of 1) were not run",
        1_000_000 - lines,
        1_000_000 - lines
    );
    assert!(err.contains(&want), "{err}");
    // Two or three timeouts: one to notice the silence, one to be sure of it.
    assert!(took < Duration::from_secs(3), "{took:?}");

    let lossy = fake([127, 0, 51, 18], Mode::SkipEvery(10));
    let out = Process::new(env!("CARGO_BIN_EXE_enip-client"))
        .args(["-a", &lossy.ip().to_string(), "-t", "0.3", "-d", "4", "-p"])
        .args(["-r", "40", "SCADA[1]"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 40, "{text}");
    let silent = text
        .lines()
        .filter(|l| l.contains("no reply within"))
        .count();
    assert_eq!(silent, 4, "{text}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("were not run"));
}

#[tokio::test]
async fn forward_open_falls_back_when_large_forward_open_fails() {
    // (server, the size it grants)
    let cases = [
        (
            fake([127, 0, 51, 12], Mode::OldForwardOpen { max: 504 }),
            504,
        ),
        (
            fake([127, 0, 51, 13], Mode::OldForwardOpen { max: 400 }),
            400,
        ),
        (fake([127, 0, 51, 14], Mode::DropOnLargeForwardOpen), 504),
    ];
    for (addr, size) in cases {
        let c = Client::connect(
            addr,
            Options {
                connected: true,
                ..opts()
            },
        )
        .await
        .unwrap();
        let conn = c.connection().unwrap();
        assert!(!conn.large && conn.size == size, "{addr}: {conn:?}");
        assert_eq!(c.message_limit(), usize::from(size) - 2);
        let mut out = Vec::new();
        c.execute(
            reads(6),
            Exec {
                depth: 3,
                ..Exec::default()
            },
            |_, r| out.push(r.result),
        )
        .await;
        for (i, r) in out.iter().enumerate() {
            match r {
                Ok(OpValue::Read(r)) => assert_eq!(r.data, (i as i32 * 10).to_le_bytes()),
                other => panic!("{addr} op {i}: {other:?}"),
            }
        }
    }
    // Nothing to fall back to: the error names both attempts.
    let addr = fake([127, 0, 51, 15], Mode::OldForwardOpen { max: 0 });
    let e = Client::connect(
        addr,
        Options {
            connected: true,
            ..opts()
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().starts_with("Forward Open"), "{e}");
}
