//! The tokens in force: from the configuration, or a control token generated at first start
//! and kept in the state directory (mode 0600).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::AuthConfig;
use crate::control::Tokens;
use crate::hub::ViewerId;

const CONTROL_TOKEN_FILE: &str = "control-token";

/// The tokens, and the control token if it was generated just now (to print the URL once).
pub fn load(auth: &AuthConfig) -> Result<(Tokens, Option<String>), String> {
    let (control, generated) = match &auth.control_token {
        Some(t) => (t.clone(), None),
        None => {
            let dir = state_dir(auth);
            let (token, fresh) = load_or_create(&dir)?;
            (token.clone(), fresh.then_some(token))
        }
    };
    Ok((
        Tokens::new(control, auth.view_token.clone(), auth.view_open),
        generated,
    ))
}

/// `auth.state_dir`, else systemd's $STATE_DIRECTORY, else the usual place for the user.
pub fn state_dir(auth: &AuthConfig) -> PathBuf {
    if let Some(dir) = &auth.state_dir {
        return dir.clone();
    }
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may list several, separated by ':'; ours is the first.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    if is_root() {
        return PathBuf::from("/var/lib/rtcam");
    }
    if let Some(state) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(state).join("rtcam");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/rtcam")
}

fn is_root() -> bool {
    // The owner of /proc/self is the effective user.
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A new random token: 32 bytes from the OS as lowercase hex (URL-fragment and header safe).
fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A new viewer id: 16 random bytes from the OS. The id is the viewer's WHEP resource, and
/// knowing it is what allows a DELETE, so it must not be guessable.
pub fn new_viewer_id() -> Result<ViewerId, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(ViewerId(u128::from_be_bytes(bytes)))
}

/// Reads the stored control token, or creates one. True when created now.
fn load_or_create(dir: &Path) -> Result<(String, bool), String> {
    let path = dir.join(CONTROL_TOKEN_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.len() < 16 {
                return Err(format!(
                    "{} holds no usable token; delete it to make a new one",
                    path.display()
                ));
            }
            // Tighten permissions left loose by hand edits.
            if let Ok(meta) = fs::metadata(&path)
                && meta.permissions().mode() & 0o077 != 0
            {
                let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));
            }
            Ok((token, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let token = generate_token().map_err(|e| format!("no randomness for a token: {e}"))?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            file.write_all(format!("{token}\n").as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok((token, true))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rtcam-tokens-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_control_token_is_generated_once_with_mode_0600() {
        let dir = temp("gen");
        let auth = AuthConfig {
            state_dir: Some(dir.clone()),
            ..AuthConfig::default()
        };
        let (_, first) = load(&auth).unwrap();
        let token = first.expect("generated at first start");
        let path = dir.join(CONTROL_TOKEN_FILE);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (tokens, second) = load(&auth).unwrap();
        assert_eq!(second, None, "not generated (or printed) again");
        assert_eq!(
            tokens.role_for(Some(&format!("Bearer {token}"))),
            Ok(crate::control::Role::Control)
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn generated_tokens_and_viewer_ids_are_long_and_differ() {
        let (a, b) = (generate_token().unwrap(), generate_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_ne!(new_viewer_id().unwrap(), new_viewer_id().unwrap());
    }

    #[test]
    fn a_configured_token_wins_and_nothing_is_written() {
        let dir = temp("cfg");
        let auth = AuthConfig {
            state_dir: Some(dir.clone()),
            control_token: Some("configured-token-0123456789".into()),
            ..AuthConfig::default()
        };
        let (tokens, generated) = load(&auth).unwrap();
        assert_eq!(generated, None);
        assert!(
            tokens
                .role_for(Some("Bearer configured-token-0123456789"))
                .is_ok()
        );
        assert!(!dir.exists());
    }

    #[test]
    fn a_damaged_token_file_is_a_clear_error() {
        let dir = temp("bad");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(CONTROL_TOKEN_FILE), "x\n").unwrap();
        let auth = AuthConfig {
            state_dir: Some(dir.clone()),
            ..AuthConfig::default()
        };
        let err = load(&auth).err().unwrap();
        assert!(err.contains("no usable token"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
