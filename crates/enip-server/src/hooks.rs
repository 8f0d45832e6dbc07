//! Ready-made [`TagHook`]s. [`HttpJson`] is cpppo's city-temperature example done
//! properly: a tag whose value is fetched from an HTTP JSON endpoint when a client
//! reads it, cached for a while so a busy client does not hammer the endpoint, and
//! read-only ("changing the weather isn't that easy").

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use enip_device::{Literal, Tag, TagHook};
use enip_proto::GeneralStatus;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("only http:// URLs are supported, not `{0}`")]
    Scheme(String),
    #[error("cannot reach {url}: {cause}")]
    Io { url: String, cause: std::io::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {why}")]
    Body { url: String, why: String },
}

/// A tag computed on read from a JSON document at a URL.
#[derive(Debug)]
pub struct HttpJson {
    /// The URL; `{name}` is replaced by the tag's name (cpppo's city = tag name).
    pub url: String,
    /// A JSON pointer to the value, e.g. `/main/temp`.
    pub pointer: String,
    /// How long a fetched value is answered without fetching again.
    pub max_age: Duration,
    /// Connect and read timeout for one fetch.
    pub timeout: Duration,
    cached: Option<(Instant, Literal)>,
}

impl HttpJson {
    pub fn new(url: impl Into<String>, pointer: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pointer: pointer.into(),
            max_age: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            cached: None,
        }
    }

    /// Fetch the value for tag `name` now.
    pub fn fetch(&self, name: &str) -> Result<Literal, FetchError> {
        let url = self.url.replace("{name}", &percent_encode(name));
        let body = http_get(&url, self.timeout)?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| FetchError::Body {
                url: url.clone(),
                why: format!("not JSON: {e}"),
            })?;
        let v = doc.pointer(&self.pointer).ok_or_else(|| FetchError::Body {
            url: url.clone(),
            why: format!("no `{}` in the document", self.pointer),
        })?;
        match v {
            serde_json::Value::Number(n) => Ok(match n.as_i64() {
                Some(i) if !n.is_f64() => Literal::Int(i.into()),
                _ => Literal::Float(n.as_f64().unwrap_or(f64::NAN)),
            }),
            serde_json::Value::Bool(b) => Ok(Literal::Bool(*b)),
            serde_json::Value::String(s) => Ok(Literal::Text(s.clone())),
            other => Err(FetchError::Body {
                url,
                why: format!("`{}` is {other}, not a value", self.pointer),
            }),
        }
    }
}

impl TagHook for HttpJson {
    fn before_read(&mut self, tag: &mut Tag) -> Result<(), GeneralStatus> {
        let fresh = self
            .cached
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.max_age)
            .map(|(_, v)| v.clone());
        let value = match fresh {
            Some(v) => v,
            None => match self.fetch(&tag.name) {
                Ok(v) => {
                    self.cached = Some((Instant::now(), v.clone()));
                    v
                }
                Err(e) => {
                    tracing::warn!(tag = %tag.name, "cannot compute the value: {e}");
                    // Object state conflict: the value cannot be had right now.
                    return Err(GeneralStatus(0x0C));
                }
            },
        };
        let elements = tag.elements();
        tag.set_values(0, &vec![value; elements]).map_err(|e| {
            tracing::warn!(tag = %tag.name, "fetched value does not fit: {e}");
            GeneralStatus(0x0C)
        })
    }

    fn before_write(&mut self, _tag: &Tag) -> Result<(), GeneralStatus> {
        Err(GeneralStatus::ATTRIBUTE_NOT_SETTABLE)
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET an http:// URL (HTTP/1.0, so the body is never chunked) and return the body.
pub fn http_get(url: &str, timeout: Duration) -> Result<Vec<u8>, FetchError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| FetchError::Scheme(url.to_owned()))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (
            rest.get(..i).unwrap_or_default(),
            rest.get(i..).unwrap_or("/"),
        ),
        None => (rest, "/"),
    };
    let io = |cause| FetchError::Io {
        url: url.to_owned(),
        cause,
    };
    let target = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:80")
    };
    let addr = target
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| io(std::io::Error::other("no address")))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {hostport}\r\nAccept: application/json\r\nUser-Agent: enip-server\r\n\r\n"
    )
    .map_err(io)?;
    let mut reply = Vec::new();
    s.take(16 << 20).read_to_end(&mut reply).map_err(io)?;
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| FetchError::Body {
            url: url.to_owned(),
            why: "no end of HTTP headers".into(),
        })?;
    let head = String::from_utf8_lossy(reply.get(..split).unwrap_or_default()).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if status != 200 {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status,
        });
    }
    Ok(reply.get(split + 4..).unwrap_or_default().to_vec())
}
