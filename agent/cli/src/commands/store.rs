//! `drover store init`: creates the run store the configuration names.

use std::process::ExitCode;

use anyhow::Result;
use drover_journal::SqliteJournal;
use drover_journal_dynamodb::DynamoJournal;

use crate::config::StoreConfig;
use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(clap::Subcommand)]
pub enum StoreCommand {
    /// Create the configured store: the DynamoDB table (on-demand capacity,
    /// keys pk/sk, index gsi1) and wait until it is active, or the embedded
    /// runs.db. An existing store is left as it is.
    Init,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    match args.command {
        StoreCommand::Init => match &home.config.store {
            StoreConfig::Embedded(e) => {
                let path = home.dir.join("runs.db");
                SqliteJournal::open_with_lease(&path, e.lease()?)?;
                println!("embedded store ready: {}", path.display());
            }
            StoreConfig::Dynamodb(d) => {
                let settings = d.settings()?;
                let lease = settings.lease;
                let store = DynamoJournal::open(settings).await;
                let created = store.init().await?;
                let what = if created { "created" } else { "exists already; left as it is" };
                println!("{}: {what}", store.name());
                println!("agents configured with it share runs, leases ({} s) and scope locks", lease.as_secs_f64());
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
