//! The blob store against the real file system: payloads sealed by `exchange::payload`, put
//! and read back in bounded memory, every refusal leaving nothing behind, and processes killed
//! with SIGKILL in the middle of a put and right after one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use blobstore::{BlobError, BlobId, BlobStore, Config, IO_BUFFER_LEN, Upload};
use crypto_sm::sm3::Sm3Context;
use crypto_sm::sm4::Sm4Secret;
use exchange::payload::{self, CHUNK_LEN, Summary};
use test_support::dir_entries;

/// The lock file is the only entry of an idle store without blobs.
const EMPTY: [&str; 1] = [".lock"];

/// A deterministic plaintext of `remaining` bytes, generated as it is read (never held).
struct Pattern {
    remaining: u64,
    pos: u64,
}

impl Pattern {
    fn new(len: u64) -> Pattern {
        Pattern {
            remaining: len,
            pos: 0,
        }
    }
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        for b in &mut buf[..n] {
            *b = (self.pos.wrapping_mul(2_654_435_761) >> 13) as u8;
            self.pos += 1;
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A reader that records the largest buffer it was asked to fill and the bytes it gave: the
/// peak of the buffer a store reads a blob through.
struct Peak<R> {
    inner: R,
    largest_request: usize,
    given: u64,
}

impl<R: Read> Peak<R> {
    fn new(inner: R) -> Peak<R> {
        Peak {
            inner,
            largest_request: 0,
            given: 0,
        }
    }
}

impl<R: Read> Read for Peak<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.largest_request = self.largest_request.max(buf.len());
        let n = self.inner.read(buf)?;
        self.given += n as u64;
        Ok(n)
    }
}

/// A writer that keeps only the SM3 and the length of what it is given.
#[derive(Default)]
struct HashSink {
    hash: Sm3Context,
    len: u64,
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hash.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn key() -> Sm4Secret {
    Sm4Secret::from_slice(&[0x5a; 16]).unwrap()
}

/// A payload of `plain_len` pattern bytes sealed in memory (fixed key and prefix, so a child
/// process and its parent build the same bytes).
fn sealed(plain_len: u64) -> (Vec<u8>, Summary) {
    let mut out = Vec::new();
    let summary = payload::seal(&key(), &[3; 8], &mut Pattern::new(plain_len), &mut out).unwrap();
    (out, summary)
}

fn id_of(summary: &Summary) -> BlobId {
    BlobId::from(summary.payload_sm3)
}

fn store_dir(root: &Path) -> PathBuf {
    root.join("blobs")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_sealed_payload_round_trips_and_opens() {
    let root = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&store_dir(root.path())).unwrap();
    assert_eq!(store.stale_temps_removed(), 0);
    let (bytes, summary) = sealed(CHUNK_LEN as u64);
    let id = id_of(&summary);
    assert!(!store.contains(&id).unwrap());
    let info = store.put(id, bytes.len() as u64, &mut &bytes[..]).unwrap();
    assert_eq!((info.id, info.len), (id, summary.payload_len));
    assert!(store.contains(&id).unwrap());
    assert_eq!(store.list().unwrap(), [info]);
    let name = format!("{id}.blob");
    assert_eq!(dir_entries(store.dir()), [".lock", name.as_str()]);
    #[cfg(unix)]
    {
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&store.dir().join(&name)), 0o600);
    }

    let mut reader = store.open_read(&id).unwrap();
    assert_eq!((reader.id(), reader.len()), (id, bytes.len() as u64));
    let mut back = Vec::new();
    reader.read_to_end(&mut back).unwrap();
    assert!(back == bytes, "the stored bytes differ from those put");
    let mut plain = HashSink::default();
    let opened = payload::open(&key(), &mut store.open_read(&id).unwrap(), &mut plain).unwrap();
    assert_eq!(opened, summary);
    assert_eq!(plain.hash.finish(), summary.plaintext_sm3);
    assert_eq!(store.verify(&id).unwrap(), info);
}

/// 64 MiB + 1 of plaintext (65 chunks): sealed to a file, put from the file and opened from the
/// store, all streamed. The store reads the upload through one buffer of IO_BUFFER_LEN
/// (asserted on the requests it makes), whatever the blob's size.
#[test]
fn a_64_mib_plus_one_payload_streams_through_a_bounded_buffer() {
    let root = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&store_dir(root.path())).unwrap();
    let plain_len = 64 * CHUNK_LEN as u64 + 1;
    let source = root.path().join("payload.gmcp");
    let summary = payload::seal(
        &key(),
        &[9; 8],
        &mut Pattern::new(plain_len),
        &mut File::create(&source).unwrap(),
    )
    .unwrap();
    assert_eq!(summary.chunks, 65);
    let id = id_of(&summary);
    let mut input = Peak::new(File::open(&source).unwrap());
    let info = store.put(id, summary.payload_len, &mut input).unwrap();
    assert_eq!(info.len, summary.payload_len);
    assert_eq!(input.given, summary.payload_len);
    assert!(
        (64 * 1024..=1 << 20).contains(&IO_BUFFER_LEN),
        "{IO_BUFFER_LEN}"
    );
    assert!(
        input.largest_request <= IO_BUFFER_LEN,
        "the store asked for {} bytes at once",
        input.largest_request
    );
    fs::remove_file(&source).unwrap();

    // Read back through the store and the payload reader (which verifies every chunk).
    let mut plain = HashSink::default();
    let opened = payload::open(&key(), &mut store.open_read(&id).unwrap(), &mut plain).unwrap();
    assert_eq!(opened, summary);
    assert_eq!(plain.len, plain_len);
    assert_eq!(store.verify(&id).unwrap(), info);
}

#[test]
fn an_upload_fed_in_uneven_pieces_is_stored() {
    fn send_static<T: Send + 'static>() {}
    send_static::<Upload>();
    send_static::<BlobStore>();

    let root = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&store_dir(root.path())).unwrap();
    let (bytes, summary) = sealed(3 * CHUNK_LEN as u64 + 12_345);
    let id = id_of(&summary);
    let mut upload = store.begin(id, bytes.len() as u64).unwrap();
    assert_eq!(upload.id(), id);
    // The header one byte at a time, then pieces of a gRPC-like size.
    let (head, rest) = bytes.split_at(7);
    for b in head {
        upload.write(std::slice::from_ref(b)).unwrap();
    }
    for piece in rest.chunks(65_521) {
        upload.write(piece).unwrap();
    }
    upload.write(&[]).unwrap();
    assert_eq!(upload.received(), bytes.len() as u64);
    assert_eq!(upload.remaining(), 0);
    // Nothing is servable before the commit.
    assert!(!store.contains(&id).unwrap());
    assert!(matches!(
        store.open_read(&id),
        Err(BlobError::NotFound { .. })
    ));
    assert!(store.list().unwrap().is_empty());
    let info = upload.commit().unwrap();
    assert_eq!(info.len, bytes.len() as u64);
    assert_eq!(store.verify(&id).unwrap(), info);

    // An upload dropped uncommitted leaves nothing.
    let (other, other_summary) = sealed(100);
    let mut upload = store
        .begin(id_of(&other_summary), other.len() as u64)
        .unwrap();
    upload.write(&other).unwrap();
    assert_eq!(dir_entries(store.dir()).len(), 3, "lock, blob, temporary");
    drop(upload);
    assert_eq!(dir_entries(store.dir()), [".lock", &format!("{id}.blob")]);
}

/// Every refused put names what differed, leaves no temporary file, and leaves the blob stored
/// before under the same id untouched.
#[test]
fn refused_puts_name_the_difference_and_leave_nothing_behind() {
    let root = tempfile::tempdir().unwrap();
    let store = BlobStore::open_with(
        &store_dir(root.path()),
        Config {
            max_blob_len: 2 * CHUNK_LEN as u64,
        },
    )
    .unwrap();
    let (bytes, summary) = sealed(1000);
    let id = id_of(&summary);
    let len = bytes.len() as u64;
    assert_eq!(len, 13 + 1000 + 16);
    let (other, other_summary) = sealed(999);
    let stored = store.put(id_of(&other_summary), other.len() as u64, &mut &other[..]);
    let stored = stored.unwrap();
    let expected_entries = [".lock".to_string(), format!("{}.blob", stored.id)];
    let put = |expected: BlobId, expected_len: u64, data: &[u8]| {
        let mut input = Peak::new(data);
        let err = store.put(expected, expected_len, &mut input).unwrap_err();
        assert_eq!(dir_entries(store.dir()), expected_entries, "after: {err}");
        (err, input.given)
    };

    // The digest: the bytes of another payload under this id, and this payload under the id
    // of the blob already stored (which must survive).
    let (err, _) = put(id, other.len() as u64, &other);
    assert!(
        matches!(&err, BlobError::DigestMismatch { expected, actual }
            if *expected == id && *actual == stored.id),
        "{err}"
    );
    assert!(err.to_string().contains(&id.to_hex()), "{err}");
    let (err, _) = put(stored.id, len, &bytes);
    assert!(
        matches!(&err, BlobError::DigestMismatch { actual, .. } if *actual == id),
        "{err}"
    );
    assert_eq!(store.verify(&stored.id).unwrap(), stored);

    // The length: announced one byte longer, and one byte shorter (refused at the byte too
    // many, having read no more than that).
    let (err, _) = put(id, len + 1, &bytes);
    assert!(
        matches!(err, BlobError::ShorterThanExpected { expected, received, .. }
            if expected == len + 1 && received == len),
        "{err}"
    );
    let (err, given) = put(id, len - 1, &bytes);
    assert!(
        matches!(err, BlobError::LongerThanExpected { expected, .. } if expected == len - 1),
        "{err}"
    );
    assert_eq!(given, len, "read past the first byte too many");
    // A longer stream from an endless reader is cut as soon as it exceeds the announcement.
    let mut endless = Peak::new(bytes.as_slice().chain(io::repeat(0)));
    let err = store.put(id, len, &mut endless).unwrap_err();
    assert!(matches!(err, BlobError::LongerThanExpected { .. }), "{err}");
    assert_eq!(endless.given, len + 1);
    assert_eq!(dir_entries(store.dir()), expected_entries);

    // The header: not "GMCP", and version 2 (the digest is that of the altered bytes, so only
    // the header check can refuse them).
    let mut not_gmcp = bytes.clone();
    not_gmcp[3] = b'X';
    let (err, _) = put(BlobId::of(&not_gmcp), len, &not_gmcp);
    assert!(matches!(err, BlobError::NotAPayload { .. }), "{err}");
    assert!(err.to_string().contains("GMCP"), "{err}");
    let mut v2 = bytes.clone();
    v2[4] = 2;
    let (err, _) = put(BlobId::of(&v2), len, &v2);
    assert!(
        matches!(err, BlobError::UnsupportedVersion { version: 2, .. }),
        "{err}"
    );

    // The limit (2 MiB here): refused before a byte is read.
    let (big, big_summary) = sealed(2 * CHUNK_LEN as u64);
    let (err, given) = put(id_of(&big_summary), big.len() as u64, &big);
    assert!(
        matches!(err, BlobError::TooLarge { len, limit, .. }
            if len == big.len() as u64 && limit == 2 * CHUNK_LEN as u64),
        "{err}"
    );
    assert_eq!(given, 0);
    // A length no payload has: refused before a byte is read.
    let (err, given) = put(id, 20, &bytes);
    assert!(
        matches!(err, BlobError::ImpossibleLength { len: 20, .. }),
        "{err}"
    );
    assert_eq!(given, 0);

    // The caller's stream failing half-way.
    let mut failing = bytes[..500].chain(FailingReader);
    let err = store.put(id, len, &mut failing).unwrap_err();
    assert!(
        matches!(&err, BlobError::Input { id: named, .. } if *named == id),
        "{err}"
    );
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert_eq!(dir_entries(store.dir()), expected_entries);

    // A failed write discards the upload at once, not when it is dropped.
    let mut upload = store.begin(id, len).unwrap();
    upload.write(&bytes[..100]).unwrap();
    let err = upload.write(&bytes).unwrap_err();
    assert!(matches!(err, BlobError::LongerThanExpected { .. }), "{err}");
    assert_eq!(dir_entries(store.dir()), expected_entries);
    let err = upload.write(&bytes[100..]).unwrap_err();
    assert!(matches!(err, BlobError::UploadDiscarded { .. }), "{err}");
    let err = upload.commit().unwrap_err();
    assert!(matches!(err, BlobError::UploadDiscarded { .. }), "{err}");
    assert_eq!(store.list().unwrap(), [stored]);
}

struct FailingReader;

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other("disk on fire"))
    }
}

/// Threads of one node storing the same blob and different blobs at once: each put is
/// acknowledged, each blob is whole, no temporary is left.
#[test]
fn concurrent_puts_of_the_same_and_of_different_blobs() {
    let root = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&store_dir(root.path())).unwrap();
    let payloads: Vec<(Vec<u8>, Summary)> = (0..4).map(|i| sealed(300_000 + i)).collect();
    let results = test_support::concurrently(8, |t| {
        // Threads 0-3 all put payload 0; threads 4-7 put payloads 0-3 once each.
        let (bytes, summary) = &payloads[t.saturating_sub(4)];
        store.put(id_of(summary), bytes.len() as u64, &mut &bytes[..])
    });
    for r in results {
        r.unwrap();
    }
    let mut ids: Vec<BlobId> = payloads.iter().map(|(_, s)| id_of(s)).collect();
    ids.sort();
    let listed: Vec<BlobId> = store.list().unwrap().iter().map(|b| b.id).collect();
    assert_eq!(listed, ids);
    for id in &ids {
        store.verify(id).unwrap();
    }
    assert_eq!(dir_entries(store.dir()).len(), 1 + ids.len());
}

#[test]
fn a_repeated_put_is_idempotent_and_repairs_a_damaged_copy() {
    let root = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&store_dir(root.path())).unwrap();
    let (bytes, summary) = sealed(5000);
    let id = id_of(&summary);
    let first = store.put(id, bytes.len() as u64, &mut &bytes[..]).unwrap();
    let second = store.put(id, bytes.len() as u64, &mut &bytes[..]).unwrap();
    assert_eq!(first, second);
    assert_eq!(store.list().unwrap(), [first]);
    flip_byte(&store.blob_path(&id), 100);
    assert!(store.verify(&id).is_err());
    store.put(id, bytes.len() as u64, &mut &bytes[..]).unwrap();
    assert_eq!(store.verify(&id).unwrap(), first);
    assert_eq!(dir_entries(store.dir()), [".lock", &format!("{id}.blob")]);
}

#[test]
fn delete_removes_a_blob_for_good() {
    let root = tempfile::tempdir().unwrap();
    let dir = store_dir(root.path());
    let (bytes, summary) = sealed(10);
    let id = id_of(&summary);
    {
        let store = BlobStore::open(&dir).unwrap();
        store.put(id, bytes.len() as u64, &mut &bytes[..]).unwrap();
        // A reader opened before the delete keeps its bytes.
        let mut early = store.open_read(&id).unwrap();
        store.delete(&id).unwrap();
        assert!(!store.contains(&id).unwrap());
        let err = store.open_read(&id).unwrap_err();
        assert!(matches!(err, BlobError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains(&id.to_hex()), "{err}");
        let err = store.delete(&id).unwrap_err();
        assert!(matches!(err, BlobError::NotFound { .. }), "{err}");
        assert!(store.verify(&id).is_err());
        let mut back = Vec::new();
        early.read_to_end(&mut back).unwrap();
        assert_eq!(back, bytes);
    }
    let store = BlobStore::open(&dir).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert_eq!(dir_entries(&dir), EMPTY);
}

#[test]
fn a_deletion_waits_while_a_backup_holds_deletions() {
    let root = tempfile::tempdir().unwrap();
    let dir = store_dir(root.path());
    let (bytes, summary) = sealed(10);
    let id = id_of(&summary);
    let store = BlobStore::open(&dir).unwrap();
    store.put(id, bytes.len() as u64, &mut &bytes[..]).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let hold = store.hold_deletions();
        let deleter = store.clone();
        s.spawn(move || {
            deleter.delete(&id).unwrap();
            tx.send(()).unwrap();
        });
        // The deleter is blocked for as long as the hold lives: the blob stays, whatever the
        // wait (no timing is asserted; the blob's presence is).
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        assert!(store.contains(&id).unwrap());
        assert_eq!(store.verify(&id).unwrap().id, id);
        drop(hold);
        rx.recv().unwrap();
    });
    assert!(!store.contains(&id).unwrap());
}

fn flip_byte(path: &Path, at: u64) {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x01]).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn verify_detects_a_flipped_bit() {
    let root = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&store_dir(root.path())).unwrap();
    let (bytes, summary) = sealed(2 * CHUNK_LEN as u64 + 7);
    let id = id_of(&summary);
    store.put(id, bytes.len() as u64, &mut &bytes[..]).unwrap();
    // A bit in the middle of the second chunk.
    flip_byte(&store.blob_path(&id), (CHUNK_LEN + CHUNK_LEN / 2) as u64);
    let err = store.verify(&id).unwrap_err();
    let BlobError::Corrupt {
        id: named,
        path,
        len,
        actual,
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(
        (*named, path, *len),
        (id, &store.blob_path(&id), bytes.len() as u64)
    );
    assert_ne!(*actual, id);
    let message = err.to_string();
    assert!(
        message.contains(&id.to_hex()) && message.contains("damaged"),
        "{message}"
    );
    // The payload reader refuses the same chunk.
    let err = payload::open(&key(), &mut store.open_read(&id).unwrap(), &mut io::sink());
    assert!(
        matches!(err, Err(payload::PayloadError::Tag { chunk: 1 })),
        "{err:?}"
    );
}

#[test]
fn open_refuses_what_others_could_change_and_a_second_owner() {
    let root = tempfile::tempdir().unwrap();
    let dir = store_dir(root.path());
    let store = BlobStore::open(&dir).unwrap();
    // One owner: a second open (another node, or this one twice) is refused at once.
    let err = BlobStore::open(&dir).unwrap_err();
    assert!(matches!(err, BlobError::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains(&dir.display().to_string()),
        "{err}"
    );
    // A clone shares the lock; the last drop releases it.
    let clone = store.clone();
    drop(store);
    assert!(matches!(
        BlobStore::open(&dir),
        Err(BlobError::Locked { .. })
    ));
    drop(clone);
    drop(BlobStore::open(&dir).unwrap());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
        let err = BlobStore::open(&dir).unwrap_err();
        assert!(
            matches!(err, BlobError::InsecurePermissions { mode: 0o770, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 700"), "{err}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o702)).unwrap();
        assert!(BlobStore::open(&dir).is_err());
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
        drop(BlobStore::open(&dir).unwrap());

        let link = root.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let err = BlobStore::open(&link).unwrap_err();
        assert!(matches!(err, BlobError::NotAStore { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");

        // A symbolic link under a blob's name is not served, listed or deleted.
        let store = BlobStore::open(&dir).unwrap();
        let (bytes, summary) = sealed(1);
        let outside = root.path().join("outside.gmcp");
        fs::write(&outside, &bytes).unwrap();
        let id = id_of(&summary);
        std::os::unix::fs::symlink(&outside, store.blob_path(&id)).unwrap();
        for err in [
            store.open_read(&id).map(|_| ()).unwrap_err(),
            store.list().map(|_| ()).unwrap_err(),
            store.delete(&id).unwrap_err(),
            store.contains(&id).map(|_| ()).unwrap_err(),
        ] {
            assert!(
                matches!(
                    &err,
                    BlobError::NotARegularFile {
                        kind: "symbolic link",
                        ..
                    }
                ),
                "{err}"
            );
        }
        fs::remove_file(store.blob_path(&id)).unwrap();
        // Names that are not blobs are not listed.
        fs::write(dir.join("notes.txt"), b"x").unwrap();
        fs::write(
            dir.join(format!("{}.blob", id.to_hex().to_uppercase())),
            b"x",
        )
        .unwrap();
        assert!(store.list().unwrap().is_empty());
    }

    let file = root.path().join("file");
    fs::write(&file, b"x").unwrap();
    let err = BlobStore::open(&file).unwrap_err();
    assert!(matches!(err, BlobError::NotAStore { .. }), "{err}");
    // Its parent must exist: a typo does not create a tree of directories.
    let err = BlobStore::open(&root.path().join("a/b")).unwrap_err();
    assert!(
        matches!(
            err,
            BlobError::Io {
                step: "create blob store",
                ..
            }
        ),
        "{err}"
    );
}

// ----- Crashes: a child process (this test binary, re-run on one test) killed with SIGKILL.

/// Names the role a re-run test binary plays, and the directory it works in.
const CHILD_ROLE: &str = "BLOBSTORE_TEST_CHILD";
const CHILD_DIR: &str = "BLOBSTORE_TEST_DIR";
/// The plaintext of the crash tests' payload: four chunks and a bit.
const CRASH_PLAIN_LEN: u64 = 4 * CHUNK_LEN as u64 + 1234;

/// Runs `test` in a child process playing `role` in `root`, waits until it creates the file
/// `ready` in `root`, then kills it with SIGKILL and reaps it.
fn run_child_until_ready_then_kill(test: &str, role: &str, root: &Path) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ROLE, role)
        .env(CHILD_DIR, root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = root.join("ready");
    let start = Instant::now();
    while !ready.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("the child ended ({status}) before it was killed:\n{stderr}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the child never got ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Child::kill is SIGKILL on unix: no destructor, no cleanup runs.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{status}");
}

/// The child's side: returns the role this process plays, if it is a child.
fn child_role() -> Option<(String, PathBuf)> {
    let role = std::env::var(CHILD_ROLE).ok()?;
    let dir = PathBuf::from(std::env::var_os(CHILD_DIR)?);
    Some((role, dir))
}

/// Signals the parent and waits to be killed.
fn ready_then_wait(root: &Path) -> ! {
    fs::write(root.join("ready"), b"").unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A reader that gives `before` bytes of `data`, then signals the parent and blocks in the
/// middle of the put.
struct StallsHalfway<'a> {
    data: &'a [u8],
    before: usize,
    root: PathBuf,
}

impl Read for StallsHalfway<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.before == 0 {
            ready_then_wait(&self.root);
        }
        let n = buf.len().min(self.before);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.before -= n;
        Ok(n)
    }
}

#[test]
fn sigkill_in_the_middle_of_a_put_leaves_nothing_servable() {
    let (bytes, summary) = sealed(CRASH_PLAIN_LEN);
    let id = id_of(&summary);
    if let Some((role, root)) = child_role() {
        assert_eq!(role, "mid-put");
        let store = BlobStore::open(&store_dir(&root)).unwrap();
        let mut input = StallsHalfway {
            data: &bytes,
            before: bytes.len() / 2,
            root: root.clone(),
        };
        let _ = store.put(id, bytes.len() as u64, &mut input);
        unreachable!("the put stalls until the process is killed");
    }
    let root = tempfile::tempdir().unwrap();
    run_child_until_ready_then_kill(
        "sigkill_in_the_middle_of_a_put_leaves_nothing_servable",
        "mid-put",
        root.path(),
    );
    let dir = store_dir(root.path());
    // The kill came mid-put: half the blob in a temporary file, no blob under its name.
    let entries = dir_entries(&dir);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0], ".lock");
    assert!(entries[1].starts_with(safefile::TEMP_PREFIX), "{entries:?}");
    assert_eq!(
        fs::metadata(dir.join(&entries[1])).unwrap().len(),
        (bytes.len() / 2) as u64
    );
    // The next open removes it and serves nothing.
    let store = BlobStore::open(&dir).unwrap();
    assert_eq!(store.stale_temps_removed(), 1);
    assert!(!store.contains(&id).unwrap());
    assert!(matches!(
        store.open_read(&id),
        Err(BlobError::NotFound { .. })
    ));
    assert!(store.list().unwrap().is_empty());
    assert_eq!(dir_entries(&dir), EMPTY);
    // And the upload can be done again.
    store.put(id, bytes.len() as u64, &mut &bytes[..]).unwrap();
    assert_eq!(store.verify(&id).unwrap().len, bytes.len() as u64);
}

#[test]
fn a_put_acknowledged_before_sigkill_survives_it() {
    let (bytes, summary) = sealed(CRASH_PLAIN_LEN);
    let id = id_of(&summary);
    if let Some((role, root)) = child_role() {
        assert_eq!(role, "after-put");
        let store = BlobStore::open(&store_dir(&root)).unwrap();
        store.put(id, bytes.len() as u64, &mut &bytes[..]).unwrap();
        // Killed right after the acknowledgement, with the store still open.
        ready_then_wait(&root);
    }
    let root = tempfile::tempdir().unwrap();
    run_child_until_ready_then_kill(
        "a_put_acknowledged_before_sigkill_survives_it",
        "after-put",
        root.path(),
    );
    let store = BlobStore::open(&store_dir(root.path())).unwrap();
    assert_eq!(store.stale_temps_removed(), 0);
    assert_eq!(store.verify(&id).unwrap().len, bytes.len() as u64);
    let mut back = Vec::new();
    store
        .open_read(&id)
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == bytes, "the acknowledged blob differs");
    let mut plain = HashSink::default();
    assert_eq!(
        payload::open(&key(), &mut store.open_read(&id).unwrap(), &mut plain).unwrap(),
        summary
    );
}
