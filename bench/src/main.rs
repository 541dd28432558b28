//! `splitbench`: thin CLI over the `splitbench` library. Exit codes: 0 fine, 1 error,
//! 3 a `--threshold` was breached, 4 the consistency check found a violation (the shop's books
//! disagree), 130 interrupted (every started process is stopped first).

use clap::Parser;
use splitbench::cli::{Cli, Finished};
use splitbench::launch::CreatedDatabases;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    shop::telemetry::init_tracing("warn");
    // The generator is one thread: the dispatcher, every request and the recorder share it, so
    // dispatching is a task spawn with no cross-thread wake-up. It runs on the generator's core
    // (unless --no-pin; the launcher starts the system under test on the other cores). The
    // layout is decided before pinning: afterwards this process sees only its own core.
    let cores = splitbench::launch::CoreLayout::auto(!std::env::args().any(|a| a == "--no-pin"));
    cores.pin_generator_thread();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built at start-up");
    let created_databases = CreatedDatabases::default();
    let outcome = runtime.block_on(async {
        let result = tokio::select! {
            result = splitbench::cli::run(cli, cores, created_databases.clone()) => Some(result),
            () = interrupted() => None,
        };
        // Whatever happened, the databases this run created go (the processes went with the
        // dropped future: they are killed on drop).
        created_databases.drop_all().await;
        result
    });
    match outcome {
        Some(Ok(Finished::Ok)) => std::process::ExitCode::SUCCESS,
        Some(Ok(Finished::ThresholdBreached(breaches))) => {
            for breach in breaches {
                eprintln!("threshold breached: {breach}");
            }
            std::process::ExitCode::from(3)
        }
        Some(Ok(Finished::Inconsistent { violations, breaches })) => {
            for breach in breaches {
                eprintln!("threshold breached: {breach}");
            }
            for violation in violations {
                eprintln!("consistency violated: {violation}");
            }
            std::process::ExitCode::from(4)
        }
        Some(Err(err)) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
        None => {
            eprintln!("\ninterrupted: stopped every process this run started");
            std::process::ExitCode::from(130)
        }
    }
}

async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
