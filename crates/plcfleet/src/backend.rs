//! What every backend does: make a fleet's network, and create, list and remove its
//! simulators. The plan decides what to do; a backend only carries it out, so the same
//! plan drives the local, Docker and Kubernetes backends.

use std::future::Future;
use std::net::Ipv4Addr;

use crate::manifest::{Fleet, Simulator};

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
}
