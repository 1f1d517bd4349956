//! skiff-backend-cpu (being built).
