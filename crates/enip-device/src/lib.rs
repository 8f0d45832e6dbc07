//! `enip-device`: a ControlLogix controller as a pure state machine. A Message Router
//! request goes in, its reply comes out; there are no sockets, tasks or clocks here.
//!
//! Implemented so far: the tag store (atomic types, Logix STRING, arrays of 1 to 3
//! dimensions, BOOL arrays stored as DWORDs, program-scoped tags) and the Logix tag
//! services on symbolic paths — Read Tag, Read Tag Fragmented, Write Tag, Write Tag
//! Fragmented, Read-Modify-Write — Multiple Service Packet, the Identity and controller
//! name objects, and the Connection Manager (Unconnected Send with any route path, Forward
//! Open and Large Forward Open with a connection table, Forward Close), with Logix's
//! status for every error. A CIP error is a status in a reply, never a failure of the
//! call.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod clock;
pub mod connections;
mod controller;
pub mod identity;
pub mod network;
mod symbols;
pub mod tag;

pub use connections::{Connection, Connections};
pub use controller::{Controller, MAX_CONNECTION_SIZE, UNCONNECTED_REPLY_LIMIT};
pub use identity::Identity;
pub use network::Network;
pub use tag::{ElementType, SpecError, Tag, TagSpec, Tags};
