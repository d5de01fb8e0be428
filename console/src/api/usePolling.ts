import { useEffect } from "react";

/** Calls ``reload`` every ``ms`` while ``active`` (live pages: a running job, a filling upload). Paused while
 * the tab is hidden, so a forgotten tab does not keep asking. */
export function usePolling(reload: () => void, active: boolean, ms = 2000): void {
  useEffect(() => {
    if (!active) return;
    const timer = window.setInterval(() => {
      if (document.visibilityState === "visible") reload();
    }, ms);
    return () => window.clearInterval(timer);
  }, [reload, active, ms]);
}
