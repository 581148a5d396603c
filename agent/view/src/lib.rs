//! How a run looks, computed once from its journal for every reader:
//!
//! - [`run`]: the stable JSON view (`drover show --json`, the console) and
//!   the human timeline (`drover show`).
//! - [`report`]: the report a person reads in a minute (`drover report`,
//!   the console's run page): verdict, RTO and RPO against objectives,
//!   timeline chart, changes, failures.

pub mod report;
pub mod run;

pub use report::Report;
pub use run::{RunView, orphaned, stopped, timeline};
