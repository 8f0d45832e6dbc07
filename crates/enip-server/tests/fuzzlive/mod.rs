//! Live fuzzing, shared by `tests/live_fuzz.rs` (a few seconds, in `cargo test`) and
//! `benches/live_fuzz.rs` (as long as you like, prints a table).
//!
//! An `enip-server` child process serves `SCADA=INT[10]` (what the seeds address) and
//! `Good=DINT[32]` (what only the well-behaved client touches: no mutation of the seeds
//! comes near that name). While fuzzers send generated and mutated frames to it over TCP
//! and UDP, an `enip-client` keeps writing `Good` and reading it back. Then the fuzzers
//! disconnect and [`Outcome`] holds what the checks need: the child alive, no panic in
//! its log, the `enip_tcp_connections` gauge and the open fds back to their baseline, RSS
//! before and after, the client's errors.
//!
//! Seeds: the codec's fuzz corpus (`crates/fuzz/corpus/frame/*` as frames,
//! `corpus/service_bodies/*` wrapped in SendRRData requests), plus frames built here
//! (List*, Nop, RegisterSession, Read/Write Tag, Get Attributes All). Mutations: bit
//! flips, truncation, lying length fields, random commands, valid headers with garbage
//! CPF, oversized lengths, random bytes, several frames in one write and one frame split
//! over several; slowloris (a frame a byte at a time, then held open) and connection
//! floods (hundreds of connections at once, some registering, then dropped).
//! Each task has its own deterministic generator derived from the run's seed; what
//! interleaves with what still depends on timing.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use enip_client::{Client, Options, TagPath, WireType};
use enip_proto::encap::{RegisterSession, SendData};
use enip_proto::{
    Body, Command as Cmd, Cpf, DataType, Encapsulation, Header, Path as EPath, Request,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// splitmix64: small, deterministic, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn frame(command: Cmd, body: Body<'_>) -> Vec<u8> {
    Encapsulation {
        header: Header::new(command, 0, *b"livefuzz"),
        body,
    }
    .to_vec()
    .unwrap()
}

fn rr(mr: &[u8]) -> Vec<u8> {
    frame(
        Cmd::SendRRData,
        Body::SendData(SendData {
            interface_handle: 0,
            timeout: 10,
            cpf: Cpf::unconnected(mr),
        }),
    )
}

/// Every seed frame: the fuzz corpus and a few built here.
pub fn seeds() -> Vec<Vec<u8>> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let files = |dir: &str| -> Vec<Vec<u8>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(corpus.join(dir))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        v.sort();
        v.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    };
    let mut seeds = files("frame");
    let paths = ["SCADA", "SCADA[3]", "@1/1", "@6/1", "@2/1", "@0x6b/1"];
    let services = [
        0x4C, 0x4D, 0x52, 0x53, 0x0A, 0x01, 0x0E, 0x10, 0x54, 0x5B, 0x4E, 0x4B,
    ];
    for (i, body) in files("service_bodies").iter().enumerate() {
        let p = EPath::parse(paths[i % paths.len()]).unwrap();
        let body = body.get(1..).unwrap_or_default();
        if let Ok(mr) = Request::build(services[i % services.len()], &p, body) {
            seeds.push(rr(&mr));
        }
    }
    for c in [Cmd::ListIdentity, Cmd::ListServices, Cmd::ListInterfaces] {
        seeds.push(frame(c, Body::List(None)));
    }
    seeds.push(frame(Cmd::Nop, Body::Raw(b"nop")));
    seeds.push(frame(
        Cmd::RegisterSession,
        Body::RegisterSession(RegisterSession::default()),
    ));
    let scada = EPath::parse("SCADA").unwrap();
    seeds.push(rr(
        &Request::build(0x4C, &scada, &10u16.to_le_bytes()).unwrap()
    ));
    seeds.push(rr(&Request::build(
        0x4D,
        &EPath::parse("SCADA[1]").unwrap(),
        &[0xC3, 0, 1, 0, 7, 0],
    )
    .unwrap()));
    seeds.push(rr(&Request::build(
        0x01,
        &EPath::parse("@1/1").unwrap(),
        &[],
    )
    .unwrap()));
    seeds
}

/// One mutated (or generated) frame, and what was done to it.
pub fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], session: u32) -> (Vec<u8>, &'static str) {
    let mut f = seeds[rng.below(seeds.len())].clone();
    // Most frames carry the connection's real session, so they get past the session
    // check and into the CIP layers.
    if f.len() >= 8 && rng.chance(80) {
        f[4..8].copy_from_slice(&session.to_le_bytes());
    }
    let set_len = |f: &mut Vec<u8>, n: u16| {
        if f.len() >= 4 {
            f[2..4].copy_from_slice(&n.to_le_bytes());
        }
    };
    let what = match rng.below(9) {
        0 => {
            for _ in 0..=rng.below(8) {
                let bit = rng.below(f.len() * 8);
                f[bit / 8] ^= 1 << (bit % 8);
            }
            "bit flips"
        }
        1 => {
            f.truncate(rng.below(f.len()));
            "truncated"
        }
        2 => {
            let n = rng.next() as u16 % (f.len() as u16 + 64);
            set_len(&mut f, n);
            "lying length"
        }
        3 => {
            let c = if rng.chance(50) {
                [0x00, 0x04, 0x63, 0x64, 0x65, 0x66, 0x6F, 0x70, 0x72, 0x73][rng.below(10)]
            } else {
                rng.next() as u16
            };
            f[0..2].copy_from_slice(&c.to_le_bytes());
            "random command"
        }
        4 => {
            // A valid SendRRData/SendUnitData header, then an interface handle, a
            // timeout and garbage where the CPF belongs.
            let mut g = {
                let n = rng.below(600);
                rng.bytes(n)
            };
            if rng.chance(50) && g.len() >= 2 {
                g[0..2].copy_from_slice(&(rng.below(5) as u16).to_le_bytes());
            }
            let c: u16 = if rng.chance(50) { 0x6F } else { 0x70 };
            let mut h = Vec::new();
            h.extend_from_slice(&c.to_le_bytes());
            h.extend_from_slice(&((6 + g.len()) as u16).to_le_bytes());
            h.extend_from_slice(&session.to_le_bytes());
            h.extend_from_slice(&[0; 4]);
            h.extend_from_slice(b"garbage!");
            h.extend_from_slice(&[0; 4]);
            h.extend_from_slice(&[0, 0, 0, 0, 10, 0]);
            h.extend_from_slice(&g);
            f = h;
            "garbage CPF"
        }
        5 => {
            let n = [4401, 8000, 0x7FFF, 0xFFFF][rng.below(4)];
            set_len(&mut f, n);
            let more = {
                let n = rng.below(2000);
                rng.bytes(n)
            };
            f.extend_from_slice(&more);
            "oversized length"
        }
        6 => {
            f = {
                let n = rng.below(100);
                rng.bytes(n)
            };
            "random bytes"
        }
        7 => {
            for _ in 0..rng.below(4) {
                f.extend_from_slice(&seeds[rng.below(seeds.len())]);
            }
            "several frames"
        }
        _ => "seed",
    };
    (f, what)
}

#[derive(Debug, Default)]
pub struct Counters {
    pub tcp_frames: AtomicU64,
    pub tcp_bytes: AtomicU64,
    pub tcp_connections: AtomicU64,
    pub udp_frames: AtomicU64,
    pub udp_replies: AtomicU64,
    pub slowloris: AtomicU64,
    pub flood: AtomicU64,
    pub reply_bytes: AtomicU64,
    pub good_ops: AtomicU64,
    pub good_errors: AtomicU64,
}

/// A fuzzing TCP connection: maybe register, then mutated frames, then close (or reset
/// by dropping with unread data).
async fn tcp_fuzzer(addr: SocketAddr, seed: u64, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let seeds = seeds();
    let mut rng = Rng::new(seed);
    while !stop.load(Ordering::Relaxed) {
        let Ok(s) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        c.tcp_connections.fetch_add(1, Ordering::Relaxed);
        let (mut r, mut w) = s.into_split();
        let mut session = rng.next() as u32;
        if rng.chance(70) {
            let reg = frame(
                Cmd::RegisterSession,
                Body::RegisterSession(RegisterSession::default()),
            );
            let mut reply = [0u8; 28];
            if w.write_all(&reg).await.is_ok()
                && tokio::time::timeout(Duration::from_secs(2), r.read_exact(&mut reply))
                    .await
                    .is_ok_and(|r| r.is_ok())
            {
                session = u32::from_le_bytes([reply[4], reply[5], reply[6], reply[7]]);
            }
        }
        let counters = c.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 16384];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                counters.reply_bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
        for _ in 0..=rng.below(40) {
            let (f, _) = mutate(&mut rng, &seeds, session);
            let ok = if rng.chance(10) && f.len() > 2 {
                // One frame over several writes.
                let cut = 1 + rng.below(f.len() - 1);
                let a = w.write_all(&f[..cut]).await.is_ok();
                tokio::time::sleep(Duration::from_millis(1)).await;
                a && w.write_all(&f[cut..]).await.is_ok()
            } else {
                w.write_all(&f).await.is_ok()
            };
            if !ok {
                break;
            }
            c.tcp_frames.fetch_add(1, Ordering::Relaxed);
            c.tcp_bytes.fetch_add(f.len() as u64, Ordering::Relaxed);
            if rng.chance(5) {
                tokio::task::yield_now().await;
            }
        }
        if rng.chance(50) {
            let _ = w.shutdown().await;
            let _ = tokio::time::timeout(Duration::from_millis(200), reader).await;
        } else {
            reader.abort();
        }
    }
}

/// Mutated datagrams at the UDP port, replies drained.
async fn udp_fuzzer(addr: SocketAddr, seed: u64, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let seeds = seeds();
    let mut rng = Rng::new(seed);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let (f, _) = mutate(&mut rng, &seeds, 0);
        if sock.send_to(&f, addr).await.is_ok() {
            c.udp_frames.fetch_add(1, Ordering::Relaxed);
        }
        while let Ok(Ok(_)) = tokio::time::timeout(Duration::ZERO, sock.recv_from(&mut buf)).await {
            c.udp_replies.fetch_add(1, Ordering::Relaxed);
        }
        if rng.chance(2) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Slowloris: connections that send part of a frame a byte at a time and hang on.
async fn slowloris(addr: SocketAddr, seed: u64, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let seeds = seeds();
    let mut rng = Rng::new(seed);
    let mut held = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            c.slowloris.fetch_add(1, Ordering::Relaxed);
            let f = &seeds[rng.below(seeds.len())];
            let part = rng.below(f.len());
            for b in &f[..part] {
                if s.write_all(&[*b]).await.is_err() || stop.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            held.push(s);
            if held.len() > 20 {
                held.remove(0);
            }
        }
    }
}

/// Connection floods: a burst of connections at once, some registering, all dropped.
async fn flood(addr: SocketAddr, seed: u64, stop: Arc<AtomicBool>, c: Arc<Counters>, burst: usize) {
    let mut rng = Rng::new(seed);
    let reg = frame(
        Cmd::RegisterSession,
        Body::RegisterSession(RegisterSession::default()),
    );
    while !stop.load(Ordering::Relaxed) {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..burst {
            let register = rng.chance(50);
            let reg = reg.clone();
            set.spawn(async move {
                let mut s = TcpStream::connect(addr).await.ok()?;
                if register {
                    s.write_all(&reg).await.ok()?;
                }
                Some(s)
            });
        }
        let mut open = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(Some(s)) = r {
                c.flood.fetch_add(1, Ordering::Relaxed);
                open.push(s);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(open);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The well-behaved client: write `Good` whole with a fresh pattern, read it back, check.
async fn good_client(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    c: Arc<Counters>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
) {
    let fail = |e: String| {
        c.good_errors.fetch_add(1, Ordering::Relaxed);
        let mut v = errors.lock().unwrap();
        if v.len() < 10 {
            v.push(e);
        }
    };
    let client = match Client::connect(addr, Options::default()).await {
        Ok(cl) => cl,
        Err(e) => return fail(format!("connect: {e}")),
    };
    let good = TagPath::parse("Good").unwrap();
    let dint = WireType::Atomic(DataType::Dint);
    let mut n: i32 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let data: Vec<u8> = (0..32).flat_map(|i| (n * 100 + i).to_le_bytes()).collect();
        if let Err(e) = client.write_tag(&good, dint, 32, &data).await {
            fail(format!("write #{n}: {e}"));
            continue;
        }
        match client.read_tag(&good, 32).await {
            Ok(r) if r.data == data => {}
            Ok(r) => fail(format!(
                "read #{n}: {:?}, wrote {:?}",
                &r.data[..8.min(r.data.len())],
                &data[..8]
            )),
            Err(e) => fail(format!("read #{n}: {e}")),
        }
        c.good_ops.fetch_add(2, Ordering::Relaxed);
    }
    let _ = client.close().await;
}

/// The server under test: the `enip-server` binary as a child, stderr to a log file.
#[derive(Debug)]
pub struct Target {
    pub child: Child,
    pub addr: SocketAddr,
    pub web: SocketAddr,
    pub log: PathBuf,
}

impl Target {
    pub fn start(bin: &str, ip: [u8; 4], log: PathBuf) -> Self {
        let addr = SocketAddr::from((ip, 44818));
        let web = SocketAddr::from((ip, 8080));
        let child = Command::new(bin)
            .args([
                "-a",
                &addr.to_string(),
                "-w",
                &web.to_string(),
                "SCADA=INT[10]",
                "Good=DINT[32]",
            ])
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let t = Instant::now();
        // Connections the probes opened: the baseline waits until the server has
        // accepted and closed every one (a probe may still sit in the backlog).
        let mut probes = 0u32;
        loop {
            let up = std::net::TcpStream::connect(addr).is_ok();
            probes += u32::from(up);
            if up && std::net::TcpStream::connect(web).is_ok() {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "server did not start; log {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let t = Self {
            child,
            addr,
            web,
            log,
        };
        // The probes above are connections too: let the server see them close, so the
        // baseline is the idle server's.
        let since = Instant::now();
        while (t.metric("enip_tcp_connections_accepted_total") < f64::from(probes)
            || t.metric("enip_tcp_connections") != 0.0)
            && since.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        t
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, Iterator::count)
    }

    /// A metric's value from `/metrics` (summed over its labels).
    pub fn metric(&self, name: &str) -> f64 {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.web).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// How many of each fuzzer, and for how long.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub duration: Duration,
    pub tcp_fuzzers: usize,
    pub flood_burst: usize,
}

/// What a run measured; the caller asserts or prints.
#[derive(Debug)]
pub struct Outcome {
    pub elapsed: Duration,
    pub tcp_frames: u64,
    pub tcp_bytes: u64,
    pub tcp_connections: u64,
    pub udp_frames: u64,
    pub udp_replies: u64,
    pub slowloris: u64,
    pub flood: u64,
    pub reply_bytes: u64,
    pub encap_errors: f64,
    pub good_ops: u64,
    pub good_errors: Vec<String>,
    pub alive: bool,
    pub panicked: bool,
    pub gauge_before: f64,
    pub gauge_during_max: f64,
    pub gauge_after: f64,
    pub fds_before: usize,
    pub fds_after: usize,
    pub rss_before_kib: u64,
    pub rss_max_kib: u64,
    pub rss_after_kib: u64,
}

/// Fuzz `t` per `plan`; afterwards wait (up to 10 s) for the server's connection gauge
/// and fds to settle back to the baseline taken before the fuzzers started.
pub fn run(t: &mut Target, plan: &Plan, rt: &tokio::runtime::Runtime) -> Outcome {
    let gauge_before = t.metric("enip_tcp_connections");
    let fds_before = t.fds();
    let rss_before_kib = t.rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let good_stop = Arc::new(AtomicBool::new(false));
    let c = Arc::new(Counters::default());
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let addr = t.addr;
    let mut tasks = Vec::new();
    let good = rt.spawn(good_client(
        addr,
        good_stop.clone(),
        c.clone(),
        errors.clone(),
    ));
    for i in 0..plan.tcp_fuzzers {
        tasks.push(rt.spawn(tcp_fuzzer(
            addr,
            plan.seed ^ (i as u64 + 1) << 32,
            stop.clone(),
            c.clone(),
        )));
    }
    tasks.push(rt.spawn(udp_fuzzer(addr, plan.seed ^ 0xDD, stop.clone(), c.clone())));
    tasks.push(rt.spawn(slowloris(addr, plan.seed ^ 0x5105, stop.clone(), c.clone())));
    tasks.push(rt.spawn(flood(
        addr,
        plan.seed ^ 0xF100D,
        stop.clone(),
        c.clone(),
        plan.flood_burst,
    )));
    let start = Instant::now();
    let mut gauge_during_max: f64 = 0.0;
    let mut rss_max_kib = rss_before_kib;
    while start.elapsed() < plan.duration {
        std::thread::sleep(Duration::from_millis(250).min(plan.duration));
        if !t.alive() {
            break;
        }
        gauge_during_max = gauge_during_max.max(t.metric("enip_tcp_connections"));
        rss_max_kib = rss_max_kib.max(t.rss_kib());
    }
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for h in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
    });
    let elapsed = start.elapsed();
    // The well-behaved client ran alongside all of it; it stops last.
    good_stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(10), good).await;
    });
    // Its disconnect is part of the baseline too: wait for the gauge to settle.
    let alive = t.alive();
    let settle = Instant::now();
    let mut gauge_after = f64::NAN;
    let mut fds_after = usize::MAX;
    while alive && settle.elapsed() < Duration::from_secs(10) {
        gauge_after = t.metric("enip_tcp_connections");
        fds_after = t.fds();
        if gauge_after <= gauge_before && fds_after <= fds_before {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = t.log_text();
    let good_errors = errors.lock().unwrap().clone();
    Outcome {
        elapsed,
        tcp_frames: c.tcp_frames.load(Ordering::Relaxed),
        tcp_bytes: c.tcp_bytes.load(Ordering::Relaxed),
        tcp_connections: c.tcp_connections.load(Ordering::Relaxed),
        udp_frames: c.udp_frames.load(Ordering::Relaxed),
        udp_replies: c.udp_replies.load(Ordering::Relaxed),
        slowloris: c.slowloris.load(Ordering::Relaxed),
        flood: c.flood.load(Ordering::Relaxed),
        reply_bytes: c.reply_bytes.load(Ordering::Relaxed),
        encap_errors: if alive {
            t.metric("enip_encapsulation_errors_total")
        } else {
            0.0
        },
        good_ops: c.good_ops.load(Ordering::Relaxed),
        good_errors,
        alive,
        panicked: log.contains("panicked"),
        gauge_before,
        gauge_during_max,
        gauge_after,
        fds_before,
        fds_after,
        rss_before_kib,
        rss_max_kib,
        rss_after_kib: t.rss_kib(),
    }
}
