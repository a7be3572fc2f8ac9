//! `teleinfo forward`'s parts: the on-disk queue (an `uplink::FrameStore`)
//! and the HTTP transport. The command itself is `cmd::forward`; the queue
//! and batching logic is the firmware's own `uplink::Uplink`.

pub mod http;
pub mod queue;
