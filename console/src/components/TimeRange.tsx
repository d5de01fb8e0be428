// The time ranges the overview's charts offer, and the bucket each is drawn with.
import type { TimeseriesInterval } from "../gql/graphql";

export const RANGES: { label: string; seconds: number; interval: TimeseriesInterval }[] = [
  { label: "Last hour", seconds: 3600, interval: "HOUR" },
  { label: "Last 24 hours", seconds: 86400, interval: "HOUR" },
  { label: "Last 7 days", seconds: 7 * 86400, interval: "DAY" },
  { label: "Last 30 days", seconds: 30 * 86400, interval: "DAY" },
  { label: "Last 90 days", seconds: 90 * 86400, interval: "WEEK" },
];
export const DEFAULT_RANGE = 2;

export interface Window {
  from: number;
  to: number;
  interval: TimeseriesInterval;
}

/** The range ending now (asked again at each refresh, so a live chart moves with the clock). */
export function windowOf(range: number): Window {
  const to = Math.floor(Date.now() / 1000);
  const { seconds, interval } = RANGES[range];
  return { from: to - seconds, to, interval };
}

export function RangePicker({ value, onChange }: { value: number; onChange: (range: number) => void }) {
  return (
    <label>
      Time range{" "}
      <select value={value} onChange={(e) => onChange(Number(e.target.value))}>
        {RANGES.map((r, i) => (
          <option key={r.label} value={i}>
            {r.label}
          </option>
        ))}
      </select>
    </label>
  );
}
