//! Several Docker engines behind one [`Backend`]: each fleet goes to its own
//! `spec.dockerHost` (else `DOCKER_HOST`, else the local engine), so one controller drives
//! fleets on several host boxes. Engines are connected on first use and kept; one that
//! cannot be reached fails only its own fleets' reconciles, with the usual hint.
//!
//! The trait's `list`/`remove` name a fleet only by its name: the engine of a fleet is
//! remembered from the calls that carry the whole fleet (`ensure_network`, which every
//! apply makes first, `create`, `remove_network`) and [`Engines::assign`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::{Backend, Observed, Result};
use crate::docker::{default_host, DockerBackend};
use crate::manifest::{Fleet, Simulator};

#[derive(Debug, Clone, Default)]
pub struct Engines {
    /// Connected engines by host.
    engines: Arc<tokio::sync::Mutex<HashMap<String, DockerBackend>>>,
    /// Which host each fleet lives on.
    fleets: Arc<Mutex<HashMap<String, String>>>,
}

impl Engines {
    pub fn new() -> Self {
        Self::default()
    }

    fn host_of(fleet: &Fleet) -> String {
        fleet.docker_host.clone().unwrap_or_else(default_host)
    }

    /// Remember that `fleet` lives on its engine.
    pub fn assign(&self, fleet: &Fleet) -> String {
        let host = Self::host_of(fleet);
        self.fleets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(fleet.name.clone(), host.clone());
        host
    }

    fn host_of_name(&self, fleet: &str) -> String {
        self.fleets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(fleet)
            .cloned()
            .unwrap_or_else(default_host)
    }

    /// The engine at `host`, connecting on first use.
    pub async fn engine(&self, host: &str) -> Result<DockerBackend> {
        if let Some(e) = self.engines.lock().await.get(host) {
            return Ok(e.clone());
        }
        // Not under the lock: an unreachable engine takes its timeout, and must not hold
        // up the fleets of the others.
        let e = DockerBackend::connect(Some(host)).await?;
        Ok(self
            .engines
            .lock()
            .await
            .entry(host.to_owned())
            .or_insert(e)
            .clone())
    }

    /// The hosts connected so far.
    pub async fn hosts(&self) -> Vec<String> {
        let mut h: Vec<String> = self.engines.lock().await.keys().cloned().collect();
        h.sort();
        h
    }
}

impl Backend for Engines {
    async fn ensure_network(&self, fleet: &Fleet) -> Result<()> {
        let host = self.assign(fleet);
        self.engine(&host).await?.ensure_network(fleet).await
    }

    async fn list(&self, fleet: &str) -> Result<Vec<Observed>> {
        let host = self.host_of_name(fleet);
        self.engine(&host).await?.list(fleet).await
    }

    async fn create(&self, fleet: &Fleet, sim: &Simulator, spec_hash: &str) -> Result<()> {
        let host = self.assign(fleet);
        self.engine(&host)
            .await?
            .create(fleet, sim, spec_hash)
            .await
    }

    async fn remove(&self, fleet: &str, sim: &Observed) -> Result<()> {
        let host = self.host_of_name(fleet);
        self.engine(&host).await?.remove(fleet, sim).await
    }

    async fn remove_network(&self, fleet: &Fleet) -> Result<()> {
        let host = self.assign(fleet);
        self.engine(&host).await?.remove_network(fleet).await
    }
}
