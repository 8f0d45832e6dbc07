//! `plcfleet`: declarative fleets of ControlLogix simulators. A YAML manifest
//! ([`manifest`]) becomes a plan ([`plan`]) that a backend carries out.
//!
//! plcfleet never speaks the protocol itself beyond health probes built from
//! `enip-proto`; every simulator is an `enip-server`.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod api;
pub mod apply;
pub mod backend;
pub mod controller;
pub mod docker;
pub mod engines;
pub mod k8s;
pub mod kube_controller;
pub mod local;
pub mod locate;
pub mod manifest;
pub mod plan;
pub mod probe;
pub mod scrape;

pub use manifest::{Fleet, ManifestError, Simulator};
