//! The instance actor (`P/actor`, an `Application`): it signs fetches so that servers in
//! "authorized fetch" mode answer, and signs deliveries that belong to no person.

use activitypub_federation::{
    config::Data,
    kinds::actor::ApplicationType,
    protocol::public_key::PublicKey,
    traits::{Actor, Object},
};
use actix_web::web;
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::app::AppState;

/// The instance actor with its keys.
#[derive(Clone, Debug)]
pub struct InstanceActor {
    pub id: Url,
    pub inbox: Url,
    pub public_key_pem: String,
    pub private_key_pem: String,
}

/// The instance actor as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    #[serde(rename = "type")]
    pub kind: ApplicationType,
    pub id: Url,
    pub preferred_username: String,
    pub name: String,
    pub inbox: Url,
    pub outbox: Url,
    pub url: Url,
    pub public_key: PublicKey,
    pub manually_approves_followers: bool,
}

/// The instance actor, its key pair made at the first start and kept in the `site` table.
pub async fn instance_actor(state: &AppState) -> anyhow::Result<InstanceActor> {
    let pool = &state.db.write;
    let existing: Option<(String, String)> =
        sqlx::query_as("select public_key_pem, private_key_pem from site")
            .fetch_optional(pool)
            .await?;
    let (public_key_pem, private_key_pem) = match existing {
        Some(keys) => keys,
        None => {
            let keys = tokio::task::spawn_blocking(
                activitypub_federation::http_signatures::generate_actor_keypair,
            )
            .await?
            .context("generating the instance key pair")?;
            // Two processes starting at once: the first insert wins and both use its keys.
            sqlx::query("insert into site (id, public_key_pem, private_key_pem) values (1, $1, $2) on conflict do nothing")
                .bind(&keys.public_key)
                .bind(&keys.private_key)
                .execute(pool)
                .await?;
            sqlx::query_as("select public_key_pem, private_key_pem from site")
                .fetch_one(pool)
                .await?
        }
    };
    let origin = state.config.origin();
    Ok(InstanceActor {
        id: format!("{origin}/actor").parse()?,
        inbox: format!("{origin}/inbox").parse()?,
        public_key_pem,
        private_key_pem,
    })
}

impl InstanceActor {
    pub fn to_json(&self, origin: &str, host: &str) -> Application {
        Application {
            kind: ApplicationType::Application,
            id: self.id.clone(),
            preferred_username: host.to_owned(),
            name: format!("lien at {host}"),
            inbox: self.inbox.clone(),
            outbox: format!("{origin}/actor/outbox")
                .parse()
                .expect("valid origin"),
            url: format!("{origin}/").parse().expect("valid origin"),
            public_key: PublicKey {
                id: format!("{}#main-key", self.id),
                owner: self.id.clone(),
                public_key_pem: self.public_key_pem.clone(),
            },
            manually_approves_followers: true,
        }
    }
}

#[async_trait]
impl Object for InstanceActor {
    type DataType = web::Data<AppState>;
    type Kind = Application;
    type Error = crate::federation::FederationError;

    fn last_refreshed_at(&self) -> Option<DateTime<Utc>> {
        Some(Utc::now())
    }

    async fn read_from_id(
        id: Url,
        data: &Data<Self::DataType>,
    ) -> Result<Option<Self>, Self::Error> {
        let actor = instance_actor(data).await?;
        Ok((actor.id == id).then_some(actor))
    }

    async fn into_json(self, data: &Data<Self::DataType>) -> Result<Application, Self::Error> {
        Ok(self.to_json(&data.config.origin(), &data.config.host()))
    }

    async fn verify(_: &Application, _: &Url, _: &Data<Self::DataType>) -> Result<(), Self::Error> {
        Err(crate::federation::FederationError::Forbidden(
            "remote instance actors are not stored".into(),
        ))
    }

    async fn from_json(_: Application, _: &Data<Self::DataType>) -> Result<Self, Self::Error> {
        Err(crate::federation::FederationError::Forbidden(
            "remote instance actors are not stored".into(),
        ))
    }
}

impl Actor for InstanceActor {
    fn id(&self) -> Url {
        self.id.clone()
    }

    fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    fn private_key_pem(&self) -> Option<String> {
        Some(self.private_key_pem.clone())
    }

    fn inbox(&self) -> Url {
        self.inbox.clone()
    }
}
