//! Booking integrity: no double booking under concurrent requests (POST, PATCH, Idempotency-Key
//! retries), buffers, touching and enclosing ranges, what cancelled and tentative events hold,
//! rescheduling with PATCH, cancelling, cross-organization 404s, the Idempotency-Key contract and its
//! expiry, and on PostgreSQL the exclusion constraint `events_no_overlap` itself.

use futures::future::join_all;
use reqwest::Method;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, RuntimeErr, Statement};
use serde_json::{Value, json};

use crate::support::*;

pub fn cases() -> Vec<Case> {
    cases![
        // races over real HTTP
        thirty_two_simultaneous_posts_for_one_slot_book_it_once_and_get_31_conflicts,
        sixty_four_simultaneous_bookings_over_sixteen_slots_with_taken_ones_mixed_in_keep_every_201,
        thirty_two_simultaneous_reschedules_onto_one_free_slot_move_exactly_one_event,
        eight_simultaneous_retries_with_one_idempotency_key_create_one_event,
        // the overlap rule
        a_buffer_after_blocks_the_minutes_following_an_event,
        a_buffer_before_blocks_the_minutes_preceding_an_event,
        back_to_back_events_do_not_collide,
        a_range_enclosing_an_event_or_inside_one_is_409,
        a_cancelled_event_frees_its_slot,
        a_tentative_event_blocks_its_slot,
        a_conflict_names_the_event_in_the_way,
        // PATCH
        a_patch_that_keeps_the_time_does_not_collide_with_itself,
        a_patch_of_start_time_alone_keeps_the_length,
        a_reschedule_onto_another_events_time_is_409_and_changes_nothing,
        a_patch_of_customer_phone_normalises_it_to_e164,
        uncancelling_an_event_rechecks_its_slot,
        // cancel
        cancel_returns_the_event_cancelled_with_time_and_reason,
        cancelling_twice_is_200_and_the_event_stays_cancelled,
        cancel_with_no_body_at_all_works,
        cancel_of_an_unknown_event_is_404,
        another_organization_gets_404_on_get_patch_and_cancel_and_changes_nothing,
        // Idempotency-Key
        a_repeat_with_the_same_idempotency_key_and_body_replays_the_first_answer,
        a_repeat_with_its_json_keys_reordered_and_reindented_replays_the_first_answer,
        the_same_idempotency_key_with_another_body_is_422,
        the_same_idempotency_key_in_two_organizations_books_twice,
        an_idempotency_key_over_255_characters_is_400_naming_it,
        a_replayed_409_stays_409_after_the_slot_frees_up,
        an_idempotency_key_works_anew_after_its_stored_response_expires,
        purge_expired_deletes_expired_rows_and_returns_their_count,
        // PostgreSQL: the constraint itself
        the_postgres_exclusion_constraint_refuses_an_overlapping_row_inserted_behind_the_api,
    ]
}

const EVENTS: &str = "/v1/calendar/events";
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

fn event_path(id: &str) -> String {
    format!("{EVENTS}/{id}")
}

fn cancel_path(id: &str) -> String {
    format!("{EVENTS}/{id}/cancel")
}

/// POST /v1/calendar/events with `key` and an Idempotency-Key.
async fn post_idempotent(app: &TestApp, key: &str, idempotency_key: &str, body: &Value) -> Resp {
    send(
        app.req_as(key, Method::POST, EVENTS)
            .header(IDEMPOTENCY_KEY, idempotency_key)
            .json(body),
    )
    .await
}

fn replayed(resp: &Resp) -> bool {
    resp.header("idempotent-replayed") == Some("true")
}

/// How many events the first organization's list holds (with these extra filters).
async fn events_total(app: &TestApp, query: &[(&str, &str)]) -> u64 {
    let (_, pagination) = assert_list(&app.list_events(query).await);
    pagination["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("pagination.total is not a number: {pagination}"))
}

/// A calendar and an event type on it with these extra fields (e.g. buffers); 30 minutes long.
async fn calendar_and_event_type_with(app: &TestApp, extra: Value) -> (String, String) {
    let calendar_id = id_of(&app.create_calendar(&app.key, None).await);
    let event_type = app
        .create_event_type_with(
            &app.key,
            with(
                json!({"calendarId": calendar_id, "name": "Igiene dentale", "durationMinutes": 30}),
                extra,
            ),
        )
        .await;
    (calendar_id, id_of(&event_type))
}

async fn book(
    app: &TestApp,
    calendar_id: &str,
    event_type_id: &str,
    start: &str,
    end: &str,
) -> Resp {
    app.post_event(&event_body(calendar_id, event_type_id, start, end))
        .await
}

/// The number of stored Idempotency-Key rows, counted with plain SQL.
async fn idempotency_rows(app: &TestApp) -> i64 {
    let backend = app.db.get_database_backend();
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM idempotency_keys",
        ))
        .await
        .unwrap_or_else(|e| panic!("counting idempotency_keys failed: {e}"))
        .expect("COUNT(*) returns a row");
    row.try_get::<i64>("", "n")
        .unwrap_or_else(|e| panic!("reading COUNT(*) failed: {e}"))
}

// ----- races over real HTTP -----

async fn thirty_two_simultaneous_posts_for_one_slot_book_it_once_and_get_31_conflicts(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let requests = (0..32).map(|i| {
        let body = with(
            event_body(
                &calendar_id,
                &event_type_id,
                "2027-05-03T10:00:00Z",
                "2027-05-03T10:30:00Z",
            ),
            json!({"customerName": format!("Cliente {i}")}),
        );
        send(app.req(Method::POST, EVENTS).json(&body))
    });
    let responses = join_all(requests).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    let created: Vec<&Resp> = responses.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one of 32 simultaneous bookings of one slot must win; statuses: {statuses:?}"
    );
    let winner = assert_ok(created[0], 201);
    let refused: Vec<&Resp> = responses.iter().filter(|r| r.status != 201).collect();
    assert_eq!(refused.len(), 31, "statuses: {statuses:?}");
    for resp in refused {
        assert_slot_conflict(resp, &winner);
    }
    let (items, pagination) = assert_list(&app.list_events(&[]).await);
    assert_pagination(&pagination, 1, 20, 1, 1);
    assert_eq!(ids(&items), vec![id_of(&winner)]);
}

/// On SQLite simultaneous bookings share group commits (one transaction, a savepoint each): a
/// refused one must undo only itself, two for one slot in a group must give one 201 and one 409,
/// and every 201 must be there afterwards. On PostgreSQL the same load is plain transactions.
async fn sixty_four_simultaneous_bookings_over_sixteen_slots_with_taken_ones_mixed_in_keep_every_201(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let slot = |i: usize| {
        let minutes = 6 * 60 + 30 * i;
        let at = |m: usize| format!("2027-05-04T{:02}:{:02}:00Z", m / 60, m % 60);
        (at(minutes), at(minutes + 30))
    };
    // Slots 16..32 are taken before the race: every booking of them is refused inside a group.
    for i in 16..32 {
        let (start, end) = slot(i);
        assert_ok(
            &book(&app, &calendar_id, &event_type_id, &start, &end).await,
            201,
        );
    }
    // Two bookings of each free slot and two of each taken one, interleaved.
    let app = &app;
    let requests = (0..64).map(|n| {
        let i = (n / 2) % 16 + if n % 2 == 0 { 0 } else { 16 };
        let (start, end) = slot(i);
        let body = with(
            event_body(&calendar_id, &event_type_id, &start, &end),
            json!({"customerName": format!("Cliente {n}")}),
        );
        async move { (i, send(app.req(Method::POST, EVENTS).json(&body)).await) }
    });
    let answers = join_all(requests).await;
    let mut winners: std::collections::BTreeMap<usize, Vec<Value>> = Default::default();
    for (i, resp) in &answers {
        match resp.status {
            201 => winners.entry(*i).or_default().push(assert_ok(resp, 201)),
            409 => {}
            _ => panic!("slot {i}: {}", resp.describe()),
        }
    }
    let taken: Vec<usize> = winners.keys().copied().collect();
    assert_eq!(
        taken,
        (0..16).collect::<Vec<_>>(),
        "one winner per free slot, none on a taken one"
    );
    for (i, won) in &winners {
        assert_eq!(won.len(), 1, "slot {i}: {won:?}");
        let id = id_of(&won[0]);
        let resp = app.get(&format!("{EVENTS}/{id}")).await;
        assert_eq!(assert_ok(&resp, 200)["startTime"], won[0]["startTime"]);
    }
    assert_eq!(events_total(app, &[]).await, 32);
}

async fn thirty_two_simultaneous_reschedules_onto_one_free_slot_move_exactly_one_event(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    // 32 events at distinct times on 2027-05-03, then all of them moved to 2027-05-04T10:00 at once.
    let mut events = Vec::new();
    for i in 0..32 {
        let start = plus_minutes("2027-05-03T06:00:00Z", 30 * i);
        let end = plus_minutes(&start, 30);
        events.push(
            app.create_event(&app.key, &calendar_id, &event_type_id, &start, &end)
                .await,
        );
    }
    let target = json!({"startTime": "2027-05-04T10:00:00Z", "endTime": "2027-05-04T10:30:00Z"});
    let requests = events.iter().map(|event| {
        send(
            app.req(Method::PATCH, &event_path(&id_of(event)))
                .json(&target),
        )
    });
    let responses = join_all(requests).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    let moved: Vec<&Resp> = responses.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        moved.len(),
        1,
        "exactly one of 32 simultaneous reschedules onto one slot must win; statuses: {statuses:?}"
    );
    let winner = assert_ok(moved[0], 200);
    assert_eq!(winner["startTime"], json!("2027-05-04T10:00:00Z"));
    assert_eq!(winner["endTime"], json!("2027-05-04T10:30:00Z"));
    let refused: Vec<&Resp> = responses.iter().filter(|r| r.status != 200).collect();
    assert_eq!(refused.len(), 31, "statuses: {statuses:?}");
    for resp in refused {
        assert_slot_conflict(resp, &winner);
    }

    let (at_target, pagination) = assert_list(
        &app.list_events(&[
            ("dateFrom", "2027-05-04T00:00:00Z"),
            ("dateTo", "2027-05-05T00:00:00Z"),
        ])
        .await,
    );
    assert_eq!(
        pagination["total"],
        json!(1),
        "exactly one event may sit at the contested time: {at_target:?}"
    );
    assert_eq!(ids(&at_target), vec![id_of(&winner)]);
    assert_eq!(
        events_total(&app, &[("limit", "100")]).await,
        32,
        "a reschedule creates and deletes nothing"
    );
    // The losers kept their own times.
    for event in events.iter().filter(|e| e["id"] != winner["id"]) {
        let now = assert_ok(&app.get(&event_path(&id_of(event))).await, 200);
        assert_eq!(
            now["startTime"], event["startTime"],
            "a refused reschedule moved {now}"
        );
        assert_eq!(
            now["endTime"], event["endTime"],
            "a refused reschedule moved {now}"
        );
    }
}

async fn eight_simultaneous_retries_with_one_idempotency_key_create_one_event(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        ),
        json!({"customerName": "Mario Rossi", "customerPhone": "+39 333 123 4567"}),
    );
    let requests = (0..8).map(|_| post_idempotent(&app, &app.key, "call-7f3a-retry", &body));
    let responses = join_all(requests).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    let mut event_ids = Vec::new();
    for resp in &responses {
        let event = assert_ok(resp, 201);
        event_ids.push(id_of(&event));
    }
    event_ids.dedup();
    assert_eq!(
        event_ids.len(),
        1,
        "all 8 retries must answer with the same event; statuses {statuses:?}, ids {event_ids:?}"
    );
    let replays = responses.iter().filter(|r| replayed(r)).count();
    assert!(
        replays >= 7,
        "at least 7 of 8 retries must be replays (Idempotent-Replayed: true); got {replays}"
    );
    let (items, pagination) = assert_list(&app.list_events(&[]).await);
    assert_pagination(&pagination, 1, 20, 1, 1);
    assert_eq!(ids(&items), event_ids);
}

// ----- the overlap rule -----

/// With `extra` buffers of 15 minutes on the event type, 10:00-10:30 holds 10:40-11:00 and
/// 09:20-09:50 off the calendar, while 10:45-11:15 and 09:15-09:45 (blocks touching) are free.
async fn assert_fifteen_minute_buffer_rule(app: &TestApp, extra: Value) {
    let (calendar_id, event_type_id) = calendar_and_event_type_with(app, extra).await;
    let first = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    for (start, end) in [
        ("2027-05-03T10:40:00Z", "2027-05-03T11:00:00Z"),
        ("2027-05-03T09:20:00Z", "2027-05-03T09:50:00Z"),
    ] {
        let resp = book(app, &calendar_id, &event_type_id, start, end).await;
        assert_eq!(
            resp.status,
            409,
            "{start}..{end} falls within 15 minutes of 10:00..10:30: {}",
            resp.describe()
        );
        assert_slot_conflict(&resp, &first);
    }
    for (start, end) in [
        ("2027-05-03T10:45:00Z", "2027-05-03T11:15:00Z"),
        ("2027-05-03T09:15:00Z", "2027-05-03T09:45:00Z"),
    ] {
        let resp = book(app, &calendar_id, &event_type_id, start, end).await;
        assert_ok(&resp, 201);
    }
    assert_eq!(events_total(app, &[]).await, 3);
}

async fn a_buffer_after_blocks_the_minutes_following_an_event(app: TestApp) {
    assert_fifteen_minute_buffer_rule(&app, json!({"bufferAfterMinutes": 15})).await;
}

async fn a_buffer_before_blocks_the_minutes_preceding_an_event(app: TestApp) {
    assert_fifteen_minute_buffer_rule(&app, json!({"bufferBeforeMinutes": 15})).await;
}

async fn back_to_back_events_do_not_collide(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    for (start, end) in [
        ("2027-05-03T10:00:00Z", "2027-05-03T10:30:00Z"),
        ("2027-05-03T10:30:00Z", "2027-05-03T11:00:00Z"),
        ("2027-05-03T09:30:00Z", "2027-05-03T10:00:00Z"),
    ] {
        let resp = book(&app, &calendar_id, &event_type_id, start, end).await;
        assert_ok(&resp, 201);
    }
    assert_eq!(events_total(&app, &[]).await, 3);
}

async fn a_range_enclosing_an_event_or_inside_one_is_409(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let short = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    let resp = book(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-05-03T09:00:00Z",
        "2027-05-03T12:00:00Z",
    )
    .await;
    assert_slot_conflict(&resp, &short);

    let long = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T13:00:00Z",
            "2027-05-03T16:00:00Z",
        )
        .await;
    let resp = book(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-05-03T14:00:00Z",
        "2027-05-03T14:30:00Z",
    )
    .await;
    assert_slot_conflict(&resp, &long);
    assert_eq!(events_total(&app, &[]).await, 2);
}

async fn a_cancelled_event_frees_its_slot(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let first = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    let resp = send(app.req(Method::POST, &cancel_path(&id_of(&first)))).await;
    assert_eq!(assert_ok(&resp, 200)["status"], json!("cancelled"));
    let second = book(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-05-03T10:00:00Z",
        "2027-05-03T10:30:00Z",
    )
    .await;
    let second = assert_ok(&second, 201);
    assert_ne!(second["id"], first["id"]);
    assert_eq!(events_total(&app, &[("status", "confirmed")]).await, 1);
    assert_eq!(events_total(&app, &[("status", "cancelled")]).await, 1);
}

async fn a_tentative_event_blocks_its_slot(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let slot = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T10:00:00Z",
        "2027-05-03T10:30:00Z",
    );
    let tentative = app
        .create_event_with(&app.key, with(slot.clone(), json!({"status": "tentative"})))
        .await;
    assert_eq!(tentative["status"], json!("tentative"));
    for status in ["confirmed", "tentative"] {
        let resp = app
            .post_event(&with(slot.clone(), json!({"status": status})))
            .await;
        assert_slot_conflict(&resp, &tentative);
    }
    assert_eq!(events_total(&app, &[]).await, 1);
}

async fn a_conflict_names_the_event_in_the_way(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let morning = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T09:00:00Z",
            "2027-05-03T09:30:00Z",
        )
        .await;
    let noon = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T12:00:00Z",
            "2027-05-03T12:30:00Z",
        )
        .await;
    let resp = book(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-05-03T12:15:00Z",
        "2027-05-03T12:45:00Z",
    )
    .await;
    assert_slot_conflict(&resp, &noon);
    let resp = book(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-05-03T08:45:00Z",
        "2027-05-03T09:15:00Z",
    )
    .await;
    assert_slot_conflict(&resp, &morning);
}

// ----- PATCH -----

async fn a_patch_that_keeps_the_time_does_not_collide_with_itself(app: TestApp) {
    // A buffered type, so the event's own block is wider than its times.
    let (calendar_id, event_type_id) = calendar_and_event_type_with(
        &app,
        json!({"bufferBeforeMinutes": 10, "bufferAfterMinutes": 10}),
    )
    .await;
    let event = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    let path = event_path(&id_of(&event));

    let resp = app
        .patch(&path, &json!({"title": "Controllo annuale"}))
        .await;
    let patched = assert_ok(&resp, 200);
    assert_eq!(patched["title"], json!("Controllo annuale"));
    assert_eq!(patched["startTime"], event["startTime"]);
    assert_eq!(patched["endTime"], event["endTime"]);

    let resp = app
        .patch(&path, &json!({"startTime": "2027-05-03T10:00:00Z"}))
        .await;
    let patched = assert_ok(&resp, 200);
    assert_eq!(patched["startTime"], json!("2027-05-03T10:00:00Z"));
    assert_eq!(patched["endTime"], json!("2027-05-03T10:30:00Z"));

    let resp = app
        .patch(
            &path,
            &json!({"startTime": "2027-05-03T10:00:00Z", "endTime": "2027-05-03T10:30:00Z"}),
        )
        .await;
    assert_ok(&resp, 200);

    // Moving it by 10 minutes overlaps only its own old block.
    let resp = app
        .patch(&path, &json!({"startTime": "2027-05-03T10:10:00Z"}))
        .await;
    let patched = assert_ok(&resp, 200);
    assert_eq!(patched["startTime"], json!("2027-05-03T10:10:00Z"));
    assert_eq!(patched["endTime"], json!("2027-05-03T10:40:00Z"));
    assert_eq!(events_total(&app, &[]).await, 1);
}

async fn a_patch_of_start_time_alone_keeps_the_length(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let event = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:45:00Z",
        )
        .await;
    let resp = app
        .patch(
            &event_path(&id_of(&event)),
            &json!({"startTime": "2027-05-03T14:00:00Z"}),
        )
        .await;
    let moved = assert_ok(&resp, 200);
    assert_eq!(moved["startTime"], json!("2027-05-03T14:00:00Z"));
    assert_eq!(
        moved["endTime"],
        json!("2027-05-03T14:45:00Z"),
        "a new startTime alone keeps the 45-minute length"
    );
    let fetched = assert_ok(&app.get(&event_path(&id_of(&event))).await, 200);
    assert_eq!(fetched, moved, "GET shows what PATCH returned");
    // The old slot is free again.
    let resp = book(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-05-03T10:00:00Z",
        "2027-05-03T10:30:00Z",
    )
    .await;
    assert_ok(&resp, 201);
}

async fn a_reschedule_onto_another_events_time_is_409_and_changes_nothing(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let first = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    let second = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T11:00:00Z",
            "2027-05-03T11:30:00Z",
        )
        .await;
    let path = event_path(&id_of(&second));
    for patch in [
        json!({"startTime": "2027-05-03T10:00:00Z", "endTime": "2027-05-03T10:30:00Z"}),
        json!({"startTime": "2027-05-03T10:15:00Z"}),
        json!({"startTime": "2027-05-03T09:00:00Z", "endTime": "2027-05-03T12:00:00Z", "title": "Lungo"}),
    ] {
        let resp = app.patch(&path, &patch).await;
        assert_eq!(
            resp.status,
            409,
            "{patch} overlaps the first event: {}",
            resp.describe()
        );
        assert_slot_conflict(&resp, &first);
    }
    let unchanged = assert_ok(&app.get(&path).await, 200);
    assert_eq!(unchanged, second, "a refused PATCH must change nothing");
}

async fn a_patch_of_customer_phone_normalises_it_to_e164(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let event = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    let path = event_path(&id_of(&event));
    let resp = app
        .patch(&path, &json!({"customerPhone": "+39 (06) 123-456.78"}))
        .await;
    assert_eq!(
        assert_ok(&resp, 200)["customerPhone"],
        json!("+390612345678")
    );
    let fetched = assert_ok(&app.get(&path).await, 200);
    assert_eq!(
        fetched["customerPhone"],
        json!("+390612345678"),
        "stored as E.164"
    );

    let resp = app
        .patch(&path, &json!({"customerPhone": "not a phone"}))
        .await;
    assert_validation(&resp, &["customerPhone"]);
}

async fn uncancelling_an_event_rechecks_its_slot(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let first = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    let first_path = event_path(&id_of(&first));
    assert_ok(
        &app.post(
            &cancel_path(&id_of(&first)),
            &json!({"reason": "Paziente malato"}),
        )
        .await,
        200,
    );
    // The slot is taken meanwhile.
    let second = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:15:00Z",
            "2027-05-03T10:45:00Z",
        )
        .await;
    let resp = app
        .patch(&first_path, &json!({"status": "confirmed"}))
        .await;
    assert_slot_conflict(&resp, &second);
    let still = assert_ok(&app.get(&first_path).await, 200);
    assert_eq!(
        still["status"],
        json!("cancelled"),
        "a refused uncancel changes nothing"
    );

    // Once the slot is free again, the same PATCH restores it.
    assert_ok(
        &send(app.req(Method::POST, &cancel_path(&id_of(&second)))).await,
        200,
    );
    let resp = app
        .patch(&first_path, &json!({"status": "confirmed"}))
        .await;
    let restored = assert_ok(&resp, 200);
    assert_eq!(restored["status"], json!("confirmed"));
    assert_eq!(restored["cancelledAt"], Value::Null);
    // And it holds its time again.
    let resp = book(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-05-03T10:00:00Z",
        "2027-05-03T10:30:00Z",
    )
    .await;
    assert_slot_conflict(&resp, &first);
}

// ----- cancel -----

async fn cancel_returns_the_event_cancelled_with_time_and_reason(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let event = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    assert_eq!(event["status"], json!("confirmed"));
    assert_eq!(event["cancelledAt"], Value::Null);
    assert_eq!(event["cancellationReason"], Value::Null);

    let resp = app
        .post(
            &cancel_path(&id_of(&event)),
            &json!({"reason": "Il cliente ha chiamato per disdire"}),
        )
        .await;
    let cancelled = assert_ok(&resp, 200);
    assert_has_keys(&cancelled, &EVENT_FIELDS, "the cancelled event");
    assert_eq!(cancelled["id"], event["id"]);
    assert_eq!(cancelled["status"], json!("cancelled"));
    assert_recent(&cancelled["cancelledAt"], "cancelledAt");
    assert_eq!(
        cancelled["cancellationReason"],
        json!("Il cliente ha chiamato per disdire")
    );
    assert_eq!(cancelled["startTime"], event["startTime"]);
    assert_eq!(cancelled["endTime"], event["endTime"]);
    let fetched = assert_ok(&app.get(&event_path(&id_of(&event))).await, 200);
    assert_eq!(fetched, cancelled, "GET shows what cancel returned");
}

async fn cancelling_twice_is_200_and_the_event_stays_cancelled(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let event = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    let path = cancel_path(&id_of(&event));
    let first = assert_ok(&app.post(&path, &json!({"reason": "Disdetta"})).await, 200);
    let again = assert_ok(&app.post(&path, &json!({"reason": "Disdetta"})).await, 200);
    assert_eq!(again["status"], json!("cancelled"));
    assert_eq!(
        again["cancelledAt"], first["cancelledAt"],
        "a second cancel does not move cancelledAt"
    );
    assert_eq!(again["cancellationReason"], json!("Disdetta"));
    let third = assert_ok(&send(app.req(Method::POST, &path)).await, 200);
    assert_eq!(third["status"], json!("cancelled"));
    assert_eq!(third["cancelledAt"], first["cancelledAt"]);
}

async fn cancel_with_no_body_at_all_works(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let event = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    // No body and no Content-Type.
    let resp = send(app.req(Method::POST, &cancel_path(&id_of(&event)))).await;
    let cancelled = assert_ok(&resp, 200);
    assert_eq!(cancelled["status"], json!("cancelled"));
    assert_utc_seconds(&cancelled["cancelledAt"], "cancelledAt");
    assert_eq!(cancelled["cancellationReason"], Value::Null);
}

async fn cancel_of_an_unknown_event_is_404(app: TestApp) {
    let resp = app
        .post(&cancel_path(&unknown_id()), &json!({"reason": "x"}))
        .await;
    assert_error(&resp, 404, "not_found");
    let resp = send(app.req(Method::POST, &cancel_path(&unknown_id()))).await;
    assert_error(&resp, 404, "not_found");
}

async fn another_organization_gets_404_on_get_patch_and_cancel_and_changes_nothing(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let event = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    let (_, key_b) = app.new_org("Concorrente Srl").await;
    let id = id_of(&event);

    let resp = app.get_as(&key_b, &event_path(&id)).await;
    assert_error(&resp, 404, "not_found");
    let resp = app
        .patch_as(
            &key_b,
            &event_path(&id),
            &json!({"title": "Preso", "startTime": "2027-05-03T15:00:00Z"}),
        )
        .await;
    assert_error(&resp, 404, "not_found");
    let resp = app
        .post_as(&key_b, &cancel_path(&id), &json!({"reason": "Preso"}))
        .await;
    assert_error(&resp, 404, "not_found");
    let resp = send(app.req_as(&key_b, Method::POST, &cancel_path(&id))).await;
    assert_error(&resp, 404, "not_found");

    let after = assert_ok(&app.get(&event_path(&id)).await, 200);
    assert_eq!(
        after, event,
        "another organization's requests must change nothing"
    );
}

// ----- Idempotency-Key -----

async fn a_repeat_with_the_same_idempotency_key_and_body_replays_the_first_answer(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = with(
        event_body(
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        ),
        json!({"customerName": "Laura Bianchi"}),
    );
    let first = post_idempotent(&app, &app.key, "booking-0001", &body).await;
    let created = assert_ok(&first, 201);
    assert!(
        !replayed(&first),
        "the first answer is not a replay: {:?}",
        first.headers
    );

    let again = post_idempotent(&app, &app.key, "booking-0001", &body).await;
    // assert_ok also checks that the body's requestId equals this response's X-Request-Id.
    let replayed_event = assert_ok(&again, 201);
    assert!(
        replayed(&again),
        "a replay carries Idempotent-Replayed: true; headers {:?}",
        again.headers
    );
    assert_eq!(
        replayed_event, created,
        "the replay's data is the first answer's"
    );
    assert_ne!(
        again.request_id(),
        first.request_id(),
        "each response has its own request id"
    );
    assert_eq!(events_total(&app, &[]).await, 1, "a replay creates nothing");
}

async fn a_repeat_with_its_json_keys_reordered_and_reindented_replays_the_first_answer(
    app: TestApp,
) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let compact = format!(
        r#"{{"calendarId":"{calendar_id}","eventTypeId":"{event_type_id}","startTime":"2027-05-04T10:00:00Z","endTime":"2027-05-04T10:30:00Z","customerName":"Laura Bianchi"}}"#
    );
    let reordered = format!(
        "{{\n  \"customerName\" : \"Laura Bianchi\",\n  \"endTime\": \"2027-05-04T10:30:00Z\",\n  \"startTime\": \"2027-05-04T10:00:00Z\",\n  \"eventTypeId\": \"{event_type_id}\",\n  \"calendarId\": \"{calendar_id}\"\n}}"
    );
    let raw = |text: String| {
        app.req(Method::POST, "/v1/calendar/events")
            .header(IDEMPOTENCY_KEY, "booking-json-1")
            .header("content-type", "application/json")
            .body(text)
    };
    let first = send(raw(compact)).await;
    let created = assert_ok(&first, 201);
    let again = send(raw(reordered)).await;
    let replayed_event = assert_ok(&again, 201);
    assert!(
        replayed(&again),
        "the same JSON re-serialised is the same request: {:?}",
        again.headers
    );
    assert_eq!(replayed_event, created);
    // A different value is still another request.
    let changed = format!(
        r#"{{"calendarId":"{calendar_id}","eventTypeId":"{event_type_id}","startTime":"2027-05-04T10:00:00Z","endTime":"2027-05-04T10:30:00Z","customerName":"Laura Bianchi "}}"#
    );
    assert_error(&send(raw(changed)).await, 422, "idempotency_conflict");
    assert_eq!(events_total(&app, &[]).await, 1, "one booking for the key");
}

async fn the_same_idempotency_key_with_another_body_is_422(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T10:00:00Z",
        "2027-05-03T10:30:00Z",
    );
    assert_ok(
        &post_idempotent(&app, &app.key, "booking-0002", &body).await,
        201,
    );
    let other = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T11:00:00Z",
        "2027-05-03T11:30:00Z",
    );
    let resp = post_idempotent(&app, &app.key, "booking-0002", &other).await;
    assert_error(&resp, 422, "idempotency_conflict");
    assert_eq!(
        events_total(&app, &[]).await,
        1,
        "the conflicting request ran nothing"
    );
    // The same body on another path with that key is another request too.
    let resp = send(
        app.req(Method::POST, "/v1/calendar/calendars")
            .header(IDEMPOTENCY_KEY, "booking-0002")
            .json(&body),
    )
    .await;
    assert_error(&resp, 422, "idempotency_conflict");
}

async fn the_same_idempotency_key_in_two_organizations_books_twice(app: TestApp) {
    let (calendar_a, type_a) = app.calendar_and_event_type().await;
    let (_, key_b) = app.new_org("Concorrente Srl").await;
    let calendar_b = id_of(&app.create_calendar(&key_b, None).await);
    let type_b = id_of(&app.create_event_type(&key_b, Some(&calendar_b), 30).await);

    let a = post_idempotent(
        &app,
        &app.key,
        "shared-key-42",
        &event_body(
            &calendar_a,
            &type_a,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        ),
    )
    .await;
    let b = post_idempotent(
        &app,
        &key_b,
        "shared-key-42",
        &event_body(
            &calendar_b,
            &type_b,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        ),
    )
    .await;
    let event_a = assert_ok(&a, 201);
    let event_b = assert_ok(&b, 201);
    assert!(
        !replayed(&b),
        "org B's first use of the key is not a replay"
    );
    assert_ne!(
        event_a["id"], event_b["id"],
        "two organizations, two events"
    );
    assert_eq!(event_b["calendarId"], json!(calendar_b));

    assert_eq!(events_total(&app, &[]).await, 1);
    let (items_b, _) = assert_list(&app.get_as(&key_b, EVENTS).await);
    assert_eq!(ids(&items_b), vec![id_of(&event_b)]);
}

async fn an_idempotency_key_over_255_characters_is_400_naming_it(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T10:00:00Z",
        "2027-05-03T10:30:00Z",
    );
    let resp = post_idempotent(&app, &app.key, &"k".repeat(256), &body).await;
    assert_validation(&resp, &["Idempotency-Key"]);
    assert_eq!(
        events_total(&app, &[]).await,
        0,
        "a refused key runs nothing"
    );

    let resp = post_idempotent(&app, &app.key, &"k".repeat(255), &body).await;
    assert_ok(&resp, 201);
}

async fn a_replayed_409_stays_409_after_the_slot_frees_up(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let blocker = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    let body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T10:15:00Z",
        "2027-05-03T10:45:00Z",
    );
    let first = post_idempotent(&app, &app.key, "booking-0409", &body).await;
    assert_slot_conflict(&first, &blocker);

    let again = post_idempotent(&app, &app.key, "booking-0409", &body).await;
    assert_slot_conflict(&again, &blocker);
    assert!(replayed(&again), "headers {:?}", again.headers);

    // Even once the slot is free, the key answers what it answered first.
    assert_ok(
        &send(app.req(Method::POST, &cancel_path(&id_of(&blocker)))).await,
        200,
    );
    let later = post_idempotent(&app, &app.key, "booking-0409", &body).await;
    assert_slot_conflict(&later, &blocker);
    assert!(replayed(&later), "headers {:?}", later.headers);
    assert_eq!(events_total(&app, &[("status", "confirmed")]).await, 0);

    // Without the key the same body books.
    assert_ok(&app.post_event(&body).await, 201);
}

async fn an_idempotency_key_works_anew_after_its_stored_response_expires(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let first_body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T10:00:00Z",
        "2027-05-03T10:30:00Z",
    );
    let second_body = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T11:00:00Z",
        "2027-05-03T11:30:00Z",
    );
    let first = assert_ok(
        &post_idempotent(&app, &app.key, "booking-expiring", &first_body).await,
        201,
    );
    let resp = post_idempotent(&app, &app.key, "booking-expiring", &second_body).await;
    assert_error(&resp, 422, "idempotency_conflict");

    // Age the stored row past its 24 hours, behind the API's back.
    let backend = app.db.get_database_backend();
    let result = app
        .db
        .execute_raw(Statement::from_string(
            backend,
            "UPDATE idempotency_keys SET expires_at = created_at WHERE \"key\" = 'booking-expiring'",
        ))
        .await
        .unwrap_or_else(|e| panic!("expiring the idempotency row failed: {e}"));
    assert_eq!(result.rows_affected(), 1, "one stored row for the key");

    let resp = post_idempotent(&app, &app.key, "booking-expiring", &second_body).await;
    let second = assert_ok(&resp, 201);
    assert!(!replayed(&resp), "an expired key runs the request anew");
    assert_ne!(second["id"], first["id"]);
    // And the key now stores the new answer.
    let resp = post_idempotent(&app, &app.key, "booking-expiring", &second_body).await;
    assert_eq!(assert_ok(&resp, 201)["id"], second["id"]);
    assert!(replayed(&resp));
    assert_eq!(events_total(&app, &[]).await, 2);
}

async fn purge_expired_deletes_expired_rows_and_returns_their_count(app: TestApp) {
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let body_1 = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T10:00:00Z",
        "2027-05-03T10:30:00Z",
    );
    let body_2 = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T11:00:00Z",
        "2027-05-03T11:30:00Z",
    );
    assert_ok(
        &post_idempotent(&app, &app.key, "purge-1", &body_1).await,
        201,
    );
    let second = assert_ok(
        &post_idempotent(&app, &app.key, "purge-2", &body_2).await,
        201,
    );
    assert_eq!(idempotency_rows(&app).await, 2);

    let now = chrono::Utc::now();
    let purged = quando_api::repo::idempotency::purge_expired(&app.db, now)
        .await
        .unwrap_or_else(|e| panic!("purge_expired failed: {e}"));
    assert_eq!(purged, 0, "nothing has expired yet");
    assert_eq!(idempotency_rows(&app).await, 2);

    let backend = app.db.get_database_backend();
    app.db
        .execute_raw(Statement::from_string(
            backend,
            "UPDATE idempotency_keys SET expires_at = created_at WHERE \"key\" = 'purge-1'",
        ))
        .await
        .unwrap_or_else(|e| panic!("expiring purge-1 failed: {e}"));
    let purged = quando_api::repo::idempotency::purge_expired(&app.db, chrono::Utc::now())
        .await
        .unwrap_or_else(|e| panic!("purge_expired failed: {e}"));
    assert_eq!(purged, 1, "exactly the expired row is purged");
    assert_eq!(idempotency_rows(&app).await, 1);
    // The row still in date still replays.
    let resp = post_idempotent(&app, &app.key, "purge-2", &body_2).await;
    assert_eq!(assert_ok(&resp, 201)["id"], second["id"]);
    assert!(replayed(&resp));

    let far_future = now + chrono::Duration::days(2);
    let purged = quando_api::repo::idempotency::purge_expired(&app.db, far_future)
        .await
        .unwrap_or_else(|e| panic!("purge_expired failed: {e}"));
    assert_eq!(purged, 1, "the remaining row has expired by then");
    assert_eq!(idempotency_rows(&app).await, 0);
    // The key is free: another request with it runs.
    let body_3 = event_body(
        &calendar_id,
        &event_type_id,
        "2027-05-03T12:00:00Z",
        "2027-05-03T12:30:00Z",
    );
    let resp = post_idempotent(&app, &app.key, "purge-2", &body_3).await;
    assert_ok(&resp, 201);
    assert!(!replayed(&resp));
    assert_eq!(events_total(&app, &[]).await, 3);
}

// ----- PostgreSQL: the constraint itself -----

/// The SQLSTATE and constraint name of a database error, when it is one.
fn database_error(err: &DbErr) -> Option<(String, Option<String>)> {
    let runtime = match err {
        DbErr::Exec(r) | DbErr::Query(r) | DbErr::Conn(r) => r,
        _ => return None,
    };
    match runtime {
        RuntimeErr::SqlxError(e) => match e.as_ref() {
            sea_orm::sqlx::Error::Database(d) => Some((
                d.code().map(|c| c.into_owned()).unwrap_or_default(),
                d.constraint().map(str::to_owned),
            )),
            _ => None,
        },
        _ => None,
    }
}

/// Only on PostgreSQL (the SQLite half returns at once: SQLite has no exclusion constraints, and
/// its overlap rule lives in the write transaction the API runs). Rows inserted with plain SQL, past
/// the API: an overlapping live block on the same calendar is refused with SQLSTATE 23P01 by
/// `events_no_overlap`; a block that only touches, and an overlapping `cancelled` row, go in.
async fn the_postgres_exclusion_constraint_refuses_an_overlapping_row_inserted_behind_the_api(
    app: TestApp,
) {
    let backend = app.db.get_database_backend();
    if backend != DbBackend::Postgres {
        return;
    }
    let (calendar_id, event_type_id) = app.calendar_and_event_type().await;
    let booked = app
        .create_event(
            &app.key,
            &calendar_id,
            &event_type_id,
            "2027-05-03T10:00:00Z",
            "2027-05-03T10:30:00Z",
        )
        .await;
    let org_id = app.org_id;
    let insert = |start: &str, end: &str, status: &str| {
        let id = uuid::Uuid::now_v7();
        let cancelled_at = if status == "cancelled" {
            "now()"
        } else {
            "NULL"
        };
        let sql = format!(
            "INSERT INTO events (id, org_id, calendar_id, event_type_id, start_time, end_time, \
             block_start, block_end, timezone, status, booked_via, cancelled_at, created_at, updated_at) \
             VALUES ('{id}', '{org_id}', '{calendar_id}', '{event_type_id}', '{start}', '{end}', \
             '{start}', '{end}', 'UTC', '{status}', 'api', {cancelled_at}, now(), now())"
        );
        let db = app.db.clone();
        async move {
            db.execute_raw(Statement::from_string(DbBackend::Postgres, sql))
                .await
                .map(|_| id)
        }
    };

    let err = insert("2027-05-03T10:15:00Z", "2027-05-03T10:45:00Z", "confirmed")
        .await
        .expect_err("an overlapping confirmed row must be refused by the database");
    let (code, constraint) =
        database_error(&err).unwrap_or_else(|| panic!("expected a database error, got {err:?}"));
    assert_eq!(
        code, "23P01",
        "SQLSTATE of an exclusion violation; error: {err}"
    );
    assert_eq!(
        constraint.as_deref(),
        Some("events_no_overlap"),
        "the refusing constraint; error: {err}"
    );
    let err = insert("2027-05-03T10:15:00Z", "2027-05-03T10:45:00Z", "tentative")
        .await
        .expect_err("an overlapping tentative row must be refused by the database");
    assert_eq!(
        database_error(&err).map(|(code, _)| code).as_deref(),
        Some("23P01"),
        "error: {err}"
    );

    let touching = insert("2027-05-03T10:30:00Z", "2027-05-03T11:00:00Z", "confirmed")
        .await
        .unwrap_or_else(|e| panic!("a row touching the booking must go in: {e}"));
    let cancelled = insert("2027-05-03T10:00:00Z", "2027-05-03T10:30:00Z", "cancelled")
        .await
        .unwrap_or_else(|e| panic!("an overlapping cancelled row must go in: {e}"));

    // The API sees the rows, and honours the raw one when booking.
    let (items, _) = assert_list(&app.list_events(&[]).await);
    let mut listed = ids(&items);
    listed.sort();
    let mut expected = vec![id_of(&booked), touching.to_string(), cancelled.to_string()];
    expected.sort();
    assert_eq!(listed, expected);
    let resp = book(
        &app,
        &calendar_id,
        &event_type_id,
        "2027-05-03T10:45:00Z",
        "2027-05-03T11:15:00Z",
    )
    .await;
    assert_slot_conflict(&resp, &json!({"id": touching.to_string()}));
}
