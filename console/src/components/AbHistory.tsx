// An A/B test over time, from its evaluation history (Abcampaign.history): each pair's always-valid interval
// narrowing around its estimate, each model's estimate, and the p-value falling toward the decision threshold.
import { lazy, Suspense } from "react";
import type { ChartSeries } from "./TimeChart";
import { Empty, Loading } from "./States";

const TimeChart = lazy(() => import("./TimeChart"));

export interface Evaluation {
  at: number;
  pValue: number;
  variants: { variant?: { key: string } | null; mean?: number | null; interval?: { start: number; end: number } | null }[];
  pairs: {
    variantA: { key: string };
    variantB: { key: string };
    estimate?: number | null;
    intervalStart?: number | null;
    intervalEnd?: number | null;
  }[];
}

export function pairLabel(a: string, b: string, preference: boolean): string {
  return preference ? `${a} beats ${b} (win rate)` : `${b} − ${a}`;
}

export function AbHistory({ history, alpha, preference }: { history: Evaluation[]; alpha: number; preference: boolean }) {
  if (history.length < 2) {
    return <Empty title="No history yet">Each evaluation with new feedback adds a point (every few seconds while the test runs).</Empty>;
  }
  const times = history.map((h) => h.at);
  const none = preference ? 0.5 : 0;
  const pairs = history[history.length - 1].pairs.map((p, i) => {
    const label = pairLabel(p.variantA.key, p.variantB.key, preference);
    const at = history.map((h) => h.pairs[i]);
    const series: ChartSeries[] = [
      {
        label: preference ? "win rate" : "difference",
        values: at.map((q) => q?.estimate ?? null),
        low: at.map((q) => q?.intervalStart ?? null),
        high: at.map((q) => q?.intervalEnd ?? null),
      },
      { label: preference ? "even (0.5)" : "no difference (0)", values: times.map(() => none), dashed: true },
    ];
    return { label, series };
  });
  const variants: ChartSeries[] = history[history.length - 1].variants.map((v, i) => ({
    label: v.variant?.key ?? "deleted model",
    values: history.map((h) => h.variants[i]?.mean ?? null),
    low: history.map((h) => h.variants[i]?.interval?.start ?? null),
    high: history.map((h) => h.variants[i]?.interval?.end ?? null),
  }));
  const pValues: ChartSeries[] = [
    { label: "p-value", values: history.map((h) => Math.max(h.pValue, 1e-12)) },
    { label: `decision threshold (${alpha})`, values: times.map(() => alpha), dashed: true },
  ];
  return (
    <div className="chart-grid wide">
      {pairs.map((p) => (
        <div key={p.label}>
          <h3>{p.label}</h3>
          <Suspense fallback={<Loading what="Drawing" />}>
            <TimeChart
              label={`Always-valid interval of ${p.label} over time`}
              times={times}
              series={p.series}
              height={200}
            />
          </Suspense>
        </div>
      ))}
      <div>
        <h3>Each model's {preference ? "win rate" : "mean"}</h3>
        <Suspense fallback={<Loading what="Drawing" />}>
          <TimeChart label="Each model's estimate over time, with its interval" times={times} series={variants} height={200} />
        </Suspense>
      </div>
      <div>
        <h3>p-value</h3>
        <Suspense fallback={<Loading what="Drawing" />}>
          <TimeChart label="Always-valid p-value over time" times={times} series={pValues} height={200} yLog />
        </Suspense>
      </div>
    </div>
  );
}
