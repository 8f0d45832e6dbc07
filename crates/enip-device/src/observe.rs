//! Seeing and shaping tag traffic: a journal of tag reads and writes (for `--print` and
//! `--history`), and [`TagHook`], cpppo's Attribute subclass: code that runs when a
//! client reads or writes one tag.

use std::fmt::Debug;

use enip_proto::services::RequestBody;
use enip_proto::{GeneralStatus, Request};

use crate::controller::{Controller, Fault};
use crate::tag::{ElementType, Tag};

/// One tag read or write that succeeded, as a client asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The tag's id (see [`crate::Tags::get`]).
    pub tag: usize,
    /// Byte offset of the first element accessed in the tag's data.
    pub offset: usize,
    /// Bytes accessed.
    pub len: usize,
    pub write: bool,
    /// [`Controller::now_us`] when it happened.
    pub at_us: u64,
    /// What the elements are (a member's type, within a structure).
    pub elem: ElementType,
    /// A BOOL member: its bit in the one byte of `data`.
    pub bit: Option<u8>,
    /// Within a structure: the path as the client sent it (`Motors[2].Speed`), and the
    /// index of the first element in the member's array.
    pub member: Option<(String, usize)>,
    /// The bytes read or written (in the journal only; empty for hooks).
    pub data: Vec<u8>,
}

/// Custom behaviour for one tag: the value can be computed when a client reads it, and
/// a client's write can be acted on. Hooks run inside the controller's request handling,
/// so they must be quick: a hook that fetches from elsewhere should cache (see the
/// `weather` example in enip-server).
pub trait TagHook: Debug + Send {
    /// Called before a client's read of `tag` is answered; may change `tag.data`. An
    /// error status fails the read with it (e.g. 0x0C object state conflict when the
    /// value cannot be had).
    fn before_read(&mut self, tag: &mut Tag) -> Result<(), GeneralStatus> {
        let _ = tag;
        Ok(())
    }
    /// Called before a client's write to `tag` is stored; an error status refuses it
    /// (e.g. 0x0E attribute not settable for a read-only tag).
    fn before_write(&mut self, tag: &Tag) -> Result<(), GeneralStatus> {
        let _ = tag;
        Ok(())
    }
    /// Called after a client's write to `tag` was stored.
    fn after_write(&mut self, tag: &Tag, access: &Access) {
        let _ = (tag, access);
    }
}

/// What a request is to one tag, before it runs.
struct Intent {
    elements: u16,
    write: bool,
    /// Fragmented services: recorded once, at their first (read) or last (write) piece.
    record: bool,
}

fn intent(body: &RequestBody<'_>) -> Option<Intent> {
    Some(match body {
        RequestBody::ReadTag(r) => Intent {
            elements: r.elements,
            write: false,
            record: true,
        },
        RequestBody::ReadTagFragmented(r) => Intent {
            elements: r.elements,
            write: false,
            record: r.offset == 0,
        },
        RequestBody::WriteTag(w) => Intent {
            elements: w.elements,
            write: true,
            record: true,
        },
        RequestBody::WriteTagFragmented(w) => Intent {
            elements: w.elements,
            write: true,
            record: true,
        },
        RequestBody::ReadModifyWrite(_) => Intent {
            elements: 1,
            write: true,
            record: true,
        },
        _ => return None,
    })
}

impl Controller {
    /// Start keeping a journal of tag accesses; [`Controller::take_journal`] drains it.
    pub fn record_accesses(&mut self, on: bool) {
        self.journal = on.then(Vec::new);
    }

    /// The accesses since the last call.
    pub fn take_journal(&mut self) -> Vec<Access> {
        match &mut self.journal {
            Some(j) => std::mem::take(j),
            None => Vec::new(),
        }
    }

    /// Give tag `name` custom behaviour. Returns false if there is no such tag.
    pub fn set_hook(&mut self, name: &str, hook: Box<dyn TagHook>) -> bool {
        match self.tags.find(name) {
            Some(id) => {
                self.hooks.insert(id, hook);
                true
            }
            None => false,
        }
    }

    /// Before a tag service runs: let a hook refresh the tag it reads, or refuse the
    /// access. Returns what to record once the reply shows success.
    pub(crate) fn before_tag_service(
        &mut self,
        req: &Request<'_>,
        body: &RequestBody<'_>,
    ) -> Result<Option<Access>, Fault> {
        if self.journal.is_none() && self.hooks.is_empty() {
            return Ok(None);
        }
        let Some(i) = intent(body) else {
            return Ok(None);
        };
        let Ok(span) = self.span(&req.path, i.elements) else {
            // The service itself will answer with the path's error.
            return Ok(None);
        };
        if let (Some(hook), Some(tag)) =
            (self.hooks.get_mut(&span.tag), self.tags.get_mut(span.tag))
        {
            let verdict = if i.write {
                hook.before_write(tag)
            } else {
                hook.before_read(tag)
            };
            verdict.map_err(|status| Fault(status, None))?;
        }
        if !i.record {
            return Ok(None);
        }
        let tag_elem = self.tags.get(span.tag).map(|t| t.elem);
        let member = (tag_elem != Some(span.elem) || span.bit.is_some()).then(|| {
            // `Motors[2].Hist[3]` → (`Motors[2].Hist`, 3).
            let text = req.path.to_string();
            let indexed = text
                .strip_suffix(']')
                .and_then(|t| t.rsplit_once('['))
                .and_then(|(head, i)| Some((head.to_owned(), i.parse().ok()?)));
            indexed.unwrap_or((text, 0))
        });
        Ok(Some(Access {
            tag: span.tag,
            offset: span.from,
            len: span.len,
            write: i.write,
            at_us: self.now_us,
            elem: span.elem,
            bit: span.bit,
            member,
            data: Vec::new(),
        }))
    }

    /// After a tag service replied `reply`: journal it and run write hooks if it succeeded.
    pub(crate) fn after_tag_service(&mut self, mut access: Access, reply: &[u8]) {
        // Success, or a read's 0x06 partial transfer.
        let status = reply.get(2).copied();
        if !(status == Some(0) || (!access.write && status == Some(0x06))) {
            return;
        }
        if access.write {
            if let (Some(hook), Some(tag)) =
                (self.hooks.get_mut(&access.tag), self.tags.get(access.tag))
            {
                hook.after_write(tag, &access);
            }
        }
        if let Some(j) = &mut self.journal {
            if let Some(tag) = self.tags.get(access.tag) {
                let bytes = tag.data.get(access.offset..access.offset + access.len);
                access.data = bytes.unwrap_or_default().to_vec();
            }
            j.push(access);
        }
    }
}
