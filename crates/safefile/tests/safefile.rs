//! The file-safety crate against the real file system: atomic writes, appends, locks.

use safefile::{
    DirLock, Error, LOCK_FILE, LockKind, Mode, StagedFile, Step, TEMP_PREFIX, append, is_temp_name,
    remove_stale_temps, write_atomic,
};
use std::fs;
#[cfg(unix)]
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use test_support::{concurrently, dir_entries as entries};

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---- atomic writes ------------------------------------------------------------------------

#[test]
fn a_write_replaces_the_target_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.json");
    write_atomic(&target, b"first", Mode::PUBLIC).unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"first");
    write_atomic(&target, b"second, longer", Mode::PUBLIC).unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"second, longer");
    write_atomic(&target, b"", Mode::PUBLIC).unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"");
    assert_eq!(entries(dir.path()), ["index.json"]);
}

#[test]
fn a_write_onto_a_directory_fails_and_leaves_it_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("certs");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("01.pem"), b"old").unwrap();
    let err = write_atomic(&target, b"new", Mode::PUBLIC).unwrap_err();
    assert_eq!(err.step(), Step::Rename, "{err}");
    assert_eq!(err.path(), target);
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot rename into place ") && msg.contains(&*target.to_string_lossy()),
        "{msg}"
    );
    assert_eq!(entries(dir.path()), ["certs"]);
    assert_eq!(fs::read(target.join("01.pem")).unwrap(), b"old");
}

#[test]
fn a_write_into_a_missing_or_non_directory_parent_fails_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_atomic(&dir.path().join("no/such/file"), b"x", Mode::PUBLIC).unwrap_err();
    match &err {
        Error::Io { step, path, source } => {
            assert_eq!(*step, Step::CreateTemp);
            assert_eq!(path.parent().unwrap(), dir.path().join("no/such"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    let file = dir.path().join("plain");
    fs::write(&file, b"old").unwrap();
    let err = write_atomic(&file.join("child"), b"x", Mode::PUBLIC).unwrap_err();
    assert_eq!(err.step(), Step::CreateTemp, "{err}");
    assert_eq!(fs::read(&file).unwrap(), b"old");
    assert_eq!(entries(dir.path()), ["plain"]);
}

#[test]
fn a_staged_file_dropped_before_its_rename_leaves_the_old_content_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("token.json");
    fs::write(&target, b"old").unwrap();
    let staged = StagedFile::write(&target, b"new", Mode::PRIVATE).unwrap();
    let temp = staged.temp_path().to_path_buf();
    assert_eq!(fs::read(&temp).unwrap(), b"new");
    assert!(is_temp_name(temp.file_name().unwrap()));
    drop(staged);
    assert_eq!(fs::read(&target).unwrap(), b"old");
    assert_eq!(entries(dir.path()), ["token.json"]);
}

#[cfg(unix)]
#[test]
fn the_callers_mode_is_applied_even_over_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("node.key.pem");
    // An old world-readable file: the replacement is a new inode with the requested mode.
    fs::write(&secret, b"old").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    write_atomic(&secret, b"key", Mode::PRIVATE).unwrap();
    assert_eq!(mode(&secret), 0o600);
    let public = dir.path().join("ca.pem");
    write_atomic(&public, b"cert", Mode::from_bits(0o640)).unwrap();
    assert_eq!(mode(&public), 0o640);
    // The temporary file has the mode from its creation, so a secret is never readable by
    // others, not even before the rename.
    let staged = StagedFile::write(&secret, b"key2", Mode::PRIVATE).unwrap();
    assert_eq!(mode(staged.temp_path()), 0o600);
}

/// Two writers of one target at once: with a fixed temporary name (`<target>.tmp`, or one per
/// process id) one would truncate or rename away the other's temporary file, so a write failed
/// or a reader saw a mixture. Every write must succeed, every read must see one whole version,
/// and no temporary file may remain.
#[test]
fn concurrent_writers_of_one_target_all_succeed_and_readers_see_whole_versions() {
    const WRITERS: usize = 4;
    const ROUNDS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("genesis.json");
    let version = |w: usize| vec![b'a' + w as u8; 4096 * (w + 1)];
    write_atomic(&target, &version(0), Mode::PUBLIC).unwrap();
    // Threads 0 to WRITERS - 1 write their version; the last one reads.
    let results = concurrently(WRITERS + 1, |i| {
        for _ in 0..ROUNDS {
            if i < WRITERS {
                write_atomic(&target, &version(i), Mode::PUBLIC).map_err(|e| e.to_string())?;
            } else {
                let seen = fs::read(&target).unwrap();
                if !(0..WRITERS).any(|w| seen == version(w)) {
                    return Err(format!("a reader saw a mixture of {} bytes", seen.len()));
                }
            }
        }
        Ok(())
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let last = fs::read(&target).unwrap();
    assert!((0..WRITERS).any(|w| last == version(w)));
    assert_eq!(entries(dir.path()), ["genesis.json"]);
}

#[test]
fn temporary_names_are_unpredictable_and_recognisable() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x");
    let a = StagedFile::write(&target, b"1", Mode::PUBLIC).unwrap();
    let b = StagedFile::write(&target, b"2", Mode::PUBLIC).unwrap();
    assert_ne!(a.temp_path(), b.temp_path());
    for s in [&a, &b] {
        let name = s
            .temp_path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let random = &name[TEMP_PREFIX.len()..TEMP_PREFIX.len() + 16];
        assert!(name.starts_with(TEMP_PREFIX), "{name}");
        assert!(random.bytes().all(|c| c.is_ascii_hexdigit()), "{name}");
        assert!(!name.contains(&std::process::id().to_string()), "{name}");
    }
    b.rename_into_place().unwrap();
    a.rename_into_place().unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"1");
    assert_eq!(entries(dir.path()), ["x"]);
}

#[test]
fn stale_temporaries_are_removed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(".tmp-999-0-c.key.pem"), b"partial").unwrap();
    fs::write(dir.path().join("keep"), b"k").unwrap();
    fs::write(dir.path().join(".lock"), b"").unwrap();
    let staged = StagedFile::write(&dir.path().join("keep"), b"new", Mode::PUBLIC).unwrap();
    std::mem::forget(staged); // as a crash would leave it
    assert_eq!(remove_stale_temps(dir.path()).unwrap(), 2);
    assert_eq!(entries(dir.path()), [".lock", "keep"]);
    assert_eq!(fs::read(dir.path().join("keep")).unwrap(), b"k");
}

// ---- appends ------------------------------------------------------------------------------

#[test]
fn append_creates_with_the_mode_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    append(&log, b"one\n", Mode::PRIVATE).unwrap();
    append(&log, b"two\n", Mode::PUBLIC).unwrap();
    assert_eq!(fs::read(&log).unwrap(), b"one\ntwo\n");
    #[cfg(unix)]
    assert_eq!(mode(&log), 0o600);
    let err = append(&dir.path().join("no/log"), b"x", Mode::PUBLIC).unwrap_err();
    assert_eq!(err.step(), Step::OpenAppend, "{err}");
    assert_eq!(entries(dir.path()), ["audit.log"]);
}

// ---- locks --------------------------------------------------------------------------------

#[test]
fn two_exclusive_locks_conflict_and_the_second_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let held = DirLock::exclusive(dir.path()).unwrap();
    assert_eq!((held.dir(), held.kind()), (dir.path(), LockKind::Exclusive));
    let err = DirLock::try_exclusive(dir.path()).unwrap_err();
    match &err {
        Error::Locked { dir: d, lock_file } => {
            assert_eq!(d, dir.path());
            assert_eq!(lock_file, &dir.path().join(LOCK_FILE));
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{} is in use", dir.path().display())),
        "{msg}"
    );
    assert!(msg.contains("another process holds its lock"), "{msg}");
    let (step, path, io) = err.into_parts();
    assert_eq!((step, path), (Step::Lock, dir.path().join(LOCK_FILE)));
    assert_eq!(io.kind(), std::io::ErrorKind::WouldBlock);
    assert!(io.to_string().contains(&*dir.path().to_string_lossy()));
    // A shared lock conflicts with an exclusive one too.
    assert!(matches!(
        DirLock::try_shared(dir.path()),
        Err(Error::Locked { .. })
    ));
    #[cfg(unix)]
    assert_eq!(mode(&dir.path().join(LOCK_FILE)), 0o600);
}

#[test]
fn shared_locks_coexist_and_keep_out_an_exclusive_one() {
    let dir = tempfile::tempdir().unwrap();
    let a = DirLock::shared(dir.path()).unwrap();
    let b = DirLock::try_shared(dir.path()).unwrap();
    assert!(matches!(
        DirLock::try_exclusive(dir.path()),
        Err(Error::Locked { .. })
    ));
    drop((a, b));
    DirLock::try_exclusive(dir.path()).unwrap();
}

#[test]
fn a_lock_is_released_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let held = DirLock::try_exclusive(dir.path()).unwrap();
    assert!(DirLock::try_exclusive(dir.path()).is_err());
    drop(held);
    let again = DirLock::try_exclusive(dir.path()).unwrap();
    drop(again);
    assert_eq!(entries(dir.path()), [LOCK_FILE]);
}

#[test]
fn a_waiting_lock_is_granted_when_the_holder_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let held = DirLock::exclusive(dir.path()).unwrap();
    let path = dir.path().to_path_buf();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let lock = DirLock::exclusive(&path).unwrap();
        tx.send(()).unwrap();
        drop(lock);
    });
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    drop(held);
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    waiter.join().unwrap();
}

#[test]
fn a_lock_in_a_missing_directory_names_the_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone");
    let err = DirLock::exclusive(&missing).unwrap_err();
    assert_eq!(
        (err.step(), err.path()),
        (Step::OpenLock, missing.join(LOCK_FILE).as_path())
    );
    assert!(
        err.to_string().starts_with("cannot open lock file "),
        "{err}"
    );
}
