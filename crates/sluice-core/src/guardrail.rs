//! Guardrails: per-connection rules over what a statement does.
