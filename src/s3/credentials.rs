//! What the client signs with: credentials asked for at signing time.

use rusty_s3::Credentials;

use crate::error::Result;

/// Credentials to sign with, and until when they are valid.
#[derive(Debug, Clone)]
pub struct Signing {
    /// Access key, secret key and optional session token.
    pub credentials: Credentials,
    /// When they expire; `None` for long-lived keys.
    pub expires: Option<jiff::Timestamp>,
}

/// Where the client gets the credentials it signs each request with:
/// asked at signing time, so that temporary credentials are renewed
/// during a long run (`dump --follow`, `append --lines`).
pub trait CredentialSource: Send + Sync + std::fmt::Debug {
    /// Credentials valid now, renewed when they are about to expire.
    fn current(&self) -> Result<Signing>;
    /// New credentials, because the store refused the session token of
    /// `refused` (`ExpiredToken`); ones another thread renewed meanwhile
    /// serve as well, so that threads refused together renew once.
    fn refresh(&self, refused: &Signing) -> Result<Signing>;
}

/// Long-lived keys: always the same, never expiring.
impl CredentialSource for Credentials {
    fn current(&self) -> Result<Signing> {
        Ok(Signing {
            credentials: self.clone(),
            expires: None,
        })
    }

    fn refresh(&self, _: &Signing) -> Result<Signing> {
        self.current()
    }
}
