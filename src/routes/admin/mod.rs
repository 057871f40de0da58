//! Endpoints behind a login: sessions and unit administration.

pub mod auth;
pub mod indices;
pub mod units;
pub mod volumes;
