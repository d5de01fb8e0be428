// The lineage of a family of models drawn as a graph: the base on the left, what jobs trained from it to the
// right, each trained model with the job (and recipe) and the data that made it. Nodes are links.
import type { MouseEvent } from "react";
import { useNavigate } from "react-router";
import { dataOf } from "./ModelBits";

export interface LineageRow {
  key: string;
  backbone?: { key: string } | null;
  lineage?: { jobId: string; recipe?: string | null; args: unknown } | null;
}

interface Placed {
  row: LineageRow;
  depth: number;
  slot: number;
}

const NODE_W = 230;
const NODE_H = 64;
const GAP_X = 70;
const GAP_Y = 18;
const MAX_DEPTH = 8;
const MAX_CHARS = 30;

function clip(text: string): string {
  return text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS - 1)}…` : text;
}

/** The model the family of ``key`` starts from: its backbone's backbone … as far as the rows go. */
export function familyRoot(key: string, rows: LineageRow[]): string {
  const byKey = new Map(rows.map((r) => [r.key, r]));
  let root = key;
  for (let i = 0; i < MAX_DEPTH; i++) {
    const up = byKey.get(root)?.backbone?.key;
    if (!up || !byKey.has(up)) break;
    root = up;
  }
  return root;
}

/** Places the tree under ``root``: one column per generation, one row per leaf, a parent centred on its
 * children. */
function place(root: string, rows: LineageRow[]): Placed[] {
  const placed: Placed[] = [];
  let leaves = 0;
  const visit = (row: LineageRow, depth: number): number => {
    const children = depth < MAX_DEPTH ? rows.filter((r) => r.backbone?.key === row.key) : [];
    const slots = children.map((child) => visit(child, depth + 1));
    const slot = slots.length ? (slots[0] + slots[slots.length - 1]) / 2 : leaves++;
    placed.push({ row, depth, slot });
    return slot;
  };
  visit(rows.find((r) => r.key === root) ?? { key: root }, 0);
  return placed;
}

export default function LineageGraph({ root, rows, current }: { root: string; rows: LineageRow[]; current?: string }) {
  const navigate = useNavigate();
  const placed = place(root, rows);
  const at = new Map(placed.map((p) => [p.row.key, p]));
  const x = (p: Placed) => p.depth * (NODE_W + GAP_X);
  const y = (p: Placed) => p.slot * (NODE_H + GAP_Y);
  const width = Math.max(...placed.map(x)) + NODE_W + 2;
  const height = Math.max(...placed.map(y)) + NODE_H + 2;
  // In-app links: the router moves, the page is not loaded again.
  const go = (path: string) => (event: MouseEvent) => {
    event.preventDefault();
    navigate(path);
  };
  return (
    <svg
      className="lineage-graph"
      role="group"
      aria-label={`Lineage graph of ${root}`}
      width={width}
      height={height}
      viewBox={`-1 -1 ${width} ${height}`}
    >
      <defs>
        <marker id="lineage-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" className="lineage-arrow" />
        </marker>
      </defs>
      {placed.map((p) => {
        const parent = p.row.backbone ? at.get(p.row.backbone.key) : undefined;
        if (!parent || p.depth === 0) return null;
        const x1 = x(parent) + NODE_W;
        const y1 = y(parent) + NODE_H / 2;
        const x2 = x(p);
        const y2 = y(p) + NODE_H / 2;
        const mid = (x1 + x2) / 2;
        return (
          <path
            key={`edge-${p.row.key}`}
            className="lineage-edge"
            d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`}
            markerEnd="url(#lineage-arrow)"
          />
        );
      })}
      {placed.map((p) => {
        const { key, lineage } = p.row;
        const made = lineage ? [lineage.recipe, dataOf(lineage.args)].filter(Boolean).join(" · ") : p.depth === 0 ? "base model" : "";
        const modelPath = `/models/${encodeURIComponent(key)}`;
        return (
          <g key={key} transform={`translate(${x(p)},${y(p)})`} className={key === current ? "lineage-node current" : "lineage-node"}>
            <rect width={NODE_W} height={NODE_H} rx="8" />
            <a href={modelPath} onClick={go(modelPath)} aria-label={key === current ? `${key} (this model)` : key}>
              <text x="10" y="20" className="mono">
                <title>{key}</title>
                {clip(key)}
              </text>
            </a>
            {lineage && (
              <a href={`/jobs/${lineage.jobId}`} onClick={go(`/jobs/${lineage.jobId}`)} aria-label={`Training job ${lineage.jobId.slice(0, 8)} of ${key}`}>
                <text x="10" y="38" className="lineage-job">
                  job {lineage.jobId.slice(0, 8)}
                </text>
              </a>
            )}
            <text x="10" y={lineage ? 55 : 40} className="lineage-made">
              <title>{made}</title>
              {clip(made)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
