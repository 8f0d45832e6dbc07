//! The Identity object (class 0x01) and the controller name object (class 0x64).

/// What the controller says it is. Defaults describe a ControlLogix 5580 at firmware
/// 32.11 in REMOTE RUN: revision ≥ 21 puts pycomm3 on symbol-instance addressing and
/// ≥ 20 on Large Forward Open, as with a real controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub vendor: u16,
    pub device_type: u16,
    pub product_code: u16,
    pub revision: (u8, u8),
    /// Identity attribute 5; 0x3160 reads as keyswitch "REMOTE RUN".
    pub status: u16,
    pub serial: u32,
    pub product_name: String,
    /// Identity attribute 8 (3 = operational), sent in ListIdentity.
    pub state: u8,
    /// The controller (project) name, class 0x64.
    pub controller_name: String,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            vendor: 1,
            device_type: 0x0E,
            product_code: 166,
            revision: (32, 11),
            status: 0x3160,
            serial: 0x0000_4F2A,
            product_name: "1756-L81E/B LOGIX5581E".into(),
            state: 3,
            controller_name: "Simulator".into(),
        }
    }
}

impl Identity {
    /// Product name bytes as sent (SHORT_STRING holds at most 255).
    pub fn name_bytes(&self) -> &[u8] {
        let b = self.product_name.as_bytes();
        b.get(..b.len().min(255)).unwrap_or_default()
    }

    /// One Identity attribute's bytes, `None` if there is no such attribute.
    pub fn attribute(&self, id: u32) -> Option<Vec<u8>> {
        Some(match id {
            1 => self.vendor.to_le_bytes().to_vec(),
            2 => self.device_type.to_le_bytes().to_vec(),
            3 => self.product_code.to_le_bytes().to_vec(),
            4 => vec![self.revision.0, self.revision.1],
            5 => self.status.to_le_bytes().to_vec(),
            6 => self.serial.to_le_bytes().to_vec(),
            7 => {
                let n = self.name_bytes();
                let mut v = Vec::with_capacity(1 + n.len());
                v.push(n.len() as u8);
                v.extend_from_slice(n);
                v
            }
            8 => vec![self.state],
            _ => return None,
        })
    }

    /// Get Attributes All: attributes 1 to 7 packed, as a 1756-L61 answers (no state).
    pub fn all(&self) -> Vec<u8> {
        (1..=7)
            .filter_map(|a| self.attribute(a))
            .flatten()
            .collect()
    }

    /// Class 0x64 Get Attributes All: the controller name as a STRING (UINT length).
    pub fn controller_name_reply(&self) -> Vec<u8> {
        let n = self.controller_name.as_bytes();
        let n = n.get(..n.len().min(u16::MAX as usize)).unwrap_or_default();
        let mut v = Vec::with_capacity(2 + n.len());
        v.extend_from_slice(&(n.len() as u16).to_le_bytes());
        v.extend_from_slice(n);
        v
    }
}
