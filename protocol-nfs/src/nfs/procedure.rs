//! The NFSv3 procedures (RFC 1813 §3.3) as a closed set: the call's
//! procedure number is parsed once into a [`Proc`], and everything that
//! depends on which procedure it is (dispatch, the duplicate request
//! cache, log and metric labels) asks the `Proc`, never the number.

/// An NFSv3 procedure, numbered as on the wire.
///
/// A number with no variant is answered `PROC_UNAVAIL` by the caller of
/// [`Proc::from_u32`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proc {
    /// 0: does nothing (pings).
    Null = 0,
    /// 1: attributes of a handle.
    Getattr = 1,
    /// 2: changes attributes (mode, owner, size, times).
    Setattr = 2,
    /// 3: a name in a directory → handle.
    Lookup = 3,
    /// 4: the access a caller has.
    Access = 4,
    /// 5: a symlink's target.
    Readlink = 5,
    /// 6: reads file bytes.
    Read = 6,
    /// 7: writes file bytes.
    Write = 7,
    /// 8: makes a file.
    Create = 8,
    /// 9: makes a directory.
    Mkdir = 9,
    /// 10: makes a symlink.
    Symlink = 10,
    /// 11: makes a device, socket or FIFO (refused: `NOTSUPP`).
    Mknod = 11,
    /// 12: removes a non-directory.
    Remove = 12,
    /// 13: removes an empty directory.
    Rmdir = 13,
    /// 14: renames.
    Rename = 14,
    /// 15: makes a hard link.
    Link = 15,
    /// 16: lists a directory (names and ids).
    Readdir = 16,
    /// 17: lists a directory with attributes and handles.
    Readdirplus = 17,
    /// 18: space and file counts.
    Fsstat = 18,
    /// 19: static file system properties (transfer sizes).
    Fsinfo = 19,
    /// 20: POSIX pathconf values.
    Pathconf = 20,
    /// 21: makes unstable writes durable.
    Commit = 21,
}

impl Proc {
    /// Every procedure, in wire-number order (`ALL[n]` is number `n`).
    pub const ALL: [Proc; 22] = [
        Proc::Null,
        Proc::Getattr,
        Proc::Setattr,
        Proc::Lookup,
        Proc::Access,
        Proc::Readlink,
        Proc::Read,
        Proc::Write,
        Proc::Create,
        Proc::Mkdir,
        Proc::Symlink,
        Proc::Mknod,
        Proc::Remove,
        Proc::Rmdir,
        Proc::Rename,
        Proc::Link,
        Proc::Readdir,
        Proc::Readdirplus,
        Proc::Fsstat,
        Proc::Fsinfo,
        Proc::Pathconf,
        Proc::Commit,
    ];

    /// The procedure numbered `n`, or `None` (answered `PROC_UNAVAIL`).
    pub fn from_u32(n: u32) -> Option<Proc> {
        Self::ALL.get(usize::try_from(n).ok()?).copied()
    }

    /// The wire number.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// The RFC 1813 name: the log field and the metrics `proc` label (a
    /// closed set).
    pub fn name(self) -> &'static str {
        match self {
            Proc::Null => "NULL",
            Proc::Getattr => "GETATTR",
            Proc::Setattr => "SETATTR",
            Proc::Lookup => "LOOKUP",
            Proc::Access => "ACCESS",
            Proc::Readlink => "READLINK",
            Proc::Read => "READ",
            Proc::Write => "WRITE",
            Proc::Create => "CREATE",
            Proc::Mkdir => "MKDIR",
            Proc::Symlink => "SYMLINK",
            Proc::Mknod => "MKNOD",
            Proc::Remove => "REMOVE",
            Proc::Rmdir => "RMDIR",
            Proc::Rename => "RENAME",
            Proc::Link => "LINK",
            Proc::Readdir => "READDIR",
            Proc::Readdirplus => "READDIRPLUS",
            Proc::Fsstat => "FSSTAT",
            Proc::Fsinfo => "FSINFO",
            Proc::Pathconf => "PATHCONF",
            Proc::Commit => "COMMIT",
        }
    }

    /// Whether running a retransmission again gives the same answer. The
    /// others are tracked by the duplicate request cache, which replays
    /// their first reply (a re-run CREATE would answer `EXIST`, a re-run
    /// REMOVE `NOENT`). No catch-all arm: a new procedure must decide.
    pub fn is_idempotent(self) -> bool {
        match self {
            Proc::Null
            | Proc::Getattr
            | Proc::Lookup
            | Proc::Access
            | Proc::Readlink
            | Proc::Read
            | Proc::Readdir
            | Proc::Readdirplus
            | Proc::Fsstat
            | Proc::Fsinfo
            | Proc::Pathconf => true,
            Proc::Setattr
            | Proc::Write
            | Proc::Create
            | Proc::Mkdir
            | Proc::Symlink
            | Proc::Mknod
            | Proc::Remove
            | Proc::Rmdir
            | Proc::Rename
            | Proc::Link
            | Proc::Commit => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_unknown_ones_are_none() {
        for (n, p) in Proc::ALL.iter().enumerate() {
            assert_eq!(p.number() as usize, n);
            assert_eq!(Proc::from_u32(n as u32), Some(*p));
        }
        assert_eq!(Proc::from_u32(22), None);
        assert_eq!(Proc::from_u32(u32::MAX), None);
    }

    /// The table every property is pinned by: number, name, idempotent.
    #[test]
    fn every_procedure_has_its_name_and_cache_policy() {
        let table: [(u32, &str, bool); 22] = [
            (0, "NULL", true),
            (1, "GETATTR", true),
            (2, "SETATTR", false),
            (3, "LOOKUP", true),
            (4, "ACCESS", true),
            (5, "READLINK", true),
            (6, "READ", true),
            (7, "WRITE", false),
            (8, "CREATE", false),
            (9, "MKDIR", false),
            (10, "SYMLINK", false),
            (11, "MKNOD", false),
            (12, "REMOVE", false),
            (13, "RMDIR", false),
            (14, "RENAME", false),
            (15, "LINK", false),
            (16, "READDIR", true),
            (17, "READDIRPLUS", true),
            (18, "FSSTAT", true),
            (19, "FSINFO", true),
            (20, "PATHCONF", true),
            (21, "COMMIT", false),
        ];
        for (n, name, idempotent) in table {
            let p = Proc::from_u32(n).expect("a known procedure");
            assert_eq!((p.name(), p.is_idempotent()), (name, idempotent), "procedure {n}");
        }
    }
}
