//! Calendar feeds: the feed URL made once and shown once, the `.ics` served without a key with
//! every event of the window (cancelled ones marked), SEQUENCE after a reschedule, ETag and
//! If-None-Match, a recurring series as one master with its EXDATE and its moved instance, and
//! the token as the only credential: another calendar's, a rotated or a made-up token is 404 in
//! the envelope, another organization's calendar is 404, scopes hold. Both backends.

use chrono::{DateTime, Duration, Utc};
use quando_api::auth::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::google::{event_path, events_path, g_ok};
use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        the_first_get_makes_the_feed_and_shows_its_url_once,
        the_feed_is_served_without_a_key_with_every_event_of_the_window_and_cancelled_ones_marked,
        a_reschedule_bumps_sequence_and_the_etag_while_an_unchanged_feed_answers_304,
        a_recurring_series_is_one_master_with_its_exdate_and_its_moved_instance,
        another_calendars_token_a_rotated_token_and_made_up_tokens_are_404_in_the_envelope,
        another_organizations_calendar_is_404_and_each_operation_needs_its_scope,
    ]
}

fn feed_path(calendar: &str) -> String {
    format!("/v1/calendar/calendars/{calendar}/feed")
}

/// The path of a feed URL (`/feeds/qfeed_....ics`).
fn path_of(url: &str) -> String {
    let at = url
        .find("/feeds/")
        .unwrap_or_else(|| panic!("not a feed URL: {url}"));
    url[at..].to_string()
}

/// Makes the calendar's feed and returns its path.
async fn new_feed(app: &TestApp, calendar: &str) -> String {
    let data = assert_ok(&app.get(&feed_path(calendar)).await, 201);
    path_of(data["url"].as_str().expect("a new feed shows its url"))
}

/// The feed, fetched without any key.
async fn fetch(app: &TestApp, path: &str) -> Resp {
    send(app.bare(Method::GET, path)).await
}

/// A feed's text, unfolded, as lines.
#[track_caller]
fn ics_lines(resp: &Resp) -> Vec<String> {
    assert_eq!(resp.status, 200, "{}", resp.describe());
    assert_eq!(
        resp.content_type(),
        "text/calendar; charset=utf-8",
        "{}",
        resp.describe()
    );
    assert!(
        resp.text.ends_with("END:VCALENDAR\r\n"),
        "{}",
        resp.describe()
    );
    resp.text
        .replace("\r\n ", "")
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The VEVENT blocks of a feed, each as its lines.
fn vevents(lines: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for l in lines {
        if l == "BEGIN:VEVENT" {
            current = Some(Vec::new());
        } else if l == "END:VEVENT" {
            out.extend(current.take());
        } else if let Some(c) = current.as_mut() {
            c.push(l.clone());
        }
    }
    out
}

/// The VEVENT with this UID and no RECURRENCE-ID.
#[track_caller]
fn vevent<'a>(events: &'a [Vec<String>], uid: &str) -> &'a Vec<String> {
    let found: Vec<&Vec<String>> = events
        .iter()
        .filter(|e| e.contains(&format!("UID:{uid}")))
        .filter(|e| !e.iter().any(|l| l.starts_with("RECURRENCE-ID")))
        .collect();
    assert_eq!(found.len(), 1, "one VEVENT with UID {uid} in {events:?}");
    found[0]
}

fn uid_of(event: &Value) -> String {
    format!("{}@quando", id_of(event).replace('-', ""))
}

/// `HH:MM` on the day `days` from today (UTC), as RFC 3339.
fn day_at(days: i64, hm: &str) -> String {
    let day = (Utc::now() + Duration::days(days)).date_naive();
    format!("{}T{hm}:00Z", day.format("%Y-%m-%d"))
}

/// `20270601T090000Z` of an RFC 3339 UTC time.
fn stamp(t: &str) -> String {
    DateTime::parse_from_rfc3339(t)
        .unwrap()
        .with_timezone(&Utc)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

async fn the_first_get_makes_the_feed_and_shows_its_url_once(app: TestApp) {
    let calendar = id_of(&app.create_calendar(&app.key, None).await);
    let first = app.get(&feed_path(&calendar)).await;
    let made = assert_ok(&first, 201);
    assert_eq!(made["calendarId"], calendar.as_str());
    let url = made["url"].as_str().expect("url").to_string();
    assert!(url.starts_with(&app.base_url), "absolute, from Host: {url}");
    let token = path_of(&url)
        .trim_start_matches("/feeds/")
        .trim_end_matches(".ics")
        .to_string();
    assert!(
        token.starts_with("qfeed_") && token.len() >= 6 + 43,
        "{token}"
    );
    assert_utc_seconds(&made["createdAt"], "createdAt");

    let again = app.get(&feed_path(&calendar)).await;
    let shown = assert_ok(&again, 200);
    assert_eq!(shown["url"], Value::Null, "the token is never shown twice");
    assert_eq!(shown["createdAt"], made["createdAt"]);
    assert!(
        !again.text.contains(&token),
        "the token appears nowhere after creation: {}",
        again.describe()
    );
    // The URL works, without a key.
    assert_eq!(fetch(&app, &path_of(&url)).await.status, 200);
}

async fn the_feed_is_served_without_a_key_with_every_event_of_the_window_and_cancelled_ones_marked(
    app: TestApp,
) {
    let calendar = id_of(
        &app.create_calendar(
            &app.key,
            Some(json!({"name": "Studio; Rossi, sede 1", "timezone": "Europe/Rome"})),
        )
        .await,
    );
    let event_type = id_of(&app.create_event_type(&app.key, Some(&calendar), 30).await);
    let (start, end) = (day_at(2, "09:00"), day_at(2, "09:30"));
    let kept = app
        .create_event_with(
            &app.key,
            with(
                event_body(&calendar, &event_type, &start, &end),
                json!({"timezone": "Europe/Rome", "title": "Controllo, annuale",
                       "location": "Via Roma 1", "description": "Portare le lastre",
                       "attendees": [{"name": "Laura Bianchi", "email": "laura@example.com",
                                      "responseStatus": "accepted"}]}),
            ),
        )
        .await;
    let (c_start, c_end) = (day_at(3, "10:00"), day_at(3, "10:30"));
    let cancelled = app
        .create_event_with(
            &app.key,
            with(
                event_body(&calendar, &event_type, &c_start, &c_end),
                json!({"title": "Disdetto"}),
            ),
        )
        .await;
    let cancel = app
        .post(
            &format!("/v1/calendar/events/{}/cancel", id_of(&cancelled)),
            &json!({"reason": "ill"}),
        )
        .await;
    assert_ok(&cancel, 200);
    let (far_start, far_end) = (day_at(400, "09:00"), day_at(400, "09:30"));
    let far = app
        .create_event(&app.key, &calendar, &event_type, &far_start, &far_end)
        .await;

    let path = new_feed(&app, &calendar).await;
    let resp = fetch(&app, &path).await;
    let lines = ics_lines(&resp);
    assert_eq!(lines[0], "BEGIN:VCALENDAR");
    assert!(lines.contains(&"X-WR-CALNAME:Studio\\; Rossi\\, sede 1".to_string()));
    assert!(
        lines.contains(&"TZID:Europe/Rome".to_string()),
        "a VTIMEZONE for Rome"
    );
    assert!(resp.header("etag").is_some_and(|e| e.starts_with('"')));
    assert!(
        resp.header("cache-control")
            .is_some_and(|c| c.contains("private"))
    );
    let events = vevents(&lines);
    assert_eq!(events.len(), 2, "only the window's events: {events:?}");

    let one = vevent(&events, &uid_of(&kept));
    for expected in [
        "SEQUENCE:0",
        "SUMMARY:Controllo\\, annuale",
        "LOCATION:Via Roma 1",
        "DESCRIPTION:Portare le lastre",
        "STATUS:CONFIRMED",
        "ATTENDEE;CN=\"Laura Bianchi\";ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:laura@example.com",
    ] {
        assert!(one.contains(&expected.to_string()), "{expected} in {one:?}");
    }
    assert!(
        one.iter()
            .any(|l| l.starts_with("DTSTART;TZID=Europe/Rome:")),
        "{one:?}"
    );
    for prop in ["DTSTAMP:", "LAST-MODIFIED:", "CREATED:"] {
        assert!(one.iter().any(|l| l.starts_with(prop)), "{prop} in {one:?}");
    }

    let gone = vevent(&events, &uid_of(&cancelled));
    assert!(gone.contains(&"STATUS:CANCELLED".to_string()), "{gone:?}");
    assert!(
        gone.contains(&format!("DTSTART:{}", stamp(&c_start))),
        "a UTC event in UTC: {gone:?}"
    );
    assert!(
        !resp.text.contains(&uid_of(&far)),
        "an event past the window is left out"
    );
}

async fn a_reschedule_bumps_sequence_and_the_etag_while_an_unchanged_feed_answers_304(
    app: TestApp,
) {
    let (calendar, event_type) = app.calendar_and_event_type().await;
    let event = app
        .create_event(
            &app.key,
            &calendar,
            &event_type,
            &day_at(5, "09:00"),
            &day_at(5, "09:30"),
        )
        .await;
    let path = new_feed(&app, &calendar).await;
    let first = fetch(&app, &path).await;
    let lines = ics_lines(&first);
    assert!(vevent(&vevents(&lines), &uid_of(&event)).contains(&"SEQUENCE:0".to_string()));
    let etag = first.header("etag").expect("ETag").to_string();

    // Nothing changed: the same bytes, the same ETag, and 304 to If-None-Match.
    let again = fetch(&app, &path).await;
    assert_eq!(
        again.text, first.text,
        "an unchanged feed is byte-identical"
    );
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let unchanged = send(
        app.bare(Method::GET, &path)
            .header("If-None-Match", etag.as_str()),
    )
    .await;
    assert_eq!(unchanged.status, 304, "{}", unchanged.describe());
    assert!(unchanged.text.is_empty(), "{}", unchanged.describe());
    assert_eq!(unchanged.header("etag"), Some(etag.as_str()));
    let other_tag = send(
        app.bare(Method::GET, &path)
            .header("If-None-Match", "\"something-else\""),
    )
    .await;
    assert_eq!(other_tag.status, 200);

    let (start, end) = (day_at(5, "11:00"), day_at(5, "11:30"));
    let moved = app
        .patch(
            &format!("/v1/calendar/events/{}", id_of(&event)),
            &json!({"startTime": start, "endTime": end}),
        )
        .await;
    assert_ok(&moved, 200);
    let after = send(
        app.bare(Method::GET, &path)
            .header("If-None-Match", etag.as_str()),
    )
    .await;
    let lines = ics_lines(&after);
    let events = vevents(&lines);
    let one = vevent(&events, &uid_of(&event));
    assert!(one.contains(&"SEQUENCE:1".to_string()), "{one:?}");
    assert!(
        one.contains(&format!("DTSTART:{}", stamp(&start))),
        "{one:?}"
    );
    let new_tag = after.header("etag").expect("ETag");
    assert_ne!(new_tag, etag, "a change is a new ETag");
}

async fn a_recurring_series_is_one_master_with_its_exdate_and_its_moved_instance(app: TestApp) {
    let (calendar, _) = app.calendar_and_event_type().await;
    let start = day_at(1, "08:00");
    let master = g_ok(
        &app.post(
            &events_path(&calendar),
            &json!({"summary": "Weekly", "start": {"dateTime": start, "timeZone": "UTC"},
                    "end": {"dateTime": day_at(1, "08:30"), "timeZone": "UTC"},
                    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"]}),
        )
        .await,
        200,
    );
    let id = master["id"].as_str().expect("id").to_string();
    let uid = master["iCalUID"].as_str().expect("iCalUID").to_string();
    let second = stamp(&day_at(8, "08:00"));
    let third = stamp(&day_at(15, "08:00"));
    let gone = send(app.req(
        Method::DELETE,
        &event_path(&calendar, &format!("{id}_{second}")),
    ))
    .await;
    assert_eq!(gone.status, 204, "{}", gone.describe());
    g_ok(
        &app.patch(
            &event_path(&calendar, &format!("{id}_{third}")),
            &json!({"start": {"dateTime": day_at(15, "12:00"), "timeZone": "UTC"},
                    "end": {"dateTime": day_at(15, "12:30"), "timeZone": "UTC"}}),
        )
        .await,
        200,
    );

    let path = new_feed(&app, &calendar).await;
    let lines = ics_lines(&fetch(&app, &path).await);
    let events = vevents(&lines);
    let of_series: Vec<&Vec<String>> = events
        .iter()
        .filter(|e| e.contains(&format!("UID:{uid}")))
        .collect();
    assert_eq!(events.len(), 2, "a master and one override: {events:?}");
    assert_eq!(of_series.len(), 2, "{events:?}");
    let main = vevent(&events, &uid);
    assert!(
        main.contains(&"RRULE:FREQ=WEEKLY;COUNT=4".to_string()),
        "{main:?}"
    );
    assert!(
        main.contains(&format!("DTSTART:{}", stamp(&start))),
        "{main:?}"
    );
    assert!(main.contains(&format!("EXDATE:{second}")), "{main:?}");
    assert!(main.contains(&"SUMMARY:Weekly".to_string()), "{main:?}");
    let moved = events
        .iter()
        .find(|e| e.contains(&format!("RECURRENCE-ID:{third}")))
        .unwrap_or_else(|| panic!("an override for the moved instance: {events:?}"));
    assert!(
        moved.contains(&format!("DTSTART:{}", stamp(&day_at(15, "12:00")))),
        "{moved:?}"
    );
    assert!(moved.contains(&"SEQUENCE:1".to_string()), "{moved:?}");
}

async fn another_calendars_token_a_rotated_token_and_made_up_tokens_are_404_in_the_envelope(
    app: TestApp,
) {
    let first = id_of(
        &app.create_calendar(&app.key, Some(json!({"name": "Primo"})))
            .await,
    );
    let second = id_of(
        &app.create_calendar(&app.key, Some(json!({"name": "Secondo"})))
            .await,
    );
    let first_path = new_feed(&app, &first).await;
    let second_path = new_feed(&app, &second).await;
    assert_ne!(first_path, second_path);
    let shown = ics_lines(&fetch(&app, &second_path).await);
    assert!(shown.contains(&"X-WR-CALNAME:Secondo".to_string()));
    assert!(!shown.contains(&"X-WR-CALNAME:Primo".to_string()));

    let rotated = app
        .post(&format!("{}/rotate", feed_path(&first)), &json!({}))
        .await;
    let data = assert_ok(&rotated, 200);
    let new_path = path_of(data["url"].as_str().expect("a rotation shows the new url"));
    assert_ne!(new_path, first_path);
    let old = fetch(&app, &first_path).await;
    assert_error(&old, 404, "not_found");
    let fresh = ics_lines(&fetch(&app, &new_path).await);
    assert!(fresh.contains(&"X-WR-CALNAME:Primo".to_string()));
    // The other calendar's feed is untouched by the rotation.
    assert_eq!(fetch(&app, &second_path).await.status, 200);
    // GET after a rotation still does not show the token.
    assert_eq!(
        assert_ok(&app.get(&feed_path(&first)).await, 200)["url"],
        Value::Null
    );

    let token = new_path
        .trim_start_matches("/feeds/")
        .trim_end_matches(".ics");
    let random = &token["qfeed_".len()..];
    let flipped: String = random
        .chars()
        .map(|c| if c == 'A' { 'B' } else { 'A' })
        .collect();
    for made_up in [
        "/feeds/nothing.ics".to_string(),
        "/feeds/qfeed_.ics".to_string(),
        format!("/feeds/qfeed_{flipped}.ics"),
        format!("/feeds/{token}"),
        format!("/feeds/{token}.ics.ics"),
        format!("/feeds/{random}.ics"),
        format!("/feeds/{}.ics", token.to_uppercase()),
    ] {
        let resp = fetch(&app, &made_up).await;
        assert_error(&resp, 404, "not_found");
        assert!(
            !resp.text.contains("VCALENDAR"),
            "{made_up}: {}",
            resp.describe()
        );
    }
    // An API key does not open a feed either: only its token does.
    let with_key = app.get(&format!("/feeds/qfeed_{flipped}.ics")).await;
    assert_error(&with_key, 404, "not_found");
}

async fn another_organizations_calendar_is_404_and_each_operation_needs_its_scope(app: TestApp) {
    let calendar = id_of(&app.create_calendar(&app.key, None).await);
    let (_, other_key) = app.new_org("Concorrente Srl").await;
    let hidden = app.get_as(&other_key, &feed_path(&calendar)).await;
    assert_error(&hidden, 404, "not_found");
    let hidden = app
        .post_as(
            &other_key,
            &format!("{}/rotate", feed_path(&calendar)),
            &json!({}),
        )
        .await;
    assert_error(&hidden, 404, "not_found");
    // The other organization's own calendar gets its own feed.
    let theirs = id_of(&app.create_calendar(&other_key, None).await);
    assert_ok(&app.get_as(&other_key, &feed_path(&theirs)).await, 201);

    let unknown = app.get(&feed_path(&unknown_id())).await;
    assert_error(&unknown, 404, "not_found");
    // A malformed id names nothing that could exist: 404, as for every path id.
    let bad_id = app.get(&feed_path("not-a-uuid")).await;
    assert_error(&bad_id, 404, "not_found");

    let read_only = app
        .key_with_scopes(app.org_id, &[Scope::CalendarRead])
        .await;
    let write_only = app
        .key_with_scopes(app.org_id, &[Scope::CalendarWrite])
        .await;
    assert_ok(&app.get_as(&read_only, &feed_path(&calendar)).await, 201);
    let refused = app
        .post_as(
            &read_only,
            &format!("{}/rotate", feed_path(&calendar)),
            &json!({}),
        )
        .await;
    assert_error(&refused, 403, "insufficient_scope");
    let refused = app.get_as(&write_only, &feed_path(&calendar)).await;
    assert_error(&refused, 403, "insufficient_scope");
    assert_ok(
        &app.post_as(
            &write_only,
            &format!("{}/rotate", feed_path(&calendar)),
            &json!({}),
        )
        .await,
        200,
    );
    let no_key = send(app.bare(Method::GET, &feed_path(&calendar))).await;
    assert_error(&no_key, 401, "unauthorized");
}
