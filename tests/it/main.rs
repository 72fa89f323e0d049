//! One integration-test binary: every module links in here, so the crate is built once.

mod accounts;
mod binary;
mod caches;
mod cluster;
mod comments;
mod deletion;
mod delivery;
mod fedbench;
mod federated_moderation;
mod federation;
mod fedify;
mod feeds;
mod floors;
mod helpers;
mod indexes;
mod invitations;
mod mastodon;
mod moderation;
mod notifications;
mod ops;
mod previews;
mod reading;
mod signatures;
mod stories;
mod votes;
