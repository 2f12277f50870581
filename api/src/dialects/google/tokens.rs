//! Google's page and sync tokens: opaque strings to clients, positions to Quando.
//!
//! - A sync token is `(calendar, seq, issued-at)`: the calendar's change counter when the list
//!   that issued it began. An incremental list returns the events whose `change_seq` is above
//!   `seq`. It is refused (410 `fullSyncRequired`) when it does not parse, names another
//!   calendar, is ahead of the calendar's counter, or is older than `sync_token_ttl`.
//! - A page token carries the counter the list began at (so its last page hands out a sync
//!   token that misses nothing committed after the first page) and the keyset position of the
//!   last item sent (the order's time or change counter, and the id).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::ids::CalendarId;
use crate::pagination::Cursor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncToken {
    pub calendar: CalendarId,
    pub seq: i64,
    pub issued: DateTime<Utc>,
}

impl SyncToken {
    pub fn encode(&self) -> String {
        format!(
            "s1.{}.{:x}.{:x}",
            self.calendar.0.simple(),
            self.seq,
            self.issued.timestamp()
        )
    }

    pub fn decode(s: &str) -> Option<SyncToken> {
        let mut parts = s.strip_prefix("s1.")?.split('.');
        let calendar = Uuid::try_parse(parts.next()?).ok()?;
        let seq = i64::from_str_radix(parts.next()?, 16).ok()?;
        let issued = DateTime::from_timestamp(i64::from_str_radix(parts.next()?, 16).ok()?, 0)?;
        if parts.next().is_some() || seq < 0 {
            return None;
        }
        Some(SyncToken {
            calendar: CalendarId(calendar),
            seq,
            issued,
        })
    }
}

/// Where the next page of a list starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageToken {
    /// A full list: the counter it began at, the order (`s`tart or `u`pdated) and the position.
    Full {
        snapshot: i64,
        by_updated: bool,
        after: Cursor,
    },
    /// An incremental list: the counter it began at, the sync token's counter, the position.
    Changes {
        snapshot: i64,
        since: i64,
        after: (i64, Uuid),
    },
}

impl PageToken {
    pub fn encode(&self) -> String {
        match self {
            PageToken::Full {
                snapshot,
                by_updated,
                after,
            } => format!(
                "p1.{snapshot:x}.{}.{}",
                if *by_updated { 'u' } else { 's' },
                after.encode()
            ),
            PageToken::Changes {
                snapshot,
                since,
                after,
            } => format!(
                "i1.{snapshot:x}.{since:x}.{:x}.{}",
                after.0,
                after.1.simple()
            ),
        }
    }

    pub fn decode(s: &str) -> Option<PageToken> {
        if let Some(rest) = s.strip_prefix("p1.") {
            let (snapshot, rest) = rest.split_once('.')?;
            let (order, cursor) = rest.split_once('.')?;
            let by_updated = match order {
                "s" => false,
                "u" => true,
                _ => return None,
            };
            return Some(PageToken::Full {
                snapshot: i64::from_str_radix(snapshot, 16).ok()?,
                by_updated,
                after: Cursor::decode(cursor).ok()?,
            });
        }
        let mut parts = s.strip_prefix("i1.")?.split('.');
        let snapshot = i64::from_str_radix(parts.next()?, 16).ok()?;
        let since = i64::from_str_radix(parts.next()?, 16).ok()?;
        let seq = i64::from_str_radix(parts.next()?, 16).ok()?;
        let id = Uuid::try_parse(parts.next()?).ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(PageToken::Changes {
            snapshot,
            since,
            after: (seq, id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let sync = SyncToken {
            calendar: CalendarId(Uuid::now_v7()),
            seq: 42,
            issued: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        };
        assert_eq!(SyncToken::decode(&sync.encode()), Some(sync));
        let full = PageToken::Full {
            snapshot: 7,
            by_updated: true,
            after: Cursor {
                time: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
                id: Uuid::now_v7(),
            },
        };
        assert_eq!(PageToken::decode(&full.encode()), Some(full));
        let changes = PageToken::Changes {
            snapshot: 9,
            since: 3,
            after: (5, Uuid::now_v7()),
        };
        assert_eq!(PageToken::decode(&changes.encode()), Some(changes));
        for bad in ["", "garbage", "s1.x.1.1", "p1.1.q.c1.x", "i1.1.2.3"] {
            assert_eq!(SyncToken::decode(bad), None, "{bad}");
            assert_eq!(PageToken::decode(bad), None, "{bad}");
        }
    }
}
