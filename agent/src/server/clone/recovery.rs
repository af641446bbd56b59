//! Startup recovery: an agent killed while it received a clone (or before
//! flipover confirmed one) leaves the host's previous datadir beside the
//! datadir. A copy that was never confirmed is not proven, so at startup —
//! before mysqld is started and before any request is served — the previous
//! datadir is put back, as a failed receive would have done; a previous
//! datadir whose deletion was cut short after a confirmation is deleted.

use std::path::PathBuf;

use tracing::{error, info, warn};

use super::datadir::{self, Swap};
use crate::server::facts::HostInfo;
use crate::server::mysqld;
use crate::server::process::running_mysqld_pid;

/// What startup recovery did, for the log and tests.
#[derive(Debug, PartialEq, Eq)]
pub enum Recovery {
    Nothing,
    /// The previous datadir is back in place of an unconfirmed copy.
    Restored {
        previous: PathBuf,
    },
    /// More than one previous datadir: which one was the host's is not
    /// knowable, so nothing is touched.
    Ambiguous {
        previous: Vec<PathBuf>,
    },
    Failed(String),
}

/// Runs once at agent startup. Stops a mysqld left running on an unconfirmed
/// copy first; a supervised agent starts mysqld again afterwards (autostart),
/// a service-managed one is restarted here if it ran.
pub async fn at_startup(host: &HostInfo) -> Recovery {
    let conf = match host.load_conf() {
        Ok(conf) => conf,
        Err(_) => return Recovery::Nothing,
    };
    let version = host.version();
    let datadir: PathBuf = conf.datadir(version).components().collect();
    let pid_file = PathBuf::from(conf.settings(version).pid_file.unwrap_or_default());
    let dir = datadir.clone();
    let found = match tokio::task::spawn_blocking(move || datadir::leftovers(&dir)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return Recovery::Failed(e.to_string()),
        Err(e) => return Recovery::Failed(e.to_string()),
    };
    for doomed in found.discarding {
        info!(path = %doomed.display(), "finishing the deletion of a confirmed clone's previous datadir");
        if let Err(e) = std::fs::remove_dir_all(&doomed) {
            warn!(path = %doomed.display(), error = %e, "deleting it failed");
        }
    }
    let previous = match found.previous.len() {
        0 => return Recovery::Nothing,
        1 => found.previous.into_iter().next().expect("one"),
        _ => {
            error!(previous = ?found.previous, "several previous datadirs beside {}: not knowing which was the host's, none is put back; check by hand", datadir.display());
            return Recovery::Ambiguous {
                previous: found.previous,
            };
        }
    };
    warn!(
        previous = %previous.display(),
        datadir = %datadir.display(),
        "a clone was interrupted before it was confirmed: putting the previous datadir back"
    );
    let was_running = running_mysqld_pid(&pid_file).is_some();
    if was_running {
        if let Err(e) = mysqld::stop(host).await {
            error!(error = %e, "cannot stop mysqld on the unconfirmed copy; the previous datadir stays aside");
            return Recovery::Failed(e.to_string());
        }
    }
    let swap = Swap {
        datadir,
        previous: Some(previous.clone()),
        uid: 0,
        gid: 0,
    };
    match tokio::task::spawn_blocking(move || datadir::restore(&swap)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Recovery::Failed(e.to_string()),
        Err(e) => return Recovery::Failed(e.to_string()),
    }
    if was_running && !host.supervised {
        if let Err(e) = mysqld::start(host).await {
            error!(error = %e, "the previous datadir is back but starting mysqld failed");
            return Recovery::Failed(e.to_string());
        }
    }
    info!(previous = %previous.display(), "the previous datadir is restored");
    Recovery::Restored { previous }
}
