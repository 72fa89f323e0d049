//! One integration-test binary: every module links in here, so the crate is built once.

mod accounts;
mod cluster;
mod comments;
mod helpers;
mod stories;
mod votes;
