//! Any bytes as a capture file: the pcap/pcapng reader and, for each record, the dissector.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = Box::new(std::io::Cursor::new(data.to_vec()));
    let Ok(mut reader) = flowdoc_capture::CaptureReader::from_reader("fuzz", src) else {
        return;
    };
    while let Ok(Some(rec)) = reader.next_record() {
        let _ = flowdoc_dissect::dissect(rec.link_type, rec.data);
    }
});
