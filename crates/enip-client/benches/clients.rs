//! Our client, cpppo's client and pycomm3 against our simulator, in one run, with the
//! same operation (a read of `SCADA[0-10]`, 11 DINTs): operations per second at depth 1
//! and 20, with and without Multiple Service Packets, and CPU per operation — the
//! client's (from /proc/self/stat: children's time, less a connect-only baseline) and
//! the server's (this process serves, on a 2-thread runtime like the binary's).
//!
//! The yardstick is the ideal client of `enip-server/benches/support/load.rs`, run on
//! threads of this process with the same depth, packing and number of connections: a
//! loop that does nothing per request but patch a sender context into a frame built
//! once. What it reaches is the most a client can get from the simulator on this
//! machine; "of ideal" is how much of that our client gets. Four of our clients at once
//! (four processes, four connections) are measured against four ideal ones.
//!
//! `cargo bench -p enip-client --bench clients` (optimised build). Prints a markdown
//! table; asserts nothing. Needs the Python venv (ENIP_PYTHON or `.venv`) for the
//! Python rows; without it they are left out. `CLIENTS_OPS` (default 200000): our
//! client's operations per pipelined row (a tenth of it at depth 1); `CLIENTS_REPEAT`
//! (default 3): runs of each of our rows and its ideal one, alternating; the median of
//! each is shown.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../../enip-server/benches/support/load.rs"]
mod load;
use load::{run_clients, Packet, Stop};

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
    load::clock_ticks()
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

/// The simulator's threads, by name, so they can be given a core of their own.
const SERVER_THREAD: &str = "sim-worker";

fn serve() -> SocketAddr {
    let addr = SocketAddr::from((IP, 44818));
    let mut c = enip_device::Controller::new();
    c.add_tag("SCADA=DINT[1000]").unwrap();
    let ctrl = Arc::new(Mutex::new(c));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(SERVER_THREAD)
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
    /// Connections at once (each at `depth`).
    connections: usize,
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

/// Our client, `n` operations at `depth`; on CPU `pin` with `taskset` if given.
fn ours_command(addr: &str, depth: usize, n: usize, pin: Option<&str>) -> Command {
    let exe = env!("CARGO_BIN_EXE_enip-client");
    let mut cmd = match pin {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu, exe]);
            c
        }
        None => Command::new(exe),
    };
    let (d, n) = (depth.to_string(), n.to_string());
    cmd.args(["-a", addr, "-d", &d, "-r", &n, "--thruput", OP]);
    cmd
}

/// CIP requests and operations per second from `--thruput`'s line:
/// `N operations using M requests in X.XXs at pipeline depth D; T TPS`.
fn thruput(stdout: &str) -> (u64, f64) {
    let line = stdout
        .lines()
        .find(|l| l.contains("operations using"))
        .unwrap();
    let w: Vec<&str> = line.split_whitespace().collect();
    (w[3].parse().unwrap(), w[w.len() - 2].parse().unwrap())
}

fn ours(addr: &str, connected: bool, depth: usize, multiple: bool, n: usize, base: f64) -> Row {
    let mut cmd = ours_command(addr, depth, n, None);
    if multiple {
        cmd.arg("-m");
    }
    if connected {
        cmd.arg("-c");
    }
    let (out, _, ccpu, scpu, _) = measure(&mut cmd);
    let (requests, tps) = thruput(&out);
    Row {
        client: "enip-client (ours)",
        connected,
        connections: 1,
        depth,
        multiple,
        ops: n,
        requests: Some(requests),
        tps,
        client_us: (ccpu - base).max(0.0) / n as f64 * 1e6,
        server_us: scpu / n as f64 * 1e6,
    }
}

/// `k` of our clients at once, `n` operations each, unconnected at `depth`: CIP requests
/// in all and the sum of their own rates (each times its I/O; they start within
/// milliseconds of each other).
fn run_ours(addr: &str, k: usize, depth: usize, n: usize, pin: Option<&str>) -> (u64, f64) {
    let children: Vec<_> = (0..k)
        .map(|_| {
            ours_command(addr, depth, n, pin)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children.into_iter().fold((0, 0.0), |(requests, tps), c| {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let (r, t) = thruput(&String::from_utf8_lossy(&out.stdout));
        (requests + r, tps + t)
    })
}

/// One of our clients with `k` sessions (`--connections k`), `n` operations each: its
/// aggregate line (CIP requests in all, operations per second over the whole run).
fn run_ours_sessions(
    addr: &str,
    k: usize,
    depth: usize,
    n: usize,
    pin: Option<&str>,
) -> (u64, f64) {
    let mut cmd = ours_command(addr, depth, n, pin);
    cmd.args(["--connections", &k.to_string()]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    thruput(&String::from_utf8_lossy(&out.stdout))
}

/// `k` connections at `depth`, `n` operations each: `k` processes of ours, or one with
/// `--connections k` (`one_process`).
fn ours_many(addr: &str, k: usize, depth: usize, n: usize, base: f64, one_process: bool) -> Row {
    let (s0, c0) = cpu();
    let (requests, tps) = if one_process {
        run_ours_sessions(addr, k, depth, n, None)
    } else {
        run_ours(addr, k, depth, n, None)
    };
    let (s1, c1) = cpu();
    let ops = k * n;
    let starts = if one_process { 1.0 } else { k as f64 };
    Row {
        client: if one_process {
            "enip-client (ours), one process, --connections"
        } else {
            "enip-client (ours)"
        },
        connected: false,
        connections: k,
        depth,
        multiple: false,
        ops,
        requests: Some(requests),
        tps,
        client_us: (c1 - c0 - starts * base).max(0.0) / ops as f64 * 1e6,
        server_us: (s1 - s0) / ops as f64 * 1e6,
    }
}

/// The ideal client with `connections` connections, `reads` tag reads in all, in a
/// process of its own as our client is (this bench run again, see [`ideal_child`]):
/// threads of the serving process would switch to and from the server's more cheaply.
/// On CPU `pin` with `taskset` if given.
fn ideal_command(
    addr: SocketAddr,
    connections: usize,
    depth: usize,
    packet: Packet,
    reads: u64,
    pin: Option<&str>,
) -> Command {
    let (per, elements) = match packet {
        Packet::Read { elements } => (0, elements),
        Packet::Multiple { reads, elements } => (reads, elements),
    };
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match pin {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu]).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.env(
        IDEAL_CHILD,
        format!("{addr} {connections} {depth} {per} {elements} {reads}"),
    );
    cmd
}

/// Frames answered and wall seconds, as [`ideal_child`] prints them.
fn ideal_output(stdout: &str) -> (f64, f64) {
    let f: Vec<f64> = stdout
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (f[0], f[1])
}

fn ideal(addr: SocketAddr, connections: usize, depth: usize, packet: Packet, reads: u64) -> Row {
    let (out, _, ccpu, scpu, _) = measure(&mut ideal_command(
        addr,
        connections,
        depth,
        packet,
        reads,
        None,
    ));
    let (frames, wall) = ideal_output(&out);
    let ops = frames * packet.reads() as f64;
    Row {
        client: "ideal client (yardstick)",
        connected: false,
        connections,
        depth,
        multiple: matches!(packet, Packet::Multiple { .. }),
        ops: ops as usize,
        requests: Some(frames as u64),
        tps: ops / wall,
        client_us: ccpu / ops * 1e6,
        server_us: scpu / ops * 1e6,
    }
}

const IDEAL_CHILD: &str = "CLIENTS_IDEAL_CHILD";

/// In the child: `addr connections depth per-packet elements reads`; prints
/// `frames wall-seconds`.
fn ideal_child(spec: &str) {
    let w: Vec<&str> = spec.split_whitespace().collect();
    let addr: SocketAddr = w[0].parse().unwrap();
    let [connections, depth, per, elements, reads]: [u64; 5] =
        std::array::from_fn(|i| w[i + 1].parse().unwrap());
    let packet = if per == 0 {
        Packet::Read {
            elements: elements as u16,
        }
    } else {
        Packet::Multiple {
            reads: per as usize,
            elements: elements as u16,
        }
    };
    let stop = Stop::new(
        Instant::now() + Duration::from_secs(120),
        reads / packet.reads(),
    );
    let t = Instant::now();
    let out = run_clients(addr, packet, connections as usize, depth as usize, &stop);
    println!("{} {}", out.frames, t.elapsed().as_secs_f64());
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
        connections: 1,
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
        connections: 1,
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

/// One run of the pinned comparison: clients on one core, the simulator on another.
#[derive(Debug, Clone, Copy)]
struct Pinned {
    ops_per_sec: f64,
    /// The simulator's CPU time over the wall time: 1.0 is its core fully used.
    server_busy: f64,
}

/// Move the simulator's threads to `cpu` (with `taskset`, from util-linux).
fn pin_server(cpu: usize) -> bool {
    let mut pinned = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == SERVER_THREAD {
            let tid = task.file_name().to_string_lossy().into_owned();
            let ok = Command::new("taskset")
                .args(["-pc", &cpu.to_string(), &tid])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            pinned += usize::from(ok);
        }
    }
    pinned == 2
}

/// Who drives the pinned simulator.
#[derive(Debug, Clone, Copy)]
enum Driver {
    /// `k` processes of ours.
    Ours,
    /// One process of ours with `--connections k`.
    OursOneProcess,
    /// The ideal client: one process, `k` threads.
    Ideal,
}

/// `k` connections at depth 20 on CPU 0, `n` reads each.
fn pinned_run(addr: SocketAddr, k: usize, n: usize, driver: Driver) -> Pinned {
    let read = Packet::Read { elements: 11 };
    let a = addr.ip().to_string();
    let (s0, _) = cpu();
    let t = Instant::now();
    let ops_per_sec = match driver {
        Driver::Ideal => {
            let out = ideal_command(addr, k, 20, read, (k * n) as u64, Some("0"))
                .output()
                .unwrap();
            assert!(out.status.success());
            let (frames, wall) = ideal_output(&String::from_utf8_lossy(&out.stdout));
            frames / wall
        }
        Driver::Ours => run_ours(&a, k, 20, n, Some("0")).1,
        Driver::OursOneProcess => run_ours_sessions(&a, k, 20, n, Some("0")).1,
    };
    let wall = t.elapsed().as_secs_f64();
    let (s1, _) = cpu();
    Pinned {
        ops_per_sec,
        server_busy: (s1 - s0) / wall,
    }
}

/// The run with the median rate.
fn median(mut runs: Vec<Row>) -> Option<Row> {
    runs.sort_by(|a, b| a.tps.total_cmp(&b.tps));
    let mid = runs.len() / 2;
    runs.into_iter().nth(mid)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn main() {
    if let Ok(spec) = std::env::var(IDEAL_CHILD) {
        return ideal_child(&spec);
    }
    // `cargo bench` passes `--bench`; nothing else to parse.
    let addr = serve();
    let a = addr.ip().to_string();
    let load_before = loadavg();
    let mut rows = Vec::new();

    let n: usize = std::env::var("CLIENTS_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    // Connect-only runs: start-up and connection CPU, taken off each client's figures.
    let (_, _, base_ours, _, _) =
        measure(Command::new(env!("CARGO_BIN_EXE_enip-client")).args(["-a", &a]));
    let repeat: usize = std::env::var("CLIENTS_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    for (connected, depth, multiple) in [
        (false, 1, false),
        (false, 1, true),
        (false, 20, false),
        (false, 20, true),
        (true, 1, false),
        (true, 20, false),
        (true, 20, true),
    ] {
        let ops = if depth == 1 && !multiple { n / 10 } else { n };
        // Ours and the ideal client alternate, `repeat` times; the median of each is
        // shown, so a burst of load on the shared machine moves both or neither.
        let (mut mine, mut yardsticks) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            let row = ours(&a, connected, depth, multiple, ops, base_ours);
            if !connected {
                // The same reads the same way: one per frame, or as many per packet as
                // ours packed (ops / requests: 9 of these 11-DINT reads in 504 bytes).
                let packet = if multiple {
                    let per = (row.ops as f64 / row.requests.unwrap_or(1) as f64).round() as usize;
                    Packet::Multiple {
                        reads: per.max(1),
                        elements: 11,
                    }
                } else {
                    Packet::Read { elements: 11 }
                };
                yardsticks.push(ideal(addr, 1, depth, packet, ops as u64));
            }
            mine.push(row);
        }
        rows.extend(median(mine));
        rows.extend(median(yardsticks));
    }
    let (mut mine, mut one, mut yardsticks) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeat {
        mine.push(ours_many(&a, 4, 20, n / 4 * 2, base_ours, false));
        one.push(ours_many(&a, 4, 20, n / 4 * 2, base_ours, true));
        yardsticks.push(ideal(
            addr,
            4,
            20,
            Packet::Read { elements: 11 },
            (n / 4 * 2 * 4) as u64,
        ));
    }
    rows.extend(median(mine));
    rows.extend(median(one));
    rows.extend(median(yardsticks));
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
    // Last, as it moves the simulator: the simulator alone on one core, the clients on
    // another, so neither takes CPU from the other.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut pinned = Vec::new();
    if cpus >= 2 && pin_server(cpus - 1) {
        for k in [1, 4] {
            let (mut ours, mut one, mut best) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..repeat {
                ours.push(pinned_run(addr, k, n, Driver::Ours));
                if k > 1 {
                    one.push(pinned_run(addr, k, n, Driver::OursOneProcess));
                }
                best.push(pinned_run(addr, k, n, Driver::Ideal));
            }
            let mid = |mut v: Vec<Pinned>| {
                v.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
                v.get(v.len() / 2).copied()
            };
            if let (Some(o), Some(b)) = (mid(ours), mid(best)) {
                pinned.push((k, o, mid(one), b));
            }
        }
    } else {
        eprintln!("fewer than 2 CPUs, or taskset failed: the pinned comparison is left out");
    }
    let load_after = loadavg();

    println!(
        "Read `{OP}` against our simulator (in-process, 2 worker threads, optimised build); \
         our rows and the ideal client's: the median of {repeat} alternating runs.\n"
    );
    println!("| client | session | connections × depth | -m | operations | CIP requests | ops/s | of ideal | client CPU µs/op | server CPU µs/op |");
    println!("|---|---|---:|:---:|---:|---:|---:|---:|---:|---:|");
    let yardstick = |r: &Row| {
        rows.iter().find(|i| {
            i.client.starts_with("ideal")
                && !r.connected
                && (i.connections, i.depth, i.multiple) == (r.connections, r.depth, r.multiple)
        })
    };
    for r in &rows {
        let of_ideal = match yardstick(r) {
            Some(i) if r.client.starts_with("enip-client") => {
                format!("{:.0} %", 100.0 * r.tps / i.tps)
            }
            _ => "—".into(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {:.1} | {:.1} |",
            r.client,
            if r.connected {
                "connected"
            } else {
                "unconnected"
            },
            if r.client.starts_with("pycomm3") {
                "1 × 1 (no pipelining)".to_string()
            } else {
                format!("{} × {}", r.connections, r.depth)
            },
            if r.multiple { "yes" } else { "no" },
            r.ops,
            r.requests.map_or("—".into(), |n| n.to_string()),
            r.tps,
            of_ideal,
            r.client_us,
            r.server_us
        );
    }
    if !pinned.is_empty() {
        println!(
            "\nThe simulator alone on CPU {}, the clients on CPU 0; unconnected, depth 20, \
             {n} reads per connection; median of {repeat}:\n",
            cpus - 1
        );
        println!("Each cell: reads/s (the simulator's core busy; of the ideal client's rate).\n");
        println!("| connections | ideal client | ours, a process per connection | ours, one process (`--connections`) |");
        println!("|---|---:|---:|---:|");
        for (k, o, one, i) in &pinned {
            let cell = |p: &Pinned| {
                format!(
                    "{:.0} ({:.0} %; {:.0} %)",
                    p.ops_per_sec,
                    100.0 * p.server_busy,
                    100.0 * p.ops_per_sec / i.ops_per_sec
                )
            };
            println!(
                "| {k} | {:.0} ({:.0} %) | {} | {} |",
                i.ops_per_sec,
                100.0 * i.server_busy,
                cell(o),
                one.as_ref().map_or("— (the same)".into(), cell)
            );
        }
    }
    println!(
        "\n`cat /proc/loadavg` before: {load_before}; after: {load_after}; {} CPUs.",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("Depth = requests in flight (cpppo's -d N allows N+1: it ran with -d 0 and -d 19). pycomm3 -m: 20 reads per `read()` call, packed by pycomm3 into Multiple Service Packets on its 4000-byte connection.");
}
