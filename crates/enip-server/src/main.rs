//! `enip-server`: a ControlLogix simulator with cpppo's `enip_server` command line.
//!
//! ```text
//! enip-server [-v] [-a IFACE:PORT] [-w IFACE:PORT] [-c plc.yaml] SCADA=INT[1000] ...
//! ```

mod cli;
mod logfile;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tracing_subscriber::EnvFilter;

use enip_server::history::HistoryWriter;

use crate::cli::{Args, Settings};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let settings = match Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("enip-server: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    // Two workers unless TOKIO_WORKER_THREADS says otherwise: a simulator among hundreds
    // on a host should not start a thread per CPU (each costs memory and wakeups).
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(2);
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("enip-server: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enip-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(s: &Settings) -> Result<()> {
    let level = match s.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match &s.log {
        Some(path) => {
            let file = logfile::LogFile::open(path)
                .with_context(|| format!("cannot open --log {}", path.display()))?;
            logfile::reopen_on_sighup(file.clone());
            builder.with_ansi(false).with_writer(file).init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

async fn run(s: Settings) -> Result<()> {
    init_logging(&s)?;
    let addr = s.address;
    let mut controller = s.controller;
    controller.now_us = enip_server::now_us();
    let ctrl = Arc::new(Mutex::new(controller));
    // Recording starts before the first client can connect.
    let history = match &s.history {
        Some((path, rotation)) => Some(
            HistoryWriter::open(path, *rotation, enip_server::now_us())
                .with_context(|| format!("cannot open --history {}", path.display()))?,
        ),
        None => None,
    };
    let observer = Observer {
        print: s.print,
        print_reads: s.print && s.verbose > 0,
        history,
        draining: Mutex::new(()),
    };
    if observer.print || observer.history.is_some() {
        let mut c = enip_server::lock(&ctrl);
        c.record_accesses(true);
    }
    if let Some((records, speed, looped)) = s.replay {
        tokio::spawn(enip_server::history::replay(
            ctrl.clone(),
            records,
            speed,
            looped,
        ));
    }
    if !s.generators.is_empty() {
        tokio::spawn(enip_server::generate::run(ctrl.clone(), s.generators));
    }
    let options = enip_server::Options {
        delay: s.delay,
        idle_timeout: s.idle_timeout,
        max_connections: s.max_connections,
        size: s.size,
        clock: true,
        ..enip_server::Options::default()
    };
    let server = enip_server::Server::new(ctrl.clone(), options)?;
    if let Some(h) = &observer.history {
        // Records written and lost, on /metrics.
        h.stats().register(server.metrics().registry())?;
    }
    let tcp = match s.tcp {
        true => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on TCP {addr}"))?,
        ),
        false => None,
    };
    if s.udp {
        let udp = tokio::net::UdpSocket::bind(addr)
            .await
            .with_context(|| format!("cannot listen on UDP {addr}"))?;
        let _ = udp.set_broadcast(true);
        let server = server.clone();
        tokio::spawn(async move { server.run_udp(udp, std::future::pending::<()>()).await });
    }
    let web = match s.web {
        Some(w) => {
            let l = tokio::net::TcpListener::bind(w)
                .await
                .with_context(|| format!("cannot listen on {w} for the web API"))?;
            let guarded = if s.web_token.is_some() {
                " (bearer token required but for /metrics)"
            } else {
                ""
            };
            eprintln!("enip-server: web API and dashboard on http://{w}/api{guarded}, metrics on http://{w}/metrics");
            let (srv, done) = (server.clone(), server.clone());
            let guard = enip_server::web::guard(s.web_token.clone(), s.web_rate);
            Some(tokio::spawn(async move {
                enip_server::web::serve_with(l, srv, guard, async move { done.done().await }).await
            }))
        }
        None => None,
    };
    let transports = match (s.tcp, s.udp) {
        (true, true) => "TCP and UDP",
        (true, false) => "TCP",
        _ => "UDP",
    };
    tracing::info!(%addr, tags = s.tag_count, "serving");
    eprintln!(
        "enip-server: serving {} tag(s) on {addr} ({transports})",
        s.tag_count
    );
    if s.address_output {
        println!("enip-server running on ({}, {})", addr.ip(), addr.port());
    }
    let observer = Arc::new(observer);
    // Only a journal needs a ticker: an idle simulator then makes no wakeups at all,
    // which matters when a host runs hundreds (each request brings its own time).
    let observing = observer.print || observer.history.is_some();
    let ticker = tokio::spawn(tick(ctrl.clone(), observer.clone(), observing));
    // Until ^C, SIGTERM or the web API's `done`.
    let stop = {
        let server = server.clone();
        async move {
            tokio::select! {
                () = shutdown_signal() => {}
                () = server.done() => {}
            }
        }
    };
    match tcp {
        Some(tcp) => server.run(tcp, stop).await?,
        None => stop.await,
    }
    eprintln!("enip-server: stopping");
    server.set_done();
    if let Some(w) = web {
        // Let the web API answer its `done` request.
        let _ = tokio::time::timeout(Duration::from_secs(2), w).await;
    }
    ticker.abort();
    let _ = ticker.await;
    // From here no request runs (the lock is never released), so every reply a client
    // got has its record; the process exits holding it. Turn first, then the
    // controller: the order drain() takes them in.
    let _one = observer.turn();
    let mut c = enip_server::lock(&ctrl);
    observer.output(&enip_server::history::drain(&mut c));
    if let Some(h) = &observer.history {
        h.flush();
    }
    std::process::exit(0)
}

/// Where tag accesses go: `--print` lines and the `--history` file.
struct Observer {
    print: bool,
    print_reads: bool,
    history: Option<HistoryWriter>,
    /// One drain at a time, so records leave in the order they were journalled and the
    /// final drain at shutdown waits for one in flight.
    draining: Mutex<()>,
}

impl Observer {
    fn drain(&self, ctrl: &enip_server::Shared) {
        if self.print || self.history.is_some() {
            let _one = self.turn();
            let records = enip_server::history::drain(&mut enip_server::lock(ctrl));
            self.output(&records);
        }
    }

    fn turn(&self) -> std::sync::MutexGuard<'_, ()> {
        self.draining
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn output(&self, records: &[enip_server::history::Record]) {
        if records.is_empty() {
            return;
        }
        if self.print {
            let mut out = std::io::stdout().lock();
            for r in records.iter().filter(|r| r.write || self.print_reads) {
                let _ = writeln!(out, "{}", r.to_print_line());
            }
            let _ = out.flush();
        }
        if let Some(h) = &self.history {
            h.write(records);
        }
    }
}

/// Every 10 ms: pass on the journal to --print and --history.
async fn tick(ctrl: enip_server::Shared, observer: Arc<Observer>, observing: bool) {
    if !observing {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        let (c, o) = (ctrl.clone(), observer.clone());
        // Printing and a full history queue may block: not on the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || o.drain(&c)).await;
    }
}

/// Ctrl-C or SIGTERM (docker stop).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
