//! The command line: cpppo's client options as typed (`Args`), then checked and resolved
//! (`Settings`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use clap::Parser;
use enip_client::{Exec, Options, Routing};
use enip_proto::path::{parse_route_text, parse_text, Path, Segment};

const AFTER_HELP: &str = "\
Operations (cpppo's grammar):
  Tag  Tag[3]  Tag[1-5]  Tag*5      read one element / element 3 / elements 1..5 / 5 from 0
  A.B[2].C[0-3]                     structure members; only the last part gives a count
  @0x22/1/3[/elm]  @1/1/7           numeric class/instance/attribute[/element]
  Tag[0-9]+16                       from byte offset 16 (Read/Write Tag Fragmented)
  Tag[0-3]=(DINT)1,2,3,4            write; casts SINT INT DINT LINT USINT UINT UDINT ULINT
                                    REAL LREAL BOOL SSTRING STRING; default REAL if a value
                                    has a `.`, else INT; one value per element
  -                                 read operations from standard input, one per line

Examples:
  enip-client -a 10.0.0.5 -p 'SCADA[1]=(DINT)99' 'SCADA[0-10]'
  enip-client -a 10.0.0.5 -c -m -d 20 -r 100 --thruput 'SCADA[0-10]'
  enip-client -a 10.0.0.5 --list-tags
  enip-client -u -b -a 255.255.255.255 -i     # who is out there (waits -t seconds)

Exit status 1 if anything failed.";

/// An EtherNet/IP client with cpppo's options, grammar and output: pipelined, packs
/// Multiple Service Packets, fragments large reads and writes itself.
#[derive(Debug, Parser)]
#[command(name = "enip-client", version, after_help = AFTER_HELP)]
pub struct Args {
    /// More logging: -v info (per-run TPS), -vv debug, -vvv every frame
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The controller: HOST[:PORT] (default port 44818). Give it again, or a range of
    /// IPv4 addresses A.B.C.D-E, to run the operations on every one at once (a fleet)
    #[arg(
        short,
        long,
        default_value = "localhost:44818",
        value_name = "HOST[:PORT]",
        action = clap::ArgAction::Append
    )]
    pub address: Vec<String>,
    /// Sessions per address, each running every operation (-r times): one command
    /// loads a simulator, or a fleet, from several connections at once
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub connections: usize,
    /// List commands over UDP instead of a TCP session
    #[arg(short, long)]
    pub udp: bool,
    /// With -u: broadcast, and collect every answer until the timeout
    #[arg(short, long)]
    pub broadcast: bool,
    /// Print cpppo's summary line for each operation
    #[arg(short, long, overrides_with = "no_print")]
    pub print: bool,
    /// Do not print the summary lines
    #[arg(long)]
    pub no_print: bool,
    /// Log to this file instead of standard error
    #[arg(short, long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Seconds to wait for a connection and for each reply
    #[arg(short, long, default_value = "5.0", value_name = "SECS")]
    pub timeout: f64,
    /// Run the operations this many times
    #[arg(short, long, default_value_t = 1, value_name = "N")]
    pub repeat: usize,
    /// Route path: PORT/LINK[/PORT/LINK...], JSON `[{"port":1,"link":0}]`, or 0/false for
    /// none (default 1/0: backplane, slot 0)
    #[arg(long, value_name = "ROUTE")]
    pub route_path: Option<String>,
    /// Where Unconnected Send goes (default @6/1, the Connection Manager); '' for bare
    /// requests
    #[arg(long, value_name = "PATH")]
    pub send_path: Option<String>,
    /// Unconnected Send / Forward Open tick: 2^N ms
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub priority_time_tick: u8,
    /// Unconnected Send / Forward Open timeout in ticks
    #[arg(long, default_value_t = 157, value_name = "N")]
    pub timeout_ticks: u8,
    /// A simple, non-routing device: no route path, no send path (bare requests)
    #[arg(short = 'S', long)]
    pub simple: bool,
    /// Pack operations into Multiple Service Packets that fit the connection
    #[arg(short, long)]
    pub multiple: bool,
    /// Requests in flight at once (0 and 1: one at a time)
    #[arg(short, long, default_value_t = 1, value_name = "N")]
    pub depth: usize,
    /// Always use Read/Write Tag Fragmented
    #[arg(short, long, overrides_with = "no_fragment")]
    pub fragment: bool,
    /// Use plain Read/Write Tag (the default; cancels an earlier -f)
    #[arg(short = 'n', long)]
    pub no_fragment: bool,
    /// Send ListServices first
    #[arg(short = 's', long)]
    pub list_services: bool,
    /// Send ListIdentity first
    #[arg(short = 'i', long)]
    pub list_identity: bool,
    /// Send ListInterfaces first
    #[arg(short = 'I', long)]
    pub list_interfaces: bool,
    /// Open a CIP connection (Large Forward Open, falling back to Forward Open)
    #[arg(short, long)]
    pub connected: bool,
    /// List the controller's tags and structure layouts
    #[arg(long)]
    pub list_tags: bool,
    /// Print results as JSON, one object per line, instead of cpppo's lines
    #[arg(long)]
    pub json: bool,
    /// End with cpppo's thruput line and the latency percentiles
    #[arg(long)]
    pub thruput: bool,
    /// Operations (see below); `-` reads them from standard input
    #[arg(value_name = "OPERATION", allow_hyphen_values = false)]
    pub operations: Vec<String>,
}

/// The command line, checked.
#[derive(Debug)]
pub struct Settings {
    /// Every `-a`, ranges expanded, in order: (host, port).
    pub targets: Vec<(String, u16)>,
    /// `--connections`: sessions per target.
    pub connections: usize,
    pub options: Options,
    pub exec: Exec,
    pub depth_text: String,
    pub print: bool,
}

impl Args {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut targets = Vec::new();
        for a in &self.address {
            targets.extend(expand_address(a)?);
        }
        if self.connections == 0 {
            bail!("--connections is 1 or more");
        }
        let sessions = targets.len().saturating_mul(self.connections);
        if sessions > MAX_SESSIONS {
            bail!(
                "{} address(es) × --connections {} is {sessions} sessions; at most \
                 {MAX_SESSIONS} from one process",
                targets.len(),
                self.connections
            );
        }
        if sessions > 1 {
            let one_only = [
                (self.udp, "-u"),
                (self.list_tags, "--list-tags"),
                (self.list_identity, "-i"),
                (self.list_services, "-s"),
                (self.list_interfaces, "-I"),
            ];
            if let Some((_, flag)) = one_only.iter().find(|(on, _)| *on) {
                bail!(
                    "{flag} asks one controller: give one -a and no --connections \
                     ({sessions} sessions were asked for)"
                );
            }
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            bail!("--timeout must be a positive number of seconds");
        }
        let timeout = Duration::from_secs_f64(self.timeout);
        let route = match (&self.route_path, self.simple) {
            (Some(r), _) => parse_route(r)?,
            (None, true) => Vec::new(),
            (None, false) => vec![0x01, 0x00],
        };
        let send = match (&self.send_path, self.simple) {
            (Some(s), _) if s.trim().is_empty() => Vec::new(),
            (Some(s), _) => parse_text(s)
                .map_err(|e| anyhow!("--send-path:\n{}", e.pointer(s)))?
                .to_bytes()?,
            (None, true) => Vec::new(),
            (None, false) => vec![0x20, 0x06, 0x24, 0x01],
        };
        let routing = match (send.is_empty(), route.is_empty()) {
            (true, true) => Routing::Direct,
            (true, false) => bail!("a route path needs a send path (--send-path @6/1)"),
            (false, _) => Routing::Routed {
                send_path: send,
                route,
            },
        };
        if self.priority_time_tick > 15 {
            bail!("--priority-time-tick is 0 to 15");
        }
        if self.timeout_ticks == 0 {
            bail!("--timeout-ticks is 1 to 255");
        }
        Ok(Settings {
            targets,
            connections: self.connections,
            options: Options {
                timeout,
                routing,
                connected: self.connected,
                connection_size: 4002,
                priority_tick: self.priority_time_tick,
                timeout_ticks: self.timeout_ticks,
            },
            exec: Exec {
                depth: self.depth.max(1),
                multiple: self.multiple,
                fragment: self.fragment && !self.no_fragment,
                structs: true,
            },
            depth_text: self.depth.to_string(),
            print: self.print && !self.no_print,
        })
    }
}

/// The most sessions one process opens: each is a socket, and past this a load test
/// wants more processes (or machines) anyway.
pub const MAX_SESSIONS: usize = 10_000;

/// One `-a`: `host[:port]`, or a range of IPv4 addresses `A.B.C.D-E[:port]` (the last
/// octet from D to E, both included).
fn expand_address(a: &str) -> anyhow::Result<Vec<(String, u16)>> {
    let (host, port) = split_address(a)?;
    let Some((first, last)) = host.rsplit_once('-') else {
        return Ok(vec![(host, port)]);
    };
    let Ok(first) = first.parse::<std::net::Ipv4Addr>() else {
        // A host name with a dash.
        return Ok(vec![(host, port)]);
    };
    let [a0, a1, a2, from] = first.octets();
    let to: u8 = last.parse().map_err(|_| {
        anyhow!("--address {a}: `{last}` is not the last octet of a range (0 to 255)")
    })?;
    if to < from {
        bail!("--address {a}: the range ends ({to}) before it starts ({from})");
    }
    Ok((from..=to)
        .map(|d| (std::net::Ipv4Addr::new(a0, a1, a2, d).to_string(), port))
        .collect())
}

/// `host[:port]`, cpppo's `-a`: an empty host is localhost, an empty port 44818.
fn split_address(a: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = match a.rsplit_once(':') {
        // A bare IPv6 address has colons and no port.
        Some((h, p)) if !h.contains(':') => (h, p),
        _ => (a, ""),
    };
    let host = if host.is_empty() { "localhost" } else { host };
    let port = if port.is_empty() {
        enip_proto::encap::PORT
    } else {
        port.parse()
            .with_context(|| format!("bad port `{port}` in --address {a}"))?
    };
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// cpppo's `--route-path`: `1/0`, `1/0/2/10.0.0.1`, JSON, or 0/false/null/[] for none.
fn parse_route(text: &str) -> anyhow::Result<Vec<u8>> {
    let t = text.trim();
    if matches!(t, "" | "0" | "false" | "null" | "[]" | "none") {
        return Ok(Vec::new());
    }
    if t.starts_with('[') || t.starts_with('{') {
        let json: serde_json::Value =
            serde_json::from_str(t).with_context(|| format!("--route-path {t}: bad JSON"))?;
        let items = match json {
            serde_json::Value::Array(v) => v,
            o @ serde_json::Value::Object(_) => vec![o],
            _ => bail!("--route-path {t}: expected a list of {{\"port\":..,\"link\":..}}"),
        };
        let mut links: Vec<(u16, String)> = Vec::new();
        for item in items {
            let port = item
                .get("port")
                .and_then(serde_json::Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| anyhow!("--route-path {t}: each hop needs a port > 0"))?;
            let link = match item.get("link") {
                Some(serde_json::Value::Number(n)) => n.to_string(),
                Some(serde_json::Value::String(s)) => s.clone(),
                _ => bail!("--route-path {t}: each hop needs a link (slot or address)"),
            };
            links.push((port, link));
        }
        let segs: Vec<Segment<'_>> = links
            .iter()
            .map(|(port, link)| match link.parse::<u8>() {
                Ok(slot) => Segment::port(*port, slot),
                Err(_) => Segment::Port {
                    port: *port,
                    link: link.as_bytes(),
                },
            })
            .collect();
        return Ok(Path(segs).to_bytes()?);
    }
    let p = parse_route_text(t).map_err(|e| anyhow!("--route-path:\n{}", e.pointer(t)))?;
    Ok(p.to_bytes()?)
}

/// Resolve the host (within the timeout).
pub async fn resolve(host: &str, port: u16, timeout: Duration) -> anyhow::Result<SocketAddr> {
    let addrs = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| anyhow!("looking up {host}: no answer within {timeout:?}"))?
        .with_context(|| format!("looking up {host}"))?
        .collect::<Vec<_>>();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| anyhow!("{host} has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(parse_route("1/0").unwrap(), [1, 0]);
        assert_eq!(parse_route("false").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_route("[{\"port\":1,\"link\":3}]").unwrap(), [1, 3]);
        assert_eq!(parse_route("{\"port\": 1, \"link\": 0}").unwrap(), [1, 0]);
        assert_eq!(
            parse_route("1/0/2/10.0.0.1").unwrap(),
            [1, 0, 0x12, 8, b'1', b'0', b'.', b'0', b'.', b'0', b'.', b'1']
        );
        assert!(parse_route("x").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            split_address("10.0.0.1").unwrap(),
            ("10.0.0.1".into(), 44818)
        );
        assert_eq!(split_address(":99").unwrap(), ("localhost".into(), 99));
        assert_eq!(split_address("h:").unwrap(), ("h".into(), 44818));
        assert!(split_address("h:x").is_err());
    }

    #[test]
    fn address_ranges() {
        let ips = |a: &str| -> Vec<String> {
            expand_address(a)
                .unwrap()
                .into_iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect()
        };
        assert_eq!(
            ips("10.0.0.8-10"),
            ["10.0.0.8:44818", "10.0.0.9:44818", "10.0.0.10:44818"]
        );
        assert_eq!(ips("10.0.0.255-255:99"), ["10.0.0.255:99"]);
        assert_eq!(ips("plc-7:44819"), ["plc-7:44819"]);
        assert_eq!(ips("10.0.0.1"), ["10.0.0.1:44818"]);
        let err = |a: &str| expand_address(a).unwrap_err().to_string();
        assert!(err("10.0.0.9-8").contains("ends (8) before it starts (9)"));
        assert!(err("10.0.0.1-256").contains("`256` is not the last octet"));
        assert!(err("10.0.0.1-x:5").contains("`x` is not the last octet"));
    }

    #[test]
    fn several_sessions_only_run_operations() {
        let args = |v: &[&str]| {
            let mut all = vec!["enip-client"];
            all.extend_from_slice(v);
            Args::try_parse_from(all).unwrap()
        };
        let s = args(&["-a", "10.0.0.1-3", "-a", "h", "--connections", "2"])
            .settings()
            .unwrap();
        assert_eq!(s.targets.len(), 4);
        assert_eq!(s.connections, 2);
        let err = |v: &[&str]| args(v).settings().unwrap_err().to_string();
        assert!(err(&["-a", "10.0.0.1-2", "--list-tags"]).contains("--list-tags asks one"));
        assert!(err(&["--connections", "2", "-i"]).contains("-i asks one"));
        assert!(err(&["--connections", "0"]).contains("--connections is 1 or more"));
        assert!(err(&["-a", "10.0.0.0-255", "--connections", "40"])
            .contains("10240 sessions; at most 10000"));
        // One session: cpppo's defaults.
        let s = args(&[]).settings().unwrap();
        assert_eq!(s.targets, [("localhost".to_string(), 44818)]);
    }
}
