//! Soak: sustained load on many TCP connections for minutes, with zero failed requests
//! and flat memory. Prints a table every few seconds and writes a PNG of latency p50/p99
//! and server RSS over time. Not a timed test: it exits non-zero only if a request failed
//! or a read returned a value other than the one written.
//!
//! ```text
//! cargo build --release -p enip-server          # the child server of (a)
//! cargo bench -p plcfleet --bench soak          # (a) then (b), 600 s each
//! SOAK_SECS=30 SOAK_ONLY=single cargo bench -p plcfleet --bench soak
//! ```
//!
//! - (a) `single`: one `enip-server` child process (the release binary next to this
//!   bench's, or `SOAK_SERVER`) serving `SCADA=DINT[1000]` on 127.0.81.1, and
//!   `SOAK_CONNS` (1000) client connections to it;
//! - (b) `fleet`: 100 local-backend simulators (`SCADA=DINT[16]`, 127.91.0.10…) in a child
//!   process (this bench re-executed with `SOAK_ROLE=fleet`, so its RSS is the fleet's
//!   alone), 10 client connections to each.
//!
//! Each connection is an `enip-client` session owning one element (`SCADA[i]`): every
//! `SOAK_PERIOD_MS` (100) it writes a new value and reads it back, checking it; each
//! request's latency is recorded. Every `SOAK_SAMPLE_SECS` (5) a row: requests, failures,
//! p50/p99/max latency of that interval, the server's RSS and open fds. The PNG goes to
//! `SOAK_OUT` (default `benches/soak/` of this crate), `soak-single.png` / `soak-fleet.png`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enip_client::{Client, Options, TagPath, WireType};
use enip_proto::DataType;
use font8x8::UnicodeFonts;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn proc_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// 1000 client sockets in this process, 1000 in the server: make sure the soft limit
/// allows it (no `unsafe` here, so ask util-linux's `prlimit`).
fn raise_nofile(pid: u32, want: u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if soft < want {
        let ok = Command::new("prlimit")
            .args([&format!("--pid={pid}"), &format!("--nofile={want}:{want}")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "RLIMIT_NOFILE is {soft}, need {want}: raise it (ulimit -n {want})"
        );
    }
}

const FLEET_SIMS: usize = 100;
const FLEET_CONNS_EACH: usize = 10;

fn fleet_ip(i: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(127, 91, 0, 10 + i as u8)
}

/// The child of (b): run the fleet until stdin closes.
fn fleet_child() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let yaml = format!(
        "kind: Fleet\nmetadata: {{name: soak}}\nspec:\n  backend: local\n  network: {{subnet: 127.91.0.0/16}}\n  defaults:\n    tags: {{SCADA: \"DINT[16]\"}}\n    identity: {{serial: auto}}\n  simulators:\n    - name: s-{{index:03}}\n      replicas: {FLEET_SIMS}\n      ipStart: {}\n",
        fleet_ip(0)
    );
    let fleet = plcfleet::manifest::parse(Path::new("soak.yaml"), &yaml).unwrap();
    let backend = plcfleet::local::LocalBackend::new();
    let opts = plcfleet::apply::ApplyOptions {
        parallel: 64,
        timeout: Duration::from_secs(60),
        ..Default::default()
    };
    rt.block_on(async {
        let r = plcfleet::apply::apply(&backend, &fleet, &opts)
            .await
            .unwrap();
        assert_eq!(r.healthy, FLEET_SIMS, "{:?}", r.failures);
        println!("ready");
        std::io::stdout().flush().unwrap();
        // Until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            while std::io::stdin().read_line(&mut s).is_ok_and(|n| n > 0) {}
        })
        .await
        .unwrap();
        backend.shutdown();
    });
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    failures: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
    first_errors: Mutex<Vec<String>>,
}

impl Stats {
    fn fail(&self, what: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut e = self.first_errors.lock().unwrap();
        if e.len() < 10 {
            e.push(what);
        }
    }
}

async fn worker(
    client: Client,
    element: u32,
    period: Duration,
    phase: Duration,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    let path = TagPath::parse("SCADA").unwrap().element(element);
    let dint = WireType::Atomic(DataType::Dint);
    tokio::time::sleep(phase).await;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut value: i32 = element as i32 * 1_000_000;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        value = value.wrapping_add(1);
        let t = Instant::now();
        let w = client.write_tag(&path, dint, 1, &value.to_le_bytes()).await;
        let lw = t.elapsed();
        let t = Instant::now();
        let r = client.read_tag(&path, 1).await;
        let lr = t.elapsed();
        stats.requests.fetch_add(2, Ordering::Relaxed);
        {
            let mut l = stats.latencies_us.lock().unwrap();
            l.push(lw.as_micros().min(u32::MAX as u128) as u32);
            l.push(lr.as_micros().min(u32::MAX as u128) as u32);
        }
        if let Err(e) = w {
            stats.fail(format!("write SCADA[{element}]: {e}"));
        }
        match r {
            Err(e) => stats.fail(format!("read SCADA[{element}]: {e}")),
            Ok(r) if r.data != value.to_le_bytes() => stats.fail(format!(
                "read SCADA[{element}]: {:?}, wrote {value}",
                r.data
            )),
            Ok(_) => {}
        }
    }
    let _ = client.close().await;
}

struct Sample {
    t: f64,
    requests: u64,
    failures: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    rss_mib: f64,
    fds: usize,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn run(scenario: &str, rt: &tokio::runtime::Runtime) -> bool {
    let secs = env_u64("SOAK_SECS", 600);
    let sample = Duration::from_secs(env_u64("SOAK_SAMPLE_SECS", 5));
    let period = Duration::from_millis(env_u64("SOAK_PERIOD_MS", 100));
    let (mut child, targets, what): (Child, Vec<SocketAddr>, String) = if scenario == "single" {
        let conns = env_u64("SOAK_CONNS", 1000) as usize;
        let bin = std::env::var_os("SOAK_SERVER").map_or_else(
            || {
                std::env::current_exe()
                    .unwrap()
                    .parent()
                    .unwrap()
                    .parent()
                    .unwrap()
                    .join("enip-server")
            },
            PathBuf::from,
        );
        assert!(
            bin.exists(),
            "{} missing: cargo build --release -p enip-server (or set SOAK_SERVER)",
            bin.display()
        );
        let addr: SocketAddr = "127.0.81.1:44818".parse().unwrap();
        let child = Command::new(&bin)
            .args([
                "-a",
                &addr.to_string(),
                "--max-connections",
                &(conns + 100).to_string(),
                "SCADA=DINT[1000]",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        raise_nofile(child.id(), (conns as u64 + 200).max(4096));
        let t = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        (
            child,
            vec![addr; conns],
            format!(
                "(a) {conns} connections to one enip-server ({})",
                bin.display()
            ),
        )
    } else {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("SOAK_ROLE", "fleet")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        raise_nofile(child.id(), 4096);
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "fleet child did not start");
        let targets = (0..FLEET_SIMS)
            .flat_map(|s| {
                std::iter::repeat_n(SocketAddr::from((fleet_ip(s), 44818)), FLEET_CONNS_EACH)
            })
            .collect();
        (
            child,
            targets,
            format!("(b) {FLEET_SIMS} local-backend simulators x {FLEET_CONNS_EACH} connections"),
        )
    };
    let pid = child.id();
    let fds_idle = fds(pid);
    println!("\n## soak {scenario}: {what}, {secs} s, a write and a read-back every {period:?} per connection\n");

    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let n = targets.len();
    let clients: Vec<Client> = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(64));
        let mut set = tokio::task::JoinSet::new();
        for (i, a) in targets.iter().enumerate() {
            let (a, sem) = (*a, sem.clone());
            set.spawn(async move {
                let _p = sem.acquire_owned().await.unwrap();
                (i, Client::connect(a, Options::default()).await)
            });
        }
        let mut v: Vec<Option<Client>> = (0..n).map(|_| None).collect();
        while let Some(r) = set.join_next().await {
            let (i, c) = r.unwrap();
            v[i] = Some(c.unwrap_or_else(|e| panic!("connect {}: {e}", targets[i])));
        }
        v.into_iter().map(Option::unwrap).collect()
    });
    let fds_connected = fds(pid);
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let element = if scenario == "single" {
                i
            } else {
                i % FLEET_CONNS_EACH
            } as u32;
            let phase = period.mul_f64(i as f64 / n as f64);
            rt.spawn(worker(
                c,
                element,
                period,
                phase,
                stats.clone(),
                stop.clone(),
            ))
        })
        .collect();

    println!(
        "| t (s) | requests | failures | p50 ms | p99 ms | max ms | server RSS MiB | server fds |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut last_req = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(sample);
        let mut l = std::mem::take(&mut *stats.latencies_us.lock().unwrap());
        l.sort_unstable();
        let req = stats.requests.load(Ordering::Relaxed);
        let s = Sample {
            t: start.elapsed().as_secs_f64(),
            requests: req - last_req,
            failures: stats.failures.load(Ordering::Relaxed),
            p50_ms: percentile(&l, 0.5),
            p99_ms: percentile(&l, 0.99),
            max_ms: percentile(&l, 1.0),
            rss_mib: proc_kib(pid, "VmRSS:") as f64 / 1024.0,
            fds: fds(pid),
        };
        last_req = req;
        println!(
            "| {:.0} | {} | {} | {:.2} | {:.2} | {:.1} | {:.2} | {} |",
            s.t, s.requests, s.failures, s.p50_ms, s.p99_ms, s.max_ms, s.rss_mib, s.fds
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "server exited during the soak"
        );
        samples.push(s);
    }
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    // The server closes its side once it sees our FINs.
    let t = Instant::now();
    while fds(pid) > fds_idle && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let fds_after = fds(pid);
    let hwm = proc_kib(pid, "VmHWM:") as f64 / 1024.0;
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();

    let total = stats.requests.load(Ordering::Relaxed);
    let failures = stats.failures.load(Ordering::Relaxed);
    let first = samples.first().unwrap();
    let last = samples.last().unwrap();
    let max_rss = samples.iter().map(|s| s.rss_mib).fold(0.0, f64::max);
    println!("\n| soak {scenario} | |\n|---|---|");
    println!("| connections | {n} |");
    println!("| duration | {:.0} s |", last.t);
    println!(
        "| requests (writes + read-backs) | {total} ({:.0}/s) |",
        total as f64 / last.t
    );
    println!("| failed or wrong | {failures} |");
    println!(
        "| p50 / p99 first sample | {:.2} / {:.2} ms |",
        first.p50_ms, first.p99_ms
    );
    println!(
        "| p50 / p99 last sample | {:.2} / {:.2} ms |",
        last.p50_ms, last.p99_ms
    );
    println!(
        "| server RSS first / last / max sampled / VmHWM | {:.2} / {:.2} / {:.2} / {hwm:.2} MiB |",
        first.rss_mib, last.rss_mib, max_rss
    );
    println!("| server fds idle / connected / after disconnect | {fds_idle} / {fds_connected} / {fds_after} |");
    for e in stats.first_errors.lock().unwrap().iter() {
        println!("error: {e}");
    }
    let out = std::env::var_os("SOAK_OUT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/soak"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&out).unwrap();
    let png = out.join(format!("soak-{scenario}.png"));
    plot(
        &png,
        &samples,
        &format!("soak {scenario}: {n} connections, {total} requests, {failures} failed"),
    );
    println!("plot: {}", png.display());
    failures == 0 && fds_after <= fds_idle
}

// ---- a small line chart: two panels (latency, RSS), axes with labelled ticks ----

const W: usize = 960;
const H: usize = 640;

struct Canvas(Vec<u8>);

impl Canvas {
    fn px(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if (0..W as i64).contains(&x) && (0..H as i64).contains(&y) {
            let i = (y as usize * W + x as usize) * 3;
            self.0[i..i + 3].copy_from_slice(&c);
        }
    }
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: [u8; 3], thick: i64) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as i64).max(1);
        for s in 0..=steps {
            let f = s as f64 / steps as f64;
            let (x, y) = (x0 + (x1 - x0) * f, y0 + (y1 - y0) * f);
            for d in 0..thick {
                self.px(x.round() as i64, y.round() as i64 + d, c);
            }
        }
    }
    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3]) {
        for (k, ch) in s.chars().enumerate() {
            let g = font8x8::BASIC_FONTS.get(ch).unwrap_or([0; 8]);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 1 {
                        self.px(x + k as i64 * 8 + col, y + row as i64, c);
                    }
                }
            }
        }
    }
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let e = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * e)
        .find(|m| *m >= v)
        .unwrap_or(10.0 * e)
}

#[allow(clippy::type_complexity)]
fn panel(
    cv: &mut Canvas,
    top: f64,
    height: f64,
    t_max: f64,
    title: &str,
    series: &[(&str, [u8; 3], Vec<(f64, f64)>)],
) {
    let (left, right) = (80.0, W as f64 - 20.0);
    let bottom = top + height;
    let y_max = nice_max(
        series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.1))
            .fold(0.0, f64::max)
            * 1.1,
    );
    let grey = [200, 200, 200];
    let black = [0, 0, 0];
    for k in 0..=5 {
        let y = bottom - height * k as f64 / 5.0;
        cv.line((left, y), (right, y), grey, 1);
        cv.text(
            8,
            y as i64 - 4,
            &format!("{:>8.2}", y_max * k as f64 / 5.0),
            black,
        );
        let x = left + (right - left) * k as f64 / 5.0;
        cv.line((x, top), (x, bottom), grey, 1);
        cv.text(
            x as i64 - 16,
            bottom as i64 + 6,
            &format!("{:.0}s", t_max * k as f64 / 5.0),
            black,
        );
    }
    cv.line((left, top), (left, bottom), black, 1);
    cv.line((left, bottom), (right, bottom), black, 1);
    cv.text(left as i64, top as i64 - 14, title, black);
    let mut lx = right as i64 - 260;
    for (name, color, pts) in series {
        cv.text(lx, top as i64 - 14, name, *color);
        lx += 8 * (name.len() as i64 + 2);
        let map = |(t, v): (f64, f64)| {
            (
                left + (right - left) * t / t_max,
                bottom - height * v / y_max,
            )
        };
        for w in pts.windows(2) {
            cv.line(map(w[0]), map(w[1]), *color, 2);
        }
    }
}

fn plot(path: &Path, samples: &[Sample], title: &str) {
    let mut cv = Canvas(vec![255; W * H * 3]);
    let t_max = samples.last().map_or(1.0, |s| s.t).max(1.0);
    cv.text(80, 8, title, [0, 0, 0]);
    let pts = |f: &dyn Fn(&Sample) -> f64| samples.iter().map(|s| (s.t, f(s))).collect();
    panel(
        &mut cv,
        50.0,
        240.0,
        t_max,
        "request latency (ms)",
        &[
            ("p50", [30, 90, 200], pts(&|s| s.p50_ms)),
            ("p99", [210, 40, 40], pts(&|s| s.p99_ms)),
        ],
    );
    panel(
        &mut cv,
        360.0,
        240.0,
        t_max,
        "server RSS (MiB)",
        &[("RSS", [20, 140, 60], pts(&|s| s.rss_mib))],
    );
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), W as u32, H as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(&cv.0).unwrap();
}

fn main() {
    if std::env::var("SOAK_ROLE").as_deref() == Ok("fleet") {
        fleet_child();
        return;
    }
    raise_nofile(std::process::id(), 4096);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("SOAK_ONLY").ok();
    let mut ok = true;
    for scenario in ["single", "fleet"] {
        if only.as_deref().is_none_or(|o| o == scenario) {
            ok &= run(scenario, &rt);
        }
    }
    if !ok {
        std::process::exit(1);
    }
}
