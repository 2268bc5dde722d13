//! The health log: one Automerge document per vault (docs/spec.md §6).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use automerge::transaction::Transactable;
use automerge::{
    ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value,
};

use crate::fever::{FeverEpisode, FeverRule, episodes};
use crate::model::{
    Day, DeviceId, LogError, MAX_TEXT_CHARS, Metric, READING_LEN, Reading, ReadingId, Severity,
    Symptom, Unit,
};

/// The schema version this build writes and the highest it reads.
///
/// 2: a readings list element is a block, one or more encoded readings
/// back to back (one per fold); 1: one reading per element, which reads
/// as a block of one. A fold into a schema-1 document writes 2 in the same
/// change, so a build that reads only 1 refuses the document at load
/// instead of counting the blocks' readings as unreadable entries.
pub const SCHEMA_VERSION: u64 = 2;

const K_SCHEMA: &str = "schema";
const K_READINGS: &str = "readings";
/// The most readings one list element (a block) holds: a larger fold
/// writes several elements, still in one change. Bounds one Automerge
/// value (~172 KB), which a whole-vault rewrite of a large fold would
/// otherwise grow without limit.
const MAX_BLOCK_READINGS: usize = 4096;
const K_ANNOTATIONS: &str = "annotations";
const K_RETRACTIONS: &str = "retractions";
const K_CHECKINS: &str = "checkins";

/// A retraction: the reading stays in history but leaves views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retraction {
    /// The device that retracted it.
    pub by: DeviceId,
    /// When, ms since the epoch.
    pub time_ms: i64,
    /// Why, as the resident wrote it.
    pub reason: String,
}

/// Per-metric, per-UTC-day statistics over non-retracted readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailySummary {
    /// The day.
    pub day: Day,
    /// The metric.
    pub metric: Metric,
    /// Lowest value.
    pub min: f64,
    /// Highest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Number of readings.
    pub count: usize,
}

/// A value several devices set concurrently; all stay visible until the
/// resident picks one (by setting it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Two or more severities for one symptom on one day.
    CheckIn {
        /// The day.
        day: Day,
        /// The symptom.
        symptom: Symptom,
        /// Every concurrent value; the first is the one views show meanwhile.
        values: Vec<Severity>,
    },
    /// Two or more annotations of one reading.
    Annotation {
        /// The reading.
        reading: ReadingId,
        /// Every concurrent text; the first is the one views show meanwhile.
        values: Vec<String>,
    },
}

/// Everything a resident can see in the log, in a canonical order: two
/// replicas that converged have equal views.
#[derive(Debug, Clone, PartialEq)]
pub struct LogView {
    /// Every reading, retracted or not, sorted by (time, id).
    pub readings: Vec<Reading>,
    /// Annotations by reading (all concurrent values, sorted).
    pub annotations: BTreeMap<ReadingId, Vec<String>>,
    /// Retractions by reading (the winning one).
    pub retractions: BTreeMap<ReadingId, Retraction>,
    /// Check-ins by day and symptom (all concurrent values, sorted).
    pub checkins: BTreeMap<(Day, Symptom), Vec<Severity>>,
}

/// A resident's health log for one monitoring period: a typed, validated API
/// over an Automerge document. Pure: no I/O, no clock — every time is a
/// parameter. Each mutating call commits exactly one Automerge change,
/// except [`HealthLog::stage`]: staged readings are visible to every query
/// at once but enter the document only at the next [`HealthLog::fold`], as
/// one change for all of them (one change per reading cost ~150–200 bytes
/// of change metadata and most of the time of a durable record).
#[derive(Debug)]
pub struct HealthLog {
    doc: AutoCommit,
    device: DeviceId,
    readings: ObjId,
    annotations: ObjId,
    retractions: ObjId,
    checkins: ObjId,
    /// The document's schema version as last read (at load), `None` once
    /// other devices' changes arrived (one may have written it): read again
    /// at the next fold, which writes [`SCHEMA_VERSION`] if it is lower.
    doc_schema: Option<u64>,
    /// The decoded readings, built from the document when first needed
    /// (a query, a write), not at load or after a merge: opening a week's
    /// vault decoded 24,864 readings before anyone asked for one. Reset
    /// (unset) when changes enter the document.
    view: OnceLock<View>,
    /// While `view` is unset: the readings staged (restaged from a
    /// journal, or staged before a merge), in staging order, to stage again
    /// when the view is built, each unless the document holds it by then.
    /// Meaningless (and ignored) while `view` is set.
    pending: Vec<Reading>,
    saved_heads: Vec<ChangeHash>,
    /// The last [`HealthLog::save`] and the heads it was made at. A sync
    /// saves the whole log several times over (to measure it, to upload it
    /// as a relay snapshot, as a bundle's payload, as the local snapshot)
    /// while nothing changes in between.
    last_save: Option<(Vec<ChangeHash>, Vec<u8>)>,
    /// The same for [`HealthLog::save_compressing_with`], whose bytes
    /// may differ from `save()`'s.
    last_save_with: Option<(Vec<ChangeHash>, Vec<u8>)>,
    /// This device's changes committed here since some heads, with their
    /// raw bytes once known, so that [`HealthLog::own_changes_since`]
    /// those heads (a sync's next bundle) need not walk Automerge's change
    /// graph (~130 K instructions a call in the simulation).
    own: OwnChanges,
}

/// This device's changes made since some heads: see [`HealthLog::own`].
#[derive(Debug, Clone, Default)]
struct OwnChanges {
    /// Heads that covered every own change in the document when taken;
    /// `None` until the first [`HealthLog::own_changes_since`] (a load
    /// knows no own change's bytes).
    mark: Option<Vec<ChangeHash>>,
    /// Every own change committed here since, in commit order (one
    /// actor's changes, each depending on the one before: the order
    /// Automerge gives them in), with its raw bytes when known.
    since: Vec<(ChangeHash, Option<Vec<u8>>)>,
    /// When the document is exactly what was last marked saved plus own
    /// changes committed here since: those, in commit order (what
    /// [`HealthLog::unsaved`] returns, without Automerge's walk of the
    /// change graph). `None` when unknown (after a load, or once other
    /// devices' changes arrived unsaved).
    unsaved: Option<Vec<ChangeHash>>,
}

/// The document's readings decoded, with the staged ones after them.
#[derive(Debug, Clone, Default)]
struct View {
    /// Length of the readings list, in elements (blocks), not readings
    /// (Automerge's `length()` is O(n)).
    readings_len: usize,
    /// The next sequence number of this device's readings: above every
    /// one in `cache`.
    next_seq: u64,
    /// Decoded readings, in list order, then the staged ones.
    cache: Vec<Reading>,
    /// `cache`'s positions by id, built at the first lookup by id: opening
    /// a week's vault looks none up, and hashing every id cost as much as
    /// decoding the readings. Once built, kept up to date with `cache`.
    by_id: OnceLock<HashMap<ReadingId, usize>>,
    /// List entries that did not decode.
    unreadable: usize,
    /// Readings staged but not in the document yet, in staging order (also
    /// at the end of `cache`, so queries see them).
    staged: Vec<Reading>,
}

impl View {
    /// One more than the greatest sequence number of `device`'s readings
    /// in `cache` (1 if none).
    fn own_next_seq(&self, device: DeviceId) -> u64 {
        self.cache
            .iter()
            .filter(|r| r.id.device == device)
            .map(|r| r.id.seq + 1)
            .max()
            .unwrap_or(1)
    }

    /// `cache`'s positions by id, built now if no lookup came before.
    fn index(&self) -> &HashMap<ReadingId, usize> {
        self.by_id.get_or_init(|| {
            let mut m = HashMap::with_capacity(self.cache.len());
            for (i, r) in self.cache.iter().enumerate() {
                m.insert(r.id, i);
            }
            m
        })
    }

    /// Whether `cache` holds the reading `id`. The log's own readings
    /// (`device`'s) all have sequence numbers below `next_seq`: one at or
    /// above it is not there, which answers a replay without the index.
    fn contains(&self, device: DeviceId, id: ReadingId) -> bool {
        if id.device == device && id.seq >= self.next_seq {
            return false;
        }
        self.index().contains_key(&id)
    }

    fn push_staged(&mut self, reading: Reading) {
        self.next_seq = self.next_seq.max(reading.id.seq + 1);
        let at = self.cache.len();
        if let Some(m) = self.by_id.get_mut() {
            m.insert(reading.id, at);
        }
        self.cache.push(reading);
        self.staged.push(reading);
    }
}

impl OwnChanges {
    /// A local commit (`None`: it had no op, nothing entered the document).
    fn committed(&mut self, hash: Option<ChangeHash>) {
        let Some(h) = hash else { return };
        if self.mark.is_some() {
            self.since.push((h, None));
        }
        if let Some(list) = &mut self.unsaved {
            list.push(h);
        }
    }

    /// The raw bytes of the own change `hash` if kept.
    fn bytes_of(&self, hash: &ChangeHash) -> Option<&[u8]> {
        self.since
            .iter()
            .rev()
            .find(|(h, _)| h == hash)
            .and_then(|(_, b)| b.as_deref())
    }

    /// The raw bytes of the own change `hash`, built for another reason.
    fn learn(&mut self, hash: ChangeHash, bytes: &[u8]) {
        if let Some((_, b @ None)) = self.since.iter_mut().rev().find(|(h, _)| *h == hash) {
            *b = Some(bytes.to_vec());
        }
    }

    /// `heads` cover every own change in the document now.
    fn mark_at(&mut self, heads: Vec<ChangeHash>) {
        self.mark = Some(heads);
        self.since.clear();
    }
}

impl HealthLog {
    /// Creates a new, empty log authored by `device` (the vault's first device).
    pub fn new(device: DeviceId) -> Self {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(&device.0[..]));
        // Creating the four objects cannot fail on a fresh document.
        let obj = |doc: &mut AutoCommit, key: &str, t: ObjType| {
            doc.put_object(ROOT, key, t)
                .expect("fresh document accepts objects")
        };
        doc.put(ROOT, K_SCHEMA, SCHEMA_VERSION)
            .expect("fresh document accepts values");
        for (key, t) in [
            (K_READINGS, ObjType::List),
            (K_ANNOTATIONS, ObjType::Map),
            (K_RETRACTIONS, ObjType::Map),
            (K_CHECKINS, ObjType::Map),
        ] {
            obj(&mut doc, key, t);
        }
        doc.commit();
        // The creation change counts as saved: whoever creates the log stores
        // (or sends) its first `save()`.
        Self::from_doc(doc, device).expect("a freshly created log has the schema")
    }

    /// A replica with no document yet, for a device that joins an existing
    /// vault: its first sync brings the log. Until then it has no schema and
    /// accepts no edits (they would conflict with the real log's objects).
    pub fn empty(device: DeviceId) -> Self {
        let doc = AutoCommit::new().with_actor(ActorId::from(&device.0[..]));
        HealthLog {
            doc,
            device,
            readings: ROOT,
            annotations: ROOT,
            retractions: ROOT,
            checkins: ROOT,
            doc_schema: None,
            view: OnceLock::new(),
            pending: Vec::new(),
            saved_heads: Vec::new(),
            last_save: None,
            last_save_with: None,
            own: OwnChanges::default(),
        }
    }

    /// Whether the log has its schema (false for [`HealthLog::empty`] before the first sync).
    pub fn is_initialised(&self) -> bool {
        self.readings != ROOT
    }

    /// Loads a log saved by [`HealthLog::save`] (or a concatenation of a save
    /// and incremental chunks), to be edited by `device`.
    pub fn load(bytes: &[u8], device: DeviceId) -> Result<Self, LogError> {
        let doc = AutoCommit::load(bytes).map_err(|e| LogError::Malformed(e.to_string()))?;
        Self::from_doc(doc, device)
    }

    /// Like [`HealthLog::load`], but a document without the schema yet (a
    /// joining device's, before its first sync) loads as an empty replica.
    pub fn load_any(bytes: &[u8], device: DeviceId) -> Result<Self, LogError> {
        let doc = AutoCommit::load(bytes).map_err(|e| LogError::Malformed(e.to_string()))?;
        if doc.get(ROOT, K_SCHEMA).ok().flatten().is_none() && doc.is_empty() {
            return Ok(Self::empty(device));
        }
        Self::from_doc(doc, device)
    }

    /// The log of `doc`, its view not built (see [`HealthLog::build_view`]).
    fn from_doc(doc: AutoCommit, device: DeviceId) -> Result<Self, LogError> {
        let mut doc = doc.with_actor(ActorId::from(&device.0[..]));
        let schema =
            schema_version(&doc).ok_or_else(|| LogError::Malformed("no schema version".into()))?;
        if schema > SCHEMA_VERSION {
            return Err(LogError::NewerSchema {
                found: schema,
                supported: SCHEMA_VERSION,
            });
        }
        let obj = |doc: &AutoCommit, key: &str, want: ObjType| match doc.get(ROOT, key) {
            Ok(Some((Value::Object(t), id))) if t == want => Ok(id),
            _ => Err(LogError::Malformed(format!("missing or mistyped {key:?}"))),
        };
        let readings = obj(&doc, K_READINGS, ObjType::List)?;
        let annotations = obj(&doc, K_ANNOTATIONS, ObjType::Map)?;
        let retractions = obj(&doc, K_RETRACTIONS, ObjType::Map)?;
        let checkins = obj(&doc, K_CHECKINS, ObjType::Map)?;
        let saved_heads = doc.get_heads();
        Ok(HealthLog {
            doc,
            device,
            readings,
            annotations,
            retractions,
            checkins,
            doc_schema: Some(schema),
            view: OnceLock::new(),
            pending: Vec::new(),
            saved_heads,
            last_save: None,
            last_save_with: None,
            own: OwnChanges::default(),
        })
    }

    /// Decodes the document's readings (one pass over the list, each
    /// block's readings in order), then stages the pending readings again,
    /// each unless the document now holds it (it cannot, for this device's
    /// own ids, but a replay must never show a reading twice).
    fn build_view(&self) -> View {
        let mut v = View::default();
        if self.is_initialised() {
            for item in self.doc.list_range(&self.readings, ..) {
                v.readings_len += 1;
                match &item.value {
                    // A block: a positive multiple of a reading's length
                    // (a schema-1 element is a block of one). A reading in
                    // it that does not decode (from a newer version, or
                    // damaged) costs only itself.
                    automerge::ValueRef::Scalar(automerge::ScalarValueRef::Bytes(b))
                        if !b.is_empty() && b.len() % READING_LEN == 0 =>
                    {
                        for enc in b.chunks_exact(READING_LEN) {
                            match Reading::decode(enc) {
                                Some(r) => v.cache.push(r),
                                None => v.unreadable += 1,
                            }
                        }
                    }
                    // Anything else: kept in the document, left out of
                    // views, counted once.
                    _ => v.unreadable += 1,
                }
            }
        }
        v.next_seq = v.own_next_seq(self.device);
        for r in &self.pending {
            if !v.contains(self.device, r.id) {
                v.push_staged(*r);
            }
        }
        v
    }

    /// The view, built now if nothing needed it since the last load or merge.
    fn view_ref(&self) -> &View {
        self.view.get_or_init(|| self.build_view())
    }

    /// The view to change, built now if needed.
    fn view_mut(&mut self) -> &mut View {
        if self.view.get().is_none() {
            let v = self.build_view();
            self.pending.clear();
            // Unset just above, and `&mut self` excludes any other writer.
            let _ = self.view.set(v);
        }
        self.view.get_mut().expect("the view was built just above")
    }

    /// Changes entered the document: the view is built again when next
    /// needed, with the staged readings kept (pending) until then.
    fn invalidate(&mut self) {
        if let Some(v) = self.view.take() {
            self.pending = v.staged;
        }
    }

    /// The staged readings, taken out (the view reset).
    fn take_staged(&mut self) -> Vec<Reading> {
        self.invalidate();
        std::mem::take(&mut self.pending)
    }

    /// The device editing this replica.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// Records a reading measured at `time_ms` and returns its id: stages
    /// it and folds at once (one change). See [`HealthLog::stage`] to batch.
    pub fn record(
        &mut self,
        metric: Metric,
        value: f64,
        unit: Unit,
        time_ms: i64,
    ) -> Result<ReadingId, LogError> {
        let r = self.stage(metric, value, unit, time_ms)?;
        self.fold()?;
        Ok(r.id)
    }

    /// Validates a reading measured at `time_ms`, gives it the next id and
    /// makes it visible to every query, without touching the document: it
    /// enters it at the next [`HealthLog::fold`]. Nothing of it is in
    /// [`HealthLog::unsaved`], [`HealthLog::save`] or the heads until then,
    /// so the caller keeps it durable some other way (the device's journal).
    pub fn stage(
        &mut self,
        metric: Metric,
        value: f64,
        unit: Unit,
        time_ms: i64,
    ) -> Result<Reading, LogError> {
        self.require_init()?;
        let value = metric.validate(value, unit)?;
        if time_ms < 0 {
            return Err(LogError::NegativeTime(time_ms));
        }
        let device = self.device;
        let v = self.view_mut();
        let reading = Reading {
            id: ReadingId {
                device,
                seq: v.next_seq,
            },
            time_ms,
            metric,
            value,
        };
        v.push_staged(reading);
        Ok(reading)
    }

    /// Stages a reading staged before (read back from the caller's journal
    /// after a restart), with its id. Returns false, and changes nothing,
    /// if the log holds it already (replay is idempotent). A reading that
    /// is not this device's, or that a query would refuse, is `Malformed`.
    pub fn restage(&mut self, reading: Reading) -> Result<bool, LogError> {
        self.check_restaged(&reading)?;
        let device = self.device;
        let v = self.view_mut();
        if v.contains(device, reading.id) {
            return Ok(false);
        }
        v.push_staged(reading);
        Ok(true)
    }

    /// [`HealthLog::restage`] without saying whether the log held the
    /// reading already: a reading that is not this device's, or that a
    /// query would refuse, is `Malformed` at once; whether the document
    /// holds it is checked when the view is next needed (and it is then
    /// not staged again). A journal's replay at open thus decodes no
    /// reading until one is asked for.
    pub fn restage_deferred(&mut self, reading: Reading) -> Result<(), LogError> {
        self.check_restaged(&reading)?;
        match self.view.get_mut() {
            Some(v) => {
                if !v.contains(self.device, reading.id) {
                    v.push_staged(reading);
                }
            }
            None => self.pending.push(reading),
        }
        Ok(())
    }

    /// What [`HealthLog::restage`] refuses whatever the log holds.
    fn check_restaged(&self, reading: &Reading) -> Result<(), LogError> {
        self.require_init()?;
        if reading.id.device != self.device {
            return Err(LogError::Malformed(format!(
                "staged reading {} is not this device's",
                reading.id
            )));
        }
        reading
            .metric
            .validate(reading.value, reading.metric.unit())?;
        if reading.time_ms < 0 {
            return Err(LogError::NegativeTime(reading.time_ms));
        }
        Ok(())
    }

    /// Drops the last `n` staged readings (a caller that could not make
    /// them durable): they leave every view, and their ids are given again.
    pub fn unstage_last(&mut self, n: usize) {
        let device = self.device;
        let v = self.view_mut();
        for _ in 0..n.min(v.staged.len()) {
            if let Some(r) = v.staged.pop() {
                // Staged readings are always the cache's last entries.
                v.cache.pop();
                if let Some(m) = v.by_id.get_mut() {
                    m.remove(&r.id);
                }
            }
        }
        v.next_seq = v.own_next_seq(device);
    }

    /// Readings staged and not folded yet.
    pub fn staged(&self) -> &[Reading] {
        &self.view_ref().staged
    }

    /// Commits every staged reading to the document as ONE Automerge change
    /// (none if nothing is staged) and returns how many. All or nothing:
    /// the change is built and committed here, never left open for an
    /// implicit commit (`get_heads`, `save`, ...) to take part of.
    ///
    /// The readings go in as one list element, a block of their encodings
    /// in staging order ([`MAX_BLOCK_READINGS`] at most; a larger fold
    /// writes several). One element per reading made Automerge's list the
    /// simulation's largest cost: an op, its id and its metadata per
    /// reading, built, saved and loaded again at every sync. In a
    /// schema-1 document the change also writes the schema version.
    pub fn fold(&mut self) -> Result<usize, LogError> {
        self.view_mut();
        let v = self.view.get_mut().expect("view_mut built it");
        if v.staged.is_empty() {
            return Ok(0);
        }
        let blocks: Vec<ScalarValue> = v
            .staged
            .chunks(MAX_BLOCK_READINGS)
            .map(|c| {
                let mut b = Vec::with_capacity(c.len() * READING_LEN);
                for r in c {
                    b.extend_from_slice(&r.encode());
                }
                ScalarValue::Bytes(b)
            })
            .collect();
        let n_blocks = blocks.len();
        let schema = match self.doc_schema {
            Some(s) => s,
            None => schema_version(&self.doc).unwrap_or(0),
        };
        // Never lowered: a newer schema merged in stays (a load refuses it).
        if schema < SCHEMA_VERSION
            && let Err(e) = self.doc.put(ROOT, K_SCHEMA, SCHEMA_VERSION)
        {
            self.doc.rollback();
            return Err(LogError::Malformed(e.to_string()));
        }
        if let Err(e) = self.doc.splice(&self.readings, v.readings_len, 0, blocks) {
            self.doc.rollback();
            return Err(LogError::Malformed(e.to_string()));
        }
        let hash = self.doc.commit();
        self.own.committed(hash);
        self.doc_schema = Some(schema.max(SCHEMA_VERSION));
        let n = v.staged.len();
        v.readings_len += n_blocks;
        v.staged.clear();
        Ok(n)
    }

    /// Commits the open change, this device's, and keeps its hash for
    /// [`HealthLog::own_changes_since`]. Every local edit commits here
    /// (or in [`HealthLog::fold`], the same way).
    fn commit(&mut self) {
        let hash = self.doc.commit();
        self.own.committed(hash);
    }

    fn check_text(text: &str) -> Result<(), LogError> {
        let len = text.chars().count();
        if len > MAX_TEXT_CHARS {
            return Err(LogError::TextTooLong {
                len,
                max: MAX_TEXT_CHARS,
            });
        }
        Ok(())
    }

    fn require(&self, id: ReadingId) -> Result<(), LogError> {
        self.require_init()?;
        if self.view_ref().contains(self.device, id) {
            Ok(())
        } else {
            Err(LogError::UnknownReading(id))
        }
    }

    /// Sets the annotation of a reading (replacing this device's view of it;
    /// concurrent annotations from other devices stay visible as a conflict).
    pub fn annotate(&mut self, id: ReadingId, text: &str) -> Result<(), LogError> {
        Self::check_text(text)?;
        self.require(id)?;
        self.doc
            .put(&self.annotations, id.to_string(), text)
            .map_err(|e| LogError::Malformed(e.to_string()))?;
        self.commit();
        Ok(())
    }

    /// Retracts a wrong reading with a reason. It stays in the document's
    /// history but leaves views and statistics.
    pub fn retract(&mut self, id: ReadingId, reason: &str, time_ms: i64) -> Result<(), LogError> {
        Self::check_text(reason)?;
        self.require(id)?;
        let mut v = Vec::with_capacity(24 + reason.len());
        v.extend_from_slice(&self.device.0);
        v.extend_from_slice(&time_ms.to_be_bytes());
        v.extend_from_slice(reason.as_bytes());
        self.doc
            .put(&self.retractions, id.to_string(), v)
            .map_err(|e| LogError::Malformed(e.to_string()))?;
        self.commit();
        Ok(())
    }

    /// Takes back a retraction: the reading counts again in views and
    /// statistics. Returns the retraction removed (the one shown).
    ///
    /// CRDT-safe: deleting the key removes every retraction this device has
    /// seen; a retraction another device makes concurrently is not seen, so
    /// it survives the merge and the reading stays retracted (a retraction
    /// is the cautious outcome), which the resident can then undo again.
    pub fn unretract(&mut self, id: ReadingId) -> Result<Retraction, LogError> {
        self.require(id)?;
        let Some(r) = self.retraction(id) else {
            return Err(LogError::NotRetracted(id));
        };
        self.doc
            .delete(&self.retractions, id.to_string())
            .map_err(|e| LogError::Malformed(e.to_string()))?;
        self.commit();
        Ok(r)
    }

    /// Sets one symptom of a day's check-in. Setting a value that is in
    /// conflict resolves the conflict.
    pub fn check_in(
        &mut self,
        day: Day,
        symptom: Symptom,
        severity: Severity,
    ) -> Result<(), LogError> {
        self.require_init()?;
        self.doc
            .put(&self.checkins, checkin_key(day, symptom), severity.name())
            .map_err(|e| LogError::Malformed(e.to_string()))?;
        self.commit();
        Ok(())
    }

    /// Readings of `metric` (all metrics if `None`) with `from_ms <= time < to_ms`
    /// (`to_ms` = `i64::MAX`: no end, a reading at `i64::MAX` included),
    /// sorted by (time, id); retracted ones only if `include_retracted`.
    pub fn readings(
        &self,
        metric: Option<Metric>,
        from_ms: i64,
        to_ms: i64,
        include_retracted: bool,
    ) -> Vec<Reading> {
        let retracted = if include_retracted {
            Default::default()
        } else {
            self.retracted_ids()
        };
        let mut out: Vec<Reading> = self
            .view_ref()
            .cache
            .iter()
            .filter(|r| metric.is_none_or(|m| r.metric == m))
            // `to_ms` = i64::MAX means no end: the log accepts a reading at
            // i64::MAX (any time from 0), which must not become invisible.
            .filter(|r| r.time_ms >= from_ms && (r.time_ms < to_ms || to_ms == i64::MAX))
            .filter(|r| !retracted.contains_key(&r.id))
            .copied()
            .collect();
        out.sort_by_key(|r| (r.time_ms, r.id));
        out
    }

    /// The reading with this id, if present.
    pub fn reading(&self, id: ReadingId) -> Option<Reading> {
        let v = self.view_ref();
        if id.device == self.device && id.seq >= v.next_seq {
            return None;
        }
        v.index().get(&id).map(|&i| v.cache[i])
    }

    /// Number of readings in the document (retracted included).
    pub fn len(&self) -> usize {
        self.view_ref().cache.len()
    }

    /// Whether the log holds no readings.
    pub fn is_empty(&self) -> bool {
        self.view_ref().cache.is_empty()
    }

    /// List entries that could not be decoded (written by a newer version, or damaged).
    pub fn unreadable_entries(&self) -> usize {
        self.view_ref().unreadable
    }

    fn retracted_ids(&self) -> HashMap<ReadingId, ()> {
        self.doc
            .map_range(&self.retractions, ..)
            .filter_map(|item| item.key.parse::<ReadingId>().ok())
            .map(|id| (id, ()))
            .collect()
    }

    /// The retraction of a reading, if any (the winning one if concurrent).
    pub fn retraction(&self, id: ReadingId) -> Option<Retraction> {
        match self.doc.get(&self.retractions, id.to_string()) {
            Ok(Some((Value::Scalar(s), _))) => decode_retraction(s.as_ref()),
            _ => None,
        }
    }

    /// Every concurrent annotation of a reading; the first is the one shown.
    pub fn annotation(&self, id: ReadingId) -> Vec<String> {
        self.all_strings(&self.annotations, &id.to_string())
    }

    /// A day's check-in: every symptom set, with all concurrent values.
    pub fn checkin(&self, day: Day) -> BTreeMap<Symptom, Vec<Severity>> {
        Symptom::ALL
            .into_iter()
            .filter_map(|s| {
                let v = self.checkin_values(day, s);
                (!v.is_empty()).then_some((s, v))
            })
            .collect()
    }

    fn checkin_values(&self, day: Day, symptom: Symptom) -> Vec<Severity> {
        self.checkin_values_by(day, symptom)
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    /// A check-in's values with the device that set each.
    fn checkin_values_by(&self, day: Day, symptom: Symptom) -> Vec<(Severity, Option<DeviceId>)> {
        self.all_strings_by(&self.checkins, &checkin_key(day, symptom))
            .into_iter()
            .filter_map(|(s, by)| Some((s.parse().ok()?, by)))
            .collect()
    }

    /// Values at `key`, the winning one first, then the others in op order.
    fn all_strings(&self, obj: &ObjId, key: &str) -> Vec<String> {
        self.all_strings_by(obj, key)
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    /// [`Self::all_strings`] with the device that set each value: the
    /// actor of its op, which is the device id (`None` for an actor that is
    /// not 16 bytes, which no Vigil device writes).
    fn all_strings_by(&self, obj: &ObjId, key: &str) -> Vec<(String, Option<DeviceId>)> {
        let mut all: Vec<(String, Option<DeviceId>)> = self
            .doc
            .get_all(obj, key)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(v, id)| {
                let by = match &id {
                    ObjId::Id(_, actor, _) => {
                        <[u8; 16]>::try_from(actor.to_bytes()).ok().map(DeviceId)
                    }
                    ObjId::Root => None,
                };
                v.as_str().map(|s| (s.to_owned(), by))
            })
            .collect();
        // Automerge's winner is the value with the greatest op id: the last.
        all.reverse();
        all
    }

    /// The device that set each of a conflict's values, in the order of its
    /// `values` (the same length). `None` for a value whose author is not a
    /// device id, which no Vigil device writes.
    pub fn conflict_devices(&self, conflict: &Conflict) -> Vec<Option<DeviceId>> {
        match conflict {
            Conflict::CheckIn { day, symptom, .. } => self
                .checkin_values_by(*day, *symptom)
                .into_iter()
                .map(|(_, by)| by)
                .collect(),
            Conflict::Annotation { reading, .. } => self
                .all_strings_by(&self.annotations, &reading.to_string())
                .into_iter()
                .map(|(_, by)| by)
                .collect(),
        }
    }

    /// Every unresolved conflict, check-ins first, in key order.
    pub fn conflicts(&self) -> Vec<Conflict> {
        let mut out = Vec::new();
        for item in self.doc.map_range(&self.checkins, ..) {
            if !item.conflict {
                continue;
            }
            if let Some((day, symptom)) = parse_checkin_key(&item.key) {
                out.push(Conflict::CheckIn {
                    day,
                    symptom,
                    values: self.checkin_values(day, symptom),
                });
            }
        }
        for item in self.doc.map_range(&self.annotations, ..) {
            if !item.conflict {
                continue;
            }
            if let Ok(reading) = item.key.parse::<ReadingId>() {
                out.push(Conflict::Annotation {
                    reading,
                    values: self.annotation(reading),
                });
            }
        }
        out
    }

    /// Per-day min / max / mean / count for each metric, over non-retracted
    /// readings, by UTC day.
    pub fn daily_summaries(&self, metric: Option<Metric>) -> Vec<DailySummary> {
        self.daily_summaries_by(metric, Day::of)
    }

    /// [`Self::daily_summaries`] by the days `day_of` assigns to a reading's
    /// time (ms): the caller's local day, so that a resident's evening
    /// readings count for that evening's date. The time zone is the
    /// caller's to choose; the log never reads one.
    pub fn daily_summaries_by(
        &self,
        metric: Option<Metric>,
        day_of: impl Fn(i64) -> Day,
    ) -> Vec<DailySummary> {
        let mut acc: BTreeMap<(Day, Metric), (f64, f64, f64, usize)> = BTreeMap::new();
        for r in self.readings(metric, i64::MIN, i64::MAX, false) {
            let e = acc.entry((day_of(r.time_ms), r.metric)).or_insert((
                f64::INFINITY,
                f64::NEG_INFINITY,
                0.0,
                0,
            ));
            e.0 = e.0.min(r.value);
            e.1 = e.1.max(r.value);
            e.2 += r.value;
            e.3 += 1;
        }
        acc.into_iter()
            .map(|((day, metric), (min, max, sum, count))| DailySummary {
                day,
                metric,
                min,
                max,
                mean: sum / count as f64,
                count,
            })
            .collect()
    }

    /// Fever episodes in the merged log under `rule` (docs/spec.md §7).
    pub fn fever_episodes(&self, rule: &FeverRule) -> Vec<FeverEpisode> {
        episodes(
            rule,
            &self.readings(Some(Metric::BodyTemperature), i64::MIN, i64::MAX, false),
        )
    }

    /// Fever episodes counting retracted readings too: what a device may
    /// already have alerted before a reading was retracted.
    pub fn fever_episodes_including_retracted(&self, rule: &FeverRule) -> Vec<FeverEpisode> {
        episodes(
            rule,
            &self.readings(Some(Metric::BodyTemperature), i64::MIN, i64::MAX, true),
        )
    }

    /// The episode in progress under `rule`, if the latest one has not ended.
    pub fn current_fever(&self, rule: &FeverRule) -> Option<FeverEpisode> {
        self.fever_episodes(rule)
            .pop()
            .filter(|e| e.end_ms.is_none())
    }

    /// The whole visible state, canonically ordered, for comparing replicas.
    ///
    /// One pass over each map: a key with a single value takes it from the
    /// pass, and only a key in conflict (or not in the canonical form the
    /// lookups use) is looked up for all its values, as
    /// [`HealthLog::annotation`], [`HealthLog::retraction`] and
    /// [`HealthLog::checkin`] do. A lookup per key cost more than the rest.
    pub fn view(&self) -> LogView {
        let text = |v: &automerge::ValueRef<'_>| match v {
            automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(s)) => {
                Some(s.as_ref().to_owned())
            }
            _ => None,
        };
        let mut annotations = BTreeMap::new();
        for item in self.doc.map_range(&self.annotations, ..) {
            if let Ok(id) = item.key.parse::<ReadingId>() {
                let mut v = if !item.conflict && item.key == id.to_string() {
                    text(&item.value).into_iter().collect()
                } else {
                    self.annotation(id)
                };
                v.sort();
                annotations.insert(id, v);
            }
        }
        let mut retractions = BTreeMap::new();
        for item in self.doc.map_range(&self.retractions, ..) {
            let Ok(id) = item.key.parse::<ReadingId>() else {
                continue;
            };
            let r = if item.key == id.to_string() {
                // The winning value, which is what `retraction` looks up.
                match &item.value {
                    automerge::ValueRef::Scalar(automerge::ScalarValueRef::Bytes(b)) => {
                        decode_retraction_bytes(b)
                    }
                    _ => None,
                }
            } else {
                self.retraction(id)
            };
            if let Some(r) = r {
                retractions.insert(id, r);
            }
        }
        let mut checkins = BTreeMap::new();
        for item in self.doc.map_range(&self.checkins, ..) {
            if let Some(k) = parse_checkin_key(&item.key) {
                let mut v = if !item.conflict && item.key == checkin_key(k.0, k.1) {
                    text(&item.value)
                        .and_then(|s| s.parse::<Severity>().ok())
                        .into_iter()
                        .collect()
                } else {
                    self.checkin_values(k.0, k.1)
                };
                v.sort();
                checkins.insert(k, v);
            }
        }
        LogView {
            readings: self.readings(None, i64::MIN, i64::MAX, true),
            annotations,
            retractions,
            checkins,
        }
    }

    /// Merges another replica's changes into this one.
    pub fn merge(&mut self, other: &mut HealthLog) -> Result<(), LogError> {
        // Even a merge that fails may leave changes of other devices in.
        self.own.unsaved = None;
        self.doc
            .merge(&mut other.doc)
            .map_err(|e| LogError::Malformed(e.to_string()))?;
        self.after_import()
    }

    /// Applies a chunk from [`HealthLog::unsaved`] or [`HealthLog::save`]
    /// of another replica. Changes whose dependencies are missing are queued
    /// by Automerge until they arrive.
    pub fn apply(&mut self, chunk: &[u8]) -> Result<(), LogError> {
        if !self.is_initialised() && self.doc.is_empty() {
            // A joining device's first download: a full load is much faster
            // than importing a whole document incrementally.
            if let Ok(doc) = AutoCommit::load(chunk) {
                self.doc = doc.with_actor(ActorId::from(&self.device.0[..]));
                self.own = OwnChanges::default();
                return self.after_import();
            }
        }
        let heads = self.doc.get_heads();
        // Even a chunk that fails part-way may leave changes of other
        // devices in: what is unsaved is no longer only ours.
        self.own.unsaved = None;
        self.doc
            .load_incremental(chunk)
            .map_err(|e| LogError::Malformed(e.to_string()))?;
        if self.is_initialised() && self.doc.get_heads() == heads {
            // Nothing entered the document (all known, or waiting for
            // dependencies): the decoded view stands. A change that waits
            // still changes `save()`, which keeps it.
            self.last_save = None;
            self.last_save_with = None;
            return Ok(());
        }
        self.after_import()
    }

    /// After changes arrived: find the schema's objects if this replica
    /// started empty, and rebuild the decoded view.
    fn after_import(&mut self) -> Result<(), LogError> {
        // Other devices' changes are now unsaved too.
        self.own.unsaved = None;
        // And one of them may have written the schema version.
        self.doc_schema = None;
        // Changes that wait for dependencies change `save()` (it keeps
        // them) but not the heads.
        self.last_save = None;
        self.last_save_with = None;
        if !self.is_initialised() && self.doc.get(ROOT, K_SCHEMA).ok().flatten().is_some() {
            let doc = std::mem::take(&mut self.doc);
            let saved = std::mem::take(&mut self.saved_heads);
            let staged = self.take_staged();
            // The view is not built here: it is built once, when first
            // needed, with the staged readings.
            let mut fresh = Self::from_doc(doc, self.device)?;
            fresh.saved_heads = saved;
            fresh.pending = staged;
            *self = fresh;
            return Ok(());
        }
        self.invalidate();
        Ok(())
    }

    fn require_init(&self) -> Result<(), LogError> {
        if self.is_initialised() {
            Ok(())
        } else {
            Err(LogError::NotInitialised)
        }
    }

    /// The compact whole document (Automerge `save()`).
    pub fn save(&mut self) -> Vec<u8> {
        let heads = self.doc.get_heads();
        if let Some((at, bytes)) = &self.last_save
            && *at == heads
        {
            return bytes.clone();
        }
        let bytes = self.doc.save();
        self.last_save = Some((heads, bytes.clone()));
        bytes
    }

    /// [`HealthLog::save`], with the columns compressed by `compress`: it
    /// is given the document saved with no column compressed (Automerge's
    /// `save_nocompress()`) and returns the document as `save()` gives it,
    /// or `None` to have Automerge compress it. Automerge sets up a fresh
    /// DEFLATE compressor for each large column, and zlib zeroes ~300 KiB
    /// to set one up; a caller that keeps a compressor only resets it, or
    /// leaves small columns as they are. Cached by heads like `save()`,
    /// apart from it: `compress` may return other bytes for the same
    /// document, and `save()` stays Automerge's own.
    pub fn save_compressing_with(
        &mut self,
        compress: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
    ) -> Vec<u8> {
        let heads = self.doc.get_heads();
        if let Some((at, bytes)) = &self.last_save_with
            && *at == heads
        {
            return bytes.clone();
        }
        let plain = self.doc.save_nocompress();
        let bytes = match compress(&plain) {
            Some(bytes) => bytes,
            None => self.doc.save(),
        };
        self.last_save_with = Some((heads, bytes.clone()));
        bytes
    }

    /// The whole document with no column compressed (Automerge's
    /// `save_nocompress()`); loads like [`HealthLog::save`]'s bytes.
    pub fn save_uncompressed(&mut self) -> Vec<u8> {
        self.doc.save_nocompress()
    }

    /// The changes made or received since the last [`HealthLog::mark_saved`]
    /// (or since load), as one incremental chunk (empty if none), and the
    /// heads to pass to `mark_saved` once the chunk is durable. Until then the
    /// same changes are offered again, so a failed write loses nothing.
    pub fn unsaved(&mut self) -> (Vec<u8>, Vec<ChangeHash>) {
        let heads = self.doc.get_heads();
        if heads == self.saved_heads {
            return (Vec::new(), heads);
        }
        // Only own changes committed here since the last save: their raw
        // bytes, in commit order, are the chunk (Automerge's `save_after`
        // gives the same: one chain of changes). Each is built alone,
        // unless kept, and kept for the next bundle.
        if let Some(list) = self.own.unsaved.clone()
            && !list.is_empty()
        {
            let mut out = Vec::new();
            let mut all = true;
            for h in &list {
                if let Some(b) = self.own.bytes_of(h) {
                    out.extend_from_slice(b);
                } else if let Some(c) = self.doc.get_change_by_hash(h) {
                    let bytes = c.raw_bytes();
                    self.own.learn(*h, bytes);
                    out.extend_from_slice(bytes);
                } else {
                    // Committed here, so in the document: cannot happen.
                    all = false;
                    break;
                }
            }
            if all {
                return (out, heads);
            }
        }
        // Fast path for the common case, one local change on top of what is
        // saved: its raw bytes are the chunk, with no walk of the change graph.
        if let [head] = heads.as_slice()
            && let Some(change) = self.doc.get_last_local_change()
            && change.hash() == *head
            && change.deps() == self.saved_heads.as_slice()
        {
            let bytes = change.raw_bytes().to_vec();
            self.own.learn(*head, &bytes);
            return (bytes, heads);
        }
        (self.doc.save_after(&self.saved_heads), heads)
    }

    /// Records that everything in the document now is stored (cheaper than
    /// [`HealthLog::unsaved`] when the caller stored it another way).
    pub fn mark_all_saved(&mut self) {
        self.saved_heads = self.doc.get_heads();
        self.own.unsaved = Some(Vec::new());
    }

    /// Records that everything up to `heads` is stored.
    pub fn mark_saved(&mut self, heads: Vec<ChangeHash>) {
        // Only heads of the whole document say what is unsaved after them.
        self.own.unsaved = (heads == self.doc.get_heads()).then(Vec::new);
        self.saved_heads = heads;
    }

    /// This device's own changes that `heads` does not already include,
    /// concatenated (an incremental chunk), and how many there are.
    ///
    /// Asked again with the heads after the last non-empty answer (a
    /// sync's next bundle), it answers from the changes committed here
    /// since, without walking Automerge's change graph. Changes of this
    /// device's actor that arrive by [`HealthLog::apply`] or
    /// [`HealthLog::merge`] instead (only possible for a replica rolled
    /// back behind what it sent) are then left out: whoever sent them
    /// holds them already. After a load, or with other heads, the walk
    /// answers, and includes them.
    pub fn own_changes_since(&mut self, heads: &[ChangeHash]) -> (Vec<u8>, usize) {
        if self.own.mark.as_deref() != Some(heads) {
            return self.own_changes_walked(heads);
        }
        // Heads that covered every own change when taken: what they do not
        // cover is exactly what was committed here since, whose bytes a
        // persist mostly kept already (a missing one is built on its own,
        // not with the whole range since `heads`).
        let mut out = Vec::new();
        for (hash, bytes) in &mut self.own.since {
            if bytes.is_none() {
                *bytes = self
                    .doc
                    .get_change_by_hash(hash)
                    .map(|c| c.raw_bytes().to_vec());
            }
            match bytes {
                Some(b) => out.extend_from_slice(b),
                // A change committed here is in the document: cannot
                // happen, but the walk answers it anyway.
                None => return self.own_changes_walked(heads),
            }
        }
        let n = self.own.since.len();
        if n > 0 {
            // A caller that got some passes the current heads next.
            let now = self.doc.get_heads();
            self.own.mark_at(now);
        }
        (out, n)
    }

    /// [`HealthLog::own_changes_since`] from Automerge's change graph; the
    /// own changes' record restarts at the heads the caller passes next.
    fn own_changes_walked(&mut self, heads: &[ChangeHash]) -> (Vec<u8>, usize) {
        let (out, n) = self.own_changes_in_graph(heads);
        // None of ours past `heads`: they cover every own change, as the
        // current heads do (which a caller that got some passes next).
        let mark = if n == 0 {
            heads.to_vec()
        } else {
            self.doc.get_heads()
        };
        self.own.mark_at(mark);
        (out, n)
    }

    /// [`HealthLog::own_changes_since`] from Automerge's change graph.
    fn own_changes_in_graph(&mut self, heads: &[ChangeHash]) -> (Vec<u8>, usize) {
        let me = ActorId::from(&self.device.0[..]);
        // Automerge rebuilds (re-encodes) every change it returns, and the
        // changes since `heads` are mostly other devices' (received since
        // the last bundle). Their metadata, which costs no rebuilding, says
        // which are this device's, in the order `get_changes` gives.
        let mut own = Vec::new();
        let mut have = heads.to_vec();
        for m in self.doc.get_changes_meta(heads) {
            if *m.actor == me {
                own.push(m.hash);
            } else {
                have.push(m.hash);
            }
        }
        if own.is_empty() {
            return (Vec::new(), 0);
        }
        // Build only this device's: with the others' changes counted as
        // had, what is left is ours, unless another device's change depends
        // on one of ours (it then counts ours as had too): then build all.
        let mut built: HashMap<ChangeHash, automerge::Change> = self
            .doc
            .get_changes(&have)
            .into_iter()
            .map(|c| (c.hash(), c))
            .collect();
        if !own.iter().all(|h| built.contains_key(h)) {
            built = self
                .doc
                .get_changes(heads)
                .into_iter()
                .map(|c| (c.hash(), c))
                .collect();
        }
        let mut out = Vec::new();
        let mut n = 0;
        for c in own.iter().filter_map(|h| built.get(h)) {
            out.extend_from_slice(c.raw_bytes());
            n += 1;
        }
        (out, n)
    }

    /// How many changes wait for dependencies that have not arrived.
    pub fn missing_deps(&mut self) -> usize {
        self.doc.get_missing_deps(&[]).len()
    }

    /// The document's current heads.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }
}

/// The schema version `doc` carries, if any (0 if not a number).
fn schema_version(doc: &AutoCommit) -> Option<u64> {
    match doc.get(ROOT, K_SCHEMA) {
        Ok(Some((Value::Scalar(s), _))) => Some(match s.as_ref() {
            ScalarValue::Uint(v) => *v,
            ScalarValue::Int(v) => u64::try_from(*v).unwrap_or(0),
            _ => 0,
        }),
        _ => None,
    }
}

fn checkin_key(day: Day, symptom: Symptom) -> String {
    format!("{day}/{symptom}")
}

fn parse_checkin_key(key: &str) -> Option<(Day, Symptom)> {
    let (d, s) = key.split_once('/')?;
    Some((d.parse().ok()?, s.parse().ok()?))
}

fn decode_retraction(v: &ScalarValue) -> Option<Retraction> {
    let ScalarValue::Bytes(b) = v else {
        return None;
    };
    decode_retraction_bytes(b)
}

fn decode_retraction_bytes(b: &[u8]) -> Option<Retraction> {
    if b.len() < 24 {
        return None;
    }
    let mut by = [0u8; 16];
    by.copy_from_slice(&b[..16]);
    let mut t = [0u8; 8];
    t.copy_from_slice(&b[16..24]);
    Some(Retraction {
        by: DeviceId(by),
        time_ms: i64::from_be_bytes(t),
        reason: String::from_utf8_lossy(&b[24..]).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition of [`HealthLog::own_changes_since`]: every
    /// change `heads` does not include, built, then this device's kept.
    fn plain_own_changes_since(log: &mut HealthLog, heads: &[ChangeHash]) -> (Vec<u8>, usize) {
        let me = ActorId::from(&log.device.0[..]);
        let mut out = Vec::new();
        let mut n = 0;
        for c in log.doc.get_changes(heads) {
            if c.actor_id() == &me {
                out.extend_from_slice(c.raw_bytes());
                n += 1;
            }
        }
        (out, n)
    }

    /// The plain definition of [`HealthLog::view`]: every key of the three
    /// maps looked up on its own, all concurrent values each time.
    fn view_by_key(log: &HealthLog) -> LogView {
        let mut annotations = BTreeMap::new();
        for item in log.doc.map_range(&log.annotations, ..) {
            if let Ok(id) = item.key.parse::<ReadingId>() {
                let mut v = log.annotation(id);
                v.sort();
                annotations.insert(id, v);
            }
        }
        let mut retractions = BTreeMap::new();
        for item in log.doc.map_range(&log.retractions, ..) {
            if let Some((id, r)) = item
                .key
                .parse::<ReadingId>()
                .ok()
                .and_then(|id| Some((id, log.retraction(id)?)))
            {
                retractions.insert(id, r);
            }
        }
        let mut checkins = BTreeMap::new();
        for item in log.doc.map_range(&log.checkins, ..) {
            if let Some(k) = parse_checkin_key(&item.key) {
                let mut v = log.checkin_values(k.0, k.1);
                v.sort();
                checkins.insert(k, v);
            }
        }
        LogView {
            readings: log.readings(None, i64::MIN, i64::MAX, true),
            annotations,
            retractions,
            checkins,
        }
    }

    /// Replicas annotate, retract, take retractions back and check in,
    /// concurrently (conflicts), and write keys no Vigil device writes (a
    /// non-canonical id, a value of the wrong type): `view` equals the
    /// per-key definition at every step, on every replica.
    #[test]
    fn view_is_the_per_key_definition() {
        const T0: i64 = 1_790_000_000_000;
        for round in 1..=12u64 {
            let mut rng = Rng(round.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
            let mut first = HealthLog::new(DeviceId([1; 16]));
            for i in 0..4 {
                first
                    .record(Metric::HeartRate, 60.0, Unit::BeatsPerMinute, T0 + i)
                    .expect("a valid reading");
            }
            let saved = first.save();
            let mut reps = vec![first];
            for d in 2..=3u8 {
                reps.push(HealthLog::load(&saved, DeviceId([d; 16])).expect("a saved log loads"));
            }
            for step in 0..60 {
                let w = rng.next(3);
                let known = reps[w].readings(None, i64::MIN, i64::MAX, true);
                let id = known[rng.next(known.len())].id;
                match rng.next(8) {
                    0 | 1 => reps[w]
                        .annotate(id, &format!("note {}", rng.next(3)))
                        .expect("known"),
                    2 => reps[w].retract(id, "wrong", T0 + step).expect("known"),
                    3 => {
                        let _ = reps[w].unretract(id);
                    }
                    4 => {
                        let sev = [Severity::None, Severity::Mild, Severity::Severe][rng.next(3)];
                        reps[w]
                            .check_in(Day::of(T0), Symptom::ALL[rng.next(3)], sev)
                            .expect("an initialised log");
                    }
                    5 => {
                        // What no Vigil device writes: an upper-case id, a
                        // number where text belongs, a check-in in the wrong case.
                        let r = &mut reps[w];
                        let key = id.to_string().to_uppercase();
                        match rng.next(3) {
                            0 => r.doc.put(&r.annotations, key, "odd").expect("a put"),
                            1 => r.doc.put(&r.annotations, id.to_string(), 7).expect("a put"),
                            _ => r
                                .doc
                                .put(
                                    &r.checkins,
                                    checkin_key(Day::of(T0), Symptom::ALL[0]),
                                    "SEVERE",
                                )
                                .expect("a put"),
                        }
                        r.doc.commit();
                    }
                    _ => {
                        let from = rng.next(3);
                        if from != w {
                            let whole = reps[from].save();
                            reps[w].apply(&whole).expect("a save applies");
                        }
                    }
                }
                for (i, r) in reps.iter().enumerate() {
                    assert_eq!(
                        r.view(),
                        view_by_key(r),
                        "round {round} step {step}: replica {i}"
                    );
                }
            }
            assert!(
                reps.iter().any(|r| !r.conflicts().is_empty()),
                "round {round}: no conflict was exercised"
            );
        }
    }

    /// The plain definition of [`HealthLog::apply`] on an initialised log:
    /// Automerge's incremental load of the whole chunk, then the decoded
    /// view rebuilt.
    fn apply_plain(log: &mut HealthLog, chunk: &[u8]) -> Result<(), LogError> {
        log.doc
            .load_incremental(chunk)
            .map_err(|e| LogError::Malformed(e.to_string()))?;
        log.after_import()
    }

    /// An exact copy of a replica (same actor, same history, same cache).
    fn twin(log: &HealthLog) -> HealthLog {
        HealthLog {
            doc: log.doc.clone(),
            device: log.device,
            readings: log.readings.clone(),
            annotations: log.annotations.clone(),
            retractions: log.retractions.clone(),
            checkins: log.checkins.clone(),
            doc_schema: log.doc_schema,
            view: log.view.clone(),
            pending: log.pending.clone(),
            saved_heads: log.saved_heads.clone(),
            own: log.own.clone(),
            last_save: log.last_save.clone(),
            last_save_with: log.last_save_with.clone(),
        }
    }

    /// Three replicas record (some readings staged, not folded), annotate,
    /// retract and check in, and exchange what a sync carries: whole saves
    /// (new, partly known, or wholly known), own changes, and their
    /// concatenations in either order, some cut short. Each payload goes to
    /// the replica by `apply` and to its exact twin by the plain definition:
    /// the same result (Ok or the same error), then the same heads, view,
    /// staged readings, missing dependencies and saved document.
    #[test]
    fn apply_is_the_incremental_load() {
        const T0: i64 = 1_790_000_000_000;
        let mut kinds = [0usize; 7];
        for round in 1..=20u64 {
            let mut rng = Rng(round.wrapping_mul(0xd6e8_feb8_6659_fd93) | 1);
            let (mut reps, saved) = three_replicas();
            let mut old: Vec<Vec<u8>> = vec![saved];
            for step in 0..80 {
                let w = rng.next(3);
                let t = T0 + step * 60_000;
                match rng.next(10) {
                    0..=2 => {
                        reps[w]
                            .stage(
                                Metric::HeartRate,
                                60.0 + rng.next(40) as f64,
                                Unit::BeatsPerMinute,
                                t,
                            )
                            .expect("a valid reading");
                        if rng.next(2) == 0 {
                            reps[w].fold().expect("a fold");
                        }
                    }
                    3 => {
                        let known = reps[w].readings(None, i64::MIN, i64::MAX, true);
                        let id = known.get(rng.next(known.len().max(1))).map(|r| r.id);
                        if let Some(id) = id {
                            let _ = if rng.next(2) == 0 {
                                reps[w].annotate(id, &format!("note {step}"))
                            } else {
                                reps[w].retract(id, "wrong", t)
                            };
                        }
                    }
                    4 => {
                        let sev = [Severity::None, Severity::Mild][rng.next(2)];
                        reps[w]
                            .check_in(Day::of(T0), Symptom::ALL[rng.next(3)], sev)
                            .expect("an initialised log");
                    }
                    _ => {
                        let from = rng.next(3);
                        let whole = reps[from].save();
                        let heads = reps[w].heads();
                        let (own, _) = reps[from].own_changes_since(&heads);
                        let kind = rng.next(7);
                        kinds[kind] += 1;
                        let payload = match kind {
                            0 | 1 => whole.clone(),
                            2 => old[rng.next(old.len())].clone(),
                            3 => [whole.clone(), own].concat(),
                            4 => [own, whole.clone()].concat(),
                            5 => [old[rng.next(old.len())].clone(), whole.clone()].concat(),
                            _ => whole[..whole.len() - 1 - rng.next(whole.len() / 2)].to_vec(),
                        };
                        old.push(whole);
                        let mut plain = twin(&reps[w]);
                        let got = reps[w].apply(&payload);
                        let want = apply_plain(&mut plain, &payload);
                        let r = &mut reps[w];
                        let at =
                            format!("round {round} step {step}: replica {w}, payload kind {kind}");
                        assert_eq!(got.is_ok(), want.is_ok(), "{at}: {got:?} against {want:?}");
                        assert_eq!(r.heads(), plain.heads(), "{at}");
                        assert_eq!(r.view(), plain.view(), "{at}");
                        assert_eq!(r.staged(), plain.staged(), "{at}");
                        assert_eq!(r.missing_deps(), plain.missing_deps(), "{at}");
                        assert_eq!(r.len(), plain.len(), "{at}");
                        assert_eq!(r.save(), plain.save(), "{at}");
                    }
                }
            }
        }
        assert!(
            kinds.iter().all(|&k| k > 20),
            "every payload kind exercised: {kinds:?}"
        );
    }

    /// Three replicas of one new log (devices 1, 2 and 3), and the save
    /// the other two loaded.
    fn three_replicas() -> (Vec<HealthLog>, Vec<u8>) {
        let mut first = HealthLog::new(DeviceId([1; 16]));
        let saved = first.save();
        let mut reps = vec![first];
        for d in 2..=3u8 {
            reps.push(HealthLog::load(&saved, DeviceId([d; 16])).expect("a saved log loads"));
        }
        (reps, saved)
    }

    /// Replicas edit, save, and receive saves and change chunks, some of
    /// which wait for dependencies that have not arrived (they change
    /// `save()`, which keeps them, but not the heads): after every step,
    /// `save()` gives what Automerge's own save of the document gives now.
    #[test]
    fn save_is_the_documents_save() {
        const T0: i64 = 1_790_000_000_000;
        let mut queued = 0;
        for round in 1..=12u64 {
            let mut rng = Rng(round.wrapping_mul(0xa076_1d64_78bd_642f) | 1);
            let (mut reps, _) = three_replicas();
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            for step in 0..80 {
                let w = rng.next(3);
                let t = T0 + step * 60_000;
                match rng.next(6) {
                    0 | 1 => {
                        reps[w]
                            .stage(Metric::HeartRate, 60.0, Unit::BeatsPerMinute, t)
                            .expect("a valid reading");
                        reps[w].fold().expect("a fold");
                        let (chunk, heads) = reps[w].unsaved();
                        reps[w].mark_saved(heads);
                        chunks.push(chunk);
                    }
                    2 => {
                        let sev = [Severity::None, Severity::Mild][rng.next(2)];
                        reps[w]
                            .check_in(Day::of(T0), Symptom::ALL[rng.next(3)], sev)
                            .expect("an initialised log");
                    }
                    3 => {
                        let from = rng.next(3);
                        let whole = reps[from].save();
                        reps[w].apply(&whole).expect("a save applies");
                    }
                    _ => {
                        // A later chunk alone: it may wait for earlier ones.
                        if !chunks.is_empty() {
                            let c = chunks[rng.next(chunks.len())].clone();
                            let before = reps[w].missing_deps();
                            reps[w].apply(&c).expect("a chunk applies");
                            queued += usize::from(reps[w].missing_deps() > before);
                        }
                    }
                }
                for (i, r) in reps.iter_mut().enumerate() {
                    let want = r.doc.clone().save();
                    assert_eq!(r.save(), want, "round {round} step {step}: replica {i}");
                }
            }
        }
        assert!(queued > 5, "only {queued} chunks waited for dependencies");
    }

    /// The plain definition of [`HealthLog::fold`]: each staged reading
    /// inserted at the end of the list on its own, then one commit.
    fn fold_plain(log: &mut HealthLog) -> usize {
        log.view_mut();
        let v = log.view.get_mut().expect("view_mut built it");
        for (i, r) in v.staged.iter().enumerate() {
            log.doc
                .insert(&log.readings, v.readings_len + i, r.encode().to_vec())
                .expect("an index within the list");
        }
        // As every local commit: its hash kept for `own_changes_since`.
        let hash = log.doc.commit();
        log.own.committed(hash);
        let n = v.staged.len();
        v.readings_len += n;
        v.staged.clear();
        n
    }

    /// The list's elements: their bytes, `None` for one that is not bytes.
    fn elements(log: &HealthLog) -> Vec<Option<Vec<u8>>> {
        log.doc
            .list_range(&log.readings, ..)
            .map(|item| match item.value {
                automerge::ValueRef::Scalar(automerge::ScalarValueRef::Bytes(b)) => {
                    Some(b.to_vec())
                }
                _ => None,
            })
            .collect()
    }

    /// The schema version the document carries.
    fn schema_of(log: &HealthLog) -> Option<u64> {
        match log.doc.get(ROOT, K_SCHEMA) {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Uint(v) => Some(*v),
                _ => None,
            },
            _ => None,
        }
    }

    /// Readings' encodings back to back: a block.
    fn block_of(readings: &[Reading]) -> Vec<u8> {
        readings.iter().flat_map(|r| r.encode()).collect()
    }

    /// A valid heart-rate reading of `device`.
    fn heart(device: DeviceId, seq: u64, time_ms: i64) -> Reading {
        Reading {
            id: ReadingId { device, seq },
            time_ms,
            metric: Metric::HeartRate,
            value: 60.0 + (seq % 40) as f64,
        }
    }

    /// Every reading of `log`, sorted as views sort them.
    fn all(log: &HealthLog) -> Vec<Reading> {
        log.readings(None, i64::MIN, i64::MAX, true)
    }

    fn sorted(mut rs: Vec<Reading>) -> Vec<Reading> {
        rs.sort_by_key(|r| (r.time_ms, r.id));
        rs
    }

    /// Replicas stage, fold and exchange changes (so the list ends in other
    /// devices' concurrent blocks as well as this one's). At each fold: ONE
    /// element more, at the end of this replica's list, holding the staged
    /// readings' encodings in staging order, in ONE change; the view equals
    /// an exact twin's that folds by the per-reading definition (one
    /// element per reading), and a reload of the document alone shows it.
    #[test]
    fn a_fold_is_one_block_of_the_staged_readings() {
        const T0: i64 = 1_790_000_000_000;
        let mut folds = 0;
        for round in 1..=10u64 {
            let mut rng = Rng(round.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let (mut reps, _) = three_replicas();
            for step in 0..80 {
                let w = rng.next(3);
                let t = T0 + step * 30_000;
                match rng.next(6) {
                    0..=2 => {
                        for k in 0..=rng.next(40) as i64 {
                            reps[w]
                                .stage(
                                    Metric::HeartRate,
                                    60.0 + rng.next(40) as f64,
                                    Unit::BeatsPerMinute,
                                    t + k,
                                )
                                .expect("a valid reading");
                        }
                    }
                    3 => {
                        let from = rng.next(3);
                        if from != w {
                            reps[from].fold().expect("a fold");
                            let whole = reps[from].save();
                            reps[w].apply(&whole).expect("a save applies");
                        }
                    }
                    _ => {
                        let at = format!("round {round} step {step}");
                        let heads = reps[w].heads();
                        let staged = reps[w].staged().to_vec();
                        let before = elements(&reps[w]);
                        let mut plain = twin(&reps[w]);
                        let n = reps[w].fold().expect("a fold");
                        assert_eq!(n, staged.len(), "{at}");
                        assert_eq!(n, fold_plain(&mut plain), "{at}");
                        let after = elements(&reps[w]);
                        if n == 0 {
                            assert_eq!(after, before, "{at}");
                            assert_eq!(reps[w].heads(), heads, "{at}");
                        } else {
                            assert_eq!(after.len(), before.len() + 1, "{at}");
                            assert_eq!(after[..before.len()], before[..], "{at}");
                            assert_eq!(after[before.len()], Some(block_of(&staged)), "{at}");
                            assert_eq!(reps[w].own_changes_since(&heads).1, 1, "{at}");
                        }
                        assert!(reps[w].staged().is_empty(), "{at}");
                        assert_eq!(reps[w].view(), plain.view(), "{at}");
                        assert_eq!(reps[w].len(), plain.len(), "{at}");
                        assert_eq!(reps[w].unreadable_entries(), 0, "{at}");
                        for r in &staged {
                            assert_eq!(reps[w].reading(r.id), Some(*r), "{at}");
                        }
                        let device = reps[w].device();
                        let reloaded =
                            HealthLog::load(&reps[w].save(), device).expect("a saved log loads");
                        assert_eq!(reloaded.view(), plain.view(), "{at}");
                        assert_eq!(reloaded.len(), plain.len(), "{at}");
                        folds += usize::from(n > 1);
                    }
                }
            }
        }
        assert!(folds > 50, "only {folds} folds of several readings");
    }

    /// A log as schema-1 builds wrote it, built with Automerge directly:
    /// schema 1, one list element per reading, inserted over several
    /// changes. Its save.
    fn schema_1_log(device: DeviceId, readings: &[Reading]) -> Vec<u8> {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(&device.0[..]));
        doc.put(ROOT, K_SCHEMA, 1u64).expect("a put");
        let list = doc
            .put_object(ROOT, K_READINGS, ObjType::List)
            .expect("a list");
        for key in [K_ANNOTATIONS, K_RETRACTIONS, K_CHECKINS] {
            doc.put_object(ROOT, key, ObjType::Map).expect("a map");
        }
        doc.commit();
        for (i, r) in readings.iter().enumerate() {
            doc.insert(&list, i, r.encode().to_vec())
                .expect("an index within the list");
            if i % 3 == 2 {
                doc.commit();
            }
        }
        doc.commit();
        doc.save()
    }

    /// A vault written by a schema-1 build reads unchanged (same readings,
    /// lookups, sequence numbers). Its first fold here writes schema 2 in
    /// the same change as the block, so that a build reading only schema 1
    /// refuses the document rather than drop the block's readings; later
    /// folds do not write it again. Old and new readings stay visible,
    /// after a reload and on a replica that gets the change alone.
    #[test]
    fn a_schema_1_log_reads_unchanged_and_its_first_fold_writes_schema_2() {
        const T0: i64 = 1_790_000_000_000;
        let d1 = DeviceId([1; 16]);
        let old: Vec<Reading> = (1..=10).map(|s| heart(d1, s, T0 - s as i64)).collect();
        let saved = schema_1_log(d1, &old);

        let mut log = HealthLog::load(&saved, DeviceId([2; 16])).expect("a schema-1 log loads");
        assert_eq!(schema_of(&log), Some(1));
        assert_eq!(all(&log), sorted(old.clone()));
        assert_eq!(log.len(), old.len());
        assert_eq!(log.unreadable_entries(), 0);
        for r in &old {
            assert_eq!(log.reading(r.id), Some(*r));
        }
        let mut first = HealthLog::load(&saved, d1).expect("a schema-1 log loads");
        let next = first
            .stage(Metric::HeartRate, 70.0, Unit::BeatsPerMinute, T0)
            .expect("a valid reading");
        assert_eq!(next.id.seq, 11, "the author's sequence goes on");

        let heads = log.heads();
        let new: Vec<Reading> = (0..3)
            .map(|i| {
                log.stage(Metric::HeartRate, 61.0, Unit::BeatsPerMinute, T0 + i)
                    .expect("a valid reading")
            })
            .collect();
        assert_eq!(log.fold().expect("a fold"), 3);
        assert_eq!(schema_of(&log), Some(2), "the first fold upgrades");
        let (chunk, n) = log.own_changes_since(&heads);
        assert_eq!(n, 1, "the upgrade and the block in one change");
        let upgrade = log.doc.get_changes(&heads);
        assert_eq!(upgrade.len(), 1);
        assert_eq!(
            upgrade[0].len(),
            2,
            "one op for the schema, one for the block"
        );
        let want = sorted([old.clone(), new.clone()].concat());
        assert_eq!(all(&log), want);

        let mut other = HealthLog::load(&saved, DeviceId([3; 16])).expect("loads");
        other.apply(&chunk).expect("the change applies");
        assert_eq!(schema_of(&other), Some(2));
        assert_eq!(other.view(), log.view());
        let reloaded = HealthLog::load(&log.save(), DeviceId([2; 16])).expect("loads");
        assert_eq!(reloaded.view(), log.view());
        assert_eq!(reloaded.unreadable_entries(), 0);

        let heads = log.heads();
        log.record(Metric::HeartRate, 62.0, Unit::BeatsPerMinute, T0 + 9)
            .expect("a valid reading");
        let later = log.doc.get_changes(&heads);
        assert_eq!(later.len(), 1);
        assert_eq!(
            later[0].len(),
            1,
            "the block alone: the schema is 2 already"
        );

        // What a build that knows only the schema below sees: a document
        // carrying a newer one is refused at load.
        let mut newer = log.doc.clone();
        newer
            .put(ROOT, K_SCHEMA, SCHEMA_VERSION + 1)
            .expect("a put");
        newer.commit();
        match HealthLog::load(&newer.save(), DeviceId([4; 16])) {
            Err(LogError::NewerSchema { found, supported }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("a newer schema loaded: {other:?}"),
        }
        assert_eq!(SCHEMA_VERSION, 2);
        assert_eq!(
            schema_of(&HealthLog::new(DeviceId([5; 16]))),
            Some(2),
            "new logs write schema 2"
        );
    }

    /// Two devices fold concurrently, on a new log and on a schema-1 log
    /// (both then write schema 2): whatever way the changes travel (whole
    /// saves, own changes, a merge), every replica shows both blocks'
    /// readings and the old ones, and converged replicas' views are equal.
    #[test]
    fn concurrent_folds_merge_with_both_blocks_visible() {
        const T0: i64 = 1_790_000_000_000;
        let d1 = DeviceId([1; 16]);
        let old: Vec<Reading> = (1..=4).map(|s| heart(d1, s, T0 + 7 * s as i64)).collect();
        let starts = [
            (HealthLog::new(d1).save(), Vec::new()),
            (schema_1_log(d1, &old), old.clone()),
        ];
        for (start, old) in starts {
            let mut reps: Vec<HealthLog> = (1..=3u8)
                .map(|d| HealthLog::load(&start, DeviceId([d; 16])).expect("loads"))
                .collect();
            let heads = reps[0].heads();
            let mut folded = Vec::new();
            for (w, n) in [(0usize, 5i64), (1, 7)] {
                for k in 0..n {
                    folded.push(
                        reps[w]
                            .stage(
                                Metric::HeartRate,
                                80.0,
                                Unit::BeatsPerMinute,
                                T0 + 2 * k + w as i64,
                            )
                            .expect("a valid reading"),
                    );
                }
                assert_eq!(reps[w].fold().expect("a fold"), n as usize);
            }
            let (from_a, _) = reps[0].own_changes_since(&heads);
            let (from_b, _) = reps[1].own_changes_since(&heads);
            let save_b = reps[1].save();
            reps[0].apply(&save_b).expect("a save applies");
            reps[1].apply(&from_a).expect("a change applies");
            // The third gets B's change, then A's in a merge.
            reps[2].apply(&from_b).expect("a change applies");
            let (left, right) = reps.split_at_mut(2);
            right[0].merge(&mut left[0]).expect("a merge");
            let want = sorted([old.clone(), folded.clone()].concat());
            for (i, r) in reps.iter().enumerate() {
                assert_eq!(all(r), want, "replica {i}");
                assert_eq!(r.view(), reps[0].view(), "replica {i}");
                assert_eq!(r.unreadable_entries(), 0, "replica {i}");
                assert_eq!(elements(r).len(), old.len() + 2, "replica {i}");
                assert_eq!(schema_of(r), Some(2), "replica {i}");
            }
            for (i, r) in reps.iter_mut().enumerate() {
                let device = r.device();
                let reloaded = HealthLog::load(&r.save(), device).expect("loads");
                assert_eq!(reloaded.view(), r.view(), "replica {i}");
            }
        }
    }

    /// Damaged or foreign list elements, among good blocks and a schema-1
    /// element: a reading of a block that does not decode counts one
    /// unreadable entry and its block's other readings stay; an element of
    /// the wrong length or not bytes counts one. Lookups find exactly the
    /// readings kept; the author's next sequence number is above them all.
    #[test]
    fn a_damaged_block_loses_only_what_does_not_decode() {
        const T0: i64 = 1_790_000_000_000;
        let d1 = DeviceId([1; 16]);
        let rs: Vec<Reading> = (1..=12).map(|s| heart(d1, s, T0 + s as i64)).collect();
        let mut damaged_version = block_of(&rs[0..5]);
        damaged_version[2 * READING_LEN] = 0xff; // reading 3
        let mut damaged_metric = block_of(&rs[5..8]);
        damaged_metric[READING_LEN + 33] = 0xee; // reading 7
        let mut wrong_len = block_of(&rs[8..10]);
        wrong_len.push(0); // readings 9 and 10, one entry
        let entries: Vec<ScalarValue> = vec![
            ScalarValue::Bytes(damaged_version),
            ScalarValue::Bytes(damaged_metric),
            ScalarValue::Bytes(wrong_len),
            ScalarValue::Bytes(Vec::new()),
            ScalarValue::Str("not a reading".into()),
            ScalarValue::Bytes(rs[10].encode().to_vec()), // schema 1: a block of one
            ScalarValue::Uint(42),
            ScalarValue::Bytes(block_of(&rs[11..12])),
        ];
        let mut log = HealthLog::new(DeviceId([2; 16]));
        // A replica from before the elements arrived: it gets them by apply.
        let mut applied =
            HealthLog::load(&log.save(), DeviceId([3; 16])).expect("a saved log loads");
        log.doc
            .splice(&log.readings, 0, 0, entries)
            .expect("a splice");
        log.doc.commit();
        let kept: Vec<Reading> = rs
            .iter()
            .filter(|r| ![3, 7, 9, 10].contains(&r.id.seq))
            .copied()
            .collect();
        let saved = log.save();
        applied.apply(&saved).expect("a save applies");
        for (what, mut r) in [
            ("loaded", HealthLog::load(&saved, d1).expect("loads")),
            ("applied", applied),
        ] {
            assert_eq!(all(&r), sorted(kept.clone()), "{what}");
            assert_eq!(r.unreadable_entries(), 6, "{what}");
            assert_eq!(r.len(), kept.len(), "{what}");
            for x in &rs {
                assert_eq!(r.reading(x.id), kept.contains(x).then_some(*x), "{what}");
            }
            if r.device() == d1 {
                let next = r
                    .stage(Metric::HeartRate, 70.0, Unit::BeatsPerMinute, T0)
                    .expect("a valid reading");
                assert_eq!(next.id.seq, 13, "{what}");
                r.fold().expect("a fold");
                assert_eq!(r.unreadable_entries(), 6, "{what}");
                assert_eq!(r.len(), kept.len() + 1, "{what}");
            }
        }
    }

    /// A fold of more readings than a block holds: still one change, in
    /// blocks of at most the bound, in staging order; it round-trips
    /// through save and load (same view, the author's next sequence number
    /// above them).
    #[test]
    fn a_fold_past_the_block_bound_round_trips() {
        const T0: i64 = 1_790_000_000_000;
        let d1 = DeviceId([1; 16]);
        let n = 2 * MAX_BLOCK_READINGS + 5;
        let mut log = HealthLog::new(d1);
        let heads = log.heads();
        for i in 0..n {
            log.stage(
                Metric::HeartRate,
                60.0 + (i % 40) as f64,
                Unit::BeatsPerMinute,
                T0 + i as i64 * 1000,
            )
            .expect("a valid reading");
        }
        let staged = log.staged().to_vec();
        assert_eq!(log.fold().expect("a fold"), n);
        assert_eq!(log.own_changes_since(&heads).1, 1, "one change");
        let els = elements(&log);
        assert_eq!(els.len(), n.div_ceil(MAX_BLOCK_READINGS));
        let mut flat = Vec::new();
        for e in els {
            let b = e.expect("bytes");
            assert!(b.len() <= MAX_BLOCK_READINGS * READING_LEN);
            flat.extend_from_slice(&b);
        }
        assert_eq!(flat, block_of(&staged));
        let saved = log.save();
        let mut again = HealthLog::load(&saved, d1).expect("loads");
        assert_eq!(again.view(), log.view());
        assert_eq!(again.len(), n);
        assert_eq!(again.unreadable_entries(), 0);
        let next = again
            .stage(Metric::HeartRate, 70.0, Unit::BeatsPerMinute, T0)
            .expect("a valid reading");
        assert_eq!(next.id.seq, n as u64 + 1);
        let other = HealthLog::load(&saved, DeviceId([2; 16])).expect("loads");
        assert_eq!(other.view(), log.view());
    }

    /// A small deterministic generator (xorshift), so the test needs no RNG crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// A device's own flow, as its sync drives `own_changes_since`: the
    /// heads it passes are those it took after its last non-empty bundle
    /// (the sync record's `bundled`); between two bundles it folds,
    /// annotates, retracts and takes back retractions, checks in, persists
    /// (`unsaved`, `mark_saved`) or not, receives other devices' changes
    /// (which depend on its own), asks twice in a row, and restarts from
    /// what it persisted. Every answer is the plain definition's: the same
    /// bytes in the same order, the same count, so no own change is lost
    /// from or repeated on the wire, whatever kept state answers it. Each
    /// persist's chunk is Automerge's `save_after` the last one.
    #[test]
    fn own_changes_since_the_last_bundle_is_the_plain_definition() {
        const T0: i64 = 1_790_000_000_000;
        for round in 1..=20u64 {
            let mut rng = Rng(round.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
            let mut me = HealthLog::new(DeviceId([1; 16]));
            let saved = me.save();
            let mut other = HealthLog::load(&saved, DeviceId([2; 16])).expect("loads");
            let mut stored = saved.clone();
            me.mark_all_saved();
            let mut bundled = me.heads();
            let mut wire: Vec<u8> = Vec::new();
            let mut nonempty = 0;
            for step in 0..150i64 {
                let t = T0 + step * 60_000;
                match rng.next(12) {
                    0..=2 => {
                        for _ in 0..=rng.next(3) {
                            me.stage(Metric::HeartRate, 60.0, Unit::BeatsPerMinute, t)
                                .expect("a valid reading");
                        }
                        me.fold().expect("a fold");
                    }
                    3 => {
                        let known = me.readings(None, i64::MIN, i64::MAX, true);
                        if !known.is_empty() {
                            let id = known[rng.next(known.len())].id;
                            me.annotate(id, &format!("n{step}")).expect("known");
                        }
                    }
                    4 => {
                        let known = me.readings(None, i64::MIN, i64::MAX, true);
                        if !known.is_empty() {
                            let id = known[rng.next(known.len())].id;
                            if me.retraction(id).is_some() {
                                me.unretract(id).expect("retracted");
                            } else {
                                me.retract(id, "wrong", t).expect("known");
                            }
                        }
                    }
                    5 => me
                        .check_in(Day::of(T0), Symptom::ALL[rng.next(3)], Severity::Mild)
                        .expect("an initialised log"),
                    6 => {
                        // The other device builds on what it received of
                        // ours, and we receive it.
                        other.apply(&wire).expect("applies");
                        other
                            .record(Metric::HeartRate, 70.0, Unit::BeatsPerMinute, t)
                            .expect("a valid reading");
                        if rng.next(2) == 0 {
                            let whole = other.save();
                            me.apply(&whole).expect("applies");
                        } else {
                            me.merge(&mut other).expect("merges");
                        }
                    }
                    7 | 8 => {
                        // What a persist stores: every change since the
                        // last one, as Automerge gives them.
                        let want = me.doc.save_after(&me.saved_heads);
                        let (chunk, heads) = me.unsaved();
                        assert_eq!(chunk, want, "round {round} step {step}: unsaved");
                        assert_eq!(heads, me.heads());
                        stored.extend_from_slice(&chunk);
                        me.mark_saved(heads);
                    }
                    9 => {
                        // A restart from what was persisted.
                        let (chunk, heads) = me.unsaved();
                        stored.extend_from_slice(&chunk);
                        me.mark_saved(heads);
                        me = HealthLog::load(&stored, DeviceId([1; 16])).expect("loads");
                    }
                    _ => {
                        // A sync: the bundle, asked for once more as a
                        // failed sync would.
                        for _ in 0..=rng.next(2) {
                            let want = plain_own_changes_since(&mut me, &bundled);
                            let got = me.own_changes_since(&bundled);
                            assert_eq!(got, want, "round {round} step {step}");
                        }
                        let (chunk, n) = me.own_changes_since(&bundled);
                        if n > 0 {
                            wire.extend_from_slice(&chunk);
                            bundled = me.heads();
                            nonempty += 1;
                        }
                    }
                }
            }
            assert!(nonempty > 5, "round {round}: only {nonempty} bundles");
        }
    }

    /// Three replicas edit, exchange whole saves or only what is new, and
    /// at random points compare `own_changes_since` of heads each kept
    /// earlier with the plain definition: the same bytes, the same count.
    /// Exchanges make another device's changes depend on this one's, and
    /// this one's on theirs, both ways the cheap path must get right.
    #[test]
    fn own_changes_since_is_the_plain_definition() {
        const T0: i64 = 1_790_000_000_000;
        for round in 1..=30u64 {
            let mut rng = Rng(round.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let (mut reps, _) = three_replicas();
            let mut kept: Vec<Vec<Vec<ChangeHash>>> = vec![vec![Vec::new()]; 3];
            let mut compared = 0;
            for step in 0..120 {
                let w = rng.next(3);
                let t = T0 + step * 60_000;
                match rng.next(8) {
                    0..=2 => {
                        reps[w]
                            .record(
                                Metric::HeartRate,
                                60.0 + rng.next(40) as f64,
                                Unit::BeatsPerMinute,
                                t,
                            )
                            .expect("a valid reading");
                    }
                    3 => {
                        let known = reps[w].readings(None, i64::MIN, i64::MAX, true);
                        if !known.is_empty() {
                            let id = known[rng.next(known.len())].id;
                            reps[w]
                                .annotate(id, &format!("note {step}"))
                                .expect("a known reading");
                        }
                    }
                    4 => {
                        let sev = [Severity::None, Severity::Mild][rng.next(2)];
                        reps[w]
                            .check_in(Day::of(T0), Symptom::ALL[rng.next(3)], sev)
                            .expect("an initialised log");
                    }
                    5 => {
                        let from = rng.next(3);
                        if from != w {
                            let whole = reps[from].save();
                            reps[w].apply(&whole).expect("a save applies");
                        }
                    }
                    6 => {
                        // Only what `from` made since heads `w` once kept,
                        // as a bundle would carry it.
                        let from = rng.next(3);
                        let heads = kept[from][rng.next(kept[from].len())].clone();
                        let (chunk, _) = reps[from].own_changes_since(&heads);
                        if from != w && !chunk.is_empty() {
                            reps[w].apply(&chunk).expect("changes apply");
                        }
                    }
                    _ => {
                        let heads = reps[w].heads();
                        kept[w].push(heads);
                    }
                }
                let c = rng.next(3);
                let heads = kept[c][rng.next(kept[c].len())].clone();
                let want = plain_own_changes_since(&mut reps[c], &heads);
                assert_eq!(
                    reps[c].own_changes_since(&heads),
                    want,
                    "round {round} step {step}: replica {c}"
                );
                compared += usize::from(want.1 > 0);
            }
            assert!(
                compared > 10,
                "round {round}: only {compared} non-empty comparisons"
            );
        }
    }
}
