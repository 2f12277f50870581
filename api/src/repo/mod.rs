//! Tenant-scoped storage access, one file per resource. Every function takes the organization
//! first and starts from `scoped`, which already filters on it: another organization's row is
//! indistinguishable from a missing one. Routes never call `Entity::find()` themselves.

pub mod calendars;
pub mod event_types;
pub mod events;
pub mod feeds;
pub mod holds;
pub mod idempotency;
pub mod members;
pub mod series;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Select, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::domain::ids::OrgId;
use crate::pagination::PageRequest;

/// A table whose rows belong to one organization.
pub trait OrgScoped: EntityTrait {
    fn org_column() -> Self::Column;
}

impl OrgScoped for entity::calendars::Entity {
    fn org_column() -> Self::Column {
        entity::calendars::Column::OrgId
    }
}

impl OrgScoped for entity::event_types::Entity {
    fn org_column() -> Self::Column {
        entity::event_types::Column::OrgId
    }
}

impl OrgScoped for entity::event_series::Entity {
    fn org_column() -> Self::Column {
        entity::event_series::Column::OrgId
    }
}

impl OrgScoped for entity::event_counts::Entity {
    fn org_column() -> Self::Column {
        entity::event_counts::Column::OrgId
    }
}

impl OrgScoped for entity::event_org_counts::Entity {
    fn org_column() -> Self::Column {
        entity::event_org_counts::Column::OrgId
    }
}

impl OrgScoped for entity::events::Entity {
    fn org_column() -> Self::Column {
        entity::events::Column::OrgId
    }
}

impl OrgScoped for entity::calendar_feeds::Entity {
    fn org_column() -> Self::Column {
        entity::calendar_feeds::Column::OrgId
    }
}

impl OrgScoped for entity::calendar_members::Entity {
    fn org_column() -> Self::Column {
        entity::calendar_members::Column::OrgId
    }
}

/// The start of every tenant query.
pub fn scoped<E: OrgScoped>(org: OrgId) -> Select<E> {
    E::find().filter(E::org_column().eq(org.0))
}

/// One page of an already scoped, filtered and ordered query, with the total over all pages.
pub async fn page<E, C>(
    db: &C,
    query: Select<E>,
    req: PageRequest,
) -> Result<(Vec<E::Model>, u64), DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let total = query.clone().count(db).await?;
    page_of(db, query, req, total).await
}

/// One page of a query whose total over all pages is already known (kept by counters).
pub async fn page_of<E, C>(
    db: &C,
    query: Select<E>,
    req: PageRequest,
    total: u64,
) -> Result<(Vec<E::Model>, u64), DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    if req.offset() >= total {
        return Ok((Vec::new(), total));
    }
    let items = query.offset(req.offset()).limit(req.limit).all(db).await?;
    Ok((items, total))
}

/// SQLite admits one writer at a time, and a writer that finds the lock taken sleeps in SQLite's
/// busy handler (naps of up to 100 ms), which turns contention into long tails. Writes to one
/// database file queue here instead, first come first served, before they take the lock. The
/// queue also keeps the file's open group of bookings (`begin_booking`), if any.
pub struct WriterQueue {
    slot: Arc<tokio::sync::Mutex<Option<OpenGroup>>>,
    /// Writes waiting for `slot`: a booking that finds none behind it commits its group.
    waiting: AtomicUsize,
}

/// Every SQLite file's queue (a server has one database; tests have many).
static QUEUES: std::sync::Mutex<Vec<(std::path::PathBuf, Arc<WriterQueue>)>> =
    std::sync::Mutex::new(Vec::new());

/// The queue of a SQLite file, or `None` on PostgreSQL.
fn queue_of(db: &DatabaseConnection) -> Option<Arc<WriterQueue>> {
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return None;
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    let file = options.get_filename();
    let mut queues = QUEUES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, q)) = queues.iter().find(|(f, _)| f == file) {
        return Some(q.clone());
    }
    let q = Arc::new(WriterQueue {
        slot: Arc::new(tokio::sync::Mutex::new(None)),
        waiting: AtomicUsize::new(0),
    });
    queues.push((file.to_path_buf(), q.clone()));
    Some(q)
}

type Slot = tokio::sync::OwnedMutexGuard<Option<OpenGroup>>;

/// A group's commit outcome as its members hear it: `None` until it is committed.
type Outcome = tokio::sync::watch::Receiver<Option<Result<(), String>>>;

impl WriterQueue {
    /// The queue's lock: counts itself among the waiting until it has it.
    async fn lock(&self) -> Slot {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        self.slot.clone().lock_owned().await
    }

    fn nobody_waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire) == 0
    }
}

/// Numbers the groups, so a member that waited too long knows whether its group is still open.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// At most this many bookings share one commit.
const GROUP_CAP: usize = 128;

/// How long a member waits for the commit of its group before it commits the group itself (only
/// when the booking after it went away without finishing: a dropped request).
const MEMBER_PATIENCE: Duration = Duration::from_millis(20);

/// A group commit in progress on SQLite: one `BEGIN IMMEDIATE` transaction on the writer in which
/// bookings run one after another, each in a savepoint of its own, so a refused booking undoes
/// only itself. The group commits (one fsync, `synchronous=FULL`) when no write is waiting behind
/// the booking that just finished, or when it is full; every booking in it is acknowledged only
/// after that commit succeeded. If the commit fails, or storage fails while the group is open,
/// every booking in it gets the error and none is acknowledged.
///
/// SQLite may roll a whole transaction back by itself when a statement fails for lack of space
/// or an I/O error; what a later savepoint wrote would then commit on its own. So the group
/// writes a marker row into a temporary table of its connection when it begins, and checks it is
/// still there before each booking joins and before the commit: a group without its marker is
/// given up, and its bookings get the error.
pub struct OpenGroup {
    tx: sea_orm::DatabaseTransaction,
    members: usize,
    generation: u64,
    /// The commit's outcome, to every member; dropped unsent when the group is rolled back.
    done: tokio::sync::watch::Sender<Option<Result<(), String>>>,
}

impl OpenGroup {
    async fn begin(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let generation = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
        let tx = db.begin_with_options(immediate()).await?;
        tx.execute_unprepared(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS quando_group (generation INTEGER NOT NULL); \
             DELETE FROM temp.quando_group; \
             INSERT INTO temp.quando_group (generation) VALUES ({generation})"
        ))
        .await?;
        Ok(OpenGroup {
            tx,
            members: 0,
            generation,
            done: tokio::sync::watch::channel(None).0,
        })
    }

    /// Whether the group's transaction is still the one it began (its marker is there).
    async fn intact(&self) -> bool {
        let found = self
            .tx
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "SELECT generation FROM temp.quando_group",
            ))
            .await;
        matches!(
            found.map(|row| row.map(|r| r.try_get_by_index::<i64>(0))),
            Ok(Some(Ok(g))) if u64::try_from(g).ok() == Some(self.generation)
        )
    }
}

/// Commits the open group, if any, and tells its members how it went. Returns that outcome.
async fn commit_group(slot: &mut Option<OpenGroup>) -> Result<(), DbErr> {
    let Some(group) = slot.take() else {
        return Ok(());
    };
    if !group.intact().await {
        // SQLite rolled it back after a failed statement: what its bookings wrote is gone.
        // Dropping it tells every member (the channel closes unsent).
        return Err(group_lost());
    }
    let done = group.done;
    let outcome = group.tx.commit().await;
    if let Err(e) = &outcome {
        crate::db::note_failure(e);
    }
    let _ = done.send(Some(
        outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()),
    ));
    outcome
}

/// The error of a booking whose group was rolled back (passing trouble: a 503 worth a retry).
fn group_lost() -> DbErr {
    DbErr::Conn(sea_orm::RuntimeErr::Internal(
        "storage failed while this booking waited for its group commit; nothing of it was kept"
            .into(),
    ))
}

fn immediate() -> TransactionOptions {
    TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    }
}

/// The writer queue's guard `begin_write` hands out (`None` on PostgreSQL): hold it until the
/// commit.
pub type WriteGuard = Option<Slot>;

/// A write transaction: `BEGIN IMMEDIATE` on SQLite (behind the writer queue, after committing
/// an open group of bookings), a plain one on PostgreSQL, whose exclusion constraint settles
/// races. Keep the guard until the commit. `db` is the service's writer (`db::writer_for`), so
/// SQLite's writes share one warm page cache.
pub async fn begin_write(
    db: &DatabaseConnection,
) -> Result<(WriteGuard, sea_orm::DatabaseTransaction), DbErr> {
    let queued = match queue_of(db) {
        Some(queue) => {
            let mut slot = queue.lock().await;
            // The group's members are told the outcome; this write does not depend on it.
            let _ = commit_group(&mut slot).await;
            Some(slot)
        }
        None => None,
    };
    Ok((queued, db.begin_with_options(immediate()).await?))
}

/// A booking's place in a group commit (SQLite), or its own transaction's guard (PostgreSQL).
/// Finish it with `commit` (durable when it returns `Ok`) or `abandon` (a refusal: nothing
/// written). Dropped unfinished (an error on the way), after its savepoint (which rolls back),
/// it leaves the group to the next booking, or to a member that stops waiting.
pub struct Booking {
    queue: Option<Arc<WriterQueue>>,
    slot: Option<Slot>,
    /// The group's outcome, on SQLite.
    outcome: Option<(u64, Outcome)>,
}

/// Begins a booking's write: on SQLite a savepoint in the open group of bookings (beginning one
/// when there is none), on PostgreSQL a transaction of its own. Every check and write of the
/// booking runs in the transaction returned, as in `begin_write`. Other small writes that come
/// as often as bookings share it too: Idempotency-Key claims and the webhook worker's claims
/// and records (`delivery.rs`).
pub async fn begin_booking(
    db: &DatabaseConnection,
) -> Result<(Booking, sea_orm::DatabaseTransaction), DbErr> {
    let Some(queue) = queue_of(db) else {
        let txn = db.begin().await?;
        return Ok((
            Booking {
                queue: None,
                slot: None,
                outcome: None,
            },
            txn,
        ));
    };
    let mut slot = queue.lock().await;
    let joinable = match slot.as_ref() {
        Some(g) => g.members < GROUP_CAP && g.intact().await,
        None => true,
    };
    if !joinable {
        let _ = commit_group(&mut slot).await;
    }
    if slot.is_none() {
        *slot = Some(OpenGroup::begin(db).await?);
    }
    let Some(group) = slot.as_mut() else {
        return Err(group_lost());
    };
    let savepoint = group.tx.begin().await?;
    group.members += 1;
    let outcome = Some((group.generation, group.done.subscribe()));
    Ok((
        Booking {
            queue: Some(queue),
            slot: Some(slot),
            outcome,
        },
        savepoint,
    ))
}

impl Booking {
    /// Keeps the booking: releases its savepoint and returns once its group is committed, or
    /// commits its own transaction on PostgreSQL. `Ok` means durable.
    pub async fn commit(mut self, txn: sea_orm::DatabaseTransaction) -> Result<(), DbErr> {
        txn.commit().await?;
        self.finish().await
    }

    /// Gives the booking up (refused): rolls back its savepoint; the group goes on without it.
    /// Returns once the group's bookings before it are committed (or failed), so what the caller
    /// reads next (the next free slots of a refusal) sees them.
    pub async fn abandon(mut self, txn: sea_orm::DatabaseTransaction) -> Result<(), DbErr> {
        txn.rollback().await?;
        let _ = self.finish().await;
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), DbErr> {
        let Some((generation, mut outcome)) = self.outcome.take() else {
            // PostgreSQL: the transaction's own commit was the durable one.
            return Ok(());
        };
        if let Some(mut slot) = self.slot.take() {
            let full = slot.as_ref().is_none_or(|g| g.members >= GROUP_CAP);
            if full || self.queue.as_ref().is_none_or(|q| q.nobody_waiting()) {
                return commit_group(&mut slot).await;
            }
            // The next write in the queue joins the group (or commits it first).
        }
        loop {
            let heard = match tokio::time::timeout(
                MEMBER_PATIENCE,
                outcome.wait_for(Option::is_some),
            )
            .await
            {
                Ok(Ok(result)) => Some(result.clone()),
                // Rolled back unsent.
                Ok(Err(_)) => return Err(group_lost()),
                Err(_) => None,
            };
            match heard {
                Some(Some(Ok(()))) => return Ok(()),
                Some(Some(Err(e))) => {
                    return Err(DbErr::Conn(sea_orm::RuntimeErr::Internal(format!(
                        "the group commit of this booking failed: {e}"
                    ))));
                }
                Some(None) => return Err(group_lost()),
                None => {
                    // The booking after this one went away unfinished: commit the group here.
                    let Some(queue) = &self.queue else {
                        return Err(group_lost());
                    };
                    let mut slot = queue.lock().await;
                    if slot.as_ref().is_some_and(|g| g.generation == generation) {
                        return commit_group(&mut slot).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DatabaseConnection};

    use super::*;

    /// A writer and a reader on a fresh SQLite file, with a scratch table of keys.
    async fn store() -> (DatabaseConnection, DatabaseConnection, tempfile::TempDir) {
        let (state, _key, dir) = crate::test_support::state(crate::config::Config::default()).await;
        let writer = state.service.writer.clone();
        writer
            .execute_unprepared("CREATE TABLE scratch (k INTEGER PRIMARY KEY)")
            .await
            .expect("scratch table");
        (writer, state.db.clone(), dir)
    }

    async fn insert(txn: &sea_orm::DatabaseTransaction, k: i64) -> Result<(), DbErr> {
        txn.execute_unprepared(&format!("INSERT INTO scratch (k) VALUES ({k})"))
            .await
            .map(|_| ())
    }

    /// The keys a reader on another connection sees (committed ones only).
    async fn committed(reader: &DatabaseConnection) -> Vec<i64> {
        let rows = reader
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "SELECT k FROM scratch ORDER BY k",
            ))
            .await
            .expect("read");
        rows.iter()
            .map(|r| r.try_get_by_index::<i64>(0).expect("k"))
            .collect()
    }

    /// Waits (without a deadline of its own) until `n` writes queue behind the writer's lock.
    async fn until_waiting(writer: &DatabaseConnection, n: usize) {
        let queue = queue_of(writer).expect("SQLite");
        while queue.waiting.load(Ordering::Acquire) < n {
            tokio::task::yield_now().await;
        }
    }

    /// The next booking, in a task: it begins (queueing behind the current one), inserts `k`,
    /// says so, and then commits or gives up when told.
    fn next_booking(
        writer: &DatabaseConnection,
        k: i64,
    ) -> (
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<bool>,
        tokio::task::JoinHandle<Result<(), DbErr>>,
    ) {
        let (inserted_tx, inserted) = tokio::sync::oneshot::channel();
        let (go, go_rx) = tokio::sync::oneshot::channel::<bool>();
        let writer = writer.clone();
        let task = tokio::spawn(async move {
            let (booking, txn) = begin_booking(&writer).await?;
            insert(&txn, k).await?;
            let _ = inserted_tx.send(());
            if go_rx.await.unwrap_or(false) {
                booking.commit(txn).await
            } else {
                booking.abandon(txn).await
            }
        });
        (inserted, go, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_booking_queued_behind_another_joins_its_group_and_neither_is_acknowledged_before_the_one_commit()
     {
        let (writer, reader, _dir) = store().await;
        let (first, txn) = begin_booking(&writer).await.expect("begin");
        insert(&txn, 1).await.expect("insert");
        let (inserted, go, second) = next_booking(&writer, 2);
        until_waiting(&writer, 1).await;
        // The first finishes while the second waits: it leaves the group open for it.
        let first = tokio::spawn(first.commit(txn));
        inserted.await.expect("the second inserted");
        // Both are in one open transaction: nothing is visible, and the first is not answered.
        assert_eq!(committed(&reader).await, Vec::<i64>::new());
        assert!(!first.is_finished());
        go.send(true).expect("go");
        second.await.expect("task").expect("second committed");
        first.await.expect("task").expect("first committed");
        assert_eq!(committed(&reader).await, vec![1, 2]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_booking_in_a_group_undoes_only_itself() {
        let (writer, reader, _dir) = store().await;
        let (first, txn) = begin_booking(&writer).await.expect("begin");
        insert(&txn, 1).await.expect("insert");
        let (inserted, go, second) = next_booking(&writer, 2);
        until_waiting(&writer, 1).await;
        let first = tokio::spawn(first.commit(txn));
        inserted.await.expect("the second inserted");
        go.send(false).expect("refuse");
        second.await.expect("task").expect("second gave up");
        first.await.expect("task").expect("first committed");
        assert_eq!(committed(&reader).await, vec![1]);
        // The writer goes on: a booking on its own commits alone.
        let (third, txn) = begin_booking(&writer).await.expect("begin");
        insert(&txn, 3).await.expect("insert");
        third.commit(txn).await.expect("third committed");
        assert_eq!(committed(&reader).await, vec![1, 3]);
    }

    /// The next booking, in a task: it begins behind the current one, inserts `k`, runs `then`
    /// (which fails) and goes away unfinished, as a booking does on a storage error.
    fn failing_booking(
        writer: &DatabaseConnection,
        k: i64,
        then: &'static str,
    ) -> tokio::task::JoinHandle<Result<(), DbErr>> {
        let writer = writer.clone();
        tokio::spawn(async move {
            let (booking, txn) = begin_booking(&writer).await?;
            insert(&txn, k).await?;
            let outcome = txn.execute_unprepared(then).await.map(|_| ());
            drop((txn, booking));
            outcome
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_statement_in_a_group_undoes_only_its_own_booking() {
        let (writer, reader, _dir) = store().await;
        let (first, txn) = begin_booking(&writer).await.expect("begin");
        insert(&txn, 1).await.expect("insert");
        let failing = failing_booking(&writer, 2, "INSERT INTO no_such_table VALUES (1)");
        until_waiting(&writer, 1).await;
        let first = first.commit(txn).await;
        assert!(failing.await.expect("task").is_err());
        first.expect("the first is committed");
        assert_eq!(committed(&reader).await, vec![1]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_that_sqlite_rolled_back_acknowledges_no_member_and_the_next_starts_clean() {
        let (writer, reader, _dir) = store().await;
        let (first, txn) = begin_booking(&writer).await.expect("begin");
        insert(&txn, 1).await.expect("insert");
        // What SQLite does by itself after SQLITE_FULL or SQLITE_IOERR: the whole transaction
        // is gone, and the failing statement's error reaches its booking.
        let failing = failing_booking(&writer, 2, "ROLLBACK; SELECT * FROM no_such_table");
        until_waiting(&writer, 1).await;
        let outcome = first.commit(txn).await;
        assert!(failing.await.expect("task").is_err());
        let err = outcome.expect_err("the first must not be acknowledged");
        assert!(crate::db::is_transient(&err), "{err}");
        assert_eq!(committed(&reader).await, Vec::<i64>::new());
        // The writer goes on with a group of its own.
        let (next, txn) = begin_booking(&writer).await.expect("begin");
        insert(&txn, 4).await.expect("insert");
        next.commit(txn).await.expect("committed");
        assert_eq!(committed(&reader).await, vec![4]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plain_write_commits_the_open_group_before_its_own_transaction() {
        let (writer, reader, _dir) = store().await;
        let (first, txn) = begin_booking(&writer).await.expect("begin");
        insert(&txn, 1).await.expect("insert");
        let plain = {
            let writer = writer.clone();
            tokio::spawn(async move {
                let (queued, txn) = begin_write(&writer).await?;
                insert(&txn, 2).await?;
                txn.commit().await?;
                drop(queued);
                Ok::<(), DbErr>(())
            })
        };
        until_waiting(&writer, 1).await;
        first.commit(txn).await.expect("first committed");
        plain.await.expect("task").expect("plain committed");
        assert_eq!(committed(&reader).await, vec![1, 2]);
    }
}
