//! The root `Subscription`: committed changes, as they commit.
//!
//! Each event is resolved with a DataLoader of its own (shared by every subscriber of this
//! process that receives the same event), so it never serves rows cached before the change it
//! announces. `afterRevision` first replays every matching change after that revision from the
//! history, then follows the live feed: a subscriber that reconnects with the last revision it
//! saw loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::futures_util::{Stream, StreamExt};
use async_graphql::{Context, ID, Result, Subscription as GraphQLSubscription};
use plangraph_domain::edit;
use plangraph_persistence::{ChangeFilter, Store};

use crate::error::ApiError;
use crate::loaders::Loaders;
use crate::loaders::{LoaderSlot, new_loaders};
use crate::pipeline::{EventSlot, ExecutionSlots};
use crate::types::{Change, FiguresChange};

/// Most subscriptions one WebSocket connection may hold at once. Each costs a receiver on the
/// change feed and a query per event; a dashboard needs a handful.
pub const MAX_SUBSCRIPTIONS_PER_SOCKET: usize = 100;

/// Tells a transport when its subscription follows the store's feed (request data, see
/// [`Listening::new`]). A transport that says "subscribed" to its client before that (SSE's
/// headers, a reserved stream's `202`) would let a change committed in between reach neither
/// the replay nor the live feed.
#[derive(Debug)]
pub struct Listening(std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>);

impl Listening {
    /// The request data and its receiver. The receiver resolves once the operation's
    /// subscription follows the feed, or as an error once the request is dropped without
    /// subscribing (a query, a refused request, a failed resolver): either way, from then on
    /// nothing that operation receives can be lost to the gap.
    pub fn new() -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (tell, heard) = tokio::sync::oneshot::channel();
        (Self(std::sync::Mutex::new(Some(tell))), heard)
    }

    fn sender(&self) -> Option<tokio::sync::oneshot::Sender<()>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The operation is not a subscription (a query or a mutation sent as a stream): there is
    /// nothing to wait for, so the receiver resolves now, not once the answer is computed.
    pub(crate) fn not_a_subscription(&self) {
        drop(self.sender());
    }

    /// What `Store::watch_then` calls once the stream listens.
    fn take(ctx: &Context<'_>) -> impl FnOnce() + Send + 'static + use<> {
        let tell = ctx.data_opt::<Self>().and_then(Self::sender);
        move || {
            if let Some(tell) = tell {
                let _ = tell.send(());
            }
        }
    }
}

/// The subscriptions a connection holds, counted across its operations (session data).
#[derive(Debug, Clone)]
pub struct SubscriptionQuota {
    active: Arc<AtomicUsize>,
    max: usize,
}

impl SubscriptionQuota {
    pub fn per_socket() -> Self {
        Self {
            active: Arc::new(AtomicUsize::new(0)),
            max: MAX_SUBSCRIPTIONS_PER_SOCKET,
        }
    }

    /// A place for one more subscription, given back when the guard drops (the stream ends).
    fn take(&self) -> Result<QuotaGuard, ApiError> {
        let taken = self
            .active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(QuotaGuard(self.active.clone())),
            Err(_) => Err(ApiError::TooManySubscriptions(self.max)),
        }
    }
}

/// One subscription's place in its connection's quota.
#[derive(Debug)]
struct QuotaGuard(Arc<AtomicUsize>);

impl Drop for QuotaGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One open subscription, counted in `plangraph_subscriptions_active` for as long as its
/// stream lives (over any transport).
#[derive(Debug)]
struct Active;

impl Active {
    fn new() -> Self {
        metrics::gauge!("plangraph_subscriptions_active").increment(1.0);
        Self
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        metrics::gauge!("plangraph_subscriptions_active").decrement(1.0);
    }
}

/// A place in the connection's quota, when the request came over one (in-process callers and
/// HTTP have none: subscriptions need a socket there anyway).
fn quota(ctx: &Context<'_>) -> Result<Option<QuotaGuard>, ApiError> {
    ctx.data_opt::<SubscriptionQuota>()
        .map(SubscriptionQuota::take)
        .transpose()
}

#[derive(Debug, Default)]
pub struct Subscription;

fn store<'a>(ctx: &Context<'a>) -> Result<&'a Store, ApiError> {
    ctx.data::<Store>().map_err(|_| ApiError::Internal {
        store_code: "STORE_MISSING",
    })
}

fn slot(ctx: &Context<'_>) -> Result<LoaderSlot, ApiError> {
    ctx.data::<LoaderSlot>()
        .cloned()
        .map_err(|_| ApiError::Internal {
            store_code: "LOADERS_MISSING",
        })
}

/// The revision to replay after. One ahead of the store is refused: after a restore from a
/// backup, say, a client's last revision may lie in the future, and following "live from there"
/// would skip every change until the store caught up.
/// Where a subscription with `afterRevision` starts: after which revision, and the store's
/// last revision when it began (the changes up to it are replayed).
#[derive(Debug, Clone, Copy)]
struct Replay {
    after: i64,
    head: i64,
}

async fn after(store: &Store, revision: Option<i32>) -> Result<Option<Replay>, ApiError> {
    let Some(revision) = revision else {
        return Ok(None);
    };
    if revision < 0 {
        return Err(ApiError::BadUserInput(format!(
            "afterRevision must be 0 or more, got {revision}"
        )));
    }
    let head = store.head_revision().await?;
    if i64::from(revision) > head {
        return Err(ApiError::BadUserInput(format!(
            "afterRevision {revision} is ahead of the store, whose last revision is {head}; resubscribe with afterRevision: {head} or less"
        )));
    }
    Ok(Some(Replay {
        after: i64::from(revision),
        head,
    }))
}

/// A report id that names a stored report.
async fn known_report(store: &Store, id: &ID) -> Result<i32, ApiError> {
    let report_id = report_id(id)?;
    if store.reports_by_id(&[report_id]).await?.is_empty() {
        return Err(ApiError::NotFound(format!("no report {report_id}")));
    }
    Ok(report_id)
}

fn report_id(id: &ID) -> Result<i32, ApiError> {
    id.parse::<i32>().map_err(|_| {
        ApiError::BadUserInput(format!(
            "'{}' is not a report id",
            id.chars().take(64).collect::<String>()
        ))
    })
}

/// Each item of `stream` once it holds one of `slots`, handed over with the item: an event
/// resolves like an HTTP query, once it holds a slot, and gives it back when its object is
/// dropped, once its fields are resolved (not when the socket has sent it: a client that reads
/// slowly never holds a slot). A subscription waiting for its next change holds none.
/// `replayed` says which items replay the past (paced, see [`ExecutionSlots`]).
fn in_slots<S: Stream>(
    stream: S,
    slots: Option<ExecutionSlots>,
    replayed: impl Fn(&S::Item) -> bool,
) -> impl Stream<Item = (S::Item, Option<EventSlot>)> {
    stream.then(move |item| {
        let slots = slots.clone();
        let replayed = replayed(&item);
        async move {
            let permit = match slots {
                Some(slots) => slots.acquire_for_event(replayed).await,
                None => None,
            };
            (item, permit)
        }
    })
}

/// A change (or why the feed failed) and the execution slot its event resolves in.
type Event = (
    Result<Arc<plangraph_persistence::ChangeRecord>, ApiError>,
    Option<EventSlot>,
);

/// The store's matching changes, each with the loader its event is resolved with and, once
/// free, an execution slot.
fn events(
    ctx: &Context<'_>,
    store: &Store,
    filter: ChangeFilter,
    after: Option<Replay>,
) -> Result<impl Stream<Item = Event> + Send + 'static + use<>, ApiError> {
    let slot = slot(ctx)?;
    let slots = ctx.data_opt::<ExecutionSlots>().cloned();
    let loader_store = store.clone();
    let changes = store
        .watch_then(
            filter,
            after.map(|replay| replay.after),
            Listening::take(ctx),
        )
        .map(move |item| {
            let record = item.map_err(ApiError::from)?;
            let loaders = record
                .attachment::<Loaders>(|| new_loaders(&loader_store))
                .ok_or(ApiError::Internal {
                    store_code: "EVENT_LOADER",
                })?;
            slot.set(loaders);
            Ok(record)
        });
    // Changes up to the head when the subscription began are a replay; the rest are live.
    let replay_until = after.map(|replay| replay.head);
    Ok(in_slots(
        changes,
        slots,
        move |item| matches!((item, replay_until), (Ok(record), Some(head)) if record.revision <= head),
    ))
}

#[GraphQLSubscription]
impl Subscription {
    /// Every change to the reports that match: a country's (ISO3, any letter case), a year's,
    /// one report's; all of them when no filter is given.
    async fn report_changed(
        &self,
        ctx: &Context<'_>,
        country_iso3: Option<String>,
        year: Option<i32>,
        report_id: Option<ID>,
        after_revision: Option<i32>,
    ) -> Result<impl Stream<Item = Result<Change>> + use<>> {
        let country = country_iso3
            .as_deref()
            .map(edit::country)
            .transpose()
            .map_err(ApiError::from)?;
        let store = store(ctx)?;
        let report_id = match &report_id {
            Some(id) => Some(known_report(store, id).await?),
            None => None,
        };
        let filter = ChangeFilter {
            report_id,
            country_iso3: country.map(|c| c.iso3.to_owned()),
            year,
            ..ChangeFilter::default()
        };
        let after = after(store, after_revision).await?;
        let guard = (quota(ctx)?, Active::new());
        let stream = events(ctx, store, filter, after)?;
        Ok(stream.map(move |(item, permit)| {
            let _held = &guard;
            item.map(|record| Change(record, permit))
                .map_err(Into::into)
        }))
    }

    /// Every change to one report's figures (its totals and sector rows), or to one sector's
    /// row when `sectorCode` is given.
    async fn figures_changed(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        sector_code: Option<String>,
        after_revision: Option<i32>,
    ) -> Result<impl Stream<Item = Result<FiguresChange>> + use<>> {
        let sector = sector_code
            .as_deref()
            .map(edit::sector)
            .transpose()
            .map_err(ApiError::from)?
            .map(|s| s.code.to_owned());
        let path_prefixes = match &sector {
            Some(code) => vec![format!("sectors.{code}.")],
            None => vec!["totals.".to_owned(), "sectors.".to_owned()],
        };
        let store = store(ctx)?;
        let filter = ChangeFilter {
            report_id: Some(known_report(store, &report_id).await?),
            path_prefixes,
            ..ChangeFilter::default()
        };
        let after = after(store, after_revision).await?;
        let guard = (quota(ctx)?, Active::new());
        let stream = events(ctx, store, filter, after)?;
        Ok(stream.map(move |(item, permit)| {
            let _held = &guard;
            item.map(|record| FiguresChange {
                record,
                _slot: permit,
                sector: sector.clone(),
            })
            .map_err(Into::into)
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use async_graphql::futures_util::{Stream, StreamExt, stream};

    use super::in_slots;
    use crate::pipeline::ExecutionSlots;

    /// True when the stream has nothing to give within 50 ms.
    async fn waits<S: Stream + Unpin>(events: &mut S) -> bool {
        tokio::time::timeout(Duration::from_millis(50), events.next())
            .await
            .is_err()
    }

    #[tokio::test]
    async fn an_event_waits_for_a_slot_and_holds_it_until_dropped() {
        let slots = ExecutionSlots::new(1, 0, 0);
        let mut events = Box::pin(in_slots(stream::iter([1, 2]), Some(slots.clone()), |_| {
            false
        }));
        let held = slots.acquire().await.unwrap();
        assert!(
            waits(&mut events).await,
            "no event resolves while every slot is taken"
        );
        drop(held);
        let (first, permit) = events.next().await.expect("the first event");
        assert_eq!((first, permit.is_some()), (1, true));
        assert!(
            waits(&mut events).await,
            "the first event still holds the only slot"
        );
        drop(permit);
        let (second, _) = events.next().await.expect("the second event");
        assert_eq!(second, 2);
    }

    #[tokio::test]
    async fn events_hold_at_most_their_share_and_queries_find_the_rest() {
        let slots = ExecutionSlots::new(4, 0, 0);
        let mut events = Box::pin(in_slots(stream::iter(0..10), Some(slots.clone()), |_| {
            false
        }));
        let first = events.next().await.expect("an event");
        let second = events.next().await.expect("an event");
        assert!(
            waits(&mut events).await,
            "a third event waits: half of four slots are the events' share"
        );
        let (a, b) = (slots.acquire().await, slots.acquire().await);
        assert!(a.is_some() && b.is_some(), "queries take the other two");
        drop((a, b));
        drop(first);
        let (third, _) = events.next().await.expect("the third event");
        assert_eq!(third, 2);
        drop(second);
    }

    /// How long 30 events take to pass through `slots`, each giving its slot back before the
    /// next is asked for.
    async fn thirty_events(slots: &ExecutionSlots, replayed: bool) -> Duration {
        let started = std::time::Instant::now();
        let passed = in_slots(stream::iter(0..30), Some(slots.clone()), move |_| replayed)
            .map(|(item, _slot)| item)
            .collect::<Vec<_>>()
            .await;
        assert_eq!(passed.len(), 30);
        started.elapsed()
    }

    #[tokio::test]
    async fn replayed_events_are_paced_and_live_ones_are_not() {
        // 100 a second, bursts of 10: 30 replayed events take about 0.2 s, 30 live ones none.
        let slots = ExecutionSlots::new(4, 0, 100);
        let live_took = thirty_events(&slots, false).await;
        let replay_took = thirty_events(&slots, true).await;
        // The limiter cannot let 20 past its burst through in less than 0.2 s.
        assert!(replay_took >= Duration::from_millis(150), "{replay_took:?}");
        assert!(live_took < replay_took, "{live_took:?} {replay_took:?}");
    }
}
