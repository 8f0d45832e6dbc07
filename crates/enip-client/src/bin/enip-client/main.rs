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
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser as _;
use enip_client::ops::{self, Operation};
use enip_client::{discover, report, Client, ListReply, OpValue};
use enip_proto::types::DataType;
use enip_proto::Command;

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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let addr = cli::resolve(&settings.host, settings.port, settings.options.timeout).await?;
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
                thruput: args.thruput,
                depth_text: settings.depth_text.clone(),
            };
            // As a task of the runtime, not the future `block_on` drives: waking that one
            // costs a system call each time (the runtime's unpark), once per operation.
            let run = tokio::spawn(run_operations(
                show,
                settings.exec,
                client.clone(),
                ops,
                args.repeat,
            ));
            ok &= run.await.unwrap_or(false);
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
struct Show {
    json: bool,
    print: bool,
    thruput: bool,
    depth_text: String,
}

async fn run_operations(
    show: Show,
    exec: enip_client::Exec,
    client: Client,
    ops: Vec<Arc<Operation>>,
    repeat: usize,
) -> bool {
    // `-r N` repeats the list lazily: a million operations need not exist at once.
    let total = ops.len().saturating_mul(repeat);
    let ops = ops.iter().cycle().take(total).cloned();
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
            if let Err(e) = &r.result {
                failures += 1;
                tracing::warn!("{}: {e}", op.text);
            }
            let line = if show.json {
                Some(output::op_json(op, &exec, &r, &values).to_string())
            } else if show.print {
                Some(report::line(op, &exec, &r.result, &values))
            } else {
                None
            };
            // Each line appears as its operation finishes, not when the run ends.
            if let Some(l) = line {
                let _ = writeln!(out, "{l}");
                let _ = out.flush();
            }
        })
        .await;
    let elapsed = begun.elapsed().as_secs_f64();
    let _ = out.flush();
    drop(out);
    if stats.operations > 0 {
        tracing::info!(
            "Client Tag I/O  Average {:7.3} TPS ({:7.3}s ea).",
            stats.operations as f64 / elapsed,
            elapsed / stats.operations as f64
        );
    }
    if show.thruput {
        let pct = |p: f64| latencies.percentile_ms(p);
        say!(
            "{:3} operations using {:3} requests in {:7.2}s at pipeline depth {:>2}; {:5.1} TPS",
            stats.operations,
            stats.requests,
            elapsed,
            show.depth_text,
            stats.operations as f64 / elapsed.max(1e-9)
        );
        say!("latency p50 {:.3} ms, p99 {:.3} ms", pct(0.50), pct(0.99));
    }
    failures == 0
}
