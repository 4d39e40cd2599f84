use std::io;

/// Why a capture file could not be read (to its end).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{file}: cannot open: {source}")]
    Open {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{file}: read error at byte {offset}: {source}")]
    Io {
        file: String,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("{file}: not a pcap or pcapng file (it starts with bytes {magic})")]
    NotACapture { file: String, magic: String },
    #[error("{file}: record {record} at byte {offset}: file ends inside the record ({have} of {need} bytes)")]
    Truncated {
        file: String,
        record: u64,
        offset: u64,
        need: usize,
        have: usize,
    },
    #[error("{file}: record {record} at byte {offset}: {what}")]
    Corrupt {
        file: String,
        record: u64,
        offset: u64,
        what: String,
    },
}

impl CaptureError {
    pub(crate) fn io(file: &str, offset: u64, source: io::Error) -> CaptureError {
        CaptureError::Io {
            file: file.to_string(),
            offset,
            source,
        }
    }

    pub(crate) fn corrupt(
        file: &str,
        record: u64,
        offset: u64,
        what: impl Into<String>,
    ) -> CaptureError {
        CaptureError::Corrupt {
            file: file.to_string(),
            record,
            offset,
            what: what.into(),
        }
    }

    /// Adds `before` to the record number an error names: a walker that started inside the
    /// file counted its records from 1.
    pub fn renumber(&mut self, before: u64) {
        if let CaptureError::Truncated { record, .. } | CaptureError::Corrupt { record, .. } = self
        {
            *record += before;
        }
    }

    /// True when the file could not be read at all (as opposed to ending early).
    pub fn is_unreadable(&self) -> bool {
        matches!(
            self,
            CaptureError::Open { .. } | CaptureError::NotACapture { .. }
        )
    }
}
