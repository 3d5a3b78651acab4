//! The integration tests that need no process of their own: the library driven
//! in-process (no server, no sleeps).

mod handlers;
mod layers;
