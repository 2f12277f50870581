//! The one pagination helper: `page`/`limit` in, the `pagination` block out.

use poem_openapi::Object;

pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;

/// Default of the `page` query parameter.
pub fn default_page() -> u64 {
    1
}

/// Default of the `limit` query parameter.
pub fn default_limit() -> u64 {
    DEFAULT_LIMIT
}

/// A validated page request (`page` >= 1, `limit` 1..=100; the query parameters enforce both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u64,
    pub limit: u64,
}

impl PageRequest {
    pub fn new(page: Option<u64>, limit: Option<u64>) -> Self {
        PageRequest {
            page: page.unwrap_or(1).max(1),
            limit: limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        }
    }

    pub fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.limit)
    }
}

/// Where this page sits in the whole result.
#[derive(Clone, Debug, PartialEq, Eq, Object)]
#[oai(rename_all = "camelCase")]
pub struct Pagination {
    /// This page, from 1.
    pub page: u64,
    /// Items per page.
    pub limit: u64,
    /// Items matching the filters, over all pages.
    pub total: u64,
    /// `ceil(total / limit)`; 0 when nothing matches.
    pub total_pages: u64,
}

impl Pagination {
    pub fn new(req: PageRequest, total: u64) -> Self {
        Pagination {
            page: req.page,
            limit: req.limit,
            total,
            total_pages: total.div_ceil(req.limit),
        }
    }
}

/// A keyset position in a list sorted by (time, id), handed to clients as an opaque string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub time: chrono::DateTime<chrono::Utc>,
    pub id: uuid::Uuid,
}

impl Cursor {
    /// `c<seconds since 1970 in hex>.<id>`; instants before 1970 carry a minus sign
    /// (`c-1e1338.`), which `decode` reads back, so every cursor issued round-trips.
    pub fn encode(&self) -> String {
        let secs = self.time.timestamp();
        let sign = if secs < 0 { "-" } else { "" };
        format!("c{sign}{:x}.{}", secs.unsigned_abs(), self.id.simple())
    }

    pub fn decode(s: &str) -> Result<Self, String> {
        let bad =
            || "is not a cursor this API returned; pass nextCursor back unchanged".to_string();
        let (secs, id) = s
            .strip_prefix('c')
            .and_then(|r| r.split_once('.'))
            .ok_or_else(bad)?;
        // `from_str_radix` would also take a `+`; only what `encode` writes is accepted.
        if secs.starts_with('+') {
            return Err(bad());
        }
        let secs = i64::from_str_radix(secs, 16).map_err(|_| bad())?;
        Ok(Cursor {
            time: chrono::DateTime::from_timestamp(secs, 0).ok_or_else(bad)?,
            id: uuid::Uuid::try_parse(id).map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_pages_is_the_ceiling_and_zero_when_empty() {
        let req = PageRequest::new(Some(1), Some(10));
        assert_eq!(Pagination::new(req, 25).total_pages, 3);
        assert_eq!(Pagination::new(req, 30).total_pages, 3);
        assert_eq!(Pagination::new(req, 0).total_pages, 0);
        assert_eq!(Pagination::new(req, 1).total_pages, 1);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            time: chrono::DateTime::from_timestamp(1_807_000_000, 0).unwrap(),
            id: uuid::Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        for bad in ["", "abc", "c.x", "czz.0196", "c10.not-a-uuid"] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_before_1970_and_at_the_ends_of_the_storable_years_round_trip() {
        for secs in [
            -1,
            -15_778_800,
            -631_152_000,
            crate::domain::time::EARLIEST_SECS,
            crate::domain::time::LATEST_SECS,
            0,
        ] {
            let c = Cursor {
                time: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
                id: uuid::Uuid::now_v7(),
            };
            assert_eq!(Cursor::decode(&c.encode()), Ok(c), "{}", c.encode());
        }
        assert!(Cursor::decode("c+10.0196f6d28c1e7a3b9f00000000000e01").is_err());
    }

    #[test]
    fn defaults_are_page_one_of_twenty() {
        let req = PageRequest::new(None, None);
        assert_eq!((req.page, req.limit, req.offset()), (1, 20, 0));
        assert_eq!(PageRequest::new(Some(3), Some(10)).offset(), 20);
    }
}
