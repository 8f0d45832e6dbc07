//! Which Unconnected Send route paths the controller accepts (cpppo's `--route-path` and
//! `-S`). An empty route path is always local, as in cpppo.

use enip_proto::path::parse_route_text;
use enip_proto::EPath;

/// The route path policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RoutePolicy {
    /// Any route path reaches this controller (the default: libplctag, pycomm3, pylogix
    /// and rseip each send a different one).
    #[default]
    Any,
    /// Only this route path (encoded port segments), or none.
    Only(Vec<u8>),
    /// A simple, non-routing device (`-S`, `--route-path false`): only an empty route.
    Empty,
}

impl RoutePolicy {
    /// Parse cpppo's `--route-path`: `1/0` (port/link), JSON such as
    /// `[{"port": 1, "link": 0}]`, `false`/`0`/`none` for a non-routing device, or `any`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        match t.to_ascii_lowercase().as_str() {
            "any" | "null" => return Ok(Self::Any),
            "false" | "0" | "none" | "[]" => return Ok(Self::Empty),
            _ => {}
        }
        let slashed = if t.starts_with('[') || t.starts_with('{') {
            json_route(t)?
        } else {
            t.to_owned()
        };
        let path = parse_route_text(&slashed)
            .map_err(|e| format!("bad route path `{text}`: {}", e.message))?;
        let bytes = path
            .to_bytes()
            .map_err(|e| format!("bad route path `{text}`: {e}"))?;
        Ok(Self::Only(bytes))
    }

    /// The Connection Manager extended status refusing `route`, or `None` to accept it.
    pub fn refuse(&self, route: &EPath<'_>) -> Option<u16> {
        use enip_proto::status::cm;
        let got = route.as_bytes();
        match self {
            _ if got.is_empty() => None,
            Self::Any => None,
            Self::Only(want) if want.as_slice() == got => None,
            // Same port, other link: the link is wrong; otherwise the port is.
            Self::Only(want) if want.first() == got.first() => Some(cm::LINK_ADDRESS_NOT_VALID),
            Self::Only(_) | Self::Empty => Some(cm::PORT_NOT_AVAILABLE),
        }
    }
}

/// `[{"port": 1, "link": 0}, ...]` or `{"port": 1, "link": 0}` as `1/0/...`, without a
/// JSON library: the grammar is this small.
fn json_route(t: &str) -> Result<String, String> {
    let bad = || format!("bad route path `{t}`: expected [{{\"port\": N, \"link\": N}}, ...]");
    let mut parts = Vec::new();
    for obj in t.split('{').skip(1) {
        let body = obj.split('}').next().ok_or_else(bad)?;
        let mut port = None;
        let mut link = None;
        for kv in body.split(',') {
            let (k, v) = kv.split_once(':').ok_or_else(bad)?;
            let v = v.trim().trim_matches('"').to_owned();
            match k.trim().trim_matches('"') {
                "port" => port = Some(v),
                "link" => link = Some(v),
                _ => return Err(bad()),
            }
        }
        match (port, link) {
            (Some(p), Some(l)) => parts.push(format!("{p}/{l}")),
            _ => return Err(bad()),
        }
    }
    if parts.is_empty() {
        return Err(bad());
    }
    Ok(parts.join("/"))
}
