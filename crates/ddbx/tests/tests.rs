//! Integration tests: the real `ddbx` binary against the local emulators (dynalite for
//! DynamoDB, moto for S3), each test with its own tables, app and folder.

mod support;

mod accounts;
mod capacity;
mod catalog;
mod conformance;
mod copy;
mod edges;
mod emr;
mod emr_faults;
mod export;
mod faults;
mod first_contact;
mod formats;
mod hostile;
mod import;
mod monitor;
mod native;
mod native_aws;
mod object_lock;
mod settings;
