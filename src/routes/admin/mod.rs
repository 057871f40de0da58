//! Endpoints behind a login: sessions and unit administration.

pub mod auth;
pub mod units;
