//! Organisation writes: adding one to the shared list and changing one. Both are an admin's
//! (checked before the write lock and again here).

use plangraph_domain::access::Actor;
use plangraph_domain::edit::{NewOrganization, OrganizationPatch};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};

use crate::StoreError;
use crate::entities::organization;
use crate::error::WriteError;
use crate::snapshot::Snapshot;
use crate::write::staged::{Staged, Target, authorize_organizations, check_revision, describe};

pub(crate) async fn create(
    txn: &DatabaseTransaction,
    actor: &Actor,
    new: NewOrganization,
) -> Result<Staged, WriteError> {
    authorize_organizations(actor)?;
    if let Some(fts) = &new.fts_id {
        ensure_fts_id_free(txn, fts.as_str(), None).await?;
    }
    let created = organization::ActiveModel {
        name: Set(new.name.into_string()),
        acronym: Set(new.acronym.map(|t| t.into_string())),
        org_type: Set(new.org_type.map(|t| t.into_string())),
        refugee_and_migrant_led: Set(new.refugee_and_migrant_led),
        fts_id: Set(new.fts_id.map(|t| t.into_string())),
        revision: Set(0),
        synthetic: Set(new.synthetic),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(StoreError::from)?;
    let fields = Snapshot::default().diff(&Snapshot::of_organization(&created));
    Ok(Staged {
        summary: format!("organization created: {}", created.name),
        target: Target::Organization(created),
        linked_organization: None,
        kind: "ORGANIZATION_CREATED",
        fields,
        replaced: false,
        removals: Vec::new(),
    })
}

pub(crate) async fn update(
    txn: &DatabaseTransaction,
    actor: &Actor,
    id: i32,
    expected: i64,
    patch: OrganizationPatch,
) -> Result<Staged, WriteError> {
    authorize_organizations(actor)?;
    let found = organization::Entity::find_by_id(id)
        .one(txn)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| WriteError::NotFound {
            what: "organization",
            key: id.to_string(),
        })?;
    check_revision(expected, found.revision)?;
    if let Some(Some(fts)) = &patch.fts_id {
        ensure_fts_id_free(txn, fts.as_str(), Some(id)).await?;
    }
    let before = Snapshot::of_organization(&found);
    let mut active: organization::ActiveModel = found.into();
    if let Some(name) = patch.name {
        active.name = Set(name.into_string());
    }
    if let Some(acronym) = patch.acronym {
        active.acronym = Set(acronym.map(|t| t.into_string()));
    }
    if let Some(org_type) = patch.org_type {
        active.org_type = Set(org_type.map(|t| t.into_string()));
    }
    if let Some(led) = patch.refugee_and_migrant_led {
        active.refugee_and_migrant_led = Set(led);
    }
    if let Some(fts) = patch.fts_id {
        active.fts_id = Set(fts.map(|t| t.into_string()));
    }
    let updated = active.update(txn).await.map_err(StoreError::from)?;
    let fields = before.diff(&Snapshot::of_organization(&updated));
    Ok(Staged {
        summary: format!("organization updated: {}", describe(&fields)),
        target: Target::Organization(updated),
        linked_organization: None,
        kind: "ORGANIZATION_UPDATED",
        fields,
        replaced: false,
        removals: Vec::new(),
    })
}

async fn ensure_fts_id_free(
    txn: &DatabaseTransaction,
    fts_id: &str,
    except: Option<i32>,
) -> Result<(), WriteError> {
    // FTS ids are compared whatever their letter case: "FTS-1" and "fts-1" are one id.
    let mut query = organization::Entity::find().filter(
        Expr::expr(Func::lower(Expr::col(organization::Column::FtsId))).eq(fts_id.to_lowercase()),
    );
    if let Some(id) = except {
        query = query.filter(organization::Column::Id.ne(id));
    }
    match query.one(txn).await.map_err(StoreError::from)? {
        Some(other) => Err(WriteError::Duplicate(format!(
            "the FTS id {fts_id} already belongs to organisation {}",
            other.id
        ))),
        None => Ok(()),
    }
}
