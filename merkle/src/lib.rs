//! Merkle-tree anti-entropy with exact repair, and rateless set reconciliation (work in progress).
