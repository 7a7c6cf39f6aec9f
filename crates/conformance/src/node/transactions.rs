//! The transaction checks (GM/T 0111 §8.3-8.4): a signed transaction is committed and verifies
//! in its block; replays and expired transactions are refused; bad signatures, untrusted
//! certificates, other chains, garbage, unknown and unpermitted calls are refused before commit.

use super::NodeProbe;
use super::error::NodeCheckError;
use super::submit::{
    anchor, body, commit_anchor, ev, hex32, none_committed, random, refused, sign, throwaway_signer,
};
use crate::checks::Evidence;
use crate::ledger_ref;
use crypto::{Signer, UserId};
use crypto_sm::SoftSigner;
use crypto_sm::sm2::PrivateKey;
use pki::{Certificate, IssueRequest, Role, Serial, UnixTime, Validity};
use types::{Block, Call, ChainId, Decode, Encode, Height, Limits, Sender, SignedTx, Transaction};

const SRC_TX: &str = "live node; expected: docs/formats.md §4-5 (SM3 ids, SM2 over the id)";
const SRC_CODES: &str = "live node; expected: docs/execution.md refusal codes";

pub(super) fn tx_signed_sm2(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let cert = match Certificate::from_der(p.certificate()) {
        Ok(c) => c,
        Err(source) => {
            return vec![ev(
                "the identity's certificate",
                SRC_TX,
                Err(NodeCheckError::BadCertificate {
                    what: "--cert",
                    source,
                }),
            )];
        }
    };
    let pk = cert.public_key();
    let c = match commit_anchor(p, "gmchain conformance node-tx-signed-sm2 (GM/T 0111 8.3)") {
        Ok((c, _)) => c,
        Err(e) => {
            return vec![ev(
                "a signed attestation anchor is committed",
                SRC_TX,
                Err(e),
            )];
        }
    };
    out.push(ev(
        "a signed attestation anchor is committed with a successful receipt for it",
        SRC_TX,
        if c.receipt.tx_id.0.0 == c.id {
            Ok(format!(
                "tx {} at height {} position {} signed by {}",
                hex32(&c.id),
                c.height,
                c.position,
                cert.subject()
            ))
        } else {
            Err(NodeCheckError::ReceiptForOtherTx {
                tx: c.receipt.tx_id,
            })
        },
    ));
    let independent = ledger_ref::tx_id(&c.signed.tx);
    out.push(ev(
        "the node's id is SM3(\"GMCHAIN-TX-V1\\0\" ‖ encoding), recomputed independently",
        SRC_TX,
        if independent == c.id {
            Ok(hex32(&independent))
        } else {
            Err(NodeCheckError::TxIdMismatch {
                node: c.id,
                recomputed: independent,
            })
        },
    ));
    let in_block = p
        .block(c.height)
        .map_err(NodeCheckError::from)
        .and_then(|b| {
            let block = Block::from_bytes(&b.block, &Limits::default()).map_err(|source| {
                NodeCheckError::BlockUndecodable {
                    height: c.height,
                    source,
                }
            })?;
            block
                .txs
                .get(c.position as usize)
                .cloned()
                .ok_or(NodeCheckError::NoPosition {
                    height: c.height,
                    position: c.position,
                })
        });
    let stored = match in_block {
        Ok(t) => t,
        Err(e) => {
            out.push(ev(
                "the committed block holds the transaction",
                SRC_TX,
                Err(e),
            ));
            return out;
        }
    };
    out.push(ev(
        "the block holds the transaction byte for byte at its position, and GetTransaction agrees",
        SRC_TX,
        if stored.to_bytes() != c.signed.to_bytes() {
            Err(NodeCheckError::StoredTxDiffers {
                height: c.height,
                position: c.position,
            })
        } else {
            match p.transaction(&c.id) {
                Ok(Some(at))
                    if at.height == c.height
                        && at.position == c.position
                        && at.signed_tx == stored.to_bytes() =>
                {
                    Ok(format!("block {} position {}", c.height, c.position))
                }
                Ok(Some(at)) => Err(NodeCheckError::TxLookupDisagrees {
                    height: at.height,
                    position: at.position,
                }),
                Ok(None) => Err(NodeCheckError::TxNotFound { tx: c.id }),
                Err(e) => Err(e.into()),
            }
        },
    ));
    out.push(ev(
        "the stored transaction names the certificate and its SM2 signature verifies with the certificate's key (GB/T 32918.2 §7.1)",
        SRC_TX,
        if stored.tx.sender != Sender::Certificate(p.certificate().to_vec()) {
            Err(NodeCheckError::SenderNotIdentity)
        } else {
            crypto_sm::sm2::verify(
                &pk,
                &stored.signer_user_id,
                &ledger_ref::tx_id(&stored.tx),
                &stored.signature,
            )
            .map(|()| format!("user ID {:?}", String::from_utf8_lossy(stored.signer_user_id.as_bytes())))
            .map_err(|source| NodeCheckError::TxSignature { tx: c.id, source })
        },
    ));
    let other_id = UserId::new(b"8765432187654321".to_vec()).unwrap_or_default();
    out.push(ev(
        "NEG: the stored signature does not verify under another user ID or another key",
        SRC_TX,
        if crypto_sm::sm2::verify(&pk, &other_id, &independent, &stored.signature).is_ok() {
            Err(NodeCheckError::VerifiesUnderOtherUserId)
        } else {
            match PrivateKey::from_bytes(&[0x5b; 32]) {
                Ok(k)
                    if crypto_sm::sm2::verify(
                        &k.public_key(),
                        &stored.signer_user_id,
                        &independent,
                        &stored.signature,
                    )
                    .is_ok() =>
                {
                    Err(NodeCheckError::VerifiesWithOtherKey)
                }
                Ok(_) => Ok("both refused".into()),
                Err(source) => Err(NodeCheckError::Crypto {
                    what: "another SM2 key",
                    source,
                }),
            }
        },
    ));
    out
}

pub(super) fn replay_refused(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let (c, _) = match commit_anchor(p, "gmchain conformance node-replay-refused (GM/T 0111 8.3)") {
        Ok(c) => c,
        Err(e) => return vec![ev("a first transaction is committed", SRC_CODES, Err(e))],
    };
    out.push(ev(
        "a first transaction is committed",
        SRC_CODES,
        Ok(format!("tx {} at height {}", hex32(&c.id), c.height)),
    ));
    let st = match p.status() {
        Ok(s) => s,
        Err(e) => {
            out.push(ev("status", SRC_CODES, Err(e.into())));
            return out;
        }
    };
    let before = st.height;
    out.push(ev(
        "resubmitting the same bytes is refused TX_DUPLICATE and leaves the original where it was",
        SRC_CODES,
        refused(p, &c.signed.to_bytes(), "TX_DUPLICATE").and_then(|note| {
            match p.transaction(&c.id)? {
                Some(at) if at.height == c.height && at.position == c.position => Ok(note),
                Some(at) => Err(NodeCheckError::OriginalMoved { height: at.height }),
                None => Err(NodeCheckError::OriginalGone),
            }
        }),
    ));
    let mut ids = Vec::new();
    let mut expiring = |label: &str, expiry: u64, code: &str| -> Evidence {
        let r = (|| {
            let mut tx = body(
                p,
                &st,
                anchor(
                    &crypto_sm::sm3::sm3(&random::<32>(p)?),
                    "gmchain conformance: must be refused",
                ),
            )?;
            tx.expiry = Height(expiry);
            let s = sign(p, tx)?;
            ids.push(s.tx_id().0.0);
            refused(p, &s.to_bytes(), code)
        })();
        ev(label, SRC_CODES, r)
    };
    out.push(expiring(
        &format!("a transaction expiring at the tip height {before} is refused TX_EXPIRED"),
        before,
        "TX_EXPIRED",
    ));
    out.push(expiring(
        "a transaction expiring at height 0 is refused TX_EXPIRED",
        0,
        "TX_EXPIRED",
    ));
    out.push(expiring(
        "a transaction expiring beyond the window is refused TX_EXPIRY_TOO_FAR",
        before.saturating_add(st.expiry_window).saturating_add(1000),
        "TX_EXPIRY_TOO_FAR",
    ));
    out.push(ev(
        "nothing refused was committed",
        SRC_CODES,
        none_committed(p, &ids, before),
    ));
    out
}

/// A self-signed CA the chain has never seen, and a user certificate it issued.
fn outsider(
    p: &dyn NodeProbe,
) -> Result<(SoftSigner, Certificate, SoftSigner, Certificate), NodeCheckError> {
    let now = p.now_unix();
    let validity = Validity {
        not_before: UnixTime(now.saturating_sub(3600)),
        not_after: UnixTime(now.saturating_add(86_400)),
    };
    let serial = |source| NodeCheckError::Pki {
        what: "a random serial",
        source,
    };
    let root_key = throwaway_signer(p)?;
    let root = pki::issue_root(
        "Conformance Outsider CA",
        "Conformance Outsider",
        Serial::random(p.random()).map_err(serial)?,
        validity,
        &root_key,
    )
    .map_err(|source| NodeCheckError::Issue {
        cn: "Conformance Outsider CA".into(),
        source,
    })?;
    let leaf_key = throwaway_signer(p)?;
    let leaf = pki::issue(
        &root,
        &root_key,
        &IssueRequest {
            role: Role::User,
            common_name: "conformance-outsider",
            organisation: "Conformance Outsider",
            public_key: &leaf_key.public_key(),
            serial: Serial::random(p.random()).map_err(serial)?,
            validity,
        },
    )
    .map_err(|source| NodeCheckError::Issue {
        cn: "conformance-outsider".into(),
        source,
    })?;
    Ok((root_key, root, leaf_key, leaf))
}

pub(super) fn verify_before_commit(p: &dyn NodeProbe) -> Vec<Evidence> {
    let mut out = Vec::new();
    let st = match p.status() {
        Ok(s) => s,
        Err(e) => return vec![ev("status", SRC_CODES, Err(e.into()))],
    };
    let before = st.height;
    let mut ids: Vec<[u8; 32]> = Vec::new();
    let fresh = |meta: &str| -> Result<Transaction, NodeCheckError> {
        body(
            p,
            &st,
            anchor(&crypto_sm::sm3::sm3(&random::<32>(p)?), meta),
        )
    };
    const META: &str = "gmchain conformance: must be refused";

    // Signature made over another transaction's id.
    let mut case =
        |label: &str, code: &str, make: &dyn Fn() -> Result<SignedTx, NodeCheckError>| {
            let r = make().and_then(|s| {
                ids.push(s.tx_id().0.0);
                refused(p, &s.to_bytes(), code)
            });
            out.push(ev(label, SRC_CODES, r));
        };
    case(
        "a signature over another transaction's id is refused TX_SIGNATURE_INVALID",
        "TX_SIGNATURE_INVALID",
        &|| {
            let tx = fresh(META)?;
            let other = sign(p, fresh(META)?)?;
            Ok(SignedTx {
                tx,
                signature: other.signature,
                signer_user_id: UserId::default(),
            })
        },
    );
    case(
        "a signature made under another user ID than the one declared is refused TX_SIGNATURE_INVALID",
        "TX_SIGNATURE_INVALID",
        &|| {
            let tx = fresh(META)?;
            let other_id = UserId::new(b"8765432187654321".to_vec()).map_err(|source| {
                NodeCheckError::Crypto {
                    what: "user ID 8765432187654321",
                    source,
                }
            })?;
            let signature = p
                .signer()
                .sign(&other_id, &ledger_ref::tx_id(&tx))
                .map_err(|source| NodeCheckError::Crypto {
                    what: "signing under user ID 8765432187654321",
                    source,
                })?;
            Ok(SignedTx {
                tx,
                signature,
                signer_user_id: UserId::default(),
            })
        },
    );
    case(
        "a body altered after signing (salt) is refused TX_SIGNATURE_INVALID",
        "TX_SIGNATURE_INVALID",
        &|| {
            let mut s = sign(p, fresh(META)?)?;
            s.tx.salt[0] ^= 0x01;
            Ok(s)
        },
    );
    case(
        "a user certificate from a self-signed CA the chain does not trust is refused TX_CERT_INVALID",
        "TX_CERT_INVALID",
        &|| {
            let (_, _, leaf_key, leaf) = outsider(p)?;
            let mut tx = fresh(META)?;
            tx.sender = Sender::Certificate(leaf.der().to_vec());
            SignedTx::sign(tx, &leaf_key, &UserId::default())
                .map_err(|source| NodeCheckError::Signing { source })
        },
    );
    case(
        "a self-signed certificate as the sender is refused TX_CERT_INVALID",
        "TX_CERT_INVALID",
        &|| {
            let (root_key, root, _, _) = outsider(p)?;
            let mut tx = fresh(META)?;
            tx.sender = Sender::Certificate(root.der().to_vec());
            SignedTx::sign(tx, &root_key, &UserId::default())
                .map_err(|source| NodeCheckError::Signing { source })
        },
    );
    case(
        "a transaction for another chain id is refused TX_WRONG_CHAIN",
        "TX_WRONG_CHAIN",
        &|| {
            let mut tx = fresh(META)?;
            let other = format!("{}-conformance-other", st.chain_id);
            tx.chain_id = ChainId::new(other.get(..64).unwrap_or(&other))
                .map_err(|source| NodeCheckError::OtherChainId { source })?;
            sign(p, tx)
        },
    );
    case(
        "an unknown method is refused TX_UNKNOWN_CALL",
        "TX_UNKNOWN_CALL",
        &|| {
            let mut tx = fresh(META)?;
            tx.call.method = "conformance_no_such_method".into();
            sign(p, tx)
        },
    );
    let role = Certificate::from_der(p.certificate())
        .ok()
        .and_then(|c| c.role());
    if role == Some(Role::User) {
        case(
            "a user calling identity.suspend (admins only) is refused TX_PERMISSION_DENIED",
            "TX_PERMISSION_DENIED",
            &|| {
                let mut tx = fresh(META)?;
                tx.call = Call {
                    contract: "identity".into(),
                    method: "suspend".into(),
                    // A hash that names no certificate: were the refusal (the fault this case
                    // looks for) missing, execution would change nothing (found in review: the
                    // suite's own certificate was named, so a faulty node would suspend it).
                    args: vec![
                        crypto_sm::sm3::sm3(b"gmchain conformance: no such certificate")
                            .0
                            .to_vec(),
                    ],
                };
                sign(p, tx)
            },
        );
    } else {
        // Never sent with an admin identity: it would suspend a certificate.
        out.push(ev(
            "a user calling identity.suspend (admins only) is refused TX_PERMISSION_DENIED",
            SRC_CODES,
            Err(NodeCheckError::NotExercised { role }),
        ));
    }
    // Bytes that are no transaction: nothing to look up by id afterwards.
    let garbage = random::<96>(p);
    out.push(ev(
        "random bytes are refused TX_MALFORMED",
        SRC_CODES,
        garbage.and_then(|g| refused(p, &g, "TX_MALFORMED")),
    ));
    let trailing = fresh(META).and_then(|tx| sign(p, tx)).and_then(|s| {
        ids.push(s.tx_id().0.0);
        let mut b = s.to_bytes();
        b.push(0);
        refused(p, &b, "TX_MALFORMED")
    });
    out.push(ev(
        "a signed transaction with one trailing byte is refused TX_MALFORMED",
        SRC_CODES,
        trailing,
    ));
    out.push(ev(
        "nothing refused was committed",
        SRC_CODES,
        none_committed(p, &ids, before),
    ));
    out
}
