//! The operator token: from `OPTIN_ADMIN_TOKEN`, or generated once on first start.
//!
//! Only its hash is stored. A generated token is written once to `<data-dir>/operator-token`
//! (mode 0600) and printed once; later starts neither print nor rewrite it.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use jiff::Timestamp;
use optin_core::secret::{OPERATOR_TOKEN_PREFIX, format_secret, hash_secret};
use optin_store::Store;
use optin_store::tenancy::random_bytes;

/// The file a generated operator token is written to, inside the data directory.
pub const TOKEN_FILE: &str = "operator-token";

/// What startup did about the operator token.
#[derive(Debug, PartialEq, Eq)]
pub enum OperatorToken {
    /// `OPTIN_ADMIN_TOKEN` was given; its hash is now the stored one.
    FromEnvironment,
    /// A new token was generated and written to the file; shown once.
    Generated { token: String, file: std::path::PathBuf },
    /// A token was configured before; nothing changed.
    Existing,
}

/// Makes sure an operator token exists, preferring the one from the environment.
pub async fn ensure_operator_token(
    store: &dyn Store,
    from_environment: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<OperatorToken> {
    if let Some(token) = from_environment.map(str::trim).filter(|t| !t.is_empty()) {
        anyhow::ensure!(token.len() >= 16, "OPTIN_ADMIN_TOKEN must be at least 16 characters");
        let hash = hash_secret(token);
        if store.operator_token_hash().await?.as_deref() != Some(hash.as_str()) {
            store.set_operator_token_hash(&hash, Timestamp::now()).await?;
        }
        return Ok(OperatorToken::FromEnvironment);
    }
    if store.operator_token_hash().await?.is_some() {
        return Ok(OperatorToken::Existing);
    }
    let token = format_secret(OPERATOR_TOKEN_PREFIX, &random_bytes());
    let file = data_dir.join(TOKEN_FILE);
    write_secret_file(&file, &token)?;
    store.set_operator_token_hash(&hash_secret(&token), Timestamp::now()).await?;
    Ok(OperatorToken::Generated { token, file })
}

/// Writes a secret to a new file readable only by its owner.
pub fn write_secret_file(path: &Path, secret: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("while creating {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("while writing {}", path.display()))?;
    writeln!(file, "{secret}").with_context(|| format!("while writing {}", path.display()))?;
    Ok(())
}
