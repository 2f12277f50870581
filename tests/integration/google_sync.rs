//! The Google dialect, continued: incremental sync (changes made through any API), the 410 of
//! a token that cannot be used, freeBusy, another organization's ids, and a request refused
//! before its body is read that leaves the keep-alive connection usable. Both backends.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::google::{
    START, event_path, events_path, g_bad, g_error, g_ok, gget, insert, rome_calendar, timed,
};
use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        a_sync_round_returns_exactly_what_changed_through_any_api,
        an_incremental_list_pages_and_ends_with_a_new_sync_token,
        an_expired_foreign_or_garbage_sync_token_is_410_full_sync_required,
        a_sync_token_refuses_the_filters_google_refuses,
        free_busy_merges_busy_times_and_names_unknown_calendars,
        free_busy_shows_a_live_slot_hold_as_busy_and_an_expired_one_as_free,
        another_organizations_ids_are_404_everywhere,
        a_post_refused_before_its_body_is_read_leaves_the_connection_usable,
    ]
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn uuid_of(gid: &str) -> String {
    uuid::Uuid::try_parse(gid)
        .map(|u| u.to_string())
        .unwrap_or_default()
}

async fn sync(app: &TestApp, cal: &str, token: &str) -> Value {
    g_ok(
        &gget(app, &events_path(cal), &[("syncToken", token)]).await,
        200,
    )
}

async fn a_sync_round_returns_exactly_what_changed_through_any_api(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let a = insert(&app, &cal, timed("A", START, 30)).await;
    let b = insert(&app, &cal, timed("B", "2027-03-01T12:00:00Z", 30)).await;
    let c = insert(&app, &cal, timed("C", "2027-03-01T14:00:00Z", 30)).await;
    let gid = |e: &Value| e["id"].as_str().unwrap_or_default().to_string();
    // The full list, and its sync token.
    let full = g_ok(&app.get(&events_path(&cal)).await, 200);
    assert_eq!(ids(&full), [gid(&a), gid(&b), gid(&c)]);
    let token = full["nextSyncToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!token.is_empty());
    // Nothing changed: nothing listed, and a token still.
    let none = sync(&app, &cal, &token).await;
    assert_eq!(ids(&none), Vec::<String>::new());
    assert!(none["nextSyncToken"].is_string());
    // A change through the native API: exactly that event.
    assert_ok(
        &app.patch(
            &format!("/v1/calendar/events/{}", uuid_of(&gid(&b))),
            &json!({"title": "B natively"}),
        )
        .await,
        200,
    );
    let changes = sync(&app, &cal, &token).await;
    assert_eq!(ids(&changes), [gid(&b)]);
    assert_eq!(changes["items"][0]["summary"], "B natively");
    let token = changes["nextSyncToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // A native cancel shows as cancelled.
    assert_ok(
        &app.post(
            &format!("/v1/calendar/events/{}/cancel", uuid_of(&gid(&a))),
            &json!({}),
        )
        .await,
        200,
    );
    let changes = sync(&app, &cal, &token).await;
    assert_eq!(ids(&changes), [gid(&a)]);
    assert_eq!(changes["items"][0]["status"], "cancelled");
    let token = changes["nextSyncToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // A Talkover reschedule, a native booking and a Google delete, in that order.
    talkover_ok(
        &app.req_put(
            &format!("/api/v1/calendars/{cal}/events/{}", uuid_of(&gid(&c))),
            &json!({"start_at": "2027-03-01T15:00:00Z", "end_at": "2027-03-01T15:30:00Z"}),
        )
        .await,
        200,
    );
    let native = app.create_calendar(&app.key, None).await;
    let _ = native;
    let talk = talkover_ok(
        &app.post(&format!("/api/v1/calendars/{cal}/events"), &json!({"title": "New", "start_at": "2027-03-03T09:00:00Z", "end_at": "2027-03-03T09:30:00Z"})).await,
        201,
    );
    let new_gid = talk["id"].as_str().unwrap_or_default().replace('-', "");
    let resp = send(app.req(Method::DELETE, &event_path(&cal, &gid(&b)))).await;
    assert_eq!(resp.status, 204);
    let changes = sync(&app, &cal, &token).await;
    assert_eq!(ids(&changes), [gid(&c), new_gid.clone(), gid(&b)]);
    assert_eq!(
        changes["items"][0]["start"]["dateTime"],
        "2027-03-01T16:00:00+01:00"
    );
    assert_eq!(changes["items"][0]["sequence"], 1);
    assert_eq!(changes["items"][2]["status"], "cancelled");
    // Events of another calendar never show.
    let other = rome_calendar(&app, &app.key).await;
    let token = changes["nextSyncToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    insert(&app, &other, timed("Elsewhere", START, 30)).await;
    assert_eq!(ids(&sync(&app, &cal, &token).await), Vec::<String>::new());
    // The full list without showDeleted hides the cancelled ones.
    let full = g_ok(&app.get(&events_path(&cal)).await, 200);
    assert_eq!(ids(&full), [gid(&c), new_gid]);
}

async fn an_incremental_list_pages_and_ends_with_a_new_sync_token(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let full = g_ok(&app.get(&events_path(&cal)).await, 200);
    let token = full["nextSyncToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut made = Vec::new();
    for i in 0..5 {
        let e = insert(
            &app,
            &cal,
            timed(&format!("E{i}"), &plus_minutes(START, 60 * i), 30),
        )
        .await;
        made.push(e["id"].as_str().unwrap_or_default().to_string());
    }
    let mut seen = Vec::new();
    let mut page: Option<String> = None;
    let last = loop {
        let mut q = vec![
            ("syncToken", token.clone()),
            ("maxResults", "2".to_string()),
        ];
        if let Some(p) = &page {
            q.push(("pageToken", p.clone()));
        }
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let v = g_ok(&gget(&app, &events_path(&cal), &q).await, 200);
        seen.extend(ids(&v));
        match v["nextPageToken"].as_str() {
            Some(p) => page = Some(p.to_string()),
            None => break v,
        }
    };
    assert_eq!(seen, made);
    let next = last["nextSyncToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(ids(&sync(&app, &cal, &next).await), Vec::<String>::new());
}

async fn an_expired_foreign_or_garbage_sync_token_is_410_full_sync_required(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let other = rome_calendar(&app, &app.key).await;
    let token = g_ok(&app.get(&events_path(&cal)).await, 200)["nextSyncToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for bad in ["garbage", "s1.zz", ""] {
        let err = g_error(
            &gget(&app, &events_path(&cal), &[("syncToken", bad)]).await,
            410,
            "fullSyncRequired",
        );
        assert_eq!(err["errors"][0]["domain"], "calendar");
    }
    // Another calendar's token.
    g_error(
        &gget(&app, &events_path(&other), &[("syncToken", &token)]).await,
        410,
        "fullSyncRequired",
    );
    // A server whose tokens last one second.
    let config = quando_api::config::Config {
        bind: "127.0.0.1:0".into(),
        sync_token_ttl: Duration::from_secs(1),
        ..quando_api::config::Config::default()
    };
    let application = quando_api::app::Application::build_with(app.db.clone(), config)
        .await
        .unwrap_or_else(|e| panic!("Application::build_with: {e}"));
    let base = format!(
        "http://{}",
        application.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    tokio::spawn(application.run_until(std::future::pending()));
    let url = format!("{base}{}", events_path(&cal));
    let fresh = send(
        app.client
            .get(&url)
            .bearer_auth(&app.key)
            .query(&[("syncToken", &token)]),
    )
    .await;
    g_ok(&fresh, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let old = send(
        app.client
            .get(&url)
            .bearer_auth(&app.key)
            .query(&[("syncToken", &token)]),
    )
    .await;
    g_error(&old, 410, "fullSyncRequired");
    // The default server still takes it (30 days).
    g_ok(
        &gget(&app, &events_path(&cal), &[("syncToken", &token)]).await,
        200,
    );
}

async fn a_sync_token_refuses_the_filters_google_refuses(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let token = g_ok(&app.get(&events_path(&cal)).await, 200)["nextSyncToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for (name, value) in [
        ("timeMin", "2027-01-01T00:00:00Z"),
        ("timeMax", "2027-01-01T00:00:00Z"),
        ("q", "x"),
        ("iCalUID", "x@y"),
        ("updatedMin", "2027-01-01T00:00:00Z"),
        ("orderBy", "updated"),
        ("privateExtendedProperty", "a=b"),
        ("sharedExtendedProperty", "a=b"),
    ] {
        g_bad(
            &gget(
                &app,
                &events_path(&cal),
                &[("syncToken", &token), (name, value)],
            )
            .await,
            "invalid",
            name,
        );
    }
    // showDeleted and maxResults combine fine.
    g_ok(
        &gget(
            &app,
            &events_path(&cal),
            &[
                ("syncToken", &token),
                ("showDeleted", "true"),
                ("maxResults", "5"),
            ],
        )
        .await,
        200,
    );
}

async fn free_busy_merges_busy_times_and_names_unknown_calendars(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let empty = rome_calendar(&app, &app.key).await;
    insert(&app, &cal, timed("A", "2027-03-01T09:00:00Z", 60)).await;
    insert(&app, &cal, timed("B", "2027-03-01T10:00:00Z", 30)).await;
    let mut t = timed("Transparent", "2027-03-01T12:00:00Z", 60);
    t["transparency"] = json!("transparent");
    insert(&app, &cal, t).await;
    let gone = insert(&app, &cal, timed("Cancelled", "2027-03-01T14:00:00Z", 60)).await;
    send(app.req(
        Method::DELETE,
        &event_path(&cal, gone["id"].as_str().unwrap_or_default()),
    ))
    .await;
    insert(&app, &cal, timed("Edge", "2027-03-01T16:30:00Z", 60)).await;
    let (_, other_key) = app.new_org("Other").await;
    let foreign = rome_calendar(&app, &other_key).await;
    let unknown = unknown_id();
    let body = json!({
        "timeMin": "2027-03-01T08:00:00Z",
        "timeMax": "2027-03-01T17:00:00Z",
        "items": [{"id": cal}, {"id": empty}, {"id": foreign}, {"id": unknown}, {"id": "nonsense"}],
    });
    let fb = g_ok(&app.post("/calendar/v3/freeBusy", &body).await, 200);
    assert_eq!(fb["kind"], "calendar#freeBusy");
    assert_eq!(fb["timeMin"], "2027-03-01T08:00:00Z");
    assert_eq!(fb["timeMax"], "2027-03-01T17:00:00Z");
    assert_eq!(
        fb["calendars"][&cal]["busy"],
        json!([
            {"start": "2027-03-01T09:00:00Z", "end": "2027-03-01T10:30:00Z"},
            {"start": "2027-03-01T16:30:00Z", "end": "2027-03-01T17:00:00Z"},
        ])
    );
    assert!(fb["calendars"][&cal].get("errors").is_none());
    assert_eq!(fb["calendars"][&empty]["busy"], json!([]));
    for id in [&foreign, &unknown, &"nonsense".to_string()] {
        assert_eq!(
            fb["calendars"][id]["errors"],
            json!([{"domain": "global", "reason": "notFound"}]),
            "{fb}"
        );
    }
    // primary, once there is a default; and another zone.
    g_ok(
        &app.patch(
            &format!("/v1/calendar/calendars/{cal}"),
            &json!({"isDefault": true}),
        )
        .await,
        200,
    );
    let fb = g_ok(
        &app.post(
            "/calendar/v3/freeBusy",
            &json!({
        "timeMin": "2027-03-01T08:00:00Z", "timeMax": "2027-03-01T10:00:00Z",
        "timeZone": "Europe/Rome", "items": [{"id": "primary"}]}),
        )
        .await,
        200,
    );
    assert_eq!(
        fb["calendars"]["primary"]["busy"],
        json!([{"start": "2027-03-01T10:00:00+01:00", "end": "2027-03-01T11:00:00+01:00"}])
    );
    // Bad queries.
    let many: Vec<Value> = (0..51).map(|_| json!({"id": unknown_id()})).collect();
    g_bad(&app.post("/calendar/v3/freeBusy", &json!({"timeMin": "2027-03-01T08:00:00Z", "timeMax": "2027-03-01T09:00:00Z", "items": many})).await, "invalid", "items");
    g_error(&app.post("/calendar/v3/freeBusy", &json!({"timeMin": "2027-03-01T08:00:00Z", "timeMax": "2027-03-01T08:00:00Z", "items": []})).await, 400, "timeRangeEmpty");
    g_bad(
        &app.post(
            "/calendar/v3/freeBusy",
            &json!({"timeMax": "2027-03-01T08:00:00Z"}),
        )
        .await,
        "required",
        "timeMin",
    );
    g_bad(
        &app.post(
            "/calendar/v3/freeBusy",
            &json!({"timeMin": "x", "timeMax": "2027-03-01T08:00:00Z"}),
        )
        .await,
        "invalid",
        "timeMin",
    );
    g_bad(&app.post("/calendar/v3/freeBusy", &json!({"timeMin": "2027-03-01T08:00:00Z", "timeMax": "2027-03-01T09:00:00Z", "timeZone": "Nowhere/City"})).await, "invalid", "timeZone");
}

async fn another_organizations_ids_are_404_everywhere(app: TestApp) {
    let (_, other_key) = app.new_org("Other").await;
    let theirs = rome_calendar(&app, &other_key).await;
    let their_event = g_ok(
        &app.post_as(
            &other_key,
            &events_path(&theirs),
            &timed("Theirs", START, 30),
        )
        .await,
        200,
    );
    let their_id = their_event["id"].as_str().unwrap_or_default().to_string();
    let ours = rome_calendar(&app, &app.key).await;
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, events_path(&theirs), None),
        (
            Method::POST,
            events_path(&theirs),
            Some(timed("x", START, 30)),
        ),
        (
            Method::POST,
            format!("{}/import", events_path(&theirs)),
            Some(with(timed("x", START, 30), json!({"iCalUID": "u@x"}))),
        ),
        (Method::GET, event_path(&theirs, &their_id), None),
        (
            Method::PATCH,
            event_path(&theirs, &their_id),
            Some(json!({"summary": "mine"})),
        ),
        (
            Method::PUT,
            event_path(&theirs, &their_id),
            Some(timed("mine", START, 30)),
        ),
        (Method::DELETE, event_path(&theirs, &their_id), None),
        (
            Method::GET,
            format!("/calendar/v3/calendars/{theirs}"),
            None,
        ),
        // Their event through our calendar.
        (Method::GET, event_path(&ours, &their_id), None),
        (
            Method::PATCH,
            event_path(&ours, &their_id),
            Some(json!({"summary": "mine"})),
        ),
        (Method::DELETE, event_path(&ours, &their_id), None),
    ];
    for (method, path, body) in calls {
        let mut req = app.req(method.clone(), &path);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = send(req).await;
        let err = g_error(&resp, 404, "notFound");
        assert_eq!(err["status"], "NOT_FOUND", "{method} {path}");
    }
    // Their event is untouched.
    let still = g_ok(
        &app.get_as(&other_key, &event_path(&theirs, &their_id))
            .await,
        200,
    );
    assert_eq!(still["summary"], "Theirs");
    assert_eq!(still["status"], "confirmed");
    // Their calendars are not in our list.
    let list = g_ok(&app.get("/calendar/v3/users/me/calendarList").await, 200);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, [ours.as_str()]);
}

/// Reads one HTTP/1.1 response (head and a Content-Length body) from the stream.
async fn read_response(stream: &mut tokio::net::TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no response head in 10 s"))
            .unwrap_or_else(|e| panic!("read: {e}"));
        assert!(
            n > 0,
            "the connection closed before a response: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream
            .read(&mut chunk)
            .await
            .unwrap_or_else(|e| panic!("read: {e}"));
        assert!(n > 0, "the connection closed inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    (status, head, body)
}

async fn a_post_refused_before_its_body_is_read_leaves_the_connection_usable(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let addr = app.base_url.trim_start_matches("http://").to_string();
    // Near the 64 KiB limit, and sent after the head in pieces: the server answers before the
    // body has arrived, as when a client's request crosses several TCP segments.
    let body = json!({"summary": "x".repeat(60 * 1024), "start": {"dateTime": START}, "end": {"dateTime": plus_minutes(START, 30)}}).to_string();
    let refusals = [
        // An unknown path (404), no key on a real one (401), a wrong key (401), a bad type (415).
        ("/calendar/v3/no/such/path".to_string(), format!("Authorization: Bearer {}\r\nContent-Type: application/json\r\n", app.key), 404),
        (events_path(&cal), "Content-Type: application/json\r\n".to_string(), 401),
        (events_path(&cal), "Authorization: Bearer qnd_live_0000000000000000000000000000000000000000\r\nContent-Type: application/json\r\n".into(), 401),
        ("/v1/calendar/events".to_string(), format!("Authorization: Bearer {}\r\nContent-Type: text/plain\r\n", app.key), 415),
        ("/v1/nothing".to_string(), String::new(), 404),
    ];
    for (path, headers, status) in refusals {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("write: {e}"));
        let (got, head, _) = read_response(&mut stream).await;
        assert_eq!(got, status, "{path}: {head}");
        // A small body is drained by the server, so the connection stays open for the next one.
        assert!(
            !head.to_ascii_lowercase().contains("connection: close"),
            "{path}: {head}"
        );
        let second = format!(
            "GET /calendar/v3/users/me/calendarList HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
            app.key
        );
        stream
            .write_all(second.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("second write on {path}: {e}"));
        let (got, head, body) = read_response(&mut stream).await;
        assert_eq!(
            got, 200,
            "the next request on the connection after {path}: {head}{body}"
        );
        assert!(body.contains("calendar#calendarList"), "{body}");
    }
}

async fn free_busy_shows_a_live_slot_hold_as_busy_and_an_expired_one_as_free(app: TestApp) {
    let cal = rome_calendar(&app, &app.key).await;
    let event_type = id_of(&app.create_event_type(&app.key, Some(&cal), 30).await);
    for (start, ttl) in [("2027-03-01T11:00:00Z", 3600), ("2027-03-01T13:00:00Z", 1)] {
        let hold = json!({"calendarId": cal, "eventTypeId": event_type, "startTime": start,
                          "ttlSeconds": ttl});
        assert_ok(&app.post("/v1/calendar/holds", &hold).await, 201);
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let body = json!({
        "timeMin": "2027-03-01T08:00:00Z",
        "timeMax": "2027-03-01T17:00:00Z",
        "items": [{"id": cal}],
    });
    let fb = g_ok(&app.post("/calendar/v3/freeBusy", &body).await, 200);
    assert_eq!(
        fb["calendars"][&cal]["busy"],
        json!([{"start": "2027-03-01T11:00:00Z", "end": "2027-03-01T11:30:00Z"}]),
        "the live hold is busy, the expired one is not: {fb}"
    );
}
