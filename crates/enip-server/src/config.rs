//! `--config FILE.yaml`: the controller's identity, route path, network names, tags with
//! initial values, addressed tags and program-scoped tags, in one file.
//!
//! Parse, then validate: the YAML is read into raw structs that refuse unknown fields,
//! then applied to a fresh [`Controller`]; any error names the file, the line and column
//! where YAML can tell, and the item (`tags[3]`) where the problem is in a value. Nothing
//! is half applied: a config either builds a whole controller or none.
//!
//! ```yaml
//! identity:
//!   product_name: 1756-L81E/B LOGIX5581E
//!   revision: "32.11"        # quoted: 32.10 would read as 32.1
//!   serial: 0x00C0FFEE
//!   controller_name: Line3
//! route_path: 1/0             # or false (a non-routing device), or any (the default)
//! udts:                       # structure types, members in order
//!   - name: Motor
//!     members:
//!       - {name: Speed, type: REAL}
//!       - {name: Running, type: BOOL}
//!       - {name: Hist, type: "DINT[10]"}
//! tags:
//!   - SCADA=DINT[1000]        # the command line's form
//!   - Motors=Motor[4]
//!   - name: Recipe            # or a mapping, with an initial value
//!     type: STRING
//!     value: Bread
//!   - name: Volts
//!     type: INT[2]
//!     address: "@0x22/1/3"    # also at a CIP address, as cpppo's NAME@cls/ins/att
//!     value: [230, 231]
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use enip_device::{Controller, Literal, RoutePolicy, UdtDef};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The causes are in the message, so they are not `source`s (which would print twice).
    #[error("{file}: cannot read: {cause}")]
    Read {
        file: PathBuf,
        cause: std::io::Error,
    },
    #[error("{file}: {cause}")]
    Yaml {
        file: PathBuf,
        cause: serde_yaml::Error,
    },
    #[error("{file}{line}: {item}: {message}")]
    Invalid {
        file: PathBuf,
        /// `:N` when the item's line was found, else empty.
        line: String,
        item: String,
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    identity: RawIdentity,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default, deserialize_with = "route_text")]
    route_path: Option<String>,
    #[serde(default)]
    udts: Vec<RawUdt>,
    #[serde(default)]
    tags: Vec<RawTag>,
}

/// A structure type: `{name: Motor, members: [{name: Speed, type: REAL}, ...]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUdt {
    name: String,
    members: Vec<RawMember>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    vendor: Option<u16>,
    device_type: Option<u16>,
    product_code: Option<u16>,
    #[serde(default, deserialize_with = "revision")]
    revision: Option<(u8, u8)>,
    status: Option<u16>,
    serial: Option<u32>,
    product_name: Option<String>,
    state: Option<u8>,
    controller_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    host_name: Option<String>,
    domain: Option<String>,
}

/// A tag: `NAME=TYPE[dims]`, or a mapping with a value and an address.
#[derive(Debug)]
struct RawTag {
    name: String,
    ty: String,
    address: Option<String>,
    value: Option<Vec<Literal>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTagMap {
    name: String,
    #[serde(rename = "type", default = "default_type")]
    ty: String,
    address: Option<String>,
    value: Option<RawValue>,
}

fn default_type() -> String {
    "INT".into()
}

/// A YAML scalar or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawValue {
    One(RawScalar),
    Many(Vec<RawScalar>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawScalar {
    Bool(bool),
    Int(i64),
    Big(u64),
    Float(f64),
    Text(String),
}

impl From<RawScalar> for Literal {
    fn from(s: RawScalar) -> Self {
        match s {
            RawScalar::Bool(b) => Literal::Bool(b),
            RawScalar::Int(i) => Literal::Int(i.into()),
            RawScalar::Big(u) => Literal::Int(u.into()),
            RawScalar::Float(x) => Literal::Float(x),
            RawScalar::Text(t) => Literal::Text(t),
        }
    }
}

impl<'de> Deserialize<'de> for RawTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a tag: `NAME=TYPE[dims]` or a mapping with name, type, value, address")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawTag, E> {
                let (head, ty) = s.split_once('=').unwrap_or((s, "INT"));
                let (name, address) = match head.split_once('@') {
                    Some((n, a)) => (n, Some(format!("@{a}"))),
                    None => (head, None),
                };
                Ok(RawTag {
                    name: name.trim().to_owned(),
                    ty: ty.trim().to_owned(),
                    address,
                    value: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawTag, A::Error> {
                let m = RawTagMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawTag {
                    name: m.name,
                    ty: m.ty,
                    address: m.address,
                    value: m.value.map(|v| match v {
                        RawValue::One(s) => vec![s.into()],
                        RawValue::Many(v) => v.into_iter().map(Literal::from).collect(),
                    }),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `route_path: 1/0`, `false`, `any`, or cpppo's JSON list of port/link mappings.
fn route_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a route path: `1/0`, `false`, `any`, or [{port: 1, link: 0}]")
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
            Ok(Some(b.to_string()))
        }
        fn visit_i64<E: de::Error>(self, i: i64) -> Result<Self::Value, E> {
            Ok(Some(i.to_string()))
        }
        fn visit_u64<E: de::Error>(self, i: u64) -> Result<Self::Value, E> {
            Ok(Some(i.to_string()))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(s.to_owned()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Hop {
                port: u16,
                link: serde_yaml::Value,
            }
            let mut parts = Vec::new();
            while let Some(h) = seq.next_element::<Hop>()? {
                let link = match h.link {
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::String(s) => s,
                    _ => return Err(de::Error::custom("a link is a slot number or an address")),
                };
                parts.push(format!("{}/{link}", h.port));
            }
            Ok(Some(if parts.is_empty() {
                "false".into()
            } else {
                parts.join("/")
            }))
        }
    }
    d.deserialize_any(V)
}

/// `revision: "32.11"`; a bare number is refused, as 32.10 would silently read as 32.1.
fn revision<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(u8, u8)>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<(u8, u8)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a revision in quotes, `\"MAJOR.MINOR\"`, e.g. \"32.11\"")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            let parsed = s
                .split_once('.')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
            parsed
                .map(Some)
                .ok_or_else(|| E::custom(format!("revision `{s}` is not MAJOR.MINOR (0-255 each)")))
        }
        fn visit_f64<E: de::Error>(self, x: f64) -> Result<Self::Value, E> {
            Err(E::custom(format!(
                "write the revision in quotes (`\"{x}\"`): as a number, 32.10 reads as 32.1"
            )))
        }
    }
    d.deserialize_any(V)
}

/// A loaded config, ready to build controllers.
#[derive(Debug)]
pub struct Config {
    file: PathBuf,
    source: String,
    raw: RawConfig,
}

impl Config {
    /// Read and parse `file` (no semantic checks yet: see [`Config::apply`]).
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let source = std::fs::read_to_string(file).map_err(|cause| ConfigError::Read {
            file: file.to_owned(),
            cause,
        })?;
        Self::parse(file, source)
    }

    /// Parse config text; `file` names it in errors.
    pub fn parse(file: &Path, source: String) -> Result<Self, ConfigError> {
        let raw: RawConfig = if source.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml::from_str(&source).map_err(|cause| ConfigError::Yaml {
                file: file.to_owned(),
                cause,
            })?
        };
        Ok(Self {
            file: file.to_owned(),
            source,
            raw,
        })
    }

    fn invalid(&self, item: String, needle: &str, message: String) -> ConfigError {
        let line = self
            .source
            .lines()
            .position(|l| contains_token(l, needle))
            .map(|n| format!(":{}", n + 1))
            .unwrap_or_default();
        ConfigError::Invalid {
            file: self.file.clone(),
            line,
            item,
            message,
        }
    }

    /// The number of tags the file defines.
    pub fn tag_count(&self) -> usize {
        self.raw.tags.len()
    }

    /// Apply the config to `ctrl`: identity, route path, tags and their values. On error
    /// `ctrl` is unchanged.
    pub fn apply(&self, c: &mut Controller) -> Result<(), ConfigError> {
        let before = (
            c.tags.clone(),
            c.attribute_tags.clone(),
            c.identity.clone(),
            c.route.clone(),
            c.network.clone(),
            c.udts.clone(),
        );
        let result = self.apply_inner(c);
        if result.is_err() {
            (
                c.tags,
                c.attribute_tags,
                c.identity,
                c.route,
                c.network,
                c.udts,
            ) = before;
        }
        result
    }

    fn apply_inner(&self, c: &mut Controller) -> Result<(), ConfigError> {
        let id = &self.raw.identity;
        let i = &mut c.identity;
        if let Some(v) = id.vendor {
            i.vendor = v;
        }
        if let Some(v) = id.device_type {
            i.device_type = v;
        }
        if let Some(v) = id.product_code {
            i.product_code = v;
        }
        if let Some(v) = id.revision {
            i.revision = v;
        }
        if let Some(v) = id.status {
            i.status = v;
        }
        if let Some(v) = id.serial {
            i.serial = v;
        }
        if let Some(v) = &id.product_name {
            if v.len() > 32 {
                return Err(self.invalid(
                    "identity.product_name".into(),
                    "product_name",
                    format!("`{v}` is longer than 32 characters (a SHORT_STRING in ListIdentity)"),
                ));
            }
            i.product_name = v.clone();
        }
        if let Some(v) = id.state {
            i.state = v;
        }
        if let Some(v) = &id.controller_name {
            i.controller_name = v.clone();
        }
        if let Some(h) = &self.raw.network.host_name {
            c.network.host_name = h.clone();
        }
        if let Some(d) = &self.raw.network.domain {
            c.network.domain = d.clone();
        }
        if let Some(r) = &self.raw.route_path {
            c.route = RoutePolicy::parse(r)
                .map_err(|e| self.invalid("route_path".into(), "route_path", e))?;
        }
        for (n, u) in self.raw.udts.iter().enumerate() {
            let members: Vec<(&str, &str)> = u
                .members
                .iter()
                .map(|m| (m.name.as_str(), m.ty.as_str()))
                .collect();
            c.define_udt(&UdtDef::new(&u.name, &members)).map_err(|e| {
                self.invalid(format!("udts[{n}] `{}`", u.name), &u.name, e.to_string())
            })?;
        }
        for (n, t) in self.raw.tags.iter().enumerate() {
            let item = format!("tags[{n}] `{}`", t.name);
            let spec = match &t.address {
                Some(a) => format!("{}{a}={}", t.name, t.ty),
                None => format!("{}={}", t.name, t.ty),
            };
            c.add_addressed_tag(&spec)
                .map_err(|e| self.invalid(item.clone(), &t.name, e.to_string()))?;
            if let Some(values) = &t.value {
                c.set_values(&t.name, 0, values)
                    .map_err(|e| self.invalid(item.clone(), &t.name, e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// `needle` in `line` with no name character either side.
fn contains_token(line: &str, needle: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    !needle.is_empty()
        && line.match_indices(needle).any(|(at, _)| {
            let before = line.get(..at).and_then(|b| b.chars().next_back());
            let after = line.get(at + needle.len()..).and_then(|a| a.chars().next());
            !before.is_some_and(is_name) && !after.is_some_and(is_name)
        })
}

/// Set one identity field from text, as `--identity KEY=VALUE` gives it: vendor,
/// device_type, product_code, revision (`32.11`), status, serial (decimal or `0x`),
/// product_name, state, controller_name.
pub fn set_identity(id: &mut enip_device::Identity, key: &str, value: &str) -> Result<(), String> {
    let v = value.trim();
    let int = |max: u64| -> Result<u64, String> {
        let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(h) => u64::from_str_radix(h, 16),
            None => v.parse(),
        };
        n.ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("{key} `{v}` is not a number from 0 to {max}"))
    };
    match key.trim() {
        "vendor" => id.vendor = int(0xFFFF)? as u16,
        "device_type" => id.device_type = int(0xFFFF)? as u16,
        "product_code" => id.product_code = int(0xFFFF)? as u16,
        "status" => id.status = int(0xFFFF)? as u16,
        "serial" => id.serial = int(0xFFFF_FFFF)? as u32,
        "state" => id.state = int(0xFF)? as u8,
        "revision" => {
            id.revision = v
                .split_once('.')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or_else(|| format!("revision `{v}` is not MAJOR.MINOR"))?
        }
        "product_name" if v.len() <= 32 => id.product_name = v.to_owned(),
        "product_name" => return Err(format!("product_name `{v}` is longer than 32 characters")),
        "controller_name" => id.controller_name = v.to_owned(),
        other => {
            return Err(format!(
                "unknown identity field `{other}` (vendor, device_type, product_code, revision, status, serial, product_name, state, controller_name)"
            ))
        }
    }
    Ok(())
}
