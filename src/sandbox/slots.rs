//! Address blocks for sandboxes. Each sandbox owns `127.77.<slot>.0/24`, so
//! sandboxes started in parallel (tests do that) never share an address.
//!
//! A slot is taken by creating `<registry>/slot-<N>` exclusively; the file
//! names the sandbox directory. A slot whose directory no longer holds a
//! sandbox for it is stale and gets reused.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};

use super::state::SandboxState;

/// Overrides where slots are recorded (default `/tmp/flipover-sandboxes`).
pub const REGISTRY_ENV: &str = "FLIPOVER_SANDBOX_REGISTRY";

pub fn registry_dir() -> PathBuf {
    std::env::var_os(REGISTRY_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("flipover-sandboxes"))
}

/// The loopback address of host `index` (1-based) in `slot`.
pub fn address(slot: u8, index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 77, slot, index as u8)
}

/// Takes a free slot for the sandbox at `dir` (an absolute path) with
/// `hosts` hosts, each listening on `ports`.
pub fn acquire(dir: &Path, hosts: usize, ports: &[u16]) -> std::io::Result<Option<u8>> {
    let registry = registry_dir();
    std::fs::create_dir_all(&registry)?;
    for slot in 1..=254u8 {
        let file = registry.join(format!("slot-{slot}"));
        if file.exists() && !is_stale(&file, slot) {
            continue;
        }
        if file.exists() {
            let _ = std::fs::remove_file(&file);
        }
        match OpenOptions::new().write(true).create_new(true).open(&file) {
            Ok(mut f) => {
                // Something may already listen there: a process outside
                // flipover, or one a crashed sandbox left behind.
                let taken = (1..=hosts)
                    .any(|i| ports.iter().any(|port| !port_free(address(slot, i), *port)));
                if taken {
                    drop(f);
                    let _ = std::fs::remove_file(&file);
                    continue;
                }
                f.write_all(dir.as_os_str().as_encoded_bytes())?;
                return Ok(Some(slot));
            }
            // Another process took it between our check and our create.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Gives the slot back (at `sandbox down`).
pub fn release(slot: u8, dir: &Path) {
    let file = registry_dir().join(format!("slot-{slot}"));
    if let Ok(owner) = std::fs::read_to_string(&file) {
        if Path::new(&owner) == dir {
            let _ = std::fs::remove_file(file);
        }
    }
}

fn is_stale(file: &Path, slot: u8) -> bool {
    let Ok(owner) = std::fs::read_to_string(file) else {
        return false; // Being written right now.
    };
    if owner.is_empty() {
        // Created but not yet written: fresh unless it has been so for a while.
        return std::fs::metadata(file)
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default().as_secs() > 60)
            .unwrap_or(false);
    }
    match SandboxState::load(Path::new(&owner)) {
        Ok(state) => state.slot != slot,
        // `up` writes the state after taking the slot; give it time.
        Err(_) => std::fs::metadata(file)
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default().as_secs() > 600)
            .unwrap_or(true),
    }
}

fn port_free(address: Ipv4Addr, port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(address, port)).is_ok()
}
