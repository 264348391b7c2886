//! Bitmap version vectors, dotted causal containers and node-wide sync (work in progress).
