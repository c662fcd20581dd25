import { useCallback, useEffect, useRef, useState } from "react";
import { openStream, type SSEEvent } from "../sse";
import { VirtualList, type VirtualListHandle } from "./VirtualList";

export interface LogLine {
  id: string | null;
  source: string;
  text: string;
  level: "error" | "warn" | null;
}

const ERROR_RE = /\b(error|fatal|exception|traceback|panic|failed|critical)\b/i;
const WARN_RE = /\b(warn|warning|deprecated)\b/i;

export function levelOf(text: string): LogLine["level"] {
  if (ERROR_RE.test(text)) return "error";
  if (WARN_RE.test(text)) return "warn";
  return null;
}

const SOURCES = ["build", "app", "system"] as const;
const ROW = 18;

/**
 * Live logs over SSE: every build, app and system line once, in order, across reconnects. Lines are kept in a
 * plain array (not React state) and the view re-renders at most once a frame, so a burst of lines stays cheap.
 */
export function LogsPanel({
  deploymentId,
  onProgress,
  height = 420,
  streamUrl,
}: {
  deploymentId: number;
  onProgress?: (step: number, total: number) => void;
  height?: number;
  streamUrl?: string;
}) {
  const lines = useRef<LogLine[]>([]);
  const matches = useRef<number[]>([]);
  const [version, setVersion] = useState(0);
  const [state, setState] = useState("connecting");
  const [filter, setFilter] = useState("");
  const [shown, setShown] = useState<Record<string, boolean>>({ build: true, app: true, system: true });
  const [follow, setFollow] = useState(true);
  const list = useRef<VirtualListHandle>(null);
  const frame = useRef<number | null>(null);
  const progress = useRef(onProgress);
  progress.current = onProgress;
  const test = useRef<(l: LogLine) => boolean>(() => true);

  const matcher = useCallback(
    (l: LogLine) => shown[l.source] !== false && (!filter || l.text.toLowerCase().includes(filter.toLowerCase())),
    [filter, shown],
  );
  test.current = matcher;

  // Refilter everything when the filter changes (a 100,000-line pass takes a few milliseconds).
  useEffect(() => {
    const m: number[] = [];
    lines.current.forEach((l, i) => matcher(l) && m.push(i));
    matches.current = m;
    setVersion((v) => v + 1);
  }, [matcher]);

  useEffect(() => {
    lines.current = [];
    matches.current = [];
    setVersion((v) => v + 1);
    const schedule = () => {
      if (frame.current === null) {
        frame.current = requestAnimationFrame(() => {
          frame.current = null;
          setVersion((v) => v + 1);
        });
      }
    };
    const stop = openStream({
      url: streamUrl ?? `/api/deployments/${deploymentId}/logs/stream`,
      onState: setState,
      onEvent: (e: SSEEvent) => {
        if (e.event === "progress") {
          try {
            const p = JSON.parse(e.data);
            progress.current?.(p.step, p.total_steps);
          } catch {
            /* ignore a malformed progress event */
          }
          return;
        }
        const line: LogLine = { id: e.id, source: e.event, text: e.data, level: levelOf(e.data) };
        lines.current.push(line);
        if (test.current(line)) matches.current.push(lines.current.length - 1);
        schedule();
      },
    });
    return () => {
      stop();
      if (frame.current !== null) cancelAnimationFrame(frame.current);
      frame.current = null;
    };
  }, [deploymentId, streamUrl]);

  useEffect(() => {
    if (follow) list.current?.scrollToEnd();
  }, [version, follow]);

  const download = () => {
    const text = lines.current.map((l) => `[${l.source}] ${l.text}`).join("\n") + "\n";
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    a.download = `deployment-${deploymentId}-logs.txt`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };

  const count = matches.current.length;
  return (
    <section className="logs" aria-labelledby="logs-title">
      <div className="row between">
        <h2 id="logs-title">Logs</h2>
        <span className={`stream-state stream-${state}`} role="status" data-testid="stream-state">
          {state === "open" ? "live" : state}
        </span>
      </div>
      <div className="row toolbar">
        <label className="grow">
          <span className="sr-only">Filter the log lines</span>
          <input type="search" placeholder="Filter lines" value={filter} onChange={(e) => setFilter(e.target.value)} />
        </label>
        {SOURCES.map((s) => (
          <label key={s} className={`inline src-${s}`}>
            <input type="checkbox" checked={shown[s]} onChange={(e) => setShown({ ...shown, [s]: e.target.checked })} /> {s}
          </label>
        ))}
        <button onClick={download}>Download</button>
      </div>
      <VirtualList
        ref={list}
        count={count}
        rowHeight={ROW}
        height={height}
        label={`Log lines of deployment ${deploymentId}`}
        stick={follow}
        onScroll={(atEnd, movedUp) => {
          if (atEnd) setFollow(true);
          else if (movedUp) setFollow(false);
        }}
        renderRow={(i) => {
          const l = lines.current[matches.current[i]];
          return (
            <div className={`line src-${l.source}${l.level ? ` lvl-${l.level}` : ""}`} data-testid="log-line">
              <span className="src" aria-label={`${l.source} line`}>{l.source}</span>
              <span className="text">{l.text}</span>
            </div>
          );
        }}
      />
      <div className="row between small muted">
        <span data-testid="line-count">
          {count === lines.current.length ? `${count} lines` : `${count} of ${lines.current.length} lines`}
        </span>
        {!follow && (
          <button className="link" onClick={() => setFollow(true)}>Paused: scroll to the newest line</button>
        )}
      </div>
    </section>
  );
}
