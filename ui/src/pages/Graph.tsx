// The run's DAG drawn with @xyflow/react: a layered left-to-right layout
// (dagre for graphs of a few hundred nodes, a linear-time layering beyond),
// computed once per shape so that live state changes only recolour nodes.
// Groups (sub-workflows, foreach, one foreach copy) are one node with counts;
// a click opens them. A click on a task opens its job.
import { memo, useMemo } from 'react';
import { ReactFlow, Background, Controls, Handle, Position, type Edge, type Node, type NodeProps } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import dagre from '@dagrejs/dagre';
import type { GraphNode, RunGraph } from '../api';
import { CountsBar, doneOf } from '../components';

const W = 200;
const H = 58;
const DAGRE_MAX = 300;
/** a layer taller than this wraps into several columns */
const COLUMN_MAX = 40;

type Pos = Map<string, { x: number; y: number }>;

function dagreLayout(g: RunGraph): Pos {
  const d = new dagre.graphlib.Graph();
  d.setGraph({ rankdir: 'LR', nodesep: 16, ranksep: 56, marginx: 10, marginy: 10 });
  d.setDefaultEdgeLabel(() => ({}));
  for (const n of g.nodes) d.setNode(n.id, { width: W, height: H });
  for (const e of g.edges) d.setEdge(e.from, e.to);
  dagre.layout(d);
  const out: Pos = new Map();
  for (const n of g.nodes) {
    const p = d.node(n.id);
    out.set(n.id, { x: p.x - W / 2, y: p.y - H / 2 });
  }
  return out;
}

/** Longest-path layers, ordered by the mean position of each node's parents: O(nodes + edges). */
function layeredLayout(g: RunGraph): Pos {
  const ids = g.nodes.map((n) => n.id);
  const index = new Map(ids.map((id, i) => [id, i]));
  const out = ids.map(() => [] as number[]);
  const preds = ids.map(() => [] as number[]);
  const indeg = new Array<number>(ids.length).fill(0);
  for (const e of g.edges) {
    const a = index.get(e.from);
    const b = index.get(e.to);
    if (a === undefined || b === undefined) continue;
    out[a]!.push(b);
    preds[b]!.push(a);
    indeg[b]!++;
  }
  const layer = new Array<number>(ids.length).fill(0);
  const queue: number[] = [];
  indeg.forEach((d, i) => d === 0 && queue.push(i));
  for (let k = 0; k < queue.length; k++) {
    const v = queue[k]!;
    for (const w of out[v]!) {
      layer[w] = Math.max(layer[w]!, layer[v]! + 1);
      if (--indeg[w]! === 0) queue.push(w);
    }
  }
  const layers: number[][] = [];
  for (const v of queue.length === ids.length ? queue : ids.map((_, i) => i)) (layers[layer[v]!] ??= []).push(v);
  const rank = new Array<number>(ids.length).fill(0);
  const pos: Pos = new Map();
  let x = 0;
  for (const vs of layers) {
    if (!vs) continue;
    const key = (v: number) => (preds[v]!.length ? preds[v]!.reduce((s, p) => s + rank[p]!, 0) / preds[v]!.length : v);
    vs.sort((a, b) => key(a) - key(b));
    const cols = Math.ceil(vs.length / COLUMN_MAX);
    const perCol = Math.ceil(vs.length / cols);
    vs.forEach((v, i) => {
      rank[v] = i;
      pos.set(ids[v]!, { x: x + Math.floor(i / perCol) * (W + 16), y: (i % perCol) * (H + 14) });
    });
    x += cols * (W + 16) + 56;
  }
  return pos;
}

const KIND_TEXT: Record<string, (n: GraphNode) => string> = {
  foreach: (n) => `foreach · ${n.children} copies`,
  subworkflow: (n) => `sub-workflow · ${n.tasks} tasks`,
  pipeline: (n) => `copy · ${n.tasks} tasks`,
  split: (n) => (n.chunks && n.chunks.total ? `chunks ${n.chunks.done}/${n.chunks.total}` : 'split'),
  task: () => '',
  more: (n) => `${n.jobs} jobs · click to show all`,
};

type NodeData = { n: GraphNode; selected: boolean };

const GantryNode = memo(function GantryNode({ data }: NodeProps<Node<NodeData>>) {
  const n = data.n;
  const group = n.kind === 'foreach' || n.kind === 'subworkflow' || n.kind === 'pipeline' || n.kind === 'more';
  return (
    <div className={`gnode st-${n.state} ${group ? 'group' : ''} ${data.selected ? 'sel' : ''}`} data-node={n.id} data-state={n.state} data-kind={n.kind} title={`${n.id}: ${n.state}`}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="gtitle">
        {group ? <span className="caret">▸</span> : null}
        <span className="glabel">{n.label}</span>
        {n.kind === 'task' ? null : <span className="gcount">{group ? `${doneOf(n.counts)}/${n.jobs}` : ''}</span>}
      </div>
      <div className="gsub">
        <span>{KIND_TEXT[n.kind]!(n) || n.state}</span>
        {n.counts.failed ? <span className="err-text"> · {n.counts.failed} failed</span> : null}
        {n.state === 'running' && n.progress !== null && !group ? <span> · {Math.round(n.progress)}%</span> : null}
      </div>
      {group || n.kind === 'split' ? <CountsBar counts={n.kind === 'split' && n.chunks ? { succeeded: n.chunks.done, running: n.chunks.running, failed: n.chunks.failed } : n.counts} total={n.kind === 'split' && n.chunks ? n.chunks.total || 1 : n.jobs} height={4} /> : null}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});

const nodeTypes = { gantry: GantryNode };

export function GraphView({ graph, selected, onOpen, onMore, onSelect }: { graph: RunGraph; selected: string | null; onOpen: (id: string) => void; onMore: (group: string) => void; onSelect: (n: GraphNode) => void }) {
  // the layout depends on the shape only: states changing live keep every node in place
  const shape = useMemo(() => graph.nodes.map((n) => n.id).join('\n') + '\n--\n' + graph.edges.map((e) => `${e.from}>${e.to}`).join('\n'), [graph]);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const positions = useMemo(() => (graph.nodes.length <= DAGRE_MAX ? dagreLayout(graph) : layeredLayout(graph)), [shape]);
  const big = graph.nodes.length > DAGRE_MAX;
  const nodes: Node<NodeData>[] = useMemo(
    () =>
      graph.nodes.map((n) => ({
        id: n.id,
        type: 'gantry',
        position: positions.get(n.id) ?? { x: 0, y: 0 },
        data: { n, selected: selected === n.id },
        draggable: false,
        connectable: false,
        width: W,
        height: H,
      })),
    [graph, positions, selected],
  );
  const byId = useMemo(() => new Map(graph.nodes.map((n) => [n.id, n])), [graph]);
  const edges: Edge[] = useMemo(
    () =>
      graph.edges.map((e) => {
        const to = byId.get(e.to);
        return { id: `${e.from}>${e.to}`, source: e.from, target: e.to, type: big ? 'straight' : 'default', animated: !big && to?.state === 'running', className: `edge-${to?.state ?? 'pending'}` };
      }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [shape, big, big ? null : graph],
  );
  return (
    <div className="graph" data-testid="graph" data-nodes={graph.nodes.length}>
      <ReactFlow
        key={shape.length > 20000 ? shape.slice(0, 200) : shape}
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        // a big graph opens at its start, readable, drawing only what is on screen; a small one fits the view
        fitView={!big}
        fitViewOptions={{ padding: 0.15, maxZoom: 1.2 }}
        defaultViewport={{ x: 20, y: 20, zoom: 0.85 }}
        minZoom={0.05}
        onlyRenderVisibleElements={big}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable={false}
        proOptions={{ hideAttribution: true }}
        onNodeClick={(_, node) => {
          const n = (node.data as NodeData).n;
          if (n.kind === 'more') onMore(n.parent!);
          else if (n.kind === 'foreach' || n.kind === 'subworkflow' || n.kind === 'pipeline') onOpen(n.id);
          else onSelect(n);
        }}
      >
        <Background gap={24} size={1} />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
