//! The wall clock object (0x8B): Get Attribute List of attribute 6 or 11 returns the
//! controller time as a ULINT of µs since 1970 (pycomm3's and pylogix's PLC time); Set
//! Attribute List moves it. The time comes from the I/O layer through
//! [`Controller::now_us`].

use enip_proto::services::{AttributeEntry, AttributeList, AttributeListForm};
use enip_proto::wire::Reader;
use enip_proto::{GeneralStatus, Request};

use crate::controller::{attribute_list_reply, Controller, Fault};

/// Attributes holding the time: 6 (local, read by pycomm3 1.2.16 and set by pylogix) and
/// 11 (UTC, read by pylogix and pycomm3's later versions). The simulator runs on UTC.
fn is_time(id: u16) -> bool {
    matches!(id, 6 | 11)
}

impl Controller {
    /// The controller's time: the host's plus what clients set.
    pub fn plc_time_us(&self) -> u64 {
        self.now_us.saturating_add_signed(self.clock_offset_us)
    }

    pub(crate) fn clock_attributes(
        &self,
        req: &Request<'_>,
        attrs: &[u16],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        if req.path.target().instance != Some(1) {
            return Err(Fault::NO_OBJECT);
        }
        let now = self.plc_time_us().to_le_bytes();
        let entries = attrs
            .iter()
            .map(|&id| AttributeEntry {
                id,
                status: Some(if is_time(id) { 0 } else { 0x14 }),
                value: if is_time(id) { &now } else { &[] },
            })
            .collect();
        attribute_list_reply(req.service, entries, out);
        Ok(())
    }

    pub(crate) fn set_clock(
        &mut self,
        req: &Request<'_>,
        values: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        if req.path.target().instance != Some(1) {
            return Err(Fault::NO_OBJECT);
        }
        let list = AttributeList::decode_with(
            &mut Reader::new(values),
            AttributeListForm::SetRequest,
            |id| is_time(id).then_some(8),
        )
        .map_err(|_| Fault(GeneralStatus::ATTRIBUTE_LIST_ERROR, None))?;
        let mut statuses = Vec::with_capacity(list.entries.len());
        for e in &list.entries {
            let v = <[u8; 8]>::try_from(e.value).map(u64::from_le_bytes);
            match v {
                Ok(t) if is_time(e.id) => {
                    self.clock_offset_us =
                        i64::try_from(i128::from(t) - i128::from(self.now_us)).unwrap_or(0);
                    statuses.push(AttributeEntry {
                        id: e.id,
                        status: Some(0),
                        value: &[],
                    });
                }
                _ => statuses.push(AttributeEntry {
                    id: e.id,
                    status: Some(0x14),
                    value: &[],
                }),
            }
        }
        attribute_list_reply(req.service, statuses, out);
        Ok(())
    }
}
