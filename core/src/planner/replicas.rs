//! Planning the replicas: clone the empty ones, start stopped replication,
//! and report every state this version cannot handle.

use super::Code;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use petgraph::graph::NodeIndex;

use super::step::{CloneStep, DataAtRisk, RechainStep, StartPosition, StartReplicationStep, Step};
use super::{Plan, PlanOptions};
use crate::facts::{Flavor, MysqlFacts, Observed, ServerObservation};
use crate::gtid;
use crate::topology::{Server, Topology};
use crate::view::{data_state, DataState};
use crate::view::{ObservedSource, ObservedTree};

/// Free space a clone target needs, as a share of the donor's datadir.
const DISK_HEADROOM: f64 = 1.10;
/// Plus a fixed margin for the prepare's log files.
const DISK_MARGIN_BYTES: u64 = 64 * 1024 * 1024;

/// Planning state shared while walking the desired tree from the primary down.
struct Walk<'a> {
    topology: &'a Topology,
    observed: &'a Observed,
    tree: &'a ObservedTree,
    options: &'a PlanOptions,
    /// Servers built in this plan: the step after which each is usable as a
    /// donor or source.
    built: BTreeMap<String, NodeIndex>,
    /// Servers that cannot be planned: their descendants wait for them.
    blocked: BTreeSet<String>,
    /// The change of primary this plan makes, if any.
    transition: Option<Transition>,
    /// Servers this plan builds by cloning.
    cloned: BTreeSet<String>,
}

/// A change of primary planned before the replicas: the step, the primary
/// it replaces, and (failover) the replicas the step itself moves under the
/// new primary.
#[derive(Debug, Clone)]
pub struct Transition {
    pub kind: TransitionKind,
    pub old: String,
    pub node: NodeIndex,
    pub moved: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionKind {
    Switchover,
    Failover,
}

pub fn plan_replicas(
    topology: &Topology,
    observed: &Observed,
    tree: &ObservedTree,
    options: &PlanOptions,
    transition: Option<Transition>,
    plan: &mut Plan,
) {
    let mut walk = Walk {
        topology,
        observed,
        tree,
        options,
        built: BTreeMap::new(),
        blocked: BTreeSet::new(),
        transition,
        cloned: BTreeSet::new(),
    };
    for name in desired_order(topology) {
        let server = &topology.servers()[&name];
        if server.source.is_some() {
            walk.plan_replica(server, plan);
        }
    }
}

/// Servers from the primary down, level by level, by name within a level, so
/// that a server's source and donor are planned before it.
fn desired_order(topology: &Topology) -> Vec<String> {
    let primary = topology.primary().name.clone();
    let mut order = Vec::new();
    let mut queue = VecDeque::from([primary]);
    while let Some(name) = queue.pop_front() {
        for server in topology.servers().values() {
            if server.source.as_deref() == Some(name.as_str()) {
                queue.push_back(server.name.clone());
            }
        }
        order.push(name);
    }
    order
}

impl Walk<'_> {
    fn plan_replica(&mut self, server: &Server, plan: &mut Plan) {
        let name = server.name.as_str();
        let source = server.source.as_deref().expect("replicas have a source");
        let donor = server.donor().expect("replicas have a donor");
        let Some(observation) = self.observed.servers.get(name) else {
            plan.problem(
                Code::NotObserved,
                Some(name),
                format!("{name} is not in the observed state"),
                Some("observe again with the same topology file".to_string()),
            );
            self.blocked.insert(name.to_string());
            return;
        };
        for upstream in [source, donor] {
            if self.blocked.contains(upstream) {
                plan.problem(
                    Code::UpstreamBlocked,
                    Some(name),
                    format!("{name} waits for {upstream}, which cannot be used (see above)"),
                    Some(format!("solve the problem reported for {upstream} first")),
                );
                self.blocked.insert(name.to_string());
                return;
            }
        }

        if self.is_dead_primary(name) {
            // Left alone until it is back; then the plan decides how it rejoins.
            plan.warning(Code::DeadPrimaryLeftAlone,
                Some(name),
                format!("{name} unreachable: not in the new topology's data path"),
                Some("when it is back, plan again: it rejoins as a replica, or is recloned if it holds writes the others never got".to_string()),
            );
            self.blocked.insert(name.to_string());
            return;
        }
        if self.options.replace.contains(name) {
            self.plan_clone(server, observation, true, plan);
            return;
        }
        match self.current_source(name) {
            Some(ObservedSource::Server(current)) if current == source => {
                if self.is_old_primary(name) || self.moved_by_transition(name) {
                    // The change of primary itself points these at the new one.
                    let node = self.transition.as_ref().map(|t| t.node);
                    if let Some(node) = node {
                        self.built.insert(name.to_string(), node);
                    }
                } else {
                    self.plan_existing_replication(server, observation, plan);
                    // Nothing to do here, but what moves under it waits for
                    // what moves its own source.
                    if !self.built.contains_key(name) {
                        if let Some(upstream) = self.built.get(source).copied() {
                            self.built.insert(name.to_string(), upstream);
                        }
                    }
                }
            }
            Some(ObservedSource::Server(current)) => {
                self.plan_rechain(server, &current, observation, plan)
            }
            Some(ObservedSource::Foreign(address)) => self.cannot_yet(
                Code::ForeignSource,
                plan,
                name,
                format!("{name} replicates from {address}, which is not in the topology"),
                format!("`--replace {name}` reclones it from {donor} (destructive)"),
            ),
            Some(ObservedSource::None) | Some(ObservedSource::Unknown) | None => {
                if let Some(gtid) = restored_but_not_started(observation) {
                    self.plan_start_at(
                        server,
                        observation,
                        StartPosition::FromRestoredBackup { gtid },
                        plan,
                    );
                    return;
                }
                match data_state(observation) {
                    DataState::Empty => self.plan_clone(server, observation, false, plan),
                    DataState::HasData { schemas, gtids } => {
                        self.plan_standalone_with_data(server, observation, &schemas, &gtids, plan)
                    }
                    DataState::StoppedWithFiles => self.left_alone(Code::StoppedWithFiles,
                        plan,
                        name,
                        format!("mysqld is stopped on {name} and its datadir is not empty: left alone"),
                        format!(
                            "start mysqld on {name} so flipover can see what it holds, or `--replace {name}` to reclone it (destructive)"
                        ),
                    ),
                    DataState::Unknown => self.left_alone(
                        Code::ServerUnreachable,
                        plan,
                        name,
                        format!(
                            "{name} cannot be observed (mysql: {}; agent: {}): left alone",
                            observation.mysql.error.as_deref().unwrap_or("no answer"),
                            observation.agent.error.as_deref().unwrap_or("no answer")
                        ),
                        format!("start flipover-agent (and mysqld) on {name}"),
                    ),
                }
            }
        }
    }

    /// Where `name` replicates from once the change of primary (if any) is
    /// done: the new primary from nobody, the old one (switchover) and the
    /// drained replicas (failover) from the new primary.
    fn current_source(&self, name: &str) -> Option<ObservedSource> {
        let primary = &self.topology.primary().name;
        if let Some(transition) = &self.transition {
            if name == primary {
                return Some(ObservedSource::None);
            }
            let follows_new = match transition.kind {
                TransitionKind::Switchover => name == transition.old,
                TransitionKind::Failover => transition.moved.contains(name),
            };
            if follows_new {
                return Some(ObservedSource::Server(primary.clone()));
            }
        }
        self.tree.sources.get(name).cloned()
    }

    /// The servers between the switchover candidate and the old primary on
    /// the candidate's observed chain of sources (it replicates through them).
    fn candidate_upstream(&self, transition: &Transition) -> BTreeSet<String> {
        let mut chain = BTreeSet::new();
        let mut current = self.topology.primary().name.clone();
        for _ in 0..self.topology.servers().len() {
            match self.tree.sources.get(&current) {
                Some(ObservedSource::Server(source)) if *source != transition.old => {
                    chain.insert(source.clone());
                    current = source.clone();
                }
                _ => break,
            }
        }
        chain
    }

    fn is_old_primary(&self, name: &str) -> bool {
        self.transition.as_ref().is_some_and(|t| t.old == name)
    }

    fn is_dead_primary(&self, name: &str) -> bool {
        self.transition
            .as_ref()
            .is_some_and(|t| t.kind == TransitionKind::Failover && t.old == name)
    }

    fn moved_by_transition(&self, name: &str) -> bool {
        self.transition
            .as_ref()
            .is_some_and(|t| t.moved.contains(name))
    }

    /// The server that holds every acknowledged write right now (for a
    /// failover, the new primary once it has caught up).
    fn current_primary(&self) -> &str {
        match &self.transition {
            Some(t) if t.kind == TransitionKind::Switchover => &t.old,
            _ => &self.topology.primary().name,
        }
    }

    /// server_ids whose GTIDs are never errant: the current primary's and,
    /// in a failover, the dead primary's (seen through its replicas).
    fn legitimate_server_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.observed.servers[self.current_primary()]
            .facts()
            .map(|f| vec![f.server_id])
            .unwrap_or_default();
        if let Some(t) = &self.transition {
            ids.extend(
                self.observed
                    .servers
                    .values()
                    .filter_map(|s| s.facts()?.replica.as_ref())
                    .filter(|r| {
                        self.topology
                            .server_at(&r.source_host, r.source_port)
                            .is_some_and(|s| s.name == t.old)
                    })
                    .map(|r| r.source_server_id)
                    .filter(|id| *id != 0),
            );
        }
        ids
    }

    /// Moves a running replica to its desired source, after checking the
    /// new source can serve it.
    fn plan_rechain(
        &mut self,
        server: &Server,
        current: &str,
        observation: &ServerObservation,
        plan: &mut Plan,
    ) {
        let name = server.name.as_str();
        let source = server.source.as_deref().expect("replicas have a source");
        let primary = &self.topology.primary().name;
        let Some(facts) = observation.facts() else {
            return;
        };
        if let Some(error) = facts
            .replica
            .as_ref()
            .and_then(|r| r.last_sql_error.as_ref())
        {
            self.cannot_yet(
                Code::ReplicationBroken,
                plan,
                name,
                format!("replication on {name} is broken: {error}"),
                format!("fix the cause, or `--replace {name}` to reclone it (destructive)"),
            );
            return;
        }
        let problems_before = plan.problems.len();
        // A source cloned in this plan does not exist yet: the clone's own
        // checks cover it. Any other source is checked on its facts.
        if !self.cloned.contains(source) {
            let Some(source_facts) = self.observed.servers[source].facts() else {
                self.cannot_yet(
                    Code::SourceUnreachable,
                    plan,
                    name,
                    format!("cannot rechain {name}: its new source {source} is unreachable"),
                    format!("bring {source} back"),
                );
                return;
            };
            let source_is_replica = source != primary.as_str();
            if !source_facts.log_bin || (source_is_replica && !source_facts.log_slave_updates) {
                plan.problem(
                    Code::SourceWithoutBinlog,
                    Some(name),
                    format!(
                        "cannot rechain {name} under {source}: {source} needs binary logging{}",
                        if source_is_replica {
                            " and log_slave_updates (it is a replica)"
                        } else {
                            ""
                        }
                    ),
                    Some(format!(
                        "enable log-bin and {} on {source}",
                        super::dialect_of(self.observed, source).log_replica_updates_option()
                    )),
                );
            }
            if facts.flavor == Flavor::Mariadb {
                let errant = self.errant(facts, source_facts);
                if !errant.is_empty() {
                    plan.problem(Code::ErrantGtid,
                        Some(name),
                        format!(
                            "cannot rechain {name} under {source}: {name} has transactions {source} lacks (errant GTIDs: {})",
                            super::switchover::join(&errant)
                        ),
                        Some(format!(
                            "these were written on {name} directly; `--replace {name}` reclones it from {} (destructive: they are lost)",
                            server.donor().unwrap_or(source)
                        )),
                    );
                }
                let position = facts.gtid.current_pos.as_deref().unwrap_or_default();
                let purged = source_facts
                    .binlog_oldest_gtid
                    .as_deref()
                    .map(|oldest| gtid::purged_past(position, oldest))
                    .unwrap_or_default();
                if let Some((needed, oldest)) = purged.first() {
                    plan.problem(Code::PurgedBinlogs,
                        Some(name),
                        format!(
                            "cannot rechain {name} under {source}: {source}'s binlogs start after {oldest}, {name} needs them from {needed}"
                        ),
                        Some(format!("`--replace {name}` reclones it instead (destructive)")),
                    );
                }
            }
        }
        if plan.problems.len() > problems_before {
            self.blocked.insert(name.to_string());
            return;
        }
        let rechain = plan.add_step(Step::Rechain(RechainStep {
            target: name.to_string(),
            from: current.to_string(),
            to: source.to_string(),
        }));
        match &self.transition {
            Some(t) if t.kind == TransitionKind::Switchover => {
                if name == t.old || source == t.old || self.candidate_upstream(t).contains(name) {
                    // The old primary, what moves under it, and the servers
                    // the candidate still receives its data through move
                    // once the candidate has taken over.
                    plan.depends_on(rechain, t.node);
                } else if source == primary.as_str() {
                    // Replicas go under the candidate before writes are
                    // blocked, while it still replicates from the old primary.
                    plan.depends_on(t.node, rechain);
                }
            }
            // After a failover everyone starts from under the new primary.
            Some(t) => plan.depends_on(rechain, t.node),
            None => {}
        }
        if let Some(upstream) = self.built.get(source) {
            plan.depends_on(rechain, *upstream);
        }
        self.built.insert(name.to_string(), rechain);
    }

    /// The replica already points at the right source: start it if stopped.
    fn plan_existing_replication(
        &mut self,
        server: &Server,
        observation: &ServerObservation,
        plan: &mut Plan,
    ) {
        let name = server.name.as_str();
        let Some(replica) = observation.facts().and_then(|f| f.replica.as_ref()) else {
            return;
        };
        if let Some(error) = replica
            .last_io_error
            .as_ref()
            .or(replica.last_sql_error.as_ref())
        {
            self.cannot_yet(
                Code::ReplicationBroken,
                plan,
                name,
                format!("replication on {name} is broken: {error}"),
                format!("fix the cause, or `--replace {name}` to reclone it (destructive)"),
            );
            return;
        }
        self.warn_errant(server, observation, plan);
        // A clone whose apply was interrupted after replication started: the
        // copy works, but the agent keeps the previous datadir (and would put
        // it back if it restarted) until flipover confirms the copy.
        let unconfirmed = observation
            .agent
            .facts
            .as_ref()
            .is_some_and(|f| f.unconfirmed_clone_job.is_some());
        if unconfirmed {
            self.plan_start(server, StartPosition::FinishClone, plan);
            return;
        }
        if replica.healthy() || replica.io_running.eq_ignore_ascii_case("connecting") {
            return;
        }
        self.plan_start_at(server, observation, StartPosition::Configured, plan);
    }

    /// MariaDB: what `facts`' server wrote to its binlog that neither its
    /// source nor the primary has. The primary's own GTIDs are never errant:
    /// servers are observed one after another, and under load a replica may
    /// be seen ahead of where the primary was seen a moment before.
    fn errant(&self, facts: &MysqlFacts, source_facts: &MysqlFacts) -> Vec<gtid::MariadbGtid> {
        let primary_state = self.observed.servers[self.current_primary()]
            .facts()
            .map(|f| f.known_gtid_state())
            .unwrap_or_default();
        let legitimate = self.legitimate_server_ids();
        gtid::not_covered_by_any(
            facts.gtid.binlog_state.as_deref().unwrap_or_default(),
            &[&source_facts.known_gtid_state(), &primary_state],
        )
        .into_iter()
        .filter(|g| !legitimate.contains(&g.server_id))
        .collect()
    }

    /// Every plan reports replicas holding transactions their source and
    /// the primary lack, even when nothing else is to be done about them.
    fn warn_errant(&self, server: &Server, observation: &ServerObservation, plan: &mut Plan) {
        let source = server.source.as_deref().expect("replicas have a source");
        let (Some(facts), Some(source_facts)) =
            (observation.facts(), self.observed.servers[source].facts())
        else {
            return;
        };
        if facts.flavor != Flavor::Mariadb {
            return;
        }
        let errant = self.errant(facts, source_facts);
        if !errant.is_empty() {
            plan.warning(Code::ErrantGtid,
                Some(&server.name),
                format!(
                    "{} has transactions its source {source} lacks (errant GTIDs: {}); it is never chosen as a failover candidate",
                    server.name,
                    super::switchover::join(&errant)
                ),
                Some(format!("`--replace {}` reclones it (destructive: they are lost)", server.name)),
            );
        }
    }

    /// A server that holds data but does not replicate. If it holds nothing
    /// its source and the primary lack, it simply starts replicating after
    /// its own position. If its extra GTIDs are writes it made as a former
    /// primary that never reached the others (the old primary back after a
    /// failover), rechaining would fork the data: it is recloned, and the
    /// plan names what is lost. Anything else is not overwritten unasked.
    fn plan_standalone_with_data(
        &mut self,
        server: &Server,
        observation: &ServerObservation,
        schemas: &[String],
        gtids: &str,
        plan: &mut Plan,
    ) {
        let name = server.name.as_str();
        let source = server.source.as_deref().expect("replicas have a source");
        let donor = server.donor().expect("replicas have a donor");
        let errant = match (observation.facts(), self.observed.servers[source].facts()) {
            (Some(facts), Some(source_facts)) if facts.flavor == Flavor::Mariadb => {
                let primary_state = self.observed.servers[self.current_primary()]
                    .facts()
                    .map(|f| f.known_gtid_state())
                    .unwrap_or_default();
                let errant = gtid::not_covered_by_any(
                    &facts.known_gtid_state(),
                    &[&source_facts.known_gtid_state(), &primary_state],
                );
                // Its earlier writes are part of everyone's history: it was
                // the primary, and these are writes it made after its last
                // transaction that anyone else got.
                let former_primary = !errant.is_empty()
                    && errant.iter().all(|g| g.server_id == facts.server_id)
                    && gtid::parse_list(&source_facts.known_gtid_state())
                        .iter()
                        .any(|g| g.server_id == facts.server_id);
                Some((errant, former_primary))
            }
            _ => None,
        };
        match errant {
            Some((errant, _)) if errant.is_empty() => {
                self.plan_start_at(server, observation, StartPosition::OwnPosition, plan)
            }
            Some((errant, true)) if !self.cloned.contains(donor) => {
                plan.warning(Code::FormerPrimaryErrantWrites,
                    Some(name),
                    format!(
                        "{name} holds writes it made as primary that never reached {source} (errant GTIDs: {}): \
                         it is recloned rather than rechained, which would fork the data",
                        super::switchover::join(&errant)
                    ),
                    Some(format!("save what you need from {name} before applying: the clone overwrites it")),
                );
                self.plan_clone(server, observation, true, plan);
            }
            _ => self.cannot_yet(Code::DataWithoutReplication,
                plan,
                name,
                format!(
                    "{name} holds data ({}) but does not replicate",
                    describe_data(schemas, gtids)
                ),
                format!(
                    "flipover does not overwrite data unasked: `--replace {name}` reclones it from {donor} (destructive)"
                ),
            ),
        }
    }

    /// A start from a position the server already has (its own, where its
    /// stopped replication left off, a restored backup's), once its source
    /// is known to still hold the binlogs from there. When they were
    /// purged, the server is recloned if it holds nothing its donor lacks
    /// (nothing is lost, and the plan says so); otherwise it is a problem.
    fn plan_start_at(
        &mut self,
        server: &Server,
        observation: &ServerObservation,
        position: StartPosition,
        plan: &mut Plan,
    ) {
        let name = server.name.as_str();
        let source = server.source.as_deref().expect("replicas have a source");
        let donor = server.donor().expect("replicas have a donor");
        let Some((needed, oldest)) = self.purged_for(observation, &position, source) else {
            self.plan_start(server, position, plan);
            return;
        };
        let needed = if needed.seq == 0 {
            format!("from the beginning of domain {}", needed.domain)
        } else {
            format!("after {needed}")
        };
        match self.reclone_would_lose(observation, donor) {
            None => {
                plan.warning(
                    Code::PurgedBinlogsReclone,
                    Some(name),
                    format!(
                        "{name} cannot start replicating where it is: {source}'s binlogs start after {oldest}, \
                         {name} needs them {needed}. It holds nothing {donor} lacks, so it is recloned \
                         from {donor} instead and nothing is lost"
                    ),
                    Some(format!(
                        "keep binlogs longer on {source} (binlog_expire_logs_seconds) so replicas can catch up instead"
                    )),
                );
                self.plan_clone(server, observation, true, plan);
            }
            Some(lost) => self.cannot_yet(
                Code::PurgedBinlogs,
                plan,
                name,
                format!(
                    "{name} cannot start replicating where it is: {source}'s binlogs start after {oldest}, \
                     {name} needs them {needed}; a clone from {donor} would lose {lost}"
                ),
                format!(
                    "save what you need from {name}, then `--replace {name}` reclones it from {donor} (destructive)"
                ),
            ),
        }
    }

    /// MariaDB: when `source`'s binlogs no longer hold what a start at
    /// `position` on `observation`'s server asks for, the first GTID it
    /// needs and where the binlogs start. (MySQL's `gtid_purged` check
    /// arrives with its GTID sets.)
    fn purged_for(
        &self,
        observation: &ServerObservation,
        position: &StartPosition,
        source: &str,
    ) -> Option<(gtid::MariadbGtid, gtid::MariadbGtid)> {
        let facts = observation.facts()?;
        if facts.flavor != Flavor::Mariadb {
            return None;
        }
        let asks_for = match position {
            StartPosition::OwnPosition => facts.gtid.current_pos.clone().unwrap_or_default(),
            StartPosition::Configured => {
                // A replica by file and position asks for no GTID.
                if !facts.replica.as_ref().is_some_and(|r| r.using_gtid) {
                    return None;
                }
                facts.gtid.slave_pos.clone().unwrap_or_default()
            }
            StartPosition::FromRestoredBackup { gtid } => gtid.clone(),
            StartPosition::FromClone | StartPosition::FinishClone => return None,
        };
        let start = self.binlog_start(source)?;
        gtid::purged_past(&asks_for, &start).into_iter().next()
    }

    /// The GTID state at the start of `source`'s oldest binlog. A source
    /// cloned in this plan starts its binlogs at the backup's position, at
    /// least where its donor is now.
    fn binlog_start(&self, source: &str) -> Option<String> {
        let mut current = source;
        for _ in 0..self.topology.servers().len() {
            if !self.cloned.contains(current) {
                let facts = self.observed.servers.get(current)?.facts()?;
                return if current == source {
                    facts.binlog_oldest_gtid.clone()
                } else {
                    facts.gtid.current_pos.clone()
                };
            }
            current = self.topology.servers()[current].donor()?;
        }
        None
    }

    /// What recloning `observation`'s server from `donor` would lose, in
    /// words; `None` when nothing: every GTID it holds is on the donor, and
    /// its schemas came through replication (it has GTIDs, or they are empty).
    fn reclone_would_lose(&self, observation: &ServerObservation, donor: &str) -> Option<String> {
        let facts = observation.facts()?;
        if self.cloned.contains(donor) {
            return Some(format!(
                "whatever {donor} lacks ({donor} is itself recloned in this plan)"
            ));
        }
        let Some(donor_facts) = self.observed.servers.get(donor).and_then(|d| d.facts()) else {
            return Some(format!("whatever {donor} lacks ({donor} does not answer)"));
        };
        let missing =
            gtid::not_covered_by(&facts.known_gtid_state(), &donor_facts.known_gtid_state());
        if !missing.is_empty() {
            return Some(format!(
                "GTIDs {donor} lacks: {}",
                super::switchover::join(&missing)
            ));
        }
        let schemas = facts.schemas_with_data();
        if facts.known_gtid_state().is_empty() && !schemas.is_empty() {
            return Some(format!(
                "schemas {} (written without GTIDs, so not known to be on {donor})",
                schemas.join(", ")
            ));
        }
        None
    }

    /// A start-replication step of its own (not the end of a clone).
    fn plan_start(&mut self, server: &Server, position: StartPosition, plan: &mut Plan) {
        let source = server.source.as_deref().expect("replicas have a source");
        let start = plan.add_step(Step::StartReplication(StartReplicationStep {
            target: server.name.clone(),
            source: source.to_string(),
            position,
        }));
        if let Some(upstream) = self.built.get(source) {
            plan.depends_on(start, *upstream);
        }
        self.built.insert(server.name.clone(), start);
    }

    fn plan_clone(
        &mut self,
        server: &Server,
        target: &ServerObservation,
        destructive: bool,
        plan: &mut Plan,
    ) {
        let name = server.name.as_str();
        let source = server.source.as_deref().expect("replicas have a source");
        let donor = server.donor().expect("replicas have a donor");
        let problems_before = plan.problems.len();

        self.check_target_agent(name, target, plan);
        self.check_donor(name, donor, plan);
        self.check_source_binlogs(name, source, plan);
        let estimated_bytes = self.donor_bytes(donor);
        self.check_disk(name, target, donor, estimated_bytes, plan);
        if plan.problems.len() > problems_before {
            self.blocked.insert(name.to_string());
            return;
        }

        let data_at_risk = destructive.then(|| self.data_at_risk(target, donor));
        let empty_schemas = match target.facts() {
            Some(facts) if !destructive => facts.empty_schemas(),
            _ => Vec::new(),
        };
        let clone = plan.add_step(Step::Clone(CloneStep {
            target: name.to_string(),
            donor: donor.to_string(),
            destructive,
            data_at_risk,
            empty_schemas,
            estimated_bytes,
        }));
        if let Some(upstream) = self.built.get(donor) {
            plan.depends_on(clone, *upstream);
        }
        let start = plan.add_step(Step::StartReplication(StartReplicationStep {
            target: name.to_string(),
            source: source.to_string(),
            position: StartPosition::FromClone,
        }));
        plan.depends_on(start, clone);
        if let Some(upstream) = self.built.get(source) {
            plan.depends_on(start, *upstream);
        }
        self.built.insert(name.to_string(), start);
        self.cloned.insert(name.to_string());
    }

    fn check_target_agent(&self, name: &str, target: &ServerObservation, plan: &mut Plan) {
        match &target.agent.facts {
            None => plan.problem(Code::AgentUnreachable,
                Some(name),
                format!(
                    "cannot clone {name}: its agent is unreachable ({})",
                    target.agent.error.as_deref().unwrap_or("no answer")
                ),
                Some(format!("start flipover-agent on {name} and check access.agent_token")),
            ),
            Some(agent) if agent.backup_tool.is_none() => plan.problem(Code::NoBackupTool,
                Some(name),
                format!("cannot clone {name}: it has no mariadb-backup/xtrabackup to unpack and prepare a backup"),
                Some(format!("install it on {name}: apt-get install mariadb-backup")),
            ),
            Some(_) => {}
        }
    }

    fn check_donor(&self, name: &str, donor: &str, plan: &mut Plan) {
        let observation = &self.observed.servers[donor];
        let agent = observation.agent.facts.as_ref();
        if self.cloned.contains(donor) {
            // Cloned earlier in this plan: it will run with its my.cnf's settings.
            if agent.is_some_and(|a| a.settings.log_bin.is_none()) {
                plan.problem(Code::DonorWithoutBinlog,
                    Some(name),
                    format!("cannot clone {name}: donor {donor} will not have binary logging (no log-bin in its my.cnf)"),
                    Some(format!("add log-bin to {donor}'s my.cnf")),
                );
            }
            return;
        }
        match observation.facts() {
            None => {
                plan.problem(Code::DonorUnreachable,
                    Some(name),
                    format!(
                        "cannot clone {name}: donor {donor} is unreachable: {}",
                        observation.mysql.error.as_deref().unwrap_or("no answer")
                    ),
                    Some(format!("bring {donor} back, or set clone_from = \"…\" on {name} to another donor")),
                );
                return;
            }
            Some(facts) if !facts.log_bin => plan.problem(Code::DonorWithoutBinlog,
                Some(name),
                format!("cannot clone {name}: donor {donor} has binary logging off (a clone needs the backup's binlog position)"),
                Some(format!("enable log-bin on {donor} (restart needed), or choose another donor with clone_from")),
            ),
            Some(_) => {}
        }
        match agent {
            None => plan.problem(Code::DonorAgentUnreachable,
                Some(name),
                format!(
                    "cannot clone {name}: donor {donor}'s agent is unreachable ({}): it streams the backup",
                    observation.agent.error.as_deref().unwrap_or("no answer")
                ),
                Some(format!("start flipover-agent on {donor}")),
            ),
            Some(agent) if agent.backup_tool.is_none() => plan.problem(Code::NoBackupTool,
                Some(name),
                format!("cannot clone {name}: donor {donor} has no mariadb-backup/xtrabackup"),
                Some(format!("install it on {donor}: apt-get install mariadb-backup")),
            ),
            Some(_) => {}
        }
    }

    /// A replica can only follow a source that writes a binlog, and a source
    /// that is itself a replica must log what it replicates.
    fn check_source_binlogs(&self, name: &str, source: &str, plan: &mut Plan) {
        let source_is_replica = self.topology.servers()[source].source.is_some();
        let observation = &self.observed.servers[source];
        let (log_bin, log_slave_updates) = if self.cloned.contains(source) {
            let settings = observation.agent.facts.as_ref().map(|a| &a.settings);
            (
                settings.map(|s| s.log_bin.is_some()),
                settings.map(|s| s.log_slave_updates.unwrap_or(false)),
            )
        } else {
            let facts = observation.facts();
            (facts.map(|f| f.log_bin), facts.map(|f| f.log_slave_updates))
        };
        if log_bin == Some(false) {
            plan.problem(
                Code::SourceWithoutBinlog,
                Some(name),
                format!(
                    "source {source} has binary logging off: {name} could not replicate from it"
                ),
                Some(format!("enable log-bin on {source}")),
            );
        } else if source_is_replica && log_slave_updates == Some(false) {
            plan.problem(Code::SourceWithoutLogReplicaUpdates,
                Some(name),
                format!("source {source} is a replica without log_slave_updates: {name} would miss what {source} replicates"),
                Some(format!(
                    "enable {} on {source}",
                    super::dialect_of(self.observed, source).log_replica_updates_option()
                )),
            );
        }
    }

    /// The donor's datadir size; for a donor built in this plan, its own donor's.
    fn donor_bytes(&self, donor: &str) -> Option<u64> {
        let mut current = donor;
        for _ in 0..self.topology.servers().len() {
            if !self.cloned.contains(current) {
                return self.observed.servers[current]
                    .agent
                    .facts
                    .as_ref()
                    .and_then(|a| a.datadir_bytes);
            }
            current = self.topology.servers()[current].donor()?;
        }
        None
    }

    fn check_disk(
        &self,
        name: &str,
        target: &ServerObservation,
        donor: &str,
        estimated_bytes: Option<u64>,
        plan: &mut Plan,
    ) {
        let free = target.agent.facts.as_ref().and_then(|a| a.free_disk_bytes);
        if let (Some(free), Some(needed)) = (free, estimated_bytes) {
            let needed_with_headroom = (needed as f64 * DISK_HEADROOM) as u64 + DISK_MARGIN_BYTES;
            if free < needed_with_headroom {
                plan.problem(Code::NotEnoughDisk,
                    Some(name),
                    format!(
                        "cannot clone {name}: it has {} free, a copy of {donor} needs {} (its datadir of {} plus headroom)",
                        human_bytes(free),
                        human_bytes(needed_with_headroom),
                        human_bytes(needed)
                    ),
                    Some(format!("free space on {name}'s datadir filesystem (the old datadir is kept until the copy is proven)")),
                );
            }
        }
    }

    fn data_at_risk(&self, target: &ServerObservation, donor: &str) -> DataAtRisk {
        let Some(facts) = target.facts() else {
            return DataAtRisk {
                schemas: Vec::new(),
                gtids: vec!["unknown: the server does not answer".to_string()],
            };
        };
        let donor_facts = self.observed.servers[donor].facts();
        let gtids = match facts.flavor {
            Flavor::Mariadb => {
                let own = facts.gtid.binlog_state.as_deref().unwrap_or_default();
                let donor_state = donor_facts
                    .map(|d| d.known_gtid_state())
                    .unwrap_or_default();
                gtid::not_covered_by(own, &donor_state)
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            }
            // GTID set arithmetic for MySQL arrives with its switchover support.
            Flavor::Mysql => facts.gtid.executed.iter().cloned().collect(),
        };
        DataAtRisk {
            schemas: facts.user_schemas.clone(),
            gtids,
        }
    }

    /// A replica flipover cannot see or act on: the rest of the plan goes
    /// ahead without it; servers that would replicate from it cannot.
    fn left_alone(
        &mut self,
        code: Code,
        plan: &mut Plan,
        name: &str,
        message: String,
        hint: String,
    ) {
        plan.warning(code, Some(name), message, Some(hint));
        self.blocked.insert(name.to_string());
    }

    fn cannot_yet(
        &mut self,
        code: Code,
        plan: &mut Plan,
        name: &str,
        message: String,
        hint: String,
    ) {
        plan.problem(code, Some(name), message, Some(hint));
        self.blocked.insert(name.to_string());
    }
}

/// A server restored from a backup by an earlier clone whose replication
/// never started: it holds exactly the backup (no GTID written since), and
/// the backup's position says where to start. Returns that GTID position.
fn restored_but_not_started(observation: &ServerObservation) -> Option<String> {
    let facts = observation.facts()?;
    if facts.replica.is_some() {
        return None;
    }
    let backup = observation.agent.facts.as_ref()?.restored_backup.as_ref()?;
    if backup.gtid.is_empty() {
        return None;
    }
    let untouched = match facts.flavor {
        Flavor::Mariadb => facts
            .gtid
            .binlog_pos
            .as_deref()
            .unwrap_or_default()
            .is_empty(),
        Flavor::Mysql => facts.gtid.executed.as_deref() == Some(backup.gtid.as_str()),
    };
    untouched.then(|| backup.gtid.clone())
}

fn describe_data(schemas: &[String], gtids: &str) -> String {
    let mut parts = Vec::new();
    if !schemas.is_empty() {
        parts.push(format!("schemas {}", schemas.join(", ")));
    }
    if !gtids.trim().is_empty() {
        parts.push(format!("GTIDs {gtids}"));
    }
    parts.join("; ")
}

/// Bytes in binary units with one decimal, for humans.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
