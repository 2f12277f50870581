//! Talkover's availability (free slots of a length on a calendar) and availability rules
//! (`recurring` and `exception`). Thin mappers: the slots come from the slot engine every
//! booking obeys (`Service::calendar_availability`), the rules are the calendar's working hours
//! and date overrides read and written through `service::availability_rules`.

use chrono::Duration;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::TalkoverTags;
use super::errors::TFail;
use crate::auth::{ReadAuth, WriteAuth};
use crate::dialects::native::errors::code::NOT_FOUND;
use crate::dialects::native::errors::{AUTHENTICATED, CREATE, PARAMETERS};
use crate::domain::ids::CalendarId;
use crate::domain::schedule::DayRange;
use crate::domain::time::{Zone, parse_date, parse_instant};
use crate::domain::violations::{Invalid, Violations};
use crate::payload::JsonBody;
use crate::schema::Timestamp;
use crate::service::availability_rules::{NewRule, Rule, RuleKind, weekday_of};
use crate::state::AppState;

/// A free slot.
#[derive(Object)]
#[oai(rename = "TalkoverSlot")]
pub struct TSlot {
    /// Start (UTC).
    pub start_at: Timestamp,
    /// End (UTC): start plus `duration_minutes`.
    pub end_at: Timestamp,
}

/// Free slots, the earliest first.
#[derive(Object)]
#[oai(rename = "TalkoverAvailability")]
pub struct TAvailability {
    /// Always `true`.
    pub success: bool,
    /// At most 1,000 free slots.
    pub data: Vec<TSlot>,
    /// `true` when the window holds more than 1,000 free slots and only the first 1,000 are
    /// listed.
    pub has_more: bool,
    /// With `has_more`: the start of the first slot left out. Ask again with it as `from` (and
    /// the same `to`) for the rest; no slot is lost or repeated. `null` otherwise.
    #[oai(nullable)]
    pub next_from: Option<Timestamp>,
}

#[derive(ApiResponse)]
pub enum AvailabilityAnswer {
    /// Free slots in the window (possibly none).
    #[oai(status = 200)]
    Ok(Json<TAvailability>),
}

/// `recurring` (weekly hours) or `exception` (one date).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename = "TalkoverRuleType", rename_all = "lowercase")]
pub enum TRuleType {
    Recurring,
    Exception,
}

/// A new availability rule.
#[derive(Object)]
#[oai(rename = "TalkoverAvailabilityRuleIn", example)]
pub struct TRuleIn {
    /// `recurring` or `exception`.
    #[oai(rename = "type")]
    pub kind: TRuleType,
    /// Recurring: the days, 1 = Monday .. 7 = Sunday.
    #[oai(validator(max_items = 7))]
    pub days_of_week: Option<Vec<i32>>,
    /// Local start, `HH:MM`: required for recurring rules and open exceptions.
    #[oai(validator(max_length = 5))]
    pub start_time: Option<String>,
    /// Local end, `HH:MM`, after `start_time`; `24:00` is the end of the day.
    #[oai(validator(max_length = 5))]
    pub end_time: Option<String>,
    /// Recurring: the IANA zone of the times; default and only accepted value: the calendar's.
    #[oai(validator(max_length = 64))]
    pub timezone: Option<String>,
    /// Exception: the local date, `YYYY-MM-DD`.
    #[oai(validator(max_length = 10))]
    pub date: Option<String>,
    /// Exception: `false` closes the date; `true` (the default when times are given) opens
    /// `start_time`-`end_time` on it instead of its weekday's hours.
    pub available: Option<bool>,
}

impl poem_openapi::types::Example for TRuleIn {
    fn example() -> Self {
        TRuleIn {
            kind: TRuleType::Recurring,
            days_of_week: Some(vec![1, 2, 3, 4, 5]),
            start_time: Some("09:00".into()),
            end_time: Some("17:00".into()),
            timezone: Some("America/New_York".into()),
            date: None,
            available: None,
        }
    }
}

/// An availability rule: a view of the calendar's working hours (recurring) or date overrides
/// (exception).
#[derive(Object)]
#[oai(rename = "TalkoverAvailabilityRule", skip_serializing_if_is_none)]
pub struct TRule {
    /// Derived from the rule's content: the same on every read while the hours are unchanged.
    pub id: Uuid,
    /// `recurring` or `exception`.
    #[oai(rename = "type")]
    pub kind: TRuleType,
    /// Recurring: the days, 1 = Monday .. 7 = Sunday.
    pub days_of_week: Option<Vec<i32>>,
    /// Exception: the date.
    pub date: Option<String>,
    /// Exception: `false` when the date is closed.
    pub available: Option<bool>,
    /// Local start, `HH:MM` (absent on a closed date).
    pub start_time: Option<String>,
    /// Local end, `HH:MM` (absent on a closed date).
    pub end_time: Option<String>,
    /// The calendar's zone, in which the times are read.
    pub timezone: String,
}

impl From<Rule> for TRule {
    fn from(rule: Rule) -> Self {
        let timezone = rule.zone.name().to_string();
        let times =
            |r: Option<DayRange>| (r.map(|r| r.start.to_string()), r.map(|r| r.end.to_string()));
        match rule.kind {
            RuleKind::Recurring { days, range } => {
                let (start_time, end_time) = times(Some(range));
                TRule {
                    id: rule.id,
                    kind: TRuleType::Recurring,
                    days_of_week: Some(
                        days.iter().map(|d| d.number_from_monday() as i32).collect(),
                    ),
                    date: None,
                    available: None,
                    start_time,
                    end_time,
                    timezone,
                }
            }
            RuleKind::Exception { date, range } => {
                let (start_time, end_time) = times(range);
                TRule {
                    id: rule.id,
                    kind: TRuleType::Exception,
                    days_of_week: None,
                    date: Some(date.format("%Y-%m-%d").to_string()),
                    available: Some(range.is_some()),
                    start_time,
                    end_time,
                    timezone,
                }
            }
        }
    }
}

/// One rule.
#[derive(Object)]
#[oai(rename = "TalkoverAvailabilityRuleEnvelope")]
pub struct TRuleEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The rule.
    pub data: TRule,
}

/// A calendar's rules: recurring ones by start time, then exceptions by date.
#[derive(Object)]
#[oai(rename = "TalkoverAvailabilityRuleList")]
pub struct TRuleList {
    /// Always `true`.
    pub success: bool,
    /// The rules.
    pub data: Vec<TRule>,
}

/// A rule deleted.
#[derive(Object)]
#[oai(rename = "TalkoverDeleted")]
pub struct TDeleted {
    /// Always `true`.
    pub success: bool,
    /// What happened.
    pub message: String,
}

#[derive(ApiResponse)]
pub enum RuleList {
    /// The rules.
    #[oai(status = 200)]
    Ok(Json<TRuleList>),
}

#[derive(ApiResponse)]
pub enum CreatedRule {
    /// The rule was added to the calendar's hours; the answer is the rule as it now reads.
    #[oai(status = 201)]
    Created(Json<TRuleEnvelope>),
}

#[derive(ApiResponse)]
pub enum DeletedRule {
    /// The rule's hours were removed from the calendar.
    #[oai(status = 200)]
    Ok(Json<TDeleted>),
}

fn render_created(rule: &Rule) -> (u16, String) {
    let body = TRuleEnvelope {
        success: true,
        data: rule.clone().into(),
    };
    (201, body.to_json_string())
}

/// The body as a rule to add, or every bad field.
fn new_rule(body: TRuleIn) -> Result<NewRule, Invalid> {
    let mut v = Violations::default();
    let range = |v: &mut Violations| -> Option<DayRange> {
        let (Some(start), Some(end)) = (body.start_time.as_deref(), body.end_time.as_deref())
        else {
            if body.start_time.is_none() {
                v.add("start_time", "is required");
            }
            if body.end_time.is_none() {
                v.add("end_time", "is required");
            }
            return None;
        };
        match DayRange::parse_at(start, end, "") {
            Ok(r) => Some(r),
            Err((field, message)) => {
                let field = if field == ".start" {
                    "start_time"
                } else {
                    "end_time"
                };
                v.add(field, message);
                None
            }
        }
    };
    match body.kind {
        TRuleType::Recurring => {
            let mut days = Vec::new();
            match body.days_of_week.as_deref() {
                None | Some([]) => v.add("days_of_week", "is required: at least one day, 1-7"),
                Some(numbers) => {
                    for (i, n) in numbers.iter().enumerate() {
                        match u8::try_from(*n).ok().and_then(weekday_of) {
                            Some(day) if !days.contains(&day) => days.push(day),
                            Some(_) => {
                                v.add(&format!("days_of_week[{i}]"), format!("{n} is given twice"))
                            }
                            None => v.add(
                                &format!("days_of_week[{i}]"),
                                format!("{n} is not a day; use 1 (Monday) to 7 (Sunday)"),
                            ),
                        }
                    }
                }
            }
            days.sort_by_key(chrono::Weekday::number_from_monday);
            let range = range(&mut v);
            let zone = body
                .timezone
                .as_deref()
                .and_then(|z| v.check("timezone", Zone::parse(z)));
            for (given, field) in [
                (body.date.is_some(), "date"),
                (body.available.is_some(), "available"),
            ] {
                if given {
                    v.add(field, "is only for exception rules");
                }
            }
            v.finish(|| {
                Some(NewRule {
                    kind: RuleKind::Recurring {
                        days,
                        range: range?,
                    },
                    zone,
                })
            })
        }
        TRuleType::Exception => {
            let date = match body.date.as_deref() {
                None => {
                    v.add("date", "is required for an exception rule");
                    None
                }
                Some(d) => v.check("date", parse_date(d)),
            };
            if body.days_of_week.is_some() {
                v.add("days_of_week", "is only for recurring rules");
            }
            if body.timezone.is_some() {
                v.add(
                    "timezone",
                    "is only for recurring rules: an exception's date and times are read in the calendar's zone",
                );
            }
            let has_times = body.start_time.is_some() || body.end_time.is_some();
            let range = match body.available.unwrap_or(has_times) {
                true => Some(range(&mut v)),
                false => {
                    if has_times {
                        v.add(
                            "available",
                            "false closes the whole date: send no start_time/end_time with it",
                        );
                    }
                    None
                }
            };
            v.finish(|| {
                Some(NewRule {
                    kind: RuleKind::Exception {
                        date: date?,
                        range: match range {
                            Some(r) => Some(r?),
                            None => None,
                        },
                    },
                    zone: None,
                })
            })
        }
    }
}

pub struct TalkoverAvailabilityApi;

#[OpenApi(prefix_path = "/api/v1/calendars", tag = "TalkoverTags::Talkover")]
impl TalkoverAvailabilityApi {
    /// Free slots (Talkover)
    ///
    /// The slots of `duration_minutes` (default 30, 5 to 1440) that can be booked on the
    /// calendar in `[from, to)` (at most 62 days), from the same slot engine as the native
    /// availability and every booking: the calendar's working hours and date overrides (its
    /// availability rules), no buffers, not in the past, not over a confirmed or tentative
    /// event; slots start every `duration_minutes` from the start of each working range. At
    /// most 1,000 slots: past that, `has_more` is `true` and `next_from` is the `from` that
    /// continues exactly where the answer stopped. Scope: `calendar:read`.
    #[oai(
        path = "/:calendar_id/availability",
        method = "get",
        operation_id = "talkoverGetAvailability"
    )]
    async fn availability(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
        /// Window start (inclusive), ISO 8601 with an offset.
        #[oai(validator(max_length = 64))]
        from: Query<String>,
        /// Window end (exclusive), ISO 8601 with an offset; at most 62 days after `from`.
        #[oai(validator(max_length = 64))]
        to: Query<String>,
        /// The length of a slot in minutes.
        #[oai(
            default = "default_duration",
            validator(minimum(value = "5"), maximum(value = "1440"))
        )]
        duration_minutes: Query<i64>,
    ) -> Result<AvailabilityAnswer, TFail<{ AUTHENTICATED | PARAMETERS | NOT_FOUND }>> {
        let mut v = Violations::default();
        let from = v.check("from", parse_instant(&from.0, None));
        let to = v.check("to", parse_instant(&to.0, None));
        let (from, to) = v.finish(|| Some((from?, to?)))?;
        let found = state
            .service
            .calendar_availability(
                auth.0.org_id,
                CalendarId(calendar_id.0),
                Duration::minutes(duration_minutes.0),
                from,
                to,
            )
            .await?;
        Ok(AvailabilityAnswer::Ok(Json(TAvailability {
            success: true,
            data: found
                .slots
                .into_iter()
                .map(|s| TSlot {
                    start_at: s.start.into(),
                    end_at: s.end.into(),
                })
                .collect(),
            has_more: found.next_from.is_some(),
            next_from: found.next_from.map(Timestamp),
        })))
    }

    /// List availability rules (Talkover)
    ///
    /// The calendar's working hours and date overrides as rules: weekly ranges with the same
    /// start and end are one `recurring` rule with their days; each range of a date override is
    /// an `exception` rule with `available: true`, and a date the override closes one with
    /// `available: false`. A calendar without working hours is open around the clock and has
    /// no recurring rules. Hours set through the native API show here, and the other way
    /// round. Scope: `calendar:read`.
    #[oai(
        path = "/:calendar_id/availability-rules",
        method = "get",
        operation_id = "talkoverListAvailabilityRules"
    )]
    async fn list_rules(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
    ) -> Result<RuleList, TFail<{ AUTHENTICATED | PARAMETERS | NOT_FOUND }>> {
        let rules = state
            .service
            .availability_rules(auth.0.org_id, CalendarId(calendar_id.0))
            .await?;
        Ok(RuleList::Ok(Json(TRuleList {
            success: true,
            data: rules.into_iter().map(Into::into).collect(),
        })))
    }

    /// Add an availability rule (Talkover)
    ///
    /// Adds to the calendar's working hours (`recurring`: `days_of_week` 1 = Monday .. 7 =
    /// Sunday, `start_time`/`end_time` `HH:MM`, `end_time` may be `24:00`) or date overrides
    /// (`exception`: `date`, and `available: false` to close it or `start_time`/`end_time` to
    /// open those hours instead of the weekday's). Native availability, bookings and the native
    /// calendar's `workingHours`/`dateOverrides` change with it. Times are read in the
    /// calendar's zone: a recurring rule with another `timezone` is refused
    /// (`VALIDATION_ERROR` on `timezone`), never converted. A range overlapping hours the day
    /// already has is refused (`VALIDATION_ERROR` on `start_time`), as the native API refuses
    /// overlapping working hours; so is closing a date that has open exceptions, or the other
    /// way round (on `date`). The first recurring rule of a calendar open around the clock
    /// limits it to that rule's hours. Rules with the same hours are one rule: the answer is
    /// the rule as it now reads (its days may include days added before), with the id derived
    /// from that content. Scope: `calendar:write`.
    #[oai(
        path = "/:calendar_id/availability-rules",
        method = "post",
        operation_id = "talkoverCreateAvailabilityRule"
    )]
    async fn create_rule(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: JsonBody<TRuleIn>,
    ) -> Result<CreatedRule, TFail<{ CREATE | NOT_FOUND | PARAMETERS }>> {
        let new = new_rule(body.0)?;
        let rule = state
            .service
            .add_availability_rule(
                auth.0.org_id,
                CalendarId(calendar_id.0),
                new,
                &render_created,
            )
            .await?;
        Ok(CreatedRule::Created(Json(TRuleEnvelope {
            success: true,
            data: rule.into(),
        })))
    }

    /// Delete an availability rule (Talkover)
    ///
    /// Removes the rule's hours from the calendar: a recurring rule's weekly ranges (a calendar
    /// left with none is open only on exception dates, not around the clock), an exception's
    /// range (a date left with no range goes back to its weekday's hours) or a closed date.
    /// A rule id from a read before the hours changed may no longer exist: `NOT_FOUND`.
    /// Scope: `calendar:write`.
    #[oai(
        path = "/:calendar_id/availability-rules/:rule_id",
        method = "delete",
        operation_id = "talkoverDeleteAvailabilityRule"
    )]
    async fn delete_rule(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
        /// The rule.
        rule_id: Path<Uuid>,
    ) -> Result<DeletedRule, TFail<{ AUTHENTICATED | PARAMETERS | NOT_FOUND }>> {
        state
            .service
            .delete_availability_rule(auth.0.org_id, CalendarId(calendar_id.0), rule_id.0)
            .await?;
        Ok(DeletedRule::Ok(Json(TDeleted {
            success: true,
            message: "Availability rule deleted".into(),
        })))
    }
}

fn default_duration() -> i64 {
    30
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(kind: TRuleType) -> TRuleIn {
        TRuleIn {
            kind,
            days_of_week: None,
            start_time: None,
            end_time: None,
            timezone: None,
            date: None,
            available: None,
        }
    }

    fn fields(err: Invalid) -> Vec<String> {
        err.0.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_recurring_rule_needs_days_and_times_and_names_each_bad_field() {
        let err = new_rule(body(TRuleType::Recurring)).unwrap_err();
        assert_eq!(fields(err), ["days_of_week", "start_time", "end_time"]);
        let mut b = body(TRuleType::Recurring);
        b.days_of_week = Some(vec![1, 8, 1]);
        b.start_time = Some("17:00".into());
        b.end_time = Some("09:00".into());
        b.timezone = Some("Mars/Olympus".into());
        let err = new_rule(b).unwrap_err();
        assert_eq!(
            fields(err),
            ["days_of_week[1]", "days_of_week[2]", "end_time", "timezone"]
        );
    }

    #[test]
    fn an_exception_closes_by_default_and_opens_with_times() {
        let mut b = body(TRuleType::Exception);
        b.date = Some("2027-12-24".into());
        assert!(matches!(
            new_rule(b).unwrap().kind,
            RuleKind::Exception { range: None, .. }
        ));
        let mut b = body(TRuleType::Exception);
        b.date = Some("2027-12-24".into());
        b.start_time = Some("10:00".into());
        b.end_time = Some("24:00".into());
        assert!(matches!(
            new_rule(b).unwrap().kind,
            RuleKind::Exception { range: Some(_), .. }
        ));
        let mut b = body(TRuleType::Exception);
        b.date = Some("2027-12-24".into());
        b.available = Some(true);
        assert_eq!(fields(new_rule(b).unwrap_err()), ["start_time", "end_time"]);
        let mut b = body(TRuleType::Exception);
        b.date = Some("24/12/2027".into());
        b.available = Some(false);
        b.start_time = Some("10:00".into());
        assert_eq!(fields(new_rule(b).unwrap_err()), ["date", "available"]);
    }
}
