//! Per-epoch metrics: the CSV beside a run and its PNG plots.

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One epoch's figures. Errors are fractions (0.25 = 25 %).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EpochMetrics {
    /// Epoch number (1 = the first).
    pub epoch: u64,
    /// Steps taken in all at its end.
    pub step: u64,
    /// Learning rate during the epoch.
    pub lr: f64,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training top-1 error (on the augmented batches, with dropout).
    pub train_top1_error: f64,
    /// Validation loss (centre crop).
    pub val_loss: f64,
    /// Validation top-1 error (centre crop).
    pub val_top1_error: f64,
    /// Validation top-5 error (centre crop).
    pub val_top5_error: f64,
    /// Training throughput.
    pub images_per_second: f64,
    /// Wall time of the epoch's training.
    pub seconds: f64,
}

const HEADER: &str = "epoch,step,lr,train_loss,train_top1_error,val_loss,val_top1_error,val_top5_error,images_per_second,seconds";

/// Writes the history as CSV (atomically: the file is complete whenever it exists).
pub fn write_csv(history: &[EpochMetrics], path: &Path) -> Result<()> {
    let mut text = String::from(HEADER);
    text.push('\n');
    for m in history {
        text.push_str(&format!(
            "{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.1},{:.2}\n",
            m.epoch,
            m.step,
            m.lr,
            m.train_loss,
            m.train_top1_error,
            m.val_loss,
            m.val_top1_error,
            m.val_top5_error,
            m.images_per_second,
            m.seconds
        ));
    }
    alexnet_host::atomic::write_atomic(path, text.as_bytes())
}

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bundled font is valid; if registration failed, plots would lack text only.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws `loss.png` (training and validation loss) and `error.png` (top-1 and top-5
/// errors) into `dir`.
pub fn plot(history: &[EpochMetrics], dir: &Path) -> Result<()> {
    if history.is_empty() {
        return Ok(());
    }
    register_font();
    let loss = [
        (
            "train loss",
            history.iter().map(|m| (m.epoch, m.train_loss)).collect(),
        ),
        (
            "val loss",
            history.iter().map(|m| (m.epoch, m.val_loss)).collect(),
        ),
    ];
    chart(&dir.join("loss.png"), "Loss per epoch", "loss", &loss)?;
    let errors = [
        (
            "train top-1 %",
            history
                .iter()
                .map(|m| (m.epoch, 100.0 * m.train_top1_error))
                .collect(),
        ),
        (
            "val top-1 %",
            history
                .iter()
                .map(|m| (m.epoch, 100.0 * m.val_top1_error))
                .collect(),
        ),
        (
            "val top-5 %",
            history
                .iter()
                .map(|m| (m.epoch, 100.0 * m.val_top5_error))
                .collect(),
        ),
    ];
    chart(
        &dir.join("error.png"),
        "Error per epoch",
        "error %",
        &errors,
    )
}

type Series<'a> = (&'a str, Vec<(u64, f64)>);

fn chart(path: &Path, title: &str, y_label: &str, series: &[Series<'_>]) -> Result<()> {
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let last = series
            .iter()
            .flat_map(|(_, s)| s.iter().map(|p| p.0))
            .max()
            .unwrap_or(1)
            .max(2);
        let finite = || {
            series
                .iter()
                .flat_map(|(_, s)| s.iter().map(|p| p.1))
                .filter(|v| v.is_finite())
        };
        let top = finite().fold(0.0f64, f64::max);
        let bottom = finite().fold(top, f64::min).min(0.0);
        let top = if top > bottom {
            top * 1.05
        } else {
            bottom + 1.0
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1u64..last, bottom..top)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_label)
            .draw()?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = [BLUE, RED, RGBColor(0, 150, 0), BLACK]
                .get(i)
                .copied()
                .unwrap_or(BLACK);
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied().filter(|p| p.1.is_finite()),
                    color.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("cannot draw {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> Vec<EpochMetrics> {
        (1..=3)
            .map(|e| EpochMetrics {
                epoch: e,
                step: e * 10,
                lr: 0.01,
                train_loss: 2.0 / e as f64,
                train_top1_error: 0.5 / e as f64,
                val_loss: 2.2 / e as f64,
                val_top1_error: 0.6 / e as f64,
                val_top5_error: 0.2 / e as f64,
                images_per_second: 1000.0,
                seconds: 1.0,
            })
            .collect()
    }

    #[test]
    fn csv_has_a_row_per_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        write_csv(&history(), &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], HEADER);
        assert!(lines[2].starts_with("2,20,0.01,1.000000,"), "{}", lines[2]);
    }

    #[test]
    fn plots_are_pngs() {
        let dir = tempfile::tempdir().unwrap();
        plot(&history(), dir.path()).unwrap();
        for name in ["loss.png", "error.png"] {
            let img = image::open(dir.path().join(name)).unwrap();
            assert_eq!((img.width(), img.height()), (800, 500));
            // Something was drawn: not all pixels are white.
            let rgb = img.to_rgb8();
            let dark = rgb.pixels().filter(|p| p.0[0] < 128).count();
            assert!(dark > 1000, "{name}: {dark} dark pixels");
        }
    }
}
