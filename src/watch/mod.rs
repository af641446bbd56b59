//! `flipover watch`: the long-running watcher that fails clusters over by
//! itself. So far it holds the watchers' coordination: which watcher acts
//! for each cluster, pauses and the last automatic failover, on etcd or,
//! for a watcher alone, in memory (`coordination`).

pub mod coordination;
