//! The Google Calendar v3 dialect under `/calendar/v3`: the seed's insert with every field
//! round-tripped, get/list/patch/update/delete/import, client-chosen ids, `primary`, all-day
//! events, refusals in Google's 409 with Quando's reason, etags, and Google's error shape for
//! every bad input. Sync, freeBusy, isolation and the keep-alive check are in `google_sync.rs`.
//! Both backends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        an_insert_with_the_seeds_fields_round_trips_every_field,
        get_answers_the_event_and_list_pages_with_max_results,
        every_list_filter_narrows_the_list,
        patch_changes_the_given_members_and_update_replaces_the_event,
        delete_cancels_the_event_and_frees_its_time,
        import_is_idempotent_on_the_ical_uid,
        a_client_chosen_id_is_kept_and_a_duplicate_is_409,
        primary_is_the_default_calendar_and_404_without_one,
        all_day_events_are_dates_with_an_exclusive_end,
        an_overlap_is_409_conflict_with_quandos_reason_and_next_slots,
        a_stale_if_match_is_412_and_a_current_if_none_match_is_304,
        every_bad_input_is_googles_400_with_its_location,
        auth_errors_and_unknown_routes_are_in_googles_shape,
        fields_trims_the_answer_and_the_insert_parameters_are_checked,
    ]
}

pub const START: &str = "2027-03-01T09:00:00+01:00";

pub fn events_path(calendar: &str) -> String {
    format!("/calendar/v3/calendars/{calendar}/events")
}

pub fn event_path(calendar: &str, id: &str) -> String {
    format!("/calendar/v3/calendars/{calendar}/events/{id}")
}

/// A calendar open around the clock in Rome, made through the native API.
pub async fn rome_calendar(app: &TestApp, key: &str) -> String {
    id_of(
        &app.create_calendar(
            key,
            Some(json!({"name": "Studio", "timezone": "Europe/Rome"})),
        )
        .await,
    )
}

/// A Google success: the status and a JSON body.
#[track_caller]
pub fn g_ok(resp: &Resp, status: u16) -> Value {
    assert_eq!(resp.status, status, "{}", resp.describe());
    assert!(
        resp.content_type().starts_with("application/json"),
        "{}",
        resp.describe()
    );
    resp.body.clone()
}

/// A Google error: the status, `{"error": {"code", "message", "errors": [{domain, reason,
/// message}], "status"}}` with `reason` first; its `error` object.
#[track_caller]
pub fn g_error(resp: &Resp, status: u16, reason: &str) -> Value {
    assert_eq!(resp.status, status, "{}", resp.describe());
    assert!(
        resp.content_type().starts_with("application/json"),
        "{}",
        resp.describe()
    );
    let error = &resp.body["error"];
    assert_eq!(error["code"], status, "{}", resp.describe());
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        resp.describe()
    );
    assert!(
        error["status"]
            .as_str()
            .is_some_and(|s| s.chars().all(|c| c.is_ascii_uppercase() || c == '_')),
        "{}",
        resp.describe()
    );
    let first = &error["errors"][0];
    assert_eq!(first["reason"], reason, "{}", resp.describe());
    assert!(first["domain"].is_string(), "{}", resp.describe());
    assert!(first["message"].is_string(), "{}", resp.describe());
    assert!(
        resp.body.get("requestId").is_none() && error.get("details").is_none(),
        "never the native envelope: {}",
        resp.describe()
    );
    error.clone()
}

/// A Google 400 whose errors name `location` (as a parameter).
#[track_caller]
pub fn g_bad(resp: &Resp, reason: &str, location: &str) -> Value {
    let error = g_error(resp, 400, reason);
    let locations: Vec<&str> = error["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|p| p["location"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        locations.contains(&location),
        "expected location {location} in {locations:?}: {}",
        resp.describe()
    );
    assert_eq!(error["status"], "INVALID_ARGUMENT", "{}", resp.describe());
    error
}

/// Inserts `body` on the calendar and returns the event.
pub async fn insert(app: &TestApp, calendar: &str, body: Value) -> Value {
    g_ok(&app.post(&events_path(calendar), &body).await, 200)
}

/// A plain timed event of `minutes` from `start`.
pub fn timed(summary: &str, start: &str, minutes: i64) -> Value {
    json!({
        "summary": summary,
        "start": {"dateTime": start},
        "end": {"dateTime": plus_minutes(start, minutes)},
    })
}

pub async fn gget(app: &TestApp, path: &str, query: &[(&str, &str)]) -> Resp {
    app.get_query(path, query).await
}

fn seed_body() -> Value {
    json!({
        "summary": "Google I/O 2027",
        "location": "800 Howard St., San Francisco, CA 94103",
        "description": "A chance to hear more about Google's developer products.",
        "start": {"dateTime": "2027-05-28T09:00:00-07:00", "timeZone": "America/Los_Angeles"},
        "end": {"dateTime": "2027-05-28T17:00:00-07:00", "timeZone": "America/Los_Angeles"},
        "attendees": [
            {"email": "lpage@example.com"},
            {"email": "sbrin@example.com", "displayName": "Sergey", "optional": true,
             "responseStatus": "accepted", "comment": "on my way", "additionalGuests": 2},
        ],
        "reminders": {"useDefault": false, "overrides": [
            {"method": "email", "minutes": 1440}, {"method": "popup", "minutes": 10}]},
        "status": "tentative",
        "transparency": "opaque",
        "visibility": "private",
        "colorId": "7",
        "extendedProperties": {"private": {"crm": "42"}, "shared": {"room": "A"}},
        "source": {"title": "Ticket", "url": "https://example.com/t/1"},
        "guestsCanInviteOthers": false,
        "guestsCanModify": true,
        "guestsCanSeeOtherGuests": false,
        "anyoneCanAddSelf": true,
        "endTimeUnspecified": false,
        "eventType": "default",
    })
}

async fn an_insert_with_the_seeds_fields_round_trips_every_field(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let resp = send(
        app.req(Method::POST, &events_path(&cal))
            .query(&[
                ("sendUpdates", "all"),
                ("conferenceDataVersion", "0"),
                ("supportsAttachments", "false"),
            ])
            .json(&seed_body()),
    )
    .await;
    let e = g_ok(&resp, 200);
    let check = |e: &Value| {
        assert_eq!(e["kind"], "calendar#event");
        let id = e["id"].as_str().unwrap_or_default();
        assert_eq!(id.len(), 32, "{e}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{e}");
        assert!(
            e["etag"]
                .as_str()
                .is_some_and(|t| t.starts_with('"') && t.ends_with('"')),
            "{e}"
        );
        assert_eq!(e["status"], "tentative");
        assert!(
            e["htmlLink"]
                .as_str()
                .is_some_and(|l| l.starts_with("http://") && l.contains("/v1/calendar/events/")),
            "{e}"
        );
        assert!(
            e["created"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{e}"
        );
        assert!(
            e["updated"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{e}"
        );
        assert_eq!(e["summary"], "Google I/O 2027");
        assert_eq!(e["location"], "800 Howard St., San Francisco, CA 94103");
        assert_eq!(
            e["description"],
            "A chance to hear more about Google's developer products."
        );
        assert_eq!(e["creator"]["self"], true);
        assert_eq!(e["organizer"]["displayName"], "Studio");
        assert_eq!(
            e["start"],
            json!({"dateTime": "2027-05-28T09:00:00-07:00", "timeZone": "America/Los_Angeles"})
        );
        assert_eq!(
            e["end"],
            json!({"dateTime": "2027-05-28T17:00:00-07:00", "timeZone": "America/Los_Angeles"})
        );
        assert_eq!(e["endTimeUnspecified"], false);
        assert_eq!(e["transparency"], "opaque");
        assert_eq!(e["visibility"], "private");
        assert_eq!(e["iCalUID"], format!("{id}@quando"));
        assert_eq!(e["sequence"], 0);
        assert_eq!(
            e["attendees"][0],
            json!({"email": "lpage@example.com", "responseStatus": "needsAction"})
        );
        assert_eq!(
            e["attendees"][1],
            json!({"email": "sbrin@example.com", "displayName": "Sergey", "optional": true,
                   "responseStatus": "accepted", "comment": "on my way", "additionalGuests": 2})
        );
        assert_eq!(
            e["reminders"],
            json!({"useDefault": false, "overrides": [{"method": "email", "minutes": 1440}, {"method": "popup", "minutes": 10}]})
        );
        assert_eq!(
            e["extendedProperties"],
            json!({"private": {"crm": "42"}, "shared": {"room": "A"}})
        );
        assert_eq!(e["colorId"], "7");
        assert_eq!(
            e["source"],
            json!({"title": "Ticket", "url": "https://example.com/t/1"})
        );
        assert_eq!(e["guestsCanInviteOthers"], false);
        assert_eq!(e["guestsCanModify"], true);
        assert_eq!(e["guestsCanSeeOtherGuests"], false);
        assert_eq!(e["anyoneCanAddSelf"], true);
        assert_eq!(e["eventType"], "default");
    };
    check(&e);
    let id = e["id"].as_str().unwrap_or_default().to_string();
    let got = g_ok(&app.get(&event_path(&cal, &id)).await, 200);
    check(&got);
    assert_eq!(got["etag"], e["etag"]);
    // The same event natively: booked via gcal, no event type, the times in UTC.
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &id[0..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..32]
    );
    let native = assert_ok(&app.get(&format!("/v1/calendar/events/{uuid}")).await, 200);
    assert_eq!(native["bookedVia"], "gcal");
    assert_eq!(native["eventTypeId"], Value::Null);
    assert_eq!(native["startTime"], "2027-05-28T16:00:00Z");
    assert_eq!(native["title"], "Google I/O 2027");
    assert_eq!(native["status"], "tentative");
    assert_eq!(native["timezone"], "America/Los_Angeles");
    // And through Talkover.
    let t = talkover_ok(
        &app.get(&format!("/api/v1/calendars/{cal}/events")).await,
        200,
    );
    assert_eq!(t[0]["id"], uuid.as_str());
    // maxAttendees trims the answer and says so.
    let one = g_ok(
        &gget(&app, &event_path(&cal, &id), &[("maxAttendees", "1")]).await,
        200,
    );
    assert_eq!(one["attendees"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["attendeesOmitted"], true);
    // The list answer's envelope.
    let list = g_ok(&app.get(&events_path(&cal)).await, 200);
    assert_eq!(list["kind"], "calendar#events");
    assert_eq!(list["summary"], "Studio");
    assert_eq!(list["timeZone"], "Europe/Rome");
    assert_eq!(list["accessRole"], "owner");
    assert_eq!(list["defaultReminders"], json!([]));
    assert!(list["etag"].is_string() && list["updated"].is_string());
    assert_eq!(list["items"][0]["id"], id.as_str());
}

async fn get_answers_the_event_and_list_pages_with_max_results(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let mut made = Vec::new();
    for i in 0..5 {
        let e = insert(
            &app,
            &cal,
            timed(
                &format!("E{i}"),
                &plus_minutes("2027-03-01T08:00:00Z", 60 * i),
                30,
            ),
        )
        .await;
        made.push(e["id"].as_str().unwrap_or_default().to_string());
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![
            ("maxResults", "2".to_string()),
            ("singleEvents", "true".into()),
            ("orderBy", "startTime".into()),
        ];
        if let Some(t) = &token {
            q.push(("pageToken", t.clone()));
        }
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = g_ok(&gget(&app, &events_path(&cal), &q).await, 200);
        pages += 1;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|e| e["id"].as_str().unwrap_or_default().to_string()),
        );
        match page["nextPageToken"].as_str() {
            Some(t) => {
                assert!(page.get("nextSyncToken").is_none(), "{page}");
                token = Some(t.to_string());
            }
            None => {
                assert!(
                    page["nextSyncToken"].is_string(),
                    "the last page carries nextSyncToken: {page}"
                );
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, made);
    let g = g_ok(&app.get(&event_path(&cal, &made[2])).await, 200);
    assert_eq!(g["summary"], "E2");
    // A garbage page token is Google's 400 at pageToken; maxResults has its bounds.
    g_bad(
        &gget(&app, &events_path(&cal), &[("pageToken", "garbage")]).await,
        "invalid",
        "pageToken",
    );
    g_bad(
        &gget(&app, &events_path(&cal), &[("maxResults", "2501")]).await,
        "invalid",
        "maxResults",
    );
    g_bad(
        &gget(&app, &events_path(&cal), &[("maxResults", "0")]).await,
        "invalid",
        "maxResults",
    );
    // orderBy=startTime needs singleEvents=true; orderBy=updated lists by last change.
    g_bad(
        &gget(&app, &events_path(&cal), &[("orderBy", "startTime")]).await,
        "invalid",
        "orderBy",
    );
    // Times are kept to the second: the change comes a second after the inserts.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    g_ok(
        &app.patch(&event_path(&cal, &made[0]), &json!({"summary": "E0 again"}))
            .await,
        200,
    );
    let by_updated = g_ok(
        &gget(&app, &events_path(&cal), &[("orderBy", "updated")]).await,
        200,
    );
    let ids: Vec<&str> = by_updated["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids.last().copied(), Some(made[0].as_str()), "{by_updated}");
}

async fn every_list_filter_narrows_the_list(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let a = insert(&app, &cal, json!({
        "summary": "Dentist", "description": "cleaning", "location": "Via Roma",
        "start": {"dateTime": "2027-03-01T09:00:00Z"}, "end": {"dateTime": "2027-03-01T10:00:00Z"},
        "attendees": [{"email": "mario@example.com", "displayName": "Mario Rossi"}],
        "extendedProperties": {"private": {"crm": "1", "kind": "x"}, "shared": {"room": "A"}},
        "iCalUID": "dentist-1@example.com",
    })).await;
    let b = insert(&app, &cal, json!({
        "summary": "Lunch", "start": {"dateTime": "2027-03-01T12:00:00Z"}, "end": {"dateTime": "2027-03-01T13:00:00Z"},
        "extendedProperties": {"private": {"crm": "2"}},
    })).await;
    let c = insert(&app, &cal, timed("Late call", "2027-03-02T18:00:00Z", 30)).await;
    let ids_of = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let id = |e: &Value| e["id"].as_str().unwrap_or_default().to_string();
    let list = |q: Vec<(&'static str, String)>| {
        let app = &app;
        let path = events_path(&cal);
        async move {
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            g_ok(&gget(app, &path, &q).await, 200)
        }
    };
    // timeMin bounds the end (exclusive), timeMax the start (exclusive).
    assert_eq!(
        ids_of(&list(vec![("timeMin", "2027-03-01T10:00:00Z".into())]).await),
        [id(&b), id(&c)]
    );
    assert_eq!(
        ids_of(&list(vec![("timeMax", "2027-03-01T12:00:00Z".into())]).await),
        [id(&a)]
    );
    assert_eq!(
        ids_of(
            &list(vec![
                ("timeMin", "2027-03-01T09:30:00+00:00".into()),
                ("timeMax", "2027-03-01T12:00:01Z".into())
            ])
            .await
        ),
        [id(&a), id(&b)]
    );
    // Fractions of a second (as Google's clients send them) select what the whole second does.
    assert_eq!(
        ids_of(
            &list(vec![
                ("timeMin", "2027-03-01T10:00:00.123456Z".into()),
                ("timeMax", "2027-03-01T12:00:00.5+00:00".into())
            ])
            .await
        ),
        [id(&b)]
    );
    // q: summary, description, location, attendee email and name, case-insensitive.
    for q in ["dentist", "CLEANING", "via roma", "mario@example", "rossi"] {
        assert_eq!(
            ids_of(&list(vec![("q", q.into())]).await),
            [id(&a)],
            "q={q}"
        );
    }
    assert_eq!(
        ids_of(&list(vec![("q", "100%".into())]).await),
        Vec::<String>::new()
    );
    // iCalUID, given or generated.
    assert_eq!(
        ids_of(&list(vec![("iCalUID", "dentist-1@example.com".into())]).await),
        [id(&a)]
    );
    assert_eq!(
        ids_of(&list(vec![("iCalUID", format!("{}@quando", id(&c)))]).await),
        [id(&c)]
    );
    // Extended properties: every pair must match.
    assert_eq!(
        ids_of(&list(vec![("privateExtendedProperty", "crm=2".into())]).await),
        [id(&b)]
    );
    assert_eq!(
        ids_of(
            &list(vec![
                ("privateExtendedProperty", "crm=1".into()),
                ("privateExtendedProperty", "kind=x".into())
            ])
            .await
        ),
        [id(&a)]
    );
    assert_eq!(
        ids_of(
            &list(vec![
                ("privateExtendedProperty", "crm=1".into()),
                ("sharedExtendedProperty", "room=B".into())
            ])
            .await
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        ids_of(&list(vec![("sharedExtendedProperty", "room=A".into())]).await),
        [id(&a)]
    );
    g_bad(
        &gget(
            &app,
            &events_path(&cal),
            &[("privateExtendedProperty", "novalue")],
        )
        .await,
        "invalid",
        "privateExtendedProperty",
    );
    // updatedMin: only what changed since.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mark = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    g_ok(
        &app.patch(
            &event_path(&cal, &id(&c)),
            &json!({"summary": "Later call"}),
        )
        .await,
        200,
    );
    assert_eq!(ids_of(&list(vec![("updatedMin", mark)]).await), [id(&c)]);
    // showDeleted: cancelled events are hidden unless asked for.
    let resp = send(app.req(Method::DELETE, &event_path(&cal, &id(&b)))).await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    assert_eq!(ids_of(&list(vec![]).await), [id(&a), id(&c)]);
    let with_deleted = list(vec![("showDeleted", "true".into())]).await;
    assert_eq!(ids_of(&with_deleted), [id(&a), id(&b), id(&c)]);
    assert_eq!(with_deleted["items"][1]["status"], "cancelled");
    // singleEvents is accepted (every event is single).
    assert_eq!(
        ids_of(&list(vec![("singleEvents", "true".into())]).await),
        [id(&a), id(&c)]
    );
    // timeMax <= timeMin is timeRangeEmpty.
    g_error(
        &gget(
            &app,
            &events_path(&cal),
            &[
                ("timeMin", "2027-03-02T00:00:00Z"),
                ("timeMax", "2027-03-01T00:00:00Z"),
            ],
        )
        .await,
        400,
        "timeRangeEmpty",
    );
}

async fn patch_changes_the_given_members_and_update_replaces_the_event(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let e = insert(
        &app,
        &cal,
        json!({
            "summary": "Consult", "description": "first", "location": "Room 1",
            "start": {"dateTime": "2027-03-01T10:00:00", "timeZone": "Europe/Rome"},
            "end": {"dateTime": "2027-03-01T10:30:00", "timeZone": "Europe/Rome"},
            "colorId": "3", "reminders": {"useDefault": true},
        }),
    )
    .await;
    let id = e["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(e["start"]["dateTime"], "2027-03-01T10:00:00+01:00");
    // Patch: only the members given change; a new time bumps the sequence.
    let p = g_ok(
        &app.patch(
            &event_path(&cal, &id),
            &json!({
                "summary": "Consult (moved)",
                "start": {"dateTime": "2027-03-01T11:00:00+01:00"},
                "end": {"dateTime": "2027-03-01T11:45:00+01:00"},
            }),
        )
        .await,
        200,
    );
    assert_eq!(p["summary"], "Consult (moved)");
    assert_eq!(p["description"], "first");
    assert_eq!(p["location"], "Room 1");
    assert_eq!(p["colorId"], "3");
    assert_eq!(p["start"]["dateTime"], "2027-03-01T11:00:00+01:00");
    assert_eq!(p["end"]["dateTime"], "2027-03-01T11:45:00+01:00");
    assert_eq!(p["sequence"], 1);
    assert_ne!(p["etag"], e["etag"]);
    // A patch of the start alone keeps the end.
    let p2 = g_ok(
        &app.patch(
            &event_path(&cal, &id),
            &json!({"start": {"dateTime": "2027-03-01T11:15:00+01:00"}}),
        )
        .await,
        200,
    );
    assert_eq!(p2["end"]["dateTime"], "2027-03-01T11:45:00+01:00");
    assert_eq!(p2["sequence"], 2);
    // A patch without times keeps the sequence.
    let p3 = g_ok(
        &app.patch(&event_path(&cal, &id), &json!({"description": null}))
            .await,
        200,
    );
    assert!(p3.get("description").is_none(), "{p3}");
    assert_eq!(p3["sequence"], 2);
    // Update (PUT) replaces: what is left out is cleared.
    let u = g_ok(
        &app.req_put(
            &event_path(&cal, &id),
            &json!({
                "summary": "Replaced",
                "start": {"dateTime": "2027-03-02T09:00:00Z"},
                "end": {"dateTime": "2027-03-02T09:30:00Z"},
                "transparency": "transparent",
            }),
        )
        .await,
        200,
    );
    assert_eq!(u["summary"], "Replaced");
    assert!(
        u.get("location").is_none() && u.get("colorId").is_none(),
        "{u}"
    );
    assert_eq!(u["transparency"], "transparent");
    assert_eq!(u["reminders"], json!({"useDefault": true}));
    assert_eq!(u["sequence"], 3);
    // PUT needs start and end.
    g_bad(
        &app.req_put(&event_path(&cal, &id), &json!({"summary": "x"}))
            .await,
        "required",
        "start.dateTime",
    );
    // The native view follows.
    let uuid = uuid::Uuid::try_parse(&id)
        .map(|u| u.to_string())
        .unwrap_or_default();
    let native = assert_ok(&app.get(&format!("/v1/calendar/events/{uuid}")).await, 200);
    assert_eq!(native["title"], "Replaced");
    assert_eq!(native["startTime"], "2027-03-02T09:00:00Z");
    assert_eq!(native["transparency"], "transparent");
}

async fn delete_cancels_the_event_and_frees_its_time(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let e = insert(&app, &cal, timed("Hold", START, 60)).await;
    let id = e["id"].as_str().unwrap_or_default().to_string();
    let resp = send(
        app.req(Method::DELETE, &event_path(&cal, &id))
            .query(&[("sendUpdates", "none")]),
    )
    .await;
    assert_eq!(resp.status, 204, "{}", resp.describe());
    assert!(resp.text.is_empty());
    let got = g_ok(&app.get(&event_path(&cal, &id)).await, 200);
    assert_eq!(got["status"], "cancelled");
    // The time is free again: the same slot books.
    insert(&app, &cal, timed("Again", START, 60)).await;
    // Deleting it again is 410 deleted.
    g_error(
        &send(app.req(Method::DELETE, &event_path(&cal, &id))).await,
        410,
        "deleted",
    );
    // Natively it is cancelled.
    let uuid = uuid::Uuid::try_parse(&id)
        .map(|u| u.to_string())
        .unwrap_or_default();
    let native = assert_ok(&app.get(&format!("/v1/calendar/events/{uuid}")).await, 200);
    assert_eq!(native["status"], "cancelled");
}

async fn import_is_idempotent_on_the_ical_uid(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let path = format!("{}/import", events_path(&cal));
    // Imports are back-office entries: a past time is accepted.
    let body = json!({
        "iCalUID": "abc-123@legacy.example.com",
        "summary": "Imported",
        "start": {"dateTime": "2020-01-10T09:00:00Z"},
        "end": {"dateTime": "2020-01-10T10:00:00Z"},
        "organizer": {"email": "boss@legacy.example.com", "displayName": "Boss"},
    });
    let first = g_ok(&app.post(&path, &body).await, 200);
    assert_eq!(first["iCalUID"], "abc-123@legacy.example.com");
    assert_eq!(first["organizer"]["email"], "boss@legacy.example.com");
    assert_eq!(first["organizer"]["self"], false);
    let mut again = body.clone();
    again["summary"] = json!("Imported, renamed");
    let second = g_ok(&app.post(&path, &again).await, 200);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["summary"], "Imported, renamed");
    let list = g_ok(
        &gget(
            &app,
            &events_path(&cal),
            &[("iCalUID", "abc-123@legacy.example.com")],
        )
        .await,
        200,
    );
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    // iCalUID is required.
    g_bad(
        &app.post(&path, &timed("No uid", START, 30)).await,
        "required",
        "iCalUID",
    );
}

async fn a_client_chosen_id_is_kept_and_a_duplicate_is_409(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let mut body = timed("Chosen", START, 30);
    body["id"] = json!("quando0event1");
    let e = insert(&app, &cal, body.clone()).await;
    assert_eq!(e["id"], "quando0event1");
    assert_eq!(e["iCalUID"], "quando0event1@quando");
    g_ok(&app.get(&event_path(&cal, "quando0event1")).await, 200);
    let mut later = timed("Chosen again", "2027-03-05T09:00:00Z", 30);
    later["id"] = json!("quando0event1");
    let err = g_error(
        &app.post(&events_path(&cal), &later).await,
        409,
        "duplicate",
    );
    assert_eq!(err["status"], "ALREADY_EXISTS");
    // Another calendar may use the same id.
    let other = rome_calendar(&app, &app.key).await;
    let mut there = timed("Same id elsewhere", START, 30);
    there["id"] = json!("quando0event1");
    insert(&app, &other, there).await;
    // Ids outside base32hex are refused.
    for bad in ["abc", "UPPERCASE1", "with-dash1", "wxyz12345"] {
        let mut b = timed("Bad id", "2027-03-06T09:00:00Z", 30);
        b["id"] = json!(bad);
        g_bad(&app.post(&events_path(&cal), &b).await, "invalid", "id");
    }
}

async fn primary_is_the_default_calendar_and_404_without_one(app: TestApp) {
    let err = g_error(
        &app.get("/calendar/v3/calendars/primary/events").await,
        404,
        "notFound",
    );
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("isDefault")),
        "{err}"
    );
    g_error(
        &app.post(&events_path("primary"), &timed("x", START, 30))
            .await,
        404,
        "notFound",
    );
    let a = rome_calendar(&app, &app.key).await;
    let b = id_of(
        &app.create_calendar(
            &app.key,
            Some(json!({"name": "B", "timezone": "UTC", "isDefault": true})),
        )
        .await,
    );
    let native_b = assert_ok(&app.get(&format!("/v1/calendar/calendars/{b}")).await, 200);
    assert_eq!(native_b["isDefault"], true);
    let e = insert(&app, "primary", timed("On primary", START, 30)).await;
    let on_b = g_ok(
        &app.get(&event_path(&b, e["id"].as_str().unwrap_or_default()))
            .await,
        200,
    );
    assert_eq!(on_b["summary"], "On primary");
    // Making A the default clears B.
    assert_ok(
        &app.patch(
            &format!("/v1/calendar/calendars/{a}"),
            &json!({"isDefault": true}),
        )
        .await,
        200,
    );
    let native_b = assert_ok(&app.get(&format!("/v1/calendar/calendars/{b}")).await, 200);
    assert_eq!(native_b["isDefault"], false);
    let cal = g_ok(&app.get("/calendar/v3/calendars/primary").await, 200);
    assert_eq!(cal["id"], a.as_str());
    assert_eq!(cal["kind"], "calendar#calendar");
    assert_eq!(cal["timeZone"], "Europe/Rome");
    assert_eq!(cal["summary"], "Studio");
    assert!(cal["etag"].is_string());
    let list = g_ok(&app.get("/calendar/v3/users/me/calendarList").await, 200);
    assert_eq!(list["kind"], "calendar#calendarList");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2);
    for item in &items {
        assert_eq!(item["kind"], "calendar#calendarListEntry");
        assert_eq!(item["accessRole"], "owner");
        assert_eq!(item["primary"], item["id"] == a.as_str());
        assert!(
            item["summary"].is_string() && item["timeZone"].is_string() && item["etag"].is_string()
        );
    }
    // Another organization's default is not this one's.
    let (_, other_key) = app.new_org("Other").await;
    g_error(
        &send(app.req_as(&other_key, Method::GET, "/calendar/v3/calendars/primary")).await,
        404,
        "notFound",
    );
}

async fn all_day_events_are_dates_with_an_exclusive_end(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let e = insert(
        &app,
        &cal,
        json!({
            "summary": "Holiday",
            "start": {"date": "2027-04-05"},
            "end": {"date": "2027-04-07"},
        }),
    )
    .await;
    assert_eq!(e["start"], json!({"date": "2027-04-05"}));
    assert_eq!(e["end"], json!({"date": "2027-04-07"}));
    let uuid = uuid::Uuid::try_parse(e["id"].as_str().unwrap_or_default())
        .map(|u| u.to_string())
        .unwrap_or_default();
    let native = assert_ok(&app.get(&format!("/v1/calendar/events/{uuid}")).await, 200);
    assert_eq!(native["allDay"], true);
    assert_eq!(native["startDate"], "2027-04-05");
    assert_eq!(native["endDate"], "2027-04-07");
    assert_eq!(native["startTime"], "2027-04-04T22:00:00Z");
    // The days are held: a timed event inside them is a conflict; the day after is free.
    g_error(
        &app.post(
            &events_path(&cal),
            &timed("Inside", "2027-04-06T10:00:00Z", 30),
        )
        .await,
        409,
        "conflict",
    );
    insert(&app, &cal, timed("After", "2027-04-07T08:00:00+02:00", 30)).await;
    // End before start, or a date mixed with a dateTime, is 400.
    g_bad(
        &app.post(
            &events_path(&cal),
            &json!({"start": {"date": "2027-04-10"}, "end": {"date": "2027-04-09"}}),
        )
        .await,
        "invalid",
        "end.date",
    );
    g_bad(
        &app.post(
            &events_path(&cal),
            &json!({"start": {"date": "2027-04-10"}, "end": {"dateTime": "2027-04-11T00:00:00Z"}}),
        )
        .await,
        "invalid",
        "end",
    );
}

async fn an_overlap_is_409_conflict_with_quandos_reason_and_next_slots(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let first = insert(&app, &cal, timed("First", "2027-03-01T09:00:00Z", 60)).await;
    let resp = app
        .post(
            &events_path(&cal),
            &timed("Second", "2027-03-01T09:30:00Z", 60),
        )
        .await;
    let err = g_error(&resp, 409, "conflict");
    assert_eq!(err["errors"][0]["domain"], "calendar");
    assert_eq!(err["quandoReason"], "conflict");
    assert_eq!(err["conflictingEventId"], first["id"]);
    let next = err["nextSlots"].as_array().cloned().unwrap_or_default();
    assert!(!next.is_empty(), "{err}");
    assert_eq!(next[0]["start"], "2027-03-01T10:00:00Z");
    // A transparent event overlaps freely.
    let mut free = timed("Free", "2027-03-01T09:30:00Z", 60);
    free["transparency"] = json!("transparent");
    insert(&app, &cal, free).await;
    // Outside working hours is the same 409 with Quando's own reason.
    let hours = id_of(
        &app.create_calendar(
            &app.key,
            Some(json!({
                "name": "Office", "timezone": "UTC",
                "workingHours": [{"day": "monday", "start": "09:00", "end": "17:00"}],
            })),
        )
        .await,
    );
    let err = g_error(
        &app.post(
            &events_path(&hours),
            &timed("Night", "2027-03-01T20:00:00Z", 30),
        )
        .await,
        409,
        "conflict",
    );
    assert_eq!(err["quandoReason"], "outside_working_hours");
    assert_eq!(err["nextSlots"][0]["start"], "2027-03-08T09:00:00Z");
    // A patch onto a taken time is refused the same way.
    let second = insert(&app, &cal, timed("Second", "2027-03-01T11:00:00Z", 30)).await;
    let err = g_error(
        &app.patch(&event_path(&cal, second["id"].as_str().unwrap_or_default()), &json!({
            "start": {"dateTime": "2027-03-01T09:15:00Z"}, "end": {"dateTime": "2027-03-01T09:45:00Z"}})).await,
        409,
        "conflict",
    );
    assert_eq!(err["quandoReason"], "conflict");
}

async fn a_stale_if_match_is_412_and_a_current_if_none_match_is_304(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let e = insert(&app, &cal, timed("Tagged", START, 30)).await;
    let id = e["id"].as_str().unwrap_or_default().to_string();
    let tag = e["etag"].as_str().unwrap_or_default().to_string();
    let path = event_path(&cal, &id);
    let not_modified = send(app.req(Method::GET, &path).header("If-None-Match", &tag)).await;
    assert_eq!(not_modified.status, 304, "{}", not_modified.describe());
    let changed = g_ok(
        &send(
            app.req(Method::PATCH, &path)
                .header("If-Match", &tag)
                .json(&json!({"summary": "v2"})),
        )
        .await,
        200,
    );
    assert_ne!(changed["etag"], e["etag"]);
    // The old tag is stale now.
    let err = g_error(
        &send(
            app.req(Method::PATCH, &path)
                .header("If-Match", &tag)
                .json(&json!({"summary": "v3"})),
        )
        .await,
        412,
        "conditionNotMet",
    );
    assert_eq!(err["status"], "FAILED_PRECONDITION");
    g_error(
        &send(
            app.req(Method::PUT, &path)
                .header("If-Match", &tag)
                .json(&timed("v3", START, 30)),
        )
        .await,
        412,
        "conditionNotMet",
    );
    g_error(
        &send(app.req(Method::DELETE, &path).header("If-Match", &tag)).await,
        412,
        "conditionNotMet",
    );
    let fresh = send(app.req(Method::GET, &path).header("If-None-Match", &tag)).await;
    assert_eq!(g_ok(&fresh, 200)["summary"], "v2");
    // A change through the native API changes the etag too.
    let uuid = uuid::Uuid::try_parse(&id)
        .map(|u| u.to_string())
        .unwrap_or_default();
    let current = changed["etag"].as_str().unwrap_or_default().to_string();
    assert_ok(
        &app.patch(
            &format!("/v1/calendar/events/{uuid}"),
            &json!({"notes": "n"}),
        )
        .await,
        200,
    );
    g_error(
        &send(app.req(Method::DELETE, &path).header("If-Match", &current)).await,
        412,
        "conditionNotMet",
    );
}

async fn every_bad_input_is_googles_400_with_its_location(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let path = events_path(&cal);
    let bad = |body: Value, reason: &'static str, location: &'static str| {
        let app = &app;
        let path = path.clone();
        async move {
            let resp = app.post(&path, &body).await;
            g_bad(&resp, reason, location);
        }
    };
    bad(json!({"summary": "no times"}), "required", "start.dateTime").await;
    bad(
        json!({"start": {"dateTime": START}}),
        "required",
        "end.dateTime",
    )
    .await;
    bad(json!({"start": {"dateTime": "2027-03-01T09:00:00"}, "end": {"dateTime": "2027-03-01T10:00:00"}}), "invalid", "start.dateTime").await;
    bad(
        json!({"start": {"dateTime": "tomorrow"}, "end": {"dateTime": START}}),
        "invalid",
        "start.dateTime",
    )
    .await;
    bad(
        json!({"start": {"dateTime": START, "timeZone": "Mars/Base"}, "end": {"dateTime": START}}),
        "invalid",
        "start.timeZone",
    )
    .await;
    bad(
        json!({"start": {"date": "2027-02-30"}, "end": {"date": "2027-03-02"}}),
        "invalid",
        "start.date",
    )
    .await;
    bad(
        json!({"start": {"dateTime": START}, "end": {"dateTime": plus_minutes(START, -30)}}),
        "invalid",
        "end.dateTime",
    )
    .await;
    // The core's own limits come back under Google's names: at most 7 days long.
    bad(json!({"start": {"dateTime": START}, "end": {"dateTime": plus_minutes(START, 8 * 24 * 60)}}), "invalid", "end.dateTime").await;
    let t = |extra: Value| with(timed("x", START, 30), extra);
    bad(t(json!({"summary": 42})), "invalid", "summary").await;
    bad(t(json!({"status": "maybe"})), "invalid", "status").await;
    bad(
        t(json!({"transparency": "glass"})),
        "invalid",
        "transparency",
    )
    .await;
    bad(t(json!({"visibility": "secret"})), "invalid", "visibility").await;
    bad(t(json!({"eventType": "focusTime"})), "invalid", "eventType").await;
    bad(
        t(json!({"conferenceData": {"createRequest": {"requestId": "x"}}})),
        "invalid",
        "conferenceData",
    )
    .await;
    // Recurring events are google_recurrence.rs's; a line that is no rule is named here.
    let rec = app
        .post(&path, &t(json!({"recurrence": ["RRULE:FREQ=NEVER"]})))
        .await;
    g_bad(&rec, "invalid", "recurrence[0]");
    bad(
        t(json!({"attendees": [{"displayName": "no email"}]})),
        "required",
        "attendees[0].email",
    )
    .await;
    bad(
        t(json!({"attendees": [{"email": "not-an-address"}]})),
        "invalid",
        "attendees[0].email",
    )
    .await;
    bad(
        t(json!({"attendees": [{"email": "a@example.com", "responseStatus": "maybe"}]})),
        "invalid",
        "attendees[0].responseStatus",
    )
    .await;
    bad(
        t(json!({"attendees": [{"email": "a@example.com", "additionalGuests": -1}]})),
        "invalid",
        "attendees[0].additionalGuests",
    )
    .await;
    bad(t(json!({"attendees": "x"})), "invalid", "attendees").await;
    bad(t(json!({"reminders": {"useDefault": false, "overrides": [{"method": "sms", "minutes": 5}]}})), "invalid", "reminders.overrides[0].method").await;
    bad(t(json!({"reminders": {"useDefault": false, "overrides": [{"method": "popup", "minutes": 40321}]}})), "invalid", "reminders.overrides[0].minutes").await;
    let six: Vec<Value> = (0..6)
        .map(|i| json!({"method": "popup", "minutes": i}))
        .collect();
    bad(
        t(json!({"reminders": {"useDefault": false, "overrides": six}})),
        "invalid",
        "reminders.overrides",
    )
    .await;
    bad(t(json!({"reminders": {"useDefault": true, "overrides": [{"method": "popup", "minutes": 5}]}})), "invalid", "reminders.useDefault").await;
    bad(
        t(json!({"extendedProperties": {"private": {"k": 1}}})),
        "invalid",
        "extendedProperties.private.k",
    )
    .await;
    bad(t(json!({"colorId": "99"})), "invalid", "colorId").await;
    bad(
        t(json!({"source": {"title": "x", "url": "ftp://example.com"}})),
        "invalid",
        "source.url",
    )
    .await;
    bad(
        t(json!({"guestsCanModify": "yes"})),
        "invalid",
        "guestsCanModify",
    )
    .await;
    // Malformed JSON, a body that is not an object.
    let resp = send(
        app.req(Method::POST, &path)
            .header("content-type", "application/json")
            .body("{\"summary\": "),
    )
    .await;
    g_bad(&resp, "parseError", "body");
    let resp = send(
        app.req(Method::POST, &path)
            .header("content-type", "application/json")
            .body("[1]"),
    )
    .await;
    g_bad(&resp, "invalid", "body");
    // Query parameters.
    let q = |name: &'static str, value: &'static str| {
        let app = &app;
        let path = path.clone();
        async move {
            let resp = send(
                app.req(Method::POST, &path)
                    .query(&[(name, value)])
                    .json(&timed("x", START, 30)),
            )
            .await;
            g_bad(&resp, "invalid", name);
        }
    };
    q("sendUpdates", "everyone").await;
    q("sendNotifications", "maybe").await;
    q("conferenceDataVersion", "2").await;
    q("maxAttendees", "0").await;
    q("supportsAttachments", "x").await;
    q("alt", "xml").await;
    q("prettyPrint", "yes").await;
    for (name, value) in [
        ("timeMin", "yesterday"),
        ("timeMax", "2027-01-01"),
        ("updatedMin", "x"),
        ("showDeleted", "1"),
        ("orderBy", "title"),
    ] {
        g_bad(&gget(&app, &path, &[(name, value)]).await, "invalid", name);
    }
    // Nothing was booked by any of these.
    let list = g_ok(&app.get(&path).await, 200);
    assert_eq!(list["items"], json!([]));
    // A wrong content type is Google's 415.
    let resp = send(
        app.req(Method::POST, &path)
            .header("content-type", "text/plain")
            .body("hello"),
    )
    .await;
    g_error(&resp, 415, "badContent");
}

async fn auth_errors_and_unknown_routes_are_in_googles_shape(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let path = events_path(&cal);
    let err = g_error(&send(app.bare(Method::GET, &path)).await, 401, "authError");
    assert_eq!(err["status"], "UNAUTHENTICATED");
    let err = g_error(
        &send(app.req_as(
            "qnd_live_00000000000000000000000000000000000000",
            Method::GET,
            &path,
        ))
        .await,
        401,
        "authError",
    );
    assert_eq!(err["errors"][0]["location"], "Authorization");
    let read_only = app
        .key_with_scopes(app.org_id, &[quando_api::auth::Scope::CalendarRead])
        .await;
    g_ok(&send(app.req_as(&read_only, Method::GET, &path)).await, 200);
    let err = g_error(
        &send(
            app.req_as(&read_only, Method::POST, &path)
                .json(&timed("x", START, 30)),
        )
        .await,
        403,
        "insufficientPermissions",
    );
    assert_eq!(err["status"], "PERMISSION_DENIED");
    let write_only = app
        .key_with_scopes(app.org_id, &[quando_api::auth::Scope::CalendarWrite])
        .await;
    g_error(
        &send(app.req_as(&write_only, Method::GET, &path)).await,
        403,
        "insufficientPermissions",
    );
    g_error(
        &send(
            app.req_as(&write_only, Method::POST, "/calendar/v3/freeBusy")
                .json(&json!({})),
        )
        .await,
        403,
        "insufficientPermissions",
    );
    // An unknown route and a wrong method, with and without a key.
    g_error(&app.get("/calendar/v3/nothing/here").await, 404, "notFound");
    g_error(
        &send(
            app.bare(Method::POST, "/calendar/v3/nothing")
                .json(&json!({"a": 1})),
        )
        .await,
        404,
        "notFound",
    );
    let resp = send(app.req(Method::DELETE, "/calendar/v3/users/me/calendarList")).await;
    assert_eq!(resp.status, 405, "{}", resp.describe());
    assert!(
        resp.body["error"]["code"].is_number(),
        "{}",
        resp.describe()
    );
    // A body over 64 KiB, and a key over its budget.
    let big = json!({"summary": "x".repeat(70 * 1024)});
    g_error(&app.post(&path, &big).await, 413, "uploadTooLarge");
    let limited = quando_api::admin::create_key(
        &app.db,
        app.org_id,
        &quando_api::auth::Scope::ALL,
        Some("limited"),
        Some(1),
    )
    .await
    .unwrap_or_else(|e| panic!("create_key: {e}"))
    .key;
    g_ok(&send(app.req_as(&limited, Method::GET, &path)).await, 200);
    let resp = send(app.req_as(&limited, Method::GET, &path)).await;
    let err = g_error(&resp, 429, "rateLimitExceeded");
    assert_eq!(err["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(err["errors"][0]["domain"], "usageLimits");
    assert!(resp.header("retry-after").is_some(), "{}", resp.describe());
    // A revoked key is forbidden.
    let (key_id, key) = app
        .created_key_with_scopes(app.org_id, &quando_api::auth::Scope::ALL)
        .await;
    quando_api::admin::revoke_key(&app.db, key_id)
        .await
        .unwrap_or_else(|e| panic!("revoke: {e}"));
    g_error(
        &send(app.req_as(&key, Method::GET, &path)).await,
        403,
        "forbidden",
    );
}

async fn fields_trims_the_answer_and_the_insert_parameters_are_checked(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    insert(&app, &cal, timed("One", START, 30)).await;
    insert(&app, &cal, timed("Two", "2027-03-01T12:00:00Z", 30)).await;
    let resp = gget(
        &app,
        &events_path(&cal),
        &[
            ("fields", "items(id,summary),nextPageToken"),
            ("maxResults", "1"),
            ("prettyPrint", "false"),
            ("quotaUser", "u1"),
            ("key", "ignored"),
            ("alt", "json"),
        ],
    )
    .await;
    let v = g_ok(&resp, 200);
    let keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["items", "nextPageToken"], "{v}");
    assert_eq!(v["items"][0].as_object().map(|o| o.len()), Some(2), "{v}");
    assert_eq!(v["items"][0]["summary"], "One");
    assert!(!resp.text.contains('\n'), "prettyPrint=false is one line");
    let pretty = app.get(&events_path(&cal)).await;
    assert!(pretty.text.contains('\n'), "prettyPrint defaults to true");
    let resp = app.post(&format!("{}?fields=id,status&sendUpdates=externalOnly&sendNotifications=true&conferenceDataVersion=1&maxAttendees=3&supportsAttachments=true", events_path(&cal)),
        &with(timed("Three", "2027-03-02T12:00:00Z", 30), json!({"attachments": [{"fileUrl": "https://example.com/a.pdf", "title": "a"}]}))).await;
    let v = g_ok(&resp, 200);
    assert_eq!(v.as_object().map(|o| o.len()), Some(2), "{v}");
    assert_eq!(v["status"], "confirmed");
    let full = g_ok(
        &app.get(&event_path(&cal, v["id"].as_str().unwrap_or_default()))
            .await,
        200,
    );
    assert_eq!(
        full["attachments"],
        json!([{"fileUrl": "https://example.com/a.pdf", "title": "a"}])
    );
    g_bad(
        &gget(&app, &events_path(&cal), &[("fields", "items(id")]).await,
        "invalid",
        "fields",
    );
}
