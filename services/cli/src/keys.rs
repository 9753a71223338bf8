//! `hush keys` and `hush attest`: make API keys (and the hashes the configuration holds), an
//! identity system's signing key with its public JWKS, and attestations signed with it, for a
//! first deployment, the demo and tests. A production identity system signs with its own key.

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use hush_auth::attestation::AttestationClaims;
use hush_auth::keys::{new_api_key, SigningKey};
use hush_auth::Scope;
use hush_contracts::events::IdentifierType;
use hush_contracts::identifiers::hash_identifier;

/// `hush keys …`.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make an API key: prints the key (give it to the client) and the `[[auth.api_keys]]`
    /// block holding only its hash.
    ApiKey {
        /// Client name recorded as the actor.
        #[arg(long)]
        client: String,
        /// Scopes, e.g. `requests:opt_out`; repeat the flag for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// Make an Ed25519 signing key for an identity system: writes `<out>/identity.pem`
    /// (private, mode 0600) and `<out>/jwks.json` (public, for `[auth.attestation] jwks_file`).
    Identity {
        /// Key id.
        #[arg(long, default_value = "identity-1")]
        kid: String,
        /// Directory to write to.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `hush attest`: sign an attestation that a consumer was verified.
#[derive(Args)]
pub struct Attest {
    /// The identity system's private key (`hush keys identity` wrote it).
    #[arg(long)]
    key: PathBuf,
    /// Its key id.
    #[arg(long, default_value = "identity-1")]
    kid: String,
    /// Issuer (`[auth.attestation] issuer`).
    #[arg(long)]
    issuer: String,
    /// Email the consumer proved.
    #[arg(long)]
    email: String,
    /// How the consumer was verified.
    #[arg(long, default_value = "EMAIL_LINK")]
    method: String,
    /// Validity of the attestation, in seconds.
    #[arg(long, default_value_t = 600)]
    ttl: i64,
}

/// Runs `hush keys …`.
pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::ApiKey { client, scopes } => {
            let scopes = scopes
                .iter()
                .map(|name| {
                    Scope::parse(name).with_context(|| {
                        format!(
                            "unknown scope `{name}` (known: {})",
                            Scope::ALL.map(Scope::as_str).join(", ")
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let key = new_api_key();
            println!("key: {}", key.key);
            println!();
            println!("[[auth.api_keys]]");
            println!("client = {}", toml_string(&client));
            println!("sha256 = \"{}\"", key.sha256);
            println!(
                "scopes = [{}]",
                scopes
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(())
        }
        KeysCommand::Identity { kid, out } => {
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let key = SigningKey::generate(&kid);
            let private = out.join("identity.pem");
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&private)
                .and_then(|mut file| std::io::Write::write_all(&mut file, key.to_pem().as_bytes()))
                .with_context(|| format!("writing {}", private.display()))?;
            let public = out.join("jwks.json");
            std::fs::write(&public, serde_json::to_string_pretty(&key.jwks())?)
                .with_context(|| format!("writing {}", public.display()))?;
            println!("{}", private.display());
            println!("{}", public.display());
            Ok(())
        }
    }
}

/// Runs `hush attest`: prints the signed attestation.
pub fn attest(args: Attest) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let key = SigningKey::from_pem(&args.kid, &pem)?;
    let now = chrono::Utc::now().timestamp();
    let identifier_sha256 = hash_identifier(IdentifierType::Email, &args.email)
        .map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    println!(
        "{}",
        key.sign(&AttestationClaims {
            iss: args.issuer,
            aud: None,
            exp: now + args.ttl,
            iat: now,
            identifier_sha256,
            method: args.method,
            verified_at: now,
        })
    );
    Ok(())
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}
