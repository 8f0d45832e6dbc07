//! Bad input over real loopback sockets against an in-process server: every test sends
//! something wrong, asserts the exact reply (or the close), and then asserts that a
//! bystander connection opened beforehand and a brand-new one both still get correct
//! answers. A panic in any server task fails the test too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use enip_device::Controller;
use enip_proto::encap::SendData;
use enip_proto::mr::service as svc;
use enip_proto::{Body, Command, Cpf, EncapStatus, Encapsulation, Header, Path, Request};
use enip_server::{Options, Server};
use hex_literal::hex;
use support::{header, message, read_tag, write_int, Client, WAIT};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Count panics raised outside the test files: in the server's tasks (which share the
/// test's thread), wherever they come from. A test's own failed assertion is not one.
fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|l| l.file().contains("tests/")) {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// A server with the shared tags plus `Big=DINT[1000]` (its reads fill whole replies).
async fn start(options: Options) -> (Server, SocketAddr, Client) {
    watch_panics();
    let mut c = Controller::new();
    for t in support::TAGS.iter().chain(&["Big=DINT[1000]"]) {
        c.add_tag(t).unwrap();
    }
    let server = Server::new(Arc::new(Mutex::new(c)), options).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let s = server.clone();
    tokio::spawn(async move { s.run(l, std::future::pending::<()>()).await });
    let mut bystander = Client::connect(addr).await;
    bystander.register().await;
    assert_still_served(&mut bystander).await;
    (server, addr, bystander)
}

/// A write and a read on `c` answer exactly as they should.
async fn assert_still_served(c: &mut Client) {
    assert_eq!(c.rr(&write_int("SCADA[1]", 1234)).await, [0xCD, 0, 0, 0]);
    assert_eq!(
        c.rr(&read_tag("SCADA[1]", 1)).await,
        [0xCC, 0, 0, 0, 0xC3, 0, 0xD2, 0x04]
    );
}

/// The bystander and a new client are served, and nothing panicked.
async fn assert_others_served(addr: SocketAddr, bystander: &mut Client) {
    assert_still_served(bystander).await;
    let mut fresh = Client::connect(addr).await;
    fresh.register().await;
    assert_still_served(&mut fresh).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a server task panicked");
}

/// A raw 24-byte header: command, declared length, session, context.
fn raw_header(command: u16, length: u16, session: u32, context: [u8; 8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&length.to_le_bytes());
    h.extend_from_slice(&session.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&context);
    h.extend_from_slice(&0u32.to_le_bytes());
    h
}

/// A frame whose length field matches its body.
fn raw_frame(command: u16, session: u32, context: [u8; 8], body: &[u8]) -> Vec<u8> {
    let mut f = raw_header(command, body.len() as u16, session, context);
    f.extend_from_slice(body);
    f
}

/// A bare error reply: the request's command, session and context, and `status`.
fn error_reply(command: u16, session: u32, context: [u8; 8], status: u32) -> Vec<u8> {
    let mut h = raw_header(command, 0, session, context);
    h[8..12].copy_from_slice(&status.to_le_bytes());
    h
}

fn metric(server: &Server, line_start: &str) -> u64 {
    let text = server.render_metrics();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start).map(str::trim))
        .map_or(0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn truncated_frames_close_only_at_eof() {
    let (_s, addr, mut bystander) = start(Options::default()).await;
    let mut c = Client::connect(addr).await;
    c.register().await;
    // Half a header, then half a frame: the server waits for the rest…
    c.rr(&write_int("SCADA[1]", 1234)).await;
    let f = c.rr_frame(&read_tag("SCADA[1]", 1));
    c.send_raw(&f[..10]).await;
    c.send_raw(&f[10..30]).await;
    assert_others_served(addr, &mut bystander).await;
    // …and serves it whole once it comes, byte by byte.
    for b in &f[30..] {
        c.send_raw(&[*b]).await;
    }
    assert_eq!(
        message(&c.reply().await),
        [0xCC, 0, 0, 0, 0xC3, 0, 0xD2, 0x04]
    );
    // A partial frame and then EOF: closed, nothing sent.
    c.send_raw(&f[..17]).await;
    c.s.shutdown().await.unwrap();
    assert!(c.recv().await.is_none());
    assert_others_served(addr, &mut bystander).await;
}

#[tokio::test]
async fn a_length_beyond_the_maximum_closes_without_reading_the_body() {
    let (s, addr, mut bystander) = start(Options::default()).await;
    for length in [0xFFFF, 4401] {
        let mut c = Client::connect(addr).await;
        c.register().await;
        c.send_raw(&raw_header(0x6F, length, c.session, [1; 8]))
            .await;
        assert!(c.recv().await.is_none(), "length {length} not refused");
    }
    assert_eq!(
        metric(&s, "enip_tcp_connections_closed_total{reason=\"too_long\"}"),
        2
    );
    // The largest body accepted, 4400 bytes (a NOP: no reply), keeps the connection.
    let mut c = Client::connect(addr).await;
    c.send_raw(&raw_frame(0x00, 0, [0; 8], &[0xAB; 4400])).await;
    c.register().await;
    assert_still_served(&mut c).await;
    assert_others_served(addr, &mut bystander).await;
}

#[tokio::test]
async fn a_short_length_fails_that_frame_and_the_stream_stays_in_step() {
    let (s, addr, mut bystander) = start(Options::default()).await;
    let mut c = Client::connect(addr).await;
    // RegisterSession declaring 2 bytes of its 4-byte body: the frame is 26 bytes, whose
    // body does not decode: 0x0003, echoing the context. The 2 bytes left over start
    // the next header; 22 zero bytes complete it as a NOP (no reply).
    let mut f = raw_header(0x65, 2, 0, *b"shortlen");
    f.extend_from_slice(&[1, 0, 0, 0]);
    c.send_raw(&f).await;
    assert_eq!(c.reply().await, error_reply(0x65, 0, *b"shortlen", 3));
    c.send_raw(&[0; 22]).await;
    c.register().await;
    assert_still_served(&mut c).await;
    assert_eq!(
        metric(
            &s,
            "enip_encapsulation_errors_total{kind=\"incorrect_data\"}"
        ),
        1
    );
    assert_others_served(addr, &mut bystander).await;
}

#[tokio::test]
async fn unknown_and_misused_commands_get_their_status_and_keep_the_connection() {
    let (_s, addr, mut bystander) = start(Options::default()).await;
    let mut c = Client::connect(addr).await;
    c.register().await;
    let session = c.session;
    for command in [0x0099u16, 0x0002, 0x00C8, 0xFFFF] {
        c.send_raw(&raw_frame(command, session, *b"unknown!", &[1, 2, 3]))
            .await;
        assert_eq!(
            c.reply().await,
            error_reply(command, session, *b"unknown!", 1),
            "command {command:#06x}"
        );
    }
    // A second RegisterSession on a registered connection: 0x0001.
    c.send_raw(&raw_frame(0x65, 0, *b"register", &[1, 0, 0, 0]))
        .await;
    assert_eq!(c.reply().await, error_reply(0x65, session, *b"register", 1));
    // Protocol version 2: 0x0069 (on a fresh connection), with the version we speak.
    let mut d = Client::connect(addr).await;
    d.send_raw(&raw_frame(0x65, 0, *b"version2", &[2, 0, 0, 0]))
        .await;
    let mut want = raw_header(0x65, 4, 0, *b"version2");
    want[8] = 0x69;
    want.extend_from_slice(&[1, 0, 0, 0]);
    assert_eq!(d.reply().await, want);
    // SendRRData on a session that is not this connection's: 0x0064.
    let f = Encapsulation {
        header: Header::new(Command::SendRRData, session ^ 0x55, *b"session?"),
        body: Body::SendData(SendData {
            interface_handle: 0,
            timeout: 0,
            cpf: Cpf::unconnected(&read_tag("SCADA", 1)),
        }),
    }
    .to_vec()
    .unwrap();
    c.send_raw(&f).await;
    assert_eq!(
        c.reply().await,
        error_reply(0x6F, session, *b"session?", 0x64)
    );
    assert_still_served(&mut c).await;
    assert_others_served(addr, &mut bystander).await;
}

#[tokio::test]
async fn bad_cpf_gets_0x0003_and_keeps_the_connection() {
    let (_s, addr, mut bystander) = start(Options::default()).await;
    let mut c = Client::connect(addr).await;
    c.register().await;
    let s = c.session;
    for (why, body) in [
        // Five items announced, none present.
        ("item count", &hex!("00000000 0a00 0500")[..]),
        // An item longer than the frame.
        (
            "item length",
            &hex!("00000000 0a00 0200 0000 0000 b200 ff00 4c")[..],
        ),
        // Only the address item: no message.
        ("no data item", &hex!("00000000 0a00 0100 0000 0000")[..]),
        // Not even the interface handle and timeout.
        ("short body", &hex!("0000")[..]),
    ] {
        c.send_raw(&raw_frame(0x6F, s, *b"bad cpf!", body)).await;
        assert_eq!(
            c.reply().await,
            error_reply(0x6F, s, *b"bad cpf!", 3),
            "{why}"
        );
    }
    assert_still_served(&mut c).await;
    assert_others_served(addr, &mut bystander).await;
}

#[tokio::test]
async fn bad_paths_types_and_indexes_get_logix_statuses() {
    let (_s, addr, mut bystander) = start(Options::default()).await;
    let mut c = Client::connect(addr).await;
    c.register().await;
    let dint = |path: &str| {
        Request::build(
            svc::WRITE_TAG,
            &Path::parse(path).unwrap(),
            &hex!("c400 0100 01000000"),
        )
        .unwrap()
    };
    for (why, request, reply) in [
        (
            "unknown tag",
            read_tag("Nope", 1),
            &hex!("cc00 0401 0000")[..],
        ),
        (
            "member of an atomic tag",
            read_tag("SCADA.X", 1),
            &hex!("cc00 0401 0000")[..],
        ),
        (
            "index past the end",
            read_tag("SCADA[10]", 1),
            &hex!("cc00 ff01 0521")[..],
        ),
        (
            "count past the end",
            read_tag("SCADA[5]", 6),
            &hex!("cc00 ff01 0521")[..],
        ),
        (
            "two indexes on one dimension",
            read_tag("SCADA[1,2]", 1),
            &hex!("cc00 0401 0000")[..],
        ),
        (
            "DINT written to an INT",
            dint("SCADA[1]"),
            &hex!("cd00 ff01 0721")[..],
        ),
        // A path size that runs past the request.
        (
            "path size",
            hex!("4c 09 91 05 5343414441 00").to_vec(),
            &hex!("cc00 0400")[..],
        ),
        // A Read Tag without its element count.
        (
            "no element count",
            hex!("4c 04 91 05 5343414441 00").to_vec(),
            &hex!("cc00 1300")[..],
        ),
        (
            "unknown service",
            hex!("7f 02 20 02 24 01").to_vec(),
            &hex!("ff00 0800")[..],
        ),
        (
            "unknown class",
            hex!("01 02 20 77 24 01").to_vec(),
            &hex!("8100 0500")[..],
        ),
        ("empty request", vec![], &hex!("8000 0400")[..]),
    ] {
        assert_eq!(c.rr(&request).await, reply, "{why}");
    }
    assert_still_served(&mut c).await;
    assert_others_served(addr, &mut bystander).await;
}

#[tokio::test]
async fn requests_over_the_size_limit_get_0x0065_and_close() {
    let options = Options {
        size: Some(64),
        ..Options::default()
    };
    let (s, addr, mut bystander) = start(options).await;
    let mut c = Client::connect(addr).await;
    c.register().await;
    // 64 bytes of body pass…
    c.send_raw(&raw_frame(0x00, 0, [0; 8], &[0; 64])).await;
    assert_still_served(&mut c).await;
    // …65 are refused: cpppo's status 0x65, then the session ends.
    c.send_raw(&raw_frame(0x6F, c.session, *b"too big!", &[0; 65]))
        .await;
    assert_eq!(
        c.reply().await,
        error_reply(0x6F, c.session, *b"too big!", 0x65)
    );
    assert!(c.recv().await.is_none());
    assert_eq!(
        metric(
            &s,
            "enip_tcp_connections_closed_total{reason=\"size_limit\"}"
        ),
        1
    );
    assert_others_served(addr, &mut bystander).await;
}

#[tokio::test]
async fn a_connection_flood_is_refused_beyond_the_limit() {
    let options = Options {
        max_connections: 4,
        ..Options::default()
    };
    // The bystander is connection 1 of 4.
    let (s, addr, mut bystander) = start(options).await;
    let mut kept = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(addr).await;
        c.register().await;
        kept.push(c);
    }
    for _ in 0..20 {
        let mut c = Client::connect(addr).await;
        assert!(c.closed().await, "connection beyond the limit served");
    }
    assert_eq!(
        metric(&s, "enip_tcp_connections_refused_total{reason=\"limit\"}"),
        20
    );
    assert_eq!(metric(&s, "enip_tcp_connections "), 4);
    for c in &mut kept {
        assert_still_served(c).await;
    }
    assert_still_served(&mut bystander).await;
    // A slot freed is a slot taken.
    drop(kept.pop());
    assert!(support::eventually(|| metric(&s, "enip_tcp_connections ") == 3).await);
    let mut late = Client::connect(addr).await;
    late.register().await;
    assert_still_served(&mut late).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_and_blocks_no_one() {
    let options = Options {
        write_timeout: Duration::from_millis(600),
        ..Options::default()
    };
    let (s, addr, mut bystander) = start(options).await;
    let mut greedy = Client::connect(addr).await;
    greedy.register().await;
    // Reads of Big answer ~500 bytes each: pipeline them and never read a reply.
    let one = greedy.rr_frame(&read_tag("Big", 1000));
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
    let greedy_port = greedy.s.local_addr().unwrap().port();
    let mut stream = greedy.s;
    let writer = tokio::spawn(async move {
        loop {
            if stream.write_all(&batch).await.is_err() {
                return;
            }
        }
    });
    // Its replies back up and the server stops reading from it: what it holds for this
    // client stays bounded (the bytes it has taken in stop growing)…
    let key = format!("127_0_0_1_{}", greedy_port);
    let received = || {
        s.connections()
            .into_iter()
            .find(|c| c.key == key)
            .map(|c| c.received)
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let before = received().unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(received(), Some(before));
    // …and everyone else is served at once.
    let t = Instant::now();
    assert_others_served(addr, &mut bystander).await;
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // The server gives up on it after the write timeout; the client's writes then fail.
    assert!(
        support::eventually(|| metric(
            &s,
            "enip_tcp_connections_closed_total{reason=\"write_timeout\"}"
        ) == 1)
        .await
    );
    tokio::time::timeout(WAIT, writer).await.unwrap().unwrap();
    assert_others_served(addr, &mut bystander).await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_a_busy_one_is_not() {
    let options = Options {
        idle_timeout: Some(Duration::from_millis(300)),
        ..Options::default()
    };
    let (s, addr, _bystander) = start(options).await;
    let mut idle = Client::connect(addr).await;
    idle.register().await;
    let mut busy = Client::connect(addr).await;
    busy.register().await;
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(900) {
        assert_still_served(&mut busy).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(idle.closed().await);
    // The bystander from `start` idled out too.
    assert!(
        support::eventually(
            || metric(&s, "enip_tcp_connections_closed_total{reason=\"idle\"}") == 2
        )
        .await
    );
    // A half-sent frame does not keep a connection alive either.
    let mut partial = Client::connect(addr).await;
    partial.send_raw(&[0x65, 0, 4, 0]).await;
    let t = Instant::now();
    assert!(partial.closed().await);
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    let mut fresh = Client::connect(addr).await;
    fresh.register().await;
    assert_still_served(&mut fresh).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn every_single_byte_corruption_of_a_request_is_survived() {
    let (_s, addr, mut bystander) = start(Options::default()).await;
    let good = {
        let mut c = Client::connect(addr).await;
        c.register().await;
        c.rr_frame(&write_int("SCADA[2]", 7))
    };
    for at in 0..good.len() {
        for v in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
            let mut f = good.clone();
            if f[at] == v {
                continue;
            }
            f[at] = v;
            let mut c = Client::connect(addr).await;
            c.register().await;
            // Make the session field match again when that is not the byte under test.
            if !(4..8).contains(&at) {
                f[4..8].copy_from_slice(&c.session.to_le_bytes());
            }
            c.send_raw(&f).await;
            // Any answer is fine, or none (a longer declared length waits for more): the
            // server must neither panic nor stall the others. End with a good request
            // (or a close) to see the connection is still in a sane state.
            let _ = tokio::time::timeout(Duration::from_millis(20), c.recv()).await;
        }
    }
    assert_others_served(addr, &mut bystander).await;
}

#[tokio::test]
async fn udp_junk_is_ignored_and_discovery_still_answers() {
    watch_panics();
    let server = Server::new(support::controller(), Options::default()).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let s = server.clone();
    tokio::spawn(async move { s.run_udp(sock, std::future::pending::<()>()).await });
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 1500];
    // Junk and truncated frames: no answer.
    for junk in [&[0xFFu8; 3][..], &[0x63, 0, 0x10, 0][..], &[0; 23][..]] {
        u.send_to(junk, addr).await.unwrap();
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), u.recv_from(&mut buf))
            .await
            .is_err()
    );
    // A command not allowed on UDP: 0x0001.
    u.send_to(&raw_frame(0x65, 0, *b"udp reg!", &[1, 0, 0, 0]), addr)
        .await
        .unwrap();
    let (n, _) = tokio::time::timeout(WAIT, u.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], &error_reply(0x65, 0, *b"udp reg!", 1)[..]);
    // ListIdentity still answers.
    u.send_to(&raw_frame(0x63, 0, *b"who's up", &[]), addr)
        .await
        .unwrap();
    let (n, _) = tokio::time::timeout(WAIT, u.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let h = header(&buf[..n]);
    assert_eq!(
        (h.command, h.status, h.context),
        (Command::ListIdentity, EncapStatus::Success, *b"who's up")
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}
