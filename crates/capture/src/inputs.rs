use std::path::{Path, PathBuf};

use crate::CaptureError;

/// Expands the paths a user gave: files stay as given, folders become the files inside them
/// (recursively, sorted by name, hidden files left out) so that rotated captures read in order.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CaptureError> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out)?;
    }
    Ok(out)
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), CaptureError> {
    let meta = std::fs::metadata(p).map_err(|source| CaptureError::Open {
        file: p.display().to_string(),
        source,
    })?;
    if !meta.is_dir() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    let rd = std::fs::read_dir(p).map_err(|source| CaptureError::Open {
        file: p.display().to_string(),
        source,
    })?;
    let mut entries: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|e| {
            !e.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for e in entries {
        walk(&e, out)?;
    }
    Ok(())
}
