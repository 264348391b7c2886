//! SWIM membership and failure detection with suspicion and Lifeguard (work in progress).
