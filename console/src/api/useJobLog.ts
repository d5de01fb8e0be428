// A running job's log, followed through the server-sent events of GET /api/v1/jobs/{id}/logs/stream.
import { useEffect, useRef, useState } from "react";

// What the page keeps of a long log: its last lines.
const KEPT_LINES = 2000;

export interface FollowedLog {
  /** The text received so far (its last KEPT_LINES lines); null before the stream said anything. */
  text: string | null;
  /** Why the stream stopped early (the session ended, the connection failed for good). */
  error: string | null;
}

function keepLast(text: string): string {
  let cut = text.length;
  for (let i = 0; i < KEPT_LINES && cut > 0; i++) cut = text.lastIndexOf("\n", cut - 2) + 1;
  return cut > 0 ? text.slice(cut) : text;
}

/** Follows the log of job ``id`` while ``follow`` (it starts with the last ``tail`` lines); calls
 * ``onChange`` when the job's status or progress moves and when it ends. The browser's EventSource resumes
 * a dropped connection from the last offset it got. */
export function useJobLog(id: string, follow: boolean, tail: number, onChange: () => void): FollowedLog {
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;
  useEffect(() => {
    if (!follow) return;
    setError(null);
    setText((t) => t ?? "");
    const source = new EventSource(`/api/v1/jobs/${encodeURIComponent(id)}/logs/stream?tail=${tail}`);
    source.addEventListener("log", (event) => {
      const chunk = JSON.parse((event as MessageEvent).data) as string;
      setText((t) => keepLast((t ?? "") + chunk));
    });
    source.addEventListener("status", () => changed.current());
    source.addEventListener("end", () => {
      source.close();
      changed.current();
    });
    source.addEventListener("stopped", (event) => {
      source.close();
      setError((JSON.parse((event as MessageEvent).data) as { message: string }).message);
    });
    source.onerror = () => {
      // CONNECTING: the browser retries by itself; CLOSED: the server refused the stream.
      if (source.readyState === EventSource.CLOSED) setError("the live log could not be followed; reload the page");
    };
    return () => source.close();
  }, [id, follow, tail]);
  return { text, error };
}
