//! One module per operation family.

pub mod bucket;
pub mod list;
pub mod multipart;
pub mod object;
