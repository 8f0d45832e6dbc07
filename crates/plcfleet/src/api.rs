//! The controller's HTTP side: `/api/fleets` (JSON; `PUT` applies a manifest, `DELETE`
//! removes a fleet, when the controller watches a manifests directory),
//! `/api/fleets/NAME/simulators`, `/api/health`, a dashboard at `/`, `/metrics`
//! (Prometheus text), and the file_sd targets of every simulator's own /metrics.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use enip_server::guard::{Guard, Limits, Rate};
use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry,
};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use crate::scrape::Sample;

/// One simulator's state, as the API shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct SimulatorStatus {
    pub name: String,
    pub ip: String,
    /// `running`, `missing`, `stopped`.
    pub state: String,
    pub healthy: bool,
    /// CIP requests served (when the backend can tell).
    pub requests: Option<u64>,
    /// Requests per second since the previous sample.
    pub rate: Option<f64>,
    /// Seconds since the simulator started (when the backend or the simulator can tell).
    pub uptime: Option<f64>,
    pub web: bool,
}

impl SimulatorStatus {
    /// Fill in what a sample and the backend say: requests, and uptime from the
    /// simulator's own start time, else the backend's.
    pub fn observe(&mut self, sample: Option<&Sample>, started: Option<SystemTime>) {
        let now = SystemTime::now();
        let since = |t: SystemTime| now.duration_since(t).ok().map(|d| d.as_secs_f64());
        self.requests = sample.map(|s| s.requests);
        self.uptime = sample.and_then(|s| s.started).or(started).and_then(since);
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct FleetStatus {
    pub name: String,
    pub backend: String,
    pub simulators: Vec<SimulatorStatus>,
    /// Seconds since the fleet was last converged.
    pub uptime: f64,
    /// When this status was taken (request rates are differences over it).
    #[serde(skip)]
    pub at: Option<Instant>,
}

/// The controller's metrics, in its own registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub desired: IntGaugeVec,
    pub running: IntGaugeVec,
    pub healthy: IntGaugeVec,
    pub reconcile: Histogram,
    pub errors: IntCounterVec,
    /// Backend calls by backend and call (`create`, `list`, …).
    pub backend_calls: HistogramVec,
    pub backend_errors: IntCounterVec,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["fleet"]);
        let desired = gauge(
            "plcfleet_simulators_desired",
            "Simulators the manifest lists",
        )?;
        let running = gauge("plcfleet_simulators_running", "Simulators the backend runs")?;
        let healthy = gauge(
            "plcfleet_simulators_healthy",
            "Simulators answering ListIdentity as themselves",
        )?;
        let reconcile = Histogram::with_opts(HistogramOpts::new(
            "plcfleet_reconcile_duration_seconds",
            "Time to converge a fleet",
        ))?;
        let errors = IntCounterVec::new(
            Opts::new(
                "plcfleet_reconcile_errors_total",
                "Failed reconciles by kind",
            ),
            &["kind"],
        )?;
        let backend_calls = HistogramVec::new(
            HistogramOpts::new(
                "plcfleet_backend_call_duration_seconds",
                "Time a backend call took (Docker API, in-process start), by backend and call",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ]),
            &["backend", "call"],
        )?;
        let backend_errors = IntCounterVec::new(
            Opts::new(
                "plcfleet_backend_call_errors_total",
                "Backend calls that failed, by backend, call and kind",
            ),
            &["backend", "call", "kind"],
        )?;
        registry.register(Box::new(backend_calls.clone()))?;
        registry.register(Box::new(backend_errors.clone()))?;
        registry.register(Box::new(desired.clone()))?;
        registry.register(Box::new(running.clone()))?;
        registry.register(Box::new(healthy.clone()))?;
        registry.register(Box::new(reconcile.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        Ok(Self {
            registry,
            desired,
            running,
            healthy,
            reconcile,
            errors,
            backend_calls,
            backend_errors,
        })
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// What the HTTP side reads.
#[derive(Debug, Clone)]
pub struct Shared {
    pub fleets: Arc<Mutex<Vec<FleetStatus>>>,
    pub metrics: Metrics,
    pub started: Instant,
    /// The manifests directory the controller watches, if any: `PUT` and `DELETE` on
    /// `/api/fleets/NAME` write and remove files there.
    manifests: Option<PathBuf>,
    /// Bumped on every change through the API: the reconcile loops wake on it.
    wake: watch::Sender<u64>,
    /// Serializes writes to the manifests directory.
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl Shared {
    pub fn new() -> prometheus::Result<Self> {
        Ok(Self {
            fleets: Arc::new(Mutex::new(Vec::new())),
            metrics: Metrics::new()?,
            started: Instant::now(),
            manifests: None,
            wake: watch::channel(0).0,
            writing: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Accept manifests through the API into `dir`.
    #[must_use]
    pub fn with_manifests(mut self, dir: PathBuf) -> Self {
        self.manifests = Some(dir);
        self
    }

    /// Resolves each time the API changes a manifest.
    pub fn woken(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    pub fn fleets(&self) -> Vec<FleetStatus> {
        self.fleets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Forget a deleted fleet.
    pub fn remove(&self, name: &str) {
        for g in [
            &self.metrics.desired,
            &self.metrics.running,
            &self.metrics.healthy,
        ] {
            let _ = g.remove_label_values(&[name]);
        }
        self.fleets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|f| f.name != name);
    }

    /// Record a fleet's state and its gauges; request rates are computed against the
    /// previous record of the same simulator.
    pub fn update(&self, mut status: FleetStatus, desired: usize) {
        let now = Instant::now();
        status.at = Some(now);
        let f = status.name.as_str();
        let running = status
            .simulators
            .iter()
            .filter(|s| s.state == "running")
            .count();
        let healthy = status.simulators.iter().filter(|s| s.healthy).count();
        self.metrics
            .desired
            .with_label_values(&[f])
            .set(desired as i64);
        self.metrics
            .running
            .with_label_values(&[f])
            .set(running as i64);
        self.metrics
            .healthy
            .with_label_values(&[f])
            .set(healthy as i64);
        let mut all = self
            .fleets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match all.iter_mut().find(|x| x.name == status.name) {
            Some(x) => {
                let dt = x.at.map(|t| now.duration_since(t).as_secs_f64());
                let before: HashMap<&str, u64> = x
                    .simulators
                    .iter()
                    .filter_map(|s| Some((s.name.as_str(), s.requests?)))
                    .collect();
                for s in &mut status.simulators {
                    s.rate = match (s.requests, before.get(s.name.as_str()), dt) {
                        // A restarted simulator counts from 0 again: no rate this time.
                        (Some(n), Some(&b), Some(dt)) if n >= b && dt > 0.05 => {
                            Some((n - b) as f64 / dt)
                        }
                        _ => None,
                    };
                }
                *x = status;
            }
            None => all.push(status),
        }
    }
}

/// Prometheus file_sd: every simulator that serves /metrics, labelled by fleet.
pub fn targets(fleets: &[FleetStatus]) -> serde_json::Value {
    let groups: Vec<serde_json::Value> = fleets
        .iter()
        .map(|f| {
            let t: Vec<String> = f
                .simulators
                .iter()
                .filter(|s| s.web)
                .map(|s| format!("{}:8080", s.ip))
                .collect();
            serde_json::json!({"targets": t, "labels": {"fleet": f.name}})
        })
        .collect();
    serde_json::Value::Array(groups)
}

/// Write the targets file atomically (temp file + rename), as Prometheus reads it.
pub fn write_targets(path: &std::path::Path, fleets: &[FleetStatus]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(&targets(fleets)).unwrap_or_else(|_| "[]".into());
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The controller API with no token and the default limits (a loopback listener).
pub fn router(state: Shared) -> Router {
    router_with(state, guard(None, Rate::default()))
}

/// The controller's guard: `token` (see `enip_server::guard`: all but GET /metrics and
/// /healthz need it), [`Limits::CONTROLLER`] (1 MiB manifests) and `rate` per client.
pub fn guard(token: Option<String>, rate: Rate) -> Guard {
    Guard::new(token, Limits::CONTROLLER, rate, |code, message| {
        problem(code, message)
    })
}

/// The controller API behind `guard`.
pub fn router_with(state: Shared, guard: Guard) -> Router {
    guard.wrap(routes(state))
}

fn routes(state: Shared) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/api/fleets", get(list))
        .route(
            "/api/fleets/{name}",
            get(one).put(put_fleet).delete(delete_fleet),
        )
        .route("/api/fleets/{name}/simulators", get(simulators))
        .route("/api/fleets/{name}/simulators/{sim}", get(simulator))
        .route("/api/health", get(health))
        .route("/api/targets", get(target_groups))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

async fn list(State(s): State<Shared>) -> Response {
    axum::Json(s.fleets()).into_response()
}

async fn one(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    match s.fleets().into_iter().find(|f| f.name == name) {
        Some(f) => axum::Json(f).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": format!("no fleet `{name}`")})),
        )
            .into_response(),
    }
}

fn problem(code: StatusCode, message: impl Into<String>) -> Response {
    (code, axum::Json(json!({"error": message.into()}))).into_response()
}

fn no_fleet(name: &str) -> Response {
    problem(StatusCode::NOT_FOUND, format!("no fleet `{name}`"))
}

fn fleet(s: &Shared, name: &str) -> Option<FleetStatus> {
    s.fleets().into_iter().find(|f| f.name == name)
}

async fn simulators(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    match fleet(&s, &name) {
        Some(f) => axum::Json(f.simulators).into_response(),
        None => no_fleet(&name),
    }
}

async fn simulator(State(s): State<Shared>, Path((name, sim)): Path<(String, String)>) -> Response {
    let Some(f) = fleet(&s, &name) else {
        return no_fleet(&name);
    };
    match f.simulators.into_iter().find(|x| x.name == sim) {
        Some(x) => axum::Json(x).into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            format!("fleet `{name}` has no simulator `{sim}`"),
        ),
    }
}

/// 200 while the controller serves; the body says how the fleets are.
async fn health(State(s): State<Shared>) -> Response {
    let fleets = s.fleets();
    let total: usize = fleets.iter().map(|f| f.simulators.len()).sum();
    let healthy: usize = fleets
        .iter()
        .map(|f| f.simulators.iter().filter(|x| x.healthy).count())
        .sum();
    axum::Json(json!({
        "status": if healthy == total { "ok" } else { "degraded" },
        "fleets": fleets.len(),
        "simulators": total,
        "healthy": healthy,
        "uptime": s.started.elapsed().as_secs_f64(),
        "manifests": s.manifests.as_ref().map(|d| d.display().to_string()),
    }))
    .into_response()
}

/// The manifest file in `dir` that describes fleet `name` (by `metadata.name`, whatever
/// the file is called), if any.
fn file_of(dir: &std::path::Path, name: &str) -> Option<PathBuf> {
    #[derive(serde::Deserialize)]
    struct Head {
        metadata: Meta,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        name: String,
    }
    crate::controller::manifests_in(dir)
        .ok()?
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| serde_yaml::from_str::<Head>(&t).ok())
                .is_some_and(|h| h.metadata.name == name)
        })
}

/// `PUT /api/fleets/NAME` with a manifest (YAML) as the body: validated as `plcfleet
/// validate` does, then written (atomically) into the manifests directory, replacing the
/// file that described NAME, and reconciled at once. An invalid manifest changes nothing
/// and gets 422 with every problem.
async fn put_fleet(State(s): State<Shared>, Path(name): Path<String>, body: Bytes) -> Response {
    let Some(dir) = s.manifests.clone() else {
        return problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "this controller has no manifests directory (plcfleet controller --manifests DIR accepts manifests)",
        );
    };
    if let Err(why) = crate::manifest::check_name(&name) {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("fleet name `{name}`: {why}"),
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return problem(StatusCode::BAD_REQUEST, "the manifest is not UTF-8 text");
    };
    let _guard = s.writing.lock().await;
    let file = file_of(&dir, &name).unwrap_or_else(|| dir.join(format!("{name}.yaml")));
    let fleet = match crate::manifest::parse(&file, text) {
        Ok(f) => f,
        Err(e) => {
            let problems: Vec<serde_json::Value> = e
                .problems
                .iter()
                .map(|p| {
                    json!({"path": p.path, "line": p.line, "column": p.column,
                           "message": p.message, "hint": p.hint})
                })
                .collect();
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({"error": e.to_string(), "problems": problems})),
            )
                .into_response();
        }
    };
    if fleet.name != name {
        return problem(
            StatusCode::BAD_REQUEST,
            format!(
                "the manifest names fleet `{}` but was sent to /api/fleets/{name}",
                fleet.name
            ),
        );
    }
    let tmp = dir.join(format!(".{name}.yaml.tmp"));
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write {}: {e}", file.display()),
        );
    }
    s.wake.send_modify(|n| *n = n.wrapping_add(1));
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "fleet": fleet.name,
            "backend": fleet.backend.to_string(),
            "simulators": fleet.simulators.len(),
            "file": file.display().to_string(),
            "message": "accepted: reconciling now; GET /api/fleets/NAME shows progress",
        })),
    )
        .into_response()
}

/// `DELETE /api/fleets/NAME`: remove the manifest that describes NAME; the controller
/// then removes everything the fleet owns.
async fn delete_fleet(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    let Some(dir) = s.manifests.clone() else {
        return problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "this controller has no manifests directory; stop `plcfleet up` to stop its fleet",
        );
    };
    let _guard = s.writing.lock().await;
    let Some(file) = file_of(&dir, &name) else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no manifest in {} describes fleet `{name}`", dir.display()),
        );
    };
    if let Err(e) = std::fs::remove_file(&file) {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot remove {}: {e}", file.display()),
        );
    }
    s.wake.send_modify(|n| *n = n.wrapping_add(1));
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"fleet": name, "file": file.display().to_string(),
                          "message": "manifest removed: deleting the fleet now"})),
    )
        .into_response()
}

async fn target_groups(State(s): State<Shared>) -> Response {
    axum::Json(targets(&s.fleets())).into_response()
}

async fn metrics(State(s): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn dashboard(State(s): State<Shared>) -> Html<String> {
    use std::fmt::Write as _;
    let mut h = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <meta http-equiv=\"refresh\" content=\"2\"/><title>plcfleet</title><style>\
         body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
         table{border-collapse:collapse;margin-bottom:1.5em}\
         td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}\
         .ok{color:#187a2f}.bad{color:#b3261e}.sum{font-size:1.1em}\
         </style></head><body><h1>plcfleet</h1>",
    );
    for f in s.fleets() {
        let healthy = f.simulators.iter().filter(|x| x.healthy).count();
        let _ = write!(
            h,
            "<h2>{} <small>({})</small></h2><p class=\"sum\">{healthy} of {} simulators healthy, \
             up {:.0} s</p><table><tr><th>simulator</th><th>address</th><th>state</th>\
             <th>health</th><th>up</th><th>requests</th><th>req/s</th></tr>",
            esc(&f.name),
            esc(&f.backend),
            f.simulators.len(),
            f.uptime
        );
        for x in &f.simulators {
            let (class, word) = if x.healthy {
                ("ok", "healthy")
            } else {
                ("bad", "not answering")
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}:44818</td><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&x.name),
                esc(&x.ip),
                esc(&x.state),
                x.uptime.map_or_else(|| "–".to_owned(), duration),
                x.requests.map_or_else(|| "–".to_owned(), |r| r.to_string()),
                x.rate.map_or_else(|| "–".to_owned(), |r| format!("{r:.1}"))
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    Html(h)
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `9s`.
pub fn duration(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs as u64
    } else {
        0
    };
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(requests: &[Option<u64>]) -> FleetStatus {
        FleetStatus {
            name: "f".into(),
            backend: "local".into(),
            simulators: requests
                .iter()
                .enumerate()
                .map(|(i, r)| SimulatorStatus {
                    name: format!("s-{i}"),
                    ip: format!("127.0.0.{i}"),
                    state: "running".into(),
                    healthy: true,
                    requests: *r,
                    rate: None,
                    uptime: None,
                    web: true,
                })
                .collect(),
            uptime: 0.0,
            at: None,
        }
    }

    #[test]
    fn rates_are_differences_over_time_and_a_restart_has_none() {
        let s = Shared::new().unwrap();
        s.update(fleet(&[Some(100), Some(500), None]), 3);
        assert!(s.fleets()[0].simulators.iter().all(|x| x.rate.is_none()));
        std::thread::sleep(std::time::Duration::from_millis(200));
        // s-0 served 300 more; s-1 restarted (counts from 0 again); s-2 cannot tell.
        s.update(fleet(&[Some(400), Some(7), None]), 3);
        let f = &s.fleets()[0];
        let r = f.simulators[0].rate.unwrap();
        assert!(r > 300.0 / 2.0 && r <= 300.0 / 0.2, "{r}");
        assert_eq!(f.simulators[1].rate, None);
        assert_eq!(f.simulators[2].rate, None);
    }

    #[test]
    fn durations_read_like_uptime() {
        assert_eq!(duration(9.7), "9s");
        assert_eq!(duration(250.0), "4m 10s");
        assert_eq!(duration(7500.0), "2h 5m");
        assert_eq!(duration(3.0 * 86_400.0 + 4.0 * 3600.0), "3d 4h");
        assert_eq!(duration(f64::NAN), "0s");
        assert_eq!(duration(-5.0), "0s");
    }

    #[test]
    fn a_simulators_own_start_time_wins_over_the_backends() {
        let mut s = fleet(&[None]).simulators.remove(0);
        let now = SystemTime::now();
        let sample = Sample {
            requests: 12,
            started: Some(now - std::time::Duration::from_secs(30)),
        };
        s.observe(
            Some(&sample),
            Some(now - std::time::Duration::from_secs(3600)),
        );
        assert_eq!(s.requests, Some(12));
        let up = s.uptime.unwrap();
        assert!((29.0..40.0).contains(&up), "{up}");
        s.observe(None, Some(now - std::time::Duration::from_secs(3600)));
        assert_eq!(s.requests, None);
        assert!(s.uptime.unwrap() >= 3600.0);
    }
}
