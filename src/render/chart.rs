//! The trend chart as a PNG: the weekly index (dots), its EWMA (line), the
//! `high` threshold (dashed) and the weeks that did not count (grey marks
//! on the axis), the assessment window shaded. Pure: data in, bytes out.
//!
//! Sized for a phone (640 × 320 px) and drawn on a dark background with
//! light text, so it reads the same in Slack's light and dark themes. Text
//! uses the font embedded from `assets/fonts` (DejaVu Sans Mono, under the
//! Bitstream Vera licence), never a system font.

use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::model::Chart;

/// Width and height in pixels: readable on a phone, a few KiB as PNG.
pub const CHART_SIZE: (u32, u32) = (640, 320);

/// The embedded font (DejaVu Sans Mono 2.37; licence in assets/fonts).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");
/// The family name the chart's text asks for.
const FAMILY: &str = "sans-serif";

const BACKGROUND: RGBColor = RGBColor(0x1f, 0x23, 0x28);
const WINDOW: RGBColor = RGBColor(0x2b, 0x31, 0x38);
const TEXT: RGBColor = RGBColor(0xd0, 0xd7, 0xde);
const GRID: RGBColor = RGBColor(0x3d, 0x44, 0x4d);
const INDEX: RGBColor = RGBColor(0x58, 0xa6, 0xff);
const EWMA: RGBColor = RGBColor(0xf0, 0x88, 0x3e);
const HIGH: RGBColor = RGBColor(0x3f, 0xb9, 0x50);
const NOT_COUNTED: RGBColor = RGBColor(0x8b, 0x94, 0x9e);

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("the chart's font could not be loaded")]
    Font,
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(String),
}

fn font() -> Result<(), ChartError> {
    static LOADED: OnceLock<bool> = OnceLock::new();
    let ok = *LOADED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(ChartError::Font) }
}

fn draw_err(e: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// Draws `chart` and encodes it as PNG.
pub fn chart_png(chart: &Chart) -> Result<Vec<u8>, ChartError> {
    font()?;
    let (width, height) = CHART_SIZE;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    draw(chart, &mut rgb)?;
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder
        .write_header()
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    writer
        .write_image_data(&rgb)
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    Ok(png)
}

fn draw(chart: &Chart, rgb: &mut [u8]) -> Result<(), ChartError> {
    let root = BitMapBackend::with_buffer(rgb, CHART_SIZE).into_drawing_area();
    root.fill(&BACKGROUND).map_err(draw_err)?;
    let n = chart.weeks.len().max(1);
    let x_range = -0.5..(n as f64 - 0.5);
    let mut ctx = ChartBuilder::on(&root)
        .margin(12)
        .caption(
            "Ownership index by week",
            (FAMILY, 18).into_font().color(&TEXT),
        )
        .x_label_area_size(26)
        .y_label_area_size(40)
        .build_cartesian_2d(x_range, 0.0..1.0)
        .map_err(draw_err)?;

    let window_start = n.saturating_sub(chart.window as usize) as f64 - 0.5;
    ctx.draw_series(std::iter::once(Rectangle::new(
        [(window_start, 0.0), (n as f64 - 0.5, 1.0)],
        WINDOW.filled(),
    )))
    .map_err(draw_err)?;

    let labels = |x: &f64| {
        let k = x.round();
        if (x - k).abs() > 1e-6 || k < 0.0 {
            return String::new();
        }
        chart
            .weeks
            .get(k as usize)
            .map(|w| format!("W{:02}", w.week.week()))
            .unwrap_or_default()
    };
    ctx.configure_mesh()
        .disable_x_mesh()
        .x_labels(n.min(16))
        .y_labels(6)
        .x_label_formatter(&labels)
        .y_label_formatter(&|y| format!("{y:.1}"))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(GRID)
        .label_style((FAMILY, 12).into_font().color(&TEXT))
        .draw()
        .map_err(draw_err)?;

    // The threshold, dashed: one short segment per half week.
    let dashes = (0..n * 2).map(|k| {
        let x = k as f64 / 2.0 - 0.5;
        PathElement::new(
            vec![(x, chart.high), (x + 0.25, chart.high)],
            HIGH.stroke_width(2),
        )
    });
    ctx.draw_series(dashes)
        .map_err(draw_err)?
        .label(format!("high {}", chart.high))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], HIGH.stroke_width(2)));

    let ewma: Vec<(f64, f64)> = chart
        .weeks
        .iter()
        .enumerate()
        .filter_map(|(k, w)| w.ewma.map(|e| (k as f64, e)))
        .collect();
    ctx.draw_series(LineSeries::new(ewma, EWMA.stroke_width(3)))
        .map_err(draw_err)?
        .label("trend (EWMA)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], EWMA.stroke_width(3)));

    let points = chart.weeks.iter().enumerate().filter_map(|(k, w)| {
        w.index
            .map(|i| Circle::new((k as f64, i), 4, INDEX.filled()))
    });
    ctx.draw_series(points)
        .map_err(draw_err)?
        .label("week")
        .legend(|(x, y)| Circle::new((x + 8, y), 4, INDEX.filled()));

    let missing = chart
        .weeks
        .iter()
        .enumerate()
        .filter(|(_, w)| !w.counted)
        .map(|(k, _)| Cross::new((k as f64, 0.03), 4, NOT_COUNTED.stroke_width(2)));
    ctx.draw_series(missing)
        .map_err(draw_err)?
        .label("did not count")
        .legend(|(x, y)| Cross::new((x + 8, y), 4, NOT_COUNTED.stroke_width(2)));

    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(BACKGROUND.mix(0.8))
        .border_style(GRID)
        .label_font((FAMILY, 12).into_font().color(&TEXT))
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate};

    use super::*;
    use crate::domain::{Answer, IsoWeek, PersonId, default_catalogue};
    use crate::model::{Params, chart};

    fn last_week() -> IsoWeek {
        "2026-W46".parse().unwrap()
    }

    fn today() -> NaiveDate {
        last_week().monday() + Duration::days(6)
    }

    /// `weeks` oldest first ending at `last_week()`: `Some(option index)`
    /// answers every question with that option (clamped), `None` skips.
    fn history(weeks: &[Option<usize>]) -> Vec<Answer> {
        let catalogue = default_catalogue();
        let start = last_week().plus(1 - weeks.len() as i64);
        let mut out = Vec::new();
        for (k, o) in weeks.iter().enumerate() {
            let Some(o) = o else { continue };
            for q in catalogue.questions() {
                let option = &q.options[(*o).min(q.options.len() - 1)];
                out.push(Answer {
                    person: PersonId::parse("U1").unwrap(),
                    week: start.plus(k as i64),
                    question: q.id.clone(),
                    option: option.key.clone(),
                });
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn the_chart_is_a_small_png_that_differs_between_histories() {
        let catalogue = default_catalogue();
        let params = Params::default();
        let rising: Vec<_> = (0..16).map(|k| Some(k / 5)).collect();
        let mut gappy = vec![Some(3); 16];
        gappy[4] = None;
        gappy[11] = None;
        let a = chart_png(&chart(&history(&rising), &catalogue, &params, today())).unwrap();
        let b = chart_png(&chart(&history(&gappy), &catalogue, &params, today())).unwrap();
        for png in [&a, &b] {
            let (w, h, pixels) = decode(png);
            assert_eq!((w, h), CHART_SIZE);
            // Drawn on, not a blank canvas.
            assert!(pixels.chunks(3).any(|p| p == [0x58, 0xa6, 0xff]));
            assert!(png.len() < 48 * 1024, "{} bytes", png.len());
        }
        assert_ne!(decode(&a).2, decode(&b).2);
    }

    #[test]
    fn the_chart_data_shows_the_window_and_weeks_before_it() {
        let catalogue = default_catalogue();
        let mut weeks: Vec<_> = (0..20).map(|k| Some(k / 6)).collect();
        weeks[17] = None;
        let data = chart(&history(&weeks), &catalogue, &Params::default(), today());
        assert_eq!(data.weeks.len(), 16);
        assert_eq!(data.weeks.last().unwrap().week, last_week());
        assert!(!data.weeks[13].counted && data.weeks[13].index.is_none());
        assert_eq!(data.weeks[13].ewma, data.weeks[12].ewma);
        insta::assert_json_snapshot!("chart_data", data);
    }

    #[test]
    fn a_history_with_no_counted_week_still_draws() {
        let data = chart(&[], &default_catalogue(), &Params::default(), today());
        assert!(data.is_empty());
        let (w, h, _) = decode(&chart_png(&data).unwrap());
        assert_eq!((w, h), CHART_SIZE);
    }
}
