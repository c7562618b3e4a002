//! drydock's token management (`/drydock/v1/tokens`): list, create with scopes, revoke. Only a
//! token with full access may manage tokens, so a narrow token cannot mint a wider one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use drydock_catalog::Token;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Path, int_id};

const TOKEN_NAME_BYTES_MAX: usize = 128;

fn require_full_access(caller: &Caller) -> ApiResult<()> {
    if crate::scopes::allows(&caller.token.scopes, "token:create")
        && caller.token.scopes.iter().any(|s| s == "*" || s == "*:*")
    {
        Ok(())
    } else {
        Err(ApiError::forbidden("managing tokens needs a token with full access (scope *)"))
    }
}

fn view(token: &Token) -> Value {
    json!({"id": token.id, "name": token.name, "scopes": token.scopes, "created_at": token.created_at})
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    require_full_access(&caller)?;
    let tokens = state.blocking(move |state| Ok(state.catalog.tokens(caller.team.id)?)).await?;
    Ok(Json(json!({"tokens": tokens.iter().map(view).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
pub struct CreateToken {
    name: String,
    scopes: Vec<String>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    require_full_access(&caller)?;
    if body.name.is_empty() || body.name.len() > TOKEN_NAME_BYTES_MAX || body.name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(format!("name must be 1 to {TOKEN_NAME_BYTES_MAX} bytes")));
    }
    if body.scopes.is_empty() {
        return Err(ApiError::unprocessable("scopes must name at least one scope"));
    }
    for scope in &body.scopes {
        crate::scopes::validate(scope).map_err(ApiError::unprocessable)?;
    }
    let created =
        state.blocking(move |state| Ok(state.catalog.create_token(caller.team.id, &body.name, &body.scopes)?)).await?;
    let mut token = view(&created.token);
    token["secret"] = created.secret.into();
    Ok((StatusCode::CREATED, Json(json!({ "token": token }))))
}

pub async fn revoke(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    require_full_access(&caller)?;
    let id = int_id("token", &id)?;
    state.blocking(move |state| Ok(state.catalog.revoke_token(caller.team.id, id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
