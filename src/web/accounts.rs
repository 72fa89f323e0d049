//! Signing up, logging in and out, and the settings page.

use actix_web::{cookie::Cookie, http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{
    rate_limit::Action,
    render, render_with, see_other,
    session::{cookie, CsrfForm, Ctx, SESSION_COOKIE},
    views::Layout,
};
use crate::{
    accounts::{self as registry, RegisterError},
    config::Registration,
    db::{accounts, moderation},
    error::{AppError, AppResult},
    links,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/signup", web::get().to(signup_form))
        .route("/signup", web::post().to(signup))
        .route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/settings", web::get().to(settings_form))
        .route("/settings", web::post().to(settings))
        .route("/settings/export", web::get().to(export));
}

/// The signed-in person's data, as a JSON download (banned people may have theirs too).
async fn export(ctx: Ctx) -> AppResult<HttpResponse> {
    let viewer = ctx.viewer.as_ref().ok_or(AppError::LoginRequired)?;
    let data = accounts::export(&ctx.state.db.write, viewer.id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"lien-{}.json\"", viewer.name),
        ))
        .insert_header(("Cache-Control", "private, no-store"))
        .json(data))
}

#[derive(Template)]
#[template(path = "account/signup.html")]
struct SignupPage {
    page: Layout,
    name: String,
    error: Option<String>,
    closed: bool,
    /// Signed up, waiting for a moderator's approval.
    awaiting: bool,
}

fn signups_closed(ctx: &Ctx) -> bool {
    // Invitations are not built yet: until they are, that means closed.
    !matches!(
        ctx.state.config.registration,
        Registration::Open | Registration::Approval
    )
}

async fn signup_form(ctx: Ctx) -> AppResult<HttpResponse> {
    render(&SignupPage {
        closed: signups_closed(&ctx),
        awaiting: false,
        page: Layout::new(&ctx, "Sign up"),
        name: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

async fn signup(ctx: Ctx, CsrfForm(form): CsrfForm<Credentials>) -> AppResult<HttpResponse> {
    if signups_closed(&ctx) {
        return Err(AppError::Forbidden(
            "this instance does not take sign-ups".into(),
        ));
    }
    ctx.limit(Action::Signup)?;
    let origin = ctx.state.config.origin();
    match registry::register(
        &ctx.state.db.write,
        &origin,
        &form.name,
        &form.password,
        "user",
    )
    .await
    {
        Ok(person) if ctx.state.config.registration == Registration::Approval => {
            moderation::hold_for_approval(&ctx.state.db.write, person.id).await?;
            render_with(
                StatusCode::ACCEPTED,
                &SignupPage {
                    page: Layout::new(&ctx, "Sign up"),
                    name: String::new(),
                    error: None,
                    closed: false,
                    awaiting: true,
                },
            )
        }
        Ok(person) => start_session(&ctx, person.id).await,
        Err(RegisterError::Internal(e)) => Err(AppError::Internal(e)),
        Err(error) => {
            let status = match error {
                RegisterError::NameTaken => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let page = SignupPage {
                page: Layout::new(&ctx, "Sign up"),
                name: form.name,
                error: Some(error.to_string()),
                closed: false,
                awaiting: false,
            };
            render_with(status, &page)
        }
    }
}

async fn start_session(ctx: &Ctx, person_id: i64) -> AppResult<HttpResponse> {
    let token = accounts::create_session(&ctx.state.db.write, person_id).await?;
    let mut response = see_other("/");
    response
        .add_cookie(&cookie(
            SESSION_COOKIE,
            token,
            ctx.state.config.secure_cookies(),
        ))
        .map_err(|e| anyhow::anyhow!("cookie: {e}"))?;
    Ok(response)
}

#[derive(Template)]
#[template(path = "account/login.html")]
struct LoginPage {
    page: Layout,
    name: String,
    error: Option<String>,
}

async fn login_form(ctx: Ctx) -> AppResult<HttpResponse> {
    render(&LoginPage {
        page: Layout::new(&ctx, "Log in"),
        name: String::new(),
        error: None,
    })
}

async fn login(ctx: Ctx, CsrfForm(form): CsrfForm<Credentials>) -> AppResult<HttpResponse> {
    // Failed logins are limited hard, by address and by the name tried; a limited attempt is not
    // even checked, so guessing gets nowhere.
    let name_key = format!("name:{}", form.name.trim().to_lowercase());
    let keys = [ctx.ip.as_str(), name_key.as_str()];
    let limits = &ctx.state.limits;
    limits
        .peek(Action::LoginFailure, &keys)
        .map_err(AppError::TooManyRequests)?;
    ctx.limit(Action::Login)?;
    match registry::authenticate(&ctx.state.db.write, &form.name, &form.password).await? {
        Some(person) if person.banned_at.is_some() => {
            Err(AppError::Forbidden("this account is banned".into()))
        }
        Some(person) if person.awaiting_approval => Err(AppError::Forbidden(
            "this account is waiting for a moderator's approval".into(),
        )),
        Some(person) => start_session(&ctx, person.id).await,
        None => {
            if let Err(seconds) = limits.hit(Action::LoginFailure, &keys) {
                return Err(AppError::TooManyRequests(seconds));
            }
            let page = LoginPage {
                page: Layout::new(&ctx, "Log in"),
                name: form.name,
                error: Some("that name and password do not match".into()),
            };
            render_with(StatusCode::UNAUTHORIZED, &page)
        }
    }
}

#[derive(Deserialize)]
struct Confirm {}

async fn logout(ctx: Ctx, req: HttpRequest, _form: CsrfForm<Confirm>) -> AppResult<HttpResponse> {
    if let Some(token) = req.cookie(SESSION_COOKIE) {
        accounts::delete_session(&ctx.state.db.write, token.value()).await?;
    }
    let mut response = see_other("/");
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    response
        .add_cookie(&gone)
        .map_err(|e| anyhow::anyhow!("cookie: {e}"))?;
    Ok(response)
}

#[derive(Template)]
#[template(path = "account/settings.html")]
struct SettingsPage {
    page: Layout,
    display_name: String,
    bio: String,
    avatar_url: String,
    notice: Option<String>,
    errors: Vec<String>,
}

#[derive(Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

async fn settings_form(ctx: Ctx, query: web::Query<SavedQuery>) -> AppResult<HttpResponse> {
    let viewer = ctx.require_viewer()?.clone();
    render(&SettingsPage {
        page: Layout::new(&ctx, "Settings"),
        display_name: viewer.display_name,
        bio: viewer.bio,
        avatar_url: viewer.avatar_url.unwrap_or_default(),
        notice: query.saved.as_ref().map(|_| "Saved.".to_owned()),
        errors: vec![],
    })
}

#[derive(Deserialize)]
struct SettingsForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    bio: String,
    #[serde(default)]
    avatar_url: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

async fn settings(ctx: Ctx, CsrfForm(form): CsrfForm<SettingsForm>) -> AppResult<HttpResponse> {
    let viewer = ctx.require_viewer()?.clone();
    let mut errors = Vec::new();
    let display_name = form.display_name.trim();
    if display_name.chars().count() > 100 {
        errors.push("display names are limited to 100 characters".to_owned());
    }
    let bio = form.bio.trim();
    if bio.len() > 2000 {
        errors.push("the bio is limited to 2,000 characters".to_owned());
    }
    let avatar = form.avatar_url.trim();
    let avatar_url = if avatar.is_empty() {
        None
    } else {
        match links::parse_link(avatar) {
            Ok(url) => Some(url.to_string()),
            Err(e) => {
                errors.push(format!("avatar URL: {e}"));
                None
            }
        }
    };
    let new_hash = if form.new_password.is_empty() {
        None
    } else if let Err(e) = registry::check_password(&form.new_password) {
        errors.push(e.to_string());
        None
    } else if registry::authenticate(&ctx.state.db.write, &viewer.name, &form.current_password)
        .await?
        .is_none()
    {
        errors.push("the current password is not right".to_owned());
        None
    } else {
        Some(registry::hash_password(form.new_password.clone()).await?)
    };
    if !errors.is_empty() {
        let page = SettingsPage {
            page: Layout::new(&ctx, "Settings"),
            display_name: form.display_name,
            bio: form.bio,
            avatar_url: form.avatar_url,
            notice: None,
            errors,
        };
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let db = &ctx.state.db.write;
    accounts::update_profile(db, viewer.id, display_name, bio, avatar_url.as_deref()).await?;
    if let Some(hash) = new_hash {
        accounts::set_password_hash(db, viewer.id, &hash).await?;
        // A new password ends every other login; this one starts afresh.
        accounts::delete_sessions_of(db, viewer.id).await?;
        return start_session(&ctx, viewer.id).await;
    }
    Ok(see_other("/settings?saved=1"))
}
