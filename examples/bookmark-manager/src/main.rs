//! `bookmark-manager`: parses flags, opens the stores, serves until Ctrl-C.

use bookmark_manager::{app, setup, Options, PasswordCost, USAGE};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt().with_target(false).init();
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("{msg}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(opts).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bookmark-manager: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(mut opts: Options) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(opts.addr).await?;
    // The bound address (`--addr 127.0.0.1:0` picks a port), which the allowed origins name.
    opts.addr = listener.local_addr()?;
    let state = setup::open(&opts, PasswordCost::Default).await?.trust_proxy(opts.trust_proxy);
    println!(
        "bookmark-manager serving http://{} (sessions: {}, data: {})",
        listener.local_addr()?,
        opts.store,
        opts.data_dir.display()
    );
    println!("forms accepted from {} (add more with --origin)", opts.allowed_origins().join(", "));
    // The peer address reaches handlers (login throttling) as `ConnectInfo`.
    axum::serve(listener, app(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async {
            // If the signal handler cannot be installed, serve until killed rather than exit.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            println!("shutting down");
        })
        .await?;
    Ok(())
}
