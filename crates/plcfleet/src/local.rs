//! The local backend: simulators run in this process, each an `enip-server` bound to
//! its own loopback address on port 44818 (Linux routes all of 127.0.0.0/8 to `lo`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use enip_device::Controller;
use enip_server::generate::Binding;
use enip_server::{Options, Server};
use tokio::task::JoinHandle;

use crate::backend::{Backend, BackendError, Observed, Result};
use crate::manifest::{Fleet, Simulator};
use crate::scrape::Sample;

#[derive(Debug)]
struct Running {
    observed: Observed,
    server: Server,
    tasks: Vec<JoinHandle<()>>,
}

/// In-process simulators, keyed by (fleet, name).
#[derive(Debug, Default, Clone)]
pub struct LocalBackend {
    running: Arc<Mutex<HashMap<(String, String), Running>>>,
}

fn failed(sim: &Simulator, message: impl ToString) -> BackendError {
    BackendError::Failed {
        what: format!("{} ({})", sim.name, sim.ip),
        message: message.to_string(),
    }
}

/// The controller a simulator starts with.
pub fn controller(sim: &Simulator) -> std::result::Result<Controller, String> {
    let mut c = Controller::new();
    for t in &sim.tags {
        c.add_addressed_tag(t).map_err(|e| e.to_string())?;
    }
    for (k, v) in &sim.identity {
        enip_server::config::set_identity(&mut c.identity, k, v)?;
    }
    c.network.address = sim.ip.octets();
    c.now_us = enip_server::now_us();
    Ok(c)
}

impl LocalBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Running>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The running servers (for metrics and the dashboard).
    pub fn servers(&self, fleet: &str) -> Vec<(String, Server)> {
        let mut v: Vec<(String, Server)> = self
            .lock()
            .iter()
            .filter(|((f, _), _)| f == fleet)
            .map(|((_, n), r)| (n.clone(), r.server.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Stop everything.
    pub fn shutdown(&self) {
        for (_, r) in self.lock().drain() {
            stop(r);
        }
    }
}

fn stop(r: Running) {
    r.server.set_done();
    for t in r.tasks {
        t.abort();
    }
}

/// [`stop`], and wait until every task (and so its listener) is gone: the address is
/// free for whatever binds it next.
async fn stop_and_wait(r: Running) {
    r.server.set_done();
    for t in &r.tasks {
        t.abort();
    }
    for t in r.tasks {
        let _ = t.await;
    }
}

impl Backend for LocalBackend {
    async fn ensure_network(&self, _fleet: &Fleet) -> Result<()> {
        Ok(())
    }

    async fn list(&self, fleet: &str) -> Result<Vec<Observed>> {
        Ok(self
            .lock()
            .iter()
            .filter(|((f, _), _)| f == fleet)
            .map(|(_, r)| r.observed.clone())
            .collect())
    }

    async fn create(&self, fleet: &Fleet, sim: &Simulator, spec_hash: &str) -> Result<()> {
        let ctrl = Arc::new(Mutex::new(controller(sim).map_err(|e| failed(sim, e))?));
        let addr = std::net::SocketAddr::from((sim.ip, 44818));
        let tcp = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            failed(
                sim,
                format!("cannot listen on {addr}: {e} (another simulator or server has it?)"),
            )
        })?;
        let udp = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(|e| failed(sim, format!("cannot listen on UDP {addr}: {e}")))?;
        let options = Options {
            clock: true,
            ..Options::default()
        };
        let server = Server::new(ctrl.clone(), options).map_err(|e| failed(sim, e))?;
        let mut tasks = Vec::new();
        let s = server.clone();
        tasks.push(tokio::spawn(async move {
            let _ = s.run(tcp, std::future::pending::<()>()).await;
        }));
        let s = server.clone();
        tasks.push(tokio::spawn(async move {
            let _ = s.run_udp(udp, std::future::pending::<()>()).await;
        }));
        if sim.web {
            let w = std::net::SocketAddr::from((sim.ip, 8080));
            let l = tokio::net::TcpListener::bind(w)
                .await
                .map_err(|e| failed(sim, format!("cannot listen on {w} for the web API: {e}")))?;
            let (s, done) = (server.clone(), server.clone());
            tasks.push(tokio::spawn(async move {
                let _ = enip_server::web::serve(l, s, async move { done.done().await }).await;
            }));
        }
        let bindings: Vec<Binding> = sim
            .generators
            .iter()
            .filter_map(|g| Binding::parse(g).ok())
            .collect();
        if !bindings.is_empty() {
            tasks.push(tokio::spawn(enip_server::generate::run(
                ctrl.clone(),
                bindings,
            )));
        }
        if let Some(r) = &sim.replay {
            let records = enip_server::history::load(&r.file).map_err(|e| failed(sim, e))?;
            tasks.push(tokio::spawn(enip_server::history::replay(
                ctrl.clone(),
                records,
                r.speed,
                r.looped,
            )));
        }
        let observed = Observed {
            name: sim.name.clone(),
            id: format!("{}/{}", fleet.name, sim.name),
            ip: Some(sim.ip),
            spec_hash: spec_hash.to_owned(),
            running: true,
            started: Some(std::time::SystemTime::now()),
        };
        let old = self.lock().insert(
            (fleet.name.clone(), sim.name.clone()),
            Running {
                observed,
                server,
                tasks,
            },
        );
        if let Some(old) = old {
            stop_and_wait(old).await;
        }
        Ok(())
    }

    async fn remove(&self, fleet: &str, sim: &Observed) -> Result<()> {
        let r = self.lock().remove(&(fleet.to_owned(), sim.name.clone()));
        if let Some(r) = r {
            // The listener is closed before the address can be reused.
            stop_and_wait(r).await;
        }
        Ok(())
    }

    async fn remove_network(&self, _fleet: &Fleet) -> Result<()> {
        Ok(())
    }

    /// In this process: every simulator's counters, web or not.
    async fn samples(&self, fleet: &Fleet) -> HashMap<String, Sample> {
        self.servers(&fleet.name)
            .into_iter()
            .map(|(name, server)| {
                let s = server.metrics().summary();
                (
                    name,
                    Sample {
                        requests: s.cip_requests,
                        started: u64::try_from(s.started)
                            .ok()
                            .map(|t| std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)),
                    },
                )
            })
            .collect()
    }
}
