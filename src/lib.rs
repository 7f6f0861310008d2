//! `lab`: a bare-metal provisioning lab on one machine, from one `lab.toml`.
//!
//! Data flows one way: the file ([`config`]) is validated into a [`lab::Lab`], which is rendered
//! into service configs ([`render`]) and planned into desired Docker objects ([`plan`]); only
//! [`engine`] talks to Docker.

pub mod apply;
pub mod assets;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod fsutil;
pub mod images;
pub mod ipmi;
pub mod lab;
pub mod phase;
pub mod plan;
pub mod ready;
pub mod render;
pub mod smoke;
pub mod ui;
