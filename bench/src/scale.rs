//! `quando-bench scale` (issue 17): cost as history grows. For each size (100,000, 1,000,000
//! and 10,000,000 events by default) a fresh database is seeded, analyzed and served by a
//! fresh server child, and the same five workloads run against it: create, the seed's list
//! example, list-filtered, get and availability. The organization grows by calendars at a
//! fixed number of events per calendar (1,000, as in the suite), so a calendar's 31-day window
//! holds as many events at every size and what grows is the tables, their indexes and the
//! organization's lists. It prints one table per backend (on stderr after every size, so a
//! stopped run keeps what it measured; on stdout at the end) and draws a PNG chart: p50 and
//! p99 against history size, one line per operation and backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use plotters::prelude::*;

use crate::load::Measured;
use crate::report::{count, thousands};
use crate::seed::{self, FreshSlots, ScratchPostgres};
use crate::workloads::{self, Plan, Target, Workload};
use crate::{AnyError, WARMUP, child, pin};

/// The operations measured at every size, in the order they run.
const OPERATIONS: [Workload; 5] = [
    Workload::Create,
    Workload::ListStatus,
    Workload::ListFiltered,
    Workload::Get,
    Workload::Availability,
];

/// The target: no operation's p50 grows more than this from the smallest size to the
/// largest.
const GROWTH_TARGET: f64 = 1.5;

#[derive(Args, Clone)]
pub struct ScaleArgs {
    /// History sizes in events, comma-separated, smallest first.
    #[arg(long, value_delimiter = ',', default_values_t = [100_000usize, 1_000_000, 10_000_000])]
    sizes: Vec<usize>,
    /// Events per calendar: the organization has size / this many calendars.
    #[arg(long, default_value_t = 1_000)]
    events_per_calendar: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Measured seconds per workload and size (each after a 1 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Where the PNG chart goes.
    #[arg(long, default_value = "docs/scale.png")]
    chart: PathBuf,
    /// A TrueType font for the chart's text (Debian: fonts-dejavu-core).
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    font: PathBuf,
    /// Print Markdown tables (for the README).
    #[arg(long)]
    markdown: bool,
    /// Leave the server and the load generator on every core (see `suite --no-pin`).
    #[arg(long)]
    no_pin: bool,
}

/// What one operation measured at one size.
struct Cell {
    rate: f64,
    p50: f64,
    p99: f64,
    unexpected: u64,
}

/// One size on one backend.
struct Point {
    size: usize,
    seeded_in: Duration,
    /// `None` where the workload failed, with why in `failures`.
    cells: Vec<Option<Cell>>,
    failures: Vec<String>,
}

struct Backend {
    name: &'static str,
    points: Vec<Point>,
}

impl Backend {
    /// Keeps a measured size and prints the backend's table so far on stderr at once: a run
    /// of hours that is stopped (or fails at a later size) keeps what it measured.
    fn add(&mut self, point: Point, args: &ScaleArgs) {
        self.points.push(point);
        eprint!("{}", table(self, args));
    }
}

pub async fn run(args: ScaleArgs, postgres_url: Option<String>) -> Result<(), AnyError> {
    if args.sizes.is_empty()
        || args.events_per_calendar == 0
        || args.connections == 0
        || args.sizes.iter().any(|&s| s < args.events_per_calendar)
        || args.sizes.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(
            "need increasing --sizes, each >= --events-per-calendar >= 1, and --connections >= 1"
                .into(),
        );
    }
    // The font is read first: a missing one fails now, not after an hour of seeding.
    let font = std::fs::read(&args.font).map_err(|e| {
        format!(
            "the chart's font {}: {e} (pass --font)",
            args.font.display()
        )
    })?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| format!("{} is not a TrueType font", args.font.display()))?;

    let started = Instant::now();
    let plan = Plan {
        connections: args.connections,
        warmup: WARMUP,
        measure: Duration::from_secs(args.seconds),
    };
    let mut backends = Vec::new();
    let mut sqlite = Backend {
        name: "SQLite",
        points: Vec::new(),
    };
    for &size in &args.sizes {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}/scale.db?mode=rwc", dir.path().display());
        eprintln!("== SQLite, {}", count(size, "event"));
        sqlite.add(point(&url, size, &args, &plan).await?, &args);
    }
    backends.push(sqlite);
    match &postgres_url {
        Some(admin) => {
            let mut postgres = Backend {
                name: "PostgreSQL",
                points: Vec::new(),
            };
            for &size in &args.sizes {
                eprintln!("== PostgreSQL, {}", count(size, "event"));
                let scratch = ScratchPostgres::create(admin).await?;
                let result = point(&scratch.url, size, &args, &plan).await;
                scratch.drop_database().await?;
                postgres.add(result?, &args);
            }
            backends.push(postgres);
        }
        None => {
            eprintln!("PostgreSQL not run: pass --postgres-url or set QUANDO_BENCH_POSTGRES_URL")
        }
    }

    for b in &backends {
        print!("{}", table(b, &args));
    }
    draw(&backends, &args.chart)?;
    let cores = match pin::server_core(args.no_pin) {
        Some(core) => format!("the server child on CPU {core}, the load generator on the others"),
        None => "the server child and the load generator on every core".into(),
    };
    println!(
        "\nchart: {}; whole run: {:.1}s; {cores}",
        args.chart.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Seeds a fresh database at `url` with `size` events, starts a server child on it and runs
/// the operations.
async fn point(url: &str, size: usize, args: &ScaleArgs, plan: &Plan) -> Result<Point, AnyError> {
    let db = quando_api::db::connect(url).await?;
    quando_api::db::migrate(&db).await?;
    db.close().await?;
    let calendars = size / args.events_per_calendar;
    let seeding = seed::seeding_connection(url).await?;
    let seeded = seed::seed(&seeding, size, calendars).await?;
    let analyzing = Instant::now();
    seed::analyze(&seeding).await?;
    let seeded_in = seeded.elapsed + analyzing.elapsed();
    seeding.close().await?;
    eprintln!(
        "  seeded {} over {} in {:.1}s",
        count(size, "event"),
        count(calendars, "calendar"),
        seeded_in.as_secs_f64()
    );
    let seeded = Arc::new(seeded);
    let slots = Arc::new(FreshSlots::new(seeded.calendars.clone())?);
    let server = child::Server::start(url, pin::server_core(args.no_pin)).await?;
    let target = Target::new(&server, seeded, slots, args.connections)?;
    let mut cells = Vec::new();
    let mut failures = Vec::new();
    for workload in OPERATIONS {
        eprintln!("  {}", workload.name());
        match workloads::run_simple(&target, plan, workload, server.pid()).await {
            Ok(row) => {
                let expected = row.expected;
                cells.push(row.measured.map(|m| cell(&m, expected)));
            }
            Err(err) => {
                failures.push(format!("{}: {err}", workload.name()));
                cells.push(None);
            }
        }
    }
    server.stop();
    Ok(Point {
        size,
        seeded_in,
        cells,
        failures,
    })
}

fn cell(m: &Measured, expected: u16) -> Cell {
    Cell {
        rate: m.rate(),
        p50: m.ms(0.5),
        p99: m.ms(0.99),
        unexpected: m.unexpected(expected),
    }
}

/// `100k`, `1M`, `10M`, `2.5M`.
fn short(size: usize) -> String {
    let (value, unit) = if size >= 1_000_000 {
        (size as f64 / 1e6, "M")
    } else if size >= 1_000 {
        (size as f64 / 1e3, "k")
    } else {
        (size as f64, "")
    };
    if value.fract() == 0.0 {
        format!("{value:.0}{unit}")
    } else {
        format!("{value:.1}{unit}")
    }
}

/// The p50 of the largest size over that of the smallest, when both were measured.
fn growth(b: &Backend, op: usize) -> Option<f64> {
    let first = b.points.first()?.cells.get(op)?.as_ref()?;
    let last = b.points.last()?.cells.get(op)?.as_ref()?;
    (b.points.len() > 1).then(|| last.p50 / first.p50.max(1e-3))
}

/// One backend's table: a row per operation, a column per size with p50 / p99 and the rate,
/// then the p50 growth against the target.
fn table(b: &Backend, args: &ScaleArgs) -> String {
    let (Some(first), Some(last)) = (b.points.first(), b.points.last()) else {
        return String::new();
    };
    let span = format!("{} to {}", short(first.size), short(last.size));
    let mut out = String::new();
    let seeded: Vec<String> = b
        .points
        .iter()
        .map(|p| format!("{} in {:.0}s", short(p.size), p.seeded_in.as_secs_f64()))
        .collect();
    out.push_str(&format!(
        "\n{}: {} events per calendar, {}, {}s per operation after {}s warm-up; seeded {}\n\n",
        b.name,
        thousands(args.events_per_calendar as u64),
        count(args.connections, "connection"),
        args.seconds,
        WARMUP.as_secs(),
        seeded.join(", ")
    ));
    let sep = if args.markdown { " | " } else { "  " };
    let mut header = vec!["operation".to_string()];
    header.extend(
        b.points
            .iter()
            .map(|p| format!("{}: p50 / p99 ms (req/s)", short(p.size))),
    );
    header.push(format!("p50 growth {span}"));
    header.push(format!("target <= {GROWTH_TARGET}x"));
    let mut lines = vec![header];
    for (i, op) in OPERATIONS.iter().enumerate() {
        let mut line = vec![op.name().to_string()];
        for p in &b.points {
            line.push(match p.cells.get(i).and_then(Option::as_ref) {
                Some(c) if c.unexpected > 0 => format!(
                    "{:.2} / {:.2} ({:.0}) {} UNEXPECTED",
                    c.p50, c.p99, c.rate, c.unexpected
                ),
                Some(c) => format!("{:.2} / {:.2} ({:.0})", c.p50, c.p99, c.rate),
                None => "FAILED".into(),
            });
        }
        match growth(b, i) {
            Some(g) => {
                line.push(format!("{g:.2}x"));
                line.push(if g <= GROWTH_TARGET { "met" } else { "not met" }.into());
            }
            None => {
                line.push("-".into());
                line.push("-".into());
            }
        }
        lines.push(line);
    }
    if args.markdown {
        let columns = lines[0].len();
        lines.insert(1, vec!["---".to_string(); columns]);
        for line in &lines {
            out.push_str(&format!("| {} |\n", line.join(sep)));
        }
    } else {
        let widths: Vec<usize> = (0..lines[0].len())
            .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
            .collect();
        for line in &lines {
            let padded: Vec<String> = line
                .iter()
                .zip(&widths)
                .map(|(s, w)| format!("{s:<w$}"))
                .collect();
            out.push_str(padded.join(sep).trim_end());
            out.push('\n');
        }
    }
    for p in &b.points {
        for f in &p.failures {
            out.push_str(&format!("\nFAILED at {}: {f}\n", short(p.size)));
        }
    }
    out
}

/// Colours per operation, in `OPERATIONS` order.
const COLOURS: [RGBColor; 5] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
];

/// The PNG: p50 on the left, p99 on the right; x is history size and y milliseconds, both on
/// log scales; a colour per operation, SQLite solid with circles, PostgreSQL dashed with
/// triangles.
fn draw(backends: &[Backend], path: &Path) -> Result<(), AnyError> {
    let text = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let sizes: Vec<f64> = backends
        .iter()
        .flat_map(|b| b.points.iter().map(|p| p.size as f64))
        .collect();
    let values: Vec<f64> = backends
        .iter()
        .flat_map(|b| b.points.iter())
        .flat_map(|p| p.cells.iter().flatten())
        .flat_map(|c| [c.p50, c.p99])
        .filter(|v| *v > 0.0)
        .collect();
    if sizes.is_empty() || values.is_empty() {
        return Err("nothing was measured to draw".into());
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let x = (min(&sizes) / 1.5)..(max(&sizes) * 1.5);
    let y = (min(&values) / 1.5)..(max(&values) * 1.5);

    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let root = BitMapBackend::new(path, (1400, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| text(&e))?;
    let root = root
        .titled(
            "Quando: latency against history size (issue 17)",
            ("sans-serif", 26),
        )
        .map_err(|e| text(&e))?;
    let (charts, legend) = root.split_vertically(500);
    let (left, right) = charts.split_horizontally(700);
    let mut x_keys: Vec<f64> = sizes.clone();
    x_keys.sort_by(f64::total_cmp);
    x_keys.dedup();
    // 1-2-5 steps over the measured range.
    let y_keys: Vec<f64> = (-3..6)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .filter(|v| y.contains(v))
        .collect();
    for (area, name, pick) in [
        (&left, "p50", (|c: &Cell| c.p50) as fn(&Cell) -> f64),
        (&right, "p99", |c: &Cell| c.p99),
    ] {
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{name} (ms, log scale)"), ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(
                x.clone().log_scale().with_key_points(x_keys.clone()),
                y.clone().log_scale().with_key_points(y_keys.clone()),
            )
            .map_err(|e| text(&e))?;
        chart
            .configure_mesh()
            .x_desc("events in the organization (log scale)")
            .y_desc("ms")
            .x_label_formatter(&|v| short(v.round() as usize))
            .y_label_formatter(&|v| format!("{v}"))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| text(&e))?;
        for (b, backend) in backends.iter().enumerate() {
            for (i, _) in OPERATIONS.iter().enumerate() {
                let colour = COLOURS[i % COLOURS.len()];
                let line: Vec<(f64, f64)> = backend
                    .points
                    .iter()
                    .filter_map(|p| {
                        let c = p.cells.get(i)?.as_ref()?;
                        Some((p.size as f64, pick(c).max(1e-3)))
                    })
                    .collect();
                let style = colour.stroke_width(2);
                if b == 0 {
                    chart
                        .draw_series(LineSeries::new(line.clone(), style))
                        .map_err(|e| text(&e))?;
                    chart
                        .draw_series(line.iter().map(|p| Circle::new(*p, 4, colour.filled())))
                        .map_err(|e| text(&e))?;
                } else {
                    chart
                        .draw_series(DashedLineSeries::new(line.clone(), 8, 5, style))
                        .map_err(|e| text(&e))?;
                    chart
                        .draw_series(
                            line.iter()
                                .map(|p| TriangleMarker::new(*p, 5, colour.filled())),
                        )
                        .map_err(|e| text(&e))?;
                }
            }
        }
    }
    // The legend below both charts: a row per backend, a column per operation.
    for (b, backend) in backends.iter().enumerate() {
        let y = 24 + b as i32 * 30;
        legend
            .draw(&Text::new(backend.name, (40, y - 8), ("sans-serif", 15)))
            .map_err(|e| text(&e))?;
        for (i, op) in OPERATIONS.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let style = colour.stroke_width(2);
            let x = 160 + i as i32 * 240;
            let segment = vec![(x, y), (x + 36, y)];
            if b == 0 {
                legend
                    .draw(&PathElement::new(segment, style))
                    .map_err(|e| text(&e))?;
                legend
                    .draw(&Circle::new((x + 18, y), 4, colour.filled()))
                    .map_err(|e| text(&e))?;
            } else {
                legend
                    .draw(&plotters::element::DashedPathElement::new(
                        segment, 6, 4, style,
                    ))
                    .map_err(|e| text(&e))?;
                legend
                    .draw(&TriangleMarker::new((x + 18, y), 5, colour.filled()))
                    .map_err(|e| text(&e))?;
            }
            legend
                .draw(&Text::new(op.name(), (x + 44, y - 8), ("sans-serif", 15)))
                .map_err(|e| text(&e))?;
        }
    }
    root.present().map_err(|e| text(&e))?;
    Ok(())
}
