//! Real servers on ephemeral loopback ports, started and stopped by their
//! owner: the playground's (`sluice dev`) and, through `sluice-testkit`,
//! every test suite's: PostgreSQL, MariaDB and OpenSSH's sshd. Not test code: the release binary uses it for the
//! playground, so it holds nothing but launching.

pub mod mariadb;
pub mod pg;
pub mod ports;
pub mod sshd;
