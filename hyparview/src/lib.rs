//! HyParView partial views: the peer-sampling service under Plumtree (work in progress).
