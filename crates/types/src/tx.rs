//! Transactions: the unsigned body, its ID, the signed form, and the expiry rule.

use crate::codec::{self, Decode, DecodeError, DecodeReason, Encode, Limits, Reader, Writer, tag};
use crate::error::TxError;
use crate::primitives::{ChainId, Height, TxId, crypto_field};
use crypto::{Digest, PublicKey, Signature, Signer, UserId};
use crypto_sm::sm3::sm3_parts;

/// Domain tag hashed before the unsigned transaction to form its ID (docs/formats.md §4).
pub const TX_ID_DOMAIN: &[u8] = b"GMCHAIN-TX-V1\0";

/// Domain tag hashed before the signed transaction to form its entry hash, the data entry of
/// the transactions root (docs/formats.md §4).
pub const SIGNED_TX_DOMAIN: &[u8] = b"GMCHAIN-SIGNED-TX-V1\0";

/// The largest strict-DER `SM2Signature` (two 33-byte INTEGERs in a SEQUENCE).
pub const MAX_SIGNATURE_DER_LEN: usize = 72;

/// Who sends a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sender {
    /// The sender's X.509 certificate in DER (first transactions, before registration).
    Certificate(Vec<u8>),
    /// SM3 of the DER of a certificate the chain already holds.
    Registered(Digest),
}

const SENDER_CERTIFICATE: u8 = 0x01;
const SENDER_REGISTERED: u8 = 0x02;

/// A contract call: which contract, which method, and the arguments as opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Contract name: 1..=`max_name_len` bytes of printable ASCII without spaces.
    pub contract: String,
    /// Method name: same alphabet.
    pub method: String,
    /// Arguments; their meaning is the contract's.
    pub args: Vec<Vec<u8>>,
}

/// The unsigned body of a transaction.
///
/// The salt makes two otherwise equal calls distinct transactions; the expiry height bounds
/// how long the transaction can be replayed into a block, so the node need remember seen IDs
/// only for one expiry window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// The chain this transaction is for.
    pub chain_id: ChainId,
    /// 16 random bytes chosen by the sender.
    pub salt: [u8; 16],
    /// The last height at which the transaction may be included.
    pub expiry: Height,
    /// The most fuel its calls may use (docs/contracts.md §3), at most the chain's
    /// `max_fuel_per_tx`; needed for a call to a WASM contract. `Some` is encoded as version 2
    /// of the transaction (the field after `expiry`); `None` as version 1, which has no such
    /// field and calls only the built-in contracts.
    pub fuel_limit: Option<u64>,
    /// The sender.
    pub sender: Sender,
    /// What to run.
    pub call: Call,
}

impl Transaction {
    /// Returns the format version of the encoding: [`codec::FORMAT_VERSION_2`] when the
    /// transaction names a fuel limit, else [`codec::FORMAT_VERSION`].
    pub fn version(&self) -> u8 {
        match self.fuel_limit {
            Some(_) => codec::FORMAT_VERSION_2,
            None => codec::FORMAT_VERSION,
        }
    }

    /// Returns the ID: SM3(`TX_ID_DOMAIN` ‖ canonical unsigned encoding).
    pub fn tx_id(&self) -> TxId {
        TxId(sm3_parts(&[TX_ID_DOMAIN, &self.to_bytes()]))
    }
}

impl Encode for Transaction {
    fn encode_to(&self, w: &mut Writer) {
        w.header_version(self.version(), tag::TRANSACTION);
        w.bytes(self.chain_id.as_str().as_bytes());
        w.fixed(&self.salt);
        w.u64(self.expiry.0);
        if let Some(fuel) = self.fuel_limit {
            w.u64(fuel);
        }
        match &self.sender {
            Sender::Certificate(der) => {
                w.u8(SENDER_CERTIFICATE);
                w.bytes(der);
            }
            Sender::Registered(d) => {
                w.u8(SENDER_REGISTERED);
                w.fixed(d.as_bytes());
            }
        }
        w.bytes(self.call.contract.as_bytes());
        w.bytes(self.call.method.as_bytes());
        w.len(self.call.args.len());
        for a in &self.call.args {
            w.bytes(a);
        }
    }
}

impl Decode for Transaction {
    fn decode_from(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        let version = r.header_versions("tx.header", tag::TRANSACTION, codec::FORMAT_VERSION_2)?;
        let chain_id = ChainId::parse(
            "tx.chain_id",
            r.bytes("tx.chain_id", crate::primitives::MAX_CHAIN_ID_LEN)?,
        )?;
        let salt = r.array("tx.salt")?;
        let expiry = Height(r.u64("tx.expiry")?);
        let fuel_limit = if version == codec::FORMAT_VERSION_2 {
            Some(r.u64("tx.fuel_limit")?)
        } else {
            None
        };
        let sender = match r.u8("tx.sender")? {
            SENDER_CERTIFICATE => {
                let der = r.bytes("tx.sender.certificate", limits.max_cert_size)?;
                if der.is_empty() {
                    return Err(DecodeError::new(
                        "tx.sender.certificate",
                        DecodeReason::TooShort { len: 0, min: 1 },
                    ));
                }
                Sender::Certificate(der.to_vec())
            }
            SENDER_REGISTERED => Sender::Registered(Digest(r.array("tx.sender.registered")?)),
            got => {
                return Err(DecodeError::new(
                    "tx.sender",
                    DecodeReason::UnknownVariant { got },
                ));
            }
        };
        let contract = codec::check_name(
            "tx.call.contract",
            r.bytes("tx.call.contract", limits.max_name_len)?,
            limits.max_name_len,
        )?;
        let method = codec::check_name(
            "tx.call.method",
            r.bytes("tx.call.method", limits.max_name_len)?,
            limits.max_name_len,
        )?;
        let count = r.len("tx.call.args", limits.max_args)?;
        let mut args = Vec::new();
        for _ in 0..count {
            args.push(r.bytes("tx.call.args[]", limits.max_arg_size)?.to_vec());
        }
        Ok(Transaction {
            chain_id,
            salt,
            expiry,
            fuel_limit,
            sender,
            call: Call {
                contract,
                method,
                args,
            },
        })
    }

    /// Decodes a transaction body that fills `bytes`, refusing more than `max_tx_size` bytes
    /// before reading any field.
    fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        codec::check_size("tx", bytes.len(), limits.max_tx_size)?;
        let mut r = Reader::new(bytes);
        let value = Self::decode_from(&mut r, limits)?;
        r.finish()?;
        Ok(value)
    }
}

/// A transaction with the sender's SM2 signature over its ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTx {
    /// The unsigned body.
    pub tx: Transaction,
    /// SM2 signature over the 32-byte ID, with ZA over `signer_user_id` and the sender's key.
    pub signature: Signature,
    /// The SM2 user ID used in ZA (usually the default 1234567812345678).
    pub signer_user_id: UserId,
}

impl SignedTx {
    /// Signs `tx`: the message is the 32-byte ID, and the signer computes
    /// e = SM3(ZA ‖ id) with ZA over `user_id` and its key (GB/T 32918.2 §6.1 A1-A2).
    pub fn sign(tx: Transaction, signer: &dyn Signer, user_id: &UserId) -> Result<Self, TxError> {
        let id = tx.tx_id();
        let signature = signer
            .sign(user_id, id.as_bytes())
            .map_err(TxError::Signing)?;
        Ok(Self {
            tx,
            signature,
            signer_user_id: user_id.clone(),
        })
    }

    /// Returns the ID of the transaction (the signature is not part of it).
    pub fn tx_id(&self) -> TxId {
        self.tx.tx_id()
    }

    /// Returns the entry hash: SM3(`SIGNED_TX_DOMAIN` ‖ canonical signed encoding).
    ///
    /// Unlike the ID it covers the signature and the signer's user ID; it is the data entry of
    /// the transactions root ([`crate::Block::tx_root`]), so a block header commits to the
    /// signatures its block carries.
    pub fn entry_hash(&self) -> Digest {
        sm3_parts(&[SIGNED_TX_DOMAIN, &self.to_bytes()])
    }

    /// Checks only the signature, with `public_key` (validated first, GB/T 32918.1 §6.2).
    /// Whether that key belongs to the sender's certificate, whether the certificate is valid
    /// and what it may call are the node's checks.
    pub fn verify_signature(&self, public_key: &PublicKey) -> Result<(), TxError> {
        self.verify_signature_with_id(&self.tx_id(), public_key)
    }

    /// [`SignedTx::verify_signature`] for a caller that already computed [`SignedTx::tx_id`]
    /// (`id` must be it: the ID is the signed message, so any other ID fails or, for another
    /// transaction's ID, verifies that transaction's signature instead of this one's).
    pub fn verify_signature_with_id(
        &self,
        id: &TxId,
        public_key: &PublicKey,
    ) -> Result<(), TxError> {
        debug_assert_eq!(
            *id,
            self.tx_id(),
            "verify_signature_with_id: not this tx's ID"
        );
        crypto_sm::sm2::verify(
            public_key,
            &self.signer_user_id,
            id.as_bytes(),
            &self.signature,
        )
        .map_err(TxError::SignatureInvalid)
    }
}

impl Encode for SignedTx {
    fn encode_to(&self, w: &mut Writer) {
        w.header(tag::SIGNED_TX);
        self.tx.encode_to(w);
        w.bytes(&self.signature.to_der());
        w.bytes(self.signer_user_id.as_bytes());
    }
}

impl Decode for SignedTx {
    fn decode_from(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        r.header("signed_tx.header", tag::SIGNED_TX)?;
        let tx = Transaction::decode_from(r, limits)?;
        let der = r.bytes("signed_tx.signature", MAX_SIGNATURE_DER_LEN)?;
        let signature =
            Signature::from_der(der).map_err(|e| crypto_field("signed_tx.signature", e))?;
        // One signature, one encoding: refuse any DER our encoder would not have written.
        if signature.to_der() != der {
            return Err(DecodeError::new(
                "signed_tx.signature",
                DecodeReason::InvalidText {
                    expected: "strict DER SM2Signature",
                },
            ));
        }
        let uid = r.bytes(
            "signed_tx.signer_user_id",
            limits.max_user_id_len.min(crypto::MAX_USER_ID_LEN),
        )?;
        let signer_user_id =
            UserId::new(uid).map_err(|e| crypto_field("signed_tx.signer_user_id", e))?;
        Ok(SignedTx {
            tx,
            signature,
            signer_user_id,
        })
    }

    /// Decodes a signed transaction that fills `bytes`, refusing more than `max_tx_size` bytes
    /// before reading any field.
    fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        codec::check_size("signed_tx", bytes.len(), limits.max_tx_size)?;
        let mut r = Reader::new(bytes);
        let value = Self::decode_from(&mut r, limits)?;
        r.finish()?;
        Ok(value)
    }
}

/// The expiry rule, judged against heights, never a clock: a transaction proposed on top of
/// `tip` goes into height tip + 1, so it is expired if `expiry` < tip + 1, and too far ahead if
/// `expiry` > tip + `window`. With `window` = 0 no transaction is ever acceptable.
pub fn check_expiry(expiry: Height, tip: Height, window: u64) -> Result<(), TxError> {
    let Some(next) = tip.next() else {
        // No height follows u64::MAX: nothing can be included any more.
        return Err(TxError::Expired {
            expiry,
            next: Height(u64::MAX),
        });
    };
    if expiry < next {
        return Err(TxError::Expired { expiry, next });
    }
    let max = Height(tip.0.saturating_add(window));
    if expiry > max {
        return Err(TxError::ExpiryTooFar { expiry, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_window() {
        assert!(check_expiry(Height(11), Height(10), 5).is_ok());
        assert!(check_expiry(Height(15), Height(10), 5).is_ok());
        assert_eq!(
            check_expiry(Height(10), Height(10), 5),
            Err(TxError::Expired {
                expiry: Height(10),
                next: Height(11)
            })
        );
        assert_eq!(
            check_expiry(Height(16), Height(10), 5),
            Err(TxError::ExpiryTooFar {
                expiry: Height(16),
                max: Height(15)
            })
        );
        assert!(check_expiry(Height(11), Height(10), 0).is_err());
        assert!(check_expiry(Height(u64::MAX), Height(u64::MAX), 5).is_err());
        assert!(check_expiry(Height(u64::MAX), Height(u64::MAX - 1), u64::MAX).is_ok());
    }
}
