//! [`FaultPlan`]: a schedule of faults over nodes named by position, generated from a seed
//! or (feature `proptest`) by proptest, and applied to any [`Sim`]. Protocol crates use it
//! for property tests over random failure schedules; shrinking gives the smallest plan
//! that still breaks an invariant.

use std::time::Duration;

use epidemic_core::Machine;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::config::{LinkConfig, Loss};
use crate::sim::{Sim, SimError};

/// One fault. Nodes are indices into the peer list given to [`FaultPlan::apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Crash the node.
    Crash(usize),
    /// Restart the node from the simulation's restart factory.
    Restart(usize),
    /// Cut these nodes off from the rest (one side; everyone else is the other).
    Partition(Vec<usize>),
    /// Remove any partition.
    Heal,
    /// Give the directed link its own model (`None`: back to the default).
    Link {
        /// Sender index.
        from: usize,
        /// Receiver index.
        to: usize,
        /// The model.
        link: Option<LinkConfig>,
    },
    /// Delay everything sent to the node by this much (zero: normal again).
    Slow(usize, Duration),
}

/// Faults at virtual times, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// `(when, what)`, sorted by time.
    pub faults: Vec<(Duration, Fault)>,
}

/// What a generated plan may contain.
#[derive(Debug, Clone, Copy)]
pub struct PlanShape {
    /// Nodes the faults name (indices `0..nodes`).
    pub nodes: usize,
    /// Faults fall in `[0, horizon)`.
    pub horizon: Duration,
    /// At most this many faults.
    pub max_faults: usize,
    /// Whether restarts may appear (the simulation then needs a restart factory).
    pub restarts: bool,
    /// Nodes that are never crashed, cut off alone or slowed (e.g. a seed node a test
    /// needs alive); indices `0..protected`.
    pub protected: usize,
}

impl FaultPlan {
    /// A random plan of the given shape, from `rng`.
    #[must_use]
    pub fn random(rng: &mut ChaCha8Rng, shape: &PlanShape) -> Self {
        let count = if shape.max_faults == 0 {
            0
        } else {
            rng.random_range(0..=shape.max_faults)
        };
        let horizon = shape.horizon.as_nanos().max(1);
        let mut faults: Vec<(Duration, Fault)> = (0..count)
            .map(|_| {
                let at = Duration::from_nanos(
                    u64::try_from(rng.random_range(0..horizon)).unwrap_or(u64::MAX),
                );
                (at, random_fault(rng, shape))
            })
            .collect();
        faults.sort_by_key(|f| f.0);
        Self { faults }
    }

    /// Schedules every fault on `sim`; `peers[i]` is node `i`.
    ///
    /// # Errors
    /// [`SimError::UnknownPeer`] if an index is out of range or names an unknown peer,
    /// [`SimError::NoRestartFactory`] if the plan restarts and none is set. Faults before
    /// the failing one stay scheduled.
    pub fn apply<M: Machine>(&self, sim: &mut Sim<M>, peers: &[M::Peer]) -> Result<(), SimError>
    where
        M::Message: Clone,
    {
        let peer = |i: usize| {
            peers
                .get(i)
                .ok_or_else(|| SimError::UnknownPeer(format!("node index {i}")))
        };
        for (at, fault) in &self.faults {
            let at = *at;
            match fault {
                Fault::Crash(i) => sim.schedule_crash(at, peer(*i)?)?,
                Fault::Restart(i) => sim.schedule_restart(at, peer(*i)?)?,
                Fault::Partition(side) => {
                    let side = side
                        .iter()
                        .map(|&i| peer(i).cloned())
                        .collect::<Result<Vec<_>, _>>()?;
                    sim.schedule_partition(at, &[side])?;
                }
                Fault::Heal => sim.schedule_heal(at),
                Fault::Link { from, to, link } => {
                    sim.schedule_link(at, peer(*from)?, peer(*to)?, link.clone())?;
                }
                Fault::Slow(i, extra) => sim.schedule_slow(at, peer(*i)?, *extra)?,
            }
        }
        Ok(())
    }

    /// Nodes the plan crashes and never restarts afterwards (a test's "expected dead").
    #[must_use]
    pub fn left_crashed(&self) -> Vec<usize> {
        let mut down = std::collections::BTreeSet::new();
        for (_, f) in &self.faults {
            match f {
                Fault::Crash(i) => {
                    down.insert(*i);
                }
                Fault::Restart(i) => {
                    down.remove(i);
                }
                _ => {}
            }
        }
        down.into_iter().collect()
    }
}

fn random_fault(rng: &mut ChaCha8Rng, shape: &PlanShape) -> Fault {
    let n = shape.nodes.max(1);
    let exposed = shape.protected.min(n - 1)..n;
    let any = |rng: &mut ChaCha8Rng| rng.random_range(0..n);
    let victim = |rng: &mut ChaCha8Rng| rng.random_range(exposed.clone());
    let kinds = if shape.restarts { 6 } else { 5 };
    match rng.random_range(0..kinds) {
        0 => Fault::Crash(victim(rng)),
        1 => {
            let size = rng.random_range(1..=n.div_ceil(2));
            let mut side: Vec<usize> = (0..size).map(|_| victim(rng)).collect();
            side.sort_unstable();
            side.dedup();
            Fault::Partition(side)
        }
        2 => Fault::Heal,
        3 => {
            let loss = rng.random_range(0.0..1.0);
            let link = rng.random_bool(0.8).then(|| LinkConfig {
                loss: Loss::Uniform(loss),
                ..LinkConfig::default()
            });
            Fault::Link {
                from: any(rng),
                to: any(rng),
                link,
            }
        }
        4 => {
            let extra = Duration::from_millis(rng.random_range(0..2_000));
            Fault::Slow(victim(rng), extra)
        }
        _ => Fault::Restart(victim(rng)),
    }
}

/// proptest strategies for fault plans: shrink toward fewer, later-free, simpler faults.
#[cfg(feature = "proptest")]
pub mod strategy {
    use super::{Fault, FaultPlan, PlanShape};
    use crate::config::{LinkConfig, Loss};
    use proptest::prelude::*;
    use std::time::Duration;

    /// Plans of the given shape.
    pub fn plans(shape: PlanShape) -> impl Strategy<Value = FaultPlan> {
        let horizon = u64::try_from(shape.horizon.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let n = shape.nodes.max(1);
        let first = shape.protected.min(n - 1);
        let victim = first..n;
        let mut kinds: Vec<BoxedStrategy<Fault>> = vec![
            victim.clone().prop_map(Fault::Crash).boxed(),
            prop::collection::btree_set(victim.clone(), 1..=n.div_ceil(2))
                .prop_map(|s| Fault::Partition(s.into_iter().collect()))
                .boxed(),
            Just(Fault::Heal).boxed(),
            (0..n, 0..n, prop::option::of(0.0..1.0f64))
                .prop_map(|(from, to, loss)| Fault::Link {
                    from,
                    to,
                    link: loss.map(|p| LinkConfig {
                        loss: Loss::Uniform(p),
                        ..LinkConfig::default()
                    }),
                })
                .boxed(),
            (victim.clone(), 0..2_000u64)
                .prop_map(|(i, ms)| Fault::Slow(i, Duration::from_millis(ms)))
                .boxed(),
        ];
        if shape.restarts {
            kinds.push(victim.prop_map(Fault::Restart).boxed());
        }
        let fault = prop::strategy::Union::new(kinds);
        prop::collection::vec((0..horizon, fault), 0..=shape.max_faults).prop_map(|mut v| {
            v.sort_by_key(|f| f.0);
            FaultPlan {
                faults: v
                    .into_iter()
                    .map(|(ms, f)| (Duration::from_millis(ms), f))
                    .collect(),
            }
        })
    }
}
