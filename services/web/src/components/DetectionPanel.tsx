import type { Detection } from "../api";

/** What detection found: the facts, confidence as a bar, the evidence, alternatives and a monorepo's apps. */
export function DetectionPanel({
  detection,
  stack,
  onStack,
  appPath,
  onApp,
}: {
  detection: Detection;
  stack: string;
  onStack: (s: string) => void;
  appPath: string;
  onApp?: (p: string) => void;
}) {
  const d = detection;
  const buildable = Object.keys(d.alternative_plans ?? {}).filter((a) => a !== d.stack);
  const facts: [string, string | number | null | undefined][] = [
    ["Stack", d.stack],
    ["Framework", d.framework],
    ["Package manager", d.package_manager],
    ["Runtime version", d.runtime_version],
    ["Port", d.internal_port],
    ["Database", d.detected_db === "none" ? "none" : d.detected_db],
    ["Start command", d.start_command],
  ];
  const level = d.confidence >= 70 ? "ok" : d.confidence >= 40 ? "busy" : "bad";
  const apps = d.apps ?? [];
  return (
    <section className="card" aria-labelledby="detection-title" data-testid="detection-panel">
      <h2 id="detection-title">Detection</h2>
      {apps.length > 0 && onApp && (
        <label>
          This repository holds {apps.length} apps; deploy
          <select value={appPath} onChange={(e) => onApp(e.target.value)}>
            {apps.map((a) => (
              <option key={a.app_path} value={a.app_path}>
                {a.app_path || "(root)"} — {a.stack}{a.framework ? ` / ${a.framework}` : ""}
              </option>
            ))}
          </select>
        </label>
      )}
      <dl className="facts">
        {facts.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd className={k === "Start command" ? "mono" : undefined}>{v ?? "-"}</dd>
          </div>
        ))}
      </dl>
      <div className="confidence">
        <span id="confidence-label">Confidence {d.confidence}%</span>
        <div
          className="bar"
          role="meter"
          aria-labelledby="confidence-label"
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={d.confidence}
        >
          <div className={`fill fill-${level}`} style={{ width: `${d.confidence}%` }} />
        </div>
      </div>
      {d.evidence.length > 0 && (
        <details open>
          <summary>Evidence ({d.evidence.length})</summary>
          <ul className="evidence">
            {d.evidence.map((e, i) => (
              <li key={i}><code>{e.file}</code> {e.reason}</li>
            ))}
          </ul>
        </details>
      )}
      {d.warnings.length > 0 && (
        <ul className="warnings">
          {d.warnings.map((w, i) => <li key={i}>{w}</li>)}
        </ul>
      )}
      <label>
        Stack to generate for {d.alternatives.length > 0 && <span className="muted">(alternatives: {d.alternatives.join(", ")})</span>}
        <select value={stack} onChange={(e) => onStack(e.target.value)} aria-describedby="stack-help">
          <option value="">{d.stack} (detected)</option>
          {buildable.map((a) => <option key={a} value={a}>{a}</option>)}
        </select>
      </label>
      <p id="stack-help" className="muted small">Portside builds the stack it detects, or another stack it found here and can build (listed above); for anything else add your own Dockerfile.</p>
    </section>
  );
}
