//! Signing up, logging in and out, and the settings page.

use actix_web::{cookie::Cookie, http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{
    render, render_with, see_other,
    session::{cookie, CsrfForm, Ctx, SESSION_COOKIE},
    views::Layout,
    votes,
};
use crate::{
    accounts::{self as registry, RegisterError},
    config::Registration,
    db::{
        accounts::{self, LeftContent},
        actors, invitations, login_failures, moderation,
    },
    error::{AppError, AppResult},
    federation::outbox,
    links,
    rate_limit::Action,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/signup", web::get().to(signup_form))
        .route("/signup", web::post().to(signup))
        .route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/settings", web::get().to(settings_form))
        .route("/settings", web::post().to(settings))
        .route("/settings/export", web::get().to(export))
        .route("/settings/delete", web::post().to(delete_account));
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
    /// Why the form is not offered (invite mode without a usable invitation).
    refusal: Option<String>,
    /// The invitation the form signs up with.
    invite: String,
    /// Where to go afterwards, and the up-vote to cast then.
    landing: Landing,
}

impl SignupPage {
    fn new(ctx: &Ctx, landing: Landing) -> SignupPage {
        SignupPage {
            landing,
            page: Layout::new(ctx, "Sign up"),
            name: String::new(),
            error: None,
            closed: ctx.state.config.registration == Registration::Closed,
            awaiting: false,
            refusal: None,
            invite: String::new(),
        }
    }
}

const INVITATION_NEEDED: &str =
    "this instance takes new accounts by invitation: ask someone here for an invitation link";
const INVITATION_UNUSABLE: &str =
    "this invitation cannot be used: it was used already, or it does not exist";

#[derive(Deserialize)]
struct InviteQuery {
    #[serde(default)]
    invite: String,
    #[serde(flatten)]
    landing: Landing,
}

/// Where a person goes once logged in or signed up (`next`, a path here), and the up-vote they
/// clicked while logged out (`vote`: `s12` for a story, `c34` for a comment), cast then. Both
/// come from the link that led to the form and travel in it as hidden fields.
#[derive(Deserialize, Default, Clone)]
struct Landing {
    #[serde(default)]
    next: String,
    #[serde(default)]
    vote: String,
}

impl Landing {
    /// Only what is safe to send a browser to: a local path, a well-formed vote.
    fn checked(self) -> Landing {
        let vote = votes::parse_anchor(&self.vote).map_or(String::new(), |_| self.vote);
        Landing {
            next: crate::input::local_path(&self.next).unwrap_or_default(),
            vote,
        }
    }
}

async fn signup_form(ctx: Ctx, query: web::Query<InviteQuery>) -> AppResult<HttpResponse> {
    let query = query.into_inner();
    let mut page = SignupPage::new(&ctx, query.landing.checked());
    if ctx.state.config.registration == Registration::Invite {
        let code = query.invite.trim();
        if code.is_empty() {
            page.refusal = Some(INVITATION_NEEDED.to_owned());
        } else if !invitations::is_usable(&ctx.state.db.write, code).await? {
            page.refusal = Some(INVITATION_UNUSABLE.to_owned());
        } else {
            page.invite = code.to_owned();
        }
    }
    render(&page)
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    /// The invitation's code, in invite mode.
    #[serde(default)]
    invite: String,
    #[serde(flatten)]
    landing: Landing,
}

async fn signup(ctx: Ctx, CsrfForm(form): CsrfForm<Credentials>) -> AppResult<HttpResponse> {
    let registration = ctx.state.config.registration;
    if registration == Registration::Closed {
        return Err(AppError::Forbidden(
            "this instance does not take sign-ups".into(),
        ));
    }
    let code = form.invite.trim();
    if registration == Registration::Invite && code.is_empty() {
        return Err(AppError::Forbidden(INVITATION_NEEDED.into()));
    }
    ctx.limit(Action::Signup)?;
    let db = &ctx.state.db.write;
    // In invite mode the code is claimed first, in a transaction that stays open while the account
    // is made: a second sign-up with the same code waits on it, then finds it used. A failed
    // sign-up rolls the claim back, so the code can be used again.
    let mut claim = None;
    if registration == Registration::Invite {
        let mut tx = db.begin().await?;
        let inviter = invitations::claim(&mut tx, code)
            .await?
            .ok_or_else(|| AppError::Forbidden(INVITATION_UNUSABLE.into()))?;
        claim = Some((tx, inviter));
    }
    let origin = ctx.state.config.origin();
    match registry::register(db, &origin, &form.name, &form.password, "user").await {
        Ok(person) => {
            if let Some((mut tx, inviter)) = claim {
                invitations::record_use(&mut tx, code, inviter, person.id).await?;
                tx.commit().await?;
            }
            if registration == Registration::Approval {
                moderation::hold_for_approval(db, person.id).await?;
                let mut page = SignupPage::new(&ctx, Landing::default());
                page.awaiting = true;
                return render_with(StatusCode::ACCEPTED, &page);
            }
            start_session(&ctx, person.id, form.landing).await
        }
        Err(RegisterError::Internal(e)) => Err(AppError::Internal(e)),
        Err(error) => {
            let status = match error {
                RegisterError::NameTaken => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let mut page = SignupPage::new(&ctx, form.landing.checked());
            page.name = form.name;
            page.error = Some(error.to_string());
            page.invite = code.to_owned();
            render_with(status, &page)
        }
    }
}

/// Logs the browser in, casts the up-vote it clicked while logged out, and sends it on.
async fn start_session(ctx: &Ctx, person_id: i64, landing: Landing) -> AppResult<HttpResponse> {
    let token = accounts::create_session(&ctx.state.db.write, person_id).await?;
    let landing = landing.checked();
    let mut next = if landing.next.is_empty() {
        "/".to_owned()
    } else {
        landing.next
    };
    if let Some(target) = votes::parse_anchor(&landing.vote) {
        // The vote may be on something gone since; logging in still succeeds.
        match votes::record(ctx, person_id, target, 1).await {
            Ok(_) | Err(AppError::NotFound) => {}
            Err(e) => return Err(e),
        }
        next = format!("{next}#{}", votes::anchor(target));
    }
    let mut response = see_other(&next);
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
    landing: Landing,
}

async fn login_form(ctx: Ctx, query: web::Query<Landing>) -> AppResult<HttpResponse> {
    render(&LoginPage {
        page: Layout::new(&ctx, "Log in"),
        name: String::new(),
        error: None,
        landing: query.into_inner().checked(),
    })
}

async fn login(ctx: Ctx, CsrfForm(form): CsrfForm<Credentials>) -> AppResult<HttpResponse> {
    // Failed logins are counted in the database, so that every process sharing it keeps one
    // count. Too many from one address, or from one address for one name, and the next attempt
    // is not even checked: that guesser gets nowhere. Too many for one name from anywhere must
    // not lock its owner out (anyone could, by guessing): attempts on that name are slowed
    // instead, and the right password still logs in.
    let name = form.name.trim().to_lowercase();
    let hard_keys = [ctx.ip.clone(), format!("pair:{}:{name}", ctx.ip)];
    let name_key = format!("name:{name}");
    let limited = ctx.state.limits.enabled();
    let db = &ctx.state.db.write;
    if limited {
        if let Some(seconds) = login_failures::wait(db, &hard_keys).await? {
            return Err(AppError::TooManyRequests(seconds));
        }
        if login_failures::wait(db, std::slice::from_ref(&name_key))
            .await?
            .is_some()
        {
            tokio::time::sleep(login_failures::NAME_UNDER_ATTACK_DELAY).await;
        }
    }
    ctx.limit(Action::Login)?;
    match registry::authenticate(&ctx.state.db.write, &form.name, &form.password).await? {
        Some(person) if person.banned_at.is_some() => {
            Err(AppError::Forbidden("this account is banned".into()))
        }
        Some(person) if person.awaiting_approval => Err(AppError::Forbidden(
            "this account is waiting for a moderator's approval".into(),
        )),
        Some(person) => start_session(&ctx, person.id, form.landing).await,
        None => {
            if limited {
                let [address, pair] = hard_keys;
                login_failures::record(db, &[address, pair, name_key]).await?;
            }
            let page = LoginPage {
                page: Layout::new(&ctx, "Log in"),
                name: form.name,
                error: Some("that name and password do not match".into()),
                landing: form.landing.checked(),
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
    forget_session(see_other("/"))
}

/// Takes the session cookie off the browser.
fn forget_session(mut response: HttpResponse) -> AppResult<HttpResponse> {
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
        return start_session(&ctx, viewer.id, Landing::default()).await;
    }
    Ok(see_other("/settings?saved=1"))
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    password: String,
    /// `keep` (stories and comments stay, under "[deleted]") or `remove` (their text goes).
    #[serde(default)]
    content: String,
}

/// Deletes the signed-in account for good, once the password is given again. Banned people may
/// leave too, as they may download their data.
async fn delete_account(ctx: Ctx, CsrfForm(form): CsrfForm<DeleteForm>) -> AppResult<HttpResponse> {
    let viewer = ctx.viewer.as_ref().ok_or(AppError::LoginRequired)?;
    let content = match form.content.as_str() {
        "keep" => LeftContent::Keep,
        "remove" => LeftContent::Remove,
        _ => {
            return Err(AppError::BadRequest(
                "choose whether your stories and comments stay or go".into(),
            ))
        }
    };
    let db = &ctx.state.db.write;
    if registry::authenticate(db, &viewer.name, &form.password)
        .await?
        .is_none()
    {
        return Err(AppError::BadRequest(
            "the password is not right; your account is still here".into(),
        ));
    }
    let actor = actors::by_id(db, viewer.id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut tx = db.begin().await?;
    // The Delete is queued first: it goes to the account's followers, whose follows go next.
    outbox::account_deleted(&mut tx, &ctx.state, &actor).await?;
    accounts::delete_account(&mut tx, viewer.id, content).await?;
    tx.commit().await?;
    tracing::info!(name = %viewer.name, ?content, "account deleted");
    forget_session(see_other("/?account_deleted=1"))
}
