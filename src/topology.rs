//! The desired state: `flipover_core::topology`, plus reading it from a file
//! (the core does no I/O).

pub use flipover_core::topology::*;

use std::path::Path;

/// Reads and validates the topology file at `path`.
pub fn load(path: &Path) -> Result<Topology, TopologyError> {
    let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}
