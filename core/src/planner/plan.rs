//! The plan: a DAG of steps (petgraph), plus the problems that keep parts of
//! the topology from being planned.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use super::codes::Code;
use super::step::{Step, StepKind};

/// Something the planner could not plan. A plan with problems is shown but
/// never applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Stable: what CI gates match on.
    pub code: Code,
    /// The server concerned (`None` for the plan as a whole).
    pub server: Option<String>,
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
}

/// Steps and the order they must run in: an edge `a → b` means b waits for a.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub graph: DiGraph<Step, ()>,
    pub problems: Vec<Problem>,
    /// Worth knowing, but no reason to refuse the plan.
    pub warnings: Vec<Problem>,
    /// What an acknowledged write survives, and what a failover could lose now.
    pub durability: Option<DurabilityReport>,
    /// With `--failover`: the replacement flipover chose, and the topology
    /// the plan leads to (the file's, with the new primary).
    pub failover_choice: Option<FailoverChoice>,
}

/// The replacement `--failover` chose for a dead primary.
#[derive(Debug, Clone)]
pub struct FailoverChoice {
    /// The topology with the chosen server as primary: what the steps lead to.
    pub topology: crate::topology::Topology,
    /// The choice and the topology changes it implies, in words.
    pub explanation: Vec<String>,
}

/// The plan's durability line: the mode and, in words, what it means now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurabilityReport {
    pub mode: crate::topology::Durability,
    /// `async — a failover may lose …`, without the leading `durability: `.
    pub text: String,
}

/// Step counts for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub clone: usize,
    pub rechain: usize,
    pub switchover: usize,
    pub failover: usize,
    /// start-replication steps that do not just finish a clone.
    pub start_replication: usize,
    pub set_read_only: usize,
    pub set_durability: usize,
    /// Post hooks of an earlier apply run again.
    pub run_hook: usize,
    pub destructive: usize,
}

impl Plan {
    pub fn add_step(&mut self, step: Step) -> NodeIndex {
        self.graph.add_node(step)
    }

    /// `later` runs only after `earlier` has succeeded.
    pub fn depends_on(&mut self, later: NodeIndex, earlier: NodeIndex) {
        self.graph.update_edge(earlier, later, ());
    }

    pub fn problem(
        &mut self,
        code: Code,
        server: Option<&str>,
        message: String,
        hint: Option<String>,
    ) {
        self.problems.push(Problem {
            code,
            server: server.map(str::to_string),
            message,
            hint,
        });
    }

    pub fn warning(
        &mut self,
        code: Code,
        server: Option<&str>,
        message: String,
        hint: Option<String>,
    ) {
        self.warnings.push(Problem {
            code,
            server: server.map(str::to_string),
            message,
            hint,
        });
    }

    /// The topology this plan leads to: `topology` (the file's), or the one
    /// `--failover` chose.
    pub fn desired<'a>(
        &'a self,
        topology: &'a crate::topology::Topology,
    ) -> &'a crate::topology::Topology {
        self.failover_choice
            .as_ref()
            .map_or(topology, |choice| &choice.topology)
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// The steps in an order that respects every dependency; among steps that
    /// are ready at the same time, the one added first (the planner adds in
    /// server-name order), so the order is deterministic.
    pub fn ordered(&self) -> Vec<NodeIndex> {
        let mut waiting: Vec<usize> = self
            .graph
            .node_indices()
            .map(|n| {
                self.graph
                    .neighbors_directed(n, Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: std::collections::BTreeSet<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|n| waiting[n.index()] == 0)
            .collect();
        let mut order = Vec::with_capacity(waiting.len());
        while let Some(next) = ready.pop_first() {
            order.push(next);
            for after in self.graph.neighbors_directed(next, Direction::Outgoing) {
                waiting[after.index()] -= 1;
                if waiting[after.index()] == 0 {
                    ready.insert(after);
                }
            }
        }
        debug_assert_eq!(order.len(), self.graph.node_count(), "plans are acyclic");
        order
    }

    /// The steps `node` waits for.
    pub fn dependencies(&self, node: NodeIndex) -> Vec<NodeIndex> {
        let mut deps: Vec<NodeIndex> = self
            .graph
            .neighbors_directed(node, Direction::Incoming)
            .collect();
        deps.sort();
        deps
    }

    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for node in self.graph.node_indices() {
            let step = &self.graph[node];
            match step.kind() {
                StepKind::Clone => summary.clone += 1,
                StepKind::StartReplication => {
                    let after_clone = self.dependencies(node).iter().any(|d| {
                        self.graph[*d].kind() == StepKind::Clone
                            && self.graph[*d].target() == step.target()
                    });
                    if !after_clone {
                        summary.start_replication += 1;
                    }
                }
                StepKind::Rechain => summary.rechain += 1,
                StepKind::Switchover => summary.switchover += 1,
                StepKind::Failover => summary.failover += 1,
                StepKind::SetReadOnly => summary.set_read_only += 1,
                StepKind::SetDurability => summary.set_durability += 1,
                StepKind::RunHook => summary.run_hook += 1,
            }
            if step.destructive() {
                summary.destructive += 1;
            }
        }
        summary
    }
}

impl Summary {
    /// `Plan: 2 clone, 0 rechain, 0 switchover, 0 failover; 1 destructive.`
    pub fn line(&self) -> String {
        let mut line = format!(
            "Plan: {} clone, {} rechain, {} switchover, {} failover",
            self.clone, self.rechain, self.switchover, self.failover
        );
        if self.start_replication > 0 {
            line.push_str(&format!(", {} start-replication", self.start_replication));
        }
        if self.set_read_only > 0 {
            line.push_str(&format!(", {} set-read-only", self.set_read_only));
        }
        if self.set_durability > 0 {
            line.push_str(&format!(", {} set-durability", self.set_durability));
        }
        if self.run_hook > 0 {
            line.push_str(&format!(", {} run-hook", self.run_hook));
        }
        line.push_str(&format!("; {} destructive.", self.destructive));
        line
    }
}
