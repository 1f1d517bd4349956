//! skiff-store (being built).
