use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DataCommand {}

pub fn run(cmd: DataCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
