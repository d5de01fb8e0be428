// Datasets of a use case: the list, and uploading a JSONL file in parts (the chunked upload routes) with a
// progress bar; the server validates the whole file and names the first bad line.
import { useRef, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { ApiError, gql, rest, sendBytes } from "../api/client";
import { useApi } from "../api/useApi";
import { Await, Empty } from "../components/States";
import { formatBytes, formatTime, words } from "../format";
import { graphql } from "../gql";
import { allows } from "../session";

const List = graphql(`
  query Datasets($useCase: IdOrKey!) {
    useCase(idOrKey: $useCase) {
      key
      name
      permissions
    }
    datasets(useCase: $useCase) {
      id
      key
      name
      kind
      source
      records
      sizeBytes
      createdAt
    }
  }
`);

const Complete = graphql(`
  mutation CompleteDatasetUpload($input: DatasetCreateFromMultipartUpload!) {
    createDatasetFromMultipartUpload(input: $input) {
      datasetId
      status
      error
    }
  }
`);

const Processing = graphql(`
  query DatasetProcessing($input: DatasetUploadProcessingStatusInput!) {
    datasetUploadProcessingStatus(input: $input) {
      datasetId
      status
      error
    }
  }
`);

// The SDK's part size: files of any size go the same way, a part at a time.
const PART_BYTES = 5 * 1024 * 1024;

async function uploadInParts(
  file: File,
  target: { useCase: string; key: string; name: string },
  onProgress: (sent: number) => void,
  signal: AbortSignal,
): Promise<void> {
  const parts = Math.max(1, Math.ceil(file.size / PART_BYTES));
  const { session_id } = await rest<{ session_id: string }>("POST", "/upload/init", {
    content_type: "application/jsonl",
    total_parts_count: parts,
  });
  try {
    for (let part = 0; part < parts; part++) {
      const start = part * PART_BYTES;
      const query = `?session_id=${encodeURIComponent(session_id)}&part_number=${part + 1}`;
      await sendBytes(`/upload/part${query}`, file.slice(start, start + PART_BYTES), (sent) => onProgress(start + sent), signal);
    }
    onProgress(file.size);
    let status = (await gql(Complete, { input: { ...target, uploadSessionId: session_id } })).createDatasetFromMultipartUpload;
    while (status.status === "PENDING") {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      status = (await gql(Processing, { input: { useCase: target.useCase, datasetId: status.datasetId } })).datasetUploadProcessingStatus;
    }
    if (status.status === "ERROR") throw new Error(status.error ?? "the server could not process the file");
  } catch (error) {
    // Parts of a refused or stopped upload are dropped at once (housekeeping would, later).
    await rest("DELETE", "/upload/abort", { session_id }).catch(() => undefined);
    throw error;
  }
}

function UploadForm({ useCase, onDone }: { useCase: string; onDone: (key: string) => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [key, setKey] = useState("");
  const [name, setName] = useState("");
  const [sent, setSent] = useState<number | null>(null);
  const [message, setMessage] = useState<{ error: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const stopper = useRef<AbortController | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!file) return;
    const datasetKey = key.trim() || file.name.replace(/\.jsonl?$/i, "");
    setMessage(null);
    setSent(0);
    stopper.current = new AbortController();
    setBusy(true);
    try {
      await uploadInParts(file, { useCase, key: datasetKey, name: name.trim() || datasetKey }, setSent, stopper.current.signal);
      setMessage({ error: false, text: `Uploaded ${datasetKey}.` });
      onDone(datasetKey);
    } catch (e) {
      const error = e as ApiError;
      setSent(null);
      setMessage({ error: true, text: error.code === "ABORTED" ? "Upload stopped." : error.message });
    } finally {
      stopper.current = null;
      setBusy(false);
    }
  };
  return (
    <form className="card inline-form" onSubmit={submit} aria-label="Upload a dataset">
      <label>
        JSONL file
        <input
          type="file"
          accept=".jsonl,.json,application/jsonl"
          required
          onChange={(e) => {
            setFile(e.target.files?.[0] ?? null);
            setSent(null);
            setMessage(null);
          }}
        />
      </label>
      <label>
        Dataset key <span className="muted">(optional)</span>
        <input value={key} onChange={(e) => setKey(e.target.value)} placeholder="from the file name" />
      </label>
      <label>
        Name <span className="muted">(optional)</span>
        <input value={name} onChange={(e) => setName(e.target.value)} placeholder="the key" />
      </label>
      <button type="submit" className="primary" disabled={!file || busy}>
        Upload
      </button>
      {busy && (
        <button type="button" onClick={() => stopper.current?.abort()}>
          Stop
        </button>
      )}
      {sent !== null && file && (
        <span className="progress upload-progress">
          <progress max={file.size || 1} value={sent} aria-label="Upload progress" />
          <span className="muted">
            {formatBytes(sent)} of {formatBytes(file.size)}
          </span>
        </span>
      )}
      {message && (
        <p className={message.error ? "form-error" : "muted"} role={message.error ? "alert" : "status"}>
          {message.text}
        </p>
      )}
    </form>
  );
}

export default function Datasets() {
  const { useCase = "" } = useParams();
  const loaded = useApi(() => gql(List, { useCase }), [useCase]);
  const [uploading, setUploading] = useState(false);
  const base = `/use-cases/${encodeURIComponent(useCase)}`;

  return (
    <Await loaded={loaded}>
      {({ useCase: uc, datasets }) => {
        if (!uc) return <Empty title={`Use case '${useCase}' not found`} />;
        const canWrite = allows(uc.permissions, "dataset:write");
        return (
          <>
            <nav aria-label="Breadcrumb" className="crumbs">
              <Link to="/use-cases">Use cases</Link> / <Link to={base}>{uc.name}</Link> / <span aria-current="page">Datasets</span>
            </nav>
            <div className="page-head">
              <h1>Datasets</h1>
              {canWrite && !uploading && (
                <button type="button" className="primary" onClick={() => setUploading(true)}>
                  Upload a dataset
                </button>
              )}
            </div>
            {uploading && <UploadForm useCase={uc.key} onDone={() => loaded.reload()} />}
            {datasets.length === 0 ? (
              <Empty title="No datasets yet">
                A dataset is a JSONL file: one row per line, with messages (or a prompt) and optionally a completion, feedback,
                or chosen and rejected answers.
              </Empty>
            ) : (
              <table>
                <thead>
                  <tr>
                    <th scope="col">Dataset</th>
                    <th scope="col">Kind</th>
                    <th scope="col">Rows</th>
                    <th scope="col">Size</th>
                    <th scope="col">Source</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {datasets.map((d) => (
                    <tr key={d.id}>
                      <td>
                        <Link to={`${base}/datasets/${encodeURIComponent(d.key ?? d.id)}`}>{d.name}</Link>
                        <div className="muted mono">{d.key}</div>
                      </td>
                      <td>{words(d.kind)}</td>
                      <td>{d.records?.toLocaleString() ?? "—"}</td>
                      <td>{formatBytes(d.sizeBytes)}</td>
                      <td>{words(d.source)}</td>
                      <td>{formatTime(d.createdAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        );
      }}
    </Await>
  );
}
