//! Read coordinator: consistency levels, digest reads and read repair (work in progress).
