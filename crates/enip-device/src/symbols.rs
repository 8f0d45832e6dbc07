//! The Symbol object (0x6B: the tag list, paged by whole entries, program-scoped lists)
//! and the Template object (0x6C: the builtin STRING and user-defined structures).

use enip_proto::mr::class;
use enip_proto::path::{LogicalKind, Segment};
use enip_proto::services::{
    symbol_type, AttributeEntry, ReadTemplate, SymbolAttr, SymbolEntry, SymbolList,
};
use enip_proto::types::{DataType, LOGIX_STRING_HANDLE};
use enip_proto::{GeneralStatus, Reply, Request};

use crate::controller::{attribute_list_reply, Controller, Fault, REPLY_HEADER};
use crate::tag::{ElementType, Tag};
use crate::udt::Udt;

/// Instance ids of tags are their index + 1; programs follow from this base.
const PROGRAM_BASE: u32 = 0x0001_0000;
/// Logix's type word for a `Program:` entry.
const PROGRAM_TYPE: u16 = 0x1068;
/// Software control of a base (non-alias) tag, as pycomm3 reads it.
const BASE_TAG: u32 = 0x0400_0000;

pub(crate) fn tag_of_instance(inst: u32) -> Option<usize> {
    (1..PROGRAM_BASE).contains(&inst).then(|| inst as usize - 1)
}

pub(crate) fn is_program(name: &str) -> bool {
    name.len() > 8
        && name
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("program:"))
}

/// The symbol type word of a tag.
fn type_word(t: &Tag) -> u16 {
    let dims = (t.dims.len() as u16) << symbol_type::DIMS_SHIFT;
    match t.elem {
        ElementType::Atomic(d) => u16::from(d.code()) | dims,
        ElementType::LogixString => symbol_type::STRUCT | LOGIX_STRING_HANDLE | dims,
        ElementType::Struct(s) => symbol_type::STRUCT | s.template | dims,
        ElementType::ShortString => u16::from(DataType::ShortString.code()) | dims,
    }
}

impl Controller {
    /// Get Instance Attribute List on `[91 "Program:X"] 20 6B 24 <start>`.
    pub(crate) fn symbol_list(
        &self,
        req: &Request<'_>,
        attrs: &[u16],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let mut program: Option<String> = None;
        let mut start = 0u32;
        let mut saw_class = false;
        for seg in req.path.iter() {
            match seg {
                Segment::Symbolic(n) if !saw_class => {
                    let n = std::str::from_utf8(n).map_err(|_| Fault::UNKNOWN_TAG)?;
                    program = Some(n.to_ascii_lowercase());
                }
                s if s.logical_value(LogicalKind::Class) == Some(class::SYMBOL) => saw_class = true,
                s => match s.logical_value(LogicalKind::Instance) {
                    Some(i) if saw_class => start = i,
                    _ => return Err(Fault::NOT_SUPPORTED),
                },
            }
        }
        if attrs
            .iter()
            .any(|a| !matches!(a, 1 | 2 | 3 | 5 | 6 | 7 | 8 | 10))
        {
            return Err(Fault(GeneralStatus::ATTRIBUTE_LIST_ERROR, None));
        }
        if let Some(p) = &program {
            if !self
                .tags
                .iter()
                .any(|t| t.name.to_ascii_lowercase().starts_with(&format!("{p}.")))
            {
                return Err(Fault::UNKNOWN_TAG);
            }
        }
        // Entries in instance order: (instance, shown name, tag or None for a program).
        let mut entries: Vec<(u32, String, Option<&Tag>)> = Vec::new();
        let mut programs: Vec<String> = Vec::new();
        for (i, t) in self.tags.iter().enumerate() {
            let inst = i as u32 + 1;
            match (t.name.split_once('.'), &program) {
                (Some((prog, name)), Some(p)) if prog.eq_ignore_ascii_case(p) => {
                    entries.push((inst, name.to_owned(), Some(t)))
                }
                (Some((prog, _)), None)
                    if !programs.iter().any(|q| q.eq_ignore_ascii_case(prog)) =>
                {
                    programs.push(prog.to_owned())
                }
                (None, None) => entries.push((inst, t.name.clone(), Some(t))),
                _ => {}
            }
        }
        for (k, p) in programs.into_iter().enumerate() {
            entries.push((PROGRAM_BASE + k as u32, p, None));
        }
        let mut list = SymbolList::default();
        let mut used = REPLY_HEADER;
        let mut more = false;
        for (inst, name, tag) in entries.iter().filter(|e| e.0 >= start) {
            let attributes: Vec<SymbolAttr<'_>> = attrs
                .iter()
                .map(|a| match (a, tag) {
                    (1, _) => SymbolAttr::Name(name.as_bytes()),
                    (2, Some(t)) => SymbolAttr::Type(type_word(t)),
                    (2, None) => SymbolAttr::Type(PROGRAM_TYPE),
                    (3, _) => SymbolAttr::Address(0),
                    (5, _) => SymbolAttr::ObjectAddress(*inst),
                    (6, _) => SymbolAttr::SoftwareControl(BASE_TAG),
                    // A UINT: larger structures (up to 2 MiB) report 65535.
                    (7, Some(t)) => {
                        SymbolAttr::ElementSize(u16::try_from(t.elem.size()).unwrap_or(u16::MAX))
                    }
                    (7, None) => SymbolAttr::ElementSize(0),
                    (8, Some(t)) => {
                        let mut d = [0u32; 3];
                        for (slot, v) in d.iter_mut().zip(&t.dims) {
                            *slot = *v;
                        }
                        SymbolAttr::Dimensions(d)
                    }
                    (8, None) => SymbolAttr::Dimensions([0; 3]),
                    _ => SymbolAttr::ExternalAccess(0),
                })
                .collect();
            let entry = SymbolEntry {
                instance: *inst,
                attributes,
            };
            let mut one = Vec::new();
            let _ = SymbolList {
                entries: vec![entry.clone()],
            }
            .encode(&mut one);
            if used + one.len() > limit {
                more = true;
                break;
            }
            used += one.len();
            list.entries.push(entry);
        }
        let mut data = Vec::with_capacity(used);
        let _ = list.encode(&mut data);
        let status = if more {
            GeneralStatus::PARTIAL_TRANSFER
        } else {
            GeneralStatus::SUCCESS
        };
        let _ = Reply::new(req.service, status, &data).encode(out);
        Ok(())
    }

    /// The structure a Template object path names.
    fn template(&self, req: &Request<'_>) -> Result<&Udt, Fault> {
        req.path
            .target()
            .instance
            .and_then(|i| u16::try_from(i).ok())
            .and_then(|i| self.udts.by_template(i))
            .ok_or(Fault::NO_OBJECT)
    }

    /// Get Attribute List on the Template object, attributes in request order.
    pub(crate) fn template_attributes(
        &self,
        req: &Request<'_>,
        attrs: &[u16],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let u = self.template(req)?;
        let values: Vec<(u16, Option<Vec<u8>>)> = attrs
            .iter()
            .map(|&a| {
                let v = match a {
                    1 => Some(u.ty.handle.to_le_bytes().to_vec()),
                    2 => Some(u.member_count().to_le_bytes().to_vec()),
                    // pylogix asks for it and needs it 2 bytes long; its meaning is unknown.
                    3 => Some(0u16.to_le_bytes().to_vec()),
                    4 => Some(u.definition_words().to_le_bytes().to_vec()),
                    5 => Some(u.ty.size.to_le_bytes().to_vec()),
                    _ => None,
                };
                (a, v)
            })
            .collect();
        let entries = values
            .iter()
            .map(|(id, v)| AttributeEntry {
                id: *id,
                status: Some(if v.is_some() { 0 } else { 0x14 }),
                value: v.as_deref().unwrap_or_default(),
            })
            .collect();
        attribute_list_reply(req.service, entries, out);
        Ok(())
    }

    /// Read Template: `min(requested, remaining)` bytes from the offset; 0x06 only when
    /// the reply limit cut the read short.
    pub(crate) fn read_template(
        &self,
        req: &Request<'_>,
        r: ReadTemplate,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let blob = self.template(req)?.definition();
        let offset = r.offset as usize;
        let rest = blob.get(offset..).ok_or(Fault::BEYOND_END)?;
        let want = rest.len().min(usize::from(r.bytes));
        let room = limit.saturating_sub(REPLY_HEADER);
        let n = want.min(room);
        let status = if n < want {
            GeneralStatus::PARTIAL_TRANSFER
        } else {
            GeneralStatus::SUCCESS
        };
        let _ = Reply::new(req.service, status, rest.get(..n).unwrap_or_default()).encode(out);
        Ok(())
    }
}
