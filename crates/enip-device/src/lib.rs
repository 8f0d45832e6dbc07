//! `enip-device`: a ControlLogix controller as a pure state machine. A Message Router
//! request goes in, its reply comes out; there are no sockets, tasks or clocks here.
//!
//! Implemented so far: the tag store (atomic types, Logix STRING, arrays of 1 to 3
//! dimensions, BOOL arrays stored as DWORDs, program-scoped tags) and the Logix tag
//! services on symbolic paths — Read Tag, Read Tag Fragmented, Write Tag, Write Tag
//! Fragmented, Read-Modify-Write — and Multiple Service Packet, with Logix's status for
//! every error. A CIP error is a status in a reply, never a failure of the call.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod controller;
pub mod tag;

pub use controller::{Controller, UNCONNECTED_REPLY_LIMIT};
pub use tag::{ElementType, SpecError, Tag, TagSpec, Tags};
