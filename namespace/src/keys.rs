//! Key layouts of every tree. Integers are big-endian and fixed width so
//! byte order is numeric order.

/// `inodes`, `objmeta`, `orphans`, `chunk_refs`: one id.
pub fn id(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// `dentries`: parent ‖ name ‖ '/' for directories. The trailing slash makes
/// a scan of one directory come out in S3 key order (`a-c` < `a.d` < `a/`).
pub fn dentry(parent: u64, name: &[u8], is_dir: bool) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + name.len());
    k.extend_from_slice(&parent.to_be_bytes());
    k.extend_from_slice(name);
    if is_dir {
        k.push(b'/');
    }
    k
}

/// Two big-endian u64s: `dirscan` (dir ‖ cookie), `extents` (ino ‖ offset),
/// `gc_chunks` (not-before ms ‖ chunk).
pub fn pair(a: u64, b: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

/// Decodes a [`pair`] key.
pub fn unpair(k: &[u8]) -> (u64, u64) {
    assert_eq!(k.len(), 16, "pair keys are 16 bytes");
    (u64::from_be_bytes(k[..8].try_into().expect("8")), u64::from_be_bytes(k[8..].try_into().expect("8")))
}

/// `mpu_parts`: upload id ‖ part number.
pub fn part(upload: &[u8; 16], part: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(upload);
    k[16..].copy_from_slice(&part.to_be_bytes());
    k
}

/// `mpu_by_key`: bucket ‖ key ‖ 0x00 ‖ created ‖ upload id. NUL never occurs
/// in a key, so all uploads of one key are contiguous and sorted by time.
pub fn upload_by_key(bucket: u64, key: &[u8], created: i64, upload: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len() + 1 + 8 + 16);
    k.extend_from_slice(&bucket.to_be_bytes());
    k.extend_from_slice(key);
    k.push(0);
    k.extend_from_slice(&(created as u64).to_be_bytes());
    k.extend_from_slice(upload);
    k
}
