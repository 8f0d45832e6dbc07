//! Prometheus metrics of one simulator, in a registry of its own (never the process-wide
//! default one, so two servers in one process, as in tests, do not mix).
//!
//! **Invariant:** no label carries a peer address, a tag name or anything else a client
//! chooses freely. Labels are encapsulation command names, CIP service names, general
//! status codes (`0x00`..`0xff`), transports and fixed reasons: bounded sets.

use enip_proto::services::{Body as _, Multiple, RequestBody};
use enip_proto::{Command, EncapStatus, Reply, Request, ServiceKind};
use prometheus::{
    Encoder as _, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Why a TCP connection ended (the `reason` label of `enip_tcp_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its side.
    Eof,
    /// The client sent UnRegisterSession.
    Unregistered,
    /// No bytes for longer than the idle timeout.
    Idle,
    /// Closed from outside: web API `eof`, `disable`, `done`, or server shutdown.
    Killed,
    /// A header declared a body longer than the largest accepted.
    TooLong,
    /// A request longer than the `--size` limit (answered 0x0065 first).
    SizeLimit,
    /// The client did not take its replies within the write timeout.
    WriteTimeout,
    /// A socket error.
    Error,
}

impl CloseReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::Eof => "eof",
            Self::Unregistered => "unregistered",
            Self::Idle => "idle",
            Self::Killed => "killed",
            Self::TooLong => "too_long",
            Self::SizeLimit => "size_limit",
            Self::WriteTimeout => "write_timeout",
            Self::Error => "error",
        }
    }
}

/// The server's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub(crate) encap_requests: IntCounterVec,
    pub(crate) encap_errors: IntCounterVec,
    pub(crate) cip_requests: IntCounterVec,
    pub(crate) duration: HistogramVec,
    pub(crate) received: IntCounterVec,
    pub(crate) sent: IntCounterVec,
    pub(crate) tcp_open: IntGauge,
    pub(crate) tcp_accepted: IntCounter,
    pub(crate) tcp_refused: IntCounterVec,
    pub(crate) tcp_closed: IntCounterVec,
    pub(crate) sessions: IntGauge,
    cip_connections: IntGauge,
    tags: IntGauge,
    pub(crate) tag_reads: IntCounter,
    pub(crate) tag_writes: IntCounter,
    pub(crate) delay: Gauge,
    started: IntGauge,
}

/// A few totals for the dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub encapsulation_requests: u64,
    pub cip_requests: u64,
    pub encapsulation_errors: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub tcp_open: i64,
    pub tcp_accepted: u64,
    pub tcp_refused: u64,
    pub sessions: i64,
    pub tag_reads: u64,
    pub tag_writes: u64,
    /// Seconds since the Unix epoch when the metrics (the simulator) started.
    pub started: i64,
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let m = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

fn counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let m = IntCounter::new(name, help)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let m = IntGauge::new(name, help)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

/// The encapsulation commands a label may name; anything else is `unknown`.
fn command_label(c: Command) -> &'static str {
    match c {
        Command::Other(_) => "unknown",
        c => c.name(),
    }
}

/// The `kind` of an encapsulation error reply.
fn encap_error_label(s: EncapStatus) -> &'static str {
    match s {
        EncapStatus::InvalidCommand => "invalid_command",
        EncapStatus::InsufficientMemory => "insufficient_memory",
        EncapStatus::IncorrectData => "incorrect_data",
        EncapStatus::InvalidSession => "invalid_session",
        EncapStatus::InvalidLength => "invalid_length",
        EncapStatus::UnsupportedProtocol => "unsupported_protocol",
        _ => "other",
    }
}

/// `0x00`..`0xff`: 256 values at most.
fn status_label(s: u8) -> String {
    format!("0x{s:02x}")
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "enip_request_duration_seconds",
                "Time from a complete encapsulation request to its reply being ready to send, \
                 including any --delay",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["command"],
        )?;
        r.register(Box::new(duration.clone()))?;
        let delay = Gauge::new(
            "enip_response_delay_seconds",
            "The response delay now in force (--delay, web API options/delay)",
        )?;
        r.register(Box::new(delay.clone()))?;
        Ok(Self {
            encap_requests: counter_vec(
                &r,
                "enip_encapsulation_requests_total",
                "Encapsulation requests received, by command (TCP and UDP)",
                &["command"],
            )?,
            encap_errors: counter_vec(
                &r,
                "enip_encapsulation_errors_total",
                "Encapsulation requests refused, by kind: an error status in the reply, or a \
                 framing error that closed the connection (too_long)",
                &["kind"],
            )?,
            cip_requests: counter_vec(
                &r,
                "enip_cip_requests_total",
                "CIP requests executed, by service and reply general status; Unconnected Send \
                 counts as the request it carries, Multiple Service Packet as itself and each \
                 embedded request",
                &["service", "status"],
            )?,
            duration,
            received: counter_vec(
                &r,
                "enip_received_bytes_total",
                "Bytes received from clients",
                &["transport"],
            )?,
            sent: counter_vec(
                &r,
                "enip_sent_bytes_total",
                "Bytes sent to clients",
                &["transport"],
            )?,
            tcp_open: gauge(&r, "enip_tcp_connections", "TCP connections open now")?,
            tcp_accepted: counter(
                &r,
                "enip_tcp_connections_accepted_total",
                "TCP connections accepted and served",
            )?,
            tcp_refused: counter_vec(
                &r,
                "enip_tcp_connections_refused_total",
                "TCP connections closed at once, by reason (limit: --max-connections reached)",
                &["reason"],
            )?,
            tcp_closed: counter_vec(
                &r,
                "enip_tcp_connections_closed_total",
                "TCP connections ended, by reason",
                &["reason"],
            )?,
            sessions: gauge(&r, "enip_sessions", "Encapsulation sessions registered now")?,
            cip_connections: gauge(
                &r,
                "enip_cip_connections",
                "CIP class 3 connections open now (Forward Open)",
            )?,
            tags: gauge(&r, "enip_tags", "Tags served")?,
            tag_reads: counter(
                &r,
                "enip_tag_reads_total",
                "Read Tag and Read Tag Fragmented requests, embedded ones included, any status",
            )?,
            tag_writes: counter(
                &r,
                "enip_tag_writes_total",
                "Write Tag, Write Tag Fragmented and Read-Modify-Write requests, embedded ones \
                 included, any status",
            )?,
            delay,
            started: {
                let g = gauge(
                    &r,
                    "enip_start_time_seconds",
                    "When this simulator started, in seconds since the Unix epoch",
                )?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                g.set(i64::try_from(now).unwrap_or(i64::MAX));
                g
            },
            registry: r,
        })
    }

    /// The registry, to add metrics of one's own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text format (0.0.4) of every metric. `cip_connections` and `tags`
    /// are sampled now, from the controller.
    pub fn render(&self, cip_connections: usize, tags: usize) -> String {
        self.cip_connections
            .set(i64::try_from(cip_connections).unwrap_or(i64::MAX));
        self.tags.set(i64::try_from(tags).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(%e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Totals for the dashboard.
    pub fn summary(&self) -> Summary {
        let sum = |v: &IntCounterVec| -> u64 {
            use prometheus::core::Collector as _;
            v.collect()
                .iter()
                .flat_map(|mf| mf.get_metric())
                .map(|m| m.get_counter().get_value() as u64)
                .sum()
        };
        Summary {
            encapsulation_requests: sum(&self.encap_requests),
            cip_requests: sum(&self.cip_requests),
            encapsulation_errors: sum(&self.encap_errors),
            bytes_received: sum(&self.received),
            bytes_sent: sum(&self.sent),
            tcp_open: self.tcp_open.get(),
            tcp_accepted: self.tcp_accepted.get(),
            tcp_refused: sum(&self.tcp_refused),
            sessions: self.sessions.get(),
            tag_reads: self.tag_reads.get(),
            tag_writes: self.tag_writes.get(),
            started: self.started.get(),
        }
    }

    pub(crate) fn encap_request(&self, c: Command) {
        self.encap_requests
            .with_label_values(&[command_label(c)])
            .inc();
    }

    pub(crate) fn encap_error(&self, kind: &str) {
        self.encap_errors.with_label_values(&[kind]).inc();
    }

    /// Count the error replies among the encapsulation frames in `replies`.
    pub(crate) fn encap_replies(&self, replies: &[u8]) {
        let mut rest = replies;
        while let Some(h) = rest.get(..24) {
            let word = |at: usize| {
                h.get(at..at + 4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, u32::from_le_bytes)
            };
            let status = EncapStatus::from_code(word(8));
            if status != EncapStatus::Success {
                self.encap_error(encap_error_label(status));
            }
            let len = h
                .get(2..4)
                .and_then(|b| <[u8; 2]>::try_from(b).ok())
                .map_or(0, u16::from_le_bytes);
            rest = rest.get(24 + usize::from(len)..).unwrap_or_default();
        }
    }

    pub(crate) fn observe_duration(&self, c: Command, seconds: f64) {
        self.duration
            .with_label_values(&[command_label(c)])
            .observe(seconds);
    }

    pub(crate) fn bytes(&self, transport: &str, received: usize, sent: usize) {
        if received > 0 {
            self.received
                .with_label_values(&[transport])
                .inc_by(received as u64);
        }
        if sent > 0 {
            self.sent
                .with_label_values(&[transport])
                .inc_by(sent as u64);
        }
    }

    pub(crate) fn closed(&self, why: CloseReason) {
        self.tcp_closed.with_label_values(&[why.label()]).inc();
    }

    /// Count one CIP exchange: the Message Router request and its reply.
    pub(crate) fn observe_cip(&self, request: &[u8], reply: &[u8]) {
        self.observe(request, reply, 0);
    }

    fn observe(&self, request: &[u8], reply: &[u8], depth: u8) {
        let status = Reply::decode(reply).map_or(0xFF, |r| r.status.0);
        let Ok(req) = Request::decode(request) else {
            self.cip_requests
                .with_label_values(&["malformed", &status_label(status)])
                .inc();
            return;
        };
        let kind = req.kind();
        let body = RequestBody::decode(&req);
        if let (ServiceKind::UnconnectedSend, Ok(RequestBody::UnconnectedSend(u))) = (kind, &body) {
            // The reply to an Unconnected Send is the embedded request's own reply.
            if depth < 2 {
                return self.observe(u.message, reply, depth + 1);
            }
        }
        let name = match kind {
            ServiceKind::Other(_) => "unknown",
            k => k.name(),
        };
        self.cip_requests
            .with_label_values(&[name, &status_label(status)])
            .inc();
        match kind {
            ServiceKind::ReadTag | ServiceKind::ReadTagFragmented => self.tag_reads.inc(),
            ServiceKind::WriteTag
            | ServiceKind::WriteTagFragmented
            | ServiceKind::ReadModifyWrite => self.tag_writes.inc(),
            ServiceKind::MultipleServicePacket if depth < 2 => {
                let (Ok(RequestBody::Multiple(reqs)), Ok(rep)) = (body, Reply::decode(reply))
                else {
                    return;
                };
                let Ok(reps) = Multiple::from_bytes(rep.data) else {
                    return;
                };
                for (q, p) in reqs.messages.iter().zip(&reps.messages) {
                    self.observe(q, p, depth + 1);
                }
            }
            _ => {}
        }
    }
}
