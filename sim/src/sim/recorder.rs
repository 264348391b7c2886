//! The flight recorder: the last few steps of a run, printed when an invariant fails so a
//! failing seed comes with the story of how it got there.

use std::collections::VecDeque;
use std::fmt::Write;
use std::time::Duration;

use crate::network::NodeId;

/// One step the simulator took.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    Deliver { from: NodeId, to: NodeId, kind: u16 },
    Timer(NodeId),
    LinkDown { node: NodeId, peer: NodeId },
    Crash(NodeId),
    Restart(NodeId),
    Start(NodeId),
    Partition,
    Heal,
    SetLink { from: NodeId, to: NodeId },
    Command(NodeId),
    Slow(NodeId),
}

/// The last `capacity` steps, oldest first.
#[derive(Debug)]
pub(super) struct Recorder {
    steps: VecDeque<(u64, Step)>,
    capacity: usize,
}

impl Recorder {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            steps: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    pub(super) fn record(&mut self, at: u64, step: Step) {
        if self.capacity == 0 {
            return;
        }
        if self.steps.len() == self.capacity {
            self.steps.pop_front();
        }
        self.steps.push_back((at, step));
    }

    /// One line per step, naming nodes with `name` and message kinds with `kind`.
    pub(super) fn lines(
        &self,
        name: impl Fn(NodeId) -> String,
        kind: impl Fn(u16) -> &'static str,
    ) -> Vec<String> {
        self.steps
            .iter()
            .map(|&(at, step)| {
                let ms = Duration::from_nanos(at).as_secs_f64() * 1e3;
                let mut line = format!("{ms:>14.6} ms  ");
                let _ = match step {
                    Step::Deliver { from, to, kind: k } => {
                        write!(line, "deliver {} {} -> {}", kind(k), name(from), name(to))
                    }
                    Step::Timer(n) => write!(line, "timeout at {}", name(n)),
                    Step::LinkDown { node, peer } => {
                        write!(line, "link down at {}: lost {}", name(node), name(peer))
                    }
                    Step::Crash(n) => write!(line, "crash {}", name(n)),
                    Step::Restart(n) => write!(line, "restart {}", name(n)),
                    Step::Start(n) => write!(line, "start {}", name(n)),
                    Step::Partition => write!(line, "partition"),
                    Step::Heal => write!(line, "heal"),
                    Step::SetLink { from, to } => {
                        write!(line, "link {} -> {} changed", name(from), name(to))
                    }
                    Step::Command(n) => write!(line, "command at {}", name(n)),
                    Step::Slow(n) => write!(line, "slowness of {} changed", name(n)),
                };
                line
            })
            .collect()
    }
}
