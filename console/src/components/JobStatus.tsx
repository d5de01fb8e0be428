// How a job's status and progress read on the jobs pages.
import { words } from "../format";
import type { JobStatus } from "../gql/graphql";

export const JOB_STATUSES: JobStatus[] = ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELED"];
export const LIVE = new Set<JobStatus>(["PENDING", "RUNNING"]);

export function StatusBadge({ status }: { status: JobStatus }) {
  const tone = status === "FAILED" ? "status-error" : status === "COMPLETED" ? "status-online" : "";
  return <span className={`badge ${tone}`}>{words(status)}</span>;
}

export function Progress({ value, label }: { value: number; label: string }) {
  return (
    <span className="progress">
      <progress max={1} value={value} aria-label={label} />
      <span className="muted">{Math.round(value * 100)}%</span>
    </span>
  );
}
