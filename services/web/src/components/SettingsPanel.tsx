import { useEffect, useState, type FormEvent } from "react";
import { api, ApiError, type Deployment, type EnvVar } from "../api";
import { navigate } from "../router";
import { ErrorBox } from "./common";

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Environment variables and secrets (GET/PUT /env; secrets come back masked), and port / CPU / memory. */
export function SettingsPanel({ deployment, readOnly }: { deployment: Deployment; readOnly?: boolean }) {
  const [vars, setVars] = useState<EnvVar[]>([]);
  const [envError, setEnvError] = useState<unknown>(null);
  const [envNotice, setEnvNotice] = useState<string | null>(null);
  const [envMissing, setEnvMissing] = useState(false);
  const [port, setPort] = useState(String(deployment.internal_port ?? ""));
  const [cpu, setCpu] = useState(deployment.cpu_limit != null ? String(deployment.cpu_limit) : "");
  const [memory, setMemory] = useState(deployment.memory_limit ?? "");
  const [genError, setGenError] = useState<unknown>(null);
  const [generating, setGenerating] = useState(false);

  useEffect(() => {
    api<{ variables: EnvVar[] }>("GET", `/api/deployments/${deployment.id}/env`)
      .then((r) => setVars(r.variables ?? []))
      .catch((exc) => {
        if (exc instanceof ApiError && exc.status === 404 && exc.code === "NOT_FOUND") setEnvMissing(true);
        else setEnvError(exc);
      });
  }, [deployment.id]);

  const update = (i: number, change: Partial<EnvVar>) => setVars(vars.map((v, j) => (j === i ? { ...v, ...change } : v)));
  const badKeys = vars.filter((v) => !KEY_RE.test(v.key)).map((v) => v.key || "(empty)");
  const dupes = vars.map((v) => v.key).filter((k, i, all) => k && all.indexOf(k) !== i);

  const saveEnv = async (e: FormEvent) => {
    e.preventDefault();
    if (badKeys.length || dupes.length) return;
    setEnvError(null);
    setEnvNotice(null);
    try {
      const r = await api<{ variables: EnvVar[] }>("PUT", `/api/deployments/${deployment.id}/env`, { variables: vars });
      setVars(r?.variables ?? vars);
      setEnvNotice("Saved. The app gets them on its next deploy.");
    } catch (exc) {
      setEnvError(exc);
    }
  };

  const portNumber = port.trim() ? Number(port) : null;
  const portInvalid = portNumber !== null && (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535);
  const cpuInvalid = cpu.trim() !== "" && !(Number(cpu) > 0 && Number(cpu) <= 256);
  const memoryInvalid = memory.trim() !== "" && !/^[1-9][0-9]*[bkmg]$/.test(memory.trim());

  const regenerate = async (e: FormEvent) => {
    e.preventDefault();
    if (portInvalid || cpuInvalid || memoryInvalid) return;
    setGenerating(true);
    setGenError(null);
    try {
      const body: Record<string, unknown> = { app_path: deployment.app_path };
      if (portNumber) body.internal_port = portNumber; // the port the app listens on; `port` would be the host port
      if (cpu.trim()) body.cpu_limit = Number(cpu);
      if (memory.trim()) body.memory_limit = memory.trim();
      const r = await api<{ deployment_id: number }>("POST", `/api/deployments/generate/${deployment.repository_id}`, body);
      navigate(`/deployments/${r.deployment_id}`);
    } catch (exc) {
      setGenError(exc);
    } finally {
      setGenerating(false);
    }
  };

  return (
    <section aria-labelledby="settings-title">
      <h2 id="settings-title" className="sr-only">Settings</h2>
      <form className="card" onSubmit={saveEnv} aria-labelledby="env-title">
        <h3 id="env-title">Environment variables and secrets</h3>
        {envMissing ? (
          <p className="muted">This Portside has no environment route yet (GET /api/deployments/{"{id}"}/env answers 404).</p>
        ) : (
          <>
            <p className="muted small">Secrets are stored encrypted and shown masked; leave a masked value as it is to keep it.</p>
            <table className="env">
              <thead><tr><th>Name</th><th>Value</th><th>Secret</th><th>Build time</th><th><span className="sr-only">Remove</span></th></tr></thead>
              <tbody>
                {vars.map((v, i) => (
                  <tr key={i}>
                    <td><input aria-label={`Name of variable ${i + 1}`} value={v.key} onChange={(e) => update(i, { key: e.target.value })} className="mono" disabled={readOnly} /></td>
                    <td>
                      <input
                        aria-label={`Value of ${v.key || `variable ${i + 1}`}`}
                        type={v.secret ? "password" : "text"}
                        value={v.value}
                        onChange={(e) => update(i, { value: e.target.value })}
                        className="mono"
                        disabled={readOnly}
                      />
                    </td>
                    <td><input type="checkbox" aria-label={`${v.key || "variable"} is a secret`} checked={v.secret} onChange={(e) => update(i, { secret: e.target.checked })} disabled={readOnly} /></td>
                    <td><input type="checkbox" aria-label={`${v.key || "variable"} is needed at build time`} checked={v.build} onChange={(e) => update(i, { build: e.target.checked })} disabled={readOnly} /></td>
                    <td><button type="button" onClick={() => setVars(vars.filter((_, j) => j !== i))} aria-label={`Remove ${v.key || "variable"}`} disabled={readOnly}>Remove</button></td>
                  </tr>
                ))}
              </tbody>
            </table>
            {badKeys.length > 0 && <p className="field-error">Names are letters, digits and _, not starting with a digit: {badKeys.join(", ")}.</p>}
            {dupes.length > 0 && <p className="field-error">Each name once: {dupes.join(", ")} appears twice.</p>}
            <ErrorBox error={envError} />
            {envNotice && <p className="ok-text" role="status">{envNotice}</p>}
            <div className="row">
              <button type="button" onClick={() => setVars([...vars, { key: "", value: "", secret: false, build: false }])} disabled={readOnly}>Add variable</button>
              <button className="primary" type="submit" disabled={readOnly || badKeys.length > 0 || dupes.length > 0}>Save variables</button>
            </div>
          </>
        )}
      </form>
      <form className="card" onSubmit={regenerate} aria-labelledby="limits-title">
        <h3 id="limits-title">Port and resources</h3>
        <p className="muted small">These are written into the generated files, so changing them generates a new deployment of this app (your edits to the files stay on this one).</p>
        <div className="row">
          <label>App port<input inputMode="numeric" value={port} onChange={(e) => setPort(e.target.value)} aria-invalid={portInvalid} /></label>
          <label>CPUs<input inputMode="decimal" value={cpu} onChange={(e) => setCpu(e.target.value)} placeholder="no limit" aria-invalid={cpuInvalid} /></label>
          <label>Memory<input value={memory} onChange={(e) => setMemory(e.target.value)} placeholder="e.g. 512m" aria-invalid={memoryInvalid} /></label>
        </div>
        {portInvalid && <p className="field-error">The port must be a whole number from 1 to 65535.</p>}
        {cpuInvalid && <p className="field-error">CPUs is a number above 0 (e.g. 0.5 or 2).</p>}
        {memoryInvalid && <p className="field-error">Memory is a number and a unit: 512m, 2g.</p>}
        <ErrorBox error={genError} />
        <button className="primary" type="submit" disabled={readOnly || generating || portInvalid || cpuInvalid || memoryInvalid}>
          {generating ? "Generating…" : "Generate with these settings"}
        </button>
      </form>
    </section>
  );
}
