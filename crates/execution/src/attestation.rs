//! The `attestation` system contract (存证): anchors an SM3 digest with a kind, metadata and
//! an optional encrypted pointer. The owner is always the signer, never an argument, so a user
//! writes only their own attestations; the first anchor of a digest wins.

use crate::codes::FailureCode;
use crate::context::{CallContext, ContractError};
use crate::contract::{BUILTIN_CALL_COST, Contract};
use crate::keys::{ATTESTATION, attestation as k};
use crate::records::{self, Attestation, MAX_KIND_LEN, MAX_METADATA_LEN, MAX_POINTER_LEN};
use crypto::Digest;

/// The built-in `attestation` contract.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttestationContract;

const METHODS: &[&str] = &["anchor"];

fn bad(message: impl Into<String>) -> ContractError {
    ContractError::failed(FailureCode::BadArguments, message)
}

/// The parsed arguments of `anchor`.
pub(crate) struct AnchorArgs {
    pub digest: Digest,
    pub kind: String,
    pub metadata: String,
    pub pointer: Vec<u8>,
}

/// Parses `anchor`'s arguments: [digest (32 bytes), kind, metadata (UTF-8), pointer].
pub(crate) fn parse_anchor(args: &[Vec<u8>]) -> Result<AnchorArgs, ContractError> {
    if args.len() != 4 {
        return Err(bad(format!(
            "attestation.anchor takes 4 arguments (digest, kind, metadata, pointer), got {}",
            args.len()
        )));
    }
    let digest = <[u8; 32]>::try_from(args[0].as_slice())
        .map(Digest)
        .map_err(|_| {
            bad(format!(
                "args[0] (digest): {} bytes, expected 32 (SM3)",
                args[0].len()
            ))
        })?;
    let kind = &args[1];
    if kind.is_empty()
        || kind.len() > MAX_KIND_LEN
        || !kind
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad(format!(
            "args[1] (kind): must be 1..={MAX_KIND_LEN} bytes of [A-Za-z0-9._-]"
        )));
    }
    if args[2].len() > MAX_METADATA_LEN {
        return Err(bad(format!(
            "args[2] (metadata): {} bytes, at most {MAX_METADATA_LEN}",
            args[2].len()
        )));
    }
    let metadata =
        String::from_utf8(args[2].clone()).map_err(|_| bad("args[2] (metadata): not UTF-8"))?;
    if args[3].len() > MAX_POINTER_LEN {
        return Err(bad(format!(
            "args[3] (pointer): {} bytes, at most {MAX_POINTER_LEN}",
            args[3].len()
        )));
    }
    Ok(AnchorArgs {
        digest,
        kind: String::from_utf8_lossy(kind).into_owned(),
        metadata,
        pointer: args[3].clone(),
    })
}

/// Returns the owner string of a signer.
pub(crate) fn owner_of(organisation: &str, common_name: &str) -> String {
    format!("{organisation}/{common_name}")
}

impl AttestationContract {
    fn anchor(ctx: &mut CallContext<'_>, args: &[Vec<u8>]) -> Result<(), ContractError> {
        let a = parse_anchor(args)?;
        let digest_key = k::digest(&a.digest);
        if let Some(existing) = ctx.get(&digest_key)? {
            let first = records::decode_digest(&digest_key, &existing)?;
            return Err(ContractError::failed(
                FailureCode::DigestAlreadyAnchored,
                format!(
                    "digest {} is already anchored by attestation {first}",
                    a.digest
                ),
            ));
        }
        let id = ctx.tx_id().0;
        let caller = ctx.caller();
        let owner = owner_of(&caller.organisation, &caller.common_name);
        let att = Attestation {
            id,
            digest: a.digest,
            kind: a.kind,
            owner: owner.clone(),
            metadata: a.metadata,
            pointer: a.pointer,
            height: ctx.block().height,
            timestamp_ms: ctx.block().timestamp_ms,
            signer: caller.cert_id,
        };
        let count_key = k::owner_count(&owner);
        let seq = records::decode_u64(&count_key, ctx.get(&count_key)?.as_deref())?;
        ctx.put(&k::id(&id), att.encode())?;
        ctx.put(&digest_key, id.0.to_vec())?;
        ctx.put(&k::owner(&owner, seq), id.0.to_vec())?;
        ctx.put(&count_key, seq.saturating_add(1).to_be_bytes().to_vec())?;
        ctx.emit("anchored", id.0.to_vec())
    }
}

impl Contract for AttestationContract {
    fn name(&self) -> &'static str {
        ATTESTATION
    }

    fn methods(&self) -> &'static [&'static str] {
        METHODS
    }

    fn check_args(&self, method: &str, args: &[Vec<u8>]) -> Result<(), ContractError> {
        match method {
            "anchor" => parse_anchor(args).map(|_| ()),
            _ => Err(ContractError::failed(
                FailureCode::UnknownCall,
                format!("attestation has no method {method:?}"),
            )),
        }
    }

    fn call(
        &self,
        ctx: &mut CallContext<'_>,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<(), ContractError> {
        ctx.charge(BUILTIN_CALL_COST)?;
        match method {
            "anchor" => Self::anchor(ctx, args),
            _ => Err(ContractError::failed(
                FailureCode::UnknownCall,
                format!("attestation has no method {method:?}"),
            )),
        }
    }
}
