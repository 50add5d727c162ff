//! Sluice's MySQL and MariaDB adapter.

pub mod analyse;
mod functions;
mod packet;
