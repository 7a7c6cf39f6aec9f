//! The signers in good standing that admission keeps per state root (stop 38; review
//! i19-s38b L2): two roots used in turn and at once each answer as a fresh read of their own
//! root, and a freeze of an organisation after its people's standing was kept is seen.

use super::*;

fn suspended_after_one_root(w: &World) -> (Node, Digest, VerifiedTx) {
    let mut node = Node::new(&w.g);
    let first = node.must_admit(&anchor(&w.user, 1, &sm3(b"r0")));
    assert_success(&node.commit(&[first]));
    let pending = node.must_admit(&anchor(&w.user, 2, &sm3(b"r1")));
    let before = node.root;
    let s = node.must_admit(&call(
        &w.admin,
        1,
        "identity",
        "suspend",
        vec![w.user.id().0.to_vec()],
    ));
    assert_success(&node.commit(&[s]));
    assert_ne!(node.root, before);
    (node, before, pending)
}

/// Admission, recheck and authentication alternating between the root before a suspension
/// and the one after.
#[test]
fn two_roots_in_turn_each_answer_as_their_root() {
    let w = world();
    let (node, before, pending) = suspended_after_one_root(&w);
    let old = StateView::new(&node.store, before);
    let new = node.view();
    let ctx = node.ctx();
    let tx = anchor(&w.user, 3, &sm3(b"r2"));
    for round in 0..3 {
        node.admission
            .admit(&old, &ctx, &|_| Ok(false), &tx)
            .unwrap_or_else(|r| panic!("round {round}: old root refused: {r}"));
        assert_eq!(
            node.admission
                .admit(&new, &ctx, &|_| Ok(false), &tx)
                .unwrap_err()
                .code,
            RejectCode::SignerSuspended,
            "round {round}"
        );
        node.admission
            .recheck(&old, &ctx, &|_| Ok(false), &pending)
            .unwrap();
        assert_eq!(
            node.admission
                .recheck(&new, &ctx, &|_| Ok(false), &pending)
                .unwrap_err()
                .code,
            RejectCode::SignerSuspended
        );
        node.admission
            .authenticate(&old, t(11), &w.user.cert)
            .unwrap();
        assert!(matches!(
            node.admission.authenticate(&new, t(11), &w.user.cert),
            Err(MemberRefusal::Suspended(_))
        ));
    }
}

/// The same two roots from two threads at once (a smoke test: the race it would catch needs a
/// thread switch in a narrow window; `LiveCache::remember_good_standing` is what closes it).
#[test]
fn two_roots_at_once_never_share_a_standing() {
    let w = world();
    let (node, before, pending) = suspended_after_one_root(&w);
    let ctx = node.ctx();
    let wrong = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let old = StateView::new(&node.store, before);
            for _ in 0..20_000 {
                if node
                    .admission
                    .recheck(&old, &ctx, &|_| Ok(false), &pending)
                    .is_err()
                {
                    wrong.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        s.spawn(|| {
            let new = node.view();
            for _ in 0..20_000 {
                if node
                    .admission
                    .recheck(&new, &ctx, &|_| Ok(false), &pending)
                    .is_ok()
                {
                    wrong.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    });
    assert_eq!(
        wrong.into_inner(),
        0,
        "answers that differ from a fresh read"
    );
}

/// An organisation frozen after its user's good standing was kept at the previous root.
#[test]
fn an_org_freeze_after_a_kept_good_standing() {
    let w = world();
    let regulator = w.pki.leaf(&w.pki.root, Role::Auditor, "regulator");
    let regulator_enc = w.pki.leaf(&w.pki.root, Role::AuditorEnc, "regulator");
    let mut g: serde_json::Value = serde_json::from_str(&w.g.to_json()).unwrap();
    g["format"] = serde_json::json!(3);
    g["supervision"] = serde_json::json!({"supervisor": "GMChain Consortium",
        "freeze_policy": "supervisor", "escrow": [regulator_enc.cert.to_pem()]});
    let g = Genesis::from_json(g.to_string().as_bytes()).unwrap();
    let mut node = Node::new(&g);
    let pending = node.must_admit(&anchor(&w.user, 1, &sm3(b"o1")));
    node.admission
        .authenticate(&node.view(), t(11), &w.user.cert)
        .unwrap();
    let f = node.must_admit(&call(
        &regulator,
        1,
        "supervision",
        "freeze",
        vec![b"org".to_vec(), b"Agency A".to_vec(), b"a reason".to_vec()],
    ));
    assert_success(&node.commit(&[f]));
    assert_eq!(
        node.recheck(&pending).unwrap_err().code,
        RejectCode::OrgFrozen
    );
    assert!(matches!(
        node.admission
            .authenticate(&node.view(), t(11), &w.user.cert),
        Err(MemberRefusal::Frozen(RejectCode::OrgFrozen, _))
    ));
}
