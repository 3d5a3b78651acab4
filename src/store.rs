//! The group store: a lock-striped map of groups, plus the cross-group family index that
//! checks and applies a push in time proportional to the push, not to the store.

use crate::float;
use crate::grouping::GroupingKey;
use crate::metric::{
    self, FamilyView, Labels, Metric, MetricType, ParsedFamily, Series, Value, is_label_name,
};
use crate::names;
use crate::selfmetrics::{self, own_family};
use crate::series;
use std::borrow::{Borrow, Cow};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

pub const PUSH_TIME: &str = "push_time_seconds";
pub const PUSH_FAILURE_TIME: &str = "push_failure_time_seconds";
pub const PUSH_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
pub const PUSH_FAILURE_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway failed.";

const STRIPES: usize = 64;

/// What the families of one name, HELP and type share across groups (interned by the
/// index, so ten thousand groups pushing the same family hold one copy).
#[derive(Debug)]
pub struct FamilyMeta {
    pub name: Arc<str>,
    pub help: Option<Arc<str>>,
    pub mtype: MetricType,
}

/// One family as stored in one group.
#[derive(Debug, Clone)]
pub struct StoredFamily {
    meta: Arc<FamilyMeta>,
    /// In push order, each with its complete sorted label set and rendered lines.
    pub metrics: SeriesList,
    /// When the push that last wrote this family arrived, in nanoseconds since the epoch.
    pushed_at: u64,
}

impl StoredFamily {
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    pub fn help(&self) -> Option<&str> {
        self.meta.help.as_deref()
    }

    pub fn mtype(&self) -> MetricType {
        self.meta.mtype
    }

    pub fn pushed_at(&self) -> SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(self.pushed_at)
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The series of one stored family. Most families hold one series, which then needs no
/// allocation of its own.
#[derive(Debug, Clone)]
pub enum SeriesList {
    One(Series),
    Many(Arc<[Series]>),
}

impl From<Vec<Series>> for SeriesList {
    fn from(mut v: Vec<Series>) -> SeriesList {
        match v.len() {
            1 => SeriesList::One(v.remove(0)),
            _ => SeriesList::Many(v.into()),
        }
    }
}

impl std::ops::Deref for SeriesList {
    type Target = [Series];
    fn deref(&self) -> &[Series] {
        match self {
            SeriesList::One(s) => std::slice::from_ref(s),
            SeriesList::Many(v) => v,
        }
    }
}

/// A group: the families last pushed under one grouping key. Immutable once published;
/// a push builds a new one that shares the families it does not touch.
#[derive(Debug)]
pub struct Group {
    pub key: GroupingKey,
    id: u64,
    /// Sorted by name.
    pub families: Box<[StoredFamily]>,
}

impl Group {
    pub fn family(&self, name: &str) -> Option<&StoredFamily> {
        let i = self
            .families
            .binary_search_by(|f| f.name().cmp(name))
            .ok()?;
        Some(&self.families[i])
    }

    /// The value of one of the two timestamp gauges (0 when absent or unreadable).
    pub fn timestamp(&self, name: &str) -> f64 {
        let line = self
            .family(name)
            .and_then(|f| f.metrics.first())
            .map(Series::lines);
        let value = line.and_then(|l| l.trim_end().rsplit(' ').next());
        value.and_then(float::parse_go).unwrap_or(0.0)
    }

    /// As the Go gateway decides it: the last push failed iff the failure time is later.
    pub fn last_push_successful(&self) -> bool {
        self.timestamp(PUSH_FAILURE_TIME) <= self.timestamp(PUSH_TIME)
    }
}

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

/// PUT replaces the whole group, POST only the families it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Replace,
    Add,
}

/// Why a parsed push was refused. Such a push changes nothing but the group's
/// `push_failure_time_seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    Timestamps,
    Inconsistent(Vec<String>),
    /// The store takes no more changes: the daemon is shutting down.
    Closed,
}

impl PushError {
    /// The message, with at most `max_lines` of the errors listed (Go lists them all,
    /// which for a push of a million duplicate series is a 100 MB answer).
    pub fn message(&self, max_lines: usize) -> String {
        let mut out =
            String::from("pushed metrics are invalid or inconsistent with existing metrics: ");
        match self {
            PushError::Timestamps => out.push_str("pushed metrics must not have timestamps"),
            PushError::Inconsistent(errs) if errs.len() == 1 => out.push_str(&errs[0]),
            PushError::Inconsistent(errs) => {
                out.push_str(&format!("{} error(s) occurred:", errs.len()));
                for e in errs.iter().take(max_lines.max(1)) {
                    out.push_str("\n* ");
                    out.push_str(e);
                }
                if errs.len() > max_lines.max(1) {
                    out.push_str(&format!(
                        "\n* ... and {} more (--push.max-error-lines)",
                        errs.len() - max_lines.max(1)
                    ));
                }
            }
            PushError::Closed => return "shutting down: no more changes are taken".into(),
        }
        out
    }
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(usize::MAX))
    }
}

impl std::error::Error for PushError {}

/// An index entry: a series, the id of the group holding it, and a prefix of its sort key
/// that settles most comparisons without reading the series text (a cache miss each).
#[derive(Clone, Debug)]
struct Slot {
    prefix: [u64; 2],
    series: Series,
    group: u64,
}

impl Slot {
    fn new(series: &Series, group: u64) -> Slot {
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
struct FamilyIndex {
    name: Arc<str>,
    mtype: MetricType,
    /// Every series of this name in the store, in exposition order, with the id of the
    /// group holding it. Ordered by label set, it is also the uniqueness check.
    series: BTreeSet<Slot>,
    /// Distinct HELP and type pairs, with the number of groups using each.
    metas: Vec<(Arc<FamilyMeta>, usize)>,
    /// HELP of the most recent push, shown while some group still has it.
    latest_help: Option<Arc<str>>,
}

impl FamilyIndex {
    /// The HELP a scrape shows: the gateway's own for its reserved names, else the newest
    /// pushed text still in use, else the smallest text in use. (The Go gateway shows
    /// whichever group its map iteration meets first, which may change between scrapes.)
    fn help(&self) -> Option<Arc<str>> {
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
    fn acquire(&mut self, help: Option<Arc<str>>, mtype: MetricType) -> Arc<FamilyMeta> {
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

    fn release(&mut self, meta: &Arc<FamilyMeta>) {
        if let Some(slot) = self.metas.iter_mut().find(|(m, _)| Arc::ptr_eq(m, meta)) {
            slot.1 -= 1;
        }
        self.metas.retain(|(_, n)| *n > 0);
    }
}

#[derive(Default)]
struct Index {
    families: BTreeMap<Arc<str>, FamilyIndex>,
    next_group_id: u64,
    /// Counts changes to the store (see `Store::seq`).
    seq: u64,
    /// Set by `close`: every later change is refused, so that what the final write of
    /// the persistence file holds is all that was ever acknowledged.
    closed: bool,
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

/// What one write puts into a group: a family name and what it becomes.
struct Write {
    name: Arc<str>,
    help: Option<Arc<str>>,
    mtype: MetricType,
    metrics: Vec<Series>,
    /// When it was pushed, if not now (a restored family).
    at: Option<SystemTime>,
}

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

/// The label set every metric of a group carries: body labels, overwritten and completed
/// by the grouping labels, plus `instance=""` when there is no instance (the Go gateway's
/// `sanitizeLabels`), sorted by name.
fn sanitized_labels<'a>(
    key: &'a GroupingKey,
    body: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(&'a str, &'a str)> {
    let mut labels: Vec<(&str, &str)> = key.labels().collect();
    for (n, v) in body {
        if key.get(n).is_none() {
            labels.push((n, v));
        }
    }
    if !labels.iter().any(|(n, _)| *n == "instance") {
        labels.push(("instance", ""));
    }
    labels.sort_by(|a, b| a.0.cmp(b.0));
    labels
}

fn describe(name: &str, s: &Series) -> String {
    format!("collected metric {name:?} {s:?}")
}

fn timestamp_gauge(key: &GroupingKey, name: &str, value: f64) -> Series {
    let labels = sanitized_labels(key, std::iter::empty());
    let metric = Metric {
        labels: Labels::from_sorted(labels),
        value: Value::Gauge(value),
    };
    series::series(name, &metric)
}

fn push_time(key: &GroupingKey, value: f64) -> Write {
    Write {
        name: PUSH_TIME.into(),
        help: Some(PUSH_TIME_HELP.into()),
        mtype: MetricType::Gauge,
        metrics: vec![timestamp_gauge(key, PUSH_TIME, value)],
        at: None,
    }
}

fn push_failure_time(key: &GroupingKey, value: f64) -> Write {
    Write {
        name: PUSH_FAILURE_TIME.into(),
        help: Some(PUSH_FAILURE_TIME_HELP.into()),
        mtype: MetricType::Gauge,
        metrics: vec![timestamp_gauge(key, PUSH_FAILURE_TIME, value)],
        at: None,
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
    ) -> Result<(), Vec<String>> {
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
            return Err(errors);
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

/// The families of `existing` a write removes: for PUT all but the two timestamp gauges,
/// for POST those it names; plus any family a write replaces.
fn removed_families(existing: Option<&Group>, writes: &[Write], mode: Mode) -> Vec<StoredFamily> {
    let Some(g) = existing else { return Vec::new() };
    let written: HashSet<&str> = writes.iter().map(|w| &*w.name).collect();
    g.families
        .iter()
        .filter(|f| {
            written.contains(f.name())
                || (mode == Mode::Replace && f.name() != PUSH_TIME && f.name() != PUSH_FAILURE_TIME)
        })
        .cloned()
        .collect()
}

/// Takes a family of a group out of the index, except the series that `rewritten` (the
/// same family's new series, about to be indexed in their place) brings back.
fn unindex(index: &mut Index, fam: &StoredFamily, rewritten: &[Series]) {
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

/// The writes of a push, a pushed `push_failure_time_seconds` with its own errors (it
/// only applies to an existing group), and the errors found in the rest.
type Prepared = (Vec<Write>, Option<(Write, Vec<String>)>, Vec<String>);

/// Turns parsed families into writes for `key`: labels sanitised, series rendered, types
/// and label names validated, duplicates inside the push found. Returns the writes, a
/// pushed `push_failure_time_seconds` family (kept aside: it only applies to existing
/// groups) and the errors found.
fn prepare(key: &GroupingKey, families: Vec<ParsedFamily<'_>>, utf8_names: bool) -> Prepared {
    let mut writes = Vec::with_capacity(families.len() + 2);
    let mut pushed_failure = None;
    let mut all_errors = Vec::new();
    for mut f in families {
        if f.name == PUSH_TIME {
            continue; // always replaced by the gateway's own timestamp
        }
        if utf8_names {
            f.name = Cow::Owned(names::store_form(&f.name, true).into_owned());
            for m in &mut f.metrics {
                for (n, _) in &mut m.labels {
                    if let Cow::Owned(stored) = names::store_form(n, false) {
                        *n = Cow::Owned(stored);
                    }
                }
            }
        }
        let mut errors = Vec::new();
        let mut metrics: Vec<Series> = Vec::with_capacity(f.metrics.len());
        for m in f.metrics {
            let labels = sanitized_labels(key, m.labels.iter().map(|(n, v)| (&**n, &**v)));
            let metric = Metric {
                labels: Labels::from_sorted(labels.iter().copied()),
                value: m.value,
            };
            let series = series::series_with_raw(&f.name, &metric, m.raw);
            if !metric.value.fits(f.mtype) {
                errors.push(format!(
                    "{} is not a {}",
                    describe(&f.name, &series),
                    f.mtype
                ));
            }
            for w in labels.windows(2) {
                if w[0].0 == w[1].0 {
                    let d = describe(&f.name, &series);
                    errors.push(format!(
                        "{d} has two or more labels with the same name: {}",
                        w[0].0
                    ));
                }
            }
            for (n, _) in &labels {
                let (valid, shown) = if utf8_names {
                    let real = names::decode(n);
                    (!real.is_empty() && !real.starts_with("__"), real)
                } else {
                    (is_label_name(n) && !n.starts_with("__"), Cow::Borrowed(*n))
                };
                if !valid {
                    errors.push(format!(
                        "{} has a label with an invalid name: {shown}",
                        describe(&f.name, &series)
                    ));
                }
                if *n == "quantile" && matches!(metric.value, Value::Summary(_)) {
                    let d = describe(&f.name, &series);
                    errors.push(format!("{d} must not have an explicit \"quantile\" label"));
                }
            }
            metrics.push(series);
        }
        let mut sorted: Vec<&Series> = metrics.iter().collect();
        sorted.sort();
        for w in sorted.windows(2) {
            if w[0] == w[1] {
                let d = describe(&f.name, w[1]);
                errors.push(format!(
                    "{d} was collected before with the same name and label values"
                ));
            }
        }
        let write = Write {
            name: Arc::from(&*f.name),
            help: f.help.map(|h| Arc::from(&*h)),
            mtype: f.mtype,
            metrics,
            at: None,
        };
        // A pushed failure family only counts where it is kept (see `Store::push`).
        if f.name == PUSH_FAILURE_TIME {
            pushed_failure = Some((write, errors));
        } else {
            writes.push(write);
            all_errors.extend(errors);
        }
    }
    (writes, pushed_failure, all_errors)
}

/// Checks writes into group `existing` (whose `removed` families go away) against the rest
/// of the store and the gateway's own families: same type per name, no name colliding with
/// a summary's or histogram's series names, no series twice. Costs O(writes · log store).
/// Name arithmetic for the suffix checks: with UTF-8 names on, `a.b` + `_count` is
/// `a.b_count`, whose stored form is not the stored form of `a.b` with `_count` appended.
#[derive(Clone, Copy)]
struct Names(bool);

impl Names {
    fn strip(self, name: &str, suffix: &str) -> Option<String> {
        if self.0 && names::is_encoded(name) {
            let real = names::decode(name);
            let base = real.strip_suffix(suffix).filter(|b| !b.is_empty())?;
            return Some(names::store_form(base, true).into_owned());
        }
        name.strip_suffix(suffix)
            .filter(|b| !b.is_empty())
            .map(str::to_string)
    }

    fn append(self, name: &str, suffix: &str) -> String {
        if self.0 && names::is_encoded(name) {
            let real = format!("{}{suffix}", names::decode(name));
            return names::store_form(&real, true).into_owned();
        }
        format!("{name}{suffix}")
    }

    /// A stored name as the pusher wrote it, for messages.
    fn real(self, name: &str) -> Cow<'_, str> {
        if self.0 {
            names::decode(name)
        } else {
            Cow::Borrowed(name)
        }
    }
}

fn check(
    index: &Index,
    existing: Option<&Group>,
    removed: &[StoredFamily],
    writes: &[Write],
    names: Names,
) -> Vec<String> {
    let gid = existing.map(|g| g.id);
    // Looked up once per written name: maps keep a push with many families linear.
    let mut removed_counts: HashMap<&str, usize> = HashMap::with_capacity(removed.len());
    for f in removed {
        *removed_counts.entry(f.name()).or_insert(0) += f.metrics.len();
    }
    let removed_count = |name: &str| removed_counts.get(name).copied().unwrap_or(0);
    let written: HashMap<&str, MetricType> = writes.iter().map(|w| (&*w.name, w.mtype)).collect();
    // The type a name will have after the write, if it is present at all.
    let type_after = |name: &str| -> Option<MetricType> {
        if let Some(t) = written.get(name) {
            return Some(*t);
        }
        if let Some(fi) = index.families.get(name)
            && fi.series.len() > removed_count(name)
        {
            return Some(fi.mtype);
        }
        own_family(name).map(|o| o.mtype)
    };
    let mut errors = Vec::new();
    for w in writes {
        let name = &*w.name;
        if let Some(o) = own_family(name)
            && o.mtype != w.mtype
        {
            errors.push(format!(
                "gathered metric family {name} has type {} but should have {}",
                w.mtype, o.mtype
            ));
            continue;
        }
        if let Some(fi) = index.families.get(name) {
            if fi.series.len() > removed_count(name) && fi.mtype != w.mtype {
                if let Some(m) = w.metrics.first() {
                    errors.push(format!("{} is not a {}", describe(name, m), fi.mtype));
                }
                continue;
            }
            for m in &w.metrics {
                if let Some(slot) = fi.series.get(&Slot::new(m, 0))
                    && Some(slot.group) != gid
                {
                    let d = describe(name, m);
                    errors.push(format!(
                        "{d} was collected before with the same name and label values"
                    ));
                }
            }
        }
        for suffix in ["_count", "_sum", "_bucket"] {
            let Some(base) = names.strip(name, suffix) else {
                continue;
            };
            let (n, b) = (names.real(name), names.real(&base));
            match type_after(&base) {
                Some(MetricType::Summary) if suffix != "_bucket" => errors.push(format!(
                    "collected metric named {n:?} collides with previously collected summary named {b:?}"
                )),
                Some(MetricType::Histogram) => errors.push(format!(
                    "collected metric named {n:?} collides with previously collected histogram named {b:?}"
                )),
                _ => {}
            }
        }
        let suffixes: &[&str] = match w.mtype {
            MetricType::Summary => &["_count", "_sum"],
            MetricType::Histogram => &["_count", "_sum", "_bucket"],
            _ => &[],
        };
        for s in suffixes {
            let other = names.append(name, s);
            if type_after(&other).is_some() {
                let (name, other) = (names.real(name), names.real(&other));
                // client_golang words the `_bucket` case differently.
                let what = if *s == "_bucket" {
                    "histogram"
                } else {
                    "histogram or summary"
                };
                errors.push(format!(
                    "collected {what} named {name:?} collides with previously collected metric named {other:?}"
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expose;
    use crate::parse::parse_text;
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
