//! The playground's sample data: realistic fake customers and orders, made
//! by a seeded generator so every playground has the same rows. Card numbers
//! pass the Luhn check, SSNs avoid the never-issued ranges, e-mails and
//! phone numbers look real — the values masking (a later feature) must find.

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "John",
    "Radia",
    "Edsger",
    "Katherine",
    "Tim",
    "Hedy",
    "Donald",
    "Sophie",
    "Niklaus",
    "Anita",
    "Guido",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Backus",
    "Perlman",
    "Dijkstra",
    "Johnson",
    "Berners-Lee",
    "Lamarr",
    "Knuth",
    "Wilson",
    "Wirth",
    "Borg",
    "van Rossum",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "corp.example.net",
    "example.io",
];
const STATUSES: &[&str] = &["paid", "paid", "paid", "shipped", "pending", "refunded"];
/// Issuer prefixes of 16-digit test card ranges (Visa, Mastercard, Discover).
const CARD_PREFIXES: &[&str] = &["4111", "4242", "5555", "5105", "6011"];

pub const CUSTOMERS: usize = 300;
pub const ORDERS: usize = 1200;

/// A small deterministic generator (SplitMix64): fake data needs no crypto.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The Luhn check digit for `digits` (without the check digit).
pub fn luhn_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// True when `number` (digits only) passes the Luhn check.
#[cfg(test)]
pub fn luhn_valid(number: &str) -> bool {
    let (body, check) = number.split_at(number.len().saturating_sub(1));
    check
        .parse::<u32>()
        .map(|c| luhn_digit(body) == c)
        .unwrap_or(false)
}

fn card(rng: &mut Rng) -> String {
    let mut body = rng.pick(CARD_PREFIXES).to_string();
    while body.len() < 15 {
        body.push(char::from(b'0' + rng.below(10) as u8));
    }
    let check = luhn_digit(&body);
    let full = format!("{body}{check}");
    format!(
        "{}-{}-{}-{}",
        &full[0..4],
        &full[4..8],
        &full[8..12],
        &full[12..16]
    )
}

fn ssn(rng: &mut Rng) -> String {
    // Area 001-665 or 667-899; group 01-99; serial 0001-9999.
    let mut area = 1 + rng.below(899);
    if area == 666 {
        area = 667;
    }
    format!(
        "{area:03}-{:02}-{:04}",
        1 + rng.below(99),
        1 + rng.below(9999)
    )
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The SQL dialect the sample is written in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

impl Dialect {
    /// `n` `unit`s before now.
    fn ago(self, n: u64, unit: &str) -> String {
        match self {
            Dialect::Postgres => format!("now() - interval '{n} {unit}s'"),
            Dialect::Mysql => format!("NOW() - INTERVAL {n} {}", unit.to_uppercase()),
        }
    }
}

/// The tables, in MySQL's types (the same columns as the Postgres ones).
const MYSQL_TABLES: &str = "CREATE TABLE customers (\n\
   id          INT AUTO_INCREMENT PRIMARY KEY,\n\
   name        VARCHAR(100) NOT NULL,\n\
   email       VARCHAR(200) NOT NULL,\n\
   phone       VARCHAR(40) NOT NULL,\n\
   card_number VARCHAR(40) NOT NULL,\n\
   ssn         VARCHAR(20) NOT NULL,\n\
   created_at  DATETIME NOT NULL\n\
 );\n\
 CREATE TABLE orders (\n\
   id          INT AUTO_INCREMENT PRIMARY KEY,\n\
   customer_id INT NOT NULL REFERENCES customers(id),\n\
   amount      DECIMAL(10,2) NOT NULL,\n\
   status      VARCHAR(20) NOT NULL,\n\
   created_at  DATETIME NOT NULL\n\
 );\n";

/// The SQL that creates and fills the playground tables (PostgreSQL).
pub fn sql() -> String {
    sql_in(Dialect::Postgres)
}

/// The same tables and rows in `dialect`.
pub fn sql_in(dialect: Dialect) -> String {
    let mut rng = Rng(0x5EED_51C3);
    let mut out = String::from(
        "CREATE TABLE customers (\n\
           id          serial PRIMARY KEY,\n\
           name        text NOT NULL,\n\
           email       text NOT NULL,\n\
           phone       text NOT NULL,\n\
           card_number text NOT NULL,\n\
           ssn         text NOT NULL,\n\
           created_at  timestamptz NOT NULL\n\
         );\n\
         CREATE TABLE orders (\n\
           id          serial PRIMARY KEY,\n\
           customer_id integer NOT NULL REFERENCES customers(id),\n\
           amount      numeric(10,2) NOT NULL,\n\
           status      text NOT NULL,\n\
           created_at  timestamptz NOT NULL\n\
         );\n",
    );
    if dialect == Dialect::Mysql {
        out = MYSQL_TABLES.to_string();
    }
    out.push_str(
        "INSERT INTO customers (name, email, phone, card_number, ssn, created_at) VALUES\n",
    );
    for i in 0..CUSTOMERS {
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let email = format!(
            "{}.{}{}@{}",
            first.to_lowercase(),
            last.to_lowercase().replace([' ', '-'], ""),
            i,
            rng.pick(DOMAINS)
        );
        let phone = format!("+1-{}-555-{:04}", 200 + rng.below(800), rng.below(10000));
        let days = rng.below(720);
        out.push_str(&format!(
            "({}, {}, {}, {}, {}, {}){}\n",
            sql_str(&format!("{first} {last}")),
            sql_str(&email),
            sql_str(&phone),
            sql_str(&card(&mut rng)),
            sql_str(&ssn(&mut rng)),
            dialect.ago(days, "day"),
            if i + 1 == CUSTOMERS { ";" } else { "," }
        ));
    }
    out.push_str("INSERT INTO orders (customer_id, amount, status, created_at) VALUES\n");
    for i in 0..ORDERS {
        out.push_str(&format!(
            "({}, {}.{:02}, {}, {}){}\n",
            1 + rng.below(CUSTOMERS as u64),
            5 + rng.below(995),
            rng.below(100),
            sql_str(rng.pick(STATUSES)),
            dialect.ago(rng.below(24 * 365), "hour"),
            if i + 1 == ORDERS { ";" } else { "," }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_pass_luhn_and_ssns_avoid_unissued_areas() {
        let mut rng = Rng(1);
        for _ in 0..1000 {
            let c = card(&mut rng).replace('-', "");
            assert_eq!(c.len(), 16);
            assert!(luhn_valid(&c), "{c}");
            let s = ssn(&mut rng);
            let area: u32 = s[..3].parse().unwrap();
            assert!(area != 0 && area != 666 && area < 900, "{s}");
        }
        assert!(luhn_valid("4111111111111111"));
        assert!(!luhn_valid("4111111111111112"));
    }

    #[test]
    fn the_data_is_the_same_every_time() {
        assert_eq!(sql(), sql());
        assert_eq!(
            sql_in(Dialect::Mysql).matches("NOW() - INTERVAL").count(),
            CUSTOMERS + ORDERS
        );
        assert_eq!(
            sql().matches("now() - interval").count(),
            CUSTOMERS + ORDERS
        );
    }
}
