//! The registry of gmchain's stable error codes, each defined once (in the spirit of TiKV's
//! `error_code` component).
//!
//! A code's **name** (`TX_DUPLICATE`) is the API contract: gRPC metadata (`gmchain-code`),
//! receipts (by number), the CLI's messages and, later, the REST gateway all carry it. Its
//! number, exit class, gRPC status, description and hint are attributes of the name. The table
//! `docs/error-codes.md` is generated from this registry and checked in; the crate's test fails
//! when a (name, number) pair of the table is missing from the registry or differs, so a code
//! is never renumbered or removed: a code no longer raised moves to [`RETIRED`].
//!
//! Number ranges: 100–199 transaction admission; 1000–1999 execution; 2000–2999 the identity
//! contract; 3000–3099 the attestation contract; 3100–3199 the
//! governance contract; 3200–3299 WASM contracts (`contracts`: deployment 3200–3229, runs
//! 3230–3259); 3300–3399 data exchange (the `exchange` contract 3300–3319, serving and
//! fetching 3320–3339); 3400–3499 the `supervision` contract; 4000–4099 the node; 4100–4199 receipts; 4200–4299 the REST gateway;
//! 5000–5099 certificate objects; 5100–5199 certificate chains; 6000–6999 the CA; 7000–7999
//! the HSM; 8000–8999 the cryptographic providers; 9000–9099 TLS.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use core::fmt;

/// The exit status a failure with this code gives the `gmchain` command (DEVELOPERS.md): 1, 2
/// or 3. Success (0) has no code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Something did not verify: a signature, tag, chain, revocation, receipt, audit log (1).
    NotVerified,
    /// Bad input or usage, including a refused transaction (2).
    BadInput,
    /// A token or node could not be reached or cannot serve now (3).
    Unavailable,
}

impl Class {
    /// Returns the process exit status.
    pub fn exit_status(self) -> u8 {
        match self {
            Class::NotVerified => 1,
            Class::BadInput => 2,
            Class::Unavailable => 3,
        }
    }

    /// Returns the name used in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::NotVerified => "not-verified",
            Class::BadInput => "bad-input",
            Class::Unavailable => "unavailable",
        }
    }
}

/// The gRPC status a refusal with this code is sent with (the `google.rpc.Code` names). The
/// node maps it to tonic's code; this crate does not depend on tonic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Grpc {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl Grpc {
    /// Returns the `google.rpc.Code` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Grpc::InvalidArgument => "INVALID_ARGUMENT",
            Grpc::NotFound => "NOT_FOUND",
            Grpc::AlreadyExists => "ALREADY_EXISTS",
            Grpc::PermissionDenied => "PERMISSION_DENIED",
            Grpc::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Grpc::FailedPrecondition => "FAILED_PRECONDITION",
            Grpc::Unimplemented => "UNIMPLEMENTED",
            Grpc::Internal => "INTERNAL",
            Grpc::Unavailable => "UNAVAILABLE",
            Grpc::DataLoss => "DATA_LOSS",
            Grpc::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

/// One stable error code. Codes compare by number (names and numbers are both unique).
#[derive(Debug)]
pub struct Code {
    /// The stable name, the API contract (`TX_DUPLICATE`).
    pub name: &'static str,
    /// The stable number (receipts carry it).
    pub number: u32,
    /// The CLI's exit class.
    pub class: Class,
    /// The gRPC status it is sent with.
    pub grpc: Grpc,
    /// What it means.
    pub description: &'static str,
    /// What the person who met it can do.
    pub hint: &'static str,
}

impl PartialEq for Code {
    fn eq(&self, other: &Code) -> bool {
        self.number == other.number
    }
}

impl Eq for Code {}

impl core::hash::Hash for Code {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.number.hash(state)
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.name == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.name == *other
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A code that is no longer raised. Its name and number stay reserved forever.
#[derive(Debug)]
pub struct Retired {
    /// The name it had.
    pub name: &'static str,
    /// The number it had.
    pub number: u32,
    /// Why it was retired.
    pub note: &'static str,
}

/// Codes no longer raised; never reuse their names or numbers.
pub static RETIRED: &[Retired] = &[Retired {
    name: "NODE_UNAVAILABLE",
    number: 4090,
    note: "the node's refusal when its in-memory tip could not be read; that read cannot fail, and the path was deleted (issue 11)",
}];

/// Returns the live code with this name.
pub fn by_name(name: &str) -> Option<&'static Code> {
    ALL.iter().copied().find(|c| c.name == name)
}

/// Returns the live code with this number.
pub fn by_number(number: u32) -> Option<&'static Code> {
    ALL.iter().copied().find(|c| c.number == number)
}

/// An error that carries a stable code. `class` is the code's class unless the error wraps
/// another coded error whose class decides (a signer's failure inside a CA operation is the
/// token's: unreachable or bad input).
pub trait Coded {
    /// The stable code.
    fn code(&self) -> &'static Code;

    /// The exit class.
    fn class(&self) -> Class {
        self.code().class
    }
}

/// Renders the table `docs/error-codes.md` from the registry (the crate's test compares it).
pub fn render_table() -> String {
    let mut s = String::new();
    s.push_str("# gmchain error codes\n\n");
    s.push_str(
        "Generated from `crates/codes/src/registry.rs` (`GMCHAIN_BLESS_CODES=1 cargo test -p codes` rewrites it); \
         `cargo test -p codes` fails when a (name, number) pair below is missing from the registry or differs. \
         The table is append-only: a code is never renumbered or removed, a code no longer raised is `retired`. \
         The **name** is the API contract (gRPC metadata `gmchain-code`, receipts by number, CLI messages); \
         class is the `gmchain` exit status (1 not verified, 2 bad input, 3 unavailable).\n\n",
    );
    s.push_str("| name | number | status | class (exit) | gRPC | description | hint |\n");
    s.push_str("|---|---|---|---|---|---|---|\n");
    let mut rows: Vec<(u32, String)> = ALL
        .iter()
        .map(|c| {
            (
                c.number,
                format!(
                    "| {} | {} | live | {} ({}) | {} | {} | {} |\n",
                    c.name,
                    c.number,
                    c.class.as_str(),
                    c.class.exit_status(),
                    c.grpc.as_str(),
                    cell(c.description),
                    cell(c.hint)
                ),
            )
        })
        .collect();
    rows.extend(RETIRED.iter().map(|r| {
        (
            r.number,
            format!(
                "| {} | {} | retired | — | — | {} | — |\n",
                r.name,
                r.number,
                cell(r.note)
            ),
        )
    }));
    rows.sort_by_key(|(n, _)| *n);
    for (_, row) in rows {
        s.push_str(&row);
    }
    s
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

macro_rules! define_codes {
    ($( $name:ident = $number:literal, $class:ident, $grpc:ident, $description:literal, $hint:literal; )*) => {
        $(
            #[doc = $description]
            pub static $name: $crate::Code = $crate::Code {
                name: stringify!($name),
                number: $number,
                class: $crate::Class::$class,
                grpc: $crate::Grpc::$grpc,
                description: $description,
                hint: $hint,
            };
        )*
        /// Every live code, in number order.
        pub static ALL: &[&$crate::Code] = &[$(&$name),*];
    };
}

mod registry;

pub use registry::*;
