// Live pages refresh on an interval through the public API; the reader can pause it.
import { useCallback, useState } from "react";
import { usePolling } from "../api/usePolling";

export interface Live {
  /** Grows at each refresh: a dependency of the page's loads. */
  tick: number;
  paused: boolean;
  setPaused: (paused: boolean) => void;
  ms: number;
}

export function useLive(ms = 5000): Live {
  const [tick, setTick] = useState(0);
  const [paused, setPaused] = useState(false);
  const next = useCallback(() => setTick((t) => t + 1), []);
  usePolling(next, !paused, ms);
  return { tick, paused, setPaused, ms };
}

export function LiveToggle({ live }: { live: Live }) {
  return (
    <button
      type="button"
      className="live-toggle"
      aria-pressed={!live.paused}
      title={live.paused ? "Resume live updates" : `Refreshing every ${live.ms / 1000} s`}
      onClick={() => live.setPaused(!live.paused)}
    >
      <span className={live.paused ? "dot paused" : "dot"} aria-hidden="true" />
      {live.paused ? "Resume live updates" : "Pause live updates"}
    </button>
  );
}
