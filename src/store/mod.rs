//! The group store: a lock-striped map of groups, plus the cross-group family index that
//! checks and applies a push in time proportional to the push, not to the store.

mod check;
mod group;
mod index;
pub mod selfmetrics;

use check::*;
pub use group::*;
use index::*;

use crate::model::grouping::GroupingKey;
use crate::model::metric::{FamilyView, ParsedFamily, Series, Value};
use crate::model::names;
use std::borrow::{Borrow, Cow};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

const STRIPES: usize = 64;

/// Finds groups in a stripe by their key, which is stored once, inside the group.
#[derive(Debug, Clone)]
struct Entry(Arc<Group>);

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}
impl Eq for Entry {}
impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key.hash(state);
    }
}
impl Borrow<GroupingKey> for Entry {
    fn borrow(&self) -> &GroupingKey {
        &self.0.key
    }
}

/// One change to the store, as the persistence journal records it: what the change
/// wrote, not the whole group, so that a record costs what the change costs.
pub enum Change {
    /// The group became exactly this (a PUT that dropped families, or a restore).
    Put(Arc<Group>),
    /// These families of the group (by name, sorted) were written, replacing the
    /// families of the same names; its other families are as they were.
    Patch(Arc<Group>, Vec<Arc<str>>),
    /// The group was removed.
    Remove(GroupingKey),
}

/// Told of every change, with its sequence number, under the store's lock (so in order):
/// it must only queue the change, never wait.
pub type Observer = Box<dyn Fn(u64, Change) + Send + Sync>;

type Stripe = HashSet<Entry>;

pub struct Store {
    stripes: Box<[RwLock<Stripe>]>,
    index: Mutex<Index>,
    /// `--push.enable-utf8-names`: pushed names are valid if UTF-8, stored as `names` says.
    utf8_names: bool,
    observer: std::sync::OnceLock<Observer>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Store {
        Store {
            stripes: (0..STRIPES).map(|_| RwLock::new(HashSet::new())).collect(),
            index: Mutex::new(Index::default()),
            utf8_names: false,
            observer: std::sync::OnceLock::new(),
        }
    }

    /// Sets the one observer of changes (persistence); later calls are ignored.
    pub fn observe(&self, observer: Observer) {
        let _ = self.observer.set(observer);
    }

    /// The number of changes so far: a change made before this call has a number no
    /// larger than what it returns.
    pub fn seq(&self) -> u64 {
        self.lock_index().seq
    }

    /// Continues numbering changes after `seq` (restored from a persistence file).
    pub fn set_seq(&self, seq: u64) {
        let mut index = self.lock_index();
        index.seq = index.seq.max(seq);
    }

    /// Every group as of one instant, with the number of the last change it includes;
    /// `at_cut` runs at that instant, under the lock (persistence rotates its journal
    /// there). Costs a pointer copy per group: the groups are immutable.
    pub fn cut(&self, at_cut: impl FnOnce(u64)) -> (u64, Vec<Arc<Group>>) {
        let index = self.lock_index();
        let groups = self.groups();
        at_cut(index.seq);
        (index.seq, groups)
    }

    /// Numbers a change and tells the observer; `change` is only built if there is one.
    fn changed(&self, index: &mut Index, change: impl FnOnce() -> Change) {
        index.seq += 1;
        if let Some(o) = self.observer.get() {
            o(index.seq, change());
        }
    }

    /// Sets group `key` to exactly `families` (each with its push time, the two timestamp
    /// gauges included), as a persistence file or journal recorded it; with `whole` false,
    /// writes only those families into the group and keeps its others (a journal's
    /// `Change::Patch`). Refused, changing nothing, if it is inconsistent with itself or
    /// the rest of the store.
    pub fn restore(
        &self,
        key: &GroupingKey,
        families: Vec<(ParsedFamily<'_>, SystemTime)>,
        whole: bool,
    ) -> Result<(), PushError> {
        let mut gauges = Vec::new();
        let mut rest = Vec::new();
        let mut times = HashMap::new();
        for (f, at) in families {
            let stored = if self.utf8_names {
                names::store_form(&f.name, true)
            } else {
                Cow::Borrowed(&*f.name)
            };
            times.insert(stored.into_owned(), at);
            if f.name == PUSH_TIME {
                gauges.push(f);
            } else {
                rest.push(f);
            }
        }
        // The failure family as recorded: a pushed one (a Go quirk: it replaces the
        // gateway's) may hold other series than the gateway's one gauge.
        let (mut writes, pushed_failure, mut errors) = prepare(key, rest, self.utf8_names);
        if let Some((w, e)) = pushed_failure {
            writes.push(w);
            errors.extend(e);
        }
        for g in gauges {
            let value = match g.metrics.first().map(|m| &m.value) {
                Some(Value::Gauge(v) | Value::Untyped(v) | Value::Counter(v)) => *v,
                _ => 0.0,
            };
            let mut w = push_time(key, value);
            w.at = times.get(&*g.name).copied();
            writes.push(w);
        }
        for w in &mut writes {
            if w.at.is_none() {
                w.at = times.get(&*w.name).copied();
            }
        }
        let mut index = self.lock_index();
        let existing = self.group(key);
        let removed: Vec<StoredFamily> = match &existing {
            Some(g) if whole => g.families.to_vec(),
            Some(_) => removed_families(existing.as_deref(), &writes, Mode::Add),
            None => Vec::new(),
        };
        errors.extend(check(
            &index,
            existing.as_deref(),
            &removed,
            &writes,
            Names(self.utf8_names),
        ));
        if !errors.is_empty() {
            return Err(PushError::Inconsistent(errors));
        }
        let now = SystemTime::now();
        self.apply(&mut index, key, existing, &removed, writes, now);
        Ok(())
    }

    /// A store that takes UTF-8 metric and label names (see `names`).
    pub fn with_utf8_names(mut self, on: bool) -> Store {
        self.utf8_names = on;
        self
    }

    fn stripe(&self, key: &GroupingKey) -> &RwLock<Stripe> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        &self.stripes[h.finish() as usize % STRIPES]
    }

    fn lock_index(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index half-updated in a way
        // later requests could not use, so keep serving rather than poisoning every request.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn group(&self, key: &GroupingKey) -> Option<Arc<Group>> {
        let stripe = self.stripe(key).read().unwrap_or_else(|e| e.into_inner());
        stripe.get(key).map(|e| e.0.clone())
    }

    /// Every group, in the Go gateway's order of grouping-key strings.
    pub fn groups(&self) -> Vec<Arc<Group>> {
        let mut all: Vec<Arc<Group>> = Vec::new();
        for s in self.stripes.iter() {
            let stripe = s.read().unwrap_or_else(|e| e.into_inner());
            all.extend(stripe.iter().map(|e| e.0.clone()));
        }
        all.sort_by_cached_key(|g| g.key.id());
        all
    }

    fn publish(&self, group: Group) -> Arc<Group> {
        let mut stripe = self
            .stripe(&group.key)
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let group = Arc::new(group);
        stripe.replace(Entry(group.clone()));
        group
    }

    fn unpublish(&self, key: &GroupingKey) -> Option<Arc<Group>> {
        let mut stripe = self.stripe(key).write().unwrap_or_else(|e| e.into_inner());
        stripe.take(key).map(|e| e.0)
    }

    /// Applies a parsed push to the group `key` at time `now`, or refuses it with the
    /// reason and records the failure time, exactly where the Go gateway would.
    pub fn push(
        &self,
        key: &GroupingKey,
        families: Vec<ParsedFamily<'_>>,
        mode: Mode,
        now: SystemTime,
    ) -> Result<(), PushError> {
        if self.closed() {
            return Err(PushError::Closed);
        }
        if families
            .iter()
            .any(|f| f.metrics.iter().any(|m| m.timestamp_ms.is_some()))
        {
            self.record_failure(key, now);
            return Err(PushError::Timestamps);
        }
        // Everything that depends on the push alone happens before taking the lock.
        let (mut writes, pushed_failure, mut errors) = prepare(key, families, self.utf8_names);
        writes.push(push_time(key, selfmetrics::unix_seconds(now)));
        let zero_failure = push_failure_time(key, 0.0);
        let mut index = self.lock_index();
        if index.closed {
            return Err(PushError::Closed);
        }
        let existing = self.group(key);
        // The gateway's zero failure gauge only goes into a group that has none; a pushed
        // failure family replaces an existing one (a Go gateway quirk kept for parity).
        let has_failure = existing
            .as_ref()
            .is_some_and(|g| g.family(PUSH_FAILURE_TIME).is_some());
        match (has_failure, pushed_failure) {
            (true, Some((w, failure_errors))) => {
                writes.push(w);
                errors.extend(failure_errors);
            }
            (true, None) => {}
            (false, _) => writes.push(zero_failure),
        }
        let removed = removed_families(existing.as_deref(), &writes, mode);
        // Like the Go gateway, report every problem, not just the first kind found.
        let names = Names(self.utf8_names);
        errors.extend(check(&index, existing.as_deref(), &removed, &writes, names));
        if !errors.is_empty() {
            self.record_failure_locked(&mut index, key, existing, now);
            return Err(PushError::Inconsistent(errors));
        }
        self.apply(&mut index, key, existing, &removed, writes, now);
        Ok(())
    }

    /// Refuses a push for reasons found before the store saw it (label values that are not
    /// UTF-8 in a protobuf body), recording the failure as the Go gateway's check would.
    pub fn refuse(&self, key: &GroupingKey, errors: Vec<String>, now: SystemTime) -> PushError {
        if self.closed() {
            return PushError::Closed;
        }
        self.record_failure(key, now);
        PushError::Inconsistent(errors)
    }

    /// Removes the group `key` (nothing if there is none).
    pub fn delete(&self, key: &GroupingKey) -> Result<(), PushError> {
        let mut index = self.lock_index();
        if index.closed {
            return Err(PushError::Closed);
        }
        if let Some(g) = self.unpublish(key) {
            for fam in g.families.iter() {
                unindex(&mut index, fam, &[]);
            }
            self.changed(&mut index, || Change::Remove(key.clone()));
        }
        Ok(())
    }

    /// Removes every group.
    pub fn wipe(&self) -> Result<(), PushError> {
        for g in self.groups() {
            self.delete(&g.key)?;
        }
        Ok(())
    }

    /// Refuses every later change (`PushError::Closed`). Changes made before are whole.
    pub fn close(&self) {
        self.lock_index().closed = true;
    }

    /// Whether `close` was called (read under the lock: a change that sees `false` here
    /// and then takes the lock is checked again there).
    fn closed(&self) -> bool {
        self.lock_index().closed
    }

    fn record_failure(&self, key: &GroupingKey, now: SystemTime) {
        let mut index = self.lock_index();
        let existing = self.group(key);
        self.record_failure_locked(&mut index, key, existing, now);
    }

    /// Sets the failure time of the group, creating the group if needed, unless that would
    /// itself make the store inconsistent (the Go gateway would store it anyway and then
    /// fail every scrape and push until the group is deleted).
    fn record_failure_locked(
        &self,
        index: &mut Index,
        key: &GroupingKey,
        existing: Option<Arc<Group>>,
        now: SystemTime,
    ) {
        if index.closed {
            return;
        }
        let mut writes = vec![push_failure_time(key, selfmetrics::unix_seconds(now))];
        if existing
            .as_ref()
            .is_none_or(|g| g.family(PUSH_TIME).is_none())
        {
            writes.push(push_time(key, 0.0));
        }
        let removed = removed_families(existing.as_deref(), &writes, Mode::Add);
        if check(
            index,
            existing.as_deref(),
            &removed,
            &writes,
            Names(self.utf8_names),
        )
        .is_empty()
        {
            self.apply(index, key, existing, &removed, writes, now);
        }
    }

    fn apply(
        &self,
        index: &mut Index,
        key: &GroupingKey,
        existing: Option<Arc<Group>>,
        removed: &[StoredFamily],
        writes: Vec<Write>,
        now: SystemTime,
    ) {
        let by_name: HashMap<&str, &[Series]> = writes
            .iter()
            .map(|w| (&*w.name, w.metrics.as_slice()))
            .collect();
        for fam in removed {
            unindex(index, fam, by_name.get(fam.name()).copied().unwrap_or(&[]));
        }
        let removed_names: HashSet<&str> = removed.iter().map(StoredFamily::name).collect();
        // For the journal's record (only built when persistence observes the store).
        let written: Vec<Arc<str>> = writes.iter().map(|w| w.name.clone()).collect();
        let (id, mut families) = match existing {
            Some(g) => {
                let kept = g
                    .families
                    .iter()
                    .filter(|f| !removed_names.contains(f.name()));
                (g.id, kept.cloned().collect::<Vec<_>>())
            }
            None => {
                index.next_group_id += 1;
                (index.next_group_id, Vec::new())
            }
        };
        for w in writes {
            let fi = index
                .families
                .entry(w.name.clone())
                .or_insert_with(|| FamilyIndex {
                    name: w.name.clone(),
                    mtype: w.mtype,
                    series: BTreeSet::new(),
                    metas: Vec::new(),
                    latest_help: None,
                });
            fi.mtype = w.mtype;
            fi.latest_help = w.help.clone();
            let meta = fi.acquire(w.help, w.mtype);
            for m in &w.metrics {
                // One descent: a re-pushed series takes its predecessor's place.
                fi.series.replace(Slot::new(m, id));
            }
            families.push(StoredFamily {
                meta,
                metrics: SeriesList::from(w.metrics),
                pushed_at: nanos(w.at.unwrap_or(now)),
            });
        }
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let group = self.publish(Group {
            key: key.clone(),
            id,
            families: families.into(),
        });
        // A write that only replaced families of the names it wrote is recorded as those
        // families: a one-sample POST into a big group costs the journal one sample.
        self.changed(index, || {
            let mut names = written;
            names.sort();
            names.dedup();
            if removed_names
                .iter()
                .all(|n| names.binary_search_by(|w| (**w).cmp(n)).is_ok())
            {
                Change::Patch(group, names)
            } else {
                Change::Put(group)
            }
        });
    }

    /// Every pushed family merged across groups, sorted by name, with its series in
    /// exposition order: what a scrape shows. Collected under the index lock, so a scrape
    /// sees each push whole or not at all; the series are shared, not copied or rendered.
    pub fn scrape(&self) -> Vec<FamilyView> {
        let index = self.lock_index();
        index
            .families
            .values()
            .map(|fi| FamilyView {
                name: fi.name.clone(),
                help: fi.help(),
                mtype: fi.mtype,
                series: fi.series.iter().map(|s| s.series.clone()).collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::expose;
    use crate::wire::parse::parse_text;
    use std::time::{Duration, UNIX_EPOCH};

    fn key(rest: &str) -> GroupingKey {
        GroupingKey::parse(b"j", false, rest.as_bytes(), false).unwrap()
    }

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    fn push(store: &Store, rest: &str, body: &str, mode: Mode) -> Result<(), PushError> {
        store.push(
            &key(rest),
            parse_text(body.as_bytes()).unwrap(),
            mode,
            t(100),
        )
    }

    /// The pushed families as text, without the two timestamp families.
    fn text(store: &Store) -> String {
        let pieces = expose::text(Vec::new(), store.scrape(), None);
        let all: Vec<u8> = pieces.iter().flat_map(|p| p.lines().bytes()).collect();
        let all = String::from_utf8(all).unwrap();
        let mut out = String::new();
        let mut skip = false;
        for line in all.lines() {
            if line.starts_with("# HELP") || line.starts_with("# TYPE") {
                let name = line.split(' ').nth(2).unwrap();
                skip = name == PUSH_TIME || name == PUSH_FAILURE_TIME;
            }
            if !skip {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    #[test]
    fn a_whole_restore_drops_the_families_a_patch_keeps() {
        let s = Store::new();
        let fams = |body: &'static str| -> Vec<(ParsedFamily<'static>, SystemTime)> {
            parse_text(body.as_bytes())
                .unwrap()
                .into_iter()
                .map(|f| (f, t(5)))
                .collect()
        };
        let g = "{instance=\"\",job=\"j\"}";
        s.restore(&key(""), fams("a 1\nb 1\n"), true).unwrap();
        s.restore(&key(""), fams("a 2\n"), false).unwrap();
        assert_eq!(
            text(&s),
            format!("# TYPE a untyped\na{g} 2\n# TYPE b untyped\nb{g} 1\n")
        );
        s.restore(&key(""), fams("a 3\n"), true).unwrap();
        assert_eq!(text(&s), format!("# TYPE a untyped\na{g} 3\n"));
    }

    #[test]
    fn a_series_another_group_holds_is_refused_even_when_the_pushing_group_exists() {
        let s = Store::new();
        // Group {job="j"} holds m{instance="i",job="j"}, the series group
        // {instance="i",job="j"} would make of `m`.
        push(&s, "", "m{instance=\"i\"} 1\n", Mode::Replace).unwrap();
        push(&s, "/instance/i", "other 1\n", Mode::Replace).unwrap();
        let err = push(&s, "/instance/i", "m 2\n", Mode::Add).unwrap_err();
        assert!(err.to_string().contains("collected before"), "{err}");
    }

    #[test]
    fn a_summary_collides_with_another_groups_count_but_not_with_its_own_which_its_put_removes() {
        let summary = "# TYPE x summary\nx_sum 1\nx_count 1\n";
        let s = Store::new();
        push(&s, "", "x_count 1\n", Mode::Replace).unwrap();
        push(&s, "", summary, Mode::Replace).unwrap();
        let s = Store::new();
        push(&s, "", "x_count 1\n", Mode::Replace).unwrap();
        let err = push(&s, "/instance/i", summary, Mode::Replace).unwrap_err();
        assert!(err.to_string().contains("collides"), "{err}");
    }

    #[test]
    fn an_error_list_at_its_bound_is_whole_and_past_it_says_how_many_more() {
        let e = PushError::Inconsistent(vec!["a".into(), "b".into(), "c".into()]);
        let head = "pushed metrics are invalid or inconsistent with existing metrics: 3 error(s) occurred:";
        assert_eq!(e.message(3), format!("{head}\n* a\n* b\n* c"));
        assert_eq!(
            e.message(2),
            format!("{head}\n* a\n* b\n* ... and 1 more (--push.max-error-lines)")
        );
    }

    #[test]
    fn groups_that_push_the_same_help_and_type_share_one_meta() {
        let s = Store::new();
        let body = "# HELP m Some help.\n# TYPE m gauge\nm 1\n";
        push(&s, "/instance/a", body, Mode::Replace).unwrap();
        push(&s, "/instance/b", body, Mode::Replace).unwrap();
        let meta = |rest: &str| {
            let g = s.group(&key(rest)).unwrap();
            let f = g.families.iter().find(|f| f.name() == "m").unwrap();
            f.meta.clone()
        };
        assert!(Arc::ptr_eq(&meta("/instance/a"), &meta("/instance/b")));
    }

    #[test]
    fn a_closed_store_takes_no_change_not_even_a_failure_time() {
        let s = Store::new();
        push(&s, "", "a 1\n", Mode::Replace).unwrap();
        let before = text(&s);
        s.close();
        assert_eq!(
            s.refuse(&key(""), vec!["bad".into()], t(200)),
            PushError::Closed
        );
        assert_eq!(push(&s, "", "a 2\n", Mode::Replace), Err(PushError::Closed));
        assert_eq!(s.delete(&key("")), Err(PushError::Closed));
        assert_eq!(text(&s), before);
        let g = s.group(&key("")).unwrap();
        assert_eq!(g.timestamp(PUSH_FAILURE_TIME), 0.0);
    }

    #[test]
    fn replace_add_delete() {
        let s = Store::new();
        push(&s, "", "a 1\nb 1\n", Mode::Replace).unwrap();
        push(&s, "", "b 2\nc 3\n", Mode::Add).unwrap();
        let g = "{instance=\"\",job=\"j\"}";
        assert_eq!(
            text(&s),
            format!(
                "# TYPE a untyped\na{g} 1\n# TYPE b untyped\nb{g} 2\n# TYPE c untyped\nc{g} 3\n"
            )
        );
        push(&s, "", "d 4\n", Mode::Replace).unwrap();
        assert_eq!(text(&s), format!("# TYPE d untyped\nd{g} 4\n"));
        let group = s.group(&key("")).unwrap();
        assert_eq!(group.timestamp(PUSH_TIME), 100.0);
        assert!(group.last_push_successful());
        s.delete(&key("")).unwrap();
        assert_eq!(text(&s), "");
        assert!(s.groups().is_empty());
    }

    #[test]
    fn refused_pushes_change_only_the_failure_time() {
        let s = Store::new();
        push(&s, "", "# TYPE x counter\nx 1\n", Mode::Replace).unwrap();
        let before = text(&s);
        let err = push(&s, "/instance/i", "# TYPE x gauge\nx 2\n", Mode::Replace).unwrap_err();
        assert!(err.to_string().contains("is not a COUNTER"), "{err}");
        assert_eq!(text(&s), before);
        let failed = s.group(&key("/instance/i")).unwrap();
        assert_eq!(
            (
                failed.timestamp(PUSH_TIME),
                failed.timestamp(PUSH_FAILURE_TIME)
            ),
            (0.0, 100.0)
        );
        assert!(!failed.last_push_successful());
        assert_eq!(failed.families.len(), 2);
    }

    #[test]
    fn an_inconsistent_failure_record_is_not_stored() {
        // {job=j} and {job=j,instance=""} would expose identical timestamp series.
        let s = Store::new();
        push(&s, "", "m 1\n", Mode::Replace).unwrap();
        let err = push(&s, "/instance@base64/=", "n 1\n", Mode::Replace).unwrap_err();
        assert!(err.to_string().contains("was collected before"), "{err}");
        assert_eq!(s.groups().len(), 1);
        push(&s, "/other/x", "o 1\n", Mode::Replace).unwrap();
    }

    #[test]
    fn the_only_holder_of_a_name_may_change_its_type() {
        let s = Store::new();
        push(&s, "", "# TYPE x counter\nx 1\n", Mode::Replace).unwrap();
        push(&s, "", "# TYPE x gauge\nx 1\n", Mode::Add).unwrap();
        push(&s, "/instance/i", "# TYPE x gauge\nx 1\n", Mode::Replace).unwrap();
        assert!(push(&s, "", "# TYPE x counter\nx 1\n", Mode::Add).is_err());
    }

    #[test]
    fn series_are_unique_across_groups_but_a_group_may_repush_its_own() {
        let s = Store::new();
        push(&s, "/instance/x", "m 1\n", Mode::Replace).unwrap();
        push(&s, "/instance/x", "m 2\n", Mode::Replace).unwrap();
        assert!(push(&s, "", "m{instance=\"x\"} 3\n", Mode::Replace).is_err());
        assert!(push(&s, "", "m{job=\"a\"} 1\nm{job=\"b\"} 2\n", Mode::Replace).is_err());
        push(&s, "", "m{instance=\"y\"} 3\n", Mode::Replace).unwrap();
    }

    #[test]
    fn suffix_collisions_in_both_directions() {
        let s = Store::new();
        push(
            &s,
            "/a/1",
            "# TYPE sm summary\nsm{quantile=\"0.5\"} 1\n",
            Mode::Replace,
        )
        .unwrap();
        assert!(push(&s, "/a/2", "sm_sum 1\n", Mode::Replace).is_err());
        push(&s, "/a/2", "sm_bucket 1\n", Mode::Replace).unwrap();
        push(&s, "/a/3", "h_count 1\n", Mode::Replace).unwrap();
        let err = push(
            &s,
            "/a/4",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n",
            Mode::Replace,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("collides with previously collected metric named \"h_count\""),
            "{err}"
        );
        // Once the culprit is gone, the push goes through.
        s.delete(&key("/a/3")).unwrap();
        push(
            &s,
            "/a/4",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n",
            Mode::Replace,
        )
        .unwrap();
    }

    #[test]
    fn pushed_timestamp_families_follow_the_go_rules() {
        let s = Store::new();
        push(
            &s,
            "",
            "push_time_seconds 5\npush_failure_time_seconds 7\n",
            Mode::Replace,
        )
        .unwrap();
        let g = s.group(&key("")).unwrap();
        assert_eq!(
            (g.timestamp(PUSH_TIME), g.timestamp(PUSH_FAILURE_TIME)),
            (100.0, 0.0)
        );
        // Into a new group it is discarded before anything checks it, as in Go.
        push(
            &s,
            "/new/1",
            "push_failure_time_seconds{job=\"a\"} 1\npush_failure_time_seconds{job=\"b\"} 2\n",
            Mode::Replace,
        )
        .unwrap();
        // Into an existing group, a pushed failure family replaces the gateway's gauge.
        push(
            &s,
            "",
            "# TYPE push_failure_time_seconds gauge\npush_failure_time_seconds 12345\n",
            Mode::Add,
        )
        .unwrap();
        assert_eq!(
            s.group(&key("")).unwrap().timestamp(PUSH_FAILURE_TIME),
            12345.0
        );
    }

    #[test]
    fn a_scrape_copies_rendered_series_instead_of_rendering_them() {
        let s = Store::new();
        push(&s, "", "a 1\nb 1\n", Mode::Replace).unwrap();
        let stored = s.group(&key("")).unwrap().family("a").unwrap().metrics[0].clone();
        let pieces = expose::text(Vec::new(), s.scrape(), None);
        let same = pieces
            .iter()
            .any(|p| std::ptr::eq(p.lines(), stored.lines()));
        assert!(same, "the scrape rendered family a again");
    }
}
