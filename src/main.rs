//! `rtcam`: parse the command line, start the server, stop it cleanly on SIGINT/SIGTERM.

use std::process::ExitCode;

use async_signal::{Signal, Signals};
use smol::stream::StreamExt;

use rtcam::shell;
use rtcam::shell::cli::{Cli, Command};
use rtcam::shell::notify::{self, Notifier};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Devices { json }) = cli.command {
        return rtcam::print_devices(json);
    }
    rtcam::shell::logger::init();
    let config = match cli.load_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rtcam: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::BenchEncoder(args)) = &cli.command {
        let args = rtcam::BenchEncoderArgs {
            format: config.video.format.pixel_format(),
            ..args.clone()
        };
        return rtcam::bench_encoder(&config.encoder_settings(), &args);
    }
    if cli.print_config {
        print!("{}", rtcam::config::to_toml(&config.redacted()));
        return ExitCode::SUCCESS;
    }

    // Registered before anything starts, so an early Ctrl-C still stops cleanly.
    let mut signals = match Signals::new([Signal::Int, Signal::Term]) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };

    // systemd (Type=notify): READY=1 once serving, WATCHDOG=1 from the event loop.
    let notifier = Notifier::from_env();
    let watchdog = notifier.clone().zip(notify::watchdog_period_from_env());
    let mut server = match shell::spawn_with_watchdog(config, watchdog) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    log::info!("streaming: open {} in a browser", server.url());
    if let Some(url) = &server.control_url {
        // Shown once, when the control token was made; it is kept in the state directory.
        println!("control URL (keep it private; shown only now): {url}");
        log::info!("a control token was generated; its URL was printed on standard output");
    }
    log::info!("WHEP endpoint: {}whep", server.url());
    // Sockets are bound and listening by now (spawn binds them before it returns).
    if let Some(n) = &notifier {
        n.ready(&format!("streaming on {}", server.url()));
    }

    let stopper = server.stopper();
    let waiter = std::thread::spawn(move || {
        if let Some(Ok(signal)) = smol::block_on(signals.next()) {
            log::info!("{signal:?} received, stopping");
        }
        if let Some(n) = &notifier {
            n.stopping();
        }
        let _ = stopper.try_send(());
    });
    let outcome = server.join();
    drop(waiter);
    match outcome {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
