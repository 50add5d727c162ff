//! `sluice token`: an access token by client credentials, by the device
//! flow for a person (`--device`), or a playground token from the
//! development issuer (`--dev`).

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use super::client::Client;
use super::device::{self, Tokens};

#[derive(Args)]
pub struct TokenArgs {
    /// Mint a token from the playground's development issuer (`sluice dev`).
    #[arg(long)]
    dev: bool,
    /// With --dev: the subject (who the token speaks for).
    #[arg(long, requires = "dev")]
    sub: Option<String>,
    /// With --dev: comma-separated groups.
    #[arg(long, requires = "dev", value_delimiter = ',')]
    groups: Vec<String>,
    /// With --dev: a display name.
    #[arg(long, requires = "dev")]
    name: Option<String>,
    /// Token lifetime (--dev only), e.g. "1h".
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// Issuer URL for client credentials (its discovery document names the token endpoint).
    #[arg(long, env = "SLUICE_ISSUER", conflicts_with = "dev")]
    issuer: Option<String>,
    /// OAuth client id.
    #[arg(long, env = "SLUICE_CLIENT_ID", conflicts_with = "dev")]
    client_id: Option<String>,
    /// Environment variable holding the client secret (never pass secrets as arguments).
    #[arg(long, default_value = "SLUICE_CLIENT_SECRET")]
    client_secret_env: String,
    /// Scopes to ask for (Okta custom authorization servers need one).
    #[arg(long)]
    scope: Option<String>,
    /// RFC 8707 resource (the audience) to ask for.
    #[arg(long)]
    resource: Option<String>,
    /// How the client proves itself at the token endpoint:
    /// `client_secret_basic` (HTTP Basic), `client_secret_post` (in the
    /// form), or `private_key_jwt` (an assertion signed with --private-key,
    /// what Okta recommends for service apps).
    #[arg(long, value_enum, default_value = "client-secret-basic")]
    client_auth: ClientAuth,
    /// With private_key_jwt: the client's private key (PKCS#8 PEM, EC P-256
    /// or RSA), registered with the issuer as a public JWK.
    #[arg(long, value_name = "FILE")]
    private_key: Option<std::path::PathBuf>,
    /// With private_key_jwt: the key's id (`kid`) as registered.
    #[arg(long)]
    key_id: Option<String>,
    /// Sign a person in by the device flow: prints a URL and a code, and
    /// waits while they sign in at the issuer in any browser. The client
    /// is public (no secret); the issuer's refresh token, when it gives
    /// one, keeps `sluice login` fresh.
    #[arg(long, conflicts_with_all = ["dev", "private_key"])]
    pub device: bool,
    /// With --device: the sign-in instructions as a JSON line on stderr.
    #[arg(skip)]
    pub json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ClientAuth {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
}

pub async fn run(a: TokenArgs) -> Result<()> {
    println!("{}", obtain(&a).await?.access);
    Ok(())
}

/// Tokens as `a` asks: from the playground's issuer, by the device flow,
/// or by client credentials at a real issuer.
pub async fn obtain(a: &TokenArgs) -> Result<Tokens> {
    if a.dev {
        return Ok(Tokens {
            access: dev_token(a).await?,
            refresh: None,
        });
    }
    let (Some(issuer), Some(client_id)) = (&a.issuer, &a.client_id) else {
        bail!("give --issuer and --client-id (or use --dev with the playground)");
    };
    let http = device::http()?;
    let doc = discover(&http, issuer).await?;
    if a.device {
        return device::sign_in(
            &http,
            &doc,
            client_id,
            a.scope.as_deref(),
            a.resource.as_deref(),
            a.json,
        )
        .await;
    }
    Ok(Tokens {
        access: client_credentials(a, &http, &doc, client_id).await?,
        refresh: None,
    })
}

/// The issuer's discovery document, which must be its own (OpenID
/// Connect Discovery 1.0, section 4.3), or a secret could be sent where
/// it names.
async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Value> {
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc: Value = http
        .get(&discovery)
        .send()
        .await
        .with_context(|| format!("cannot reach {discovery}"))?
        .json()
        .await
        .context("the discovery document is not JSON")?;
    if doc["issuer"].as_str().map(|i| i.trim_end_matches('/')) != Some(issuer.trim_end_matches('/'))
    {
        bail!("the discovery document at {discovery} names another issuer");
    }
    Ok(doc)
}

/// The issuer `a` names (`dev` for the playground's).
pub fn issuer_of(a: &TokenArgs) -> String {
    a.issuer.clone().unwrap_or_else(|| "dev".into())
}

async fn dev_token(a: &TokenArgs) -> Result<String> {
    let Some(sub) = &a.sub else {
        bail!("--dev needs --sub NAME (and usually --groups A,B)");
    };
    let ttl = humantime::parse_duration(&a.ttl).context("--ttl")?;
    let client = Client::from_env()?;
    let body = json!({ "sub": sub, "groups": a.groups, "name": a.name, "ttl_secs": ttl.as_secs() });
    let resp = client
        .post_anonymous("/dev-issuer/token", &body)
        .await
        .context("the playground issuer did not answer; is `sluice dev` running?")?;
    access_token(&resp)
}

async fn client_credentials(
    a: &TokenArgs,
    http: &reqwest::Client,
    doc: &Value,
    client_id: &str,
) -> Result<String> {
    let read_secret = || {
        std::env::var(&a.client_secret_env)
            .with_context(|| format!("set the client secret in ${}", a.client_secret_env))
    };
    let Some(endpoint) = doc["token_endpoint"].as_str() else {
        bail!("the issuer's discovery document has no token_endpoint");
    };
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = &a.scope {
        form.push(("scope", s));
    }
    if let Some(r) = &a.resource {
        form.push(("resource", r));
    }
    let (secret, assertion): (String, String);
    let req = match a.client_auth {
        ClientAuth::ClientSecretBasic => {
            secret = read_secret()?;
            http.post(endpoint).basic_auth(client_id, Some(&secret))
        }
        ClientAuth::ClientSecretPost => {
            secret = read_secret()?;
            form.push(("client_id", client_id));
            form.push(("client_secret", &secret));
            http.post(endpoint)
        }
        ClientAuth::PrivateKeyJwt => {
            assertion = client_assertion(a, client_id, endpoint)?;
            form.push(("client_id", client_id));
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
            form.push(("client_assertion", &assertion));
            http.post(endpoint)
        }
    };
    let resp = req
        .form(&form)
        .send()
        .await
        .with_context(|| format!("cannot reach {endpoint}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "the issuer refused: {} {}",
            body["error"].as_str().unwrap_or("error"),
            body["error_description"].as_str().unwrap_or("")
        );
    }
    access_token(&body)
}

/// RFC 7523 client authentication: a short-lived JWT about the client,
/// for the token endpoint, signed with its private key (ES256 for an EC
/// key, RS256 for an RSA one).
fn client_assertion(a: &TokenArgs, client_id: &str, endpoint: &str) -> Result<String> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let Some(path) = &a.private_key else {
        bail!("--client-auth private-key-jwt needs --private-key FILE");
    };
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (alg, key) = match EncodingKey::from_ec_pem(&pem) {
        Ok(k) => (Algorithm::ES256, k),
        Err(_) => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&pem)
                .context("--private-key is neither an EC P-256 nor an RSA private key (PEM)")?,
        ),
    };
    let mut header = Header::new(alg);
    header.kid = a.key_id.clone();
    let now = sluice_core::clock::now().timestamp();
    let mut jti = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut jti);
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": endpoint,
        "iat": now,
        "exp": now + 60,
        "jti": hex::encode(jti),
    });
    jsonwebtoken::encode(&header, &claims, &key).context("cannot sign the client assertion")
}

fn access_token(body: &Value) -> Result<String> {
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .context("the answer has no access_token")
}
