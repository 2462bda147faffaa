//! Gatehouse as a library: prepare a data directory, start the server on a port, and
//! stop it. The `gatehouse` binary and the Rust tests both use this face.

pub mod bootstrap;
pub mod doctor;
pub mod server;
pub mod tls;

pub use bootstrap::{DataDir, Prepared, prepare};
pub use server::{RunningServer, ServeOptions, start};
