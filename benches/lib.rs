//! Shared helpers for the benchmarks: the generated capture, cached under `benches/data/`.

use std::io::BufWriter;
use std::path::PathBuf;

use flowdoc_catalogue::Catalogue;

/// Path of a generated capture with `packets` packets in `flows` flows, made once and kept.
pub fn capture(packets: u64, flows: u32) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    let path = dir.join(format!("imp3-{packets}p-{flows}f.pcap"));
    if !path.exists() {
        let tmp = path.with_extension("tmp");
        let made = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::File::create(&tmp))
            .and_then(|f| {
                let mut w = BufWriter::with_capacity(1 << 20, f);
                flowdoc_fixturegen::bench::write_capture(
                    &mut w,
                    &Catalogue::embedded(),
                    packets,
                    flows,
                )?;
                std::io::Write::flush(&mut w)?;
                std::fs::rename(&tmp, &path)
            });
        if let Err(e) = made {
            panic!("cannot write the benchmark capture {}: {e}", path.display());
        }
    }
    path
}
