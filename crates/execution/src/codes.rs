//! Typed handles on the registry's codes (`crates/codes`): [`RejectCode`] for refused
//! transactions, [`FailureCode`] for failed receipts. Names, numbers and hints live in the
//! registry only (docs/error-codes.md); these enums let the code match on them.

use core::fmt;

/// Why admission refused a transaction. The name, number and hint are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectCode {
    /// The bytes are not a canonical signed transaction within the limits.
    Malformed,
    /// The encoding is larger than the chain's `max_tx_size`.
    TooLarge,
    /// The transaction names another chain.
    WrongChain,
    /// The expiry height is below the next height.
    Expired,
    /// The expiry height is beyond tip + expiry window.
    ExpiryTooFar,
    /// The transaction ID was already seen (pool or chain).
    Duplicate,
    /// `Sender::Registered` names a certificate the chain does not hold.
    UnknownSender,
    /// The signer's certificate does not parse or its chain does not validate.
    CertInvalid,
    /// The signer's certificate (or a CA above it) is revoked by a recorded CRL.
    SignerRevoked,
    /// No current recorded CRL establishes the revocation status.
    RevocationUnknown,
    /// The chain suspended the signer's certificate.
    SignerSuspended,
    /// The SM2 signature does not verify with the signer's certificate.
    SignatureInvalid,
    /// No built-in contract has this method.
    UnknownCall,
    /// The arguments have the wrong count, length or form.
    BadArguments,
    /// The signer's role or organisation may not make this call.
    PermissionDenied,
    /// The node could not read its state; the transaction was not judged.
    StateUnavailable,
    /// The signer's organisation (or an organisation whose CA is on its path) was deregistered.
    OrgRemoved,
    /// The signer's certificate chains through a CA that is no longer its organisation's
    /// registered CA (the CA was replaced).
    CaReplaced,
    /// The node's pool holds its maximum number of transactions (the node's refusal, not
    /// admission's).
    PoolFull,
    /// A call to a WASM contract without a fuel limit.
    FuelLimitMissing,
    /// A fuel limit above the chain's maximum.
    FuelLimitTooHigh,
    /// The called WASM contract is frozen.
    ContractFrozen,
    /// A call to a WASM contract with a fuel limit below the least a call needs.
    FuelLimitTooLow,
    /// The chain's supervisor froze the signer's certificate.
    SignerFrozen,
    /// The chain's supervisor froze the people of the signer's organisation.
    OrgFrozen,
    /// The chain's supervisor froze the called WASM contract.
    ContractFrozenBySupervisor,
    /// Free space on the node's data directory's filesystem is below its threshold (the
    /// node's refusal, not admission's; docs/ops/disk.md).
    StorageLow,
}

impl RejectCode {
    /// Every code, in number order.
    pub const ALL: [RejectCode; 27] = [
        RejectCode::Malformed,
        RejectCode::TooLarge,
        RejectCode::WrongChain,
        RejectCode::Expired,
        RejectCode::ExpiryTooFar,
        RejectCode::Duplicate,
        RejectCode::UnknownCall,
        RejectCode::BadArguments,
        RejectCode::UnknownSender,
        RejectCode::CertInvalid,
        RejectCode::SignerRevoked,
        RejectCode::RevocationUnknown,
        RejectCode::SignerSuspended,
        RejectCode::SignatureInvalid,
        RejectCode::OrgRemoved,
        RejectCode::CaReplaced,
        RejectCode::PermissionDenied,
        RejectCode::PoolFull,
        RejectCode::StateUnavailable,
        RejectCode::FuelLimitMissing,
        RejectCode::FuelLimitTooHigh,
        RejectCode::ContractFrozen,
        RejectCode::FuelLimitTooLow,
        RejectCode::SignerFrozen,
        RejectCode::OrgFrozen,
        RejectCode::ContractFrozenBySupervisor,
        RejectCode::StorageLow,
    ];

    /// Returns the registry entry: name, number, hint, exit class and gRPC status.
    pub fn code(self) -> &'static codes::Code {
        match self {
            RejectCode::Malformed => &codes::TX_MALFORMED,
            RejectCode::TooLarge => &codes::TX_TOO_LARGE,
            RejectCode::WrongChain => &codes::TX_WRONG_CHAIN,
            RejectCode::Expired => &codes::TX_EXPIRED,
            RejectCode::ExpiryTooFar => &codes::TX_EXPIRY_TOO_FAR,
            RejectCode::Duplicate => &codes::TX_DUPLICATE,
            RejectCode::UnknownCall => &codes::TX_UNKNOWN_CALL,
            RejectCode::BadArguments => &codes::TX_BAD_ARGUMENTS,
            RejectCode::UnknownSender => &codes::TX_UNKNOWN_SENDER,
            RejectCode::CertInvalid => &codes::TX_CERT_INVALID,
            RejectCode::SignerRevoked => &codes::TX_SIGNER_REVOKED,
            RejectCode::RevocationUnknown => &codes::TX_REVOCATION_UNKNOWN,
            RejectCode::SignerSuspended => &codes::TX_SIGNER_SUSPENDED,
            RejectCode::SignatureInvalid => &codes::TX_SIGNATURE_INVALID,
            RejectCode::PermissionDenied => &codes::TX_PERMISSION_DENIED,
            RejectCode::StateUnavailable => &codes::TX_STATE_UNAVAILABLE,
            RejectCode::OrgRemoved => &codes::TX_ORG_REMOVED,
            RejectCode::CaReplaced => &codes::TX_CA_REPLACED,
            RejectCode::PoolFull => &codes::TX_POOL_FULL,
            RejectCode::FuelLimitMissing => &codes::TX_FUEL_LIMIT_MISSING,
            RejectCode::FuelLimitTooHigh => &codes::TX_FUEL_LIMIT_TOO_HIGH,
            RejectCode::ContractFrozen => &codes::TX_CONTRACT_FROZEN,
            RejectCode::FuelLimitTooLow => &codes::TX_FUEL_LIMIT_TOO_LOW,
            RejectCode::SignerFrozen => &codes::TX_SIGNER_FROZEN,
            RejectCode::OrgFrozen => &codes::TX_ORG_FROZEN,
            RejectCode::ContractFrozenBySupervisor => &codes::TX_CONTRACT_FROZEN_BY_SUPERVISOR,
            RejectCode::StorageLow => &codes::NODE_STORAGE_LOW,
        }
    }

    /// Returns the stable name (`TX_SIGNATURE_INVALID`).
    pub fn as_str(self) -> &'static str {
        self.code().name
    }

    /// Returns the stable number (docs/error-codes.md).
    pub fn number(self) -> u32 {
        self.code().number
    }

    /// Returns what the sender can do about it.
    pub fn hint(self) -> &'static str {
        self.code().hint
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused transaction: a stable code and a message naming what was wrong. Admission's
/// refusals and the node's own (a full pool, a duplicate already waiting) are this one type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The stable code.
    pub code: RejectCode,
    /// What was wrong, for a person.
    pub message: String,
}

impl Rejection {
    /// A refusal with `code` and a message naming what was wrong.
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }

    /// Returns the code's hint.
    pub fn hint(&self) -> &'static str {
        self.code.hint()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Rejection {}

impl codes::Coded for Rejection {
    fn code(&self) -> &'static codes::Code {
        self.code.code()
    }
}

/// Why an admitted transaction failed in execution: the `code` of a `Failed` receipt. The
/// failure depends on the state at execution time, so admission could not catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureCode {
    /// No built-in contract has this method (a block from a node with other contracts).
    UnknownCall,
    /// The signer's role or organisation may not make this call (state changed since admission).
    PermissionDenied,
    /// The arguments do not have the expected form.
    BadArguments,
    /// The transaction names another chain.
    WrongChain,
    /// A value over the state's value limit.
    ValueTooLarge,
    /// An event over the receipt limits, or with an invalid name.
    EventInvalid,
    /// A write, delete or event in a read-only context.
    ReadOnly,
    /// A charge past the cost meter's limit.
    CostExceeded,
    /// `identity.register_org`: an organisation of this name is already registered.
    OrgExists,
    /// The signer's organisation is not registered.
    OrgUnknown,
    /// `identity.update_crl`: the CRL's thisUpdate is not later than the recorded CRL's.
    CrlNotNewer,
    /// `identity.update_crl`: the CRL is not issued and signed by the organisation's CA.
    CrlIssuerMismatch,
    /// `identity.suspend` / `resume`: no certificate is recorded under this ID.
    CertUnknown,
    /// `identity.suspend`: the certificate is already suspended.
    AlreadySuspended,
    /// `identity.resume`: the certificate is not suspended.
    NotSuspended,
    /// `attestation.anchor`: the digest is already anchored (the first anchor wins).
    DigestAlreadyAnchored,
    /// `identity.deregister_org` / `replace_ca`: a founding organisation changes only by the
    /// consortium's governance.
    OrgFounding,
    /// `identity.deregister_org`: the organisation is already deregistered; `register_org`:
    /// the name was deregistered (only its sponsor re-admits it, by `replace_ca`).
    OrgRemoved,
    /// `identity.deregister_org` / `replace_ca`: the organisation holds a validator seat.
    OrgHasValidators,
    /// `governance.vote`: no proposal has this ID.
    ProposalUnknown,
    /// `governance.vote`: the proposal is executed, rejected or past its deadline.
    ProposalClosed,
    /// `governance.vote`: the organisation already voted.
    AlreadyVoted,
    /// `governance`: the validator change does not fit the current set.
    ValidatorChangeInvalid,
    /// `governance`: another change of the same kind (validator set, chain parameters) is
    /// pending.
    ValidatorChangePending,
    /// `governance.propose`: the deadline is out of range.
    ProposalSchedule,
    /// `governance`: a chain-parameter change is outside the hard bounds at execution.
    ParamsInvalid,
    /// `governance` org-register: the CA cannot become a trust anchor now.
    OrgCaInvalid,
    /// `governance` org-remove: the organisation sponsors active organisations.
    OrgSponsors,
    /// `governance` org-remove: the last active founding organisation.
    LastFounding,
    /// The called WASM contract is frozen.
    ContractFrozen,
    /// A contract lifecycle change cannot apply in the contract's state.
    ContractInvalid,
    /// `exchange.register`: the organisation already has a dataset of this name.
    DatasetExists,
    /// `exchange`: no dataset has this ID.
    DatasetUnknown,
    /// `exchange.request`: the dataset is not shared.
    NotShared,
    /// `exchange`: no access request has this ID.
    RequestUnknown,
    /// `exchange.grant`/`deny`/`revoke`: the request's state does not allow it.
    RequestState,
    /// `exchange`: the encryption certificate is not the signer's own.
    EncCertInvalid,
    /// `exchange`: the node has recorded no endpoint.
    EndpointUnknown,
    /// `exchange.publish`/`send`: the escrow envelopes do not name the chain's escrow recipients.
    EscrowMismatch,
    /// `exchange.ack`: no message has this ID.
    MessageUnknown,
    /// `exchange.ack`: the organisation already acknowledged the message.
    AlreadyAcknowledged,
    /// `exchange`: the dataset has no such version.
    VersionUnknown,
    /// The called WASM contract is frozen by the supervisor.
    ContractFrozenBySupervisor,
    /// `supervision`: the signer's organisation is not the supervisor.
    NotSupervisor,
    /// `supervision.freeze`: already frozen by the supervisor.
    AlreadyFrozen,
    /// `supervision.unfreeze`: not frozen by the supervisor.
    NotFrozen,
    /// `supervision.freeze`: no such organisation or contract.
    FreezeTargetUnknown,
    /// `supervision.freeze`: the supervising organisation itself.
    FreezeTargetProtected,
    /// `supervision`: the freeze policy needs a governance vote.
    FreezeNeedsVote,
    /// `supervision`: the reason is empty, too long or not printable.
    FreezeBadReason,
    /// `supervision.anchor_log`: the head is behind or differs from the anchored one.
    LogRegressed,
}

impl FailureCode {
    /// Every code, in number order.
    pub const ALL: [FailureCode; 51] = [
        FailureCode::UnknownCall,
        FailureCode::PermissionDenied,
        FailureCode::BadArguments,
        FailureCode::WrongChain,
        FailureCode::ValueTooLarge,
        FailureCode::EventInvalid,
        FailureCode::ReadOnly,
        FailureCode::CostExceeded,
        FailureCode::OrgExists,
        FailureCode::OrgUnknown,
        FailureCode::CrlNotNewer,
        FailureCode::CrlIssuerMismatch,
        FailureCode::CertUnknown,
        FailureCode::AlreadySuspended,
        FailureCode::NotSuspended,
        FailureCode::OrgFounding,
        FailureCode::OrgRemoved,
        FailureCode::OrgHasValidators,
        FailureCode::DigestAlreadyAnchored,
        FailureCode::ProposalUnknown,
        FailureCode::ProposalClosed,
        FailureCode::AlreadyVoted,
        FailureCode::ValidatorChangeInvalid,
        FailureCode::ValidatorChangePending,
        FailureCode::ProposalSchedule,
        FailureCode::ParamsInvalid,
        FailureCode::OrgCaInvalid,
        FailureCode::OrgSponsors,
        FailureCode::LastFounding,
        FailureCode::ContractFrozen,
        FailureCode::ContractInvalid,
        FailureCode::DatasetExists,
        FailureCode::DatasetUnknown,
        FailureCode::NotShared,
        FailureCode::RequestUnknown,
        FailureCode::RequestState,
        FailureCode::EncCertInvalid,
        FailureCode::EndpointUnknown,
        FailureCode::EscrowMismatch,
        FailureCode::MessageUnknown,
        FailureCode::AlreadyAcknowledged,
        FailureCode::VersionUnknown,
        FailureCode::ContractFrozenBySupervisor,
        FailureCode::NotSupervisor,
        FailureCode::AlreadyFrozen,
        FailureCode::NotFrozen,
        FailureCode::FreezeTargetUnknown,
        FailureCode::FreezeTargetProtected,
        FailureCode::FreezeNeedsVote,
        FailureCode::FreezeBadReason,
        FailureCode::LogRegressed,
    ];

    /// Returns the registry entry.
    pub fn code(self) -> &'static codes::Code {
        match self {
            FailureCode::UnknownCall => &codes::EXEC_UNKNOWN_CALL,
            FailureCode::PermissionDenied => &codes::EXEC_PERMISSION_DENIED,
            FailureCode::BadArguments => &codes::EXEC_BAD_ARGUMENTS,
            FailureCode::WrongChain => &codes::EXEC_WRONG_CHAIN,
            FailureCode::ValueTooLarge => &codes::EXEC_VALUE_TOO_LARGE,
            FailureCode::EventInvalid => &codes::EXEC_EVENT_INVALID,
            FailureCode::ReadOnly => &codes::EXEC_READ_ONLY,
            FailureCode::CostExceeded => &codes::EXEC_COST_EXCEEDED,
            FailureCode::OrgExists => &codes::IDENTITY_ORG_EXISTS,
            FailureCode::OrgUnknown => &codes::IDENTITY_ORG_UNKNOWN,
            FailureCode::CrlNotNewer => &codes::IDENTITY_CRL_NOT_NEWER,
            FailureCode::CrlIssuerMismatch => &codes::IDENTITY_CRL_ISSUER_MISMATCH,
            FailureCode::CertUnknown => &codes::IDENTITY_CERT_UNKNOWN,
            FailureCode::AlreadySuspended => &codes::IDENTITY_ALREADY_SUSPENDED,
            FailureCode::NotSuspended => &codes::IDENTITY_NOT_SUSPENDED,
            FailureCode::DigestAlreadyAnchored => &codes::ATTESTATION_DIGEST_EXISTS,
            FailureCode::OrgFounding => &codes::IDENTITY_ORG_FOUNDING,
            FailureCode::OrgRemoved => &codes::IDENTITY_ORG_REMOVED,
            FailureCode::OrgHasValidators => &codes::IDENTITY_ORG_HAS_VALIDATORS,
            FailureCode::ProposalUnknown => &codes::GOVERNANCE_PROPOSAL_UNKNOWN,
            FailureCode::ProposalClosed => &codes::GOVERNANCE_PROPOSAL_CLOSED,
            FailureCode::AlreadyVoted => &codes::GOVERNANCE_ALREADY_VOTED,
            FailureCode::ValidatorChangeInvalid => &codes::GOVERNANCE_CHANGE_INVALID,
            FailureCode::ValidatorChangePending => &codes::GOVERNANCE_CHANGE_PENDING,
            FailureCode::ProposalSchedule => &codes::GOVERNANCE_SCHEDULE,
            FailureCode::ParamsInvalid => &codes::GOVERNANCE_PARAMS_INVALID,
            FailureCode::OrgCaInvalid => &codes::GOVERNANCE_ORG_CA_INVALID,
            FailureCode::OrgSponsors => &codes::GOVERNANCE_ORG_SPONSORS,
            FailureCode::LastFounding => &codes::GOVERNANCE_LAST_FOUNDING,
            FailureCode::ContractFrozen => &codes::CONTRACT_FROZEN,
            FailureCode::ContractInvalid => &codes::GOVERNANCE_CONTRACT_INVALID,
            FailureCode::DatasetExists => &codes::EXCHANGE_DATASET_EXISTS,
            FailureCode::DatasetUnknown => &codes::EXCHANGE_DATASET_UNKNOWN,
            FailureCode::NotShared => &codes::EXCHANGE_NOT_SHARED,
            FailureCode::RequestUnknown => &codes::EXCHANGE_REQUEST_UNKNOWN,
            FailureCode::RequestState => &codes::EXCHANGE_REQUEST_STATE,
            FailureCode::EncCertInvalid => &codes::EXCHANGE_ENC_CERT_INVALID,
            FailureCode::EndpointUnknown => &codes::EXCHANGE_ENDPOINT_UNKNOWN,
            FailureCode::EscrowMismatch => &codes::EXCHANGE_ESCROW_MISMATCH,
            FailureCode::MessageUnknown => &codes::EXCHANGE_MESSAGE_UNKNOWN,
            FailureCode::AlreadyAcknowledged => &codes::EXCHANGE_ALREADY_ACKNOWLEDGED,
            FailureCode::VersionUnknown => &codes::EXCHANGE_VERSION_UNKNOWN,
            FailureCode::ContractFrozenBySupervisor => &codes::CONTRACT_FROZEN_BY_SUPERVISOR,
            FailureCode::NotSupervisor => &codes::SUPERVISION_NOT_SUPERVISOR,
            FailureCode::AlreadyFrozen => &codes::SUPERVISION_ALREADY_FROZEN,
            FailureCode::NotFrozen => &codes::SUPERVISION_NOT_FROZEN,
            FailureCode::FreezeTargetUnknown => &codes::SUPERVISION_TARGET_UNKNOWN,
            FailureCode::FreezeTargetProtected => &codes::SUPERVISION_TARGET_PROTECTED,
            FailureCode::FreezeNeedsVote => &codes::SUPERVISION_NEEDS_VOTE,
            FailureCode::FreezeBadReason => &codes::SUPERVISION_BAD_REASON,
            FailureCode::LogRegressed => &codes::SUPERVISION_LOG_REGRESSED,
        }
    }

    /// Returns the stable name.
    pub fn as_str(self) -> &'static str {
        self.code().name
    }

    /// Returns the stable number written into the receipt.
    pub fn number(self) -> u32 {
        self.code().number
    }

    /// Returns the code with this number, if any.
    pub fn from_number(n: u32) -> Option<FailureCode> {
        FailureCode::ALL.into_iter().find(|c| c.number() == n)
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_pinned() {
        let names: HashSet<_> = RejectCode::ALL.iter().map(|c| c.as_str()).collect();
        let numbers: HashSet<_> = RejectCode::ALL.iter().map(|c| c.number()).collect();
        assert_eq!(names.len(), RejectCode::ALL.len());
        assert_eq!(numbers.len(), RejectCode::ALL.len());
        assert_eq!(RejectCode::SignatureInvalid.number(), 115);
        assert_eq!(
            RejectCode::PermissionDenied.as_str(),
            "TX_PERMISSION_DENIED"
        );
        let names: HashSet<_> = FailureCode::ALL.iter().map(|c| c.as_str()).collect();
        let numbers: HashSet<_> = FailureCode::ALL.iter().map(|c| c.number()).collect();
        assert_eq!(names.len(), FailureCode::ALL.len());
        assert_eq!(numbers.len(), FailureCode::ALL.len());
        assert_eq!(FailureCode::DigestAlreadyAnchored.number(), 3001);
        assert_eq!(
            FailureCode::from_number(2003),
            Some(FailureCode::CrlNotNewer)
        );
        // Every code of the enums is a distinct registry entry, and from_number finds it.
        for c in FailureCode::ALL {
            assert_eq!(FailureCode::from_number(c.number()), Some(c));
            assert_eq!(codes::by_name(c.as_str()), Some(c.code()));
        }
        for c in RejectCode::ALL {
            assert_eq!(codes::by_number(c.number()), Some(c.code()));
        }
        let r = Rejection::new(RejectCode::SignatureInvalid, "bad");
        assert_eq!(r.to_string(), "TX_SIGNATURE_INVALID: bad");
    }
}
