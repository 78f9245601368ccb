//! Bounded decoding of NFSv3 and MOUNT arguments.
//!
//! `nfs3_types`' `Unpack` allocates whatever length a request claims
//! before reading it, so arguments are decoded here with
//! [`XdrReader`], which checks every length against a limit and against
//! what remains of the record first. Replies are built from `nfs3_types`
//! structs and packed with its (safe) `Pack`.

use crate::rpc::xdr::{XdrError, XdrReader};
use crate::rpc::AcceptStat;

/// Arguments that do not decode are answered `GARBAGE_ARGS` (the
/// connection is kept), so a procedure decodes with `?`.
impl From<XdrError> for AcceptStat {
    fn from(_: XdrError) -> Self {
        AcceptStat::GarbageArgs
    }
}

/// Largest handle accepted by the decoder; anything over 64 bytes is then
/// answered `NFS3ERR_BADHANDLE` rather than `GARBAGE_ARGS`.
pub const FH_DECODE_BYTES_MAX: usize = 128;
/// Largest name accepted by the decoder; over 255 bytes is then answered
/// `NFS3ERR_NAMETOOLONG`.
pub const NAME_DECODE_BYTES_MAX: usize = 1024;
/// Longest symlink target (as the namespace allows).
pub const SYMLINK_DECODE_BYTES_MAX: usize = namespace::limits::SYMLINK_TARGET_BYTES_MAX;
/// Largest WRITE payload: wtmax.
pub const WRITE_BYTES_MAX: usize = 1 << 20;
/// MOUNT's `MNTPATHLEN`.
pub const MOUNT_PATH_BYTES_MAX: usize = 1024;

/// A time from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time {
    /// Seconds since the epoch.
    pub seconds: u32,
    /// Nanoseconds.
    pub nseconds: u32,
}

/// `set_atime` / `set_mtime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    /// Leave it.
    DontChange,
    /// The server's clock.
    ServerTime,
    /// The client's value.
    ClientTime(Time),
}

/// `sattr3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sattr {
    /// New mode.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size.
    pub size: Option<u64>,
    /// New atime.
    pub atime: SetTime,
    /// New mtime.
    pub mtime: SetTime,
}

/// `diropargs3`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirOp {
    /// The directory's handle bytes.
    pub dir: Vec<u8>,
    /// The name (validated later).
    pub name: Vec<u8>,
}

/// `createhow3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateHow {
    /// UNCHECKED with attributes.
    Unchecked(Sattr),
    /// GUARDED with attributes.
    Guarded(Sattr),
    /// EXCLUSIVE with its verifier.
    Exclusive([u8; 8]),
}

/// MKNOD's file type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MknodType {
    /// Character or block device.
    Device,
    /// Socket or FIFO.
    Special,
    /// Regular file, directory, symlink or unknown: `NFS3ERR_BADTYPE`.
    Bad,
}

/// A decoding cursor over a procedure's arguments.
pub struct Args<'a>(pub XdrReader<'a>);

impl<'a> Args<'a> {
    /// Arguments starting at `offset` of `record`.
    pub fn new(record: &'a [u8], offset: usize) -> Self {
        Args(XdrReader::new(&record[offset.min(record.len())..]))
    }
    /// `nfs_fh3`.
    pub fn fh(&mut self) -> Result<Vec<u8>, XdrError> {
        Ok(self.0.opaque(FH_DECODE_BYTES_MAX)?.to_vec())
    }
    /// `filename3`.
    pub fn name(&mut self) -> Result<Vec<u8>, XdrError> {
        Ok(self.0.opaque(NAME_DECODE_BYTES_MAX)?.to_vec())
    }
    /// `diropargs3`.
    pub fn dirop(&mut self) -> Result<DirOp, XdrError> {
        Ok(DirOp { dir: self.fh()?, name: self.name()? })
    }
    /// u32.
    pub fn u32(&mut self) -> Result<u32, XdrError> {
        self.0.u32()
    }
    /// u64.
    pub fn u64(&mut self) -> Result<u64, XdrError> {
        self.0.u64()
    }
    /// 8 opaque bytes (verifiers).
    pub fn verf(&mut self) -> Result<[u8; 8], XdrError> {
        self.0.fixed::<8>()
    }
    /// `nfstime3`.
    pub fn time(&mut self) -> Result<Time, XdrError> {
        Ok(Time { seconds: self.0.u32()?, nseconds: self.0.u32()? })
    }
    /// A discriminated optional u32.
    fn opt_u32(&mut self) -> Result<Option<u32>, XdrError> {
        Ok(if self.0.bool()? { Some(self.0.u32()?) } else { None })
    }
    fn set_time(&mut self) -> Result<SetTime, XdrError> {
        match self.0.u32()? {
            0 => Ok(SetTime::DontChange),
            1 => Ok(SetTime::ServerTime),
            2 => Ok(SetTime::ClientTime(self.time()?)),
            _ => Err(XdrError("bad time_how")),
        }
    }
    /// `sattr3`.
    pub fn sattr(&mut self) -> Result<Sattr, XdrError> {
        let mode = self.opt_u32()?;
        let uid = self.opt_u32()?;
        let gid = self.opt_u32()?;
        let size = if self.0.bool()? { Some(self.0.u64()?) } else { None };
        Ok(Sattr { mode, uid, gid, size, atime: self.set_time()?, mtime: self.set_time()? })
    }
    /// `sattrguard3`.
    pub fn guard(&mut self) -> Result<Option<Time>, XdrError> {
        Ok(if self.0.bool()? { Some(self.time()?) } else { None })
    }
    /// `createhow3`.
    pub fn create_how(&mut self) -> Result<CreateHow, XdrError> {
        match self.0.u32()? {
            0 => Ok(CreateHow::Unchecked(self.sattr()?)),
            1 => Ok(CreateHow::Guarded(self.sattr()?)),
            2 => Ok(CreateHow::Exclusive(self.verf()?)),
            _ => Err(XdrError("bad createmode3")),
        }
    }
    /// `mknoddata3`, reduced to what the server does with it.
    pub fn mknod(&mut self) -> Result<MknodType, XdrError> {
        match self.0.u32()? {
            3 | 4 => {
                self.sattr()?;
                self.0.u32()?;
                self.0.u32()?;
                Ok(MknodType::Device)
            }
            6 | 7 => {
                self.sattr()?;
                Ok(MknodType::Special)
            }
            _ => Ok(MknodType::Bad),
        }
    }
    /// WRITE's data (at most wtmax).
    pub fn write_data(&mut self) -> Result<&'a [u8], XdrError> {
        self.0.opaque(WRITE_BYTES_MAX)
    }
    /// SYMLINK's target.
    pub fn symlink_target(&mut self) -> Result<Vec<u8>, XdrError> {
        Ok(self.0.opaque(SYMLINK_DECODE_BYTES_MAX)?.to_vec())
    }
    /// MOUNT's `dirpath`.
    pub fn mount_path(&mut self) -> Result<Vec<u8>, XdrError> {
        Ok(self.0.opaque(MOUNT_PATH_BYTES_MAX)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::xdr::XdrWriter;

    #[test]
    fn sattr_and_create_decode() {
        let mut w = XdrWriter::default();
        w.u32(1).u32(0o640); // mode
        w.u32(0); // uid
        w.u32(1).u32(100); // gid
        w.u32(1).u32(0).u32(4096); // size
        w.u32(1); // atime = server
        w.u32(2).u32(5).u32(6); // mtime = client
        let mut a = Args::new(&w.buf, 0);
        let s = a.sattr().unwrap();
        assert_eq!(s.mode, Some(0o640));
        assert_eq!(s.uid, None);
        assert_eq!(s.gid, Some(100));
        assert_eq!(s.size, Some(4096));
        assert_eq!(s.atime, SetTime::ServerTime);
        assert_eq!(s.mtime, SetTime::ClientTime(Time { seconds: 5, nseconds: 6 }));
        let mut w = XdrWriter::default();
        w.u32(2).u32(0x01020304).u32(0x05060708);
        assert_eq!(Args::new(&w.buf, 0).create_how().unwrap(), CreateHow::Exclusive([1, 2, 3, 4, 5, 6, 7, 8]));
    }

    #[test]
    fn lying_lengths_are_refused_before_allocation() {
        let mut w = XdrWriter::default();
        w.u32(0xFFFF_FFF0); // a write claiming 4 GiB in a 4-byte record
        assert!(Args::new(&w.buf, 0).write_data().is_err());
        let mut w = XdrWriter::default();
        w.u32(200).u32(0);
        assert!(Args::new(&w.buf, 0).fh().is_err(), "over the decode bound");
        let mut w = XdrWriter::default();
        w.u32(7); // bad bool
        assert!(Args::new(&w.buf, 0).guard().is_err());
        assert!(Args::new(&[], 10).u32().is_err(), "offset past the end");
    }
}
