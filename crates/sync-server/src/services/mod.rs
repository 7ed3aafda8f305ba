//! What requests mean, between thin handlers and the store.

pub mod auth;
pub mod cursor;
pub mod hazards;
pub mod patrol;
pub mod photos;
pub mod sync;
pub mod thumbs;
