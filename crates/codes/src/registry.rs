//! The codes. Append here; never renumber or delete a row (move it to `RETIRED`).

define_codes! {
    TX_MALFORMED = 100, BadInput, InvalidArgument,
        "The bytes are not a canonical signed transaction within the limits.",
        "encode the signed transaction as in docs/formats.md; the message names the field";
    TX_TOO_LARGE = 101, BadInput, InvalidArgument,
        "The encoding is larger than the chain's `max_tx_size`.",
        "keep the encoded transaction within the chain's max_tx_size";
    TX_WRONG_CHAIN = 102, BadInput, InvalidArgument,
        "The transaction names another chain.",
        "sign the transaction for this chain's ID";
    TX_EXPIRED = 103, BadInput, InvalidArgument,
        "The expiry height is below the next height.",
        "choose an expiry above the current height and resubmit";
    TX_EXPIRY_TOO_FAR = 104, BadInput, InvalidArgument,
        "The expiry height is beyond tip + expiry window.",
        "choose an expiry at most tip + the chain's expiry window";
    TX_DUPLICATE = 105, BadInput, AlreadyExists,
        "The transaction ID was already seen (pool or chain).",
        "this transaction was already submitted; change the salt to send the call again";
    TX_UNKNOWN_CALL = 106, BadInput, InvalidArgument,
        "No built-in contract has this method.",
        "call one of the built-in methods listed in docs/execution.md §4";
    TX_BAD_ARGUMENTS = 107, BadInput, InvalidArgument,
        "The arguments have the wrong count, length or form.",
        "pass the arguments the method expects (docs/execution.md §4); the message names the argument";
    TX_UNKNOWN_SENDER = 110, BadInput, InvalidArgument,
        "`Sender::Registered` names a certificate the chain does not hold.",
        "send the full certificate (Sender::Certificate) until a transaction of yours has been committed";
    TX_CERT_INVALID = 111, BadInput, InvalidArgument,
        "The signer's certificate does not parse or its chain does not validate.",
        "use a certificate issued by your organisation's registered CA, valid now; the message gives the chain error";
    TX_SIGNER_REVOKED = 112, BadInput, InvalidArgument,
        "The signer's certificate (or a CA above it) is revoked by a recorded CRL.",
        "the certificate was revoked; request a new one";
    TX_REVOCATION_UNKNOWN = 113, BadInput, InvalidArgument,
        "No current recorded CRL establishes the revocation status.",
        "your organisation's admin must record a current CRL (identity.update_crl)";
    TX_SIGNER_SUSPENDED = 114, BadInput, InvalidArgument,
        "The chain suspended the signer's certificate.",
        "an admin of your organisation suspended this certificate (identity.resume lifts it)";
    TX_SIGNATURE_INVALID = 115, BadInput, InvalidArgument,
        "The SM2 signature does not verify with the signer's certificate.",
        "sign the transaction ID with the certificate's key; check the user ID (default 1234567812345678)";
    TX_ORG_REMOVED = 116, BadInput, InvalidArgument,
        "The signer's organisation (or an organisation whose CA is on its path) was deregistered.",
        "the organisation was deregistered by its sponsor; only the sponsor can re-admit it (identity.replace_ca)";
    TX_CA_REPLACED = 117, BadInput, InvalidArgument,
        "The signer's certificate chains through a CA that is no longer its organisation's registered CA (the CA was replaced).",
        "the organisation's CA was replaced: request a certificate from its new CA";
    TX_PERMISSION_DENIED = 120, BadInput, PermissionDenied,
        "The signer's role or organisation may not make this call.",
        "this role or organisation may not make this call; see the permission table in docs/execution.md §5";
    TX_FUEL_LIMIT_MISSING = 121, BadInput, InvalidArgument,
        "A call to a WASM contract, or a proposal carrying a module, in a transaction that names no fuel limit (a version 1 transaction).",
        "send a version 2 transaction with a fuel limit (`--fuel`), at most the chain's max_fuel_per_tx";
    TX_FUEL_LIMIT_TOO_HIGH = 122, BadInput, InvalidArgument,
        "The transaction's fuel limit is above the chain's max_fuel_per_tx or max_fuel_per_block in force.",
        "lower the fuel limit to the chain's maximum (gmchain query status shows the parameters)";
    TX_CONTRACT_FROZEN = 123, BadInput, FailedPrecondition,
        "The called WASM contract is frozen by governance: it refuses calls until it is unfrozen.",
        "the consortium froze this contract (gmchain gov list shows the proposal); queries still work";
    TX_FUEL_LIMIT_TOO_LOW = 124, BadInput, InvalidArgument,
        "A call to a WASM contract or a contract query names a fuel limit below the least a call needs (10 000), or a proposal carrying a module one below what the module's checks cost (the message gives the figure).",
        "raise the fuel limit (`--fuel`) to the figure the message names";
    TX_SIGNER_FROZEN = 125, BadInput, PermissionDenied,
        "The chain's supervisor froze the signer's certificate.",
        "the supervisor froze this certificate (supervision.unfreeze by the supervisor lifts it; an admin's identity.resume does not)";
    TX_ORG_FROZEN = 126, BadInput, PermissionDenied,
        "The chain's supervisor froze the people (users, admins, auditors) of the signer's organisation.",
        "the supervisor froze your organisation's people (supervision.unfreeze by the supervisor lifts it); nodes still run";
    TX_CONTRACT_FROZEN_BY_SUPERVISOR = 127, BadInput, FailedPrecondition,
        "The called WASM contract is frozen by the chain's supervisor: it refuses calls until the supervisor unfreezes it.",
        "the supervisor froze this contract (gmchain audit freezes lists it); a governance unfreeze does not lift it";
    TX_STATE_UNAVAILABLE = 190, Unavailable, Unavailable,
        "The node could not read its state; the transaction was not judged.",
        "the node cannot read its state; retry later or check the node";
    TX_POOL_FULL = 191, BadInput, ResourceExhausted,
        "The node's pool holds its maximum number of transactions.",
        "retry after the next block";
    TX_BATCH_INVALID = 192, BadInput, InvalidArgument,
        "A batch submission (Batch.SubmitTransactions, POST /v1/tx/batch) is empty or holds more transactions than the node's `api.max_batch_txs`; none of it was admitted.",
        "send between 1 and api.max_batch_txs transactions per batch (the message gives the node's limit)";
    TX_BATCH_BUSY = 193, BadInput, ResourceExhausted,
        "A batch submission found the node reading or admitting its maximum of batches (8 at once, 2 per client address); nothing of it was read or admitted.",
        "retry the batch shortly; send fewer batches at once from one address";
    EXEC_UNKNOWN_CALL = 1000, NotVerified, FailedPrecondition,
        "No built-in contract has this method (a block from a node with other contracts).",
        "the block came from a node with other contracts; check that every node runs the same release";
    EXEC_PERMISSION_DENIED = 1001, NotVerified, FailedPrecondition,
        "The signer's role or organisation may not make this call (state changed since admission).",
        "the signer's role or organisation changed after admission; see docs/execution.md §5";
    EXEC_BAD_ARGUMENTS = 1002, NotVerified, FailedPrecondition,
        "The arguments do not have the expected form.",
        "pass the arguments the method expects (docs/execution.md §4)";
    EXEC_WRONG_CHAIN = 1003, NotVerified, FailedPrecondition,
        "The transaction names another chain.",
        "sign the transaction for this chain's ID";
    EXEC_VALUE_TOO_LARGE = 1004, NotVerified, FailedPrecondition,
        "A value over the state's value limit.",
        "store a digest of large data, not the data";
    EXEC_EVENT_INVALID = 1005, NotVerified, FailedPrecondition,
        "An event over the receipt limits, or with an invalid name.",
        "keep events within the receipt limits of docs/formats.md";
    EXEC_READ_ONLY = 1006, NotVerified, FailedPrecondition,
        "A contract call tried to write, delete or emit an event in a read-only context (an authorisation hook or a query).",
        "a query or an authorisation hook only reads; make the change in a transaction";
    EXEC_COST_EXCEEDED = 1007, NotVerified, ResourceExhausted,
        "A contract call would take the transaction's cost meter past its limit; its writes are discarded.",
        "raise the transaction's cost limit within the chain's maximum, or do less in one transaction";
    IDENTITY_ORG_EXISTS = 2001, NotVerified, FailedPrecondition,
        "`identity.register_org`: an organisation of this name is already registered.",
        "choose another name, or replace the CA of the existing organisation (identity.replace_ca)";
    IDENTITY_ORG_UNKNOWN = 2002, NotVerified, FailedPrecondition,
        "The signer's organisation is not registered.",
        "the organisation's sponsor must register it first (identity.register_org)";
    IDENTITY_CRL_NOT_NEWER = 2003, NotVerified, FailedPrecondition,
        "`identity.update_crl`: the CRL's thisUpdate is not later than the recorded CRL's.",
        "record a CRL issued after the recorded one";
    IDENTITY_CRL_ISSUER_MISMATCH = 2004, NotVerified, FailedPrecondition,
        "`identity.update_crl`: the CRL is not issued and signed by the organisation's CA.",
        "record a CRL signed by the organisation's registered CA";
    IDENTITY_CERT_UNKNOWN = 2005, NotVerified, FailedPrecondition,
        "`identity.suspend` / `resume`: no certificate is recorded under this ID.",
        "name the certificate by the ID of a certificate the chain has seen";
    IDENTITY_ALREADY_SUSPENDED = 2006, NotVerified, FailedPrecondition,
        "`identity.suspend`: the certificate is already suspended.",
        "nothing to do; identity.resume lifts the suspension";
    IDENTITY_NOT_SUSPENDED = 2007, NotVerified, FailedPrecondition,
        "`identity.resume`: the certificate is not suspended.",
        "nothing to do";
    IDENTITY_ORG_FOUNDING = 2008, NotVerified, FailedPrecondition,
        "`identity.deregister_org` / `replace_ca`: a founding organisation changes only by the consortium's governance.",
        "a founding organisation changes only by the consortium's governance";
    IDENTITY_ORG_REMOVED = 2009, NotVerified, FailedPrecondition,
        "`identity.deregister_org`: the organisation is already deregistered; `register_org`: the name was deregistered.",
        "only its sponsor can re-admit it (identity.replace_ca)";
    IDENTITY_ORG_HAS_VALIDATORS = 2010, NotVerified, FailedPrecondition,
        "`identity.deregister_org` / `replace_ca`: the organisation holds a validator seat (or a pending one).",
        "remove or rotate its validators by a governance proposal first";
    ATTESTATION_DIGEST_EXISTS = 3001, NotVerified, FailedPrecondition,
        "`attestation.anchor`: the digest is already anchored (the first anchor wins).",
        "the document is already anchored; query the first anchor (gmchain query attestation)";
    GOVERNANCE_PROPOSAL_UNKNOWN = 3101, NotVerified, FailedPrecondition,
        "`governance.vote`: no proposal has this ID.",
        "the ID is the proposing transaction's (gmchain governance list)";
    GOVERNANCE_PROPOSAL_CLOSED = 3102, NotVerified, FailedPrecondition,
        "`governance.vote`: the proposal was executed or rejected, or its deadline passed.",
        "make a new proposal";
    GOVERNANCE_ALREADY_VOTED = 3103, NotVerified, FailedPrecondition,
        "`governance.vote`: the signer's organisation already voted on this proposal.",
        "one vote per organisation; it cannot be changed";
    GOVERNANCE_CHANGE_INVALID = 3104, NotVerified, FailedPrecondition,
        "`governance`: the validator change does not fit the current set (unknown or present validator, last validator, certificate not an active organisation's valid node-sign certificate).",
        "the message names what does not fit; query the validator set (gmchain query validators)";
    GOVERNANCE_CHANGE_PENDING = 3105, NotVerified, FailedPrecondition,
        "`governance`: another change of the same kind (validator set, or chain parameters) is decided and not yet in effect.",
        "vote again after the pending change's effective height, before the deadline";
    GOVERNANCE_SCHEDULE = 3106, BadInput, InvalidArgument,
        "`governance.propose`: the deadline is before the proposing height or too far after it.",
        "choose a deadline at most 1,000,000 blocks ahead and an effective height after it";
    GOVERNANCE_PARAMS_INVALID = 3107, NotVerified, FailedPrecondition,
        "`governance`: a chain-parameter change is outside the hard bounds when it is executed (a record written by a build with other bounds).",
        "propose values within the bounds of docs/execution.md §4.3 (gmchain governance propose params checks them)";
    GOVERNANCE_ORG_CA_INVALID = 3110, NotVerified, FailedPrecondition,
        "`governance` org-register: the CA cannot become a trust anchor now (not valid at the block's time, or its subject or key is already a registered CA's).",
        "issue a new self-signed root CA for the organisation, valid now, with its own subject and key";
    GOVERNANCE_ORG_SPONSORS = 3111, NotVerified, FailedPrecondition,
        "`governance` org-remove: the organisation sponsors active organisations (their CAs are certified by its CA).",
        "its sponsored organisations leave first (identity.deregister_org by its admins, or org-remove proposals)";
    GOVERNANCE_LAST_FOUNDING = 3112, NotVerified, FailedPrecondition,
        "`governance` org-remove: the organisation is the chain's last active founding organisation (its last trust anchor).",
        "register another founding organisation (org-register) first";
    GOVERNANCE_CONTRACT_INVALID = 3113, NotVerified, FailedPrecondition,
        "A contract lifecycle change cannot apply: deploying a name already deployed, or upgrading, freezing or unfreezing a contract that is not deployed or not in the required state.",
        "the message names the contract and its state; gmchain contract show NAME shows it";
    CONTRACT_TOO_LARGE = 3200, BadInput, InvalidArgument,
        "The WASM module is larger than the chain's contract size cap.",
        "shrink the module (build in release mode, strip it); the message gives the size and the cap";
    CONTRACT_INVALID_WASM = 3201, BadInput, InvalidArgument,
        "The bytes do not parse or validate as a WebAssembly module.",
        "deploy a WebAssembly binary module (not text, not a component); the message gives the parser's error";
    CONTRACT_FEATURE_NOT_ALLOWED = 3202, BadInput, InvalidArgument,
        "The module uses a WebAssembly proposal the chain does not allow (only MVP, mutable-global, sign-ext, bulk-memory, multi-value).",
        "build without SIMD, reference types, threads, tail calls and other proposals (docs/contracts.md §1)";
    CONTRACT_FLOAT = 3203, BadInput, InvalidArgument,
        "The module uses a floating-point type or instruction.",
        "contracts use integer arithmetic only; the message names the function and the operator (docs/contracts.md §1)";
    CONTRACT_IMPORT_NOT_ALLOWED = 3204, BadInput, InvalidArgument,
        "The module imports something other than a function of the `gmchain` host namespace.",
        "import only functions from the `gmchain` module (no WASI, no imported memory); the message names the import";
    CONTRACT_START_FUNCTION = 3205, BadInput, InvalidArgument,
        "The module declares a start function.",
        "remove the start function; setup belongs in the optional `init` entry point (docs/contracts.md §1)";
    CONTRACT_TOO_MANY_PAGES = 3206, BadInput, InvalidArgument,
        "The module's memory declares more pages than the chain's page limit.",
        "declare at most the page limit (64 KiB pages) as minimum and maximum; lower the stack size your toolchain reserves";
    CONTRACT_TABLE_TOO_LARGE = 3207, BadInput, InvalidArgument,
        "The module's table declares more elements than the chain's table limit.",
        "declare at most the table limit of elements (docs/contracts.md §1)";
    CONTRACT_MISSING_EXPORT = 3208, BadInput, InvalidArgument,
        "An export the contract ABI requires is missing.",
        "export `memory` and the entry point `call` (docs/contracts.md §1); the message names the export";
    CONTRACT_EXPORT_WRONG_TYPE = 3209, BadInput, InvalidArgument,
        "An export the contract ABI names has the wrong kind or signature.",
        "entry points take no parameters and return nothing; `memory` is a memory (docs/contracts.md §1)";
    CONTRACT_COMPILE_FAILED = 3210, BadInput, InvalidArgument,
        "The interpreter refused to compile the module (deployment validation compiles every module it accepts).",
        "the message gives the interpreter's error (for example too many locals or too deep a nesting); simplify the module";
    CONTRACT_TOO_MANY_FUNCTIONS = 3211, BadInput, InvalidArgument,
        "The module defines more functions than the chain's limit (10 000 by default).",
        "merge or remove functions (build with opt-level z and LTO); the message gives the count and the limit (docs/contracts.md §1)";
    CONTRACT_TOO_MANY_LOCALS = 3212, BadInput, InvalidArgument,
        "A function of the module has more locals, parameters included, than the chain's limit (256 by default).",
        "split the function or build with optimisation; the message names the function, its count and the limit (docs/contracts.md §1)";
    CONTRACT_FUEL_EXHAUSTED = 3230, BadInput, ResourceExhausted,
        "The contract used all the fuel the transaction allowed.",
        "raise the transaction's fuel limit (at most the chain's maximum) or make the call cheaper";
    CONTRACT_TRAP = 3231, BadInput, FailedPrecondition,
        "The contract trapped (unreachable, out-of-bounds access, division by zero, ...).",
        "the message names the trap kind; fix the contract or its arguments";
    CONTRACT_MEMORY_LIMIT = 3232, BadInput, FailedPrecondition,
        "The contract's memory could not be allocated within the chain's page limit.",
        "the module declares more memory than the chain now allows; redeploy it with fewer pages";
    CONTRACT_STACK_EXHAUSTED = 3233, BadInput, FailedPrecondition,
        "The contract exceeded the call-depth or value-stack limit.",
        "reduce recursion depth or stack use in the contract";
    CONTRACT_NO_ENTRY_POINT = 3234, BadInput, InvalidArgument,
        "The contract does not export the called entry point with the ABI's signature.",
        "call an entry point the contract exports (docs/contracts.md §1)";
    CONTRACT_INSTANTIATION_FAILED = 3235, BadInput, FailedPrecondition,
        "The contract could not be instantiated (an import the host does not provide, a segment out of bounds).",
        "the message names the cause; import only functions of the host API version the chain runs";
    CONTRACT_ABORTED = 3236, BadInput, FailedPrecondition,
        "The contract ended its run as failed by calling the host function `abort`.",
        "the message is the contract's own; see the contract's documentation for what it refused";
    CONTRACT_HOST_BOUNDS = 3237, BadInput, FailedPrecondition,
        "A host function's argument is out of its bounds: a length over its limit, a pointer range outside the memory, or an event name, topic list or contract name not of the required form.",
        "the message names the host function, the argument and the bound (docs/contracts.md §2); fix the contract";
    CONTRACT_HOST_STATE = 3238, Unavailable, Unavailable,
        "The node could not read its state while a contract ran; the run was not judged.",
        "the node cannot read its state; the block is not executed on this node; check the node's storage";
    CONTRACT_CALL_DEPTH = 3239, BadInput, FailedPrecondition,
        "A contract call would nest deeper than the chain allows (8 nested contract calls).",
        "call fewer contracts in a chain of calls (docs/contracts.md §2, `call`)";
    CONTRACT_READ_ONLY = 3240, BadInput, FailedPrecondition,
        "A contract tried to write, remove a key or emit an event in a read-only call (a query, or a callee of one).",
        "a query only reads; make the change in a transaction";
    CONTRACT_FROZEN = 3241, BadInput, FailedPrecondition,
        "The called WASM contract was frozen by governance before the transaction ran.",
        "the consortium froze this contract; it refuses calls until a governance unfreeze";
    CONTRACT_FROZEN_BY_SUPERVISOR = 3242, BadInput, FailedPrecondition,
        "The called WASM contract was frozen by the chain's supervisor before the transaction ran.",
        "the supervisor froze this contract; it refuses calls until the supervisor unfreezes it";
    EXCHANGE_DATASET_EXISTS = 3300, NotVerified, FailedPrecondition,
        "`exchange.register`: the organisation already has a dataset of this name.",
        "publish a new version of it (gmchain data publish) or choose another name";
    EXCHANGE_DATASET_UNKNOWN = 3301, NotVerified, FailedPrecondition,
        "`exchange`: no dataset has this ID (organisation/name).",
        "list the catalogue (gmchain data list)";
    EXCHANGE_NOT_SHARED = 3302, NotVerified, FailedPrecondition,
        "`exchange.request`: the dataset's sharing class is not-shared, so it is never granted.",
        "ask the owning organisation to publish it under another class";
    EXCHANGE_REQUEST_UNKNOWN = 3303, NotVerified, FailedPrecondition,
        "`exchange`: no access request has this ID.",
        "the ID is the requesting transaction's (gmchain data show DATASET lists requests)";
    EXCHANGE_REQUEST_STATE = 3304, NotVerified, FailedPrecondition,
        "`exchange.grant`/`deny`/`revoke`: the request is not in a state that allows it (already decided, revoked or expired).",
        "check the request (gmchain data show); a new request starts over";
    EXCHANGE_ENC_CERT_INVALID = 3305, NotVerified, FailedPrecondition,
        "`exchange`: the encryption certificate is not the signer's own (same organisation and common name, the encryption role paired with the signer's role, valid under the chain's CAs).",
        "give your dual pair's encryption certificate (gmchain ca issue --dual)";
    EXCHANGE_ENDPOINT_UNKNOWN = 3306, NotVerified, FailedPrecondition,
        "`exchange`: the named node of the organisation has recorded no endpoint and encryption certificate.",
        "the organisation's admin records it first (gmchain data endpoint)";
    EXCHANGE_ESCROW_MISMATCH = 3307, NotVerified, FailedPrecondition,
        "`exchange.publish`/`send`: the escrow envelopes do not name exactly the chain's escrow recipients.",
        "wrap the data key to every escrow recipient the chain names (gmchain data publish does)";
    EXCHANGE_MESSAGE_UNKNOWN = 3308, NotVerified, FailedPrecondition,
        "`exchange.ack`: no message has this ID.",
        "the ID is the sending transaction's (gmchain data inbox)";
    EXCHANGE_ALREADY_ACKNOWLEDGED = 3309, NotVerified, FailedPrecondition,
        "`exchange.ack`: the organisation already acknowledged this message.",
        "nothing to do: the first acknowledgement stands";
    EXCHANGE_VERSION_UNKNOWN = 3310, NotVerified, FailedPrecondition,
        "`exchange`: the dataset has no such version.",
        "list the versions (gmchain data show)";
    EXCHANGE_NO_GRANT = 3320, NotVerified, PermissionDenied,
        "The fetch was refused: the requester holds no live grant for the dataset (none, denied, pending or revoked) or is not a recipient of the message. The refusal is recorded on the chain.",
        "request access (gmchain data request) and wait for the grant";
    EXCHANGE_GRANT_EXPIRED = 3321, NotVerified, PermissionDenied,
        "The fetch was refused: the grant's expiry height has passed. The refusal is recorded on the chain.",
        "request access again";
    EXCHANGE_NOT_CUSTODIAN = 3322, BadInput, FailedPrecondition,
        "The node asked for a blob is not the custodian that holds it.",
        "fetch from the custodian node the catalogue names (gmchain data fetch does)";
    EXCHANGE_BLOB_MISSING = 3323, Unavailable, Unavailable,
        "The custodian node does not hold the version's blob (not uploaded, or lost).",
        "the owner re-uploads the version's payload; the message names the blob";
    EXCHANGE_BLOB_REFUSED = 3324, BadInput, InvalidArgument,
        "An uploaded payload was refused: its length or SM3 differs from what was announced, it is not a GMCP payload, or it is over the node's limit.",
        "upload the sealed payload whose digest and length you publish";
    EXCHANGE_VERIFY_FAILED = 3325, NotVerified, DataLoss,
        "A fetched payload or key envelope did not verify (SM4-GCM tag, SM2 C3, or a digest differing from the catalogue's); nothing was written.",
        "fetch again; if it persists the custodian's copy is damaged";
    EXCHANGE_UPLOAD_DENIED = 3326, NotVerified, PermissionDenied,
        "An upload to a custodian node by someone who is not an admin or user of the node's organisation.",
        "upload to a node of your own organisation";
    EXCHANGE_KEY_UNAVAILABLE = 3327, Unavailable, Unavailable,
        "The custodian could not unwrap the version's data key (its node-enc key is not the one the version was wrapped to, or the token failed); nothing was served or recorded.",
        "the message names the failure; the owner re-publishes the version if the node's encryption key changed";
    EXCHANGE_BUSY = 3328, Unavailable, ResourceExhausted,
        "The custodian serves as many fetches as it allows at once, or the caller's previous refused fetch is still being recorded.",
        "retry in a moment";
    SUPERVISION_NOT_SUPERVISOR = 3400, NotVerified, PermissionDenied,
        "`supervision`: the signer's organisation is not the chain's supervisor (or the chain names none).",
        "only auditors of the supervising organisation (genesis `supervision.supervisor`, or a governance `supervisor` proposal) freeze and unfreeze";
    SUPERVISION_ALREADY_FROZEN = 3401, NotVerified, FailedPrecondition,
        "`supervision.freeze`: the supervisor already froze this target.",
        "nothing to do; supervision.unfreeze lifts it";
    SUPERVISION_NOT_FROZEN = 3402, NotVerified, FailedPrecondition,
        "`supervision.unfreeze`: the supervisor has not frozen this target (a suspension or a governance freeze is lifted by its own authority).",
        "an admin's suspension is lifted by identity.resume, a governance freeze by a contract-unfreeze proposal";
    SUPERVISION_TARGET_UNKNOWN = 3403, NotVerified, FailedPrecondition,
        "`supervision.freeze`: no such organisation or deployed contract on the chain.",
        "name a registered organisation or a deployed WASM contract (gmchain query orgs, gmchain contract list)";
    SUPERVISION_TARGET_PROTECTED = 3404, NotVerified, FailedPrecondition,
        "`supervision.freeze`: the target is the supervising organisation itself, whose people are the only ones who can unfreeze.",
        "freeze single certificates of the supervising organisation instead";
    SUPERVISION_NEEDS_VOTE = 3405, NotVerified, PermissionDenied,
        "`supervision`: the chain's freeze policy is `governance`: a freeze or unfreeze is a governance proposal of the supervisor, voted by the organisations.",
        "propose it: gmchain gov propose supervision-freeze|supervision-unfreeze (an admin of the supervising organisation)";
    SUPERVISION_LOG_REGRESSED = 3407, NotVerified, FailedPrecondition,
        "`supervision.anchor_log`: the anchored audit log's head is behind, or differs at, the head anchored before: the log was truncated or rewritten.",
        "keep the log as evidence and verify it (gmchain node audit-verify / gmchain ca audit-verify); an audit log only grows";
    SUPERVISION_BAD_REASON = 3406, BadInput, InvalidArgument,
        "`supervision`: the reason is empty, longer than 512 bytes or not printable UTF-8.",
        "give a reason of 1 to 512 bytes of printable text";
    NODE_IO = 4000, BadInput, Internal,
        "A file of the node could not be read or written.",
        "check the path and its permissions; the message names the file";
    NODE_ALREADY_INITIALISED = 4001, BadInput, AlreadyExists,
        "`node init` on a data directory that already holds a store.",
        "choose another data_dir; an existing store is never overwritten";
    NODE_EMPTY_STORE = 4002, BadInput, FailedPrecondition,
        "The store holds no block.",
        "run `gmchain node init` first";
    NODE_GENESIS_INVALID = 4003, BadInput, InvalidArgument,
        "The genesis file cannot be read or is not a valid genesis of this release.",
        "the message names the field at fault (docs/formats.md, genesis)";
    NODE_GENESIS_MISMATCH = 4004, NotVerified, DataLoss,
        "The store's block 0 is not the genesis file's.",
        "the genesis file or the store was replaced; restore the right one";
    NODE_NOT_A_VALIDATOR = 4005, BadInput, InvalidArgument,
        "The node's certificate is not a genesis validator.",
        "give the certificate of a validator listed in the genesis";
    NODE_KEY_CERT_MISMATCH = 4006, BadInput, InvalidArgument,
        "The node's key is not the key of its certificate.",
        "give the key of the node's certificate";
    NODE_STORE_OPEN = 4007, BadInput, Internal,
        "RocksDB could not open the store.",
        "check that no other node process holds the data directory";
    NODE_STORAGE = 4008, BadInput, Internal,
        "A storage read or write failed.",
        "run `gmchain node verify-store`; the message names the table";
    NODE_STORE_INTEGRITY = 4009, NotVerified, DataLoss,
        "The store failed its integrity check; the node refuses to run on it.",
        "restore the store from a backup or re-sync";
    NODE_EXECUTION = 4010, BadInput, Internal,
        "Execution failed on a stored record (store unreadable, corrupt record).",
        "run `gmchain node verify-store`";
    NODE_SEAL = 4011, Unavailable, Unavailable,
        "The block could not be sealed.",
        "the message names the signer's failure; its own code decides the exit status";
    NODE_MISSING = 4012, NotVerified, DataLoss,
        "Something the store should hold is missing.",
        "run `gmchain node verify-store`";
    NODE_RECEIPT = 4013, NotVerified, Internal,
        "A receipt bundle could not be built.",
        "run `gmchain node verify-store`";
    NODE_HEIGHT_OVERFLOW = 4014, BadInput, Internal,
        "Height arithmetic overflowed.",
        "the chain reached the largest height; start a new chain";
    NODE_TX_COUNT_OVERFLOW = 4015, BadInput, Internal,
        "A block would hold more transactions than its header's count can say.",
        "lower max_txs_per_block";
    NODE_LISTEN = 4016, BadInput, Unavailable,
        "A listen address could not be bound.",
        "choose a free address, or stop the process that holds it";
    NODE_SERVER = 4017, Unavailable, Unavailable,
        "The gRPC server failed.",
        "restart the node; the message names the failure";
    NODE_SUBSCRIPTIONS_FULL = 4018, BadInput, ResourceExhausted,
        "The node serves its maximum number of block subscriptions (in all, or from this peer).",
        "retry later, or close other subscriptions";
    NODE_READ_ONLY = 4019, BadInput, PermissionDenied,
        "The public read-only listener accepts no transactions.",
        "submit over the mutual-TLS API (api.listen) with a consortium certificate";
    NODE_UNAUTHENTICATED = 4020, NotVerified, Unauthenticated,
        "The request reached the API without an authenticated consortium member.",
        "connect over mutual GM TLS with a user, admin or auditor certificate";
    NODE_TLS_CERTIFICATE = 4021, BadInput, FailedPrecondition,
        "The node's own TLS certificate is not a valid node-sign certificate of its chain.",
        "check [key].certificate or [tls].certificate: role node-sign, issued by a consortium CA, not revoked or expired";
    NODE_NOT_SINGLE_VALIDATOR = 4022, BadInput, FailedPrecondition,
        "The genesis names several validators, but this node runs the single-validator engine, which can decide alone only when it is the whole validator set.",
        "use a genesis with one validator; the BFT engine for several validators is issue 13's next step";
    NODE_CERTIFICATE = 4023, NotVerified, DataLoss,
        "A commit certificate does not decide its block under the validator set (at start-up: the tip's stored certificate; at commit: the engine's own).",
        "run `gmchain node verify-store`; restore the data directory from a backup if the store was altered";
    NODE_CUSTODIAN = 4024, BadInput, FailedPrecondition,
        "The node's [exchange] section does not make it a custodian: its blob store cannot be opened, or the node-enc certificate or key is not this node's.",
        "the message names the file or the mismatch; give the node's own node-enc certificate and key";
    NODE_NOT_SUPERVISOR = 4025, BadInput, PermissionDenied,
        "The supervision API answers only auditors of the chain's supervising organisation.",
        "connect with an auditor certificate of the supervising organisation (gmchain audit … --tls-cert)";
    NODE_TRACE_REQUEST = 4026, BadInput, InvalidArgument,
        "The trace request names an unknown kind, an empty or over-long ID, or a range outside the committed heights.",
        "kinds: cert, org, contract, dataset, lifecycle; a range from height 1 (or a time) to at most the tip";
    NODE_STORAGE_LOW = 4027, Unavailable, Unavailable,
        "Free space on a filesystem the node writes to (its data directory, its store, its blob store) is below `[storage] min_free_mib`, or an upload would take it there: the node admits no transaction or upload and neither proposes, votes nor commits blocks until space returns (nothing stored is lost).",
        "submit to another node or retry later; the operator frees space on the filesystem the message names (docs/ops/disk.md) and the node resumes by itself";
    NODE_STORAGE_STAT = 4028, BadInput, Internal,
        "The free space of a filesystem the node writes to (its data directory, its store, its blob store) cannot be read (statvfs failed) when the node starts.",
        "check that the path the message names exists and is readable by the node's user; the message gives the OS error";
    NODE_STORAGE_RESUME_UNREACHABLE = 4029, BadInput, InvalidArgument,
        "`[storage] min_free_mib + resume_margin_mib` is more than a filesystem the node writes to could ever have free: once low, the node would never resume.",
        "lower min_free_mib or resume_margin_mib below the size of the filesystem the message names (docs/ops/disk.md §1)";
    NODE_UPLOAD_IDLE = 4030, Unavailable, Unavailable,
        "An exchange upload sent nothing for 30 seconds: the custodian ended it and kept nothing of it.",
        "upload again (`gmchain data publish` sends without pauses; check the network between the client and the custodian)";
    REST_REQUEST = 4200, BadInput, InvalidArgument,
        "The REST request is malformed: its body is not JSON of the route's request, or a field, path or query parameter is unknown or not of its type.",
        "see the route in /openapi.json (docs/rest.md): bodies are proto3 JSON with bytes in base64, paths and queries take bytes in lower-case hex";
    REST_NOT_FOUND = 4201, BadInput, NotFound,
        "No REST route has this path.",
        "the routes are listed in /openapi.json and docs/rest.md; every path starts with /v1";
    REST_METHOD = 4202, BadInput, InvalidArgument,
        "The REST route does not take this HTTP method.",
        "see the route's methods in /openapi.json";
    REST_TOO_LARGE = 4203, BadInput, ResourceExhausted,
        "The REST request body is larger than the route's limit.",
        "submit one transaction per request; large payloads go through POST /v1/exchange/uploads";
    REST_MEDIA_TYPE = 4204, BadInput, InvalidArgument,
        "The REST request body is not of the media type the route takes.",
        "send Content-Type: application/json (application/octet-stream for uploads)";
    REST_TIMEOUT = 4205, Unavailable, Unavailable,
        "The node did not answer the REST request within rest.request_timeout.",
        "retry; a submitted transaction may still be committed: GET /v1/tx/{id}/receipt";
    REST_CROSS_SITE = 4206, BadInput, PermissionDenied,
        "A browser request from another site, or to a host name this listener does not serve (DNS rebinding), reached the REST gateway.",
        "call the API from the console's own origin, or from a program; on the mutual-TLS listener use an IP address, localhost, or a name in rest.allowed_hosts";
    REST_BODY_TIMEOUT = 4207, BadInput, InvalidArgument,
        "The REST request's body did not arrive within rest.request_timeout.",
        "send the whole body at once; large payloads go through POST /v1/exchange/uploads";
    REST_INTERNAL = 4208, Unavailable, Internal,
        "The REST gateway could not complete the request: the service's answer could not be read or written.",
        "retry; if it persists, report it with the node's log";
    REST_NOT_PUBLIC = 4209, BadInput, PermissionDenied,
        "The public listener does not serve this route, or a query that names a person.",
        "use the mutual-TLS API; the operator publishes raw objects with rest.public_raw = true and names with rest.public_person_names = true";
    NODE_AUDIT = 4045, NotVerified, DataLoss,
        "The node's audit log (<data dir>/audit.log) cannot be continued: an entry does not verify, a line is damaged, or the writer thread cannot start.",
        "run `gmchain node audit-verify --data-dir D --cert NODE_SIGN_CERT.pem`; keep the file as evidence, move it aside, start again";
    NODE_BACKUP_TARGET = 4046, BadInput, FailedPrecondition,
        "The backup's --out is not a new or empty directory on an existing parent.",
        "give a directory that does not exist yet (or is empty); a backup never writes into another one";
    NODE_BACKUP_FAILED = 4047, Unavailable, Internal,
        "The backup could not be completed: the checkpoint, a copy, a read or a write failed (a full disk, an I/O error); nothing was left under --out.",
        "the message names the step and the file; check free space and permissions, then back up again";
    NODE_BACKUP_BUSY = 4048, Unavailable, ResourceExhausted,
        "Another backup of this node is running.",
        "wait until it ends: a node makes one backup at a time";
    NODE_BACKUP_BLOB_CORRUPT = 4049, NotVerified, DataLoss,
        "A blob in the node's blob store no longer hashes to its name (bit rot or tampering); the backup refuses to carry it.",
        "restore the blob from an earlier backup (or have its publisher upload the payload again), then back up again";
    NODE_BACKUP_NOT_VERIFIED = 4050, NotVerified, DataLoss,
        "The backup does not verify: the manifest's signature, a file's length or SM3, a missing or unlisted file, or its chain (genesis, tip, store verification).",
        "the message names the file; this backup was altered or damaged: restore another one";
    NODE_BACKUP_SIGNER_UNTRUSTED = 4051, NotVerified, PermissionDenied,
        "The backup's manifest is signed by a node certificate the restore was not told to trust (neither the configuration's [key] certificate nor --signer-cert).",
        "check whose backup it is; to restore another node's backup onto this one, give that node's certificate with --signer-cert FILE";
    NODE_BACKUP_FORMAT = 4052, BadInput, InvalidArgument,
        "The directory is not a gmchain backup of a format, store version or chain this build restores.",
        "give the directory `gmchain node backup --out` wrote; a backup of another store version is restored by the release that wrote it";
    NODE_RESTORE_TARGET = 4053, BadInput, FailedPrecondition,
        "The data directory (or the [exchange] blob directory) to restore into exists and is not empty.",
        "restore into an empty or absent directory: move the old one aside first (the node must be stopped)";
    NODE_ADMIN_REFUSED = 4054, BadInput, PermissionDenied,
        "A process of another user connected to the node's admin socket.",
        "run `gmchain node backup` as the user the node runs as";
    NODE_ADMIN_REQUEST = 4055, BadInput, InvalidArgument,
        "The admin socket's request is not one JSON line of a known operation with its fields.",
        "use `gmchain node backup`; the protocol is in docs/ops/backup.md";
    NODE_ADMIN_UNREACHABLE = 4056, Unavailable, Unavailable,
        "The node holds its store but its admin socket (<data dir>/admin.sock) cannot be reached.",
        "check that the node runs this release and that admin.sock exists; run the command as the node's user";
    NODE_BACKUP_CANCELLED = 4057, Unavailable, Unavailable,
        "The backup or restore was interrupted: the node is stopping, or the command received SIGINT or SIGTERM; nothing was left under --out or put in place.",
        "run it again once the node runs (or without interrupting the command)";
    NODE_RESTORE_FAILED = 4058, Unavailable, Internal,
        "The restore could not be completed: a copy, a read, a write or the final rename failed (a full disk, an I/O error); nothing was put in place and the staging directories were removed.",
        "the message names the step and the file; check free space and permissions, then restore again";
    NODE_STORE_NEEDS_MIGRATION = 4060, BadInput, FailedPrecondition,
        "The store is of the previous release's layout (version 3, gmchain 0.1.0); this build reads version 4.",
        "stop the node and run `gmchain node migrate --config FILE` (it checks the tip and writes the version-4 keys in one batch)";
    NODE_PRUNED = 4061, BadInput, NotFound,
        "The height, block, transaction or receipt asked for is below what this node holds: it joined from a snapshot or prunes old blocks.",
        "ask an archive node; the message names the lowest height this node holds";
    NODE_SNAPSHOT_INVALID = 4062, NotVerified, DataLoss,
        "The snapshot does not verify: a certificate or validator-set change, the recent blocks' hash links, a state node's hash, or the file's SM3.",
        "the message names what failed; take a new snapshot from a trusted node (`gmchain node snapshot export`)";
    NODE_SNAPSHOT_WRONG_CHAIN = 4063, NotVerified, FailedPrecondition,
        "The snapshot is of another chain than the genesis file (chain ID or genesis hash).",
        "use a snapshot exported by a node of this chain, or the genesis file of the snapshot's chain";
    NODE_SNAPSHOT_FORMAT = 4064, BadInput, InvalidArgument,
        "The file is not a gmchain snapshot of a format and version this build reads, or it is truncated.",
        "export the snapshot again with this release (`gmchain node snapshot export`)";
    NODE_SNAPSHOT_SOURCE = 4065, BadInput, FailedPrecondition,
        "The store cannot be exported: it is in use, the height is not held, or the blocks the snapshot must carry were pruned.",
        "stop the node or export from a backup's DIR/store (`gmchain node backup`); choose a height between the base and the tip; export from an archive node";
    NODE_PRUNED_VALIDATOR = 4066, BadInput, FailedPrecondition,
        "The node is a validator of the current set and its configuration sets pruned mode ([storage] keep_blocks): pruned nodes do not answer sync requests below their mark, so pruning validators can strand a validator that falls behind.",
        "remove keep_blocks from the validator's [storage] section (validators are archive nodes); prune on followers only";
    NODE_RESTORED_SINGLE_VALIDATOR = 4067, BadInput, FailedPrecondition,
        "The store of a single-validator chain is marked restored (from a backup or a snapshot): no peer can show how far the backed-up instance signed, so the node does not start signing blocks on its own.",
        "if no block after the backup's tip was ever issued, or the fork is accepted, stop and run `gmchain node release-guard --config FILE --reason TEXT` (audit-logged), then start the node";
    RECEIPT_TOO_LARGE = 4100, NotVerified, InvalidArgument,
        "The file is larger than any receipt this release writes; refused before parsing.",
        "this is not a receipt gmchain wrote; obtain it again from a node";
    RECEIPT_UNSUPPORTED_FORMAT = 4101, NotVerified, InvalidArgument,
        "The file is a JSON object, but not a receipt of a format and version this release reads.",
        "use a gmchain release that reads this receipt version, or obtain the receipt again";
    RECEIPT_MALFORMED = 4102, NotVerified, InvalidArgument,
        "A field of the file cannot be decoded.",
        "the receipt file was altered or truncated; obtain it again from a node";
    RECEIPT_WRONG_CHAIN = 4103, NotVerified, FailedPrecondition,
        "The header or the transaction names another chain than the genesis file.",
        "verify against the genesis file of the receipt's chain";
    RECEIPT_SEAL_UNKNOWN_VALIDATOR = 4104, NotVerified, FailedPrecondition,
        "The seal's signer is not a validator of the genesis file.",
        "verify against the genesis file of the receipt's chain";
    RECEIPT_SEAL_NOT_PROPOSER = 4105, NotVerified, FailedPrecondition,
        "The seal's signer is a validator, but not the header's proposer.",
        "the receipt was altered; obtain it again from a node";
    RECEIPT_SEAL_SIGNATURE = 4106, NotVerified, FailedPrecondition,
        "The seal's signature does not verify with the validator's key.",
        "the receipt was altered; obtain it again from a node";
    RECEIPT_SEAL_OTHER_BLOCK = 4107, NotVerified, FailedPrecondition,
        "The seal is genuine but over another block hash than the header's.",
        "the receipt was altered; obtain it again from a node";
    RECEIPT_TX_NOT_IN_BLOCK = 4108, NotVerified, FailedPrecondition,
        "The transaction's entry hash is not at `position` under the header's transactions root.",
        "the receipt was altered; obtain it again from a node";
    RECEIPT_RESULT_NOT_IN_BLOCK = 4109, NotVerified, FailedPrecondition,
        "The receipt's hash is not at `position` under the header's receipts root.",
        "the receipt was altered; obtain it again from a node";
    RECEIPT_RESULT_OTHER_TX = 4110, NotVerified, FailedPrecondition,
        "The receipt in the block at `position` is for another transaction.",
        "the receipt was altered; obtain it again from a node";
    RECEIPT_NOT_SUCCESSFUL = 4111, NotVerified, FailedPrecondition,
        "The transaction was committed but failed.",
        "the transaction is on the chain but its call failed; the receipt names the failure code";
    RECEIPT_SIGNER_MISSING = 4112, NotVerified, FailedPrecondition,
        "The bundle carries no signer certificate.",
        "obtain the receipt again from a node (it adds the signer certificate)";
    RECEIPT_SIGNER_MISMATCH = 4113, NotVerified, FailedPrecondition,
        "The first certificate of the chain is not the transaction's sender.",
        "the receipt was altered; obtain it again from a node";
    RECEIPT_SIGNER_CHAIN = 4114, NotVerified, FailedPrecondition,
        "The signer's certificate chain is not valid at the block's time under the genesis CAs.",
        "the message names the chain error and what to do about it";
    RECEIPT_TX_SIGNATURE = 4115, NotVerified, FailedPrecondition,
        "The transaction's signature does not verify with the signer's certificate.",
        "the receipt was altered; obtain it again from a node";
    RECEIPT_NOT_AN_ATTESTATION = 4116, NotVerified, FailedPrecondition,
        "A document was given, but the transaction is not an anchoring.",
        "give --document only for an attestation receipt";
    RECEIPT_DOCUMENT_MISMATCH = 4117, NotVerified, FailedPrecondition,
        "The document's SM3 digest is not the anchored one.",
        "this document is not the one anchored; check that the file is unchanged";
    RECEIPT_BUILD = 4118, NotVerified, Internal,
        "A receipt could not be built from the node's block (a node-side inconsistency).",
        "the node's store disagrees with itself; run `gmchain node verify-store`";
    RECEIPT_CERTIFICATE = 4119, NotVerified, FailedPrecondition,
        "The block's commit certificate is not a quorum of valid precommits of the validator set for the header's hash.",
        "the receipt was altered or is of another chain; obtain it again from a node and verify against its chain's genesis file";
    RECEIPT_VALIDATOR_SET = 4120, NotVerified, FailedPrecondition,
        "The block was decided by another validator set than the genesis file's, and the receipt carries no certified chain of set changes to it.",
        "obtain a receipt that carries the chain of validator-set changes, or verify against the genesis file of the receipt's chain";
    RECEIPT_FINALITY_FORMAT = 4121, NotVerified, FailedPrecondition,
        "A version-1 seal finalises a version-2 header, or a certificate a version-1 header.",
        "the receipt was altered; obtain it again from a node";
    PKI_BAD_SUBJECT = 5000, BadInput, InvalidArgument,
        "A subject that is not an RFC 4514 distinguished name.",
        "write the subject as RFC 4514, e.g. \"CN=Alice,OU=user,O=Second Bureau\"";
    PKI_DECODE = 5001, BadInput, InvalidArgument,
        "Bytes that are not the expected DER or PEM structure.",
        "give a DER or PEM certificate, request or CRL; the message names the structure";
    PKI_WRONG_ALGORITHM = 5002, BadInput, InvalidArgument,
        "A signature algorithm other than SM2-with-SM3.",
        "gmchain accepts only SM2-with-SM3";
    PKI_NOT_SM2_KEY = 5003, BadInput, InvalidArgument,
        "A public key that is not an SM2 point.",
        "use an SM2 key (openssl genpkey -algorithm SM2, or gmchain keys generate)";
    PKI_SIGNATURE_INVALID = 5004, NotVerified, InvalidArgument,
        "A signature that does not verify.",
        "the object was altered, or signed with another user ID (default 1234567812345678)";
    PKI_SIGNER = 5005, Unavailable, Unavailable,
        "The signer failed (token error, entropy).",
        "the message names the signer's failure (token, entropy)";
    PKI_ENCODE = 5006, BadInput, Internal,
        "Encoding failed.",
        "report this: an encodable object failed to encode";
    PKI_BAD_COMMON_NAME = 5007, BadInput, InvalidArgument,
        "A common name the profile refuses.",
        "use 1-64 printable characters without control characters";
    PKI_BAD_ORGANISATION = 5008, BadInput, InvalidArgument,
        "An organisation name the profile refuses.",
        "use the organisation name exactly as registered";
    PKI_COMMON_NAME_MISSING = 5009, BadInput, InvalidArgument,
        "A request without a common name.",
        "give the request a CN";
    PKI_CSR_ROLE_CLAIM = 5010, BadInput, InvalidArgument,
        "A role the request names differs from the role being issued.",
        "issue the role the request asks for, or have a new request made";
    PKI_CSR_ORGANISATION_CLAIM = 5011, BadInput, InvalidArgument,
        "An organisation the request names differs from the one being issued.",
        "issue for the organisation the request names, or have a new request made";
    PKI_BAD_VALIDITY = 5012, BadInput, InvalidArgument,
        "A validity period that is empty or cannot be encoded.",
        "give a validity with notBefore before notAfter, within the years X.509 can encode";
    PKI_VALIDITY_OUTSIDE_ISSUER = 5013, BadInput, InvalidArgument,
        "A validity period that leaves the issuer's.",
        "shorten the validity to end before the issuer's notAfter";
    PKI_ISSUER_NOT_CA = 5014, BadInput, InvalidArgument,
        "The issuing certificate is not a CA certificate allowed to sign certificates.",
        "issue with a CA certificate (basicConstraints cA, keyCertSign)";
    PKI_ISSUER_NOT_CRL_SIGNER = 5015, BadInput, InvalidArgument,
        "The issuing certificate may not sign CRLs.",
        "sign CRLs with a CA certificate that has cRLSign";
    PKI_ISSUER_KEY_MISMATCH = 5016, BadInput, InvalidArgument,
        "The signer's key is not the issuing certificate's key.",
        "use the issuing certificate's own key (--key)";
    PKI_PATH_LENGTH = 5017, BadInput, InvalidArgument,
        "A CA certificate whose path length forbids issuing another CA.",
        "only the root issues agency CAs";
    PKI_ORGANISATION_MISMATCH = 5018, BadInput, InvalidArgument,
        "An agency CA issuing for another organisation.",
        "an agency CA issues only for its own organisation";
    PKI_ROLE_NOT_ISSUABLE = 5019, BadInput, InvalidArgument,
        "A role that cannot be issued this way (a root is self-issued with `issue_root`).",
        "create a root with `gmchain ca init`; issue agency CAs with `gmchain ca intermediate`";
    PKI_KEY_REUSE = 5020, BadInput, InvalidArgument,
        "The subject's key is the issuer's key.",
        "give the subject its own key";
    PKI_BAD_SERIAL = 5021, BadInput, InvalidArgument,
        "A serial number out of range.",
        "serial numbers are positive and at most 20 bytes";
    PKI_UNKNOWN_ROLE = 5022, BadInput, InvalidArgument,
        "A role name that is not one of gmchain's roles.",
        "use one of: org-ca, node-sign, node-enc, user, admin, auditor";
    PKI_UNKNOWN_REASON = 5023, BadInput, InvalidArgument,
        "A revocation reason name that is not a CRL reason.",
        "use an RFC 5280 reason name (keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold)";
    PKI_BAD_CRL = 5024, BadInput, InvalidArgument,
        "A CRL entry list the profile refuses.",
        "the message names the entry at fault";
    PKI_ENVELOPE = 5025, BadInput, InvalidArgument,
        "A GM/T 0009 enveloped key that cannot be opened or sealed.",
        "check the recipient key and that the envelope is unaltered";
    CERT_NO_PATH_TO_ANCHOR = 5100, NotVerified, PermissionDenied,
        "No issuer of this certificate is among the intermediates or trust anchors.",
        "pass the issuing CA certificates as intermediates and the root (or the organisation's registered CA) as trust anchor";
    CERT_PATH_TOO_LONG = 5101, NotVerified, PermissionDenied,
        "The path is longer than gmchain ever builds.",
        "gmchain chains are root → agency CA → leaf";
    CERT_SIGNATURE_INVALID = 5102, NotVerified, PermissionDenied,
        "The signature does not verify with the issuer's key.",
        "the certificate was altered, or signed with another user ID: SM2 certificates are signed with ID 1234567812345678 (OpenSSL 3.0: -sigopt distid:1234567812345678); a trust anchor can name another ID";
    CERT_EXPIRED = 5103, NotVerified, PermissionDenied,
        "The certificate expired.",
        "renew the certificate, or check the clock";
    CERT_NOT_YET_VALID = 5104, NotVerified, PermissionDenied,
        "The certificate is not valid yet.",
        "renew the certificate, or check the clock";
    CERT_NOT_A_CA = 5105, NotVerified, PermissionDenied,
        "A certificate that issues another is not a CA.",
        "only the root issues agency CAs, and agency CAs issue only leaves";
    CERT_PATH_LENGTH_EXCEEDED = 5106, NotVerified, PermissionDenied,
        "A CA with more CAs below it than its path length allows.",
        "only the root issues agency CAs, and agency CAs issue only leaves";
    CERT_KEY_USAGE = 5107, NotVerified, PermissionDenied,
        "Key usage does not allow what the certificate is used for.",
        "use the certificate issued for this role (node signing and encryption certificates are separate)";
    CERT_EXTENDED_KEY_USAGE = 5108, NotVerified, PermissionDenied,
        "Extended key usage does not allow the intended role.",
        "use the certificate issued for this role (node signing and encryption certificates are separate)";
    CERT_WRONG_ROLE = 5109, NotVerified, PermissionDenied,
        "The certificate's role (OU and key usage) is not the intended one.",
        "use the certificate issued for this role (node signing and encryption certificates are separate)";
    CERT_NAME_CHAINING = 5110, NotVerified, PermissionDenied,
        "The issuer name does not match the subject of the certificate whose key signed it.",
        "the certificate's issuer name must equal its issuer's subject byte for byte";
    CERT_UNKNOWN_CRITICAL_EXTENSION = 5111, NotVerified, PermissionDenied,
        "A critical extension gmchain does not process.",
        "reissue the certificate with a gmchain profile";
    CERT_REVOKED = 5112, NotVerified, PermissionDenied,
        "The certificate is revoked.",
        "the certificate was revoked; request a new one";
    CERT_REVOCATION_UNKNOWN = 5113, NotVerified, PermissionDenied,
        "Revocation status cannot be established; never treated as valid.",
        "fetch the issuer's current CRL (thisUpdate ≤ now < nextUpdate) and pass it";
    CERT_WRONG_ALGORITHM = 5114, NotVerified, PermissionDenied,
        "A signature algorithm other than SM2-with-SM3.",
        "gmchain accepts only SM2-with-SM3 signatures";
    CERT_ORGANISATION_MISMATCH = 5115, NotVerified, PermissionDenied,
        "A certificate below an agency CA that names another organisation.",
        "an agency CA issues only for its own organisation";
    CERT_ANCHOR_UNUSABLE = 5116, NotVerified, PermissionDenied,
        "The trust anchor cannot anchor an identity (no organisation).",
        "register as trust anchor a CA certificate whose subject has an organisation (O)";
    CERT_NOT_SPONSORED = 5117, NotVerified, PermissionDenied,
        "The certificate below a consortium anchor names an organisation the anchor does not sponsor.",
        "a genesis root certifies only its own organisation and those genesis lists in its sponsors";
    CA_IO = 6000, BadInput, Internal,
        "An I/O failure on a named file.",
        "check the path and its permissions; the message names the file";
    CA_NOT_A_CA = 6001, BadInput, InvalidArgument,
        "The directory is not a CA directory, or a newer format.",
        "give a directory made by `gmchain ca init` with this release";
    CA_EXISTS = 6002, BadInput, InvalidArgument,
        "`create` on a directory that already holds something.",
        "choose an empty or new directory";
    CA_CORRUPT = 6003, NotVerified, DataLoss,
        "A file that does not parse.",
        "restore the CA directory from its backup; the message names the file";
    CA_UNKNOWN_SERIAL = 6004, BadInput, InvalidArgument,
        "No certificate with that serial.",
        "list the issued certificates (gmchain ca list)";
    CA_SERIAL_REUSED = 6005, NotVerified, DataLoss,
        "A serial that was already used.",
        "restore the CA directory from its backup: a serial must never be issued twice";
    CA_AUDIT_BROKEN = 6006, NotVerified, DataLoss,
        "The audit log does not verify.",
        "the audit log was altered; keep it as evidence and restore from the backup";
    CA_AUDIT_HEAD_MISMATCH = 6007, NotVerified, DataLoss,
        "The audit log's head is not the expected one (truncation or rollback).",
        "the audit log was truncated or rolled back; compare with the recorded head";
    CA_AUDIT_UNSIGNED_TAIL = 6008, NotVerified, FailedPrecondition,
        "Entries after the last signed one are unsigned, and strict verification was asked for.",
        "sign the tail with the CA key (any later signed operation does) or verify without --strict";
    CA_SIGN = 6009, Unavailable, Unavailable,
        "Signing an audit entry failed.",
        "the message names the signer's failure";
    CA_RENEW_REVOKED = 6010, BadInput, InvalidArgument,
        "Renewal of a revoked certificate.",
        "a revoked certificate is not renewed; issue a new one from a new request";
    CA_RENEW_ALREADY_RENEWED = 6011, BadInput, InvalidArgument,
        "Renewal of a certificate that was already renewed.",
        "renew the newest certificate of the line";
    CA_RENEW_KEY_COMPROMISED = 6012, BadInput, InvalidArgument,
        "Renewal that would certify a key the CA recorded as compromised.",
        "have a new key generated and issue from a new request";
    CA_KEY_COMPROMISED = 6013, BadInput, InvalidArgument,
        "An issuance (`issue`, `intermediate`) that would certify a key the CA recorded as compromised.",
        "have a new key generated and issue from a new request";
    CA_COMPROMISED = 6014, BadInput, InvalidArgument,
        "Any issuance or renewal after this CA recorded the compromise of its own key.",
        "this CA may issue nothing more; set up a new CA and have it registered (identity.replace_ca)";
    CA_PKI = 6015, BadInput, InvalidArgument,
        "The PKI refused a certificate, CRL, request or envelope at a step of a CA operation.",
        "the message names the step and the PKI's reason";
    CA_NOT_ROOT = 6016, BadInput, InvalidArgument,
        "`intermediate` on a CA that is not a root: only the root issues agency CA certificates.",
        "issue agency CA certificates with the root CA's directory and key";
    CA_ROLE_NOT_ISSUED = 6017, BadInput, InvalidArgument,
        "Issuance by role of a CA certificate, which only `init` and `intermediate` make.",
        "use `gmchain ca init` or `gmchain ca intermediate` for CA certificates";
    CA_VALIDITY_ZERO = 6018, BadInput, InvalidArgument,
        "A validity period of zero days.",
        "give --validity-days of at least 1";
    CA_CRL_PERIOD_ZERO = 6019, BadInput, InvalidArgument,
        "A CRL whose next update would be now.",
        "give a CRL period of at least one hour";
    CA_ALREADY_REVOKED = 6020, BadInput, FailedPrecondition,
        "Revocation of a certificate already revoked.",
        "nothing to do; publish a CRL if none has carried it yet";
    CA_NO_ROLE = 6021, BadInput, FailedPrecondition,
        "A certificate of the index that carries no gmchain role (so no profile to renew under).",
        "issue a new certificate for the role instead of renewing";
    CA_RENEW_SUBJECT_MISMATCH = 6022, BadInput, InvalidArgument,
        "A renewal whose request names another subject than the certificate renewed.",
        "have the request made for the subject of the certificate renewed";
    CA_SERIALS_EXHAUSTED = 6023, Unavailable, Unavailable,
        "Every serial drawn was already used (a broken random source).",
        "check the random source (the token's or the system's)";
    CA_KEY_GENERATION = 6024, Unavailable, Unavailable,
        "A key pair the CA generates (a holder's, or a dual pair's encryption key) could not be.",
        "the message names the provider's failure";
    CA_ESCROW_ENCRYPT = 6025, BadInput, Internal,
        "The escrow copy of a dual pair's encryption key could not be encrypted.",
        "the message names the failure; nothing was issued";
    CA_ESCROW = 6026, BadInput, Internal,
        "The escrow store did not keep the copy of a dual pair's encryption key.",
        "check the escrow directory and its permissions; nothing was issued";
    CA_AGENCY_KEY_MISMATCH = 6027, BadInput, InvalidArgument,
        "An agency CA certificate issued for another key than the agency's CA key.",
        "give the agency CA certificate the root issued for this key";
    CA_AGENCY_NOT_CA_CERTIFICATE = 6028, BadInput, InvalidArgument,
        "An agency CA certificate that is not one (another role).",
        "give the certificate `gmchain ca intermediate` issued";
    CA_AGENCY_NOT_SIGNED_BY_ROOT = 6029, NotVerified, InvalidArgument,
        "An agency CA certificate not signed by the root given with it.",
        "give the root certificate that issued the agency CA certificate";
    CA_KEY_UNAVAILABLE = 6030, Unavailable, Unavailable,
        "A CA command refused because the CA key could not be opened (token absent, wrong PIN or passphrase): the one CA audit entry recorded unsigned. The command exits with the class of the failure that kept the key closed.",
        "make the CA key's token reachable and give its PIN or passphrase (the entry's detail says what failed); `gmchain ca audit-verify --strict` fails until a signed entry follows";
    CA_NOT_COMMITTED = 6031, BadInput, Internal,
        "A CA action recorded as done in the audit log (the entry is written ahead of the index) was not carried out: the index write that commits it failed. The refusal that follows names the entry. The exit class is that of the failed write.",
        "free space or fix the CA directory's permissions (the message names the file), then run the command again: nothing was issued, revoked or published";
    CA_NO_ENCRYPTION_PAIR = 6032, BadInput, InvalidArgument,
        "A dual pair asked for a role that has no encryption half (only node-sign, user, admin and auditor have one).",
        "issue the dual pair with the signing role: --role node-sign, user, admin or auditor";
    HSM_PROFILE_INVALID = 7000, BadInput, FailedPrecondition,
        "A profile file that cannot be read, parsed or validated.",
        "fix the profile field named; hsm-profiles/README.md documents every field";
    HSM_MODULE_NOT_FOUND = 7001, Unavailable, Unavailable,
        "The profile names a module library that is not where the resolution rule looks.",
        "install the module or set GMCHAIN_PKCS11_MODULE to its path";
    HSM_MODULE_LOAD = 7002, Unavailable, Unavailable,
        "The module library exists but cannot be loaded or initialised.",
        "check that the library is a PKCS#11 module for this machine";
    HSM_UNREACHABLE = 7003, Unavailable, Unavailable,
        "The token is gone (removed, not present) or could not be recovered; no operation was done and nothing was computed in software instead.",
        "check that the device is connected and powered, then retry";
    HSM_TOKEN_NOT_FOUND = 7004, BadInput, FailedPrecondition,
        "No slot holds a token with this label.",
        "list the tokens with `gmchain keys list-tokens`";
    HSM_TOKEN_AMBIGUOUS = 7005, BadInput, FailedPrecondition,
        "Two or more tokens carry the same label, so the label does not say which one is meant.",
        "relabel one token so that labels are unique";
    HSM_KEY_NOT_FOUND = 7006, BadInput, FailedPrecondition,
        "No key object matches the URI.",
        "list the keys with `gmchain keys list`";
    HSM_KEY_AMBIGUOUS = 7007, BadInput, FailedPrecondition,
        "A URI that matches several keys where one is needed.",
        "add object= and id= to the URI to name exactly one key";
    HSM_KEY_EXISTS = 7008, BadInput, FailedPrecondition,
        "A key label already in use on the token.",
        "choose another label or delete that key first";
    HSM_PIN_INCORRECT = 7009, BadInput, FailedPrecondition,
        "The token rejected the user PIN.",
        "check --pass-file/--pass-env; repeated failures lock the PIN";
    HSM_PIN_LOCKED = 7010, BadInput, FailedPrecondition,
        "The user PIN is locked after too many failures.",
        "the security officer must set a new user PIN (gmchain keys init-pin)";
    HSM_PIN_REQUIRED = 7011, BadInput, FailedPrecondition,
        "An operation on private objects without a PIN.",
        "pass the PIN with --pass-file or --pass-env";
    HSM_UNSUPPORTED = 7012, BadInput, FailedPrecondition,
        "The profile names no mechanism for this operation; nothing was computed in software instead.",
        "use a module whose profile names a mechanism for this operation";
    HSM_PKCS11 = 7013, BadInput, FailedPrecondition,
        "Any other PKCS#11 failure.",
        "the message names the function and its return value; run `gmchain keys check`";
    HSM_URI_INVALID = 7014, BadInput, FailedPrecondition,
        "A PKCS#11 URI that cannot be used.",
        "write the key as an RFC 7512 pkcs11: URI with token= and object= or id=";
    HSM_PUBLIC_KEY_UNAVAILABLE = 7015, BadInput, FailedPrecondition,
        "A key whose public half cannot be read or decoded per the profile.",
        "check the profile's point encoding for this module";
    HSM_INVALID_INPUT = 7016, BadInput, FailedPrecondition,
        "A request the provider refuses before reaching the token.",
        "the message names the input at fault";
    HSM_CRYPTO = 7017, NotVerified, InvalidArgument,
        "A cryptographic failure reported by the token (a signature that does not verify, a malformed ciphertext, a tag mismatch).",
        "the message names the cryptographic failure";
    HSM_KEY_CANNOT_UNWRAP = 7018, BadInput, FailedPrecondition,
        "The holder's key cannot unwrap (CKA_UNWRAP false): a GM/T 0009 envelope is opened only inside the token, by the holder's signing key with CKA_UNWRAP.",
        "generate the signing key with `gmchain keys generate --usage sign-unwrap` and have the dual pair issued for it";
    HSM_ENVELOPE_REFUSED = 7019, NotVerified, InvalidArgument,
        "The token refused a GM/T 0009 envelope: it is not sealed to the holder's key, or it was altered (C3, or the enveloped private key does not belong to its public key). No key was made.",
        "check that the envelope is the one issued with this signing key's certificate; ask the CA to issue the pair again";
    CRYPTO_USER_ID_TOO_LONG = 8000, BadInput, InvalidArgument,
        "An SM2 user ID longer than ENTL can describe.",
        "use a user ID of at most 8191 bytes (GB/T 32918.2 §5.5)";
    CRYPTO_INVALID_PUBLIC_KEY = 8001, BadInput, InvalidArgument,
        "A public key that is not a valid point of sm2p256v1.",
        "give an SM2 public key";
    CRYPTO_INVALID_PRIVATE_KEY = 8002, BadInput, InvalidArgument,
        "A private key out of range or badly encoded.",
        "give an SM2 private key";
    CRYPTO_MALFORMED_SIGNATURE = 8003, BadInput, InvalidArgument,
        "A signature that cannot be decoded (length, DER, range).",
        "give a DER SM2 signature";
    CRYPTO_SIGNATURE_INVALID = 8004, NotVerified, InvalidArgument,
        "A well-formed SM2 signature that does not verify.",
        "check the key, the message and the user ID (default 1234567812345678)";
    CRYPTO_MALFORMED_CIPHERTEXT = 8005, BadInput, InvalidArgument,
        "A ciphertext that cannot be decoded.",
        "give a DER (GM/T 0009) or C1C3C2 SM2 ciphertext";
    CRYPTO_DECRYPTION_FAILED = 8006, NotVerified, InvalidArgument,
        "SM2 decryption failed (C3 mismatch, all-zero KDF output); nothing is released.",
        "check the key and that the ciphertext is unaltered";
    CRYPTO_TAG_MISMATCH = 8007, NotVerified, InvalidArgument,
        "An AEAD tag did not verify; nothing is released.",
        "check the key, nonce and AAD, and that the data is unaltered";
    CRYPTO_INVALID_LENGTH = 8008, BadInput, InvalidArgument,
        "A field with the wrong length.",
        "the message names the field and its required length";
    CRYPTO_BAD_PADDING = 8009, NotVerified, InvalidArgument,
        "Bad SM4-CBC padding or a length that is not a multiple of the block.",
        "check the key and IV, and that the data is unaltered";
    CRYPTO_INVALID_INPUT = 8010, BadInput, InvalidArgument,
        "A request that is well-formed but outside what the standard allows.",
        "the message names the input at fault";
    CRYPTO_KEY_DECODE = 8011, BadInput, InvalidArgument,
        "A key file or key encoding that cannot be read.",
        "give a PEM SM2 key (PKCS#8 or SEC1) or an encrypted gmchain key";
    CRYPTO_KEY_DECRYPT = 8012, BadInput, InvalidArgument,
        "A wrong passphrase or a corrupted encrypted key.",
        "check --pass-file/--pass-env";
    CRYPTO_KEY_NOT_FOUND = 8013, BadInput, NotFound,
        "The key store or token has no such key.",
        "list the keys (gmchain keys list)";
    CRYPTO_KEY_STORE = 8014, BadInput, Internal,
        "A key store failure (I/O, permissions, a name already taken).",
        "the message names the file";
    CRYPTO_ENTROPY = 8015, Unavailable, Unavailable,
        "The random number source failed.",
        "check the system's or the token's random source";
    CRYPTO_UNSUPPORTED = 8016, BadInput, Unimplemented,
        "The provider does not offer this operation.",
        "use a provider (profile) that offers it";
    CRYPTO_DEVICE = 8017, Unavailable, Unavailable,
        "A failure inside a device (token removed, session lost) reported by a provider.",
        "check the device; the message names the failure";
    TLS_CREDENTIALS = 9000, BadInput, FailedPrecondition,
        "The TLS certificate and key do not make an identity (no certificate, or a key that is not the certificate's).",
        "give the node-sign (or client) certificate and the key it was issued for";
    TLS_TRUST = 9001, BadInput, FailedPrecondition,
        "No usable CA certificate to verify TLS peers with.",
        "give the consortium's root or agency CA certificate (--ca) and its CRLs (--tls-crl)";
    TLS_CONFIG = 9002, BadInput, FailedPrecondition,
        "The TLS configuration could not be built.",
        "the message names the setting";
    TLS_CERTIFICATE_REFUSED = 9003, NotVerified, Unauthenticated,
        "The peer refused this side's certificate during the TLS handshake (unknown CA, revoked, expired, wrong role).",
        "the message names the alert; ask the CA for a valid certificate of the right role";
    TLS_PEER_CERTIFICATE_REFUSED = 9004, NotVerified, Unauthenticated,
        "The peer's certificate did not verify (unknown CA, revoked, expired, wrong role, bad CertificateVerify).",
        "check --ca and --tls-crl, and that the address is a gmchain node of the consortium";
    TLS_NO_COMMON_ALGORITHM = 9005, BadInput, FailedPrecondition,
        "The peer offers no RFC 8998 suite, group or signature scheme, or not TLS 1.3.",
        "use a GM TLS 1.3 client (gmchain, or Tongsuo with TLS_SM4_GCM_SM3); plain HTTP tools go through gmchain tunnel";
    TLS_UNREACHABLE = 9006, Unavailable, Unavailable,
        "The peer could not be reached, or the connection broke during the TLS handshake.",
        "check the address and that the node runs; the message names the failure";
    SDK_NODE_STATUS = 9100, BadInput, Internal,
        "The node answered a client's request with a gRPC error that names no registry code (a node that is stopping, a request it could not parse).",
        "the message carries the node's text; an UNAVAILABLE or DEADLINE_EXCEEDED status is retried later";
    SDK_UNREADABLE_ANSWER = 9101, BadInput, DataLoss,
        "The node's answer is not a canonical encoding of what was asked (a block, transaction, receipt), or is empty where a value was due.",
        "check that the client and the node are of compatible versions; the message names the field";
    SDK_COMMIT_TIMEOUT = 9102, Unavailable, Unavailable,
        "A submitted transaction was not committed within the client's wait (no quorum of validators reachable); it may still commit.",
        "query the transaction by its id later";
    SDK_UNREACHABLE = 9103, Unavailable, Unavailable,
        "The node's listener could not be reached, or the gRPC channel over the connection failed.",
        "check the address and that the node (or its public listener, api.public_listen) runs";
    SDK_BAD_ADDRESS = 9104, BadInput, InvalidArgument,
        "The node's address is not a HOST:PORT or http:// URL that resolves.",
        "give HOST:PORT for the mutual GM TLS API or http://HOST:PORT for a public read-only listener";
    SDK_KEY_CERT_MISMATCH = 9105, BadInput, InvalidArgument,
        "The transaction signer's key is not the key of the sender certificate.",
        "give the certificate issued for this key";
}
