//! Test traffic generator (placeholder).
