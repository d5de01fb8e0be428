// Loading, error and empty states, the same on every page.
import type { ReactNode } from "react";
import type { Loaded } from "../api/useApi";

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      {what}…
    </p>
  );
}

export function ErrorState({ error, retry }: { error: Error; retry?: () => void }) {
  const code = (error as { code?: string }).code;
  return (
    <div className="error-state" role="alert">
      <strong>{code === "NOT_FOUND" ? "Not found" : "Something went wrong"}</strong>
      <p>{error.message}</p>
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** What went wrong with the last action (the server's message), where the action is; nothing when all is well. */
export function FormError({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return (
    <p className="form-error" role="alert">
      {error}
    </p>
  );
}

/** The end of a form: what went wrong with it, its submit button and, where it can be left, Cancel. */
export function FormFooter({ error, submit, onCancel }: { error: string | null | undefined; submit: string; onCancel?: () => void }) {
  return (
    <>
      <FormError error={error} />
      <div className="actions">
        <button type="submit" className="primary">
          {submit}
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty-state">
      <strong>{title}</strong>
      {children && <p>{children}</p>}
    </div>
  );
}

/** Shows loading or the error of ``loaded``, else ``children(data)``. */
export function Await<T>({ loaded, children }: { loaded: Loaded<T>; children: (data: T) => ReactNode }) {
  if (loaded.error) return <ErrorState error={loaded.error} retry={loaded.reload} />;
  if (loaded.data === undefined) return <Loading />;
  return <>{children(loaded.data)}</>;
}
