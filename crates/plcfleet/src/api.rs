//! The controller's HTTP side: `/api/fleets` (JSON), a dashboard at `/`, `/metrics`
//! (Prometheus text), and the file_sd targets of every simulator's own /metrics.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::{
    Encoder as _, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use serde::Serialize;

/// One simulator's state, as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimulatorStatus {
    pub name: String,
    pub ip: String,
    /// `running`, `missing`, `stopped`.
    pub state: String,
    pub healthy: bool,
    /// CIP requests served (when the backend can tell).
    pub requests: Option<u64>,
    pub web: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FleetStatus {
    pub name: String,
    pub backend: String,
    pub simulators: Vec<SimulatorStatus>,
    /// Seconds since the fleet was last converged.
    pub uptime: f64,
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
}

impl Shared {
    pub fn new() -> prometheus::Result<Self> {
        Ok(Self {
            fleets: Arc::new(Mutex::new(Vec::new())),
            metrics: Metrics::new()?,
            started: Instant::now(),
        })
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

    /// Record a fleet's state and its gauges.
    pub fn update(&self, status: FleetStatus, desired: usize) {
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
            Some(x) => *x = status,
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

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/api/fleets", get(list))
        .route("/api/fleets/{name}", get(one))
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
             <th>health</th><th>requests</th></tr>",
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
                "<tr><td>{}</td><td>{}:44818</td><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
                esc(&x.name),
                esc(&x.ip),
                esc(&x.state),
                x.requests.map_or_else(|| "–".to_owned(), |r| r.to_string())
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    Html(h)
}
