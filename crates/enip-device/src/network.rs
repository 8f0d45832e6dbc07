//! The TCP/IP Interface (0xF5) and Ethernet Link (0xF6) objects, instance 1.

/// The simulated controller's network identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub address: [u8; 4],
    pub mask: [u8; 4],
    pub gateway: [u8; 4],
    pub host_name: String,
    pub domain: String,
    pub mac: [u8; 6],
    /// Encapsulation inactivity timeout (s), TCP/IP attribute 13.
    pub inactivity_timeout: u16,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            address: [127, 0, 0, 1],
            mask: [255, 0, 0, 0],
            gateway: [0, 0, 0, 0],
            host_name: String::new(),
            domain: String::new(),
            // A locally administered address.
            mac: [0x02, 0x00, 0x5E, 0x00, 0x00, 0x01],
            inactivity_timeout: 120,
        }
    }
}

/// A CIP STRING padded to an even length, as TCP/IP attributes carry it.
fn padded_string(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    let b = b.get(..b.len().min(255)).unwrap_or_default();
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(b);
    if b.len() % 2 == 1 {
        out.push(0);
    }
}

/// An IPv4 address as TCP/IP attribute 5 carries it: the host-order value, little-endian
/// (192.168.1.10 is `0A 01 A8 C0`) — the opposite of ListIdentity's sin_addr.
fn udint_addr(a: [u8; 4], out: &mut Vec<u8>) {
    out.extend_from_slice(&u32::from_be_bytes(a).to_le_bytes());
}

impl Network {
    /// TCP/IP Interface attribute `id`.
    pub fn tcpip_attribute(&self, id: u32) -> Option<Vec<u8>> {
        let mut v = Vec::new();
        match id {
            // Configured from non-volatile storage.
            1 => v.extend_from_slice(&1u32.to_le_bytes()),
            // DNS capable, settable configuration.
            2 => v.extend_from_slice(&0x0000_0014u32.to_le_bytes()),
            // Static configuration.
            3 => v.extend_from_slice(&0u32.to_le_bytes()),
            4 => v.extend_from_slice(&[0x02, 0x00, 0x20, 0xF6, 0x24, 0x01]),
            5 => {
                udint_addr(self.address, &mut v);
                udint_addr(self.mask, &mut v);
                udint_addr(self.gateway, &mut v);
                udint_addr([0; 4], &mut v);
                udint_addr([0; 4], &mut v);
                padded_string(&self.domain, &mut v);
            }
            6 => padded_string(&self.host_name, &mut v),
            13 => v.extend_from_slice(&self.inactivity_timeout.to_le_bytes()),
            _ => return None,
        }
        Some(v)
    }

    /// Ethernet Link attribute `id`.
    pub fn link_attribute(&self, id: u32) -> Option<Vec<u8>> {
        Some(match id {
            1 => 1000u32.to_le_bytes().to_vec(),
            // Link up, full duplex, speed and duplex auto-negotiated.
            2 => 0x0000_000Fu32.to_le_bytes().to_vec(),
            3 => self.mac.to_vec(),
            // Twisted pair, enabled, admin enabled.
            7 => vec![2],
            8 => vec![1],
            9 => vec![1],
            10 => {
                let mut v = vec![4];
                v.extend_from_slice(b"Port");
                v
            }
            _ => return None,
        })
    }

    /// Get Attributes All: the attributes above in order.
    pub fn all(&self, class: u32) -> Vec<u8> {
        let ids: &[u32] = if class == enip_proto::mr::class::TCP_IP {
            &[1, 2, 3, 4, 5, 6]
        } else {
            &[1, 2, 3]
        };
        ids.iter()
            .filter_map(|&a| {
                if class == enip_proto::mr::class::TCP_IP {
                    self.tcpip_attribute(a)
                } else {
                    self.link_attribute(a)
                }
            })
            .flatten()
            .collect()
    }
}
