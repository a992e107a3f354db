//! Shell tests.
