//! The store's version: the revision of the last committed write and the random epoch written
//! with it. A leaf module: the feed, the version gate and the store all read it from here.

use sea_orm::{ConnectionTrait, EntityTrait};

use crate::StoreError;
use crate::entities::store_revision;

/// A committed state of the store: its revision and the random epoch written with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Version {
    pub revision: i64,
    pub epoch: i64,
}

/// The revision of the last committed write (0 for a store nobody wrote to yet).
pub(crate) async fn head_revision(db: &impl ConnectionTrait) -> Result<i64, StoreError> {
    Ok(head_version(db).await?.revision)
}

/// The revision and its epoch, in one statement.
pub(crate) async fn head_version(db: &impl ConnectionTrait) -> Result<Version, StoreError> {
    Ok(store_revision::Entity::find_by_id(1)
        .one(db)
        .await?
        .map_or(Version::default(), |r| Version {
            revision: r.value,
            epoch: r.epoch,
        }))
}
