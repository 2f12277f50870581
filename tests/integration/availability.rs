//! Availability: working hours and date overrides on calendars, slot interval and maximum advance
//! on event types, `GET /v1/calendar/availability` (slots, zones, DST, buffers and every empty
//! reason), the same rules on every write (409 `slot_unavailable` with `details.reason` and
//! `details.nextSlots`, `force`), and the customer phone and email lookups on the event list.
//!
//! Fixed dates are in 2027, after "now"; times relative to now are computed from the real clock.
//! The Rome office works Monday to Friday 09:00-17:00; 2027-01-13 is a Wednesday (+01:00),
//! 2027-06-16 a Wednesday in summer time (+02:00), and Rome springs forward on 2027-03-28.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        // working hours and overrides on calendars
        a_calendar_with_working_hours_and_date_overrides_echoes_them_on_create_and_get,
        a_calendar_without_hours_has_null_working_hours_and_no_overrides,
        patch_calendar_replaces_hours_and_overrides_and_null_reopens_around_the_clock,
        calendar_hours_that_do_not_parse_are_400_naming_the_field,
        a_calendar_override_on_a_date_that_does_not_exist_is_400_naming_it,
        // event type rules
        event_type_slot_interval_and_max_advance_round_trip_and_patch_null_clears_them,
        event_type_slot_interval_or_max_advance_out_of_range_is_400_naming_it,
        // the availability endpoint
        availability_lists_hourly_slots_from_nine_to_four_local_on_a_weekday,
        availability_in_another_timezone_changes_only_local_start_time,
        availability_reads_local_date_from_and_date_to_in_the_timezone_parameter,
        availability_with_date_to_not_after_date_from_or_over_62_days_is_400_naming_date_to,
        availability_without_calendar_id_is_the_event_types_own_calendars_or_400_naming_it,
        availability_of_an_unknown_or_another_organizations_calendar_is_404,
        availability_with_the_event_type_of_another_calendar_is_400_naming_event_type_id,
        availability_on_a_weekend_is_empty_with_reason_outside_working_hours,
        availability_on_a_date_closed_by_an_override_is_empty_with_reason_closed_override,
        availability_in_the_past_is_empty_with_reason_before_minimum_notice,
        availability_beyond_max_advance_days_is_empty_with_reason_beyond_max_advance,
        availability_of_a_fully_booked_day_is_empty_with_reason_fully_booked,
        working_hours_stay_at_nine_local_across_the_rome_spring_forward,
        a_buffer_after_removes_the_slot_right_after_a_booking,
        a_slot_interval_of_30_minutes_offers_hour_long_slots_every_half_hour,
        // listed slots and bookings
        a_listed_slot_can_be_booked_and_is_then_no_longer_listed,
        a_tentative_booking_removes_its_slot_and_cancelling_puts_it_back,
        // the rules on writes
        booking_at_six_pm_is_409_outside_working_hours_offering_the_next_morning,
        booking_on_a_date_closed_by_an_override_is_409_closed_override,
        booking_in_the_past_is_409_before_minimum_notice,
        booking_inside_the_minimum_notice_is_409_before_minimum_notice,
        booking_beyond_max_advance_days_is_409_beyond_max_advance,
        booking_over_another_booking_is_409_conflict_naming_it_with_next_slots,
        force_books_outside_hours_but_never_over_another_booking,
        patch_moving_an_event_outside_hours_is_409_and_with_force_is_200,
        a_booking_off_the_slot_grid_but_inside_hours_is_201,
        // customer lookup
        events_with_a_customer_phone_are_found_by_every_spelling_of_it,
        events_are_found_by_customer_email_whatever_the_case_of_its_domain,
        an_invalid_customer_phone_or_email_filter_is_400_naming_it,
        a_customer_lookup_never_returns_another_organizations_events,
    ]
}

const AVAILABILITY: &str = "/v1/calendar/availability";
const CALENDARS: &str = "/v1/calendar/calendars";
const EVENT_TYPES: &str = "/v1/calendar/event-types";
const EVENTS: &str = "/v1/calendar/events";

/// Monday to Friday, 09:00-17:00.
fn weekdays_nine_to_five() -> Value {
    let days = ["monday", "tuesday", "wednesday", "thursday", "friday"];
    Value::Array(
        days.iter()
            .map(|d| json!({"day": d, "start": "09:00", "end": "17:00"}))
            .collect(),
    )
}

/// A Europe/Rome calendar working Monday to Friday 09:00-17:00, with `extra` fields set on it.
async fn rome_office(app: &TestApp, extra: Value) -> String {
    let body = with(
        json!({"name": "Studio Rossi", "timezone": "Europe/Rome", "workingHours": weekdays_nine_to_five()}),
        extra,
    );
    id_of(&app.create_calendar(&app.key, Some(body)).await)
}

/// A 60-minute event type on `calendar_id`, with `extra` fields set on it.
async fn hour_type(app: &TestApp, calendar_id: &str, extra: Value) -> String {
    let body = with(
        json!({"calendarId": calendar_id, "name": "Consulenza", "durationMinutes": 60}),
        extra,
    );
    id_of(&app.create_event_type_with(&app.key, body).await)
}

/// The Rome office and a plain 60-minute event type on it.
async fn rome_office_hourly(app: &TestApp) -> (String, String) {
    let calendar_id = rome_office(app, json!({})).await;
    let event_type_id = hour_type(app, &calendar_id, json!({})).await;
    (calendar_id, event_type_id)
}

/// A calendar open around the clock (no working hours) and a 60-minute event type with `extra`.
async fn open_calendar_hourly(app: &TestApp, extra: Value) -> (String, String) {
    let calendar_id = id_of(&app.create_calendar(&app.key, None).await);
    let event_type_id = hour_type(app, &calendar_id, extra).await;
    (calendar_id, event_type_id)
}

/// GET /v1/calendar/availability for `[from, to)` plus `extra` parameters.
async fn get_availability(
    app: &TestApp,
    calendar_id: &str,
    event_type_id: &str,
    from: &str,
    to: &str,
    extra: &[(&str, &str)],
) -> Resp {
    let mut query = vec![
        ("calendarId", calendar_id),
        ("eventTypeId", event_type_id),
        ("dateFrom", from),
        ("dateTo", to),
    ];
    query.extend_from_slice(extra);
    app.get_query(AVAILABILITY, &query).await
}

/// The availability `data` of `[from, to)`, checked for shape: `{timezone, slots, reason}`, each
/// slot `{startTime, endTime, localStartTime}` in UTC seconds, sorted, and `reason` null exactly
/// when there are slots.
async fn availability(
    app: &TestApp,
    calendar_id: &str,
    event_type_id: &str,
    from: &str,
    to: &str,
    extra: &[(&str, &str)],
) -> Value {
    let resp = get_availability(app, calendar_id, event_type_id, from, to, extra).await;
    let data = assert_ok(&resp, 200);
    let mut keys: Vec<&str> = data
        .as_object()
        .unwrap_or_else(|| panic!("availability data is not an object: {}", resp.describe()))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["calendarTimezone", "reason", "slots", "timezone"],
        "{}",
        resp.describe()
    );
    assert!(
        data["calendarTimezone"]
            .as_str()
            .is_some_and(|z| !z.is_empty()),
        "calendarTimezone names the calendar's zone: {}",
        resp.describe()
    );
    let slots = data["slots"]
        .as_array()
        .unwrap_or_else(|| panic!("slots is not an array: {}", resp.describe()));
    for slot in slots {
        assert_slot_shape(slot);
    }
    let sorted = starts(slots).windows(2).all(|w| w[0] < w[1]);
    assert!(sorted, "slots are not sorted by start: {}", resp.describe());
    assert_eq!(
        data["reason"].is_null(),
        !slots.is_empty(),
        "reason must be null exactly when there are slots: {}",
        resp.describe()
    );
    data
}

/// The slots of an availability answer.
fn slots(data: &Value) -> Vec<Value> {
    data["slots"].as_array().cloned().unwrap_or_default()
}

/// An empty availability answer with this reason.
#[track_caller]
fn assert_empty_because(data: &Value, reason: &str) {
    assert_eq!(
        data["slots"],
        json!([]),
        "expected no slots ({reason}): {data}"
    );
    assert_eq!(data["reason"], json!(reason), "reason: {data}");
}

/// `{startTime, endTime, localStartTime}` with UTC seconds and an RFC 3339 local time.
#[track_caller]
fn assert_slot_shape(slot: &Value) {
    let mut keys: Vec<&str> = slot
        .as_object()
        .unwrap_or_else(|| panic!("a slot is not an object: {slot}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["endTime", "localStartTime", "startTime"], "{slot}");
    assert_utc_seconds(&slot["startTime"], "slot startTime");
    assert_utc_seconds(&slot["endTime"], "slot endTime");
    let local = slot["localStartTime"].as_str().unwrap_or_default();
    let parsed = chrono::DateTime::parse_from_rfc3339(local)
        .unwrap_or_else(|e| panic!("localStartTime {local:?} is not RFC 3339: {e}"));
    assert_eq!(
        parsed
            .with_timezone(&Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        slot["startTime"].as_str().unwrap_or_default(),
        "localStartTime must be the same instant as startTime: {slot}"
    );
}

/// The startTime of each slot.
fn starts(slots: &[Value]) -> Vec<String> {
    slots
        .iter()
        .map(|s| s["startTime"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The localStartTime of each slot.
fn local_starts(slots: &[Value]) -> Vec<String> {
    slots
        .iter()
        .map(|s| s["localStartTime"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Hourly slots `first`, `first + 1h`, ... (`n` of them), as (startTime, endTime) in UTC.
fn hourly(first: &str, n: i64) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let start = plus_minutes(first, 60 * i);
            let end = plus_minutes(&start, 60);
            (start, end)
        })
        .collect()
}

fn start_end_pairs(slots: &[Value]) -> Vec<(String, String)> {
    slots
        .iter()
        .map(|s| {
            (
                s["startTime"].as_str().unwrap_or_default().to_owned(),
                s["endTime"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Now plus `minutes`, whole minutes, UTC with Z.
fn utc_in_minutes(minutes: i64) -> String {
    (Utc::now() + Duration::minutes(minutes))
        .format("%Y-%m-%dT%H:%M:00Z")
        .to_string()
}

fn instant(t: &str) -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("bad time {t:?}: {e}"))
        .with_timezone(&Utc)
}

/// 409 `slot_unavailable` with `details.reason` = `reason` and a `details.nextSlots` array of
/// well-formed slots. Returns `details`.
#[track_caller]
fn assert_refused(resp: &Resp, reason: &str) -> Value {
    let error = assert_error(resp, 409, "slot_unavailable");
    let details = &error["details"];
    assert_eq!(
        details["reason"],
        json!(reason),
        "details.reason: {}",
        resp.describe()
    );
    let next = details["nextSlots"]
        .as_array()
        .unwrap_or_else(|| panic!("details.nextSlots is not an array: {}", resp.describe()));
    assert!(next.len() <= 3, "at most 3 nextSlots: {}", resp.describe());
    for slot in next {
        assert_slot_shape(slot);
    }
    details.clone()
}

fn next_slots(details: &Value) -> Vec<Value> {
    details["nextSlots"].as_array().cloned().unwrap_or_default()
}

/// Every slot starts at or after `not_before`.
#[track_caller]
fn assert_all_at_or_after(slots: &[Value], not_before: chrono::DateTime<Utc>, what: &str) {
    for slot in slots {
        let start = instant(slot["startTime"].as_str().unwrap_or_default());
        assert!(
            start >= not_before,
            "{what}: slot {slot} starts before {not_before}"
        );
    }
}

// ----- working hours and overrides on calendars -----

async fn a_calendar_with_working_hours_and_date_overrides_echoes_them_on_create_and_get(
    app: TestApp,
) {
    let hours = json!([
        {"day": "monday", "start": "09:00", "end": "13:00"},
        {"day": "monday", "start": "14:00", "end": "18:00"},
        {"day": "friday", "start": "22:00", "end": "24:00"},
        {"day": "saturday", "start": "00:00", "end": "06:00"}
    ]);
    let overrides = json!([
        {"date": "2027-12-24", "ranges": []},
        {"date": "2027-12-27", "ranges": [{"start": "10:00", "end": "12:00"}, {"start": "15:00", "end": "16:30"}]}
    ]);
    let created = app
        .create_calendar(
            &app.key,
            Some(json!({
                "name": "Studio Rossi",
                "timezone": "Europe/Rome",
                "workingHours": hours,
                "dateOverrides": overrides
            })),
        )
        .await;
    assert_has_keys(&created, &CALENDAR_FIELDS, "calendar");
    assert_eq!(created["workingHours"], hours);
    assert_eq!(created["dateOverrides"], overrides);
    let fetched = assert_ok(
        &app.get(&format!("{CALENDARS}/{}", id_of(&created))).await,
        200,
    );
    assert_eq!(fetched, created, "GET should return what POST returned");
}

async fn a_calendar_without_hours_has_null_working_hours_and_no_overrides(app: TestApp) {
    let created = app.create_calendar(&app.key, None).await;
    assert_eq!(created["workingHours"], Value::Null, "{created}");
    assert_eq!(created["dateOverrides"], json!([]), "{created}");
    let explicit = app
        .create_calendar(
            &app.key,
            Some(json!({"name": "Sala 2", "workingHours": null, "dateOverrides": null})),
        )
        .await;
    assert_eq!(explicit["workingHours"], Value::Null, "{explicit}");
    assert_eq!(explicit["dateOverrides"], json!([]), "{explicit}");
}

async fn patch_calendar_replaces_hours_and_overrides_and_null_reopens_around_the_clock(
    app: TestApp,
) {
    let calendar_id = rome_office(
        &app,
        json!({"dateOverrides": [{"date": "2027-12-24", "ranges": []}]}),
    )
    .await;
    let event_type_id = hour_type(&app, &calendar_id, json!({})).await;
    let path = format!("{CALENDARS}/{calendar_id}");

    let hours = json!([{"day": "tuesday", "start": "08:30", "end": "12:30"}]);
    let overrides = json!([{"date": "2027-12-31", "ranges": [{"start": "09:00", "end": "11:00"}]}]);
    let patched = assert_ok(
        &app.patch(
            &path,
            &json!({"workingHours": hours, "dateOverrides": overrides}),
        )
        .await,
        200,
    );
    assert_eq!(patched["workingHours"], hours, "replaced, not merged");
    assert_eq!(patched["dateOverrides"], overrides, "replaced, not merged");
    assert_eq!(patched["name"], json!("Studio Rossi"));

    // A patch of the name alone keeps the hours.
    let renamed = assert_ok(
        &app.patch(&path, &json!({"name": "Studio Verdi"})).await,
        200,
    );
    assert_eq!(renamed["workingHours"], hours);
    assert_eq!(renamed["dateOverrides"], overrides);

    let reset = assert_ok(
        &app.patch(&path, &json!({"workingHours": null, "dateOverrides": []}))
            .await,
        200,
    );
    assert_eq!(reset["workingHours"], Value::Null, "{reset}");
    assert_eq!(reset["dateOverrides"], json!([]), "{reset}");

    // Open around the clock: a Saturday has 24 hourly slots.
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-01-16T00:00:00+01:00",
        "2027-01-17T00:00:00+01:00",
        &[],
    )
    .await;
    assert_eq!(slots(&data).len(), 24, "{data}");
    assert_eq!(slots(&data)[0]["startTime"], json!("2027-01-15T23:00:00Z"));
}

async fn calendar_hours_that_do_not_parse_are_400_naming_the_field(app: TestApp) {
    let post = |extra: Value| {
        let app = app.clone();
        async move {
            app.post(
                CALENDARS,
                &with(
                    json!({"name": "Studio Rossi", "timezone": "Europe/Rome"}),
                    extra,
                ),
            )
            .await
        }
    };
    let range =
        |day: &str, start: &str, end: &str| json!([{"day": day, "start": start, "end": end}]);

    let error = assert_error(
        &post(json!({"workingHours": range("funday", "09:00", "17:00")})).await,
        400,
        "validation_error",
    );
    let named = field_names(&error);
    assert!(
        named.iter().any(|f| f.contains("workingHours")),
        "a day 'funday' should name workingHours: {error}"
    );

    for (hours, field) in [
        (range("monday", "9:00", "17:00"), "workingHours[0].start"),
        (range("monday", "17:00", "09:00"), "workingHours[0].end"),
        (range("monday", "09:00", "09:00"), "workingHours[0].end"),
        (range("monday", "09:00", "24:30"), "workingHours[0].end"),
    ] {
        let resp = post(json!({"workingHours": hours})).await;
        assert_validation(&resp, &[field]);
    }

    let duplicate = json!([
        {"date": "2027-12-24", "ranges": []},
        {"date": "2027-12-24", "ranges": [{"start": "09:00", "end": "12:00"}]}
    ]);
    assert_validation(
        &post(json!({"dateOverrides": duplicate})).await,
        &["dateOverrides[1].date"],
    );
    assert_validation(
        &post(json!({"dateOverrides": [{"date": "2027-12-24", "ranges": [{"start": "12:00", "end": "10:00"}]}]}))
            .await,
        &["dateOverrides[0].ranges[0].end"],
    );

    // PATCH checks the same way and changes nothing.
    let calendar_id = rome_office(&app, json!({})).await;
    let path = format!("{CALENDARS}/{calendar_id}");
    assert_validation(
        &app.patch(
            &path,
            &json!({"workingHours": range("monday", "09:00", "24:30")}),
        )
        .await,
        &["workingHours[0].end"],
    );
    let unchanged = assert_ok(&app.get(&path).await, 200);
    assert_eq!(unchanged["workingHours"], weekdays_nine_to_five());
}

async fn a_calendar_override_on_a_date_that_does_not_exist_is_400_naming_it(app: TestApp) {
    for date in ["2027-02-30", "2027-13-01", "24/12/2027"] {
        let resp = app
            .post(
                CALENDARS,
                &json!({
                    "name": "Studio Rossi",
                    "timezone": "Europe/Rome",
                    "dateOverrides": [{"date": date, "ranges": []}]
                }),
            )
            .await;
        assert_validation(&resp, &["dateOverrides[0].date"]);
    }
}

// ----- event type rules -----

async fn event_type_slot_interval_and_max_advance_round_trip_and_patch_null_clears_them(
    app: TestApp,
) {
    let calendar_id = id_of(&app.create_calendar(&app.key, None).await);
    let plain = app
        .create_event_type(&app.key, Some(&calendar_id), 30)
        .await;
    assert_eq!(plain["slotIntervalMinutes"], Value::Null, "{plain}");
    assert_eq!(plain["maxAdvanceDays"], Value::Null, "{plain}");
    assert_eq!(plain["minimumNoticeMinutes"], Value::Null, "{plain}");

    let created = app
        .create_event_type_with(
            &app.key,
            json!({
                "calendarId": calendar_id,
                "name": "Consulenza",
                "durationMinutes": 60,
                "slotIntervalMinutes": 15,
                "maxAdvanceDays": 30,
                "minimumNoticeMinutes": 120
            }),
        )
        .await;
    assert_eq!(created["slotIntervalMinutes"], json!(15));
    assert_eq!(created["maxAdvanceDays"], json!(30));
    assert_eq!(created["minimumNoticeMinutes"], json!(120));
    let path = format!("{EVENT_TYPES}/{}", id_of(&created));
    assert_eq!(assert_ok(&app.get(&path).await, 200), created);

    let changed = assert_ok(
        &app.patch(
            &path,
            &json!({"slotIntervalMinutes": 20, "maxAdvanceDays": 90}),
        )
        .await,
        200,
    );
    assert_eq!(changed["slotIntervalMinutes"], json!(20));
    assert_eq!(changed["maxAdvanceDays"], json!(90));
    assert_eq!(changed["minimumNoticeMinutes"], json!(120), "absent stays");

    let cleared = assert_ok(
        &app.patch(
            &path,
            &json!({"slotIntervalMinutes": null, "maxAdvanceDays": null, "minimumNoticeMinutes": null}),
        )
        .await,
        200,
    );
    assert_eq!(cleared["slotIntervalMinutes"], Value::Null, "{cleared}");
    assert_eq!(cleared["maxAdvanceDays"], Value::Null, "{cleared}");
    assert_eq!(cleared["minimumNoticeMinutes"], Value::Null, "{cleared}");
    assert_eq!(assert_ok(&app.get(&path).await, 200), cleared);
}

async fn event_type_slot_interval_or_max_advance_out_of_range_is_400_naming_it(app: TestApp) {
    let calendar_id = id_of(&app.create_calendar(&app.key, None).await);
    let base = json!({"calendarId": calendar_id, "name": "Consulenza", "durationMinutes": 60});
    let path = format!(
        "{EVENT_TYPES}/{}",
        hour_type(&app, &calendar_id, json!({"slotIntervalMinutes": 30})).await
    );
    for (field, value) in [
        ("slotIntervalMinutes", json!(0)),
        ("slotIntervalMinutes", json!(-15)),
        ("slotIntervalMinutes", json!(1441)),
        ("maxAdvanceDays", json!(0)),
        ("maxAdvanceDays", json!(-1)),
        ("maxAdvanceDays", json!(3651)),
        ("minimumNoticeMinutes", json!(-1)),
    ] {
        let resp = app
            .post(EVENT_TYPES, &with(base.clone(), json!({ field: value })))
            .await;
        assert_validation(&resp, &[field]);
        let resp = app.patch(&path, &json!({ field: value })).await;
        assert_validation(&resp, &[field]);
    }
    let unchanged = assert_ok(&app.get(&path).await, 200);
    assert_eq!(unchanged["slotIntervalMinutes"], json!(30));
    assert_eq!(unchanged["maxAdvanceDays"], Value::Null);
}

// ----- the availability endpoint -----

async fn availability_lists_hourly_slots_from_nine_to_four_local_on_a_weekday(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;

    // Winter: +01:00.
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-01-13T00:00:00+01:00",
        "2027-01-14T00:00:00+01:00",
        &[],
    )
    .await;
    assert_eq!(
        data["timezone"],
        json!("Europe/Rome"),
        "the calendar's zone"
    );
    let winter = slots(&data);
    assert_eq!(
        start_end_pairs(&winter),
        hourly("2027-01-13T08:00:00Z", 8),
        "{data}"
    );
    let expected_local: Vec<String> = (9..17)
        .map(|h| format!("2027-01-13T{h:02}:00:00+01:00"))
        .collect();
    assert_eq!(local_starts(&winter), expected_local);

    // Summer: +02:00, the same local hours.
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-06-16T00:00:00+02:00",
        "2027-06-17T00:00:00+02:00",
        &[],
    )
    .await;
    let summer = slots(&data);
    assert_eq!(
        start_end_pairs(&summer),
        hourly("2027-06-16T07:00:00Z", 8),
        "{data}"
    );
    let expected_local: Vec<String> = (9..17)
        .map(|h| format!("2027-06-16T{h:02}:00:00+02:00"))
        .collect();
    assert_eq!(local_starts(&summer), expected_local);
}

async fn availability_in_another_timezone_changes_only_local_start_time(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    let (from, to) = ("2027-01-13T00:00:00+01:00", "2027-01-14T00:00:00+01:00");
    let rome = availability(&app, &calendar_id, &event_type_id, from, to, &[]).await;
    let new_york = availability(
        &app,
        &calendar_id,
        &event_type_id,
        from,
        to,
        &[("timezone", "America/New_York")],
    )
    .await;
    assert_eq!(new_york["timezone"], json!("America/New_York"));
    assert_eq!(
        start_end_pairs(&slots(&new_york)),
        start_end_pairs(&slots(&rome)),
        "the instants do not depend on the request's zone"
    );
    let expected_local: Vec<String> = (3..11)
        .map(|h| format!("2027-01-13T{h:02}:00:00-05:00"))
        .collect();
    assert_eq!(local_starts(&slots(&new_york)), expected_local);
}

async fn availability_reads_local_date_from_and_date_to_in_the_timezone_parameter(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    // 04:00-08:00 in New York is 09:00Z-13:00Z: the Rome slots of 10:00 to 13:00 local.
    // Read in Rome or as UTC, the same window would hold no slot at all.
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-01-13T04:00:00",
        "2027-01-13T08:00:00",
        &[("timezone", "America/New_York")],
    )
    .await;
    assert_eq!(
        start_end_pairs(&slots(&data)),
        hourly("2027-01-13T09:00:00Z", 4),
        "{data}"
    );
    assert_eq!(
        local_starts(&slots(&data)),
        [
            "2027-01-13T04:00:00-05:00",
            "2027-01-13T05:00:00-05:00",
            "2027-01-13T06:00:00-05:00",
            "2027-01-13T07:00:00-05:00"
        ]
    );
}

async fn availability_with_date_to_not_after_date_from_or_over_62_days_is_400_naming_date_to(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    for (from, to) in [
        ("2027-01-13T00:00:00Z", "2027-01-13T00:00:00Z"),
        ("2027-01-14T00:00:00Z", "2027-01-13T00:00:00Z"),
        ("2027-01-01T00:00:00Z", "2027-03-04T00:00:01Z"),
        ("2027-01-01T00:00:00Z", "2027-06-01T00:00:00Z"),
    ] {
        let resp = get_availability(&app, &calendar_id, &event_type_id, from, to, &[]).await;
        assert_validation(&resp, &["dateTo"]);
    }
    // Exactly 62 days is allowed.
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-01-01T00:00:00Z",
        "2027-03-04T00:00:00Z",
        &[],
    )
    .await;
    assert!(!slots(&data).is_empty(), "{data}");
}

async fn availability_without_calendar_id_is_the_event_types_own_calendars_or_400_naming_it(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    let (from, to) = ("2027-01-13T00:00:00Z", "2027-01-14T00:00:00Z");
    let without = app
        .get_query(
            AVAILABILITY,
            &[
                ("eventTypeId", &event_type_id),
                ("dateFrom", from),
                ("dateTo", to),
            ],
        )
        .await;
    let without = assert_ok(&without, 200);
    let named = get_availability(&app, &calendar_id, &event_type_id, from, to, &[]).await;
    let named = assert_ok(&named, 200);
    assert!(!named["slots"].as_array().unwrap().is_empty(), "{named}");
    assert_eq!(
        without["slots"], named["slots"],
        "an event type bound to one calendar offers that calendar's slots without calendarId"
    );
    // An event type bookable on any calendar cannot guess which one.
    let any = app
        .create_event_type_with(
            &app.key,
            json!({"name": "Consulenza", "durationMinutes": 60}),
        )
        .await;
    let resp = app
        .get_query(
            AVAILABILITY,
            &[
                ("eventTypeId", &id_of(&any)),
                ("dateFrom", from),
                ("dateTo", to),
            ],
        )
        .await;
    assert_validation(&resp, &["calendarId"]);
}

async fn availability_of_an_unknown_or_another_organizations_calendar_is_404(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    let (from, to) = ("2027-01-13T00:00:00Z", "2027-01-14T00:00:00Z");
    let resp = get_availability(&app, &unknown_id(), &event_type_id, from, to, &[]).await;
    assert_error(&resp, 404, "not_found");

    let (_, other_key) = app.new_org("Studio Verdi").await;
    let theirs = id_of(&app.create_calendar(&other_key, None).await);
    let their_type = id_of(&app.create_event_type(&other_key, Some(&theirs), 60).await);
    let resp = get_availability(&app, &theirs, &event_type_id, from, to, &[]).await;
    assert_error(&resp, 404, "not_found");
    let resp = get_availability(&app, &calendar_id, &their_type, from, to, &[]).await;
    assert_error(&resp, 404, "not_found");
}

async fn availability_with_the_event_type_of_another_calendar_is_400_naming_event_type_id(
    app: TestApp,
) {
    let calendar_id = rome_office(&app, json!({})).await;
    let other_calendar = rome_office(&app, json!({"name": "Sala 2"})).await;
    let other_type = hour_type(&app, &other_calendar, json!({})).await;
    let resp = get_availability(
        &app,
        &calendar_id,
        &other_type,
        "2027-01-13T00:00:00Z",
        "2027-01-14T00:00:00Z",
        &[],
    )
    .await;
    assert_validation(&resp, &["eventTypeId"]);
}

async fn availability_on_a_weekend_is_empty_with_reason_outside_working_hours(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-01-16T00:00:00+01:00",
        "2027-01-18T00:00:00+01:00",
        &[],
    )
    .await;
    assert_empty_because(&data, "outside_working_hours");
}

async fn availability_on_a_date_closed_by_an_override_is_empty_with_reason_closed_override(
    app: TestApp,
) {
    let calendar_id = rome_office(
        &app,
        json!({"dateOverrides": [{"date": "2027-01-13", "ranges": []}]}),
    )
    .await;
    let event_type_id = hour_type(&app, &calendar_id, json!({})).await;
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-01-13T00:00:00+01:00",
        "2027-01-14T00:00:00+01:00",
        &[],
    )
    .await;
    assert_empty_because(&data, "closed_override");
    // The next day is open as usual.
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-01-14T00:00:00+01:00",
        "2027-01-15T00:00:00+01:00",
        &[],
    )
    .await;
    assert_eq!(slots(&data).len(), 8, "{data}");
}

async fn availability_in_the_past_is_empty_with_reason_before_minimum_notice(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2026-01-05T00:00:00Z",
        "2026-01-10T00:00:00Z",
        &[],
    )
    .await;
    assert_empty_because(&data, "before_minimum_notice");
}

async fn availability_beyond_max_advance_days_is_empty_with_reason_beyond_max_advance(
    app: TestApp,
) {
    let (calendar_id, event_type_id) =
        open_calendar_hourly(&app, json!({"maxAdvanceDays": 30})).await;
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        &utc_in_minutes(60 * 24 * 60),
        &utc_in_minutes(61 * 24 * 60),
        &[],
    )
    .await;
    assert_empty_because(&data, "beyond_max_advance");
    // Within the 30 days there are slots.
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        &utc_in_minutes(10 * 24 * 60),
        &utc_in_minutes(11 * 24 * 60),
        &[],
    )
    .await;
    assert!(!slots(&data).is_empty(), "{data}");
}

async fn availability_of_a_fully_booked_day_is_empty_with_reason_fully_booked(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    // One booking may be longer than the event type: 09:00-17:00 takes every slot of the day.
    app.create_event(
        &app.key,
        &calendar_id,
        &event_type_id,
        "2027-01-13T09:00:00+01:00",
        "2027-01-13T17:00:00+01:00",
    )
    .await;
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-01-13T00:00:00+01:00",
        "2027-01-14T00:00:00+01:00",
        &[],
    )
    .await;
    assert_empty_because(&data, "fully_booked");
}

async fn working_hours_stay_at_nine_local_across_the_rome_spring_forward(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    // Monday 2027-03-22 to Tuesday 2027-03-30 (exclusive); clocks go forward on Sunday the 28th.
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-03-22T00:00:00+01:00",
        "2027-03-30T00:00:00+02:00",
        &[],
    )
    .await;
    let all = slots(&data);
    assert_eq!(all.len(), 6 * 8, "six working days of eight slots: {data}");
    for local in local_starts(&all) {
        let hour: u32 = local[11..13].parse().unwrap_or(99);
        assert!(
            (9..17).contains(&hour),
            "{local} is outside 09:00-17:00 local"
        );
        let offset = &local[19..];
        let expected = if local.as_str() < "2027-03-28" {
            "+01:00"
        } else {
            "+02:00"
        };
        assert_eq!(offset, expected, "{local}");
    }
    let friday: Vec<Value> = all
        .iter()
        .filter(|s| {
            s["localStartTime"]
                .as_str()
                .unwrap_or("")
                .starts_with("2027-03-26")
        })
        .cloned()
        .collect();
    let monday: Vec<Value> = all
        .iter()
        .filter(|s| {
            s["localStartTime"]
                .as_str()
                .unwrap_or("")
                .starts_with("2027-03-29")
        })
        .cloned()
        .collect();
    assert_eq!(
        start_end_pairs(&friday),
        hourly("2027-03-26T08:00:00Z", 8),
        "Friday 09:00 local is 08:00Z"
    );
    assert_eq!(
        start_end_pairs(&monday),
        hourly("2027-03-29T07:00:00Z", 8),
        "Monday 09:00 local is 07:00Z"
    );
    assert_eq!(
        friday[0]["localStartTime"],
        json!("2027-03-26T09:00:00+01:00")
    );
    assert_eq!(
        monday[0]["localStartTime"],
        json!("2027-03-29T09:00:00+02:00")
    );
}

async fn a_buffer_after_removes_the_slot_right_after_a_booking(app: TestApp) {
    let calendar_id = rome_office(&app, json!({})).await;
    let event_type_id = hour_type(&app, &calendar_id, json!({"bufferAfterMinutes": 15})).await;
    // 09:00-10:00 local holds until 10:15: the 10:00 slot is gone, 11:00 is free.
    app.create_event(
        &app.key,
        &calendar_id,
        &event_type_id,
        "2027-01-13T08:00:00Z",
        "2027-01-13T09:00:00Z",
    )
    .await;
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-01-13T00:00:00+01:00",
        "2027-01-14T00:00:00+01:00",
        &[],
    )
    .await;
    assert_eq!(
        start_end_pairs(&slots(&data)),
        hourly("2027-01-13T10:00:00Z", 6),
        "slots from 11:00 to 16:00 local: {data}"
    );
}

async fn a_slot_interval_of_30_minutes_offers_hour_long_slots_every_half_hour(app: TestApp) {
    let calendar_id = rome_office(&app, json!({})).await;
    let event_type_id = hour_type(&app, &calendar_id, json!({"slotIntervalMinutes": 30})).await;
    let data = availability(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-01-13T00:00:00+01:00",
        "2027-01-14T00:00:00+01:00",
        &[],
    )
    .await;
    let expected: Vec<(String, String)> = (0..15)
        .map(|i| {
            let start = plus_minutes("2027-01-13T08:00:00Z", 30 * i);
            let end = plus_minutes(&start, 60);
            (start, end)
        })
        .collect();
    assert_eq!(
        start_end_pairs(&slots(&data)),
        expected,
        "09:00, 09:30, ... 16:00 local, each an hour long: {data}"
    );
}

// ----- listed slots and bookings -----

async fn a_listed_slot_can_be_booked_and_is_then_no_longer_listed(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    let (from, to) = ("2027-01-13T00:00:00+01:00", "2027-01-14T00:00:00+01:00");
    let before = slots(&availability(&app, &calendar_id, &event_type_id, from, to, &[]).await);
    assert_eq!(before.len(), 8);
    let chosen = before[2].clone();
    let booked = app
        .create_event_with(
            &app.key,
            with(
                event_body(
                    &calendar_id,
                    &event_type_id,
                    chosen["startTime"].as_str().unwrap_or_default(),
                    chosen["endTime"].as_str().unwrap_or_default(),
                ),
                json!({"timezone": "Europe/Rome"}),
            ),
        )
        .await;
    assert_eq!(booked["startTime"], chosen["startTime"]);
    assert_eq!(booked["endTime"], chosen["endTime"]);

    let after = slots(&availability(&app, &calendar_id, &event_type_id, from, to, &[]).await);
    let expected: Vec<Value> = before.iter().filter(|s| **s != chosen).cloned().collect();
    assert_eq!(after, expected, "only the booked slot disappears");
}

async fn a_tentative_booking_removes_its_slot_and_cancelling_puts_it_back(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    let (from, to) = ("2027-01-13T00:00:00+01:00", "2027-01-14T00:00:00+01:00");
    let before = slots(&availability(&app, &calendar_id, &event_type_id, from, to, &[]).await);
    let chosen = before[4].clone();
    let tentative = app
        .create_event_with(
            &app.key,
            with(
                event_body(
                    &calendar_id,
                    &event_type_id,
                    chosen["startTime"].as_str().unwrap_or_default(),
                    chosen["endTime"].as_str().unwrap_or_default(),
                ),
                json!({"status": "tentative"}),
            ),
        )
        .await;
    assert_eq!(tentative["status"], json!("tentative"));
    let during = slots(&availability(&app, &calendar_id, &event_type_id, from, to, &[]).await);
    assert!(
        !during.contains(&chosen),
        "a tentative booking holds its slot: {during:?}"
    );
    assert_eq!(during.len(), 7);

    let resp = app
        .post(
            &format!("{EVENTS}/{}/cancel", id_of(&tentative)),
            &json!({}),
        )
        .await;
    assert_eq!(assert_ok(&resp, 200)["status"], json!("cancelled"));
    let after = slots(&availability(&app, &calendar_id, &event_type_id, from, to, &[]).await);
    assert_eq!(after, before, "cancelling puts the slot back");
}

// ----- the rules on writes -----

async fn booking_at_six_pm_is_409_outside_working_hours_offering_the_next_morning(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-01-13T18:00:00",
            "2027-01-13T19:00:00",
        ),
        json!({"timezone": "Europe/Rome"}),
    );
    let resp = app.post_event(&body).await;
    let details = assert_refused(&resp, "outside_working_hours");
    let next = next_slots(&details);
    assert_eq!(next.len(), 3, "exactly 3 nextSlots: {}", resp.describe());
    assert_eq!(
        start_end_pairs(&next),
        hourly("2027-01-14T08:00:00Z", 3),
        "the next morning at 09:00, 10:00 and 11:00 local"
    );
    assert_eq!(
        local_starts(&next),
        [
            "2027-01-14T09:00:00+01:00",
            "2027-01-14T10:00:00+01:00",
            "2027-01-14T11:00:00+01:00"
        ],
        "localStartTime in the request's timezone"
    );
    assert_all_at_or_after(&next, Utc::now(), "nextSlots are in the future");
    // They are free: availability lists them.
    let listed = slots(
        &availability(
            &app,
            &calendar_id,
            &event_type_id,
            "2027-01-14T00:00:00+01:00",
            "2027-01-15T00:00:00+01:00",
            &[],
        )
        .await,
    );
    assert_eq!(listed[..3], next[..], "nextSlots are the first free slots");
    // Nothing was booked.
    let (events, _) = assert_list(&app.list_events(&[("calendarId", &calendar_id)]).await);
    assert!(events.is_empty(), "a refused booking creates nothing");

    // Ending after 17:00 is outside too.
    let resp = app
        .post_event(&event_body(
            &calendar_id,
            &event_type_id,
            "2027-01-13T16:30:00+01:00",
            "2027-01-13T17:30:00+01:00",
        ))
        .await;
    assert_refused(&resp, "outside_working_hours");
}

async fn booking_on_a_date_closed_by_an_override_is_409_closed_override(app: TestApp) {
    let calendar_id = rome_office(
        &app,
        json!({"dateOverrides": [{"date": "2027-01-13", "ranges": []}]}),
    )
    .await;
    let event_type_id = hour_type(&app, &calendar_id, json!({})).await;
    let resp = app
        .post_event(&event_body(
            &calendar_id,
            &event_type_id,
            "2027-01-13T10:00:00+01:00",
            "2027-01-13T11:00:00+01:00",
        ))
        .await;
    let details = assert_refused(&resp, "closed_override");
    let next = next_slots(&details);
    assert_eq!(next.len(), 3, "{}", resp.describe());
    assert_eq!(
        next[0]["startTime"],
        json!("2027-01-14T08:00:00Z"),
        "the next slot is the next working morning"
    );
}

async fn booking_in_the_past_is_409_before_minimum_notice(app: TestApp) {
    let (calendar_id, event_type_id) = open_calendar_hourly(&app, json!({})).await;
    let now = Utc::now();
    let resp = app
        .post_event(&event_body(
            &calendar_id,
            &event_type_id,
            "2026-01-01T10:00:00Z",
            "2026-01-01T11:00:00Z",
        ))
        .await;
    let details = assert_refused(&resp, "before_minimum_notice");
    let next = next_slots(&details);
    assert_eq!(next.len(), 3, "{}", resp.describe());
    assert_all_at_or_after(
        &next,
        now - Duration::seconds(1),
        "nextSlots are never in the past",
    );
}

async fn booking_inside_the_minimum_notice_is_409_before_minimum_notice(app: TestApp) {
    let (calendar_id, event_type_id) =
        open_calendar_hourly(&app, json!({"minimumNoticeMinutes": 1440})).await;
    let now = Utc::now();
    let start = utc_in_minutes(120);
    let resp = app
        .post_event(&event_body(
            &calendar_id,
            &event_type_id,
            &start,
            &plus_minutes(&start, 60),
        ))
        .await;
    let details = assert_refused(&resp, "before_minimum_notice");
    let next = next_slots(&details);
    assert_eq!(next.len(), 3, "{}", resp.describe());
    assert_all_at_or_after(
        &next,
        now + Duration::minutes(1440) - Duration::seconds(1),
        "nextSlots respect the minimum notice",
    );

    // A day and an hour ahead is far enough.
    let start = utc_in_minutes(1500);
    app.create_event(
        &app.key,
        &calendar_id,
        &event_type_id,
        &start,
        &plus_minutes(&start, 60),
    )
    .await;
}

async fn booking_beyond_max_advance_days_is_409_beyond_max_advance(app: TestApp) {
    let (calendar_id, event_type_id) =
        open_calendar_hourly(&app, json!({"maxAdvanceDays": 30})).await;
    let now = Utc::now();
    let start = utc_in_minutes(40 * 24 * 60);
    let resp = app
        .post_event(&event_body(
            &calendar_id,
            &event_type_id,
            &start,
            &plus_minutes(&start, 60),
        ))
        .await;
    let details = assert_refused(&resp, "beyond_max_advance");
    // Too far ahead: the offered slots are the first bookable ones, from now.
    assert_eq!(next_slots(&details).len(), 3, "{details}");
    for slot in next_slots(&details) {
        let at = instant(slot["startTime"].as_str().unwrap_or_default());
        assert!(
            at >= now && at < now + Duration::days(30) + Duration::minutes(1),
            "a next slot must be bookable (within 30 days): {slot}"
        );
    }

    // Twenty days ahead is fine.
    let start = utc_in_minutes(20 * 24 * 60);
    app.create_event(
        &app.key,
        &calendar_id,
        &event_type_id,
        &start,
        &plus_minutes(&start, 60),
    )
    .await;
}

async fn booking_over_another_booking_is_409_conflict_naming_it_with_next_slots(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-01-13T10:00:00+01:00",
            "2027-01-13T11:00:00+01:00",
        ),
        json!({"timezone": "Europe/Rome"}),
    );
    let first = app.create_event_with(&app.key, body.clone()).await;
    let resp = app.post_event(&body).await;
    let details = assert_refused(&resp, "conflict");
    assert_eq!(
        details["conflictingEventId"],
        first["id"],
        "details.conflictingEventId names the event in the way: {}",
        resp.describe()
    );
    let next = next_slots(&details);
    assert_eq!(
        start_end_pairs(&next),
        hourly("2027-01-13T10:00:00Z", 3),
        "the next free slots after 10:00 local are 11:00, 12:00 and 13:00: {}",
        resp.describe()
    );
    assert_eq!(
        next[0]["localStartTime"],
        json!("2027-01-13T11:00:00+01:00")
    );
}

async fn force_books_outside_hours_but_never_over_another_booking(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    // Saturday evening.
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-01-16T19:00:00+01:00",
        "2027-01-16T20:00:00+01:00",
    );
    assert_refused(&app.post_event(&body).await, "outside_working_hours");
    let forced = app
        .create_event_with(&app.key, with(body.clone(), json!({"force": true})))
        .await;
    assert_eq!(forced["startTime"], json!("2027-01-16T18:00:00Z"));

    // Force does not lift the overlap rule, not even over a forced booking.
    let resp = app
        .post_event(&with(
            event_body(
                &calendar_id,
                &event_type_id,
                "2027-01-16T19:30:00+01:00",
                "2027-01-16T20:30:00+01:00",
            ),
            json!({"force": true}),
        ))
        .await;
    let details = assert_refused(&resp, "conflict");
    assert_eq!(details["conflictingEventId"], forced["id"]);

    // Force inside the past and the notice works too (back-office imports).
    let imported = app
        .create_event_with(
            &app.key,
            with(
                event_body(
                    &calendar_id,
                    &event_type_id,
                    "2026-01-01T10:00:00Z",
                    "2026-01-01T11:00:00Z",
                ),
                json!({"force": true}),
            ),
        )
        .await;
    assert_eq!(imported["startTime"], json!("2026-01-01T10:00:00Z"));
}

async fn patch_moving_an_event_outside_hours_is_409_and_with_force_is_200(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    let event = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-01-13T10:00:00+01:00",
            "2027-01-13T11:00:00+01:00",
        )
        .await;
    let path = format!("{EVENTS}/{}", id_of(&event));
    let late =
        json!({"startTime": "2027-01-13T19:00:00+01:00", "endTime": "2027-01-13T20:00:00+01:00"});
    let resp = app.patch(&path, &late).await;
    let details = assert_refused(&resp, "outside_working_hours");
    assert_eq!(next_slots(&details).len(), 3, "{}", resp.describe());
    let unchanged = assert_ok(&app.get(&path).await, 200);
    assert_eq!(unchanged["startTime"], json!("2027-01-13T09:00:00Z"));
    assert_eq!(unchanged["endTime"], json!("2027-01-13T10:00:00Z"));

    let moved = assert_ok(
        &app.patch(&path, &with(late, json!({"force": true}))).await,
        200,
    );
    assert_eq!(moved["startTime"], json!("2027-01-13T18:00:00Z"));
    assert_eq!(moved["endTime"], json!("2027-01-13T19:00:00Z"));

    // Moving back inside hours needs no force.
    let back = assert_ok(
        &app.patch(
            &path,
            &json!({"startTime": "2027-01-13T14:00:00+01:00", "endTime": "2027-01-13T15:00:00+01:00"}),
        )
        .await,
        200,
    );
    assert_eq!(back["startTime"], json!("2027-01-13T13:00:00Z"));
}

async fn a_booking_off_the_slot_grid_but_inside_hours_is_201(app: TestApp) {
    let (calendar_id, event_type_id) = rome_office_hourly(&app).await;
    let event = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-01-13T09:10:00+01:00",
            "2027-01-13T09:40:00+01:00",
        )
        .await;
    assert_eq!(event["startTime"], json!("2027-01-13T08:10:00Z"));
    assert_eq!(event["endTime"], json!("2027-01-13T08:40:00Z"));
    // It takes the 09:00 slot, whose hour it overlaps, and leaves 10:00.
    let listed = slots(
        &availability(
            &app,
            &calendar_id,
            &event_type_id,
            "2027-01-13T00:00:00+01:00",
            "2027-01-14T00:00:00+01:00",
            &[],
        )
        .await,
    );
    assert_eq!(
        listed.first().map(|s| s["startTime"].clone()),
        Some(json!("2027-01-13T09:00:00Z")),
        "{listed:?}"
    );
}

// ----- customer lookup -----

/// Books a 30-minute event starting `offset_hours` after 2027-04-15T08:00:00Z with these extra fields.
async fn book_for(
    app: &TestApp,
    key: &str,
    calendar_id: &str,
    event_type_id: &str,
    offset_hours: i64,
    extra: Value,
) -> Value {
    let start = plus_minutes("2027-04-15T08:00:00Z", 60 * offset_hours);
    let end = plus_minutes(&start, 30);
    app.create_event_with(
        key,
        with(event_body(calendar_id, event_type_id, &start, &end), extra),
    )
    .await
}

/// The ids listed by GET /v1/calendar/events?<query>, the query string sent exactly as written.
async fn ids_for_raw_query(app: &TestApp, key: &str, query: &str) -> Vec<String> {
    let resp = app.get_as(key, &format!("{EVENTS}?{query}")).await;
    let (items, _) = assert_list(&resp);
    ids(&items)
}

async fn events_with_a_customer_phone_are_found_by_every_spelling_of_it(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let ours = book_for(
        &app,
        &app.key,
        &calendar_id,
        &event_type_id,
        0,
        json!({"customerPhone": "+39 06 1234 5678"}),
    )
    .await;
    assert_eq!(ours["customerPhone"], json!("+390612345678"));
    book_for(
        &app,
        &app.key,
        &calendar_id,
        &event_type_id,
        1,
        json!({"customerPhone": "+39 06 8765 4321"}),
    )
    .await;
    book_for(&app, &app.key, &calendar_id, &event_type_id, 2, json!({})).await;

    for query in [
        "customerPhone=%2B390612345678",
        "customerPhone=%2B39%2006%201234%205678",
        // An unencoded `+` arrives as a space.
        "customerPhone=+390612345678",
    ] {
        assert_eq!(
            ids_for_raw_query(&app, &app.key, query).await,
            [id_of(&ours)],
            "GET {EVENTS}?{query}"
        );
    }
    // reqwest's own encoding of a formatted number.
    let (items, pagination) = assert_list(
        &app.list_events(&[("customerPhone", "+39 (06) 1234-5678")])
            .await,
    );
    assert_eq!(ids(&items), [id_of(&ours)]);
    assert_eq!(pagination["total"], json!(1));
}

async fn events_are_found_by_customer_email_whatever_the_case_of_its_domain(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let ours = book_for(
        &app,
        &app.key,
        &calendar_id,
        &event_type_id,
        0,
        json!({"customerEmail": "laura.bianchi@Example.COM"}),
    )
    .await;
    book_for(
        &app,
        &app.key,
        &calendar_id,
        &event_type_id,
        1,
        json!({"customerEmail": "mario.rossi@example.com"}),
    )
    .await;
    for email in [
        "laura.bianchi@example.com",
        "laura.bianchi@EXAMPLE.com",
        "laura.bianchi@Example.COM",
    ] {
        let (items, _) = assert_list(&app.list_events(&[("customerEmail", email)]).await);
        assert_eq!(ids(&items), [id_of(&ours)], "customerEmail={email}");
    }
    let (items, _) = assert_list(
        &app.list_events(&[("customerEmail", "nobody@example.com")])
            .await,
    );
    assert!(items.is_empty());
}

async fn an_invalid_customer_phone_or_email_filter_is_400_naming_it(app: TestApp) {
    for phone in ["0612345678", "+39 06 abc", "+12"] {
        let resp = app.list_events(&[("customerPhone", phone)]).await;
        assert_validation(&resp, &["customerPhone"]);
    }
    for email in ["laura.bianchi", "laura@", "@example.com"] {
        let resp = app.list_events(&[("customerEmail", email)]).await;
        assert_validation(&resp, &["customerEmail"]);
    }
}

async fn a_customer_lookup_never_returns_another_organizations_events(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let contact =
        json!({"customerPhone": "+39 06 1234 5678", "customerEmail": "laura.bianchi@example.com"});
    let ours = book_for(
        &app,
        &app.key,
        &calendar_id,
        &event_type_id,
        0,
        contact.clone(),
    )
    .await;

    let (_, other_key) = app.new_org("Studio Verdi").await;
    let their_calendar = id_of(&app.create_calendar(&other_key, None).await);
    let their_type = id_of(
        &app.create_event_type(&other_key, Some(&their_calendar), 30)
            .await,
    );
    let theirs = book_for(&app, &other_key, &their_calendar, &their_type, 0, contact).await;

    for query in [
        "customerPhone=%2B390612345678",
        "customerEmail=laura.bianchi%40example.com",
    ] {
        assert_eq!(
            ids_for_raw_query(&app, &app.key, query).await,
            [id_of(&ours)],
            "{query} as the first organization"
        );
        assert_eq!(
            ids_for_raw_query(&app, &other_key, query).await,
            [id_of(&theirs)],
            "{query} as the second organization"
        );
    }
    // The key with read scope only sees its own organization too.
    let read_only = app
        .key_with_scopes(app.org_id, &[quando_api::auth::Scope::CalendarRead])
        .await;
    let resp = send(
        app.req_as(&read_only, Method::GET, EVENTS)
            .query(&[("customerPhone", "+390612345678")]),
    )
    .await;
    let (items, _) = assert_list(&resp);
    assert_eq!(ids(&items), [id_of(&ours)]);
}
