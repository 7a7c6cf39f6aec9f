//! Data exchange and sharing between agencies (issue 15): for now the payload format of a
//! shared dataset's version, [`payload`]: chunked SM4-GCM under a fresh data key, streamed in
//! bounded memory, each chunk verified before it is released (`docs/formats.md` §8).

pub mod payload;
