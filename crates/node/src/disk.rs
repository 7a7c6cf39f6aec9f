//! The free-space guard (docs/ops/disk.md): one monitor of the filesystems the node writes to
//! (its data directory, the RocksDB store under it, the custodian's blob store when configured
//! elsewhere: one path per filesystem, told apart by `st_dev`), read with `statvfs` every
//! [`SAMPLE_EVERY`] by the `disk-monitor` thread and again right before each step that writes
//! (a block's commit, a block production, an input handed to consensus, which may append to its
//! WAL, each chunk of an exchange upload), published as one shared state that admission, the
//! consensus thread, the producer, `/v1/health` and `/metrics` read. The figure is the smallest
//! free space of those filesystems, and the reason names its path.
//!
//! Below `[storage] min_free_mib` the node is *low*: it admits no transaction or upload and
//! neither proposes, votes, appends to its consensus WAL nor commits; it still answers reads
//! (and its peers' sync requests from its store). It resumes once
//! `min_free_mib + resume_margin_mib` are free: the margin keeps a node whose free space hovers
//! at the threshold from flapping. An upload also reserves its announced length
//! ([`DiskGuard::reserve`]): one that would take the blob store's filesystem below the threshold
//! is refused before its first byte.
//!
//! # What it refuses to do
//!
//! Let a write start when the fresh reading before it is below the threshold; count a failed
//! `statvfs` as anything but low (it fails closed, keeps the last good figure and counts the
//! failure); start with a resume point that no filesystem it watches can ever reach. The space
//! counted is what an unprivileged user may use (`f_bavail`): the blocks ext4 reserves for
//! root are not the node's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use execution::{RejectCode, Rejection};

use crate::config::StorageConfig;
use crate::error::NodeError;
use crate::metrics::Metrics;

/// How often the monitor thread reads the free space.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// The audit log's action when the node enters the low state.
pub const AUDIT_LOW: &str = "storage-low";
/// The audit log's action when it leaves it.
pub const AUDIT_RESUMED: &str = "storage-resumed";

/// Below this threshold (MiB) the node warns at start: RocksDB's allocation steps (a WAL
/// preallocation of ~70 MiB, a memtable flush of up to 64 MiB), a block commit (up to the
/// chain's block size, 16 MiB at most) and the consensus inputs replayed when a height starts
/// (up to 64 MiB of frames after one reading) can take more than a smaller margin.
pub const ADVISED_MIN_FREE_MIB: u64 = 256;
/// Below this resume margin (MiB) the node warns at start: the space RocksDB frees when it
/// deletes an obsolete WAL or compacts can carry a node across a narrower band and back.
pub const ADVISED_RESUME_MARGIN_MIB: u64 = 128;

/// Bytes an unprivileged user may still write on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(s.f_bavail.saturating_mul(unit(&s)))
}

fn unit(s: &rustix::fs::StatVfs) -> u64 {
    if s.f_frsize > 0 {
        s.f_frsize
    } else {
        s.f_bsize
    }
}

/// The most an unprivileged user could ever have free on the filesystem holding `path`: its
/// size less the blocks reserved for root.
pub fn usable_bytes(path: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    let reserved = s.f_bfree.saturating_sub(s.f_bavail);
    Ok(s.f_blocks.saturating_sub(reserved).saturating_mul(unit(&s)))
}

/// The hysteresis: whether the node is low after reading `free` bytes, having been `was_low`.
/// Low below `min_free`; a low node resumes only at `resume_at` (≥ `min_free`) or more.
pub fn next_low(was_low: bool, free: u64, min_free: u64, resume_at: u64) -> bool {
    if was_low {
        free < resume_at
    } else {
        free < min_free
    }
}

/// What the operator is told at start about `config` (one line each; empty when nothing):
/// a threshold below [`ADVISED_MIN_FREE_MIB`] or a margin below
/// [`ADVISED_RESUME_MARGIN_MIB`].
pub fn advice(config: &StorageConfig) -> Vec<String> {
    let mut out = Vec::new();
    if config.min_free_mib < ADVISED_MIN_FREE_MIB {
        out.push(format!(
            "[storage] min_free_mib = {} is below {ADVISED_MIN_FREE_MIB}: RocksDB allocates its WAL about 70 MiB at a time and flushes up to 64 MiB per table, a block commit and a height's replayed consensus inputs come after one reading; a write may then fail for lack of space and stop the node (docs/ops/disk.md §1)",
            config.min_free_mib
        ));
    }
    if config.resume_margin_mib < ADVISED_RESUME_MARGIN_MIB {
        out.push(format!(
            "[storage] resume_margin_mib = {} is below {ADVISED_RESUME_MARGIN_MIB}: the space RocksDB frees when it drops an obsolete WAL can carry a node across so narrow a band and back (docs/ops/disk.md §1)",
            config.resume_margin_mib
        ));
    }
    out
}

/// One filesystem the node writes to, by the first path of it the node was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    /// What the path holds (`data directory`, `store`, `blob store`).
    pub what: &'static str,
    /// The path measured.
    pub path: PathBuf,
    /// Its filesystem's device number (`st_dev`).
    pub dev: u64,
}

/// `paths` reduced to one per filesystem (`st_dev`), in order: the first path of each
/// filesystem is kept. A path that cannot be inspected is [`NodeError::StorageStat`].
pub fn one_per_filesystem(paths: &[(&'static str, PathBuf)]) -> Result<Vec<Watched>, NodeError> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<Watched> = Vec::new();
    for (what, path) in paths {
        let dev = std::fs::metadata(path)
            .map_err(|source| NodeError::StorageStat {
                path: path.display().to_string(),
                source,
            })?
            .dev();
        if !out.iter().any(|w| w.dev == dev) {
            out.push(Watched {
                what,
                path: path.clone(),
                dev,
            });
        }
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct State {
    /// The hysteresis on the free space alone (a failed reading does not move it).
    space_low: bool,
    /// The last good reading: the smallest free figure, and which watched path had it.
    free: u64,
    at: usize,
    /// The last `statvfs` failure and its path, while it lasts.
    error: Option<(usize, String)>,
    /// Bytes promised to uploads under way and not yet written ([`Reservation`]).
    reserved: u64,
}

impl State {
    fn low(&self) -> bool {
        self.space_low || self.error.is_some()
    }
}

/// A step to run after each reading, before it is published (tests: a filesystem that fills
/// between two readings).
#[cfg(test)]
type Hook = Box<dyn FnMut() + Send>;

/// The shared free-space state of the filesystems a node writes to.
pub struct DiskGuard {
    watched: Vec<Watched>,
    min_free: u64,
    resume_at: u64,
    config: StorageConfig,
    // The fast path: admission and the loops read these without a lock.
    low: AtomicBool,
    free: AtomicU64,
    // Serialises readings and transitions: each reading is taken and published under it, so an
    // older one is never published after a newer one; one warn line on entering, one info
    // line on leaving, whoever read the space.
    state: Mutex<State>,
    metrics: Arc<Metrics>,
    audit: crate::audit::NodeAudit,
    stop: AtomicBool,
    #[cfg(test)]
    after_reading: Mutex<Option<Hook>>,
}

impl std::fmt::Debug for DiskGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskGuard")
            .field("watched", &self.watched)
            .field("min_free", &self.min_free)
            .field("resume_at", &self.resume_at)
            .field("low", &self.low)
            .field("free", &self.free)
            .finish_non_exhaustive()
    }
}

/// One reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The smallest free figure of the watched filesystems (after a failed `statvfs`, the last
    /// good one).
    pub free: u64,
    /// Whether the node is low after it.
    pub low: bool,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DiskGuard {
    /// A guard of the filesystems holding `paths` (what each holds, and where; one kept per
    /// filesystem), read once now. A path that cannot be measured is
    /// [`NodeError::StorageStat`] (the node does not start without knowing its free space); a
    /// resume point above what an unprivileged user could ever have free on one of them is
    /// [`NodeError::StorageResumeUnreachable`] (once low, the node would never resume).
    pub fn new(
        paths: &[(&'static str, PathBuf)],
        config: StorageConfig,
        metrics: Arc<Metrics>,
        audit: crate::audit::NodeAudit,
    ) -> Result<Self, NodeError> {
        let watched = one_per_filesystem(paths)?;
        if watched.is_empty() {
            return Err(NodeError::Server(
                "the free-space guard was given no path to watch".into(),
            ));
        }
        for w in &watched {
            let usable = usable_bytes(&w.path).map_err(|source| NodeError::StorageStat {
                path: w.path.display().to_string(),
                source,
            })?;
            if config.resume_bytes() > usable {
                return Err(NodeError::StorageResumeUnreachable {
                    path: w.path.display().to_string(),
                    usable,
                    resume: config.resume_bytes(),
                });
            }
        }
        for line in advice(&config) {
            tracing::warn!("{line}");
        }
        metrics
            .storage_min_free_bytes
            .store(config.min_free_bytes(), Ordering::Relaxed);
        let guard = DiskGuard {
            watched,
            min_free: config.min_free_bytes(),
            resume_at: config.resume_bytes(),
            config,
            low: AtomicBool::new(false),
            free: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            metrics,
            audit,
            stop: AtomicBool::new(false),
            #[cfg(test)]
            after_reading: Mutex::new(None),
        };
        guard.check();
        Ok(guard)
    }

    /// The filesystems watched, one path each.
    pub fn watched(&self) -> &[Watched] {
        &self.watched
    }

    /// The threshold in bytes.
    pub fn min_free_bytes(&self) -> u64 {
        self.min_free
    }

    /// The free bytes at which a low node resumes.
    pub fn resume_bytes(&self) -> u64 {
        self.resume_at
    }

    /// Whether the last reading left the node low (no system call).
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Acquire)
    }

    /// The smallest free figure of the last good reading (no system call).
    pub fn free(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    /// The path that had the smallest free figure at the last reading (or whose `statvfs`
    /// failed).
    pub fn tightest(&self) -> PathBuf {
        let st = lock(&self.state);
        let at = st.error.as_ref().map_or(st.at, |(i, _)| *i);
        self.watched[at].path.clone()
    }

    /// The smallest free figure of the watched filesystems and its index, or the first
    /// failure.
    fn measure(&self) -> Result<(u64, usize), (usize, std::io::Error)> {
        let mut least: Option<(u64, usize)> = None;
        for (i, w) in self.watched.iter().enumerate() {
            let free = free_bytes(&w.path).map_err(|e| (i, e))?;
            if least.is_none_or(|(f, _)| free < f) {
                least = Some((free, i));
            }
        }
        Ok(least.unwrap_or((0, 0)))
    }

    /// Reads the free space now, applies the hysteresis and publishes the state; logs (and
    /// records in the node's audit log) entering and leaving the low state. The reading is
    /// taken under the state's lock: readings are published in the order they were taken.
    pub fn check(&self) -> Reading {
        let mut st = lock(&self.state);
        let measured = self.measure();
        #[cfg(test)]
        if let Some(hook) = self
            .after_reading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            hook();
        }
        let was = st.low();
        match measured {
            Ok((free, at)) => {
                st.space_low = next_low(st.space_low, free, self.min_free, self.resume_at);
                st.free = free;
                st.at = at;
                st.error = None;
            }
            // Fails closed: a filesystem the node cannot measure is not written to. The free
            // figure stays the last good one (0 would read as a full disk).
            Err((at, e)) => {
                st.error = Some((at, e.to_string()));
                self.metrics
                    .storage_stat_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let (free, low) = (st.free, st.low());
        self.free.store(free, Ordering::Relaxed);
        self.low.store(low, Ordering::Release);
        self.metrics
            .storage_free_bytes
            .store(free, Ordering::Relaxed);
        self.metrics
            .storage_low
            .store(u64::from(low), Ordering::Relaxed);
        if low && !was {
            let why = self.describe(&st);
            let w = &self.watched[st.error.as_ref().map_or(st.at, |(i, _)| *i)];
            tracing::warn!(
                path = %w.path.display(),
                free_bytes = free,
                min_free_bytes = self.min_free,
                resume_bytes = self.resume_at,
                "storage low: {why}"
            );
            self.audit.record(AUDIT_LOW, auditlog::Outcome::Done, &why);
        } else if was && !low {
            let w = &self.watched[st.at];
            let least = match self.watched.len() {
                1 => String::new(),
                n => format!(", the least of the {n} filesystems watched"),
            };
            let line = format!(
                "{} bytes free on the filesystem of {} ({}){least} (resumes at {} bytes): admitting, proposing, voting and committing again",
                free,
                w.path.display(),
                w.what,
                self.resume_at
            );
            tracing::info!(
                path = %w.path.display(),
                free_bytes = free,
                min_free_bytes = self.min_free,
                "storage resumed: {line}"
            );
            self.audit
                .record(AUDIT_RESUMED, auditlog::Outcome::Done, &line);
        }
        Reading { free, low }
    }

    fn describe(&self, st: &State) -> String {
        let threshold = format!(
            "[storage] min_free_mib = {} ({} bytes)",
            self.config.min_free_mib, self.min_free
        );
        let what = match &st.error {
            Some((i, e)) => {
                let w = &self.watched[*i];
                format!(
                    "the free space of the filesystem of {} ({}) cannot be read (statvfs: {e}); counted as below {threshold}",
                    w.path.display(),
                    w.what
                )
            }
            None => {
                let w = &self.watched[st.at];
                if st.free < self.min_free {
                    format!(
                        "{} bytes free on the filesystem of {} ({}), below {threshold}",
                        st.free,
                        w.path.display(),
                        w.what
                    )
                } else {
                    format!(
                        "low since the free space fell below {threshold}; now {} bytes free on the filesystem of {} ({}), short of the resume point",
                        st.free,
                        w.path.display(),
                        w.what
                    )
                }
            }
        };
        format!(
            "{what}: the node admits no transaction or upload and neither proposes, votes nor commits until {} bytes are free (min_free_mib + resume_margin_mib = {} MiB)",
            self.resume_at,
            self.config
                .min_free_mib
                .saturating_add(self.config.resume_margin_mib)
        )
    }

    /// Why the node is low, as of the last reading (for refusals, errors and health).
    pub fn reason(&self) -> String {
        self.describe(&lock(&self.state))
    }

    /// The refusal admission answers while the node is low.
    pub fn rejection(&self) -> Rejection {
        Rejection::new(RejectCode::StorageLow, self.reason())
    }

    /// Reserves `len` bytes on the filesystem of `dir` for an upload about to write them: after
    /// a fresh reading, refused (`NODE_STORAGE_LOW`) while the node is low, and when `dir`'s
    /// free space less what uploads under way still have to write less `len` would fall below
    /// the threshold. The reservation shrinks as the upload writes ([`Reservation::wrote`])
    /// and what is left of it is released when it is dropped (committed or abandoned).
    pub fn reserve(self: &Arc<Self>, dir: &Path, len: u64) -> Result<Reservation, Rejection> {
        if self.check().low {
            return Err(self.rejection());
        }
        let mut st = lock(&self.state);
        let free = free_bytes(dir).map_err(|e| {
            Rejection::new(
                RejectCode::StorageLow,
                format!(
                    "the free space of the filesystem of {} cannot be read (statvfs: {e}): an upload of {len} bytes is refused",
                    dir.display()
                ),
            )
        })?;
        let needed = st
            .reserved
            .saturating_add(len)
            .saturating_add(self.min_free);
        if free < needed {
            return Err(Rejection::new(
                RejectCode::StorageLow,
                format!(
                    "an upload of {len} bytes would leave {} bytes free on the filesystem of {} ({} bytes free, {} of them promised to uploads under way), below [storage] min_free_mib = {} ({} bytes): refused before its first byte; free space there or upload to another custodian",
                    free.saturating_sub(st.reserved).saturating_sub(len),
                    dir.display(),
                    free,
                    st.reserved,
                    self.config.min_free_mib,
                    self.min_free
                ),
            ));
        }
        st.reserved = st.reserved.saturating_add(len);
        Ok(Reservation {
            guard: self.clone(),
            left: len,
        })
    }

    /// Bytes promised to uploads under way and not yet written.
    pub fn reserved(&self) -> u64 {
        lock(&self.state).reserved
    }

    fn release(&self, n: u64) {
        let mut st = lock(&self.state);
        st.reserved = st.reserved.saturating_sub(n);
    }

    /// Starts the `disk-monitor` thread: a reading every [`SAMPLE_EVERY`] until the returned
    /// handle is dropped.
    pub fn spawn_monitor(self: &Arc<Self>) -> Result<Monitor, NodeError> {
        let me = self.clone();
        let thread = std::thread::Builder::new()
            .name("disk-monitor".into())
            .spawn(move || {
                while !me.stop.load(Ordering::Acquire) {
                    me.check();
                    std::thread::park_timeout(SAMPLE_EVERY);
                }
            })
            .map_err(|e| NodeError::Server(format!("cannot start the disk monitor thread: {e}")))?;
        Ok(Monitor {
            guard: self.clone(),
            thread: Some(thread),
        })
    }

    /// Runs `hook` after each reading, before it is published.
    #[cfg(test)]
    pub(crate) fn set_after_reading(&self, hook: impl FnMut() + Send + 'static) {
        *self.after_reading.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(hook));
    }
}

/// Space promised to an upload under way ([`DiskGuard::reserve`]).
#[derive(Debug)]
pub struct Reservation {
    guard: Arc<DiskGuard>,
    left: u64,
}

impl Reservation {
    /// `n` bytes of the upload were written: they now show in the free space, and no longer
    /// count as promised.
    pub fn wrote(&mut self, n: u64) {
        let n = n.min(self.left);
        self.left -= n;
        self.guard.release(n);
    }

    /// The guard it was taken from.
    pub fn guard(&self) -> &Arc<DiskGuard> {
        &self.guard
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.guard.release(self.left);
    }
}

/// Before the store is opened (`gmchain node start`): the free space of those of `paths` that
/// exist, and a warning if one is below `config`'s threshold (RocksDB's recovery writes before
/// the guard can stop anything). Returns the warning, if any.
pub fn warn_if_low_before_open(
    paths: &[(&'static str, PathBuf)],
    config: &StorageConfig,
) -> Option<String> {
    let present: Vec<(&'static str, PathBuf)> =
        paths.iter().filter(|(_, p)| p.exists()).cloned().collect();
    let watched = one_per_filesystem(&present).ok()?;
    let (free, w) = watched
        .iter()
        .filter_map(|w| free_bytes(&w.path).ok().map(|f| (f, w)))
        .min_by_key(|(f, _)| *f)?;
    if free >= config.min_free_bytes() {
        return None;
    }
    let line = format!(
        "{free} bytes free on the filesystem of {} ({}), below [storage] min_free_mib = {} ({} bytes), before the store is opened: opening it may still write (RocksDB's recovery); the node then starts low and admits, proposes, votes and commits nothing until {} bytes are free",
        w.path.display(),
        w.what,
        config.min_free_mib,
        config.min_free_bytes(),
        config.resume_bytes()
    );
    tracing::warn!(path = %w.path.display(), free_bytes = free, "storage low at start: {line}");
    Some(line)
}

/// The running `disk-monitor` thread; dropping it stops the thread and waits for it.
#[derive(Debug)]
pub struct Monitor {
    guard: Arc<DiskGuard>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.guard.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Test helpers: a filesystem that fills and empties at once.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A symbolic link the guard watches, pointed at a directory with room or at `/proc`
    /// (whose `statvfs` says 0 bytes free): its "filesystem" fills and empties at once, through
    /// the real system call.
    pub(crate) struct Flip {
        _root: tempfile::TempDir,
        /// The path the guard watches.
        pub link: PathBuf,
        roomy: PathBuf,
    }

    impl Flip {
        pub(crate) fn new() -> Flip {
            let root = tempfile::tempdir().unwrap();
            let roomy = root.path().join("roomy");
            std::fs::create_dir(&roomy).unwrap();
            let link = root.path().join("data");
            std::os::unix::fs::symlink(&roomy, &link).unwrap();
            Flip {
                _root: root,
                link,
                roomy,
            }
        }

        /// A guard of the link (`data directory`): threshold 2 MiB, resume at 3 MiB.
        pub(crate) fn guard(&self, metrics: Arc<Metrics>) -> Arc<DiskGuard> {
            let g = DiskGuard::new(
                &[("data directory", self.link.clone())],
                StorageConfig {
                    min_free_mib: 2,
                    resume_margin_mib: 1,
                },
                metrics,
                Default::default(),
            )
            .unwrap();
            assert!(!g.is_low(), "premise: the test machine has 3 MiB free");
            Arc::new(g)
        }

        /// Points `link` at `target`, atomically.
        fn point(link: &Path, target: &Path) {
            let tmp = link.with_extension("tmp");
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(target, &tmp).unwrap();
            std::fs::rename(&tmp, link).unwrap();
        }

        /// The filesystem is full from now on.
        pub(crate) fn fill(&self) {
            Self::point(&self.link, Path::new("/proc"));
        }

        /// It has room again.
        pub(crate) fn empty(&self) {
            Self::point(&self.link, &self.roomy);
        }

        /// A step that fills it (for [`DiskGuard::set_after_reading`]) the first time it runs.
        pub(crate) fn fills_after_one_reading(&self) -> impl FnMut() + Send + 'static {
            let link = self.link.clone();
            let mut done = false;
            move || {
                if !done {
                    done = true;
                    Self::point(&link, Path::new("/proc"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(path: &Path) -> Vec<(&'static str, PathBuf)> {
        vec![("data directory", path.to_path_buf())]
    }

    #[test]
    fn the_hysteresis_pauses_below_the_threshold_and_resumes_above_the_margin() {
        let (min, resume) = (100, 150);
        // Not low: low only below the threshold.
        assert!(!next_low(false, 100, min, resume));
        assert!(next_low(false, 99, min, resume));
        // Low: stays low between the threshold and the resume point (no flapping).
        assert!(next_low(true, 100, min, resume));
        assert!(next_low(true, 149, min, resume));
        assert!(!next_low(true, 150, min, resume));
    }

    /// The real filesystem of a temporary directory: a threshold above what it has free makes
    /// the guard low at once (with the figures in the reason, the refusal's code and the
    /// metrics), one below it not; a directory that does not exist cannot be measured.
    #[test]
    fn a_guard_reads_its_filesystem_and_publishes_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        let usable = usable_bytes(dir.path()).unwrap();
        assert!(free > 0);
        // Just above what is free, with a resume point the filesystem can reach.
        let above = StorageConfig {
            min_free_mib: (free >> 20) + 1,
            resume_margin_mib: 1,
        };
        assert!(
            above.resume_bytes() <= usable,
            "premise: the test filesystem is not all free ({free} of {usable} bytes)"
        );
        let metrics = Arc::new(Metrics::default());
        let g =
            DiskGuard::new(&one(dir.path()), above, metrics.clone(), Default::default()).unwrap();
        assert!(g.is_low());
        assert_eq!(metrics.storage_low.load(Ordering::Relaxed), 1);
        let r = g.rejection();
        assert_eq!(r.code.as_str(), "NODE_STORAGE_LOW");
        assert!(
            r.message.contains(&dir.path().display().to_string())
                && r.message
                    .contains("(data directory), below [storage] min_free_mib = ")
                && r.message
                    .contains(&format!("min_free_mib = {}", above.min_free_mib)),
            "{r}"
        );
        let small = StorageConfig {
            min_free_mib: 1,
            resume_margin_mib: 1,
        };
        let g =
            DiskGuard::new(&one(dir.path()), small, metrics.clone(), Default::default()).unwrap();
        assert!(!g.is_low() && g.free() > 0);
        assert_eq!(metrics.storage_low.load(Ordering::Relaxed), 0);
        assert_eq!(
            metrics.storage_min_free_bytes.load(Ordering::Relaxed),
            1 << 20
        );
        let e = DiskGuard::new(
            &one(&dir.path().join("absent")),
            small,
            metrics,
            Default::default(),
        )
        .unwrap_err();
        assert_eq!(e.code().name, "NODE_STORAGE_STAT", "{e}");
    }

    /// Review r1 L1: in the band between the threshold and the resume point the node is low,
    /// and its reason said the free space was "below" the threshold, which it is not. It says
    /// since when it is low and what it waits for.
    #[test]
    fn in_the_hysteresis_band_the_reason_says_low_since_not_below() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StorageConfig {
            min_free_mib: 1,
            resume_margin_mib: 1,
        };
        let mut g = DiskGuard::new(
            &one(dir.path()),
            cfg,
            Arc::new(Metrics::default()),
            Default::default(),
        )
        .unwrap();
        // The state a dip below the threshold leaves, and a resume point out of reach.
        lock(&g.state).space_low = true;
        g.resume_at = u64::MAX;
        let r = g.check();
        assert!(r.low, "in the band: still low (hysteresis)");
        assert!(r.free >= g.min_free_bytes(), "free is above the threshold");
        let why = g.reason();
        assert!(!why.contains(", below [storage] min_free_mib"), "{why}");
        assert!(
            why.starts_with("low since the free space fell below [storage] min_free_mib = 1")
                && why.contains(&format!("now {} bytes free on the filesystem of", r.free))
                && why.contains("short of the resume point"),
            "{why}"
        );
    }

    /// Review r1 M3 and L7: a `statvfs` that fails while the node runs (its directory was
    /// removed) makes it low, with the failure in the reason and counted in
    /// `gmchain_storage_stat_errors_total`; the free figure stays the last good one (0 looked
    /// like a full disk). Once it can be read again the node is not low (a failure does not
    /// move the hysteresis on the space).
    #[test]
    fn a_statvfs_failure_while_running_is_low_counted_and_keeps_the_last_figure() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        let metrics = Arc::new(Metrics::default());
        let cfg = StorageConfig {
            min_free_mib: 1,
            resume_margin_mib: 1,
        };
        let g = DiskGuard::new(&one(&dir), cfg, metrics.clone(), Default::default()).unwrap();
        let good = g.check();
        assert!(!good.low && good.free > 0);
        std::fs::remove_dir(&dir).unwrap();
        let r = g.check();
        assert!(r.low && g.is_low());
        assert!(
            r.free > 0 && g.free() > 0,
            "the last good figure is kept: {r:?}"
        );
        assert_eq!(metrics.storage_free_bytes.load(Ordering::Relaxed), g.free());
        assert_eq!(metrics.storage_stat_errors.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.storage_low.load(Ordering::Relaxed), 1);
        let why = g.reason();
        assert!(
            why.contains("cannot be read (statvfs: ") && why.contains(&dir.display().to_string()),
            "{why}"
        );
        assert!(
            metrics
                .render()
                .contains("\ngmchain_storage_stat_errors_total 1\n")
        );
        std::fs::create_dir(&dir).unwrap();
        assert!(!g.check().low);
        assert_eq!(metrics.storage_stat_errors.load(Ordering::Relaxed), 1);
    }

    /// Review r1 L3: a resume point above what the filesystem could ever have free was taken;
    /// once low the node could never resume. It is refused at start, naming the path.
    #[test]
    fn a_resume_point_larger_than_the_filesystem_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let usable = usable_bytes(dir.path()).unwrap();
        let cfg = StorageConfig {
            min_free_mib: 1,
            resume_margin_mib: (usable >> 20) + 1,
        };
        let e = DiskGuard::new(
            &one(dir.path()),
            cfg,
            Arc::new(Metrics::default()),
            Default::default(),
        )
        .unwrap_err();
        assert_eq!(e.code().name, "NODE_STORAGE_RESUME_UNREACHABLE", "{e}");
        assert!(
            e.to_string().contains(&dir.path().display().to_string()),
            "{e}"
        );
    }

    /// Review r1 L3: a threshold or a margin too small for RocksDB's allocation steps is
    /// taken with a warning; the defaults draw none.
    #[test]
    fn small_thresholds_draw_advice() {
        assert!(advice(&StorageConfig::default()).is_empty());
        let a = advice(&StorageConfig {
            min_free_mib: 16,
            resume_margin_mib: 8,
        });
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(
            a[0].starts_with("[storage] min_free_mib = 16 is below 256"),
            "{a:?}"
        );
        assert!(
            a[1].starts_with("[storage] resume_margin_mib = 8 is below 128"),
            "{a:?}"
        );
    }

    /// Review r1 M2: the node writes to its data directory, to the store under it (often a
    /// mount point of its own) and to the blob store (which can be elsewhere); the guard
    /// measured the data directory only. It watches one path per filesystem (by `st_dev`),
    /// takes the smallest free figure and names its path.
    #[test]
    fn the_guard_watches_each_filesystem_the_node_writes_and_names_the_fullest() {
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir(data.path().join("db")).unwrap();
        // A second filesystem: tmpfs.
        let other = tempfile::tempdir_in("/dev/shm").expect("premise: /dev/shm (tmpfs)");
        let link = data.path().join("blobs");
        std::os::unix::fs::symlink(other.path(), &link).unwrap();
        let paths = vec![
            ("data directory", data.path().to_path_buf()),
            ("store", data.path().join("db")),
            ("blob store", link.clone()),
        ];
        let w = one_per_filesystem(&paths).unwrap();
        assert_eq!(
            w.iter().map(|w| w.what).collect::<Vec<_>>(),
            ["data directory", "blob store"],
            "the store shares the data directory's filesystem: measured once"
        );
        let g = DiskGuard::new(
            &paths,
            StorageConfig {
                min_free_mib: 1,
                resume_margin_mib: 1,
            },
            Arc::new(Metrics::default()),
            Default::default(),
        )
        .unwrap();
        assert!(!g.is_low());
        // The blob store's filesystem fills (the link now reads /proc: 0 bytes free): the
        // node is low though its data directory has room, and says which path.
        let tmp = data.path().join("blobs.tmp");
        std::os::unix::fs::symlink("/proc", &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
        let r = g.check();
        assert!(r.low && r.free == 0, "{r:?}");
        assert_eq!(g.tightest(), link);
        let why = g.reason();
        assert!(
            why.starts_with(&format!(
                "0 bytes free on the filesystem of {} (blob store), below",
                link.display()
            )),
            "{why}"
        );
    }

    /// Review r1 H1: an upload reserves its announced length. Refused (NODE_STORAGE_LOW, before
    /// its first byte) when the free space less what uploads under way still have to write
    /// less its length would fall below the threshold; the reservation shrinks as the upload
    /// writes and is released when dropped.
    #[test]
    fn an_upload_reserves_its_length_and_one_that_would_cross_the_threshold_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StorageConfig {
            min_free_mib: 1,
            resume_margin_mib: 1,
        };
        let g = Arc::new(
            DiskGuard::new(
                &one(dir.path()),
                cfg,
                Arc::new(Metrics::default()),
                Default::default(),
            )
            .unwrap(),
        );
        let free = free_bytes(dir.path()).unwrap();
        // More than is free above the threshold: refused.
        let r = g.reserve(dir.path(), free).unwrap_err();
        assert_eq!(r.code.as_str(), "NODE_STORAGE_LOW");
        assert!(
            r.message
                .starts_with(&format!("an upload of {free} bytes would leave "))
                && r.message.contains(&dir.path().display().to_string()),
            "{r}"
        );
        assert_eq!(g.reserved(), 0);
        // Half of what is free above the threshold, twice: the second would cross it (the
        // first one's bytes are promised though not written).
        let half = (free - (1 << 20)) / 2 + (16 << 20);
        let mut first = g.reserve(dir.path(), half).unwrap();
        assert_eq!(g.reserved(), half);
        let r = g.reserve(dir.path(), half).unwrap_err();
        assert!(
            r.message
                .contains(&format!("{half} of them promised to uploads under way")),
            "{r}"
        );
        first.wrote(1000);
        assert_eq!(g.reserved(), half - 1000);
        drop(first);
        assert_eq!(g.reserved(), 0);
        let second = g.reserve(dir.path(), half).unwrap();
        assert_eq!(g.reserved(), half);
        drop(second);
        // Low: refused whatever the length.
        let flip = testing::Flip::new();
        let g = flip.guard(Arc::new(Metrics::default()));
        flip.fill();
        let r = g.reserve(dir.path(), 1).unwrap_err();
        assert_eq!(r.code.as_str(), "NODE_STORAGE_LOW");
        assert!(
            r.message.contains("0 bytes free on the filesystem of"),
            "{r}"
        );
    }

    /// Review r1 L4: before the store is opened, a filesystem below the threshold is said.
    #[test]
    fn a_low_filesystem_is_said_before_the_store_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let small = StorageConfig {
            min_free_mib: 1,
            resume_margin_mib: 1,
        };
        assert_eq!(warn_if_low_before_open(&one(dir.path()), &small), None);
        let huge = StorageConfig {
            min_free_mib: crate::config::MAX_STORAGE_MIB,
            resume_margin_mib: 1,
        };
        let mut paths = one(dir.path());
        paths.push(("blob store", dir.path().join("absent")));
        let line = warn_if_low_before_open(&paths, &huge).unwrap();
        assert!(
            line.contains(&dir.path().display().to_string())
                && line.contains("before the store is opened"),
            "{line}"
        );
    }
}
