//! A run's lifecycle ([`lifecycle`]: the one path every job and engine goes through) and
//! what a run leaves beside its data: the app's lock, the status flags downstream jobs
//! poll, the checkpoints it resumes from, and the stop signal that ends it cleanly.

pub mod checkpoint;
pub mod flags;
pub mod lifecycle;
pub mod lock;
pub mod stop;
