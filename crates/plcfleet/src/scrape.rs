//! What a simulator says about itself on its own `/metrics` (port 8080, `web: true`):
//! requests served and when it started. The controller turns successive samples into
//! request rates; `plcfleet status` shows them.
//!
//! A plain HTTP/1.0 GET with a short timeout: the simulators are ours, the text format is
//! Prometheus 0.0.4, and a simulator that does not answer simply has no sample.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::manifest::Fleet;

/// One reading of a simulator's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// CIP requests served since it started (`enip_cip_requests_total`, all labels).
    pub requests: u64,
    /// `enip_start_time_seconds`.
    pub started: Option<SystemTime>,
}

/// How long one scrape may take; a slow simulator has no sample this time.
pub const TIMEOUT: Duration = Duration::from_millis(1500);
/// The most bytes of /metrics read (ours is ~10 KiB).
const LIMIT: u64 = 1 << 20;

/// Read the counters from a Prometheus text exposition; `None` when it has none of ours.
pub fn parse(text: &str) -> Option<Sample> {
    let mut requests: Option<u64> = None;
    let mut started = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let metric = name.split('{').next().unwrap_or_default();
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        if !(v.is_finite() && v >= 0.0) {
            continue;
        }
        match metric {
            "enip_cip_requests_total" => {
                // Counters are integers in our exposition; saturate anything absurd.
                *requests.get_or_insert(0) = requests.unwrap_or(0).saturating_add(v as u64);
            }
            "enip_start_time_seconds" if v > 0.0 => {
                started = Some(UNIX_EPOCH + Duration::from_secs(v as u64));
            }
            _ => {}
        }
    }
    if requests.is_none() && started.is_none() {
        return None;
    }
    Some(Sample {
        requests: requests.unwrap_or(0),
        started,
    })
}

/// GET `http://ip:port/metrics`.
pub async fn one(ip: Ipv4Addr, port: u16, timeout: Duration) -> Option<Sample> {
    let body = tokio::time::timeout(timeout, get(SocketAddr::from((ip, port)), "/metrics"))
        .await
        .ok()?
        .ok()?;
    parse(&body)
}

async fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    match http("GET", &addr.to_string(), path, None).await? {
        (200, body) => Ok(body),
        (code, _) => Err(std::io::Error::other(format!("HTTP {code}"))),
    }
}

/// One HTTP/1.0 exchange with `addr` (`host:port`): the status code and the body.
/// `body` is sent as YAML. For our own simulators and controller only.
pub async fn http(
    method: &str,
    addr: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    http_with_token(method, addr, path, body, None).await
}

/// [`http`] with `Authorization: Bearer <token>` when `token` is given (a controller
/// that listens off loopback wants one; see `plcfleet controller --token-file`).
pub async fn http_with_token(
    method: &str,
    addr: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).await?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        if t.contains(['\r', '\n']) {
            return Err(std::io::Error::other("the token holds a line break"));
        }
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/yaml\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    if let Some(b) = body {
        s.write_all(b.as_bytes()).await?;
    }
    let mut raw = Vec::new();
    s.take(LIMIT).read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header in the answer"))?;
    let code = head
        .strip_prefix("HTTP/1.")
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "not an HTTP answer: {}",
                head.lines().next().unwrap_or_default()
            ))
        })?;
    Ok((code, body.to_owned()))
}

/// Every `web: true` simulator of `fleet`, 64 at a time.
pub async fn fleet(fleet: &Fleet) -> HashMap<String, Sample> {
    let limit = Arc::new(Semaphore::new(64));
    let mut set = JoinSet::new();
    for s in fleet.simulators.iter().filter(|s| s.web) {
        let (name, ip, l) = (s.name.clone(), s.ip, limit.clone());
        set.spawn(async move {
            let _p = l.acquire_owned().await;
            (name, one(ip, 8080, TIMEOUT).await)
        });
    }
    let mut out = HashMap::new();
    while let Some(done) = set.join_next().await {
        if let Ok((name, Some(sample))) = done {
            out.insert(name, sample);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_label_set_and_reads_the_start_time() {
        let text = "# HELP enip_cip_requests_total x\n# TYPE enip_cip_requests_total counter\n\
                    enip_cip_requests_total{service=\"read_tag\",status=\"0x00\"} 40\n\
                    enip_cip_requests_total{service=\"write_tag\",status=\"0x00\"} 2\n\
                    enip_cip_requests_total_bogus 7\n\
                    enip_start_time_seconds 1700000000\nenip_tags 3\n";
        let s = parse(text).unwrap();
        assert_eq!(s.requests, 42);
        assert_eq!(
            s.started,
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
    }

    #[test]
    fn nothing_of_ours_is_no_sample_and_garbage_is_skipped() {
        assert_eq!(parse("up 1\n"), None);
        assert_eq!(parse(""), None);
        let s = parse("enip_cip_requests_total NaN\nenip_cip_requests_total -3\nenip_cip_requests_total x\nenip_start_time_seconds 5\n").unwrap();
        assert_eq!(s.requests, 0);
        assert!(s.started.is_some());
    }
}
