// The second step of a delete: what goes, and the choice to go on or keep it.
import type { ReactNode } from "react";

export function ConfirmDelete({ children, onConfirm, onCancel }: { children: ReactNode; onConfirm: () => void; onCancel: () => void }) {
  return (
    <div className="card confirm" role="group" aria-label="Confirm delete">
      <p>{children}</p>
      <div className="actions">
        <button type="button" className="danger" onClick={onConfirm}>
          Delete for good
        </button>
        <button type="button" onClick={onCancel}>
          Keep it
        </button>
      </div>
    </div>
  );
}
