//! Shared fixtures: a masker with the playground's rules and a catalog.
#![allow(dead_code)]

use std::sync::Arc;

use sluice_mask::*;

pub const CUSTOMERS: u32 = 16384;
pub const KEY: &[u8] = b"test hash key";

pub fn config(toml_text: &str) -> MaskingConfig {
    toml::from_str(toml_text).unwrap()
}

/// card_number partial, ssn redact, email partial, `*_token` hashed, all detectors.
pub fn masker() -> Arc<Masker> {
    let c = config(
        r#"
columns = [
  { column = "public.customers.card_number", style = "partial" },
  { column = "*.*.ssn", style = "redact" },
  { column = "customers.email", style = "partial" },
  { column = "customers.born", style = "redact" },
  { column = "customers.api_token", style = "hash" },
]
names = [{ name = "*_secret", style = "null" }]
"#,
    );
    Arc::new(Masker::new(&c, Some(KEY)).unwrap())
}

/// customers(id 1, name 2, email 3, ssn 4, card_number 5, notes 6, born 7, api_token 8, doc 9, tags 10)
pub fn lookup(table: u32, attnum: i16) -> Option<SourceColumn> {
    if table != CUSTOMERS {
        return None;
    }
    let col = [
        "id",
        "name",
        "email",
        "ssn",
        "card_number",
        "notes",
        "born",
        "api_token",
        "doc",
        "tags",
    ]
    .get(usize::try_from(attnum).ok()?.checked_sub(1)?)?;
    Some(SourceColumn::new("public", "customers", *col))
}

pub fn s(v: &Option<std::borrow::Cow<'_, [u8]>>) -> Option<String> {
    v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}
