//! The `sipas` command line: serve, migrate, demo, units, users, healthcheck.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use migrations::{Migrator, MigratorTrait};
use sipas::auth::{self, Role};
use sipas::config::{Secret, Settings};
use sipas::startup::{Application, prepare};
use sipas::{demo, imports, store, telemetry, units};

#[derive(Parser)]
#[command(name = "sipas", version, about = "SIPAS satisfaction surveys and indices")]
struct Cli {
    /// Configuration file (TOML). Default: ./sipas.toml when it exists.
    #[arg(long, global = true, env = "SIPAS_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://FILE or postgres://... (overrides file and environment).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web service.
    Serve {
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        /// Seed the demo province first (does nothing when it is already there).
        #[arg(long)]
        demo: bool,
    },
    /// Exit 0 when the local service answers /readyz with 200, else 1: a container's
    /// health check (slim images have no curl).
    Healthcheck {
        /// Default: 127.0.0.1 (the service listens there or on every address).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Default: the configured port.
        #[arg(long)]
        port: Option<u16>,
    },
    /// Apply database migrations and record the survey forms.
    Migrate,
    /// Seed a demo province with units, a year of responses and an admin account.
    Demo {
        #[arg(long, default_value_t = 6000)]
        responses: usize,
        #[arg(long, default_value_t = 2017)]
        seed: u64,
    },
    /// Manage units.
    Units {
        #[command(subcommand)]
        command: UnitsCommand,
    },
    /// Manage admin accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Import responses keyed in from paper forms.
    Responses {
        #[command(subcommand)]
        command: ResponsesCommand,
    },
    /// How many cells the publication gate withholds, per province, dimension and level.
    Withheld {
        /// Calendar year; default: this year.
        #[arg(long)]
        year: Option<i32>,
    },
    /// Maintain the tallies the indices are read from.
    Tallies {
        #[command(subcommand)]
        command: TalliesCommand,
    },
    /// Record service volumes (dossiers per unit and month).
    Volumes {
        #[command(subcommand)]
        command: VolumesCommand,
    },
    /// A unit's survey address and its QR code.
    Qr {
        unit: String,
        /// Write the QR code as SVG to this file.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Write the QR code as PNG to this file.
        #[arg(long)]
        png: Option<PathBuf>,
    },
    /// One-time receipt codes.
    Codes {
        #[command(subcommand)]
        command: CodesCommand,
    },
    /// API keys for an office's software or a kiosk tablet.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum CodesCommand {
    /// Print N new codes for a unit, one per line.
    Generate { unit: String, count: usize },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key (shown once).
    Create {
        unit: String,
        #[arg(long, value_parser = ["office", "kiosk"])]
        kind: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum ResponsesCommand {
    /// One JSON submission per line, with its survey `date`; all or nothing.
    Import { file: PathBuf },
    /// After review, let a unit's flagged responses (and its subtree's) into the indices.
    AcceptFlagged {
        #[arg(long)]
        unit: String,
    },
}

#[derive(Subcommand)]
enum TalliesCommand {
    /// Recompute every tally from the raw answers.
    Rebuild,
}

#[derive(Subcommand)]
enum VolumesCommand {
    /// CSV with the header unit,month,dossiers (month as YYYY-MM); all or nothing.
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum UnitsCommand {
    /// Upsert units from a CSV file: code,parent,level,name_vi[,name_en].
    Import { file: PathBuf },
    /// Merge, split, rename, move or end units from a plan (CSV:
    /// effective,operation,old,new,name_vi,parent,level[,name_en]), all or nothing.
    Restructure {
        file: PathBuf,
        /// Print what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an account; the password is read from standard input.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["admin", "analyst", "unit_manager"])]
        role: String,
        /// The unit a unit_manager manages (with the units below it).
        #[arg(long)]
        unit: Option<String>,
    },
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(url) = cli.database_url {
        settings.database_url = Secret::new(url);
    }
    telemetry::init(&settings.log);
    match run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The status of `GET /readyz` over plain HTTP/1.1, within a few seconds.
fn readiness(host: &str, port: u16) -> anyhow::Result<u16> {
    use std::io::Write;
    use std::net::{TcpStream, ToSocketAddrs};
    let timeout = std::time::Duration::from_secs(3);
    let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| anyhow::anyhow!("no address for {host}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| anyhow::anyhow!("nothing answers on {host}:{port}: {e}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET /readyz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head)?;
    // "HTTP/1.1 200 OK": the status is the second word of the first line.
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| anyhow::anyhow!("not an HTTP answer"))
}

fn read(file: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))
}

fn print_demo(settings: &Settings, report: demo::DemoReport) {
    println!("demo: {} units created, {} responses created", report.units_created, report.responses_created);
    if let Some((email, password)) = report.admin {
        println!("demo admin account: {email} / {password} (shown once; change it for real use)");
    }
    let base = settings.public_base_url.trim_end_matches('/');
    println!("the survey of a ward is at {base}/s/DN.HAICHAU (`sipas serve` if it is not running)");
}

async fn run(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { host, port, demo } => {
            settings.host = host.unwrap_or(settings.host);
            settings.port = port.unwrap_or(settings.port);
            let app = Application::build(settings.clone()).await?;
            if demo {
                let state = app.state();
                print_demo(&settings, demo::seed(state, 6000, 2017).await?);
            }
            tracing::info!("sipas listening on http://{}:{}", settings.host, app.port());
            app.run_until_stopped().await?;
        }
        Command::Healthcheck { host, port } => {
            let status = readiness(&host, port.unwrap_or(settings.port))?;
            anyhow::ensure!(status == 200, "/readyz answered {status}");
        }
        Command::Withheld { year } => {
            let state = prepare(&settings).await?;
            let year = year.unwrap_or_else(|| chrono::Datelike::year(&sipas::vietnam_today()));
            for line in sipas::publish::cost(&state, year).await? {
                println!("{line}");
            }
        }
        Command::Migrate => {
            let state = prepare(&settings).await?;
            let applied = Migrator::get_applied_migrations(&state.db).await?.len();
            println!("database is at migration {applied}; {} forms recorded", state.forms.ids().len());
        }
        Command::Demo { responses, seed } => {
            let state = prepare(&settings).await?;
            print_demo(&settings, demo::seed(&state, responses, seed).await?);
        }
        Command::Units { command: UnitsCommand::Import { file } } => {
            let state = prepare(&settings).await?;
            let text = read(&file)?;
            let rows = units::import::parse_csv(&text).map_err(|errors| {
                anyhow::anyhow!("{}: nothing imported:\n  {}", file.display(), errors.join("\n  "))
            })?;
            match store::units::import(&state.db, rows).await? {
                Ok(r) => println!(
                    "{}: {} created, {} updated, {} unchanged",
                    file.display(),
                    r.created,
                    r.updated,
                    r.unchanged
                ),
                Err(errors) => anyhow::bail!("{}: nothing imported:\n  {}", file.display(), errors.join("\n  ")),
            }
        }
        Command::Units { command: UnitsCommand::Restructure { file, dry_run } } => {
            let state = prepare(&settings).await?;
            let text = read(&file)?;
            let rows = units::restructure::parse_csv(&text)
                .map_err(|errors| anyhow::anyhow!("{}: nothing changed:\n  {}", file.display(), errors.join("\n  ")))?;
            match store::units::restructure(&state.db, &rows, sipas::vietnam_today(), dry_run).await? {
                Ok(steps) => {
                    for step in &steps {
                        println!("{step}");
                    }
                    let verb = if dry_run { "would make" } else { "made" };
                    println!("{}: {verb} {} changes; no response changes its unit", file.display(), steps.len());
                    if dry_run {
                        println!("dry run: nothing was changed");
                    }
                }
                Err(errors) => anyhow::bail!("{}: nothing changed:\n  {}", file.display(), errors.join("\n  ")),
            }
        }
        Command::Responses { command: ResponsesCommand::Import { file } } => {
            let state = prepare(&settings).await?;
            let text = read(&file)?;
            match imports::responses_jsonl(&state, &text).await? {
                Ok(r) => println!(
                    "{}: {} responses imported, {} already present",
                    file.display(),
                    r.created,
                    r.already_present
                ),
                Err(errors) => anyhow::bail!("{}: nothing imported:\n  {}", file.display(), errors.join("\n  ")),
            }
        }
        Command::Responses { command: ResponsesCommand::AcceptFlagged { unit } } => {
            let state = prepare(&settings).await?;
            let tree = store::units::tree(&state.db).await?;
            let u = tree.by_code(&unit).ok_or_else(|| anyhow::anyhow!("no unit {unit}"))?;
            let n = store::responses::accept_flagged(&state.db, &state.catalog, &tree.subtree(u.id)).await?;
            println!("{n} flagged responses of {unit} and its units now count in the indices");
        }
        Command::Qr { unit, svg, png } => {
            let state = prepare(&settings).await?;
            let u = store::units::by_code(&state.db, &unit).await?.ok_or_else(|| anyhow::anyhow!("no unit {unit}"))?;
            let url = sipas::reach::qr::survey_url(&settings, &u.code);
            println!("{url}");
            if let Some(file) = svg {
                std::fs::write(&file, sipas::reach::qr::svg(&url, 480)?)?;
                println!("QR code written to {}", file.display());
            }
            if let Some(file) = png {
                std::fs::write(&file, sipas::reach::qr::png(&url, 800)?)?;
                println!("QR code written to {}", file.display());
            }
        }
        Command::Codes { command: CodesCommand::Generate { unit, count } } => {
            let state = prepare(&settings).await?;
            anyhow::ensure!((1..=100_000).contains(&count), "count must be 1 to 100000");
            let u = store::units::by_code(&state.db, &unit).await?.ok_or_else(|| anyhow::anyhow!("no unit {unit}"))?;
            let expires = sipas::reach::codes::expiry(sipas::vietnam_today(), settings.code_validity_days);
            for code in sipas::reach::codes::issue(&state.db, u.id, count, expires).await? {
                println!("{code}");
            }
            eprintln!("{count} codes for {unit}, valid through {expires}");
        }
        Command::Keys { command: KeysCommand::Create { unit, kind, name } } => {
            let state = prepare(&settings).await?;
            let u = store::units::by_code(&state.db, &unit).await?.ok_or_else(|| anyhow::anyhow!("no unit {unit}"))?;
            let kind =
                sipas::reach::keys::KeyKind::parse(&kind).ok_or_else(|| anyhow::anyhow!("kind is office or kiosk"))?;
            let (key, _) = sipas::reach::keys::create(&state.db, u.id, kind, &name).await?;
            println!("{key}");
            if kind == sipas::reach::keys::KeyKind::Kiosk {
                println!(
                    "enrol a tablet by opening {}/k/{}?enroll={key}",
                    settings.public_base_url.trim_end_matches('/'),
                    u.code
                );
            }
        }
        Command::Tallies { command: TalliesCommand::Rebuild } => {
            let state = prepare(&settings).await?;
            let started = std::time::Instant::now();
            let (responses, cells) = store::tallies::rebuild(&state.db, &state.catalog).await?;
            println!("tallies rebuilt from {responses} responses: {cells} cells in {:.1?}", started.elapsed());
        }
        Command::Volumes { command: VolumesCommand::Import { file } } => {
            let state = prepare(&settings).await?;
            let text = read(&file)?;
            match imports::volumes_csv(&state.db, &text).await? {
                Ok(n) => println!("{}: {n} volumes recorded", file.display()),
                Err(errors) => anyhow::bail!("{}: nothing imported:\n  {}", file.display(), errors.join("\n  ")),
            }
        }
        Command::Users { command: UsersCommand::Add { email, role, unit } } => {
            let state = prepare(&settings).await?;
            let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role {role}"))?;
            anyhow::ensure!(email.contains('@') && email.len() <= 254, "{email:?} is not an email address");
            let unit_id = match (role, unit) {
                (Role::UnitManager, Some(code)) => Some(
                    store::units::by_code(&state.db, &code).await?.ok_or_else(|| anyhow::anyhow!("no unit {code}"))?.id,
                ),
                (Role::UnitManager, None) => anyhow::bail!("a unit_manager needs --unit CODE"),
                (_, Some(_)) => anyhow::bail!("--unit is only for unit_manager"),
                (_, None) => None,
            };
            anyhow::ensure!(
                store::users::by_email(&state.db, &email).await?.is_none(),
                "{email} already has an account"
            );
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            if let Some(problem) = auth::policy::problem(password, &email) {
                anyhow::bail!("the password (from standard input) {problem}");
            }
            let user = store::users::insert(&state.db, &email, auth::hash_password(password)?, role, unit_id).await?;
            println!("account {} created with role {}", user.email, role.as_str());
        }
    }
    Ok(())
}
