//! A run's lifecycle ([`lifecycle`]: the one path every job and engine goes through) and
//! what a run leaves beside its data: the app's lock, the status flags downstream jobs
//! poll, the checkpoints it resumes from. (The stop signal that ends a run cleanly is
//! `crate::stop`, below everything that waits on it.)

pub mod checkpoint;
pub mod flags;
pub mod lifecycle;
pub mod lock;
