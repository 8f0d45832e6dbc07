//! The web listener (`-w/--web`): cpppo's API under `/api`, Prometheus `/metrics`, and
//! an HTML dashboard for browsers.
//!
//! - `GET /api[/group[/match[/command[/value]]]]`: group and match are globs (`*`, `?`,
//!   `[...]`, default `*`); the command runs on every match. The last term may be
//!   `command=value`; query parameters `group`, `match`,
//!   `command`, `value` and `since` override the path; a `.json` suffix on the last term
//!   forces JSON. The encoding follows the `Accept` header as cpppo chooses it (JSON,
//!   `text/javascript` and `text/plain` carry the JSON; `text/html` gets the dashboard;
//!   anything else is 406).
//!
//!   | URL | Effect |
//!   |---|---|
//!   | `/api/options/delay/value=0.5` | delay every TCP reply 0.5 s |
//!   | `/api/options/delay/range=0.5-1.5` | a delay re-drawn from the range each second |
//!   | `/api/server/control/disable/true` (`false`) | close the listener and every connection (listen again) |
//!   | `/api/server/control/done/true` | stop the server |
//!   | `/api/server/control/latency`, `.../timeout` | cpppo's poll latency and join timeout: kept and shown, no effect |
//!   | `/api/tags/<tag>/error=8` | every access to the tag answers general status 8; `0` clears |
//!   | `/api/tags/<tag>/attribute[3]=4` | get or set one element (`attribute=1,2,3` sets from element 0) |
//!   | `/api/connections` | open connections: `eof`, `interface`, `port`, `received`, `requests` |
//!   | `/api/connections/127_0_0_1_52044/eof/true`, `/api/connections/*/eof/true` | close connections |
//!
//!   Differences from cpppo are listed in `src/api.rs`.
//! - `GET /metrics`: the Prometheus text format.
//! - `GET /`: redirects to `/api`. A path ending in `/` redirects to the same path
//!   without it, as cpppo does.
//!
//! Errors are the same JSON envelope with `"command": {"success": false, "message": ...}`
//! and a 4xx status; nothing a client sends can make a handler panic.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value as Json};
use tokio::net::TcpListener;

use crate::api::{self, ApiRequest};
use crate::guard::{Guard, Limits, Rate};
use crate::runtime::Server;

/// The port of `-w HOST` without one (cpppo's default).
pub const DEFAULT_PORT: u16 = 80;

/// Why a `--web` address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad web address `{0}`: expected [HOST][:PORT], e.g. :8080 (127.0.0.1:8080) or 0.0.0.0:8080"
)]
pub struct AddressError(pub String);

/// Parse `-w [host][:port]`. A missing host is 127.0.0.1, not every interface: the API
/// can stop the server and has no authentication, so exposing it takes an explicit
/// `0.0.0.0:PORT`. A missing port is 80, as in cpppo. `localhost` is 127.0.0.1; IPv6
/// needs brackets, `[::1]:8080`.
pub fn parse_address(s: &str) -> Result<SocketAddr, AddressError> {
    let bad = || AddressError(s.to_owned());
    let t = s.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = if let Some(inner) = t.strip_prefix('[') {
        let (h, rest) = inner.split_once(']').ok_or_else(bad)?;
        let port = match rest {
            "" => "",
            r => r.strip_prefix(':').ok_or_else(bad)?,
        };
        (h, port)
    } else {
        match t.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p),
            Some(_) => return Err(bad()),
            None => (t, ""),
        }
    };
    let port = if port.is_empty() {
        DEFAULT_PORT
    } else {
        port.parse().map_err(|_| bad())?
    };
    let ip = match host {
        "" | "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h.parse().map_err(|_| bad())?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// The web application for `server`, with no token and the default limits.
pub fn router(server: Server) -> Router {
    router_with(server, guard(None, Rate::default()))
}

/// The web application for `server` behind `guard`.
pub fn router_with(server: Server, guard: Guard) -> Router {
    guard.wrap(Router::new().fallback(handle).with_state(server))
}

/// The simulator's guard: `token` (see [`crate::guard`]), [`Limits::SIMULATOR`] and
/// `rate` per client address, errors in the API's envelope.
pub fn guard(token: Option<String>, rate: Rate) -> Guard {
    Guard::new(token, Limits::SIMULATOR, rate, guard_error)
}

fn guard_error(code: StatusCode, message: String) -> Response {
    error(code.as_u16(), message)
}

/// Serve the web application on `listener` until `shutdown` resolves (requests in
/// flight are finished first), with no token and the default limits.
pub async fn serve(
    listener: TcpListener,
    server: Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, server, guard(None, Rate::default()), shutdown).await
}

/// [`serve`] behind `guard`.
pub async fn serve_with(
    listener: TcpListener,
    server: Server,
    guard: Guard,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router_with(server, guard).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The encodings cpppo offers, in its order of preference.
const ENCODINGS: [&str; 4] = [
    "application/json",
    "text/javascript",
    "text/plain",
    "text/html",
];

/// cpppo's `deduce_encoding`: the available encoding with the highest `q` in `Accept`
/// (earlier ones win ties); `*/*` when there is no header.
fn negotiate(accept: Option<&str>) -> Option<&'static str> {
    let accept = accept.unwrap_or("*/*").to_ascii_lowercase();
    let mut best: Option<&'static str> = None;
    let mut quality = 0.0f64;
    for stanza in accept.split(',') {
        let mut parts = stanza.split(';').map(str::trim);
        let encoding = parts.next().unwrap_or_default();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f64>().ok())
            .next_back()
            .unwrap_or(1.0);
        for avail in ENCODINGS {
            let ok = avail
                .split('/')
                .zip(encoding.split('/'))
                .all(|(a, t)| a == t || t == "*");
            if ok && q > quality {
                quality = q;
                best = Some(avail);
            }
        }
    }
    best
}

/// `%XX` decoding of one path term.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn with_headers(mut r: Response, content_type: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

/// cpppo's layout: sorted keys, 4-space indent.
fn pretty(v: &Json) -> String {
    use serde::Serialize as _;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if v.serialize(&mut ser).is_err() {
        return "{}".into();
    }
    String::from_utf8(out).unwrap_or_default()
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error outside the API proper, in the API's envelope.
fn error(code: u16, message: String) -> Response {
    let body = json!({
        "alarm": [],
        "command": {"message": message, "success": false},
        "data": {},
        "since": null,
        "until": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    });
    with_headers(
        (status(code), pretty(&body)).into_response(),
        "application/json",
    )
}

async fn handle(
    State(server): State<Server>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let path = uri.path();
    if path == "/" {
        return redirect("/api", uri.query());
    }
    if let Some(trimmed) = path.strip_suffix('/') {
        return redirect(trimmed, uri.query());
    }
    if path == "/metrics" {
        return with_headers(
            server.render_metrics().into_response(),
            "text/plain; version=0.0.4; charset=utf-8",
        );
    }
    let rest = match path.strip_prefix("/api") {
        Some(r) if r.is_empty() || r.starts_with('/') => r,
        _ => {
            return error(
                404,
                format!("no page `{path}`: the API is under /api, metrics at /metrics"),
            )
        }
    };
    let Ok(Query(mut query)) = query else {
        return error(400, "the query string does not parse".into());
    };
    let mut forced_json = false;
    let mut terms: Vec<Option<String>> = Vec::with_capacity(4);
    for raw in rest.strip_prefix('/').unwrap_or(rest).splitn(4, '/') {
        let Some(mut t) = percent_decode(raw) else {
            return error(400, format!("bad percent-encoding in `{raw}`"));
        };
        if let Some(s) = t.strip_suffix(".json") {
            t = s.to_owned();
            forced_json = true;
        }
        terms.push((!t.is_empty()).then_some(t));
    }
    terms.resize(4, None);
    let Ok([group, matching, command, value]) = <[Option<String>; 4]>::try_from(terms) else {
        return error(400, "too many path terms".into());
    };
    let mut req = ApiRequest {
        group,
        matching,
        command,
        value,
        since: None,
    };
    if req.value.is_none() {
        if let Some((c, v)) = req
            .command
            .clone()
            .as_deref()
            .and_then(|c| c.split_once('='))
        {
            req.value = (!v.is_empty()).then(|| v.to_owned());
            req.command = Some(c.to_owned());
        }
    }
    for (key, slot) in [
        ("group", &mut req.group),
        ("match", &mut req.matching),
        ("command", &mut req.command),
        ("value", &mut req.value),
        ("since", &mut req.since),
    ] {
        if let Some(v) = query.remove(key).filter(|v| !v.is_empty()) {
            *slot = Some(v);
        }
    }
    let accept_header = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let encoding = if forced_json {
        Some("application/json")
    } else {
        negotiate(accept_header.as_deref())
    };
    let Some(encoding) = encoding else {
        return error(
            406,
            format!(
                "Invalid encoding: none of {} for Accept: {}",
                ENCODINGS.join(", "),
                accept_header.as_deref().unwrap_or("*/*")
            ),
        );
    };
    let reply = api::evaluate(&server, &req).await;
    let body = if encoding == "text/html" {
        crate::html::page(&server, &req, &reply)
    } else {
        pretty(&reply.body)
    };
    with_headers((status(reply.status), body).into_response(), encoding)
}

fn redirect(to: &str, query: Option<&str>) -> Response {
    let target = match query {
        Some(q) => format!("{to}?{q}"),
        None => to.to_owned(),
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&target) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_addresses() {
        let a = |s: &str| parse_address(s).map(|a| a.to_string());
        assert_eq!(a(":8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(a(":").unwrap(), "127.0.0.1:80");
        assert_eq!(a("0.0.0.0:8080").unwrap(), "0.0.0.0:8080");
        assert_eq!(a("0.0.0.0").unwrap(), "0.0.0.0:80");
        assert_eq!(a("localhost:9").unwrap(), "127.0.0.1:9");
        assert_eq!(a("[::1]:8080").unwrap(), "[::1]:8080");
        assert_eq!(a("[::1]").unwrap(), "[::1]:80");
        assert!(a("::1").is_err());
        assert!(a(":99999").is_err());
        assert!(a("nohost:1").is_err());
    }

    #[test]
    fn accept_as_cpppo_chooses() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(negotiate(Some(browser)), Some("text/html"));
        assert_eq!(negotiate(None), Some("application/json"));
        assert_eq!(negotiate(Some("*/*")), Some("application/json"));
        assert_eq!(negotiate(Some("text/*")), Some("text/javascript"));
        assert_eq!(negotiate(Some("text/plain")), Some("text/plain"));
        assert_eq!(negotiate(Some("image/png")), None);
        assert_eq!(
            negotiate(Some("text/html;q=0.5, application/json")),
            Some("application/json")
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("attribute%5B3%5D=4").as_deref(),
            Some("attribute[3]=4")
        );
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
