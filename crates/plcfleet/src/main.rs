//! `plcfleet`: YAML fleet manifests in, hundreds of single-IP ControlLogix simulators out.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use plcfleet::api::{self, FleetStatus, SimulatorStatus};
use plcfleet::apply::{self, ApplyOptions};
use plcfleet::backend::{Backend as _, BackendError, Timed};
use plcfleet::docker::DockerBackend;
use plcfleet::engines::Engines;
use plcfleet::k8s::{self, SimulatorFleet};
use plcfleet::local::LocalBackend;
use plcfleet::manifest::{self, BackendKind, Fleet};

/// Declarative fleets of ControlLogix simulators: each its own IP, port 44818.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "\
Examples:
  plcfleet up deploy/examples/quickstart.yaml      # 100 simulators in this process
  plcfleet validate deploy/examples/plant-a.yaml
  plcfleet plan deploy/examples/plant-a.yaml       # exit 0: no change, 2: changes
  plcfleet schema > fleet.schema.json
  plcfleet crd > deploy/crd/simulatorfleets.yaml"
)]
struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Check a manifest; print every problem with file:line:column and a hint.
    Validate { file: PathBuf },
    /// Show what apply would create, update and delete (exit 0: nothing, 2: changes).
    Plan { file: PathBuf },
    /// Converge the backend on the manifest, then wait until every simulator answers.
    Apply {
        file: PathBuf,
        #[command(flatten)]
        opts: ApplyArgs,
    },
    /// Show a fleet's simulators: name, address, state, health, uptime, requests.
    Status {
        /// A manifest file, or a fleet's name: then the controller at --controller is
        /// asked first (it knows local fleets too), else the Docker engine (by labels).
        #[arg(value_name = "FILE|NAME")]
        target: String,
        /// table, json or yaml.
        #[arg(short, long, default_value = "table")]
        output: String,
        #[command(flatten)]
        by_name: ByName,
    },
    /// Remove everything the fleet owns, and nothing else.
    Delete {
        /// A manifest file, or a fleet's name: then the controller at --controller removes
        /// its manifest (and so the fleet), else the Docker engine's containers and
        /// network that carry the fleet's labels are removed.
        #[arg(value_name = "FILE|NAME")]
        target: String,
        #[command(flatten)]
        by_name: ByName,
    },
    /// Run a local fleet in the foreground, with the controller API, dashboard and
    /// /metrics, until Ctrl-C.
    Up {
        file: PathBuf,
        #[command(flatten)]
        opts: ApplyArgs,
        #[command(flatten)]
        listen: Listen,
        /// Keep a Prometheus file_sd targets file up to date.
        #[arg(long, value_name = "FILE")]
        targets: Option<PathBuf>,
    },
    /// Reconcile every manifest in DIR as files are added, changed and removed; repair
    /// drift; serve the controller API, dashboard and /metrics.
    Controller {
        /// The directory of fleet manifests (*.yaml, *.yml).
        #[arg(long, value_name = "DIR", required_unless_present = "kubernetes")]
        manifests: Option<PathBuf>,
        /// Reconcile SimulatorFleet resources in the cluster (in-cluster config or
        /// KUBECONFIG) instead of a directory; --parallel bounds fleets at once.
        #[arg(long, conflicts_with_all = ["manifests", "targets"])]
        kubernetes: bool,
        #[command(flatten)]
        listen: Listen,
        /// Keep a Prometheus file_sd targets file up to date.
        #[arg(long, value_name = "FILE")]
        targets: Option<PathBuf>,
        /// Seconds between reconciles (drift is repaired within one).
        #[arg(long, default_value = "5", value_name = "SECS")]
        resync: f64,
        /// Backend calls in flight at once.
        #[arg(long, default_value = "64")]
        parallel: usize,
    },
    /// Print the manifest's JSON Schema.
    Schema,
    /// Print the SimulatorFleet CustomResourceDefinition (Kubernetes) as YAML.
    Crd,
    /// Print the Prometheus file_sd targets of a manifest's simulators.
    Targets { file: PathBuf },
}

/// Where to find a fleet given by name rather than by manifest.
#[derive(Debug, clap::Args)]
struct ByName {
    /// With a NAME: the plcfleet controller (or `plcfleet up`) to ask first.
    #[arg(long, default_value = "127.0.0.1:9100", value_name = "HOST:PORT")]
    controller: String,
    /// With a NAME: the Docker engine (default: DOCKER_HOST, else the local one).
    #[arg(long, value_name = "URL")]
    docker_host: Option<String>,
    /// With a NAME: the SimulatorFleet resource of that name (Kubernetes, default
    /// namespace) instead.
    #[arg(long)]
    kubernetes: bool,
}

/// Where the controller API listens, and how it is guarded.
#[derive(Debug, clap::Args)]
struct Listen {
    /// The controller API, dashboard and /metrics (loopback by default).
    #[arg(long, default_value = "127.0.0.1:9100", value_name = "HOST:PORT")]
    listen: String,
    /// The file holding the API's bearer token (else env PLCFLEET_TOKEN); required when
    /// --listen is not loopback. GET /metrics and /healthz stay open.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// API requests per second per client address, optionally /BURST (beyond: 429).
    #[arg(long, default_value = "200/400", value_name = "N[/BURST]")]
    rate: String,
}

/// The env variable holding the controller API's token, for `up`/`controller` and for
/// the commands that ask a controller by fleet name.
const TOKEN_ENV: &str = "PLCFLEET_TOKEN";

/// Bind the controller API as `l` says; refuse a listener off loopback without a token.
async fn listen_api(
    l: &Listen,
    shared: api::Shared,
) -> Result<(tokio::net::TcpListener, axum::Router)> {
    let token = match &l.token_file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --token-file {}", file.display()))?;
            Some(enip_server::guard::token_from(&text).ok_or_else(|| {
                anyhow!(
                    "--token-file {}: the file is empty; put the token in it",
                    file.display()
                )
            })?)
        }
        None => match std::env::var(TOKEN_ENV) {
            Ok(t) => Some(enip_server::guard::token_from(&t).ok_or_else(|| {
                anyhow!("{TOKEN_ENV} is set but empty; set it to the token, or unset it")
            })?),
            Err(_) => None,
        },
    };
    let rate: enip_server::guard::Rate = l.rate.parse().context("bad --rate")?;
    let listener = tokio::net::TcpListener::bind(&l.listen)
        .await
        .with_context(|| format!("cannot listen on {} for the controller API", l.listen))?;
    let addr = listener.local_addr()?;
    if token.is_none() && enip_server::guard::needs_token(&addr) {
        bail!(
            "--listen {} is reachable from other hosts and the controller API can create and \
             delete fleets, so it needs a token: give --token-file FILE (a file holding it) or \
             set {TOKEN_ENV}, or listen on loopback (--listen 127.0.0.1:{})",
            l.listen,
            addr.port()
        );
    }
    Ok((listener, api::router_with(shared, api::guard(token, rate))))
}

/// A router served with each client's address (the rate limit is per address).
fn with_peers(
    router: axum::Router,
) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, std::net::SocketAddr>
{
    router.into_make_service_with_connect_info::<std::net::SocketAddr>()
}

/// A command's FILE|NAME argument.
enum Target {
    File(PathBuf),
    Name(String),
}

impl Target {
    fn of(arg: &str) -> Result<Self> {
        let p = PathBuf::from(arg);
        if p.is_file() {
            return Ok(Self::File(p));
        }
        let looks_like_a_file =
            arg.contains('/') || p.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if looks_like_a_file {
            bail!("{arg}: no such manifest file");
        }
        manifest::check_name(arg).map_err(|why| {
            anyhow!("`{arg}` is neither a manifest file nor a fleet name ({why})")
        })?;
        Ok(Self::Name(arg.to_owned()))
    }
}

#[derive(Debug, clap::Args)]
struct ApplyArgs {
    /// Backend calls in flight at once.
    #[arg(long, default_value = "64")]
    parallel: usize,
    /// Wait until every simulator answers as itself (the default).
    #[arg(long, overrides_with = "no_wait")]
    wait: bool,
    /// Do not wait for the simulators to answer.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait for every simulator to answer.
    #[arg(long, default_value = "120", value_name = "SECS")]
    timeout: u64,
}

impl ApplyArgs {
    fn options(&self) -> ApplyOptions {
        ApplyOptions {
            parallel: self.parallel.max(1),
            wait: !self.no_wait,
            timeout: Duration::from_secs(self.timeout),
            progress: std::io::stderr().is_terminal(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("plcfleet: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("plcfleet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(file: &std::path::Path) -> Result<Fleet> {
    manifest::load(file).map_err(|e| anyhow!("{e}"))
}

async fn run(cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Validate { file } => {
            let f = load(&file)?;
            println!(
                "{}: fleet `{}` is valid: {} simulator(s) on {} ({} backend)",
                file.display(),
                f.name,
                f.simulators.len(),
                f.network.subnet,
                f.backend
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Crd => {
            print!("{}", plcfleet::k8s::crd_yaml());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Schema => {
            println!("{}", manifest::schema());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Targets { file } => {
            let f = load(&file)?;
            let status = desired_status(&f);
            println!(
                "{}",
                serde_json::to_string_pretty(&api::targets(&[status]))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Plan { file } => {
            let f = load(&file)?;
            let observed = match f.backend {
                BackendKind::Local => Vec::new(),
                BackendKind::Docker => docker(&f)
                    .await?
                    .list(&f.name)
                    .await
                    .map_err(backend_error)?,
                BackendKind::Kubernetes => return kube_plan(&file).await,
            };
            let p = plcfleet::plan::plan(&f, &observed);
            println!("fleet `{}` ({} backend):\n{p}", f.name, f.backend);
            Ok(if p.changes() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Apply { file, opts } => {
            let f = load(&file)?;
            let b = match f.backend {
                BackendKind::Docker => docker(&f).await?,
                BackendKind::Local => bail!(local_hint(&f, &file)),
                BackendKind::Kubernetes => return kube_apply(&file, &f, &opts).await,
            };
            let r = apply::apply(&b, &f, &opts.options())
                .await
                .map_err(backend_error)?;
            println!(
                "fleet `{}`: {}",
                f.name,
                r.plan.to_string().lines().last().unwrap_or_default()
            );
            for failure in &r.failures {
                eprintln!("plcfleet: {failure}");
            }
            if !r.failures.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
            if !opts.no_wait {
                println!(
                    "{} of {} simulators answer as themselves ({:.1}s)",
                    r.healthy,
                    f.simulators.len(),
                    r.elapsed.as_secs_f64()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status {
            target,
            output,
            by_name,
        } => match Target::of(&target)? {
            Target::File(file) => status_file(&file, &output).await,
            Target::Name(name) => status_named(&name, &output, &by_name).await,
        },
        Cmd::Delete { target, by_name } => match Target::of(&target)? {
            Target::File(file) => delete_file(&file).await,
            Target::Name(name) => delete_named(&name, &by_name).await,
        },
        Cmd::Up {
            file,
            opts,
            listen,
            targets,
        } => up(&file, &opts, &listen, targets).await,
        Cmd::Controller {
            kubernetes: true,
            listen,
            parallel,
            ..
        } => kube_controller(&listen, parallel).await,
        Cmd::Controller {
            manifests,
            listen,
            targets,
            resync,
            parallel,
            ..
        } => {
            let dir = manifests.ok_or_else(|| anyhow!("--manifests DIR or --kubernetes"))?;
            controller(&dir, &listen, targets, resync, parallel).await
        }
    }
}

async fn status_file(file: &std::path::Path, output: &str) -> Result<ExitCode> {
    let f = load(file)?;
    let b = match f.backend {
        BackendKind::Docker => docker(&f).await?,
        BackendKind::Local => bail!(local_hint(&f, file)),
        BackendKind::Kubernetes => return kube_status(file, output).await,
    };
    let observed = b.list(&f.name).await.map_err(backend_error)?;
    let st = plcfleet::controller::observe(&b, &f, &observed, Duration::from_secs(2)).await;
    print_status(&st, output)?;
    Ok(ExitCode::SUCCESS)
}

async fn delete_file(file: &std::path::Path) -> Result<ExitCode> {
    let f = load(file)?;
    let b = match f.backend {
        BackendKind::Docker => docker(&f).await?,
        BackendKind::Local => bail!(local_hint(&f, file)),
        BackendKind::Kubernetes => return kube_delete(file).await,
    };
    let gone = apply::delete(&b, &f).await.map_err(backend_error)?;
    println!(
        "fleet `{}`: removed {} simulator(s) and its network",
        f.name,
        gone.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Ask the controller at `addr` about fleet `name`: `Ok(None)` when it does not run it
/// or does not answer (then the Docker engine is asked).
async fn from_controller(
    method: &str,
    addr: &str,
    name: &str,
) -> Result<Option<(u16, serde_json::Value)>> {
    let path = format!("/api/fleets/{name}");
    let token = std::env::var(TOKEN_ENV)
        .ok()
        .and_then(|t| enip_server::guard::token_from(&t));
    let asked = tokio::time::timeout(
        Duration::from_secs(3),
        plcfleet::scrape::http_with_token(method, addr, &path, None, token.as_deref()),
    )
    .await;
    let Ok(Ok((code, body))) = asked else {
        return Ok(None);
    };
    if code == 404 {
        return Ok(None);
    }
    if code == 401 {
        bail!(
            "the controller at {addr} wants a bearer token: set {TOKEN_ENV} to the token in its --token-file"
        );
    }
    let v = serde_json::from_str(&body)
        .with_context(|| format!("the controller at {addr} answered {code} with no JSON"))?;
    Ok(Some((code, v)))
}

async fn status_named(name: &str, output: &str, by: &ByName) -> Result<ExitCode> {
    if by.kubernetes {
        let client = kube_client().await?;
        let ns = client.default_namespace().to_owned();
        return kube_status_of(client, &ns, name, output, "its manifest").await;
    }
    if let Some((code, v)) = from_controller("GET", &by.controller, name).await? {
        if code != 200 {
            bail!(
                "the controller at {}: {}",
                by.controller,
                json_str(&v, "error")
            );
        }
        let st: FleetStatus = serde_json::from_value(v).with_context(|| {
            format!(
                "the controller at {} sent an unexpected fleet",
                by.controller
            )
        })?;
        print_status(&st, output)?;
        return Ok(ExitCode::SUCCESS);
    }
    let b = DockerBackend::connect(by.docker_host.as_deref())
        .await
        .map_err(backend_error)?;
    let observed = b.list(name).await.map_err(backend_error)?;
    if observed.is_empty() && b.networks_of(name).await.map_err(backend_error)?.is_empty() {
        bail!(
            "no fleet `{name}`: the controller at {} does not run it (or is not running) and              nothing on the Docker engine carries its labels; give its manifest file instead,              or --kubernetes for a SimulatorFleet",
            by.controller
        );
    }
    // Without the manifest its identities are unknown: healthy means "answers". All
    // simulators are asked at once.
    let simulators = futures::future::join_all(observed.iter().map(|o| async move {
        let answers = match o.ip {
            Some(ip) if o.running => plcfleet::probe::list_identity(ip, Duration::from_secs(2))
                .await
                .is_ok(),
            _ => false,
        };
        let sample = match o.ip {
            Some(ip) if answers => {
                plcfleet::scrape::one(ip, 8080, Duration::from_millis(500)).await
            }
            _ => None,
        };
        let mut s = SimulatorStatus {
            name: o.name.clone(),
            ip: o.ip.map(|i| i.to_string()).unwrap_or_default(),
            state: if o.running { "running" } else { "stopped" }.into(),
            healthy: answers,
            requests: None,
            rate: None,
            uptime: None,
            web: sample.is_some(),
        };
        if o.running {
            s.observe(sample.as_ref(), o.started);
        }
        s
    }))
    .await;
    let st = FleetStatus {
        name: name.to_owned(),
        backend: BackendKind::Docker.to_string(),
        simulators,
        uptime: 0.0,
        at: None,
    };
    print_status(&st, output)?;
    Ok(ExitCode::SUCCESS)
}

async fn delete_named(name: &str, by: &ByName) -> Result<ExitCode> {
    if by.kubernetes {
        let client = kube_client().await?;
        let ns = client.default_namespace().to_owned();
        return kube_delete_of(client, &ns, name).await;
    }
    if let Some((code, v)) = from_controller("DELETE", &by.controller, name).await? {
        if code != 202 {
            bail!(
                "the controller at {}: {}",
                by.controller,
                json_str(&v, "error")
            );
        }
        println!(
            "fleet `{name}`: the controller at {} removed {} and is deleting the fleet",
            by.controller,
            json_str(&v, "file")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let b = DockerBackend::connect(by.docker_host.as_deref())
        .await
        .map_err(backend_error)?;
    let observed = b.list(name).await.map_err(backend_error)?;
    let networks = b.networks_of(name).await.map_err(backend_error)?;
    if observed.is_empty() && networks.is_empty() {
        bail!(
            "no fleet `{name}`: the controller at {} does not run it (or is not running) and              nothing on the Docker engine carries its labels; nothing was changed",
            by.controller
        );
    }
    for o in &observed {
        b.remove(name, o).await.map_err(backend_error)?;
    }
    for n in &networks {
        b.remove_owned_network(name, n)
            .await
            .map_err(backend_error)?;
    }
    println!(
        "fleet `{name}`: removed {} simulator(s) and {} network(s)",
        observed.len(),
        networks.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn json_str<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key).and_then(|x| x.as_str()).unwrap_or("?")
}

fn backend_error(e: BackendError) -> anyhow::Error {
    match e.hint() {
        Some(h) => anyhow!("{e}\n  hint: {h}"),
        None => anyhow!("{e}"),
    }
}

/// The fleet's Docker engine: its `dockerHost`, else `DOCKER_HOST`, else the local one.
async fn docker(f: &Fleet) -> Result<DockerBackend> {
    DockerBackend::connect(f.docker_host.as_deref())
        .await
        .map_err(backend_error)
}

fn local_hint(f: &Fleet, file: &std::path::Path) -> String {
    format!(
        "fleet `{}` uses the local backend: its simulators live in the `plcfleet up` (or `plcfleet controller`) process; run `plcfleet up {}`",
        f.name,
        file.display()
    )
}

/// A kubernetes manifest's resource, in the client's default namespace (KUBECONFIG's
/// context, or the pod's own namespace in a cluster).
async fn kube_target(file: &std::path::Path) -> Result<(kube::Client, SimulatorFleet)> {
    let text = std::fs::read_to_string(file)?;
    let raw: manifest::RawFleet = serde_yaml::from_str(&text)?;
    let client = kube::Client::try_default()
        .await
        .context("cannot configure a Kubernetes client (KUBECONFIG, or in-cluster)")?;
    let ns = client.default_namespace().to_owned();
    Ok((client, k8s::resource(&raw, &ns)))
}

fn what(sf: &SimulatorFleet) -> String {
    format!(
        "SimulatorFleet {}/{}",
        sf.metadata.namespace.as_deref().unwrap_or_default(),
        sf.metadata.name.as_deref().unwrap_or_default()
    )
}

async fn kube_plan(file: &std::path::Path) -> Result<ExitCode> {
    let (client, sf) = kube_target(file).await?;
    let (ns, name) = (sf.metadata.namespace.clone(), sf.metadata.name.clone());
    let have = k8s::get(client, &ns.unwrap_or_default(), &name.unwrap_or_default()).await?;
    let change = k8s::plan(&sf, have.as_ref());
    let verb = match change {
        k8s::Change::Create => "create",
        k8s::Change::Update => "update the spec of",
        k8s::Change::None => "leave unchanged",
    };
    println!(
        "fleet ({} backend): {verb} {}",
        BackendKind::Kubernetes,
        what(&sf)
    );
    Ok(if change == k8s::Change::None {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn kube_apply(file: &std::path::Path, f: &Fleet, opts: &ApplyArgs) -> Result<ExitCode> {
    // Read before anything changes: a missing or oversized replay file changes nothing.
    let replay = k8s::read_replay_files(f)?;
    let (client, sf) = kube_target(file).await?;
    let applied = k8s::apply(client.clone(), &sf).await?;
    println!(
        "{} applied (server-side, field manager {}); the in-cluster controller runs its pods",
        what(&sf),
        k8s::CLI_FIELD_MANAGER
    );
    k8s::apply_replay(client.clone(), &applied, &replay).await?;
    let token = f.web_token.as_ref().map(|t| t.value.as_str());
    k8s::apply_web_token(client.clone(), &applied, token).await?;
    if token.is_some() {
        println!(
            "Secret {} applied: the simulators' web API token",
            k8s::web_token_secret_name(&f.name)
        );
    }
    if !replay.is_empty() {
        println!(
            "ConfigMap {} applied: {} replay file(s)",
            k8s::replay_config_map_name(&f.name),
            replay.len()
        );
    }
    if opts.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let (ns, name) = (sf.metadata.namespace.clone(), sf.metadata.name.clone());
    let started = std::time::Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let mut shown = None;
    let outcome = k8s::wait_ready(
        client,
        &ns.unwrap_or_default(),
        &name.unwrap_or_default(),
        Duration::from_secs(opts.timeout),
        Duration::from_secs(2),
        |st| {
            let now = (st.ready, st.desired);
            if terminal {
                eprint!("\r{} of {} simulators ready", now.0, now.1);
            } else if shown != Some(now) {
                eprintln!("{} of {} simulators ready", now.0, now.1);
            }
            shown = Some(now);
        },
    )
    .await?;
    if terminal && shown.is_some() {
        eprintln!();
    }
    match outcome {
        k8s::Wait::Ready(st) => {
            println!(
                "{} of {} simulators ready ({:.1}s)",
                st.ready,
                st.desired,
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        k8s::Wait::Invalid(why) => {
            eprintln!("plcfleet: the controller refused {}: {why}", what(&sf));
            Ok(ExitCode::FAILURE)
        }
        k8s::Wait::TimedOut(st) => {
            let st = st.unwrap_or_default();
            eprintln!(
                "plcfleet: {} of {} simulators ready after {}s (--timeout); `plcfleet status {}` \
                 shows the conditions, `kubectl get pods -l {}={}` the pods",
                st.ready,
                st.desired,
                opts.timeout,
                file.display(),
                plcfleet::kube_controller::FLEET_LABEL,
                f.name
            );
            Ok(ExitCode::FAILURE)
        }
        k8s::Wait::Gone => {
            eprintln!("plcfleet: {} was deleted while waiting", what(&sf));
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn kube_client() -> Result<kube::Client> {
    kube::Client::try_default()
        .await
        .context("cannot configure a Kubernetes client (KUBECONFIG, or in-cluster)")
}

async fn kube_status(file: &std::path::Path, output: &str) -> Result<ExitCode> {
    let (client, sf) = kube_target(file).await?;
    let ns = sf.metadata.namespace.clone().unwrap_or_default();
    let name = sf.metadata.name.clone().unwrap_or_default();
    let how = format!("`plcfleet apply {}`", file.display());
    kube_status_of(client, &ns, &name, output, &how).await
}

/// The status of SimulatorFleet `ns/name`; `how` says how to create it.
async fn kube_status_of(
    client: kube::Client,
    ns: &str,
    name: &str,
    output: &str,
    how: &str,
) -> Result<ExitCode> {
    let what = format!("SimulatorFleet {ns}/{name}");
    let Some(have) = k8s::get(client, ns, name).await? else {
        bail!("{what} does not exist; {how} creates it");
    };
    let st = have.status.clone().unwrap_or_default();
    match output {
        "json" => println!("{}", serde_json::to_string_pretty(&st)?),
        "yaml" => print!("{}", serde_yaml::to_string(&st)?),
        "table" => {
            println!("{what}: {} of {} simulators ready", st.ready, st.desired);
            for c in &st.conditions {
                println!(
                    "  {:<6} {:<6} {:<12} {}",
                    c.type_, c.status, c.reason, c.message
                );
            }
        }
        other => bail!("--output {other}: table, json or yaml"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn kube_delete(file: &std::path::Path) -> Result<ExitCode> {
    let (client, sf) = kube_target(file).await?;
    let ns = sf.metadata.namespace.clone().unwrap_or_default();
    let name = sf.metadata.name.clone().unwrap_or_default();
    kube_delete_of(client, &ns, &name).await
}

async fn kube_delete_of(client: kube::Client, ns: &str, name: &str) -> Result<ExitCode> {
    if k8s::delete(client, ns, name).await? {
        println!("SimulatorFleet {ns}/{name} deleted; its pods follow (owner references)");
    } else {
        println!("SimulatorFleet {ns}/{name} did not exist");
    }
    Ok(ExitCode::SUCCESS)
}

/// `plcfleet controller --kubernetes`: the API and /metrics, and the kube-rs controller.
async fn kube_controller(listen: &Listen, parallel: usize) -> Result<ExitCode> {
    let shared = api::Shared::new()?;
    let (l, router) = listen_api(listen, shared.clone()).await?;
    tokio::spawn(async move {
        let _ = axum::serve(l, with_peers(router)).await;
    });
    let client = kube::Client::try_default()
        .await
        .context("cannot configure a Kubernetes client (in-cluster or KUBECONFIG)")?;
    let concurrency = u16::try_from(parallel.clamp(1, 1024)).unwrap_or(1);
    plcfleet::kube_controller::run(client, shared, concurrency)
        .await
        .context(
            "cannot list SimulatorFleets; is the CRD installed (kubectl apply --server-side \
             -f deploy/crd/simulatorfleets.yaml) and may this account list them?",
        )?;
    Ok(ExitCode::SUCCESS)
}

fn print_status(st: &FleetStatus, output: &str) -> Result<()> {
    match output {
        "json" => println!("{}", serde_json::to_string_pretty(st)?),
        "yaml" => print!("{}", serde_yaml::to_string(st)?),
        "table" => {
            let rates = st.simulators.iter().any(|s| s.rate.is_some());
            let dash = || "-".to_owned();
            print!(
                "{:<24} {:<16} {:<8} {:<8} {:>8} {:>10}",
                "NAME", "IP", "STATE", "HEALTH", "UPTIME", "REQUESTS"
            );
            println!(
                "{}",
                if rates {
                    format!(" {:>9}", "REQ/S")
                } else {
                    String::new()
                }
            );
            for s in &st.simulators {
                print!(
                    "{:<24} {:<16} {:<8} {:<8} {:>8} {:>10}",
                    s.name,
                    s.ip,
                    s.state,
                    if s.healthy { "healthy" } else { "-" },
                    s.uptime.map_or_else(dash, api::duration),
                    s.requests.map_or_else(dash, |r| r.to_string()),
                );
                if rates {
                    print!(" {:>9}", s.rate.map_or_else(dash, |r| format!("{r:.1}")));
                }
                println!();
            }
            let healthy = st.simulators.iter().filter(|s| s.healthy).count();
            println!("{healthy} of {} healthy", st.simulators.len());
        }
        other => bail!("--output {other}: table, json or yaml"),
    }
    Ok(())
}

/// The fleet as the manifest wants it, before anything is known about health.
fn desired_status(f: &Fleet) -> FleetStatus {
    FleetStatus {
        name: f.name.clone(),
        backend: f.backend.to_string(),
        simulators: f
            .simulators
            .iter()
            .map(|s| SimulatorStatus {
                name: s.name.clone(),
                ip: s.ip.to_string(),
                state: "missing".into(),
                healthy: false,
                requests: None,
                rate: None,
                uptime: None,
                web: s.web,
            })
            .collect(),
        uptime: 0.0,
        at: None,
    }
}

async fn up(
    file: &std::path::Path,
    a: &ApplyArgs,
    listen: &Listen,
    targets: Option<PathBuf>,
) -> Result<ExitCode> {
    let f = load(file)?;
    if f.backend != BackendKind::Local {
        bail!(
            "`plcfleet up` runs local fleets; `{}` uses the {} backend (use `plcfleet apply`)",
            file.display(),
            f.backend
        );
    }
    let shared = api::Shared::new()?;
    let (l, router) = listen_api(listen, shared.clone()).await?;
    let backend = Timed::new(LocalBackend::new(), "local", shared.metrics.clone());
    let opts = a.options();
    let report = apply::apply(&backend, &f, &opts)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    shared
        .metrics
        .reconcile
        .observe(report.elapsed.as_secs_f64());
    for failure in &report.failures {
        eprintln!("plcfleet: {failure}");
    }
    let converged = std::time::Instant::now();
    let failed: Vec<String> = if opts.wait {
        report.failures.clone()
    } else {
        // Not probed yet: nobody is known to be healthy.
        f.simulators
            .iter()
            .map(|s| format!("{} ", s.name))
            .collect()
    };
    let observed = backend.list(&f.name).await.unwrap_or_default();
    let mut st =
        plcfleet::controller::status_of(&f, &observed, &failed, &backend.samples(&f).await);
    st.uptime = converged.elapsed().as_secs_f64();
    shared.update(st, f.simulators.len());
    if let Some(t) = &targets {
        api::write_targets(t, &shared.fleets())
            .with_context(|| format!("cannot write {}", t.display()))?;
    }
    let addr = l.local_addr()?;
    eprintln!(
        "plcfleet: fleet `{}`: {} of {} simulators answering on {} in {:.2}s; controller on http://{addr}/ (Ctrl-C stops)",
        f.name,
        report.healthy,
        f.simulators.len(),
        f.network.subnet,
        report.elapsed.as_secs_f64()
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(l, with_peers(router))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
    });
    // Keep health, request counts and rates current.
    let (b2, f2, s2) = (backend.clone(), f.clone(), shared.clone());
    let watcher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            tick.tick().await;
            let observed = b2.list(&f2.name).await.unwrap_or_default();
            let mut st =
                plcfleet::controller::observe(&b2, &f2, &observed, Duration::from_secs(2)).await;
            st.uptime = converged.elapsed().as_secs_f64();
            s2.update(st, f2.simulators.len());
        }
    });
    let _ = server.await;
    watcher.abort();
    backend.inner().shutdown();
    eprintln!("plcfleet: stopped fleet `{}`", f.name);
    Ok(ExitCode::SUCCESS)
}

async fn controller(
    dir: &std::path::Path,
    listen: &Listen,
    targets: Option<PathBuf>,
    resync: f64,
    parallel: usize,
) -> Result<ExitCode> {
    if !dir.is_dir() {
        bail!("--manifests {}: not a directory", dir.display());
    }
    if !(resync.is_finite() && (0.1..=3600.0).contains(&resync)) {
        bail!("--resync {resync}: 0.1 to 3600 seconds");
    }
    let shared = api::Shared::new()?.with_manifests(dir.to_owned());
    let (l, router) = listen_api(listen, shared.clone()).await?;
    let addr = l.local_addr()?;
    let web = tokio::spawn(async move {
        let _ = axum::serve(l, with_peers(router)).await;
    });
    let opts = ApplyOptions {
        parallel: parallel.max(1),
        ..ApplyOptions::default()
    };
    let backend = LocalBackend::new();
    let mut local = plcfleet::controller::Controller::new(
        dir,
        Timed::new(backend.clone(), "local", shared.metrics.clone()),
        BackendKind::Local,
        shared.clone(),
        opts.clone(),
    );
    // Docker fleets too, each on its own engine (spec.dockerHost, else DOCKER_HOST, else
    // the local one), connected when a fleet first needs it; local ones run in this process.
    let mut docker_loop = plcfleet::controller::Controller::new(
        dir,
        Timed::new(Engines::new(), "docker", shared.metrics.clone()),
        BackendKind::Docker,
        shared.clone(),
        opts,
    );
    eprintln!(
        "plcfleet: controller reconciling {} every {resync}s; API on http://{addr}/ (Ctrl-C stops)",
        dir.display()
    );
    let every = Duration::from_secs_f64(resync);
    let stop = || async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tokio::join!(
        local.run(every, targets.clone(), stop()),
        docker_loop.run(every, targets, stop())
    );
    web.abort();
    backend.shutdown();
    eprintln!("plcfleet: controller stopped");
    Ok(ExitCode::SUCCESS)
}
