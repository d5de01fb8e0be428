// The one way the console talks to the server: GraphQL and REST of the public API, with the session
// cookie (sent by the browser) and the session's CSRF token on every call (the server needs it on writes).
import type { TypedDocumentString } from "../gql/graphql";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status: number,
    /** What the server adds to some errors (``extensions.details`` / ``error.details``), e.g. per-field messages. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
const signedOutListeners = new Set<() => void>();

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called when a call finds the session gone (expired, signed out elsewhere, key revoked). */
export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  return { ...(csrfToken ? { "X-CSRF-Token": csrfToken } : {}), ...extra };
}

async function send(path: string, init: RequestInit): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...init });
  } catch {
    throw new ApiError("the server cannot be reached", "NETWORK", 0);
  }
  const body: any = await response.json().catch(() => null);
  if (response.status === 401) {
    signedOutListeners.forEach((listener) => listener());
  }
  const graphqlError = body?.errors?.[0];
  if (graphqlError) {
    throw new ApiError(graphqlError.message, graphqlError.extensions?.code ?? "ERROR", response.status, graphqlError.extensions?.details);
  }
  if (!response.ok) {
    const error = body?.error;
    throw new ApiError(error?.message ?? response.statusText, error?.code ?? error?.type ?? "ERROR", response.status, error?.details);
  }
  return body;
}

export async function gql<R, V>(document: TypedDocumentString<R, V>, variables?: V): Promise<R> {
  const body = (await send("/api/graphql", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
  })) as { data: R };
  return body.data;
}

export async function rest<T>(method: string, path: string, json?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
  return (await send(`/api/v1${path}`, {
    method,
    headers: headers({ ...(json !== undefined ? { "Content-Type": "application/json" } : {}), ...extraHeaders }),
    body: json !== undefined ? JSON.stringify(json) : undefined,
  })) as T;
}
