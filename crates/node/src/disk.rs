//! The free-space guard (docs/ops/disk.md): one monitor of the filesystem that holds the data
//! directory, read with `statvfs` every [`SAMPLE_EVERY`] by the `disk-monitor` thread and again
//! right before each step that writes (a block's commit, a block production, an input handed to
//! consensus, which may append to its WAL), published as one shared state that admission, the
//! consensus thread, the producer, `/v1/health` and `/metrics` read.
//!
//! Below `[storage] min_free_mib` the node is *low*: it admits no transaction or upload and
//! neither proposes, votes, appends to its consensus WAL nor commits; it still serves reads
//! (and answers its peers' sync requests from its store). It resumes once
//! `min_free_mib + resume_margin_mib` are free: the margin keeps a node whose free space hovers
//! at the threshold from flapping.
//!
//! # What it refuses to do
//!
//! Let a write start when the fresh reading before it is below the threshold; count a failed
//! `statvfs` as anything but low (it fails closed). The space counted is what an unprivileged
//! user may use (`f_bavail`): the blocks ext4 reserves for root are not the node's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// Bytes an unprivileged user may still write on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    let unit = if s.f_frsize > 0 {
        s.f_frsize
    } else {
        s.f_bsize
    };
    Ok(s.f_bavail.saturating_mul(unit))
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

#[derive(Debug, Default)]
struct State {
    low: bool,
    free: u64,
    /// The last `statvfs` failure, while it lasts.
    error: Option<String>,
}

/// The shared free-space state of one data directory.
#[derive(Debug)]
pub struct DiskGuard {
    path: PathBuf,
    min_free: u64,
    resume_at: u64,
    config: StorageConfig,
    // The fast path: admission and the loops read these without a lock.
    low: AtomicBool,
    free: AtomicU64,
    // Serialises readings and transitions: one warn line on entering, one info line on
    // leaving, whoever read the space.
    state: Mutex<State>,
    metrics: Arc<Metrics>,
    audit: crate::audit::NodeAudit,
    stop: AtomicBool,
}

/// One reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Free bytes (0 if `statvfs` failed).
    pub free: u64,
    /// Whether the node is low after it.
    pub low: bool,
}

impl DiskGuard {
    /// A guard of the filesystem holding `data_dir`, read once now (an unreadable one is
    /// [`NodeError::StorageStat`]: the node does not start without knowing its free space).
    pub fn new(
        data_dir: &Path,
        config: StorageConfig,
        metrics: Arc<Metrics>,
        audit: crate::audit::NodeAudit,
    ) -> Result<Self, NodeError> {
        free_bytes(data_dir).map_err(|source| NodeError::StorageStat {
            path: data_dir.display().to_string(),
            source,
        })?;
        metrics
            .storage_min_free_bytes
            .store(config.min_free_bytes(), Ordering::Relaxed);
        let guard = DiskGuard {
            path: data_dir.to_path_buf(),
            min_free: config.min_free_bytes(),
            resume_at: config.resume_bytes(),
            config,
            low: AtomicBool::new(false),
            free: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            metrics,
            audit,
            stop: AtomicBool::new(false),
        };
        guard.check();
        Ok(guard)
    }

    /// The data directory watched.
    pub fn path(&self) -> &Path {
        &self.path
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

    /// The free bytes of the last reading (no system call).
    pub fn free(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    /// Reads the free space now, applies the hysteresis and publishes the state; logs (and
    /// records in the node's audit log) entering and leaving the low state.
    pub fn check(&self) -> Reading {
        let measured = free_bytes(&self.path);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let was = st.low;
        let (free, low, error) = match measured {
            Ok(free) => (
                free,
                next_low(was, free, self.min_free, self.resume_at),
                None,
            ),
            // Fails closed: a filesystem the node cannot measure is not written to.
            Err(e) => (0, true, Some(e.to_string())),
        };
        st.low = low;
        st.free = free;
        st.error = error;
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
            tracing::warn!(
                path = %self.path.display(),
                free_bytes = free,
                min_free_bytes = self.min_free,
                resume_bytes = self.resume_at,
                "storage low: {why}"
            );
            self.audit.record(AUDIT_LOW, auditlog::Outcome::Done, &why);
        } else if was && !low {
            let line = format!(
                "{} bytes free on the filesystem of {} (resumes at {} bytes): admitting, proposing, voting and committing again",
                free,
                self.path.display(),
                self.resume_at
            );
            tracing::info!(
                path = %self.path.display(),
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
        let what = match &st.error {
            Some(e) => format!(
                "the free space of the filesystem of {} cannot be read (statvfs: {e}); counted as below",
                self.path.display()
            ),
            None => format!(
                "{} bytes free on the filesystem of {}, below",
                st.free,
                self.path.display()
            ),
        };
        format!(
            "{what} [storage] min_free_mib = {} ({} bytes): the node admits no transaction and neither proposes, votes nor commits until {} bytes are free (min_free_mib + resume_margin_mib = {} MiB)",
            self.config.min_free_mib,
            self.min_free,
            self.resume_at,
            self.config
                .min_free_mib
                .saturating_add(self.config.resume_margin_mib)
        )
    }

    /// Why the node is low, as of the last reading (for refusals, errors and health).
    pub fn reason(&self) -> String {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.describe(&st)
    }

    /// The refusal admission answers while the node is low.
    pub fn rejection(&self) -> Rejection {
        Rejection::new(RejectCode::StorageLow, self.reason())
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(free > 0);
        let huge = StorageConfig {
            min_free_mib: crate::config::MAX_STORAGE_MIB,
            resume_margin_mib: 1,
        };
        let metrics = Arc::new(Metrics::default());
        assert!(
            free < huge.min_free_bytes(),
            "premise: a test machine has less than 1 TiB free"
        );
        let g = DiskGuard::new(dir.path(), huge, metrics.clone(), Default::default()).unwrap();
        assert!(g.is_low());
        assert_eq!(metrics.storage_low.load(Ordering::Relaxed), 1);
        let r = g.rejection();
        assert_eq!(r.code.as_str(), "NODE_STORAGE_LOW");
        assert!(
            r.message.contains(&dir.path().display().to_string())
                && r.message.contains("min_free_mib = 1048576"),
            "{r}"
        );
        let small = StorageConfig {
            min_free_mib: 1,
            resume_margin_mib: 1,
        };
        let g = DiskGuard::new(dir.path(), small, metrics.clone(), Default::default()).unwrap();
        assert!(!g.is_low() && g.free() > 0);
        assert_eq!(metrics.storage_low.load(Ordering::Relaxed), 0);
        assert_eq!(
            metrics.storage_min_free_bytes.load(Ordering::Relaxed),
            1 << 20
        );
        let e = DiskGuard::new(
            &dir.path().join("absent"),
            small,
            metrics,
            Default::default(),
        )
        .unwrap_err();
        assert_eq!(e.code().name, "NODE_STORAGE_STAT", "{e}");
    }
}
