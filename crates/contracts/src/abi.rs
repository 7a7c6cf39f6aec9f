//! Host API v1: the `gmchain` imports of `docs/contracts.md` §2, their bounds and their fuel.
//!
//! Every host function does three things in this order: it checks its arguments (each length
//! against its bound, then each pointer range against the memory, then the form of names and
//! topic lists), it charges its fuel ([`crate::fuel`]), and only then does its work. A check
//! that fails ends the run with `CONTRACT_HOST_BOUNDS` naming the function and the argument;
//! the host never reads or writes outside a checked range.

use core::fmt;
use core::ops::Range;

use crypto::{PublicKey, Signature, UserId};
use wasmi::errors::LinkerError;
use wasmi::{Caller, Linker, Memory, StoreLimits};

use crate::error::RunError;
use crate::fuel;
use crate::host::{Host, HostError};
use crate::validate::HOST_NAMESPACE;

/// The bounds of host API v1 (`docs/contracts.md` §2). A length over its bound ends the run
/// with `CONTRACT_HOST_BOUNDS`.
pub mod bounds {
    /// A storage key (`storage_read`, `storage_write`, `storage_remove`).
    pub const KEY: u64 = 256;
    /// A stored value (`storage_write`).
    pub const VALUE: u64 = 65_536;
    /// The bytes `sm3` hashes and the message `sm2_verify` verifies.
    pub const HASHED: u64 = 1 << 20;
    /// `sm2_verify`'s public key (`04 ‖ x ‖ y`; a shorter one verifies nothing).
    pub const PUBLIC_KEY: u64 = 65;
    /// `sm2_verify`'s user ID (ENTL's limit, GB/T 32918.2 §5.5).
    pub const USER_ID: u64 = crypto::MAX_USER_ID_LEN as u64;
    /// `sm2_verify`'s DER signature.
    pub const SIGNATURE: u64 = 72;
    /// An event's name (`emit`; at least 1 byte, printable ASCII without space).
    pub const EVENT_NAME: u64 = 64;
    /// The number of an event's topics.
    pub const TOPICS: u64 = 4;
    /// One topic (at least 1 byte).
    pub const TOPIC: u64 = 64;
    /// The topic list's encoding: `u32 count ‖ (u32 len ‖ topic) × count`.
    pub const TOPICS_ENCODED: u64 = 4 + TOPICS * (4 + TOPIC);
    /// An event's data.
    pub const EVENT_DATA: u64 = 16_384;
    /// A called contract's name (`call`; at least 1 byte, UTF-8).
    pub const CONTRACT_NAME: u64 = 64;
    /// A nested call's input (`call`).
    pub const CALL_INPUT: u64 = 65_536;
    /// The return data a contract sets (`set_return`).
    pub const RETURN_DATA: u64 = 65_536;
    /// `abort`'s message.
    pub const ABORT_MESSAGE: u64 = 1_024;
}

/// What a run's store holds: the resource limits, the host, the memory once instantiated,
/// and the run's two return-data buffers.
pub(crate) struct RunState<'h> {
    pub(crate) limits: StoreLimits,
    pub(crate) host: &'h mut dyn Host,
    /// The contract's exported memory (set after instantiation; `None` reads as 0 bytes).
    pub(crate) memory: Option<Memory>,
    pub(crate) fuel_limit: u64,
    /// What `set_return` set last.
    pub(crate) return_data: Vec<u8>,
    /// The return data of the last `call`.
    pub(crate) call_return: Vec<u8>,
}

/// The interpreter error a host function ends the run with: the run's [`RunError`].
#[derive(Debug)]
pub(crate) struct Stop(pub(crate) RunError);

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl wasmi::errors::HostError for Stop {}

fn stop(error: RunError) -> wasmi::Error {
    wasmi::Error::host(Stop(error))
}

impl From<HostError> for wasmi::Error {
    fn from(e: HostError) -> wasmi::Error {
        stop(e.into())
    }
}

type Ctx<'a, 'h> = Caller<'a, RunState<'h>>;
type HostResult<T> = Result<T, wasmi::Error>;

/// Returns `len` (an `i32` read as unsigned) if it is within `bound`.
fn bounded(
    function: &'static str,
    argument: &'static str,
    len: i32,
    bound: u64,
) -> HostResult<u64> {
    let len = u64::from(len as u32);
    if len > bound {
        return Err(stop(RunError::HostBounds {
            function,
            argument,
            len,
            bound,
        }));
    }
    Ok(len)
}

fn memory_size(caller: &Ctx<'_, '_>) -> u64 {
    caller
        .data()
        .memory
        .map_or(0, |m| m.data(caller).len() as u64)
}

/// Returns the range of `len` bytes at `ptr` (an `i32` read as unsigned) if it lies inside the
/// memory.
fn range(
    caller: &Ctx<'_, '_>,
    function: &'static str,
    argument: &'static str,
    ptr: i32,
    len: u64,
) -> HostResult<Range<usize>> {
    let size = memory_size(caller);
    let start = u64::from(ptr as u32);
    let end = start + len;
    if end > size {
        return Err(stop(RunError::HostBounds {
            function,
            argument,
            len: end,
            bound: size,
        }));
    }
    // Both fit: they are at most the memory's size, which is a usize.
    Ok(start as usize..end as usize)
}

/// Charges `amount` fuel, or ends the run out of fuel (with nothing done).
fn charge(caller: &mut Ctx<'_, '_>, amount: u64) -> HostResult<()> {
    let left = caller.get_fuel()?;
    if left < amount {
        caller.set_fuel(0)?;
        return Err(stop(RunError::FuelExhausted {
            limit: caller.data().fuel_limit,
        }));
    }
    caller.set_fuel(left - amount)
}

/// Copies `bytes` to the memory at `at` (the start of a checked range of at least their
/// length).
fn write(caller: &mut Ctx<'_, '_>, at: usize, bytes: &[u8]) {
    if let Some(memory) = caller.data().memory {
        let data = memory.data_mut(&mut *caller);
        if let Some(dst) = data.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
}

/// Copies `src` to `dst` of `memory`, a checked range of the same length (a host whose answer
/// changed length between the check and the copy gets nothing copied, never a panic).
fn copy_into(memory: &mut [u8], dst: Range<usize>, src: &[u8]) {
    if let Some(dst) = memory.get_mut(dst).filter(|d| d.len() == src.len()) {
        dst.copy_from_slice(src);
    }
}

/// Returns the bytes of a checked range.
fn read(caller: &Ctx<'_, '_>, range: Range<usize>) -> Vec<u8> {
    caller
        .data()
        .memory
        .and_then(|m| m.data(caller).get(range).map(<[u8]>::to_vec))
        .unwrap_or_default()
}

fn copy_fuel(n: u64) -> u64 {
    fuel::per_64(n, fuel::COPY_PER_64_BYTES)
}

/// A length the host returns to the contract, as the `i32` of the ABI (lengths are bounded far
/// below 2³¹ by the chain's limits; a longer one would read as negative).
fn len_i32(n: usize) -> i32 {
    n as u32 as i32
}

/// Copies `answer` (of a host function with an output capacity) to `(ptr, cap)`: charges the
/// bytes copied, copies min(n, cap) of them and returns n.
fn answer(caller: &mut Ctx<'_, '_>, out: Range<usize>, answer: &[u8]) -> HostResult<i32> {
    let copied = answer.len().min(out.len());
    charge(caller, copy_fuel(copied as u64))?;
    write(caller, out.start, &answer[..copied]);
    Ok(len_i32(answer.len()))
}

fn input_len(mut caller: Ctx<'_, '_>) -> HostResult<i32> {
    charge(&mut caller, fuel::HOST_CALL)?;
    Ok(len_i32(caller.data().host.input().len()))
}

fn input_read(mut caller: Ctx<'_, '_>, ptr: i32) -> HostResult<()> {
    let n = caller.data().host.input().len() as u64;
    let out = range(&caller, "input_read", "ptr", ptr, n)?;
    charge(&mut caller, fuel::HOST_CALL + copy_fuel(n))?;
    if let Some(memory) = caller.data().memory {
        let (data, state) = memory.data_and_store_mut(&mut caller);
        copy_into(data, out, state.host.input());
    }
    Ok(())
}

fn storage_read(
    mut caller: Ctx<'_, '_>,
    key_ptr: i32,
    key_len: i32,
    val_ptr: i32,
    val_cap: i32,
) -> HostResult<i32> {
    const F: &str = "storage_read";
    let key_len = bounded(F, "key_len", key_len, bounds::KEY)?;
    let key = range(&caller, F, "key_ptr", key_ptr, key_len)?;
    let out = range(&caller, F, "val_ptr", val_ptr, u64::from(val_cap as u32))?;
    charge(
        &mut caller,
        fuel::HOST_CALL
            + fuel::STORAGE_READ
            + fuel::per_64(key_len, fuel::STORAGE_READ_PER_64_BYTES),
    )?;
    let key = read(&caller, key);
    let Some(value) = caller.data_mut().host.storage_read(&key)? else {
        return Ok(-1);
    };
    charge(
        &mut caller,
        fuel::per_64(value.len() as u64, fuel::STORAGE_READ_PER_64_BYTES),
    )?;
    answer(&mut caller, out, &value)
}

fn storage_write(
    mut caller: Ctx<'_, '_>,
    key_ptr: i32,
    key_len: i32,
    val_ptr: i32,
    val_len: i32,
) -> HostResult<()> {
    const F: &str = "storage_write";
    let key_len = bounded(F, "key_len", key_len, bounds::KEY)?;
    let val_len = bounded(F, "val_len", val_len, bounds::VALUE)?;
    let key = range(&caller, F, "key_ptr", key_ptr, key_len)?;
    let value = range(&caller, F, "val_ptr", val_ptr, val_len)?;
    charge(
        &mut caller,
        fuel::HOST_CALL + fuel::STORAGE_WRITE + (key_len + val_len) * fuel::STORAGE_WRITE_PER_BYTE,
    )?;
    let Some(memory) = caller.data().memory else {
        return Ok(());
    };
    let (data, state) = memory.data_and_store_mut(&mut caller);
    if let (Some(key), Some(value)) = (data.get(key), data.get(value)) {
        state.host.storage_write(key, value)?;
    }
    Ok(())
}

fn storage_remove(mut caller: Ctx<'_, '_>, key_ptr: i32, key_len: i32) -> HostResult<()> {
    const F: &str = "storage_remove";
    let key_len = bounded(F, "key_len", key_len, bounds::KEY)?;
    let key = range(&caller, F, "key_ptr", key_ptr, key_len)?;
    charge(
        &mut caller,
        fuel::HOST_CALL + fuel::STORAGE_REMOVE + key_len * fuel::STORAGE_REMOVE_PER_BYTE,
    )?;
    let key = read(&caller, key);
    caller.data_mut().host.storage_remove(&key)?;
    Ok(())
}

fn caller_fn(mut caller: Ctx<'_, '_>, ptr: i32, cap: i32) -> HostResult<i32> {
    let out = range(&caller, "caller", "ptr", ptr, u64::from(cap as u32))?;
    charge(&mut caller, fuel::HOST_CALL)?;
    let encoded = caller.data().host.caller();
    answer(&mut caller, out, &encoded)
}

fn caller_contract(mut caller: Ctx<'_, '_>, ptr: i32, cap: i32) -> HostResult<i32> {
    let out = range(
        &caller,
        "caller_contract",
        "ptr",
        ptr,
        u64::from(cap as u32),
    )?;
    charge(&mut caller, fuel::HOST_CALL)?;
    let name = caller.data().host.caller_contract().unwrap_or_default();
    answer(&mut caller, out, name.as_bytes())
}

fn block_height(mut caller: Ctx<'_, '_>) -> HostResult<i64> {
    charge(&mut caller, fuel::HOST_CALL)?;
    // The ABI's i64 carries the u64 bit for bit.
    Ok(caller.data().host.block_height() as i64)
}

fn block_time_ms(mut caller: Ctx<'_, '_>) -> HostResult<i64> {
    charge(&mut caller, fuel::HOST_CALL)?;
    Ok(caller.data().host.block_time_ms() as i64)
}

fn tx_id(mut caller: Ctx<'_, '_>, ptr: i32) -> HostResult<()> {
    let out = range(&caller, "tx_id", "ptr", ptr, 32)?;
    charge(&mut caller, fuel::HOST_CALL + copy_fuel(32))?;
    let id = caller.data().host.tx_id();
    write(&mut caller, out.start, &id);
    Ok(())
}

fn sm3(mut caller: Ctx<'_, '_>, ptr: i32, len: i32, out_ptr: i32) -> HostResult<()> {
    let len = bounded("sm3", "len", len, bounds::HASHED)?;
    let data = range(&caller, "sm3", "ptr", ptr, len)?;
    let out = range(&caller, "sm3", "out_ptr", out_ptr, 32)?;
    charge(
        &mut caller,
        fuel::HOST_CALL + fuel::SM3 + fuel::per_64(len, fuel::SM3_PER_64_BYTES),
    )?;
    let digest = {
        let bytes = caller
            .data()
            .memory
            .and_then(|m| m.data(&caller).get(data))
            .unwrap_or_default();
        crypto_sm::sm3::sm3(bytes)
    };
    write(&mut caller, out.start, digest.as_bytes());
    Ok(())
}

#[allow(clippy::too_many_arguments)] // the ABI's signature: four (ptr, len) pairs
fn sm2_verify(
    mut caller: Ctx<'_, '_>,
    key_ptr: i32,
    key_len: i32,
    id_ptr: i32,
    id_len: i32,
    msg_ptr: i32,
    msg_len: i32,
    sig_ptr: i32,
    sig_len: i32,
) -> HostResult<i32> {
    const F: &str = "sm2_verify";
    let key_len = bounded(F, "key_len", key_len, bounds::PUBLIC_KEY)?;
    let id_len = bounded(F, "id_len", id_len, bounds::USER_ID)?;
    let msg_len = bounded(F, "msg_len", msg_len, bounds::HASHED)?;
    let sig_len = bounded(F, "sig_len", sig_len, bounds::SIGNATURE)?;
    let key = range(&caller, F, "key_ptr", key_ptr, key_len)?;
    let id = range(&caller, F, "id_ptr", id_ptr, id_len)?;
    let msg = range(&caller, F, "msg_ptr", msg_ptr, msg_len)?;
    let sig = range(&caller, F, "sig_ptr", sig_ptr, sig_len)?;
    charge(
        &mut caller,
        fuel::HOST_CALL
            + fuel::SM2_VERIFY
            + fuel::per_64(id_len, fuel::SM3_PER_64_BYTES)
            + fuel::per_64(msg_len, fuel::SM3_PER_64_BYTES),
    )?;
    let Some(data) = caller.data().memory.map(|m| m.data(&caller)) else {
        return Ok(0);
    };
    // A key that is not 65 bytes `04 ‖ x ‖ y` or not a curve point, and a signature that is
    // not strict DER, verify nothing (0); GB/T 32918.2 §7.1 checks the rest.
    let verified = (|| {
        let key = PublicKey::from_uncompressed(data.get(key)?).ok()?;
        let id = UserId::new(data.get(id)?).ok()?;
        let sig = Signature::from_der(data.get(sig)?).ok()?;
        crypto_sm::sm2::verify(&key, &id, data.get(msg)?, &sig).ok()
    })();
    Ok(i32::from(verified.is_some()))
}

/// Checks an event name: printable ASCII without space (its length is already bounded).
fn event_name(bytes: &[u8]) -> HostResult<String> {
    let invalid = |reason| {
        stop(RunError::HostArgument {
            function: "emit",
            argument: "name_len",
            reason,
        })
    };
    if bytes.is_empty() {
        return Err(invalid("is 0: an event name has 1 to 64 bytes"));
    }
    if !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(stop(RunError::HostArgument {
            function: "emit",
            argument: "name_ptr",
            reason: "is not printable ASCII without space",
        }));
    }
    Ok(bytes.iter().map(|&b| char::from(b)).collect())
}

/// Decodes the canonical topic list `u32 count ‖ (u32 len ‖ topic) × count` (big-endian), at
/// most [`bounds::TOPICS`] topics of 1 to [`bounds::TOPIC`] bytes, nothing after the last.
fn topics(mut bytes: &[u8]) -> HostResult<Vec<Vec<u8>>> {
    let malformed = |reason| {
        stop(RunError::HostArgument {
            function: "emit",
            argument: "topics_ptr",
            reason,
        })
    };
    let u32_be = |bytes: &mut &[u8]| -> Option<u64> {
        let (head, rest) = bytes.split_first_chunk::<4>()?;
        *bytes = rest;
        Some(u64::from(u32::from_be_bytes(*head)))
    };
    let count = u32_be(&mut bytes).ok_or_else(|| malformed("does not start with a u32 count"))?;
    if count > bounds::TOPICS {
        return Err(stop(RunError::HostBounds {
            function: "emit",
            argument: "topic count",
            len: count,
            bound: bounds::TOPICS,
        }));
    }
    let mut topics = Vec::new();
    for _ in 0..count {
        let len = u32_be(&mut bytes).ok_or_else(|| malformed("ends inside a topic's length"))?;
        if len > bounds::TOPIC {
            return Err(stop(RunError::HostBounds {
                function: "emit",
                argument: "topic length",
                len,
                bound: bounds::TOPIC,
            }));
        }
        if len == 0 {
            return Err(malformed(
                "holds an empty topic (a topic has 1 to 64 bytes)",
            ));
        }
        let (topic, rest) = bytes
            .split_at_checked(len as usize)
            .ok_or_else(|| malformed("ends inside a topic"))?;
        topics.push(topic.to_vec());
        bytes = rest;
    }
    if !bytes.is_empty() {
        return Err(malformed("has bytes after the last topic"));
    }
    Ok(topics)
}

fn emit(
    mut caller: Ctx<'_, '_>,
    name_ptr: i32,
    name_len: i32,
    topics_ptr: i32,
    topics_len: i32,
    data_ptr: i32,
    data_len: i32,
) -> HostResult<()> {
    const F: &str = "emit";
    let name_len = bounded(F, "name_len", name_len, bounds::EVENT_NAME)?;
    let topics_len = bounded(F, "topics_len", topics_len, bounds::TOPICS_ENCODED)?;
    let data_len = bounded(F, "data_len", data_len, bounds::EVENT_DATA)?;
    let name = range(&caller, F, "name_ptr", name_ptr, name_len)?;
    let topics_at = range(&caller, F, "topics_ptr", topics_ptr, topics_len)?;
    let data = range(&caller, F, "data_ptr", data_ptr, data_len)?;
    let name = event_name(&read(&caller, name))?;
    let topic_list = topics(&read(&caller, topics_at))?;
    charge(
        &mut caller,
        fuel::HOST_CALL + fuel::EMIT + (name_len + topics_len + data_len) * fuel::EMIT_PER_BYTE,
    )?;
    let data = read(&caller, data);
    caller.data_mut().host.emit(&name, topic_list, data)?;
    Ok(())
}

fn call(
    mut caller: Ctx<'_, '_>,
    name_ptr: i32,
    name_len: i32,
    input_ptr: i32,
    input_len: i32,
) -> HostResult<i32> {
    const F: &str = "call";
    let name_len = bounded(F, "name_len", name_len, bounds::CONTRACT_NAME)?;
    let input_len = bounded(F, "input_len", input_len, bounds::CALL_INPUT)?;
    let name = range(&caller, F, "name_ptr", name_ptr, name_len)?;
    let input = range(&caller, F, "input_ptr", input_ptr, input_len)?;
    let name = String::from_utf8(read(&caller, name)).map_err(|_| {
        stop(RunError::HostArgument {
            function: F,
            argument: "name_ptr",
            reason: "is not UTF-8",
        })
    })?;
    if name.is_empty() {
        return Err(stop(RunError::HostArgument {
            function: F,
            argument: "name_len",
            reason: "is 0: a contract name has 1 to 64 bytes",
        }));
    }
    charge(
        &mut caller,
        fuel::HOST_CALL + fuel::CALL + copy_fuel(name_len + input_len),
    )?;
    let input = read(&caller, input);
    // The callee draws on what this run has left; its use is charged here afterwards.
    let left = caller.get_fuel()?;
    let result = caller.data_mut().host.call(&name, &input, left)?;
    charge(&mut caller, result.fuel_used)?;
    caller.data_mut().call_return = result.return_data;
    Ok(if result.ok { 0 } else { 1 })
}

fn return_data_len(mut caller: Ctx<'_, '_>) -> HostResult<i32> {
    charge(&mut caller, fuel::HOST_CALL)?;
    Ok(len_i32(caller.data().call_return.len()))
}

fn return_data_read(mut caller: Ctx<'_, '_>, ptr: i32) -> HostResult<()> {
    let n = caller.data().call_return.len() as u64;
    let out = range(&caller, "return_data_read", "ptr", ptr, n)?;
    charge(&mut caller, fuel::HOST_CALL + copy_fuel(n))?;
    if let Some(memory) = caller.data().memory {
        let (data, state) = memory.data_and_store_mut(&mut caller);
        copy_into(data, out, &state.call_return);
    }
    Ok(())
}

fn set_return(mut caller: Ctx<'_, '_>, ptr: i32, len: i32) -> HostResult<()> {
    let len = bounded("set_return", "len", len, bounds::RETURN_DATA)?;
    let data = range(&caller, "set_return", "ptr", ptr, len)?;
    charge(
        &mut caller,
        fuel::HOST_CALL + len * fuel::SET_RETURN_PER_BYTE,
    )?;
    caller.data_mut().return_data = read(&caller, data);
    Ok(())
}

fn abort(mut caller: Ctx<'_, '_>, msg_ptr: i32, msg_len: i32) -> HostResult<()> {
    let len = bounded("abort", "msg_len", msg_len, bounds::ABORT_MESSAGE)?;
    let msg = range(&caller, "abort", "msg_ptr", msg_ptr, len)?;
    charge(&mut caller, fuel::HOST_CALL + copy_fuel(len))?;
    let message = String::from_utf8_lossy(&read(&caller, msg)).into_owned();
    Err(stop(RunError::Aborted { message }))
}

/// The names of host API v1, in the order of `docs/contracts.md` §2.
pub const HOST_FUNCTIONS: [&str; 18] = [
    "input_len",
    "input_read",
    "storage_read",
    "storage_write",
    "storage_remove",
    "caller",
    "caller_contract",
    "block_height",
    "block_time_ms",
    "tx_id",
    "sm3",
    "sm2_verify",
    "emit",
    "call",
    "return_data_len",
    "return_data_read",
    "set_return",
    "abort",
];

/// Defines host API v1 in `linker`.
pub(crate) fn link(linker: &mut Linker<RunState<'_>>) -> Result<(), LinkerError> {
    let m = HOST_NAMESPACE;
    linker
        .func_wrap(m, "input_len", input_len)?
        .func_wrap(m, "input_read", input_read)?
        .func_wrap(m, "storage_read", storage_read)?
        .func_wrap(m, "storage_write", storage_write)?
        .func_wrap(m, "storage_remove", storage_remove)?
        .func_wrap(m, "caller", caller_fn)?
        .func_wrap(m, "caller_contract", caller_contract)?
        .func_wrap(m, "block_height", block_height)?
        .func_wrap(m, "block_time_ms", block_time_ms)?
        .func_wrap(m, "tx_id", tx_id)?
        .func_wrap(m, "sm3", sm3)?
        .func_wrap(m, "sm2_verify", sm2_verify)?
        .func_wrap(m, "emit", emit)?
        .func_wrap(m, "call", call)?
        .func_wrap(m, "return_data_len", return_data_len)?
        .func_wrap(m, "return_data_read", return_data_read)?
        .func_wrap(m, "set_return", set_return)?
        .func_wrap(m, "abort", abort)?;
    Ok(())
}
