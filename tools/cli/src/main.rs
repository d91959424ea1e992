//! `taskrouter`: the operator's command line, sharing the Worker's core.
//!
//! ```text
//! taskrouter validate <rules.json> [--json]        exit 0 valid, 1 invalid, 2 usage/IO error
//! taskrouter explain <rules.json> <request.json> [--metadata JSON]
//! taskrouter schema                                the rules document's JSON Schema
//! taskrouter report [--since 7d] [--dataset NAME] [--chart out.png] [--json] [--print-sql]
//!     (CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN; CLOUDFLARE_API_BASE to point elsewhere)
//! taskrouter classify <prompt | -> [--model FILE] [--json]
//! taskrouter evaluate <labelled.jsonl> [--model FILE] [--mistakes FILE] [--probabilities FILE] [--json]
//! taskrouter lexicon [--out FILE]                  the lexicon's index, as the Worker reads it
//! taskrouter push <rules.json> | pull [--out FILE] | diff <rules.json> | history | rollback [--version N]
//!     (rules versions in KV, as the admin API keeps them; plus KV_NAMESPACE_ID)
//! ```

/// `println!` that does not panic when stdout is closed early (`taskrouter report | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod chart;
mod keys;
mod kv_api;
mod locate;
mod report;
mod rules_cmds;
mod train;
mod versions;

use rules_cmds::{flag, has, USAGE};

const HELP: &str = "usage:
  taskrouter validate <rules.json> [--json]
  taskrouter explain <rules.json> <request.json> [--metadata JSON]
  taskrouter schema
  taskrouter report [--since 7d|24h|30m] [--dataset taskrouter_requests] [--chart out.png] [--json] [--print-sql]
  taskrouter push <rules.json> | pull [--out FILE] | diff <rules.json> | history | rollback [--version N]
  taskrouter train <data.jsonl> --out <model> [--test <test.jsonl>] [--seed N] [--buckets N] [--hidden N] [--width N] [--optimizer adagrad|sgd] [--epochs N] [--rate R] [--l2 L] [--dropout D] [--folds writer|batch] [--compare] [--mistakes FILE] [--oof FILE] [--json]
  taskrouter corpus <dir> [--check]
  taskrouter classify <prompt | -> [--model FILE] [--json]
  taskrouter evaluate <labelled.jsonl> [--model FILE] [--mistakes FILE] [--probabilities FILE] [--json]
  taskrouter lexicon [--out models/lexicon.trlx]
  taskrouter keys create --name NAME [--id ID] [--routes a,b] [--tasks x,y] [--rpm N] [--spend-per-day USD] [--json]
  taskrouter keys list [--json] | keys revoke <id>
    (CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN, KV_NAMESPACE_ID)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Positional words: not flags, and not the value of a flag that takes one.
    const VALUED: [&str; 28] = [
        "--epochs",
        "--folds",
        "--width",
        "--optimizer",
        "--hidden",
        "--rate",
        "--l2",
        "--dropout",
        "--model",
        "--test",
        "--mistakes",
        "--oof",
        "--probabilities",
        "--metadata",
        "--since",
        "--dataset",
        "--chart",
        "--out",
        "--version",
        "--name",
        "--id",
        "--routes",
        "--tasks",
        "--rpm",
        "--spend-per-day",
        "--seed",
        "--buckets",
        "--note",
    ];
    let positional: Vec<&str> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            let is_value = *i > 0 && VALUED.contains(&args[i - 1].as_str());
            !a.starts_with("--") && !is_value
        })
        .map(|(_, a)| a.as_str())
        .collect();
    let code = match positional.as_slice() {
        ["validate", file] => rules_cmds::validate(file, has(&args, "--json")),
        ["explain", rules, request] => {
            rules_cmds::explain_cmd(rules, request, flag(&args, "--metadata"))
        }
        ["schema"] => rules_cmds::schema(),
        ["report"] => report::report(&args),
        ["push", file] => versions::push(file),
        ["pull"] => versions::pull(&args),
        ["diff", file] => versions::diff(file),
        ["history"] => versions::history(),
        ["rollback"] => versions::rollback(&args),
        ["train", file] => train::train(file, &args),
        ["corpus", dir] => train::corpus::corpus(dir, has(&args, "--check")),
        ["classify", text] => train::classify(text, &args),
        ["evaluate", file] => train::evaluate(file, &args),
        ["lexicon"] => train::lexicon(&args),
        ["keys", "create"] => keys::create(&args),
        ["keys", "list"] => keys::list(&args),
        ["keys", "revoke", id] => keys::revoke(id),
        _ if has(&args, "--help") || has(&args, "-h") => {
            out!("{HELP}");
            0
        }
        _ => {
            eprintln!("{HELP}");
            USAGE
        }
    };
    std::process::exit(code);
}
