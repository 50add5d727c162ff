//! Prints the analysis of each argument (or each stdin line): a debugging aid.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inputs: Vec<String> = if args.is_empty() {
        std::io::stdin().lines().map_while(Result::ok).collect()
    } else {
        args
    };
    for sql in inputs {
        let a = sluice_sql::analyze(&sql);
        println!("{sql}\n  class={} error={:?}", a.class(), a.error);
        for s in &a.statements {
            println!(
                "  - {} [{}] read={:?} written={:?} fns={:?} reasons={:?} ro_off={} base={:?}",
                s.command,
                s.class,
                s.tables_read,
                s.tables_written,
                s.functions,
                s.reasons,
                s.disables_read_only,
                s.base_class
            );
        }
    }
}
