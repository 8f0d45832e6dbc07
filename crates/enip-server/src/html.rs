//! The dashboard a browser gets from `/api/...`: the command's outcome, counters, the
//! open connections (with a link that closes each), and the tags with their values,
//! refreshed every 2 s unless the page ran a command. The JSON follows at the bottom.

use std::fmt::Write as _;

use serde_json::Value as Json;

use crate::api::{element, ApiReply, ApiRequest, Py};
use crate::runtime::{Delay, Server};

/// Values shown per tag; the rest are counted.
const SHOWN: usize = 16;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode a path term for a link.
fn url_term(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.:~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.4em}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left;\
font-variant-numeric:tabular-nums}th{background:#f2f2f2}.ok{background:#e6f4ea;padding:.4em}\
.fail{background:#fce8e6;padding:.4em}.off{color:#b00;font-weight:bold}code,pre{font-size:.9em}\
.muted{color:#777}";

/// The page for one API call.
pub(crate) fn page(server: &Server, req: &ApiRequest, reply: &ApiReply) -> String {
    let mut h = String::with_capacity(8192);
    let title = [
        "api",
        req.group.as_deref().unwrap_or("*"),
        req.matching.as_deref().unwrap_or("*"),
        req.command.as_deref().unwrap_or(""),
    ]
    .join("/");
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <title>{}</title>\n<style>{STYLE}</style>\n",
        esc(&title)
    );
    if req.command.is_none() {
        h.push_str("<meta http-equiv=\"refresh\" content=\"2\"/>\n");
    }
    h.push_str("</head>\n<body>\n");
    header(&mut h, server);
    if let Some(cmd) = reply.body.get("command").and_then(Json::as_object) {
        if let Some(message) = cmd.get("message").and_then(Json::as_str) {
            let ok = cmd.get("success").and_then(Json::as_bool) == Some(true);
            let _ = write!(
                h,
                "<p class=\"{}\">{}</p>\n<p><a href=\"/api\">back to the dashboard</a></p>\n",
                if ok { "ok" } else { "fail" },
                esc(message)
            );
        }
    }
    let data = reply.body.get("data").and_then(Json::as_object);
    let has = |g: &str| data.is_some_and(|d| d.contains_key(g));
    counters(&mut h, server);
    if has("connections") || req.group.as_deref().is_none_or(|g| g == "*") {
        connections(&mut h, server, data.and_then(|d| d.get("connections")));
    }
    if let Some(tags) = data.and_then(|d| d.get("tags")).and_then(Json::as_object) {
        tag_table(&mut h, server, tags);
    }
    let _ = write!(
        h,
        "<h2>Response</h2>\n<details><summary>JSON</summary>\n<pre>{}</pre>\n</details>\n\
         <p class=\"muted\">JSON: <a href=\"/api/*.json\">/api/*.json</a> &middot; \
         Prometheus: <a href=\"/metrics\">/metrics</a></p>\n</body>\n</html>\n",
        esc(&serde_json::to_string_pretty(&reply.body).unwrap_or_default())
    );
    h
}

fn header(h: &mut String, server: &Server) {
    let (tcp, udp) = server.addresses();
    let show = |a: Option<std::net::SocketAddr>| a.map_or("off".to_owned(), |a| a.to_string());
    let (setting, value) = server.delay();
    let delay = match setting {
        Delay::Range(..) => format!("{setting} s (now {value:.3} s)"),
        Delay::Fixed(_) => format!("{value} s"),
    };
    let state = if server.is_done() {
        "<span class=\"off\">stopping</span>"
    } else if server.is_disabled() {
        "<span class=\"off\">disabled</span> \
         (<a href=\"/api/server/control/disable/false\">enable</a>)"
    } else {
        "serving (<a href=\"/api/server/control/disable/true\">disable</a>)"
    };
    let _ = write!(
        h,
        "<h1>enip-server</h1>\n<p>TCP {} &middot; UDP {} &middot; {state} &middot; \
         response delay {}</p>\n",
        esc(&show(tcp)),
        esc(&show(udp)),
        esc(&delay)
    );
}

fn counters(h: &mut String, server: &Server) {
    let s = server.metrics().summary();
    let cip = crate::lock(server.controller()).connections.len();
    h.push_str("<h2>Counters</h2>\n<table>\n");
    for (name, v) in [
        ("TCP connections open", s.tcp_open.to_string()),
        ("TCP connections accepted", s.tcp_accepted.to_string()),
        ("TCP connections refused", s.tcp_refused.to_string()),
        ("sessions registered", s.sessions.to_string()),
        ("CIP connections open", cip.to_string()),
        (
            "encapsulation requests",
            s.encapsulation_requests.to_string(),
        ),
        ("encapsulation errors", s.encapsulation_errors.to_string()),
        ("CIP requests", s.cip_requests.to_string()),
        ("tag reads", s.tag_reads.to_string()),
        ("tag writes", s.tag_writes.to_string()),
        ("bytes received", s.bytes_received.to_string()),
        ("bytes sent", s.bytes_sent.to_string()),
    ] {
        let _ = writeln!(h, "<tr><th>{name}</th><td>{v}</td></tr>");
    }
    h.push_str("</table>\n");
}

fn connections(h: &mut String, server: &Server, shown: Option<&Json>) {
    let conns = server.connections();
    let wanted = |k: &str| shown.is_none_or(|s| s.get(k).is_some());
    h.push_str("<h2>Connections</h2>\n");
    let rows: Vec<_> = conns.iter().filter(|c| wanted(&c.key)).collect();
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">none</p>\n");
        return;
    }
    h.push_str(
        "<table>\n<tr><th>connection</th><th>interface</th><th>port</th><th>received</th>\
         <th>sent</th><th>requests</th><th>eof</th><th></th></tr>\n",
    );
    for c in rows {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td><a href=\"/api/connections/{}/eof/true\">close</a></td></tr>",
            esc(&c.key),
            esc(&c.peer.ip().to_string()),
            c.peer.port(),
            c.received,
            c.sent,
            c.requests,
            c.eof,
            url_term(&c.key)
        );
    }
    h.push_str("</table>\n");
}

fn tag_table(h: &mut String, server: &Server, shown: &serde_json::Map<String, Json>) {
    let c = crate::lock(server.controller());
    h.push_str(
        "<h2>Tags</h2>\n<table>\n<tr><th>tag</th><th>type</th><th>dimensions</th>\
         <th>error</th><th>values</th></tr>\n",
    );
    for t in c.tags.iter().filter(|t| shown.contains_key(&t.name)) {
        let n = t.elements();
        let mut values: Vec<String> = (0..n.min(SHOWN))
            .filter_map(|i| element(t, i))
            .map(|v| match v {
                Py::Str(s) => crate::api::py_str(&s),
                v => v.repr(),
            })
            .collect();
        if n > SHOWN {
            values.push(format!("&hellip; ({n} elements)"));
        }
        let dims = if t.dims.is_empty() {
            "scalar".to_owned()
        } else {
            t.dims
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" &times; ")
        };
        let error = c.tags.find(&t.name).map_or(0, |id| c.tag_errors.get(id));
        let error = if error == 0 {
            String::new()
        } else {
            format!("<span class=\"off\">0x{error:02X}</span>")
        };
        let values = values
            .iter()
            .map(|v| {
                if v.starts_with("&hellip;") {
                    v.clone()
                } else {
                    esc(v)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            h,
            "<tr><td><a href=\"/api/tags/{}\">{}</a></td><td>{}</td><td>{dims}</td>\
             <td>{error}</td><td><code>{values}</code></td></tr>",
            url_term(&t.name),
            esc(&t.name),
            esc(t.elem.name()),
        );
    }
    h.push_str("</table>\n");
}
