//! Supervision (issue 16): the supervisor named in genesis, its freezes of a certificate, of an
//! organisation's people and of a contract with their own codes, separate from an admin's
//! suspension; who may freeze under which policy; the trace indexes the executor keeps.

use super::*;
use execution::keys::{AUDIT, full};
use execution::{FreezeKind, FreezePolicy, TraceEntry};

/// The world's consortium with "GMChain Consortium" as the supervisor (its auditor
/// `regulator`, issued by the root), under `policy`, with the regulator's encryption
/// certificate as the escrow.
struct Supervised {
    w: World,
    node: Node,
    regulator: Member,
    regulator_enc: Member,
}

fn supervised_genesis(w: &World, policy: &str, escrow: &[&Member]) -> serde_json::Value {
    let mut g: serde_json::Value = serde_json::from_str(&w.g.to_json()).unwrap();
    g["format"] = serde_json::json!(3);
    g["supervision"] = serde_json::json!({
        "supervisor": "GMChain Consortium",
        "freeze_policy": policy,
        "escrow": escrow.iter().map(|m| m.cert.to_pem()).collect::<Vec<_>>(),
    });
    g
}

fn supervised(policy: &str) -> Supervised {
    let w = world();
    let regulator = w.pki.leaf(&w.pki.root, Role::Auditor, "regulator");
    let regulator_enc = w.pki.leaf(&w.pki.root, Role::AuditorEnc, "regulator");
    let json = supervised_genesis(&w, policy, &[&regulator_enc]);
    let g = Genesis::from_json(json.to_string().as_bytes()).unwrap();
    let node = Node::new(&g);
    Supervised {
        w,
        node,
        regulator,
        regulator_enc,
    }
}

fn freeze_args(kind: &str, target: &str, reason: &str) -> Vec<Vec<u8>> {
    vec![
        kind.as_bytes().to_vec(),
        target.as_bytes().to_vec(),
        reason.as_bytes().to_vec(),
    ]
}

fn freeze(m: &Member, salt: u8, kind: &str, target: &str) -> Vec<u8> {
    call(
        m,
        salt,
        "supervision",
        "freeze",
        freeze_args(kind, target, "a reason"),
    )
}

fn unfreeze(m: &Member, salt: u8, kind: &str, target: &str) -> Vec<u8> {
    call(
        m,
        salt,
        "supervision",
        "unfreeze",
        freeze_args(kind, target, "lifted"),
    )
}

#[test]
fn genesis_names_the_supervisor_and_writes_the_escrow() {
    let s = supervised("supervisor");
    let view = s.node.view();
    let sup = execution::supervisor(&view).unwrap().unwrap();
    assert_eq!(sup.organisation, "GMChain Consortium");
    assert_eq!(sup.policy, FreezePolicy::Supervisor);
    let escrow = execution::data::escrow_recipients(&view).unwrap();
    assert_eq!(escrow.len(), 1);
    assert_eq!(escrow[0].id, s.regulator_enc.id());
    // The file round-trips, and the section changes the genesis hash.
    let json = supervised_genesis(&s.w, "supervisor", &[&s.regulator_enc]).to_string();
    let g = Genesis::from_json(json.as_bytes()).unwrap();
    assert_eq!(Genesis::from_json(g.to_json().as_bytes()).unwrap(), g);
    assert_ne!(g.hash(), {
        let mut plain = g.clone();
        plain.supervision = None;
        plain.hash()
    });
}

#[test]
fn genesis_refuses_a_bad_supervision_section_naming_the_field() {
    let w = world();
    let regulator_enc = w.pki.leaf(&w.pki.root, Role::AuditorEnc, "regulator");
    let user_enc = w.pki.leaf(&w.pki.a, Role::UserEnc, "alice");
    let a_auditor_enc = w.pki.leaf(&w.pki.a, Role::AuditorEnc, "audit");
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            {
                let mut g = supervised_genesis(&w, "supervisor", &[]);
                g["supervision"]["supervisor"] = serde_json::json!("Nobody");
                g
            },
            "supervision.supervisor",
        ),
        (
            supervised_genesis(&w, "sometimes", &[]),
            "supervision.freeze_policy",
        ),
        (
            supervised_genesis(&w, "supervisor", &[&user_enc]),
            "not auditor-enc",
        ),
        (
            supervised_genesis(&w, "supervisor", &[&a_auditor_enc]),
            "is not the supervisor",
        ),
        (
            supervised_genesis(&w, "supervisor", &[&regulator_enc, &regulator_enc]),
            "duplicate",
        ),
        (
            {
                let mut g = supervised_genesis(&w, "supervisor", &[]);
                g["format"] = serde_json::json!(2);
                g
            },
            "supervision",
        ),
        (
            {
                let mut g = supervised_genesis(&w, "supervisor", &[]);
                g["supervision"]["extra"] = serde_json::json!(1);
                g
            },
            "supervision.extra",
        ),
    ];
    for (json, needle) in cases {
        let e = Genesis::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
}

#[test]
fn a_frozen_certificate_is_refused_from_the_next_block_with_its_own_code_and_only_the_supervisor_lifts_it()
 {
    let mut s = supervised("supervisor");
    let alice = s.w.user.id().to_hex();
    // Alice's certificate is on the chain once she has transacted.
    assert_success(&s.node.run(&[anchor(&s.w.user, 9, &sm3(b"first"))]));
    // Admitted before the freeze: refused at recheck once it is committed.
    let pending = s.node.must_admit(&anchor(&s.w.user, 1, &sm3(b"pending")));
    let r = s.node.run(&[freeze(&s.regulator, 1, "cert", &alice)]);
    assert_success(&r);
    let err = s.node.recheck(&pending).unwrap_err();
    assert_eq!(err.code, RejectCode::SignerFrozen, "{err}");
    assert!(err.message.contains("a reason"), "{err}");
    assert_eq!(
        code_of(s.node.admit(&anchor(&s.w.user, 2, &sm3(b"x")))),
        RejectCode::SignerFrozen
    );
    // A TLS handshake is judged the same way.
    let view = s.node.view();
    let refused = s
        .node
        .admission
        .authenticate(&view, t(11), &s.w.user.cert)
        .unwrap_err();
    assert!(
        matches!(&refused, execution::MemberRefusal::Frozen(RejectCode::SignerFrozen, m) if m.contains("frozen")),
        "{refused:?}"
    );
    // Others are unaffected.
    s.node.must_admit(&anchor(&s.w.user2, 1, &sm3(b"y")));
    // An admin's resume does not lift a supervisor's freeze: it is not a suspension.
    let r = s.node.run(&[call(
        &s.w.admin,
        1,
        "identity",
        "resume",
        vec![s.w.user.id().0.to_vec()],
    )]);
    assert_eq!(failed(&r[0]), Some(FailureCode::NotSuspended));
    // A second freeze fails; an admin's suspension is a separate flag.
    let r = s.node.run(&[
        freeze(&s.regulator, 2, "cert", &alice),
        call(
            &s.w.admin,
            2,
            "identity",
            "suspend",
            vec![s.w.user.id().0.to_vec()],
        ),
    ]);
    assert_eq!(failed(&r[0]), Some(FailureCode::AlreadyFrozen));
    assert_eq!(r[1].status, Status::Success);
    // The supervisor's unfreeze leaves the suspension: still refused, now as suspended.
    let r = s.node.run(&[unfreeze(&s.regulator, 3, "cert", &alice)]);
    assert_success(&r);
    assert_eq!(
        code_of(s.node.admit(&anchor(&s.w.user, 3, &sm3(b"z")))),
        RejectCode::SignerSuspended
    );
    let r = s.node.run(&[call(
        &s.w.admin,
        3,
        "identity",
        "resume",
        vec![s.w.user.id().0.to_vec()],
    )]);
    assert_success(&r);
    s.node.must_admit(&anchor(&s.w.user, 4, &sm3(b"z")));
    // Unfreezing what is not frozen fails with its code.
    let r = s.node.run(&[unfreeze(&s.regulator, 4, "cert", &alice)]);
    assert_eq!(failed(&r[0]), Some(FailureCode::NotFrozen));
}

#[test]
fn an_organisation_freeze_stops_its_people_not_its_nodes_and_never_the_supervisor() {
    let mut s = supervised("supervisor");
    let r = s.node.run(&[freeze(&s.regulator, 1, "org", "Agency A")]);
    assert_success(&r);
    for m in [&s.w.user, &s.w.admin] {
        assert_eq!(
            code_of(s.node.admit(&anchor(m, 9, &sm3(b"p")))),
            RejectCode::OrgFrozen
        );
    }
    let view = s.node.view();
    assert!(
        s.node
            .admission
            .authenticate(&view, t(11), &s.w.node_cert.cert)
            .is_ok(),
        "a node of a frozen organisation still authenticates"
    );
    // The supervising organisation is never frozen as a whole (its people alone unfreeze).
    let err = s
        .node
        .admit(&freeze(&s.regulator, 2, "org", "GMChain Consortium"))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
    assert!(err.message.contains("supervising organisation"), "{err}");
    // Unknown targets are refused; so is a reason that is not printable text.
    let err = s
        .node
        .admit(&freeze(&s.regulator, 3, "org", "Agency Z"))
        .unwrap_err();
    assert!(err.message.contains("no registered organisation"), "{err}");
    let err = s
        .node
        .admit(&freeze(&s.regulator, 4, "contract", "nothing-here"))
        .unwrap_err();
    assert!(err.message.contains("no deployed contract"), "{err}");
    let err = s
        .node
        .admit(&call(
            &s.regulator,
            5,
            "supervision",
            "freeze",
            freeze_args("cert", &"ab".repeat(32), "line\nbreak"),
        ))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::BadArguments, "{err}");
    let err = s
        .node
        .admit(&call(
            &s.regulator,
            6,
            "supervision",
            "freeze",
            freeze_args("cert", "not-hex", "r"),
        ))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::BadArguments, "{err}");
    let r = s.node.run(&[unfreeze(&s.regulator, 7, "org", "Agency A")]);
    assert_success(&r);
    s.node.must_admit(&anchor(&s.w.user, 10, &sm3(b"q")));
}

#[test]
fn only_the_supervisors_auditors_freeze_and_only_under_the_supervisor_policy() {
    let s = supervised("supervisor");
    let alice = s.w.user.id().to_hex();
    // An auditor of another organisation.
    let err = s
        .node
        .admit(&freeze(&s.w.auditor, 1, "cert", &alice))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
    assert!(err.message.contains("not the chain's supervisor"), "{err}");
    // An admin, even of the supervisor: the permission table.
    let root_admin = s.w.pki.leaf(&s.w.pki.root, Role::Admin, "root-admin");
    let err = s
        .node
        .admit(&freeze(&root_admin, 1, "cert", &alice))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
    // Under the governance policy, the supervisor's auditors cannot act alone.
    let g = supervised("governance");
    let err = g
        .node
        .admit(&freeze(&g.regulator, 1, "cert", &alice))
        .unwrap_err();
    assert_eq!(err.code, RejectCode::PermissionDenied, "{err}");
    assert!(err.message.contains("governance"), "{err}");
    // A chain without a supervisor.
    let plain = Node::new(&s.w.g);
    let err = plain
        .admit(&freeze(&s.regulator, 1, "cert", &alice))
        .unwrap_err();
    assert!(err.message.contains("names no supervisor"), "{err}");
}

fn count(node: &Node, kind: &str, id: &str) -> u64 {
    node.view()
        .get(&full(AUDIT, &execution::keys::audit::count(kind, id)))
        .unwrap()
        .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()))
}

fn entry(node: &Node, kind: &str, id: &str, seq: u64) -> TraceEntry {
    let key = full(AUDIT, &execution::keys::audit::entry(kind, id, seq));
    TraceEntry::decode(&key, &node.view().get(&key).unwrap().unwrap()).unwrap()
}

#[test]
fn every_transaction_enters_its_signer_organisation_and_contract_indexes_in_order() {
    let mut s = supervised("supervisor");
    let alice = s.w.user.id().to_hex();
    let d = sm3(b"doc");
    // Block 1: two anchors by alice (the second a duplicate, failing) and one by bob.
    let first = s.node.must_admit(&anchor(&s.w.user, 1, &d));
    let again = s.node.must_admit(&anchor(&s.w.user, 2, &d));
    let bob = s.node.must_admit(&anchor(&s.w.user2, 1, &sm3(b"bob")));
    s.node.commit(&[first.clone(), again.clone(), bob.clone()]);
    // Block 2: the regulator freezes alice.
    let r = s.node.run(&[freeze(&s.regulator, 1, "cert", &alice)]);
    assert_success(&r);
    assert_eq!(count(&s.node, "cert", &alice), 3);
    let e: Vec<TraceEntry> = (0..3).map(|i| entry(&s.node, "cert", &alice, i)).collect();
    assert_eq!(
        e.iter()
            .map(|e| (e.height.0, e.position, e.code))
            .collect::<Vec<_>>(),
        vec![(1, 0, 0), (1, 1, 3001), (2, 0, 0)]
    );
    assert_eq!((e[0].tx_id, e[1].tx_id), (first.id().0, again.id().0));
    assert_eq!(
        (e[2].contract.as_str(), e[2].method.as_str()),
        ("supervision", "freeze")
    );
    assert_eq!(count(&s.node, "org", "Agency A"), 3);
    assert_eq!(count(&s.node, "org", "GMChain Consortium"), 1);
    assert_eq!(count(&s.node, "contract", "attestation"), 3);
    assert_eq!(count(&s.node, "contract", "supervision"), 1);
    // Declared subjects only for what succeeded.
    assert_eq!(count(&s.node, "attestation", &first.id().0.to_hex()), 1);
    assert_eq!(count(&s.node, "attestation", &again.id().0.to_hex()), 0);
    assert_eq!(count(&s.node, "cert", &s.w.user2.id().to_hex()), 1);
    // The same transactions on another node give the same root: the indexes are part of
    // the state every validator computes.
    let mut other = Node::new(
        &Genesis::from_json(
            supervised_genesis(&s.w, "supervisor", &[&s.regulator_enc])
                .to_string()
                .as_bytes(),
        )
        .unwrap(),
    );
    other.commit(&[first, again, bob]);
    other.run(&[freeze(&s.regulator, 1, "cert", &alice)]);
    assert_eq!(other.root, s.node.root);
}

#[test]
fn freeze_kinds_round_trip() {
    for k in [FreezeKind::Cert, FreezeKind::Org, FreezeKind::Contract] {
        assert_eq!(FreezeKind::parse(k.as_str()), Some(k));
    }
    assert_eq!(FreezeKind::parse("dataset"), None);
}
