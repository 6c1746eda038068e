//! Seeds a ticket store file for the report benchmark (BENCHMARKS.md, "Management report"):
//! `report_seed <tickets.db> <count>` writes `count` tickets spread over November 2026, cycling
//! through the report fixture's twelve kinds (`faultline_tests::report_fixture`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: report_seed <tickets.db> <count>");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("count: a number");
    faultline_tests::report_fixture::seed_many(std::path::Path::new(&path), count);
    println!("{count} tickets in {path}");
}
