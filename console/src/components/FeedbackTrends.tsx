// Each feedback key of a use case over a chosen time range: the mean per model and time bucket, with its
// 95% interval as a band (MetricWithContext.timeseries).
import { lazy, Suspense } from "react";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { graphql } from "../gql";
import { Await, Empty, Loading } from "./States";
import { windowOf } from "./TimeRange";

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

export function FeedbackTrends({ useCase, range, tick }: { useCase: string; range: number; tick: number }) {
  const loaded = useApi(() => {
    const { from, to, interval } = windowOf(range);
    return gql(Trends, { useCase, input: { interval, byModel: true, timerange: { from, to } } });
  }, [useCase, range, tick]);

  return (
    <section aria-labelledby="trends-title" className="card">
      <h2 id="trends-title">Feedback over time</h2>
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
