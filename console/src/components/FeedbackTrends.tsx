// Each feedback key of a use case over a chosen time range: the mean per model and time bucket, with its
// 95% interval as a band (MetricWithContext.timeseries).
import { lazy, Suspense, useState } from "react";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { graphql } from "../gql";
import type { TimeseriesInterval } from "../gql/graphql";
import { Await, Empty, Loading } from "./States";

const TimeChart = lazy(() => import("./TimeChart"));

const Trends = graphql(`
  query FeedbackTrends($useCase: IdOrKey!, $input: TimeseriesInput!) {
    useCase(idOrKey: $useCase) {
      metrics {
        key
        name
        timeseries(input: $input) {
          modelKey
          timeBuckets
          count
          values
          intervals {
            start
            end
          }
        }
      }
    }
  }
`);

const RANGES: { label: string; seconds: number; interval: TimeseriesInterval }[] = [
  { label: "Last 24 hours", seconds: 86400, interval: "HOUR" },
  { label: "Last 7 days", seconds: 7 * 86400, interval: "DAY" },
  { label: "Last 30 days", seconds: 30 * 86400, interval: "DAY" },
  { label: "Last 90 days", seconds: 90 * 86400, interval: "WEEK" },
];

export function FeedbackTrends({ useCase }: { useCase: string }) {
  const [range, setRange] = useState(1);
  const loaded = useApi(() => {
    const now = Math.floor(Date.now() / 1000);
    const { seconds, interval } = RANGES[range];
    return gql(Trends, { useCase, input: { interval, byModel: true, timerange: { from: now - seconds, to: now } } });
  }, [useCase, range]);

  return (
    <section aria-labelledby="trends-title" className="card">
      <div className="section-head">
        <h2 id="trends-title">Feedback over time</h2>
        <label>
          Time range{" "}
          <select value={range} onChange={(e) => setRange(Number(e.target.value))}>
            {RANGES.map((r, i) => (
              <option key={r.label} value={i}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <Await loaded={loaded}>
        {(data) => {
          const metrics = (data.useCase?.metrics ?? []).filter((m) => m.timeseries.some((s) => s.count.some((n) => n > 0)));
          if (metrics.length === 0) return <Empty title="No feedback in this time range" />;
          return metrics.map((m) => (
            <div key={m.key}>
              <h3 className="mono">{m.key}</h3>
              <Suspense fallback={<Loading what="Drawing" />}>
                <TimeChart
                  label={`Mean of ${m.key} per model over time`}
                  times={m.timeseries[0].timeBuckets}
                  series={m.timeseries.map((s) => ({
                    label: s.modelKey ?? "all models",
                    values: s.values,
                    low: s.intervals.map((i) => i?.start ?? null),
                    high: s.intervals.map((i) => i?.end ?? null),
                  }))}
                />
              </Suspense>
            </div>
          ));
        }}
      </Await>
    </section>
  );
}
