//! Endpoints behind a login: sessions and unit administration.

pub mod audit;
pub mod auth;
pub mod exports;
pub mod indices;
pub mod plans;
pub mod reach;
pub mod units;
pub mod users;
pub mod volumes;
