//! `resizer sign`: prints a signed variant URL, as a tenant's app would make it.

use std::process::ExitCode;

/// Arguments of `resizer sign`.
#[derive(clap::Args)]
pub struct SignArgs {
    /// The signing secret (`sgs_…`); prefer the variable to the flag, which other users can see in `ps`.
    #[arg(long, env = "RESIZER_SIGNING_SECRET", hide_env_values = true)]
    secret: String,
    /// The service's public base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// The tenant id (`ten_…`).
    #[arg(long)]
    tenant: String,
    /// The original's name.
    #[arg(long)]
    name: String,
    /// Seconds from now after which the URL is refused; none by default.
    #[arg(long)]
    expires_in: Option<u64>,
    /// Resize parameters, `name=value` (e.g. `width=320 format=auto`).
    params: Vec<String>,
}

/// Prints the URL, or why not.
pub fn run(args: SignArgs) -> ExitCode {
    match url(&args, resizer_core::time::now_unix_secs()) {
        Ok(url) => {
            println!("{url}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("resizer sign: {e}");
            ExitCode::from(2)
        }
    }
}

fn url(args: &SignArgs, now: i64) -> Result<String, String> {
    let tenant =
        resizer_core::ids::TenantId::parse(&args.tenant).ok_or("--tenant is not a tenant id (ten_…)")?;
    let name = resizer_originals::OriginalName::parse(&args.name).map_err(|e| format!("--name: {e}"))?;
    if !resizer_core::signing::is_secret(&args.secret) {
        return Err("--secret is not a signing secret (sgs_…)".into());
    }
    let mut pairs = Vec::new();
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("{p:?} is not name=value"))?;
        pairs.push((k.to_string(), v.to_string()));
    }
    let exp = args.expires_in.map(|secs| now.max(0) as u64 + secs);
    let path = format!("/v1/img/{tenant}/{name}");
    let signed = resizer_core::signing::signed_path_and_query(&args.secret, &path, &pairs, exp);
    Ok(format!("{}{signed}", args.base_url.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sign_builds_a_url_that_verifies() {
        let secret = resizer_core::signing::new_secret();
        let tenant = resizer_core::ids::TenantId::random();
        let args = SignArgs {
            secret: secret.clone(),
            base_url: "https://img.example.com/".into(),
            tenant: tenant.to_string(),
            name: "a/b.jpg".into(),
            expires_in: Some(60),
            params: vec!["width=320".into(), "format=auto".into()],
        };
        let made = url(&args, 1000).unwrap();
        let rest = made.strip_prefix("https://img.example.com").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        assert_eq!(path, format!("/v1/img/{tenant}/a/b.jpg"));
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .map(|kv| kv.split_once('=').unwrap())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sig = pairs.pop().unwrap();
        assert_eq!(sig.0, "sig");
        assert!(pairs.contains(&("exp".into(), "1060".into())));
        assert_eq!(
            resizer_core::signing::verify([secret.as_str()], path, &pairs, &sig.1),
            Some(0)
        );
        let bad = SignArgs {
            name: "../x".into(),
            ..args
        };
        assert!(url(&bad, 0).is_err());
    }
}
