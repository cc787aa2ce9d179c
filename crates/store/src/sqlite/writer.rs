//! The one writer: a thread that commits the writes queued while it was busy in one transaction
//! (group commit), each inside a savepoint of its own.
//!
//! Every SQLite commit appends each page it touched to the WAL whole. Writes that arrive
//! together mostly touch the same few pages (the audit log's last leaf, its index leaves), so a
//! commit of many writes puts fewer bytes on disk than a commit each, and a queue that built up
//! behind a slow disk write drains in one commit instead of one per write (docs/performance.md,
//! the document PUT).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::unavailable;
use crate::{Result, StoreError};

/// The most writes one commit carries, so that one transaction (and what a failed commit turns
/// away) stays small.
const MAX_GROUP: usize = 64;

/// The queue to the writer thread; the thread ends once this is dropped and the queue is done.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

/// A write waiting in the queue.
trait Job: Send {
    /// Runs the write inside the savepoint the writer opened for it; true to keep what it did.
    fn run(&mut self, connection: &Connection) -> bool;

    /// Answers the caller once the group's commit has succeeded or failed (or, if the write
    /// never ran, with why not).
    fn answer(self: Box<Self>, committed: std::result::Result<(), &str>);

    /// Runs outside any transaction, on its own (a checkpoint cannot run inside one).
    fn alone(&self) -> bool;
}

struct Pending<T, F> {
    alone: bool,
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A panicking write is rolled back and answered as a failure; the writer goes on.
        let outcome = catch_unwind(AssertUnwindSafe(|| work(connection)))
            .unwrap_or_else(|_| Err(unavailable("a write panicked")));
        let keep = outcome.is_ok();
        self.outcome = Some(outcome);
        keep
    }

    fn answer(self: Box<Self>, committed: std::result::Result<(), &str>) {
        // A group that did not commit answers every write with why, even one its own check
        // refused: that refusal may rest on an earlier write of the group, now rolled back.
        let answer = match (committed, self.outcome) {
            (Err(why), _) => Err(unavailable(why)),
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(unavailable("the write did not run")),
        };
        // The caller may have stopped waiting; what was committed stays committed.
        let _ = self.reply.send(answer);
    }

    fn alone(&self) -> bool {
        self.alone
    }
}

impl Writer {
    /// Starts the writer thread on `connection`.
    pub(super) fn start(connection: Connection) -> Result<Self> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || serve(&connection, &queue))
            .map_err(unavailable)?;
        Ok(Self { jobs })
    }

    /// Queues `work` and waits for its group's commit: `Ok` only once what it wrote is
    /// committed, and any `Err` it returns rolls back what it wrote and nothing else.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(false, work)?
            .await
            .map_err(|_| unavailable("the writer has stopped"))?
    }

    /// Runs `work` between two groups, outside any transaction: nothing else writes meanwhile.
    pub(super) async fn run_alone<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(true, work)?
            .await
            .map_err(|_| unavailable("the writer has stopped"))?
    }

    fn submit<T, F>(&self, alone: bool, work: F) -> Result<oneshot::Receiver<Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            alone,
            work: Some(work),
            outcome: None,
            reply,
        });
        self.jobs.send(job).map_err(|_| unavailable("the writer has stopped"))?;
        Ok(answer)
    }
}

fn serve(connection: &Connection, queue: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = queue.recv() {
        let (alone, group): (Vec<_>, Vec<_>) = std::iter::once(first)
            .chain(queue.try_iter().take(MAX_GROUP - 1))
            .partition(|job| job.alone());
        for mut job in alone {
            job.run(connection);
            job.answer(Ok(()));
        }
        if !group.is_empty() {
            commit(connection, group);
        }
    }
}

/// Runs `group` in one transaction, each job in a savepoint, and answers every job.
fn commit(connection: &Connection, mut group: Vec<Box<dyn Job>>) {
    let committed = run_group(connection, &mut group);
    if committed.is_err() && !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    let committed = committed.map_err(|error| error.to_string());
    for job in group {
        job.answer(committed.as_ref().copied().map_err(String::as_str));
    }
}

fn run_group(connection: &Connection, group: &mut [Box<dyn Job>]) -> Result<()> {
    statement(connection, "BEGIN IMMEDIATE")?;
    for job in group.iter_mut() {
        statement(connection, "SAVEPOINT job")?;
        if !job.run(connection) {
            statement(connection, "ROLLBACK TO job")?;
        }
        statement(connection, "RELEASE job")?;
    }
    statement(connection, "COMMIT")
}

/// Runs one of the writer's own statements, parsed once per connection.
fn statement(connection: &Connection, sql: &str) -> Result<()> {
    connection
        .prepare_cached(sql)
        .and_then(|mut prepared| prepared.execute([]))
        .map(|_| ())
        .map_err(|error: rusqlite::Error| StoreError::Unavailable(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer_on_a_table() -> (tempfile::TempDir, Writer, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("writer.sqlite");
        let connection = Connection::open(&path).expect("open");
        connection
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE rows (name TEXT PRIMARY KEY);")
            .expect("schema");
        (dir, Writer::start(connection).expect("start"), path)
    }

    fn insert(connection: &Connection, name: &str) -> Result<()> {
        connection
            .execute("INSERT INTO rows (name) VALUES (?1)", [name])
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Holds the writer busy until the returned sender is used, so that what is submitted
    /// meanwhile waits in the queue and makes one group.
    fn hold(writer: &Writer) -> (mpsc::Sender<()>, oneshot::Receiver<Result<()>>) {
        let (started, running) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let busy = writer
            .submit(false, move |connection| {
                started.send(()).expect("started");
                released.recv().expect("released");
                insert(connection, "first")
            })
            .expect("submit");
        running.recv().expect("the writer is busy");
        (release, busy)
    }

    fn names(path: &std::path::Path) -> Vec<String> {
        let reader = Connection::open(path).expect("open");
        let mut statement = reader.prepare("SELECT name FROM rows ORDER BY name").expect("select");
        let names = statement.query_map([], |row| row.get(0)).expect("rows");
        names.collect::<rusqlite::Result<_>>().expect("names")
    }

    /// A write that fails or panics in a group loses what it wrote, and only that.
    #[tokio::test]
    async fn a_failed_write_in_a_group_is_rolled_back_alone() {
        let (_dir, writer, path) = writer_on_a_table();
        let (release, busy) = hold(&writer);
        let kept = writer.submit(false, |c| insert(c, "kept")).expect("submit");
        let refused = writer
            .submit(false, |c| {
                insert(c, "refused")?;
                Err::<(), _>(StoreError::ConditionFailed)
            })
            .expect("submit");
        let panicked = writer
            .submit(false, |c| -> Result<()> {
                insert(c, "panicked")?;
                panic!("a write that panics")
            })
            .expect("submit");
        let also_kept = writer.submit(false, |c| insert(c, "also kept")).expect("submit");
        release.send(()).expect("release");

        busy.await.expect("answered").expect("first write");
        kept.await.expect("answered").expect("kept");
        assert!(matches!(
            refused.await.expect("answered"),
            Err(StoreError::ConditionFailed)
        ));
        assert!(matches!(
            panicked.await.expect("answered"),
            Err(StoreError::Unavailable(_))
        ));
        also_kept.await.expect("answered").expect("also kept");
        assert_eq!(names(&path), ["also kept", "first", "kept"]);
    }

    /// A group that cannot commit (here a write ends the transaction under the writer, as a
    /// full disk or an I/O error would end it) answers every write in it with an error, even
    /// the ones that ran and the ones refused on what the group wrote, and keeps none of them;
    /// the writer goes on with the next group.
    #[tokio::test]
    async fn a_group_that_cannot_commit_answers_every_write_with_an_error() {
        let (_dir, writer, path) = writer_on_a_table();
        let (release, busy) = hold(&writer);
        let ran = writer.submit(false, |c| insert(c, "ran")).expect("submit");
        let refused = writer
            .submit(false, |c| insert(c, "ran").map_err(|_| StoreError::ConditionFailed))
            .expect("submit");
        let breaks = writer
            .submit(false, |c| c.execute_batch("ROLLBACK").map_err(unavailable))
            .expect("submit");
        release.send(()).expect("release");

        // The write that held the writer busy was a group of its own, and committed.
        busy.await.expect("answered").expect("first write");
        assert!(matches!(ran.await.expect("answered"), Err(StoreError::Unavailable(_))));
        assert!(
            matches!(refused.await.expect("answered"), Err(StoreError::Unavailable(_))),
            "refused only because of a write that was rolled back"
        );
        assert!(matches!(
            breaks.await.expect("answered"),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(names(&path), ["first"]);

        writer
            .run(|c| insert(c, "later"))
            .await
            .expect("the next group commits");
        assert_eq!(names(&path), ["first", "later"]);
    }
}
