//! The state key layout (docs/execution.md §3). Every key starts with the owning namespace and
//! a slash: a contract's [`crate::CallContext`] prefixes its keys with the contract's name, so
//! it can reach no other namespace. Functions in the submodules return keys relative to their
//! namespace; [`full`] joins a namespace and a relative key.
//!
//! Digests appear as 64 lower-case hex characters; sequence numbers as 8 big-endian bytes, always
//! the last 8 bytes of their key, so a key names exactly one (owner, sequence) pair.

use crypto::Digest;

/// The identity contract's namespace.
pub const IDENTITY: &str = "identity";
/// The attestation contract's namespace.
pub const ATTESTATION: &str = "attestation";
/// The data-exchange contract's namespace (catalogue, grants, fetch log, messages).
pub const EXCHANGE: &str = "exchange";
/// The governance contract's namespace.
pub const GOVERNANCE: &str = "governance";
/// The chain's own records (written by genesis and by the chain's validator and parameter
/// rules at the end of a block; no contract can reach them).
pub const CHAIN: &str = "chain";

/// The supervision contract's namespace: the supervising organisation, the freeze policy and
/// the supervisor's freezes.
pub const SUPERVISION: &str = "supervision";

/// The trace indexes (issue 16): written only by the executor after each transaction, never by
/// a contract, so that a report can prove what they hold against a state root.
pub const AUDIT: &str = "audit";

/// The registry of WASM contracts: deployed contracts and their code (written only by the
/// governance contract's lifecycle changes; no contract call can reach it).
pub const CONTRACTS: &str = "contracts";

/// Returns the namespace of the WASM contract `name`: `wasm/<name>` (a contract name has no
/// slash, so no contract's namespace is a prefix of another's).
pub fn wasm_namespace(name: &str) -> String {
    format!("wasm/{name}")
}

/// Returns `namespace/relative`.
pub fn full(namespace: &str, relative: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(namespace.len() + 1 + relative.len());
    k.extend_from_slice(namespace.as_bytes());
    k.push(b'/');
    k.extend_from_slice(relative);
    k
}

fn join(prefix: &str, tail: &[u8]) -> Vec<u8> {
    let mut k = prefix.as_bytes().to_vec();
    k.extend_from_slice(tail);
    k
}

/// Keys of the `identity` namespace.
pub mod identity {
    use super::*;

    /// `org/<name>` → `OrgRecord`.
    pub fn org(name: &str) -> Vec<u8> {
        join("org/", name.as_bytes())
    }

    /// `org-count` → u64 BE: how many organisations are registered.
    pub fn org_count() -> Vec<u8> {
        b"org-count".to_vec()
    }

    /// `org-index/<seq u64 BE>` → the organisation name (UTF-8), in registration order.
    pub fn org_index(seq: u64) -> Vec<u8> {
        join("org-index/", &seq.to_be_bytes())
    }

    /// `crl/<SM3 hex of the issuing CA certificate>` → the CRL's DER.
    pub fn crl(issuer: &Digest) -> Vec<u8> {
        join("crl/", issuer.to_hex().as_bytes())
    }

    /// `cert/<SM3 hex of the DER>` → the certificate's DER.
    pub fn cert(id: &Digest) -> Vec<u8> {
        join("cert/", id.to_hex().as_bytes())
    }

    /// `anchors` → the names of the active founding organisations, the chain's trust
    /// anchors, once governance changed them (absent: the genesis organisations).
    pub fn anchors() -> Vec<u8> {
        b"anchors".to_vec()
    }

    /// `removed-by-governance/<name>` → u64 BE height: the organisation was removed by a
    /// governance `org-remove` (final: its sponsor cannot re-admit it with `replace_ca`).
    pub fn removed_by_governance(name: &str) -> Vec<u8> {
        join("removed-by-governance/", name.as_bytes())
    }

    /// `suspended/<SM3 hex of the certificate>` → `SuspensionRecord` (absent = not suspended).
    pub fn suspended(id: &Digest) -> Vec<u8> {
        join("suspended/", id.to_hex().as_bytes())
    }
}

/// Keys of the `attestation` namespace.
pub mod attestation {
    use super::*;

    /// `id/<hex>` → `Attestation`.
    pub fn id(id: &Digest) -> Vec<u8> {
        join("id/", id.to_hex().as_bytes())
    }

    /// `digest/<hex>` → the attestation ID (32 bytes).
    pub fn digest(digest: &Digest) -> Vec<u8> {
        join("digest/", digest.to_hex().as_bytes())
    }

    /// `owner/<owner>/<seq u64 BE>` → the attestation ID (32 bytes).
    pub fn owner(owner: &str, seq: u64) -> Vec<u8> {
        let mut k = join("owner/", owner.as_bytes());
        k.push(b'/');
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    /// `owner-count/<owner>` → u64 BE: how many attestations the owner anchored.
    pub fn owner_count(owner: &str) -> Vec<u8> {
        join("owner-count/", owner.as_bytes())
    }
}

/// Keys of the `exchange` namespace. A dataset ID is `<organisation>/<name>`, where the name
/// has no slash; a sequence number or version is always the key's last 8 bytes.
pub mod exchange {
    use super::*;

    fn with_seq(mut k: Vec<u8>, seq: u64) -> Vec<u8> {
        k.push(b'/');
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    /// `dataset/<dataset ID>` → `Dataset`.
    pub fn dataset(id: &str) -> Vec<u8> {
        join("dataset/", id.as_bytes())
    }

    /// `datasets/<seq u64 BE>` → a dataset ID, in registration order.
    pub fn dataset_index(seq: u64) -> Vec<u8> {
        join("datasets/", &seq.to_be_bytes())
    }

    /// `dataset-count` → u64 BE: how many datasets were registered.
    pub fn dataset_count() -> Vec<u8> {
        b"dataset-count".to_vec()
    }

    /// `version/<dataset ID>/<n u64 BE>` → `Version` (versions count from 1).
    pub fn version(dataset: &str, n: u64) -> Vec<u8> {
        with_seq(join("version/", dataset.as_bytes()), n)
    }

    /// `request/<hex>` → `AccessRequest`.
    pub fn request(id: &Digest) -> Vec<u8> {
        join("request/", id.to_hex().as_bytes())
    }

    /// `requests/<dataset ID>/<seq u64 BE>` → a request ID, in arrival order.
    pub fn request_index(dataset: &str, seq: u64) -> Vec<u8> {
        with_seq(join("requests/", dataset.as_bytes()), seq)
    }

    /// `grantee/<SM3 hex of the requester's certificate>/<dataset ID>` → the ID of that
    /// signer's latest request for the dataset (what a fetch checks).
    pub fn grantee(requester: &Digest, dataset: &str) -> Vec<u8> {
        let mut k = join("grantee/", requester.to_hex().as_bytes());
        k.push(b'/');
        k.extend_from_slice(dataset.as_bytes());
        k
    }

    /// `decided-against/<dataset ID>/<organisation>` → the ID of the organisation's request the
    /// owner last revoked or denied (absent once the owner grants the organisation again): its
    /// members' requests wait for the owner's admin, whatever the class.
    pub fn decided_against(dataset: &str, organisation: &str) -> Vec<u8> {
        let mut k = join("decided-against/", dataset.as_bytes());
        k.push(b'/');
        k.extend_from_slice(organisation.as_bytes());
        k
    }

    /// `endpoint/<u16 BE length of the organisation><organisation><node>` → `Endpoint`.
    pub fn endpoint(organisation: &str, node: &str) -> Vec<u8> {
        let mut k = b"endpoint/".to_vec();
        k.extend_from_slice(&(organisation.len() as u16).to_be_bytes());
        k.extend_from_slice(organisation.as_bytes());
        k.extend_from_slice(node.as_bytes());
        k
    }

    /// `message/<hex>` → `Message`.
    pub fn message(id: &Digest) -> Vec<u8> {
        join("message/", id.to_hex().as_bytes())
    }

    /// `inbox/<organisation>/<seq u64 BE>` → the ID of a message sent to it.
    pub fn inbox(organisation: &str, seq: u64) -> Vec<u8> {
        with_seq(join("inbox/", organisation.as_bytes()), seq)
    }

    /// `inbox-count/<organisation>` → u64 BE.
    pub fn inbox_count(organisation: &str) -> Vec<u8> {
        join("inbox-count/", organisation.as_bytes())
    }

    /// `outbox/<organisation>/<seq u64 BE>` → the ID of a message it sent.
    pub fn outbox(organisation: &str, seq: u64) -> Vec<u8> {
        with_seq(join("outbox/", organisation.as_bytes()), seq)
    }

    /// `outbox-count/<organisation>` → u64 BE.
    pub fn outbox_count(organisation: &str) -> Vec<u8> {
        join("outbox-count/", organisation.as_bytes())
    }

    /// `ack/<message hex>/<organisation>` → `Acknowledgement`.
    pub fn ack(message: &Digest, organisation: &str) -> Vec<u8> {
        let mut k = join("ack/", message.to_hex().as_bytes());
        k.push(b'/');
        k.extend_from_slice(organisation.as_bytes());
        k
    }

    /// `fetch/<object>/<seq u64 BE>` → `FetchRecord`; the object is `d/<dataset ID>` or
    /// `m/<message hex>`.
    pub fn fetch(object: &str, seq: u64) -> Vec<u8> {
        with_seq(join("fetch/", object.as_bytes()), seq)
    }

    /// `fetch-count/<object>` → u64 BE: how many fetches (served and refused) were recorded.
    pub fn fetch_count(object: &str) -> Vec<u8> {
        join("fetch-count/", object.as_bytes())
    }

    /// `escrow` → the chain's escrow recipients: the encryption certificates every data key
    /// is also wrapped to (absent: none). Written by the supervision policy (issue 16).
    pub fn escrow() -> Vec<u8> {
        b"escrow".to_vec()
    }
}

/// Keys of the `contracts` namespace.
pub mod contracts {
    use super::*;

    /// `deployed/<name>` → `ContractRecord`.
    pub fn deployed(name: &str) -> Vec<u8> {
        join("deployed/", name.as_bytes())
    }

    /// `code/<SM3 hex of the module>` → the module's bytes (stored when a deployment or an
    /// upgrade is proposed, validated first).
    pub fn code(hash: &Digest) -> Vec<u8> {
        join("code/", hash.to_hex().as_bytes())
    }

    /// `code-refs/<SM3 hex of the module>` → u64 BE: the open proposals and executed changes
    /// that name the module; the module is deleted when a rejection takes the last one.
    pub fn code_refs(hash: &Digest) -> Vec<u8> {
        join("code-refs/", hash.to_hex().as_bytes())
    }

    /// `code-live/<SM3 hex of the module>` → u64 BE: the deployed contracts (frozen or not)
    /// that run the module; absent at zero.
    pub fn code_live(hash: &Digest) -> Vec<u8> {
        join("code-live/", hash.to_hex().as_bytes())
    }

    /// `code-live-bytes` → u64 BE: the bytes of the modules deployed contracts run, each module
    /// counted once (at most [`crate::MAX_DEPLOYED_CODE_BYTES`]).
    pub fn code_live_bytes() -> Vec<u8> {
        b"code-live-bytes".to_vec()
    }
}

/// Keys of the `chain` namespace.
pub mod chain {
    use super::*;

    /// `params` → `ChainParams`.
    pub fn params() -> Vec<u8> {
        b"params".to_vec()
    }

    /// `genesis` → the genesis hash (32 bytes).
    pub fn genesis() -> Vec<u8> {
        b"genesis".to_vec()
    }

    /// `validator/<SM3 hex of the certificate>` → `ValidatorRecord`.
    pub fn validator(id: &Digest) -> Vec<u8> {
        join("validator/", id.to_hex().as_bytes())
    }

    /// `validators` → the validator IDs in genesis order (u32 count, then 32 bytes each).
    pub fn validators() -> Vec<u8> {
        b"validators".to_vec()
    }

    /// `epoch-count` → u64 BE: how many validator sets followed the genesis set.
    pub fn epoch_count() -> Vec<u8> {
        b"epoch-count".to_vec()
    }

    /// `epoch/<seq u64 BE>` → `EpochRecord`, the sets after genesis in order (the first is
    /// seq 0).
    pub fn epoch(seq: u64) -> Vec<u8> {
        join("epoch/", &seq.to_be_bytes())
    }

    /// `params-change-count` → u64 BE: how many parameter changes took effect after genesis.
    pub fn params_change_count() -> Vec<u8> {
        b"params-change-count".to_vec()
    }

    /// `params-change/<seq u64 BE>` → `ParamsChange`, the parameter changes that took effect,
    /// in order (the first is seq 0).
    pub fn params_change(seq: u64) -> Vec<u8> {
        join("params-change/", &seq.to_be_bytes())
    }
}

/// Keys of the `governance` namespace.
pub mod governance {
    use super::*;

    /// `proposal/<hex of the proposing transaction's ID>` → `ProposalRecord`.
    pub fn proposal(id: &Digest) -> Vec<u8> {
        join("proposal/", id.to_hex().as_bytes())
    }

    /// `pending-validators` → `PendingChange`: the decided validator-set change not yet in
    /// effect (at most one).
    pub fn pending_validators() -> Vec<u8> {
        b"pending-validators".to_vec()
    }

    /// `pending-params` → `PendingParams`: the decided parameter change not yet in effect
    /// (at most one).
    pub fn pending_params() -> Vec<u8> {
        b"pending-params".to_vec()
    }

    /// `module-proposals/<organisation>` → the IDs of the organisation's proposals carrying a
    /// module that may still be open (at most `MAX_OPEN_MODULE_PROPOSALS`).
    pub fn module_proposals(organisation: &str) -> Vec<u8> {
        join("module-proposals/", organisation.as_bytes())
    }

    /// `policy/<kind>` → the policy text of a kind of proposal (absent: the genesis policy).
    pub fn policy(kind: &str) -> Vec<u8> {
        join("policy/", kind.as_bytes())
    }
}

/// Keys of the `supervision` namespace.
pub mod supervision {
    /// `supervisor` → `SupervisorRecord`: the supervising organisation and the freeze policy
    /// (absent: the chain has no supervisor).
    pub fn supervisor() -> Vec<u8> {
        b"supervisor".to_vec()
    }

    /// `frozen/<kind>/<target>` → `FreezeRecord`: the supervisor's freeze of a certificate
    /// (kind `cert`, target the 64 hex of its SM3 ID), of an organisation's people (`org`, its
    /// name) or of a WASM contract (`contract`, its name).
    pub fn frozen(kind: &str, target: &str) -> Vec<u8> {
        let mut k = b"frozen/".to_vec();
        k.extend_from_slice(kind.as_bytes());
        k.push(b'/');
        k.extend_from_slice(target.as_bytes());
        k
    }

    /// `freeze-count` → u64 BE: how many freezes the supervisor made (never decreases).
    pub fn freeze_count() -> Vec<u8> {
        b"freeze-count".to_vec()
    }

    /// `freeze-log/<seq u64 BE>` → `<kind>/<target>` of the supervisor's freeze `seq`, in
    /// order (what `GetSupervision` reads to list the freezes in force).
    pub fn freeze_log(seq: u64) -> Vec<u8> {
        let mut k = b"freeze-log/".to_vec();
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    /// `supervision/log-head/<64 hex of the log's signing certificate>` → `LogHead`: the last
    /// anchored head of a node's or a CA's audit log (issue 16 item 6).
    pub fn log_head(log: &crypto::Digest) -> Vec<u8> {
        let mut k = b"log-head/".to_vec();
        k.extend_from_slice(log.to_hex().as_bytes());
        k
    }
}

/// Keys of the `audit` namespace (the trace indexes). A subject is a kind (`cert`, `org`,
/// `contract`, `dataset`, `attestation`, `lifecycle`) and an ID; the ID may hold slashes
/// (`Org/dataset`), so an entry's sequence number is always the key's last 8 bytes.
pub mod audit {
    /// `count/<kind>/<id>` → u64 BE: how many entries the subject's index holds.
    pub fn count(kind: &str, id: &str) -> Vec<u8> {
        let mut k = b"count/".to_vec();
        k.extend_from_slice(kind.as_bytes());
        k.push(b'/');
        k.extend_from_slice(id.as_bytes());
        k
    }

    /// `entry/<kind>/<id>/<seq u64 BE>` → `TraceEntry`: the subject's entry `seq` (from 0).
    pub fn entry(kind: &str, id: &str, seq: u64) -> Vec<u8> {
        let mut k = b"entry/".to_vec();
        k.extend_from_slice(kind.as_bytes());
        k.push(b'/');
        k.extend_from_slice(id.as_bytes());
        k.push(b'/');
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }
}

/// Returns the full state key of the attestation `id`, for a state proof.
pub fn attestation_record(id: &Digest) -> Vec<u8> {
    full(ATTESTATION, &attestation::id(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_pinned() {
        let d = Digest([0xab; 32]);
        assert_eq!(
            full(IDENTITY, &identity::org("Agency A")),
            b"identity/org/Agency A"
        );
        assert_eq!(
            full(IDENTITY, &identity::crl(&d)),
            format!("identity/crl/{}", "ab".repeat(32)).into_bytes()
        );
        assert_eq!(
            full(ATTESTATION, &attestation::owner("A/b", 258)),
            b"attestation/owner/A/b/\0\0\0\0\0\0\x01\x02".to_vec()
        );
        assert_eq!(full(CHAIN, &chain::params()), b"chain/params");
    }
}
