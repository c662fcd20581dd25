import { useEffect, useState } from "react";
import { api, type AppMetrics, type Status, type TimelineEvent } from "../api";
import { duration, StatusBadge, useInterval } from "./common";

const POINTS = 60;

/** A small line chart of the last readings; the newest value is in its label. */
export function Sparkline({
  values, max, label, unit, points = POINTS, span,
}: { values: number[]; max: number; label: string; unit: string; points?: number; span?: string }) {
  const w = 240;
  const h = 48;
  const top = Math.max(max, ...values, 1e-9);
  const pts = values.map((v, i) => `${(i / Math.max(points - 1, 1)) * w},${h - (v / top) * (h - 2) - 1}`).join(" ");
  const last = values.length ? values[values.length - 1] : null;
  return (
    <figure className="spark">
      <figcaption>
        {label}: <strong>{last === null ? "-" : `${last.toFixed(1)} ${unit}`}</strong>
      </figcaption>
      <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`${label} over ${span ?? `the last ${values.length * 2} seconds`}`}>
        <rect x="0" y="0" width={w} height={h} fill="currentColor" opacity="0.06" />
        <polyline points={pts} fill="none" stroke="currentColor" strokeWidth="1.5" />
      </svg>
    </figure>
  );
}

/** The stored usage history (GET /metrics, every 15 s): CPU and memory of all services summed, and each service's
latest figures, so a compose app's database shows beside the app. */
export function UsageHistory({ deploymentId }: { deploymentId: number }) {
  const [history, setHistory] = useState<AppMetrics | null>(null);
  const load = async () => {
    try {
      setHistory(await api<AppMetrics>("GET", `/api/deployments/${deploymentId}/metrics`));
    } catch {
      /* the banner reports a lost connection; the last history stays */
    }
  };
  useEffect(() => {
    setHistory(null);
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [deploymentId]);
  useInterval(load, 15000);
  const samples = history?.samples ?? [];
  if (!samples.length) return <p className="muted" data-testid="usage-history">No usage history yet (sampled while the app runs).</p>;
  const last = samples[samples.length - 1];
  const minutes = Math.round((samples.length * (history?.interval_seconds ?? 15)) / 60);
  const span = `the last ${minutes} minutes`;
  return (
    <div data-testid="usage-history">
      <h3>History ({samples.length} samples, every {history?.interval_seconds} s)</h3>
      <div className="row charts">
        <Sparkline values={samples.map((x) => x.total.cpu_percent ?? 0)} max={100} label="CPU, all services" unit="%" points={samples.length} span={span} />
        <Sparkline values={samples.map((x) => x.total.memory_mb ?? 0)} max={0} label="Memory, all services" unit="MB" points={samples.length} span={span} />
      </div>
      <table className="usage">
        <thead><tr><th>Service</th><th>CPU %</th><th>Memory MB</th></tr></thead>
        <tbody>
          {Object.entries(last.services).map(([name, u]) => (
            <tr key={name}><td>{name}</td><td>{u.cpu_percent?.toFixed(1) ?? "-"}</td><td>{u.memory_mb?.toFixed(1) ?? "-"}</td></tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Status from the engine every 2 seconds (CPU and memory charted), and the deployment's event timeline. */
export function StatusPanel({ deploymentId, status: dbStatus }: { deploymentId: number; status: string }) {
  const [status, setStatus] = useState<Status | null>(null);
  const [cpu, setCpu] = useState<number[]>([]);
  const [mem, setMem] = useState<number[]>([]);
  const [events, setEvents] = useState<TimelineEvent[]>([]);

  const poll = async () => {
    try {
      const s = await api<Status>("GET", `/api/deployments/${deploymentId}/status`);
      setStatus(s);
      if (s.cpu_percent != null) setCpu((c) => [...c, s.cpu_percent ?? 0].slice(-POINTS));
      if (s.memory_mb != null) setMem((m) => [...m, s.memory_mb ?? 0].slice(-POINTS));
    } catch {
      /* the banner reports a lost connection; the last figures stay */
    }
  };
  const pollEvents = async () => {
    try {
      setEvents(await api<TimelineEvent[]>("GET", `/api/deployments/${deploymentId}/events`));
    } catch {
      /* as above */
    }
  };
  useEffect(() => {
    setCpu([]);
    setMem([]);
    void poll();
    void pollEvents();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [deploymentId]);
  useEffect(() => {
    void pollEvents();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [dbStatus]);
  useInterval(poll, 2000);
  useInterval(pollEvents, 5000);

  const s = status;
  return (
    <section className="status-panel" aria-labelledby="status-title">
      <h2 id="status-title">Status</h2>
      <dl className="facts">
        <div><dt>Status</dt><dd><StatusBadge status={s?.status ?? dbStatus} /></dd></div>
        <div>
          <dt>URL</dt>
          <dd>{s?.url ? <a href={s.url} target="_blank" rel="noreferrer" data-testid="app-url">{s.url}</a> : "-"}</dd>
        </div>
        <div><dt>Port</dt><dd>{s?.port ?? "-"}</dd></div>
        <div><dt>Uptime</dt><dd>{duration(s?.uptime_seconds)}</dd></div>
        <div><dt>Health</dt><dd>{s?.health ?? (s?.container_state ? "no healthcheck" : "-")}</dd></div>
        <div><dt>Container</dt><dd>{s?.container_state ?? "none"}</dd></div>
      </dl>
      {s?.engine_error && <p className="field-error">{s.engine_error}</p>}
      <div className="row charts">
        <Sparkline values={cpu} max={100} label="CPU" unit="%" />
        <Sparkline values={mem} max={s?.memory_limit_mb ?? 0} label="Memory" unit="MB" />
      </div>
      <UsageHistory deploymentId={deploymentId} />
      <h3>Timeline</h3>
      <ol className="timeline" data-testid="timeline">
        {[...events].reverse().map((e) => (
          <li key={e.id}>
            <time dateTime={e.created_at}>{new Date(e.created_at).toLocaleTimeString()}</time> <StatusBadge status={e.status} />{" "}
            {e.message}
            {e.error_code && <code className="code"> {e.error_code}</code>}
          </li>
        ))}
      </ol>
    </section>
  );
}
