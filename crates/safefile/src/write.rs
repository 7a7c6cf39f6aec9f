//! Atomic replacement, staged files, durable appends and the removal of stale temporary files.

use crate::{Error, Step};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The prefix of every temporary file name; a caller whose own file names never start with it
/// can recognise (and, under its exclusive lock, remove) temporary files left by a crash.
pub const TEMP_PREFIX: &str = ".tmp-";

/// How many bytes of the target's name a temporary name repeats (for a person looking at a
/// leftover); the rest is cut, so the temporary name stays under the usual 255-byte limit.
const NAME_HINT_LEN: usize = 100;

/// How many fresh names a write tries before giving up on `AlreadyExists`. With 64 random
/// bits a collision does not happen by chance; this only bounds the loop.
const NAME_ATTEMPTS: usize = 4;

/// The permission bits of a new file (unix; further narrowed by the process umask, never
/// widened). Other platforms ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode(u32);

impl Mode {
    /// Owner read and write only: secrets, keys, token state.
    pub const PRIVATE: Mode = Mode(0o600);
    /// Owner read and write, everyone read: certificates, public keys, configuration.
    pub const PUBLIC: Mode = Mode(0o644);

    /// A mode from its permission bits (only the low 12 bits are used).
    pub const fn from_bits(bits: u32) -> Mode {
        Mode(bits & 0o7777)
    }

    /// Returns the permission bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
}

/// Returns whether `name` is the name of a temporary file of this crate.
pub fn is_temp_name(name: &OsStr) -> bool {
    name.as_encoded_bytes().starts_with(TEMP_PREFIX.as_bytes())
}

/// Runs one I/O step, naming the step and path on failure. In this crate's unit tests a fault
/// can be injected at any step.
fn run<T>(step: Step, path: &Path, op: impl FnOnce() -> io::Result<T>) -> Result<T, Error> {
    #[cfg(test)]
    if fault::hit(step) {
        return Err(Error::io(step, path, io::Error::other("injected fault")));
    }
    op().map_err(|source| Error::io(step, path, source))
}

/// The directory a path's entry lives in ("." for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn open_options(mode: Mode) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode.bits());
    }
    #[cfg(not(unix))]
    let _ = mode;
    options
}

/// A fresh temporary name next to `target`: the prefix, 16 random hex digits, and the start of
/// the target's name.
fn temp_name(dir: &Path, target: &Path) -> Result<PathBuf, Error> {
    let mut random = [0u8; 8];
    run(Step::NameTemp, dir, || {
        getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))
    })?;
    let mut name = String::from(TEMP_PREFIX);
    for b in random {
        name.push_str(&format!("{b:02x}"));
    }
    name.push('-');
    let hint = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for c in hint.chars() {
        if name.len() + c.len_utf8() > TEMP_PREFIX.len() + 17 + NAME_HINT_LEN {
            break;
        }
        name.push(c);
    }
    Ok(dir.join(name))
}

/// A file written and flushed to disk under a temporary name in its target's directory, not yet
/// in place. [`StagedFile::rename_into_place`] renames it over the target; dropping it
/// otherwise removes the temporary file.
#[derive(Debug)]
pub struct StagedFile {
    temp: PathBuf,
    target: PathBuf,
    placed: bool,
}

impl StagedFile {
    /// Creates a temporary file (`create_new`, unpredictable name, `mode`) in `target`'s
    /// directory, writes `contents` and fsyncs it. On failure nothing is left behind.
    pub fn write(target: &Path, contents: &[u8], mode: Mode) -> Result<StagedFile, Error> {
        let mut staging = StagingFile::create(target, mode)?;
        staging.write_all(contents)?;
        staging.finish()
    }

    /// Returns the target.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Returns the temporary file's path.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Renames the temporary file over the target (atomically replacing any old file). The
    /// directory is not flushed: call [`sync_dir`] once after placing every file. On failure
    /// the temporary file is removed and the target is untouched.
    pub fn rename_into_place(mut self) -> Result<(), Error> {
        run(Step::Rename, &self.target, || {
            fs::rename(&self.temp, &self.target)
        })?;
        self.placed = true;
        Ok(())
    }
}

/// A temporary file being written piece by piece (a stream too large to hold in memory), in
/// its target's directory: created like [`StagedFile`]'s (`create_new`, unpredictable name),
/// then [`StagingFile::finish`] fsyncs it into a [`StagedFile`]. Dropping it unfinished (a
/// caller giving up after a failed write, or on bytes it refuses) removes the temporary file.
#[derive(Debug)]
pub struct StagingFile {
    file: File,
    temp: PathBuf,
    target: PathBuf,
    /// Set when the temporary file's ownership has passed to a [`StagedFile`].
    finished: bool,
}

impl StagingFile {
    /// Creates an empty temporary file (`create_new`, unpredictable name, `mode`) in
    /// `target`'s directory.
    pub fn create(target: &Path, mode: Mode) -> Result<StagingFile, Error> {
        let dir = parent_dir(target);
        let mut attempt = 0;
        let (temp, file) = loop {
            attempt += 1;
            let temp = temp_name(dir, target)?;
            match run(Step::CreateTemp, &temp, || {
                open_options(mode).create_new(true).open(&temp)
            }) {
                Ok(f) => break (temp, f),
                Err(Error::Io { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists && attempt < NAME_ATTEMPTS => {
                }
                Err(e) => return Err(e),
            }
        };
        Ok(StagingFile {
            file,
            temp,
            target: target.to_path_buf(),
            finished: false,
        })
    }

    /// Appends `bytes` to the temporary file (no buffering here: the caller's buffer is the
    /// only one).
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let file = &mut self.file;
        run(Step::WriteTemp, &self.temp, || file.write_all(bytes))
    }

    /// Returns the target.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Returns the temporary file's path.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Flushes the temporary file to disk and hands it over as a [`StagedFile`], ready to be
    /// renamed into place. On failure the temporary file is removed.
    pub fn finish(mut self) -> Result<StagedFile, Error> {
        run(Step::SyncTemp, &self.temp, || self.file.sync_all())?;
        self.finished = true;
        Ok(StagedFile {
            temp: self.temp.clone(),
            target: self.target.clone(),
            placed: false,
        })
    }
}

/// A staging file is a writer too (each write is whole, through the inherent `write_all`; an
/// error keeps its step and path), so that a stream can be written into it directly.
impl Write for StagingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        StagingFile::write_all(self, buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for StagingFile {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: the error that led here is the one to report.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.placed {
            // Best effort: the error that led here is the one to report.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Flushes a directory's entries (creations, renames, removals) to disk.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    run(Step::SyncDir, dir, || {
        // Windows cannot open a directory as a file; its renames are durable through the
        // file system's own journal, so there is nothing to flush there.
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
        Ok(())
    })
}

/// Replaces `target` with `contents`: temporary file (`create_new`, unpredictable name, `mode`)
/// in the same directory, write, fsync, rename over the target, fsync of the directory.
///
/// After a crash the target holds the old content or the new one. If an error comes before the
/// rename ([`Step::NameTemp`] to [`Step::Rename`]), the target is untouched and no temporary
/// file remains; an error at [`Step::SyncDir`] means the new content is in place but its
/// rename may not survive a crash.
pub fn write_atomic(target: &Path, contents: &[u8], mode: Mode) -> Result<(), Error> {
    StagedFile::write(target, contents, mode)?.rename_into_place()?;
    sync_dir(parent_dir(target))
}

/// Appends `contents` to the log at `path` and fsyncs it, creating the file with `mode` if it
/// does not exist; a created file's directory is fsynced too, so the new log survives a crash.
/// Appends of several processes are not serialised here: the caller holds a lock, and is the
/// only appender meanwhile, because a failed append cuts the file back to the length it had
/// (best effort), so that no partial line stays behind to break the next reader.
pub fn append(path: &Path, contents: &[u8], mode: Mode) -> Result<(), Error> {
    let open_existing = || OpenOptions::new().append(true).open(path);
    let (mut file, created) = match open_existing() {
        Ok(f) => (f, false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let created = open_options(mode).append(true).create_new(true).open(path);
            match created {
                Ok(f) => (f, true),
                // Created by someone else in between: append to theirs.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    (run(Step::OpenAppend, path, open_existing)?, false)
                }
                Err(e) => return Err(Error::io(Step::OpenAppend, path, e)),
            }
        }
        Err(e) => return Err(Error::io(Step::OpenAppend, path, e)),
    };
    let before = run(Step::Append, path, || file.metadata())?.len();
    let written = run(Step::Append, path, || file.write_all(contents))
        .and_then(|()| run(Step::SyncAppend, path, || file.sync_all()));
    if let Err(e) = written {
        // Undo what part of the entry reached the file; the error reported is the first.
        if file.set_len(before).is_ok() {
            let _ = file.sync_all();
        }
        return Err(e);
    }
    if created {
        sync_dir(parent_dir(path))?;
    }
    Ok(())
}

/// Removes the temporary files (names starting with [`TEMP_PREFIX`]) a crash left in `dir`
/// and returns how many. Call it only under an exclusive lock that every writer of the
/// directory takes, so no writer is between its temporary write and its rename.
pub fn remove_stale_temps(dir: &Path) -> Result<usize, Error> {
    let mut removed = 0;
    for entry in run(Step::ListDir, dir, || fs::read_dir(dir))? {
        let entry = run(Step::ListDir, dir, || entry)?;
        if is_temp_name(&entry.file_name()) {
            let path = entry.path();
            run(Step::RemoveTemp, &path, || fs::remove_file(&path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
pub(crate) mod fault {
    //! Fault injection for the unit tests: the next time this thread reaches the armed step,
    //! it fails as the operating system would.
    use crate::Step;
    use std::cell::Cell;

    thread_local! {
        static ARMED: Cell<Option<Step>> = const { Cell::new(None) };
    }

    pub(crate) fn arm(step: Step) {
        ARMED.set(Some(step));
    }

    pub(crate) fn hit(step: Step) -> bool {
        if ARMED.get() == Some(step) {
            ARMED.set(None);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::dir_entries as entries;

    /// A failure at each step before the rename leaves the old content and no temporary file;
    /// a failure at the directory fsync comes after the rename, with the new content in place.
    #[test]
    fn every_failing_step_leaves_no_temporary_and_the_old_content() {
        for step in [
            Step::NameTemp,
            Step::CreateTemp,
            Step::WriteTemp,
            Step::SyncTemp,
            Step::Rename,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("state.json");
            fs::write(&target, b"old").unwrap();
            fault::arm(step);
            let err = write_atomic(&target, b"new", Mode::PRIVATE).unwrap_err();
            assert_eq!(err.step(), step, "{err}");
            assert!(err.to_string().contains("injected fault"), "{err}");
            assert_eq!(fs::read(&target).unwrap(), b"old", "{step:?}");
            assert_eq!(entries(dir.path()), ["state.json"], "{step:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("state.json");
        fs::write(&target, b"old").unwrap();
        fault::arm(Step::SyncDir);
        let err = write_atomic(&target, b"new", Mode::PRIVATE).unwrap_err();
        assert_eq!(err.step(), Step::SyncDir);
        assert_eq!(err.path(), dir.path());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(entries(dir.path()), ["state.json"]);
    }

    #[test]
    fn the_error_names_the_step_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("ca.pem");
        fault::arm(Step::WriteTemp);
        let err = write_atomic(&target, b"x", Mode::PUBLIC).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("cannot write temporary file "), "{msg}");
        let temp = err.path().file_name().unwrap().to_string_lossy();
        assert!(
            temp.starts_with(TEMP_PREFIX) && temp.ends_with("-ca.pem"),
            "{temp}"
        );
        assert!(msg.contains(&*temp), "{msg}");
        assert_eq!(err.path().parent().unwrap(), dir.path());
    }

    #[test]
    fn a_failed_append_is_reported_with_its_step() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        append(&log, b"one\n", Mode::PUBLIC).unwrap();
        fault::arm(Step::SyncAppend);
        let err = append(&log, b"two\n", Mode::PUBLIC).unwrap_err();
        assert_eq!((err.step(), err.path()), (Step::SyncAppend, log.as_path()));
        // Review finding on issue 11: the failed entry does not stay behind as a partial line
        // (a damaged last line made the next append fail after the CA had acted).
        assert_eq!(fs::read(&log).unwrap(), b"one\n");
        append(&log, b"three\n", Mode::PUBLIC).unwrap();
        assert_eq!(fs::read(&log).unwrap(), b"one\nthree\n");
        // A new log fsyncs its directory; a failure there is reported, not swallowed.
        let new_log = dir.path().join("new.log");
        fault::arm(Step::SyncDir);
        let err = append(&new_log, b"one\n", Mode::PUBLIC).unwrap_err();
        assert_eq!((err.step(), err.path()), (Step::SyncDir, dir.path()));
    }

    #[test]
    fn a_staging_file_is_written_in_pieces_and_removed_unless_finished() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.blob");
        let mut staging = StagingFile::create(&target, Mode::PRIVATE).unwrap();
        staging.write_all(b"one ").unwrap();
        staging.write_all(b"two").unwrap();
        assert_eq!(fs::read(staging.temp_path()).unwrap(), b"one two");
        drop(staging);
        assert!(entries(dir.path()).is_empty());

        let mut staging = StagingFile::create(&target, Mode::PRIVATE).unwrap();
        staging.write_all(b"a").unwrap();
        fault::arm(Step::WriteTemp);
        let err = staging.write_all(b"b").unwrap_err();
        assert_eq!(err.step(), Step::WriteTemp);
        assert_eq!(err.path(), staging.temp_path());
        drop(staging);
        assert!(entries(dir.path()).is_empty());

        let mut staging = StagingFile::create(&target, Mode::PRIVATE).unwrap();
        staging.write_all(b"whole").unwrap();
        fault::arm(Step::SyncTemp);
        assert_eq!(staging.finish().unwrap_err().step(), Step::SyncTemp);
        assert!(entries(dir.path()).is_empty());

        let mut staging = StagingFile::create(&target, Mode::PRIVATE).unwrap();
        staging.write_all(b"whole").unwrap();
        staging.finish().unwrap().rename_into_place().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"whole");
        assert_eq!(entries(dir.path()), ["big.blob"]);
    }

    #[test]
    fn long_target_names_give_temporary_names_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("é".repeat(120));
        write_atomic(&target, b"x", Mode::PUBLIC).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"x");
        let temp = temp_name(dir.path(), &target).unwrap();
        let name = temp.file_name().unwrap().len();
        assert!(name <= TEMP_PREFIX.len() + 17 + NAME_HINT_LEN, "{name}");
    }
}
