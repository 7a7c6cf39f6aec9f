//! Faults injected into the soft token while threads sign through one pool, with the token's
//! own fault switch (`gmchain_softtoken_set_fault`, armed by GMCHAIN_SOFTTOKEN_FAULTS=1 at
//! C_Initialize). A separate binary: the fault state and C_Initialize are process-wide.
//!
//! - kind 1 (every session closed inside the token) and kind 3 (application logged out): the
//!   pool recovers, every call succeeds, and every signature returned verifies;
//! - kind 2 (device removed): every call fails with `HsmError::Unreachable`, clearly, and no
//!   signature is returned (nothing is computed in software); after kind 0 the pool recovers.
#![allow(
    unsafe_code,
    reason = "libloading: resolving and calling the soft token's exported fault switch"
)]

mod common;

use common::*;
use crypto::{CryptoError, Signature, Signer, UserId};
use hsm::{Hsm, HsmError, HsmSigner, KeyUsage};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

type SetFault = unsafe extern "C" fn(u32) -> cryptoki_sys::CK_RV;

struct FaultSwitch {
    _lib: libloading::Library,
    set: SetFault,
}

impl FaultSwitch {
    fn open(path: &std::path::Path) -> Self {
        // SAFETY: the same library the provider already loaded (the loader returns the same
        // mapping); its initialisers have run.
        let lib = unsafe { libloading::Library::new(path) }.expect("load the soft token");
        // SAFETY: the symbol is `extern "C" fn(u32) -> CK_RV` as the soft token documents.
        let set = unsafe {
            *lib.get::<SetFault>(b"gmchain_softtoken_set_fault\0")
                .expect("fault switch symbol")
        };
        Self { _lib: lib, set }
    }

    fn set(&self, kind: u32) {
        // SAFETY: a plain value argument; the function only flips the token's fault state.
        let rv = unsafe { (self.set)(kind) };
        assert_eq!(
            rv,
            cryptoki_sys::CKR_OK,
            "gmchain_softtoken_set_fault({kind})"
        );
    }
}

type Outcome = Vec<(Vec<u8>, Result<Signature, HsmError>)>;

/// Calls each signing thread finished, by thread.
type Progress = Arc<Vec<AtomicU64>>;

fn signing_threads(
    signer: &Arc<HsmSigner>,
    stop: &Arc<AtomicBool>,
    tag: &str,
) -> (Vec<JoinHandle<Outcome>>, Progress) {
    let progress: Progress = Arc::new((0..8).map(|_| AtomicU64::new(0)).collect());
    let handles = (0..8)
        .map(|t| {
            let (signer, stop, tag) = (signer.clone(), stop.clone(), tag.to_string());
            let progress = progress.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let msg = format!("{tag} thread {t} message {i}").into_bytes();
                    let r = signer.sign_message(&UserId::default(), &msg);
                    out.push((msg, r));
                    progress[t].fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    if out.len() > 20_000 {
                        break;
                    }
                }
                out
            })
        })
        .collect();
    (handles, progress)
}

/// Waits until every thread has finished a call that started after this moment: each has
/// finished two more calls (the one in progress, then a new one). A call that started before
/// a fault then never sees the next fault too, however slow the machine: recovering costs a
/// login (PBKDF2 of the PIN in the soft token), and on a loaded CI machine faults injected at
/// a fixed pace once hit one call four times, past the pool's three recoveries per call.
fn wait_for_every_thread(progress: &Progress) {
    let start: Vec<u64> = progress.iter().map(|p| p.load(Ordering::Relaxed)).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while progress
        .iter()
        .zip(&start)
        .any(|(p, s)| p.load(Ordering::Relaxed) < s + 2)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "a signing thread made no progress for 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn faults_while_signing() {
    let env = softtoken(true);
    let switch = FaultSwitch::open(&env.lib);
    let hsm = open_softtoken(&env.profile, 4);
    let za_in_token = open_softtoken(&message_with_id_profile(env), 2);
    let info = hsm
        .generate_sm2("fault-sign-1", &[0x61], KeyUsage::Signing)
        .unwrap();
    let signer = Arc::new(hsm.signer(&info.uri).unwrap());
    let verify = |msg: &[u8], sig: &Signature| {
        crypto_sm::sm2::verify(&info.public_key, &UserId::default(), msg, sig)
            .expect("a signature returned during faults must verify")
    };

    // Kinds 1 and 3 while eight threads sign.
    let stop = Arc::new(AtomicBool::new(false));
    let (threads, progress) = signing_threads(&signer, &stop, "recoverable");
    for kind in [1, 3, 1, 3, 1] {
        wait_for_every_thread(&progress);
        switch.set(kind);
    }
    wait_for_every_thread(&progress);
    stop.store(true, Ordering::Relaxed);
    let mut signed = 0;
    for t in threads {
        for (msg, r) in t.join().unwrap() {
            match r {
                Ok(sig) => {
                    verify(&msg, &sig);
                    signed += 1;
                }
                Err(e) => panic!("the pool did not recover from fault 1/3: {e}"),
            }
        }
    }
    assert!(signed > 100, "only {signed} signatures");

    // Everything else recovers too, in both ZA modes.
    switch.set(1);
    assert_eq!(hsm.find(&info.uri).unwrap().len(), 1);
    switch.set(3);
    let za_signer = za_in_token.signer(&info.uri).unwrap();
    let id = UserId::new(b"after-fault".to_vec()).unwrap();
    let sig = za_signer.sign_message(&id, b"m").unwrap();
    crypto_sm::sm2::verify(&info.public_key, &id, b"m", &sig).unwrap();
    switch.set(1);
    za_in_token.verify(&info.uri, &id, b"m", &sig).unwrap();
    assert_eq!(hsm.sm3(b"abc").unwrap(), crypto_sm::sm3::sm3(b"abc"));

    // Kind 2: the device is gone. Every call fails as Unreachable, mid-run and afterwards.
    let stop = Arc::new(AtomicBool::new(false));
    let (threads, _) = signing_threads(&signer, &stop, "removed");
    std::thread::sleep(Duration::from_millis(50));
    switch.set(2);
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let mut unreachable = 0;
    for t in threads {
        let outcome = t.join().unwrap();
        // After the switch, each thread's last call failed; nothing wrong was ever returned.
        assert!(matches!(
            outcome.last(),
            Some((_, Err(HsmError::Unreachable { .. })))
        ));
        for (msg, r) in outcome {
            match r {
                Ok(sig) => verify(&msg, &sig),
                Err(HsmError::Unreachable { .. }) => unreachable += 1,
                Err(e) => panic!("device removal must be Unreachable, got {e}"),
            }
        }
    }
    assert!(unreachable >= 8);
    let e = signer.sign_message(&UserId::default(), b"m").unwrap_err();
    let msg = e.to_string();
    assert!(e.is_unreachable(), "{msg}");
    assert!(
        msg.contains("CKR_DEVICE_REMOVED") && msg.contains("HSM unreachable"),
        "{msg}"
    );
    assert_eq!(e.code(), "HSM_UNREACHABLE");
    assert!(matches!(
        Signer::sign(signer.as_ref(), &UserId::default(), b"m"),
        Err(CryptoError::Device { .. })
    ));
    assert!(hsm.sm3(b"abc").unwrap_err().is_unreachable());
    assert!(hsm.list().unwrap_err().is_unreachable());
    assert!(hsm.random(8).unwrap_err().is_unreachable());
    match Hsm::open(&env.profile, TOKEN, Some(secret(USER_PIN)), 1) {
        Err(e) => assert!(e.is_unreachable(), "{e}"),
        Ok(_) => panic!("opened a removed device"),
    }
    // SM3 through the token fails too: nothing is computed in software instead.
    assert!(hsm.sm3(b"abc").unwrap_err().is_unreachable());

    // Back: the pool finds the token again, logs in, and signs.
    switch.set(0);
    let sig = signer.sign_message(&UserId::default(), b"back").unwrap();
    verify(b"back", &sig);
    assert_eq!(hsm.find(&info.uri).unwrap().len(), 1);
}
