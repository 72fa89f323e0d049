//! Creating accounts and checking passwords: shared by the signup page and `lien user create`.

use anyhow::Context;
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use sqlx::PgPool;

use crate::db::accounts::{self, NewLocalPerson, Person};

pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("usernames are 1 to 30 characters: lowercase letters, digits and _")]
    BadName,
    #[error("passwords need at least {MIN_PASSWORD} characters (and at most {MAX_PASSWORD})")]
    BadPassword,
    #[error("that username is taken")]
    NameTaken,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Usernames are `[a-z0-9_]{1,30}`; what people type is lowercased first.
pub fn normalize_name(input: &str) -> Result<String, RegisterError> {
    let name = input.trim().to_lowercase();
    let valid = (1..=30).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(name)
    } else {
        Err(RegisterError::BadName)
    }
}

pub fn check_password(password: &str) -> Result<(), RegisterError> {
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(RegisterError::BadPassword)
    }
}

/// Creates a local account with its signing key pair. `role` is `user`, `moderator` or `admin`.
pub async fn register(
    pool: &PgPool,
    origin: &str,
    name: &str,
    password: &str,
    role: &str,
) -> Result<Person, RegisterError> {
    let name = normalize_name(name)?;
    check_password(password)?;
    if accounts::find_local(pool, &name)
        .await
        .context("looking up the name")?
        .is_some()
    {
        return Err(RegisterError::NameTaken);
    }
    let hash = hash_password(password.to_owned()).await?;
    // Every person signs their own activities (SPEC section 5), so the key pair is made now.
    let keys = tokio::task::spawn_blocking(
        activitypub_federation::http_signatures::generate_actor_keypair,
    )
    .await
    .context("key generation panicked")?
    .context("could not generate a key pair")?;
    let ap_id = format!("{origin}/users/{name}");
    let created = accounts::create_local(
        pool,
        NewLocalPerson {
            name: &name,
            ap_id: &ap_id,
            password_hash: &hash,
            public_key_pem: &keys.public_key,
            private_key_pem: &keys.private_key,
            role,
        },
    )
    .await
    .context("storing the account")?;
    created.ok_or(RegisterError::NameTaken)
}

/// Hashes with argon2id off the async executor: hashing is deliberately slow.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await
    .context("hashing panicked")?
}

/// Checks a password against a stored hash, off the async executor.
pub async fn verify_password(password: String, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed =
            PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash is invalid: {e}"))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .context("verification panicked")?
}

/// Checks a name and password; returns the person when they match.
pub async fn authenticate(
    pool: &PgPool,
    name: &str,
    password: &str,
) -> anyhow::Result<Option<Person>> {
    let Some(person) = accounts::find_local(pool, name.trim()).await? else {
        // Spend the same time as a real check, so response times do not reveal which names exist.
        let _ = hash_password(password.to_owned()).await;
        return Ok(None);
    };
    let Some(hash) = accounts::password_hash(pool, person.id).await? else {
        return Ok(None);
    };
    Ok(verify_password(password.to_owned(), hash)
        .await?
        .then_some(person))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercased_and_checked() {
        assert_eq!(normalize_name(" Alice_1 ").unwrap(), "alice_1");
        assert!(normalize_name("").is_err());
        assert!(normalize_name("a-b").is_err());
        assert!(normalize_name("é").is_err());
        assert!(normalize_name(&"a".repeat(31)).is_err());
        assert!(normalize_name(&"a".repeat(30)).is_ok());
    }
}
