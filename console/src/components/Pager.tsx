// Cursor paging of the API's connections (pageInfo + totalCount): previous / next, and the page size.
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
