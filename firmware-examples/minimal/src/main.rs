//! `cxr-minimal`: the smallest useful Raspberry Pi program. It scores one chest X-ray (PNG, JPEG
//! or DICOM), read from a path or from stdin, with the model compiled into the binary, and
//! prints P(covid) on one line:
//!
//! ```text
//! $ cxr-minimal chest.png            # or: cxr-minimal - < chest.png
//! p_covid=0.123456 class=non-covid threshold=0.2726 model=seed-cnn
//! ```
//!
//! Options are parsed by hand: two of them do not pay for an argument-parser crate in a binary
//! whose point is being small. Research use only, not for diagnosis (printed on stderr).

use anyhow::{Context, bail};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: cxr-minimal [--model MODEL.onnx|MODEL.card.json] [--threads-per-image N] [IMAGE | -]
Scores one chest X-ray (PNG, JPEG or DICOM) and prints P(covid). IMAGE `-` or none reads stdin.
Without --model it uses the model compiled into the binary. --threads-per-image splits the
model's matrix products over N threads (default 1; 0: one per core). Research use only, not for
diagnosis.";

/// What the command line asked for.
struct Args {
    model: Option<PathBuf>,
    threads_per_image: usize,
    /// `None`: read stdin.
    image: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cxr-minimal: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cxr-minimal: {}", cxr_core::error_message(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// `Ok(None)` for `--help`.
fn parse_args(mut raw: impl Iterator<Item = std::ffi::OsString>) -> anyhow::Result<Option<Args>> {
    let mut args = Args { model: None, threads_per_image: 1, image: None };
    let mut image_given = false;
    while let Some(arg) = raw.next() {
        match arg.to_str() {
            Some("-h" | "--help") => return Ok(None),
            Some("--model") => args.model = Some(raw.next().context("--model needs a path")?.into()),
            Some("--threads-per-image") => {
                let n = raw.next().context("--threads-per-image needs a number")?;
                args.threads_per_image = n
                    .to_str()
                    .and_then(|n| n.parse().ok())
                    .with_context(|| format!("--threads-per-image: not a number: {}", n.to_string_lossy()))?;
            }
            Some(flag) if flag.starts_with("--") => bail!("unknown option {flag}"),
            _ if image_given => bail!("one image per run (got a second one: {})", Path::new(&arg).display()),
            _ => {
                image_given = true;
                args.image = (arg != "-").then(|| arg.into());
            }
        }
    }
    if !image_given && std::io::stdin().is_terminal() {
        bail!("no image given (pass a path, or `-` and pipe the image in)");
    }
    Ok(Some(args))
}

fn run(args: &Args) -> anyhow::Result<()> {
    let (label, bytes) = match &args.image {
        // Bounded, and no FIFO or device: see `cxr_core::image::read_image_file`.
        Some(path) => (path.clone(), cxr_core::image::read_image_file(path)?),
        None => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).context("<stdin>: cannot read image")?;
            (PathBuf::from("<stdin>"), bytes)
        }
    };
    let model = cxr_pi_model::load(args.model.as_deref(), args.threads_per_image)?;
    let score = cxr_pi_model::score(&mut model.session(), &label, &bytes)?;
    println!(
        "p_covid={:.6} class={} threshold={:.4} model={}",
        score.p_covid, score.class, model.card.threshold, model.card.name
    );
    eprintln!("{}", cxr_core::card::RESEARCH_USE_ONLY);
    Ok(())
}
