//! `plcfleet controller --kubernetes`: a kube-rs [`Controller`] over `SimulatorFleet`
//! resources. Each simulator runs as one Pod (its own pod IP, port 44818; the same image,
//! arguments and identity as on Docker), owned by its fleet, so deleting the fleet
//! deletes its pods (the API server's garbage collector; we make no call).
//!
//! One reconcile: validate the spec (invalid: an event and a `Valid=False` condition, and
//! nothing else changes); list the fleet's pods and Services; server-side-apply each
//! missing pod; delete each pod whose simulator changed (it is re-created once gone,
//! since a pod's command cannot change in place) or is no longer listed; server-side-apply
//! each Service a simulator asks for that is missing or changed, and delete those no
//! longer asked for; patch the status when it changed. A simulator is ready when its pod
//! is (a TCP check on 44818) and it answers ListIdentity as itself (on its Multus address
//! if it has one, else on the pod IP). Errors requeue with exponential backoff per fleet.
//!
//! Replay files reach pods in the fleet's ConfigMap (`<fleet>-replay`), which
//! `plcfleet apply` writes, never the controller: a pod whose ConfigMap is missing waits
//! in ContainerCreating until it appears.
//!
//! Architecture invariant: no leader election. One replica runs (the chart's Deployment
//! uses the Recreate strategy).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::net::Ipv4Addr;

use futures::future::BoxFuture;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt as _};
use serde_json::json;

use crate::api::{FleetStatus, Shared, SimulatorStatus};
use crate::k8s::{self, Condition, SimulatorFleet, SimulatorFleetStatus};
use crate::manifest::{self, BackendKind, Fleet, Simulator};
use crate::probe;

/// The field manager of every server-side apply and status patch.
pub const FIELD_MANAGER: &str = "plcfleet";
/// Label on every pod: the fleet that owns it.
pub const FLEET_LABEL: &str = "plcfleet.io/fleet";
/// Label on every pod: its simulator's name.
pub const SIMULATOR_LABEL: &str = "plcfleet.io/simulator";
/// Annotation on every pod and Service: a hash of what we asked for (a pod's image,
/// arguments and network; a Service's spec and annotations).
pub const HASH_ANNOTATION: &str = "plcfleet.io/spec-hash";
/// Multus' pod annotation: the secondary networks, with their static addresses.
pub const MULTUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";
/// The pod volume (and mount) of the fleet's replay ConfigMap.
const REPLAY_VOLUME: &str = "replay";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by=plcfleet";

/// Why a reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes api: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0} has no namespace")]
    NoNamespace(String),
}

impl Error {
    /// The `kind` label of `plcfleet_reconcile_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::NoNamespace(_) => "namespace",
        }
    }
}

/// Whether `sim` answers ListIdentity as itself at its pod's address.
pub type Prober = Arc<dyn Fn(Ipv4Addr, Simulator) -> BoxFuture<'static, bool> + Send + Sync>;

/// ListIdentity probes in flight at once, per fleet.
const PROBES_IN_FLIGHT: usize = 32;

/// The real [`Prober`]: ListIdentity over TCP, 2 s at most. The address a pod reports
/// is its own (the simulator listens on 0.0.0.0), so only the serial and product name
/// the manifest sets are compared.
pub fn list_identity_prober() -> Prober {
    Arc::new(|ip, sim| {
        Box::pin(async move {
            match probe::list_identity(ip, Duration::from_secs(2)).await {
                Ok(id) => {
                    let mut as_seen = sim;
                    as_seen.ip = id.address;
                    probe::is_itself(&id, &as_seen)
                }
                Err(e) => {
                    tracing::debug!(%ip, error = %e, "ListIdentity");
                    false
                }
            }
        })
    })
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub shared: Shared,
    prober: Prober,
    /// Consecutive failures per fleet (`namespace/name`), for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(client: Client, shared: Shared) -> Self {
        Self::with_prober(client, shared, list_identity_prober())
    }

    /// A context whose readiness probe is `prober` (tests give a canned one).
    pub fn with_prober(client: Client, shared: Shared, prober: Prober) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: std::env::var("HOSTNAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            shared,
            prober,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How long after the `n`th consecutive failure (from 1) to retry: 5 s doubling, at
/// most 5 minutes.
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(6));
    Duration::from_secs(secs.min(300))
}

/// How often a healthy fleet is looked at again even without a watch event.
pub const RESYNC: Duration = Duration::from_secs(300);
/// How soon to look again while pods are being replaced or are not ready yet.
pub const SOON: Duration = Duration::from_secs(10);

fn key(sf: &SimulatorFleet) -> String {
    format!("{}/{}", sf.namespace().unwrap_or_default(), sf.name_any())
}

/// The pod name of a fleet's simulator.
pub fn pod_name(fleet: &str, sim: &str) -> String {
    format!("{fleet}-{sim}")
}

/// Check a resource's spec: the manifest's rules, plus what a pod cannot do yet.
pub fn validate(sf: &SimulatorFleet) -> Result<Fleet, String> {
    let fleet = manifest::validate_spec(&key(sf), &sf.name_any(), &sf.spec).map_err(|e| {
        e.problems
            .iter()
            .map(|p| match &p.hint {
                Some(h) if p.path.is_empty() => format!("{} ({h})", p.message),
                Some(h) => format!("{}: {} ({h})", p.path, p.message),
                None if p.path.is_empty() => p.message.clone(),
                None => format!("{}: {}", p.path, p.message),
            })
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if fleet.backend != BackendKind::Kubernetes {
        return Err(format!(
            "spec.backend: `{}`, but this resource is reconciled on Kubernetes (write \
             `backend: kubernetes`)",
            fleet.backend
        ));
    }
    Ok(fleet)
}

/// A pod listens on every address: it has one of its own. Its replay file is where the
/// fleet's replay ConfigMap is mounted.
fn pod_args(sim: &Simulator) -> Vec<String> {
    let mut in_pod = sim.clone();
    if let Some(r) = &mut in_pod.replay {
        r.file = std::path::Path::new(k8s::REPLAY_DIR).join(k8s::replay_key(&r.as_written));
    }
    in_pod.args_on("0.0.0.0")
}

/// The [`MULTUS_ANNOTATION`] of `sim`'s pod: its network, with the simulator's own
/// address as a static IP.
pub fn multus_annotation(sim: &Simulator) -> Option<String> {
    let m = sim.multus.as_ref()?;
    let mut net = serde_json::Map::new();
    net.insert("name".to_owned(), json!(m.name));
    if let Some(ns) = &m.namespace {
        net.insert("namespace".to_owned(), json!(ns));
    }
    net.insert(
        "ips".to_owned(),
        json!([format!("{}/{}", sim.ip, m.prefix)]),
    );
    Some(serde_json::Value::Array(vec![serde_json::Value::Object(net)]).to_string())
}

/// The [`HASH_ANNOTATION`] of `sim`'s pod: a change means a new pod (Multus reads its
/// annotation only when the pod starts). Without Multus it is the Docker backend's hash.
pub fn pod_hash(fleet: &Fleet, sim: &Simulator) -> String {
    let mut parts = pod_args(sim);
    if let Some(m) = multus_annotation(sim) {
        parts.push(format!("{MULTUS_ANNOTATION}={m}"));
    }
    manifest::hash_command(&fleet.image, &parts)
}

fn labels(fleet: &Fleet, sim: &Simulator) -> serde_json::Value {
    json!({
        "app.kubernetes.io/name": "plcfleet-simulator",
        "app.kubernetes.io/instance": fleet.name,
        "app.kubernetes.io/managed-by": "plcfleet",
        FLEET_LABEL: fleet.name,
        SIMULATOR_LABEL: sim.name,
    })
}

/// The Service in front of `sim` of `sf`, if it asks for one: what we server-side-apply.
/// Its selector is exactly that simulator's pod; port 44818 over TCP and UDP
/// (ListIdentity), and 8080 with `web`.
pub fn service_for(
    sf: &SimulatorFleet,
    fleet: &Fleet,
    sim: &Simulator,
) -> Option<serde_json::Value> {
    let svc = sim.service.as_ref()?;
    let mut ports = vec![
        json!({"name": "enip", "port": 44818, "targetPort": 44818, "protocol": "TCP"}),
        json!({"name": "enip-udp", "port": 44818, "targetPort": 44818, "protocol": "UDP"}),
    ];
    if sim.web {
        ports.push(json!({"name": "web", "port": 8080, "targetPort": 8080, "protocol": "TCP"}));
    }
    let mut spec = serde_json::Map::new();
    spec.insert("type".to_owned(), json!(svc.type_.to_string()));
    spec.insert(
        "selector".to_owned(),
        json!({FLEET_LABEL: fleet.name, SIMULATOR_LABEL: sim.name}),
    );
    spec.insert("ports".to_owned(), json!(ports));
    if let Some(ip) = svc.load_balancer_ip {
        spec.insert("loadBalancerIP".to_owned(), json!(ip.to_string()));
    }
    let spec = serde_json::Value::Object(spec);
    let mut annotations = svc.annotations.clone();
    let hash = manifest::hash_command(
        "Service",
        &[spec.to_string(), json!(svc.annotations).to_string()],
    );
    annotations.insert(HASH_ANNOTATION.to_owned(), hash);
    let owner = sf.controller_owner_ref(&());
    Some(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": pod_name(&fleet.name, &sim.name),
            "namespace": sf.namespace(),
            "labels": labels(fleet, sim),
            "annotations": annotations,
            "ownerReferences": owner.into_iter().collect::<Vec<_>>(),
        },
        "spec": spec,
    }))
}

fn hash_of(v: &serde_json::Value) -> Option<&str> {
    v.get("metadata")?
        .get("annotations")?
        .get(HASH_ANNOTATION)?
        .as_str()
}

/// The pod that runs `sim` of `sf`: what we server-side-apply.
pub fn pod_for(sf: &SimulatorFleet, fleet: &Fleet, sim: &Simulator) -> serde_json::Value {
    let args = pod_args(sim);
    let hash = pod_hash(fleet, sim);
    let owner = sf.controller_owner_ref(&());
    let mut ports = vec![
        json!({"name": "enip", "containerPort": 44818, "protocol": "TCP"}),
        json!({"name": "enip-udp", "containerPort": 44818, "protocol": "UDP"}),
    ];
    if sim.web {
        ports.push(json!({"name": "web", "containerPort": 8080, "protocol": "TCP"}));
    }
    // The web API listens on the pod's address: its token comes from the Secret that
    // `plcfleet apply` writes (the controller itself never reads it).
    let env = if sim.web && fleet.web_token.is_some() {
        json!([{
            "name": "ENIP_WEB_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": k8s::web_token_secret_name(&fleet.name), "key": "token"}},
        }])
    } else {
        json!([])
    };
    let mut annotations = serde_json::Map::new();
    annotations.insert(HASH_ANNOTATION.to_owned(), json!(hash));
    if let Some(m) = multus_annotation(sim) {
        annotations.insert(MULTUS_ANNOTATION.to_owned(), json!(m));
    }
    // The fleet's replay ConfigMap (`plcfleet apply` writes it): until it exists the
    // kubelet keeps the pod in ContainerCreating and retries.
    let (volumes, mounts) = if sim.replay.is_some() {
        (
            json!([{
                "name": REPLAY_VOLUME,
                "configMap": {"name": k8s::replay_config_map_name(&fleet.name)},
            }]),
            json!([{"name": REPLAY_VOLUME, "mountPath": k8s::REPLAY_DIR, "readOnly": true}]),
        )
    } else {
        (json!([]), json!([]))
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(&fleet.name, &sim.name),
            "namespace": sf.namespace(),
            "labels": labels(fleet, sim),
            "annotations": annotations,
            "ownerReferences": owner.into_iter().collect::<Vec<_>>(),
        },
        "spec": {
            "automountServiceAccountToken": false,
            "volumes": volumes,
            "enableServiceLinks": false,
            "restartPolicy": "Always",
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": "simulator",
                "image": fleet.image,
                "args": args,
                "env": env,
                "ports": ports,
                "volumeMounts": mounts,
                "readinessProbe": {"tcpSocket": {"port": 44818}, "periodSeconds": 5},
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "runAsNonRoot": true,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            }],
        },
    })
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// `conditions` with `c` set, keeping the transition time when its status is unchanged.
fn set_condition(old: &[Condition], mut c: Condition) -> Condition {
    if let Some(prev) = old.iter().find(|p| p.type_ == c.type_) {
        if prev.status == c.status {
            c.last_transition_time = prev.last_transition_time.clone();
        }
    }
    if c.last_transition_time.is_none() {
        c.last_transition_time = Some(now());
    }
    c
}

/// Two statuses say the same, transition times aside.
fn same_status(a: &SimulatorFleetStatus, b: &SimulatorFleetStatus) -> bool {
    let strip = |s: &SimulatorFleetStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time = None;
        }
        s
    };
    strip(a) == strip(b)
}

async fn patch_status(
    sf: &SimulatorFleet,
    ctx: &Context,
    status: SimulatorFleetStatus,
) -> Result<(), Error> {
    let old = sf.status.clone().unwrap_or_default();
    if sf.status.is_some() && same_status(&old, &status) {
        return Ok(());
    }
    let ns = sf.namespace().ok_or_else(|| Error::NoNamespace(key(sf)))?;
    let api: Api<SimulatorFleet> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = json!({
        "apiVersion": "plcfleet.io/v1alpha1",
        "kind": "SimulatorFleet",
        "status": status,
    });
    api.patch_status(
        &sf.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Reconcile one fleet (see the module documentation).
#[tracing::instrument(skip_all, fields(fleet = %key(&sf)))]
pub async fn reconcile(sf: Arc<SimulatorFleet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let out = reconcile_inner(&sf, &ctx).await;
    ctx.shared
        .metrics
        .reconcile
        .observe(started.elapsed().as_secs_f64());
    if out.is_ok() {
        ctx.failures().remove(&key(&sf));
    }
    out
}

async fn reconcile_inner(sf: &SimulatorFleet, ctx: &Context) -> Result<Action, Error> {
    if sf.meta().deletion_timestamp.is_some() {
        // The owner references make the garbage collector delete the pods.
        ctx.shared.remove(&key(sf));
        return Ok(Action::await_change());
    }
    let ns = sf.namespace().ok_or_else(|| Error::NoNamespace(key(sf)))?;
    let generation = sf.meta().generation;
    let old = sf.status.clone().unwrap_or_default();
    let fleet = match validate(sf) {
        Ok(f) => f,
        Err(why) => {
            tracing::warn!(%why, "invalid spec");
            ctx.recorder
                .publish(
                    &Event {
                        type_: EventType::Warning,
                        reason: "InvalidSpec".to_owned(),
                        note: Some(why.chars().take(1000).collect()),
                        action: "Validate".to_owned(),
                        secondary: None,
                    },
                    &sf.object_ref(&()),
                )
                .await?;
            let status = SimulatorFleetStatus {
                observed_generation: generation,
                conditions: vec![set_condition(
                    &old.conditions,
                    Condition {
                        type_: "Valid".to_owned(),
                        status: "False".to_owned(),
                        reason: "InvalidSpec".to_owned(),
                        message: why,
                        last_transition_time: None,
                        observed_generation: generation,
                    },
                )],
                ..old.clone()
            };
            patch_status(sf, ctx, status).await?;
            // A fix to the spec is a change, and brings us back.
            return Ok(Action::await_change());
        }
    };

    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let existing = pods
        .list(&ListParams::default().labels(&format!("{FLEET_LABEL}={}", fleet.name)))
        .await?;
    let mut have: BTreeMap<String, Pod> = existing
        .items
        .into_iter()
        .map(|p| (p.name_any(), p))
        .collect();
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    let mut have_services: BTreeMap<String, Service> = services
        .list(&ListParams::default().labels(&format!("{FLEET_LABEL}={}", fleet.name)))
        .await?
        .items
        .into_iter()
        .map(|s| (s.name_any(), s))
        .collect();

    let mut pending = false;
    let mut ready = 0u32;
    let mut sims = Vec::new();
    for sim in &fleet.simulators {
        let want = pod_for(sf, &fleet, sim);
        let name = pod_name(&fleet.name, &sim.name);
        let hash = pod_hash(&fleet, sim);
        let (state, healthy, ip) = match have.remove(&name) {
            Some(p) if p.meta().deletion_timestamp.is_some() => {
                pending = true;
                ("stopped", false, String::new())
            }
            Some(p) if p.annotations().get(HASH_ANNOTATION) != Some(&hash) => {
                // A pod's command cannot change: replace it, once it is gone.
                tracing::info!(pod = %name, "simulator changed: replacing its pod");
                pods.delete(&name, &DeleteParams::default()).await?;
                pending = true;
                ("stopped", false, String::new())
            }
            Some(p) => {
                // On a Multus network the simulator's address is its manifest's.
                let ip = if sim.multus.is_some() {
                    sim.ip.to_string()
                } else {
                    p.status
                        .as_ref()
                        .and_then(|s| s.pod_ip.clone())
                        .unwrap_or_default()
                };
                // Ready: the kubelet's TCP check passed, and the simulator answers
                // ListIdentity as itself (probed below, all at once).
                ("running", pod_ready(&p), ip)
            }
            None => {
                tracing::info!(pod = %name, "creating");
                pods.patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&want),
                )
                .await?;
                pending = true;
                ("missing", false, String::new())
            }
        };
        sims.push(SimulatorStatus {
            name: sim.name.clone(),
            ip,
            state: state.to_owned(),
            healthy,
            requests: None,
            rate: None,
            uptime: None,
            web: sim.web,
        });
    }
    // Services: applied when missing or changed (in place: a Service's spec can change).
    for sim in &fleet.simulators {
        let Some(want) = service_for(sf, &fleet, sim) else {
            continue;
        };
        let name = pod_name(&fleet.name, &sim.name);
        let current = have_services
            .remove(&name)
            .filter(|s| s.meta().deletion_timestamp.is_none());
        let have_hash = current
            .as_ref()
            .and_then(|s| s.annotations().get(HASH_ANNOTATION).cloned());
        if have_hash.as_deref() != hash_of(&want) {
            tracing::info!(service = %name, "applying");
            services
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&want),
                )
                .await?;
        }
    }
    let to_probe: Vec<(Option<Ipv4Addr>, Simulator)> = fleet
        .simulators
        .iter()
        .zip(&sims)
        .map(|(sim, st)| {
            let ip = st.ip.parse::<Ipv4Addr>().ok().filter(|_| st.healthy);
            (ip, sim.clone())
        })
        .collect();
    let prober = ctx.prober.clone();
    let answers: Vec<bool> = futures::stream::iter(to_probe)
        .map(move |(ip, sim)| {
            let probe = prober.clone();
            async move {
                match ip {
                    Some(ip) => probe(ip, sim).await,
                    None => false,
                }
            }
        })
        .buffered(PROBES_IN_FLIGHT)
        .collect()
        .await;
    for (st, ok) in sims.iter_mut().zip(answers) {
        st.healthy = ok;
        if ok {
            ready += 1;
        } else {
            pending = true;
        }
    }
    // Prune: pods of this fleet whose simulator is no longer listed.
    for (name, p) in have {
        if p.meta().deletion_timestamp.is_none() {
            tracing::info!(pod = %name, "no longer listed: deleting");
            pods.delete(&name, &DeleteParams::default()).await?;
        }
    }
    // Prune: Services no simulator asks for any more.
    for (name, svc) in have_services {
        if svc.meta().deletion_timestamp.is_none() {
            tracing::info!(service = %name, "no longer wanted: deleting");
            services.delete(&name, &DeleteParams::default()).await?;
        }
    }

    let desired = u32::try_from(fleet.simulators.len()).unwrap_or(u32::MAX);
    let all_ready = ready == desired;
    let status = SimulatorFleetStatus {
        desired,
        ready,
        observed_generation: generation,
        conditions: vec![
            set_condition(
                &old.conditions,
                Condition {
                    type_: "Valid".to_owned(),
                    status: "True".to_owned(),
                    reason: "Valid".to_owned(),
                    message: String::new(),
                    last_transition_time: None,
                    observed_generation: generation,
                },
            ),
            set_condition(
                &old.conditions,
                Condition {
                    type_: "Ready".to_owned(),
                    status: if all_ready { "True" } else { "False" }.to_owned(),
                    reason: if all_ready { "AllReady" } else { "NotReady" }.to_owned(),
                    message: format!("{ready}/{desired} simulators ready"),
                    last_transition_time: None,
                    observed_generation: generation,
                },
            ),
        ],
    };
    patch_status(sf, ctx, status).await?;
    ctx.shared.update(
        FleetStatus {
            name: key(sf),
            backend: "kubernetes".to_owned(),
            simulators: sims,
            uptime: 0.0,
            at: None,
        },
        fleet.simulators.len(),
    );
    Ok(if pending {
        Action::requeue(SOON)
    } else {
        Action::requeue(RESYNC)
    })
}

/// A failed reconcile: log it, count it, and retry after a growing delay.
pub fn error_policy(sf: Arc<SimulatorFleet>, err: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(fleet = %key(&sf), error = %err, "reconcile failed");
    ctx.shared
        .metrics
        .errors
        .with_label_values(&[err.metric_label()])
        .inc();
    let mut f = ctx.failures();
    let n = f.entry(key(&sf)).or_insert(0);
    *n = n.saturating_add(1);
    Action::requeue(backoff(*n))
}

/// Run the controller until a signal: watch every SimulatorFleet and the pods and
/// Services we own,
/// at most `concurrency` fleets reconciled at once. Fails first if SimulatorFleets cannot
/// be listed (no CRD, no permission).
pub async fn run(client: Client, shared: Shared, concurrency: u16) -> Result<(), kube::Error> {
    let fleets: Api<SimulatorFleet> = Api::all(client.clone());
    fleets.list(&ListParams::default().limit(1)).await?;
    let pods: Api<Pod> = Api::all(client.clone());
    let services: Api<Service> = Api::all(client.clone());
    let ctx = Arc::new(Context::new(client, shared));
    Controller::new(fleets, watcher::Config::default())
        .owns(pods, watcher::Config::default().labels(MANAGED_BY))
        .owns(services, watcher::Config::default().labels(MANAGED_BY))
        .with_config(Config::default().concurrency(concurrency.max(1)))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller");
            }
        })
        .await;
    Ok(())
}
