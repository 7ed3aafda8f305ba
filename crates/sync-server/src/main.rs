use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = sync_server::cli::Cli::parse();
    if let Err(e) = sync_server::cli::run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
