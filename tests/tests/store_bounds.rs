//! What one caller can make the store read is bounded: replays share one budget across the
//! process, a call for many owners' histories has one byte budget, and a client's text in a
//! filter matches as typed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_graphql::futures_util::StreamExt;
use plangraph_domain::access::Actor;
use plangraph_domain::edit::{NewOrganization, OrganizationPatch, Text};
use plangraph_persistence::entities::change;
use plangraph_persistence::{
    ChangeFilter, FieldChange, HistoryOwner, OrganizationQuery, REPLAY_BYTES, Store, WriteRequest,
    replay_stats,
};
use sea_orm::{ConnectionTrait, EntityTrait, Set};

use crate::on_both_databases;
use crate::support::Backend;
use crate::write_safety::peru_at;

fn admin() -> Actor {
    Actor::local("store bounds test")
}

/// Writes `count` changes of about `bytes` bytes each straight into the history of the Peru
/// report, after the head, and moves the head to the last of them.
async fn seed_history(store: &Store, count: i64, bytes: usize) -> i64 {
    let head = store.head_revision().await.unwrap();
    let fields = serde_json::to_string(&vec![FieldChange {
        path: "sections.RESPONSE.paragraphs.1".to_owned(),
        before: None,
        after: Some("x".repeat(bytes)),
    }])
    .unwrap();
    let at = sea_orm::prelude::ChronoDateTimeUtc::from_timestamp(1_767_225_600, 0).unwrap();
    for batch in 0..(count + 99) / 100 {
        let rows = (batch * 100..((batch + 1) * 100).min(count)).map(|i| change::ActiveModel {
            revision: Set(head + 1 + i),
            report_id: Set(Some(1)),
            organization_id: Set(None),
            kind: Set("SECTION".to_owned()),
            summary: Set(format!("seeded change {i}")),
            token_id: Set(None),
            actor_label: Set("seed".to_owned()),
            at: Set(at),
            fields_bytes: Set(i64::try_from(fields.len()).unwrap()),
            fields: Set(fields.clone()),
        });
        change::Entity::insert_many(rows)
            .exec_without_returning(store.connection())
            .await
            .unwrap();
    }
    let last = head + count;
    store
        .connection()
        .execute_unprepared(&format!(
            "UPDATE store_revision SET value = {last} WHERE id = 1"
        ))
        .await
        .unwrap();
    last
}

/// The finding: 200 sockets replaying a store of 6,548 changes from revision 0 took the
/// process from 35 MB to 1 GB, and more emptied the pool. 200 replays from revision 0 of a
/// store of 3,000 changes, read slowly, hold at most the replay budget in memory between them
/// (the crowd waits its turn), each gets its changes in order, and an unrelated read answers
/// promptly meanwhile.
async fn a_crowd_of_replays_stays_within_the_replay_budget(backend: Backend) {
    let (store, _url, _dir) = peru_at(backend).await;
    let first = store.head_revision().await.unwrap() + 1;
    seed_history(&store, 3_000, 10_000).await;
    const REPLAYS: usize = 200;
    const TAKEN: usize = 200;

    let done = Arc::new(AtomicUsize::new(0));
    let mut replays = Vec::with_capacity(REPLAYS);
    for _ in 0..REPLAYS {
        let store = store.clone();
        let done = done.clone();
        replays.push(tokio::spawn(async move {
            let mut changes = Box::pin(store.watch(ChangeFilter::default(), Some(0)));
            let mut revisions = Vec::with_capacity(TAKEN);
            while revisions.len() < TAKEN {
                let change = changes.next().await.expect("a change").expect("no error");
                revisions.push(change.revision);
                // A slow reader.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            done.fetch_add(1, Ordering::SeqCst);
            revisions
        }));
    }

    let mut most_in_flight = 0;
    let mut most_waiting = 0;
    let mut slowest_read = Duration::ZERO;
    while done.load(Ordering::SeqCst) < REPLAYS {
        let stats = replay_stats();
        most_in_flight = most_in_flight.max(stats.bytes_in_flight);
        most_waiting = most_waiting.max(stats.waiting);
        let started = Instant::now();
        let countries = store.countries().await.expect("an unrelated read");
        assert_eq!(countries.len(), 1);
        slowest_read = slowest_read.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for replay in replays {
        let revisions = replay.await.unwrap();
        // The bundled import first, then the seeded changes, in order.
        assert_eq!(revisions[0], first - 1);
        assert!(revisions.windows(2).all(|w| w[1] == w[0] + 1));
    }
    let stats = replay_stats();
    assert!(
        most_in_flight <= REPLAY_BYTES && stats.peak_bytes_in_flight <= REPLAY_BYTES,
        "{most_in_flight} / {stats:?}"
    );
    assert!(most_waiting > 0, "the crowd never waited: {stats:?}");
    assert!(
        slowest_read < Duration::from_secs(1),
        "an unrelated read took {slowest_read:?}"
    );
}
on_both_databases!(
    a_crowd_of_replays_stays_within_the_replay_budget,
    multi_thread
);

fn organization(name: &str) -> WriteRequest<'static> {
    WriteRequest::CreateOrganization(NewOrganization {
        name: Text::parse("name", name).unwrap(),
        acronym: None,
        org_type: None,
        refugee_and_migrant_led: false,
        fts_id: None,
        synthetic: false,
    })
}

fn recorded_bytes(record: &plangraph_persistence::ChangeRecord) -> i64 {
    i64::try_from(serde_json::to_string(&record.fields).unwrap().len()).unwrap()
}

/// A call for many owners' history pages spends one byte budget on them in the order asked:
/// the first owners' pages whole, the next one cut short, the rest cut empty; the bytes it
/// says it used are what it read and never more than the budget.
async fn history_pages_share_one_byte_budget_per_call(backend: Backend) {
    let (store, _url, _dir) = peru_at(backend).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let created = store
            .write(&admin(), organization(&format!("Organisation {n}")))
            .await
            .unwrap();
        let id = created.organization_id.unwrap();
        let mut revision = created.revision;
        for round in 0..3 {
            let patch = OrganizationPatch {
                name: Some(Text::parse("name", &format!("{round} {}", "n".repeat(5_000))).unwrap()),
                ..OrganizationPatch::default()
            };
            revision = store
                .write(
                    &admin(),
                    WriteRequest::UpdateOrganization {
                        organization_id: id,
                        expected_revision: revision,
                        patch,
                    },
                )
                .await
                .unwrap()
                .revision;
        }
        ids.push(id);
    }
    let asked = [ids[2], ids[0], ids[1]];
    let (whole, used) = store
        .history_pages_within(HistoryOwner::Organization, &asked, None, 10, i64::MAX)
        .await
        .unwrap();
    assert_eq!(whole.len(), 3);
    assert!(
        whole
            .iter()
            .all(|(_, changes, cut)| changes.len() == 4 && !cut)
    );
    let bytes = |id: i32, n: usize| -> i64 {
        let (_, changes, _) = whole.iter().find(|(owner, _, _)| *owner == id).unwrap();
        changes.iter().take(n).map(recorded_bytes).sum()
    };
    assert_eq!(used, bytes(ids[0], 4) + bytes(ids[1], 4) + bytes(ids[2], 4));

    let budget = bytes(ids[2], 4) + bytes(ids[0], 2) + 10;
    let (pages, used) = store
        .history_pages_within(HistoryOwner::Organization, &asked, None, 10, budget)
        .await
        .unwrap();
    let page = |id: i32| pages.iter().find(|(owner, _, _)| *owner == id).unwrap();
    assert_eq!((page(ids[2]).1.len(), page(ids[2]).2), (4, false));
    assert_eq!((page(ids[0]).1.len(), page(ids[0]).2), (2, true));
    assert_eq!((page(ids[1]).1.len(), page(ids[1]).2), (0, true));
    assert_eq!(used, bytes(ids[2], 4) + bytes(ids[0], 2));
    assert!(used <= budget);
    // The newest first, as without a budget.
    let newest: Vec<i64> = page(ids[0]).1.iter().map(|c| c.revision).collect();
    let (_, all, _) = whole.iter().find(|(owner, _, _)| *owner == ids[0]).unwrap();
    assert_eq!(
        newest,
        all.iter().take(2).map(|c| c.revision).collect::<Vec<_>>()
    );
}
on_both_databases!(history_pages_share_one_byte_budget_per_call);

/// `%` and `_` in a name filter are the characters they are, not wildcards (nor is the
/// escape character).
async fn name_filters_match_wildcards_as_typed(backend: Backend) {
    let (store, _url, _dir) = peru_at(backend).await;
    for name in [
        "Alpha_Beta",
        "AlphaxBeta",
        "100% Local",
        "1000 Local",
        "Back\\slash",
        "Backslash",
    ] {
        store.write(&admin(), organization(name)).await.unwrap();
    }
    let names = |text: &str| {
        let store = store.clone();
        let query = OrganizationQuery {
            name_contains: Some(text.to_owned()),
            refugee_and_migrant_led: None,
        };
        async move {
            let page = store.organizations_page(&query, None, 10).await.unwrap();
            let count = store.organizations_count(&query).await.unwrap();
            assert_eq!(count, page.len() as u64);
            page.into_iter().map(|o| o.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(names("a_b").await, vec!["Alpha_Beta"]);
    assert_eq!(names("100%").await, vec!["100% Local"]);
    assert_eq!(names("k\\s").await, vec!["Back\\slash"]);
    assert_eq!(names("alpha").await, vec!["Alpha_Beta", "AlphaxBeta"]);
}
on_both_databases!(name_filters_match_wildcards_as_typed);
