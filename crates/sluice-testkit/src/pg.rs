//! Real PostgreSQL servers from initdb. 
