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

/** The answer's body, or the ApiError it carries (GraphQL errors, the REST error envelope, a 401). */
function settle(status: number, ok: boolean, statusText: string, body: any): unknown {
  if (status === 401) {
    signedOutListeners.forEach((listener) => listener());
  }
  const graphqlError = body?.errors?.[0];
  if (graphqlError) {
    throw new ApiError(graphqlError.message, graphqlError.extensions?.code ?? "ERROR", status, graphqlError.extensions?.details);
  }
  if (!ok) {
    const error = body?.error;
    throw new ApiError(error?.message ?? statusText, error?.code ?? error?.type ?? "ERROR", status, error?.details);
  }
  return body;
}

async function send(path: string, init: RequestInit): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...init });
  } catch {
    throw new ApiError("the server cannot be reached", "NETWORK", 0);
  }
  const body: any = await response.json().catch(() => null);
  return settle(response.status, response.ok, response.statusText, body);
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

/** POSTs raw bytes (a part of a file) to a REST route, reporting the bytes sent so far (fetch cannot tell
 * upload progress; XMLHttpRequest can). ``signal`` aborts it. */
export function sendBytes(
  path: string,
  body: Blob,
  onProgress: (sent: number) => void,
  signal?: AbortSignal,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", `/api/v1${path}`);
    Object.entries(headers({ "Content-Type": "application/octet-stream" })).forEach(([k, v]) => request.setRequestHeader(k, v));
    request.upload.onprogress = (event) => onProgress(event.loaded);
    request.onload = () => {
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(request.responseText);
      } catch {
        // not JSON: settle reports the status
      }
      try {
        resolve(settle(request.status, request.status >= 200 && request.status < 300, request.statusText, parsed));
      } catch (error) {
        reject(error);
      }
    };
    request.onerror = () => reject(new ApiError("the server cannot be reached", "NETWORK", 0));
    request.onabort = () => reject(new ApiError("the upload was stopped", "ABORTED", 0));
    signal?.addEventListener("abort", () => request.abort());
    request.send(body);
  });
}
