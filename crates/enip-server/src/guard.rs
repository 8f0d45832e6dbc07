//! What stands in front of an HTTP listener: a bearer token, size bounds and a
//! per-client rate limit. The simulator's web API and plcfleet's controller API share it.
//!
//! - **Token**: with one set, every request but the exempt ones (`GET /metrics`,
//!   `GET /healthz`) needs `Authorization: Bearer <token>`, else 401 with
//!   `WWW-Authenticate: Bearer`. The comparison takes the same time wherever the
//!   strings differ. `/metrics` stays open on purpose: it is read-only counters that a
//!   Prometheus scrapes across hundreds of targets, and a token per target there buys
//!   little and costs every scrape config a secret.
//! - **Sizes**: a body over [`Limits::body`] is 413, a URI over [`Limits::uri`] 414,
//!   headers over [`Limits::headers`] in all 431 (hyper itself stops reading a head at
//!   ~400 KiB; these bounds are tighter).
//! - **Rate**: a token bucket per client IP address ([`Rate`]); beyond it, 429 with
//!   `Retry-After`. The client address comes from axum's `ConnectInfo`; a request
//!   without one (a router driven in-process) is not rate limited.
//!
//! Loopback listeners need no token (see [`needs_token`]): that keeps cpppo's
//! `-w :8080` working as it always has.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::HttpBody as _;
use axum::extract::connect_info::{ConnectInfo, MockConnectInfo};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

/// Makes the error response in the listener's own JSON envelope.
pub type ErrorBody = fn(StatusCode, String) -> Response;

/// Size bounds of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of body.
    pub body: usize,
    /// Most bytes of the request target (path and query).
    pub uri: usize,
    /// Most bytes of all header names and values together.
    pub headers: usize,
}

impl Limits {
    /// The simulator's web API: everything it takes is in the URL.
    pub const SIMULATOR: Limits = Limits {
        body: 64 << 10,
        uri: 8 << 10,
        headers: 16 << 10,
    };
    /// plcfleet's controller API: manifests arrive as bodies.
    pub const CONTROLLER: Limits = Limits {
        body: 1 << 20,
        uri: 8 << 10,
        headers: 16 << 10,
    };
}

/// A token bucket per client address: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for Rate {
    /// Far above what a dashboard, a script or our tests send, far below a flood.
    fn default() -> Self {
        Rate {
            per_second: 200.0,
            burst: 400.0,
        }
    }
}

/// Why a `--*-rate` value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad rate `{0}`: requests per second per client, optionally /BURST, e.g. 200 or 200/400")]
pub struct RateError(pub String);

impl std::str::FromStr for Rate {
    type Err = RateError;
    /// `N` (burst 2N) or `N/BURST`, both above 0.
    fn from_str(s: &str) -> Result<Self, RateError> {
        let bad = || RateError(s.to_owned());
        let num = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
        };
        let (rate, burst) = match s.split_once('/') {
            Some((r, b)) => (num(r).ok_or_else(bad)?, num(b).ok_or_else(bad)?),
            None => {
                let r = num(s).ok_or_else(bad)?;
                (r, r * 2.0)
            }
        };
        Ok(Rate {
            per_second: rate,
            burst: burst.max(1.0),
        })
    }
}

/// How one listener is guarded.
#[derive(Debug, Clone)]
pub struct Guard {
    token: Option<Arc<str>>,
    limits: Limits,
    rate: Rate,
    buckets: Arc<Mutex<HashMap<IpAddr, Bucket>>>,
    error: ErrorBody,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Past this many clients tracked, full buckets are forgotten (they carry no state).
const MAX_TRACKED: usize = 4096;

impl Guard {
    pub fn new(token: Option<String>, limits: Limits, rate: Rate, error: ErrorBody) -> Self {
        Guard {
            token: token.map(Arc::from),
            limits,
            rate,
            buckets: Arc::default(),
            error,
        }
    }

    /// `router` behind this guard.
    pub fn wrap<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        let body = self.limits.body;
        router
            .layer(axum::middleware::from_fn_with_state(self, check))
            .layer(DefaultBodyLimit::max(body))
    }

    /// Take one request from `ip`'s bucket: `Err(seconds)` to wait when it is empty.
    fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_TRACKED {
            let rate = self.rate;
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * rate.per_second < rate.burst
            });
            // Still full: that many clients at once is a flood from many addresses;
            // forgetting them all bounds memory (and lets them start over, once).
            if buckets.len() >= MAX_TRACKED {
                buckets.clear();
            }
        }
        let b = buckets.entry(client_key(ip)).or_insert(Bucket {
            tokens: self.rate.burst,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * self.rate.per_second;
        b.tokens = (b.tokens + refill).min(self.rate.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / self.rate.per_second;
            Err(Duration::from_secs_f64(wait).as_secs().saturating_add(1))
        }
    }
}

/// The rate-limited unit: an IPv4 address, or an IPv6 /64 (what one host usually holds).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::from([a, b, c, d, 0, 0, 0, 0])
        }
    }
}

/// Whether a listener on `addr` must have a token: anything but loopback is reachable
/// from other hosts.
pub fn needs_token(addr: &SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// A token as read from a file or the environment: surrounding whitespace (a trailing
/// newline) dropped; empty is refused.
pub fn token_from(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Equal strings, in a time that depends on their lengths only.
pub fn same_token(given: &[u8], want: &[u8]) -> bool {
    let mut diff = given.len() ^ want.len();
    for i in 0..given.len().max(want.len()) {
        let a = given.get(i).copied().unwrap_or(0);
        let b = want.get(i).copied().unwrap_or(0);
        diff |= usize::from(a ^ b);
    }
    std::hint::black_box(diff) == 0
}

fn exempt(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD) && matches!(path, "/metrics" | "/healthz")
}

async fn check(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| {
            req.extensions()
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|c| c.0)
        });
    if let Some(peer) = peer {
        if let Err(secs) = g.take(peer.ip(), Instant::now()) {
            let mut r = (g.error)(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many requests from this address: at most {} per second (burst {}); retry in {secs} s",
                    g.rate.per_second, g.rate.burst
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return r;
        }
    }
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > g.limits.uri {
        return (g.error)(
            StatusCode::URI_TOO_LONG,
            format!(
                "the request target is {uri_len} bytes; at most {}",
                g.limits.uri
            ),
        );
    }
    let head: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if head > g.limits.headers {
        return (g.error)(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the headers come to {head} bytes; at most {}",
                g.limits.headers
            ),
        );
    }
    // Content-Length as hyper read it (a chunked body has none: the extractors that read
    // bodies stop at the same limit, DefaultBodyLimit).
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        .max(req.body().size_hint().lower());
    if declared > g.limits.body as u64 {
        return (g.error)(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is {declared} bytes; at most {}", g.limits.body),
        );
    }
    if let Some(want) = &g.token {
        if !exempt(req.method(), req.uri().path()) {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim);
            let ok = given.is_some_and(|t| same_token(t.as_bytes(), want.as_bytes()));
            if !ok {
                let why = if given.is_some() {
                    "the `Authorization: Bearer` token is not this listener's"
                } else {
                    "this listener needs `Authorization: Bearer <token>` (only GET /metrics and /healthz are open)"
                };
                let mut r = (g.error)(StatusCode::UNAUTHORIZED, why.to_owned());
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
        }
    }
    next.run(req).await.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"s3cret", b"s3cret"));
        assert!(!same_token(b"s3cre", b"s3cret"));
        assert!(!same_token(b"s3cret!", b"s3cret"));
        assert!(!same_token(b"", b"s3cret"));
        assert!(!same_token(b"s3creT", b"s3cret"));
        assert_eq!(token_from("  abc\n").as_deref(), Some("abc"));
        assert_eq!(token_from(" \n"), None);
    }

    #[test]
    fn rates_parse() {
        let r: Rate = "50".parse().unwrap_or_default();
        assert_eq!((r.per_second, r.burst), (50.0, 100.0));
        let r: Rate = "5/7".parse().unwrap_or_default();
        assert_eq!((r.per_second, r.burst), (5.0, 7.0));
        for bad in ["", "0", "-1", "x", "1/0", "NaN"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn buckets_refill_at_the_rate() {
        fn body(_: StatusCode, _: String) -> Response {
            StatusCode::OK.into_response()
        }
        let g = Guard::new(
            None,
            Limits::SIMULATOR,
            Rate {
                per_second: 2.0,
                burst: 3.0,
            },
            body,
        );
        let ip = IpAddr::from([10, 0, 0, 1]);
        let t = Instant::now();
        assert_eq!(g.take(ip, t), Ok(()));
        assert_eq!(g.take(ip, t), Ok(()));
        assert_eq!(g.take(ip, t), Ok(()));
        assert_eq!(g.take(ip, t), Err(1));
        // Another client has its own bucket; an IPv6 /64 is one client.
        assert_eq!(g.take(IpAddr::from([10, 0, 0, 2]), t), Ok(()));
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        assert_eq!(g.take(v6(1), t), Ok(()));
        assert_eq!(g.take(v6(2), t), Ok(()));
        assert_eq!(g.take(v6(3), t), Ok(()));
        assert_eq!(g.take(v6(4), t), Err(1));
        assert_eq!(g.take(ip, t + Duration::from_millis(500)), Ok(()));
        assert_eq!(g.take(ip, t + Duration::from_millis(500)), Err(1));
    }

    #[test]
    fn loopback_needs_no_token() {
        let a = |s: &str| s.parse::<SocketAddr>().map(|a| needs_token(&a));
        assert_eq!(a("127.0.0.1:80"), Ok(false));
        assert_eq!(a("127.77.0.9:8080"), Ok(false));
        assert_eq!(a("[::1]:80"), Ok(false));
        assert_eq!(a("0.0.0.0:80"), Ok(true));
        assert_eq!(a("[::]:80"), Ok(true));
        assert_eq!(a("10.1.2.3:80"), Ok(true));
    }
}
