//! Pure views of the desired topology and the observed facts together: the
//! observed replication tree in the topology's names, and whether a server
//! holds data. The planner, the fingerprint of a saved plan and the renderers
//! all read the servers through them, so they agree.

mod data;
mod tree;

pub use data::{data_state, DataState};
pub use tree::{ObservedSource, ObservedTree};
