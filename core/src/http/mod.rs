//! The client-facing HTTP(S) listener: connection handling, routing, body limits.

pub mod body;
pub mod detach;
pub mod router;
pub mod server;
