//! Tokens `sluice login` got, kept per gateway under the user's config
//! directory (`$XDG_CONFIG_HOME/sluice/tokens.json`, else
//! `~/.config/sluice/tokens.json`), the directory `0700` and the file
//! `0600`. Commands use the cached token of their gateway (`SLUICE_URL`)
//! when `SLUICE_TOKEN` is unset. A token past its expiry is not used; one
//! within a minute of it is refreshed first when the issuer gave a
//! refresh token (the device flow), which is kept here too.

use anyhow::{Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::device::{Refresh, Tokens};

/// One gateway's cached login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub token: String,
    /// The issuer the token came from (`dev` for the playground's).
    pub issuer: String,
    /// Unix seconds, from the token's `exp`.
    pub expires_at: Option<i64>,
    /// How to get the next token without the person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Refresh>,
}

impl Entry {
    pub fn expired(&self) -> bool {
        self.expires_within(0)
    }

    fn expires_within(&self, secs: i64) -> bool {
        self.expires_at
            .is_some_and(|exp| exp <= sluice_core::clock::now().timestamp() + secs)
    }
}

/// Refreshes gateway `url`'s cached token when it expires within a
/// minute and a refresh token is kept. A refused refresh forgets the
/// refresh token (it will not work again) and says so; it is an error
/// only once the token in hand has expired.
pub async fn refresh_if_due(url: &str) -> Result<()> {
    let Some(entry) = read_all().remove(url) else {
        return Ok(());
    };
    let Some(r) = entry.refresh.as_ref().filter(|_| entry.expires_within(60)) else {
        return Ok(());
    };
    match super::device::refresh(r).await {
        Ok(t) => {
            store(url, &t, &entry.issuer)?;
            Ok(())
        }
        Err(e) => {
            let mut all = read_all();
            if let Some(kept) = all.get_mut(url) {
                kept.refresh = None;
                write_all(&all)?;
            }
            // The token in hand still works until it expires.
            if entry.expired() {
                return Err(e);
            }
            eprintln!("sluice: {e:#}");
            Ok(())
        }
    }
}

/// The cache file's path.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("sluice").join("tokens.json"))
}

fn read_all() -> BTreeMap<String, Entry> {
    path()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_all(all: &BTreeMap<String, Entry>) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let path = path().context("no home directory to keep the token in (set XDG_CONFIG_HOME)")?;
    let dir = path.parent().expect("a file in a directory");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // Written beside, private from the first byte, then renamed over.
    // A fresh name, created here and now (never an existing file or link).
    let mut nonce = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    let tmp = dir.join(format!(".tokens.{}.tmp", hex::encode(nonce)));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(all)?)?;
    f.sync_all()?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The unexpired cached token for gateway `url`.
pub fn token_for(url: &str) -> Option<String> {
    read_all()
        .remove(url)
        .filter(|e| !e.expired())
        .map(|e| e.token)
}

/// Caches `tokens` for gateway `url`; the file's path.
pub fn store(url: &str, tokens: &Tokens, issuer: &str) -> Result<PathBuf> {
    let mut all = read_all();
    all.insert(
        url.to_string(),
        Entry {
            token: tokens.access.clone(),
            issuer: issuer.to_string(),
            expires_at: claims(&tokens.access)["exp"].as_i64(),
            refresh: tokens.refresh.clone(),
        },
    );
    write_all(&all)
}

/// Forgets gateway `url`'s token; true when there was one.
pub fn remove(url: &str) -> Result<bool> {
    let mut all = read_all();
    let had = all.remove(url).is_some();
    if had {
        write_all(&all)?;
    }
    Ok(had)
}

/// A JWT's claims, read without checking the signature: for display and
/// expiry only (the gateway verifies every token it is given).
pub fn claims(token: &str) -> Value {
    token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}
