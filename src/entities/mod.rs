//! sea-orm entities, one per table, mirroring `migrations/` (written in sea-orm-codegen's
//! layout; keep them in step with the migrations, which are the source of truth).

pub mod answer;
pub mod api_key;
pub mod audit;
pub mod code;
pub mod export_chunk;
pub mod export_job;
pub mod form;
pub mod outbox;
pub mod password_reset;
pub mod plan;
pub mod plan_comment;
pub mod plan_criterion;
pub mod response;
pub mod secret;
pub mod session;
pub mod tally;
pub mod unfolded;
pub mod unit;
pub mod unit_change;
pub mod unit_link;
pub mod user;
pub mod volume;
