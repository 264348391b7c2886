//! Write coordinator: hinted handoff, sloppy quorums and a crash-safe hint log (work in progress).
