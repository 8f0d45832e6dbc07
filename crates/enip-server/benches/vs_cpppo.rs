//! Our `enip-server` binary against cpppo 5.2.5's `enip_server`, side by side in one run,
//! printed as a markdown table. Not a timed test: nothing here passes or fails on speed.
//!
//! ```text
//! cargo bench -p enip-server --bench vs_cpppo
//! ```
//!
//! Cargo builds the `enip-server` binary with the bench profile (= release) first. Both
//! servers run as child processes serving `SCADA=DINT[1000]`, ours on 127.0.43.1:44818,
//! cpppo's on 127.0.43.2:44818. The load generator runs in this process: the ideal client
//! of `benches/support/load.rs` (a blocking socket per client, frames built once and
//! sent as cpppo's client sends them, `depth` in flight, every reply checked).
//!
//! Loads:
//! - Read Tag `SCADA[0]`, 11 elements (cpppo-parity's `SCADA[0-10]`) at depth 1 and 20;
//! - Multiple Service Packet of 20 Read Tags (`SCADA[0]`..`SCADA[19]`, one DINT each:
//!   20 × 11 DINTs would not fit the 504-byte unconnected reply) at depth 20;
//! - 4 clients × depth 20 of the single Read Tag.
//!
//! Ours runs each load for a fixed time, cpppo for a fixed request count (it manages a
//! few hundred a second). Also measured: RSS after startup (VmRSS) and peak (VmHWM after
//! all loads), server CPU per request (utime + stime from /proc/PID/stat), CPU and thread
//! wakeups per second while idle (what hundreds of idle simulators on one host cost), and
//! the time from spawn to the TCP port accepting (connect polled every 1 ms, median of
//! several).
//!
//! The load generator shares the machine's cores with the server; its own CPU per request
//! is printed too, so a client-bound result is visible.
//!
//! Environment:
//! - `ENIP_PYTHON`: Python with cpppo (default `<workspace>/.venv/bin/python`, which
//!   `.ci/run` creates); without it the cpppo column is skipped;
//! - `VS_CPPPO_SECS` (default 2): seconds per load for ours;
//! - `VS_CPPPO_COUNT` (default 500): requests per load for cpppo (MSP: a fifth of it);
//! - `VS_CPPPO_STARTS` (default 5): starts timed per server;
//! - `VS_CPPPO_REPEAT` (default 3): runs of each load for ours (median and range shown);
//! - `VS_CPPPO_ONLY` = `ours` | `cpppo`: measure one server;
//! - `VS_CPPPO_SERVER`: our binary to measure instead of the one cargo built, e.g. a
//!   static or `--profile dist` build.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/load.rs"]
mod load;
use load::{clock_ticks, run_clients, Packet, Stop};

const OURS: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 43, 1)),
    44818,
);
const CPPPO: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 43, 2)),
    44818,
);
const TAGS: &str = "SCADA=DINT[1000]";
/// Elements per single Read Tag (cpppo-parity reads `SCADA[0-10]`).
const ELEMENTS: u16 = 11;
/// Read Tags per Multiple Service Packet.
const MSP_READS: usize = 20;
const READ: Packet = Packet::Read { elements: ELEMENTS };
/// One DINT each: 20 × 11 DINTs would not fit the 504-byte unconnected reply.
const MSP: Packet = Packet::Multiple {
    reads: MSP_READS,
    elements: 1,
};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// The servers

/// How to start one server.
struct Spec {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    addr: SocketAddr,
}

/// A running server, killed when dropped.
struct Server {
    child: Child,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawn the server and poll its port every millisecond; return it and the time from
/// spawn to the first accepted connection.
fn start(spec: &Spec) -> (Server, Duration) {
    let t0 = Instant::now();
    let child = Command::new(&spec.program)
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", spec.program.display()));
    let mut server = Server { child };
    loop {
        if TcpStream::connect_timeout(&spec.addr, Duration::from_millis(100)).is_ok() {
            return (server, t0.elapsed());
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("{} exited before serving: {status}", spec.name);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{} did not open {} in 30 s",
            spec.name,
            spec.addr
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A `Vm*` line of /proc/PID/status, in KiB.
fn vm_kib(pid: &str, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// utime + stime of a whole process (all its threads, dead ones included), in seconds.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name start at field 3; utime is 14.
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap())
        .collect();
    (f[0] + f[1]) as f64 / clock_ticks()
}

/// CPU nanoseconds and context switches summed over the live threads of a process: finer
/// than /proc/PID/stat, for the few microseconds an idle server spends.
fn live_threads(pid: &str) -> (u64, u64) {
    let mut ns = 0;
    let mut switches = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let dir = task.path();
        let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        switches += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    (ns, switches)
}

// ---------------------------------------------------------------------------------------
// Measurements

#[derive(Debug, Clone, Copy)]
struct Load {
    label: &'static str,
    clients: usize,
    depth: usize,
    packet: Packet,
}

const LOADS: [Load; 4] = [
    Load {
        label: "Read Tag SCADA[0-10], 1 client, depth 1",
        clients: 1,
        depth: 1,
        packet: READ,
    },
    Load {
        label: "Read Tag SCADA[0-10], 1 client, depth 20",
        clients: 1,
        depth: 20,
        packet: READ,
    },
    Load {
        label: "MSP of 20 Read Tags, 1 client, depth 20",
        clients: 1,
        depth: 20,
        packet: MSP,
    },
    Load {
        label: "Read Tag SCADA[0-10], 4 clients × depth 20",
        clients: 4,
        depth: 20,
        packet: READ,
    },
];

/// How long one load runs: for a time, or for a number of frames.
#[derive(Debug, Clone, Copy)]
enum Budget {
    Time(Duration),
    Count(u64),
}

#[derive(Debug, Default, Clone, Copy)]
struct Run {
    packets: u64,
    reads: u64,
    secs: f64,
    server_cpu: f64,
    client_cpu: f64,
}

impl Run {
    fn packets_per_sec(&self) -> f64 {
        self.packets as f64 / self.secs
    }
    fn reads_per_sec(&self) -> f64 {
        self.reads as f64 / self.secs
    }
    fn server_us_per_read(&self) -> f64 {
        self.server_cpu * 1e6 / self.reads as f64
    }
    fn client_us_per_read(&self) -> f64 {
        self.client_cpu * 1e6 / self.reads as f64
    }
}

#[derive(Debug, Default)]
struct Measured {
    start: Duration,
    idle_kib: u64,
    /// CPU µs per second and thread wakeups per second while no client is connected.
    idle_cpu_us: f64,
    idle_wakeups: f64,
    peak_kib: u64,
    /// Per load: the run with the median rate, and the lowest and highest rates.
    runs: Vec<Run>,
    range: Vec<(f64, f64)>,
}

fn run_load(addr: SocketAddr, pid: &str, load: &Load, budget: Budget) -> Run {
    let (deadline, budget) = match budget {
        Budget::Time(d) => (Instant::now() + d, u64::MAX),
        Budget::Count(n) => {
            let n = if load.packet == MSP {
                (n / 5).max(1)
            } else {
                n
            };
            (Instant::now() + Duration::from_secs(300), n)
        }
    };
    let stop = Stop::new(deadline, budget);
    let (server0, client0) = (cpu_secs(pid), cpu_secs("self"));
    let t0 = Instant::now();
    let packets = run_clients(addr, load.packet, load.clients, load.depth, &stop).frames;
    let secs = t0.elapsed().as_secs_f64();
    Run {
        packets,
        reads: packets * load.packet.reads(),
        secs,
        server_cpu: cpu_secs(pid) - server0,
        client_cpu: cpu_secs("self") - client0,
    }
}

fn measure(spec: &Spec, budget: Budget, starts: u64, reps: u64) -> Measured {
    eprintln!("{}: timing {starts} starts", spec.name);
    let mut times: Vec<Duration> = (0..starts)
        .map(|_| {
            let (server, t) = start(spec);
            drop(server);
            t
        })
        .collect();
    times.sort();
    let (server, _) = start(spec);
    let pid = server.pid().to_string();
    // Let the runtime settle: the figure is what an idle simulator holds.
    std::thread::sleep(Duration::from_millis(500));
    let idle_kib = vm_kib(&pid, "VmRSS");
    let idle = Duration::from_secs(2);
    let (ns0, sw0) = live_threads(&pid);
    std::thread::sleep(idle);
    let (ns1, sw1) = live_threads(&pid);
    let idle_cpu_us = (ns1 - ns0) as f64 / 1e3 / idle.as_secs_f64();
    let idle_wakeups = (sw1 - sw0) as f64 / idle.as_secs_f64();
    // Repeat the loads in turn, so that drift in the machine's load hits them alike.
    let mut all: Vec<Vec<Run>> = vec![Vec::new(); LOADS.len()];
    for rep in 0..reps {
        for (i, load) in LOADS.iter().enumerate() {
            eprintln!("{}: {} (run {} of {reps})", spec.name, load.label, rep + 1);
            all[i].push(run_load(spec.addr, &pid, load, budget));
        }
    }
    let mut runs = Vec::new();
    let mut range = Vec::new();
    for mut r in all {
        r.sort_by(|a, b| a.packets_per_sec().total_cmp(&b.packets_per_sec()));
        range.push((r[0].packets_per_sec(), r[r.len() - 1].packets_per_sec()));
        runs.push(r[r.len() / 2]);
    }
    Measured {
        start: times[times.len() / 2],
        idle_kib,
        idle_cpu_us,
        idle_wakeups,
        peak_kib: vm_kib(&pid, "VmHWM"),
        runs,
        range,
    }
}

// ---------------------------------------------------------------------------------------
// The report

/// `1234567.8` as `1,234,568`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One table row: how ours and cpppo's compare, `higher` when more is better.
struct Row {
    metric: String,
    ours: Option<f64>,
    cpppo: Option<f64>,
    /// Lowest and highest of repeated runs, shown after the median.
    ours_range: Option<(f64, f64)>,
    higher: bool,
    show: fn(f64) -> String,
}

impl Row {
    fn print(&self) {
        let cell = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), self.show);
        let ours = match (self.ours, self.ours_range) {
            (Some(v), Some((lo, hi))) if lo < hi => {
                format!(
                    "{} ({}–{})",
                    (self.show)(v),
                    (self.show)(lo),
                    (self.show)(hi)
                )
            }
            _ => cell(self.ours),
        };
        let ratio = match (self.ours, self.cpppo) {
            (Some(o), Some(c)) if o > 0.0 && c > 0.0 => {
                let r = if self.higher { o / c } else { c / o };
                format!("{r:.1}×")
            }
            _ => "–".to_owned(),
        };
        println!(
            "| {} | {} | {} | {} |",
            self.metric,
            ours,
            cell(self.cpppo),
            ratio
        );
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn python() -> Result<PathBuf, String> {
    let p = std::env::var_os("ENIP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    let ok = Command::new(&p)
        .args(["-c", "import cpppo"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(p)
    } else {
        Err(format!(
            "no Python with cpppo at {} (run .ci/run, or set ENIP_PYTHON)",
            p.display()
        ))
    }
}

fn main() {
    let secs = env_num("VS_CPPPO_SECS", 2);
    let reps = env_num("VS_CPPPO_REPEAT", 3).max(1);
    let count = env_num("VS_CPPPO_COUNT", 500);
    let starts = env_num("VS_CPPPO_STARTS", 5).max(1);
    let only = std::env::var("VS_CPPPO_ONLY").unwrap_or_default();
    let before = loadavg();

    let ours_spec = Spec {
        name: "enip-server",
        program: std::env::var_os("VS_CPPPO_SERVER").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_enip-server")),
            PathBuf::from,
        ),
        args: vec!["-a".into(), OURS.to_string(), TAGS.into()],
        addr: OURS,
    };
    let ours = (only != "cpppo").then(|| {
        measure(
            &ours_spec,
            Budget::Time(Duration::from_secs(secs)),
            starts,
            reps,
        )
    });

    let cpppo = if only == "ours" {
        None
    } else {
        match python() {
            Ok(py) => {
                let spec = Spec {
                    name: "cpppo",
                    program: py,
                    args: vec![
                        "-m".into(),
                        "cpppo.server.enip".into(),
                        "-a".into(),
                        CPPPO.to_string(),
                        TAGS.into(),
                    ],
                    addr: CPPPO,
                };
                Some(measure(&spec, Budget::Count(count), starts, 1))
            }
            Err(why) => {
                eprintln!("cpppo: SKIPPED: {why}");
                None
            }
        }
    };
    let after = loadavg();

    let rate = |v: f64| thousands(v);
    let us = |v: f64| format!("{v:.1} µs");
    let mib = |v: f64| format!("{:.2} MiB", v / 1024.0);
    let ms = |v: f64| format!("{v:.1} ms");
    let mut rows = Vec::new();
    let run = |m: &Option<Measured>, i: usize| m.as_ref().map(|m| m.runs[i]);
    for (i, load) in LOADS.iter().enumerate() {
        let (o, c) = (run(&ours, i), run(&cpppo, i));
        let range = ours.as_ref().map(|m| m.range[i]);
        let unit = if load.packet == MSP {
            "packets/s"
        } else {
            "requests/s"
        };
        rows.push(Row {
            metric: format!("{}: {unit}", load.label),
            ours: o.map(|r| r.packets_per_sec()),
            cpppo: c.map(|r| r.packets_per_sec()),
            ours_range: range,
            higher: true,
            show: rate,
        });
        if load.packet == MSP {
            rows.push(Row {
                metric: format!("{}: tag reads/s", load.label),
                ours: o.map(|r| r.reads_per_sec()),
                cpppo: c.map(|r| r.reads_per_sec()),
                ours_range: range.map(|(lo, hi)| {
                    let n = load.packet.reads() as f64;
                    (lo * n, hi * n)
                }),
                higher: true,
                show: rate,
            });
        }
        rows.push(Row {
            metric: format!("{}: server CPU per tag read", load.label),
            ours: o.map(|r| r.server_us_per_read()),
            cpppo: c.map(|r| r.server_us_per_read()),
            ours_range: None,
            higher: false,
            show: us,
        });
    }
    let field = |m: &Option<Measured>, f: fn(&Measured) -> f64| m.as_ref().map(f);
    rows.push(Row {
        metric: "RSS idle after startup (VmRSS)".into(),
        ours: field(&ours, |m| m.idle_kib as f64),
        cpppo: field(&cpppo, |m| m.idle_kib as f64),
        ours_range: None,
        higher: false,
        show: mib,
    });
    rows.push(Row {
        metric: "RSS peak after all loads (VmHWM)".into(),
        ours: field(&ours, |m| m.peak_kib as f64),
        cpppo: field(&cpppo, |m| m.peak_kib as f64),
        ours_range: None,
        higher: false,
        show: mib,
    });
    rows.push(Row {
        metric: "idle: CPU per second, no client connected".into(),
        ours: field(&ours, |m| m.idle_cpu_us),
        cpppo: field(&cpppo, |m| m.idle_cpu_us),
        ours_range: None,
        higher: false,
        show: us,
    });
    rows.push(Row {
        metric: "idle: thread wakeups per second".into(),
        ours: field(&ours, |m| m.idle_wakeups),
        cpppo: field(&cpppo, |m| m.idle_wakeups),
        ours_range: None,
        higher: false,
        show: rate,
    });
    rows.push(Row {
        metric: format!("spawn to port accepting, median of {starts}"),
        ours: field(&ours, |m| m.start.as_secs_f64() * 1e3),
        cpppo: field(&cpppo, |m| m.start.as_secs_f64() * 1e3),
        ours_range: None,
        higher: false,
        show: ms,
    });

    println!();
    println!(
        "enip-server vs cpppo 5.2.5, {} CPUs; ours {secs} s per load, cpppo {count} requests per load ({} MSPs)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        (count / 5).max(1)
    );
    println!("/proc/loadavg before: {before}; after: {after}");
    println!();
    println!("| metric | enip-server | cpppo | ratio |");
    println!("|---|---:|---:|---:|");
    for r in &rows {
        r.print();
    }
    println!();
    println!("Load generator (this process) CPU per tag read, for judging client-bound runs:");
    println!();
    println!("| load | against enip-server | against cpppo |");
    println!("|---|---:|---:|");
    for (i, load) in LOADS.iter().enumerate() {
        let cell = |m: &Option<Measured>| {
            m.as_ref()
                .map_or_else(|| "–".to_owned(), |m| us(m.runs[i].client_us_per_read()))
        };
        println!("| {} | {} | {} |", load.label, cell(&ours), cell(&cpppo));
    }
    if let Some(o) = &ours {
        println!();
        let check = |ok: bool| if ok { "met" } else { "MISSED" };
        let d20 = o.runs[1].packets_per_sec();
        println!(
            "Targets: ≥100,000 Read Tag req/s at depth 20: {} ({}); idle RSS ≤4 MiB: {} ({}); port open ≤10 ms: {} ({})",
            check(d20 >= 100_000.0),
            thousands(d20),
            check(o.idle_kib <= 4096),
            mib(o.idle_kib as f64),
            check(o.start <= Duration::from_millis(10)),
            ms(o.start.as_secs_f64() * 1e3),
        );
    }
}
