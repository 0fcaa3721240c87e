//! `plangraph token`: create, list and revoke the API tokens partner systems write with. The
//! secret is printed once, on creation; the store keeps only its hash.

use plangraph_domain::access::Role;
use plangraph_domain::codes::Iso3;
use plangraph_persistence::Store;

use crate::error::CliError;

/// Creates a token for `role` (an editor for `countries`, an admin for none) and prints its
/// secret on stdout, the rest on stderr.
pub async fn create(
    store: &Store,
    role: Role,
    countries: &[String],
    name: Option<String>,
) -> Result<(), CliError> {
    let codes = countries
        .iter()
        .map(|c| {
            plangraph_domain::edit::country(c)
                .ok()
                .and_then(|def| Iso3::parse(def.iso3).ok())
                .ok_or_else(|| CliError::Usage(format!("'{c}' is not an R4V country code")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    match (role, codes.is_empty()) {
        (Role::Editor, true) => {
            return Err(CliError::Usage(
                "an editor token needs at least one --country".to_owned(),
            ));
        }
        (Role::Admin, false) => {
            return Err(CliError::Usage(
                "an admin token writes every country; drop --country".to_owned(),
            ));
        }
        _ => {}
    }
    let label = name.unwrap_or_else(|| {
        let scope: Vec<&str> = codes.iter().map(Iso3::as_str).collect();
        format!("{} {}", role.as_str().to_lowercase(), scope.join(" "))
            .trim()
            .to_owned()
    });
    let created = store.create_token(&label, role, &codes).await?;
    eprintln!(
        "token {} ({}, {}) created; its secret is shown once, keep it safe:",
        created.token.id, created.token.name, created.token.role
    );
    println!("{}", created.secret);
    Ok(())
}

/// Prints every token (never a secret), one a line, tab-separated.
pub async fn list(store: &Store) -> Result<(), CliError> {
    println!("id\trole\tcountries\tname\tcreated\trevoked");
    for t in store.tokens().await? {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            t.id,
            t.role,
            if t.countries.is_empty() {
                "*"
            } else {
                &t.countries
            },
            t.name,
            t.created_at.to_rfc3339(),
            t.revoked_at
                .map_or_else(|| "-".to_owned(), |r| r.to_rfc3339())
        );
    }
    Ok(())
}

/// Revokes token `id`: it stops working at once.
pub async fn revoke(store: &Store, id: i32) -> Result<(), CliError> {
    if store.revoke_token(id).await? {
        println!("token {id} revoked");
        Ok(())
    } else {
        Err(CliError::UnknownToken(id))
    }
}
