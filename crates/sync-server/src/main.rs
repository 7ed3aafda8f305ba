use clap::Parser;

// Argon2 allocates 19 MiB per sign-in on whichever blocking thread runs it; glibc malloc
// keeps those pages per thread arena and never hands them back (a burst of logins left the
// server at 1.7 GB). mimalloc returns freed memory to the system.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = sync_server::cli::Cli::parse();
    if let Err(e) = sync_server::cli::run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
