//! POSIX permission checks, shared by both front doors so that S3 cannot
//! bypass what NFS users set (and the reverse).

use crate::record::{Inode, Kind};
use crate::{NsError, NsResult};

/// Read permission bit.
pub const R: u32 = 4;
/// Write permission bit.
pub const W: u32 = 2;
/// Execute / search permission bit.
pub const X: u32 = 1;

/// Who is asking: an NFS AUTH_SYS credential (after squashing) or the
/// identity an S3 access key maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Caller {
    /// The superuser.
    pub fn root() -> Self {
        Caller { uid: 0, gid: 0, groups: Vec::new() }
    }

    /// An ordinary user with no supplementary groups.
    pub fn user(uid: u32, gid: u32) -> Self {
        Caller { uid, gid, groups: Vec::new() }
    }

    /// Whether the caller is root.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether the caller belongs to `gid`.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// The subset of `want` (R|W|X) the caller has on `inode`.
pub fn granted(caller: &Caller, inode: &Inode, want: u32) -> u32 {
    if caller.is_root() {
        // Root may read and write anything; it may execute a file only if
        // some execute bit is set, and always search a directory.
        let x_ok = inode.kind == Kind::Dir || inode.mode & 0o111 != 0;
        return want & (R | W | if x_ok { X } else { 0 });
    }
    let bits = if caller.uid == inode.uid {
        (inode.mode >> 6) & 7
    } else if caller.in_group(inode.gid) {
        (inode.mode >> 3) & 7
    } else {
        inode.mode & 7
    };
    bits & want
}

/// Fails with `PermissionDenied` unless the caller has all of `want`.
pub fn check(caller: &Caller, inode: &Inode, want: u32) -> NsResult<()> {
    if granted(caller, inode, want) == want {
        Ok(())
    } else {
        Err(NsError::PermissionDenied)
    }
}

/// Check for reading or writing file data. Like Linux nfsd, the owner may
/// always read and write their own file: NFSv3 has no open, so a file
/// created with mode 0444 must still take the data written right after.
pub fn check_data(caller: &Caller, inode: &Inode, want: u32) -> NsResult<()> {
    if caller.uid == inode.uid {
        return Ok(());
    }
    check(caller, inode, want)
}

/// Sticky directories: only the owner of the entry, the owner of the
/// directory or root may remove or rename an entry.
pub fn check_sticky(caller: &Caller, dir: &Inode, victim: &Inode) -> NsResult<()> {
    if dir.mode & 0o1000 == 0 || caller.is_root() || caller.uid == dir.uid || caller.uid == victim.uid {
        Ok(())
    } else {
        Err(NsError::PermissionDenied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: Kind, mode: u32, uid: u32, gid: u32) -> Inode {
        Inode {
            ino: 9,
            kind,
            mode,
            uid,
            gid,
            nlink: 1,
            size: 0,
            atime: 0,
            mtime: 0,
            ctime: 0,
            generation: 0,
            parent: 0,
            entries: 0,
            next_cookie: 0,
            content_gen: 0,
            flags: 0,
            target: vec![],
            verifier: None,
        }
    }

    #[test]
    fn owner_group_other_and_root() {
        let f = node(Kind::File, 0o640, 100, 50);
        assert_eq!(granted(&Caller::user(100, 1), &f, R | W | X), R | W);
        assert_eq!(granted(&Caller::user(7, 50), &f, R | W | X), R);
        let supp = Caller { uid: 7, gid: 1, groups: vec![50] };
        assert_eq!(granted(&supp, &f, R | W), R, "supplementary groups count");
        assert_eq!(granted(&Caller::user(7, 1), &f, R | W | X), 0);
        assert_eq!(granted(&Caller::root(), &f, R | W | X), R | W, "root cannot exec a non-executable file");
        let d = node(Kind::Dir, 0o700, 100, 50);
        assert_eq!(granted(&Caller::root(), &d, R | W | X), R | W | X);
        // owner class wins even when group or other would grant more
        let odd = node(Kind::File, 0o077, 100, 50);
        assert_eq!(granted(&Caller::user(100, 50), &odd, R), 0);
    }

    #[test]
    fn data_owner_override_and_sticky() {
        let f = node(Kind::File, 0o444, 100, 50);
        check_data(&Caller::user(100, 1), &f, W).unwrap();
        assert!(check_data(&Caller::user(101, 1), &f, W).is_err());
        let tmp = node(Kind::Dir, 0o1777, 0, 0);
        let mine = node(Kind::File, 0o644, 100, 1);
        check_sticky(&Caller::user(100, 1), &tmp, &mine).unwrap();
        assert!(check_sticky(&Caller::user(101, 1), &tmp, &mine).is_err());
        check_sticky(&Caller::root(), &tmp, &mine).unwrap();
    }
}
