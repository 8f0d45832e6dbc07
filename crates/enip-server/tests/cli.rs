//! The `enip-server` binary: cpppo's command line, its refusals, and a served config.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::mr::service as svc;
use enip_proto::path::Segment;
use enip_proto::services::{Body as _, UnconnectedSend};
use enip_proto::{
    Body, Command as Cmd, Cpf, EPath, EncapStatus, Encapsulation, FrameDecoder, GeneralStatus,
    Header, Item, Path, Reply, Request,
};

const BIN: &str = env!("CARGO_BIN_EXE_enip-server");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the binary and wait for its `-A` line.
fn start(args: &[&str]) -> (Server, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Server(child), line)
}

#[test]
fn help_lists_cpppo_flags_with_examples() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--address",
        "--web",
        "--delay",
        "--size",
        "--route-path",
        "--simple",
        "--print",
        "--log",
        "--config",
        "--no-udp",
        "--no-tcp",
        "--verbose",
        "SCADA=INT[1000]",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}:\n{out}");
    }
}

#[test]
fn bad_command_lines_are_refused_with_the_reason() {
    let cases: [(&[&str], &str); 11] = [
        (&["--identity", "colour=red", "X"], "enip-server: bad --identity `colour=red`: unknown identity field `colour` (vendor, device_type, product_code, revision, status, serial, product_name, state, controller_name)"),
        (&["--identity", "serial=0x1FFFFFFFF", "X"], "enip-server: bad --identity `serial=0x1FFFFFFFF`: serial `0x1FFFFFFFF` is not a number from 0 to 4294967295"),
        (&[], "enip-server: no tags to serve: give some, e.g. `enip-server SCADA=INT[1000]`, or --config"),
        (&["X=FLOAT"], "enip-server: bad tag `X=FLOAT`: unknown type `FLOAT` in tag spec `X=FLOAT` (known: BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING SSTRING)"),
        (&["-a", "1.2.3:44818", "X"], "enip-server: bad --address `1.2.3:44818`: `1.2.3` is not an IP address"),
        (&["-a", ":99999", "X"], "enip-server: bad --address `:99999`: `99999` is not a port number"),
        (&["-d", "fast", "X"], "enip-server: bad delay `fast`: expected seconds `#.#` or a range `#.#-#.#`, from 0 to 3600"),
        (&["-d", "2-1", "X"], "enip-server: bad delay `2-1`: expected seconds `#.#` or a range `#.#-#.#`, from 0 to 3600"),
        (&["-T", "-U", "X"], "enip-server: -T and -U together leave nothing to serve"),
        (&["--route-path", "1/", "X"], "enip-server: bad route path `1/`: bad link address ``"),
        (&["-c", "/nonexistent/plc.yaml"], "enip-server: /nonexistent/plc.yaml: cannot read: No such file or directory (os error 2)"),
    ];
    for (args, msg) in cases {
        let (code, _, err) = run(args);
        assert_eq!((code, err.trim()), (2, msg), "{args:?}");
    }
}

fn list_identity(addr: SocketAddr) -> Vec<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let req = Encapsulation {
        header: Header::new(Cmd::ListIdentity, 0, [0; 8]),
        body: Body::Raw(&[]),
    }
    .to_vec()
    .unwrap();
    sock.send_to(&req, addr).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn a_config_and_tags_serve_with_address_output() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/plc.yaml");
    let (_server, line) = start(&[
        "-A",
        "-a",
        "127.0.47.1",
        "-c",
        config,
        "--identity",
        "serial=0xBEEF",
        "Extra=DINT",
    ]);
    assert_eq!(line.trim(), "enip-server running on (127.0.47.1, 44818)");
    let reply = list_identity("127.0.47.1:44818".parse().unwrap());
    let e = Encapsulation::decode(&reply).unwrap();
    let Body::List(Some(cpf)) = e.body else {
        panic!("{e:?}")
    };
    let Some(Item::Identity(id)) = cpf.items.first() else {
        panic!("{cpf:?}")
    };
    assert_eq!(id.product_name, b"1756-L81E/B LOGIX5581E");
    // --identity wins over the config's serial (0x00C0FFEE).
    assert_eq!(id.serial, 0xBEEF);
    assert_eq!(id.revision, (32, 11));
    assert_eq!(id.socket.addr, [127, 0, 47, 1]);
}

/// Send one Unconnected Send with `route` and return the reply status.
fn unconnected_status(addr: SocketAddr, route: &Path<'_>) -> (GeneralStatus, Vec<u16>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut dec = FrameDecoder::new(65535);
    let mut recv = |s: &mut TcpStream| -> Vec<u8> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(f) = dec.next_frame().unwrap() {
                return f.to_vec().unwrap();
            }
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "server closed the connection");
            dec.feed(&buf[..n]);
        }
    };
    let reg = Encapsulation {
        header: Header::new(Cmd::RegisterSession, 0, [0; 8]),
        body: Body::RegisterSession(RegisterSession::default()),
    };
    s.write_all(&reg.to_vec().unwrap()).unwrap();
    let r = recv(&mut s);
    let session = Encapsulation::decode(&r).unwrap().header.session;
    let gaa = Request::build(svc::GET_ATTRIBUTES_ALL, &Path::object(1, 1, None), &[]).unwrap();
    let rb = route.to_bytes().unwrap();
    let body = UnconnectedSend {
        priority_tick: 10,
        timeout_ticks: 5,
        message: &gaa,
        route: EPath::new(&rb, 0).unwrap(),
        reserved: 0,
    }
    .to_vec()
    .unwrap();
    let msg = Request::build(svc::UNCONNECTED_SEND, &Path::connection_manager(), &body).unwrap();
    let req = Encapsulation {
        header: Header::new(Cmd::SendRRData, session, [0; 8]),
        body: Body::SendData(SendData {
            interface_handle: 0,
            timeout: 5,
            cpf: Cpf::unconnected(&msg),
        }),
    };
    s.write_all(&req.to_vec().unwrap()).unwrap();
    let r = recv(&mut s);
    let e = Encapsulation::decode(&r).unwrap();
    assert_eq!(e.header.status, EncapStatus::Success);
    let m = e.send_data().unwrap().cpf.message().unwrap();
    let reply = Reply::decode(m.data).unwrap();
    (reply.status, reply.extended.clone())
}

fn wait_port(addr: SocketAddr) {
    let t = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(t.elapsed() < Duration::from_secs(5), "{addr} never opened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn simple_device_refuses_routes_and_route_path_narrows_them() {
    let slot0 = Path(vec![Segment::port(1, 0)]);
    let slot2 = Path(vec![Segment::port(1, 2)]);
    let (_s, _) = start(&["-A", "-a", "127.0.47.2", "-S", "X"]);
    let a: SocketAddr = "127.0.47.2:44818".parse().unwrap();
    wait_port(a);
    assert_eq!(
        unconnected_status(a, &slot0),
        (GeneralStatus::CONNECTION_FAILURE, vec![0x0311])
    );
    assert_eq!(
        unconnected_status(a, &Path::default()),
        (GeneralStatus::SUCCESS, vec![])
    );
    let (_s, _) = start(&["-A", "-a", "127.0.47.3", "--route-path", "1/0", "X"]);
    let a: SocketAddr = "127.0.47.3:44818".parse().unwrap();
    wait_port(a);
    assert_eq!(
        unconnected_status(a, &slot0),
        (GeneralStatus::SUCCESS, vec![])
    );
    assert_eq!(
        unconnected_status(a, &slot2),
        (GeneralStatus::CONNECTION_FAILURE, vec![0x0312])
    );
}

#[test]
fn udp_and_tcp_can_each_be_turned_off() {
    let (_s, _) = start(&["-A", "-a", "127.0.47.4", "-U", "X"]);
    let a: SocketAddr = "127.0.47.4:44818".parse().unwrap();
    wait_port(a);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let req = Encapsulation {
        header: Header::new(Cmd::ListIdentity, 0, [0; 8]),
        body: Body::Raw(&[]),
    }
    .to_vec()
    .unwrap();
    sock.send_to(&req, a).unwrap();
    let mut buf = [0u8; 1500];
    assert!(sock.recv_from(&mut buf).is_err(), "UDP answered under -U");

    let (_s, _) = start(&["-A", "-a", "127.0.47.5", "-T", "X"]);
    let a: SocketAddr = "127.0.47.5:44818".parse().unwrap();
    assert!(!list_identity(a).is_empty());
    assert!(TcpStream::connect(a).is_err(), "TCP accepted under -T");
}

#[test]
fn log_goes_to_a_file_that_sighup_reopens() {
    let dir = std::env::temp_dir().join(format!("enip-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("server.log");
    let (server, _) = start(&[
        "-A",
        "-v",
        "-a",
        "127.0.47.6",
        "-l",
        log.to_str().unwrap(),
        "X",
    ]);
    wait_port("127.0.47.6:44818".parse().unwrap());
    let first = std::fs::read_to_string(&log).unwrap();
    assert!(first.contains("serving"), "{first}");
    // logrotate moves the file, then signals.
    std::fs::rename(&log, dir.join("server.log.1")).unwrap();
    let pid = server.0.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("log file reopened") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no reopened log: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The server still serves after the signal.
    assert!(!list_identity("127.0.47.6:44818".parse().unwrap()).is_empty());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.0 request with optional `Authorization: Bearer`: the status line and headers, and the body.
fn http(port: u16, path: &str, token: Option<&str>) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n{auth}\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[test]
fn a_web_api_off_loopback_needs_a_token() {
    let out = Command::new(BIN)
        .args(["-w", "0.0.0.0:8080", "X"])
        .env_remove("ENIP_WEB_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "enip-server: --web 0.0.0.0:8080 is reachable from other hosts and the web API can change \
         tags and stop the server, so it needs a token: give --web-token FILE (a file holding it) \
         or set ENIP_WEB_TOKEN, or listen on loopback (-w :8080)"
    );
    let dir = std::env::temp_dir().join(format!("enip-web-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let (code, _, err) = run(&[
        "-w",
        "0.0.0.0:8080",
        "--web-token",
        empty.to_str().unwrap(),
        "X",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the file is empty; put the token in it"),
        "{err}"
    );
    let (code, _, err) = run(&["--web-rate", "0", "X"]);
    assert_eq!(code, 2);
    assert!(err.contains("bad --web-rate"), "{err}");

    // With a token from a file: every page but /metrics wants it.
    let file = dir.join("token");
    std::fs::write(&file, "s3cret-token\n").unwrap();
    let (port, web) = (free_port(), free_port());
    let (_server, _) = start(&[
        "-A",
        "-a",
        &format!("127.0.0.1:{port}"),
        "-w",
        &format!("0.0.0.0:{web}"),
        "--web-token",
        file.to_str().unwrap(),
        "X=INT",
    ]);
    let (head, body) = http(web, "/api/tags/X", None);
    assert!(
        head.starts_with("HTTP/1.0 401") || head.starts_with("HTTP/1.1 401"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["command"]["success"], false, "{body}");
    let (head, _) = http(web, "/api/tags/X", Some("wrong"));
    assert!(head.contains(" 401 "), "{head}");
    let (head, body) = http(web, "/api/tags/X", Some("s3cret-token"));
    assert!(head.contains(" 200 "), "{head}");
    assert!(body.contains("\"X\""), "{body}");
    let (head, body) = http(web, "/metrics", None);
    assert!(head.contains(" 200 "), "{head}");
    assert!(body.contains("enip_"), "{body}");

    // The same from the environment; loopback needs none, as before.
    let (port, web) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .args([
            "-A",
            "-a",
            &format!("127.0.0.1:{port}"),
            "-w",
            &format!("0.0.0.0:{web}"),
            "X=INT",
        ])
        .env("ENIP_WEB_TOKEN", "from-env")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _env_server = Server(child);
    assert!(http(web, "/api", None).0.contains(" 401 "));
    assert!(http(web, "/api", Some("from-env")).0.contains(" 200 "));
    let (port, web) = (free_port(), free_port());
    let (_loopback, _) = start(&[
        "-A",
        "-a",
        &format!("127.0.0.1:{port}"),
        "-w",
        &format!(":{web}"),
        "X=INT",
    ]);
    assert!(http(web, "/api", None).0.contains(" 200 "));
    let _ = std::fs::remove_dir_all(&dir);
}
