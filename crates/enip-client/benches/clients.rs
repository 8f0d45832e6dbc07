//! Our client, cpppo's client and pycomm3 against our simulator, in one run, with the
//! same operation (a read of `SCADA[0-10]`, 11 DINTs): operations per second at depth 1
//! and 20, with and without Multiple Service Packets, and CPU per operation — the
//! client's (from /proc/self/stat: children's time, less a connect-only baseline) and
//! the server's (this process serves, on a 2-thread runtime like the binary's).
//!
//! `cargo bench -p enip-client --bench clients` (optimised build). Prints a markdown
//! table; asserts nothing. Needs the Python venv (ENIP_PYTHON or `.venv`) for the
//! Python rows; without it they are left out.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const IP: [u8; 4] = [127, 0, 55, 1];
const OP: &str = "SCADA[0-10]";

/// CPU seconds: this process's own (user+system) and its waited-for children's.
fn cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the parenthesised command name: state is field 3; utime 14, stime 15,
    // cutime 16, cstime 17.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<f64> = rest.split(' ').map(|x| x.parse().unwrap_or(0.0)).collect();
    let tick = clock_tick();
    ((f[11] + f[12]) / tick, (f[13] + f[14]) / tick)
}

fn clock_tick() -> f64 {
    static TICK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("ENIP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    Command::new(&p)
        .args(["-c", "import cpppo, pycomm3"])
        .status()
        .is_ok_and(|s| s.success())
        .then_some(p)
}

fn serve() -> SocketAddr {
    let addr = SocketAddr::from((IP, 44818));
    let mut c = enip_device::Controller::new();
    c.add_tag("SCADA=DINT[1000]").unwrap();
    let ctrl = Arc::new(Mutex::new(c));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = enip_server::Server::new(ctrl, enip_server::Options::default()).unwrap();
            let l = tokio::net::TcpListener::bind(addr).await.unwrap();
            tx.send(()).unwrap();
            server.run(l, std::future::pending::<()>()).await.unwrap();
        });
    });
    rx.recv().unwrap();
    addr
}

struct Row {
    client: &'static str,
    connected: bool,
    depth: usize,
    multiple: bool,
    ops: usize,
    requests: Option<u64>,
    tps: f64,
    client_us: f64,
    server_us: f64,
}

/// Run a command; returns (stdout, stderr, client CPU s, server CPU s, wall s).
fn measure(cmd: &mut Command) -> (String, String, f64, f64, f64) {
    let (s0, c0) = cpu();
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let wall = t.elapsed().as_secs_f64();
    let (s1, c1) = cpu();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        c1 - c0,
        s1 - s0,
        wall,
    )
}

fn ours(addr: &str, connected: bool, depth: usize, multiple: bool, n: usize, base: f64) -> Row {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_enip-client"));
    let n_s = n.to_string();
    let d = depth.to_string();
    cmd.args(["-a", addr, "-d", &d, "-r", &n_s, "--thruput", OP]);
    if multiple {
        cmd.arg("-m");
    }
    if connected {
        cmd.arg("-c");
    }
    let (out, _, ccpu, scpu, _) = measure(&mut cmd);
    // `N operations using M requests in X.XXs at pipeline depth D; T TPS`
    let line = out
        .lines()
        .find(|l| l.contains("operations using"))
        .unwrap();
    let w: Vec<&str> = line.split_whitespace().collect();
    let requests: u64 = w[3].parse().unwrap();
    let tps: f64 = w[w.len() - 2].parse().unwrap();
    Row {
        client: "enip-client (ours)",
        connected,
        depth,
        multiple,
        ops: n,
        requests: Some(requests),
        tps,
        client_us: (ccpu - base).max(0.0) / n as f64 * 1e6,
        server_us: scpu / n as f64 * 1e6,
    }
}

fn cpppo(py: &PathBuf, addr: &str, depth: usize, multiple: bool, n: usize, base: f64) -> Row {
    let mut cmd = Command::new(py);
    let n_s = n.to_string();
    // cpppo's -d N keeps N+1 requests in flight (-d 0: one at a time).
    let d = (depth - 1).to_string();
    cmd.args([
        "-m",
        "cpppo.server.enip.client",
        "-v",
        "-a",
        addr,
        "-d",
        &d,
        "-r",
        &n_s,
        OP,
    ]);
    if multiple {
        cmd.arg("-m");
    }
    let (_, err, ccpu, scpu, _) = measure(&mut cmd);
    // `Client Tag I/O  Average 239.212 TPS (  0.004s ea).`, its own timing of the I/O.
    let tps: f64 = err
        .lines()
        .find_map(|l| l.split("Average").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or(f64::NAN);
    Row {
        client: "cpppo 5.2.5 client",
        connected: false,
        depth,
        multiple,
        ops: n,
        requests: None,
        tps,
        client_us: (ccpu - base).max(0.0) / n as f64 * 1e6,
        server_us: scpu / n as f64 * 1e6,
    }
}

const PYCOMM3: &str = r#"
import sys, time
from pycomm3 import LogixDriver
ip, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with LogixDriver(ip) as plc:
    plc.read('SCADA[0]{11}')
    t0, c0 = time.perf_counter(), time.process_time()
    if per > 1:
        for _ in range(n // per):
            r = plc.read(*['SCADA[0]{11}'] * per)
    else:
        for _ in range(n):
            r = plc.read('SCADA[0]{11}')
    print(n, time.perf_counter() - t0, time.process_time() - c0)
"#;

fn pycomm3(py: &PathBuf, addr: &str, per: usize, n: usize) -> Row {
    let mut cmd = Command::new(py);
    cmd.args(["-c", PYCOMM3, addr, &n.to_string(), &per.to_string()]);
    let (out, _, _, scpu, _) = measure(&mut cmd);
    let f: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    Row {
        client: "pycomm3 1.2.16",
        connected: true,
        depth: 1,
        multiple: per > 1,
        ops: n,
        requests: Some(if per > 1 { (n / per) as u64 } else { n as u64 }),
        tps: f[0] / f[1],
        // pycomm3 times its own CPU, without start-up and tag upload.
        client_us: f[2] / f[0] * 1e6,
        server_us: scpu / n as f64 * 1e6,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let addr = serve();
    let a = addr.ip().to_string();
    let load_before = loadavg();
    let mut rows = Vec::new();

    // Connect-only runs: start-up and connection CPU, taken off each client's figures.
    let (_, _, base_ours, _, _) =
        measure(Command::new(env!("CARGO_BIN_EXE_enip-client")).args(["-a", &a]));
    for (connected, depth, multiple) in [
        (false, 1, false),
        (false, 1, true),
        (false, 20, false),
        (false, 20, true),
        (true, 1, false),
        (true, 20, false),
        (true, 20, true),
    ] {
        rows.push(ours(&a, connected, depth, multiple, 20_000, base_ours));
    }
    match python() {
        Some(py) => {
            let (_, _, base_cpppo, _, _) =
                measure(Command::new(&py).args(["-m", "cpppo.server.enip.client", "-a", &a]));
            for (depth, multiple) in [(1, false), (1, true), (20, false), (20, true)] {
                rows.push(cpppo(&py, &a, depth, multiple, 2_000, base_cpppo));
            }
            rows.push(pycomm3(&py, &a, 1, 2_000));
            rows.push(pycomm3(&py, &a, 20, 2_000));
        }
        None => eprintln!("no Python venv with cpppo and pycomm3: Python clients left out"),
    }
    let load_after = loadavg();

    println!(
        "Read `{OP}` against our simulator (in-process, 2 worker threads, optimised build).\n"
    );
    println!("| client | session | depth | -m | operations | CIP requests | ops/s | client CPU µs/op | server CPU µs/op |");
    println!("|---|---|---:|:---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} |",
            r.client,
            if r.connected {
                "connected"
            } else {
                "unconnected"
            },
            if r.client.starts_with("pycomm3") {
                "1 (no pipelining)".to_string()
            } else {
                r.depth.to_string()
            },
            if r.multiple { "yes" } else { "no" },
            r.ops,
            r.requests.map_or("—".into(), |n| n.to_string()),
            r.tps,
            r.client_us,
            r.server_us
        );
    }
    println!(
        "\n`cat /proc/loadavg` before: {load_before}; after: {load_after}; {} CPUs.",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("Depth = requests in flight (cpppo's -d N allows N+1: it ran with -d 0 and -d 19). pycomm3 -m: 20 reads per `read()` call, packed by pycomm3 into Multiple Service Packets on its 4000-byte connection.");
}
