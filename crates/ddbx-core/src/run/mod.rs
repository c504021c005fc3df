//! What a run leaves beside its data: the app's lock and the status flags downstream
//! jobs poll.

pub mod checkpoint;
pub mod flags;
pub mod lock;
pub mod stop;
