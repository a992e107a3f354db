//! Whole-core tests: to be written.
