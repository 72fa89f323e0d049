//! Invitations: signed-in people make one-use sign-up links (what LIEN_REGISTRATION=invite needs),
//! and everyone can see the tree of who invited whom, as on Lobsters.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{
    render, see_other,
    session::{CsrfForm, Ctx},
    views::{time_ago, Layout},
};
use crate::{
    config::Registration,
    db::invitations::{self, Invitation, Member},
    error::{AppError, AppResult},
    rate_limit::Action,
};

/// How many unused invitations one person may hold at once.
pub const MAX_UNUSED: i64 = 5;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/invitations", web::get().to(list))
        .route("/invitations", web::post().to(create))
        .route("/invitations/tree", web::get().to(tree));
}

#[derive(Template)]
#[template(path = "account/invitations.html")]
struct InvitationsPage {
    page: Layout,
    invitations: Vec<Invitation>,
    origin: String,
    can_make: bool,
    invite_mode: bool,
}

impl InvitationsPage {
    fn ago(invitation: &Invitation) -> String {
        time_ago(invitation.created_at)
    }
}

async fn list(ctx: Ctx) -> AppResult<HttpResponse> {
    let viewer = ctx.require_viewer()?;
    let db = &ctx.state.db.write;
    let invitations = invitations::of_inviter(db, viewer.id).await?;
    let unused = invitations.iter().filter(|i| i.used_by.is_none()).count() as i64;
    render(&InvitationsPage {
        invitations,
        origin: ctx.state.config.origin(),
        can_make: unused < MAX_UNUSED,
        invite_mode: ctx.state.config.registration == Registration::Invite,
        page: Layout::new(&ctx, "Invitations"),
    })
}

#[derive(Deserialize)]
struct Confirm {}

async fn create(ctx: Ctx, _form: CsrfForm<Confirm>) -> AppResult<HttpResponse> {
    let viewer = ctx.require_viewer()?;
    ctx.limit(Action::Invite)?;
    let db = &ctx.state.db.write;
    if invitations::unused_count(db, viewer.id).await? >= MAX_UNUSED {
        return Err(AppError::Conflict(format!(
            "you have {MAX_UNUSED} unused invitations already: hand those out first"
        )));
    }
    invitations::create(db, viewer.id).await?;
    Ok(see_other("/invitations"))
}

/// One account in the tree, in depth-first order, with what the template needs to nest the list.
pub struct TreeLine {
    pub name: String,
    pub depth: usize,
    /// Nested lists to close before this line (the previous line was deeper).
    pub closes_before: usize,
    pub has_children: bool,
}

#[derive(Template)]
#[template(path = "account/tree.html")]
struct TreePage {
    page: Layout,
    lines: Vec<TreeLine>,
    /// Nested lists still open after the last line.
    closes_after: usize,
}

async fn tree(ctx: Ctx) -> AppResult<HttpResponse> {
    let members = invitations::members(ctx.read_db()).await?;
    let lines = tree_lines(&members);
    render(&TreePage {
        closes_after: lines.last().map_or(0, |line| line.depth),
        lines,
        page: Layout::new(&ctx, "Invitation tree"),
    })
}

/// Orders accounts as a tree: each under whoever invited it, oldest first among siblings. An
/// account whose inviter is gone (deleted) or who signed up without one is a root.
pub fn tree_lines(members: &[Member]) -> Vec<TreeLine> {
    let known: std::collections::HashSet<i64> = members.iter().map(|m| m.id).collect();
    let mut children: HashMap<Option<i64>, Vec<&Member>> = HashMap::new();
    for member in members {
        let parent = member.invited_by.filter(|p| known.contains(p));
        children.entry(parent).or_default().push(member);
    }
    let mut lines: Vec<TreeLine> = Vec::with_capacity(members.len());
    // Depth-first with an explicit stack: invitation chains can be long.
    let mut stack: Vec<(&Member, usize)> = children
        .get(&None)
        .into_iter()
        .flatten()
        .rev()
        .map(|m| (*m, 0))
        .collect();
    while let Some((member, depth)) = stack.pop() {
        let previous = lines.last().map_or(0, |line| line.depth);
        let below = children.get(&Some(member.id));
        lines.push(TreeLine {
            name: member.name.clone(),
            depth,
            closes_before: previous.saturating_sub(depth),
            has_children: below.is_some(),
        });
        stack.extend(below.into_iter().flatten().rev().map(|m| (*m, depth + 1)));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_nests_each_account_under_its_inviter() {
        let member = |id, name: &str, invited_by| Member {
            id,
            name: name.to_owned(),
            invited_by,
        };
        let members = [
            member(1, "root", None),
            member(2, "ann", Some(1)),
            member(3, "ben", Some(2)),
            member(4, "cy", Some(1)),
            member(5, "dee", None),
            member(6, "orphan", Some(99)),
        ];
        let lines = tree_lines(&members);
        let shape: Vec<(&str, usize, usize, bool)> = lines
            .iter()
            .map(|l| (l.name.as_str(), l.depth, l.closes_before, l.has_children))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("root", 0, 0, true),
                ("ann", 1, 0, true),
                ("ben", 2, 0, false),
                ("cy", 1, 1, false),
                ("dee", 0, 1, false),
                ("orphan", 0, 0, false),
            ]
        );
    }
}
