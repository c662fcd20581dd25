import { useEffect, useState, type FormEvent } from "react";
import { api, type DeploymentSummary, type Detection, type Repository } from "../api";
import { DetectionPanel } from "../components/DetectionPanel";
import { ErrorBox, StatusBadge, timeAgo, useLoad } from "../components/common";
import { RepositoryActions } from "../components/RepositoryActions";
import { useAuth } from "../auth";
import { Link, navigate } from "../router";

/** A repository: detection runs as the page opens; choose the settings and generate a deployment. */
export function RepositoryPage({ id }: { id: number }) {
  const repo = useLoad(() => api<Repository>("GET", `/api/repositories/${id}`), [id]);
  const deployments = useLoad(() => api<DeploymentSummary[]>("GET", `/api/deployments?repo_id=${id}`), [id]);
  const [appPath, setAppPath] = useState("");
  const [detection, setDetection] = useState<Detection | null>(null);
  const [root, setRoot] = useState<Detection | null>(null);
  const [detecting, setDetecting] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [stack, setStack] = useState("");
  const [port, setPort] = useState("");
  const [cpu, setCpu] = useState("");
  const [memory, setMemory] = useState("");
  const [generating, setGenerating] = useState(false);
  const readOnly = useAuth().user?.role === "viewer";

  const detect = async (path: string) => {
    setDetecting(true);
    setError(null);
    try {
      const d = await api<Detection>("POST", `/api/deployments/detect/${id}`, { app_path: path });
      setDetection(d);
      if (!path) setRoot(d);
      setStack("");
      setPort(d.internal_port ? String(d.internal_port) : "");
    } catch (exc) {
      setError(exc);
    } finally {
      setDetecting(false);
    }
  };

  useEffect(() => {
    if (!readOnly) void detect(""); // detection is an action: viewers may not run it
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id, readOnly]);

  // A monorepo: detection of the root lists the apps; pick the primary one first.
  useEffect(() => {
    if (root && root.apps.length > 0 && !appPath) {
      const first = root.primary_app ?? root.apps[0].app_path;
      setAppPath(first);
      void detect(first);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [root]);

  const portNumber = port.trim() ? Number(port) : null;
  const portInvalid = portNumber !== null && (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535);
  const memoryInvalid = memory.trim() !== "" && !/^[1-9][0-9]*[bkmg]$/.test(memory.trim());

  const generate = async (e: FormEvent) => {
    e.preventDefault();
    if (portInvalid || memoryInvalid) return;
    setGenerating(true);
    setError(null);
    try {
      const body: Record<string, unknown> = { app_path: appPath };
      if (stack) body.stack = stack;
      if (portNumber) body.internal_port = portNumber; // the port the app listens on; `port` would be the host port
      if (cpu.trim()) body.cpu_limit = Number(cpu);
      if (memory.trim()) body.memory_limit = memory.trim();
      const r = await api<{ deployment_id: number }>("POST", `/api/deployments/generate/${id}`, body);
      navigate(`/deployments/${r.deployment_id}`);
    } catch (exc) {
      setError(exc);
    } finally {
      setGenerating(false);
    }
  };

  const r = repo.data;
  return (
    <main>
      <p className="crumbs"><Link to="/repositories">Repositories</Link> / {r?.name ?? `#${id}`}</p>
      <h1>{r?.name ?? "Repository"}</h1>
      {r && <p className="muted mono">{r.url ?? r.path}{r.branch ? ` @ ${r.branch}` : ""}</p>}
      <ErrorBox error={repo.error || error} onClose={error ? () => setError(null) : undefined} />
      {r && <RepositoryActions repo={r} readOnly={readOnly} onPulled={() => void detect(appPath)} onDeleted={() => navigate("/repositories")} />}
      <div className="row end">
        <button onClick={() => detect(appPath)} disabled={detecting || readOnly}>{detecting ? "Detecting…" : "Detect again"}</button>
      </div>
      {!detection && detecting && <p className="muted" role="status">Looking at the files…</p>}
      {detection && (
        <DetectionPanel
          detection={{ ...detection, apps: root?.apps ?? [] }}
          stack={stack}
          onStack={setStack}
          appPath={appPath}
          onApp={(p) => { setAppPath(p); void detect(p); }}
        />
      )}
      {detection && (
        <form className="card" onSubmit={generate} aria-labelledby="gen-title">
          <h2 id="gen-title">Generate the deployment files</h2>
          <p className="muted">Portside writes a Dockerfile, a docker-compose.yml and a .dockerignore; you can read and edit them before deploying.</p>
          <div className="row">
            <label>
              App port
              <input inputMode="numeric" value={port} onChange={(e) => setPort(e.target.value)} aria-invalid={portInvalid} aria-describedby="port-err" />
            </label>
            <label>
              CPUs
              <input inputMode="decimal" value={cpu} onChange={(e) => setCpu(e.target.value)} placeholder="no limit" />
            </label>
            <label>
              Memory
              <input value={memory} onChange={(e) => setMemory(e.target.value)} placeholder="e.g. 512m" aria-invalid={memoryInvalid} />
            </label>
          </div>
          {portInvalid && <p id="port-err" className="field-error">The port must be a whole number from 1 to 65535.</p>}
          {memoryInvalid && <p className="field-error">Memory is a number and a unit: 512m, 2g.</p>}
          <button className="primary" type="submit" disabled={readOnly || generating || portInvalid || memoryInvalid}>
            {generating ? "Generating…" : "Generate"}
          </button>
        </form>
      )}
      <section className="card">
        <h2>Deployments of this repository</h2>
        {(deployments.data ?? []).length === 0 ? (
          <p className="muted">None yet.</p>
        ) : (
          <ul className="plain">
            {(deployments.data ?? []).map((d) => (
              <li key={d.id}>
                <Link to={`/deployments/${d.id}`}>#{d.id} {d.app_path || "(root)"}</Link> <StatusBadge status={d.status} /> <span className="muted">{timeAgo(d.created_at)}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
    </main>
  );
}
