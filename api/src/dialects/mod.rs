//! The public APIs Quando speaks, one folder each: DTOs, parsing into domain requests, and the
//! mapping of results and errors into the dialect's own envelope. No booking rule lives here;
//! they are all in `crate::service`.

pub mod google;
pub mod native;
pub mod talkover;
