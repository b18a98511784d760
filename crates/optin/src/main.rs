use std::process::ExitCode;

use clap::Parser;
use optin::cli::{Cli, Command};
use optin::server::ServeSettings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error[failed]: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(&cli.global, args).await,
            command => {
                optin::telemetry::init(optin::telemetry::CLI_FILTER);
                optin::cli::run(&cli.global, command).await
            }
        }
    })
}

async fn serve(global: &optin::cli::GlobalArgs, args: optin::cli::ServeArgs) -> ExitCode {
    optin::telemetry::init(optin::telemetry::SERVE_FILTER);
    let settings = match global.database() {
        Ok(database) => ServeSettings {
            listen: args.listen,
            data_dir: global.data_dir.clone(),
            database,
            admin_token: args.admin_token,
            demo: args.demo,
            public_url: args.public_url.unwrap_or_else(|| format!("http://{}", args.listen)),
            http: optin_http::HttpSettings {
                body_limit_bytes: args.body_limit,
                large_body_limit_bytes: args.webhook_body_limit,
                page_posts_per_ip_per_minute: args.page_posts_per_ip_per_minute,
                form_posts_per_number_per_hour: args.form_posts_per_number_per_hour,
                trust_forwarded_headers: args.trust_forwarded_headers,
                ..Default::default()
            },
        },
        Err(error) => return optin::cli::Output { json: global.json }.fail(&error.into()),
    };
    match optin::server::run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => optin::cli::Output { json: global.json }.fail(&error.into()),
    }
}
