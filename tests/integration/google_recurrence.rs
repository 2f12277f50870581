//! Recurring events through the Google dialect: DST-correct expansion in Europe/Rome and
//! America/New_York, instances with Google's ids, a collision inside a series, an exception
//! moved onto another booking, instances holding their time for the native API, deleting one
//! instance or the whole series, the unexpanded and expanded lists, all-day series, bad lines,
//! and a series change reported by sync. Both backends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::google::{event_path, events_path, g_bad, g_error, g_ok, gget, insert, rome_calendar};
use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        a_weekly_rome_series_stays_at_nine_local_across_both_dst_changes,
        a_new_york_series_follows_new_yorks_own_dst_change,
        a_collision_inside_a_series_is_409_naming_the_instance_and_writes_nothing,
        an_instance_moved_onto_another_booking_is_409_and_a_free_move_makes_an_exception,
        instances_hold_their_time_for_the_native_api_and_show_in_its_list,
        deleting_one_instance_frees_it_and_deleting_the_series_cancels_all,
        the_list_shows_a_series_once_or_each_instance_with_single_events,
        an_all_day_weekly_series_blocks_whole_local_days,
        bad_recurrence_lines_are_400_naming_the_line,
        moving_the_series_moves_every_instance_and_sync_reports_it_once,
        an_unbounded_rule_holds_its_instances_400_days_ahead_and_a_too_dense_one_is_refused,
        housekeeping_writes_the_instances_that_fall_inside_the_horizon_as_time_passes,
        an_instance_cancelled_natively_stays_cancelled_while_the_rule_keeps_its_day_and_a_time_move_resets_it,
    ]
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn weekly(summary: &str, start: &str, end: &str, zone: &str, rule: &str) -> Value {
    json!({
        "summary": summary,
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        "recurrence": [rule],
    })
}

async fn instances(app: &TestApp, cal: &str, id: &str, query: &[(&str, &str)]) -> Vec<Value> {
    let path = format!("{}/instances", event_path(cal, id));
    items(&g_ok(&gget(app, &path, query).await, 200))
}

/// The local wall-clock time `HH:MM` of a Google `dateTime` (which carries its offset).
fn local_hm(t: &Value) -> String {
    let s = t["dateTime"].as_str().unwrap_or_default();
    s.get(11..16).unwrap_or_default().to_string()
}

async fn a_weekly_rome_series_stays_at_nine_local_across_both_dst_changes(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let master = insert(
        &app,
        &cal,
        weekly(
            "Standup",
            "2027-03-01T09:00:00",
            "2027-03-01T09:30:00",
            "Europe/Rome",
            "RRULE:FREQ=WEEKLY;COUNT=40",
        ),
    )
    .await;
    assert_eq!(master["kind"], "calendar#event");
    assert_eq!(master["recurrence"], json!(["RRULE:FREQ=WEEKLY;COUNT=40"]));
    assert_eq!(master["start"]["dateTime"], "2027-03-01T09:00:00+01:00");
    assert_eq!(master["start"]["timeZone"], "Europe/Rome");
    assert_eq!(master["summary"], "Standup");
    assert!(master.get("recurringEventId").is_none(), "{master}");
    let id = master["id"].as_str().unwrap().to_string();
    let got = instances(&app, &cal, &id, &[]).await;
    assert_eq!(got.len(), 40);
    for i in &got {
        assert_eq!(local_hm(&i["start"]), "09:00", "{i}");
        assert_eq!(local_hm(&i["end"]), "09:30", "{i}");
        assert_eq!(i["recurringEventId"], id.as_str());
        assert_eq!(i["summary"], "Standup");
        assert_eq!(i["iCalUID"], master["iCalUID"]);
        assert!(i.get("recurrence").is_none(), "{i}");
    }
    // Before 28 March Rome is +01:00, after it +02:00, after 31 October +01:00 again; the
    // instance ids name the rule's start in UTC.
    assert_eq!(got[3]["start"]["dateTime"], "2027-03-22T09:00:00+01:00");
    assert_eq!(got[4]["start"]["dateTime"], "2027-03-29T09:00:00+02:00");
    assert_eq!(got[4]["id"], format!("{id}_20270329T070000Z"));
    assert_eq!(
        got[4]["originalStartTime"],
        json!({"dateTime": "2027-03-29T09:00:00+02:00", "timeZone": "Europe/Rome"})
    );
    let november = got
        .iter()
        .find(|i| i["start"]["dateTime"] == "2027-11-01T09:00:00+01:00");
    assert!(november.is_some(), "no 1 November instance at 09:00 +01:00");
    // An instance is read by its id too.
    let one = g_ok(
        &app.get(&event_path(&cal, &format!("{id}_20270329T070000Z")))
            .await,
        200,
    );
    assert_eq!(one["start"]["dateTime"], "2027-03-29T09:00:00+02:00");
    assert_eq!(one["recurringEventId"], id.as_str());
    // And the master by its own.
    let again = g_ok(&app.get(&event_path(&cal, &id)).await, 200);
    assert_eq!(again["recurrence"], master["recurrence"]);
    assert_eq!(again["etag"], master["etag"]);
}

async fn a_new_york_series_follows_new_yorks_own_dst_change(app: TestApp) {
    let cal = id_of(
        &app.create_calendar(
            &app.key,
            Some(json!({"name": "NY", "timezone": "America/New_York"})),
        )
        .await,
    );
    let master = insert(
        &app,
        &cal,
        weekly(
            "Call",
            "2027-03-12T09:30:00",
            "2027-03-12T10:00:00",
            "America/New_York",
            "RRULE:FREQ=DAILY;UNTIL=20270320T000000Z",
        ),
    )
    .await;
    let id = master["id"].as_str().unwrap().to_string();
    let got = instances(&app, &cal, &id, &[]).await;
    assert_eq!(got.len(), 8);
    // New York springs forward on 14 March 2027 (Europe only on the 28th).
    assert_eq!(got[1]["start"]["dateTime"], "2027-03-13T09:30:00-05:00");
    assert_eq!(got[2]["start"]["dateTime"], "2027-03-14T09:30:00-04:00");
    for i in &got {
        assert_eq!(local_hm(&i["start"]), "09:30", "{i}");
    }
}

async fn a_collision_inside_a_series_is_409_naming_the_instance_and_writes_nothing(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let taken = insert(
        &app,
        &cal,
        json!({"summary": "Dentist", "start": {"dateTime": "2027-03-15T09:10:00+01:00"},
               "end": {"dateTime": "2027-03-15T09:40:00+01:00"}}),
    )
    .await;
    let resp = app
        .post(
            &events_path(&cal),
            &weekly(
                "Standup",
                "2027-03-01T09:00:00",
                "2027-03-01T09:30:00",
                "Europe/Rome",
                "RRULE:FREQ=WEEKLY;COUNT=10",
            ),
        )
        .await;
    let error = g_error(&resp, 409, "conflict");
    assert_eq!(error["instanceStart"], "2027-03-15T08:00:00Z", "{error}");
    assert_eq!(error["quandoReason"], "conflict");
    assert_eq!(error["conflictingEventId"], taken["id"]);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("2027-03-15T08:00:00Z")),
        "{error}"
    );
    // All or nothing: only the dentist is on the calendar.
    let all = g_ok(
        &gget(&app, &events_path(&cal), &[("singleEvents", "true")]).await,
        200,
    );
    assert_eq!(items(&all).len(), 1, "{all}");
}

async fn an_instance_moved_onto_another_booking_is_409_and_a_free_move_makes_an_exception(
    app: TestApp,
) {
    let cal = rome_calendar(&app, &app.key).await;
    let master = insert(
        &app,
        &cal,
        weekly(
            "Standup",
            "2027-03-01T09:00:00",
            "2027-03-01T09:30:00",
            "Europe/Rome",
            "RRULE:FREQ=WEEKLY;COUNT=4",
        ),
    )
    .await;
    let id = master["id"].as_str().unwrap().to_string();
    let other = insert(
        &app,
        &cal,
        json!({"summary": "Client", "start": {"dateTime": "2027-03-08T11:00:00+01:00"},
               "end": {"dateTime": "2027-03-08T12:00:00+01:00"}}),
    )
    .await;
    let second = format!("{id}_20270308T080000Z");
    let onto = app
        .patch(
            &event_path(&cal, &second),
            &json!({"start": {"dateTime": "2027-03-08T11:15:00+01:00"},
                    "end": {"dateTime": "2027-03-08T11:45:00+01:00"}}),
        )
        .await;
    let error = g_error(&onto, 409, "conflict");
    assert_eq!(error["conflictingEventId"], other["id"]);
    let moved = g_ok(
        &app.patch(
            &event_path(&cal, &second),
            &json!({"summary": "Standup (late)",
                    "start": {"dateTime": "2027-03-08T14:00:00+01:00"},
                    "end": {"dateTime": "2027-03-08T14:30:00+01:00"}}),
        )
        .await,
        200,
    );
    assert_eq!(moved["id"], second.as_str());
    assert_eq!(moved["recurringEventId"], id.as_str());
    assert_eq!(moved["start"]["dateTime"], "2027-03-08T14:00:00+01:00");
    assert_eq!(
        moved["originalStartTime"]["dateTime"],
        "2027-03-08T09:00:00+01:00"
    );
    // A change to the whole series leaves the exception be.
    g_ok(
        &app.patch(&event_path(&cal, &id), &json!({"summary": "Daily sync"}))
            .await,
        200,
    );
    let got = instances(&app, &cal, &id, &[]).await;
    let summaries: Vec<&str> = got.iter().filter_map(|i| i["summary"].as_str()).collect();
    assert_eq!(
        summaries,
        ["Daily sync", "Standup (late)", "Daily sync", "Daily sync"],
        "sorted by start; the exception keeps its own summary"
    );
    let exception = got.iter().find(|i| i["id"] == second.as_str()).unwrap();
    assert_eq!(exception["start"]["dateTime"], "2027-03-08T14:00:00+01:00");
}

async fn instances_hold_their_time_for_the_native_api_and_show_in_its_list(app: TestApp) {
    let (cal, event_type) = app.calendar_and_event_type().await;
    let master = insert(
        &app,
        &cal,
        json!({"summary": "Team", "start": {"dateTime": "2027-03-01T10:00:00Z", "timeZone": "UTC"},
               "end": {"dateTime": "2027-03-01T10:30:00Z", "timeZone": "UTC"},
               "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"]}),
    )
    .await;
    assert_eq!(master["status"], "confirmed");
    let native = app
        .post_event(&event_body(
            &cal,
            &event_type,
            "2027-03-03T10:00:00Z",
            "2027-03-03T10:30:00Z",
        ))
        .await;
    assert_eq!(native.status, 409, "{}", native.describe());
    assert_eq!(native.body["error"]["details"]["reason"], "conflict");
    let list = app
        .list_events(&[("calendarId", &cal), ("limit", "100")])
        .await;
    assert_eq!(list.status, 200, "{}", list.describe());
    let starts: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["startTime"].as_str())
        .collect();
    assert_eq!(starts.len(), 5, "{starts:?}");
    assert!(starts.contains(&"2027-03-03T10:00:00Z"), "{starts:?}");
    // Availability never offers an instance's time.
    let free = app
        .get_query(
            "/v1/calendar/availability",
            &[
                ("calendarId", &cal),
                ("eventTypeId", &event_type),
                ("dateFrom", "2027-03-03T00:00:00Z"),
                ("dateTo", "2027-03-04T00:00:00Z"),
            ],
        )
        .await;
    assert_eq!(free.status, 200, "{}", free.describe());
    let offered: Vec<&str> = free.body["data"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["startTime"].as_str())
        .collect();
    assert!(!offered.is_empty(), "{}", free.describe());
    assert!(
        !offered.contains(&"2027-03-03T10:00:00Z") && offered.contains(&"2027-03-03T10:30:00Z"),
        "an instance's time offered: {offered:?}"
    );
}

async fn deleting_one_instance_frees_it_and_deleting_the_series_cancels_all(app: TestApp) {
    let (cal, event_type) = app.calendar_and_event_type().await;
    let master = insert(
        &app,
        &cal,
        json!({"summary": "Team", "start": {"dateTime": "2027-03-01T10:00:00Z", "timeZone": "UTC"},
               "end": {"dateTime": "2027-03-01T10:30:00Z", "timeZone": "UTC"},
               "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]}),
    )
    .await;
    let id = master["id"].as_str().unwrap().to_string();
    let second = format!("{id}_20270302T100000Z");
    let gone = send(app.req(Method::DELETE, &event_path(&cal, &second))).await;
    assert_eq!(gone.status, 204, "{}", gone.describe());
    let again = send(app.req(Method::DELETE, &event_path(&cal, &second))).await;
    g_error(&again, 410, "deleted");
    // Its time is free for a native booking; the others still hold theirs.
    let freed = app
        .post_event(&event_body(
            &cal,
            &event_type,
            "2027-03-02T10:00:00Z",
            "2027-03-02T10:30:00Z",
        ))
        .await;
    assert_eq!(freed.status, 201, "{}", freed.describe());
    let live = instances(&app, &cal, &id, &[]).await;
    assert_eq!(live.len(), 2);
    let with_deleted = instances(&app, &cal, &id, &[("showDeleted", "true")]).await;
    assert_eq!(with_deleted.len(), 3);
    assert!(
        with_deleted
            .iter()
            .any(|i| i["id"] == second.as_str() && i["status"] == "cancelled")
    );
    // A change to the whole series does not bring the deleted instance back.
    g_ok(
        &app.patch(
            &event_path(&cal, &id),
            &json!({"summary": "Team (renamed)"}),
        )
        .await,
        200,
    );
    assert_eq!(instances(&app, &cal, &id, &[]).await.len(), 2);
    // The whole series.
    let all = send(app.req(Method::DELETE, &event_path(&cal, &id))).await;
    assert_eq!(all.status, 204, "{}", all.describe());
    let shown = g_ok(&app.get(&event_path(&cal, &id)).await, 200);
    assert_eq!(shown["status"], "cancelled");
    assert!(instances(&app, &cal, &id, &[]).await.is_empty());
    let twice = send(app.req(Method::DELETE, &event_path(&cal, &id))).await;
    g_error(&twice, 410, "deleted");
    let third = app
        .post_event(&event_body(
            &cal,
            &event_type,
            "2027-03-03T10:00:00Z",
            "2027-03-03T10:30:00Z",
        ))
        .await;
    assert_eq!(third.status, 201, "{}", third.describe());
}

async fn the_list_shows_a_series_once_or_each_instance_with_single_events(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let master = insert(
        &app,
        &cal,
        weekly(
            "Standup",
            "2027-03-01T09:00:00",
            "2027-03-01T09:30:00",
            "Europe/Rome",
            "RRULE:FREQ=WEEKLY;COUNT=3",
        ),
    )
    .await;
    let single = insert(
        &app,
        &cal,
        json!({"summary": "Lunch", "start": {"dateTime": "2027-03-02T12:00:00+01:00"},
               "end": {"dateTime": "2027-03-02T13:00:00+01:00"}}),
    )
    .await;
    let unexpanded = g_ok(&app.get(&events_path(&cal)).await, 200);
    let got: Vec<&str> = items(&unexpanded)
        .iter()
        .filter_map(|e| e["id"].as_str())
        .map(|s| {
            if s == master["id"] {
                "master"
            } else if s == single["id"] {
                "single"
            } else {
                "other"
            }
        })
        .collect();
    assert_eq!(got.len(), 2, "{unexpanded}");
    assert!(
        got.contains(&"master") && got.contains(&"single"),
        "{got:?}"
    );
    let expanded = g_ok(
        &gget(
            &app,
            &events_path(&cal),
            &[("singleEvents", "true"), ("orderBy", "startTime")],
        )
        .await,
        200,
    );
    let expanded = items(&expanded);
    let starts: Vec<&str> = expanded
        .iter()
        .map(|e| e["start"]["dateTime"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        starts,
        [
            "2027-03-01T09:00:00+01:00",
            "2027-03-02T12:00:00+01:00",
            "2027-03-08T09:00:00+01:00",
            "2027-03-15T09:00:00+01:00"
        ]
    );
    // A window after the first instance still lists the recurring event.
    let window = g_ok(
        &gget(
            &app,
            &events_path(&cal),
            &[
                ("timeMin", "2027-03-10T00:00:00Z"),
                ("timeMax", "2027-03-20T00:00:00Z"),
            ],
        )
        .await,
        200,
    );
    assert_eq!(items(&window).len(), 1, "{window}");
    assert_eq!(items(&window)[0]["id"], master["id"]);
}

async fn an_all_day_weekly_series_blocks_whole_local_days(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let master = insert(
        &app,
        &cal,
        json!({"summary": "Closed", "start": {"date": "2027-03-21"}, "end": {"date": "2027-03-22"},
               "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]}),
    )
    .await;
    assert_eq!(master["start"], json!({"date": "2027-03-21"}));
    let id = master["id"].as_str().unwrap().to_string();
    let got = instances(&app, &cal, &id, &[]).await;
    let ids: Vec<&str> = got.iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            format!("{id}_20270321"),
            format!("{id}_20270328"),
            format!("{id}_20270404")
        ]
    );
    assert_eq!(got[1]["start"], json!({"date": "2027-03-28"}));
    assert_eq!(got[1]["originalStartTime"], json!({"date": "2027-03-28"}));
    // The 23-hour day of 28 March is held from local midnight to local midnight.
    let busy = g_ok(
        &app.post(
            "/calendar/v3/freeBusy",
            &json!({"timeMin": "2027-03-27T00:00:00Z", "timeMax": "2027-03-30T00:00:00Z",
                    "items": [{"id": cal}]}),
        )
        .await,
        200,
    );
    assert_eq!(
        busy["calendars"][&cal]["busy"],
        json!([{"start": "2027-03-27T23:00:00Z", "end": "2027-03-28T22:00:00Z"}]),
        "{busy}"
    );
}

async fn bad_recurrence_lines_are_400_naming_the_line(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let base = |lines: Value| {
        json!({"summary": "X", "start": {"dateTime": "2027-03-01T09:00:00", "timeZone": "Europe/Rome"},
               "end": {"dateTime": "2027-03-01T09:30:00", "timeZone": "Europe/Rome"},
               "recurrence": lines})
    };
    for (lines, location) in [
        (json!(["RRULE:FREQ=SOMETIMES"]), "recurrence[0]"),
        (
            json!(["RRULE:FREQ=DAILY", "DTSTART:20270101T000000Z"]),
            "recurrence[1]",
        ),
        (json!(["RRULE:FREQ=DAILY", 7]), "recurrence[1]"),
        (json!(["EXDATE:20270302T090000"]), "recurrence"),
        (json!(["RRULE:FREQ=MINUTELY"]), "recurrence"),
        (json!("RRULE:FREQ=DAILY"), "recurrence"),
    ] {
        let resp = app.post(&events_path(&cal), &base(lines.clone())).await;
        g_bad(&resp, "invalid", location);
    }
    let none = g_ok(
        &gget(&app, &events_path(&cal), &[("singleEvents", "true")]).await,
        200,
    );
    assert!(items(&none).is_empty(), "{none}");
}

async fn moving_the_series_moves_every_instance_and_sync_reports_it_once(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let master = insert(
        &app,
        &cal,
        weekly(
            "Standup",
            "2027-03-01T09:00:00",
            "2027-03-01T09:30:00",
            "Europe/Rome",
            "RRULE:FREQ=WEEKLY;COUNT=3",
        ),
    )
    .await;
    let id = master["id"].as_str().unwrap().to_string();
    let full = g_ok(&app.get(&events_path(&cal)).await, 200);
    let token = full["nextSyncToken"].as_str().unwrap().to_string();
    let moved = g_ok(
        &app.patch(
            &event_path(&cal, &id),
            &json!({"start": {"dateTime": "2027-03-01T10:00:00", "timeZone": "Europe/Rome"},
                    "end": {"dateTime": "2027-03-01T10:45:00", "timeZone": "Europe/Rome"}}),
        )
        .await,
        200,
    );
    assert_eq!(moved["start"]["dateTime"], "2027-03-01T10:00:00+01:00");
    assert_ne!(moved["etag"], master["etag"]);
    let got = instances(&app, &cal, &id, &[]).await;
    assert_eq!(got.len(), 3);
    for i in &got {
        assert_eq!(local_hm(&i["start"]), "10:00", "{i}");
        assert_eq!(local_hm(&i["end"]), "10:45", "{i}");
    }
    let changes = g_ok(
        &gget(&app, &events_path(&cal), &[("syncToken", &token)]).await,
        200,
    );
    let changes = items(&changes);
    let changed: Vec<&str> = changes.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(changed, [id.as_str()], "{changes:?}");
    let expanded = g_ok(
        &gget(
            &app,
            &events_path(&cal),
            &[("syncToken", &token), ("singleEvents", "true")],
        )
        .await,
        200,
    );
    assert!(items(&expanded).len() >= 3, "{expanded}");
}

async fn an_unbounded_rule_holds_its_instances_400_days_ahead_and_a_too_dense_one_is_refused(
    app: TestApp,
) {
    let cal = rome_calendar(&app, &app.key).await;
    let master = insert(
        &app,
        &cal,
        weekly(
            "Weekly",
            "2027-01-04T09:00:00",
            "2027-01-04T09:30:00",
            "Europe/Rome",
            "RRULE:FREQ=WEEKLY",
        ),
    )
    .await;
    let id = master["id"].as_str().unwrap().to_string();
    let got = instances(&app, &cal, &id, &[("maxResults", "2500")]).await;
    let last = got.last().unwrap()["start"]["dateTime"]
        .as_str()
        .unwrap()
        .to_string();
    let last = chrono::DateTime::parse_from_rfc3339(&last).unwrap();
    // The horizon is 400 days after the later of now and the first instance.
    let first = chrono::DateTime::parse_from_rfc3339("2027-01-04T09:00:00+01:00").unwrap();
    let horizon = first.max(chrono::Utc::now().fixed_offset()) + chrono::Duration::days(400);
    assert!(last <= horizon, "{last} after {horizon}");
    assert!(
        last > horizon - chrono::Duration::days(7),
        "{last} stops short of {horizon}"
    );
    // Every 5 minutes for 400 days is far more than a series may hold.
    let dense = app
        .post(
            &events_path(&cal),
            &weekly(
                "Dense",
                "2027-01-05T09:00:00",
                "2027-01-05T09:01:00",
                "Europe/Rome",
                "RRULE:FREQ=MINUTELY;INTERVAL=5",
            ),
        )
        .await;
    let error = g_bad(&dense, "invalid", "recurrence");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("1000")),
        "{error}"
    );
}

/// Time passing, simulated: the series' horizon and its instances after it are taken back as
/// if they had not been written yet, another event takes one of those times, and the
/// housekeeping pass (the one the server runs hourly) writes the rest again.
async fn housekeeping_writes_the_instances_that_fall_inside_the_horizon_as_time_passes(
    app: TestApp,
) {
    use entity::{event_series, events};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let cal = rome_calendar(&app, &app.key).await;
    let master = insert(
        &app,
        &cal,
        weekly(
            "Weekly",
            "2027-01-04T09:00:00",
            "2027-01-04T09:30:00",
            "Europe/Rome",
            "RRULE:FREQ=WEEKLY",
        ),
    )
    .await;
    let id = master["id"].as_str().unwrap().to_string();
    let series_id = uuid::Uuid::try_parse(&id).unwrap();
    let before = instances(&app, &cal, &id, &[("maxResults", "2500")]).await;
    let cut: chrono::DateTime<chrono::Utc> = "2027-09-01T00:00:00Z".parse().unwrap();
    event_series::Entity::update_many()
        .col_expr(event_series::Column::ExpandedUntil, Expr::value(cut))
        .filter(event_series::Column::Id.eq(series_id))
        .exec(&app.db)
        .await
        .unwrap();
    let removed = events::Entity::delete_many()
        .filter(events::Column::SeriesId.eq(series_id))
        .filter(events::Column::OriginalStart.gte(cut))
        .exec(&app.db)
        .await
        .unwrap()
        .rows_affected;
    assert!(removed > 10, "{removed}");
    // Meanwhile someone books one of those times.
    insert(
        &app,
        &cal,
        json!({"summary": "Taken", "start": {"dateTime": "2027-09-06T09:00:00+02:00"},
               "end": {"dateTime": "2027-09-06T09:30:00+02:00"}}),
    )
    .await;
    let service = quando_api::service::Service::new(
        app.db.clone(),
        std::sync::Arc::new(quando_api::metrics::Metrics::new()),
    );
    let written = service.extend_due_series().await.unwrap();
    assert_eq!(
        written as u64,
        removed - 1,
        "every instance but the taken one"
    );
    let after = instances(&app, &cal, &id, &[("maxResults", "2500")]).await;
    assert_eq!(after.len(), before.len() - 1);
    assert!(
        after
            .iter()
            .all(|i| i["summary"] == "Weekly" && local_hm(&i["start"]) == "09:00"),
        "copies of the series' instances"
    );
    assert!(
        !after
            .iter()
            .any(|i| i["start"]["dateTime"] == "2027-09-06T09:00:00+02:00"),
        "the taken time is skipped"
    );
    // Nothing is due any more.
    assert_eq!(service.extend_due_series().await.unwrap(), 0);
    let count = events::Entity::find()
        .filter(events::Column::SeriesId.eq(series_id))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(count as usize, after.len());
}

async fn an_instance_cancelled_natively_stays_cancelled_while_the_rule_keeps_its_day_and_a_time_move_resets_it(
    app: TestApp,
) {
    let cal = rome_calendar(&app, &app.key).await;
    let master = insert(
        &app,
        &cal,
        weekly(
            "Daily",
            "2027-03-01T09:00:00",
            "2027-03-01T09:30:00",
            "Europe/Rome",
            "RRULE:FREQ=DAILY;COUNT=3",
        ),
    )
    .await;
    let id = master["id"].as_str().unwrap().to_string();
    let second = &instances(&app, &cal, &id, &[]).await[1];
    let uuid = second["htmlLink"]
        .as_str()
        .and_then(|l| l.rsplit('/').next())
        .unwrap()
        .to_string();
    let cancelled = app
        .post(
            &format!("/v1/calendar/events/{uuid}/cancel"),
            &json!({"reason": "holiday"}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.describe());
    // The rule grows by a day: the cancelled day stays cancelled.
    g_ok(
        &app.patch(
            &event_path(&cal, &id),
            &json!({"summary": "Daily (4)", "recurrence": ["RRULE:FREQ=DAILY;COUNT=4"]}),
        )
        .await,
        200,
    );
    let live = instances(&app, &cal, &id, &[]).await;
    let starts: Vec<&str> = live
        .iter()
        .filter_map(|i| i["start"]["dateTime"].as_str())
        .collect();
    assert_eq!(
        starts,
        [
            "2027-03-01T09:00:00+01:00",
            "2027-03-03T09:00:00+01:00",
            "2027-03-04T09:00:00+01:00"
        ],
        "the cancelled day stays cancelled"
    );
    assert!(live.iter().all(|i| i["summary"] == "Daily (4)"));
    // A move to another time belongs to a new schedule: every day at 10:00, as Google resets
    // exceptions when a series' time changes.
    g_ok(
        &app.patch(
            &event_path(&cal, &id),
            &json!({"start": {"dateTime": "2027-03-01T10:00:00", "timeZone": "Europe/Rome"},
                    "end": {"dateTime": "2027-03-01T10:30:00", "timeZone": "Europe/Rome"}}),
        )
        .await,
        200,
    );
    let live = instances(&app, &cal, &id, &[]).await;
    let starts: Vec<&str> = live
        .iter()
        .filter_map(|i| i["start"]["dateTime"].as_str())
        .collect();
    assert_eq!(
        starts,
        [
            "2027-03-01T10:00:00+01:00",
            "2027-03-02T10:00:00+01:00",
            "2027-03-03T10:00:00+01:00",
            "2027-03-04T10:00:00+01:00"
        ]
    );
}
