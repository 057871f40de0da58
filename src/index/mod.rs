//! The index engine: tallies (the counts a cell needs), the pure maths that turns a tally
//! into published figures (items, groups, SIPAS, intervals, suppression), periods, and the
//! queries that gather tallies for units, periods, filters and breakdowns; the comparison
//! of a unit with the province that contains it.

pub mod catalog;
pub mod compare;
pub mod engine;
pub mod period;
pub mod report;
pub mod tally;
