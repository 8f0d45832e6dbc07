//! `enip-client`: cpppo's EtherNet/IP client command line, pipelined.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

/// `println!` that does not panic when standard output is closed (`| head -1`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!`, likewise.
macro_rules! esay {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// mimalloc: glibc malloc/free were a fifth of the client's CPU per request.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod latency;
mod output;

use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser as _;
use enip_client::ops::{self, Operation};
use enip_client::{discover, report, Client, ListReply, OpValue};
use enip_proto::types::DataType;
use enip_proto::Command;
use futures_util::future::join_all;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    if let Err(e) = init_logging(&args) {
        esay!("enip-client: {e:#}");
        return ExitCode::FAILURE;
    }
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            esay!("enip-client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(args: &cli::Args) -> anyhow::Result<()> {
    let level = match args.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match &args.log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening log file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        None => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}

/// The operations: from the command line, with `-` replaced by standard input's lines,
/// to be repeated `-r` times. A bad operation stops everything before anything is sent.
fn operations(args: &cli::Args) -> anyhow::Result<Vec<Arc<Operation>>> {
    let mut texts: Vec<String> = Vec::new();
    for a in &args.operations {
        if a == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.context("reading operations from standard input")?;
                let t = line.trim();
                if !t.is_empty() && !t.starts_with('#') {
                    texts.push(t.to_string());
                }
            }
        } else {
            texts.push(a.clone());
        }
    }
    let mut parsed = Vec::with_capacity(texts.len());
    let mut bad = Vec::new();
    for t in &texts {
        match ops::parse(t, DataType::Int) {
            Ok(op) => parsed.push(Arc::new(op)),
            Err(e) => bad.push(e.pointer(t)),
        }
    }
    if !bad.is_empty() {
        anyhow::bail!("bad operation(s):\n{}", bad.join("\n"));
    }
    Ok(parsed)
}

fn run(args: &cli::Args) -> anyhow::Result<bool> {
    let settings = args.settings()?;
    let ops = operations(args)?;
    if args.udp && (!ops.is_empty() || args.list_tags || args.connected) {
        anyhow::bail!("-u sends List* commands only: tag operations need a TCP session");
    }
    if settings.targets.len().saturating_mul(settings.connections) > 1 {
        return run_sessions(args, settings, ops);
    }
    let Some((host, port)) = settings.targets.first().cloned() else {
        anyhow::bail!("no --address");
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let addr = cli::resolve(&host, port, settings.options.timeout).await?;
        let mut ok = true;
        let lists: Vec<(Command, &str)> = [
            (args.list_services, Command::ListServices, "List Services"),
            (args.list_identity, Command::ListIdentity, "List Identity"),
            (
                args.list_interfaces,
                Command::ListInterfaces,
                "List Interfaces",
            ),
        ]
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, c, d)| (c, d))
        .collect();
        let timeout = settings.options.timeout;
        if args.udp {
            for (cmd, desc) in lists {
                match discover::list_udp(cmd, addr, args.broadcast, timeout).await {
                    Ok(replies) => {
                        ok &= !replies.is_empty();
                        print_lists(args, desc, &replies);
                        if replies.is_empty() {
                            tracing::warn!("No {desc} response within {timeout:?}");
                        }
                    }
                    Err(e) => {
                        ok = false;
                        tracing::warn!("{desc}: {e}");
                    }
                }
            }
            return Ok(ok);
        }
        let client = Client::connect(addr, settings.options.clone())
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        for (cmd, desc) in lists {
            let r = match cmd {
                Command::ListServices => client.list_services().await,
                Command::ListIdentity => client.list_identity().await,
                _ => client.list_interfaces().await,
            };
            match r {
                Ok(reply) => print_lists(args, desc, &[reply]),
                Err(e) => {
                    ok = false;
                    tracing::warn!("{desc}: {e}");
                }
            }
        }
        if args.list_tags {
            match client.tag_list().await {
                Ok(list) => output::print_tag_list(&list, args.json),
                Err(e) => {
                    ok = false;
                    tracing::warn!("tag list: {e}");
                }
            }
        }
        if !ops.is_empty() {
            let show = Show {
                json: args.json,
                print: settings.print,
                label: None,
            };
            let (exec, repeat) = (settings.exec, args.repeat);
            let session = client.clone();
            // As a task of the runtime, not the future `block_on` drives: waking that one
            // costs a system call each time (the runtime's unpark), once per operation.
            let run = tokio::spawn(async move {
                run_operations(&show, exec, &session, &ops, repeat, timeout).await
            });
            match run.await {
                Ok(done) => {
                    ok &= done.failures == 0;
                    if args.thruput {
                        print_thruput(
                            &done.stats,
                            done.elapsed,
                            &done.latencies,
                            &settings,
                            args.json,
                            None,
                        );
                    }
                }
                Err(e) => {
                    ok = false;
                    tracing::warn!("the operations' task ended: {e}");
                }
            }
        }
        if let Err(e) = client.close().await {
            tracing::debug!("closing: {e}");
        }
        Ok(ok)
    })
}

fn print_lists(args: &cli::Args, desc: &str, replies: &[ListReply]) {
    let mut out = std::io::stdout().lock();
    for (n, r) in replies.iter().enumerate() {
        let line = if args.json {
            output::list_json(desc, r).to_string()
        } else {
            format!(
                "{desc} {n:2} from ('{}', {}): {}",
                r.peer.ip(),
                r.peer.port(),
                r.cpppo_format()
            )
        };
        let _ = writeln!(out, "{line}");
    }
}

/// What to print for operations.
#[derive(Clone)]
struct Show {
    json: bool,
    print: bool,
    /// Which session a line comes from, when there are several.
    label: Option<Arc<str>>,
}

/// One session's run of the operations.
struct Done {
    failures: usize,
    stats: enip_client::Stats,
    latencies: latency::Latencies,
    /// Seconds from its first request to its last reply.
    elapsed: f64,
}

async fn run_operations(
    show: &Show,
    exec: enip_client::Exec,
    client: &Client,
    ops: &[Arc<Operation>],
    repeat: usize,
    timeout: Duration,
) -> Done {
    // `-r N` repeats the list lazily: a million operations need not exist at once. Once
    // the connection is lost, or the server has answered nothing for a whole timeout
    // (cpppo's client stops at its first missing reply), no further repetition starts:
    // every operation of those begun is reported, and the rest are counted, not failed
    // one by one.
    let (n, total) = (ops.len(), ops.len().saturating_mul(repeat));
    let stop = AtomicU8::new(GO);
    let ops = Repeat {
        ops,
        next: 0,
        total,
        stop: &stop,
    };
    let mut watch = Watch {
        stop: &stop,
        timeout,
        replies: 0,
        silent_since: None,
    };
    let mut failures = 0usize;
    let mut latencies = latency::Latencies::default();
    let begun = Instant::now();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let stats = client
        .execute(ops, exec, |op, r| {
            latencies.record(r.latency);
            // Decoding is for showing: a --thruput run that prints nothing skips it.
            let values = match &r.result {
                Ok(OpValue::Read(reading)) if show.json || show.print => client.decode(reading),
                _ => Vec::new(),
            };
            watch.saw(&r.result);
            if let Err(e) = &r.result {
                failures += 1;
                match &show.label {
                    Some(l) => tracing::warn!("{l}: {}: {e}", op.text),
                    None => tracing::warn!("{}: {e}", op.text),
                }
            }
            let line = if show.json {
                let mut j = output::op_json(op, &exec, &r, &values);
                if let (Some(l), Some(o)) = (&show.label, j.as_object_mut()) {
                    o.insert("target".into(), serde_json::json!(l.as_ref()));
                }
                Some(j.to_string())
            } else if show.print {
                let line = report::line(op, &exec, &r.result, &values);
                Some(match &show.label {
                    Some(l) => format!("{l}: {line}"),
                    None => line,
                })
            } else {
                None
            };
            // Each line appears as its operation finishes, not when the run ends; a
            // line goes out in one write, whole, whatever other sessions print.
            if let Some(l) = line {
                let _ = writeln!(out, "{l}");
                let _ = out.flush();
            }
        })
        .await;
    let elapsed = begun.elapsed().as_secs_f64();
    let _ = out.flush();
    drop(out);
    let not_run = total.saturating_sub(stats.operations);
    if not_run > 0 {
        failures += not_run;
        let why = match stop.load(Ordering::Relaxed) {
            LOST => "the connection was lost".to_string(),
            _ => format!("no reply for {timeout:?}"),
        };
        esay!(
            "enip-client: {}{why}: {not_run} operations ({} repetitions of {n}) were not run",
            show.label
                .as_deref()
                .map(|l| format!("{l}: "))
                .unwrap_or_default(),
            not_run / n.max(1)
        );
    }
    if stats.operations > 0 {
        tracing::info!(
            "{}Client Tag I/O  Average {:7.3} TPS ({:7.3}s ea).",
            show.label
                .as_deref()
                .map(|l| format!("{l}: "))
                .unwrap_or_default(),
            stats.operations as f64 / elapsed,
            elapsed / stats.operations as f64
        );
    }
    Done {
        failures,
        stats,
        latencies,
        elapsed,
    }
}

/// The operations, `total` of them in turns through the list, until the connection is
/// lost or the server falls silent (`stop` is not [`GO`]): then no further turn starts.
struct Repeat<'a> {
    ops: &'a [Arc<Operation>],
    next: usize,
    total: usize,
    stop: &'a AtomicU8,
}

/// Sets [`Repeat`]'s `stop` from each outcome: [`LOST`] when the connection is gone,
/// [`SILENT`] when a timeout finds no reply since a timeout a whole `timeout` earlier.
struct Watch<'a> {
    stop: &'a AtomicU8,
    timeout: Duration,
    /// Outcomes that came from a reply.
    replies: u64,
    /// When a timeout last found `replies` at this count.
    silent_since: Option<(Instant, u64)>,
}

impl Watch<'_> {
    fn saw(&mut self, result: &enip_client::Result<OpValue>) {
        match result {
            Err(e) if e.is_fatal() => self.stop.store(LOST, Ordering::Relaxed),
            Err(enip_client::Error::Timeout { .. }) => match self.silent_since {
                Some((at, seen)) if seen == self.replies => {
                    if at.elapsed() >= self.timeout {
                        self.stop.store(SILENT, Ordering::Relaxed);
                    }
                }
                _ => self.silent_since = Some((Instant::now(), self.replies)),
            },
            _ => self.replies += 1,
        }
    }
}

/// Why [`Repeat`] stops early: it does not ([`GO`]), the connection is gone, or nothing
/// has answered for a whole timeout.
const GO: u8 = 0;
const LOST: u8 = 1;
const SILENT: u8 = 2;

impl Iterator for Repeat<'_> {
    type Item = Arc<Operation>;

    fn next(&mut self) -> Option<Arc<Operation>> {
        let n = self.ops.len();
        if self.next >= self.total || n == 0 {
            return None;
        }
        let at = self.next % n;
        if at == 0 && self.stop.load(Ordering::Relaxed) != GO {
            return None;
        }
        self.next += 1;
        self.ops.get(at).cloned()
    }
}

/// How several sessions' rates spread: the slowest, median and fastest session.
struct Spread<'a> {
    sessions: usize,
    addresses: usize,
    slowest: (&'a str, f64),
    median: f64,
    fastest: (&'a str, f64),
}

/// cpppo's thruput line, then the latency percentiles (and with several sessions, how
/// their rates spread); with `--json`, one object holding all of it instead.
fn print_thruput(
    stats: &enip_client::Stats,
    elapsed: f64,
    latencies: &latency::Latencies,
    settings: &cli::Settings,
    json: bool,
    spread: Option<&Spread<'_>>,
) {
    let pct = |p: f64| latencies.percentile_ms(p);
    let tps = stats.operations as f64 / elapsed.max(1e-9);
    if json {
        let mut o = serde_json::json!({
            "operations": stats.operations,
            "requests": stats.requests,
            "seconds": elapsed,
            "depth": settings.exec.depth,
            "tps": tps,
            "latency_ms": { "p50": pct(0.50), "p99": pct(0.99) },
        });
        if let (Some(s), Some(map)) = (spread, o.as_object_mut()) {
            map.insert(
                "sessions".into(),
                serde_json::json!({
                    "count": s.sessions,
                    "addresses": s.addresses,
                    "slowest": { "target": s.slowest.0, "tps": s.slowest.1 },
                    "median_tps": s.median,
                    "fastest": { "target": s.fastest.0, "tps": s.fastest.1 },
                }),
            );
        }
        say!("{}", serde_json::json!({ "thruput": o }));
        return;
    }
    say!(
        "{:3} operations using {:3} requests in {:7.2}s at pipeline depth {:>2}; {:5.1} TPS",
        stats.operations,
        stats.requests,
        elapsed,
        settings.depth_text,
        tps
    );
    say!("latency p50 {:.3} ms, p99 {:.3} ms", pct(0.50), pct(0.99));
    if let Some(s) = spread {
        say!(
            "{} sessions to {} address(es): slowest {:.1} TPS ({}), median {:.1}, fastest {:.1} ({})",
            s.sessions,
            s.addresses,
            s.slowest.1,
            s.slowest.0,
            s.median,
            s.fastest.1,
            s.fastest.0
        );
    }
}

/// The soft limit on open files (`ulimit -n`), where Linux tells it.
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&text)
}

/// `Max open files            1024                 524288               files`
fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Every session to one address, opened at once: labelled `addr`, or `addr#k` with
/// several connections.
async fn open_sessions(
    host: &str,
    port: u16,
    settings: &cli::Settings,
) -> Vec<anyhow::Result<(String, Client)>> {
    let addr = match cli::resolve(host, port, settings.options.timeout).await {
        Ok(a) => a,
        Err(e) => return vec![Err(e)],
    };
    let n = settings.connections;
    join_all((1..=n).map(|k| async move {
        let label = if n > 1 {
            format!("{addr}#{k}")
        } else {
            addr.to_string()
        };
        let c = Client::connect(addr, settings.options.clone())
            .await
            .with_context(|| label.clone())?;
        Ok((label, c))
    }))
    .await
}

/// Several sessions (`-a` more than once, a range, or `--connections`): every session
/// opens first, all at once; then all run the operations at once, on every core. A
/// session that cannot open is reported and the rest go on.
fn run_sessions(
    args: &cli::Args,
    settings: cli::Settings,
    ops: Vec<Arc<Operation>>,
) -> anyhow::Result<bool> {
    let sessions = settings.targets.len() * settings.connections;
    if let Some(limit) = open_files_limit() {
        // A socket each, plus the runtime's own and standard I/O.
        let need = sessions as u64 + 64;
        if need > limit {
            anyhow::bail!(
                "{sessions} sessions need about {need} open files; this process may open \
                 {limit} (raise it with `ulimit -n {need}`)"
            );
        }
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(sessions);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let ops: Arc<[Arc<Operation>]> = ops.into();
    rt.block_on(async move {
        let mut ok = true;
        let timeout = settings.options.timeout;
        // Every address at once, and every session to each; in the order given.
        let opening = settings
            .targets
            .iter()
            .map(|(host, port)| open_sessions(host, *port, &settings));
        let mut open = Vec::with_capacity(sessions);
        for session in join_all(opening).await.into_iter().flatten() {
            match session {
                Ok(s) => open.push(s),
                Err(e) => {
                    ok = false;
                    esay!("enip-client: {e:#}");
                }
            }
        }
        if open.len() < sessions {
            esay!("enip-client: {} of {sessions} sessions opened", open.len());
        }
        let begun = Instant::now();
        let mut running = tokio::task::JoinSet::new();
        for (label, client) in &open {
            let show = Show {
                json: args.json,
                print: settings.print,
                label: Some(label.as_str().into()),
            };
            let (exec, repeat) = (settings.exec, args.repeat);
            let (client, ops, label) = (client.clone(), ops.clone(), label.clone());
            running.spawn(async move {
                let done = run_operations(&show, exec, &client, &ops, repeat, timeout).await;
                (label, done)
            });
        }
        let mut all: Vec<(String, Done)> = Vec::with_capacity(open.len());
        while let Some(r) = running.join_next().await {
            match r {
                Ok(d) => all.push(d),
                Err(e) => {
                    ok = false;
                    tracing::warn!("a session's task ended: {e}");
                }
            }
        }
        let elapsed = begun.elapsed().as_secs_f64();
        ok &= all.iter().all(|(_, d)| d.failures == 0);
        if args.thruput && !all.is_empty() {
            let mut stats = enip_client::Stats::default();
            let mut latencies = latency::Latencies::default();
            for (_, d) in &all {
                stats.operations += d.stats.operations;
                stats.requests += d.stats.requests;
                latencies.merge(&d.latencies);
            }
            let tps = |d: &Done| d.stats.operations as f64 / d.elapsed.max(1e-9);
            all.sort_by(|a, b| tps(&a.1).total_cmp(&tps(&b.1)));
            let spread = match (all.first(), all.get(all.len() / 2), all.last()) {
                (Some(low), Some(mid), Some(high)) => Some(Spread {
                    sessions: all.len(),
                    addresses: settings.targets.len(),
                    slowest: (low.0.as_str(), tps(&low.1)),
                    median: tps(&mid.1),
                    fastest: (high.0.as_str(), tps(&high.1)),
                }),
                _ => None,
            };
            print_thruput(
                &stats,
                elapsed,
                &latencies,
                &settings,
                args.json,
                spread.as_ref(),
            );
        }
        for (_, c) in open {
            if let Err(e) = c.close().await {
                tracing::debug!("closing: {e}");
            }
        }
        Ok(ok)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_is_read_from_proc_self_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             95551                95551                processes\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(parse_open_files_limit(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_limit(unlimited), None);
        assert_eq!(parse_open_files_limit(""), None);
    }
}
