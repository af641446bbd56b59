//! What a server holds, as far as the observed facts tell.

use crate::facts::{Flavor, ServerObservation};

/// Whether a server holds data, read from its facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataState {
    /// No GTIDs and no user schema that holds anything (an empty `test`
    /// schema is no data), or a stopped mysqld over an empty datadir: safe
    /// to clone onto.
    Empty,
    /// User schemas that hold something (or were not counted), or GTIDs: a
    /// clone would overwrite them.
    HasData { schemas: Vec<String>, gtids: String },
    /// mysqld is stopped over a datadir with files; what they hold is unknown.
    StoppedWithFiles,
    /// Neither the server nor its agent answered.
    Unknown,
}

pub fn data_state(server: &ServerObservation) -> DataState {
    if let Some(facts) = server.facts() {
        let gtids = match facts.flavor {
            Flavor::Mariadb => facts.gtid.current_pos.clone().unwrap_or_default(),
            Flavor::Mysql => facts.gtid.executed.clone().unwrap_or_default(),
        };
        if facts.schemas_with_data().is_empty() && gtids.trim().is_empty() {
            return DataState::Empty;
        }
        return DataState::HasData {
            schemas: facts.user_schemas.clone(),
            gtids,
        };
    }
    match &server.agent.facts {
        Some(agent) if !agent.mysqld_running => match agent.datadir_empty {
            Some(true) => DataState::Empty,
            _ => DataState::StoppedWithFiles,
        },
        _ => DataState::Unknown,
    }
}
