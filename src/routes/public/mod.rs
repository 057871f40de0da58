//! Endpoints anyone may call: health, forms, public unit info, submissions.

pub mod forms;
pub mod health;
pub mod responses;
pub mod units;
