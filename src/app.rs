//! The state every part of lien shares: the database, the configuration, the rate limits and the
//! caches. It sits beside `web/` and `federation/`, not in either, so that both can stand on it.

use actix_web::web;

use crate::{cache::Caches, config::Config, db::Db, rate_limit::RateLimits};

/// Shared by every handler, inbox and worker.
pub struct AppState {
    pub db: Db,
    pub config: Config,
    pub limits: RateLimits,
    pub caches: Caches,
}

/// The application state every handler shares.
pub fn app_state(db: Db, config: Config) -> web::Data<AppState> {
    let limits = RateLimits::new(config.rate_limits == crate::config::Switch::On);
    web::Data::new(AppState {
        db,
        config,
        limits,
        caches: Default::default(),
    })
}
