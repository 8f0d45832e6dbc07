//! Tags at a CIP address, cpppo's `NAME@cls/ins/att=TYPE[n]`: besides its name, the tag
//! answers Get/Set Attribute Single on that class, instance and attribute, and its
//! instance answers Get Attributes All with its attributes in order.

use std::collections::BTreeMap;

use enip_proto::mr::ServiceKind;
use enip_proto::{GeneralStatus, Reply, Request};

use crate::controller::{Controller, Fault};
use crate::tag::{SpecError, TagSpec};

/// (class, instance, attribute) → tag id.
pub type AttributeMap = BTreeMap<(u32, u32, u32), usize>;

/// Classes the controller implements itself; a tag may not take their addresses.
const RESERVED: [u32; 10] = [0x01, 0x02, 0x06, 0x64, 0x6B, 0x6C, 0x8B, 0xF5, 0xF6, 0x00];

/// Parse `@cls/ins/att`, each part decimal or `0x` hex (as cpppo allows).
pub fn parse_address(s: &str) -> Result<(u32, u32, u32), String> {
    let body = s
        .strip_prefix('@')
        .ok_or_else(|| format!("address `{s}` must start with `@`"))?;
    let parts: Vec<&str> = body.split('/').collect();
    let num = |p: &str| -> Result<u32, String> {
        let p = p.trim();
        let v = match p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            Some(h) => u32::from_str_radix(h, 16),
            None => p.parse(),
        };
        v.map_err(|_| format!("`{p}` in address `{s}` is not a number"))
    };
    match parts.as_slice() {
        [c, i, a] => Ok((num(c)?, num(i)?, num(a)?)),
        _ => Err(format!(
            "address `{s}` must be @class/instance/attribute, e.g. @0x22/1/3"
        )),
    }
}

impl Controller {
    /// Add a tag from `NAME@cls/ins/att=TYPE[n]` (or a plain `NAME=TYPE[n]` spec).
    pub fn add_addressed_tag(&mut self, spec: &str) -> Result<usize, SpecError> {
        let (head, ty) = spec.split_once('=').unwrap_or((spec, ""));
        let Some((name, addr)) = head.split_once('@') else {
            return self.add_tag(spec);
        };
        let bad = |why: String| SpecError::BadAddress {
            spec: spec.to_owned(),
            why,
        };
        let at = parse_address(&format!("@{}", addr.trim())).map_err(bad)?;
        if RESERVED.contains(&at.0) {
            return Err(bad(format!(
                "class {:#x} is one the controller implements itself",
                at.0
            )));
        }
        if at.1 == 0 || at.2 == 0 {
            return Err(bad("instance and attribute start at 1".into()));
        }
        if self.attribute_tags.contains_key(&at) {
            return Err(bad("another tag already has this address".into()));
        }
        let id = self.tags.insert(&TagSpec::parse_with(
            &format!("{}={ty}", name.trim()),
            &self.udts,
        )?)?;
        self.attribute_tags.insert(at, id);
        Ok(id)
    }

    /// Get/Set Attribute Single and Get Attributes All on an addressed tag's object;
    /// `None` when the path names no such object.
    pub(crate) fn tag_attribute(
        &mut self,
        req: &Request<'_>,
        value: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> Option<Result<(), Fault>> {
        let t = req.path.target();
        let (class, inst) = (t.class?, t.instance?);
        let mut ids = self
            .attribute_tags
            .range((class, inst, 0)..=(class, inst, u32::MAX))
            .peekable();
        ids.peek()?;
        let result = match (req.kind(), t.attribute, value) {
            (ServiceKind::GetAttributesAll, None, None) => {
                let mut data = Vec::new();
                for (_, &id) in ids {
                    if let Some(tag) = self.tags.get(id) {
                        data.extend_from_slice(&tag.data);
                    }
                }
                let _ = Reply::success(req.service, &data).encode(out);
                Ok(())
            }
            (ServiceKind::GetAttributeSingle, Some(a), None) => {
                match self.attribute_tags.get(&(class, inst, a)) {
                    Some(&id) => {
                        let data = self.tags.get(id).map(|t| t.data.as_slice());
                        let _ = Reply::success(req.service, data.unwrap_or_default()).encode(out);
                        Ok(())
                    }
                    None => Err(Fault::NO_ATTRIBUTE),
                }
            }
            (ServiceKind::SetAttributeSingle, Some(a), Some(v)) => {
                match self
                    .attribute_tags
                    .get(&(class, inst, a))
                    .copied()
                    .and_then(|id| self.tags.get_mut(id))
                {
                    Some(tag) if v.len() < tag.data.len() => Err(Fault::NOT_ENOUGH_DATA),
                    Some(tag) if v.len() > tag.data.len() => {
                        Err(Fault(GeneralStatus::TOO_MUCH_DATA, None))
                    }
                    Some(tag) => {
                        tag.data.copy_from_slice(v);
                        let _ = Reply::success(req.service, &[]).encode(out);
                        Ok(())
                    }
                    None => Err(Fault::NO_ATTRIBUTE),
                }
            }
            _ => Err(Fault::NOT_SUPPORTED),
        };
        Some(result)
    }
}
