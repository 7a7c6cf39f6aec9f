//! Stable codes at the API edge: [`RejectCode`] for admission, [`FailureCode`] for receipts.
//! Names and numbers are part of the interface (docs/execution.md); never renumber one.

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
}

impl RejectCode {
    /// Every code, in number order.
    pub const ALL: [RejectCode; 18] = [
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
        RejectCode::StateUnavailable,
    ];

    /// Returns the stable name (`TX_SIGNATURE_INVALID`).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Malformed => "TX_MALFORMED",
            RejectCode::TooLarge => "TX_TOO_LARGE",
            RejectCode::WrongChain => "TX_WRONG_CHAIN",
            RejectCode::Expired => "TX_EXPIRED",
            RejectCode::ExpiryTooFar => "TX_EXPIRY_TOO_FAR",
            RejectCode::Duplicate => "TX_DUPLICATE",
            RejectCode::UnknownCall => "TX_UNKNOWN_CALL",
            RejectCode::BadArguments => "TX_BAD_ARGUMENTS",
            RejectCode::UnknownSender => "TX_UNKNOWN_SENDER",
            RejectCode::CertInvalid => "TX_CERT_INVALID",
            RejectCode::SignerRevoked => "TX_SIGNER_REVOKED",
            RejectCode::RevocationUnknown => "TX_REVOCATION_UNKNOWN",
            RejectCode::SignerSuspended => "TX_SIGNER_SUSPENDED",
            RejectCode::SignatureInvalid => "TX_SIGNATURE_INVALID",
            RejectCode::PermissionDenied => "TX_PERMISSION_DENIED",
            RejectCode::StateUnavailable => "TX_STATE_UNAVAILABLE",
            RejectCode::OrgRemoved => "TX_ORG_REMOVED",
            RejectCode::CaReplaced => "TX_CA_REPLACED",
        }
    }

    /// Returns the stable number (docs/execution.md §6).
    pub fn number(self) -> u32 {
        match self {
            RejectCode::Malformed => 100,
            RejectCode::TooLarge => 101,
            RejectCode::WrongChain => 102,
            RejectCode::Expired => 103,
            RejectCode::ExpiryTooFar => 104,
            RejectCode::Duplicate => 105,
            RejectCode::UnknownCall => 106,
            RejectCode::BadArguments => 107,
            RejectCode::UnknownSender => 110,
            RejectCode::CertInvalid => 111,
            RejectCode::SignerRevoked => 112,
            RejectCode::RevocationUnknown => 113,
            RejectCode::SignerSuspended => 114,
            RejectCode::SignatureInvalid => 115,
            RejectCode::PermissionDenied => 120,
            RejectCode::StateUnavailable => 190,
            RejectCode::OrgRemoved => 116,
            RejectCode::CaReplaced => 117,
        }
    }

    /// Returns what the sender can do about it.
    pub fn hint(self) -> &'static str {
        match self {
            RejectCode::Malformed => {
                "encode the signed transaction as in docs/formats.md; the message names the field"
            }
            RejectCode::TooLarge => "keep the encoded transaction within the chain's max_tx_size",
            RejectCode::WrongChain => "sign the transaction for this chain's ID",
            RejectCode::Expired => "choose an expiry above the current height and resubmit",
            RejectCode::ExpiryTooFar => "choose an expiry at most tip + the chain's expiry window",
            RejectCode::Duplicate => {
                "this transaction was already submitted; change the salt to send the call again"
            }
            RejectCode::UnknownCall => {
                "call one of the built-in methods listed in docs/execution.md §4"
            }
            RejectCode::BadArguments => {
                "pass the arguments the method expects (docs/execution.md §4); the message names the argument"
            }
            RejectCode::UnknownSender => {
                "send the full certificate (Sender::Certificate) until a transaction of yours has been committed"
            }
            RejectCode::CertInvalid => {
                "use a certificate issued by your organisation's registered CA, valid now; the message gives the chain error"
            }
            RejectCode::SignerRevoked => "the certificate was revoked; request a new one",
            RejectCode::RevocationUnknown => {
                "your organisation's admin must record a current CRL (identity.update_crl)"
            }
            RejectCode::SignerSuspended => {
                "an admin of your organisation suspended this certificate (identity.resume lifts it)"
            }
            RejectCode::SignatureInvalid => {
                "sign the transaction ID with the certificate's key; check the user ID (default 1234567812345678)"
            }
            RejectCode::PermissionDenied => {
                "this role or organisation may not make this call; see the permission table in docs/execution.md §5"
            }
            RejectCode::StateUnavailable => {
                "the node cannot read its state; retry later or check the node"
            }
            RejectCode::OrgRemoved => {
                "the organisation was deregistered by its sponsor; only the sponsor can re-admit it (identity.replace_ca)"
            }
            RejectCode::CaReplaced => {
                "the organisation's CA was replaced: request a certificate from its new CA"
            }
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused transaction: a stable code and a message naming what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The stable code.
    pub code: RejectCode,
    /// What was wrong, for a person.
    pub message: String,
}

impl Rejection {
    pub(crate) fn new(code: RejectCode, message: impl Into<String>) -> Self {
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
}

impl FailureCode {
    /// Every code, in number order.
    pub const ALL: [FailureCode; 16] = [
        FailureCode::UnknownCall,
        FailureCode::PermissionDenied,
        FailureCode::BadArguments,
        FailureCode::WrongChain,
        FailureCode::ValueTooLarge,
        FailureCode::EventInvalid,
        FailureCode::OrgExists,
        FailureCode::OrgUnknown,
        FailureCode::CrlNotNewer,
        FailureCode::CrlIssuerMismatch,
        FailureCode::CertUnknown,
        FailureCode::AlreadySuspended,
        FailureCode::NotSuspended,
        FailureCode::OrgFounding,
        FailureCode::OrgRemoved,
        FailureCode::DigestAlreadyAnchored,
    ];

    /// Returns the stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::UnknownCall => "EXEC_UNKNOWN_CALL",
            FailureCode::PermissionDenied => "EXEC_PERMISSION_DENIED",
            FailureCode::BadArguments => "EXEC_BAD_ARGUMENTS",
            FailureCode::WrongChain => "EXEC_WRONG_CHAIN",
            FailureCode::ValueTooLarge => "EXEC_VALUE_TOO_LARGE",
            FailureCode::EventInvalid => "EXEC_EVENT_INVALID",
            FailureCode::OrgExists => "IDENTITY_ORG_EXISTS",
            FailureCode::OrgUnknown => "IDENTITY_ORG_UNKNOWN",
            FailureCode::CrlNotNewer => "IDENTITY_CRL_NOT_NEWER",
            FailureCode::CrlIssuerMismatch => "IDENTITY_CRL_ISSUER_MISMATCH",
            FailureCode::CertUnknown => "IDENTITY_CERT_UNKNOWN",
            FailureCode::AlreadySuspended => "IDENTITY_ALREADY_SUSPENDED",
            FailureCode::NotSuspended => "IDENTITY_NOT_SUSPENDED",
            FailureCode::DigestAlreadyAnchored => "ATTESTATION_DIGEST_EXISTS",
            FailureCode::OrgFounding => "IDENTITY_ORG_FOUNDING",
            FailureCode::OrgRemoved => "IDENTITY_ORG_REMOVED",
        }
    }

    /// Returns the stable number written into the receipt.
    pub fn number(self) -> u32 {
        match self {
            FailureCode::UnknownCall => 1000,
            FailureCode::PermissionDenied => 1001,
            FailureCode::BadArguments => 1002,
            FailureCode::WrongChain => 1003,
            FailureCode::ValueTooLarge => 1004,
            FailureCode::EventInvalid => 1005,
            FailureCode::OrgExists => 2001,
            FailureCode::OrgUnknown => 2002,
            FailureCode::CrlNotNewer => 2003,
            FailureCode::CrlIssuerMismatch => 2004,
            FailureCode::CertUnknown => 2005,
            FailureCode::AlreadySuspended => 2006,
            FailureCode::NotSuspended => 2007,
            FailureCode::DigestAlreadyAnchored => 3001,
            FailureCode::OrgFounding => 2008,
            FailureCode::OrgRemoved => 2009,
        }
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
        let r = Rejection::new(RejectCode::SignatureInvalid, "bad");
        assert_eq!(r.to_string(), "TX_SIGNATURE_INVALID: bad");
    }
}
