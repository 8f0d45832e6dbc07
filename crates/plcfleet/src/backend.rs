//! What every backend does: make a fleet's network, and create, list and remove its
//! simulators. The plan decides what to do; a backend only carries it out, so the same
//! plan drives the local, Docker and Kubernetes backends.

use std::collections::HashMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::time::{Instant, SystemTime};

use crate::manifest::{Fleet, Simulator};
use crate::scrape::{self, Sample};

/// A simulator as the backend sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub name: String,
    /// The backend's own id (container id, in-process key).
    pub id: String,
    pub ip: Option<Ipv4Addr>,
    /// The spec hash it was created from (a label).
    pub spec_hash: String,
    pub running: bool,
    /// When the backend started it (Docker: created), if it can tell.
    pub started: Option<SystemTime>,
}

/// A backend failure, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{message}")]
    Unavailable { message: String, hint: String },
    #[error("{what}: {message}")]
    Failed { what: String, message: String },
    #[error("{0}")]
    Conflict(String),
}

impl BackendError {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Unavailable { .. } => "unavailable",
            Self::Failed { .. } => "failed",
            Self::Conflict(_) => "conflict",
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Unavailable { hint, .. } => Some(hint),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// A place simulators run.
pub trait Backend: Send + Sync {
    /// Create the fleet's network if needed; refuse (without touching it) one that
    /// exists with other settings.
    fn ensure_network(&self, fleet: &Fleet) -> impl Future<Output = Result<()>> + Send;
    /// Every simulator this backend runs for `fleet` (by ownership, not by name).
    fn list(&self, fleet: &str) -> impl Future<Output = Result<Vec<Observed>>> + Send;
    /// Start `sim`, labelled with `spec_hash`.
    fn create(
        &self,
        fleet: &Fleet,
        sim: &Simulator,
        spec_hash: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Stop and remove one simulator.
    fn remove(&self, fleet: &str, sim: &Observed) -> impl Future<Output = Result<()>> + Send;
    /// Remove the fleet's network once it is empty.
    fn remove_network(&self, fleet: &Fleet) -> impl Future<Output = Result<()>> + Send;
    /// What each simulator reports of itself (requests served, start time), by name,
    /// for those that can tell. By default, each `web: true` simulator's own /metrics.
    fn samples(&self, fleet: &Fleet) -> impl Future<Output = HashMap<String, Sample>> + Send {
        scrape::fleet(fleet)
    }
}

/// A backend whose every call is timed into `plcfleet_backend_call_duration_seconds`
/// and, when it fails, counted in `plcfleet_backend_call_errors_total`.
#[derive(Debug, Clone)]
pub struct Timed<B> {
    inner: B,
    kind: &'static str,
    metrics: crate::api::Metrics,
}

impl<B> Timed<B> {
    pub fn new(inner: B, kind: &'static str, metrics: crate::api::Metrics) -> Self {
        Self {
            inner,
            kind,
            metrics,
        }
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    async fn time<T>(&self, call: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
        let t = Instant::now();
        let r = f.await;
        self.metrics
            .backend_calls
            .with_label_values(&[self.kind, call])
            .observe(t.elapsed().as_secs_f64());
        if let Err(e) = &r {
            self.metrics
                .backend_errors
                .with_label_values(&[self.kind, call, e.metric_label()])
                .inc();
        }
        r
    }
}

impl<B: Backend> Backend for Timed<B> {
    async fn ensure_network(&self, fleet: &Fleet) -> Result<()> {
        self.time("ensure_network", self.inner.ensure_network(fleet))
            .await
    }
    async fn list(&self, fleet: &str) -> Result<Vec<Observed>> {
        self.time("list", self.inner.list(fleet)).await
    }
    async fn create(&self, fleet: &Fleet, sim: &Simulator, spec_hash: &str) -> Result<()> {
        self.time("create", self.inner.create(fleet, sim, spec_hash))
            .await
    }
    async fn remove(&self, fleet: &str, sim: &Observed) -> Result<()> {
        self.time("remove", self.inner.remove(fleet, sim)).await
    }
    async fn remove_network(&self, fleet: &Fleet) -> Result<()> {
        self.time("remove_network", self.inner.remove_network(fleet))
            .await
    }
    async fn samples(&self, fleet: &Fleet) -> HashMap<String, Sample> {
        self.inner.samples(fleet).await
    }
}
