//! The `cpppo/scada` image (docker/): built by `docker/build.sh`, run the way plcfleet
//! runs it — its own address on a user-defined network, read-only, no capabilities — and
//! spoken to over EtherNet/IP at that address from the host.
//!
//! Needs a Docker engine whose container addresses the host can reach (a local one).
//! Without one each test prints why and passes, except under `CI=true`, where it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::mr::service as svc;
use enip_proto::{
    Body, Command as Cmd, Cpf, EncapStatus, Encapsulation, FrameDecoder, GeneralStatus, Header,
    Path, Reply, Request,
};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const IMAGE: &str = "cpppo/scada";
/// Resources this file creates carry this label, so a leftover is easy to find.
const LABEL: &str = "org.plcfleet.test=enip-server-docker_image";
const WAIT: Duration = Duration::from_secs(10);

/// `docker ARGS`: stdout, or stderr as the error.
fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The image's id, built (or found up to date) once per test binary; None when Docker is
/// out of reach outside CI.
fn image() -> Option<&'static str> {
    static BUILT: OnceLock<Option<String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Err(why) = docker(&["version", "--format", "{{.Server.Version}}"]) {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true and Docker is unreachable: {why}"
                );
                eprintln!("skipping the image tests: Docker is unreachable: {why}");
                return None;
            }
            let t = Instant::now();
            let out = Command::new("bash")
                .arg(format!("{REPO}/docker/build.sh"))
                .arg("scada")
                .output()
                .unwrap();
            let log = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "docker/build.sh scada failed:\n{log}");
            eprintln!("docker/build.sh scada: {:.1?}", t.elapsed());
            // By id, not by tag: another checkout may retag cpppo/scada meanwhile.
            Some(docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]).unwrap())
        })
        .as_deref()
}

/// A user-defined bridge network of this test's own, and the containers on it; both are
/// removed when it drops, failed assertion or not.
struct Net {
    name: String,
    prefix: [u8; 3],
    containers: Vec<String>,
}

impl Net {
    fn new(test: &str) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let mut last = String::new();
        // Another run, or another network, may hold a subnet: try a few.
        for _ in 0..20 {
            let seq = SEQ.fetch_add(1, Ordering::Relaxed);
            let third =
                u8::try_from((pid.wrapping_mul(7).wrapping_add(seq * 37)) % 250 + 1).unwrap();
            let prefix = [10, 251, third];
            let name = format!("enip-image-{test}-{pid}-{seq}");
            let subnet = format!("10.251.{third}.0/24");
            // Static addresses stay below the range Docker hands out on its own.
            let range = format!("10.251.{third}.128/25");
            match docker(&[
                "network",
                "create",
                "--driver",
                "bridge",
                "--subnet",
                &subnet,
                "--ip-range",
                &range,
                "--label",
                LABEL,
                &name,
            ]) {
                Ok(_) => {
                    return Self {
                        name,
                        prefix,
                        containers: Vec::new(),
                    }
                }
                Err(e) => last = e,
            }
        }
        panic!("no free 10.251.x.0/24 network: {last}");
    }

    fn ip(&self, host: u8) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, host)
    }

    /// Run `image` with `args` at `.host`, hardened as plcfleet runs it; wait until TCP
    /// `port` accepts.
    fn run(&mut self, image: &str, host: u8, port: u16, args: &[&str]) -> Container {
        self.run_with(image, host, port, &[], args)
    }

    /// [`Self::run`] with `docker run` options (`-e K=V`) before the image.
    fn run_with(
        &mut self,
        image: &str,
        host: u8,
        port: u16,
        options: &[&str],
        args: &[&str],
    ) -> Container {
        let name = format!("{}-{host}", self.name);
        let ip = self.ip(host).to_string();
        let mut cmd = vec![
            "run",
            "--detach",
            "--name",
            &name,
            "--label",
            LABEL,
            "--network",
            &self.name,
            "--ip",
            &ip,
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ];
        cmd.extend_from_slice(options);
        cmd.push(image);
        cmd.extend_from_slice(args);
        docker(&cmd).unwrap();
        self.containers.push(name.clone());
        let c = Container {
            name,
            addr: SocketAddrV4::new(self.ip(host), port).into(),
        };
        let t = Instant::now();
        while TcpStream::connect_timeout(&c.addr, Duration::from_millis(200)).is_err() {
            assert!(
                t.elapsed() < WAIT,
                "{} never opened {}; logs:\n{}",
                c.name,
                c.addr,
                c.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &self.containers {
            if std::thread::panicking() {
                eprintln!("--- logs of {c}:\n{}", logs(c));
            }
            let _ = docker(&["rm", "--force", "--volumes", c]);
        }
        let _ = docker(&["network", "rm", &self.name]);
    }
}

struct Container {
    name: String,
    addr: SocketAddr,
}

impl Container {
    fn logs(&self) -> String {
        logs(&self.name)
    }
}

/// A container's output, stdout then stderr (where the simulator logs).
fn logs(container: &str) -> String {
    match Command::new("docker").args(["logs", container]).output() {
        Ok(out) => format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => format!("(no logs: {e})"),
    }
}

fn list_identity_request() -> Vec<u8> {
    Encapsulation {
        header: Header::new(Cmd::ListIdentity, 0, [0; 8]),
        body: Body::Raw(&[]),
    }
    .to_vec()
    .unwrap()
}

/// The (address, port) a ListIdentity reply says the device is at, and its product name.
fn identity_of(frame: &[u8]) -> (SocketAddrV4, String) {
    let e = Encapsulation::decode(frame).unwrap();
    let Body::List(Some(cpf)) = e.body else {
        panic!("not a ListIdentity reply: {e:?}")
    };
    let id = cpf.identity().unwrap();
    (
        SocketAddrV4::new(id.socket.addr.into(), id.socket.port),
        String::from_utf8_lossy(id.product_name).into_owned(),
    )
}

/// A blocking EtherNet/IP session over TCP.
struct Session {
    s: TcpStream,
    dec: FrameDecoder,
    handle: u32,
}

impl Session {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect_timeout(&addr, WAIT).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        Self {
            s,
            dec: FrameDecoder::new(65535),
            handle: 0,
        }
    }

    fn exchange(&mut self, frame: &[u8]) -> Vec<u8> {
        self.s.write_all(frame).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(f) = self.dec.next_frame().unwrap() {
                return f.to_vec().unwrap();
            }
            let n = self.s.read(&mut buf).unwrap();
            assert!(n > 0, "the simulator closed the connection");
            self.dec.feed(&buf[..n]);
        }
    }

    fn register(mut self) -> Self {
        let r = self.exchange(
            &Encapsulation {
                header: Header::new(Cmd::RegisterSession, 0, [0; 8]),
                body: Body::RegisterSession(RegisterSession::default()),
            }
            .to_vec()
            .unwrap(),
        );
        let e = Encapsulation::decode(&r).unwrap();
        assert_eq!(e.header.status, EncapStatus::Success);
        self.handle = e.header.session;
        self
    }

    /// Read Tag of one element: the reply's status and data (type code, then value).
    fn read(&mut self, tag: &str) -> (GeneralStatus, Vec<u8>) {
        let mr = Request::build(
            svc::READ_TAG,
            &Path::parse(tag).unwrap(),
            &1u16.to_le_bytes(),
        )
        .unwrap();
        let r = self.exchange(
            &Encapsulation {
                header: Header::new(Cmd::SendRRData, self.handle, [0; 8]),
                body: Body::SendData(SendData {
                    interface_handle: 0,
                    timeout: 5,
                    cpf: Cpf::unconnected(&mr),
                }),
            }
            .to_vec()
            .unwrap(),
        );
        let e = Encapsulation::decode(&r).unwrap();
        assert_eq!(e.header.status, EncapStatus::Success);
        let m = e.send_data().unwrap().cpf.message().unwrap();
        let reply = Reply::decode(m.data).unwrap();
        (reply.status, reply.data.to_vec())
    }
}

const DINT: [u8; 2] = [0xC4, 0x00];
const REAL: [u8; 2] = [0xCA, 0x00];

#[test]
fn image_is_one_static_binary_run_by_a_numeric_user_with_labels() {
    let Some(id) = image() else { return };
    let field = |f: &str| docker(&["image", "inspect", "--format", f, id]).unwrap();
    assert_eq!(field("{{.Config.User}}"), "65532:65532");
    assert_eq!(
        field("{{json .Config.Entrypoint}} {{json .Config.Cmd}}"),
        r#"["/usr/local/bin/enip-server"] ["SCADA=DINT[1000]"]"#
    );
    assert_eq!(
        field("{{json .Config.ExposedPorts}}"),
        r#"{"44818/tcp":{},"44818/udp":{}}"#
    );
    // FROM scratch plus one COPY: a single layer, no shell, no libc.
    assert_eq!(field("{{len .RootFS.Layers}}"), "1");
    assert_eq!(
        field(r#"{{index .Config.Labels "org.opencontainers.image.version"}}"#),
        env!("CARGO_PKG_VERSION")
    );
    let sha = field(r#"{{index .Config.Labels "org.plcfleet.binary.sha256"}}"#);
    assert!(
        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
        "{sha:?}"
    );
    let versioned = format!("{IMAGE}:{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        docker(&["image", "inspect", "--format", "{{.Id}}", &versioned]).unwrap(),
        id
    );
}

/// `docker run cpppo/scada` serves SCADA=DINT[1000], as cpppo's image does, on the
/// container's own address; as user 65532, with a read-only root and no capabilities.
#[test]
fn default_command_serves_scada_dint_1000_at_the_container_address() {
    let Some(image) = image() else { return };
    let mut net = Net::new("default");
    let c = net.run(image, 10, 44818, &[]);
    let ip = net.ip(10);

    let mut s = Session::connect(c.addr);
    let r = s.exchange(&list_identity_request());
    let (at, product) = identity_of(&r);
    assert_eq!(
        at,
        SocketAddrV4::new(ip, 44818),
        "TCP ListIdentity says {at}"
    );
    assert!(!product.is_empty());

    let u = UdpSocket::bind("0.0.0.0:0").unwrap();
    u.set_read_timeout(Some(WAIT)).unwrap();
    u.send_to(&list_identity_request(), c.addr).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(identity_of(&buf[..n]).0, SocketAddrV4::new(ip, 44818));

    let mut s = s.register();
    let zero = [&DINT[..], &[0; 4]].concat();
    assert_eq!(s.read("SCADA[0]"), (GeneralStatus::SUCCESS, zero.clone()));
    assert_eq!(s.read("SCADA[999]"), (GeneralStatus::SUCCESS, zero));
    assert_ne!(s.read("SCADA[1000]").0, GeneralStatus::SUCCESS);

    let top = docker(&["top", &c.name, "-o", "pid,uid,comm"]).unwrap();
    let uids: Vec<&str> = top
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(uids, ["65532"], "{top}");

    // PID 1 gets no default signal actions: only a SIGTERM handler makes `docker stop`
    // quick, which matters when plcfleet recreates hundreds of these.
    let t = Instant::now();
    docker(&["stop", "--time", "5", &c.name]).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.ExitCode}}", &c.name]).unwrap(),
        "0",
        "{}",
        c.logs()
    );
}

/// Arguments after the image name replace the tags, and flags among them still work — the
/// address (`-a`) included, which is why the image does not fix it in its ENTRYPOINT.
#[test]
fn extra_arguments_replace_the_tags_and_flags_still_work() {
    let Some(image) = image() else { return };
    let mut net = Net::new("args");
    // The web API off loopback needs a token (from the environment here).
    let c = net.run_with(
        image,
        10,
        44818,
        &["-e", "ENIP_WEB_TOKEN=example-token"],
        &["-v", "-w", "0.0.0.0:8080", "Temp=REAL"],
    );

    let mut s = Session::connect(c.addr).register();
    assert_eq!(s.read("SCADA[0]").0, GeneralStatus::PATH_SEGMENT_ERROR);
    assert_eq!(
        s.read("Temp"),
        (GeneralStatus::SUCCESS, [&REAL[..], &[0; 4]].concat())
    );

    let mut web =
        TcpStream::connect_timeout(&SocketAddrV4::new(net.ip(10), 8080).into(), WAIT).unwrap();
    web.set_read_timeout(Some(WAIT)).unwrap();
    web.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut page = String::new();
    web.read_to_string(&mut page).unwrap();
    assert!(
        page.starts_with("HTTP/1.0 200") || page.starts_with("HTTP/1.1 200"),
        "{page}"
    );
    let mut web =
        TcpStream::connect_timeout(&SocketAddrV4::new(net.ip(10), 8080).into(), WAIT).unwrap();
    web.set_read_timeout(Some(WAIT)).unwrap();
    web.write_all(b"GET /api HTTP/1.0\r\n\r\n").unwrap();
    let mut page = String::new();
    web.read_to_string(&mut page).unwrap();
    assert!(page.contains(" 401 "), "/api without the token: {page}");
    // -v: info logging, on stderr, which `docker logs` keeps.
    assert!(c.logs().contains("INFO"), "{}", c.logs());

    let c = net.run(image, 11, 2222, &["-a", ":2222", "Counts=DINT"]);
    let mut s = Session::connect(c.addr);
    let r = s.exchange(&list_identity_request());
    assert_eq!(identity_of(&r).0, SocketAddrV4::new(net.ip(11), 2222));
    let mut s = s.register();
    assert_eq!(
        s.read("Counts"),
        (GeneralStatus::SUCCESS, [&DINT[..], &[0; 4]].concat())
    );
}
