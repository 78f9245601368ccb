//! The NFS edge's one mapping from the namespace's error to `nfsstat3`.
//!
//! One exhaustive `match` with no catch-all arm: a new `NsError` variant
//! does not compile until this edge decides what to send, and the table
//! test below pins every row.

use namespace::NsError;
use nfs3_types::nfs3::nfsstat3;

/// The namespace error's NFS status: one exhaustive match, no catch-all.
pub fn nfsstat(e: &NsError) -> nfsstat3 {
    use nfsstat3::*;
    match e {
        NsError::NotFound => NFS3ERR_NOENT,
        NsError::Stale => NFS3ERR_STALE,
        NsError::AlreadyExists => NFS3ERR_EXIST,
        NsError::NotEmpty => NFS3ERR_NOTEMPTY,
        NsError::NotADirectory => NFS3ERR_NOTDIR,
        NsError::IsADirectory => NFS3ERR_ISDIR,
        NsError::InvalidName(_) | NsError::InvalidArgument(_) => NFS3ERR_INVAL,
        NsError::NameTooLong | NsError::KeyTooLong => NFS3ERR_NAMETOOLONG,
        NsError::TooLarge(_) => NFS3ERR_FBIG,
        NsError::PermissionDenied => NFS3ERR_ACCES,
        NsError::NotPermitted => NFS3ERR_PERM,
        NsError::NotSync => NFS3ERR_NOT_SYNC,
        NsError::TooManyLinks => NFS3ERR_MLINK,
        NsError::NoSpace => NFS3ERR_NOSPC,
        // S3-only conditions never arise from NFS calls; if one did, the
        // request was not valid for this object.
        NsError::PreconditionFailed
        | NsError::NoSuchUpload
        | NsError::InvalidPart(_)
        | NsError::PartTooSmall(_)
        | NsError::InvalidPartOrder => NFS3ERR_INVAL,
        // Retryable: the client waits and asks again instead of failing.
        NsError::UpstreamUnavailable(_) => NFS3ERR_JUKEBOX,
        NsError::NotSupported(_) => NFS3ERR_NOTSUPP,
        NsError::Unavailable(_) | NsError::Corrupt(_) | NsError::Internal(_) => NFS3ERR_IO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_namespace_error_has_a_status() {
        assert_eq!(nfsstat(&NsError::Stale), nfsstat3::NFS3ERR_STALE);
        assert_eq!(nfsstat(&NsError::NotSync), nfsstat3::NFS3ERR_NOT_SYNC);
        assert_eq!(nfsstat(&NsError::NameTooLong), nfsstat3::NFS3ERR_NAMETOOLONG);
        assert_eq!(nfsstat(&NsError::Corrupt("x".into())), nfsstat3::NFS3ERR_IO);
        assert_eq!(nfsstat(&NsError::TooManyLinks), nfsstat3::NFS3ERR_MLINK);
    }

    /// One row per `NsError` variant (26). A variant added to the namespace
    /// fails to compile in `nfsstat` first; add its row here too.
    #[test]
    fn status_table_pins_every_variant() {
        use nfsstat3::*;
        let s = || String::from("x");
        let table: Vec<(NsError, nfsstat3)> = vec![
            (NsError::NotFound, NFS3ERR_NOENT),
            (NsError::Stale, NFS3ERR_STALE),
            (NsError::AlreadyExists, NFS3ERR_EXIST),
            (NsError::NotEmpty, NFS3ERR_NOTEMPTY),
            (NsError::NotADirectory, NFS3ERR_NOTDIR),
            (NsError::IsADirectory, NFS3ERR_ISDIR),
            (NsError::InvalidName(s()), NFS3ERR_INVAL),
            (NsError::NameTooLong, NFS3ERR_NAMETOOLONG),
            (NsError::KeyTooLong, NFS3ERR_NAMETOOLONG),
            (NsError::TooLarge(s()), NFS3ERR_FBIG),
            (NsError::InvalidArgument(s()), NFS3ERR_INVAL),
            (NsError::PermissionDenied, NFS3ERR_ACCES),
            (NsError::NotPermitted, NFS3ERR_PERM),
            (NsError::PreconditionFailed, NFS3ERR_INVAL),
            (NsError::NotSync, NFS3ERR_NOT_SYNC),
            (NsError::TooManyLinks, NFS3ERR_MLINK),
            (NsError::NoSuchUpload, NFS3ERR_INVAL),
            (NsError::InvalidPart(s()), NFS3ERR_INVAL),
            (NsError::PartTooSmall(s()), NFS3ERR_INVAL),
            (NsError::InvalidPartOrder, NFS3ERR_INVAL),
            (NsError::NoSpace, NFS3ERR_NOSPC),
            (NsError::Unavailable(s()), NFS3ERR_IO),
            (NsError::Corrupt(s()), NFS3ERR_IO),
            (NsError::Internal(s()), NFS3ERR_IO),
            (NsError::UpstreamUnavailable(s()), NFS3ERR_JUKEBOX),
            (NsError::NotSupported(s()), NFS3ERR_NOTSUPP),
        ];
        assert_eq!(table.len(), 26, "one row per NsError variant");
        for (e, want) in &table {
            assert_eq!(nfsstat(e), *want, "{e:?}");
        }
        // Every variant once: the rows' variant names are distinct.
        let mut names: Vec<String> =
            table.iter().map(|(e, _)| format!("{e:?}").split('(').next().unwrap_or_default().to_string()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), table.len(), "a variant is listed twice");
    }
}
