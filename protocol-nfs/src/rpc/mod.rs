//! ONC-RPC (RFC 5531) over TCP.

pub mod call;
pub mod record;
pub mod xdr;

pub use call::{decode_call, AcceptStat, AuthStat, Call, CallError, Credential, Reply};
pub use record::{frame_reply, read_record, RecordError, RECORD_BYTES_MAX};
