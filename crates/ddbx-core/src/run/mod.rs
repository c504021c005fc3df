//! A run's lifecycle ([`lifecycle`]: the one path every job and engine goes through) and
//! what a run leaves beside its data: the app's lock and the status flags downstream jobs
//! poll ([`status`]). (The stop signal that ends a run cleanly is `crate::stop`, and the
//! checkpoints a run resumes from are `crate::checkpoint`: both sit below the engines that
//! use them.)

pub mod lifecycle;
pub mod lock;
pub mod status;
