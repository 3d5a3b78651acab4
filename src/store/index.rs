//! The family index: every stored series of a name across groups, in exposition order, with each family's shared metadata.

use crate::model::metric::{self, MetricType, Series};
use crate::store::selfmetrics::own_family;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::*;

/// An index entry: a series, the id of the group holding it, and a prefix of its sort key
/// that settles most comparisons without reading the series text (a cache miss each).
#[derive(Clone, Debug)]
pub(super) struct Slot {
    pub(super) prefix: [u64; 2],
    pub(super) series: Series,
    pub(super) group: u64,
}

impl Slot {
    pub(super) fn new(series: &Series, group: u64) -> Slot {
        Slot {
            prefix: metric::sort_prefix(series.block()),
            series: series.clone(),
            group,
        }
    }
}

impl PartialEq for Slot {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Slot {}
impl Ord for Slot {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.series.cmp(&other.series))
    }
}
impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// All groups' metrics of one name, merged as a scrape shows them.
pub(super) struct FamilyIndex {
    pub(super) name: Arc<str>,
    pub(super) mtype: MetricType,
    /// Every series of this name in the store, in exposition order, with the id of the
    /// group holding it. Ordered by label set, it is also the uniqueness check.
    pub(super) series: BTreeSet<Slot>,
    /// Distinct HELP and type pairs, with the number of groups using each.
    pub(super) metas: Vec<(Arc<FamilyMeta>, usize)>,
    /// HELP of the most recent push, shown while some group still has it.
    pub(super) latest_help: Option<Arc<str>>,
}

impl FamilyIndex {
    /// The HELP a scrape shows: the gateway's own for its reserved names, else the newest
    /// pushed text still in use, else the smallest text in use. (The Go gateway shows
    /// whichever group its map iteration meets first, which may change between scrapes.)
    pub(super) fn help(&self) -> Option<Arc<str>> {
        if let Some(own) = own_family(&self.name) {
            return Some(own.help.into());
        }
        let in_use = |want: &Option<Arc<str>>| self.metas.iter().any(|(m, _)| m.help == *want);
        if self.latest_help.is_some() && in_use(&self.latest_help) {
            return self.latest_help.clone();
        }
        self.metas.iter().filter_map(|(m, _)| m.help.clone()).min()
    }

    /// The shared meta for this HELP and type, counted once more.
    pub(super) fn acquire(&mut self, help: Option<Arc<str>>, mtype: MetricType) -> Arc<FamilyMeta> {
        if let Some((m, n)) = self
            .metas
            .iter_mut()
            .find(|(m, _)| m.help == help && m.mtype == mtype)
        {
            *n += 1;
            return m.clone();
        }
        let meta = Arc::new(FamilyMeta {
            name: self.name.clone(),
            help,
            mtype,
        });
        self.metas.push((meta.clone(), 1));
        meta
    }

    pub(super) fn release(&mut self, meta: &Arc<FamilyMeta>) {
        if let Some(slot) = self.metas.iter_mut().find(|(m, _)| Arc::ptr_eq(m, meta)) {
            slot.1 -= 1;
        }
        self.metas.retain(|(_, n)| *n > 0);
    }
}

#[derive(Default)]
pub(super) struct Index {
    pub(super) families: BTreeMap<Arc<str>, FamilyIndex>,
    pub(super) next_group_id: u64,
    /// Counts changes to the store (see `Store::seq`).
    pub(super) seq: u64,
    /// Set by `close`: every later change is refused, so that what the final write of
    /// the persistence file holds is all that was ever acknowledged.
    pub(super) closed: bool,
}

/// Takes a family of a group out of the index, except the series that `rewritten` (the
/// same family's new series, about to be indexed in their place) brings back.
pub(super) fn unindex(index: &mut Index, fam: &StoredFamily, rewritten: &[Series]) {
    let Some(fi) = index.families.get_mut(fam.name()) else {
        return;
    };
    let mut back: Vec<&Series> = rewritten.iter().collect();
    back.sort_unstable();
    for m in fam.metrics.iter() {
        if back.binary_search(&m).is_err() {
            fi.series.remove(&Slot::new(m, 0));
        }
    }
    fi.release(&fam.meta);
    if fi.series.is_empty() {
        index.families.remove(fam.name());
    }
}
