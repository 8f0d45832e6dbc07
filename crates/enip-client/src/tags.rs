//! Uploading the tag list (Symbol object 0x6B, Get Instance Attribute List) and the
//! structure templates (Template object 0x6C) it refers to.

use std::collections::BTreeSet;

use enip_proto::mr::{class, service as svc};
use enip_proto::path::{LogicalKind, Segment};
use enip_proto::services::{
    symbol_type, template_attribute_size, AttributeIds, Body as _, ReadTemplate, SymbolAttr,
    SymbolList, TemplateDefinition,
};
use enip_proto::types::DataType;
use enip_proto::wire::Reader;

use crate::client::{Client, TagPath};
use crate::error::{Error, Result};
use crate::pyfmt::latin1;
use crate::value::{Member, MemberType, Template, Templates};

/// Attributes asked of each symbol: name, type, element size, dimensions (libplctag's
/// set; every Logix since v16 serves them).
const SYMBOL_ATTRIBUTES: [u16; 4] = [1, 2, 7, 8];

/// One tag of the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// `Name`, or `Program:Main.Name` for a program's tag.
    pub name: String,
    pub instance: u32,
    pub symbol_type: u16,
    pub element_size: u16,
    /// 0 to 3 dimensions.
    pub dims: Vec<u32>,
}

impl TagInfo {
    pub fn template_id(&self) -> Option<u16> {
        (self.symbol_type & symbol_type::STRUCT != 0)
            .then_some(self.symbol_type & symbol_type::TEMPLATE_MASK)
    }

    pub fn atomic(&self) -> Option<DataType> {
        if self.template_id().is_some() {
            return None;
        }
        DataType::from_code((self.symbol_type & symbol_type::ATOMIC_MASK) as u8)
    }

    /// The type as a person writes it: `DINT[1000]`, `Motor[4]`, `REAL[4,5]`. Logix
    /// serves a BOOL array as DWORDs (it has no DWORD tags of its own): `BOOL[64]`.
    pub fn type_text(&self, templates: &Templates) -> String {
        if let (Some(DataType::Dword), [words]) = (self.atomic(), self.dims.as_slice()) {
            return format!("BOOL[{}]", u64::from(*words) * 32);
        }
        let base = match (self.template_id(), self.atomic()) {
            (Some(id), _) => templates
                .by_id(id)
                .map_or_else(|| format!("STRUCT #{id}"), |t| t.display_name().to_string()),
            (None, Some(d)) => d.name().to_string(),
            (None, None) => format!("0x{:04X}", self.symbol_type),
        };
        if self.dims.is_empty() {
            base
        } else {
            let d: Vec<String> = self.dims.iter().map(u32::to_string).collect();
            format!("{base}[{}]", d.join(","))
        }
    }
}

/// The controller's tags and the templates of their structures.
#[derive(Debug, Clone, Default)]
pub struct TagList {
    pub tags: Vec<TagInfo>,
    pub programs: Vec<String>,
    pub templates: Templates,
}

/// A controller has far fewer pages than this; a server that keeps answering "more"
/// with new instances is looping.
const MAX_PAGES: usize = 100_000;

impl Client {
    /// Upload every tag, controller-scoped and in each program, and the templates of
    /// every structure they use (nested ones included). The templates are kept: reads of
    /// structures on this client decode afterwards.
    pub async fn tag_list(&self) -> Result<TagList> {
        let mut list = TagList::default();
        let (tags, programs) = self.symbols(None).await?;
        list.tags = tags;
        for p in &programs {
            let (tags, _) = self.symbols(Some(p)).await?;
            list.tags.extend(tags.into_iter().map(|t| TagInfo {
                name: format!("{p}.{}", t.name),
                ..t
            }));
        }
        list.programs = programs;
        let mut todo: BTreeSet<u16> = list.tags.iter().filter_map(TagInfo::template_id).collect();
        while let Some(id) = todo.pop_first() {
            if list.templates.by_id(id).is_some() {
                continue;
            }
            let t = self.template(id).await?;
            for m in &t.members {
                if let MemberType::Struct(inner) = m.member_type() {
                    if list.templates.by_id(inner).is_none() {
                        todo.insert(inner);
                    }
                }
            }
            list.templates.insert(t);
        }
        self.add_templates(&list.templates);
        Ok(list)
    }

    /// One scope's symbols: `(tags, program names)`.
    async fn symbols(&self, program: Option<&str>) -> Result<(Vec<TagInfo>, Vec<String>)> {
        let mut tags = Vec::new();
        let mut programs = Vec::new();
        let mut start = 0u32;
        let body = AttributeIds(SYMBOL_ATTRIBUTES.to_vec()).to_vec()?;
        for _ in 0..MAX_PAGES {
            let mut path = Vec::new();
            if let Some(p) = program {
                Segment::Symbolic(p.as_bytes()).encode(&mut path)?;
            }
            Segment::logical(LogicalKind::Class, class::SYMBOL).encode(&mut path)?;
            Segment::logical(LogicalKind::Instance, start).encode(&mut path)?;
            let reply = self
                .request(svc::GET_INSTANCE_ATTRIBUTE_LIST, &path, &body)
                .await?;
            if !reply.status.carries_data() {
                return Err(reply.error(format!(
                    "Get Instance Attribute List{}",
                    program.map(|p| format!(" in {p}")).unwrap_or_default()
                )));
            }
            let list = SymbolList::decode_with(&mut Reader::new(&reply.data), &SYMBOL_ATTRIBUTES)?;
            let mut last = None;
            for e in &list.entries {
                last = Some(e.instance);
                let name = latin1(e.name().unwrap_or_default());
                let ty = e.symbol_type().unwrap_or(0);
                if name.len() > 8
                    && name
                        .get(..8)
                        .is_some_and(|p| p.eq_ignore_ascii_case("program:"))
                {
                    programs.push(name);
                    continue;
                }
                // System tags and the controller's own `Map:`, `Task:` entries.
                if name.starts_with("__") || name.contains(':') || ty & symbol_type::SYSTEM != 0 {
                    continue;
                }
                let mut element_size = 0;
                let mut dims = Vec::new();
                for a in &e.attributes {
                    match a {
                        SymbolAttr::ElementSize(s) => element_size = *s,
                        SymbolAttr::Dimensions(d) => {
                            let n = usize::from(
                                (ty & symbol_type::DIMS_MASK) >> symbol_type::DIMS_SHIFT,
                            );
                            dims = d.iter().take(n).copied().collect();
                        }
                        _ => {}
                    }
                }
                tags.push(TagInfo {
                    name,
                    instance: e.instance,
                    symbol_type: ty,
                    element_size,
                    dims,
                });
            }
            if reply.status.is_success() {
                return Ok((tags, programs));
            }
            match last {
                Some(l) if l >= start => start = l + 1,
                _ => {
                    return Err(Error::Protocol(
                        "Get Instance Attribute List: partial transfer without new entries".into(),
                    ))
                }
            }
        }
        Err(Error::Protocol(format!(
            "Get Instance Attribute List: still more after {MAX_PAGES} pages"
        )))
    }

    /// One structure template: its attributes (Get Attribute List 4, 5, 2, 1), then its
    /// definition (Read Template, as many reads as it takes).
    pub async fn template(&self, id: u16) -> Result<Template> {
        let path = TagPath::object(class::TEMPLATE, u32::from(id), None);
        let attrs = self
            .get_attribute_list(&path, &[4, 5, 2, 1], template_attribute_size)
            .await?;
        let get = |want: u16| -> Result<u32> {
            attrs
                .iter()
                .find(|(id, status, _)| *id == want && *status == 0)
                .map(|(_, _, v)| match v.as_slice() {
                    [a, b] => u32::from(u16::from_le_bytes([*a, *b])),
                    [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
                    _ => 0,
                })
                .ok_or_else(|| Error::Protocol(format!("template {id}: attribute {want} missing")))
        };
        let words = get(4)?;
        let size = get(5)?;
        let members = u16::try_from(get(2)?).unwrap_or(u16::MAX);
        let handle = u16::try_from(get(1)?).unwrap_or(0);
        // The definition is `words * 4 - 20` bytes (Logix counts a 20-byte header it does
        // not send); ask that much and follow partial transfers for the rest.
        let want = (words as usize * 4).saturating_sub(20);
        let mut blob = Vec::new();
        loop {
            let remaining = want.saturating_sub(blob.len()).max(1);
            let body = ReadTemplate {
                offset: u32::try_from(blob.len()).unwrap_or(u32::MAX),
                bytes: u16::try_from(remaining).unwrap_or(u16::MAX),
            }
            .to_vec()?;
            let reply = self
                .request(svc::READ_TEMPLATE, path.as_bytes(), &body)
                .await?;
            if !reply.status.carries_data() {
                return Err(reply.error(format!("Read Template {id}")));
            }
            blob.extend_from_slice(&reply.data);
            if reply.status.is_success() || reply.data.is_empty() || blob.len() > 1 << 20 {
                break;
            }
        }
        let def = TemplateDefinition::decode(&blob, members)?;
        Ok(Template {
            id,
            handle,
            name: latin1(def.type_name()),
            size,
            members: def
                .members
                .iter()
                .zip(&def.member_names)
                .map(|(m, n)| Member {
                    name: latin1(n),
                    info: m.info,
                    type_code: m.type_code,
                    offset: m.offset,
                })
                .collect(),
        })
    }
}
