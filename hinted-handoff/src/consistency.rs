//! [`Consistency`]: how many acknowledgements a write needs.

use serde::{Deserialize, Serialize};

/// A write's consistency level (Cassandra's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Consistency {
    /// One acknowledgement, and a stored hint counts as one: the write succeeds as long as
    /// the coordinator itself can keep a hint, even with every owner down.
    Any,
    /// One replica.
    One,
    /// Two replicas.
    Two,
    /// Three replicas.
    Three,
    /// A majority of the N replicas: `N / 2 + 1`.
    Quorum,
    /// All N replicas.
    All,
    /// An explicit count.
    Count(u8),
}

impl Consistency {
    /// Acknowledgements needed among `replicas` (N).
    #[must_use]
    pub fn required(self, replicas: usize) -> usize {
        match self {
            Consistency::Any | Consistency::One => 1,
            Consistency::Two => 2,
            Consistency::Three => 3,
            Consistency::Quorum => replicas / 2 + 1,
            Consistency::All => replicas,
            Consistency::Count(k) => usize::from(k),
        }
    }

    /// Whether stored hints count toward the level (only [`Consistency::Any`]).
    #[must_use]
    pub fn hints_count(self) -> bool {
        matches!(self, Consistency::Any)
    }
}

#[cfg(test)]
mod tests {
    use super::Consistency::*;

    #[test]
    fn required_counts() {
        let got: Vec<usize> = [Any, One, Two, Three, Quorum, All, Count(4)]
            .iter()
            .map(|c| c.required(5))
            .collect();
        assert_eq!(got, [1, 1, 2, 3, 3, 5, 4]);
        assert_eq!(Quorum.required(3), 2);
        assert!(Any.hints_count() && !One.hints_count());
    }
}
