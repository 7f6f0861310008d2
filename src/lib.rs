//! `lab`: a bare-metal provisioning lab on one machine, from one `lab.toml`.
//!
//! Data flows one way: the file ([`config`]) is validated into a [`lab::Lab`], which is rendered
//! into service configs ([`render`]) and, with a [`observe::Snapshot`] of what exists, planned
//! ([`plan`]) and carried out ([`apply`]); [`observe`] builds the observed model (containers,
//! power, phases, endpoints) that `status`, `wait` and readiness ([`ready`]) read. Only [`engine`]
//! talks to Docker; [`commands`] are thin and return one [`error::Error`] at their boundary.

pub mod apply;
pub mod assets;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod images;
pub mod inventory;
pub mod ipmi;
pub mod lab;
pub mod lock;
pub mod nvram;
pub mod observe;
pub mod phase;
pub mod plan;
pub mod ready;
pub mod redfish;
pub mod render;
pub mod report;
pub mod smoke;
pub mod ui;
pub mod wire;
