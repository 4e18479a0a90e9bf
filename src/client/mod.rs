//! The packaging-pipeline side.
//!
//! - [`submit`]: hash release files, send them to the targets queue, wait until a
//!   `timestamp.json` covers them ([`coverage`]).
//! - [`status`]: what each role's newest metadata says.
//! - [`trust`], [`fetch`], [`download`]: the verifying TUF client, as Composer's TUF plugin
//!   runs it: trusted metadata kept between runs, the specification's update workflow.

pub mod coverage;
pub mod download;
pub mod fetch;
pub mod serve;
pub mod status;
pub mod submit;
pub mod trust;
pub mod validate;
