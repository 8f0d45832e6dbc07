//! The fleet manifest: YAML in, a validated [`Fleet`] out — or errors that each carry
//! file:line:column and a hint. Nothing is applied until the whole manifest is valid.
//!
//! Parse, then validate: [`RawFleet`] mirrors the YAML (unknown fields refused) and is
//! what `plcfleet schema` prints; [`Fleet`] is what the plan and the backends use, with
//! replicas expanded into one [`Simulator`] each.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::locate::Positions;

/// Most endpoints one Linux bridge holds ("exchange full" at 1024 ports, one is the host).
pub const BRIDGE_MAX_ENDPOINTS: usize = 1000;
/// Most simulators one manifest may expand to.
pub const MAX_SIMULATORS: usize = 20_000;

/// `kind: Fleet` — a named set of simulators, each with its own IP on port 44818.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFleet {
    /// Always `Fleet`.
    pub kind: String,
    pub metadata: Metadata,
    pub spec: FleetSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// The fleet's name: lower-case letters, digits and `-` (it names containers and
    /// networks).
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// In-process simulators on loopback addresses (`plcfleet up`).
    Local,
    /// One container per simulator on a Docker network.
    Docker,
    /// A `SimulatorFleet` custom resource reconciled in a cluster.
    Kubernetes,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Docker => "docker",
            Self::Kubernetes => "kubernetes",
        })
    }
}

/// The fleet's spec: the manifest's `spec:`, and as such the `SimulatorFleet` custom
/// resource's spec (`plcfleet crd` prints that resource's definition).
// One `printcolumn(...)` per column: not a duplicate, whatever clippy says.
#[allow(clippy::duplicated_attributes)]
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, kube::CustomResource)]
#[kube(
    group = "plcfleet.io",
    version = "v1alpha1",
    kind = "SimulatorFleet",
    namespaced,
    status = "crate::k8s::SimulatorFleetStatus",
    shortname = "simfleet",
    category = "plcfleet",
    doc = "A fleet of ControlLogix simulators, one pod each (the plcfleet manifest's spec).",
    printcolumn(name = "Desired", type_ = "integer", json_path = ".status.desired"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.ready"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FleetSpec {
    pub backend: BackendKind,
    /// The simulator image (docker, kubernetes).
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub network: Option<NetworkSpec>,
    /// Applied to every simulator; a simulator's own fields win (tags and generators
    /// merge by name).
    #[serde(default)]
    pub defaults: Option<SimulatorDefaults>,
    pub simulators: Vec<SimulatorSpec>,
    /// The Docker engine for this fleet (`unix:///var/run/docker.sock`,
    /// `tcp://box-2:2375`), so one controller drives fleets on several host boxes;
    /// default: `DOCKER_HOST`, else the local engine.
    #[serde(default)]
    pub docker_host: Option<String>,
    /// A file (relative to the manifest) holding the bearer token of the simulators' web
    /// API: required with `web: true` on docker and kubernetes, where each simulator's
    /// web API listens on its own address. Docker passes it as `ENIP_WEB_TOKEN`;
    /// `plcfleet apply` puts it in the Secret `<fleet>-web-token` on Kubernetes.
    #[serde(default)]
    pub web_token_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Macvlan,
    Ipvlan,
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bridge => "bridge",
            Self::Macvlan => "macvlan",
            Self::Ipvlan => "ipvlan",
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkSpec {
    /// The Docker network's name (defaults to the fleet's).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub driver: Option<Driver>,
    /// The host interface a macvlan or ipvlan network sits on.
    #[serde(default)]
    pub parent: Option<String>,
    /// IPv4 CIDR, e.g. `10.213.0.0/16` (`127.77.0.0/16` for the local backend).
    pub subnet: String,
    #[serde(default)]
    pub gateway: Option<String>,
}

/// Identity fields, as in an enip-server config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IdentitySpec {
    #[serde(default)]
    pub vendor: Option<u16>,
    #[serde(default)]
    pub device_type: Option<u16>,
    #[serde(default)]
    pub product_code: Option<u16>,
    /// `"MAJOR.MINOR"`, quoted.
    #[serde(default)]
    pub revision: Option<String>,
    /// A number, or `auto` for one unique per simulator.
    #[serde(default)]
    #[schemars(schema_with = "serial_schema")]
    pub serial: Option<Serial>,
    #[serde(default)]
    pub product_name: Option<String>,
    #[serde(default)]
    pub controller_name: Option<String>,
}

/// A number or a word: Kubernetes' structural schemas allow that only as
/// int-or-string (an `anyOf` of the two is refused).
fn serial_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A number, or `auto` for one unique per simulator.",
        "x-kubernetes-int-or-string": true,
        "nullable": true
    })
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Serial {
    Number(u32),
    /// `auto`.
    Word(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplaySpec {
    /// A history or CSV file, relative to the manifest.
    pub file: String,
    #[serde(default)]
    pub speed: Option<f64>,
    #[serde(default, rename = "loop")]
    pub looped: Option<bool>,
}

/// The kind of a simulator's Kubernetes Service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ServiceType {
    /// A stable in-cluster address and DNS name (`<fleet>-<simulator>`).
    #[default]
    ClusterIP,
    /// An address outside the cluster, from the cluster's load balancer (MetalLB, a
    /// cloud's); it must allow TCP and UDP on one Service (Kubernetes 1.26 and later).
    LoadBalancer,
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ClusterIP => "ClusterIP",
            Self::LoadBalancer => "LoadBalancer",
        })
    }
}

/// A Kubernetes Service in front of one simulator (backend: kubernetes), named
/// `<fleet>-<simulator>`: port 44818 over TCP and UDP (ListIdentity), and 8080 with `web`.
/// In `defaults` it gives every simulator one; a simulator's own fields win
/// (annotations merge by key).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `ClusterIP` (the default) or `LoadBalancer`.
    #[serde(default, rename = "type")]
    pub type_: Option<ServiceType>,
    /// `LoadBalancer` only, one simulator only: the IPv4 address to ask for. Set as
    /// `spec.loadBalancerIP` (deprecated upstream, but what MetalLB, kube-vip and most
    /// clouds still honour); an implementation that wants an annotation instead (e.g.
    /// `metallb.universe.tf/loadBalancerIPs`) gets it through `annotations`.
    #[serde(default, rename = "loadBalancerIP")]
    pub load_balancer_ip: Option<String>,
    /// Put on the Service as they are (load-balancer pools, address sharing, ...).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A Multus secondary network for the simulator's pod (backend: kubernetes), on which it
/// gets its manifest `ip` (with the prefix of `spec.network.subnet`) as a static address:
/// the pod's `k8s.v1.cni.cncf.io/networks` annotation. The NetworkAttachmentDefinition
/// must use an IPAM that takes requested addresses (`static`, with
/// `capabilities: {ips: true}`). Readiness is then probed on that address.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MultusSpec {
    /// The NetworkAttachmentDefinition: `name` (in the fleet's namespace) or
    /// `namespace/name`.
    pub network: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SimulatorDefaults {
    /// Tag name → `TYPE[dims]`, e.g. `SCADA: "DINT[1000]"`.
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    #[serde(default)]
    pub identity: Option<IdentitySpec>,
    /// Serve the per-simulator web API and /metrics (port 8080).
    #[serde(default)]
    pub web: Option<bool>,
    /// `"Tag[i]": "ramp 0..1000 every 1s"` and the like.
    #[serde(default)]
    pub generators: IndexMap<String, String>,
    #[serde(default)]
    pub replay: Option<ReplaySpec>,
    /// A Service per simulator (backend: kubernetes).
    #[serde(default)]
    pub service: Option<ServiceSpec>,
    /// A Multus network with the simulator's own address (backend: kubernetes).
    #[serde(default)]
    pub multus: Option<MultusSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SimulatorSpec {
    /// With replicas, a template: `line-{index}` or `line-{index:03}` (from 1).
    pub name: String,
    /// The address (one simulator).
    #[serde(default)]
    pub ip: Option<String>,
    /// Copies of this simulator, at consecutive addresses from `ipStart`.
    #[serde(default)]
    pub replicas: Option<u32>,
    #[serde(default)]
    pub ip_start: Option<String>,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    #[serde(default)]
    pub identity: Option<IdentitySpec>,
    #[serde(default)]
    pub web: Option<bool>,
    #[serde(default)]
    pub generators: IndexMap<String, String>,
    #[serde(default)]
    pub replay: Option<ReplaySpec>,
    /// A Service for this simulator (backend: kubernetes).
    #[serde(default)]
    pub service: Option<ServiceSpec>,
    /// A Multus network with this simulator's `ip` (backend: kubernetes).
    #[serde(default)]
    pub multus: Option<MultusSpec>,
}

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a CIDR subnet such as 10.213.0.0/16"))?;
        let ip: Ipv4Addr = ip
            .trim()
            .parse()
            .map_err(|_| format!("`{ip}` is not an IPv4 address"))?;
        let prefix: u8 = len
            .trim()
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("prefix `/{len}` must be /8 to /30"))?;
        let mask = u32::MAX << (32 - prefix);
        if u32::from(ip) & !mask != 0 {
            return Err(format!(
                "`{s}` has host bits set; the subnet is {}/{prefix}",
                Ipv4Addr::from(u32::from(ip) & mask)
            ));
        }
        Ok(Self { base: ip, prefix })
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.base)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) | !self.mask())
    }

    /// The first host address, the default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// The validated network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub driver: Driver,
    pub parent: Option<String>,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
}

/// One simulator, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulator {
    pub name: String,
    pub ip: Ipv4Addr,
    /// `NAME=TYPE[dims]` specs, in order.
    pub tags: Vec<String>,
    /// `--identity`-style settings, resolved (serial `auto` made unique).
    pub identity: BTreeMap<String, String>,
    pub web: bool,
    /// `TAG=EXPR` generator bindings.
    pub generators: Vec<String>,
    pub replay: Option<Replay>,
    /// Its Kubernetes Service, if it asks for one.
    pub service: Option<Service>,
    /// Its Multus network, if any (its address there is `ip`).
    pub multus: Option<Multus>,
    /// SHA-256 of the fleet's web token when this simulator serves its web API with
    /// one (docker, kubernetes): part of the spec hash, never the token.
    pub web_token_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// Resolved against the manifest's directory.
    pub file: PathBuf,
    /// As the manifest writes it (what names it in a pod's ConfigMap).
    pub as_written: String,
    pub speed: f64,
    pub looped: bool,
}

/// A validated [`ServiceSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub type_: ServiceType,
    pub load_balancer_ip: Option<Ipv4Addr>,
    pub annotations: BTreeMap<String, String>,
}

/// A validated [`MultusSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multus {
    /// `None`: the pod's own namespace.
    pub namespace: Option<String>,
    pub name: String,
    /// The prefix length of `spec.network.subnet`.
    pub prefix: u8,
}

impl Simulator {
    /// The `enip-server` command line that runs this simulator (after the binary name).
    pub fn args(&self) -> Vec<String> {
        self.args_on(&self.ip.to_string())
    }

    /// [`Self::args`], listening on `host` instead of the simulator's address (`0.0.0.0`
    /// in a pod, which has an address of its own).
    pub fn args_on(&self, host: &str) -> Vec<String> {
        let mut a = vec!["-a".to_owned(), format!("{host}:44818")];
        if self.web {
            a.extend(["-w".to_owned(), format!("{host}:8080")]);
        }
        for (k, v) in &self.identity {
            a.extend(["--identity".to_owned(), format!("{k}={v}")]);
        }
        for g in &self.generators {
            a.extend(["-g".to_owned(), g.clone()]);
        }
        if let Some(r) = &self.replay {
            a.extend([
                "--replay".to_owned(),
                r.file.display().to_string(),
                "--speed".to_owned(),
                r.speed.to_string(),
            ]);
            if r.looped {
                a.push("--loop".to_owned());
            }
        }
        a.extend(self.tags.iter().cloned());
        a
    }

    /// A hash of everything that makes this simulator what it is: a change means the
    /// simulator must be recreated.
    pub fn spec_hash(&self, image: &str) -> String {
        let mut parts = self.args();
        // A new web token means a new container; only its digest is hashed.
        if let Some(d) = &self.web_token_digest {
            parts.push(format!("web-token-sha256={d}"));
        }
        hash_command(image, &parts)
    }
}

/// A stable hash of an image and its arguments.
pub fn hash_command(image: &str, args: &[String]) -> String {
    {
        // FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in std::iter::once(image).chain(args.iter().map(String::as_str)) {
            for b in part.bytes().chain(std::iter::once(0)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        format!("{h:016x}")
    }
}

/// The simulators' web API token of a fleet.
#[derive(Clone, PartialEq, Eq)]
pub struct WebToken {
    /// Resolved against the manifest.
    pub file: PathBuf,
    /// The token; empty for a resource in a cluster, whose token is in its Secret.
    pub value: String,
}

impl fmt::Debug for WebToken {
    /// Never the token itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebToken")
            .field("file", &self.file)
            .field("value", &"<redacted>")
            .finish()
    }
}

impl WebToken {
    /// SHA-256 of the token, hex: what may appear in labels and spec hashes.
    pub fn digest(&self) -> String {
        ring::digest::digest(&ring::digest::SHA256, self.value.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A validated fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub name: String,
    pub backend: BackendKind,
    pub image: String,
    pub network: Network,
    pub simulators: Vec<Simulator>,
    /// The Docker engine to use (docker backend); `None` for the default.
    pub docker_host: Option<String>,
    /// The simulators' web API token (`spec.webTokenFile`).
    pub web_token: Option<WebToken>,
    /// Where the manifest came from (relative replay files resolve against it).
    pub source: PathBuf,
}

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the manifest, e.g. `spec.simulators[1].ip` (empty: the whole file).
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Why a manifest was refused: every problem found, each with its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, p) in self.problems.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: {}", self.file, p.line, p.column, p.message)?;
            if let Some(h) = &p.hint {
                write!(f, "\n  hint: {h}")?;
            }
        }
        Ok(())
    }
}

/// Collects problems with their positions.
struct Checker<'a> {
    positions: &'a Positions,
    problems: Vec<Problem>,
    /// Whether relative files (replay) must exist here: not for a resource in a cluster,
    /// whose files travel in a ConfigMap.
    check_files: bool,
}

impl Checker<'_> {
    fn add(&mut self, path: &str, message: impl Into<String>, hint: Option<&str>) {
        let (line, column) = self.positions.of(path).unwrap_or((1, 1));
        let p = Problem {
            path: path.to_owned(),
            line,
            column,
            message: message.into(),
            hint: hint.map(str::to_owned),
        };
        // A problem in `defaults` is found once per simulator entry: say it once.
        if !self.problems.contains(&p) {
            self.problems.push(p);
        }
    }
}

/// Load and validate a manifest file.
pub fn load(path: &Path) -> Result<Fleet, ManifestError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
        file: file.clone(),
        problems: vec![Problem {
            path: String::new(),
            line: 1,
            column: 1,
            message: format!("cannot read: {e}"),
            hint: None,
        }],
    })?;
    parse(path, &text)
}

/// Parse and validate manifest text; `path` names it in errors and anchors relative
/// files.
pub fn parse(path: &Path, text: &str) -> Result<Fleet, ManifestError> {
    let file = path.display().to_string();
    let raw: RawFleet = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        // yaml_serde appends " at line X column Y"; the prefix says it already.
        let msg = e.to_string();
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg.get(..i).unwrap_or(&msg).to_owned(),
            None => msg,
        };
        let hint = if msg.contains("unknown field") {
            Some("run `plcfleet schema` for every field a manifest may have".to_owned())
        } else {
            None
        };
        ManifestError {
            file: file.clone(),
            problems: vec![Problem {
                path: String::new(),
                line,
                column,
                message: msg,
                hint,
            }],
        }
    })?;
    let positions = Positions::index(text);
    let mut c = Checker {
        positions: &positions,
        problems: Vec::new(),
        check_files: true,
    };
    let fleet = validate(&raw, path, &mut c);
    match fleet {
        Some(f) if c.problems.is_empty() => Ok(f),
        _ => Err(ManifestError {
            file,
            problems: c.problems,
        }),
    }
}

/// Validate a fleet given as a name and a spec (a `SimulatorFleet` resource), with no
/// file behind it (so replay files are not looked for): each problem names its path (`spec.simulators[1].ip`), and its line
/// and column are 1:1. `what` names the fleet in errors (`namespace/name`).
pub fn validate_spec(what: &str, name: &str, spec: &FleetSpec) -> Result<Fleet, ManifestError> {
    let raw = RawFleet {
        kind: "Fleet".to_owned(),
        metadata: Metadata {
            name: name.to_owned(),
        },
        spec: spec.clone(),
    };
    let positions = Positions::default();
    let mut c = Checker {
        positions: &positions,
        problems: Vec::new(),
        check_files: false,
    };
    let fleet = validate(&raw, Path::new("."), &mut c);
    match fleet {
        Some(f) if c.problems.is_empty() => Ok(f),
        _ => Err(ManifestError {
            file: what.to_owned(),
            problems: c.problems,
        }),
    }
}

/// A fleet or simulator name: DNS-label-like, 1 to 53 characters.
pub fn check_name(s: &str) -> Result<(), &'static str> {
    let ok_char = |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-';
    if s.is_empty() || s.len() > 53 {
        Err("1 to 53 characters")
    } else if !s.chars().all(ok_char) {
        Err("only lower-case letters, digits and `-`")
    } else if s.starts_with('-') || s.ends_with('-') {
        Err("must start and end with a letter or digit")
    } else {
        Ok(())
    }
}

/// `line-{index:03}` with index 7 → `line-007`.
fn expand_name(template: &str, index: u32) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(rest.get(..open).unwrap_or_default());
        let after = rest.get(open..).unwrap_or_default();
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{template}`: `{{` without `}}`"))?;
        let field = after.get(1..close).unwrap_or_default();
        match field.split_once(':') {
            None if field == "index" => out.push_str(&index.to_string()),
            Some(("index", w)) => {
                let width: usize = w
                    .trim_start_matches('0')
                    .parse()
                    .map_err(|_| format!("`{template}`: bad width `{w}` (e.g. {{index:03}})"))?;
                out.push_str(&format!("{index:0width$}"));
            }
            _ => {
                return Err(format!(
                    "`{template}`: unknown field `{{{field}}}` (only {{index}} or {{index:03}})"
                ))
            }
        }
        rest = after.get(close + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

fn validate(raw: &RawFleet, source: &Path, c: &mut Checker<'_>) -> Option<Fleet> {
    if raw.kind != "Fleet" {
        c.add(
            "kind",
            format!("kind `{}` is not `Fleet`", raw.kind),
            Some("write `kind: Fleet`"),
        );
    }
    let name = raw.metadata.name.clone();
    if let Err(why) = check_name(&name) {
        c.add(
            "metadata.name",
            format!("fleet name `{name}`: {why}"),
            Some("e.g. `plant-a`"),
        );
    }
    let spec = &raw.spec;
    let backend = spec.backend;
    let network = validate_network(spec, &name, c)?;
    let image = match (&spec.image, backend) {
        (Some(i), _) => i.clone(),
        (None, BackendKind::Local) => String::new(),
        (None, _) => "cpppo/scada:latest".to_owned(),
    };
    let defaults = spec.defaults.clone().unwrap_or_default();
    let mut sims: Vec<Simulator> = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut ips: HashMap<Ipv4Addr, String> = HashMap::new();
    let mut lb_ips: HashMap<Ipv4Addr, String> = HashMap::new();
    let base_dir = source.parent().unwrap_or(Path::new("."));
    for (n, s) in spec.simulators.iter().enumerate() {
        let at = format!("spec.simulators[{n}]");
        let replicas = s.replicas.unwrap_or(1);
        if replicas == 0 {
            c.add(
                &format!("{at}.replicas"),
                "replicas must be at least 1",
                None,
            );
            continue;
        }
        let start = match (&s.ip, &s.ip_start, s.replicas) {
            (Some(ip), None, None | Some(1)) => ip.parse::<Ipv4Addr>().map_err(|_| "ip"),
            (None, Some(ip), _) => ip.parse::<Ipv4Addr>().map_err(|_| "ipStart"),
            (Some(_), Some(_), _) => {
                c.add(
                    &at,
                    "give `ip` or `ipStart`, not both",
                    Some("`ip` for one simulator, `ipStart` with `replicas`"),
                );
                continue;
            }
            (Some(_), None, Some(_)) => {
                c.add(
                    &format!("{at}.ip"),
                    "`replicas` needs `ipStart`, not `ip`",
                    Some("replicas take consecutive addresses from ipStart"),
                );
                continue;
            }
            (None, None, _) => {
                c.add(
                    &at,
                    format!("simulator `{}` has no address", s.name),
                    Some("add `ip: <address>` (or `ipStart` with `replicas`)"),
                );
                continue;
            }
        };
        let start = match start {
            Ok(ip) => ip,
            Err(field) => {
                c.add(
                    &format!("{at}.{field}"),
                    format!(
                        "`{}` is not an IPv4 address",
                        s.ip.as_deref()
                            .or(s.ip_start.as_deref())
                            .unwrap_or_default()
                    ),
                    None,
                );
                continue;
            }
        };
        if replicas > 1 && !s.name.contains("{index") {
            c.add(
                &format!("{at}.name"),
                format!("`{}` names {replicas} replicas alike", s.name),
                Some("put {index} or {index:03} in the name"),
            );
            continue;
        }
        if sims.len() + replicas as usize > MAX_SIMULATORS {
            c.add(
                &format!("{at}.replicas"),
                format!("more than {MAX_SIMULATORS} simulators in one fleet"),
                Some("split the fleet into several manifests"),
            );
            return None;
        }
        // Tags and generators: defaults, then the simulator's own (same name wins).
        let mut tags = defaults.tags.clone();
        for (k, v) in &s.tags {
            tags.insert(k.clone(), v.clone());
        }
        let mut gens = defaults.generators.clone();
        for (k, v) in &s.generators {
            gens.insert(k.clone(), v.clone());
        }
        if tags.is_empty() {
            c.add(
                &at,
                format!("simulator `{}` has no tags", s.name),
                Some("give it tags (or spec.defaults.tags), e.g. tags: {SCADA: \"DINT[1000]\"}"),
            );
        }
        let tag_specs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // Check tags and generators once per entry, on a scratch controller.
        let mut scratch = enip_device::Controller::new();
        for ((k, _), spec_text) in tags.iter().zip(&tag_specs) {
            if let Err(e) = scratch.add_addressed_tag(spec_text) {
                let path = if s.tags.contains_key(k) {
                    format!("{at}.tags.{k}")
                } else {
                    format!("spec.defaults.tags.{k}")
                };
                c.add(&path, e.to_string(), Some("TYPE is BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING SSTRING, with [n], [a,b] or [a,b,c]"));
            }
        }
        let mut gen_specs = Vec::new();
        for (k, v) in &gens {
            let path = if s.generators.contains_key(k) {
                format!("{at}.generators.{k}")
            } else {
                format!("spec.defaults.generators.{k}")
            };
            let text = format!("{k}={v}");
            match enip_server::generate::Binding::parse(&text) {
                Ok(b) if scratch.tags.find(&b.tag).is_none() => {
                    c.add(&path, format!("generator for `{}`: no such tag", b.tag), Some("add the tag under `tags`"));
                }
                Ok(_) => gen_specs.push(text),
                Err(e) => c.add(&path, format!("generator `{v}`: {}", e.message), Some("ramp A..B every Ns | sine C +/- A period Ps | random A..B every Ns | square A..B period Ps")),
            }
        }
        let web = s.web.or(defaults.web).unwrap_or(false);
        let identity_spec = merge_identity(defaults.identity.as_ref(), s.identity.as_ref());
        let replay = s.replay.clone().or_else(|| defaults.replay.clone());
        let replay = match replay {
            Some(r) => {
                let file = base_dir.join(&r.file);
                if c.check_files && !file.is_file() {
                    c.add(
                        &format!("{at}.replay.file"),
                        format!("replay file `{}` not found", file.display()),
                        Some("paths are relative to the manifest"),
                    );
                }
                let speed = r.speed.unwrap_or(1.0);
                if !(speed.is_finite() && speed > 0.0) {
                    c.add(&format!("{at}.replay.speed"), "speed must be above 0", None);
                }
                Some(Replay {
                    file,
                    as_written: r.file.clone(),
                    speed,
                    looped: r.looped.unwrap_or(false),
                })
            }
            None => None,
        };
        let service = validate_service(
            backend,
            defaults.service.as_ref(),
            s.service.as_ref(),
            &at,
            replicas,
            c,
        );
        let multus = validate_multus(
            backend,
            &network,
            defaults.multus.as_ref(),
            s.multus.as_ref(),
            &at,
            c,
        );
        for i in 0..replicas {
            let sim_name = if s.replicas.is_some() {
                match expand_name(&s.name, i + 1) {
                    Ok(n) => n,
                    Err(e) => {
                        c.add(&format!("{at}.name"), e, None);
                        break;
                    }
                }
            } else {
                s.name.clone()
            };
            if i == 0 {
                if let Err(why) = check_name(&sim_name) {
                    c.add(
                        &format!("{at}.name"),
                        format!("simulator name `{sim_name}`: {why}"),
                        None,
                    );
                    break;
                }
            }
            let Some(ip) = u32::from(start).checked_add(i).map(Ipv4Addr::from) else {
                c.add(
                    &format!("{at}.ipStart"),
                    "addresses run past 255.255.255.255",
                    None,
                );
                break;
            };
            let ip_path = if s.replicas.is_some() {
                format!("{at}.ipStart")
            } else {
                format!("{at}.ip")
            };
            if !network.subnet.contains(ip) {
                c.add(
                    &ip_path,
                    format!("{sim_name}: {ip} is outside the subnet {}", network.subnet),
                    Some("pick addresses inside spec.network.subnet"),
                );
                break;
            }
            if ip == network.subnet.base
                || ip == network.subnet.broadcast()
                || ip == network.gateway
            {
                let what = if ip == network.gateway {
                    "the gateway"
                } else if ip == network.subnet.base {
                    "the network address"
                } else {
                    "the broadcast address"
                };
                c.add(
                    &ip_path,
                    format!("{sim_name}: {ip} is {what}"),
                    Some("start after the gateway, e.g. .10"),
                );
                break;
            }
            if let Some(other) = names.insert(sim_name.clone(), at.clone()) {
                c.add(
                    &format!("{at}.name"),
                    format!("duplicate simulator name `{sim_name}` (also in {other})"),
                    None,
                );
                break;
            }
            if let Some(other) = ips.insert(ip, sim_name.clone()) {
                c.add(
                    &ip_path,
                    format!("{sim_name}: {ip} is already `{other}`'s address"),
                    Some("every simulator needs its own address"),
                );
                break;
            }
            if service.is_some() {
                let svc = format!("{name}-{sim_name}");
                if svc.len() > 63 || !svc.starts_with(|ch: char| ch.is_ascii_lowercase()) {
                    c.add(
                        &format!("{at}.service"),
                        format!("the Service name `{svc}` is not a DNS label (a letter first, at most 63 characters)"),
                        Some("shorten the fleet or simulator name; a fleet name must start with a letter"),
                    );
                    break;
                }
            }
            if let Some(lb) = service.as_ref().and_then(|v| v.load_balancer_ip) {
                if let Some(other) = lb_ips.insert(lb, sim_name.clone()) {
                    c.add(
                        &format!("{at}.service.loadBalancerIP"),
                        format!("{sim_name}: loadBalancerIP {lb} is already `{other}`'s"),
                        Some("every Service needs its own address"),
                    );
                    break;
                }
            }
            let mut identity = identity_spec.clone();
            if identity.get("serial").map(String::as_str) == Some("auto") {
                // Unique per simulator and stable across applies: from the address.
                identity.insert("serial".into(), format!("{:#010x}", u32::from(ip)));
            }
            sims.push(Simulator {
                name: sim_name,
                ip,
                tags: tag_specs.clone(),
                identity,
                web,
                generators: gen_specs.clone(),
                replay: replay.clone(),
                service: service.clone(),
                multus: multus.clone(),
                web_token_digest: None,
            });
        }
        check_identity(&identity_spec, &format!("{at}.identity"), c);
    }
    if backend == BackendKind::Docker
        && network.driver == Driver::Bridge
        && sims.len() > BRIDGE_MAX_ENDPOINTS
    {
        c.add(
            "spec.simulators",
            format!(
                "{} simulators on one bridge network; a Linux bridge holds about {BRIDGE_MAX_ENDPOINTS}",
                sims.len()
            ),
            Some("split the fleet into manifests of at most 1000 simulators, each with its own network and subnet, or use driver: macvlan"),
        );
    }
    if let Some(h) = &spec.docker_host {
        if backend != BackendKind::Docker {
            c.add(
                "spec.dockerHost",
                format!("dockerHost is for the docker backend, not {backend}"),
                None,
            );
        } else if !(h.starts_with("unix://") || h.starts_with("tcp://")) {
            c.add(
                "spec.dockerHost",
                format!("`{h}` is not a unix:// or tcp:// address"),
                Some("e.g. tcp://box-2:2375, or tunnel ssh with `ssh -L`"),
            );
        }
    }
    let web_token = validate_web_token(spec, backend, &sims, base_dir, c);
    if let Some(t) = &web_token {
        let digest = (!t.value.is_empty()).then(|| t.digest());
        for sim in sims.iter_mut().filter(|s| s.web) {
            sim.web_token_digest.clone_from(&digest);
        }
    }
    if sims.is_empty() && c.problems.is_empty() {
        c.add(
            "spec.simulators",
            "the fleet has no simulators",
            Some("add at least one under spec.simulators"),
        );
    }
    Some(Fleet {
        name,
        backend,
        image,
        network,
        simulators: sims,
        docker_host: spec.docker_host.clone(),
        web_token,
        source: source.to_owned(),
    })
}

/// `spec.webTokenFile`: required when a simulator serves its web API on its own
/// address (docker, kubernetes), read here when files are at hand.
fn validate_web_token(
    spec: &FleetSpec,
    backend: BackendKind,
    sims: &[Simulator],
    base_dir: &Path,
    c: &mut Checker<'_>,
) -> Option<WebToken> {
    let Some(written) = &spec.web_token_file else {
        if backend != BackendKind::Local && sims.iter().any(|s| s.web) {
            let at = if spec.defaults.as_ref().and_then(|d| d.web) == Some(true) {
                "spec.defaults.web".to_owned()
            } else {
                let n = spec
                    .simulators
                    .iter()
                    .position(|s| s.web == Some(true))
                    .unwrap_or(0);
                format!("spec.simulators[{n}].web")
            };
            c.add(
                &at,
                format!(
                    "`web: true` on the {backend} backend serves each simulator's web API on its \
                     own address, which needs a token"
                ),
                Some("add `webTokenFile: web-token` under spec, a file next to the manifest holding the token (e.g. `head -c 24 /dev/urandom | base64 > web-token`)"),
            );
        }
        return None;
    };
    if backend == BackendKind::Local {
        c.add(
            "spec.webTokenFile",
            "webTokenFile is for the docker and kubernetes backends",
            Some("local simulators serve their web API on loopback and need no token: remove it"),
        );
        return None;
    }
    let file = base_dir.join(written);
    let mut value = String::new();
    if c.check_files {
        match std::fs::read_to_string(&file) {
            Ok(text) => match enip_server::guard::token_from(&text) {
                Some(t) => value = t,
                None => c.add(
                    "spec.webTokenFile",
                    format!("web token file `{}` is empty", file.display()),
                    Some("put the token in it, on one line"),
                ),
            },
            Err(e) => c.add(
                "spec.webTokenFile",
                format!("cannot read web token file `{}`: {e}", file.display()),
                Some("paths are relative to the manifest"),
            ),
        }
    }
    Some(WebToken { file, value })
}

/// The Service an entry asks for: its own fields over the defaults'.
fn validate_service(
    backend: BackendKind,
    defaults: Option<&ServiceSpec>,
    own: Option<&ServiceSpec>,
    at: &str,
    replicas: u32,
    c: &mut Checker<'_>,
) -> Option<Service> {
    let (merged, path) = match (defaults, own) {
        (None, None) => return None,
        (_, Some(_)) => (
            ServiceSpec {
                type_: own.and_then(|o| o.type_).or(defaults.and_then(|d| d.type_)),
                load_balancer_ip: own.and_then(|o| o.load_balancer_ip.clone()),
                annotations: defaults
                    .iter()
                    .chain(own.iter())
                    .flat_map(|s| s.annotations.clone())
                    .collect(),
            },
            format!("{at}.service"),
        ),
        (Some(d), None) => (d.clone(), "spec.defaults.service".to_owned()),
    };
    if backend != BackendKind::Kubernetes {
        c.add(
            &path,
            format!("`service` is for the kubernetes backend, not {backend}"),
            Some("remove it, or write `backend: kubernetes`"),
        );
        return None;
    }
    let type_ = merged.type_.unwrap_or_default();
    let load_balancer_ip = match merged.load_balancer_ip.as_deref() {
        None => None,
        Some(_) if own.is_none() => {
            c.add(
                "spec.defaults.service.loadBalancerIP",
                "a loadBalancerIP in defaults would give every simulator the same address",
                Some("set it on each simulator's own `service`"),
            );
            return None;
        }
        Some(text) => {
            let at_ip = format!("{path}.loadBalancerIP");
            let Ok(ip) = text.trim().parse::<Ipv4Addr>() else {
                c.add(
                    &at_ip,
                    format!("`{text}` is not an IPv4 address"),
                    Some("e.g. loadBalancerIP: 192.168.50.10"),
                );
                return None;
            };
            if type_ != ServiceType::LoadBalancer {
                c.add(
                    &at_ip,
                    format!("loadBalancerIP needs `type: LoadBalancer`, not {type_}"),
                    Some("add type: LoadBalancer, or remove loadBalancerIP"),
                );
                return None;
            }
            if replicas > 1 {
                c.add(
                    &at_ip,
                    format!("one loadBalancerIP for {replicas} replicas"),
                    Some("give each simulator its own entry, or leave loadBalancerIP out and let the load balancer pick"),
                );
                return None;
            }
            Some(ip)
        }
    };
    Some(Service {
        type_,
        load_balancer_ip,
        annotations: merged.annotations,
    })
}

/// The Multus network an entry asks for (its own, else the defaults').
fn validate_multus(
    backend: BackendKind,
    network: &Network,
    defaults: Option<&MultusSpec>,
    own: Option<&MultusSpec>,
    at: &str,
    c: &mut Checker<'_>,
) -> Option<Multus> {
    let (spec, path) = match (own, defaults) {
        (Some(o), _) => (o, format!("{at}.multus")),
        (None, Some(d)) => (d, "spec.defaults.multus".to_owned()),
        (None, None) => return None,
    };
    if backend != BackendKind::Kubernetes {
        c.add(
            &path,
            format!("`multus` is for the kubernetes backend, not {backend}"),
            Some("remove it, or write `backend: kubernetes`"),
        );
        return None;
    }
    let (namespace, name) = match spec.network.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, spec.network.as_str()),
    };
    let label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    let subdomain = |s: &str| s.len() <= 253 && s.split('.').all(label);
    if !namespace.is_none_or(label) || !subdomain(name) {
        c.add(
            &format!("{path}.network"),
            format!("`{}` is not `name` or `namespace/name` of a NetworkAttachmentDefinition", spec.network),
            Some("lower-case letters, digits, `-` (and `.` in the name), e.g. network: ot/plant-floor"),
        );
        return None;
    }
    Some(Multus {
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
        prefix: network.subnet.prefix,
    })
}

fn merge_identity(
    defaults: Option<&IdentitySpec>,
    own: Option<&IdentitySpec>,
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for spec in [defaults, own].into_iter().flatten() {
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        put("vendor", spec.vendor.map(|v| v.to_string()));
        put("device_type", spec.device_type.map(|v| v.to_string()));
        put("product_code", spec.product_code.map(|v| v.to_string()));
        put("revision", spec.revision.clone());
        put(
            "serial",
            spec.serial.as_ref().map(|s| match s {
                Serial::Number(n) => n.to_string(),
                Serial::Word(w) => w.clone(),
            }),
        );
        put("product_name", spec.product_name.clone());
        put("controller_name", spec.controller_name.clone());
    }
    m
}

fn check_identity(m: &BTreeMap<String, String>, at: &str, c: &mut Checker<'_>) {
    if let Some(r) = m.get("revision") {
        let ok = r
            .split_once('.')
            .is_some_and(|(a, b)| a.parse::<u8>().is_ok() && b.parse::<u8>().is_ok());
        if !ok {
            c.add(
                &format!("{at}.revision"),
                format!("revision `{r}` is not MAJOR.MINOR"),
                Some("quote it: revision: \"32.11\""),
            );
        }
    }
    if let Some(s) = m.get("serial") {
        if s != "auto" && !s.starts_with("0x") && s.parse::<u32>().is_err() {
            c.add(
                &format!("{at}.serial"),
                format!("serial `{s}` is neither a number nor `auto`"),
                None,
            );
        }
    }
    if let Some(p) = m.get("product_name") {
        if p.len() > 32 {
            c.add(
                &format!("{at}.productName"),
                format!("product name `{p}` is longer than 32 characters"),
                None,
            );
        }
    }
}

fn validate_network(spec: &FleetSpec, fleet: &str, c: &mut Checker<'_>) -> Option<Network> {
    let Some(n) = &spec.network else {
        match spec.backend {
            BackendKind::Local => {
                // Loopback needs no configuration: 127.77.0.0/16 by default.
                let subnet = Subnet::parse("127.77.0.0/16").ok()?;
                return Some(Network {
                    name: fleet.to_owned(),
                    driver: Driver::Bridge,
                    parent: None,
                    subnet,
                    gateway: subnet.first_host(),
                });
            }
            _ => {
                c.add(
                    "spec",
                    "a network is required for this backend",
                    Some("add spec.network with name, driver and subnet"),
                );
                return None;
            }
        }
    };
    let subnet = match Subnet::parse(&n.subnet) {
        Ok(s) => s,
        Err(e) => {
            c.add("spec.network.subnet", e, None);
            return None;
        }
    };
    let loopback = Subnet::parse("127.0.0.0/8").ok()?;
    let is_loop = loopback.contains(subnet.base);
    match (spec.backend, is_loop) {
        (BackendKind::Local, false) => c.add(
            "spec.network.subnet",
            format!("the local backend serves on loopback; {subnet} is not in 127.0.0.0/8"),
            Some("use e.g. subnet: 127.77.0.0/16"),
        ),
        (BackendKind::Docker | BackendKind::Kubernetes, true) => c.add(
            "spec.network.subnet",
            format!("{subnet} is loopback; containers need a routable subnet"),
            Some("use e.g. 10.213.0.0/16, or backend: local"),
        ),
        _ => {}
    }
    let driver = n.driver.unwrap_or(Driver::Bridge);
    if matches!(driver, Driver::Macvlan | Driver::Ipvlan) && n.parent.is_none() {
        c.add(
            "spec.network.driver",
            format!("a {driver} network needs `parent`"),
            Some("add parent: <host interface>, e.g. eth1"),
        );
    }
    let gateway = match &n.gateway {
        Some(g) => match g.parse::<Ipv4Addr>() {
            Ok(ip) if subnet.contains(ip) && ip != subnet.base && ip != subnet.broadcast() => ip,
            Ok(ip) => {
                c.add(
                    "spec.network.gateway",
                    format!("gateway {ip} is not a host address of {subnet}"),
                    None,
                );
                return None;
            }
            Err(_) => {
                c.add(
                    "spec.network.gateway",
                    format!("`{g}` is not an IPv4 address"),
                    None,
                );
                return None;
            }
        },
        None => subnet.first_host(),
    };
    let name = n.name.clone().unwrap_or_else(|| fleet.to_owned());
    Some(Network {
        name,
        driver,
        parent: n.parent.clone(),
        subnet,
        gateway,
    })
}

/// The manifest's JSON Schema, as `plcfleet schema` prints it.
pub fn schema() -> String {
    let s = schemars::schema_for!(RawFleet);
    serde_json::to_string_pretty(&s).unwrap_or_default()
}
