//! Converging a backend on a manifest: plan, carry the plan out with bounded
//! concurrency, then wait until every simulator answers as itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::backend::{Backend, BackendError, Observed};
use crate::manifest::{Fleet, Simulator};
use crate::plan::{plan, Action, Plan};
use crate::probe;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Backend calls in flight at once (an unbounded burst stalls dockerd).
    pub parallel: usize,
    /// Wait until every simulator answers ListIdentity as itself.
    pub wait: bool,
    pub timeout: Duration,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            parallel: 64,
            wait: true,
            timeout: Duration::from_secs(120),
            progress: false,
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone)]
pub struct Report {
    pub plan: Plan,
    /// Simulators that answered as themselves (when waiting).
    pub healthy: usize,
    pub failures: Vec<String>,
    pub elapsed: Duration,
}

fn bar(show: bool, len: usize, what: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {elapsed}")
    {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_owned());
    b
}

/// Converge `backend` on `fleet`.
pub async fn apply<B>(
    backend: &B,
    fleet: &Fleet,
    opts: &ApplyOptions,
) -> Result<Report, BackendError>
where
    B: Backend + Clone + 'static,
{
    let started = Instant::now();
    backend.ensure_network(fleet).await?;
    let observed = backend.list(&fleet.name).await?;
    let the_plan = plan(fleet, &observed);
    let fleet_arc = Arc::new(fleet.clone());
    let limit = Arc::new(Semaphore::new(opts.parallel.max(1)));
    let work: Vec<Action> = the_plan
        .actions
        .iter()
        .filter(|a| !matches!(a, Action::Unchanged(_)))
        .cloned()
        .collect();
    let progress = bar(opts.progress, work.len(), "applying");
    let mut failures = Vec::new();
    // Deletions first: they free addresses the creations may need.
    let (deletes, rest): (Vec<Action>, Vec<Action>) = work
        .into_iter()
        .partition(|a| matches!(a, Action::Delete(_)));
    for phase in [deletes, rest] {
        let mut set = JoinSet::new();
        for action in phase {
            let (b, f, l) = (backend.clone(), fleet_arc.clone(), limit.clone());
            set.spawn(async move {
                let _permit = l.acquire_owned().await;
                let name = action.name().to_owned();
                let r = run_action(&b, &f, action).await;
                (name, r)
            });
        }
        while let Some(done) = set.join_next().await {
            progress.inc(1);
            match done {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(e))) => failures.push(format!("{name}: {e}")),
                Err(e) => failures.push(format!("a task failed: {e}")),
            }
        }
    }
    progress.finish_and_clear();
    let healthy = if opts.wait && failures.is_empty() {
        wait_healthy(&fleet.simulators, opts, &mut failures).await
    } else {
        0
    };
    Ok(Report {
        plan: the_plan,
        healthy,
        failures,
        elapsed: started.elapsed(),
    })
}

async fn run_action<B: Backend>(b: &B, fleet: &Fleet, action: Action) -> Result<(), BackendError> {
    match action {
        Action::Create(sim) => b.create(fleet, &sim, &sim.spec_hash(&fleet.image)).await,
        Action::Recreate { sim, old } => {
            b.remove(&fleet.name, &old).await?;
            b.create(fleet, &sim, &sim.spec_hash(&fleet.image)).await
        }
        Action::Delete(o) => b.remove(&fleet.name, &o).await,
        Action::Unchanged(_) => Ok(()),
    }
}

/// Probe every simulator until each answers as itself or the timeout passes; returns how
/// many did, and records the others.
pub async fn wait_healthy(
    sims: &[Simulator],
    opts: &ApplyOptions,
    failures: &mut Vec<String>,
) -> usize {
    let deadline = Instant::now() + opts.timeout;
    let progress = bar(opts.progress, sims.len(), "waiting");
    let limit = Arc::new(Semaphore::new(256));
    let mut set = JoinSet::new();
    for sim in sims.iter().cloned() {
        let l = limit.clone();
        set.spawn(async move {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let answer = {
                    let _p = l.acquire().await;
                    probe::list_identity(sim.ip, left.min(Duration::from_secs(2))).await
                };
                match answer {
                    Ok(id) if probe::is_itself(&id, &sim) => return (sim, Ok(())),
                    Ok(id) if Instant::now() >= deadline => {
                        return (
                            sim,
                            Err(format!(
                                "answers as {:?}, serial {:#x}, at {}",
                                id.product_name, id.serial, id.address
                            )),
                        )
                    }
                    Err(e) if Instant::now() >= deadline => return (sim, Err(e.to_string())),
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
    }
    let mut healthy = 0;
    while let Some(done) = set.join_next().await {
        progress.inc(1);
        match done {
            Ok((_, Ok(()))) => healthy += 1,
            Ok((sim, Err(e))) => {
                failures.push(format!("{} ({}): not healthy: {e}", sim.name, sim.ip))
            }
            Err(e) => failures.push(format!("a probe failed: {e}")),
        }
    }
    progress.finish_and_clear();
    healthy
}

/// Remove everything the fleet owns.
pub async fn delete<B: Backend>(backend: &B, fleet: &Fleet) -> Result<Vec<Observed>, BackendError> {
    let observed = backend.list(&fleet.name).await?;
    for o in &observed {
        backend.remove(&fleet.name, o).await?;
    }
    backend.remove_network(fleet).await?;
    Ok(observed)
}
