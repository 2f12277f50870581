//! Parsed types and booking rules: pure functions, no I/O, unit-tested beside each type.
//! Everything that crosses the HTTP boundary is parsed into one of these once; code past the
//! boundary never re-checks.

pub mod booking;
pub mod contact;
pub mod details;
pub mod feeds;
pub mod ical;
pub mod ids;
pub mod recurrence;
pub mod schedule;
pub mod slots;
pub mod team;
pub mod time;
pub mod violations;
pub mod webhooks;
