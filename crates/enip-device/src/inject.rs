//! Faults injected from outside the protocol: the web API's `tags/<tag>/error=N` makes
//! every access to a tag answer general status N, as cpppo's simulator does. Unlike
//! cpppo, setting 0 clears the fault.
//!
//! Kept apart from tag resolution on purpose: the check finds only the base tag of a
//! path (`Tag`, `Program:X.Tag`, or a symbol instance), so it does not depend on how
//! members and elements below it are resolved.

use std::collections::HashMap;

use enip_proto::mr::class;
use enip_proto::path::{LogicalKind, Segment};
use enip_proto::{EPath, GeneralStatus, Request, ServiceKind};

use crate::controller::{Controller, Fault};

/// General statuses injected per tag id. A status of 0 is never stored.
#[derive(Debug, Clone, Default)]
pub struct TagErrors(HashMap<usize, u8>);

impl TagErrors {
    /// Make every access to tag `tag` fail with general status `status`; 0 clears it.
    pub fn set(&mut self, tag: usize, status: u8) {
        if status == 0 {
            self.0.remove(&tag);
        } else {
            self.0.insert(tag, status);
        }
    }

    /// The status injected on `tag`, 0 for none.
    pub fn get(&self, tag: usize) -> u8 {
        self.0.get(&tag).copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

impl Controller {
    /// The injected fault for a tag service on a tag that carries one.
    pub(crate) fn injected_fault(&self, req: &Request<'_>) -> Option<Fault> {
        if self.tag_errors.is_empty() {
            return None;
        }
        match req.kind() {
            ServiceKind::ReadTag
            | ServiceKind::ReadTagFragmented
            | ServiceKind::WriteTag
            | ServiceKind::WriteTagFragmented
            | ServiceKind::ReadModifyWrite => {}
            _ => return None,
        }
        let status = self.tag_errors.get(self.base_tag(&req.path)?);
        (status != 0).then_some(Fault(GeneralStatus(status), None))
    }

    /// The tag a path starts at, by name or by symbol instance.
    fn base_tag(&self, path: &EPath<'_>) -> Option<usize> {
        let mut segs = path.iter();
        match segs.next()? {
            seg if seg.logical_value(LogicalKind::Class) == Some(class::SYMBOL) => {
                let inst = segs.next()?.logical_value(LogicalKind::Instance)?;
                crate::symbols::tag_of_instance(inst)
            }
            Segment::Symbolic(first) => {
                let first = std::str::from_utf8(first).ok()?;
                if crate::symbols::is_program(first) {
                    let Some(Segment::Symbolic(n)) = segs.next() else {
                        return None;
                    };
                    let n = std::str::from_utf8(n).ok()?;
                    self.tags.find(&format!("{first}.{n}"))
                } else {
                    self.tags.find(first)
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use enip_proto::mr::service as svc;
    use enip_proto::services::{Body as _, Multiple, ReadTag};
    use enip_proto::{Path, Reply};

    use enip_proto::Request;

    use crate::{Controller, UNCONNECTED_REPLY_LIMIT};

    fn status(c: &mut Controller, service: u8, path: &str, body: &[u8]) -> (u8, Vec<u16>) {
        let req = Request::build(service, &Path::parse(path).unwrap(), body).unwrap();
        let r = c.execute(&req, UNCONNECTED_REPLY_LIMIT);
        let r = Reply::decode(&r).unwrap();
        (r.status.0, r.extended)
    }

    #[test]
    fn every_tag_service_answers_the_injected_status_until_cleared() {
        let mut c = Controller::new();
        let scada = c.add_tag("SCADA=DINT[10]").unwrap();
        let step = c.add_tag("Program:Main.Step=DINT").unwrap();
        c.add_tag("Other=INT").unwrap();
        c.tag_errors.set(scada, 8);
        c.tag_errors.set(step, 0x1F);
        let read = ReadTag { elements: 1 }.to_vec().unwrap();
        let write = [0xC4, 0, 1, 0, 1, 0, 0, 0];
        let frag_read = [1, 0, 0, 0, 0, 0];
        let frag_write = [0xC4, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0];
        let rmw = [4, 0, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        for (service, body) in [
            (svc::READ_TAG, &read[..]),
            (svc::WRITE_TAG, &write[..]),
            (svc::READ_TAG_FRAGMENTED, &frag_read[..]),
            (svc::WRITE_TAG_FRAGMENTED, &frag_write[..]),
            (svc::READ_MODIFY_WRITE, &rmw[..]),
        ] {
            assert_eq!(status(&mut c, service, "SCADA[3]", body), (8, vec![]));
            assert_eq!(status(&mut c, service, "scada", body), (8, vec![]));
            assert_eq!(
                status(&mut c, service, "Program:Main.Step", body),
                (0x1F, vec![])
            );
        }
        // Other tags are untouched.
        assert_eq!(status(&mut c, svc::READ_TAG, "Other", &read), (0, vec![]));
        // By symbol instance (pycomm3), and inside a Multiple Service Packet.
        assert_eq!(status(&mut c, svc::READ_TAG, "@0x6B/1", &read), (8, vec![]));
        let inner = Request::build(svc::READ_TAG, &Path::parse("SCADA").unwrap(), &read).unwrap();
        let msp = Multiple {
            messages: vec![&inner],
        }
        .to_vec()
        .unwrap();
        assert_eq!(
            status(&mut c, svc::MULTIPLE_SERVICE_PACKET, "@2/1", &msp).0,
            0x1E
        );
        // 0 clears (cpppo keeps answering the old status).
        c.tag_errors.set(scada, 0);
        assert_eq!(
            status(&mut c, svc::READ_TAG, "SCADA[3]", &read),
            (0, vec![])
        );
        assert_eq!(c.tag_errors.get(scada), 0);
        assert_eq!(c.tag_errors.get(step), 0x1F);
    }
}
