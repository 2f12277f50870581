//! Team event types: one event type booked against several calendars, its hosts. `roundRobin`
//! offers a slot when at least one host is free and gives each booking to one free host (by
//! priority, then fewest recent bookings for its weight, then weight, then the order listed);
//! `collective` offers a slot only when every host is free and books every host at once, one row
//! per host, moved and cancelled together. Availability, bookings, reschedules and holds, exactly
//! one host per booking under races, publishable keys and isolation, the weights over 1,000
//! bookings, and team bookings as webhooks, feeds and the Google and Talkover dialects show
//! them. Both backends.
//!
//! Every case books on a Monday at least two weeks ahead, computed from the clock so the cases
//! never age, far from every notice rule. Calendars are in UTC and open around the clock unless
//! working hours are the point; team types are 30 minutes long, so slots start every half hour.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate, Utc, Weekday};
use futures::future::join_all;
use quando_api::auth::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::google::{events_path, g_ok};
use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        // event types
        a_team_event_type_echoes_its_assignment_and_hosts_with_default_weight_and_priority,
        bad_hosts_are_400_naming_every_bad_field_at_once,
        weights_and_priorities_out_of_range_are_400_naming_each,
        a_team_type_without_hosts_or_a_single_type_with_hosts_or_over_100_hosts_is_400_naming_hosts,
        an_unknown_assignment_is_400,
        a_host_that_is_not_a_calendar_of_the_organization_is_400_naming_its_calendar_id,
        a_team_event_type_with_a_calendar_id_is_400_naming_calendar_id,
        patch_hosts_replaces_them_and_patch_to_single_drops_them,
        // availability
        round_robin_availability_offers_a_slot_when_any_host_is_free_and_names_the_free_hosts,
        collective_availability_offers_a_slot_only_when_every_host_is_free,
        availability_of_a_team_type_for_one_host_is_that_hosts_own_and_a_non_host_is_400,
        slots_carry_hosts_only_with_hosts_true_and_a_single_types_slot_names_its_calendar,
        // round-robin bookings
        eight_simultaneous_bookings_of_one_slot_over_five_hosts_book_five_hosts_once_each,
        a_free_host_of_higher_priority_gets_every_booking_while_it_is_free,
        bookings_are_shared_by_weight_one_to_three_over_eight_sequential_bookings,
        ties_go_to_the_first_listed_host_and_cancelled_bookings_do_not_count,
        naming_a_hosts_calendar_books_that_host_or_is_409_and_a_non_host_is_400,
        a_round_robin_booking_when_every_host_is_busy_is_409_conflict_with_next_slots,
        a_round_robin_reschedule_stays_on_its_host_and_is_409_when_that_host_is_busy,
        a_round_robin_reschedule_with_reassign_moves_to_another_free_host_as_a_new_event,
        // collective bookings
        a_collective_booking_writes_one_row_per_host_with_the_organizer_first,
        sixteen_simultaneous_overlapping_collective_bookings_never_double_book_a_host,
        a_collective_booking_is_409_when_one_host_is_busy_and_writes_nothing_on_the_others,
        rescheduling_any_row_of_a_collective_appointment_moves_every_row,
        a_collective_reschedule_blocked_by_one_host_leaves_every_row_where_it_was,
        cancelling_a_non_organizer_row_cancels_every_row_and_frees_the_time,
        // holds
        a_round_robin_hold_blocks_one_host_and_the_slot_stays_offered_by_the_other,
        a_collective_hold_blocks_every_host_and_releasing_it_frees_them_all,
        booking_with_a_collective_hold_id_books_every_held_host,
        // publishable keys and isolation
        a_publishable_key_books_a_round_robin_type_and_is_never_told_the_event_in_the_way,
        another_organizations_key_gets_404_for_a_team_type_and_its_team_type_is_invisible,
        // at scale, and as the other surfaces show team bookings
        a_thousand_sequential_round_robin_bookings_over_weights_1_1_2_4_land_within_five_percent_of_the_shares,
        a_collective_appointment_sends_one_webhook_naming_every_host_and_one_when_cancelled,
        each_hosts_feed_shows_the_collective_appointment_and_a_round_robin_booking_only_on_its_host,
        the_google_and_talkover_views_of_a_hosts_calendar_show_its_team_appointments,
    ]
}

const EVENT_TYPES: &str = "/v1/calendar/event-types";
const EVENTS: &str = "/v1/calendar/events";
const HOLDS: &str = "/v1/calendar/holds";
const AVAILABILITY: &str = "/v1/calendar/availability";

// ----- time -----

/// A UTC date of the cases: the Monday at least 14 days from today.
#[derive(Clone, Copy)]
struct Day(NaiveDate);

impl Day {
    fn monday() -> Day {
        let mut d = Utc::now().date_naive() + Days::new(14);
        while d.weekday() != Weekday::Mon {
            d = d + Days::new(1);
        }
        Day(d)
    }

    /// `HH:MM` on this day, UTC: `YYYY-MM-DDTHH:MM:00Z`.
    fn at(self, hh_mm: &str) -> String {
        format!("{}T{hh_mm}:00Z", self.0)
    }

    fn next(self) -> Day {
        Day(self.0 + Days::new(1))
    }

    fn date(self) -> String {
        self.0.to_string()
    }
}

/// The end of a 30-minute booking starting at `start`.
fn end_of(start: &str) -> String {
    plus_minutes(start, 30)
}

fn instant(t: &str) -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("bad time {t:?}: {e}"))
        .with_timezone(&Utc)
}

fn overlaps(a: &Value, b: &Value) -> bool {
    let (a_start, a_end) = (
        instant(a["startTime"].as_str().unwrap_or_default()),
        instant(a["endTime"].as_str().unwrap_or_default()),
    );
    let (b_start, b_end) = (
        instant(b["startTime"].as_str().unwrap_or_default()),
        instant(b["endTime"].as_str().unwrap_or_default()),
    );
    a_start < b_end && b_start < a_end
}

// ----- fixtures -----

/// A UTC calendar open around the clock (no working hours).
async fn calendar(app: &TestApp, key: &str, name: &str) -> String {
    id_of(
        &app.create_calendar(key, Some(json!({"name": name, "timezone": "UTC"})))
            .await,
    )
}

/// A UTC calendar working Monday to Friday from `start` to `end`, with `extra` fields set on it.
async fn calendar_working(
    app: &TestApp,
    name: &str,
    start: &str,
    end: &str,
    extra: Value,
) -> String {
    let days = ["monday", "tuesday", "wednesday", "thursday", "friday"];
    let hours: Vec<Value> = days
        .iter()
        .map(|d| json!({"day": d, "start": start, "end": end}))
        .collect();
    let body = with(
        json!({"name": name, "timezone": "UTC", "workingHours": hours}),
        extra,
    );
    id_of(&app.create_calendar(&app.key, Some(body)).await)
}

/// `[{"calendarId": c}, ...]`: hosts with the default weight and priority.
fn plain_hosts(calendars: &[String]) -> Value {
    Value::Array(calendars.iter().map(|c| json!({"calendarId": c})).collect())
}

/// The body of a 30-minute team event type.
fn team_type_body(assignment: &str, hosts: Value) -> Value {
    json!({
        "name": "Consulenza di gruppo",
        "durationMinutes": 30,
        "assignment": assignment,
        "hosts": hosts,
    })
}

/// Creates a 30-minute team event type with `key` and returns its id.
async fn team_type(app: &TestApp, key: &str, assignment: &str, hosts: Value) -> String {
    id_of(
        &app.create_event_type_with(key, team_type_body(assignment, hosts))
            .await,
    )
}

/// `n` open calendars and a 30-minute team type of `assignment` hosted by them, in order.
struct Team {
    hosts: Vec<String>,
    event_type_id: String,
}

async fn team(app: &TestApp, assignment: &str, n: usize) -> Team {
    let mut hosts = Vec::with_capacity(n);
    for i in 0..n {
        hosts.push(calendar(app, &app.key, &format!("Host {i}")).await);
    }
    let event_type_id = team_type(app, &app.key, assignment, plain_hosts(&hosts)).await;
    Team {
        hosts,
        event_type_id,
    }
}

impl Team {
    /// A booking of the team type at `start`, naming no calendar.
    fn booking(&self, start: &str) -> Value {
        team_booking(&self.event_type_id, start)
    }

    /// A hold of the team type at `start`, naming no calendar.
    fn hold_body(&self, start: &str) -> Value {
        json!({"eventTypeId": self.event_type_id, "startTime": start})
    }

    /// The short name of a host's calendar in messages: `H0`, `H1`, ...
    fn names(&self) -> Vec<(String, String)> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), format!("H{i}")))
            .collect()
    }
}

fn team_booking(event_type_id: &str, start: &str) -> Value {
    json!({"eventTypeId": event_type_id, "startTime": start, "endTime": end_of(start)})
}

/// A 30-minute event type bound to no calendar, to put plain bookings on any host's calendar.
async fn plain_type(app: &TestApp) -> String {
    id_of(&app.create_event_type(&app.key, None, 30).await)
}

/// A plain 30-minute booking on `calendar_id` at `start` (someone else's appointment).
async fn occupy(app: &TestApp, plain_type: &str, calendar_id: &str, start: &str) -> Value {
    app.create_event(&app.key, calendar_id, plain_type, start, &end_of(start))
        .await
}

/// Another secret key of the first organization (another client, or the one holding a slot).
async fn second_key(app: &TestApp) -> String {
    app.key_with_scopes(app.org_id, &[Scope::CalendarRead, Scope::CalendarWrite])
        .await
}

async fn book(app: &TestApp, key: &str, body: &Value) -> Resp {
    app.post_as(key, EVENTS, body).await
}

/// POST /v1/calendar/events that must answer 201; the event.
async fn booked(app: &TestApp, key: &str, body: &Value) -> Value {
    assert_ok(&book(app, key, body).await, 201)
}

async fn hold(app: &TestApp, key: &str, body: &Value) -> Resp {
    app.post_as(key, HOLDS, body).await
}

async fn release(app: &TestApp, key: &str, id: &str) -> Resp {
    send(app.req_as(key, Method::DELETE, &format!("{HOLDS}/{id}"))).await
}

fn event_path(id: &str) -> String {
    format!("{EVENTS}/{id}")
}

async fn read_event(app: &TestApp, id: &str) -> Value {
    assert_ok(&app.get(&event_path(id)).await, 200)
}

/// Reschedules event `id` to a 30-minute slot at `start`, with `extra` fields in the body.
async fn reschedule(app: &TestApp, id: &str, start: &str, extra: Value) -> Resp {
    let body = with(json!({"startTime": start, "endTime": end_of(start)}), extra);
    app.patch(&event_path(id), &body).await
}

/// Cancels event `id` (`POST /v1/calendar/events/{id}/cancel`) and returns the answer.
async fn cancel(app: &TestApp, id: &str) -> Value {
    let resp = app.post(&format!("{EVENTS}/{id}/cancel"), &json!({})).await;
    assert_ok(&resp, 200)
}

/// Every event on `calendar_id`, cancelled ones too.
async fn events_on(app: &TestApp, calendar_id: &str) -> Vec<Value> {
    let resp = app
        .list_events(&[("calendarId", calendar_id), ("limit", "100")])
        .await;
    assert_list(&resp).0
}

/// The events on `calendar_id` that hold their time (not cancelled).
async fn live_events_on(app: &TestApp, calendar_id: &str) -> Vec<Value> {
    events_on(app, calendar_id)
        .await
        .into_iter()
        .filter(|e| e["status"] != json!("cancelled"))
        .collect()
}

fn calendar_of(value: &Value) -> String {
    value["calendarId"]
        .as_str()
        .unwrap_or_else(|| panic!("no calendarId string in {value}"))
        .to_owned()
}

/// A non-collective event has no `hosts`, or a null one.
#[track_caller]
fn assert_no_group(event: &Value) {
    assert!(
        event.get("hosts").is_none_or(Value::is_null),
        "only a collective appointment lists hosts: {event}"
    );
}

/// A collective appointment's `hosts`: one `{calendarId, eventId}` per host of `team`, in the
/// type's order (the organizer first). Returns the event ids, in that order.
#[track_caller]
fn group_ids(event: &Value, team: &Team) -> Vec<String> {
    let rows = event["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("a collective appointment lists its hosts: {event}"));
    let calendars: Vec<String> = rows.iter().map(calendar_of).collect();
    assert_eq!(
        calendars, team.hosts,
        "one row per host, the organizer first, in the type's order: {event}"
    );
    let ids: Vec<String> = rows
        .iter()
        .map(|r| {
            r["eventId"]
                .as_str()
                .unwrap_or_else(|| panic!("a host row has no eventId: {event}"))
                .to_owned()
        })
        .collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "one event row per host: {event}");
    ids
}

/// Every row of a collective appointment, read back: on its host's calendar, at `start`, with
/// `status`, and listing the same group.
async fn assert_rows(app: &TestApp, team: &Team, ids: &[String], start: &str, status: &str) {
    for (id, host) in ids.iter().zip(&team.hosts) {
        let row = read_event(app, id).await;
        assert_eq!(&calendar_of(&row), host, "the row of {host}: {row}");
        assert_eq!(row["startTime"], json!(start), "{row}");
        assert_eq!(row["endTime"], json!(end_of(start)), "{row}");
        assert_eq!(row["status"], json!(status), "{row}");
        assert_eq!(
            group_ids(&row, team),
            ids,
            "every row lists the same group: {row}"
        );
    }
}

/// 409 `slot_unavailable` with a reason and a `nextSlots` array offering nothing that overlaps
/// `[start, start + 30 min)`. Returns the error.
#[track_caller]
fn assert_refused(resp: &Resp, start: &str) -> Value {
    let error = assert_error(resp, 409, "slot_unavailable");
    assert!(
        error["details"]["reason"].is_string(),
        "details.reason: {}",
        resp.describe()
    );
    let next = error["details"]["nextSlots"]
        .as_array()
        .unwrap_or_else(|| panic!("details.nextSlots is not an array: {}", resp.describe()));
    let taken = json!({"startTime": start, "endTime": end_of(start)});
    for slot in next {
        assert!(
            !overlaps(slot, &taken),
            "nextSlots offers {slot}, which overlaps the taken time: {}",
            resp.describe()
        );
    }
    error
}

/// A 409 `slot_unavailable` with reason `conflict`.
#[track_caller]
fn assert_busy(resp: &Resp, start: &str) -> Value {
    let error = assert_refused(resp, start);
    assert_eq!(
        error["details"]["reason"],
        json!("conflict"),
        "details.reason: {}",
        resp.describe()
    );
    error
}

// ----- availability -----

/// The slots of `event_type_id` over the whole of `day` (UTC), with `extra` parameters.
async fn slots_as(
    app: &TestApp,
    key: &str,
    event_type_id: &str,
    day: Day,
    extra: &[(&str, &str)],
) -> Vec<Value> {
    let (from, to) = (day.at("00:00"), day.next().at("00:00"));
    let mut query = vec![
        ("eventTypeId", event_type_id),
        ("dateFrom", from.as_str()),
        ("dateTo", to.as_str()),
    ];
    query.extend_from_slice(extra);
    let resp = app.get_query_as(key, AVAILABILITY, &query).await;
    let data = assert_ok(&resp, 200);
    data["slots"]
        .as_array()
        .unwrap_or_else(|| panic!("availability has no slots array: {}", resp.describe()))
        .clone()
}

async fn slots(app: &TestApp, event_type_id: &str, day: Day, extra: &[(&str, &str)]) -> Vec<Value> {
    slots_as(app, &app.key, event_type_id, day, extra).await
}

/// Each slot as `HH:MM` (UTC), then its hosts by short name in `names`, sorted (`10:00 H0,H2`),
/// or `HH:MM` alone for a slot without `hosts`.
#[track_caller]
fn lines(slots: &[Value], names: &[(String, String)]) -> Vec<String> {
    slots
        .iter()
        .map(|s| {
            let start = s["startTime"].as_str().unwrap_or_default();
            let time = start.get(11..16).unwrap_or(start).to_owned();
            match s.get("hosts") {
                None => time,
                Some(hosts) => {
                    let hosts = hosts
                        .as_array()
                        .unwrap_or_else(|| panic!("a slot's hosts is not an array: {s}"));
                    let mut named: Vec<String> = hosts
                        .iter()
                        .map(|h| {
                            let id = h.as_str().unwrap_or_default();
                            names
                                .iter()
                                .find(|(c, _)| c == id)
                                .map(|(_, n)| n.clone())
                                .unwrap_or_else(|| format!("?{id}"))
                        })
                        .collect();
                    named.sort();
                    format!("{time} {}", named.join(","))
                }
            }
        })
        .collect()
}

/// `HH:MM` of every slot start from `first` to `last` inclusive, every 30 minutes, each followed
/// by `hosts` when given.
fn half_hours(first: &str, last: &str, hosts: &str) -> Vec<String> {
    let minutes = |t: &str| {
        let (h, m) = t.split_once(':').unwrap_or(("0", "0"));
        h.parse::<u32>().unwrap_or(0) * 60 + m.parse::<u32>().unwrap_or(0)
    };
    (minutes(first)..=minutes(last))
        .step_by(30)
        .map(|m| {
            let time = format!("{:02}:{:02}", m / 60, m % 60);
            if hosts.is_empty() {
                time
            } else {
                format!("{time} {hosts}")
            }
        })
        .collect()
}

fn starts(slots: &[Value]) -> Vec<String> {
    slots
        .iter()
        .map(|s| s["startTime"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The hosts a slot starting at `start` names (`hosts=true`), or None when it is not offered.
fn hosts_at(slots: &[Value], start: &str) -> Option<Vec<String>> {
    slots
        .iter()
        .find(|s| s["startTime"] == json!(start))
        .map(|s| {
            let mut hosts: Vec<String> = s["hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| h.as_str().unwrap_or_default().to_owned())
                .collect();
            hosts.sort();
            hosts
        })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ----- event types -----

async fn a_team_event_type_echoes_its_assignment_and_hosts_with_default_weight_and_priority(
    app: TestApp,
) {
    let a = calendar(&app, &app.key, "Dott. Rossi").await;
    let b = calendar(&app, &app.key, "Dott.ssa Bianchi").await;
    let body = team_type_body(
        "roundRobin",
        json!([{"calendarId": a}, {"calendarId": b, "weight": 3, "priority": 4}]),
    );
    let resp = app.post(EVENT_TYPES, &body).await;
    let created = assert_ok(&resp, 201);
    assert_has_keys(&created, &EVENT_TYPE_FIELDS, "a team event type");
    assert_eq!(created["assignment"], json!("roundRobin"), "{created}");
    assert!(
        created["calendarId"].is_null(),
        "a team type has no calendar: {created}"
    );
    let expected = json!([
        {"calendarId": a, "weight": 1, "priority": 2},
        {"calendarId": b, "weight": 3, "priority": 4},
    ]);
    assert_eq!(created["hosts"], expected, "{created}");
    let read = assert_ok(
        &app.get(&format!("{EVENT_TYPES}/{}", id_of(&created))).await,
        200,
    );
    assert_eq!(read["assignment"], json!("roundRobin"), "{read}");
    assert_eq!(read["hosts"], expected, "{read}");

    let collective = app
        .create_event_type_with(
            &app.key,
            team_type_body(
                "collective",
                json!([{"calendarId": b}, {"calendarId": a, "priority": 0}]),
            ),
        )
        .await;
    assert_eq!(
        collective["assignment"],
        json!("collective"),
        "{collective}"
    );
    assert_eq!(
        collective["hosts"],
        json!([
            {"calendarId": b, "weight": 1, "priority": 2},
            {"calendarId": a, "weight": 1, "priority": 0},
        ]),
        "{collective}"
    );

    // A type of one calendar is `single`, with no hosts.
    let single = app.create_event_type(&app.key, Some(&a), 30).await;
    assert_eq!(single["assignment"], json!("single"), "{single}");
    assert_eq!(single["hosts"], json!([]), "{single}");
    let explicit = app
        .create_event_type_with(
            &app.key,
            json!({"calendarId": a, "name": "Visita", "durationMinutes": 30, "assignment": "single"}),
        )
        .await;
    assert_eq!(explicit["assignment"], json!("single"), "{explicit}");
    assert_eq!(explicit["hosts"], json!([]), "{explicit}");

    // The list shows them the same way.
    let (items, _) = assert_list(&app.get_query(EVENT_TYPES, &[("limit", "100")]).await);
    let listed = items
        .iter()
        .find(|t| t["id"] == created["id"])
        .unwrap_or_else(|| panic!("the team type is listed: {items:?}"));
    assert_eq!(listed["hosts"], expected, "{listed}");
}

async fn bad_hosts_are_400_naming_every_bad_field_at_once(app: TestApp) {
    let a = calendar(&app, &app.key, "A").await;
    let b = calendar(&app, &app.key, "B").await;
    let c = calendar(&app, &app.key, "C").await;
    let hosts = json!([
        {"calendarId": a, "priority": 5},
        {"calendarId": b, "weight": 0},
        {"calendarId": c},
        {"calendarId": a},
    ]);
    for assignment in ["roundRobin", "collective"] {
        let resp = app
            .post(EVENT_TYPES, &team_type_body(assignment, hosts.clone()))
            .await;
        let error = assert_validation(
            &resp,
            &[
                "hosts[0].priority",
                "hosts[1].weight",
                "hosts[3].calendarId",
            ],
        );
        let named = field_names(&error);
        for fine in [
            "hosts[2].calendarId",
            "hosts[0].calendarId",
            "hosts[2].weight",
        ] {
            assert!(
                !named.iter().any(|n| n == fine),
                "{fine} is fine, yet named: {error}"
            );
        }
    }
    let (items, _) = assert_list(&app.get(EVENT_TYPES).await);
    assert!(items.is_empty(), "a refused type is not created: {items:?}");
}

async fn weights_and_priorities_out_of_range_are_400_naming_each(app: TestApp) {
    let a = calendar(&app, &app.key, "A").await;
    let b = calendar(&app, &app.key, "B").await;
    let cases = [
        (json!({"weight": 0}), "hosts[1].weight"),
        (json!({"weight": 1001}), "hosts[1].weight"),
        (json!({"weight": -1}), "hosts[1].weight"),
        (json!({"priority": 5}), "hosts[1].priority"),
        (json!({"priority": -1}), "hosts[1].priority"),
    ];
    for (bad, field) in cases {
        let hosts = json!([{"calendarId": a}, with(json!({"calendarId": b}), bad.clone())]);
        let resp = app
            .post(EVENT_TYPES, &team_type_body("roundRobin", hosts))
            .await;
        assert_validation(&resp, &[field]);
    }
    // The edges are accepted.
    let hosts = json!([
        {"calendarId": a, "weight": 1, "priority": 0},
        {"calendarId": b, "weight": 1000, "priority": 4},
    ]);
    let created = app
        .create_event_type_with(&app.key, team_type_body("roundRobin", hosts.clone()))
        .await;
    assert_eq!(created["hosts"], hosts, "{created}");
}

async fn a_team_type_without_hosts_or_a_single_type_with_hosts_or_over_100_hosts_is_400_naming_hosts(
    app: TestApp,
) {
    let a = calendar(&app, &app.key, "A").await;
    for assignment in ["roundRobin", "collective"] {
        let resp = app
            .post(EVENT_TYPES, &team_type_body(assignment, json!([])))
            .await;
        assert_validation(&resp, &["hosts"]);
        let resp = app
            .post(
                EVENT_TYPES,
                &json!({"name": "Senza host", "durationMinutes": 30, "assignment": assignment}),
            )
            .await;
        assert_validation(&resp, &["hosts"]);
    }
    let resp = app
        .post(
            EVENT_TYPES,
            &json!({"name": "Uno", "durationMinutes": 30, "hosts": [{"calendarId": a}]}),
        )
        .await;
    assert_validation(&resp, &["hosts"]);
    let resp = app
        .post(
            EVENT_TYPES,
            &json!({"name": "Uno", "durationMinutes": 30, "assignment": "single", "hosts": [{"calendarId": a}]}),
        )
        .await;
    assert_validation(&resp, &["hosts"]);
    let mut many = vec![a];
    for i in 1..101 {
        many.push(calendar(&app, &app.key, &format!("Sala {i}")).await);
    }
    let resp = app
        .post(
            EVENT_TYPES,
            &team_type_body("roundRobin", plain_hosts(&many)),
        )
        .await;
    assert_validation(&resp, &["hosts"]);
    let (items, _) = assert_list(&app.get(EVENT_TYPES).await);
    assert!(items.is_empty(), "nothing was created: {items:?}");
    // 100 hosts are accepted.
    let created = app
        .create_event_type_with(
            &app.key,
            team_type_body("roundRobin", plain_hosts(&many[..100])),
        )
        .await;
    assert_eq!(
        created["hosts"].as_array().map(Vec::len),
        Some(100),
        "{created}"
    );
}

async fn an_unknown_assignment_is_400(app: TestApp) {
    let a = calendar(&app, &app.key, "A").await;
    for assignment in ["weighted", "round_robin", "ROUNDROBIN", ""] {
        let resp = app
            .post(
                EVENT_TYPES,
                &team_type_body(assignment, json!([{"calendarId": a}])),
            )
            .await;
        assert_eq!(
            resp.status,
            400,
            "assignment {assignment:?}: {}",
            resp.describe()
        );
        let code = resp.body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            code == "bad_request" || code == "validation_error",
            "assignment {assignment:?}: {}",
            resp.describe()
        );
        assert_error(&resp, 400, &code);
    }
    let (items, _) = assert_list(&app.get(EVENT_TYPES).await);
    assert!(items.is_empty(), "nothing was created: {items:?}");
}

async fn a_host_that_is_not_a_calendar_of_the_organization_is_400_naming_its_calendar_id(
    app: TestApp,
) {
    let a = calendar(&app, &app.key, "A").await;
    let (_, other_key) = app.new_org("Studio Legale Ferri").await;
    let theirs = calendar(&app, &other_key, "Avv. Ferri").await;
    let resp = app
        .post(
            EVENT_TYPES,
            &team_type_body(
                "roundRobin",
                json!([{"calendarId": theirs}, {"calendarId": a}]),
            ),
        )
        .await;
    let error = assert_validation(&resp, &["hosts[0].calendarId"]);
    assert!(
        !field_names(&error)
            .iter()
            .any(|f| f == "hosts[1].calendarId"),
        "{error}"
    );
    let hosts = json!([{"calendarId": a}, {"calendarId": calendar(&app, &app.key, "B").await},
        {"calendarId": calendar(&app, &app.key, "C").await}, {"calendarId": unknown_id()}]);
    let resp = app
        .post(EVENT_TYPES, &team_type_body("collective", hosts))
        .await;
    assert_validation(&resp, &["hosts[3].calendarId"]);
    // Nor can a PATCH bring another organization's calendar in.
    let ours = team_type(&app, &app.key, "roundRobin", json!([{"calendarId": a}])).await;
    let path = format!("{EVENT_TYPES}/{ours}");
    let resp = app
        .patch(
            &path,
            &json!({"hosts": [{"calendarId": a}, {"calendarId": theirs}]}),
        )
        .await;
    assert_validation(&resp, &["hosts[1].calendarId"]);
    let unchanged = assert_ok(&app.get(&path).await, 200);
    assert_eq!(
        unchanged["hosts"],
        json!([{"calendarId": a, "weight": 1, "priority": 2}]),
        "{unchanged}"
    );
}

async fn a_team_event_type_with_a_calendar_id_is_400_naming_calendar_id(app: TestApp) {
    let a = calendar(&app, &app.key, "A").await;
    let b = calendar(&app, &app.key, "B").await;
    for assignment in ["roundRobin", "collective"] {
        let body = with(
            team_type_body(assignment, json!([{"calendarId": a}, {"calendarId": b}])),
            json!({"calendarId": a}),
        );
        assert_validation(&app.post(EVENT_TYPES, &body).await, &["calendarId"]);
    }
    let (items, _) = assert_list(&app.get(EVENT_TYPES).await);
    assert!(items.is_empty(), "nothing was created: {items:?}");
    // Nor can a PATCH give a team type a calendar.
    let id = team_type(&app, &app.key, "roundRobin", plain_hosts(&[a.clone(), b])).await;
    let path = format!("{EVENT_TYPES}/{id}");
    assert_validation(
        &app.patch(&path, &json!({"calendarId": a})).await,
        &["calendarId"],
    );
    let unchanged = assert_ok(&app.get(&path).await, 200);
    assert!(unchanged["calendarId"].is_null(), "{unchanged}");
    assert_eq!(unchanged["assignment"], json!("roundRobin"), "{unchanged}");
}

async fn patch_hosts_replaces_them_and_patch_to_single_drops_them(app: TestApp) {
    let a = calendar(&app, &app.key, "A").await;
    let b = calendar(&app, &app.key, "B").await;
    let c = calendar(&app, &app.key, "C").await;
    let id = team_type(
        &app,
        &app.key,
        "roundRobin",
        plain_hosts(&[a.clone(), b.clone()]),
    )
    .await;
    let path = format!("{EVENT_TYPES}/{id}");

    let replaced = assert_ok(
        &app.patch(&path, &json!({"hosts": [{"calendarId": c, "weight": 5}]}))
            .await,
        200,
    );
    let expected = json!([{"calendarId": c, "weight": 5, "priority": 2}]);
    assert_eq!(
        replaced["hosts"], expected,
        "replaced whole, not merged: {replaced}"
    );
    assert_eq!(replaced["assignment"], json!("roundRobin"));
    // Another field's PATCH keeps them.
    let renamed = assert_ok(&app.patch(&path, &json!({"name": "Rinominato"})).await, 200);
    assert_eq!(renamed["hosts"], expected, "{renamed}");
    // A PATCH emptying a team's hosts is refused.
    assert_validation(&app.patch(&path, &json!({"hosts": []})).await, &["hosts"]);

    let single = assert_ok(
        &app.patch(&path, &json!({"assignment": "single"})).await,
        200,
    );
    assert_eq!(single["assignment"], json!("single"), "{single}");
    assert_eq!(
        single["hosts"],
        json!([]),
        "single drops the hosts: {single}"
    );
    let read = assert_ok(&app.get(&path).await, 200);
    assert_eq!(read["assignment"], json!("single"), "{read}");
    assert_eq!(read["hosts"], json!([]), "{read}");

    // And back to a team, with hosts.
    let back = assert_ok(
        &app.patch(
            &path,
            &json!({"assignment": "collective", "hosts": [{"calendarId": b}, {"calendarId": a}]}),
        )
        .await,
        200,
    );
    assert_eq!(back["assignment"], json!("collective"), "{back}");
    assert_eq!(
        back["hosts"],
        json!([
            {"calendarId": b, "weight": 1, "priority": 2},
            {"calendarId": a, "weight": 1, "priority": 2},
        ]),
        "{back}"
    );
}

// ----- availability -----

/// Hosts with different hours on Monday `day`: H0 works 09:00-13:00 and has a booking at 11:00,
/// H1 works 11:00-15:00, H2 works 09:00-17:00 but a date override closes Monday. Returns the
/// three calendars.
async fn staggered_hosts(app: &TestApp, day: Day) -> Vec<String> {
    let h0 = calendar_working(app, "Mattina", "09:00", "13:00", json!({})).await;
    let h1 = calendar_working(app, "Pomeriggio", "11:00", "15:00", json!({})).await;
    let h2 = calendar_working(
        app,
        "Tutto il giorno",
        "09:00",
        "17:00",
        json!({"dateOverrides": [{"date": day.date(), "ranges": []}]}),
    )
    .await;
    let plain = plain_type(app).await;
    occupy(app, &plain, &h0, &day.at("11:00")).await;
    vec![h0, h1, h2]
}

async fn round_robin_availability_offers_a_slot_when_any_host_is_free_and_names_the_free_hosts(
    app: TestApp,
) {
    let day = Day::monday();
    let hosts = staggered_hosts(&app, day).await;
    let team = Team {
        event_type_id: team_type(&app, &app.key, "roundRobin", plain_hosts(&hosts)).await,
        hosts,
    };
    let names = team.names();
    let with_hosts = [("hosts", "true")];

    // Monday: H2 closed, H0 busy at 11:00.
    let monday = slots(&app, &team.event_type_id, day, &with_hosts).await;
    let expected: Vec<String> = [
        half_hours("09:00", "10:30", "H0"),
        half_hours("11:00", "11:00", "H1"),
        half_hours("11:30", "12:30", "H0,H1"),
        half_hours("13:00", "14:30", "H1"),
    ]
    .concat();
    assert_eq!(
        lines(&monday, &names),
        expected,
        "the union of the hosts' free times"
    );

    // Tuesday: everyone works, no bookings.
    let tuesday = slots(&app, &team.event_type_id, day.next(), &with_hosts).await;
    let expected: Vec<String> = [
        half_hours("09:00", "10:30", "H0,H2"),
        half_hours("11:00", "12:30", "H0,H1,H2"),
        half_hours("13:00", "14:30", "H1,H2"),
        half_hours("15:00", "16:30", "H2"),
    ]
    .concat();
    assert_eq!(lines(&tuesday, &names), expected);

    // Every listed slot can be booked: the 11:00 slot of Monday goes to its only free host.
    let event = booked(&app, &app.key, &team.booking(&day.at("11:00"))).await;
    assert_eq!(calendar_of(&event), team.hosts[1], "{event}");
    let monday = slots(&app, &team.event_type_id, day, &with_hosts).await;
    assert_eq!(
        hosts_at(&monday, &day.at("11:00")),
        None,
        "no host is free at 11:00 any more: {:?}",
        lines(&monday, &names)
    );
}

async fn collective_availability_offers_a_slot_only_when_every_host_is_free(app: TestApp) {
    let day = Day::monday();
    let hosts = staggered_hosts(&app, day).await;
    let pair = Team {
        event_type_id: team_type(&app, &app.key, "collective", plain_hosts(&hosts[..2])).await,
        hosts: hosts[..2].to_vec(),
    };
    let all = Team {
        event_type_id: team_type(&app, &app.key, "collective", plain_hosts(&hosts)).await,
        hosts,
    };
    let names = all.names();
    let with_hosts = [("hosts", "true")];

    // H0 and H1 overlap 11:00-13:00 on Monday, and H0 is busy at 11:00.
    let monday = slots(&app, &pair.event_type_id, day, &with_hosts).await;
    assert_eq!(
        lines(&monday, &names),
        half_hours("11:30", "12:30", "H0,H1"),
        "the intersection of the hosts' free times"
    );
    let tuesday = slots(&app, &pair.event_type_id, day.next(), &with_hosts).await;
    assert_eq!(
        lines(&tuesday, &names),
        half_hours("11:00", "12:30", "H0,H1")
    );

    // With H2, closed on Monday, nothing is offered that day.
    let monday = slots(&app, &all.event_type_id, day, &with_hosts).await;
    assert_eq!(
        lines(&monday, &names),
        Vec::<String>::new(),
        "H2 is closed on Monday"
    );
    let tuesday = slots(&app, &all.event_type_id, day.next(), &with_hosts).await;
    assert_eq!(
        lines(&tuesday, &names),
        half_hours("11:00", "12:30", "H0,H1,H2")
    );
}

async fn availability_of_a_team_type_for_one_host_is_that_hosts_own_and_a_non_host_is_400(
    app: TestApp,
) {
    let day = Day::monday();
    let hosts = staggered_hosts(&app, day).await;
    let names: Vec<(String, String)> = hosts
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), format!("H{i}")))
        .collect();
    let outsider = calendar(&app, &app.key, "Non ospite").await;
    for assignment in ["roundRobin", "collective"] {
        let type_id = team_type(&app, &app.key, assignment, plain_hosts(&hosts)).await;
        let own = slots(&app, &type_id, day, &[("calendarId", &hosts[0])]).await;
        let expected = [
            half_hours("09:00", "10:30", ""),
            half_hours("11:30", "12:30", ""),
        ]
        .concat();
        assert_eq!(
            lines(&own, &names),
            expected,
            "{assignment}: H0's own slots"
        );
        let own = slots(&app, &type_id, day, &[("calendarId", &hosts[1])]).await;
        assert_eq!(
            lines(&own, &names),
            half_hours("11:00", "14:30", ""),
            "{assignment}: H1's own slots"
        );
        let own = slots(&app, &type_id, day, &[("calendarId", &hosts[2])]).await;
        assert!(own.is_empty(), "{assignment}: H2 is closed: {own:?}");

        let (from, to) = (day.at("00:00"), day.next().at("00:00"));
        let resp = app
            .get_query(
                AVAILABILITY,
                &[
                    ("eventTypeId", type_id.as_str()),
                    ("calendarId", outsider.as_str()),
                    ("dateFrom", from.as_str()),
                    ("dateTo", to.as_str()),
                ],
            )
            .await;
        assert_validation(&resp, &["calendarId"]);
    }
}

async fn slots_carry_hosts_only_with_hosts_true_and_a_single_types_slot_names_its_calendar(
    app: TestApp,
) {
    let day = Day::monday();
    let round_robin = team(&app, "roundRobin", 2).await;
    let names = round_robin.names();
    let window = [("hosts", "false")];
    for extra in [&[][..], &window[..]] {
        let listed = slots(&app, &round_robin.event_type_id, day, extra).await;
        assert_eq!(
            listed.len(),
            48,
            "an open day has 48 half hours: {listed:?}"
        );
        for slot in &listed {
            assert!(
                slot.get("hosts").is_none(),
                "no hosts without hosts=true: {slot}"
            );
        }
    }
    let listed = slots(&app, &round_robin.event_type_id, day, &[("hosts", "true")]).await;
    assert_eq!(
        lines(&listed, &names),
        half_hours("00:00", "23:30", "H0,H1")
    );

    let collective = Team {
        event_type_id: team_type(
            &app,
            &app.key,
            "collective",
            plain_hosts(&round_robin.hosts),
        )
        .await,
        hosts: round_robin.hosts.clone(),
    };
    let listed = slots(&app, &collective.event_type_id, day, &[]).await;
    assert!(
        listed.iter().all(|s| s.get("hosts").is_none()),
        "{listed:?}"
    );
    let listed = slots(&app, &collective.event_type_id, day, &[("hosts", "true")]).await;
    assert_eq!(
        lines(&listed, &names),
        half_hours("00:00", "23:30", "H0,H1")
    );

    // A single type's slot names its one calendar.
    let single = id_of(
        &app.create_event_type(&app.key, Some(&round_robin.hosts[0]), 30)
            .await,
    );
    let listed = slots(
        &app,
        &single,
        day,
        &[("calendarId", &round_robin.hosts[0]), ("hosts", "true")],
    )
    .await;
    assert_eq!(lines(&listed, &names), half_hours("00:00", "23:30", "H0"));
    let listed = slots(&app, &single, day, &[("calendarId", &round_robin.hosts[0])]).await;
    assert!(
        listed.iter().all(|s| s.get("hosts").is_none()),
        "{listed:?}"
    );
}

// ----- round-robin bookings -----

async fn eight_simultaneous_bookings_of_one_slot_over_five_hosts_book_five_hosts_once_each(
    app: TestApp,
) {
    let day = Day::monday();
    let team = team(&app, "roundRobin", 5).await;
    let start = day.at("10:00");
    let body = team.booking(&start);
    let responses = join_all((0..8).map(|_| book(&app, &app.key, &body))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    let created: Vec<Value> = responses
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| assert_ok(r, 201))
        .collect();
    assert_eq!(
        created.len(),
        5,
        "8 bookings of one slot over 5 free hosts: exactly 5 booked; statuses: {statuses:?}"
    );
    for resp in responses.iter().filter(|r| r.status != 201) {
        assert_busy(resp, &start);
    }
    let booked_hosts: BTreeSet<String> = created.iter().map(calendar_of).collect();
    let all_hosts: BTreeSet<String> = team.hosts.iter().cloned().collect();
    assert_eq!(
        booked_hosts, all_hosts,
        "each booking on a distinct host: {created:?}"
    );
    for event in &created {
        assert_eq!(event["startTime"], json!(start), "{event}");
        assert_eq!(event["eventTypeId"], json!(team.event_type_id), "{event}");
        assert_no_group(event);
    }
    for host in &team.hosts {
        let live = live_events_on(&app, host).await;
        assert_eq!(live.len(), 1, "one booking on host {host}: {live:?}");
    }
    // The slot is gone; the next one is there with every host.
    let listed = slots(&app, &team.event_type_id, day, &[("hosts", "true")]).await;
    assert_eq!(
        hosts_at(&listed, &start),
        None,
        "10:00 is taken on every host"
    );
    assert_eq!(
        hosts_at(&listed, &day.at("10:30")),
        Some(sorted(team.hosts.clone()))
    );
    // And a ninth booking is refused.
    assert_busy(&book(&app, &app.key, &body).await, &start);
}

async fn a_free_host_of_higher_priority_gets_every_booking_while_it_is_free(app: TestApp) {
    let day = Day::monday();
    let hosts = [
        calendar(&app, &app.key, "H0").await,
        calendar(&app, &app.key, "H1").await,
        calendar(&app, &app.key, "H2").await,
    ];
    let type_id = team_type(
        &app,
        &app.key,
        "roundRobin",
        json!([
            {"calendarId": hosts[0]},
            {"calendarId": hosts[1], "priority": 4},
            {"calendarId": hosts[2], "priority": 2},
        ]),
    )
    .await;
    let mut got = Vec::new();
    for t in ["09:00", "09:30", "10:00"] {
        let event = booked(&app, &app.key, &team_booking(&type_id, &day.at(t))).await;
        got.push(calendar_of(&event));
    }
    assert_eq!(
        got,
        vec![hosts[1].clone(); 3],
        "H1 (priority 4) takes every booking"
    );
    // H1 busy: the booking goes to an equal host of priority 2, the first listed.
    let plain = plain_type(&app).await;
    occupy(&app, &plain, &hosts[1], &day.at("10:30")).await;
    let event = booked(&app, &app.key, &team_booking(&type_id, &day.at("10:30"))).await;
    assert_eq!(calendar_of(&event), hosts[0], "{event}");
    // Free again, H1 takes it again whatever its count.
    let event = booked(&app, &app.key, &team_booking(&type_id, &day.at("11:00"))).await;
    assert_eq!(calendar_of(&event), hosts[1], "{event}");
}

async fn bookings_are_shared_by_weight_one_to_three_over_eight_sequential_bookings(app: TestApp) {
    let day = Day::monday();
    let light = calendar(&app, &app.key, "Peso 1").await;
    let heavy = calendar(&app, &app.key, "Peso 3").await;
    let type_id = team_type(
        &app,
        &app.key,
        "roundRobin",
        json!([{"calendarId": light, "weight": 1}, {"calendarId": heavy, "weight": 3}]),
    )
    .await;
    let mut got = Vec::new();
    for i in 0..8 {
        let start = plus_minutes(&day.at("09:00"), 30 * i);
        let event = booked(&app, &app.key, &team_booking(&type_id, &start)).await;
        got.push(if calendar_of(&event) == light {
            "w1"
        } else {
            "w3"
        });
    }
    let light_count = got.iter().filter(|g| **g == "w1").count();
    assert_eq!(
        (light_count, got.len() - light_count),
        (2, 6),
        "weights 1 and 3 share 8 bookings 2 and 6: {got:?}"
    );
    // count/weight smallest, ties to the higher weight: w3, w1, w3, w3, w3, w1, w3, w3.
    assert_eq!(
        got,
        ["w3", "w1", "w3", "w3", "w3", "w1", "w3", "w3"],
        "the order of assignment"
    );
    assert_eq!(live_events_on(&app, &light).await.len(), 2);
    assert_eq!(live_events_on(&app, &heavy).await.len(), 6);
}

async fn ties_go_to_the_first_listed_host_and_cancelled_bookings_do_not_count(app: TestApp) {
    let day = Day::monday();
    let team = team(&app, "roundRobin", 3).await;
    let mut events = Vec::new();
    for t in ["09:00", "09:30", "10:00"] {
        events.push(booked(&app, &app.key, &team.booking(&day.at(t))).await);
    }
    let got: Vec<String> = events.iter().map(calendar_of).collect();
    assert_eq!(got, team.hosts, "equal hosts in the order listed");
    // H1's booking is cancelled: H1 has the fewest again.
    cancel(&app, &id_of(&events[1])).await;
    let event = booked(&app, &app.key, &team.booking(&day.at("10:30"))).await;
    assert_eq!(calendar_of(&event), team.hosts[1], "{event}");
    // All even again: the first listed.
    let event = booked(&app, &app.key, &team.booking(&day.at("11:00"))).await;
    assert_eq!(calendar_of(&event), team.hosts[0], "{event}");
}

async fn naming_a_hosts_calendar_books_that_host_or_is_409_and_a_non_host_is_400(app: TestApp) {
    let day = Day::monday();
    let team = team(&app, "roundRobin", 2).await;
    let start = day.at("10:00");
    let named = with(team.booking(&start), json!({"calendarId": team.hosts[1]}));
    let on_second = booked(&app, &app.key, &named).await;
    assert_eq!(calendar_of(&on_second), team.hosts[1], "{on_second}");
    assert_no_group(&on_second);
    // The named host is busy now: 409, even though the other host is free.
    let error = assert_busy(&book(&app, &app.key, &named).await, &start);
    assert!(
        error["details"]["conflictingEventId"].is_null()
            || error["details"]["conflictingEventId"] == on_second["id"],
        "a conflict names the event in the way, if anything: {error}"
    );
    // Without a calendar (or with a null one) the free host takes it.
    let explicit_null = with(team.booking(&start), json!({"calendarId": null}));
    let on_first = booked(&app, &app.key, &explicit_null).await;
    assert_eq!(calendar_of(&on_first), team.hosts[0], "{on_first}");

    // A calendar of the organization that is not a host: 400 naming calendarId.
    let outsider = calendar(&app, &app.key, "Non ospite").await;
    let later = day.at("11:00");
    let body = with(team.booking(&later), json!({"calendarId": outsider}));
    assert_validation(&book(&app, &app.key, &body).await, &["calendarId"]);
    assert!(events_on(&app, &outsider).await.is_empty());
    // A hold naming a non-host is refused the same way.
    let body = with(team.hold_body(&later), json!({"calendarId": outsider}));
    assert_validation(&hold(&app, &app.key, &body).await, &["calendarId"]);
    // Both hosts still have exactly their one booking.
    for host in &team.hosts {
        assert_eq!(live_events_on(&app, host).await.len(), 1, "{host}");
    }
}

async fn a_round_robin_booking_when_every_host_is_busy_is_409_conflict_with_next_slots(
    app: TestApp,
) {
    let day = Day::monday();
    let team = team(&app, "roundRobin", 2).await;
    let plain = plain_type(&app).await;
    let start = day.at("10:00");
    occupy(&app, &plain, &team.hosts[0], &start).await;
    occupy(&app, &plain, &team.hosts[1], &start).await;
    let resp = book(&app, &app.key, &team.booking(&start)).await;
    let error = assert_busy(&resp, &start);
    let next = error["details"]["nextSlots"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !next.is_empty(),
        "free times are offered: {}",
        resp.describe()
    );
    // The offers can be booked.
    let offered = next[0]["startTime"].as_str().unwrap_or_default().to_owned();
    booked(&app, &app.key, &team.booking(&offered)).await;
    for host in &team.hosts {
        let live = live_events_on(&app, host).await;
        assert!(
            live.iter()
                .all(|e| e["eventTypeId"] != json!(team.event_type_id)
                    || e["startTime"] != json!(start)),
            "nothing booked at the refused time: {live:?}"
        );
    }
}

async fn a_round_robin_reschedule_stays_on_its_host_and_is_409_when_that_host_is_busy(
    app: TestApp,
) {
    let day = Day::monday();
    let team = team(&app, "roundRobin", 2).await;
    let plain = plain_type(&app).await;
    let event = booked(&app, &app.key, &team.booking(&day.at("10:00"))).await;
    let id = id_of(&event);
    assert_eq!(calendar_of(&event), team.hosts[0]);
    let blocker = occupy(&app, &plain, &team.hosts[0], &day.at("11:00")).await;

    // H1 is free at 11:00, but the event stays on its host.
    let resp = reschedule(&app, &id, &day.at("11:00"), json!({})).await;
    assert_slot_conflict(&resp, &blocker);
    let unchanged = read_event(&app, &id).await;
    assert_eq!(
        unchanged["startTime"],
        json!(day.at("10:00")),
        "{unchanged}"
    );
    assert_eq!(calendar_of(&unchanged), team.hosts[0]);
    assert_eq!(unchanged["status"], json!("confirmed"));
    assert!(live_events_on(&app, &team.hosts[1]).await.is_empty());

    // A free time for its host moves it, same event, same host.
    let moved = assert_ok(
        &reschedule(&app, &id, &day.at("12:00"), json!({})).await,
        200,
    );
    assert_eq!(id_of(&moved), id);
    assert_eq!(calendar_of(&moved), team.hosts[0]);
    assert_eq!(moved["startTime"], json!(day.at("12:00")), "{moved}");
    let moved = assert_ok(
        &reschedule(&app, &id, &day.at("12:30"), json!({"reassign": false})).await,
        200,
    );
    assert_eq!(id_of(&moved), id);
    assert_eq!(calendar_of(&moved), team.hosts[0]);
}

async fn a_round_robin_reschedule_with_reassign_moves_to_another_free_host_as_a_new_event(
    app: TestApp,
) {
    let day = Day::monday();
    let team = team(&app, "roundRobin", 2).await;
    let plain = plain_type(&app).await;
    let original = booked(&app, &app.key, &team.booking(&day.at("10:00"))).await;
    let old_id = id_of(&original);
    assert_eq!(calendar_of(&original), team.hosts[0]);
    occupy(&app, &plain, &team.hosts[0], &day.at("11:00")).await;

    let resp = reschedule(&app, &old_id, &day.at("11:00"), json!({"reassign": true})).await;
    let moved = assert_ok(&resp, 200);
    let new_id = id_of(&moved);
    assert_ne!(
        new_id, old_id,
        "another host's booking is a new event: {moved}"
    );
    assert_eq!(calendar_of(&moved), team.hosts[1], "{moved}");
    assert_eq!(moved["startTime"], json!(day.at("11:00")), "{moved}");
    assert_eq!(moved["endTime"], json!(day.at("11:30")), "{moved}");
    assert_eq!(moved["status"], json!("confirmed"), "{moved}");
    assert_eq!(moved["eventTypeId"], json!(team.event_type_id), "{moved}");
    let old = read_event(&app, &old_id).await;
    assert_eq!(
        old["status"],
        json!("cancelled"),
        "the old event is cancelled: {old}"
    );
    let stored = read_event(&app, &new_id).await;
    assert_eq!(calendar_of(&stored), team.hosts[1], "{stored}");
    assert_eq!(stored["startTime"], json!(day.at("11:00")), "{stored}");
    // 10:00 is free again on H0.
    let listed = slots(&app, &team.event_type_id, day, &[("hosts", "true")]).await;
    assert_eq!(
        hosts_at(&listed, &day.at("10:00")),
        Some(sorted(team.hosts.clone()))
    );
    assert_eq!(
        hosts_at(&listed, &day.at("11:00")),
        None,
        "H0 blocked, H1 booked"
    );

    // When its own host can take the new time, reassign simply moves it.
    let resp = reschedule(&app, &new_id, &day.at("12:00"), json!({"reassign": true})).await;
    let again = assert_ok(&resp, 200);
    assert_eq!(id_of(&again), new_id, "{again}");
    assert_eq!(calendar_of(&again), team.hosts[1], "{again}");
    assert_eq!(again["startTime"], json!(day.at("12:00")), "{again}");

    // No host can take it: 409, and it stays.
    occupy(&app, &plain, &team.hosts[0], &day.at("13:00")).await;
    occupy(&app, &plain, &team.hosts[1], &day.at("13:00")).await;
    let resp = reschedule(&app, &new_id, &day.at("13:00"), json!({"reassign": true})).await;
    assert_error(&resp, 409, "slot_unavailable");
    let stays = read_event(&app, &new_id).await;
    assert_eq!(stays["startTime"], json!(day.at("12:00")), "{stays}");
    assert_eq!(stays["status"], json!("confirmed"), "{stays}");
    let live_on_h1: Vec<Value> = live_events_on(&app, &team.hosts[1])
        .await
        .into_iter()
        .filter(|e| e["eventTypeId"] == json!(team.event_type_id))
        .collect();
    assert_eq!(ids(&live_on_h1), vec![new_id], "nothing else was written");
}

// ----- collective bookings -----

async fn a_collective_booking_writes_one_row_per_host_with_the_organizer_first(app: TestApp) {
    let day = Day::monday();
    let team = team(&app, "collective", 3).await;
    let start = day.at("10:00");
    let body = with(
        team.booking(&start),
        json!({"customerName": "Giulia Verdi"}),
    );
    let created = booked(&app, &app.key, &body).await;
    assert_has_keys(&created, &EVENT_FIELDS, "a collective appointment");
    assert_eq!(
        calendar_of(&created),
        team.hosts[0],
        "the organizer's row: {created}"
    );
    assert_eq!(created["startTime"], json!(start));
    let rows = group_ids(&created, &team);
    assert_eq!(
        rows[0],
        id_of(&created),
        "the organizer's row is the answer: {created}"
    );
    assert_rows(&app, &team, &rows, &start, "confirmed").await;
    for (host, row) in team.hosts.iter().zip(&rows) {
        let listed = events_on(&app, host).await;
        assert_eq!(ids(&listed), vec![row.clone()], "the appointment on {host}");
        assert_eq!(group_ids(&listed[0], &team), rows, "{:?}", listed[0]);
        assert_eq!(
            listed[0]["customerName"],
            json!("Giulia Verdi"),
            "{:?}",
            listed[0]
        );
        assert_eq!(listed[0]["startTime"], json!(start));
    }
    // The slot is gone for the team and for each host.
    assert_eq!(
        hosts_at(&slots(&app, &team.event_type_id, day, &[]).await, &start),
        None
    );
    assert_busy(&book(&app, &app.key, &team.booking(&start)).await, &start);

    // Non-team events list no group.
    let single = id_of(
        &app.create_event_type(&app.key, Some(&team.hosts[0]), 30)
            .await,
    );
    let plain = app
        .create_event(
            &app.key,
            &team.hosts[0],
            &single,
            &day.at("11:00"),
            &day.at("11:30"),
        )
        .await;
    assert_no_group(&plain);
    assert_no_group(&read_event(&app, &id_of(&plain)).await);
    let round_robin = Team {
        event_type_id: team_type(&app, &app.key, "roundRobin", plain_hosts(&team.hosts)).await,
        hosts: team.hosts.clone(),
    };
    let rr = booked(&app, &app.key, &round_robin.booking(&day.at("12:00"))).await;
    assert_no_group(&rr);
    assert_no_group(&read_event(&app, &id_of(&rr)).await);
}

async fn sixteen_simultaneous_overlapping_collective_bookings_never_double_book_a_host(
    app: TestApp,
) {
    let day = Day::monday();
    let team = team(&app, "collective", 3).await;
    let starts = [day.at("10:00"), day.at("10:15"), day.at("10:30")];
    let bodies: Vec<Value> = (0..16).map(|i| team.booking(&starts[i % 3])).collect();
    let responses = join_all(bodies.iter().map(|b| book(&app, &app.key, b))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    let mut created = Vec::new();
    for (resp, body) in responses.iter().zip(&bodies) {
        if resp.status == 201 {
            let event = assert_ok(resp, 201);
            assert_eq!(event["startTime"], body["startTime"], "{event}");
            created.push(event);
        } else {
            // A refused 10:15 may be offered 10:30 if nothing won there: nextSlots can overlap
            // the asked time, so only the code and the reason are checked.
            let error = assert_error(resp, 409, "slot_unavailable");
            assert_eq!(
                error["details"]["reason"],
                json!("conflict"),
                "{}",
                resp.describe()
            );
        }
    }
    assert!(
        !created.is_empty(),
        "at least one booking wins; statuses: {statuses:?}"
    );
    assert!(
        created.len() <= 2,
        "at most 10:00 and 10:30 fit; statuses: {statuses:?}"
    );

    // Every winner has its three rows, on the three calendars, at its time.
    let mut rows_by_host: HashMap<String, BTreeSet<String>> = HashMap::new();
    for event in &created {
        assert_eq!(calendar_of(event), team.hosts[0], "{event}");
        let rows = group_ids(event, &team);
        assert_eq!(rows[0], id_of(event));
        assert_rows(
            &app,
            &team,
            &rows,
            event["startTime"].as_str().unwrap_or_default(),
            "confirmed",
        )
        .await;
        for (host, row) in team.hosts.iter().zip(rows) {
            rows_by_host.entry(host.clone()).or_default().insert(row);
        }
    }
    // No host has two overlapping appointments, nor any row of a refused booking.
    for host in &team.hosts {
        let live = live_events_on(&app, host).await;
        for (i, a) in live.iter().enumerate() {
            for b in &live[i + 1..] {
                assert!(!overlaps(a, b), "host {host} is double-booked: {a} and {b}");
            }
        }
        let listed: BTreeSet<String> = ids(&live).into_iter().collect();
        assert_eq!(
            Some(&listed),
            rows_by_host.get(host),
            "host {host} holds exactly the winners' rows; statuses: {statuses:?}"
        );
    }
}

async fn a_collective_booking_is_409_when_one_host_is_busy_and_writes_nothing_on_the_others(
    app: TestApp,
) {
    let day = Day::monday();
    let team = team(&app, "collective", 3).await;
    let plain = plain_type(&app).await;
    let start = day.at("10:00");
    let blocker = occupy(&app, &plain, &team.hosts[1], &start).await;
    assert_busy(&book(&app, &app.key, &team.booking(&start)).await, &start);
    assert!(
        events_on(&app, &team.hosts[0]).await.is_empty(),
        "nothing on the organizer"
    );
    assert!(
        events_on(&app, &team.hosts[2]).await.is_empty(),
        "nothing on H2"
    );
    assert_eq!(
        ids(&events_on(&app, &team.hosts[1]).await),
        vec![id_of(&blocker)]
    );
    // The slot is not offered, the next one is.
    let listed = slots(&app, &team.event_type_id, day, &[]).await;
    assert!(!starts(&listed).contains(&start), "{listed:?}");
    assert!(starts(&listed).contains(&day.at("10:30")), "{listed:?}");
    booked(&app, &app.key, &team.booking(&day.at("10:30"))).await;
}

async fn rescheduling_any_row_of_a_collective_appointment_moves_every_row(app: TestApp) {
    let day = Day::monday();
    let team = team(&app, "collective", 3).await;
    let created = booked(&app, &app.key, &team.booking(&day.at("10:00"))).await;
    let rows = group_ids(&created, &team);

    // A non-organizer's row moves them all.
    let resp = reschedule(&app, &rows[1], &day.at("14:00"), json!({})).await;
    let moved = assert_ok(&resp, 200);
    assert_eq!(id_of(&moved), rows[1], "{moved}");
    assert_eq!(moved["startTime"], json!(day.at("14:00")), "{moved}");
    assert_rows(&app, &team, &rows, &day.at("14:00"), "confirmed").await;
    // The organizer's row too.
    let resp = reschedule(&app, &rows[0], &day.at("15:00"), json!({})).await;
    assert_ok(&resp, 200);
    assert_rows(&app, &team, &rows, &day.at("15:00"), "confirmed").await;

    // The old times are free on every host again; the new one is taken.
    let listed = slots(&app, &team.event_type_id, day, &[]).await;
    for t in ["10:00", "14:00"] {
        assert!(
            starts(&listed).contains(&day.at(t)),
            "{t} is free again: {listed:?}"
        );
    }
    assert!(!starts(&listed).contains(&day.at("15:00")), "{listed:?}");
    for host in &team.hosts {
        let own = slots(&app, &team.event_type_id, day, &[("calendarId", host)]).await;
        assert!(!starts(&own).contains(&day.at("15:00")), "{host}: {own:?}");
        assert!(starts(&own).contains(&day.at("10:00")), "{host}: {own:?}");
        assert_eq!(live_events_on(&app, host).await.len(), 1, "{host}");
    }
}

async fn a_collective_reschedule_blocked_by_one_host_leaves_every_row_where_it_was(app: TestApp) {
    let day = Day::monday();
    let team = team(&app, "collective", 3).await;
    let plain = plain_type(&app).await;
    let created = booked(&app, &app.key, &team.booking(&day.at("10:00"))).await;
    let rows = group_ids(&created, &team);
    occupy(&app, &plain, &team.hosts[2], &day.at("14:00")).await;

    for row in [&rows[0], &rows[1], &rows[2]] {
        let resp = reschedule(&app, row, &day.at("14:00"), json!({})).await;
        assert_error(&resp, 409, "slot_unavailable");
        assert_rows(&app, &team, &rows, &day.at("10:00"), "confirmed").await;
    }
    // No host gained a row at 14:00 of this type, and 10:00 is still taken everywhere.
    for host in &team.hosts {
        let live: Vec<Value> = live_events_on(&app, host)
            .await
            .into_iter()
            .filter(|e| e["eventTypeId"] == json!(team.event_type_id))
            .collect();
        assert_eq!(live.len(), 1, "{host}: {live:?}");
        assert_eq!(live[0]["startTime"], json!(day.at("10:00")));
    }
    // A free time still moves them all.
    assert_ok(
        &reschedule(&app, &rows[2], &day.at("14:30"), json!({})).await,
        200,
    );
    assert_rows(&app, &team, &rows, &day.at("14:30"), "confirmed").await;
}

async fn cancelling_a_non_organizer_row_cancels_every_row_and_frees_the_time(app: TestApp) {
    let day = Day::monday();
    let team = team(&app, "collective", 3).await;
    let start = day.at("10:00");
    let created = booked(&app, &app.key, &team.booking(&start)).await;
    let rows = group_ids(&created, &team);
    let cancelled = cancel(&app, &rows[2]).await;
    assert_eq!(cancelled["status"], json!("cancelled"), "{cancelled}");
    assert_rows(&app, &team, &rows, &start, "cancelled").await;
    for host in &team.hosts {
        assert!(live_events_on(&app, host).await.is_empty(), "{host}");
    }
    // Offered again, on every host, and bookable.
    let listed = slots(&app, &team.event_type_id, day, &[]).await;
    assert!(starts(&listed).contains(&start), "{listed:?}");
    let again = booked(&app, &app.key, &team.booking(&start)).await;
    let new_rows = group_ids(&again, &team);
    assert!(
        new_rows.iter().all(|r| !rows.contains(r)),
        "a new appointment: {again}"
    );
    // Cancelling the organizer's row works the same way.
    cancel(&app, &new_rows[0]).await;
    assert_rows(&app, &team, &new_rows, &start, "cancelled").await;
}

// ----- holds -----

async fn a_round_robin_hold_blocks_one_host_and_the_slot_stays_offered_by_the_other(app: TestApp) {
    let day = Day::monday();
    let team = team(&app, "roundRobin", 2).await;
    let holder = second_key(&app).await;
    let start = day.at("10:00");

    let held = assert_ok(&hold(&app, &holder, &team.hold_body(&start)).await, 201);
    assert_eq!(held["startTime"], json!(start), "{held}");
    assert_eq!(held["endTime"], json!(end_of(&start)), "{held}");
    let held_host = calendar_of(&held);
    assert!(team.hosts.contains(&held_host), "a host is held: {held}");
    let other = team
        .hosts
        .iter()
        .find(|h| **h != held_host)
        .cloned()
        .unwrap_or_default();

    // Still offered, by the other host only.
    let listed = slots(&app, &team.event_type_id, day, &[("hosts", "true")]).await;
    assert_eq!(
        hosts_at(&listed, &start),
        Some(vec![other.clone()]),
        "{listed:?}"
    );
    let own = slots(
        &app,
        &team.event_type_id,
        day,
        &[("calendarId", &held_host)],
    )
    .await;
    assert!(
        !starts(&own).contains(&start),
        "the held host's slot is gone: {own:?}"
    );
    let own = slots(&app, &team.event_type_id, day, &[("calendarId", &other)]).await;
    assert!(starts(&own).contains(&start), "{own:?}");

    // Someone else books it: the other host.
    let theirs = booked(&app, &app.key, &team.booking(&start)).await;
    assert_eq!(calendar_of(&theirs), other, "{theirs}");
    // Now no host is free for anyone but the holder.
    assert_refused(&book(&app, &app.key, &team.booking(&start)).await, &start);
    let another = second_key(&app).await;
    assert_refused(&hold(&app, &another, &team.hold_body(&start)).await, &start);
    let named = with(team.booking(&start), json!({"calendarId": held_host}));
    assert_refused(&book(&app, &app.key, &named).await, &start);

    // The holder books the held host.
    let body = with(team.booking(&start), json!({"holdId": held["id"]}));
    let mine = booked(&app, &holder, &body).await;
    assert_eq!(calendar_of(&mine), held_host, "{mine}");
    assert_eq!(mine["startTime"], json!(start));
    assert_eq!(live_events_on(&app, &held_host).await.len(), 1);
    assert_eq!(live_events_on(&app, &other).await.len(), 1);

    // A released round-robin hold frees its host at once.
    let later = day.at("11:00");
    let second = assert_ok(&hold(&app, &holder, &team.hold_body(&later)).await, 201);
    let listed = slots(&app, &team.event_type_id, day, &[("hosts", "true")]).await;
    assert_eq!(
        hosts_at(&listed, &later).map(|h| h.len()),
        Some(1),
        "{listed:?}"
    );
    let resp = release(&app, &holder, &id_of(&second)).await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    let listed = slots(&app, &team.event_type_id, day, &[("hosts", "true")]).await;
    assert_eq!(hosts_at(&listed, &later), Some(sorted(team.hosts.clone())));
}

async fn a_collective_hold_blocks_every_host_and_releasing_it_frees_them_all(app: TestApp) {
    let day = Day::monday();
    let team = team(&app, "collective", 3).await;
    let holder = second_key(&app).await;
    let plain = plain_type(&app).await;
    let start = day.at("10:00");

    let held = assert_ok(&hold(&app, &holder, &team.hold_body(&start)).await, 201);
    assert_eq!(calendar_of(&held), team.hosts[0], "the organizer: {held}");
    assert_eq!(held["startTime"], json!(start), "{held}");

    let listed = slots(&app, &team.event_type_id, day, &[]).await;
    assert!(!starts(&listed).contains(&start), "{listed:?}");
    for host in &team.hosts {
        let own = slots(&app, &team.event_type_id, day, &[("calendarId", host)]).await;
        assert!(!starts(&own).contains(&start), "{host} is held: {own:?}");
        assert!(starts(&own).contains(&day.at("10:30")), "{host}: {own:?}");
        // Any other booking of that time on the host is refused.
        let body = event_body(host, &plain, &start, &end_of(&start));
        assert_refused(&book(&app, &app.key, &body).await, &start);
    }
    assert_refused(&book(&app, &app.key, &team.booking(&start)).await, &start);
    let another = second_key(&app).await;
    assert_refused(&hold(&app, &another, &team.hold_body(&start)).await, &start);
    for host in &team.hosts {
        assert!(
            events_on(&app, host).await.is_empty(),
            "holds are not events: {host}"
        );
    }

    let resp = release(&app, &holder, &id_of(&held)).await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    let listed = slots(&app, &team.event_type_id, day, &[]).await;
    assert!(starts(&listed).contains(&start), "{listed:?}");
    for host in &team.hosts {
        let own = slots(&app, &team.event_type_id, day, &[("calendarId", host)]).await;
        assert!(
            starts(&own).contains(&start),
            "{host} is free again: {own:?}"
        );
    }
    // Free on every host: a plain booking on the last host, then the team is refused again.
    let body = event_body(&team.hosts[2], &plain, &start, &end_of(&start));
    let blocker = assert_ok(&book(&app, &app.key, &body).await, 201);
    assert_busy(&book(&app, &app.key, &team.booking(&start)).await, &start);
    cancel(&app, &id_of(&blocker)).await;
    let created = booked(&app, &app.key, &team.booking(&start)).await;
    group_ids(&created, &team);
}

async fn booking_with_a_collective_hold_id_books_every_held_host(app: TestApp) {
    let day = Day::monday();
    let team = team(&app, "collective", 3).await;
    let holder = second_key(&app).await;
    let start = day.at("10:00");
    let held = assert_ok(&hold(&app, &holder, &team.hold_body(&start)).await, 201);

    let body = with(team.booking(&start), json!({"holdId": held["id"]}));
    let created = booked(&app, &holder, &body).await;
    assert_eq!(calendar_of(&created), team.hosts[0], "{created}");
    assert_eq!(created["bookedVia"], json!("api"), "{created}");
    let rows = group_ids(&created, &team);
    assert_rows(&app, &team, &rows, &start, "confirmed").await;
    // The hold is used up.
    assert_error(
        &release(&app, &holder, &id_of(&held)).await,
        404,
        "not_found",
    );
    assert_busy(&book(&app, &app.key, &team.booking(&start)).await, &start);
    for host in &team.hosts {
        assert_eq!(live_events_on(&app, host).await.len(), 1, "{host}");
    }
}

// ----- publishable keys and isolation -----

async fn a_publishable_key_books_a_round_robin_type_and_is_never_told_the_event_in_the_way(
    app: TestApp,
) {
    let day = Day::monday();
    let team = team(&app, "roundRobin", 2).await;
    let widget = app
        .publishable_key(&[&team.event_type_id], &["https://shop.example"], None)
        .await;
    let start = day.at("10:00");
    let first = booked(&app, &widget, &team.booking(&start)).await;
    assert_eq!(first["bookedVia"], json!("widget"), "{first}");
    assert_eq!(calendar_of(&first), team.hosts[0], "{first}");
    let second = booked(&app, &widget, &team.booking(&start)).await;
    assert_eq!(calendar_of(&second), team.hosts[1], "{second}");

    let named = with(team.booking(&start), json!({"calendarId": team.hosts[0]}));
    let refusals = [
        book(&app, &widget, &team.booking(&start)).await,
        book(&app, &widget, &named).await,
        hold(&app, &widget, &team.hold_body(&start)).await,
    ];
    for resp in &refusals {
        let error = assert_refused(resp, &start);
        assert!(
            error["details"]["conflictingEventId"].is_null(),
            "a publishable key was told the event in the way: {}",
            resp.describe()
        );
        for event in [&first, &second] {
            assert!(
                !resp.text.contains(&id_of(event)),
                "the answer names another booking: {}",
                resp.describe()
            );
        }
    }
    // It reads the team's availability without a calendar.
    let listed = slots_as(&app, &widget, &team.event_type_id, day, &[]).await;
    assert!(!starts(&listed).contains(&start), "{listed:?}");
    assert!(starts(&listed).contains(&day.at("10:30")), "{listed:?}");
}

async fn another_organizations_key_gets_404_for_a_team_type_and_its_team_type_is_invisible(
    app: TestApp,
) {
    let day = Day::monday();
    let team = team(&app, "roundRobin", 2).await;
    let collective = team_type(&app, &app.key, "collective", plain_hosts(&team.hosts)).await;
    let (other_org, other_key) = app.new_org("Studio Legale Ferri").await;
    let start = day.at("10:00");
    let (from, to) = (day.at("00:00"), day.next().at("00:00"));

    for type_id in [&team.event_type_id, &collective] {
        let resp = app
            .get_as(&other_key, &format!("{EVENT_TYPES}/{type_id}"))
            .await;
        assert_error(&resp, 404, "not_found");
        let resp = app
            .get_query_as(
                &other_key,
                AVAILABILITY,
                &[
                    ("eventTypeId", type_id.as_str()),
                    ("dateFrom", &from),
                    ("dateTo", &to),
                ],
            )
            .await;
        assert_error(&resp, 404, "not_found");
        let resp = app
            .get_query_as(
                &other_key,
                AVAILABILITY,
                &[
                    ("eventTypeId", type_id.as_str()),
                    ("calendarId", team.hosts[0].as_str()),
                    ("dateFrom", &from),
                    ("dateTo", &to),
                ],
            )
            .await;
        assert_error(&resp, 404, "not_found");
        let body = team_booking(type_id, &start);
        assert_error(&book(&app, &other_key, &body).await, 404, "not_found");
        let body = json!({"eventTypeId": type_id, "startTime": start});
        assert_error(&hold(&app, &other_key, &body).await, 404, "not_found");
        let resp = app
            .patch_as(
                &other_key,
                &format!("{EVENT_TYPES}/{type_id}"),
                &json!({"assignment": "single"}),
            )
            .await;
        assert_error(&resp, 404, "not_found");
    }
    for host in &team.hosts {
        assert!(
            events_on(&app, host).await.is_empty(),
            "nothing booked on {host}"
        );
    }
    let (theirs, _) = assert_list(&app.get_as(&other_key, EVENT_TYPES).await);
    assert!(
        theirs.is_empty(),
        "our team types are not theirs: {theirs:?}"
    );

    // Their team type is invisible to us, and our calendars are not hosts they can book.
    let their_calendar = calendar(&app, &other_key, "Avv. Ferri").await;
    let their_type = team_type(
        &app,
        &other_key,
        "roundRobin",
        plain_hosts(std::slice::from_ref(&their_calendar)),
    )
    .await;
    assert_error(
        &app.get(&format!("{EVENT_TYPES}/{their_type}")).await,
        404,
        "not_found",
    );
    let resp = app
        .get_query(
            AVAILABILITY,
            &[
                ("eventTypeId", their_type.as_str()),
                ("dateFrom", &from),
                ("dateTo", &to),
            ],
        )
        .await;
    assert_error(&resp, 404, "not_found");
    assert_error(
        &book(&app, &app.key, &team_booking(&their_type, &start)).await,
        404,
        "not_found",
    );
    let (ours, _) = assert_list(&app.get_query(EVENT_TYPES, &[("limit", "100")]).await);
    assert!(
        ours.iter().all(|t| t["id"] != json!(their_type)),
        "their team type is not listed: {ours:?}"
    );
    // A read-only key of theirs sees nothing of ours either.
    let reader = app.key_with_scopes(other_org, &[Scope::CalendarRead]).await;
    let resp = app
        .get_as(&reader, &format!("{EVENT_TYPES}/{}", team.event_type_id))
        .await;
    assert_error(&resp, 404, "not_found");
    // Their own booking works on their type.
    let event = booked(&app, &other_key, &team_booking(&their_type, &start)).await;
    assert_eq!(calendar_of(&event), their_calendar);
}

// ----- at scale -----

async fn a_thousand_sequential_round_robin_bookings_over_weights_1_1_2_4_land_within_five_percent_of_the_shares(
    app: TestApp,
) {
    let day = Day::monday();
    // 1,000 bookings and their set-up exceed the default 600 requests a minute of one key: a key
    // with a budget of its own, as an operator gives a busy integration.
    let key = quando_api::admin::create_key(
        &app.db,
        app.org_id,
        &[Scope::CalendarRead, Scope::CalendarWrite],
        Some("round-robin load"),
        Some(1_000_000),
    )
    .await
    .unwrap_or_else(|e| panic!("admin::create_key failed: {e}"))
    .key;
    let weights = [1u32, 1, 2, 4];
    let mut hosts = Vec::with_capacity(weights.len());
    for w in weights {
        hosts.push(calendar(&app, &key, &format!("Peso {w}")).await);
    }
    let body: Vec<Value> = hosts
        .iter()
        .zip(weights)
        .map(|(c, w)| json!({"calendarId": c, "weight": w}))
        .collect();
    let type_id = team_type(&app, &key, "roundRobin", Value::Array(body)).await;

    // Consecutive half hours from Monday 00:00 UTC: every host is free at each, so only the
    // fairness rule picks. Sequential, because each pick depends on the counts before it.
    const BOOKINGS: usize = 1000;
    let first = day.at("00:00");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..BOOKINGS {
        let start = plus_minutes(&first, 30 * i as i64);
        let event = booked(&app, &key, &team_booking(&type_id, &start)).await;
        let host = calendar_of(&event);
        assert!(hosts.contains(&host), "booking {i} is on a host: {event}");
        *counts.entry(host).or_default() += 1;
    }

    let got: Vec<usize> = hosts
        .iter()
        .map(|h| counts.get(h).copied().unwrap_or(0))
        .collect();
    let total_weight: u32 = weights.iter().sum();
    for ((host, w), n) in hosts.iter().zip(weights).zip(&got) {
        let share = (BOOKINGS as f64) * f64::from(w) / f64::from(total_weight);
        assert!(
            (*n as f64 - share).abs() <= 0.05 * share,
            "weights {weights:?} over {BOOKINGS} bookings: got {got:?}, the host of weight {w} \
             ({host}) should have {share} within 5%"
        );
    }
    // The calendars agree with the answers.
    for (host, n) in hosts.iter().zip(&got) {
        let resp = app
            .get_query_as(
                &key,
                EVENTS,
                &[("calendarId", host.as_str()), ("limit", "1")],
            )
            .await;
        let (_, pagination) = assert_list(&resp);
        assert_eq!(
            pagination["total"],
            json!(n),
            "the events listed on {host}: {pagination}"
        );
    }
}

// ----- webhooks -----

/// A webhook receiver on loopback: answers 204 to every POST to `/hook` and keeps each body,
/// parsed, in the order received.
#[derive(Clone, Default)]
struct Hooks {
    got: Arc<Mutex<Vec<Value>>>,
}

#[poem::handler]
async fn hook(body: Vec<u8>, hooks: poem::web::Data<&Hooks>) -> poem::http::StatusCode {
    let message = serde_json::from_slice(&body).unwrap_or(Value::Null);
    hooks
        .got
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(message);
    poem::http::StatusCode::NO_CONTENT
}

/// How long a delivery may take to arrive (as in `webhooks.rs`).
const HOOK_WAIT: Duration = Duration::from_secs(15);

impl Hooks {
    /// Starts a receiver on a free port; answers it and its URL.
    async fn start() -> (Hooks, String) {
        use poem::EndpointExt;
        use poem::listener::{Acceptor, Listener};
        let hooks = Hooks::default();
        let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap_or_else(|e| panic!("the webhook receiver cannot listen: {e}"));
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .unwrap_or_else(|| panic!("the webhook receiver has no socket address"));
        let app = poem::Route::new()
            .at("/hook", poem::post(hook))
            .data(hooks.clone());
        tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        (hooks, format!("http://{addr}/hook"))
    }

    fn got(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Waits (up to `HOOK_WAIT`, asking every 50 ms) until `n` messages arrived, then 800 ms
    /// more for any that should not come (as `webhooks.rs` does); answers every message.
    async fn settle(&self, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + HOOK_WAIT;
        while self.got().len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        self.got()
    }
}

/// Each message as `kind data.id`, to quote in failures.
fn told(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m["event"].as_str().unwrap_or("?"),
                m["data"]["id"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

async fn a_collective_appointment_sends_one_webhook_naming_every_host_and_one_when_cancelled(
    app: TestApp,
) {
    let day = Day::monday();
    let (hooks, url) = Hooks::start().await;
    // No `events`: every kind.
    let endpoint = app.post("/v1/webhooks", &json!({"url": url})).await;
    assert_ok(&endpoint, 201);
    let team = team(&app, "collective", 3).await;
    let round_robin = team_type(&app, &app.key, "roundRobin", plain_hosts(&team.hosts)).await;

    let created = booked(&app, &app.key, &team.booking(&day.at("10:00"))).await;
    let rows = group_ids(&created, &team);
    let cancelled = cancel(&app, &rows[1]).await;
    assert_eq!(cancelled["status"], json!("cancelled"), "{cancelled}");
    let assigned = booked(
        &app,
        &app.key,
        &team_booking(&round_robin, &day.at("11:00")),
    )
    .await;

    // One message per appointment and change: created and cancelled for the collective
    // appointment, created for the round-robin booking.
    let got = hooks.settle(3).await;
    let about_rows: Vec<&Value> = got
        .iter()
        .filter(|m| {
            m["data"]["id"]
                .as_str()
                .is_some_and(|id| rows.iter().any(|r| r == id))
        })
        .collect();
    let kinds: Vec<&str> = about_rows
        .iter()
        .map(|m| m["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        ["appointment.created", "appointment.cancelled"],
        "one message for the collective appointment, one for its cancellation; received: {:?}",
        told(&got)
    );
    assert_eq!(
        got.len(),
        3,
        "nothing but the two appointments' messages; received: {:?}",
        told(&got)
    );
    for message in &about_rows {
        let data = &message["data"];
        assert_eq!(
            data["id"],
            json!(rows[0]),
            "the organizer's row tells: {message}"
        );
        assert_eq!(calendar_of(data), team.hosts[0], "{message}");
        assert_eq!(data["startTime"], json!(day.at("10:00")), "{message}");
        assert_eq!(
            group_ids(data, &team),
            rows,
            "the message names every host and row: {message}"
        );
    }
    assert_eq!(about_rows[0]["data"]["status"], json!("confirmed"));
    assert_eq!(about_rows[1]["data"]["status"], json!("cancelled"));

    let about_assigned: Vec<&Value> = got
        .iter()
        .filter(|m| m["data"]["id"] == assigned["id"])
        .collect();
    assert_eq!(
        about_assigned.len(),
        1,
        "one message for the round-robin booking; received: {:?}",
        told(&got)
    );
    let message = about_assigned[0];
    assert_eq!(message["event"], json!("appointment.created"), "{message}");
    assert_eq!(
        message["data"]["calendarId"], assigned["calendarId"],
        "the assigned host's calendar: {message}"
    );
    assert_eq!(
        message["data"]["eventTypeId"],
        json!(round_robin),
        "{message}"
    );
    assert_no_group(&message["data"]);
}

// ----- feeds -----

/// Makes `calendar_id`'s iCalendar feed; answers its path (`/feeds/qfeed_....ics`).
async fn new_feed(app: &TestApp, calendar_id: &str) -> String {
    let made = assert_ok(
        &app.get(&format!("/v1/calendar/calendars/{calendar_id}/feed"))
            .await,
        201,
    );
    let url = made["url"]
        .as_str()
        .unwrap_or_else(|| panic!("a new feed shows its url: {made}"));
    let at = url
        .find("/feeds/")
        .unwrap_or_else(|| panic!("not a feed URL: {url}"));
    url[at..].to_owned()
}

/// The VEVENTs of the feed at `path`, fetched without a key, each as its unfolded lines.
async fn feed_events(app: &TestApp, path: &str) -> Vec<Vec<String>> {
    let resp = send(app.bare(Method::GET, path)).await;
    assert_eq!(resp.status, 200, "{path}: {}", resp.describe());
    assert!(
        resp.content_type().starts_with("text/calendar"),
        "{path}: {}",
        resp.describe()
    );
    let mut events = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in resp.text.replace("\r\n ", "").split("\r\n") {
        match line {
            "BEGIN:VEVENT" => current = Some(Vec::new()),
            "END:VEVENT" => events.extend(current.take()),
            _ => {
                if let Some(c) = current.as_mut() {
                    c.push(line.to_owned());
                }
            }
        }
    }
    events
}

/// The feed UID of event `id`.
fn uid(id: &str) -> String {
    format!("UID:{}@quando", id.replace('-', ""))
}

/// The UIDs of a feed's VEVENTs, sorted.
fn uids(events: &[Vec<String>]) -> Vec<String> {
    let mut found: Vec<String> = events
        .iter()
        .flat_map(|e| e.iter().filter(|l| l.starts_with("UID:")).cloned())
        .collect();
    found.sort();
    found
}

/// The one VEVENT of event `id` in a feed.
#[track_caller]
fn feed_event<'a>(events: &'a [Vec<String>], id: &str) -> &'a [String] {
    let uid = uid(id);
    let found: Vec<&Vec<String>> = events.iter().filter(|e| e.contains(&uid)).collect();
    assert_eq!(found.len(), 1, "one VEVENT with {uid} in {events:?}");
    found[0]
}

/// `20270301T100000Z` of an RFC 3339 UTC time.
fn ics_stamp(t: &str) -> String {
    instant(t).format("%Y%m%dT%H%M%SZ").to_string()
}

async fn each_hosts_feed_shows_the_collective_appointment_and_a_round_robin_booking_only_on_its_host(
    app: TestApp,
) {
    let day = Day::monday();
    let team = team(&app, "collective", 3).await;
    let round_robin = team_type(&app, &app.key, "roundRobin", plain_hosts(&team.hosts)).await;
    let mut feeds = Vec::new();
    for host in &team.hosts {
        feeds.push(new_feed(&app, host).await);
    }
    let start = day.at("10:00");
    let created = booked(&app, &app.key, &team.booking(&start)).await;
    let rows = group_ids(&created, &team);
    let assigned = booked(
        &app,
        &app.key,
        &team_booking(&round_robin, &day.at("11:00")),
    )
    .await;
    let assigned_host = calendar_of(&assigned);
    assert!(team.hosts.contains(&assigned_host), "{assigned}");

    for ((host, feed), row) in team.hosts.iter().zip(&feeds).zip(&rows) {
        let events = feed_events(&app, feed).await;
        // Its own row of the appointment, and the round-robin booking only where it was given.
        let mut expected = vec![uid(row)];
        if *host == assigned_host {
            expected.push(uid(&id_of(&assigned)));
        }
        expected.sort();
        assert_eq!(
            uids(&events),
            expected,
            "the feed of {host}: its row {row} of the collective appointment {rows:?}, and the \
             round-robin booking {} only if it is on {assigned_host}",
            id_of(&assigned)
        );
        let vevent = feed_event(&events, row);
        for line in [
            format!("DTSTART:{}", ics_stamp(&start)),
            format!("DTEND:{}", ics_stamp(&end_of(&start))),
            "STATUS:CONFIRMED".to_owned(),
        ] {
            assert!(
                vevent.contains(&line),
                "{line} in {host}'s feed: {vevent:?}"
            );
        }
        if *host == assigned_host {
            let vevent = feed_event(&events, &id_of(&assigned));
            let line = format!("DTSTART:{}", ics_stamp(&day.at("11:00")));
            assert!(vevent.contains(&line), "{line}: {vevent:?}");
        }
    }

    // Cancelled through one row, the appointment is cancelled in every host's feed.
    cancel(&app, &rows[2]).await;
    for ((host, feed), row) in team.hosts.iter().zip(&feeds).zip(&rows) {
        let events = feed_events(&app, feed).await;
        let vevent = feed_event(&events, row);
        assert!(
            vevent.contains(&"STATUS:CANCELLED".to_owned()),
            "{host}'s feed marks the appointment cancelled: {vevent:?}"
        );
        if *host == assigned_host {
            let vevent = feed_event(&events, &id_of(&assigned));
            assert!(
                vevent.contains(&"STATUS:CONFIRMED".to_owned()),
                "the round-robin booking stays: {vevent:?}"
            );
        }
    }
}

// ----- other dialects -----

/// Event `id` as the Google dialect spells it (32 hex digits).
fn google_id(id: &str) -> String {
    id.replace('-', "")
}

/// The items of the Google list of `calendar_id`'s events, with `query`.
async fn google_items(app: &TestApp, calendar_id: &str, query: &[(&str, &str)]) -> Vec<Value> {
    let list = g_ok(&app.get_query(&events_path(calendar_id), query).await, 200);
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a Google list has items: {list}"))
        .clone()
}

/// The data of the Talkover list of `calendar_id`'s events.
async fn talkover_items(app: &TestApp, calendar_id: &str) -> Vec<Value> {
    let path = format!("/api/v1/calendars/{calendar_id}/events");
    let data = talkover_ok(&app.get(&path).await, 200);
    data.as_array()
        .unwrap_or_else(|| panic!("a Talkover list is an array: {data}"))
        .clone()
}

/// Each item as `id start status` (the three read by `read`), sorted.
fn listed(items: &[Value], read: impl Fn(&Value) -> (String, String, String)) -> Vec<String> {
    let mut lines: Vec<String> = items
        .iter()
        .map(|e| {
            let (id, start, status) = read(e);
            format!("{id} {start} {status}")
        })
        .collect();
    lines.sort();
    lines
}

fn google_line(e: &Value) -> (String, String, String) {
    let start = e["start"]["dateTime"].as_str().unwrap_or_default();
    let start = chrono::DateTime::parse_from_rfc3339(start)
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .unwrap_or_else(|_| format!("?{start}"));
    (
        e["id"].as_str().unwrap_or_default().to_owned(),
        start,
        e["status"].as_str().unwrap_or_default().to_owned(),
    )
}

fn talkover_line(e: &Value) -> (String, String, String) {
    (
        e["id"].as_str().unwrap_or_default().to_owned(),
        e["start_at"].as_str().unwrap_or_default().to_owned(),
        e["status"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn the_google_and_talkover_views_of_a_hosts_calendar_show_its_team_appointments(
    app: TestApp,
) {
    let day = Day::monday();
    let team = team(&app, "collective", 3).await;
    // A round-robin type over the hosts other than the organizer, so the calendar that shows
    // both is a non-organizer's.
    let round_robin = team_type(&app, &app.key, "roundRobin", plain_hosts(&team.hosts[1..])).await;
    let (start, later) = (day.at("10:00"), day.at("11:00"));
    let created = booked(&app, &app.key, &team.booking(&start)).await;
    let rows = group_ids(&created, &team);
    let assigned = booked(&app, &app.key, &team_booking(&round_robin, &later)).await;
    let assigned_host = calendar_of(&assigned);
    assert!(team.hosts[1..].contains(&assigned_host), "{assigned}");

    for (host, row) in team.hosts.iter().zip(&rows) {
        let mut google = vec![format!("{} {start} confirmed", google_id(row))];
        let mut talkover = vec![format!("{row} {start} confirmed")];
        if *host == assigned_host {
            google.push(format!(
                "{} {later} confirmed",
                google_id(&id_of(&assigned))
            ));
            talkover.push(format!("{} {later} confirmed", id_of(&assigned)));
        }
        google.sort();
        talkover.sort();
        let items = google_items(&app, host, &[]).await;
        assert_eq!(
            listed(&items, google_line),
            google,
            "the Google view of {host}: its row of {rows:?}{}",
            if *host == assigned_host {
                " and the round-robin booking"
            } else {
                ""
            }
        );
        let items = talkover_items(&app, host).await;
        assert_eq!(
            listed(&items, talkover_line),
            talkover,
            "the Talkover view of {host}"
        );
        for item in &items {
            assert_eq!(item["calendar_id"], json!(host), "{item}");
        }
    }

    // Cancelled through the organizer's row: Google hides a cancelled event unless asked with
    // showDeleted, and then shows it `cancelled`; Talkover lists it `cancelled`.
    cancel(&app, &rows[0]).await;
    for (host, row) in team.hosts.iter().zip(&rows) {
        let mut google = Vec::new();
        let mut with_deleted = vec![format!("{} {start} cancelled", google_id(row))];
        let mut talkover = vec![format!("{row} {start} cancelled")];
        if *host == assigned_host {
            let stays = format!("{} {later} confirmed", google_id(&id_of(&assigned)));
            google.push(stays.clone());
            with_deleted.push(stays);
            talkover.push(format!("{} {later} confirmed", id_of(&assigned)));
        }
        with_deleted.sort();
        talkover.sort();
        let items = google_items(&app, host, &[]).await;
        assert_eq!(
            listed(&items, google_line),
            google,
            "the Google view of {host} after the cancellation"
        );
        let items = google_items(&app, host, &[("showDeleted", "true")]).await;
        assert_eq!(
            listed(&items, google_line),
            with_deleted,
            "the Google view of {host} with showDeleted"
        );
        let items = talkover_items(&app, host).await;
        assert_eq!(
            listed(&items, talkover_line),
            talkover,
            "the Talkover view of {host} after the cancellation"
        );
    }
}
