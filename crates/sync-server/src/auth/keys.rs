//! Signing keys for access tokens. HS256 is pinned; the header's `kid` names the key, so a
//! rotated-out key can still verify tokens until they expire.

use crate::config::{Config, Secret};
use crate::error::AppError;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use uuid::Uuid;

pub const ISSUER: &str = "patrol-sync";
pub const AUDIENCE: &str = "patrol-sync-api";
/// The web console's session cookie is a token for this audience: never accepted as a
/// Bearer token, and a Bearer token is never accepted as the cookie.
pub const CONSOLE_AUDIENCE: &str = "patrol-sync-console";
const SECRET_FILE: &str = "jwt-secret";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Session id: checked on every request, so logout and revocation take effect at once.
    pub sid: Uuid,
    /// Device id.
    pub did: Uuid,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// The console's session cookie: the session like an access token, a longer life (the
/// session row is still checked on every request, so signing out ends it at once), and the
/// CSRF token that requests which change something must echo in `X-CSRF-Token`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConsoleClaims {
    pub sub: Uuid,
    pub sid: Uuid,
    pub did: Uuid,
    pub csrf: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct Keys {
    current_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    pub access_ttl_secs: u64,
}

fn kid_of(secret: &[u8]) -> String {
    hex::encode(&Sha256::digest(secret)[..6])
}

impl Keys {
    pub fn new(current: &[u8], previous: &[Vec<u8>], access_ttl_secs: u64) -> Self {
        let mut decoding = HashMap::new();
        for s in previous
            .iter()
            .map(Vec::as_slice)
            .chain(std::iter::once(current))
        {
            decoding.insert(kid_of(s), DecodingKey::from_secret(s));
        }
        Self {
            current_kid: kid_of(current),
            encoding: EncodingKey::from_secret(current),
            decoding,
            access_ttl_secs,
        }
    }

    /// The configured secret, or the one kept in the data directory (generated on first run).
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        let current = match &config.jwt_secret {
            Some(s) => {
                anyhow::ensure!(
                    s.expose().len() >= 32,
                    "jwt_secret must be at least 32 characters"
                );
                s.expose().as_bytes().to_vec()
            }
            None => load_or_create_secret(&config.data_dir)?,
        };
        let previous: Vec<Vec<u8>> = config
            .jwt_previous_secrets
            .iter()
            .map(|s: &Secret| s.expose().as_bytes().to_vec())
            .collect();
        Ok(Self::new(&current, &previous, config.access_token_ttl_secs))
    }

    pub fn issue(
        &self,
        user: Uuid,
        session: Uuid,
        device: Uuid,
        now_secs: i64,
    ) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current_kid.clone());
        let claims = Claims {
            sub: user,
            sid: session,
            did: device,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now_secs,
            exp: now_secs + self.access_ttl_secs as i64,
        };
        Ok(encode(&header, &claims, &self.encoding)?)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        self.verify_for(token, AUDIENCE)
    }

    /// Signs a console session cookie valid for `ttl_secs`.
    pub fn issue_console(
        &self,
        user: Uuid,
        session: Uuid,
        device: Uuid,
        csrf: String,
        now_secs: i64,
        ttl_secs: i64,
    ) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current_kid.clone());
        let claims = ConsoleClaims {
            sub: user,
            sid: session,
            did: device,
            csrf,
            iss: ISSUER.into(),
            aud: CONSOLE_AUDIENCE.into(),
            iat: now_secs,
            exp: now_secs + ttl_secs,
        };
        Ok(encode(&header, &claims, &self.encoding)?)
    }

    pub fn verify_console(&self, token: &str) -> Result<ConsoleClaims, AppError> {
        self.verify_for(token, CONSOLE_AUDIENCE)
    }

    fn verify_for<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<C, AppError> {
        let header =
            decode_header(token).map_err(|_| AppError::InvalidToken("not a JWT".into()))?;
        if header.alg != Algorithm::HS256 {
            return Err(AppError::InvalidToken(
                "unexpected signing algorithm".into(),
            ));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|k| self.decoding.get(k))
            .ok_or_else(|| AppError::InvalidToken("signed with an unknown key".into()))?;
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 30;
        decode::<C>(token, key, &v).map(|d| d.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            AppError::InvalidToken(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "the access token has expired; refresh it",
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                        "issued for another service"
                    }
                    _ => "malformed token",
                }
                .into(),
            )
        })
    }
}

fn load_or_create_secret(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = dir.join(SECRET_FILE);
    if path.exists() {
        let hex_secret = std::fs::read_to_string(&path)?;
        let bytes = hex::decode(hex_secret.trim())
            .map_err(|_| anyhow::anyhow!("{} is not a hex secret", path.display()))?;
        anyhow::ensure!(bytes.len() >= 32, "{} is too short", path.display());
        return Ok(bytes);
    }
    std::fs::create_dir_all(dir)?;
    let mut bytes = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let tmp = dir.join(format!("{SECRET_FILE}.tmp"));
    write_private(&tmp, hex::encode(&bytes).as_bytes())?;
    std::fs::rename(&tmp, &path)?;
    tracing::info!(path = %path.display(), "generated a JWT secret");
    Ok(bytes)
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000;

    fn ids() -> (Uuid, Uuid, Uuid) {
        (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7())
    }

    #[test]
    fn round_trip_and_rotation_by_kid() {
        let old = Keys::new(b"old-secret-old-secret-old-secret!", &[], 900);
        let new = Keys::new(
            b"new-secret-new-secret-new-secret!",
            &[b"old-secret-old-secret-old-secret!".to_vec()],
            900,
        );
        let (u, s, d) = ids();
        let now = chrono::Utc::now().timestamp();
        let t_old = old.issue(u, s, d, now).unwrap();
        assert_eq!(
            new.verify(&t_old).unwrap().sub,
            u,
            "a rotated-out key still verifies"
        );
        let t_new = new.issue(u, s, d, now).unwrap();
        assert!(old.verify(&t_new).is_err(), "an unknown kid is refused");
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let k = Keys::new(b"a-secret-a-secret-a-secret-a-secret", &[], 900);
        let (u, s, d) = ids();
        let expired = k.issue(u, s, d, NOW - 10_000).unwrap();
        assert!(
            matches!(k.verify(&expired), Err(AppError::InvalidToken(m)) if m.contains("expired"))
        );
        let good = k.issue(u, s, d, chrono::Utc::now().timestamp()).unwrap();
        let mut parts: Vec<String> = good.split('.').map(String::from).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(k.verify(&parts.join(".")).is_err());
        // `alg: none` and other algorithms are refused whatever the payload says.
        let none = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            good.split('.').nth(1).unwrap()
        );
        assert!(k.verify(&none).is_err());
        // Same secret but wrong audience.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid_of(b"a-secret-a-secret-a-secret-a-secret"));
        let claims = Claims {
            sub: u,
            sid: s,
            did: d,
            iss: ISSUER.into(),
            aud: "other".into(),
            iat: NOW,
            exp: chrono::Utc::now().timestamp() + 100,
        };
        let foreign = encode(
            &header,
            &claims,
            &EncodingKey::from_secret(b"a-secret-a-secret-a-secret-a-secret"),
        )
        .unwrap();
        assert!(k.verify(&foreign).is_err());
    }

    #[test]
    fn the_generated_secret_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_secret(dir.path()).unwrap();
        let b = load_or_create_secret(dir.path()).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o077,
                0,
                "secret file must not be readable by others"
            );
        }
    }
}
