//! CRC throughput on this machine (checks that the CRC32C and CRC64/NVME
//! the chunk store computes on every write and read are hardware-accelerated).

/// Prints CRC32C and CRC64/NVME rates over 512 MiB, and CRC32C in 64 KiB blocks.
pub fn bench_crc() {
    let data = vec![7u8; 64 << 20];
    for (name, algo) in
        [("crc32c", crc_fast::CrcAlgorithm::Crc32Iscsi), ("crc64nvme", crc_fast::CrcAlgorithm::Crc64Nvme)]
    {
        let t = std::time::Instant::now();
        let mut x = 0;
        for _ in 0..8 {
            x ^= crc_fast::checksum(algo, &data);
        }
        println!("{name}: {:.0} MiB/s ({x})", 512.0 / t.elapsed().as_secs_f64());
    }
    let t = std::time::Instant::now();
    let mut x = 0u64;
    for c in data.chunks(65536) {
        x ^= crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, c);
    }
    println!("crc32c in 64 KiB blocks: {:.0} MiB/s ({x})", 64.0 / t.elapsed().as_secs_f64());
}
