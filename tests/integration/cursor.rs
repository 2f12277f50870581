//! Keyset paging on the event list: `cursor` in, `nextCursor` out.

use serde_json::Value;

use crate::support::{Case, TestApp, assert_ok, assert_validation, id_of, ids};

pub fn cases() -> Vec<Case> {
    cases![
        walking_by_cursor_returns_every_event_once_in_list_order_and_ends_with_a_null_cursor,
        a_cursor_walk_respects_the_filters,
        a_cursor_this_api_did_not_return_is_400_naming_cursor,
        the_last_numbered_page_has_no_next_cursor,
    ]
}

/// Two calendars booked at the same 13 times: 26 events, pairs sharing a start time, so the
/// order must fall back to the id.
async fn twin_calendars(app: &TestApp) -> (String, Vec<String>) {
    let (first, _) = app.calendar_and_event_type().await;
    let second = id_of(&app.create_calendar(&app.key, None).await);
    let event_type_any = id_of(
        &app.create_event_type_with(
            &app.key,
            serde_json::json!({"name": "any", "durationMinutes": 30}),
        )
        .await,
    );
    for i in 0..13 {
        let start = format!("2027-06-{:02}T10:00:00Z", i + 1);
        let end = format!("2027-06-{:02}T10:30:00Z", i + 1);
        for calendar in [&first, &second] {
            app.create_event(&app.key, calendar, &event_type_any, &start, &end)
                .await;
        }
    }
    let all = app.list_events(&[("limit", "100")]).await;
    let everything = assert_ok(&all, 200);
    (
        first,
        ids(everything
            .as_array()
            .cloned()
            .unwrap_or_default()
            .as_slice()),
    )
}

/// Follows `nextCursor` from the first page; returns the ids seen and how many pages it took.
async fn walk(app: &TestApp, filters: &[(&str, &str)], limit: &str) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query: Vec<(&str, &str)> = filters.to_vec();
        query.push(("limit", limit));
        if let Some(c) = cursor.as_deref() {
            query.push(("cursor", c));
        }
        let resp = app.list_events(&query).await;
        let data = assert_ok(&resp, 200);
        pages += 1;
        if cursor.is_some() {
            assert_eq!(
                resp.body["pagination"],
                Value::Null,
                "keyset pages count nothing: {}",
                resp.describe()
            );
        } else {
            assert!(resp.body["pagination"].is_object(), "{}", resp.describe());
        }
        seen.extend(ids(data.as_array().cloned().unwrap_or_default().as_slice()));
        match &resp.body["nextCursor"] {
            Value::String(next) => cursor = Some(next.clone()),
            Value::Null => break,
            other => panic!("nextCursor must be a string or null, got {other}"),
        }
        assert!(pages < 100, "the walk does not end");
    }
    (seen, pages)
}

async fn walking_by_cursor_returns_every_event_once_in_list_order_and_ends_with_a_null_cursor(
    app: TestApp,
) {
    let (_, everything) = twin_calendars(&app).await;
    assert_eq!(everything.len(), 26);
    let (seen, pages) = walk(&app, &[], "4").await;
    assert_eq!(
        seen, everything,
        "the walk must visit every event once, in list order"
    );
    assert_eq!(pages, 7, "26 events in pages of 4");
}

async fn a_cursor_walk_respects_the_filters(app: TestApp) {
    let (first, _) = twin_calendars(&app).await;
    let (seen, _) = walk(
        &app,
        &[("calendarId", &first), ("dateFrom", "2027-06-05T00:00:00Z")],
        "3",
    )
    .await;
    assert_eq!(
        seen.len(),
        9,
        "only the first calendar's events from June 5th"
    );
    let filtered = app
        .list_events(&[
            ("calendarId", &first),
            ("dateFrom", "2027-06-05T00:00:00Z"),
            ("limit", "100"),
        ])
        .await;
    let expected = ids(assert_ok(&filtered, 200)
        .as_array()
        .cloned()
        .unwrap_or_default()
        .as_slice());
    assert_eq!(seen, expected);
}

async fn a_cursor_this_api_did_not_return_is_400_naming_cursor(app: TestApp) {
    for bad in ["abc", "c12.not-a-uuid", "1234"] {
        let resp = app.list_events(&[("cursor", bad)]).await;
        assert_validation(&resp, &["cursor"]);
    }
}

async fn the_last_numbered_page_has_no_next_cursor(app: TestApp) {
    twin_calendars(&app).await;
    let last = app.list_events(&[("limit", "13"), ("page", "2")]).await;
    assert_ok(&last, 200);
    assert_eq!(last.body["nextCursor"], Value::Null, "{}", last.describe());
    let first = app.list_events(&[("limit", "13"), ("page", "1")]).await;
    assert!(first.body["nextCursor"].is_string(), "{}", first.describe());
    // The cursor of page 1 continues exactly where page 2 starts.
    let cursor = first.body["nextCursor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let next = app
        .list_events(&[("limit", "13"), ("cursor", &cursor)])
        .await;
    assert_eq!(assert_ok(&next, 200), assert_ok(&last, 200));
}
