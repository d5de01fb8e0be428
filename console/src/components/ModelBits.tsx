// How a model's status and the data a job trained it on read on the model pages.
import type { ModelOnline } from "../gql/graphql";

export function ModelStatus({ online, error }: { online: ModelOnline; error?: string | null }) {
  const tone = online === "ONLINE" ? "status-online" : online === "ERROR" ? "status-error" : "";
  return (
    <span className={`badge ${tone}`} title={error ?? undefined}>
      {online.toLowerCase()}
    </span>
  );
}

/** The data a job's arguments name: a dataset key, or "logged interactions" for a feedback filter. */
export function dataOf(args: unknown): string | null {
  const a = (args ?? {}) as Record<string, unknown>;
  if (typeof a.dataset === "string") return `dataset ${a.dataset}`;
  if (a.feedback_filter) return "logged interactions (feedback filter)";
  return null;
}
