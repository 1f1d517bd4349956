//! skiff-models (being built).
