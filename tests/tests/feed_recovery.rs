//! The change feed keeps going through what happens under it: a backup restored under a
//! running process (the revision goes back, the history after it is another), a listener or
//! poller that died, a request worker that is busy. Two stores on one database stand for two
//! processes: one writes, the other's subscribers must hear it.

use std::time::Duration;

use async_graphql::futures_util::StreamExt;
use plangraph_domain::access::Actor;
use plangraph_persistence::{ChangeFilter, Store};
use sea_orm::ConnectionTrait;
use tokio::sync::mpsc;

use crate::on_both_databases;
use crate::support::Backend;
use crate::write_safety::{count_edit, peru_at, report_revision};

fn admin() -> Actor {
    Actor::local("feed recovery test")
}

/// What a subscriber received: the revision and the donors' count the change wrote.
type Heard = (i64, Option<String>);

/// Subscribes to every change of `store` after `after`, in a task of its own; what it
/// receives comes out of the channel.
fn subscribe(store: &Store, after: Option<i64>) -> mpsc::UnboundedReceiver<Heard> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let mut changes = Box::pin(store.watch(ChangeFilter::default(), after));
    tokio::spawn(async move {
        while let Some(Ok(change)) = changes.next().await {
            let count = change
                .fields
                .iter()
                .find(|f| f.path == "partnerCounts.DONOR")
                .and_then(|f| f.after.clone());
            if sender.send((change.revision, count)).is_err() {
                break;
            }
        }
    });
    receiver
}

async fn next(heard: &mut mpsc::UnboundedReceiver<Heard>, within: Duration) -> Option<Heard> {
    tokio::time::timeout(within, heard.recv())
        .await
        .ok()
        .flatten()
}

async fn write_count(store: &Store, count: u32, revision: i64) -> i64 {
    store
        .write(&admin(), count_edit(count, revision))
        .await
        .expect("a write")
        .revision
}

/// A backup restored under a running process, simulated by SQL through another connection:
/// the history after revision R deleted, the store's revision set back to R with a new epoch,
/// the report's revision restored. The other process writes on: the subscriber hears every
/// new change within seconds (the finding: nothing until the revision passed the old head),
/// whether the head went below what it had heard or came back to the same number.
async fn subscribers_follow_a_store_restored_under_them(backend: Backend) {
    let (listening, url, _dir) = peru_at(backend).await;
    let writing = Store::connect(&url).await.unwrap();
    let start = report_revision(&writing).await;
    let mut heard = subscribe(&listening, Some(start));

    let mut revision = start;
    for count in [11, 12, 13] {
        revision = write_count(&writing, count, revision).await;
    }
    for (n, count) in [(1, "11"), (2, "12"), (3, "13")] {
        let event = next(&mut heard, Duration::from_secs(10)).await;
        assert_eq!(event, Some((start + n, Some(count.to_owned()))));
    }

    // Restored to the first of the three.
    let restored = start + 1;
    writing
        .connection()
        .execute_unprepared(&format!(
            "DELETE FROM change WHERE revision > {restored}; \
             UPDATE store_revision SET value = {restored}, epoch = 4242 WHERE id = 1; \
             UPDATE report SET revision = {restored} WHERE id = 1"
        ))
        .await
        .unwrap();
    // Two writes at once: the head comes back to the number the subscriber heard last, with
    // another change at it.
    let mut revision = write_count(&writing, 21, restored).await;
    revision = write_count(&writing, 22, revision).await;
    assert_eq!(revision, start + 3);
    for (n, count) in [(2, "21"), (3, "22")] {
        let event = next(&mut heard, Duration::from_secs(10)).await;
        assert_eq!(
            event,
            Some((start + n, Some(count.to_owned()))),
            "after the restore"
        );
    }
    // And on, each once.
    let revision = write_count(&writing, 23, revision).await;
    assert_eq!(
        next(&mut heard, Duration::from_secs(10)).await,
        Some((revision, Some("23".to_owned())))
    );
    assert_eq!(next(&mut heard, Duration::from_millis(1500)).await, None);

    // Restored below what was heard: the head is under it.
    let restored = start;
    writing
        .connection()
        .execute_unprepared(&format!(
            "DELETE FROM change WHERE revision > {restored}; \
             UPDATE store_revision SET value = {restored}, epoch = 4343 WHERE id = 1; \
             UPDATE report SET revision = {restored} WHERE id = 1"
        ))
        .await
        .unwrap();
    let revision = write_count(&writing, 31, restored).await;
    assert_eq!(
        next(&mut heard, Duration::from_secs(10)).await,
        Some((revision, Some("31".to_owned())))
    );
}
on_both_databases!(subscribers_follow_a_store_restored_under_them, multi_thread);

/// The listener (Postgres) or poller (SQLite) killed: this process hears nothing of the other
/// process's writes, until the next subscription starts it again; it then catches up from the
/// history, so the earlier subscriber gets what it missed and both get what follows.
async fn a_dead_change_listener_is_restarted_by_the_next_subscriber(backend: Backend) {
    let (listening, url, _dir) = peru_at(backend).await;
    let writing = Store::connect(&url).await.unwrap();
    let start = report_revision(&writing).await;
    let mut first = subscribe(&listening, Some(start));
    let one = write_count(&writing, 51, start).await;
    assert_eq!(
        next(&mut first, Duration::from_secs(10)).await.map(|h| h.0),
        Some(one)
    );

    listening.kill_change_listener().await;
    let two = write_count(&writing, 52, one).await;
    assert_eq!(
        next(&mut first, Duration::from_secs(2)).await,
        None,
        "the listener was not stopped"
    );

    let mut second = subscribe(&listening, Some(two));
    assert_eq!(
        next(&mut first, Duration::from_secs(10)).await.map(|h| h.0),
        Some(two),
        "no catching up after the restart"
    );
    let three = write_count(&writing, 53, two).await;
    assert_eq!(
        next(&mut second, Duration::from_secs(10))
            .await
            .map(|h| h.0),
        Some(three)
    );
    assert_eq!(
        next(&mut first, Duration::from_secs(10)).await.map(|h| h.0),
        Some(three)
    );
}
on_both_databases!(
    a_dead_change_listener_is_restarted_by_the_next_subscriber,
    multi_thread
);

/// The store's background tasks run on the runtime it is given, not on the request worker
/// that first needed them: a subscription on a worker's runtime starts the listener, the
/// worker then stays busy for seconds, and a subscriber elsewhere still hears the other
/// process's write at once.
async fn background_tasks_run_on_the_runtime_they_are_given(backend: Backend) {
    let (listening, url, _dir) = peru_at(backend).await;
    let writing = Store::connect(&url).await.unwrap();
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    listening.run_background_on(background.handle().clone());
    let start = report_revision(&writing).await;

    let (ready, subscribed) = std::sync::mpsc::channel();
    let worker = std::thread::spawn({
        let listening = listening.clone();
        move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut changes = Box::pin(listening.watch(ChangeFilter::default(), Some(start)));
                let _ = tokio::time::timeout(Duration::from_millis(500), changes.next()).await;
                ready.send(()).unwrap();
                // A busy worker: its runtime runs nothing for a while.
                std::thread::sleep(Duration::from_secs(6));
                drop(changes);
            });
        }
    });
    subscribed.recv().unwrap();
    let mut heard = subscribe(&listening, Some(start));
    let one = write_count(&writing, 61, start).await;
    assert_eq!(
        next(&mut heard, Duration::from_secs(3)).await.map(|h| h.0),
        Some(one),
        "the listener waited for the busy worker"
    );
    tokio::task::spawn_blocking(move || worker.join().unwrap())
        .await
        .unwrap();
    background.shutdown_background();
}
on_both_databases!(
    background_tasks_run_on_the_runtime_they_are_given,
    multi_thread
);

/// `watch_then` calls its hook only once the stream follows the feed (what an SSE stream's
/// headers and a reserved stream's `202` wait for): a change committed inside the hook, by
/// another store on the same database as another process would, reaches the subscriber. Were
/// the hook called before the stream read the head, that change would be below the head and
/// never delivered.
async fn a_change_committed_as_the_watch_listens_is_not_lost(backend: Backend) {
    let (listening, url, _dir) = peru_at(backend).await;
    let start = report_revision(&listening).await;
    let mut changes = Box::pin(
        listening.watch_then(ChangeFilter::default(), None, move || {
            // The commit is done before the hook returns: on a thread and a runtime of its own, so
            // the stream's runtime, blocked meanwhile, has no part in it.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let writing = Store::connect(&url).await.unwrap();
                    write_count(&writing, 71, start).await;
                });
            })
            .join()
            .unwrap();
        }),
    );
    let first = tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .expect("the change committed as the watch listened arrives")
        .expect("the stream goes on")
        .expect("a change");
    assert_eq!(first.revision, start + 1);
}
on_both_databases!(
    a_change_committed_as_the_watch_listens_is_not_lost,
    multi_thread
);
