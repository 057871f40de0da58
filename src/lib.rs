//! sipas: continuous SIPAS satisfaction surveys and indices for Vietnamese public
//! administrative units. `main.rs` is the CLI; everything else lives here so that the
//! integration tests boot exactly what production runs.

pub mod audit;
pub mod auth;
pub mod config;
pub mod demo;
pub mod email;
pub mod entities;
pub mod error;
pub mod export;
pub mod forms;
pub mod imports;
pub mod index;
pub mod plans;
pub mod publish;
pub mod reach;
pub mod routes;
pub mod startup;
pub mod store;
pub mod submit;
pub mod telemetry;
pub mod units;
pub mod web;

pub use error::ApiError;

/// The two languages every user-facing string exists in. Vietnamese is the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    /// `?lang=en` selects English; anything else (or nothing) is Vietnamese.
    pub fn from_param(value: Option<&str>) -> Lang {
        match value {
            Some("en") => Lang::En,
            _ => Lang::Vi,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }
}

/// Units work in Vietnam's time (UTC+7, no daylight saving): a survey date is the local date,
/// so a form sent at 06:30 on 1 March local time (23:30 UTC the day before) is a 1 March one.
pub fn vietnam_date(at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    (at + chrono::TimeDelta::hours(7)).date_naive()
}

/// Today's date in Vietnam.
pub fn vietnam_today() -> chrono::NaiveDate {
    vietnam_date(chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    #[test]
    fn early_morning_in_vietnam_is_already_the_next_day() {
        let at = Utc.with_ymd_and_hms(2024, 2, 29, 23, 30, 0).single();
        let date = at.map(super::vietnam_date);
        assert_eq!(date, NaiveDate::from_ymd_opt(2024, 3, 1));
    }
}
