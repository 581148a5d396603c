//! `drover-chaos`: game-day tooling. Today: `seed-demo`, which seeds (or
//! re-seeds) the demo topology into whatever the AWS configuration points at
//! (the local emulators, through `AWS_ENDPOINT_URL*`).

use std::process::ExitCode;

use drover_aws::Clients;
use drover_chaos::topology::{Topology, seed};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, suffix) = match args.as_slice() {
        [cmd] => (cmd.as_str(), ""),
        [cmd, flag, s] if flag == "--suffix" => (cmd.as_str(), s.as_str()),
        _ => ("", ""),
    };
    if cmd != "seed-demo" {
        eprintln!("usage: drover-chaos seed-demo [--suffix NAME]");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async {
        let clients = Clients::load().await;
        match seed(&clients, &Topology::demo(suffix)).await {
            Ok(s) => {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: seeding the demo topology failed: {e}");
                ExitCode::from(1)
            }
        }
    })
}
