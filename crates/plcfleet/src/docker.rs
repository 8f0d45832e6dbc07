//! The Docker backend: one container per simulator, each with its own static address on a
//! user-defined network, found again by labels (never by name), as compose does.
//!
//! Architecture invariants:
//! - Nothing without our labels is ever changed or removed: containers are removed by the
//!   ids `list` found through the labels; the network only when it carries this fleet's
//!   labels and nothing is attached to it.
//! - A container's address comes from the manifest, never from an old container's runtime
//!   state, and lies outside the network's dynamic range, so Docker cannot hand a pinned
//!   address to someone else while its simulator is down.
//! - Every engine call waits for a permit: bollard opens a connection per request and
//!   limits nothing, and a burst of hundreds stalls dockerd.
//! - Only what engine API 1.41 (Docker 20.10) has: one network endpoint at create time.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum, EndpointIpamConfig,
    EndpointSettings, HostConfig, Ipam, IpamConfig, Mount, MountType, NetworkCreateRequest,
    NetworkingConfig, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use bollard::Docker;
use tokio::sync::Semaphore;

use crate::backend::{Backend, BackendError, Observed, Result};
use crate::manifest::{Driver, Fleet, Simulator, Subnet};

/// Label on everything plcfleet creates (value [`MANAGED_BY_VALUE`]).
pub const LABEL_MANAGED_BY: &str = "plcfleet.managed-by";
pub const MANAGED_BY_VALUE: &str = "plcfleet";
/// The fleet a container or network belongs to.
pub const LABEL_FLEET: &str = "plcfleet.fleet";
/// The simulator a container runs (its name in the manifest).
pub const LABEL_SIMULATOR: &str = "plcfleet.simulator";
/// [`Simulator::spec_hash`] of what the container was created from.
pub const LABEL_SPEC_HASH: &str = "plcfleet.spec-hash";
/// A hash of the container settings the manifest does not say (limits, user, hardening):
/// changing them in a new plcfleet recreates the containers, as a spec change does.
pub const LABEL_SETTINGS_HASH: &str = "plcfleet.settings-hash";
/// The image name the container was created from (the spec hash covers the name, this
/// lets `list` notice that the name now points at a rebuilt image).
pub const LABEL_IMAGE: &str = "plcfleet.image";

/// The user simulators run as (the distroless "nonroot" uid): nothing in the image needs
/// root, and 44818 is not a privileged port.
pub const USER: &str = "65532:65532";
/// Default memory limit per simulator: an idle `enip-server` uses ~3 MiB.
pub const DEFAULT_MEMORY_BYTES: i64 = 64 * 1024 * 1024;
/// Default CPU limit per simulator, in billionths of a CPU (0.5 CPU).
pub const DEFAULT_NANO_CPUS: i64 = 500_000_000;
/// Default process/thread limit per simulator (two tokio workers and a few blocking ones).
pub const DEFAULT_PIDS: i64 = 64;
/// Default engine calls in flight at once, per backend (shared by its clones).
pub const DEFAULT_IN_FLIGHT: usize = 64;
/// How long connecting (version negotiation) may take before Docker counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bump when the container settings below change, so old containers are recreated.
const SETTINGS_VERSION: u32 = 1;
/// How often a create whose name is taken tries to take the name over (a container
/// being removed by an interrupted run is waited for, 250 ms a try).
const TAKE_OVER_TRIES: u32 = 20;
/// Size of the dynamic block left to Docker in a fleet network (a /28: 16 addresses).
const DYNAMIC_PREFIX: u8 = 28;

/// Resource limits for each simulator container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            nano_cpus: DEFAULT_NANO_CPUS,
            pids: DEFAULT_PIDS,
        }
    }
}

/// Simulators as containers on one Docker engine.
#[derive(Debug, Clone)]
pub struct DockerBackend {
    docker: Docker,
    host: String,
    limits: Limits,
    in_flight: Arc<Semaphore>,
}

/// The engine `DOCKER_HOST` names, or the local socket.
pub fn default_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| LOCAL_HOST.to_owned())
}

/// The local engine's socket, Docker's default.
pub const LOCAL_HOST: &str = "unix:///var/run/docker.sock";

impl DockerBackend {
    /// Connect to the engine at `host` (`unix:///var/run/docker.sock`, `tcp://box:2375`), or,
    /// with `None`, to `DOCKER_HOST` or the local socket; negotiate the API version so an
    /// older engine (20.10 speaks 1.41) is spoken to in its own version.
    pub async fn connect(host: Option<&str>) -> Result<Self> {
        let host = host.map_or_else(default_host, str::to_owned);
        let docker = Docker::connect_with_host(&host).map_err(|e| match e {
            DockerError::UnsupportedURISchemeError { .. } => BackendError::Unavailable {
                message: format!("cannot use Docker at `{host}`: unsupported address"),
                hint: "give DOCKER_HOST (or the fleet's Docker host) as unix:///path/docker.sock \
                       or tcp://HOST:2375 (TLS and ssh:// are not built in; tunnel them, e.g. \
                       `ssh -L 2375:/var/run/docker.sock box`)"
                    .to_owned(),
            },
            e => unreachable_engine(&host, "connecting", &e),
        })?;
        let docker = match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return Err(unreachable_engine(&host, "asking its version", &e)),
            Err(_) => {
                return Err(BackendError::Unavailable {
                    message: format!(
                        "Docker at `{host}` did not answer within {}s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                    hint: hint_for(&host, ""),
                })
            }
        };
        Ok(Self {
            docker,
            host,
            limits: Limits::default(),
            in_flight: Arc::new(Semaphore::new(DEFAULT_IN_FLIGHT)),
        })
    }

    /// The same engine with other per-container limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same engine with at most `n` calls in flight (shared by the clones made after).
    pub fn with_in_flight(mut self, n: usize) -> Self {
        self.in_flight = Arc::new(Semaphore::new(n.max(1)));
        self
    }

    /// The engine address this backend talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The engine's API version as negotiated (e.g. `1.41`).
    pub fn api_version(&self) -> String {
        self.docker.client_version().to_string()
    }

    /// Run one engine call under the in-flight bound.
    async fn call<T>(
        &self,
        f: impl Future<Output = std::result::Result<T, DockerError>>,
    ) -> std::result::Result<T, DockerError> {
        let _permit = self.in_flight.acquire().await.ok();
        f.await
    }

    fn err(&self, what: impl Into<String>, e: DockerError) -> BackendError {
        classify(&self.host, what.into(), e)
    }

    fn settings_hash(&self) -> String {
        fnv(&format!("{SETTINGS_VERSION}|{USER}|{:?}", self.limits))
    }

    /// Refuse early, before anything changes, when the image is not on the engine:
    /// nothing is ever pulled (there may be no registry).
    async fn check_image(&self, image: &str) -> Result<()> {
        match self.call(self.docker.inspect_image(image)).await {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Err(self.image_missing(image)),
            Err(e) => Err(self.err(format!("image {image}"), e)),
        }
    }

    fn image_missing(&self, image: &str) -> BackendError {
        BackendError::Unavailable {
            message: format!(
                "image `{image}` is not on the Docker engine at `{}` (plcfleet never pulls)",
                self.host
            ),
            hint: "build it there with `docker/build.sh` (it tags cpppo/scada:latest), or set \
                   spec.image to an image `docker images` lists; then apply again"
                .to_owned(),
        }
    }

    async fn find_network(&self, name: &str) -> Result<Option<NetworkFacts>> {
        // The engine's name filter matches substrings: keep only the exact name.
        let filters = HashMap::from([("name".to_owned(), vec![name.to_owned()])]);
        let opts = ListNetworksOptions {
            filters: Some(filters),
        };
        let nets = self
            .call(self.docker.list_networks(Some(opts)))
            .await
            .map_err(|e| self.err(format!("network {name}"), e))?;
        Ok(nets
            .into_iter()
            .find(|n| n.name.as_deref() == Some(name))
            .map(|n| NetworkFacts {
                id: n.id.unwrap_or_default(),
                driver: n.driver.unwrap_or_default(),
                ipv4: n
                    .ipam
                    .and_then(|i| i.config)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| c.subnet.as_deref().is_some_and(|s| !s.contains(':')))
                    .collect(),
                options: n.options.unwrap_or_default(),
                labels: n.labels.unwrap_or_default(),
            }))
    }

    /// Names of the networks whose IPv4 subnets overlap `subnet`.
    async fn overlapping(&self, subnet: Subnet) -> Vec<String> {
        let Ok(nets) = self.call(self.docker.list_networks(None)).await else {
            return Vec::new();
        };
        let mut names: Vec<String> = nets
            .into_iter()
            .filter(|n| {
                n.ipam
                    .as_ref()
                    .and_then(|i| i.config.as_ref())
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.subnet
                                .as_deref()
                                .and_then(|s| Subnet::parse(s).ok())
                                .is_some_and(|s| overlaps(s, subnet))
                        })
                    })
            })
            .filter_map(|n| n.name)
            .collect();
        names.sort();
        names
    }

    /// Who holds `ip` on `network`, if anyone.
    async fn holder_of(&self, network: &str, ip: Ipv4Addr) -> Option<String> {
        let net = self
            .call(self.docker.inspect_network(network, None))
            .await
            .ok()?;
        net.containers?.into_values().find_map(|ep| {
            let addr = ep.ipv4_address?;
            let bare = addr.split('/').next()?.parse::<Ipv4Addr>().ok()?;
            (bare == ip).then(|| ep.name.unwrap_or_else(|| "a container".to_owned()))
        })
    }

    /// What to do when a container with our name exists that `list` did not report to the
    /// plan (another apply or the controller raced us, or it is not ours at all).
    async fn take_over(
        &self,
        fleet: &Fleet,
        sim: &Simulator,
        spec_hash: &str,
        name: &str,
    ) -> Result<CreateOutcome> {
        let what = what(sim);
        let c = match self.call(self.docker.inspect_container(name, None)).await {
            Ok(c) => c,
            // Gone meanwhile (a removal an interrupted run had started finished): the name
            // is free now.
            Err(e) if status(&e) == Some(404) => return Ok(CreateOutcome::Retry),
            Err(e) => return Err(self.err(what, e)),
        };
        let removing = c
            .state
            .as_ref()
            .and_then(|s| s.status)
            .is_some_and(|s| s == bollard::models::ContainerStateStatusEnum::REMOVING);
        if removing {
            // Another client's removal (an apply killed halfway) is still running: wait
            // for it rather than fail this simulator until the next pass.
            tokio::time::sleep(Duration::from_millis(250)).await;
            return Ok(CreateOutcome::Retry);
        }
        let labels = c
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let ours = labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE)
            && labels.get(LABEL_FLEET) == Some(&fleet.name)
            && labels.get(LABEL_SIMULATOR) == Some(&sim.name);
        if !ours {
            return Err(BackendError::Conflict(format!(
                "{what}: a container named `{name}` exists and plcfleet does not own it (it has \
                 no labels of fleet `{}`); nothing was changed. Fix: remove or rename it \
                 (`docker rm -f {name}` / `docker rename {name} OTHER`), or rename the fleet",
                fleet.name
            )));
        }
        let id = c.id.unwrap_or_else(|| name.to_owned());
        let same = labels.get(LABEL_SPEC_HASH).map(String::as_str) == Some(spec_hash)
            && labels.get(LABEL_SETTINGS_HASH) == Some(&self.settings_hash());
        if same {
            return Ok(CreateOutcome::Existing(id));
        }
        self.remove_id(&what, &id).await?;
        Ok(CreateOutcome::Retry)
    }

    async fn remove_id(&self, what: &str, id: &str) -> Result<()> {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self
            .call(self.docker.remove_container(id, Some(opts)))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if status(&e) == Some(404) => Ok(()),
            Err(e) if message(&e).is_some_and(|m| m.contains("already in progress")) => Ok(()),
            Err(e) => Err(self.err(what.to_owned(), e)),
        }
    }

    async fn start(&self, fleet: &Fleet, sim: &Simulator, id: &str) -> Result<()> {
        let what = what(sim);
        let e = match self.call(self.docker.start_container(id, None)).await {
            Ok(()) => return Ok(()),
            // 304: already running (one we took over).
            Err(e) if status(&e) == Some(304) => return Ok(()),
            Err(e) => e,
        };
        // A simulator that cannot start is not left behind half-made: the next apply
        // creates it afresh.
        let _ = self.remove_id(&what, id).await;
        if message(&e).is_some_and(|m| m.contains("Address already in use")) {
            let net = &fleet.network.name;
            let who = self
                .holder_of(net, sim.ip)
                .await
                .map_or_else(String::new, |h| format!(" by `{h}`"));
            return Err(BackendError::Conflict(format!(
                "{what}: address {} is already in use on network `{net}`{who}; nothing of \
                 theirs was changed. Fix: give the simulator another address, or free it \
                 (`docker network disconnect {net} CONTAINER`)",
                sim.ip
            )));
        }
        Err(self.err(what, e))
    }
}

/// What a network looks like, as far as matching a fleet goes.
#[derive(Debug)]
struct NetworkFacts {
    id: String,
    driver: String,
    ipv4: Vec<IpamConfig>,
    options: HashMap<String, String>,
    labels: HashMap<String, String>,
}

enum CreateOutcome {
    Existing(String),
    Retry,
}

impl Backend for DockerBackend {
    async fn ensure_network(&self, fleet: &Fleet) -> Result<()> {
        self.check_image(&fleet.image).await?;
        let net = &fleet.network;
        if let Some(found) = self.find_network(&net.name).await? {
            return check_network(fleet, &found);
        }
        let req = network_request(fleet);
        let Err(e) = self.call(self.docker.create_network(req)).await else {
            return Ok(());
        };
        // Another apply may have made it meanwhile (then our subnet "overlaps" it): it must
        // match as if it had been there.
        if let Some(found) = self.find_network(&net.name).await? {
            return check_network(fleet, &found);
        }
        // IPAM says "Pool overlaps with other one"; the bridge driver of 20.10 says
        // "networks have overlapping IPv4" (403).
        if message(&e).is_some_and(|m| m.contains("overlaps") || m.contains("overlapping")) {
            let others = self.overlapping(net.subnet).await;
            let named = if others.is_empty() {
                "another network".to_owned()
            } else {
                format!("network(s) `{}`", others.join("`, `"))
            };
            return Err(BackendError::Conflict(format!(
                "network `{}`: subnet {} overlaps {named} on the engine at `{}`; nothing was \
                 changed. Fix: choose a free spec.network.subnet (`docker network inspect` \
                 shows theirs), or remove what holds it if it is unused",
                net.name, net.subnet, self.host
            )));
        }
        Err(self.err(format!("network {}", net.name), e))
    }

    async fn list(&self, fleet: &str) -> Result<Vec<Observed>> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{LABEL_MANAGED_BY}={MANAGED_BY_VALUE}"),
                format!("{LABEL_FLEET}={fleet}"),
            ],
        )]);
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..ListContainersOptions::default()
        };
        let found = self
            .call(self.docker.list_containers(Some(opts)))
            .await
            .map_err(|e| self.err(format!("fleet {fleet}"), e))?;
        // Which image id each image name means now: a container from an older build of
        // the same name is stale, as compose has it.
        let mut current: HashMap<String, Option<String>> = HashMap::new();
        for c in &found {
            if let Some(image) = c.labels.as_ref().and_then(|l| l.get(LABEL_IMAGE)) {
                if !current.contains_key(image) {
                    let id = match self.call(self.docker.inspect_image(image)).await {
                        Ok(i) => i.id,
                        Err(_) => None,
                    };
                    current.insert(image.clone(), id);
                }
            }
        }
        let settings = self.settings_hash();
        let mut observed: Vec<(Observed, bool, i64)> = found
            .into_iter()
            .filter_map(|c| observe(fleet, c, &settings, &current))
            .collect();
        // The plan keeps the first of several containers for one simulator: make that the
        // one with the canonical name, then the oldest.
        observed.sort_by(|a, b| {
            (a.0.name.as_str(), !a.1, a.2, a.0.id.as_str()).cmp(&(
                b.0.name.as_str(),
                !b.1,
                b.2,
                b.0.id.as_str(),
            ))
        });
        Ok(observed.into_iter().map(|(o, _, _)| o).collect())
    }

    async fn create(&self, fleet: &Fleet, sim: &Simulator, spec_hash: &str) -> Result<()> {
        let what = what(sim);
        let name = container_name(&fleet.name, &sim.name);
        let body = container_body(fleet, sim, spec_hash, &self.settings_hash(), self.limits);
        let mut tries = 0;
        let id = loop {
            tries += 1;
            let opts = CreateContainerOptions {
                name: Some(name.clone()),
                platform: String::new(),
            };
            match self
                .call(self.docker.create_container(Some(opts), body.clone()))
                .await
            {
                Ok(r) => break r.id,
                Err(e) if status(&e) == Some(409) && tries < TAKE_OVER_TRIES => {
                    match self.take_over(fleet, sim, spec_hash, &name).await? {
                        CreateOutcome::Existing(id) => break id,
                        CreateOutcome::Retry => continue,
                    }
                }
                Err(e) if status(&e) == Some(404) && mentions_image(&e) => {
                    return Err(self.image_missing(&fleet.image))
                }
                Err(e) if status(&e) == Some(404) => {
                    return Err(BackendError::Failed {
                        what,
                        message: format!(
                            "{}; the network `{}` may have been removed meanwhile: apply again",
                            message(&e).unwrap_or_default(),
                            fleet.network.name
                        ),
                    })
                }
                Err(e) => return Err(self.err(what, e)),
            }
        };
        self.start(fleet, sim, &id).await
    }

    async fn remove(&self, _fleet: &str, sim: &Observed) -> Result<()> {
        // By id, which only `list` (by labels) hands out: never anything else's.
        self.remove_id(&sim.name, &sim.id).await
    }

    async fn remove_network(&self, fleet: &Fleet) -> Result<()> {
        self.remove_owned_network(&fleet.name, &fleet.network.name)
            .await
    }
}

impl DockerBackend {
    /// The networks that carry fleet `fleet`'s labels (for `plcfleet delete NAME`, when
    /// no manifest says which network it is).
    pub async fn networks_of(&self, fleet: &str) -> Result<Vec<String>> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{LABEL_MANAGED_BY}={MANAGED_BY_VALUE}"),
                format!("{LABEL_FLEET}={fleet}"),
            ],
        )]);
        let opts = ListNetworksOptions {
            filters: Some(filters),
        };
        let nets = self
            .call(self.docker.list_networks(Some(opts)))
            .await
            .map_err(|e| self.err(format!("networks of fleet {fleet}"), e))?;
        let mut names: Vec<String> = nets.into_iter().filter_map(|n| n.name).collect();
        names.sort();
        Ok(names)
    }

    /// Remove network `name` if it carries fleet `fleet`'s labels and nothing is attached.
    pub async fn remove_owned_network(&self, fleet: &str, name: &str) -> Result<()> {
        let Some(found) = self.find_network(name).await? else {
            return Ok(());
        };
        if !owned_by(&found.labels, fleet) {
            // Not made by this fleet (e.g. a network it was given): not ours to remove.
            return Ok(());
        }
        // A network with no containers can still refuse removal with 403 "has active
        // endpoints": for a moment after its containers are removed, or for good when the
        // engine leaked an endpoint (a Docker fault, seen after a container start was
        // interrupted: plcfleet killed mid-apply). The first passes; the second is named.
        let give_up = tokio::time::Instant::now() + ENDPOINTS_RELEASED_WITHIN;
        loop {
            let attached: Vec<String> = match self
                .call(self.docker.inspect_network(&found.id, None))
                .await
            {
                Ok(n) => n
                    .containers
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(id, ep)| ep.name.unwrap_or(id))
                    .collect(),
                Err(e) if status(&e) == Some(404) => return Ok(()),
                Err(e) => return Err(self.err(format!("network {name}"), e)),
            };
            if !attached.is_empty() {
                return Err(BackendError::Conflict(format!(
                    "network `{name}` still has containers plcfleet did not remove: `{}`; it \
                     was kept. Fix: disconnect them (`docker network disconnect {name} \
                     CONTAINER`), then delete again",
                    attached.join("`, `")
                )));
            }
            match self.call(self.docker.remove_network(&found.id)).await {
                Ok(()) => return Ok(()),
                Err(e) if status(&e) == Some(404) => return Ok(()),
                Err(e) if status(&e) == Some(403) && tokio::time::Instant::now() < give_up => {
                    tracing::debug!("network {name}: {e}; trying again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) if status(&e) == Some(403) => {
                    return Err(BackendError::Conflict(format!(
                        "network `{name}` has no containers left, but the engine still \
                         counts endpoints on it (stale endpoints: a Docker engine fault, seen \
                         after a container start was interrupted); it was kept. Fix: restart \
                         dockerd, then delete again ({})",
                        self.err(format!("network {name}"), e)
                    )))
                }
                Err(e) => return Err(self.err(format!("network {name}"), e)),
            }
        }
    }
}

/// How long a network with no containers left may go on refusing removal because of
/// endpoints the engine has not released yet.
const ENDPOINTS_RELEASED_WITHIN: Duration = Duration::from_secs(2);

/// The container a simulator runs in.
pub fn container_name(fleet: &str, sim: &str) -> String {
    format!("{fleet}-{sim}")
}

fn what(sim: &Simulator) -> String {
    format!("{} ({})", sim.name, sim.ip)
}

fn owned_by(labels: &HashMap<String, String>, fleet: &str) -> bool {
    labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE)
        && labels.get(LABEL_FLEET).map(String::as_str) == Some(fleet)
}

fn driver_name(d: Driver) -> &'static str {
    match d {
        Driver::Bridge => "bridge",
        Driver::Macvlan => "macvlan",
        Driver::Ipvlan => "ipvlan",
    }
}

/// The network as the engine should create it.
pub fn network_request(fleet: &Fleet) -> NetworkCreateRequest {
    let net = &fleet.network;
    let labels = HashMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (LABEL_FLEET.to_owned(), fleet.name.clone()),
    ]);
    let options: HashMap<String, String> = match (&net.driver, &net.parent) {
        (Driver::Macvlan | Driver::Ipvlan, Some(p)) => {
            HashMap::from([("parent".to_owned(), p.clone())])
        }
        _ => HashMap::new(),
    };
    NetworkCreateRequest {
        name: net.name.clone(),
        driver: Some(driver_name(net.driver).to_owned()),
        ipam: Some(Ipam {
            driver: Some("default".to_owned()),
            config: Some(vec![IpamConfig {
                subnet: Some(net.subnet.to_string()),
                gateway: Some(net.gateway.to_string()),
                ip_range: dynamic_range(fleet).map(|r| r.to_string()),
                auxiliary_addresses: None,
            }]),
            options: None,
        }),
        options: (!options.is_empty()).then_some(options),
        labels: Some(labels),
        ..NetworkCreateRequest::default()
    }
}

/// The block of the subnet left to Docker for addresses it picks itself: the highest /28
/// that holds no simulator and not the gateway. Pinned addresses outside it are never
/// handed to another container while their simulator is down. `None` when the subnet is
/// too small to spare one (then the whole subnet is dynamic, as Docker has it by default).
pub fn dynamic_range(fleet: &Fleet) -> Option<Subnet> {
    let subnet = fleet.network.subnet;
    if subnet.prefix + 2 > DYNAMIC_PREFIX {
        return None;
    }
    let shift = 32 - u32::from(DYNAMIC_PREFIX);
    let base = u32::from(subnet.base);
    let block_of = |ip: Ipv4Addr| (u32::from(ip) - base) >> shift;
    let taken: HashSet<u32> = fleet
        .simulators
        .iter()
        .map(|s| s.ip)
        .chain([fleet.network.gateway])
        .filter(|ip| subnet.contains(*ip))
        .map(block_of)
        .collect();
    let blocks = 1u32 << (u32::from(DYNAMIC_PREFIX) - u32::from(subnet.prefix));
    (0..blocks)
        .rev()
        .find(|b| !taken.contains(b))
        .map(|b| Subnet {
            base: Ipv4Addr::from(base + (b << shift)),
            prefix: DYNAMIC_PREFIX,
        })
}

fn overlaps(a: Subnet, b: Subnet) -> bool {
    a.contains(b.base) || b.contains(a.base)
}

/// Whether an existing network can carry the fleet: ours (or nobody's) with the same
/// driver, subnet, gateway and parent, and no simulator inside its dynamic range.
fn check_network(fleet: &Fleet, found: &NetworkFacts) -> Result<()> {
    let net = &fleet.network;
    let name = &net.name;
    let fix = format!(
        "nothing was changed. Fix: give the fleet another spec.network.name, or make the \
         manifest match the network, or remove the network if nothing uses it (`docker \
         network rm {name}`)"
    );
    if let Some(other) = found.labels.get(LABEL_FLEET) {
        if *other != fleet.name {
            return Err(BackendError::Conflict(format!(
                "network `{name}` belongs to fleet `{other}`, not `{}`; {fix}",
                fleet.name
            )));
        }
    }
    let want_driver = driver_name(net.driver);
    let subnets: Vec<&str> = found
        .ipv4
        .iter()
        .filter_map(|c| c.subnet.as_deref())
        .collect();
    let want_subnet = net.subnet.to_string();
    let Some(config) = found
        .ipv4
        .iter()
        .find(|c| c.subnet.as_deref() == Some(want_subnet.as_str()))
        .filter(|_| found.driver == want_driver)
    else {
        let has = if subnets.is_empty() {
            "no IPv4 subnet".to_owned()
        } else {
            format!("subnet {}", subnets.join(", "))
        };
        return Err(BackendError::Conflict(format!(
            "network `{name}` exists with {has} (driver {}), but the fleet wants subnet \
             {want_subnet} (driver {want_driver}); {fix}",
            found.driver
        )));
    };
    if let Some(gw) = config.gateway.as_deref().filter(|g| !g.is_empty()) {
        if gw.split('/').next() != Some(net.gateway.to_string().as_str()) {
            return Err(BackendError::Conflict(format!(
                "network `{name}` has gateway {gw}, but the fleet wants {}; {fix}",
                net.gateway
            )));
        }
    }
    if matches!(net.driver, Driver::Macvlan | Driver::Ipvlan) {
        let has = found.options.get("parent");
        if has != net.parent.as_ref() {
            return Err(BackendError::Conflict(format!(
                "network `{name}` has parent interface {}, but the fleet wants {}; {fix}",
                has.map_or("(none)", String::as_str),
                net.parent.as_deref().unwrap_or("(none)")
            )));
        }
    }
    if let Some(range) = config
        .ip_range
        .as_deref()
        .filter(|r| !r.is_empty())
        .and_then(|r| Subnet::parse(r).ok())
    {
        let inside: Vec<String> = fleet
            .simulators
            .iter()
            .filter(|s| range.contains(s.ip))
            .take(5)
            .map(|s| format!("{} ({})", s.name, s.ip))
            .collect();
        if !inside.is_empty() {
            return Err(BackendError::Conflict(format!(
                "network `{name}` hands out {range} dynamically, and simulators {} are pinned \
                 inside it, where Docker may give their address to another container; \
                 nothing was changed. Fix: move them outside {range}, or delete the fleet so \
                 the network is made again around them",
                inside.join(", ")
            )));
        }
    }
    Ok(())
}

/// The container a simulator runs in. ENTRYPOINT is the image's `enip-server`; the
/// command is exactly the simulator's arguments, so `docker run IMAGE ARGS` means the same.
pub fn container_body(
    fleet: &Fleet,
    sim: &Simulator,
    spec_hash: &str,
    settings_hash: &str,
    limits: Limits,
) -> ContainerCreateBody {
    let labels = HashMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (LABEL_FLEET.to_owned(), fleet.name.clone()),
        (LABEL_SIMULATOR.to_owned(), sim.name.clone()),
        (LABEL_SPEC_HASH.to_owned(), spec_hash.to_owned()),
        (LABEL_SETTINGS_HASH.to_owned(), settings_hash.to_owned()),
        (LABEL_IMAGE.to_owned(), fleet.image.clone()),
    ]);
    let net = fleet.network.name.clone();
    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            // From the manifest, never from an old container's runtime state.
            ipv4_address: Some(sim.ip.to_string()),
            ..EndpointIpamConfig::default()
        }),
        ..EndpointSettings::default()
    };
    let mounts: Vec<Mount> = sim
        .replay
        .iter()
        .map(|r| Mount {
            target: Some(in_container(&r.file)),
            source: Some(on_host(&r.file).display().to_string()),
            typ: Some(MountType::BIND),
            read_only: Some(true),
            ..Mount::default()
        })
        .collect();
    ContainerCreateBody {
        image: Some(fleet.image.clone()),
        cmd: Some(sim.args()),
        // The web API listens on the simulator's own address: it needs its token.
        env: fleet
            .web_token
            .as_ref()
            .filter(|_| sim.web)
            .map(|t| vec![format!("ENIP_WEB_TOKEN={}", t.value)]),
        hostname: Some(sim.name.clone()),
        user: Some(USER.to_owned()),
        // Relative replay paths in the arguments resolve against `/`, where they are mounted.
        working_dir: Some("/".to_owned()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some(net.clone()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            memory: Some(limits.memory_bytes),
            // No swap on top of the memory limit.
            memory_swap: Some(limits.memory_bytes),
            nano_cpus: Some(limits.nano_cpus),
            pids_limit: Some(limits.pids),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
            mounts: (!mounts.is_empty()).then_some(mounts),
            ..HostConfig::default()
        }),
        // One endpoint: all that engine API 1.41 takes at create time.
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(net, endpoint)])),
        }),
        ..ContainerCreateBody::default()
    }
}

/// Where a replay file is inside the container: its absolute path, or for a relative one,
/// the same path under `/` (the container's working directory).
fn in_container(file: &Path) -> String {
    let mut p = PathBuf::from("/");
    for c in file.components() {
        match c {
            Component::Normal(n) => p.push(n),
            Component::ParentDir => {
                p.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    p.display().to_string()
}

/// The replay file on the host, absolute (the engine needs absolute bind sources).
fn on_host(file: &Path) -> PathBuf {
    std::fs::canonicalize(file).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(file))
            .unwrap_or_else(|_| file.to_owned())
    })
}

/// A container as the plan sees it, with whether it has the canonical name and when it
/// was created (for ordering duplicates).
fn observe(
    fleet: &str,
    c: ContainerSummary,
    settings: &str,
    images: &HashMap<String, Option<String>>,
) -> Option<(Observed, bool, i64)> {
    let labels = c.labels.unwrap_or_default();
    let name = labels.get(LABEL_SIMULATOR)?.clone();
    let canonical = format!("/{}", container_name(fleet, &name));
    let is_canonical = c.names.unwrap_or_default().contains(&canonical);
    let ip = c
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|nets| {
            nets.into_values().find_map(|ep| {
                let runtime = ep.ip_address.filter(|a| !a.is_empty());
                let pinned = ep.ipam_config.and_then(|i| i.ipv4_address);
                runtime.or(pinned)?.parse::<Ipv4Addr>().ok()
            })
        });
    let mut spec_hash = labels.get(LABEL_SPEC_HASH).cloned().unwrap_or_default();
    let rebuilt = labels
        .get(LABEL_IMAGE)
        .and_then(|i| images.get(i))
        .and_then(Option::as_ref)
        .is_some_and(|now| c.image_id.as_ref().is_some_and(|was| was != now));
    if labels.get(LABEL_SETTINGS_HASH).map(String::as_str) != Some(settings) {
        // Made by a plcfleet with other container settings: differs from any spec.
        spec_hash.push_str("+old-settings");
    } else if rebuilt {
        spec_hash.push_str("+old-image");
    }
    Some((
        Observed {
            name,
            id: c.id.unwrap_or_default(),
            ip,
            spec_hash,
            running: c.state == Some(ContainerSummaryStateEnum::RUNNING),
            started: c
                .created
                .and_then(|t| u64::try_from(t).ok())
                .map(|t| std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)),
        },
        is_canonical,
        c.created.unwrap_or_default(),
    ))
}

/// FNV-1a, 64 bits, as `spec_hash` (stable across builds and platforms).
fn fnv(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn status(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn message(e: &DockerError) -> Option<&str> {
    match e {
        DockerError::DockerResponseServerError { message, .. } => Some(message),
        _ => None,
    }
}

fn mentions_image(e: &DockerError) -> bool {
    message(e).is_some_and(|m| m.contains("image"))
}

fn hint_for(host: &str, extra: &str) -> String {
    format!(
        "is dockerd running? DOCKER_HOST={host} (unset means {}); check with `docker -H {host} \
         version`{extra}",
        LOCAL_HOST
    )
}

fn unreachable_engine(host: &str, doing: &str, e: &DockerError) -> BackendError {
    let text = e.to_string();
    let extra = if text.contains("ermission denied") {
        "; or let this user use the socket (add it to the `docker` group)"
    } else {
        ""
    };
    BackendError::Unavailable {
        message: format!("cannot reach Docker at `{host}` ({doing}): {text}"),
        hint: hint_for(host, extra),
    }
}

/// An engine error as a backend error: an answer from the engine is a failure of that
/// call; no answer means the engine is unavailable.
fn classify(host: &str, what: String, e: DockerError) -> BackendError {
    match e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => BackendError::Failed {
            what,
            message: format!("{message} (Docker answered {status_code})"),
        },
        DockerError::RequestTimeoutError => BackendError::Unavailable {
            message: format!("{what}: Docker at `{host}` did not answer in time"),
            hint: "dockerd may be overloaded: apply with a lower --parallel, and check `docker \
                   info`"
                .to_owned(),
        },
        DockerError::IOError { .. }
        | DockerError::HyperLegacyError { .. }
        | DockerError::HttpClientError { .. }
        | DockerError::HyperResponseError { .. }
        | DockerError::SocketNotFoundError(_) => unreachable_engine(host, &what, &e),
        e => BackendError::Failed {
            what,
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fleet(yaml_sims: &str, subnet: &str, gateway: &str) -> Fleet {
        let text = format!(
            "kind: Fleet\nmetadata: {{ name: t }}\nspec:\n  backend: docker\n  image: img:1\n  \
             network: {{ name: t-net, driver: bridge, subnet: {subnet}, gateway: {gateway} }}\n  \
             defaults: {{ tags: {{ SCADA: DINT }} }}\n  \
             simulators:\n{yaml_sims}"
        );
        crate::manifest::parse(Path::new("t.yaml"), &text).unwrap()
    }

    #[test]
    fn the_dynamic_range_is_the_highest_free_28() {
        let f = fleet(
            "    - { name: a, ip: 10.1.0.10 }\n    - { name: b, ip: 10.1.255.250 }\n",
            "10.1.0.0/16",
            "10.1.0.1",
        );
        assert_eq!(dynamic_range(&f).unwrap().to_string(), "10.1.255.224/28");
        let f = fleet(
            "    - { name: a, ip: 10.1.2.10 }\n",
            "10.1.2.0/24",
            "10.1.2.1",
        );
        assert_eq!(dynamic_range(&f).unwrap().to_string(), "10.1.2.240/28");
        // Too small to spare a /28: Docker's default (all dynamic).
        let f = fleet(
            "    - { name: a, ip: 10.1.2.10 }\n",
            "10.1.2.0/27",
            "10.1.2.1",
        );
        assert_eq!(dynamic_range(&f), None);
    }

    #[test]
    fn a_full_subnet_has_no_dynamic_range() {
        let f = fleet(
            "    - { name: \"a-{index}\", replicas: 60, ipStart: 10.1.2.2 }\n",
            "10.1.2.0/26",
            "10.1.2.1",
        );
        assert_eq!(dynamic_range(&f), None);
    }

    #[test]
    fn containers_are_hardened_labelled_and_pinned_to_the_manifest_address() {
        let f = fleet(
            "    - { name: a, ip: 10.1.2.10 }\n",
            "10.1.2.0/24",
            "10.1.2.1",
        );
        let sim = &f.simulators[0];
        let b = container_body(&f, sim, "h1", "s1", Limits::default());
        assert_eq!(b.cmd.as_ref(), Some(&sim.args()));
        assert_eq!(
            b.entrypoint, None,
            "the image's enip-server is the entrypoint"
        );
        assert_eq!(b.user.as_deref(), Some("65532:65532"));
        let labels = b.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_FLEET], "t");
        assert_eq!(labels[LABEL_SIMULATOR], "a");
        assert_eq!(labels[LABEL_SPEC_HASH], "h1");
        let h = b.host_config.as_ref().unwrap();
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.cap_drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert_eq!(h.memory, Some(64 << 20));
        assert_eq!(h.nano_cpus, Some(500_000_000));
        assert_eq!(
            h.restart_policy.as_ref().unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        let eps = b
            .networking_config
            .as_ref()
            .unwrap()
            .endpoints_config
            .as_ref()
            .unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(
            eps["t-net"]
                .ipam_config
                .as_ref()
                .unwrap()
                .ipv4_address
                .as_deref(),
            Some("10.1.2.10")
        );
    }

    #[test]
    fn relative_replay_files_are_mounted_under_the_root() {
        assert_eq!(
            in_container(Path::new("histories/b.hst")),
            "/histories/b.hst"
        );
        assert_eq!(in_container(Path::new("./a/../b.hst")), "/b.hst");
        assert_eq!(in_container(Path::new("/srv/h/b.hst")), "/srv/h/b.hst");
    }

    #[test]
    fn a_network_with_another_subnet_is_a_conflict_that_names_the_fix() {
        let f = fleet(
            "    - { name: a, ip: 10.1.2.10 }\n",
            "10.1.2.0/24",
            "10.1.2.1",
        );
        let found = NetworkFacts {
            id: "n".into(),
            driver: "bridge".into(),
            ipv4: vec![IpamConfig {
                subnet: Some("10.9.0.0/16".into()),
                ..IpamConfig::default()
            }],
            options: HashMap::new(),
            labels: HashMap::new(),
        };
        let e = check_network(&f, &found).unwrap_err().to_string();
        assert!(
            e.contains("exists with subnet 10.9.0.0/16 (driver bridge)"),
            "{e}"
        );
        assert!(e.contains("docker network rm t-net"), "{e}");
        let same = NetworkFacts {
            ipv4: vec![IpamConfig {
                subnet: Some("10.1.2.0/24".into()),
                gateway: Some("10.1.2.1".into()),
                ip_range: Some("10.1.2.240/28".into()),
                ..IpamConfig::default()
            }],
            ..found
        };
        check_network(&f, &same).unwrap();
    }

    #[test]
    fn unreachable_engines_say_what_to_do() {
        let e = classify(
            "unix:///nope.sock",
            "list".into(),
            DockerError::SocketNotFoundError("/nope.sock".into()),
        );
        assert_eq!(e.metric_label(), "unavailable");
        assert!(e
            .hint()
            .unwrap()
            .contains("is dockerd running? DOCKER_HOST=unix:///nope.sock"));
    }
}
