//! Requests and responses: the server under tide (`server`, the only code that knows the framework), routing, the handlers, the JSON API and the web UI.

pub(crate) mod api;
pub mod refusal;
pub mod route;
pub mod server;
pub mod service;
pub(crate) mod ui;

pub use server::*;
