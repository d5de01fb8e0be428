// Jobs: status and progress, filtered and paged by the server; the page follows running jobs by polling.
import { Link } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { usePolling } from "../api/usePolling";
import { FilterSelect } from "../components/FilterSelect";
import { Pager, useCursorPaging } from "../components/Pager";
import { JOB_STATUSES, LIVE, Progress, StatusBadge } from "../components/JobStatus";
import { Await, Empty } from "../components/States";
import { formatDuration, formatTime, words } from "../format";
import { graphql } from "../gql";
import type { JobKind } from "../gql/graphql";
import { allows } from "../session";

const JobsQuery = graphql(`
  query Jobs($page: CursorPageInput!, $filter: ListJobsFilterInput) {
    jobs(page: $page, filter: $filter) {
      totalCount
      pageInfo {
        ...PageFields
      }
      nodes {
        id
        name
        status
        kind
        progress
        progressMessage
        createdAt
        durationMs
        useCase {
          key
          name
        }
        recipe {
          key
        }
        createdBy {
          email
        }
      }
    }
  }
`);

const Choices = graphql(`
  query JobFilterChoices {
    useCases {
      key
      name
      permissions
    }
  }
`);

const KINDS: JobKind[] = ["TRAINING", "EVALUATION", "DATASET_GENERATION", "MODEL_CONVERSION", "CUSTOM"];

export default function Jobs() {
  const { params, page, update, pager } = useCursorPaging(["useCase", "status", "kind"]);
  const choices = useApi(() => gql(Choices), []);
  const useCase = params.get("useCase") ?? "";
  const status = JOB_STATUSES.find((s) => s === params.get("status")) ?? null;
  const kind = KINDS.find((k) => k === params.get("kind")) ?? null;
  const loaded = useApi(
    () =>
      gql(JobsQuery, {
        page,
        filter: { useCase: useCase || null, status: status ? [status] : null, kind: kind ? [kind] : null },
      }),
    [params.toString()],
  );
  const live = (loaded.data?.jobs.nodes ?? []).some((j) => LIVE.has(j.status));
  usePolling(loaded.reload, live, 3000);

  const useCases = choices.data?.useCases ?? [];
  const canRun = useCases.some((u) => allows(u.permissions, "job:run"));
  const filtered = Boolean(useCase || status || kind);

  return (
    <>
      <div className="page-head">
        <h1>Jobs</h1>
        {canRun && (
          <Link className="button primary" to={useCase ? `/jobs/new?useCase=${encodeURIComponent(useCase)}` : "/jobs/new"}>
            Run a recipe
          </Link>
        )}
      </div>
      <div className="filters card" role="group" aria-label="Filter jobs">
        <FilterSelect
          label="Use case"
          value={useCase || null}
          choices={useCases.map((u) => [u.key, u.name] as const)}
          onChange={(v) => update({ useCase: v })}
        />
        <FilterSelect label="Status" value={status} choices={JOB_STATUSES} name={words} onChange={(v) => update({ status: v })} />
        <FilterSelect label="Kind" value={kind} choices={KINDS} name={words} onChange={(v) => update({ kind: v })} />
      </div>
      <Await loaded={loaded}>
        {({ jobs }) =>
          jobs.nodes.length === 0 ? (
            <Empty title={filtered ? "No job matches these filters" : "No jobs yet"}>
              {filtered ? "Change or clear the filters." : "A job runs a recipe: training, evaluation or your own code."}
            </Empty>
          ) : (
            <>
              <table className="jobs">
                <thead>
                  <tr>
                    <th scope="col">Job</th>
                    <th scope="col">Status</th>
                    <th scope="col">Progress</th>
                    <th scope="col">Kind</th>
                    <th scope="col">Use case</th>
                    <th scope="col">Created</th>
                    <th scope="col">Duration</th>
                  </tr>
                </thead>
                <tbody>
                  {jobs.nodes.map((j) => (
                    <tr key={j.id}>
                      <td>
                        <Link to={`/jobs/${j.id}`}>{j.name}</Link>
                        <div className="muted mono">{j.recipe?.key ?? ""}</div>
                      </td>
                      <td>
                        <StatusBadge status={j.status} />
                      </td>
                      <td>
                        <Progress value={j.progress} label={`Progress of ${j.name}`} />
                        {j.progressMessage && <div className="muted">{j.progressMessage}</div>}
                      </td>
                      <td>{words(j.kind)}</td>
                      <td>{j.useCase ? <Link to={`/use-cases/${encodeURIComponent(j.useCase.key)}`}>{j.useCase.name}</Link> : "—"}</td>
                      <td>
                        {formatTime(j.createdAt)}
                        {j.createdBy && <div className="muted">{j.createdBy.email}</div>}
                      </td>
                      <td>{formatDuration(j.durationMs)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <Pager pageInfo={jobs.pageInfo} total={jobs.totalCount} {...pager} />
            </>
          )
        }
      </Await>
    </>
  );
}
