//! The self-check: what the module and token really offer and how the private keys really are
//! protected, each row from a PKCS#11 call made now.

use crate::HsmError;
use crate::ffi::{Attr, Mech, ObjectHandle, Param};
use crate::hsm::Hsm;
use crate::pool::OpError;
use crate::profile::{Certification, Operation, SM2_EC_PARAMS, Sm2KeyType, WrapParameter};
use crate::rv::{CallError, Ckr};
use crate::uri::{KeyUri, ObjectType};
use cryptoki_sys::*;
use std::fmt;

/// One checked item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelfCheckRow {
    /// What was checked.
    pub item: String,
    /// What gmchain requires.
    pub expected: String,
    /// What the module answered.
    pub observed: String,
    /// Whether the observation meets the requirement.
    pub ok: bool,
}

/// The result of [`Hsm::self_check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelfCheck {
    /// The profile's name.
    pub profile: String,
    /// The module library.
    pub module: String,
    /// The token label.
    pub token: String,
    /// The rows, in order: module, token, session, mechanisms, keys.
    pub rows: Vec<SelfCheckRow>,
    /// Whether the profile is a development token (results "development token, not
    /// certified").
    pub development: bool,
    /// The device certification the profile records.
    pub certification: Option<Certification>,
}

impl SelfCheck {
    /// Returns whether every row is ok.
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| r.ok)
    }

    /// Returns the rows that failed.
    pub fn failures(&self) -> impl Iterator<Item = &SelfCheckRow> {
        self.rows.iter().filter(|r| !r.ok)
    }

    /// Returns the assurance label of the results.
    pub fn assurance(&self) -> String {
        match (&self.certification, self.development) {
            (_, true) => "development token, not certified".to_string(),
            (Some(c), false) => format!(
                "certified device: model {}, certificate {}",
                c.model, c.certificate
            ),
            (None, false) => "no certification recorded".to_string(),
        }
    }
}

impl fmt::Display for SelfCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "HSM self-check: profile {}, module {}, token {:?} ({})",
            self.profile,
            self.module,
            self.token,
            self.assurance()
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "  [{}] {}: expected {}; observed {}",
                if r.ok { "ok" } else { "FAIL" },
                r.item,
                r.expected,
                r.observed
            )?;
        }
        write!(
            f,
            "{}",
            if self.passed() {
                "all checks passed"
            } else {
                "SOME CHECKS FAILED"
            }
        )
    }
}

const FLAG_NAMES: &[(CK_FLAGS, &str)] = &[
    (CKF_HW, "HW"),
    (CKF_ENCRYPT, "ENCRYPT"),
    (CKF_DECRYPT, "DECRYPT"),
    (CKF_DIGEST, "DIGEST"),
    (CKF_SIGN, "SIGN"),
    (CKF_SIGN_RECOVER, "SIGN_RECOVER"),
    (CKF_VERIFY, "VERIFY"),
    (CKF_VERIFY_RECOVER, "VERIFY_RECOVER"),
    (CKF_GENERATE, "GENERATE"),
    (CKF_GENERATE_KEY_PAIR, "GENERATE_KEY_PAIR"),
    (CKF_WRAP, "WRAP"),
    (CKF_UNWRAP, "UNWRAP"),
    (CKF_DERIVE, "DERIVE"),
    (CKF_EC_F_P, "EC_F_P"),
    (CKF_EC_OID, "EC_OID"),
    (CKF_EC_UNCOMPRESS, "EC_UNCOMPRESS"),
    (CKF_EC_COMPRESS, "EC_COMPRESS"),
];

/// Names the `CKF_` bits of a mechanism's flags.
pub fn flag_names(flags: u64) -> String {
    let mut names: Vec<String> = FLAG_NAMES
        .iter()
        .filter(|(bit, _)| flags & u64::from(*bit) != 0)
        .map(|(_, n)| (*n).to_string())
        .collect();
    let known = FLAG_NAMES.iter().fold(0u64, |a, (b, _)| a | u64::from(*b));
    if flags & !known != 0 {
        names.push(format!("0x{:X}", flags & !known));
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join("|")
    }
}

/// The key protection attributes every private key must have, with the required value.
const KEY_REQUIREMENTS: &[(CK_ATTRIBUTE_TYPE, &str, bool)] = &[
    (CKA_SENSITIVE, "CKA_SENSITIVE", true),
    (CKA_EXTRACTABLE, "CKA_EXTRACTABLE", false),
    (CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", true),
    (CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", true),
    (CKA_LOCAL, "CKA_LOCAL", true),
];

impl Hsm {
    /// Checks the module, the token, every mechanism the profile names (`C_GetMechanismInfo`,
    /// which answers for vendor codes too), and the protection attributes of every SM2 private
    /// key (or only the one `key` names). A key that is extractable, not sensitive, was ever
    /// extractable or non-sensitive, or was not generated in the token fails its row.
    ///
    /// The key usage separation row looks at every key on the token, whatever `key` names: one
    /// that both wraps and decrypts (or wraps and encrypts, or unwraps and encrypts) fails it,
    /// because it decrypts what it wraps (or gives the keystream of its GCM wraps) and so lets
    /// anyone logged in read every extractable key in clear. gmchain's soft token refuses to
    /// make such a key; many tokens do not (SoftHSM does not).
    ///
    /// With a PIN, and a profile that names SM4 key generation and wrapping, one more row
    /// tries what a logged-in user could: it generates two throwaway SM4 session keys (a
    /// wrapping key, and a sensitive, extractable key), wraps the second under the first, and
    /// unwraps the blob with `CKA_SENSITIVE` false. A token that makes that copy non-sensitive
    /// lets anyone read a sensitive key in clear (wrap it, unwrap it, read `CKA_VALUE`), and
    /// fails the row. The probe reads no key value, and destroys what it made whatever happens
    /// (they are session objects, gone with the session in any case).
    pub fn self_check(&self, key: Option<&KeyUri>) -> Result<SelfCheck, HsmError> {
        let inner = self.inner();
        let profile = &inner.profile;
        let module = inner.pool.module();
        let slot = inner.pool.slot();
        let mut rows = Vec::new();

        // Module: C_GetInfo.
        rows.push(match module.ck.get_library_info() {
            Ok(info) => SelfCheckRow {
                item: "module".into(),
                expected: "a PKCS#11 library that answers C_GetInfo".into(),
                observed: format!(
                    "{} / {} version {}, Cryptoki {}",
                    info.manufacturer_id(),
                    info.library_description(),
                    info.library_version(),
                    info.cryptoki_version()
                ),
                ok: true,
            },
            Err(e) => failed_row(
                "module",
                "a PKCS#11 library that answers C_GetInfo",
                CallError::from_cryptoki("C_GetInfo", &e),
            ),
        });

        // Token: C_GetTokenInfo.
        rows.push(match module.ck.get_token_info(slot) {
            Ok(t) => {
                let ok = t.token_initialized() && !t.user_pin_locked() && !t.error_state();
                SelfCheckRow {
                    item: "token".into(),
                    expected: format!(
                        "token {:?} initialised, user PIN not locked",
                        inner.token.label
                    ),
                    observed: format!(
                        "{:?}: manufacturer {:?}, model {:?}, serial {:?}, slot {}{}{}{}",
                        t.label(),
                        t.manufacturer_id(),
                        t.model(),
                        t.serial_number(),
                        slot.id(),
                        if t.token_initialized() {
                            ""
                        } else {
                            ", NOT INITIALISED"
                        },
                        if t.user_pin_locked() {
                            ", USER PIN LOCKED"
                        } else {
                            ""
                        },
                        if t.user_pin_count_low() {
                            ", user PIN count low"
                        } else {
                            ""
                        },
                    ),
                    ok,
                }
            }
            Err(e) => failed_row(
                "token",
                "the token answers C_GetTokenInfo",
                CallError::from_cryptoki("C_GetTokenInfo", &e),
            ),
        });

        // Login state: C_GetSessionInfo on the anchor session.
        let session_row = inner
            .pool
            .with_anchor(|s| match s.get_session_info() {
                Ok(info) => SelfCheckRow {
                    item: "session".into(),
                    expected: if inner.pool.has_pin() {
                        "read/write user session (logged in)".into()
                    } else {
                        "a session (no PIN given: public objects only)".into()
                    },
                    observed: format!(
                        "{:?}, {}",
                        info.session_state(),
                        if info.read_write() {
                            "read/write"
                        } else {
                            "read-only"
                        }
                    ),
                    ok: !inner.pool.has_pin()
                        || matches!(
                            info.session_state(),
                            cryptoki::session::SessionState::RwUser
                                | cryptoki::session::SessionState::RoUser
                        ),
                },
                Err(e) => failed_row(
                    "session",
                    "the anchor session answers C_GetSessionInfo",
                    CallError::from_cryptoki("C_GetSessionInfo", &e),
                ),
            })
            .unwrap_or_else(|| SelfCheckRow {
                item: "session".into(),
                expected: "an open anchor session".into(),
                observed: "none (recovery pending)".into(),
                ok: false,
            });
        rows.push(session_row);

        // Mechanisms: the raw list (unfiltered), then C_GetMechanismInfo per profile entry.
        let listed = module.raw.mechanism_list(slot.id());
        rows.push(match &listed {
            Ok(list) => SelfCheckRow {
                item: "mechanism list".into(),
                expected: "C_GetMechanismList answers".into(),
                observed: format!(
                    "{} mechanisms, {} of them vendor-defined",
                    list.len(),
                    list.iter()
                        .filter(|m| **m >= u64::from(CKM_VENDOR_DEFINED))
                        .count()
                ),
                ok: true,
            },
            Err(c) => failed_row("mechanism list", "C_GetMechanismList answers", *c),
        });
        for op in Operation::ALL {
            let Some(code) = profile.mechanisms().get(op) else {
                continue;
            };
            let item = format!(
                "mechanism {} (0x{code:X}, {})",
                op.field(),
                op.description()
            );
            let required = op.required_flags();
            let expected = format!("offered with {}", flag_names(required));
            let in_list = match &listed {
                Ok(list) if list.contains(&code) => "; listed by C_GetMechanismList",
                Ok(_) => "; NOT listed by C_GetMechanismList",
                Err(_) => "",
            };
            rows.push(match module.raw.mechanism_info(slot.id(), code) {
                Ok(info) => {
                    let flags = u64::from(info.flags);
                    SelfCheckRow {
                        item,
                        expected,
                        observed: format!(
                            "offered: {}; key size {}..{}{in_list}",
                            flag_names(flags),
                            info.ulMinKeySize,
                            info.ulMaxKeySize
                        ),
                        ok: flags & required == required,
                    }
                }
                Err(c) => SelfCheckRow {
                    item,
                    expected,
                    observed: format!("not offered: C_GetMechanismInfo returned {}{in_list}", c.rv),
                    ok: false,
                },
            });
        }

        // Keys.
        rows.extend(self.key_rows(key)?);
        rows.push(self.usage_separation_row()?);
        rows.push(self.unwrap_sensitivity_row()?);

        Ok(SelfCheck {
            profile: profile.name().to_string(),
            module: module.display(),
            token: inner.token.label.clone(),
            rows,
            development: profile.development(),
            certification: profile.certification().cloned(),
        })
    }

    fn key_rows(&self, key: Option<&KeyUri>) -> Result<Vec<SelfCheckRow>, HsmError> {
        let inner = self.inner();
        let sm2 = inner.profile.sm2();
        let mut template = vec![
            Attr::ulong(CKA_CLASS, u64::from(CKO_PRIVATE_KEY)),
            Attr::ulong(CKA_KEY_TYPE, sm2.key_type.code()),
        ];
        if sm2.key_type == Sm2KeyType::Ec {
            template.push(Attr::bytes(CKA_EC_PARAMS, &SM2_EC_PARAMS));
        }
        if let Some(uri) = key {
            if let Some(ty) = uri.object_type
                && ty != ObjectType::Private
            {
                return Err(HsmError::Uri {
                    uri: uri.to_string(),
                    reason: "the self-check examines private keys (type=private)".into(),
                });
            }
            if let Some(l) = &uri.object {
                template.push(Attr::bytes(CKA_LABEL, l.as_bytes()));
            }
            if let Some(id) = &uri.id {
                template.push(Attr::bytes(CKA_ID, id));
            }
        }
        let has_pin = inner.pool.has_pin();
        let rows = inner.pool.run("self-check of keys", |ctx| {
            let handles: Vec<ObjectHandle> = ctx.raw.find_objects(ctx.handle(), &template)?;
            if handles.is_empty() {
                ctx.check_login("C_FindObjects")?;
                if let Some(uri) = key {
                    return Err(OpError::Hsm(HsmError::KeyNotFound {
                        uri: uri.to_string(),
                    }));
                }
                return Ok(vec![SelfCheckRow {
                    item: "private keys".into(),
                    expected:
                        "every SM2 private key sensitive, never extractable, generated in the token"
                            .into(),
                    observed: if has_pin {
                        "no SM2 private key on the token".into()
                    } else {
                        "none visible (no PIN given, so private objects are hidden)".into()
                    },
                    ok: true,
                }]);
            }
            let mut rows = Vec::new();
            for h in handles {
                match key_requirement_rows(ctx, h) {
                    Ok(r) => rows.extend(r),
                    // Destroyed (by another session) between the search and the read, unless
                    // the handle went invalid because the application was logged out.
                    Err(c) if c.is(CKR_OBJECT_HANDLE_INVALID) => ctx.check_login(c.function)?,
                    Err(c) => return Err(c.into()),
                }
            }
            Ok(rows)
        })?;
        Ok(rows)
    }

    /// The key usage separation row: every key the session sees with `CKA_WRAP` or
    /// `CKA_UNWRAP` true, and which of them also decrypts or encrypts.
    fn usage_separation_row(&self) -> Result<SelfCheckRow, HsmError> {
        let inner = self.inner();
        let has_pin = inner.pool.has_pin();
        let (seen, offenders) = inner.pool.run("self-check of key usage", |ctx| {
            let mut handles = ctx
                .raw
                .find_objects(ctx.handle(), &[Attr::bool(CKA_WRAP, true)])?;
            for h in ctx
                .raw
                .find_objects(ctx.handle(), &[Attr::bool(CKA_UNWRAP, true)])?
            {
                if !handles.contains(&h) {
                    handles.push(h);
                }
            }
            if handles.is_empty() {
                ctx.check_login("C_FindObjects")?;
            }
            let mut seen = 0usize;
            let mut offenders = Vec::new();
            for h in handles {
                match usage_conflict(ctx, h) {
                    Ok(found) => {
                        seen += 1;
                        offenders.extend(found);
                    }
                    // Destroyed between the search and the read (see `key_rows`).
                    Err(c) if c.is(CKR_OBJECT_HANDLE_INVALID) => ctx.check_login(c.function)?,
                    Err(c) => return Err(c.into()),
                }
            }
            Ok((seen, offenders))
        })?;
        let hidden = if has_pin {
            ""
        } else {
            " (no PIN given: private keys are not visible)"
        };
        Ok(SelfCheckRow {
            item: "key usage separation".into(),
            expected: "no key both wraps and decrypts or encrypts, or unwraps and encrypts; no private key both unwraps and decrypts".into(),
            observed: if offenders.is_empty() {
                format!("none of {seen} wrapping or unwrapping key(s){hidden}")
            } else {
                format!("{}{hidden}", offenders.join("; "))
            },
            ok: offenders.is_empty(),
        })
    }
}

/// What the unwrap probe saw.
enum UnwrapProbe {
    /// The throwaway keys could not be made: the call and its answer.
    NotRun(CallError),
    /// A step the token refused, which ends the attack: the function and its answer.
    Refused(CallError),
    /// The token made the copy; its `CKA_SENSITIVE` (None: not reported).
    Made(Option<bool>),
}

impl Hsm {
    /// The unwrap sensitivity row (see [`Hsm::self_check`]).
    fn unwrap_sensitivity_row(&self) -> Result<SelfCheckRow, HsmError> {
        const ITEM: &str = "unwrapped key sensitivity";
        const EXPECTED: &str = "C_UnwrapKey makes no non-sensitive copy of a wrapped key";
        let row = |observed: String, ok: bool| SelfCheckRow {
            item: ITEM.into(),
            expected: EXPECTED.into(),
            observed,
            ok,
        };
        let inner = self.inner();
        if !inner.pool.has_pin() {
            return Ok(row(
                "not checked: no PIN given (the probe makes private session keys)".into(),
                true,
            ));
        }
        let profile = &inner.profile;
        let (Some(key_type), Some(keygen), Ok((wrap, wrap_param))) = (
            profile.sm4().key_type,
            profile.mechanisms().get(Operation::Sm4Keygen),
            self.wrap_mechanism(),
        ) else {
            return Ok(row(
                "not checked: the profile names no SM4 key type, key generation or wrapping".into(),
                true,
            ));
        };
        let iv = match wrap_param {
            WrapParameter::Iv16 => self.random(16)?,
            WrapParameter::None => Vec::new(),
        };
        let param = if iv.is_empty() {
            Param::None
        } else {
            Param::Bytes(&iv)
        };
        let id = self.random(8)?;
        let template = |label: &str, extra: &[Attr]| {
            let mut t = vec![
                Attr::ulong(CKA_CLASS, u64::from(CKO_SECRET_KEY)),
                Attr::ulong(CKA_KEY_TYPE, key_type),
                Attr::bool(CKA_TOKEN, false),
                Attr::bool(CKA_PRIVATE, true),
                Attr::bytes(CKA_LABEL, label.as_bytes()),
                Attr::bytes(CKA_ID, &id),
            ];
            t.extend_from_slice(extra);
            t
        };
        // gmchain's wrapping-key template (Sm4KeyOptions { wrapping: true }), and a data key
        // that is sensitive but may leave the token wrapped.
        // CKA_VALUE_LEN: SM4 keys are 16 bytes; some tokens (and AES in a test profile) want it
        // said.
        let kek_t = template(
            "gmchain-selfcheck-kek",
            &[
                Attr::ulong(CKA_VALUE_LEN, 16),
                Attr::bool(CKA_SENSITIVE, true),
                Attr::bool(CKA_EXTRACTABLE, false),
                Attr::bool(CKA_ENCRYPT, false),
                Attr::bool(CKA_DECRYPT, false),
                Attr::bool(CKA_WRAP, true),
                Attr::bool(CKA_UNWRAP, true),
            ],
        );
        let victim_t = template(
            "gmchain-selfcheck-victim",
            &[
                Attr::ulong(CKA_VALUE_LEN, 16),
                Attr::bool(CKA_SENSITIVE, true),
                Attr::bool(CKA_EXTRACTABLE, true),
                Attr::bool(CKA_ENCRYPT, true),
                Attr::bool(CKA_DECRYPT, true),
                Attr::bool(CKA_WRAP, false),
                Attr::bool(CKA_UNWRAP, false),
            ],
        );
        // The copy asks for no usage, so that while it exists (until destroyed below) it is no
        // key that wraps and decrypts to a self-check running meanwhile.
        let copy_t = template(
            "gmchain-selfcheck-copy",
            &[
                Attr::bool(CKA_SENSITIVE, false),
                Attr::bool(CKA_EXTRACTABLE, true),
                Attr::bool(CKA_ENCRYPT, false),
                Attr::bool(CKA_DECRYPT, false),
                Attr::bool(CKA_WRAP, false),
                Attr::bool(CKA_UNWRAP, false),
            ],
        );
        let keygen = Mech::new(keygen, Param::None);
        let wrap = Mech::new(wrap, param);
        let (probe, leftover) = inner.pool.run_write("self-check of unwrapping", |ctx| {
            let mut made: Vec<ObjectHandle> = Vec::new();
            let probe = (|| -> Result<UnwrapProbe, CallError> {
                let s = ctx.handle();
                let kek = match ctx.raw.generate_key(s, &keygen, &kek_t) {
                    Ok(h) => h,
                    Err(c) if is_login_loss(c) => return Err(c),
                    Err(c) => return Ok(UnwrapProbe::NotRun(c)),
                };
                made.push(kek);
                let victim = match ctx.raw.generate_key(s, &keygen, &victim_t) {
                    Ok(h) => h,
                    Err(c) if is_login_loss(c) => return Err(c),
                    Err(c) => return Ok(UnwrapProbe::NotRun(c)),
                };
                made.push(victim);
                let blob = match ctx.raw.wrap_key(s, &wrap, kek, victim) {
                    Ok(b) => b,
                    Err(c) if is_login_loss(c) => return Err(c),
                    Err(c) => return Ok(UnwrapProbe::Refused(c)),
                };
                let copy = match ctx.raw.unwrap_key(s, &wrap, kek, &blob, &copy_t) {
                    Ok(h) => h,
                    Err(c) if is_login_loss(c) => return Err(c),
                    Err(c) => return Ok(UnwrapProbe::Refused(c)),
                };
                made.push(copy);
                let sensitive = ctx
                    .raw
                    .attribute(s, copy, CKA_SENSITIVE)?
                    .and_then(|b| b.first().map(|x| *x != 0));
                Ok(UnwrapProbe::Made(sensitive))
            })();
            // Whatever happened, the throwaway keys go (newest first).
            let mut leftover = None;
            for h in made.into_iter().rev() {
                if let Err(c) = ctx.raw.destroy_object(ctx.handle(), h) {
                    leftover.get_or_insert(c);
                }
            }
            match probe {
                Ok(p) => Ok((p, leftover)),
                Err(c) => {
                    ctx.check_login(c.function)?;
                    Err(c.into())
                }
            }
        })?;
        let cleanup = match leftover {
            None => String::new(),
            Some(c) => format!(
                "; a throwaway key was not destroyed ({}; it is a session object and goes with the session)",
                call_text(c)
            ),
        };
        Ok(match probe {
            // A device failure is no refusal: the question stays open.
            UnwrapProbe::NotRun(c) | UnwrapProbe::Refused(c) if is_device_failure(c) => row(
                format!("could not complete: {}{cleanup}", call_text(c)),
                false,
            ),
            UnwrapProbe::NotRun(c) => row(
                format!(
                    "not checked: the throwaway keys could not be made ({}){cleanup}",
                    call_text(c)
                ),
                true,
            ),
            UnwrapProbe::Refused(c) => row(format!("refused: {}{cleanup}", call_text(c)), true),
            UnwrapProbe::Made(Some(true)) => row(
                format!("the copy was made sensitive despite the template{cleanup}"),
                true,
            ),
            UnwrapProbe::Made(Some(false)) => row(
                format!(
                    "the token made a NON-SENSITIVE copy: anyone logged in can read a sensitive, extractable key in clear by wrapping and unwrapping it{cleanup}"
                ),
                false,
            ),
            UnwrapProbe::Made(None) => row(
                format!("the token made a copy whose CKA_SENSITIVE it does not report{cleanup}"),
                false,
            ),
        })
    }
}

/// Returns whether a call failed because the session or the login went away (the pool
/// recovers from those and runs the operation again).
fn is_login_loss(c: CallError) -> bool {
    c.is(CKR_USER_NOT_LOGGED_IN) || c.is(CKR_SESSION_HANDLE_INVALID) || c.is(CKR_SESSION_CLOSED)
}

/// Returns whether a call failed for a reason other than the token's decision.
fn is_device_failure(c: CallError) -> bool {
    [
        CKR_DEVICE_ERROR,
        CKR_DEVICE_MEMORY,
        CKR_DEVICE_REMOVED,
        CKR_GENERAL_ERROR,
        CKR_FUNCTION_FAILED,
        CKR_HOST_MEMORY,
        CKR_TOKEN_NOT_PRESENT,
    ]
    .iter()
    .any(|code| c.is(*code))
}

fn call_text(c: CallError) -> String {
    format!("{} returned {}", c.function, Ckr(c.rv.0))
}

/// Names a key within its token: label and id (the full URI would drown the table).
fn key_name(ctx: &crate::pool::Ctx<'_>, h: ObjectHandle) -> Result<String, CallError> {
    let label = ctx
        .raw
        .attribute(ctx.handle(), h, CKA_LABEL)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let id = ctx
        .raw
        .attribute(ctx.handle(), h, CKA_ID)?
        .unwrap_or_default();
    Ok(format!("{label:?} id {}", hex_id(&id)))
}

/// Describes the forbidden usage pairs of key `h`, if it has any: `"name": wraps and decrypts`.
/// An attribute the token does not report counts as false.
fn usage_conflict(
    ctx: &crate::pool::Ctx<'_>,
    h: ObjectHandle,
) -> Result<Option<String>, CallError> {
    let flag = |ty| -> Result<bool, CallError> {
        Ok(ctx
            .raw
            .attribute(ctx.handle(), h, ty)?
            .and_then(|b| b.first().map(|x| *x != 0))
            .unwrap_or(false))
    };
    let mut pairs = Vec::new();
    if flag(CKA_WRAP)? && flag(CKA_DECRYPT)? {
        pairs.push("wraps and decrypts");
    }
    if flag(CKA_UNWRAP)? && flag(CKA_ENCRYPT)? {
        pairs.push("unwraps and encrypts");
    }
    // CTR or GCM encryption with the caller's counter block or nonce gives the keystream a
    // GCM (or CTR) wrap under the same key used: the wrapped key is the blob XOR it.
    if flag(CKA_WRAP)? && flag(CKA_ENCRYPT)? {
        pairs.push("wraps and encrypts");
    }
    // A private key that unwraps GM/T 0009 envelopes and decrypts would open an envelope's
    // SM2Cipher in host memory, and with it the enveloped private key.
    let class = ctx.raw.attribute(ctx.handle(), h, CKA_CLASS)?;
    if class.as_deref() == Some(&CK_ULONG::from(CKO_PRIVATE_KEY).to_ne_bytes()[..])
        && flag(CKA_UNWRAP)?
        && flag(CKA_DECRYPT)?
    {
        pairs.push("unwraps and decrypts (a private key)");
    }
    if pairs.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!("{}: {}", key_name(ctx, h)?, pairs.join(", "))))
}

/// One row per protection attribute of the private key `h`. A decrypt-only key (no
/// `CKA_SIGN`) need not be `CKA_LOCAL`, `CKA_ALWAYS_SENSITIVE` or `CKA_NEVER_EXTRACTABLE`: the
/// encryption key of a dual pair is generated by the CA, which keeps an escrow copy, and comes
/// into the token through a GM/T 0009 envelope (`Hsm::import_envelope`); it must still be
/// sensitive and unextractable. Signing keys must have all five.
fn key_requirement_rows(
    ctx: &crate::pool::Ctx<'_>,
    h: ObjectHandle,
) -> Result<Vec<SelfCheckRow>, CallError> {
    let name = key_name(ctx, h)?;
    let flag = |attr| -> Result<Option<bool>, CallError> {
        Ok(ctx
            .raw
            .attribute(ctx.handle(), h, attr)?
            .as_ref()
            .and_then(|b| b.first().map(|x| *x != 0)))
    };
    let enveloped_encryption_key =
        flag(CKA_SIGN)? != Some(true) && flag(CKA_DECRYPT)? == Some(true);
    let mut rows = Vec::new();
    for (attr, attr_name, want) in KEY_REQUIREMENTS {
        let observed = flag(*attr)?;
        let origin_only = matches!(
            *attr,
            CKA_LOCAL | CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE
        );
        let excused = enveloped_encryption_key && origin_only && observed != Some(*want);
        rows.push(SelfCheckRow {
            item: format!("key {name}: {attr_name}"),
            expected: if enveloped_encryption_key && origin_only {
                format!("{want} (or false for a decrypt-only key from a CA's envelope)")
            } else {
                want.to_string()
            },
            observed: match observed {
                Some(v) if excused => {
                    format!("{v}: a decrypt-only key made outside the token (a dual pair's encryption key; its CA keeps an escrow copy)")
                }
                Some(v) => v.to_string(),
                None => "unavailable".into(),
            },
            ok: observed == Some(*want) || (excused && observed.is_some()),
        });
    }
    Ok(rows)
}

fn hex_id(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn failed_row(item: &str, expected: &str, call: CallError) -> SelfCheckRow {
    SelfCheckRow {
        item: item.into(),
        expected: expected.into(),
        observed: format!("{} returned {}", call.function, Ckr(call.rv.0)),
        ok: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_named() {
        assert_eq!(flag_names(u64::from(CKF_SIGN | CKF_VERIFY)), "SIGN|VERIFY");
        assert_eq!(flag_names(0), "none");
        assert_eq!(flag_names(1 << 40), "0x10000000000");
    }
}
