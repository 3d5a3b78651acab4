//! The integration tests that need no process of their own, in one binary: the library
//! driven in-process (handlers, layers), and the daemon as its users run it.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod handlers;
mod inproc;
mod layers;
mod persistence;
mod process;
mod push;
mod recovery;
mod tutorial;
mod ui;
mod utf8;
mod wire;
mod writes;
