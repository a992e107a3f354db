//! Who may do what: the `view` and `control` roles, from the bearer token of the WHEP POST.
//!
//! Viewing may be open (configurable); control never is. Tokens are compared in constant
//! time, and a wrong token is refused, never downgraded to a lesser role, so a typo is noticed.

use serde::Serialize;
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watch, and use the read-only commands.
    View,
    /// Also steer: claim control, pan/tilt/zoom, camera controls, stream settings.
    Control,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No token, and viewing is not open.
    Missing,
    /// A token that matches no role (or a malformed Authorization header).
    Invalid,
}

#[derive(Clone)]
pub struct Tokens {
    control: String,
    view: Option<String>,
    view_open: bool,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the tokens themselves.
        f.debug_struct("Tokens")
            .field("view_token_set", &self.view.is_some())
            .field("view_open", &self.view_open)
            .finish()
    }
}

impl Tokens {
    pub fn new(control: String, view: Option<String>, view_open: bool) -> Tokens {
        Tokens {
            control,
            view,
            view_open,
        }
    }

    /// The role for a request's `Authorization` header value.
    pub fn role_for(&self, authorization: Option<&str>) -> Result<Role, AuthError> {
        let Some(header) = authorization else {
            return if self.view_open {
                Ok(Role::View)
            } else {
                Err(AuthError::Missing)
            };
        };
        let token = bearer(header).ok_or(AuthError::Invalid)?;
        if matches(token, &self.control) {
            return Ok(Role::Control);
        }
        if self.view.as_deref().is_some_and(|v| matches(token, v)) {
            return Ok(Role::View);
        }
        Err(AuthError::Invalid)
    }
}

/// `Bearer <token>` (scheme case-insensitive, RFC 6750).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn matches(given: &str, expected: &str) -> bool {
    // Length is not secret (tokens are generated at a fixed length); the bytes are.
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(view_open: bool) -> Tokens {
        Tokens::new("c0ntrol".into(), Some("v1ew".into()), view_open)
    }

    #[test]
    fn roles_come_from_the_bearer_token() {
        let t = tokens(false);
        assert_eq!(t.role_for(Some("Bearer c0ntrol")), Ok(Role::Control));
        assert_eq!(t.role_for(Some("bearer   c0ntrol ")), Ok(Role::Control));
        assert_eq!(t.role_for(Some("Bearer v1ew")), Ok(Role::View));
        assert_eq!(t.role_for(None), Err(AuthError::Missing));
        for bad in [
            "Bearer wrong",
            "Bearer c0ntro",
            "Basic c0ntrol",
            "Bearer ",
            "c0ntrol",
            "",
        ] {
            assert_eq!(t.role_for(Some(bad)), Err(AuthError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn open_viewing_needs_no_token_but_a_wrong_one_is_still_refused() {
        let t = tokens(true);
        assert_eq!(t.role_for(None), Ok(Role::View));
        assert_eq!(t.role_for(Some("Bearer nope")), Err(AuthError::Invalid));
        assert_eq!(t.role_for(Some("Bearer c0ntrol")), Ok(Role::Control));
    }

    #[test]
    fn debug_output_hides_the_tokens() {
        let text = format!("{:?}", tokens(true));
        assert!(
            !text.contains("c0ntrol") && !text.contains("v1ew"),
            "{text}"
        );
    }
}
