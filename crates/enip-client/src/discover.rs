//! ListIdentity, ListServices and ListInterfaces: over a TCP session (see
//! [`crate::Client::list_identity`]) or over UDP, to one device or broadcast to a network
//! with a time limit.

use std::net::SocketAddr;
use std::time::Duration;

use enip_proto::cpf::{IdentityItem, Item};
use enip_proto::wire::Reader;
use enip_proto::{Body, Command, Cpf, EncapStatus, Encapsulation, Header};
use tokio::net::UdpSocket;

use crate::error::{Error, Result};
use crate::pyfmt;

/// A device's identity, from a ListIdentity reply or the Identity object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub protocol_version: u16,
    /// The address the device reports (ListIdentity only; zeros from the Identity object).
    pub socket_addr: [u8; 4],
    pub socket_port: u16,
    pub socket_family: u16,
    pub vendor: u16,
    pub device_type: u16,
    pub product_code: u16,
    pub revision: (u8, u8),
    pub status: u16,
    pub serial: u32,
    pub product_name: String,
    pub state: Option<u8>,
}

impl Identity {
    fn from_item(id: &IdentityItem<'_>) -> Self {
        Self {
            protocol_version: id.protocol_version,
            socket_addr: id.socket.addr,
            socket_port: id.socket.port,
            socket_family: id.socket.family,
            vendor: id.vendor,
            device_type: id.device_type,
            product_code: id.product_code,
            revision: id.revision,
            status: id.status,
            serial: id.serial,
            product_name: pyfmt::latin1(id.product_name),
            state: Some(id.state),
        }
    }

    /// Identity Get Attributes All data: vendor, type, code, revision, status, serial,
    /// SHORT_STRING name (a state byte may follow).
    pub fn from_attributes(data: &[u8]) -> Result<Self> {
        let mut r = enip_proto::wire::Reader::new(data);
        let vendor = r.u16("vendor")?;
        let device_type = r.u16("device type")?;
        let product_code = r.u16("product code")?;
        let revision = (r.u8("major revision")?, r.u8("minor revision")?);
        let status = r.u16("status")?;
        let serial = r.u32("serial number")?;
        let n = r.u8("product name length")?;
        let name = r.bytes(usize::from(n), "product name")?;
        let state = r.u8("state").ok();
        Ok(Self {
            protocol_version: 1,
            socket_addr: [0; 4],
            socket_port: 0,
            socket_family: 0,
            vendor,
            device_type,
            product_code,
            revision,
            status,
            serial,
            product_name: pyfmt::latin1(name),
            state,
        })
    }
}

/// One item of a List* reply, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListItem {
    Identity(Identity),
    Service {
        version: u16,
        capabilities: u16,
        name: String,
        /// The item's length as sent (20 by the book; cpppo sends 19).
        length: u16,
    },
    Other {
        type_id: u16,
        data: Vec<u8>,
    },
}

/// A List* reply and who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListReply {
    pub peer: SocketAddr,
    pub items: Vec<ListItem>,
}

impl ListReply {
    pub(crate) fn from_cpf(peer: SocketAddr, cpf: Option<&Cpf<'_>>) -> Self {
        let items = cpf
            .map(|c| {
                c.items
                    .iter()
                    .map(|i| match i {
                        Item::Identity(id) => ListItem::Identity(Identity::from_item(id)),
                        Item::Services(s) => ListItem::Service {
                            length: 20,
                            version: s.protocol_version,
                            capabilities: s.capabilities,
                            name: pyfmt::latin1(
                                s.name.split(|&c| c == 0).next().unwrap_or_default(),
                            ),
                        },
                        Item::Other { type_id, data } => ListItem::Other {
                            type_id: *type_id,
                            data: data.to_vec(),
                        },
                        other => {
                            let mut data = Vec::new();
                            let _ = Cpf::new(vec![other.clone()]).encode(&mut data);
                            // Keep only the item's data: skip count, type and length.
                            data.drain(..data.len().min(6));
                            ListItem::Other {
                                type_id: other.type_id(),
                                data,
                            }
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { peer, items }
    }

    /// The first identity in the reply.
    pub fn identity(&self) -> Option<&Identity> {
        self.items.iter().find_map(|i| match i {
            ListItem::Identity(id) => Some(id),
            _ => None,
        })
    }

    /// cpppo's `enip_format` of the reply's CPF, as its client prints after
    /// `List Identity  0 from ('10.0.0.1', 44818): `.
    pub fn cpppo_format(&self) -> String {
        let mut pairs: Vec<(String, String)> = vec![("count".into(), self.items.len().to_string())];
        for (n, item) in self.items.iter().enumerate() {
            let k = |s: &str| format!("item[{n}].{s}");
            match item {
                ListItem::Identity(id) => {
                    let len = 34 + id.product_name.len();
                    let o = |s: &str| k(&format!("identity_object.{s}"));
                    let [a, b, c, d] = id.socket_addr;
                    pairs.extend([
                        (k("type_id"), "12".into()),
                        (k("length"), len.to_string()),
                        (o("version"), id.protocol_version.to_string()),
                        (o("sin_family"), id.socket_family.to_string()),
                        (o("sin_port"), id.socket_port.to_string()),
                        (o("sin_addr"), pyfmt::string(&format!("{a}.{b}.{c}.{d}"))),
                        (o("vendor_id"), id.vendor.to_string()),
                        (o("device_type"), id.device_type.to_string()),
                        (o("product_code"), id.product_code.to_string()),
                        (
                            o("product_revision"),
                            u16::from_le_bytes([id.revision.0, id.revision.1]).to_string(),
                        ),
                        (o("status_word"), id.status.to_string()),
                        (o("serial_number"), id.serial.to_string()),
                        (o("product_name"), pyfmt::string(&id.product_name)),
                    ]);
                    if let Some(s) = id.state {
                        pairs.push((o("state"), s.to_string()));
                    }
                }
                ListItem::Service {
                    version,
                    capabilities,
                    name,
                    length,
                } => {
                    let o = |s: &str| k(&format!("communications_service.{s}"));
                    pairs.extend([
                        (k("type_id"), "256".into()),
                        (k("length"), length.to_string()),
                        (o("version"), version.to_string()),
                        (o("capability"), capabilities.to_string()),
                        (o("service_name"), pyfmt::string(name)),
                    ]);
                }
                ListItem::Other { type_id, data } => {
                    pairs.extend([
                        (k("type_id"), type_id.to_string()),
                        (k("length"), data.len().to_string()),
                    ]);
                }
            }
        }
        let mut out = String::from("{");
        for (key, val) in pairs {
            let key = format!("{}: ", pyfmt::string(&key));
            out.push_str(&format!("\n    {key:<32}{val},"));
        }
        out.push_str("\n}");
        out
    }
}

/// The 24-byte List* request.
pub(crate) fn list_request(command: Command, session: u32, context: [u8; 8]) -> Result<Vec<u8>> {
    Ok(Encapsulation {
        header: Header::new(command, session, context),
        body: Body::List(None),
    }
    .to_vec()?)
}

/// Decode a List* reply frame. Devices get these wrong in small ways (cpppo sends a
/// 19-byte ListServices item with a 15-byte name; a PowerFlex 753 sends encapsulation
/// length 0): what the strict codec refuses is read item by item instead.
pub(crate) fn decode_list(command: Command, peer: SocketAddr, frame: &[u8]) -> Result<ListReply> {
    let header = enip_proto::Header::decode(&mut Reader::new(frame))?;
    if header.status != EncapStatus::Success {
        return Err(Error::Encapsulation {
            status: header.status.code(),
        });
    }
    if header.command != command {
        return Err(Error::Protocol(format!(
            "{} reply to a {} request",
            header.command.name(),
            command.name()
        )));
    }
    match Encapsulation::decode(frame) {
        Ok(Encapsulation {
            body: Body::List(cpf),
            ..
        }) => Ok(ListReply::from_cpf(peer, cpf.as_ref())),
        Ok(_) => Err(Error::Protocol(format!(
            "{} reply without an item list",
            command.name()
        ))),
        Err(strict) => lenient_items(frame.get(24..).unwrap_or_default())
            .map(|items| ListReply { peer, items })
            .ok_or_else(|| strict.into()),
    }
}

fn lenient_items(body: &[u8]) -> Option<Vec<ListItem>> {
    let mut r = Reader::new(body);
    let count = r.u16("item count").ok()?;
    let mut items = Vec::new();
    for _ in 0..count.min(16) {
        let type_id = r.u16("item type").ok()?;
        let len = usize::from(r.u16("item length").ok()?);
        let data = r.bytes(len.min(r.remaining()), "item data").ok()?;
        let item = match type_id {
            enip_proto::cpf::ITEM_LIST_SERVICES => {
                let mut d = Reader::new(data);
                let version = d.u16("version").ok()?;
                let capabilities = d.u16("capabilities").ok()?;
                let name = d.rest();
                let name = name.split(|&c| c == 0).next().unwrap_or_default();
                ListItem::Service {
                    version,
                    capabilities,
                    name: pyfmt::latin1(name.get(..16).unwrap_or(name)),
                    length: u16::try_from(len).unwrap_or(u16::MAX),
                }
            }
            enip_proto::cpf::ITEM_LIST_IDENTITY => {
                let mut one = vec![1, 0];
                one.extend_from_slice(&type_id.to_le_bytes());
                one.extend_from_slice(&u16::try_from(data.len()).ok()?.to_le_bytes());
                one.extend_from_slice(data);
                match Cpf::decode(&mut Reader::new(&one)) {
                    Ok(c) => match c.identity() {
                        Some(id) => ListItem::Identity(Identity::from_item(id)),
                        None => ListItem::Other {
                            type_id,
                            data: data.to_vec(),
                        },
                    },
                    Err(_) => ListItem::Other {
                        type_id,
                        data: data.to_vec(),
                    },
                }
            }
            _ => ListItem::Other {
                type_id,
                data: data.to_vec(),
            },
        };
        items.push(item);
    }
    Some(items)
}

/// Send a List* request over UDP to `target` and collect replies: the first one for a
/// unicast, every one until `wait` has passed for a broadcast. A unicast with no reply
/// in time is a timeout; a broadcast nobody answers is an empty list.
pub async fn list_udp(
    command: Command,
    target: SocketAddr,
    broadcast: bool,
    wait: Duration,
) -> Result<Vec<ListReply>> {
    let bind: SocketAddr = if target.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = UdpSocket::bind(bind).await.map_err(|e| Error::io(&e))?;
    if broadcast {
        sock.set_broadcast(true).map_err(|e| Error::io(&e))?;
    }
    // A zero "max response delay" asks devices for their default random delay (Logix:
    // up to 2 s); ask for at most half the time we wait instead.
    let delay = u16::try_from(wait.as_millis() / 2).unwrap_or(u16::MAX);
    let mut context = [0u8; 8];
    if broadcast {
        context[..2].copy_from_slice(&delay.to_le_bytes());
    }
    let frame = list_request(command, 0, context)?;
    sock.send_to(&frame, target)
        .await
        .map_err(|e| Error::io(&e))?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let got = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
        match got {
            Err(_) => break,
            Ok(Err(e)) => {
                // ICMP "port unreachable" surfaces here for a unicast to a closed port.
                if broadcast {
                    continue;
                }
                return Err(Error::io(&e));
            }
            Ok(Ok((n, peer))) => {
                let frame = buf.get(..n).unwrap_or_default();
                match decode_list(command, peer, frame) {
                    Ok(r) => replies.push(r),
                    // One bad device must not spoil a broadcast.
                    Err(e) if broadcast => {
                        tracing::warn!(%peer, "ignoring a bad {} reply: {e}", command.name())
                    }
                    Err(e) => return Err(e),
                }
                if !broadcast {
                    break;
                }
            }
        }
    }
    if replies.is_empty() && !broadcast {
        return Err(Error::Timeout {
            what: format!("{} to {target} over UDP", command.name()),
            after: wait,
        });
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_prints_as_cpppo_does() {
        let r = ListReply {
            peer: SocketAddr::from(([127, 0, 50, 200], 44818)),
            items: vec![ListItem::Identity(Identity {
                protocol_version: 1,
                socket_addr: [127, 0, 50, 200],
                socket_port: 44818,
                socket_family: 2,
                vendor: 1,
                device_type: 14,
                product_code: 166,
                revision: (32, 11),
                status: 12640,
                serial: 20266,
                product_name: "1756-L81E/B LOGIX5581E".into(),
                state: Some(3),
            })],
        };
        // Copied from cpppo 5.2.5's `-i` output against our server.
        expect_test::expect![[r#"
            {
                'count':                        1,
                'item[0].type_id':              12,
                'item[0].length':               56,
                'item[0].identity_object.version': 1,
                'item[0].identity_object.sin_family': 2,
                'item[0].identity_object.sin_port': 44818,
                'item[0].identity_object.sin_addr': '127.0.50.200',
                'item[0].identity_object.vendor_id': 1,
                'item[0].identity_object.device_type': 14,
                'item[0].identity_object.product_code': 166,
                'item[0].identity_object.product_revision': 2848,
                'item[0].identity_object.status_word': 12640,
                'item[0].identity_object.serial_number': 20266,
                'item[0].identity_object.product_name': '1756-L81E/B LOGIX5581E',
                'item[0].identity_object.state': 3,
            }"#]]
        .assert_eq(&r.cpppo_format());
    }
}
