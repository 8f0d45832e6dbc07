//! Common Packet Format: an item count, then typed items.

use crate::error::{DecodeResult, EncodeResult};
use crate::wire::{Reader, Writer};

pub const ITEM_NULL_ADDRESS: u16 = 0x0000;
pub const ITEM_LIST_IDENTITY: u16 = 0x000C;
pub const ITEM_CONNECTED_ADDRESS: u16 = 0x00A1;
pub const ITEM_CONNECTED_DATA: u16 = 0x00B1;
pub const ITEM_UNCONNECTED_DATA: u16 = 0x00B2;
pub const ITEM_LIST_SERVICES: u16 = 0x0100;
pub const ITEM_SOCKADDR_O_T: u16 = 0x8000;
pub const ITEM_SOCKADDR_T_O: u16 = 0x8001;
pub const ITEM_SEQUENCED_ADDRESS: u16 = 0x8002;

/// A `sockaddr_in` as EtherNet/IP carries it: every field big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockAddr {
    pub family: u16,
    pub port: u16,
    pub addr: [u8; 4],
    pub zero: [u8; 8],
}

impl SockAddr {
    pub fn ipv4(addr: [u8; 4], port: u16) -> Self {
        Self {
            family: 2,
            port,
            addr,
            zero: [0; 8],
        }
    }

    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Self {
            family: r.u16_be("sin_family")?,
            port: r.u16_be("sin_port")?,
            addr: r.array("sin_addr")?,
            zero: r.array("sin_zero")?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.family.to_be_bytes());
        out.put_bytes(&self.port.to_be_bytes());
        out.put_bytes(&self.addr);
        out.put_bytes(&self.zero);
    }
}

/// The ListIdentity reply item (0x000C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityItem<'a> {
    pub protocol_version: u16,
    pub socket: SockAddr,
    pub vendor: u16,
    pub device_type: u16,
    pub product_code: u16,
    pub revision: (u8, u8),
    pub status: u16,
    pub serial: u32,
    /// SHORT_STRING product name, as sent (ASCII in practice).
    pub product_name: &'a [u8],
    pub state: u8,
}

/// The ListServices reply item (0x0100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceItem {
    pub protocol_version: u16,
    /// 0x0020: CIP over TCP; 0x0100: class 0/1 over UDP.
    pub capabilities: u16,
    /// NUL-padded name, "Communications".
    pub name: [u8; 16],
}

impl ServiceItem {
    /// What a Logix controller advertises.
    pub fn communications() -> Self {
        Self {
            protocol_version: 1,
            capabilities: 0x0120,
            name: *b"Communications\0\0",
        }
    }
}

/// One CPF item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    NullAddress,
    ConnectedAddress {
        connection_id: u32,
    },
    SequencedAddress {
        connection_id: u32,
        sequence: u32,
    },
    /// Unconnected data: a Message Router request or reply.
    UnconnectedData(&'a [u8]),
    /// Connected data: the CIP sequence count, then a Message Router request or reply.
    ConnectedData {
        sequence: u16,
        data: &'a [u8],
    },
    Identity(IdentityItem<'a>),
    Services(ServiceItem),
    SockAddrOT(SockAddr),
    SockAddrTO(SockAddr),
    /// An item type this codec does not interpret, kept as sent.
    Other {
        type_id: u16,
        data: &'a [u8],
    },
}

impl<'a> Item<'a> {
    pub fn type_id(&self) -> u16 {
        match self {
            Self::NullAddress => ITEM_NULL_ADDRESS,
            Self::ConnectedAddress { .. } => ITEM_CONNECTED_ADDRESS,
            Self::SequencedAddress { .. } => ITEM_SEQUENCED_ADDRESS,
            Self::UnconnectedData(_) => ITEM_UNCONNECTED_DATA,
            Self::ConnectedData { .. } => ITEM_CONNECTED_DATA,
            Self::Identity(_) => ITEM_LIST_IDENTITY,
            Self::Services(_) => ITEM_LIST_SERVICES,
            Self::SockAddrOT(_) => ITEM_SOCKADDR_O_T,
            Self::SockAddrTO(_) => ITEM_SOCKADDR_T_O,
            Self::Other { type_id, .. } => *type_id,
        }
    }

    fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let type_id = r.u16("CPF item type")?;
        let len = r.u16("CPF item length")?;
        let mut d = r.sub(usize::from(len), "CPF item data")?;
        let item = match type_id {
            ITEM_NULL_ADDRESS => Self::NullAddress,
            ITEM_CONNECTED_ADDRESS => Self::ConnectedAddress {
                connection_id: d.u32("connection id")?,
            },
            ITEM_SEQUENCED_ADDRESS => Self::SequencedAddress {
                connection_id: d.u32("connection id")?,
                sequence: d.u32("sequence number")?,
            },
            ITEM_UNCONNECTED_DATA => Self::UnconnectedData(d.rest()),
            ITEM_CONNECTED_DATA => Self::ConnectedData {
                sequence: d.u16("sequence count")?,
                data: d.rest(),
            },
            ITEM_LIST_IDENTITY => {
                let protocol_version = d.u16("protocol version")?;
                let socket = SockAddr::decode(&mut d)?;
                let vendor = d.u16("vendor id")?;
                let device_type = d.u16("device type")?;
                let product_code = d.u16("product code")?;
                let revision = (d.u8("major revision")?, d.u8("minor revision")?);
                let status = d.u16("status")?;
                let serial = d.u32("serial number")?;
                let n = d.u8("product name length")?;
                let product_name = d.bytes(usize::from(n), "product name")?;
                let state = d.u8("state")?;
                Self::Identity(IdentityItem {
                    protocol_version,
                    socket,
                    vendor,
                    device_type,
                    product_code,
                    revision,
                    status,
                    serial,
                    product_name,
                    state,
                })
            }
            ITEM_LIST_SERVICES => Self::Services(ServiceItem {
                protocol_version: d.u16("protocol version")?,
                capabilities: d.u16("capability flags")?,
                name: d.array("service name")?,
            }),
            ITEM_SOCKADDR_O_T => Self::SockAddrOT(SockAddr::decode(&mut d)?),
            ITEM_SOCKADDR_T_O => Self::SockAddrTO(SockAddr::decode(&mut d)?),
            _ => Self::Other {
                type_id,
                data: d.rest(),
            },
        };
        d.finish("CPF item")?;
        Ok(item)
    }

    fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        out.put_u16(self.type_id());
        let len_at = out.placeholder_u16();
        let start = out.len();
        match self {
            Self::NullAddress => {}
            Self::ConnectedAddress { connection_id } => out.put_u32(*connection_id),
            Self::SequencedAddress {
                connection_id,
                sequence,
            } => {
                out.put_u32(*connection_id);
                out.put_u32(*sequence);
            }
            Self::UnconnectedData(d) => out.put_bytes(d),
            Self::ConnectedData { sequence, data } => {
                out.put_u16(*sequence);
                out.put_bytes(data);
            }
            Self::Identity(id) => {
                out.put_u16(id.protocol_version);
                id.socket.encode(out);
                out.put_u16(id.vendor);
                out.put_u16(id.device_type);
                out.put_u16(id.product_code);
                out.put_u8(id.revision.0);
                out.put_u8(id.revision.1);
                out.put_u16(id.status);
                out.put_u32(id.serial);
                let n = crate::wire::short_len("product name", id.product_name.len())?;
                out.put_u8(n);
                out.put_bytes(id.product_name);
                out.put_u8(id.state);
            }
            Self::Services(s) => {
                out.put_u16(s.protocol_version);
                out.put_u16(s.capabilities);
                out.put_bytes(&s.name);
            }
            Self::SockAddrOT(s) | Self::SockAddrTO(s) => s.encode(out),
            Self::Other { data, .. } => out.put_bytes(data),
        }
        let len = out.len() - start;
        out.patch_u16(len_at, "CPF item length", len)
    }
}

/// Maximum number of items accepted in one CPF. Real traffic has at most four; the cap
/// bounds allocation for a hostile count.
pub const MAX_ITEMS: usize = 16;

/// A Common Packet Format item list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cpf<'a> {
    pub items: Vec<Item<'a>>,
}

impl<'a> Cpf<'a> {
    pub fn new(items: Vec<Item<'a>>) -> Self {
        Self { items }
    }

    /// The usual SendRRData payload: null address, unconnected data.
    pub fn unconnected(data: &'a [u8]) -> Self {
        Self::new(vec![Item::NullAddress, Item::UnconnectedData(data)])
    }

    /// The usual SendUnitData payload: connected address, connected data.
    pub fn connected(connection_id: u32, sequence: u16, data: &'a [u8]) -> Self {
        Self::new(vec![
            Item::ConnectedAddress { connection_id },
            Item::ConnectedData { sequence, data },
        ])
    }

    /// Decode an item list that runs to the end of `r`.
    pub fn decode(r: &mut Reader<'a>) -> DecodeResult<Self> {
        let at = r.offset();
        let count = usize::from(r.u16("CPF item count")?);
        if count > MAX_ITEMS {
            return Err(crate::DecodeError::new(
                crate::ErrorKind::TooLong {
                    what: "CPF item count",
                    declared: count,
                    max: MAX_ITEMS,
                },
                at,
            ));
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(Item::decode(r)?);
        }
        r.finish("CPF")?;
        Ok(Self { items })
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> EncodeResult {
        let count_at = out.placeholder_u16();
        out.patch_u16(count_at, "CPF item count", self.items.len())?;
        for item in &self.items {
            item.encode(out)?;
        }
        Ok(())
    }

    /// The Message Router payload and how it was addressed.
    pub fn message(&self) -> Option<Message<'a>> {
        let mut conn = None;
        for item in &self.items {
            match item {
                Item::ConnectedAddress { connection_id } => conn = Some(*connection_id),
                Item::UnconnectedData(data) => {
                    return Some(Message {
                        data,
                        connected: None,
                    })
                }
                Item::ConnectedData { sequence, data } => {
                    return Some(Message {
                        data,
                        connected: Some(Connected {
                            connection_id: conn.unwrap_or(0),
                            sequence: *sequence,
                        }),
                    })
                }
                _ => {}
            }
        }
        None
    }

    /// The ListIdentity item, if present.
    pub fn identity(&self) -> Option<&IdentityItem<'a>> {
        self.items.iter().find_map(|i| match i {
            Item::Identity(id) => Some(id),
            _ => None,
        })
    }
}

/// Where a CPF's Message Router payload came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub data: &'a [u8],
    /// `None` for unconnected data.
    pub connected: Option<Connected>,
}

/// The addressing of connected data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connected {
    /// From the connected address item (0 if the CPF had none).
    pub connection_id: u32,
    pub sequence: u16,
}
