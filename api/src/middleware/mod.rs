//! Cross-cutting layers: the request id (outermost, so even routing failures carry it) and the
//! conversion of every poem error into the JSON envelope.

pub mod cors;
pub mod idempotency;
pub mod request_id;
pub mod tenant;
