//! One module per operation family, and what the families share.
//!
//! Invariant: `ops` imports `request`, `reply`, `error` and the body and
//! XML helpers, never `service`; a family module may use `stage` and
//! `conditions` but never another family.

pub mod bucket;
pub mod conditions;
pub mod list;
pub mod multipart;
pub mod object;
pub mod stage;
