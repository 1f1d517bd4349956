//! skiff-sample (being built).
