// Cursor paging of the API's connections (pageInfo + totalCount): previous / next, and the page size, kept in
// the page's URL with its filters.
import { useSearchParams } from "react-router";
import { graphql } from "../gql";

/** What a connection answers about its page: spread it as ``pageInfo { ...PageFields }``. */
export const PageFields = graphql(`
  fragment PageFields on PageInfo {
    hasNextPage
    hasPreviousPage
    startCursor
    endCursor
  }
`);

export interface PageInfo {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor?: string | null;
  endCursor?: string | null;
}

/** What the API is asked for: the first N after a cursor, or the last N before one. */
export interface PageRequest {
  first?: number;
  after?: string;
  last?: number;
  before?: string;
}

export const PAGE_SIZES = [25, 50, 100];

/** The page asked for by the URL (``size``, ``after`` / ``before``), next to the filters named ``filters``;
 * ``update`` changes filters (back to the first page) or moves to another page, keeping the rest. */
export function useCursorPaging(filters: string[]) {
  const [params, setParams] = useSearchParams();
  const size = PAGE_SIZES.includes(Number(params.get("size"))) ? Number(params.get("size")) : PAGE_SIZES[0];
  const page: PageRequest = params.get("before")
    ? { last: size, before: params.get("before")! }
    : { first: size, after: params.get("after") ?? undefined };
  const update = (changes: Record<string, string | null>, paging: PageRequest = {}) => {
    const out = new URLSearchParams();
    const kept = Object.fromEntries(filters.map((name) => [name, params.get(name)]));
    const next = { ...kept, size: size !== PAGE_SIZES[0] ? String(size) : null, ...changes };
    Object.entries(next).forEach(([k, v]) => v && out.set(k, v));
    if (paging.after) out.set("after", paging.after);
    if (paging.before) out.set("before", paging.before);
    setParams(out);
  };
  /** What <Pager> needs besides the connection's pageInfo and total. */
  const pager = {
    size,
    onPage: (p: PageRequest) => update({}, p),
    onSize: (s: number) => update({ size: s !== PAGE_SIZES[0] ? String(s) : null }),
  };
  return { params, size, page, update, pager };
}

export function Pager({
  pageInfo,
  total,
  size,
  onPage,
  onSize,
}: {
  pageInfo: PageInfo;
  total: number;
  size: number;
  onPage: (page: PageRequest) => void;
  onSize: (size: number) => void;
}) {
  return (
    <nav className="pager" aria-label="Pages">
      <span className="muted">{total.toLocaleString()} in all</span>
      <button
        type="button"
        disabled={!pageInfo.hasPreviousPage}
        onClick={() => onPage({ last: size, before: pageInfo.startCursor ?? undefined })}
      >
        ← Previous
      </button>
      <button
        type="button"
        disabled={!pageInfo.hasNextPage}
        onClick={() => onPage({ first: size, after: pageInfo.endCursor ?? undefined })}
      >
        Next →
      </button>
      <label>
        Per page{" "}
        <select value={size} onChange={(e) => onSize(Number(e.target.value))}>
          {PAGE_SIZES.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </label>
    </nav>
  );
}
