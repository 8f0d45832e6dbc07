//! The command line, cpppo's `enip_server` flags and ours, in two phases: [`Args`] is
//! close to what was typed; [`Settings`] is checked and resolved, with the controller
//! built.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{ArgAction, Parser};
use enip_device::{Controller, RoutePolicy};
use enip_server::config::Config;
use enip_server::generate::Binding;
use enip_server::history::{self, Record, Rotation};
use enip_server::Delay;

/// A ControlLogix simulator that pycomm3, pylogix, libplctag, cpppo and rseip can all use.
/// It takes cpppo's `enip_server` command line.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "\
Examples:
  enip-server SCADA=INT[1000]                      # cpppo's README example
  enip-server -a 127.0.0.1:44818 -w :8080 Counts=DINT[10] Grid=REAL[4,5] Recipe=STRING
  enip-server Program:Main.Step=DINT Volts@0x22/1/3=INT[2]
  enip-server --config plc.yaml -d 0.1-0.5 -p

Tag specs: NAME[@cls/ins/att]=TYPE[dims]; TYPE is one of BOOL SINT INT DINT LINT USINT
UINT UDINT ULINT REAL LREAL STRING SSTRING (default INT); dims are [n], [a,b] or [a,b,c].
Names are case-insensitive; `Program:NAME.` scopes a tag to a program."
)]
pub struct Args {
    /// More logging: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
    /// Interface and port for EtherNet/IP, TCP and UDP: `[iface][:port]`.
    #[arg(
        short,
        long,
        default_value = "0.0.0.0:44818",
        value_name = "[IFACE][:PORT]"
    )]
    pub address: String,
    /// Print the address served on as `... running on (IFACE, PORT)`, as cpppo's -A.
    #[arg(short = 'A', long)]
    pub address_output: bool,
    /// Serve UDP (ListIdentity etc.; the default).
    #[arg(short = 'u', long = "udp", overrides_with = "no_udp")]
    pub udp: bool,
    /// Do not serve UDP.
    #[arg(short = 'U', long = "no-udp")]
    pub no_udp: bool,
    /// Serve TCP (the default).
    #[arg(short = 't', long = "tcp", overrides_with = "no_tcp")]
    pub tcp: bool,
    /// Do not serve TCP.
    #[arg(short = 'T', long = "no-tcp")]
    pub no_tcp: bool,
    /// Print a line for each tag write (and each read with -v) to stdout.
    #[arg(short, long, overrides_with = "no_print")]
    pub print: bool,
    /// Do not print tag writes.
    #[arg(long)]
    pub no_print: bool,
    /// Log to this file instead of stderr (appends; SIGHUP reopens it, for logrotate).
    #[arg(short, long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Web API, dashboard and /metrics on `[iface]:[port]` (iface defaults to 127.0.0.1,
    /// port to 80).
    #[arg(short, long, value_name = "[IFACE]:[PORT]")]
    pub web: Option<String>,
    /// The file holding the web API's bearer token (else env ENIP_WEB_TOKEN). Required
    /// when --web is not on loopback; GET /metrics stays open.
    #[arg(long, value_name = "FILE")]
    pub web_token: Option<PathBuf>,
    /// Web requests per second per client address, optionally /BURST (beyond: 429).
    #[arg(long, default_value = "200/400", value_name = "N[/BURST]")]
    pub web_rate: String,
    /// Delay every reply by SECS, or by a random time in LO-HI re-drawn every second.
    #[arg(short, long, default_value = "0", value_name = "SECS|LO-HI")]
    pub delay: String,
    /// Refuse encapsulated requests longer than N bytes.
    #[arg(short, long, value_name = "N")]
    pub size: Option<usize>,
    /// Accept only this Unconnected Send route path (or none): `1/0`, cpppo's JSON
    /// `[{"port": 1, "link": 0}]`, `false` (only an empty route), `any` (the default).
    #[arg(long, value_name = "ROUTE")]
    pub route_path: Option<String>,
    /// A simple, non-routing device (as a MicroLogix): only an empty route path.
    #[arg(short = 'S', long)]
    pub simple: bool,
    /// Identity, route path and tags with initial values from a YAML file (see
    /// docs in crates/enip-server/examples/plc.yaml).
    #[arg(short, long, value_name = "FILE.yaml")]
    pub config: Option<PathBuf>,
    /// Close a TCP connection silent for this many seconds (0: never); 120 is the CIP
    /// default encapsulation inactivity timeout.
    #[arg(long, default_value = "120", value_name = "SECS")]
    pub idle_timeout: f64,
    /// Serve at most N TCP connections at once; more are closed at once (0: no limit).
    #[arg(long, default_value = "1024", value_name = "N")]
    pub max_connections: usize,
    /// Record every tag read and write to FILE in cpppo's history format (rotated and
    /// gzipped as FILE.1.gz, FILE.2.gz, ... past --history-size).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Start a new history file past this many MiB.
    #[arg(long, default_value = "64", value_name = "MIB")]
    pub history_size: u64,
    /// Keep this many rotated history files.
    #[arg(long, default_value = "10", value_name = "N")]
    pub history_keep: usize,
    /// Play a recorded history (or a CSV: a `time,Tag,Tag[3],...` header, then rows)
    /// back into the tags, in real time.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Replay speed: 2 plays twice as fast, 0.5 half as fast.
    #[arg(long, default_value = "1", value_name = "X", requires = "replay")]
    pub speed: f64,
    /// Replay again and again.
    #[arg(long = "loop", requires = "replay")]
    pub looped: bool,
    /// Set an identity field: vendor, device_type, product_code, revision, status,
    /// serial, product_name, state, controller_name (repeatable; after --config).
    #[arg(long, value_name = "KEY=VALUE")]
    pub identity: Vec<String>,
    /// Make a tag element move by itself: `SCADA[0]=ramp 0..1000 every 1s`,
    /// `Temp=sine 50 +/- 25 period 60s`, `Level=random 0..100 every 5s`,
    /// `Pump=square 0..1 period 10s` (repeatable).
    #[arg(short = 'g', long = "generate", value_name = "TAG=EXPR")]
    pub generate: Vec<String>,
    /// Tags to serve: NAME[@cls/ins/att]=TYPE[dims], e.g. SCADA=INT[1000].
    #[arg(value_name = "TAG")]
    pub tags: Vec<String>,
}

/// Checked, resolved settings.
#[derive(Debug)]
pub struct Settings {
    pub address: SocketAddr,
    pub address_output: bool,
    pub udp: bool,
    pub tcp: bool,
    pub print: bool,
    pub verbose: u8,
    pub log: Option<PathBuf>,
    pub web: Option<SocketAddr>,
    /// The web API's bearer token, if any.
    pub web_token: Option<String>,
    pub web_rate: enip_server::guard::Rate,
    pub delay: Delay,
    pub size: Option<usize>,
    pub idle_timeout: Option<Duration>,
    pub max_connections: usize,
    pub controller: Controller,
    pub tag_count: usize,
    pub history: Option<(PathBuf, Rotation)>,
    pub replay: Option<(Vec<Record>, f64, bool)>,
    pub generators: Vec<Binding>,
}

impl Settings {
    pub fn from_args(a: Args) -> Result<Self> {
        let address = parse_address(&a.address, Ipv4Addr::UNSPECIFIED, 44818)
            .with_context(|| format!("bad --address `{}`", a.address))?;
        let web = a
            .web
            .as_deref()
            .map(|w| {
                parse_address(w, Ipv4Addr::LOCALHOST, 80)
                    .with_context(|| format!("bad --web `{w}`"))
            })
            .transpose()?;
        let web_token = match &a.web_token {
            Some(file) => {
                let text = std::fs::read_to_string(file).with_context(|| {
                    format!(
                        "cannot read the web token file --web-token {}",
                        file.display()
                    )
                })?;
                Some(enip_server::guard::token_from(&text).ok_or_else(|| {
                    anyhow!(
                        "--web-token {}: the file is empty; put the token in it",
                        file.display()
                    )
                })?)
            }
            None => match std::env::var("ENIP_WEB_TOKEN") {
                Ok(t) => Some(enip_server::guard::token_from(&t).ok_or_else(|| {
                    anyhow!("ENIP_WEB_TOKEN is set but empty; set it to the token, or unset it")
                })?),
                Err(_) => None,
            },
        };
        if let Some(w) = web {
            if web_token.is_none() && enip_server::guard::needs_token(&w) {
                bail!(
                    "--web {w} is reachable from other hosts and the web API can change tags and \
                     stop the server, so it needs a token: give --web-token FILE (a file holding \
                     it) or set ENIP_WEB_TOKEN, or listen on loopback (-w :{port})",
                    port = w.port()
                );
            }
        }
        let web_rate: enip_server::guard::Rate = a.web_rate.parse().context("bad --web-rate")?;
        let delay: Delay = a.delay.parse()?;
        if !(a.idle_timeout.is_finite() && a.idle_timeout >= 0.0) {
            bail!(
                "bad --idle-timeout `{}`: seconds, 0 or more",
                a.idle_timeout
            );
        }
        if a.no_tcp && a.no_udp {
            bail!("-T and -U together leave nothing to serve");
        }
        let mut controller = Controller::new();
        let mut tag_count = 0;
        if let Some(file) = &a.config {
            let config = Config::load(file)?;
            config.apply(&mut controller)?;
            tag_count += config.tag_count();
        }
        for kv in &a.identity {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("bad --identity `{kv}`: expected KEY=VALUE"))?;
            enip_server::config::set_identity(&mut controller.identity, k, v)
                .map_err(|e| anyhow!("bad --identity `{kv}`: {e}"))?;
        }
        for t in &a.tags {
            controller
                .add_addressed_tag(t)
                .with_context(|| format!("bad tag `{t}`"))?;
        }
        tag_count += a.tags.len();
        if tag_count == 0 {
            bail!("no tags to serve: give some, e.g. `enip-server SCADA=INT[1000]`, or --config");
        }
        if !(a.speed.is_finite() && a.speed > 0.0) {
            bail!("bad --speed `{}`: a factor above 0, e.g. 2 or 0.5", a.speed);
        }
        if a.history_size == 0 || a.history_keep == 0 {
            bail!("--history-size and --history-keep must be at least 1");
        }
        let replay = match &a.replay {
            Some(file) => {
                let records = history::load(file)?;
                if records.is_empty() {
                    bail!("{}: no records to replay", file.display());
                }
                Some((records, a.speed, a.looped))
            }
            None => None,
        };
        let mut generators = Vec::new();
        for g in &a.generate {
            let b = Binding::parse(g)
                .map_err(|e| anyhow!("bad --generate:\n{}\n{}", e.pointer(), e.message))?;
            if controller.tags.find(&b.tag).is_none() {
                bail!("bad --generate `{g}`: no tag `{}`", b.tag);
            }
            generators.push(b);
        }
        if a.simple {
            controller.route = RoutePolicy::Empty;
        }
        if let Some(r) = &a.route_path {
            controller.route = RoutePolicy::parse(r).map_err(anyhow::Error::msg)?;
        }
        if let IpAddr::V4(v4) = address.ip() {
            if !v4.is_unspecified() {
                controller.network.address = v4.octets();
            }
        }
        Ok(Self {
            address,
            address_output: a.address_output,
            udp: !a.no_udp,
            tcp: !a.no_tcp,
            print: a.print && !a.no_print,
            verbose: a.verbose,
            log: a.log,
            web,
            web_token,
            web_rate,
            delay,
            size: a.size,
            idle_timeout: (a.idle_timeout > 0.0).then(|| Duration::from_secs_f64(a.idle_timeout)),
            max_connections: a.max_connections,
            controller,
            tag_count,
            history: a.history.map(|f| {
                (
                    f,
                    Rotation {
                        max_bytes: a.history_size << 20,
                        keep: a.history_keep,
                    },
                )
            }),
            replay,
            generators,
        })
    }
}

/// `[iface][:port]` with defaults for either part.
pub fn parse_address(text: &str, host: Ipv4Addr, port: u16) -> Result<SocketAddr> {
    let (h, p) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = match h.trim() {
        "" => host.into(),
        "localhost" => Ipv4Addr::LOCALHOST.into(),
        h => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| anyhow!("`{h}` is not an IP address"))?,
    };
    let port = match p.map(str::trim) {
        None | Some("") => port,
        Some(p) => p
            .parse()
            .map_err(|_| anyhow!("`{p}` is not a port number"))?,
    };
    Ok(SocketAddr::new(ip, port))
}
