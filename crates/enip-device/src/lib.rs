//! `enip-device`: a ControlLogix controller as a pure state machine. A Message Router
//! request goes in, its reply comes out; there are no sockets, tasks or clocks here.
//!
//! Implemented so far:
//! - the tag store ([`tag`]): atomic types, Logix STRING, user-defined structures, arrays
//!   of 1 to 3 dimensions, BOOL arrays stored as DWORDs, program-scoped tags;
//! - user-defined structures ([`udt`]): [`Controller::define_udt`] takes a [`UdtDef`] (member
//!   types as text: `REAL`, `DINT[10]`, `BOOL`, `STRING`, an earlier structure) and lays it
//!   out as Logix firmware 27+ does — natural alignment, 8-byte structures on 8, BOOLs
//!   packed into hidden `ZZZZZZZZZZ…` SINT hosts, size padded to 4 or 8;
//! - the Logix tag services on symbolic and symbol-instance paths, members included
//!   (`Motors[2].Pos.X`, `Program:Main.Cell.Hist[3]`, BOOL members as single bits):
//!   Read Tag, Read Tag Fragmented, Write Tag, Write Tag Fragmented, Read-Modify-Write,
//!   and Multiple Service Packet; structures read and write as `A0 02 <handle>` + bytes;
//! - the Symbol object (the tag list, structure tags typed `0x8000 | template id`) and the
//!   Template object (attributes 1–5 and Read Template for STRING and every structure,
//!   sized so pycomm3's and pylogix's byte counts each read a definition in one request);
//! - the Identity and controller name objects, the wall clock, TCP/IP and Ethernet Link,
//!   and the Connection Manager (Unconnected Send with any route path, Forward Open and
//!   Large Forward Open with a connection table, Forward Close),
//!
//! with Logix's status for every error. A CIP error is a status in a reply, never a
//! failure of the call.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod attributes;
mod clock;
pub mod connections;
mod controller;
pub mod identity;
mod inject;
pub mod network;
mod observe;
pub mod route;
mod symbols;
pub mod tag;
pub mod udt;
mod values;

pub use connections::{Connection, Connections};
pub use controller::{Controller, MAX_CONNECTION_SIZE, UNCONNECTED_REPLY_LIMIT};
pub use identity::Identity;
pub use inject::TagErrors;
pub use network::Network;
pub use observe::{Access, TagHook};
pub use route::RoutePolicy;
pub use tag::{ElementType, SpecError, Tag, TagSpec, Tags};
pub use udt::{Member, MemberDef, MemberKind, StructType, Udt, UdtDef, Udts};
pub use values::{literals, Literal, ValueError};
