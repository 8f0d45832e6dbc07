//! cpppo's web API, `/api[/group[/match[/command[/value]]]]`, evaluated against a
//! [`Server`]: HTTP-free, so it is tested as a function.
//!
//! Every response is cpppo's envelope,
//! `{"alarm": [], "command": ..., "data": {group: {match: {attr: value}}}, "since": ..., "until": <unix time>}`,
//! with `command` `null` when nothing matched, `{}` when something matched and no command
//! was given, and `{"message": ..., "success": bool}` otherwise. Messages are cpppo's:
//! `tags.SCADA.attribute[3]='4' (4)`, `options.delay.value: 0.5`, `... failed: why`.
//!
//! Where this differs from cpppo, on purpose:
//! - `tags/<tag>/error=0` clears the injected error (cpppo keeps answering the old one);
//! - a failed command answers HTTP 400, a literal group or name that does not exist 404
//!   (cpppo: 200 and an empty `data`); the body is the same envelope with the reason;
//! - `options/delay/range` can be set whatever the start-up delay was, and the delay
//!   really delays replies;
//! - tag names match without regard to case, as Logix names do;
//! - UDP peers are not listed under `connections` (cpppo lists them and never forgets
//!   them).

use std::fmt::Write as _;

use enip_device::{ElementType, Tag};
use enip_proto::types::{DataType, LOGIX_STRING_CHARS};
use serde_json::{json, Map, Value as Json};

use crate::glob;
use crate::runtime::{Delay, Server, Tunables};

/// The groups, in cpppo's order.
pub(crate) const GROUPS: [&str; 4] = ["options", "connections", "tags", "server"];

/// One API call: the URL terms (already percent-decoded) and query overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ApiRequest {
    pub group: Option<String>,
    pub matching: Option<String>,
    pub command: Option<String>,
    pub value: Option<String>,
    pub since: Option<String>,
}

/// The envelope and the HTTP status to send it with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiReply {
    pub status: u16,
    pub body: Json,
}

/// A Python value, for cpppo's `%r` messages and the JSON data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Py {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// A REAL, shown in its shortest f32 form.
    Real(f32),
    Str(String),
    List(Vec<Py>),
}

impl Py {
    pub(crate) fn repr(&self) -> String {
        match self {
            Self::None => "None".into(),
            Self::Bool(true) => "True".into(),
            Self::Bool(false) => "False".into(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => py_float(*f),
            Self::Real(f) => py_float32(*f),
            Self::Str(s) => py_str(s),
            Self::List(v) => {
                let items: Vec<String> = v.iter().map(Py::repr).collect();
                format!("[{}]", items.join(", "))
            }
        }
    }
}

fn py_float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{f:?}")
    }
}

fn py_float32(f: f32) -> String {
    if f.is_finite() {
        format!("{f:?}")
    } else {
        py_float(f64::from(f))
    }
}

/// Python's `repr` of a str.
pub(crate) fn py_str(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// `reprlib.repr`: lists show 6 items, strings 30 characters.
fn py_short(v: &Py) -> String {
    match v {
        Py::List(items) if items.len() > 6 => {
            let head: Vec<String> = items.iter().take(6).map(py_short).collect();
            format!("[{}, ...]", head.join(", "))
        }
        Py::List(items) => {
            let all: Vec<String> = items.iter().map(py_short).collect();
            format!("[{}]", all.join(", "))
        }
        Py::Str(_) => {
            let r: Vec<char> = v.repr().chars().collect();
            if r.len() > 30 {
                let head: String = r.iter().take(13).collect();
                let tail: String = r.iter().skip(r.len() - 14).collect();
                format!("{head}...{tail}")
            } else {
                r.into_iter().collect()
            }
        }
        v => v.repr(),
    }
}

/// The value of element `i` of a tag.
pub(crate) fn element(t: &Tag, i: usize) -> Option<Py> {
    let size = t.elem.size();
    let b = t.data.get(i * size..(i + 1) * size)?;
    let arr = |n: usize| b.get(..n);
    Some(match t.elem {
        ElementType::ShortString | ElementType::Struct(_) => {
            match enip_device::literals(t.elem, b).into_iter().next()? {
                enip_device::Literal::Text(s) => Py::Str(s),
                _ => Py::None,
            }
        }
        ElementType::LogixString => {
            let len = i32::from_le_bytes(<[u8; 4]>::try_from(arr(4)?).ok()?);
            let n = usize::try_from(len).unwrap_or(0).min(LOGIX_STRING_CHARS);
            Py::Str(String::from_utf8_lossy(b.get(4..4 + n)?).into_owned())
        }
        ElementType::Atomic(d) => {
            let le = |n: usize| -> Option<u64> {
                let mut w = [0u8; 8];
                w.get_mut(..n)?.copy_from_slice(arr(n)?);
                Some(u64::from_le_bytes(w))
            };
            match d {
                DataType::Bool => Py::Int(i128::from(le(1)? != 0)),
                DataType::Sint => Py::Int(i128::from(le(1)? as u8 as i8)),
                DataType::Int => Py::Int(i128::from(le(2)? as u16 as i16)),
                DataType::Dint => Py::Int(i128::from(le(4)? as u32 as i32)),
                DataType::Lint => Py::Int(i128::from(le(8)? as i64)),
                DataType::Real => Py::Real(f32::from_bits(le(4)? as u32)),
                DataType::Lreal => Py::Float(f64::from_bits(le(8)?)),
                other => Py::Int(i128::from(le(other.size().unwrap_or(0))?)),
            }
        }
    })
}

/// The whole value: a scalar for a tag without dimensions, else a list.
fn tag_value(t: &Tag) -> Py {
    if t.dims.is_empty() {
        element(t, 0).unwrap_or(Py::None)
    } else {
        Py::List((0..t.elements()).filter_map(|i| element(t, i)).collect())
    }
}

/// cpppo's `Attribute.__str__`: `"%-24s %10s%s == %s"`.
pub(crate) fn tag_repr(t: &Tag) -> String {
    let len = if t.dims.is_empty() {
        format!(" x{:<4}", 1)
    } else {
        format!("[{:4}]", t.elements())
    };
    format!(
        "{:<24} {:>10}{} == {}",
        t.name,
        t.elem.name(),
        len,
        py_short(&tag_value(t))
    )
}

/// Parse one value for an element of type `e`.
fn parse_element(e: ElementType, v: &str) -> Result<Vec<u8>, String> {
    let v = v.trim();
    match e {
        ElementType::Struct(_) => Err("a structure: set its members by name".into()),
        ElementType::ShortString => {
            let b = v.as_bytes();
            let n = u8::try_from(b.len())
                .map_err(|_| format!("an SSTRING holds at most 255 characters, not {}", b.len()))?;
            let mut out = vec![n];
            out.extend_from_slice(b);
            out.resize(e.size(), 0);
            Ok(out)
        }
        ElementType::LogixString => {
            let b = v.as_bytes();
            if b.len() > LOGIX_STRING_CHARS {
                return Err(format!(
                    "a STRING holds at most {LOGIX_STRING_CHARS} characters, not {}",
                    b.len()
                ));
            }
            let mut out = (b.len() as u32).to_le_bytes().to_vec();
            out.extend_from_slice(b);
            out.resize(e.size(), 0);
            Ok(out)
        }
        ElementType::Atomic(d) => {
            let size = d.size().unwrap_or(0);
            match d {
                DataType::Real | DataType::Lreal => {
                    let f: f64 = v
                        .parse()
                        .map_err(|_| format!("could not convert string to float: {}", py_str(v)))?;
                    if d == DataType::Real {
                        if f.is_finite() && f.abs() > f64::from(f32::MAX) {
                            return Err(format!("{v} is out of range for REAL"));
                        }
                        Ok((f as f32).to_le_bytes().to_vec())
                    } else {
                        Ok(f.to_le_bytes().to_vec())
                    }
                }
                DataType::Bool => {
                    let b = parse_bool(v)?;
                    Ok(vec![u8::from(b)])
                }
                _ => {
                    let i = parse_int(v)?;
                    let signed = matches!(
                        d,
                        DataType::Sint | DataType::Int | DataType::Dint | DataType::Lint
                    );
                    let bits = (size * 8) as u32;
                    let (lo, hi) = if signed {
                        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
                    } else {
                        (0, (1i128 << bits) - 1)
                    };
                    if !(lo..=hi).contains(&i) {
                        return Err(format!(
                            "{i} is out of range for {} ({lo}..={hi})",
                            d.name()
                        ));
                    }
                    Ok((i as u128)
                        .to_le_bytes()
                        .get(..size)
                        .unwrap_or_default()
                        .to_vec())
                }
            }
        }
    }
}

/// Python's `int()` plus `0x`/`0o`/`0b` prefixes.
fn parse_int(v: &str) -> Result<i128, String> {
    let bad = || format!("invalid literal for int() with base 10: {}", py_str(v));
    let s = v.trim().replace('_', "");
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return Err(bad());
    }
    let n = i128::from_str_radix(body, radix).map_err(|_| bad())?;
    Ok(if neg { -n } else { n })
}

/// cpppo's bool coercion: true/yes, false/no, or a number (non-zero is true).
fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => parse_int(v).map(|i| i != 0),
    }
}

fn parse_seconds(v: &str) -> Result<f64, String> {
    let f = v
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("could not convert string to float: {}", py_str(v)))?;
    if f.is_finite() && (0.0..=crate::runtime::MAX_DELAY).contains(&f) {
        Ok(f)
    } else {
        Err(format!(
            "{} seconds is not from 0 to {:?}",
            py_float(f),
            crate::runtime::MAX_DELAY
        ))
    }
}

/// What a command did: a message, and whether it worked.
type Outcome = Result<String, String>;

struct Call<'a> {
    grp: &'a str,
    mch: &'a str,
    command: &'a str,
    value: Option<&'a str>,
}

impl Call<'_> {
    fn got(&self, cur: &Py) -> Outcome {
        Ok(format!(
            "{}.{}.{}: {}",
            self.grp,
            self.mch,
            self.command,
            cur.repr()
        ))
    }

    fn set(&self, value: &str, cvt: &Py) -> Outcome {
        Ok(format!(
            "{}.{}.{}={} ({})",
            self.grp,
            self.mch,
            self.command,
            py_str(value),
            cvt.repr()
        ))
    }

    fn failed(&self, why: &str) -> String {
        format!(
            "{}.{}.{}={} failed: {why}",
            self.grp,
            self.mch,
            self.command,
            self.value.map_or_else(|| "None".to_owned(), py_str)
        )
    }
}

/// Unix time now, in seconds.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Evaluate one API call: match, run the command on every match, report.
pub(crate) async fn evaluate(server: &Server, req: &ApiRequest) -> ApiReply {
    let group = req
        .group
        .as_deref()
        .filter(|g| !g.is_empty())
        .unwrap_or("*");
    let matching = req
        .matching
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or("*");
    let command = req.command.as_deref().filter(|c| !c.is_empty());
    let value = req.value.as_deref();
    let until = now();
    let envelope =
        |status: u16, command: Json, since: Option<f64>, data: Map<String, Json>| ApiReply {
            status,
            body: json!({
                "alarm": [],
                "command": command,
                "data": data,
                "since": since,
                "until": until,
            }),
        };
    let failed = |m: String| json!({"message": m, "success": false});
    let since = match req.since.as_deref().map(str::parse::<f64>) {
        None => None,
        Some(Ok(s)) if s.is_finite() => Some(s),
        Some(_) => {
            let m = format!(
                "since={} is not a time (seconds since 1970)",
                py_str(req.since.as_deref().unwrap_or_default())
            );
            return envelope(400, failed(m), None, Map::new());
        }
    };
    let fail = |status: u16, message: String, data: Map<String, Json>| {
        envelope(status, failed(message), since, data)
    };
    if !glob::is_pattern(group) && !GROUPS.contains(&group) {
        return fail(
            404,
            format!("no group `{group}` (groups: options, server, tags, connections)"),
            Map::new(),
        );
    }
    let mut data = Map::new();
    let mut result: Option<Outcome> = None;
    let mut first_failure: Option<String> = None;
    let mut matched = false;
    let mut waits = false;
    for grp in GROUPS {
        if !glob::matches(group, grp, false) {
            continue;
        }
        let fold = grp == "tags";
        for mch in names(server, grp) {
            if !glob::matches(matching, &mch, fold) {
                continue;
            }
            matched = true;
            if let Some(command) = command {
                let call = Call {
                    grp,
                    mch: &mch,
                    command,
                    value,
                };
                let r = run(server, &call);
                waits |= r.is_ok()
                    && matches!(
                        (grp, command),
                        ("connections", "eof") | ("server", "disable")
                    );
                if let Err(why) = &r {
                    first_failure.get_or_insert_with(|| call.failed(why));
                }
                result = Some(r);
            }
            let attrs = attributes(server, grp, &mch);
            if let Some(g) = data.entry(grp).or_insert_with(|| json!({})).as_object_mut() {
                g.insert(mch, attrs);
            }
        }
    }
    if waits {
        // cpppo's web API returns once the connection threads have seen eof/disable.
        server.closed(std::time::Duration::from_secs(1)).await;
    }
    if !matched {
        if !glob::is_pattern(matching) {
            let what = if glob::is_pattern(group) {
                "object".to_owned()
            } else {
                group.trim_end_matches('s').to_owned()
            };
            return fail(404, format!("no {what} `{matching}` in {group}"), data);
        }
        return envelope(200, Json::Null, since, data);
    }
    if let Some(message) = first_failure {
        return fail(400, message, data);
    }
    let command = match result {
        None => json!({}),
        Some(Ok(message)) => json!({"message": message, "success": true}),
        Some(Err(message)) => failed(message),
    };
    envelope(200, command, since, data)
}

/// The objects of a group, by name, sorted as Python's `dir()` lists them (so the last
/// command reported for a glob is the one cpppo reports).
fn names(server: &Server, grp: &str) -> Vec<String> {
    let mut names = match grp {
        "options" => vec!["delay".into()],
        "server" => vec!["control".into()],
        "tags" => crate::lock(server.controller())
            .tags
            .iter()
            .map(|t| t.name.clone())
            .collect(),
        "connections" => server.connections().into_iter().map(|c| c.key).collect(),
        _ => vec![],
    };
    names.sort();
    names
}

/// The attributes of one object.
fn attributes(server: &Server, grp: &str, mch: &str) -> Json {
    let mut m = Map::new();
    match grp {
        "options" => {
            let (setting, value) = server.delay();
            if let Delay::Range(..) = setting {
                m.insert("range".into(), json!(setting.to_string()));
            }
            m.insert("value".into(), json!(value));
        }
        "server" => {
            let (tcp, udp) = server.addresses();
            let addr = |a: Option<std::net::SocketAddr>| {
                a.map_or(Json::Null, |a| json!([a.ip().to_string(), a.port()]))
            };
            let t = server.tunables();
            m.insert("address".into(), addr(tcp));
            m.insert("address_udp".into(), addr(udp));
            m.insert("disable".into(), json!(server.is_disabled()));
            m.insert("done".into(), json!(server.is_done()));
            m.insert("latency".into(), json!(t.latency));
            m.insert("timeout".into(), json!(t.timeout));
        }
        "tags" => {
            let c = crate::lock(server.controller());
            if let Some(id) = c.tags.find(mch) {
                if let Some(t) = c.tags.get(id) {
                    m.insert("attribute".into(), json!(tag_repr(t)));
                    m.insert("error".into(), json!(c.tag_errors.get(id)));
                    m.insert("path".into(), Json::Null);
                }
            }
        }
        "connections" => {
            if let Some(c) = server.connections().into_iter().find(|c| c.key == mch) {
                m.insert("eof".into(), json!(c.eof));
                m.insert("interface".into(), json!(c.peer.ip().to_string()));
                m.insert("port".into(), json!(c.peer.port()));
                m.insert("received".into(), json!(c.received));
                m.insert("requests".into(), json!(c.requests));
            }
        }
        _ => {}
    }
    Json::Object(m)
}

/// Run one command on one object.
fn run(server: &Server, call: &Call<'_>) -> Outcome {
    match call.grp {
        "options" => options(server, call),
        "server" => control(server, call),
        "tags" => tag(server, call),
        "connections" => connection(server, call),
        _ => Err(format!("'{}'", call.command)),
    }
}

fn no_attribute(call: &Call<'_>, has: &str) -> Outcome {
    Err(format!(
        "no attribute `{}` ({}.{} has {has})",
        call.command, call.grp, call.mch
    ))
}

fn options(server: &Server, call: &Call<'_>) -> Outcome {
    match (call.command, call.value) {
        ("value", None) => call.got(&Py::Float(server.delay().1)),
        ("value", Some(v)) => {
            let d = parse_seconds(v)?;
            server.set_delay(Delay::Fixed(d));
            call.set(v, &Py::Float(d))
        }
        ("range", None) => match server.delay().0 {
            r @ Delay::Range(..) => call.got(&Py::Str(r.to_string())),
            Delay::Fixed(_) => call.got(&Py::None),
        },
        ("range", Some(v)) => {
            let d: Delay = v
                .parse()
                .map_err(|e: crate::runtime::DelayError| e.to_string())?;
            server.set_delay(d);
            call.set(v, &Py::Str(d.to_string()))
        }
        _ => no_attribute(call, "value, range"),
    }
}

fn control(server: &Server, call: &Call<'_>) -> Outcome {
    let t = server.tunables();
    match (call.command, call.value) {
        ("disable", None) => call.got(&Py::Bool(server.is_disabled())),
        ("disable", Some(v)) => {
            let b = parse_bool(v)?;
            server.set_disabled(b);
            call.set(v, &Py::Bool(b))
        }
        ("done", None) => call.got(&Py::Bool(server.is_done())),
        ("done", Some(v)) => {
            let b = parse_bool(v)?;
            if b {
                server.set_done();
            } else if server.is_done() {
                return Err("the server is already stopping".into());
            }
            call.set(v, &Py::Bool(b))
        }
        ("latency", None) => call.got(&Py::Float(t.latency)),
        ("timeout", None) => call.got(&Py::Float(t.timeout)),
        (which @ ("latency" | "timeout"), Some(v)) => {
            let f = parse_seconds(v)?;
            server.set_tunables(if which == "latency" {
                Tunables { latency: f, ..t }
            } else {
                Tunables { timeout: f, ..t }
            });
            call.set(v, &Py::Float(f))
        }
        ("address" | "address_udp", Some(_)) => Err(format!("{} is read-only", call.command)),
        ("address" | "address_udp", None) => {
            let (tcp, udp) = server.addresses();
            let a = if call.command == "address" { tcp } else { udp };
            call.got(&a.map_or(Py::None, |a| {
                Py::List(vec![
                    Py::Str(a.ip().to_string()),
                    Py::Int(i128::from(a.port())),
                ])
            }))
        }
        _ => no_attribute(
            call,
            "address, address_udp, disable, done, latency, timeout",
        ),
    }
}

fn connection(server: &Server, call: &Call<'_>) -> Outcome {
    let Some(c) = server.connections().into_iter().find(|c| c.key == call.mch) else {
        return Err("the connection has closed".into());
    };
    match (call.command, call.value) {
        ("eof", None) => call.got(&Py::Bool(c.eof)),
        ("eof", Some(v)) => {
            let b = parse_bool(v)?;
            if b {
                server.close_connection(call.mch);
            }
            call.set(v, &Py::Bool(b || c.eof))
        }
        ("interface", None) => call.got(&Py::Str(c.peer.ip().to_string())),
        ("port", None) => call.got(&Py::Int(i128::from(c.peer.port()))),
        ("received", None) => call.got(&Py::Int(i128::from(c.received))),
        ("requests", None) => call.got(&Py::Int(i128::from(c.requests))),
        ("interface" | "port" | "received" | "requests", Some(_)) => {
            Err(format!("{} is read-only", call.command))
        }
        _ => no_attribute(call, "eof, interface, port, received, requests"),
    }
}

/// `attribute`, `attribute[i]` or `attribute[i,j,k]`: the flat element index.
fn element_index(t: &Tag, command: &str) -> Result<Option<usize>, String> {
    let Some(inner) = command
        .strip_prefix("attribute[")
        .and_then(|r| r.strip_suffix(']'))
    else {
        return Ok(None);
    };
    let idx: Vec<u32> = inner
        .split(',')
        .map(|i| i.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad index `[{inner}]`"))?;
    if let [i] = idx.as_slice() {
        let i = *i as usize;
        if i >= t.elements() {
            return Err(format!(
                "Attempt to access item at key {i} beyond Attribute length {}",
                t.elements()
            ));
        }
        return Ok(Some(i));
    }
    t.flat_index(&idx).map(Some).ok_or_else(|| {
        format!(
            "index [{inner}] is outside the tag's dimensions {:?}",
            t.dims
        )
    })
}

fn tag(server: &Server, call: &Call<'_>) -> Outcome {
    let mut c = crate::lock(server.controller());
    let id = c.tags.find(call.mch).ok_or("the tag is gone")?;
    match (call.command, call.value) {
        ("error", None) => call.got(&Py::Int(i128::from(c.tag_errors.get(id)))),
        ("error", Some(v)) => {
            let s = parse_int(v)?;
            let s = u8::try_from(s)
                .map_err(|_| format!("{s} is not a CIP general status (0 to 255)"))?;
            c.tag_errors.set(id, s);
            call.set(v, &Py::Int(i128::from(s)))
        }
        ("path", None) => call.got(&Py::None),
        ("path", Some(_)) => Err("path is read-only".into()),
        (cmd, value) if cmd == "attribute" || cmd.starts_with("attribute[") => {
            let t = c.tags.get_mut(id).ok_or("the tag is gone")?;
            let index = element_index(t, cmd)?;
            let Some(v) = value else {
                let cur = match index {
                    Some(i) => element(t, i).unwrap_or(Py::None),
                    None => tag_value(t),
                };
                return call.got(&cur);
            };
            // Several comma-separated values fill consecutive elements; a STRING takes
            // the text whole.
            let parts: Vec<&str> = if t.elem == ElementType::LogixString {
                vec![v]
            } else {
                v.split(',').collect()
            };
            let start = index.unwrap_or(0);
            if start + parts.len() > t.elements() {
                return Err(format!(
                    "{} value(s) from element {start} run past the tag's {} elements",
                    parts.len(),
                    t.elements()
                ));
            }
            let size = t.elem.size();
            let mut bytes = Vec::with_capacity(parts.len() * size);
            for p in &parts {
                bytes.extend(parse_element(t.elem, p)?);
            }
            let dst = t
                .data
                .get_mut(start * size..start * size + bytes.len())
                .ok_or("the tag is smaller than that")?;
            dst.copy_from_slice(&bytes);
            let shown: Vec<Py> = (start..start + parts.len())
                .filter_map(|i| element(t, i))
                .collect();
            let cvt = match <[Py; 1]>::try_from(shown) {
                Ok([one]) => one,
                Err(many) => Py::List(many),
            };
            call.set(v, &cvt)
        }
        _ => no_attribute(call, "attribute, attribute[i], error, path"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_reprs() {
        assert_eq!(py_str("hello"), "'hello'");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("a\nb"), "'a\\nb'");
        assert_eq!(Py::Float(0.5).repr(), "0.5");
        assert_eq!(Py::Float(1.0).repr(), "1.0");
        assert_eq!(Py::Real(0.1).repr(), "0.1");
        assert_eq!(
            py_short(&Py::List((0..10).map(Py::Int).collect())),
            "[0, 1, 2, 3, 4, 5, ...]"
        );
        assert_eq!(
            py_short(&Py::Str("x".repeat(40))),
            format!("'{}...{}'", "x".repeat(12), "x".repeat(13))
        );
    }

    #[test]
    fn ints_and_bools_as_cpppo_reads_them() {
        assert_eq!(parse_int("42"), Ok(42));
        assert_eq!(parse_int(" -7 "), Ok(-7));
        assert_eq!(parse_int("0x1F"), Ok(31));
        assert!(parse_int("2.5").is_err());
        assert!(parse_int("--1").is_err());
        assert_eq!(parse_bool("Yes"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn element_values_by_type() {
        let t = |spec: &str| {
            let mut tags = enip_device::Tags::default();
            let id = tags
                .insert(&enip_device::TagSpec::parse(spec).unwrap())
                .unwrap();
            tags.get(id).unwrap().clone()
        };
        let mut x = t("X=INT[3]");
        x.data
            .get_mut(2..4)
            .unwrap()
            .copy_from_slice(&parse_element(x.elem, "-2").unwrap());
        assert_eq!(element(&x, 1), Some(Py::Int(-2)));
        assert_eq!(
            tag_repr(&x),
            "X                               INT[   3] == [0, -2, 0]"
        );
        assert!(parse_element(x.elem, "40000").is_err());
        let s = t("S=STRING");
        assert_eq!(
            tag_repr(&s),
            "S                            STRING x1    == ''"
        );
        assert!(parse_element(s.elem, &"a".repeat(83)).is_err());
        let r = t("R=REAL");
        assert!(parse_element(r.elem, "1e39").is_err());
        assert_eq!(
            parse_element(r.elem, "1.5").unwrap(),
            1.5f32.to_le_bytes().to_vec()
        );
    }
}
