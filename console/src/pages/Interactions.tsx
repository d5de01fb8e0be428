import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { LiveToggle, useLive } from "../components/Live";
import { Pager, PAGE_SIZES, type PageRequest } from "../components/Pager";
import { Await, Empty } from "../components/States";
import { formatNumber, formatTime, truncate } from "../format";
import { graphql } from "../gql";
import type { ListCompletionsFilterInput } from "../gql/graphql";

const ModelsAndKeys = graphql(`
  query InteractionFilterChoices($useCase: IdOrKey!) {
    useCase(idOrKey: $useCase) {
      key
      name
      modelServices {
        key
      }
      metrics {
        key
      }
    }
  }
`);

const Page = graphql(`
  query Interactions($filter: ListCompletionsFilterInput!, $page: CursorPageInput!) {
    completions(filter: $filter, page: $page) {
      totalCount
      pageInfo {
        ...PageFields
      }
      nodes {
        id
        createdAt
        completion
        model {
          key
        }
        chatMessages {
          role
          content
        }
        labels {
          key
          value
        }
        directFeedbacks {
          value
          metric {
            key
          }
        }
      }
    }
  }
`);

// The filters live in the address (shareable, and Back restores them).
const FILTERS = ["model", "from", "to", "label", "session", "user", "text", "prompt", "metric", "min"] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;

function readFilters(params: URLSearchParams): Filters {
  return Object.fromEntries(FILTERS.filter((f) => params.get(f)).map((f) => [f, params.get(f)!]));
}

function toEpoch(local: string | undefined): number | null {
  return local ? Math.floor(new Date(local).getTime() / 1000) : null;
}

function apiFilter(useCase: string, f: Filters): ListCompletionsFilterInput {
  const [labelKey, ...labelValue] = (f.label ?? "").split("=");
  const from = toEpoch(f.from);
  const to = toEpoch(f.to);
  return {
    useCase,
    models: f.model ? [f.model] : null,
    timerange: from != null || to != null ? { from: from ?? 0, to: to ?? Math.floor(Date.now() / 1000) + 86400 } : null,
    labels: labelKey ? [{ key: labelKey, value: labelValue.length ? [labelValue.join("=")] : null }] : null,
    sessionId: f.session || null,
    userId: f.user || null,
    completion: f.text || null,
    prompt: f.prompt || null,
    feedbacks: f.metric ? [{ metric: f.metric, gte: f.min ? Number(f.min) : null }] : null,
  };
}

function lastUserMessage(messages: { role: string; content: string }[]): string {
  return [...messages].reverse().find((m) => m.role === "user")?.content ?? messages.at(-1)?.content ?? "";
}

function FilterForm({ useCase, initial, onApply }: { useCase: string; initial: Filters; onApply: (f: Filters) => void }) {
  const choices = useApi(() => gql(ModelsAndKeys, { useCase }), [useCase]);
  const [form, setForm] = useState<Filters>(initial);
  const field = (name: keyof Filters) => ({
    value: form[name] ?? "",
    onChange: (e: { target: { value: string } }) => setForm({ ...form, [name]: e.target.value }),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onApply(Object.fromEntries(Object.entries(form).filter(([, v]) => v)) as Filters);
  };
  const models = choices.data?.useCase?.modelServices ?? [];
  const metrics = choices.data?.useCase?.metrics ?? [];
  return (
    <form className="filters card" onSubmit={submit} aria-label="Filter interactions">
      <label>
        Model
        <select {...field("model")}>
          <option value="">any</option>
          {models.map((m) => (
            <option key={m.key}>{m.key}</option>
          ))}
        </select>
      </label>
      <label>
        From
        <input type="datetime-local" {...field("from")} />
      </label>
      <label>
        To
        <input type="datetime-local" {...field("to")} />
      </label>
      <label>
        Label
        <input placeholder="key=value" {...field("label")} />
      </label>
      <label>
        Session
        <input placeholder="session id" {...field("session")} />
      </label>
      <label>
        User
        <input placeholder="user id" {...field("user")} />
      </label>
      <label>
        Completion text
        <input type="search" placeholder="contains…" {...field("text")} />
      </label>
      <label>
        Prompt text
        <input type="search" placeholder="contains…" {...field("prompt")} />
      </label>
      <label>
        Feedback key
        <select {...field("metric")}>
          <option value="">any</option>
          {metrics.map((m) => (
            <option key={m.key}>{m.key}</option>
          ))}
        </select>
      </label>
      <label>
        Value at least
        <input type="number" step="any" {...field("min")} disabled={!form.metric} />
      </label>
      <div className="filter-actions">
        <button type="submit" className="primary">
          Apply
        </button>
        <button
          type="button"
          onClick={() => {
            setForm({});
            onApply({});
          }}
        >
          Clear
        </button>
      </div>
    </form>
  );
}

export default function Interactions() {
  const { useCase = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const filters = readFilters(params);
  const size = PAGE_SIZES.includes(Number(params.get("size"))) ? Number(params.get("size")) : PAGE_SIZES[0];
  const page: PageRequest = params.get("before")
    ? { last: size, before: params.get("before")! }
    : { first: size, after: params.get("after") ?? undefined };
  const key = params.toString();
  // New traffic shows without a reload: the page asks again on an interval (pausable).
  const live = useLive();
  const loaded = useApi(() => gql(Page, { filter: apiFilter(useCase, filters), page }), [useCase, key, live.tick]);
  // The rows of the latest refresh that were not there before are marked (the list's scope: filters and page).
  const known = useRef<{ scope: string; ids: Set<string> } | null>(null);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  useEffect(() => {
    const ids = loaded.data?.completions.nodes.map((c) => c.id);
    if (!ids) return;
    const scope = `${useCase}?${key}`;
    if (known.current?.scope !== scope) {
      known.current = { scope, ids: new Set(ids) };
      setFresh(new Set());
      return;
    }
    const arrived = ids.filter((id) => !known.current!.ids.has(id));
    arrived.forEach((id) => known.current!.ids.add(id));
    if (arrived.length) setFresh(new Set(arrived));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [loaded.data]);

  const update = (next: Filters, paging: PageRequest = {}, pageSize = size) => {
    const out = new URLSearchParams();
    Object.entries(next).forEach(([k, v]) => v && out.set(k, v));
    if (pageSize !== PAGE_SIZES[0]) out.set("size", String(pageSize));
    if (paging.after) out.set("after", paging.after);
    if (paging.before) out.set("before", paging.before);
    setParams(out);
  };

  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/use-cases">Use cases</Link> / <Link to={`/use-cases/${encodeURIComponent(useCase)}`}>{useCase}</Link> /{" "}
        <span aria-current="page">Interactions</span>
      </nav>
      <div className="page-head">
        <h1>Interactions</h1>
        <LiveToggle live={live} />
      </div>
      <FilterForm key={useCase} useCase={useCase} initial={filters} onApply={(f) => update(f)} />
      <Await loaded={loaded}>
        {({ completions }) =>
          completions.nodes.length === 0 ? (
            <Empty title={Object.keys(filters).length ? "No interaction matches these filters" : "No interactions yet"}>
              {Object.keys(filters).length ? "Change or clear the filters." : "Traffic served or logged through the API shows here."}
            </Empty>
          ) : (
            <>
              <table className="interactions">
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Model</th>
                    <th scope="col">Prompt</th>
                    <th scope="col">Completion</th>
                    <th scope="col">Feedback</th>
                    <th scope="col">Labels</th>
                  </tr>
                </thead>
                <tbody>
                  {completions.nodes.map((c) => (
                    <tr key={c.id} className={fresh.has(c.id) ? "fresh" : undefined}>
                      <td>
                        <Link to={`/use-cases/${encodeURIComponent(useCase)}/interactions/${c.id}`}>{formatTime(c.createdAt)}</Link>
                      </td>
                      <td className="mono">{c.model?.key ?? "—"}</td>
                      <td>{truncate(lastUserMessage(c.chatMessages), 90)}</td>
                      <td>{truncate(c.completion ?? "", 90)}</td>
                      <td>
                        {c.directFeedbacks.map((f, i) => (
                          <span className="badge" key={i}>
                            {f.metric?.key}: {formatNumber(f.value, 2)}
                          </span>
                        ))}
                      </td>
                      <td>
                        {c.labels.map((l) => (
                          <span className="badge" key={l.key}>
                            {l.key}={l.value}
                          </span>
                        ))}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <Pager
                pageInfo={completions.pageInfo}
                total={completions.totalCount}
                size={size}
                onPage={(p) => update(filters, p)}
                onSize={(s) => update(filters, {}, s)}
              />
            </>
          )
        }
      </Await>
    </>
  );
}
