//! `GET /users`, `GET /users/{id}`, `DELETE /users/{id}` (erases templates and face
//! images, keeps attendance), `DELETE /users/{id}/learned` (the templates walk-ups
//! taught, the enrolment stays) and `DELETE /users?confirm=yes` (all of them).

use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde_json::json;

use crate::http::App;
use crate::http::response::{ApiError, Body, json};
use crate::terminal::{Deadline, input};
use attendance_core::i18n::{Locale, Msg};

pub(crate) async fn list(app: &Arc<App>) -> Result<Response<Body>, ApiError> {
    let users = app.terminal.users().await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "count": users.len(), "users": users }),
    ))
}

pub(crate) async fn get(app: &Arc<App>, id: &str) -> Result<Response<Body>, ApiError> {
    let id = input::id("employee_id", id)?;
    let user = app.terminal.user(id).await?;
    Ok(json(StatusCode::OK, &json!(user)))
}

pub(crate) async fn delete(
    app: &Arc<App>,
    id: &str,
    locale: Locale,
    deadline: &Deadline,
) -> Result<Response<Body>, ApiError> {
    let id = input::id("employee_id", id)?;
    let templates = app.terminal.delete_user(id.clone(), deadline).await?;
    Ok(erased(&id, templates, locale.text(Msg::UserDeleted)))
}

pub(crate) async fn forget_learned(
    app: &Arc<App>,
    id: &str,
    locale: Locale,
    deadline: &Deadline,
) -> Result<Response<Body>, ApiError> {
    let id = input::id("employee_id", id)?;
    let templates = app.terminal.forget_learned(id.clone(), deadline).await?;
    Ok(erased(&id, templates, locale.text(Msg::LearnedForgotten)))
}

/// What an erasure answers (`UserDeleted` in the OpenAPI document, for both routes).
fn erased(employee_id: &str, templates: usize, message: &str) -> Response<Body> {
    json(
        StatusCode::OK,
        &json!({
            "success": true,
            "employee_id": employee_id,
            "templates_deleted": templates,
            "message": message,
        }),
    )
}

pub(crate) async fn reset(
    app: &Arc<App>,
    query: Option<&str>,
    locale: Locale,
    deadline: &Deadline,
) -> Result<Response<Body>, ApiError> {
    let confirmed = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .any(|(k, v)| k == "confirm" && v == "yes");
    if !confirmed {
        return Err(ApiError::field(
            "confirm",
            "add ?confirm=yes to delete every user",
        ));
    }
    let users = app.terminal.reset_users(deadline).await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "success": true, "users_deleted": users, "message": locale.text(Msg::UsersReset) }),
    ))
}
