//! End-to-end tests of drover live in `tests/tests/`: they drive the real
//! `drover` binary (through `drover-chaos`'s harness) against real runbook
//! components built by `drover-test-artifacts`.
