//! Every size and count the namespace accepts, as named constants.
//! Front doors check them at the edge too; the namespace enforces them.

/// Longest name of one directory entry (one path component).
pub const NAME_LEN_BYTES_MAX: usize = 255;
/// Longest S3 object key.
pub const KEY_LEN_BYTES_MAX: usize = 1024;
/// Longest symlink target.
pub const SYMLINK_TARGET_BYTES_MAX: usize = 4096;
/// Largest file (NFS may write up to here; Linux gets EFBIG beyond).
pub const FILE_SIZE_BYTES_MAX: u64 = 16 << 40;
/// Largest single S3 PUT (S3's own limit).
pub const PUT_SIZE_BYTES_MAX: u64 = 5 << 30;
/// Largest multipart part and object built from parts.
pub const PART_SIZE_BYTES_MAX: u64 = 5 << 30;
/// Smallest part other than the last in a multipart completion.
pub const PART_SIZE_BYTES_MIN: u64 = 5 << 20;
/// Highest part number.
pub const PART_NUMBER_MAX: u32 = 10_000;
/// Total size of `x-amz-meta-*` names and values (S3's limit).
pub const USER_METADATA_BYTES_MAX: usize = 2048;
/// Total encoded object metadata record (content headers, user metadata,
/// checksums, part layout); keeps sled values far below its blob threshold.
pub const OBJECT_METADATA_BYTES_MAX: usize = 8 << 10;
/// Hard links to one file.
pub const LINK_COUNT_MAX: u32 = 65_000;
/// Directory depth a rename loop check or key walk will follow. A directory
/// cannot be moved under one deeper than this (the loop check could not
/// conclude); files and new directories have no depth limit.
pub const DIR_DEPTH_MAX: usize = 512;
/// Entries one readdir or listing page may return.
pub const PAGE_ENTRIES_MAX: usize = 10_000;
/// Extents an object reader pins at open (about 40 bytes each); files with
/// more are read in windows that check the content generation.
pub const READER_EXTENTS_PINNED_MAX: usize = 262_144;
/// Extents freed per transaction when an unlinked file is reaped.
pub const REAP_BATCH_EXTENTS: usize = 1000;
/// Length of a bucket name (S3 rules).
pub const BUCKET_NAME_LEN_MIN: usize = 3;
/// Length of a bucket name (S3 rules).
pub const BUCKET_NAME_LEN_MAX: usize = 63;
/// Distinct part-size runs remembered for `partNumber` reads.
pub const PART_LAYOUT_RUNS_MAX: usize = 64;
/// Largest object a multipart completion may build (S3's limit).
pub const OBJECT_SIZE_BYTES_MAX: u64 = 5 << 40;
/// How long a completed upload's record answers a repeated Complete.
pub const COMPLETED_UPLOAD_RETENTION_NS: i64 = 24 * 3600 * 1_000_000_000;
/// Entries one upstream directory listing may bring in (objects plus
/// prefixes); a larger upstream directory is refused with `TooLarge`
/// rather than held in memory.
pub const UPSTREAM_DIR_ENTRIES_MAX: usize = 1_000_000;
/// New inodes made per transaction when an upstream listing is merged.
pub const UPSTREAM_MERGE_BATCH_ENTRIES: usize = 256;
/// Directories whose last upstream listing time is remembered; past this
/// the oldest half is forgotten (and listed again on next use).
pub const UPSTREAM_FRESH_DIRS_MAX: usize = 1 << 20;
/// After a failed upstream listing, how long a directory is served from
/// the cache before the upstream is asked again.
pub const UPSTREAM_DOWN_RETRY_NS: i64 = 2_000_000_000;
