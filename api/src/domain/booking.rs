//! Booking rules that do not need storage: how long a booking may be, and the block of time an
//! event occupies on its calendar once its event type's buffers are added.

use chrono::{DateTime, Duration, Utc};

use super::time;

/// A booking's own length may differ from its event type's duration, but never beyond this.
pub const MAX_BOOKING_LENGTH: Duration = Duration::days(7);

/// The longest block an event can occupy: the longest booking plus the largest buffers on both
/// sides. Bounds every "which blocks touch this window" query on both ends.
pub const MAX_BLOCK_SPAN: Duration = Duration::days(9);

/// The latest `block_end` a block that starts before `end` can have: `end + MAX_BLOCK_SPAN`,
/// kept inside the storable years (inclusive), because past 9999 the bound would be written
/// `+10000-...`, which SQLite's text comparison sorts before every stored time.
pub fn reach_end(end: DateTime<Utc>) -> DateTime<Utc> {
    (end + MAX_BLOCK_SPAN).min(time::latest())
}

/// The half-open interval `[start - bufferBefore, end + bufferAfter)` an event occupies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Block {
    pub fn around(
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        buffer_before_minutes: i32,
        buffer_after_minutes: i32,
    ) -> Self {
        Block {
            start: start - Duration::minutes(buffer_before_minutes.into()),
            end: end + Duration::minutes(buffer_after_minutes.into()),
        }
    }

    /// Whether the block can be stored: widened by its buffers it must still lie in years 0001
    /// to 9999 (UTC). Else the field to blame (`startTime` for the buffer before, `endTime`
    /// for the one after) and why.
    pub fn check_storable(&self) -> Result<(), (&'static str, &'static str)> {
        if !time::storable(self.start) {
            return Err((
                "startTime",
                "with the event type's buffer before, the booking's block would begin before year 0001",
            ));
        }
        if !time::storable(self.end) {
            return Err((
                "endTime",
                "with the event type's buffer after, the booking's block would end after year 9999",
            ));
        }
        Ok(())
    }

    /// The comparison the database makes: half-open ranges, so back-to-back does not collide.
    pub fn overlaps(&self, other: &Block) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Why a start/end pair cannot be a booking, as a message for the `endTime` field.
pub fn check_length(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), String> {
    if end <= start {
        return Err("must be after startTime".into());
    }
    if end - start > MAX_BOOKING_LENGTH {
        return Err("a booking lasts at most 7 days".into());
    }
    Ok(())
}

/// The times of a rescheduled booking: a new start alone keeps the booking's length, a new end
/// alone keeps its start.
pub fn reschedule(
    current: (DateTime<Utc>, DateTime<Utc>),
    new_start: Option<DateTime<Utc>>,
    new_end: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let (start, end) = current;
    match (new_start, new_end) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, s + (end - start)),
        (None, Some(e)) => (start, e),
        (None, None) => (start, end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 4, 15, h, m, 0).unwrap()
    }

    #[test]
    fn back_to_back_blocks_do_not_overlap() {
        let a = Block::around(at(10, 0), at(10, 30), 0, 0);
        let b = Block::around(at(10, 30), at(11, 0), 0, 0);
        assert!(!a.overlaps(&b) && !b.overlaps(&a));
    }

    #[test]
    fn buffers_widen_the_block_on_both_sides() {
        let a = Block::around(at(10, 0), at(10, 30), 5, 15);
        assert_eq!(a.start, at(9, 55));
        assert_eq!(a.end, at(10, 45));
        assert!(a.overlaps(&Block::around(at(10, 40), at(11, 0), 0, 0)));
        assert!(!a.overlaps(&Block::around(at(10, 45), at(11, 0), 0, 0)));
    }

    #[test]
    fn an_enclosing_range_overlaps() {
        let inner = Block::around(at(10, 0), at(10, 30), 0, 0);
        let outer = Block::around(at(9, 0), at(12, 0), 0, 0);
        assert!(inner.overlaps(&outer) && outer.overlaps(&inner));
    }

    #[test]
    fn moving_only_the_start_keeps_the_length_and_moving_only_the_end_keeps_the_start() {
        let current = (at(10, 0), at(10, 30));
        assert_eq!(
            reschedule(current, Some(at(14, 0)), None),
            (at(14, 0), at(14, 30))
        );
        assert_eq!(
            reschedule(current, None, Some(at(11, 0))),
            (at(10, 0), at(11, 0))
        );
        assert_eq!(
            reschedule(current, Some(at(9, 0)), Some(at(9, 15))),
            (at(9, 0), at(9, 15))
        );
        assert_eq!(reschedule(current, None, None), current);
    }

    #[test]
    fn a_block_whose_buffers_leave_years_0001_to_9999_cannot_be_stored() {
        let t = |s| crate::domain::time::parse_instant(s, None).unwrap();
        let late = Block::around(t("9999-12-31T23:00:00Z"), t("9999-12-31T23:30:00Z"), 0, 60);
        assert_eq!(late.check_storable().unwrap_err().0, "endTime");
        let fits = Block::around(t("9999-12-31T23:00:00Z"), t("9999-12-31T23:30:00Z"), 0, 29);
        assert!(fits.check_storable().is_ok());
        let early = Block::around(t("0001-01-01T00:10:00Z"), t("0001-01-01T00:40:00Z"), 15, 0);
        assert_eq!(early.check_storable().unwrap_err().0, "startTime");
    }

    #[test]
    fn the_reach_of_an_overlap_query_stays_inside_year_9999() {
        let t = |s| crate::domain::time::parse_instant(s, None).unwrap();
        assert_eq!(reach_end(at(10, 0)), at(10, 0) + MAX_BLOCK_SPAN);
        assert_eq!(
            reach_end(t("9999-12-30T00:00:00Z")),
            crate::domain::time::latest()
        );
    }

    #[test]
    fn lengths_must_be_positive_and_at_most_seven_days() {
        assert!(check_length(at(10, 0), at(10, 0)).is_err());
        assert!(check_length(at(10, 0), at(9, 0)).is_err());
        assert!(check_length(at(10, 0), at(10, 0) + Duration::days(7)).is_ok());
        assert!(
            check_length(
                at(10, 0),
                at(10, 0) + Duration::days(7) + Duration::seconds(1)
            )
            .is_err()
        );
    }
}
