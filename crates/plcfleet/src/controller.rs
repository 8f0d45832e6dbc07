//! `plcfleet controller --manifests DIR`: reconcile every manifest in a directory, again
//! and again. A new or changed file is applied; a removed file's fleet is deleted; a
//! simulator that died or was removed behind our back is back at the next resync
//! (backend events can be lost, so the resync is periodic, not event-driven). An
//! invalid manifest changes nothing and is reported until it is fixed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::api::{self, FleetStatus, SimulatorStatus};
use crate::apply::{self, ApplyOptions};
use crate::backend::Backend;
use crate::manifest::{self, BackendKind, Fleet};

/// What the controller knows of one manifest file.
#[derive(Debug)]
struct Known {
    modified: Option<SystemTime>,
    /// The last valid fleet the file described (kept while the file is invalid).
    fleet: Option<Fleet>,
    error: Option<String>,
}

/// The reconciler, over one backend.
#[derive(Debug)]
pub struct Controller<B> {
    dir: PathBuf,
    backend: B,
    /// Fleets of this backend kind are ours; others belong to another controller loop.
    kind: BackendKind,
    shared: api::Shared,
    known: BTreeMap<PathBuf, Known>,
    opts: ApplyOptions,
    started: Instant,
}

/// One pass's outcome, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub applied: Vec<String>,
    pub deleted: Vec<String>,
    pub invalid: Vec<String>,
    /// Simulators created or recreated across fleets.
    pub repaired: usize,
    /// What failed (`fleet: simulator: why`); the next pass tries again.
    pub failures: Vec<String>,
}

/// The manifest files (`*.yaml`, `*.yml`) in `dir`, sorted.
pub(crate) fn manifests_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    v.sort();
    Ok(v)
}

impl<B: Backend + Clone + 'static> Controller<B> {
    pub fn new(
        dir: &Path,
        backend: B,
        kind: BackendKind,
        shared: api::Shared,
        opts: ApplyOptions,
    ) -> Self {
        Self {
            dir: dir.to_owned(),
            backend,
            kind,
            shared,
            known: BTreeMap::new(),
            opts,
            started: Instant::now(),
        }
    }

    /// One reconcile of every manifest.
    pub async fn reconcile(&mut self) -> Pass {
        let timer = Instant::now();
        let mut pass = Pass::default();
        let files = match manifests_in(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), "cannot read the manifests directory: {e}");
                self.shared
                    .metrics
                    .errors
                    .with_label_values(&["directory"])
                    .inc();
                return pass;
            }
        };
        // Files that went away: their fleets go too.
        let gone: Vec<PathBuf> = self
            .known
            .keys()
            .filter(|k| !files.contains(k))
            .cloned()
            .collect();
        for path in gone {
            if let Some(Known { fleet: Some(f), .. }) = self.known.remove(&path) {
                match apply::delete(&self.backend, &f).await {
                    Ok(_) => {
                        tracing::info!(fleet = %f.name, "manifest removed: fleet deleted");
                        self.shared.remove(&f.name);
                        pass.deleted.push(f.name.clone());
                    }
                    Err(e) => {
                        tracing::error!(fleet = %f.name, "delete failed: {e}");
                        self.shared
                            .metrics
                            .errors
                            .with_label_values(&[e.metric_label()])
                            .inc();
                        // Try again next pass.
                        self.known.insert(
                            path,
                            Known {
                                modified: None,
                                fleet: Some(f),
                                error: Some(e.to_string()),
                            },
                        );
                    }
                }
            }
        }
        for path in files {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            let entry = self.known.entry(path.clone()).or_insert(Known {
                modified: None,
                fleet: None,
                error: None,
            });
            if entry.modified != modified || entry.fleet.is_none() {
                entry.modified = modified;
                match manifest::load(&path) {
                    Ok(f) if f.backend != self.kind => {
                        tracing::debug!(fleet = %f.name, "not a {} fleet", self.kind);
                        entry.error = None;
                        entry.fleet = None;
                        entry.modified = modified;
                        continue;
                    }
                    Ok(f) => {
                        if let Some(old) = &entry.fleet {
                            if old.name != f.name {
                                // Renamed: the old fleet is no longer described.
                                let _ = apply::delete(&self.backend, old).await;
                                self.shared.remove(&old.name);
                                pass.deleted.push(old.name.clone());
                            }
                        }
                        entry.fleet = Some(f);
                        entry.error = None;
                    }
                    Err(e) => {
                        if entry.error.as_deref() != Some(&e.to_string()) {
                            tracing::error!("{e}");
                            self.shared
                                .metrics
                                .errors
                                .with_label_values(&["invalid"])
                                .inc();
                        }
                        entry.error = Some(e.to_string());
                        pass.invalid.push(path.display().to_string());
                    }
                }
            }
            let Some(fleet) = entry.fleet.clone() else {
                continue;
            };
            let quick = ApplyOptions {
                wait: false,
                progress: false,
                ..self.opts.clone()
            };
            match apply::apply(&self.backend, &fleet, &quick).await {
                Ok(report) => {
                    let changed = report.plan.count("create") + report.plan.count("update");
                    pass.repaired += changed;
                    if report.plan.changes() {
                        pass.applied.push(fleet.name.clone());
                        tracing::info!(fleet = %fleet.name, "{}", report.plan.to_string().lines().last().unwrap_or_default());
                    }
                    for f in &report.failures {
                        tracing::warn!(fleet = %fleet.name, "{f}");
                        pass.failures.push(format!("{}: {f}", fleet.name));
                    }
                    let status = self.status(&fleet).await;
                    self.shared.update(status, fleet.simulators.len());
                }
                Err(e) => {
                    tracing::error!(fleet = %fleet.name, "apply failed: {e}");
                    pass.failures.push(format!("{}: {e}", fleet.name));
                    self.shared
                        .metrics
                        .errors
                        .with_label_values(&[e.metric_label()])
                        .inc();
                }
            }
        }
        self.shared
            .metrics
            .reconcile
            .observe(timer.elapsed().as_secs_f64());
        pass
    }

    /// The fleet as the backend runs it, with a health probe of each simulator, and
    /// what each says of itself (requests, start time).
    async fn status(&self, fleet: &Fleet) -> FleetStatus {
        let observed = self.backend.list(&fleet.name).await.unwrap_or_default();
        let mut st = observe(&self.backend, fleet, &observed, Duration::from_millis(1500)).await;
        st.uptime = self.started.elapsed().as_secs_f64();
        st
    }

    /// Reconcile every `resync` until `stop` resolves, rewriting the targets file after
    /// each pass.
    pub async fn run(
        &mut self,
        resync: Duration,
        targets: Option<PathBuf>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut stop = std::pin::pin!(stop);
        let mut tick = tokio::time::interval(resync);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut woken = self.shared.woken();
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {}
                // A manifest came or went through the API: reconcile now.
                Ok(()) = woken.changed() => {}
            }
            let pass = self.reconcile().await;
            if pass.repaired > 0 || !pass.deleted.is_empty() {
                tracing::info!(?pass, "reconciled");
            }
            if let Some(t) = &targets {
                if let Err(e) = api::write_targets(t, &self.shared.fleets()) {
                    tracing::error!(file = %t.display(), "cannot write targets: {e}");
                }
            }
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }
}

/// A fleet's status now: `observed` (what the backend lists), a ListIdentity probe of
/// each simulator (for up to `timeout`) and, at the same time, what each says of itself.
pub async fn observe<B: Backend>(
    backend: &B,
    fleet: &Fleet,
    observed: &[crate::backend::Observed],
    timeout: Duration,
) -> FleetStatus {
    let probe = ApplyOptions {
        timeout,
        progress: false,
        ..ApplyOptions::default()
    };
    let mut failures = Vec::new();
    let (_, samples) = tokio::join!(
        apply::wait_healthy(&fleet.simulators, &probe, &mut failures),
        backend.samples(fleet)
    );
    status_of(fleet, observed, &failures, &samples)
}

/// A fleet's status from what the backend lists, which probes failed (messages start
/// with the simulator's name) and the simulators' own samples.
pub fn status_of(
    fleet: &Fleet,
    observed: &[crate::backend::Observed],
    failures: &[String],
    samples: &HashMap<String, crate::scrape::Sample>,
) -> FleetStatus {
    let seen: HashMap<&str, &crate::backend::Observed> =
        observed.iter().map(|o| (o.name.as_str(), o)).collect();
    let unhealthy: std::collections::HashSet<&str> = failures
        .iter()
        .filter_map(|m| m.split_once(' ').map(|(n, _)| n))
        .collect();
    FleetStatus {
        name: fleet.name.clone(),
        backend: fleet.backend.to_string(),
        simulators: fleet
            .simulators
            .iter()
            .map(|s| {
                let o = seen.get(s.name.as_str());
                let mut st = SimulatorStatus {
                    name: s.name.clone(),
                    ip: s.ip.to_string(),
                    state: match o.map(|o| o.running) {
                        Some(true) => "running",
                        Some(false) => "stopped",
                        None => "missing",
                    }
                    .into(),
                    healthy: o.is_some_and(|o| o.running) && !unhealthy.contains(s.name.as_str()),
                    requests: None,
                    rate: None,
                    uptime: None,
                    web: s.web,
                };
                if o.is_some_and(|o| o.running) {
                    st.observe(samples.get(&s.name), o.and_then(|o| o.started));
                }
                st
            })
            .collect(),
        uptime: 0.0,
        at: None,
    }
}
