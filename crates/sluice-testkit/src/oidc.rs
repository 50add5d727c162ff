//! A real OpenID provider (npm `oidc-provider`) for tests. Filled in by the identity work.
