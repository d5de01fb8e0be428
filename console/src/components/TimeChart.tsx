// A time series chart (uPlot: small and fast): one line per series, with an optional band (an interval).
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  low?: (number | null)[];
  high?: (number | null)[];
}

const PALETTE = ["#3056d3", "#e8590c", "#2b8a3e", "#ae3ec9", "#0c8599", "#c92a2a"];

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** ``times``: epoch seconds on the x axis, or plain numbers (steps) with ``xTime={false}``. */
export default function TimeChart({
  times,
  series,
  label,
  height = 240,
  xTime = true,
}: {
  times: number[];
  series: ChartSeries[];
  label: string;
  height?: number;
  xTime?: boolean;
}) {
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const text = cssVar("--muted") || "#666";
    const grid = cssVar("--border") || "#ddd";
    const data: (number | null)[][] = [times];
    const plotSeries: uPlot.Series[] = [{}];
    const bands: uPlot.Band[] = [];
    series.forEach((s, i) => {
      const color = PALETTE[i % PALETTE.length];
      data.push(s.values);
      plotSeries.push({ label: s.label, stroke: color, width: 2, spanGaps: true, points: { show: true, size: 5 } });
      if (s.low && s.high) {
        const high = data.push(s.high) - 1;
        plotSeries.push({ label: `${s.label} high`, stroke: "transparent", spanGaps: true, points: { show: false } });
        const low = data.push(s.low) - 1;
        plotSeries.push({ label: `${s.label} low`, stroke: "transparent", spanGaps: true, points: { show: false } });
        bands.push({ series: [high, low], fill: `${color}22` });
      }
    });
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const plot = new uPlot(
      {
        width: element.clientWidth || 600,
        height,
        series: plotSeries,
        bands,
        scales: { x: { time: xTime } },
        axes: [axis, axis],
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
      },
      data as uPlot.AlignedData,
      element,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: element.clientWidth, height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [times, series, height, xTime]);

  return (
    <figure className="chart">
      <div ref={box} role="img" aria-label={label} />
      <figcaption>
        {series.map((s, i) => (
          <span key={s.label} className="legend-item">
            <span className="swatch" style={{ background: PALETTE[i % PALETTE.length] }} aria-hidden="true" />
            {s.label}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
