//! Subscribing to changes: a replay of the history after the revision a subscriber asks for,
//! then the live feed, each change once, in revision order.
//!
//! A subscriber ([`Store::watch`]) first replays the history after the revision it asks for
//! (page by page, under the process's replay budget, see [`crate::replay`]), then follows the
//! live feed, skipping what it already has; if it falls behind the feed's buffer it reads the
//! gap from the history the same way; if the store is rewound (a backup restored) it lowers its
//! cursor to the revision the store went back to, so the changes after it reach it even at
//! revisions it saw before. So a subscriber loses nothing, whichever process wrote and whatever
//! happened to the connection in between.

use std::sync::Arc;

use futures_core::Stream;
use tokio::sync::broadcast;

use crate::StoreError;
use crate::changes::{ChangeFilter, ChangeRecord};
use crate::feed::{self, FeedEvent};
use crate::replay;
use crate::store::Store;
use crate::version::head_revision;

impl Store {
    /// Changes matching `filter`: first every one after `after` from the history (none when
    /// `after` is `None`), then each as it commits, in revision order, each once.
    pub fn watch(
        &self,
        filter: ChangeFilter,
        after: Option<i64>,
    ) -> impl Stream<Item = Result<Arc<ChangeRecord>, StoreError>> + Send + 'static + use<> {
        self.watch_then(filter, after, || {})
    }

    /// [`Store::watch`], calling `listening` once the stream follows the live feed (on its
    /// first poll, as a stream does its work): from then on no change committed is lost to
    /// it. A transport that tells its client "subscribed" (an SSE stream's headers, a
    /// reserved stream's `202`) waits for this, or a change committed in between would reach
    /// neither the replay nor the feed.
    pub fn watch_then<L: FnOnce() + Send + 'static>(
        &self,
        filter: ChangeFilter,
        after: Option<i64>,
        listening: L,
    ) -> impl Stream<Item = Result<Arc<ChangeRecord>, StoreError>> + Send + 'static + use<L> {
        let store = self.clone();
        async_stream::try_stream! {
            let (mut live, head, mut generation) = store.subscribe_live().await?;
            listening();
            let mut cursor = after.unwrap_or(head);
            // Replay what the subscriber missed, up to the head seen when it subscribed;
            // anything later arrives live.
            while cursor < head {
                let Some(page) = replay::next_page(&store.db, cursor, Some(head), &filter).await?
                else {
                    break;
                };
                let replay::ReplayPage { records, last, held } = page;
                for record in records {
                    if filter.matches(&record) {
                        yield Arc::new(record);
                    }
                }
                // The page's bytes go back to the budget once its records are handed on.
                drop(held);
                cursor = last;
            }
            cursor = Ord::max(cursor, head);
            loop {
                match live.recv().await {
                    Ok(FeedEvent::Change(record)) => {
                        if record.revision <= cursor {
                            continue;
                        }
                        cursor = record.revision;
                        if filter.matches(&record) {
                            yield record;
                        }
                    }
                    Ok(FeedEvent::Rewound(to)) => {
                        cursor = Ord::min(cursor, to);
                        generation = store.shared.feed.rewind_generation();
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a subscriber fell behind; reading the gap from the history");
                        // A rewind among the events it missed lowers its cursor too.
                        if let Some(to) = store.shared.feed.rewound_since(generation) {
                            cursor = Ord::min(cursor, to);
                        }
                        generation = store.shared.feed.rewind_generation();
                        let head = head_revision(&store.db).await?;
                        while cursor < head {
                            let Some(page) = replay::next_page(&store.db, cursor, Some(head), &filter).await?
                            else {
                                break;
                            };
                            let replay::ReplayPage { records, last, held } = page;
                            for record in records {
                                if filter.matches(&record) {
                                    yield Arc::new(record);
                                }
                            }
                            drop(held);
                            cursor = last;
                        }
                        cursor = Ord::max(cursor, head);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }
    }

    /// A receiver of the live feed, a head revision (every change after it will arrive on the
    /// receiver) and the feed's rewind generation. Starts (or starts again) the feed's
    /// listener or poller.
    async fn subscribe_live(
        &self,
    ) -> Result<(broadcast::Receiver<FeedEvent>, i64, u64), StoreError> {
        self.start_watcher();
        let feed = &self.shared.feed;
        // Subscribers arriving together share one read of the head (the version gate), so a
        // crowd of subscriptions costs a few statements, not one each.
        let read = self.fresh_version().await?.revision;
        let first = !feed.has_subscribers();
        let last = if first {
            Some(feed::last_change(&self.db).await?)
        } else {
            None
        };
        let subscribed = feed.subscribe(read, last).await;
        if first {
            // A write that committed while nobody was subscribed was not announced; one
            // announcement now makes sure it is not left for the next write.
            let store = self.clone();
            self.shared
                .background
                .spawn(async move { store.announce().await });
        }
        Ok(subscribed)
    }

    /// Announces every change committed since the last announcement, in order.
    pub(crate) async fn announce(&self) {
        if let Err(err) = feed::announce(&self.db, &self.shared.feed).await {
            tracing::warn!(code = err.code(), error = %err, "could not read new changes for subscribers; will retry on the next change");
        }
    }

    /// Starts the listener (Postgres) or poller (SQLite) on the store's background runtime,
    /// unless it runs; one that ended is started again and catches up from the history.
    fn start_watcher(&self) {
        let shared = &self.shared;
        let weak = Arc::downgrade(&shared.feed);
        let db = self.db.clone();
        shared.feed.ensure_watcher(|| {
            if feed::is_postgres(&db) {
                shared
                    .background
                    .spawn(feed::listen(weak, db, shared.url.clone()))
            } else {
                shared.background.spawn(feed::poll(weak, db))
            }
        });
    }

    /// Tests: stops this store's change listener (Postgres) or poller (SQLite) as a crash
    /// would. The next subscription starts it again.
    #[doc(hidden)]
    pub async fn kill_change_listener(&self) {
        self.shared.feed.kill_watcher().await;
    }
}
