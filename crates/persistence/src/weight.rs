//! What a loaded row costs in memory, so caches above the store can be bounded in bytes rather
//! than in keys (a key of a listing can hold a hundred rows, a key of a country one).
//!
//! A row weighs its own size plus the bytes of its text columns, read through sea-orm's column
//! list, so a new column is weighed without anyone remembering to. It is an estimate (allocator
//! overhead and spare capacity are not counted), close enough to keep a cache's real footprint
//! within a small factor of its bound.

use sea_orm::{EntityTrait, Iterable, ModelTrait, Value};

use crate::entities::{
    country, footnote, narrative_section, organization, partner_count, plan, platform, report,
    report_organization, report_totals, sector, sector_figures, share, source_link,
};
use crate::lookups::SectionWithParagraphs;

/// Bytes a value holds, its own and on the heap.
pub trait Weigh {
    fn weigh(&self) -> usize;
}

/// A sea-orm row: its size plus its text and byte columns.
fn row<M>(model: &M) -> usize
where
    M: ModelTrait,
{
    let heap: usize = <<M::Entity as EntityTrait>::Column as Iterable>::iter()
        .map(|column| match model.get(column) {
            Value::String(Some(text)) => text.len(),
            Value::Bytes(Some(bytes)) => bytes.len(),
            _ => 0,
        })
        .sum();
    std::mem::size_of::<M>() + heap
}

macro_rules! weigh_rows {
    ($($model:ty),* $(,)?) => {
        $(impl Weigh for $model {
            fn weigh(&self) -> usize {
                row(self)
            }
        })*
    };
}

weigh_rows!(
    country::Model,
    footnote::Model,
    narrative_section::Model,
    organization::Model,
    partner_count::Model,
    plan::Model,
    platform::Model,
    report::Model,
    report_organization::Model,
    report_totals::Model,
    sector::Model,
    sector_figures::Model,
    share::Model,
    source_link::Model,
);

impl<T: Weigh> Weigh for Vec<T> {
    fn weigh(&self) -> usize {
        std::mem::size_of::<Self>() + self.iter().map(Weigh::weigh).sum::<usize>()
    }
}

/// A shared row counts whole in every place that holds it: what it frees when dropped depends
/// on the other holders, so the cache counts the most it could.
impl<T: Weigh> Weigh for std::sync::Arc<T> {
    fn weigh(&self) -> usize {
        std::mem::size_of::<Self>() + 2 * std::mem::size_of::<usize>() + T::weigh(self)
    }
}

impl<A: Weigh, B: Weigh> Weigh for (A, B) {
    fn weigh(&self) -> usize {
        self.0.weigh() + self.1.weigh()
    }
}

/// A key kept for its presence alone (a report's child tables read, see `report_children`).
impl Weigh for () {
    fn weigh(&self) -> usize {
        0
    }
}

impl Weigh for String {
    fn weigh(&self) -> usize {
        std::mem::size_of::<Self>() + self.len()
    }
}

impl Weigh for u64 {
    fn weigh(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

impl Weigh for SectionWithParagraphs {
    fn weigh(&self) -> usize {
        self.section.weigh() + self.paragraphs.weigh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_weighs_its_size_and_its_text() {
        let short = country::Model {
            id: 1,
            iso3: "PER".to_owned(),
            name: "Peru".to_owned(),
            platform_id: None,
            sovereign: true,
        };
        let long = country::Model {
            name: "x".repeat(1_000),
            ..short.clone()
        };
        assert_eq!(short.weigh(), std::mem::size_of::<country::Model>() + 7);
        assert_eq!(long.weigh() - short.weigh(), 996);
        let both = vec![short.clone(), long];
        assert!(both.weigh() > short.weigh() + 1_000);
    }
}
