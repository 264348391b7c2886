//! What a simulation is configured with: the seed, the default link model and the
//! transport.

use std::time::Duration;

/// The configuration of a [`Sim`](crate::Sim).
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seeds the one ChaCha RNG every random choice of the run comes from.
    pub seed: u64,
    /// The fault model of every directed link that has no override.
    pub link: LinkConfig,
    /// Datagrams (loss and duplication apply, reordering possible) or connections (FIFO per
    /// link, failures reported as link-down).
    pub transport: Transport,
    /// Whether to keep every application event with its time and node (turn off for very
    /// large runs that only need counters).
    pub record_events: bool,
    /// How many of the last steps to keep and print when an invariant fails (0: none).
    pub flight_recorder: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            link: LinkConfig::default(),
            transport: Transport::Datagram,
            record_events: true,
            flight_recorder: 32,
        }
    }
}

impl SimConfig {
    /// The default configuration with `seed`.
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }
}

/// How messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// UDP-like: each message independently lost, duplicated and delayed, so reordering
    /// happens. `handle_link_down` is never called.
    #[default]
    Datagram,
    /// TCP-like: FIFO per directed link, no loss or duplication on a live connection.
    /// A send to a crashed or partitioned peer fails, and a crash or a partition breaks the
    /// connections it crosses: each side that is up hears `handle_link_down` after
    /// `failure_detection`. `Output::Disconnect` closes a connection and the remote side
    /// hears `handle_link_down` one link latency later.
    Connection {
        /// How long a transport takes to notice a dead peer or path (connect or keepalive
        /// timeout).
        failure_detection: Duration,
    },
}

/// The fault model of one directed link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Base one-way delay.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` per message, so that messages
    /// overtake each other on datagram links.
    pub jitter: Duration,
    /// Message loss (datagram transport only).
    pub loss: Loss,
    /// Probability that a delivered message is delivered a second time, with its own delay
    /// (datagram transport only).
    pub duplicate: f64,
}

impl Default for LinkConfig {
    /// 10 ms ± 5 ms, lossless: a LAN with some queueing.
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(10),
            jitter: Duration::from_millis(5),
            loss: Loss::None,
            duplicate: 0.0,
        }
    }
}

impl LinkConfig {
    /// A link that drops everything: an asymmetric cut when set on one direction only.
    #[must_use]
    pub fn down() -> Self {
        Self {
            loss: Loss::Uniform(1.0),
            ..Self::default()
        }
    }

    /// Whether this link never delivers anything.
    #[must_use]
    pub fn is_down(&self) -> bool {
        matches!(self.loss, Loss::Uniform(p) if p >= 1.0)
    }
}

/// How a link loses messages.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Loss {
    /// Nothing is lost.
    #[default]
    None,
    /// Each message is lost independently with this probability.
    Uniform(f64),
    /// Losses come in bursts (Gilbert–Elliott two-state model).
    Bursty(GilbertElliott),
}

/// The Gilbert–Elliott channel: a good and a bad state, each with its own loss probability,
/// and a Markov transition drawn before each message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Probability of moving from good to bad before a message.
    pub p_good_to_bad: f64,
    /// Probability of moving from bad to good before a message.
    pub p_bad_to_good: f64,
    /// Loss probability in the good state.
    pub loss_in_good: f64,
    /// Loss probability in the bad state.
    pub loss_in_bad: f64,
}

impl GilbertElliott {
    /// The classic Gilbert model with a long-run loss `rate` and bursts of mean length
    /// `mean_burst` messages: every message is lost in the bad state, none in the good one.
    ///
    /// The stationary share of the bad state is `p_gb / (p_gb + p_bg)`; with
    /// `p_bg = 1 / mean_burst` that gives `p_gb = rate · p_bg / (1 − rate)`.
    #[must_use]
    pub fn with_rate(rate: f64, mean_burst: f64) -> Self {
        let rate = rate.clamp(0.0, 0.999_999);
        let p_bad_to_good = 1.0 / mean_burst.max(1.0);
        Self {
            p_good_to_bad: (rate * p_bad_to_good / (1.0 - rate)).min(1.0),
            p_bad_to_good,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        }
    }

    /// The long-run loss rate of this channel.
    #[must_use]
    pub fn mean_loss(&self) -> f64 {
        let total = self.p_good_to_bad + self.p_bad_to_good;
        if total <= 0.0 {
            return self.loss_in_good;
        }
        let bad = self.p_good_to_bad / total;
        bad * self.loss_in_bad + (1.0 - bad) * self.loss_in_good
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gilbert_rate_round_trips() {
        for rate in [0.01, 0.05, 0.2, 0.5] {
            let ge = GilbertElliott::with_rate(rate, 4.0);
            assert!((ge.mean_loss() - rate).abs() < 1e-12, "{rate}");
            assert!((ge.p_bad_to_good - 0.25).abs() < 1e-12);
        }
    }

    #[test]
    fn down_link_is_down() {
        assert!(LinkConfig::down().is_down());
        assert!(!LinkConfig::default().is_down());
    }
}
